/** `drill`: the disaster-recovery drill on file-backed LUNs (see src/agent/drill.ts). */
import os from 'node:os';
import path from 'node:path';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { AgentError, ArgumentError } from '../../errors';
import { runDrill } from '../../agent/drill';
import { runLunDrill } from '../../agent/drill-luns';
import { managementClient, managementOptions, type ManagementArgs } from '../management';
import { Output } from '../output';
import { parseSize } from '../../util/size';

export const command = 'drill';
export const describe = 'Run the DR drill: on file-backed LUNs served on loopback (no SAN needed), or on real LUNs (--source, --secondary, --obf)';

interface Args extends ManagementArgs {
  json: boolean;
  workDir: string;
  size: string;
  keep: boolean;
  source?: string;
  secondary?: string;
  obf?: string;
  bridge?: string;
  yes: boolean;
}

export function builder(y: Argv): Argv<Args> {
  return managementOptions(y)
    .option('work-dir', { type: 'string', default: path.join(os.tmpdir(), 'xcopy-agent-drill'), describe: 'folder for the LUN files and logs' })
    .option('size', { type: 'string', default: '256M', describe: 'LUN size (K, M, G suffixes)' })
    .option('keep', { type: 'boolean', default: false, describe: 'keep the LUN files afterwards' })
    .option('source', { type: 'string', describe: 'real LUNs: the source (overwritten with test blocks), served by the target at --mgmt' })
    .option('secondary', { type: 'string', describe: 'real LUNs: the secondary' })
    .option('obf', { type: 'string', describe: "real LUNs: the OBF, a LUN of the source's target" })
    .option('bridge', { type: 'string', describe: "real LUNs: the copy manager (default: the secondary's)" })
    .option('yes', { type: 'boolean', default: false, describe: 'real LUNs: take LUNs that hold data (the source is overwritten)' })
    .example('$0 drill --source iscsi://127.0.0.1:3260/iqn.2026-11.io.example:gw/0 --obf iscsi://.../1 --secondary iscsi://.../2', '')
    .example('$0 drill --size 256M', '') as unknown as Argv<Args>;
}

export async function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  const out = new Output(argv.json);
  try {
    if (argv.source !== undefined || argv.secondary !== undefined || argv.obf !== undefined) return await lunDrill(argv, out);
    const size = parseSize(argv.size, '--size');
    if (size % 1048576 !== 0) throw new ArgumentError(`--size ${argv.size} is not a whole number of MiB`);
    const r = await runDrill({
      workDir: argv.workDir,
      sizeBytes: size,
      keep: argv.keep,
      onStep: (step, fields) => {
        out.record('progress', { step, ...fields });
        out.line(`drill: ${step} ${Object.entries(fields).map(([k, v]) => `${k}=${String(v)}`).join(' ')}`);
      },
    });
    out.record('summary', { command: 'drill', ...r });
    out.line(
      `drill: ${r.ok ? 'PASS' : 'FAIL'} — backup (overwrite): snapshot ${r.snapshot_id} (writes held ${r.institute_pause_ms.toFixed(2)} ms, including the reference copy), ` +
        `${r.bytes} bytes copied by EXTENDED COPY in ${r.copy_seconds.toFixed(2)} s (${r.copy_mib_per_s.toFixed(0)} MiB/s) while a host wrote ${r.host_writes_during_backup} times, ` +
        `${r.obf_records} OBF records applied; secondary sha256 ${r.secondary_sha256.slice(0, 16)}… ${r.secondary_sha256 === r.reference_sha256 ? '=' : '!='} the image held at institution; ` +
        `backup (append, marker) + integrate: ${r.append.obf_records} records (${r.append.records_after_marker} after the marker), ${r.append.integrated_records} integrated, ` +
        `sha256 ${r.append.secondary_sha256.slice(0, 16)}… ${r.append.secondary_sha256 === r.append.reference_sha256 ? '=' : '!='} its held image; ` +
        `source lost and restored twice: 700 from the append copy (${r.restores.from_append.log_records} log records) ${r.restores.from_append.sha256 === r.restores.from_append.reference_sha256 ? '=' : '!='} its held image, ` +
        `750 from the overwrite copy ${r.restores.from_overwrite.sha256 === r.restores.from_overwrite.reference_sha256 ? '=' : '!='} its held image; ` +
        `${r.stamped_blocks_checked + r.append.stamped_blocks_checked} stamped blocks checked`,
    );
    if (!r.ok) throw new AgentError('ERR_INTERNAL', 'drill failed: the secondary differs from the image held at institution');
  } catch (err) {
    process.exitCode = out.error(err);
  }
}

/** The drill on real LUNs (src/agent/drill-luns.ts). */
async function lunDrill(argv: ArgumentsCamelCase<Args>, out: Output): Promise<void> {
  if (!argv.source || !argv.secondary || !argv.obf) throw new ArgumentError('the drill on real LUNs needs --source, --secondary and --obf');
  const r = await runLunDrill({
    source: argv.source,
    secondary: argv.secondary,
    obf: argv.obf,
    bridge: argv.bridge,
    mgmt: managementClient(argv),
    yes: argv.yes,
    onStep: (step, fields) => {
      out.record('progress', { step, ...fields });
      out.line(`drill: ${step} ${Object.entries(fields).map(([k, v]) => `${k}=${String(v)}`).join(' ')}`);
    },
  });
  out.record('summary', { command: 'drill', ...r });
  out.line(`drill: ${r.ok ? 'PASS' : 'FAIL'} — ${r.backups.map((b) => `${b.mode}: ${b.blocks_checked} blocks checked by stamp, extent hashes ${b.extent_hashes_match ? 'match' : 'DIFFER'}`).join('; ')} (${r.seconds.toFixed(1)} s)`);
  if (!r.ok) throw new AgentError('ERR_INTERNAL', 'drill failed: the recorded hashes differ from the secondary');
}

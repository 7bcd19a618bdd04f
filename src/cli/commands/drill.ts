/** `drill`: the disaster-recovery drill on file-backed LUNs (see src/agent/drill.ts). */
import os from 'node:os';
import path from 'node:path';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { AgentError, ArgumentError } from '../../errors';
import { runDrill } from '../../agent/drill';
import { Output } from '../output';
import { parseSize } from '../../util/size';

export const command = 'drill';
export const describe = 'Run the DR drill on file-backed LUNs served on loopback (no SAN needed)';

interface Args {
  json: boolean;
  workDir: string;
  size: string;
  keep: boolean;
}

export function builder(y: Argv): Argv<Args> {
  return y
    .option('work-dir', { type: 'string', default: path.join(os.tmpdir(), 'xcopy-agent-drill'), describe: 'folder for the LUN files and logs' })
    .option('size', { type: 'string', default: '256M', describe: 'LUN size (K, M, G suffixes)' })
    .option('keep', { type: 'boolean', default: false, describe: 'keep the LUN files afterwards' })
    .example('$0 drill --size 256M', '') as unknown as Argv<Args>;
}

export async function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  const out = new Output(argv.json);
  try {
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
        `${r.stamped_blocks_checked + r.append.stamped_blocks_checked} stamped blocks checked`,
    );
    if (!r.ok) throw new AgentError('ERR_INTERNAL', 'drill failed: the secondary differs from the image held at institution');
  } catch (err) {
    process.exitCode = out.error(err);
  }
}

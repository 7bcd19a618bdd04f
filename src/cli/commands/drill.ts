/**
 * `drill`: the disaster-recovery drill, on file-backed LUNs (src/agent/drill.ts) or on real LUNs
 * (src/agent/drill-luns.ts); its operations recorded in the catalog as the commands record
 * theirs (src/cli/catalog.ts), and the copies it made listed from it at the end.
 */
import os from 'node:os';
import path from 'node:path';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { AgentError, ArgumentError } from '../../errors';
import { runDrill } from '../../agent/drill';
import { runLunDrill } from '../../agent/drill-luns';
import type { DrillCatalog, DrillCopy, DrillProgress, DrillStep } from '../../agent/drill-steps';
import { readSecondaryAt } from '../../agent/secondary-lun';
import { secondaryWithToc } from '../../agent/secondary-toc';
import { copyOfSecondary, type OperationKind } from '../../catalog';
import { redactUrl } from '../../initiator/url';
import { catalogOptions, openCatalog, Recorder, type CatalogArgs, type Recording } from '../catalog';
import { cowTimeoutMs, managementClient, managementOptions, type ManagementArgs } from '../management';
import { Output } from '../output';
import { Progress } from '../progress';
import { parseSize } from '../../util/size';

export const command = 'drill';
export const describe = 'Run the DR drill: on file-backed LUNs served on loopback (no SAN needed), or on real LUNs (--source, --secondary, --obf)';

interface Args extends ManagementArgs, CatalogArgs {
  json: boolean;
  workDir: string;
  size: string;
  keep: boolean;
  source?: string;
  secondary?: string;
  obf?: string;
  bridge?: string;
  cowTimeoutMs?: number;
  yes: boolean;
}

export function builder(y: Argv): Argv<Args> {
  return catalogOptions(managementOptions(y))
    .option('work-dir', { type: 'string', default: path.join(os.tmpdir(), 'xcopy-agent-drill'), describe: 'folder for the LUN files and logs' })
    .option('size', { type: 'string', default: '256M', describe: 'LUN size (K, M, G suffixes)' })
    .option('keep', { type: 'boolean', default: false, describe: 'keep the LUN files afterwards' })
    .option('source', { type: 'string', describe: 'real LUNs: the source (overwritten with test blocks), served by the target at --mgmt' })
    .option('secondary', { type: 'string', describe: 'real LUNs: the secondary' })
    .option('obf', { type: 'string', describe: "real LUNs: the OBF, a LUN of the source's target" })
    .option('bridge', { type: 'string', describe: "real LUNs: the copy manager (default: the secondary's)" })
    .option('cow-timeout-ms', { type: 'number', describe: "real LUNs: the backups' capture timeout (as `backup --cow-timeout-ms`)" })
    .option('yes', { type: 'boolean', default: false, describe: 'real LUNs: take LUNs that hold data (the source is overwritten)' })
    .example('$0 drill --source iscsi://127.0.0.1:3260/iqn.2026-11.io.example:gw/0 --obf iscsi://.../1 --secondary iscsi://.../2', '')
    .example('$0 drill --size 256M', '') as unknown as Argv<Args>;
}

export async function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  const out = new Output(argv.json);
  const progress = new Progress(out, { command: 'drill' });
  try {
    if (argv.source !== undefined || argv.secondary !== undefined || argv.obf !== undefined) return await lunDrill(argv, out, progress);
    const size = parseSize(argv.size, '--size');
    if (size % 1048576 !== 0) throw new ArgumentError(`--size ${argv.size} is not a whole number of MiB`);
    const r = await runDrill({ workDir: argv.workDir, sizeBytes: size, keep: argv.keep, onStep: printStep(out, progress), progress: drillProgress(progress), catalog: drillCatalog(argv, out) });
    progress.finishLine();
    out.record('summary', { command: 'drill', ...r });
    out.line(
      `drill: ${r.ok ? 'PASS' : 'FAIL'} — backup (overwrite): snapshot ${r.snapshot_id} (writes held ${r.institute_pause_ms.toFixed(2)} ms, including the reference copy), ` +
        `${r.bytes} bytes copied by EXTENDED COPY in ${r.copy_seconds.toFixed(2)} s (${r.copy_mib_per_s.toFixed(0)} MiB/s) while a host wrote ${r.host_writes_during_backup} times, ` +
        `${r.obf_records} OBF records applied; secondary sha256 ${r.secondary_sha256.slice(0, 16)}… ${r.secondary_sha256 === r.reference_sha256 ? '=' : '!='} the image held at institution; ` +
        `backup (append, marker) + integrate: ${r.append.obf_records} records (${r.append.records_after_marker} after the marker), ${r.append.integrated_records} integrated, ` +
        `sha256 ${r.append.secondary_sha256.slice(0, 16)}… ${r.append.secondary_sha256 === r.append.reference_sha256 ? '=' : '!='} its held image; ` +
        `source lost and restored twice: 700 from the append copy (${r.restores.from_append.log_records} log records) ${r.restores.from_append.sha256 === r.restores.from_append.reference_sha256 ? '=' : '!='} its held image, ` +
        `750 from the overwrite copy ${r.restores.from_overwrite.sha256 === r.restores.from_overwrite.reference_sha256 ? '=' : '!='} its held image; ` +
        `${r.stamped_blocks_checked + r.append.stamped_blocks_checked} stamped blocks checked; ` +
        `files: backup --toc (${r.files.toc_files} inodes) while a host overwrote ${r.files.host_writes_during_backup} files, ` +
        `${r.files.to_dir.matching}/${r.files.to_dir.paths} files restored to a directory = the tree, ${r.files.in_place.matching}/${r.files.in_place.paths} restored in place = the tree (read by debugfs)`,
    );
    printCopies(out, r.copies);
    if (!r.ok) throw new AgentError('ERR_INTERNAL', r.files.ok ? 'drill failed: the secondary differs from the image held at institution' : `drill failed: files restored differ from the generated tree (seed ${r.files.seed})`);
  } catch (err) {
    progress.finishLine();
    process.exitCode = out.error(err);
  }
}

/** The drill on real LUNs (src/agent/drill-luns.ts). */
async function lunDrill(argv: ArgumentsCamelCase<Args>, out: Output, progress: Progress): Promise<void> {
  if (!argv.source || !argv.secondary || !argv.obf) throw new ArgumentError('the drill on real LUNs needs --source, --secondary and --obf');
  const r = await runLunDrill({
    source: argv.source,
    secondary: argv.secondary,
    obf: argv.obf,
    bridge: argv.bridge,
    mgmt: managementClient(argv),
    cowTimeoutMs: cowTimeoutMs(argv.cowTimeoutMs),
    yes: argv.yes,
    onStep: printStep(out, progress),
    progress: drillProgress(progress),
    catalog: drillCatalog(argv, out),
  });
  progress.finishLine();
  out.record('summary', { command: 'drill', ...r });
  out.line(
    `drill: ${r.ok ? 'PASS' : 'FAIL'} — ${r.backups.map((b) => `${b.mode}: ${b.blocks_checked} blocks checked by stamp, extent hashes ${b.extent_hashes_match ? 'match' : 'DIFFER'}`).join('; ')}; ` +
      `source lost and restored: ${r.restores.map((x) => `${x.method} ${x.blocks_checked} blocks checked by stamp, ${x.match ? '=' : '!='} the secondary's image`).join('; ')} (${r.seconds.toFixed(1)} s)`,
  );
  printCopies(out, r.copies);
  if (!r.ok) throw new AgentError('ERR_INTERNAL', 'drill failed: the recorded hashes or a restored source differ from the secondary');
}

/** Each step as a progress record and a line (after the progress bar's line, which it ends). */
function printStep(out: Output, progress: Progress): DrillStep {
  return (step, fields) => {
    progress.finishLine();
    out.record('progress', { step, ...fields });
    out.line(`drill: ${step} ${Object.entries(fields).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${String(v)}`])).join(' ')}`);
  };
}

/** The drill's operations in the one progress display of the long commands. */
function drillProgress(progress: Progress): DrillProgress {
  return {
    start: (phase, label) => progress.start(phase, label),
    update: (done, total, unit, blockSize, path) => progress.update(done, total, unit, { blockSize, path }),
  };
}

/** The copies the drill made (they are in the summary record too). */
function printCopies(out: Output, copies: DrillCopy[]): void {
  if (copies.length === 0) out.line("drill: no copies listed: the catalog could not be used (see the warning above)");
  for (const c of copies) out.line(`drill: copy ${c.id} (${c.label ?? '-'}): ${c.mode ?? '?'} mode, ${c.state}, verified ${c.verification ?? 'never'}, on ${c.secondary_url}`);
}

/**
 * The drill's operations recorded in the catalog as `backup`, `verify`, `restore` and
 * `integrate` record theirs (src/cli/catalog.ts, one Recorder each). When the catalog cannot be
 * opened — at the start or later in the drill — it warns once, and the drill goes on without it.
 */
export function drillCatalog(a: CatalogArgs, out: Output): DrillCatalog {
  let usable = true;
  /** Whether the catalog opens; the first time it does not, the warning why. */
  const opens = () => {
    try {
      if (usable) void openCatalog(a).close();
    } catch {
      usable = false;
      Recorder.open(a, out, 'drill'); // says why
    }
    return usable;
  };
  opens();
  /** Runs `work` recorded as `kind`, or only runs it once the catalog could not be opened. */
  const run = <T extends { backup_id?: string }>(kind: OperationKind, o: Recording<T>, work: () => Promise<T>): Promise<T> =>
    opens() ? Recorder.open(a, out, 'drill').operation(kind, o, work) : work();
  const now = () => new Date().toISOString();
  return {
    backup: (b, work) => {
      const secondaryUrl = redactUrl(b.secondary);
      const before = { id: b.backupId, label: b.label, secondaryUrl, obfUrl: redactUrl(b.obf), sourceUrl: redactUrl(b.source), mode: b.mode, state: 'copying' };
      // After the run, the copy as its secondary describes it.
      const after = async () => {
        const { record, toc } = await secondaryWithToc(b.secondary);
        return { ...copyOfSecondary(record, secondaryUrl), sourceUrl: before.sourceUrl, toc };
      };
      const replacedOn = async () => ((await readSecondaryAt(b.secondary)).backupId === b.backupId ? secondaryUrl : undefined);
      return run('backup', { copyId: b.backupId, before, after, failed: () => ({ id: b.backupId, state: 'failed' }), replacedOn }, work);
    },
    verify: (secondary, work) =>
      run(
        'verify',
        {
          secondary: redactUrl(secondary),
          after: (x) => ({ id: x.backup_id, state: x.state, verification: 'ok', verifiedAt: now() }),
          failed: (err, id) => ((err as { code?: unknown }).code === 'ERR_VERIFY_MISMATCH' ? { id, verification: 'failed', verifiedAt: now() } : undefined),
        },
        work,
      ),
    restore: (secondary, work) => run('restore', { secondary: redactUrl(secondary) }, work),
    integrate: (secondary, work) => run('integrate', { secondary: redactUrl(secondary), after: (x) => ({ id: x.backup_id, state: 'integrated' }) }, work),
    copies: async (ids) => {
      if (!usable) return [];
      try {
        const c = openCatalog(a);
        try {
          const found = (await Promise.all(ids.map((id) => c.getCopy(id)))).flatMap((x) => (x ? [x.copy] : []));
          return found.map((x) => ({ id: x.id, label: x.label, mode: x.mode, state: x.state, verification: x.verification, secondary_url: x.secondaryUrl }));
        } finally {
          await c.close();
        }
      } catch (err) {
        const message = `${(err as Error)?.message ?? String(err)}; the drill's copies are not listed`;
        out.record('progress', { event: 'warning', code: 'ERR_CATALOG', message });
        if (!out.json) process.stderr.write(`xcopy-agent: warning: ${message}\n`);
        return [];
      }
    },
  };
}

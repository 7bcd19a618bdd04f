/**
 * `backup`: a consistent point-in-time copy of a LUN onto a secondary LUN (docs/method.md
 * 602–608): preflight, institute with hooks, outboard copy by EXTENDED COPY, terminate (or mark),
 * apply or append the OBF, hashes; the secondary describes itself (docs/secondary-format.md).
 */
import crypto from 'node:crypto';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { backup, type BackupPhase } from '../../agent/backup';
import { readSecondaryAt } from '../../agent/secondary-lun';
import { secondaryWithToc } from '../../agent/secondary-toc';
import { copyOfSecondary } from '../../catalog';
import { redactUrl } from '../../initiator/url';
import { ArgumentError } from '../../errors';
import { logger } from '../../util/log';
import { parseSize } from '../../util/size';
import { catalogOptions, findResumable, Recorder, resumedUrl, runParams, withRecorded, type CatalogArgs } from '../catalog';
import { cowTimeoutMs, managementClient, managementOptions, type ManagementArgs } from '../management';
import { runCommand } from '../run';

export const command = 'backup';
export const describe = 'Back up a LUN: snapshot (COW), copy by EXTENDED COPY, apply or append the OBF; the secondary describes itself';

interface Args extends ManagementArgs, CatalogArgs {
  json: boolean;
  source?: string;
  secondary?: string;
  obf?: string;
  resume?: string;
  bridge?: string;
  mode?: 'overwrite' | 'append';
  mark?: boolean;
  chunk?: string;
  policy?: 'protect-application' | 'protect-snapshot';
  cowTimeoutMs?: number;
  preHook?: string;
  postHook?: string;
  hookTimeout: number;
  label?: string;
  fallback?: boolean;
  expectedChange: number;
  yes: boolean;
  keepSnapshotOnAbort?: boolean;
  verify?: boolean;
  toc?: boolean;
}

/** The options a backup records for `--resume` (with the URLs, redacted, and whether each lost a secret). */
const RESUMED = ['mode', 'mark', 'chunk', 'policy', 'cowTimeoutMs', 'fallback', 'keepSnapshotOnAbort', 'verify', 'toc', 'mgmt', 'tokenFile'] as const;

export function builder(y: Argv): Argv<Args> {
  return catalogOptions(managementOptions(y))
    .option('source', { type: 'string', describe: 'the LUN to back up (iscsi://...), served by the target at --mgmt (required unless --resume)' })
    .option('secondary', { type: 'string', describe: 'the LUN that receives the copy (iscsi://...) (required unless --resume)' })
    .option('obf', { type: 'string', describe: "the OBF: a LUN of the source's target (iscsi://...) (required unless --resume)" })
    .option('resume', { type: 'string', describe: 'continue the backup with this id that an agent left unfinished (options from the catalog; those given win)' })
    .option('bridge', { type: 'string', describe: "the copy manager to send EXTENDED COPY to (default: the secondary's)" })
    .option('mode', { choices: ['overwrite', 'append'] as const, describe: 'overwrite: records laid over the image; append: the OBF log after the image (integrate later) [default: overwrite]' })
    .option('mark', { type: 'boolean', describe: 'mark when the copy completes and apply only the records before the marker' })
    .option('chunk', { type: 'string', describe: 'COW chunk size (e.g. 64K; default the target\'s, 64 KiB)' })
    .option('policy', { choices: ['protect-application', 'protect-snapshot'] as const, describe: 'what to sacrifice when a chunk cannot be captured' })
    .option('cow-timeout-ms', { type: 'number', describe: "longest a capture may take before the policy acts (default the target's, 5000; more for a gateway in front of a slow target)" })
    .option('pre-hook', { type: 'string', describe: 'command run before the snapshot (e.g. an application flush, fsfreeze -f)' })
    .option('post-hook', { type: 'string', describe: 'command run after it (e.g. fsfreeze -u); gets XCOPY_AGENT_SNAPSHOT_ID' })
    .option('hook-timeout', { type: 'number', default: 120, describe: 'seconds a hook may run' })
    .option('label', { type: 'string', describe: 'a label recorded with the copy' })
    .option('fallback', { type: 'boolean', describe: 'copy through this host when no copy manager can (off: fail instead)' })
    .option('expected-change', { type: 'number', default: 10, describe: 'percent of the source expected to change during the backup (OBF budget warning)' })
    .option('yes', { type: 'boolean', default: false, describe: 'take a secondary that holds other data' })
    .option('keep-snapshot-on-abort', { type: 'boolean', describe: 'on failure or Ctrl-C keep the snapshot ACTIVE instead of ending it' })
    .option('verify', { type: 'boolean', describe: "after 608, read the secondary back and check every extent against the snapshot view's hashes" })
    .option('toc', { type: 'boolean', describe: '603: list the ext2/3/4 file system on the source from the snapshot view into the secondary and the catalog (see `toc --copy`)' })
    .example('$0 backup --source iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/0 --secondary iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/2 --obf iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/1', '')
    .example('$0 backup --source URL --secondary URL --obf URL --mode append --pre-hook "fsfreeze -f /srv" --post-hook "fsfreeze -u /srv" --json', '')
    .example('$0 backup --resume 3f2c9a1e', 'continue a backup whose agent was killed') as unknown as Argv<Args>;
}

export function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  return runCommand(argv.json, 'backup', async ({ out, progress, signal }) => {
    if (!(argv.expectedChange >= 0 && argv.expectedChange <= 100)) throw new ArgumentError(`--expected-change ${argv.expectedChange} must be a percentage 0..100`);
    if (!(argv.hookTimeout > 0)) throw new ArgumentError(`--hook-timeout ${argv.hookTimeout} must be a positive number of seconds`);
    // --resume: the options the cut-short run recorded, the ones given now winning.
    if (argv.resume !== undefined && (argv.mode !== undefined || argv.mark !== undefined)) throw new ArgumentError('--mode and --mark are the resumed backup\'s own (its secondary records them): leave them out with --resume');
    const resumed = argv.resume !== undefined ? await findResumable(argv, 'backup', argv.resume) : undefined;
    const p = resumed?.operation.params ?? {};
    const a = withRecorded(argv, p, RESUMED);
    const cowTimeout = cowTimeoutMs(a.cowTimeoutMs);
    const url = (flag: 'source' | 'secondary' | 'obf', recorded: string | undefined) => {
      const u = resumedUrl(argv[flag], p, flag, recorded);
      if (u === undefined) throw new ArgumentError(`--${flag} is required (or --resume ID of an unfinished backup)`);
      return u;
    };
    const [source, secondaryLun, obf] = [url('source', resumed?.copy?.sourceUrl), url('secondary', resumed?.copy?.secondaryUrl), url('obf', resumed?.copy?.obfUrl)];
    const bridge = resumedUrl(argv.bridge, p, 'bridge');
    const chunkBytes = a.chunk !== undefined ? parseSize(a.chunk, '--chunk') : undefined;
    let blockBytes = 512;
    // The copy is in the catalog from the start (state copying); after the run, as its secondary describes it.
    const backupId = resumed?.operation.copyId ?? crypto.randomUUID();
    const secondaryUrl = redactUrl(secondaryLun);
    const before = resumed ? undefined : { id: backupId, label: argv.label, secondaryUrl, obfUrl: redactUrl(obf), sourceUrl: redactUrl(source), mode: argv.mode ?? 'overwrite', state: 'copying' };
    const after = async (x: { state: string; mode: string; image_bytes: bigint }) => {
      try {
        const { record, toc } = await secondaryWithToc(secondaryLun);
        return { ...copyOfSecondary(record, secondaryUrl), sourceUrl: redactUrl(source), toc };
      } catch {
        return { id: backupId, state: x.state, mode: x.mode, bytes: Number(x.image_bytes), finishedAt: new Date().toISOString() };
      }
    };
    // The copies recorded on this secondary before are gone once this backup has written its header there.
    const replacedOn = async () => ((await readSecondaryAt(secondaryLun)).backupId === backupId ? secondaryUrl : undefined);
    const params = runParams({ source, secondary: secondaryLun, obf, bridge }, Object.fromEntries(RESUMED.map((k) => [k, a[k]])));
    const recorder = Recorder.open(argv, out, 'backup');
    const r = await recorder.operation('backup', { copyId: backupId, before, after, failed: () => ({ id: backupId, state: 'failed' }), params, resumes: resumed?.operation, replacedOn }, () => backup({
      backupId,
      resume: resumed !== undefined,
      source,
      secondary: secondaryLun,
      obf,
      bridge,
      mode: a.mode,
      mark: a.mark,
      chunkBytes,
      policy: a.policy,
      cowTimeoutMs: cowTimeout,
      preHook: argv.preHook,
      postHook: argv.postHook,
      hookTimeoutMs: argv.hookTimeout * 1000,
      label: argv.label,
      mgmt: managementClient(a),
      fallback: a.fallback,
      expectedChange: argv.expectedChange / 100,
      yes: argv.yes,
      keepSnapshotOnAbort: a.keepSnapshotOnAbort,
      verify: a.verify,
      toc: a.toc === true,
      signal,
      log: logger(),
      onEvent: (e) => {
        if (e.type === 'phase') {
          if (typeof e.block_size === 'number') {
            blockBytes = e.block_size;
            return;
          }
          if (e.phase === 'institute' && e.snapshot_id) {
            out.record('progress', { phase: 'institute', snapshot_id: e.snapshot_id, institute_pause_ms: e.institute_pause_ms });
            if (progress.isTty) process.stderr.write(`  snapshot ${String(e.snapshot_id)}, writes held ${Number(e.institute_pause_ms ?? 0).toFixed(2)} ms\n`);
          } else if (e.phase !== 'done') progress.start(e.phase, phaseName(e.phase));
        } else if (e.type === 'progress') {
          const obf = e.obf_records !== undefined ? `OBF ${e.obf_records} records (${((e.obf_fill ?? 0) * 100).toFixed(1)}% full)` : '';
          progress.update(e.done, e.total, e.unit, {
            blockSize: blockBytes,
            path: e.path,
            extra: obf,
            fields: e.obf_records !== undefined ? { obf_records: e.obf_records, obf_fill: e.obf_fill } : undefined,
          });
        } else {
          progress.finishLine();
          out.record('progress', { event: 'warning', message: e.message });
          if (!argv.json) process.stderr.write(`xcopy-agent: warning: ${e.message}\n`);
        }
      },
    }));
    const mib = (b: bigint) => (Number(b) / 1048576).toFixed(1);
    return {
      summary: { ...r },
      line:
        (r.resumed_from !== undefined ? `resumed (from ${r.resumed_from}): ` : '') +
        `backup ${r.backup_id}: ${r.state} — snapshot ${r.snapshot_id} (writes held ${(r.institute_pause_ms ?? 0).toFixed(2)} ms), ` +
          `${mib(r.image_bytes)} MiB image: ${mib(r.xcopy_bytes)} MiB by EXTENDED COPY (${commands(r.extended_copy_commands.copy)}), ${mib(r.host_bytes)} MiB through this host` +
          (r.fallback_reason ? ` (${r.fallback_reason})` : '') +
          `; ${r.obf_records} OBF records (${mib(r.obf_bytes)} MiB) ${r.mode === 'overwrite' ? 'applied' : 'appended'} (${commands(r.extended_copy_commands.apply)})` +
          (r.records_after_marker !== undefined ? `, ${r.records_after_marker} after the marker not needed` : '') +
          (r.toc ? `; table of contents: ${r.toc.files} inodes (${r.toc.bytes} bytes)` : '') +
          `; ${r.extents} extents hashed (from the ${r.hashed_from})${r.verified ? ', the secondary read back and verified' : ''}; ${r.seconds.toFixed(2)} s (${Object.entries(r.phases).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')})`,
    };
  });
}

const commands = (n: number) => `${n} command${n === 1 ? '' : 's'}`;

function phaseName(p: BackupPhase): string {
  return {
    preflight: 'preflight: checking every LUN',
    institute: '602 institute: holding writes, arming COW',
    copy: '604 outboard copy (EXTENDED COPY)',
    toc: '603 table of contents (from the snapshot view)',
    terminate: '606 terminate (OBF retained)',
    apply: '608 apply the OBF records',
    append: '608 append the OBF log',
    hash: 'hashing the image as of 602 (in the source\'s target)',
    verify: 'verify: reading the secondary back against the hashes',
    done: 'done',
  }[p];
}

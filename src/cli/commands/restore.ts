/** `restore`: a copy back onto a LUN, whole or block ranges (docs/method.md 700 / 750; src/agent/restore.ts). */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { parseRange, restore } from '../../agent/restore';
import { restoreFiles, type FileRestoreResult } from '../../agent/restore-files';
import { ArgumentError } from '../../errors';
import { DEFAULT_RETRY } from '../../initiator/retry';
import { redactUrl } from '../../initiator/url';
import { catalogOptions, findResumable, Recorder, resumedUrl, runParams, secondaryOfCopy, withRecorded, type CatalogArgs } from '../catalog';
import type { Output } from '../output';
import type { Progress } from '../progress';
import { DEFAULT_TOKEN_FILE, managementClient } from '../management';
import { runCommand } from '../run';

export const command = 'restore';
const READY_DEFAULT_S = (DEFAULT_RETRY.becomingReadyMs ?? 60_000) / 1000;
/** The options a restore records for `--resume`, beside its URLs. */
const RESUMED = ['fallback', 'mgmt', 'tokenFile', 'readyTimeout'] as const;
export const describe = 'Restore a copy onto a LUN (the original or another), whole or --range LBA+COUNT, by EXTENDED COPY, or --files from it to a directory or in place; then checked against the copy';

interface Args extends CatalogArgs {
  json: boolean;
  secondary?: string;
  copy?: string;
  to?: string;
  files?: string[];
  toDir?: string;
  overwrite: boolean;
  inPlace: boolean;
  resume?: string;
  range?: string[];
  bridge?: string;
  yes: boolean;
  fallback?: boolean;
  mgmt?: string;
  tokenFile?: string;
  readyTimeout?: number;
}

export function builder(y: Argv): Argv<Args> {
  return catalogOptions(y)
    .option('secondary', { type: 'string', describe: 'the secondary LUN of a backup (iscsi://...) (required unless --resume)' })
    .option('copy', { type: 'string', describe: 'the copy by its id in the catalog (`copies list`), instead of --secondary' })
    .option('to', { type: 'string', describe: 'the LUN to restore onto: the original source or another (iscsi://...) (required unless --resume, or --files --in-place: the copy\'s source)' })
    .option('files', { type: 'string', array: true, describe: 'restore these files (paths from the file system\'s root; a directory with what is below it), found through the copy\'s table of contents (backup --toc)' })
    .option('to-dir', { type: 'string', describe: 'with --files: write them under this directory, each at its path (created if missing)' })
    .option('overwrite', { type: 'boolean', default: false, describe: 'with --to-dir: replace files that exist there (default: refuse before writing anything)' })
    .option('in-place', { type: 'boolean', default: false, describe: 'with --files: write their blocks back where they were on the LUN (unmounted, layout unchanged since the copy: checked first); needs --yes' })
    .conflicts('secondary', 'copy')
    .conflicts('files', 'range')
    .option('resume', { type: 'string', describe: 'continue the restore with this id (or the newest unfinished one of this copy) that an agent left unfinished; --yes still needed' })
    .option('range', { type: 'string', array: true, describe: 'blocks of the image to restore, LBA+COUNT (repeatable; default: the whole image)' })
    .option('bridge', { type: 'string', describe: 'the copy manager to send EXTENDED COPY to (default: the one serving --to)' })
    .option('yes', { type: 'boolean', default: false, describe: 'required: the LUN restored onto loses what it held there' })
    .option('fallback', { type: 'boolean', describe: 'copy through this host when no copy manager can (off: fail instead)' })
    // Optional here (backup needs it): without it the check reads the restored LUN back.
    .option('mgmt', { type: 'string', describe: 'the management API of the target serving --to (http://HOST:PORT or unix:/path): it hashes the restored LUN for the check, instead of a read back through iSCSI' })
    .option('token-file', { type: 'string', describe: `bearer token file of that target (with --mgmt) [default: ${DEFAULT_TOKEN_FILE}]` })
    .option('ready-timeout', { type: 'number', describe: `seconds to wait for --to while it is becoming ready (its target resuming a snapshot after a restart) [default: ${READY_DEFAULT_S}]` })
    .example('$0 restore --secondary iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/2 --to iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/0 --yes', '')
    .example('$0 restore --secondary URL --to URL --mgmt http://127.0.0.1:3261 --yes', 'the target serving --to hashes the restored LUN for the check')
    .example('$0 restore --secondary URL --to URL --range 2048+4096 --range 1000000+8 --yes', '')
    .example('$0 restore --copy 3f2c9a1e --files /etc/passwd /home/ann --to-dir /srv/restored', 'single files and a directory, as of the backup, into /srv/restored/etc/passwd and /srv/restored/home/ann')
    .example('$0 restore --copy 3f2c9a1e --files /var/db/app.db --in-place --yes', 'that file\'s blocks back onto the (unmounted) source LUN')
    .example('$0 restore --resume 7d41c2 --yes', 'continue a restore whose agent was killed') as unknown as Argv<Args>;
}

export function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  return runCommand(argv.json, 'restore', async ({ out, progress, signal }) => {
    // --resume: the options the cut-short run recorded (those given now win) and its units.
    const resumed = argv.resume !== undefined ? await findResumable(argv, 'restore', argv.resume) : undefined;
    const p = resumed?.operation.params ?? {};
    const a = withRecorded(argv, p, RESUMED);
    const url = (flag: 'secondary' | 'to' | 'bridge', required: boolean) => {
      const u = resumedUrl(argv[flag], p, flag);
      if (u === undefined && required) throw new ArgumentError(`--${flag} is required (or --resume ID of an unfinished restore)`);
      return u;
    };
    if (argv.copy !== undefined && argv.secondary === undefined) argv.secondary = await secondaryOfCopy(argv, argv.copy);
    const files = argv.files ?? (Array.isArray(p.files) ? (p.files as string[]) : undefined);
    if (files !== undefined) return fileRestore(argv, out, progress, signal, resumed, files);
    if (argv.toDir !== undefined || argv.inPlace || argv.overwrite) throw new ArgumentError('--to-dir, --in-place and --overwrite go with --files PATH...');
    const [secondary, to, bridge] = [url('secondary', true)!, url('to', true)!, url('bridge', false)];
    if (resumed && argv.range !== undefined) throw new ArgumentError('--range is the resumed restore\'s own: leave it out with --resume');
    const rangeTexts = argv.range ?? (Array.isArray(p.ranges) ? (p.ranges as string[]) : []);
    const ranges = rangeTexts.map(parseRange);
    const readyTimeout = a.readyTimeout ?? READY_DEFAULT_S;
    if (!Number.isFinite(readyTimeout) || readyTimeout < 0) throw new ArgumentError(`--ready-timeout ${readyTimeout}: give seconds, 0 or more`);
    const mgmt = a.mgmt !== undefined ? managementClient({ mgmt: a.mgmt, tokenFile: a.tokenFile }) : undefined;
    const units = resumed?.operation.progress;
    const resume =
      resumed && resumed.operation.copyId
        ? { backupId: resumed.operation.copyId, copiedBlocks: BigInt(String(units?.copiedBlocks ?? 0)), logRecords: Number(units?.logRecords ?? 0) }
        : undefined;
    if (resumed && !resume) throw new ArgumentError(`--resume ${argv.resume}: the catalog does not say which copy that restore was of: restore afresh (without --resume)`);
    const params = runParams({ secondary, to, bridge }, { ranges: rangeTexts, ...Object.fromEntries(RESUMED.map((k) => [k, a[k]])) });
    let phase = '';
    const names = { copy: 'restore: the image by EXTENDED COPY', log: '700: the appended log over the image', verify: 'restore: checking against the copy' };
    const r = await Recorder.open(argv, out, 'restore').operation('restore', { secondary: redactUrl(secondary), params, resumes: resumed?.operation }, (op) => restore({
      secondary,
      to,
      ranges,
      bridge,
      yes: argv.yes,
      fallback: a.fallback === true,
      mgmt,
      readyTimeoutMs: readyTimeout * 1000,
      resume,
      onUnit: (u) => op.progress({ copiedBlocks: u.copiedBlocks.toString(), logRecords: u.logRecords }),
      onWarning: (message) => {
        progress.finishLine();
        out.record('progress', { event: 'warning', message });
        if (!argv.json) process.stderr.write(`xcopy-agent: warning: ${message}\n`);
      },
      signal,
      onProgress: (p, done, total, blockSize, path) => {
        if (p !== phase) progress.start(p, names[p]);
        phase = p;
        progress.update(done, total, p === 'log' ? 'records' : 'blocks', { blockSize, path });
      },
    }));
    const mib = (b: bigint) => (Number(b) / 1048576).toFixed(1);
    const what = r.ranges.length === 1 && r.ranges[0].lba === 0n ? 'the whole image' : r.ranges.map((g) => `${g.lba}+${g.blocks}`).join(', ');
    return {
      summary: { ...r, ...(resume ? { resumed_from: { copied_blocks: resume.copiedBlocks, log_records: resume.logRecords } } : {}) },
      line:
        (resume ? `resumed (${resume.copiedBlocks} blocks and ${resume.logRecords} log records were done): ` : '') +
        `restore: backup ${r.backup_id}${r.label ? ` (${r.label})` : ''} onto ${r.to} by ${r.method}: ${what}, ${mib(r.restored_bytes)} MiB ` +
        `(${mib(r.xcopy_bytes)} MiB by EXTENDED COPY, ${mib(r.host_bytes)} MiB through this host)` +
        (r.method === '700' ? `, ${r.log_records} log records laid over it` : '') +
        `; checked ${r.verified === 'hashes' ? 'against its SHA-256 hashes' : 'byte for byte against the copy'}` +
        ` (${r.checked_by === 'target' ? 'hashed by the LUN\'s target' : 'read back'}) in ${r.seconds.toFixed(2)} s`,
    };
  });
}

type Resumable = Awaited<ReturnType<typeof findResumable>>;

/** `restore --files` (src/agent/restore-files.ts): to a directory, or in place. */
async function fileRestore(argv: ArgumentsCamelCase<Args>, out: Output, progress: Progress, signal: AbortSignal, resumed: Resumable | undefined, files: string[]) {
  const p = resumed?.operation.params ?? {};
  const a = withRecorded(argv, p, [...RESUMED, 'toDir', 'inPlace', 'overwrite'] as const);
  if (files.length === 0) throw new ArgumentError('--files needs at least one path (from the file system\'s root, e.g. /etc/passwd; / for everything)');
  if (a.toDir !== undefined && a.inPlace) throw new ArgumentError('--to-dir and --in-place: choose one (a directory, or the files\' blocks back onto the LUN)');
  if (a.toDir === undefined && !a.inPlace) throw new ArgumentError('--files needs --to-dir DIR (write them there) or --in-place --yes (their blocks back onto the LUN)');
  const secondary = resumedUrl(argv.secondary, p, 'secondary');
  if (secondary === undefined) throw new ArgumentError('--secondary URL or --copy ID is required (or --resume ID of an unfinished restore)');
  const [to, bridge] = [resumedUrl(argv.to, p, 'to'), resumedUrl(argv.bridge, p, 'bridge')];
  if (a.toDir !== undefined && (to !== undefined || bridge !== undefined)) throw new ArgumentError('--to and --bridge are for --in-place: --to-dir writes through this host');
  const readyTimeout = a.readyTimeout ?? READY_DEFAULT_S;
  const units = resumed?.operation.progress;
  const resume =
    resumed && resumed.operation.copyId && a.inPlace
      ? { backupId: resumed.operation.copyId, copiedBlocks: BigInt(String(units?.copiedBlocks ?? 0)), logRecords: Number(units?.logRecords ?? 0) }
      : undefined;
  const params = runParams({ secondary, to, bridge }, { files, ...Object.fromEntries([...RESUMED, 'toDir', 'inPlace', 'overwrite'].map((k) => [k, a[k as keyof Args]])) });
  let phase = '';
  const names = { toc: 'reading the file system (table of contents)', files: 'restoring files (read from the copy, checked)', copy: 'restore: the files\' blocks by EXTENDED COPY', log: '700: the appended log over them', verify: 'restore: checking against the copy' };
  const r = await Recorder.open(argv, out, 'restore').operation('restore', { secondary: redactUrl(secondary), params, resumes: resumed?.operation }, (op) =>
    restoreFiles({
      secondary,
      paths: files,
      toDir: a.toDir,
      overwrite: a.overwrite === true,
      skipExisting: resumed !== undefined,
      inPlace: a.inPlace ? { to, yes: argv.yes, bridge, fallback: a.fallback === true, mgmt: a.mgmt !== undefined ? managementClient({ mgmt: a.mgmt, tokenFile: a.tokenFile }) : undefined, readyTimeoutMs: readyTimeout * 1000 } : undefined,
      resume,
      onUnit: (u) => op.progress({ copiedBlocks: u.copiedBlocks.toString(), logRecords: u.logRecords }),
      signal,
      onWarning: (message) => {
        progress.finishLine();
        out.record('progress', { event: 'warning', message });
        if (!argv.json) process.stderr.write(`xcopy-agent: warning: ${message}\n`);
      },
      onProgress: (ph, done, total, blockSize, path) => {
        if (ph !== phase) progress.start(ph, names[ph]);
        phase = ph;
        // Files and the listing count bytes: blocks of one byte.
        progress.update(done, total, ph === 'log' ? 'records' : 'blocks', { blockSize: ph === 'files' || ph === 'toc' ? 1 : blockSize, path });
      },
    }),
  );
  return { summary: { ...r }, line: fileLine(r) };
}

function fileLine(r: FileRestoreResult): string {
  const mib = (b: number | bigint) => (Number(b) / 1048576).toFixed(1);
  const n = (k: number, one: string, many = `${one}s`) => `${k} ${k === 1 ? one : many}`;
  const what = [n(r.files, 'file'), r.directories ? n(r.directories, 'directory', 'directories') : '', r.symlinks ? n(r.symlinks, 'symbolic link') : '', r.hard_links ? n(r.hard_links, 'hard link') : '', r.special ? n(r.special, 'special file') : '']
    .filter(Boolean)
    .join(', ');
  const skipped = r.skipped.length ? `; ${r.skipped.length} not restored (${r.skipped[0].path}: ${r.skipped[0].why}${r.skipped.length > 1 ? '; ...' : ''})` : '';
  const toc = r.toc === 'image' ? ' (table of contents read from the image)' : '';
  if (r.method === 'in-place') {
    return `restore: backup ${r.backup_id}${r.label ? ` (${r.label})` : ''}: ${what} in place on ${r.to}${toc}: ${r.blocks!.ranges.length} block ranges, ${mib(r.bytes)} MiB (${mib(r.blocks!.xcopy_bytes)} MiB by EXTENDED COPY)${r.log_records ? `, ${r.log_records} log records laid over them` : ''}; checked byte for byte against the copy${skipped} in ${r.seconds.toFixed(2)} s`;
  }
  return `restore: backup ${r.backup_id}${r.label ? ` (${r.label})` : ''}: ${what} into ${r.to}${toc}, ${mib(r.bytes)} MiB, from ${r.extents_checked} extents each checked against the copy's SHA-256${r.log_records ? ` (${r.log_records} log records laid over the image)` : ''}${skipped} in ${r.seconds.toFixed(2)} s`;
}

/** `restore`: a copy back onto a LUN, whole or block ranges (docs/method.md 700 / 750; src/agent/restore.ts). */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { parseRange, restore } from '../../agent/restore';
import { ArgumentError } from '../../errors';
import { DEFAULT_RETRY } from '../../initiator/retry';
import { redactUrl } from '../../initiator/url';
import { catalogOptions, findResumable, Recorder, resumedUrl, runParams, withRecorded, type CatalogArgs } from '../catalog';
import { DEFAULT_TOKEN_FILE, managementClient } from '../management';
import { runCommand } from '../run';

export const command = 'restore';
const READY_DEFAULT_S = (DEFAULT_RETRY.becomingReadyMs ?? 60_000) / 1000;
/** The options a restore records for `--resume`, beside its URLs. */
const RESUMED = ['fallback', 'mgmt', 'tokenFile', 'readyTimeout'] as const;
export const describe = 'Restore a copy onto a LUN (the original or another), whole or --range LBA+COUNT, by EXTENDED COPY; then checked against the copy';

interface Args extends CatalogArgs {
  json: boolean;
  secondary?: string;
  to?: string;
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
    .option('to', { type: 'string', describe: 'the LUN to restore onto: the original source or another (iscsi://...) (required unless --resume)' })
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

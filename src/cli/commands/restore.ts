/** `restore`: a copy back onto a LUN, whole or block ranges (docs/method.md 700 / 750; src/agent/restore.ts). */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { parseRange, restore } from '../../agent/restore';
import { ArgumentError } from '../../errors';
import { DEFAULT_RETRY } from '../../initiator/retry';
import { redactUrl } from '../../initiator/url';
import { catalogOptions, Recorder, type CatalogArgs } from '../catalog';
import { DEFAULT_TOKEN_FILE, managementClient } from '../management';
import { runCommand } from '../run';

export const command = 'restore';
export const describe = 'Restore a copy onto a LUN (the original or another), whole or --range LBA+COUNT, by EXTENDED COPY; then checked against the copy';

interface Args extends CatalogArgs {
  json: boolean;
  secondary: string;
  to: string;
  range?: string[];
  bridge?: string;
  yes: boolean;
  fallback: boolean;
  mgmt?: string;
  tokenFile: string;
  readyTimeout: number;
}

export function builder(y: Argv): Argv<Args> {
  return catalogOptions(y)
    .option('secondary', { type: 'string', demandOption: true, describe: 'the secondary LUN of a backup (iscsi://...)' })
    .option('to', { type: 'string', demandOption: true, describe: 'the LUN to restore onto: the original source or another (iscsi://...)' })
    .option('range', { type: 'string', array: true, describe: 'blocks of the image to restore, LBA+COUNT (repeatable; default: the whole image)' })
    .option('bridge', { type: 'string', describe: 'the copy manager to send EXTENDED COPY to (default: the one serving --to)' })
    .option('yes', { type: 'boolean', default: false, describe: 'required: the LUN restored onto loses what it held there' })
    .option('fallback', { type: 'boolean', default: false, describe: 'copy through this host when no copy manager can (off: fail instead)' })
    // Optional here (backup needs it): without it the check reads the restored LUN back.
    .option('mgmt', { type: 'string', describe: 'the management API of the target serving --to (http://HOST:PORT or unix:/path): it hashes the restored LUN for the check, instead of a read back through iSCSI' })
    .option('token-file', { type: 'string', default: DEFAULT_TOKEN_FILE, describe: 'bearer token file of that target (with --mgmt)' })
    .option('ready-timeout', { type: 'number', default: (DEFAULT_RETRY.becomingReadyMs ?? 60_000) / 1000, describe: 'seconds to wait for --to while it is becoming ready (its target resuming a snapshot after a restart)' })
    .example('$0 restore --secondary iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/2 --to iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/0 --yes', '')
    .example('$0 restore --secondary URL --to URL --mgmt http://127.0.0.1:3261 --yes', 'the target serving --to hashes the restored LUN for the check')
    .example('$0 restore --secondary URL --to URL --range 2048+4096 --range 1000000+8 --yes', '') as unknown as Argv<Args>;
}

export function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  return runCommand(argv.json, 'restore', async ({ out, progress, signal }) => {
    const ranges = (argv.range ?? []).map(parseRange);
    if (!Number.isFinite(argv.readyTimeout) || argv.readyTimeout < 0) throw new ArgumentError(`--ready-timeout ${argv.readyTimeout}: give seconds, 0 or more`);
    const mgmt = argv.mgmt !== undefined ? managementClient({ mgmt: argv.mgmt, tokenFile: argv.tokenFile }) : undefined;
    let phase = '';
    const names = { copy: 'restore: the image by EXTENDED COPY', log: '700: the appended log over the image', verify: 'restore: checking against the copy' };
    const r = await Recorder.open(argv, out, 'restore').operation('restore', { secondary: redactUrl(argv.secondary) }, () => restore({
      secondary: argv.secondary,
      to: argv.to,
      ranges,
      bridge: argv.bridge,
      yes: argv.yes,
      fallback: argv.fallback,
      mgmt,
      readyTimeoutMs: argv.readyTimeout * 1000,
      onWarning: (message) => {
        progress.finishLine();
        out.record('progress', { event: 'warning', message });
        if (!argv.json) process.stderr.write(`xcopy-agent: warning: ${message}\n`);
      },
      signal,
      onProgress: (p, done, total, blockSize) => {
        if (p !== phase) progress.start(p, names[p]);
        phase = p;
        progress.update(done, total, p === 'log' ? 'records' : 'blocks', blockSize);
      },
    }));
    const mib = (b: bigint) => (Number(b) / 1048576).toFixed(1);
    const what = r.ranges.length === 1 && r.ranges[0].lba === 0n ? 'the whole image' : r.ranges.map((g) => `${g.lba}+${g.blocks}`).join(', ');
    return {
      summary: { ...r },
      line:
        `restore: backup ${r.backup_id}${r.label ? ` (${r.label})` : ''} onto ${r.to} by ${r.method}: ${what}, ${mib(r.restored_bytes)} MiB ` +
        `(${mib(r.xcopy_bytes)} MiB by EXTENDED COPY, ${mib(r.host_bytes)} MiB through this host)` +
        (r.method === '700' ? `, ${r.log_records} log records laid over it` : '') +
        `; checked ${r.verified === 'hashes' ? 'against its SHA-256 hashes' : 'byte for byte against the copy'}` +
        ` (${r.checked_by === 'target' ? 'hashed by the LUN\'s target' : 'read back'}) in ${r.seconds.toFixed(2)} s`,
    };
  });
}

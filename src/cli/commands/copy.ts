/**
 * `copy`: LUN to LUN through a copy manager (EXTENDED COPY), falling back to host READ/WRITE;
 * its progress in the one display of the long commands (../progress.ts).
 */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { ArgumentError } from '../../errors';
import { xcopyCopy } from '../../agent/xcopy-copy';
import { redactUrl } from '../../initiator/url';
import { runCommand } from '../run';

export const command = 'copy';
export const describe = 'Copy a LUN (or a block range) to another LUN with SCSI EXTENDED COPY, like ddpt oflag=xcopy';

interface Args {
  json: boolean;
  from: string;
  to: string;
  bridge?: string;
  count?: string;
  skip?: string;
  seek?: string;
  listId?: number;
  fallback: boolean;
  progress: boolean;
}

export function builder(y: Argv): Argv<Args> {
  return y
    .option('from', { type: 'string', demandOption: true, describe: 'source LUN (iscsi://...)' })
    .option('to', { type: 'string', demandOption: true, describe: 'destination LUN (iscsi://...)' })
    .option('bridge', { type: 'string', describe: 'copy manager to send EXTENDED COPY to (default: the destination)' })
    .option('count', { type: 'string', describe: 'blocks to copy (default: the rest of the source)' })
    .option('skip', { type: 'string', describe: 'source start LBA (default 0)' })
    .option('seek', { type: 'string', describe: 'destination start LBA (default 0)' })
    .option('list-id', { type: 'number', describe: 'first LIST IDENTIFIER (1..255, default 1)' })
    .option('fallback', { type: 'boolean', default: true, describe: 'copy through this host when no copy manager can (--no-fallback: fail instead)' })
    .option('progress', { type: 'boolean', default: false, describe: 'progress lines on stderr even when it is not a terminal (on a terminal the bar is always shown)' })
    .example('$0 copy --from iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/0 --to iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/1', '')
    .example('$0 copy --from URL --to URL --skip 2048 --seek 0 --count 65536 --no-fallback --json', '') as unknown as Argv<Args>;
}

function lba(text: string | undefined, what: string): bigint | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new ArgumentError(`${what} ${JSON.stringify(text)} is not a block number`);
  return BigInt(text);
}

export function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  // Ctrl-C / SIGTERM (runCommand's signal): stop the copy manager's copies too (COPY OPERATION ABORT), then exit 130.
  return runCommand(
    argv.json,
    'copy',
    async ({ progress, signal }) => {
      if (argv.listId !== undefined && (!Number.isInteger(argv.listId) || argv.listId < 1 || argv.listId > 255)) {
        throw new ArgumentError(`--list-id ${argv.listId} must be 1..255 (LID1 list identifiers are one byte)`);
      }
      const range = { count: lba(argv.count, '--count'), skip: lba(argv.skip, '--skip'), seek: lba(argv.seek, '--seek') };
      // The phase begins now: its rate and ETA count from here.
      progress.start('copy', `copy ${redactUrl(argv.from)} → ${redactUrl(argv.to)}`);
      const r = await xcopyCopy({
        signal,
        from: argv.from,
        to: argv.to,
        bridge: argv.bridge,
        ...range,
        listId: argv.listId,
        fallback: argv.fallback,
        onProgress: (done, total, path, blockSize) => {
          progress.update(done, total, 'blocks', { blockSize, path, fields: { copied_blocks: done, total_blocks: total } });
        },
      });
      const mib = (b: bigint) => (Number(b) / 1048576).toFixed(1);
      return {
        summary: { ...r },
        line:
          `copy: ${r.blocks} blocks of ${r.block_size} bytes in ${r.seconds.toFixed(2)} s — ` +
          `${mib(r.xcopy_bytes)} MiB by EXTENDED COPY (${r.extended_copy_commands} commands), ${mib(r.host_bytes)} MiB through this host` +
          (r.fallback_reason ? ` (fallback: ${r.fallback_reason})` : ''),
      };
    },
    { progressLines: argv.progress },
  );
}

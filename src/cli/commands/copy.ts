/** `copy`: LUN to LUN through a copy manager (EXTENDED COPY), falling back to host READ/WRITE. */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { ArgumentError } from '../../errors';
import { xcopyCopy } from '../../agent/xcopy-copy';
import { Output } from '../output';

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
    .option('progress', { type: 'boolean', default: false, describe: 'progress lines on stderr (NDJSON records with --json)' })
    .example('$0 copy --from iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/0 --to iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/1', '')
    .example('$0 copy --from URL --to URL --skip 2048 --seek 0 --count 65536 --no-fallback --json', '') as unknown as Argv<Args>;
}

function lba(text: string | undefined, what: string): bigint | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new ArgumentError(`${what} ${JSON.stringify(text)} is not a block number`);
  return BigInt(text);
}

export async function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  const out = new Output(argv.json);
  try {
    if (argv.listId !== undefined && (!Number.isInteger(argv.listId) || argv.listId < 1 || argv.listId > 255)) {
      throw new ArgumentError(`--list-id ${argv.listId} must be 1..255 (LID1 list identifiers are one byte)`);
    }
    let last = 0;
    // Ctrl-C / SIGTERM: stop the copy manager's copies too (COPY OPERATION ABORT), then exit 130.
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const r = await xcopyCopy({
      signal: stop.signal,
      from: argv.from,
      to: argv.to,
      bridge: argv.bridge,
      count: lba(argv.count, '--count'),
      skip: lba(argv.skip, '--skip'),
      seek: lba(argv.seek, '--seek'),
      listId: argv.listId,
      fallback: argv.fallback,
      onProgress: (done, total, path) => {
        if (!argv.progress || Date.now() - last < 500) return;
        last = Date.now();
        out.record('progress', { copied_blocks: done, total_blocks: total, path });
        if (!argv.json) process.stderr.write(`copy: ${((Number(done) / Number(total)) * 100).toFixed(1)}% (${path})\n`);
      },
    });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    out.record('summary', { command: 'copy', ...r });
    const mib = (b: bigint) => (Number(b) / 1048576).toFixed(1);
    out.line(
      `copy: ${r.blocks} blocks of ${r.block_size} bytes in ${r.seconds.toFixed(2)} s — ` +
        `${mib(r.xcopy_bytes)} MiB by EXTENDED COPY (${r.extended_copy_commands} commands), ${mib(r.host_bytes)} MiB through this host` +
        (r.fallback_reason ? ` (fallback: ${r.fallback_reason})` : ''),
    );
  } catch (err) {
    process.exitCode = out.error(err);
  }
}

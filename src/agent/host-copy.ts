/**
 * Host-based copy: READ(16) from one LUN, WRITE(16) to another, pipelined (several commands in
 * flight). This is the fallback path when no copy manager can do the work; the bulk path is the
 * copy manager's EXTENDED COPY.
 */
import { AgentError, ArgumentError } from '../errors';
import type { IscsiSession } from '../initiator/session';

export interface HostCopyOptions {
  /** Source and destination start LBAs and the number of blocks (default: the whole source). */
  skip?: bigint;
  seek?: bigint;
  count?: bigint;
  /** Bytes per command (default 1 MiB, rounded down to whole blocks). */
  chunkBytes?: number;
  /** Commands in flight (default 8). */
  depth?: number;
  onProgress?: (copiedBlocks: bigint, totalBlocks: bigint) => void;
  /** Stops issuing commands; the ones in flight finish; rejects with ERR_INTERRUPTED. */
  signal?: AbortSignal;
}

export interface HostCopyResult {
  blocks: bigint;
  bytes: bigint;
  seconds: number;
}

export async function hostCopy(src: IscsiSession, dst: IscsiSession, opts: HostCopyOptions = {}): Promise<HostCopyResult> {
  const bs = await src.blockSize();
  const dbs = await dst.blockSize();
  if (bs !== dbs) throw new ArgumentError(`block sizes differ: source ${bs}, destination ${dbs} (a host copy needs equal block sizes)`);
  const srcCap = (await src.readCapacity16()).returnedLogicalBlockAddress + 1n;
  const dstCap = (await dst.readCapacity16()).returnedLogicalBlockAddress + 1n;
  const skip = opts.skip ?? 0n;
  const seek = opts.seek ?? 0n;
  const count = opts.count ?? srcCap - skip;
  if (skip + count > srcCap) throw new ArgumentError(`source range ${skip}+${count} ends past its ${srcCap} blocks`);
  if (seek + count > dstCap) {
    throw new ArgumentError(`destination too small: ${seek + count} blocks needed, ${dstCap} present (grow it or copy fewer blocks)`);
  }
  const per = BigInt(Math.max(1, Math.floor((opts.chunkBytes ?? 1024 * 1024) / bs)));
  const depth = Math.max(1, opts.depth ?? 8);
  const t0 = process.hrtime.bigint();
  let next = 0n;
  let copied = 0n;
  const worker = async () => {
    while (next < count && opts.signal?.aborted !== true) {
      const at = next;
      const n = count - at < per ? count - at : per;
      next += n;
      const data = await src.read16(skip + at, Number(n));
      await dst.write16(seek + at, data);
      copied += n;
      opts.onProgress?.(copied, count);
    }
  };
  await Promise.all(Array.from({ length: depth }, worker));
  await dst.synchronizeCache16();
  if (opts.signal?.aborted === true) {
    throw new AgentError('ERR_INTERRUPTED', `copy interrupted after ${copied} of ${count} blocks (written blocks were flushed) — run the copy again to finish it`);
  }
  return { blocks: count, bytes: count * BigInt(bs), seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

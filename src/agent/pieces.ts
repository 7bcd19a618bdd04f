/**
 * Work over a range of blocks cut into pieces, several in flight: the agent's host-side loops
 * (zeroing a LUN, reading a secondary into a file) share it.
 */
import { AgentError } from '../errors';

export interface PiecesOptions {
  /** Pieces in flight at once. */
  depth: number;
  /** Stops issuing pieces (those in flight finish); then ERR_INTERRUPTED with `interrupted(done)`. */
  signal?: AbortSignal;
  /** The message of ERR_INTERRUPTED, given the blocks done. */
  interrupted: (doneBlocks: bigint) => string;
  /** After each piece, with the blocks done so far. */
  onProgress?: (doneBlocks: bigint, totalBlocks: bigint) => void;
}

/**
 * Calls `fn(at, n)` for [0, count) in pieces of at most `per` blocks, issued in order, `depth` at
 * once. The first failure stops issuing more and is thrown once the pieces in flight finish.
 */
export async function inPieces(count: bigint, per: bigint, fn: (at: bigint, n: bigint) => Promise<void>, o: PiecesOptions): Promise<void> {
  let next = 0n;
  let done = 0n;
  let failure: unknown;
  const worker = async () => {
    while (next < count && failure === undefined && o.signal?.aborted !== true) {
      const at = next;
      const n = count - at < per ? count - at : per;
      next += n;
      try {
        await fn(at, n);
      } catch (err) {
        failure ??= err;
        return;
      }
      done += n;
      o.onProgress?.(done, count);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.depth) }, worker));
  if (failure !== undefined) throw failure;
  if (o.signal?.aborted === true && done < count) throw new AgentError('ERR_INTERRUPTED', o.interrupted(done));
}

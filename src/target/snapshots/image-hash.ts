/**
 * SHA-256 of consecutive pieces of a snapshot's image as of institution (the view's reads,
 * SnapshotSession.readImage), computed in the target where the data is. The agent records the
 * per-extent hashes of the image as of 602 in the secondary's metadata
 * (docs/secondary-format.md, "Extent hash table") while the outboard copy runs, instead of
 * reading the image back through iSCSI after it (docs/backup.md, "Hashes from the view").
 *
 * The digests run on libuv's thread pool (src/native/digest.ts), never on the event loop that
 * serves the hosts' commands; each lane reads into a buffer of its own, reused (a fresh buffer
 * per piece costs its page faults).
 */
import { createHash } from 'node:crypto';
import { sha256Async } from '../../native/digest';
import { AgentError } from '../../errors';

/** What the hashing reads: the image as of institution. */
export interface ImageSource {
  readImage(lba: bigint, count: number, into?: Buffer): Promise<Buffer>;
}

/** At most this many bytes per call (a call answers in well under a second here). */
export const MAX_HASH_CALL_BYTES = 1024 * 1024 * 1024;
/** At most this many pieces per call (the answer is 65 bytes of JSON per piece). */
export const MAX_HASH_PIECES = 16384;
/** Pieces read and hashed at once: one reading while the other hashes, on two cores. */
const IN_FLIGHT = 2;
/** A piece is read in parts of at most this size (a view read of one piece is not unbounded). */
const READ_BYTES = 1024 * 1024;

export interface HashRange {
  /** The first block. */
  lba: bigint;
  /** Blocks in all: the range [lba, lba + blocks). */
  blocks: bigint;
  /** Blocks per piece; the last piece is shorter when `blocks` is not a multiple. */
  pieceBlocks: number;
  blockSize: number;
}

/** Validates a range against the image's size and the per-call bounds (ERR_INVALID_ARG). */
export function checkHashRange(r: HashRange, imageBlocks: bigint): void {
  if (r.blocks < 1n || r.pieceBlocks < 1) throw new AgentError('ERR_INVALID_ARG', 'blocks and piece_blocks must be at least 1');
  if (r.lba < 0n || r.lba + r.blocks > imageBlocks) throw new AgentError('ERR_INVALID_ARG', `blocks [${r.lba}, ${r.lba + r.blocks}) are not all in the image (${imageBlocks} blocks)`);
  if (r.blocks * BigInt(r.blockSize) > BigInt(MAX_HASH_CALL_BYTES)) throw new AgentError('ERR_INVALID_ARG', `at most ${MAX_HASH_CALL_BYTES} bytes per call: split the range`);
  if ((r.blocks + BigInt(r.pieceBlocks) - 1n) / BigInt(r.pieceBlocks) > BigInt(MAX_HASH_PIECES)) throw new AgentError('ERR_INVALID_ARG', `at most ${MAX_HASH_PIECES} pieces per call: split the range, or larger pieces`);
}

/** The SHA-256 digest of each piece of the range, in order. */
export async function hashImagePieces(src: ImageSource, r: HashRange): Promise<Buffer[]> {
  const pieces = Number((r.blocks + BigInt(r.pieceBlocks) - 1n) / BigInt(r.pieceBlocks));
  const out: Buffer[] = new Array<Buffer>(pieces);
  let next = 0;
  const worker = async () => {
    let buf: Buffer | undefined;
    for (let i = next++; i < pieces; i = next++) {
      const first = r.lba + BigInt(i) * BigInt(r.pieceBlocks);
      const end = first + BigInt(r.pieceBlocks) < r.lba + r.blocks ? first + BigInt(r.pieceBlocks) : r.lba + r.blocks;
      const count = Number(end - first);
      if (count * r.blockSize > READ_BYTES) {
        out[i] = await hashLarge(src, first, count, r.blockSize);
        continue;
      }
      buf ??= Buffer.allocUnsafe(READ_BYTES);
      out[i] = await sha256Async(await src.readImage(first, count, buf));
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, pieces) }, worker));
  return out;
}

/** A piece over READ_BYTES (extents up to 1 GiB), read a part at a time into a streaming hash. */
async function hashLarge(src: ImageSource, lba: bigint, count: number, blockSize: number): Promise<Buffer> {
  const step = Math.floor(READ_BYTES / blockSize);
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(step * blockSize);
  for (let at = 0; at < count; at += step) h.update(await src.readImage(lba + BigInt(at), Math.min(step, count - at), buf));
  return h.digest();
}

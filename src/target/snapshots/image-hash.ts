/**
 * SHA-256 of consecutive pieces of a snapshot's image as of institution (the view's reads,
 * SnapshotSession.readImage), computed in the target where the data is. The agent records the
 * per-extent hashes of the image as of 602 in the secondary's metadata
 * (docs/secondary-format.md, "Extent hash table") while the outboard copy runs, instead of
 * reading the image back through iSCSI after it (docs/backup.md, "Hashes from the view").
 *
 * The digests run on libuv's thread pool (src/native/digest.ts), never on the event loop that
 * serves the hosts' commands.
 */
import { createHash } from 'node:crypto';
import { sha256Pieces } from '../../native/digest';
import { AgentError } from '../../errors';

/** What the hashing reads: the image as of institution. */
export interface ImageSource {
  readImage(lba: bigint, count: number, into?: Buffer): Promise<Buffer>;
}

/** At most this many bytes per call (a call answers in well under a second here). */
export const MAX_HASH_CALL_BYTES = 1024 * 1024 * 1024;
/** At most this many pieces per call (the answer is 65 bytes of JSON per piece). */
export const MAX_HASH_PIECES = 16384;
/**
 * Lanes over consecutive parts of the range; each keeps one core digesting while it reads its
 * next batch. Two: one lane (one core) takes ≈ 0.8 s per GiB here and does not finish within the
 * copy beside it; two finish within it, at some cost to the copy (docs/backup.md).
 */
const LANES = 2;
/** Pieces are read (and digested, in one job) in batches of at most this many bytes. */
const BATCH_BYTES = 4 * 1024 * 1024;
/** A piece larger than this is read a part at a time into a streaming hash. */
const READ_BYTES = BATCH_BYTES;

export interface HashRange {
  /** The first block. */
  lba: bigint;
  /** Blocks in all: the range [lba, lba + blocks). */
  blocks: bigint;
  /** Blocks per piece; the last piece is shorter when `blocks` is not a multiple. */
  pieceBlocks: number;
  blockSize: number;
}

/** Validates a range against the image's (or LUN's: `what`) size and the per-call bounds (ERR_INVALID_ARG). */
export function checkHashRange(r: HashRange, imageBlocks: bigint, what = 'the image'): void {
  if (r.blocks < 1n || r.pieceBlocks < 1) throw new AgentError('ERR_INVALID_ARG', 'blocks and piece_blocks must be at least 1');
  if (r.lba < 0n || r.lba + r.blocks > imageBlocks) throw new AgentError('ERR_INVALID_ARG', `blocks [${r.lba}, ${r.lba + r.blocks}) are not all in ${what} (${imageBlocks} blocks)`);
  if (r.blocks * BigInt(r.blockSize) > BigInt(MAX_HASH_CALL_BYTES)) throw new AgentError('ERR_INVALID_ARG', `at most ${MAX_HASH_CALL_BYTES} bytes per call: split the range`);
  if ((r.blocks + BigInt(r.pieceBlocks) - 1n) / BigInt(r.pieceBlocks) > BigInt(MAX_HASH_PIECES)) throw new AgentError('ERR_INVALID_ARG', `at most ${MAX_HASH_PIECES} pieces per call: split the range, or larger pieces`);
}

/**
 * The SHA-256 digest of each piece of the range, in order. The pieces are read in batches of up
 * to BATCH_BYTES, and each batch's digests are computed in one thread-pool job while the next
 * batch is read (two buffers, reused, per lane): few hops between the event loop and the pool
 * per megabyte, and no fresh buffer to fault in.
 */
export async function hashImagePieces(src: ImageSource, r: HashRange): Promise<Buffer[]> {
  const pieces = Number((r.blocks + BigInt(r.pieceBlocks) - 1n) / BigInt(r.pieceBlocks));
  const out: Buffer[] = new Array<Buffer>(pieces);
  const pieceBytes = r.pieceBlocks * r.blockSize;
  const end = r.lba + r.blocks;
  if (pieceBytes > READ_BYTES) {
    for (let i = 0; i < pieces; i++) {
      const first = r.lba + BigInt(i) * BigInt(r.pieceBlocks);
      const count = Number((first + BigInt(r.pieceBlocks) < end ? first + BigInt(r.pieceBlocks) : end) - first);
      out[i] = await hashLarge(src, first, count, r.blockSize);
    }
    return out;
  }
  const perBatch = Math.max(1, Math.floor(BATCH_BYTES / pieceBytes));
  const batches = Math.ceil(pieces / perBatch);
  const lane = async (from: number, to: number) => {
    const bufs = [Buffer.allocUnsafe(perBatch * pieceBytes), Buffer.allocUnsafe(perBatch * pieceBytes)];
    const read = (b: number) => {
      const first = r.lba + BigInt(b * perBatch) * BigInt(r.pieceBlocks);
      const upTo = first + BigInt(perBatch) * BigInt(r.pieceBlocks) < end ? first + BigInt(perBatch) * BigInt(r.pieceBlocks) : end;
      const p = src.readImage(first, Number(upTo - first), bufs[b % 2]);
      p.catch(() => undefined); // awaited below; a failure while the previous batch hashes is not unhandled
      return p;
    };
    let ahead = from < to ? read(from) : undefined;
    for (let b = from; b < to; b++) {
      const data = await ahead!;
      if (b + 1 < to) ahead = read(b + 1);
      const digests = await sha256Pieces(data, pieceBytes);
      for (let k = 0; k < digests.length; k++) out[b * perBatch + k] = digests[k];
    }
  };
  const n = Math.max(1, Math.min(LANES, batches));
  const cut = Math.ceil(batches / n);
  await Promise.all(Array.from({ length: n }, (_, k) => lane(k * cut, Math.min(batches, (k + 1) * cut))));
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

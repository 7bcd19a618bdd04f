/**
 * The target's hashing of a snapshot's image (src/target/snapshots/image-hash.ts) over an image
 * held in memory: each piece's SHA-256 against node:crypto's of the same bytes (a reference
 * independent of the addon), for piece sizes that make one batch, many batches, a last piece
 * shorter, and pieces larger than a batch; and the per-call bounds.
 */
import crypto from 'node:crypto';
import { checkHashRange, hashImagePieces, MAX_HASH_CALL_BYTES, MAX_HASH_PIECES } from '../../../../src/target/snapshots/image-hash';

const BS = 512;
const image = crypto.randomBytes(12 * 1024 * 1024 + 7 * BS); // 12 MiB and 7 blocks
const src = {
  reads: 0,
  async readImage(lba: bigint, count: number, into?: Buffer): Promise<Buffer> {
    this.reads++;
    const from = Number(lba) * BS;
    const out = into && into.length >= count * BS ? into.subarray(0, count * BS) : Buffer.alloc(count * BS);
    image.copy(out, 0, from, from + count * BS);
    return out;
  },
};
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const reference = (lba: number, blocks: number, pieceBlocks: number) => {
  const out: string[] = [];
  for (let at = lba; at < lba + blocks; at += pieceBlocks) out.push(sha(image.subarray(at * BS, Math.min(at + pieceBlocks, lba + blocks) * BS)));
  return out;
};

test.each([
  ['1 MiB pieces over the whole image (several batches, both lanes, the last piece 7 blocks)', 0, image.length / BS, 2048],
  ['odd pieces from an odd block', 3, 20_000, 777],
  ['one piece smaller than a block run', 100, 5, 8],
  ['pieces larger than a batch (5 MiB: streamed)', 0, image.length / BS, 10_240],
])('%s', async (_name, lba, blocks, pieceBlocks) => {
  const got = await hashImagePieces(src, { lba: BigInt(lba), blocks: BigInt(blocks), pieceBlocks, blockSize: BS });
  expect(got.map((d) => d.toString('hex'))).toEqual(reference(lba, blocks, pieceBlocks));
});

test('1 MiB pieces are read four at a time, not one read per piece', async () => {
  src.reads = 0;
  await hashImagePieces(src, { lba: 0n, blocks: 8n * 2048n, pieceBlocks: 2048, blockSize: BS });
  expect(src.reads).toBe(2);
});

test('the bounds of one call', () => {
  const blocks = BigInt(image.length / BS);
  expect(() => checkHashRange({ lba: 0n, blocks: blocks + 1n, pieceBlocks: 8, blockSize: BS }, blocks)).toThrow(/not all in the image/);
  expect(() => checkHashRange({ lba: 0n, blocks: 0n, pieceBlocks: 8, blockSize: BS }, blocks)).toThrow(/at least 1/);
  expect(() => checkHashRange({ lba: 0n, blocks: BigInt(MAX_HASH_CALL_BYTES / BS) + 1n, pieceBlocks: 1 << 20, blockSize: BS }, 1n << 40n)).toThrow(/bytes per call/);
  expect(() => checkHashRange({ lba: 0n, blocks: BigInt(MAX_HASH_PIECES + 1), pieceBlocks: 1, blockSize: BS }, 1n << 40n)).toThrow(/pieces per call/);
  expect(() => checkHashRange({ lba: 0n, blocks, pieceBlocks: 2048, blockSize: BS }, blocks)).not.toThrow();
});

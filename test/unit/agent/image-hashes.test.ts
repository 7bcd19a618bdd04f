/**
 * imageExtentHashes: the SHA-256 of each extent of the image as of 602, with an appended log's
 * records laid over it. The expected hashes are computed here from an image patched by plain
 * Buffer copies, independent of the overlay code; random records (fixed seeds) cross extent
 * boundaries, start and end inside extents, and come in any order.
 */
import crypto from 'node:crypto';
import fc from 'fast-check';
import { imageExtentHashes } from '../../../src/agent/image-hashes';
import type { DataRecordRef } from '../../../src/obf/log';
import * as secondary from '../../../src/secondary';

const B = 512;
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const reader = (bytes: Buffer, calls?: Array<[bigint, number]>) => async (lba: bigint, n: number) => {
  calls?.push([lba, n]);
  return Buffer.from(bytes.subarray(Number(lba) * B, (Number(lba) + n) * B));
};

/** A layout of `imageBlocks` blocks in extents of `extentBlocks` blocks. */
function layoutOf(imageBlocks: number, extentBlocks: number): secondary.SecondaryLayout {
  return secondary.planLayout({ blockSize: B, capacityBlocks: 1_000_000n, imageBlocks: BigInt(imageBlocks), mode: 'append', logBlocksMax: 10_000n, extentBytes: extentBlocks * B });
}

/** Records at random non-overlapping source ranges, their data at random places of an OBF. */
function recordsOf(seed: number, imageBlocks: number): { records: DataRecordRef[]; obf: Buffer } {
  const r = fc.sample(fc.array(fc.tuple(fc.nat(imageBlocks - 1), fc.integer({ min: 1, max: 20 })), { maxLength: 12 }), { seed, numRuns: 1 })[0];
  const taken = new Set<number>();
  const records: DataRecordRef[] = [];
  const obf = crypto.randomBytes(4000 * B);
  let dataLba = 1n;
  for (const [start, len] of r) {
    const n = Math.min(len, imageBlocks - start);
    if (Array.from({ length: n }, (_, i) => start + i).some((b) => taken.has(b))) continue; // first capture wins: no overlaps
    for (let i = 0; i < n; i++) taken.add(start + i);
    records.push({ sequence: BigInt(records.length + 1), obfLba: dataLba - 1n, dataLba, sourceLba: BigInt(start), sourceBlocks: n, dataBlocks: n, crc: 0, timeMs: 0 });
    dataLba += BigInt(n + 1);
  }
  return { records: records.reverse(), obf }; // any order
}

test.each([
  [1, 40, 8],
  [2, 41, 8], // a short last extent
  [3, 64, 1],
  [4, 100, 64],
])('seed %i: image of %i blocks, extents of %i blocks: the hashes of the image with the records laid over', async (seed, imageBlocks, extentBlocks) => {
  const L = layoutOf(imageBlocks, extentBlocks);
  const image = crypto.randomBytes(imageBlocks * B);
  const { records, obf } = recordsOf(seed, imageBlocks);
  expect(records.length).toBeGreaterThan(1);
  const patched = Buffer.from(image);
  for (const rec of records) obf.copy(patched, Number(rec.sourceLba) * B, Number(rec.dataLba) * B, (Number(rec.dataLba) + rec.sourceBlocks) * B);
  const expected: string[] = [];
  for (let o = 0; o < patched.length; o += extentBlocks * B) expected.push(sha(patched.subarray(o, Math.min(o + extentBlocks * B, patched.length))));
  const got = await imageExtentHashes({ layout: L, read: reader(image), overlay: { records, read: reader(obf) } });
  expect(got.map((h) => h.toString('hex'))).toEqual(expected);
  // Without the overlay: the image as it is.
  const plain = await imageExtentHashes({ layout: L, read: reader(image) });
  expect(plain[0].toString('hex')).toBe(sha(image.subarray(0, Math.min(extentBlocks, imageBlocks) * B)));
});

test('reads each extent once, stops after `extents`, reports each and can be stopped before one', async () => {
  const L = layoutOf(40, 8);
  const calls: Array<[bigint, number]> = [];
  const done: number[] = [];
  const got = await imageExtentHashes({ layout: L, read: reader(crypto.randomBytes(40 * B), calls), extents: 3, onExtent: (d, total) => done.push(d * 10 + total) });
  expect(got).toHaveLength(3);
  expect(calls).toEqual([
    [0n, 8],
    [8n, 8],
    [16n, 8],
  ]);
  expect(done).toEqual([13, 23, 33]);
  const stop = imageExtentHashes({
    layout: L,
    read: reader(Buffer.alloc(40 * B)),
    beforeExtent: (i) => {
      if (i === 2) throw new Error('interrupted');
    },
  });
  await expect(stop).rejects.toThrow('interrupted');
});

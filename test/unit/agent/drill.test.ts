/**
 * The drill's stamp check (step 7) on a LUN in memory: it passes an image of generations 1 and 2
 * and names the first block that was written after the institution, misplaced or not stamped.
 * The whole drill runs in test/integration/drill.test.ts.
 */
import { verifyStamps } from '../../../src/agent/drill';
import { stampBlocks } from '../../../src/agent/stamp';

const BS = 512;
/** 2.5 MiB: two whole 1 MiB reads and a short one. */
const BLOCKS = 5 * 1024;

/** A LUN in memory holding generation 1, with `patch` applied; read16 as the initiator's. */
function lun(patch: (image: Buffer) => void = () => undefined) {
  const image = stampBlocks(0n, BLOCKS, BS, 1n);
  patch(image);
  const reads: [bigint, number][] = [];
  return {
    reads,
    read16: async (lba: bigint, n: number) => {
      reads.push([lba, n]);
      return image.subarray(Number(lba) * BS, (Number(lba) + n) * BS);
    },
  };
}

test('an image of generations 1 and 2 passes, every block checked, read 1 MiB at a time', async () => {
  const d = lun((image) => stampBlocks(3000n, 64, BS, 2n).copy(image, 3000 * BS));
  await expect(verifyStamps(d, { blockSize: BS, blocks: BLOCKS })).resolves.toBe(BLOCKS);
  expect(d.reads).toEqual([
    [0n, 2048],
    [2048n, 2048],
    [4096n, 1024],
  ]);
});

test.each([
  ['a block written after the institution', (image: Buffer) => stampBlocks(4100n, 8, BS, 3n).copy(image, 4100 * BS), /^drill verification failed at LBA 4100: generation 3, written after the institution, is in the image$/],
  ['a block at the wrong address', (image: Buffer) => stampBlocks(7n, 1, BS, 1n).copy(image, 9 * BS), /^drill verification failed at LBA 9: block of LBA 7 found at LBA 9$/],
  ['a blank block', (image: Buffer) => image.fill(0, 2048 * BS, 2049 * BS), /^drill verification failed at LBA 2048: no stamp$/],
])('%s fails the drill, naming its LBA', async (_name, patch, message) => {
  await expect(verifyStamps(lun(patch), { blockSize: BS, blocks: BLOCKS })).rejects.toThrow(message);
  await expect(verifyStamps(lun(patch), { blockSize: BS, blocks: BLOCKS })).rejects.toMatchObject({ code: 'ERR_INTERNAL' });
});

import fc from 'fast-check';
import { checkBlock, stampBlocks } from '../../../src/agent/stamp';

describe('self-describing blocks', () => {
  test('each block tells its LBA and sequence', () => {
    const b = stampBlocks(100n, 3, 512, 7n);
    expect(b.length).toBe(1536);
    for (let i = 0; i < 3; i++) {
      expect(checkBlock(b.subarray(i * 512, (i + 1) * 512), 100n + BigInt(i), 7n)).toEqual({ ok: true, lba: 100n + BigInt(i), sequence: 7n });
    }
  });

  test('a block at the wrong address, of another write, corrupted or blank is caught', () => {
    const b = stampBlocks(5n, 1, 4096, 2n);
    expect(checkBlock(b, 6n).why).toBe('block of LBA 5 found at LBA 6');
    expect(checkBlock(b, 5n, 3n).why).toBe('sequence 2, expected 3');
    const bad = Buffer.from(b);
    bad[1000] ^= 1;
    expect(checkBlock(bad, 5n).why).toBe('checksum mismatch');
    expect(checkBlock(Buffer.alloc(512), 0n).why).toBe('no stamp');
  });

  test('any single flipped bit is detected (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 1n << 40n }), fc.nat(512 * 8 - 1), (lba, bit) => {
        const b = stampBlocks(lba, 1, 512, 1n);
        b[bit >> 3] ^= 1 << (bit & 7);
        expect(checkBlock(b, lba, 1n).ok).toBe(false);
      }),
    );
  });
});

import crypto from 'node:crypto';
import { ArgumentError } from '../../../src/errors';
import { MemoryStore } from '../../../src/store/memory';
import { StoreError } from '../../../src/store/store';
import { storeContract } from './contract';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

storeContract('memory, 512-byte blocks, 64 KiB chunks', async () => new MemoryStore({ blocks: 2048n + 7n, blockSize: 512, chunkBytes: 64 * 1024 }), { numRuns: 150 });
storeContract('memory, 4096-byte blocks, 8 KiB chunks', async () => new MemoryStore({ blocks: 300n, blockSize: 4096, chunkBytes: 8192 }), { numRuns: 150 });

describe('MemoryStore', () => {
  test('a 1 TiB store costs nothing until written, and only a chunk per written chunk', async () => {
    const s = new MemoryStore({ blocks: (1024n * 1024n * 1024n * 1024n) / 512n, blockSize: 512 });
    expect(s.allocatedBytes).toBe(0);
    expect(await s.extents(0n, s.blocks)).toEqual([{ lba: 0n, blocks: s.blocks, mapped: false }]);
    const far = s.blocks - 8n;
    const data = crypto.randomBytes(8 * 512);
    await s.write(far, data);
    expect(s.allocatedBytes).toBe(MiB);
    expect(sha256(await s.read(far, 8))).toBe(sha256(data));
    expect(await s.read(0n, 4)).toEqual(Buffer.alloc(2048));
    const chunkBlocks = BigInt(MiB / 512);
    expect(await s.extents(0n, s.blocks)).toEqual([
      { lba: 0n, blocks: s.blocks - chunkBlocks, mapped: false },
      { lba: s.blocks - chunkBlocks, blocks: chunkBlocks, mapped: true },
    ]);
    await s.close();
  });

  test('zeros written to a hole allocate nothing', async () => {
    const s = new MemoryStore({ blocks: 4096n, blockSize: 512 });
    await s.write(0n, Buffer.alloc(2 * MiB));
    expect(s.allocatedBytes).toBe(0);
    expect(await s.extents(0n, 4096n)).toEqual([{ lba: 0n, blocks: 4096n, mapped: false }]);
  });

  test('unmap frees whole chunks and zeroes partial ones', async () => {
    const s = new MemoryStore({ blocks: 64n, blockSize: 512, chunkBytes: 8 * 512 });
    await s.write(0n, Buffer.alloc(64 * 512, 0xab));
    expect(s.allocatedBytes).toBe(64 * 512);
    await s.unmap(4n, 16n); // half of chunk 0, all of chunk 1, half of chunk 2
    expect(s.allocatedBytes).toBe(7 * 8 * 512);
    expect(await s.extents(0n, 64n)).toEqual([
      { lba: 0n, blocks: 8n, mapped: true },
      { lba: 8n, blocks: 8n, mapped: false },
      { lba: 16n, blocks: 48n, mapped: true },
    ]);
    const back = await s.read(0n, 64);
    const expected = Buffer.alloc(64 * 512, 0xab);
    expected.fill(0, 4 * 512, 20 * 512);
    expect(sha256(back)).toBe(sha256(expected));
  });

  test('extents of a sub-range are clipped to it', async () => {
    const s = new MemoryStore({ blocks: 100n, blockSize: 4096, chunkBytes: 4 * 4096 });
    await s.write(10n, Buffer.alloc(4096, 1)); // chunk 2 = blocks 8..11
    expect(await s.extents(9n, 10n)).toEqual([
      { lba: 9n, blocks: 3n, mapped: true },
      { lba: 12n, blocks: 7n, mapped: false },
    ]);
    // The last chunk is short when the capacity is not a whole number of chunks.
    await s.write(99n, Buffer.alloc(4096, 2));
    expect(await s.extents(90n, 10n)).toEqual([
      { lba: 90n, blocks: 6n, mapped: false },
      { lba: 96n, blocks: 4n, mapped: true },
    ]);
  });

  test('a read-only store refuses writes and unmaps with write-protected', async () => {
    const s = new MemoryStore({ blocks: 16n, blockSize: 512, readOnly: true });
    expect(s.readOnly).toBe(true);
    await expect(s.write(0n, Buffer.alloc(512, 1))).rejects.toMatchObject({ failure: { kind: 'write-protected' } });
    await expect(s.unmap(0n, 1n)).rejects.toBeInstanceOf(StoreError);
    expect(await s.read(0n, 1)).toEqual(Buffer.alloc(512));
  });

  test('identity: given name, serial and NAA are kept; otherwise hashed from the name, stable', () => {
    const a = new MemoryStore({ blocks: 8n, blockSize: 512, name: 'memory:scratch' });
    const b = new MemoryStore({ blocks: 8n, blockSize: 512, name: 'memory:scratch' });
    const c = new MemoryStore({ blocks: 8n, blockSize: 512 });
    expect(a.identity.naa!.equals(b.identity.naa!)).toBe(true);
    expect(a.identity.serial).toBe(b.identity.serial);
    expect(c.identity.naa!.equals(a.identity.naa!)).toBe(false);
    expect(c.identity.name).toMatch(/^memory:[0-9a-f-]{36}$/);
    const naa = Buffer.from('6001405aabbccddeeff0011223344556', 'hex');
    const d = new MemoryStore({ blocks: 8n, blockSize: 512, name: 'x', serial: 'SER1', naa });
    expect(d.identity).toEqual({ name: 'x', serial: 'SER1', naa });
  });

  test.each([
    [{ blocks: 0n, blockSize: 512 }, /blocks must be a positive bigint/],
    [{ blocks: 8, blockSize: 512 }, /blocks must be a positive bigint/],
    [{ blocks: 8n, blockSize: 1024 }, /blockSize must be 512 or 4096/],
    [{ blocks: 8n, blockSize: 512, chunkBytes: 3000 }, /chunkBytes must be a power of two/],
    [{ blocks: 8n, blockSize: 512, naa: Buffer.alloc(8) }, /naa must be a 16-byte NAA/],
    [{ blocks: 2n ** 60n, blockSize: 4096 }, /too large/],
  ])('bad options %p are refused', (opts, message) => {
    const make = () => new MemoryStore(opts as unknown as ConstructorParameters<typeof MemoryStore>[0]);
    expect(make).toThrow(ArgumentError);
    expect(make).toThrow(message);
  });
});

/**
 * OriginalReader: the originals of chunks for a snapshot's captures. File sources are read in
 * batches (the reads asked for in one turn of the event loop, 8 per native call) into pooled
 * buffers; memory sources skip the read of an unmapped chunk; other stores are read plainly.
 * Data is checked against the file read with fs, CRCs against the bitwise referenceCrc32c (test/helpers/crc32c.ts).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { CowStore } from '../../../src/cow/cow-store';
import { OriginalReader, type Original } from '../../../src/cow/original-reader';
import { FileStore } from '../../../src/store/file';
import { MemoryStore } from '../../../src/store/memory';
import { referenceCrc32c } from '../../helpers/crc32c';
import * as fileops from '../../../src/native/fileops';
import { fileBytes, tempFiles } from '../../helpers/tmp';

const KiB = 1024;
const CHUNK = 64 * KiB;
const BLOCKS = CHUNK / 512; // 128 source blocks a chunk

const files = tempFiles('original-reader');
const fresh = files.fresh;
afterEach(() => jest.restoreAllMocks());

/**
 * A sparse source file of `chunks` 64 KiB chunks plus `tailBlocks` 512-byte blocks: random data
 * in every chunk whose index is in `dataChunks` (all but the holes by default), the tail random.
 */
async function fileSource(chunks: number, opts: { holes?: number[]; zerosWritten?: number[]; tailBlocks?: number } = {}) {
  const file = fresh();
  const size = chunks * CHUNK + (opts.tailBlocks ?? 0) * 512;
  fs.writeFileSync(file, '');
  fs.truncateSync(file, size);
  const fd = fs.openSync(file, 'r+');
  try {
    for (let c = 0; c < chunks; c++) {
      if (opts.holes?.includes(c)) continue;
      const data = opts.zerosWritten?.includes(c) ? Buffer.alloc(CHUNK) : crypto.randomBytes(CHUNK);
      fs.writeSync(fd, data, 0, CHUNK, c * CHUNK);
    }
    if (opts.tailBlocks) fs.writeSync(fd, crypto.randomBytes(opts.tailBlocks * 512), 0, opts.tailBlocks * 512, chunks * CHUNK);
  } finally {
    fs.closeSync(fd);
  }
  const store = await FileStore.open({ path: file });
  return { file, store };
}

/** The original of chunk `c` as it should be: the file's bytes and their CRC. */
function expectOriginal(o: Original, file: string, c: number, bytes = CHUNK): void {
  const want = fileBytes(file, c * CHUNK, bytes);
  expect(o.zero).toBe(false);
  expect(o.data.length).toBe(bytes);
  expect(o.data.equals(want)).toBe(true);
  expect(o.crc).toBe(referenceCrc32c(want));
}

describe('OriginalReader, file source', () => {
  test('reads asked for in the same turn resolve with the file\'s bytes and their CRC32C, in one native call', async () => {
    const { file, store } = await fileSource(8);
    try {
      const spy = jest.spyOn(fileops, 'readChunks');
      const r = new OriginalReader(store, CHUNK);
      const chunks = [5, 0, 3, 7, 1];
      const originals = await Promise.all(chunks.map((c) => r.read(BigInt(c * BLOCKS), BLOCKS)));
      originals.forEach((o, i) => expectOriginal(o, file, chunks[i]));
      expect(spy).toHaveBeenCalledTimes(1);
      expect(spy.mock.calls[0][2]).toEqual(chunks.map((c) => c * CHUNK));
      // Distinct buffers for reads in flight together.
      expect(new Set(originals.map((o) => o.data.buffer)).size).toBe(chunks.length);
    } finally {
      await store.close();
    }
  });

  test('more chunks in one turn than one native call takes: all correct, in full batches and a last partial one', async () => {
    const { file, store } = await fileSource(40);
    try {
      const spy = jest.spyOn(fileops, 'readChunks');
      const r = new OriginalReader(store, CHUNK);
      const chunks = Array.from({ length: 40 }, (_, i) => (i * 17) % 40); // every chunk, shuffled
      const originals = await Promise.all(chunks.map((c) => r.read(BigInt(c * BLOCKS), BLOCKS)));
      originals.forEach((o, i) => expectOriginal(o, file, chunks[i]));
      // The batch size is the reader's (BATCH: 16, then 8): every call full but the last.
      const sizes = spy.mock.calls.map((call) => call[1].length);
      const batch = sizes[0];
      expect(batch).toBeGreaterThan(1);
      expect(batch).toBeLessThan(40);
      const expected = Array.from({ length: Math.ceil(40 / batch) }, (_, i) => Math.min(batch, 40 - i * batch));
      expect(sizes).toEqual(expected);
      expect(spy.mock.calls.flatMap((call) => call[2])).toEqual(chunks.map((c) => c * CHUNK));
      expect(new Set(originals.map((o) => o.data.buffer)).size).toBe(40);
    } finally {
      await store.close();
    }
  });

  test('reads asked for in different turns go in different calls', async () => {
    const { file, store } = await fileSource(4);
    try {
      const spy = jest.spyOn(fileops, 'readChunks');
      const r = new OriginalReader(store, CHUNK);
      const a = await r.read(0n, BLOCKS);
      const b = await r.read(BigInt(2 * BLOCKS), BLOCKS);
      expectOriginal(a, file, 0);
      expectOriginal(b, file, 2);
      expect(spy).toHaveBeenCalledTimes(2);
    } finally {
      await store.close();
    }
  });

  test('a hole and written zeros: zero, the data all zeros, the CRC of zeros', async () => {
    const { file, store } = await fileSource(4, { holes: [1], zerosWritten: [2] });
    try {
      const r = new OriginalReader(store, CHUNK);
      const [a, hole, written, d] = await Promise.all([0, 1, 2, 3].map((c) => r.read(BigInt(c * BLOCKS), BLOCKS)));
      for (const z of [hole, written]) {
        expect(z.zero).toBe(true);
        expect(z.data.length).toBe(CHUNK);
        expect(z.data.equals(Buffer.alloc(CHUNK))).toBe(true);
        expect(z.crc).toBe(referenceCrc32c(Buffer.alloc(CHUNK)));
      }
      expectOriginal(a, file, 0);
      expectOriginal(d, file, 3);
      hole.release();
      written.release();
    } finally {
      await store.close();
    }
  });

  test('a zero chunk\'s buffer goes back to the pool at once and the shared zeros stay zeros', async () => {
    const { file, store } = await fileSource(4, { holes: [0] });
    try {
      const alloc = jest.spyOn(Buffer, 'allocUnsafe');
      const chunkAllocs = () => alloc.mock.calls.filter(([size]) => size === CHUNK).length;
      const r = new OriginalReader(store, CHUNK);
      const z = await r.read(0n, BLOCKS);
      expect(z.zero).toBe(true);
      expect(chunkAllocs()).toBe(1);
      // The buffer the zero chunk was read into serves the next read (no new allocation).
      const next = await r.read(BigInt(BLOCKS), BLOCKS);
      expectOriginal(next, file, 1);
      expect(chunkAllocs()).toBe(1);
      next.release();
      // Several data reads after it, none released: they must not write into the zeros handed out.
      const later = await Promise.all([1, 2, 3].map((c) => r.read(BigInt(c * BLOCKS), BLOCKS)));
      later.forEach((o, i) => expectOriginal(o, file, i + 1));
      expect(later.some((o) => o.data.buffer === z.data.buffer)).toBe(false);
      expect(z.data.equals(Buffer.alloc(CHUNK))).toBe(true);
      const z2 = await r.read(0n, BLOCKS);
      expect(z2.data.equals(Buffer.alloc(CHUNK))).toBe(true);
      expect(z2.crc).toBe(z.crc);
    } finally {
      await store.close();
    }
  });

  test('release() lends a buffer to a later read; an original not released keeps its bytes', async () => {
    const { file, store } = await fileSource(6);
    try {
      const r = new OriginalReader(store, CHUNK);
      const a = await r.read(0n, BLOCKS); // kept, never released here
      const aBytes = Buffer.from(a.data);
      const [b, c] = await Promise.all([r.read(BigInt(BLOCKS), BLOCKS), r.read(BigInt(2 * BLOCKS), BLOCKS)]);
      expectOriginal(b, file, 1);
      expectOriginal(c, file, 2);
      b.release();
      c.release();
      const [d, e] = await Promise.all([r.read(BigInt(3 * BLOCKS), BLOCKS), r.read(BigInt(4 * BLOCKS), BLOCKS)]);
      expectOriginal(d, file, 3);
      expectOriginal(e, file, 4);
      // The memory was reused (the pool gave back b's and c's buffers), never a's.
      expect(new Set([d.data.buffer, e.data.buffer])).toEqual(new Set([b.data.buffer, c.data.buffer]));
      expect(a.data.buffer).not.toBe(d.data.buffer);
      expect(a.data.buffer).not.toBe(e.data.buffer);
      expect(a.data.equals(aBytes)).toBe(true);
      expectOriginal(a, file, 0);
    } finally {
      await store.close();
    }
  });

  test('release() twice gives the buffer back once: two later reads get two buffers', async () => {
    const { file, store } = await fileSource(4);
    try {
      const r = new OriginalReader(store, CHUNK);
      const a = await r.read(0n, BLOCKS);
      a.release();
      a.release();
      const [b, c] = await Promise.all([r.read(BigInt(BLOCKS), BLOCKS), r.read(BigInt(2 * BLOCKS), BLOCKS)]);
      expect(b.data.buffer).not.toBe(c.data.buffer);
      expectOriginal(b, file, 1);
      expectOriginal(c, file, 2);
    } finally {
      await store.close();
    }
  });

  test('a short last chunk (fewer blocks than a chunk) reads just its blocks, data or hole', async () => {
    const { file, store } = await fileSource(3, { tailBlocks: 5 });
    try {
      const r = new OriginalReader(store, CHUNK);
      const [full, tail] = await Promise.all([r.read(0n, BLOCKS), r.read(BigInt(3 * BLOCKS), 5)]);
      expectOriginal(full, file, 0);
      expectOriginal(tail, file, 3, 5 * 512);
      tail.release();
      full.release();
      // After a full chunk went back to the pool, a short read through it is still just its blocks.
      const again = await r.read(BigInt(3 * BLOCKS), 5);
      expectOriginal(again, file, 3, 5 * 512);
    } finally {
      await store.close();
    }
    // All holes: a full chunk and the 3-block last chunk, each zeros of its own length and CRC.
    const holes = fresh();
    fs.writeFileSync(holes, '');
    fs.truncateSync(holes, 2 * CHUNK + 3 * 512);
    const s = await FileStore.open({ path: holes });
    try {
      const r = new OriginalReader(s, CHUNK);
      const [z1, z2] = await Promise.all([r.read(0n, BLOCKS), r.read(BigInt(2 * BLOCKS), 3)]);
      expect([z1.zero, z1.data.length, z1.crc]).toEqual([true, CHUNK, referenceCrc32c(Buffer.alloc(CHUNK))]);
      expect([z2.zero, z2.data.length, z2.crc]).toEqual([true, 3 * 512, referenceCrc32c(Buffer.alloc(3 * 512))]);
      expect(z2.data.equals(Buffer.alloc(3 * 512))).toBe(true);
    } finally {
      await s.close();
    }
  });

  test('a read beyond the end rejects (lba-out-of-range), and the reader goes on working', async () => {
    const { file, store } = await fileSource(2);
    try {
      const r = new OriginalReader(store, CHUNK);
      await expect(r.read(BigInt(2 * BLOCKS), BLOCKS)).rejects.toMatchObject({ name: 'StoreError', failure: { kind: 'lba-out-of-range' } });
      await expect(r.read(BigInt(BLOCKS + 1), BLOCKS)).rejects.toMatchObject({ failure: { kind: 'lba-out-of-range' } });
      expectOriginal(await r.read(BigInt(BLOCKS), BLOCKS), file, 1);
    } finally {
      await store.close();
    }
  });

  test('one bad chunk fails only itself: the others asked for in the same turn are read', async () => {
    const { file, store } = await fileSource(3);
    try {
      const r = new OriginalReader(store, CHUNK);
      const spy = jest.spyOn(fileops, 'readChunks');
      const [a, bad, c] = await Promise.allSettled([r.read(0n, BLOCKS), r.read(BigInt(3 * BLOCKS), BLOCKS), r.read(BigInt(2 * BLOCKS), BLOCKS)]);
      expect(bad).toMatchObject({ status: 'rejected', reason: { failure: { kind: 'lba-out-of-range' } } });
      expect(a.status).toBe('fulfilled');
      expect(c.status).toBe('fulfilled');
      expectOriginal((a as PromiseFulfilledResult<Original>).value, file, 0);
      expectOriginal((c as PromiseFulfilledResult<Original>).value, file, 2);
      // The good ones were read on their own after the batch failed (the batch never reached the native call).
      expect(spy.mock.calls.length).toBe(2);
    } finally {
      await store.close();
    }
  });

  test('a run of chunks up to 1 MiB is read whole; more, or none, is refused (ArgumentError)', async () => {
    const { store, file } = await fileSource(32);
    try {
      const r = new OriginalReader(store, CHUNK);
      const run = await r.read(BigInt(BLOCKS), 2048);
      expect(run.data.equals(fileBytes(file, CHUNK, 1024 * KiB))).toBe(true);
      expect(run.crc).toBe(referenceCrc32c(run.data));
      run.release();
      await expect(r.read(0n, 2048 + 1)).rejects.toMatchObject({ name: 'ArgumentError' });
      await expect(r.read(0n, 0)).rejects.toMatchObject({ name: 'ArgumentError' });
    } finally {
      await store.close();
    }
  });

  test('a read error (file cut short behind the store\'s back) rejects with a StoreError read-error', async () => {
    const { file, store } = await fileSource(2);
    try {
      fs.truncateSync(file, CHUNK);
      const r = new OriginalReader(store, CHUNK);
      await expect(r.read(BigInt(BLOCKS), BLOCKS)).rejects.toMatchObject({ name: 'StoreError', failure: { kind: 'read-error' } });
      expectOriginal(await r.read(0n, BLOCKS), file, 0);
    } finally {
      await store.close();
    }
  });
});

describe('OriginalReader, memory source', () => {
  const mem = () => new MemoryStore({ blocks: 8n * BigInt(BLOCKS), blockSize: 512, chunkBytes: CHUNK });

  test('an unmapped chunk is zeros (with their CRC) without a read; a mapped one is read', async () => {
    const s = mem();
    const data = crypto.randomBytes(CHUNK);
    await s.write(BigInt(BLOCKS), data);
    const read = jest.spyOn(s, 'read');
    const r = new OriginalReader(s, CHUNK);
    const z = await r.read(0n, BLOCKS);
    expect(z.zero).toBe(true);
    expect(z.data.equals(Buffer.alloc(CHUNK))).toBe(true);
    expect(z.crc).toBe(referenceCrc32c(Buffer.alloc(CHUNK)));
    expect(read).not.toHaveBeenCalled();
    const m = await r.read(BigInt(BLOCKS), BLOCKS);
    expect(m.zero).toBe(false);
    expect(m.data.equals(data)).toBe(true);
    expect(m.crc === undefined || m.crc === referenceCrc32c(data)).toBe(true);
    expect(read).toHaveBeenCalledTimes(1);
    m.release();
    z.release();
  });

  test('a chunk partly mapped is read: zeros around the data written', async () => {
    const s = new MemoryStore({ blocks: 4n * BigInt(BLOCKS), blockSize: 512, chunkBytes: 4096 });
    const block = crypto.randomBytes(512);
    await s.write(BigInt(2 * BLOCKS + 9), block);
    const r = new OriginalReader(s, CHUNK);
    const o = await r.read(BigInt(2 * BLOCKS), BLOCKS);
    const want = Buffer.alloc(CHUNK);
    block.copy(want, 9 * 512);
    expect(o.zero).toBe(false);
    expect(o.data.equals(want)).toBe(true);
  });

  test('a short last chunk unmapped: zeros of its own length', async () => {
    const s = new MemoryStore({ blocks: BigInt(BLOCKS) + 5n, blockSize: 512, chunkBytes: 512 });
    const r = new OriginalReader(s, CHUNK);
    const o = await r.read(BigInt(BLOCKS), 5);
    expect([o.zero, o.data.length, o.crc]).toEqual([true, 2560, referenceCrc32c(Buffer.alloc(2560))]);
  });
});

describe('OriginalReader, other stores', () => {
  test('are read plainly, even where unmapped (no extents asked, not zero)', async () => {
    const inner = new MemoryStore({ blocks: 4n * BigInt(BLOCKS), blockSize: 512, chunkBytes: CHUNK });
    const data = crypto.randomBytes(CHUNK);
    await inner.write(0n, data);
    const other = new CowStore(inner); // kind 'cow', reads zeros where unmapped, but not a memory store
    const extents = jest.spyOn(other, 'extents');
    const read = jest.spyOn(other, 'read');
    const r = new OriginalReader(other, CHUNK);
    const [m, u] = await Promise.all([r.read(0n, BLOCKS), r.read(BigInt(BLOCKS), BLOCKS)]);
    expect(m.data.equals(data)).toBe(true);
    expect(m.zero).toBe(false);
    expect(u.data.equals(Buffer.alloc(CHUNK))).toBe(true);
    expect(u.zero).toBe(false);
    expect(extents).not.toHaveBeenCalled();
    expect(read).toHaveBeenCalledTimes(2);
  });
});

/**
 * The snapshot view's reads (src/cow/image-reader.ts) over a chunk table the test fills: captured
 * chunks from their OBF records (a 4096-byte-block OBF under a 512-byte source), the others from
 * the source, a chunk read again from the OBF when its capture began during the source read, and
 * NOT READY once the snapshot no longer captures.
 */
import crypto from 'node:crypto';
import { ChunkTable } from '../../../src/cow/chunk-table';
import { ImageReader, type ImageOwner } from '../../../src/cow/image-reader';
import { MemoryStore } from '../../../src/store/memory';
import { DelegatingStore } from '../../helpers/store';
import { xorshift } from '../../helpers/rng';

const CHUNK = 8192; // 16 source blocks, 2 OBF blocks
const SOURCE_BLOCKS = 64n; // 4 chunks

/** A source whose next read runs `during` first (a capture, and its change, racing the read). */
class RacedSource extends DelegatingStore {
  during?: () => Promise<void>;
  override async read(lba: bigint, count: number, into?: Buffer): Promise<Buffer> {
    const d = this.during;
    this.during = undefined;
    if (d) await d();
    return this.inner.read(lba, count, into);
  }
}

async function fixture() {
  const inner = new MemoryStore({ blocks: SOURCE_BLOCKS, blockSize: 512 });
  const t0 = crypto.randomBytes(Number(SOURCE_BLOCKS) * 512);
  await inner.write(0n, t0);
  const source = new RacedSource(inner);
  const obf = new MemoryStore({ blocks: 64n, blockSize: 4096 });
  const chunks = new ChunkTable(CHUNK, 512, 4096);
  const owner: { -readonly [K in keyof ImageOwner]: ImageOwner[K] } = { id: 's1', state: 'ACTIVE', viewable: true };
  const reader = new ImageReader(owner, chunks, source, obf, 4096);
  /** Captures chunk `c` as a writer would: its T0 bytes into a record at OBF block `at`, then the source changed. */
  const capture = async (c: number, at: number) => {
    await obf.write(BigInt(at), t0.subarray(c * CHUNK, (c + 1) * CHUNK));
    chunks.where.set(c, at);
    await inner.write(BigInt(c * 16), crypto.randomBytes(CHUNK));
  };
  return { inner, source, obf, chunks, owner, reader, t0, capture };
}

test('captured chunks come from their records, others from the source, at any offset and across chunks', async () => {
  const f = await fixture();
  await f.capture(1, 10);
  await f.capture(2, 20);
  expect((await f.reader.read(0n, 64)).equals(f.t0)).toBe(true);
  // from inside chunk 1 (not on an OBF block boundary) to inside chunk 3
  const part = await f.reader.read(19n, 30);
  expect(part.equals(f.t0.subarray(19 * 512, 49 * 512))).toBe(true);
  // into a caller's buffer
  const into = Buffer.alloc(3 * 512);
  expect((await f.reader.read(17n, 3, into)).equals(f.t0.subarray(17 * 512, 20 * 512))).toBe(true);
});

test('a chunk whose capture began during its read from the source is read again from the OBF', async () => {
  const f = await fixture();
  let reads = 0;
  f.source.during = async () => {
    reads++;
    // the capture of chunk 0 starts and lands, and its change reaches the source, during the read
    const p = f.capture(0, 30);
    f.chunks.inProgress.set(0, p);
    await p;
    f.chunks.inProgress.delete(0);
  };
  expect((await f.reader.read(0n, 16)).equals(f.t0.subarray(0, CHUNK))).toBe(true);
  expect(reads).toBe(1);
});

test('chunks not captured are read from the source in one request; one captured during it is read again alone', async () => {
  const f = await fixture();
  const reads: Array<[bigint, number]> = [];
  const read = f.source.read.bind(f.source);
  f.source.read = (lba, count, into) => {
    reads.push([lba, count]);
    return read(lba, count, into);
  };
  expect((await f.reader.read(3n, 60)).equals(f.t0.subarray(3 * 512, 63 * 512))).toBe(true);
  expect(reads).toEqual([[3n, 60]]);
  // chunk 2 captured (and changed on the source) while the run 0..3 is read
  reads.length = 0;
  f.source.during = async () => {
    const p = f.capture(2, 30);
    f.chunks.inProgress.set(2, p);
    await p;
    f.chunks.inProgress.delete(2);
  };
  expect((await f.reader.read(0n, 64)).equals(f.t0)).toBe(true);
  expect(reads).toEqual([[0n, 64]]); // chunk 2 came from the OBF the second time
  // around a captured chunk: two runs and the record
  reads.length = 0;
  expect((await f.reader.read(1n, 62)).equals(f.t0.subarray(512, 63 * 512))).toBe(true);
  expect(reads).toEqual([
    [1n, 31],
    [48n, 15],
  ]);
});

test('random reads while random chunks are captured during them: always the image as of institution (seeded)', async () => {
  const seed = Number(process.env.IMAGE_READER_SEED ?? crypto.randomInt(1, 2 ** 30));
  const rnd = xorshift(seed).int;
  const f = await fixture();
  let slot = 0;
  for (let i = 0; i < 200; i++) {
    const c = rnd(4);
    if (!f.chunks.where.has(c) && rnd(3) === 0) {
      f.source.during = async () => {
        const p = f.capture(c, 2 * slot++);
        f.chunks.inProgress.set(c, p);
        await p;
        f.chunks.inProgress.delete(c);
      };
    }
    const lba = rnd(64);
    const n = 1 + rnd(64 - lba);
    const got = await f.reader.read(BigInt(lba), n);
    if (!got.equals(f.t0.subarray(lba * 512, (lba + n) * 512))) throw new Error(`seed ${seed}: read ${i} of ${n} blocks at ${lba} is not the image`);
  }
  expect(slot).toBeGreaterThan(0);
});

test('a capture in progress is waited for before the chunk is read', async () => {
  const f = await fixture();
  let land!: () => void;
  const p = new Promise<void>((r) => (land = r)).then(() => f.capture(3, 40));
  f.chunks.inProgress.set(3, p);
  const read = f.reader.read(48n, 16);
  land();
  await p;
  f.chunks.inProgress.delete(3);
  expect((await read).equals(f.t0.subarray(3 * CHUNK))).toBe(true);
});

test('once the snapshot no longer captures its view is NOT READY', async () => {
  const f = await fixture();
  f.owner.viewable = false;
  f.owner.state = 'SEALED';
  await expect(f.reader.read(0n, 1)).rejects.toMatchObject({ failure: { kind: 'not-ready' }, message: 'snapshot s1 is SEALED: its view is no longer readable' });
});

test('the chunk table is rebuilt from DATA records: a record of one chunk, or of a run of chunks', () => {
  const t = new ChunkTable(CHUNK, 512, 4096);
  t.rebuild([
    { sourceLba: 16n, sourceBlocks: 16, dataLba: 2n },
    { sourceLba: 48n, sourceBlocks: 48, dataLba: 5n }, // chunks 3, 4, 5: 2 OBF blocks each
    { sourceLba: 112n, sourceBlocks: 4, dataLba: 12n }, // the short last chunk of a source
  ]);
  expect([...t.where]).toEqual([
    [1, 2],
    [3, 5],
    [4, 7],
    [5, 9],
    [7, 12],
  ]);
});

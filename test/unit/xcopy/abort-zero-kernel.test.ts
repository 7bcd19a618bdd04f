/**
 * Stopping copies (COPY OPERATION ABORT, ABORT TASK via the task's signal), the concurrency
 * limit, held-result expiry, zero skipping, and copy_file_range between file stores with holes
 * kept — each checked against bytes read back independently of the copy manager.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { decodeCopyStatusLid1 } from '../../../src/scsi/copy-results';
import { FileStore } from '../../../src/store/file';
import { COPY_MANAGER_OPCODES } from '../../../src/xcopy';
import { LogicalUnit } from '../../../src/target/scsi';
import { removeDir, tempDir } from '../../helpers/tmp';
import {
  GOOD,
  ILLEGAL_REQUEST,
  b2b,
  bridge,
  copyOperationAbortCdb,
  cscdOf,
  expectSense,
  list,
  makeLun,
  rcrCdb,
  run,
  sha256,
  xcopy,
  TestStore,
  type Lun,
} from './helpers';

const TASK_ABORTED = 0x40;
const MiB = 1024 * 1024;

/** Holds every source read until `open()`; `started` resolves at the first held read. */
function gate(l: Lun): { open: () => void; started: Promise<void> } {
  let open!: () => void;
  let started!: () => void;
  const s = new Promise<void>((r) => (started = r));
  l.store.gate = new Promise<void>((r) => (open = r));
  l.store.onGate = () => started();
  return {
    open: () => {
      l.store.gate = undefined;
      open();
    },
    started: s,
  };
}

test('COPY OPERATION ABORT stops a running EXTENDED COPY: TASK ABORTED, COPY STATUS completed with errors, later segments untouched', async () => {
  const a = makeLun(65536n);
  const c = makeLun(65536n);
  const b = await bridge([a, c], { chunkBytes: 1 * MiB, buffers: 2, inFlight: 1 });
  await a.store.write(0n, crypto.randomBytes(32 * MiB));
  const g = gate(a);
  const segs = Array.from({ length: 8 }, (_, i) => b2b(0, 1, 8192, i * 8192, i * 8192));
  const pending = xcopy(b, list([cscdOf(a.lu), cscdOf(c.lu)], segs, 9, 0)); // LIST ID USAGE 00b: held
  await g.started;
  const r = await run(b, copyOperationAbortCdb(9));
  expect(r.status).toBe(GOOD);
  g.open();
  const x = await pending;
  expect(x.status).toBe(TASK_ABORTED);
  const st = decodeCopyStatusLid1((await run(b, rcrCdb(0x00, 9))).data as Buffer);
  expect(st.copyManagerStatus).toBe(2); // completed with errors
  expect(st.segmentsProcessed).toBeLessThan(8);
  expect(b.cm.counters.aborted).toBe(1);
  // the last segment's range was never written
  expect((await c.store.inner.read(7n * 8192n, 8192)).equals(Buffer.alloc(8192 * 512))).toBe(true);
  // nothing is running under list id 9 any more
  expectSense(await run(b, copyOperationAbortCdb(9)), ILLEGAL_REQUEST, 0x24, 0x00);
});

test('COPY OPERATION ABORT for a list id nobody runs is INVALID FIELD IN CDB; another nexus cannot abort my copy', async () => {
  const a = makeLun(4096n);
  const c = makeLun(4096n);
  const b = await bridge([a, c]);
  expectSense(await run(b, copyOperationAbortCdb(3)), ILLEGAL_REQUEST, 0x24, 0x00);
  expectSense(await run(b, copyOperationAbortCdb(0x1_0000)), ILLEGAL_REQUEST, 0x24, 0x00);
  await a.store.write(0n, crypto.randomBytes(2 * MiB));
  const g = gate(a);
  const pending = xcopy(b, list([cscdOf(a.lu), cscdOf(c.lu)], [b2b(0, 1, 4096, 0, 0)], 3, 2));
  await g.started;
  const { nexus } = await import('./helpers');
  for (let i = 0; i < 5 && (await run(b, Buffer.alloc(6), { nexus: nexus(2) })).status !== GOOD; i++); // power-on UA
  expectSense(await run(b, copyOperationAbortCdb(3), { nexus: nexus(2) }), ILLEGAL_REQUEST, 0x24, 0x00);
  g.open();
  expect((await pending).status).toBe(GOOD);
  expect(sha256(await c.store.inner.read(0n, 4096))).toBe(sha256(await a.store.inner.read(0n, 4096)));
});

test('ABORT TASK (the task signal) stops the copy at a chunk boundary with TASK ABORTED', async () => {
  const a = makeLun(65536n);
  const c = makeLun(65536n);
  const b = await bridge([a, c], { chunkBytes: 1 * MiB, buffers: 2, inFlight: 1 });
  await a.store.write(0n, crypto.randomBytes(32 * MiB));
  const g = gate(a);
  const ac = new AbortController();
  const pending = xcopy(b, list([cscdOf(a.lu), cscdOf(c.lu)], [b2b(0, 1, 65535, 0, 0)], 4, 0), { signal: ac.signal });
  await g.started;
  ac.abort();
  g.open();
  expect((await pending).status).toBe(TASK_ABORTED);
  // at most the chunk that was in flight was written
  expect(a.store.reads).toBeLessThanOrEqual(2);
  expect((await c.store.inner.read(4096n, 4096)).equals(Buffer.alloc(4096 * 512))).toBe(true);
});

test('more copies than MAXIMUM CONCURRENT COPIES: INSUFFICIENT RESOURCES (55h/03h), nothing copied, the running one finishes', async () => {
  const a = makeLun(4096n);
  const c = makeLun(4096n);
  const b = await bridge([a, c], { limits: { maxConcurrentCopies: 1 } });
  await a.store.write(0n, crypto.randomBytes(2 * MiB));
  const g = gate(a);
  const first = xcopy(b, list([cscdOf(a.lu), cscdOf(c.lu)], [b2b(0, 1, 2048, 0, 0)], 1, 2));
  await g.started;
  const writesBefore = c.store.writes;
  expectSense(await xcopy(b, list([cscdOf(a.lu), cscdOf(c.lu)], [b2b(0, 1, 2048, 2048, 2048)], 2, 2)), ILLEGAL_REQUEST, 0x55, 0x03);
  expect(c.store.writes).toBe(writesBefore);
  g.open();
  expect((await first).status).toBe(GOOD);
  expect((await xcopy(b, list([cscdOf(a.lu), cscdOf(c.lu)], [b2b(0, 1, 2048, 2048, 2048)], 2, 2))).status).toBe(GOOD);
});

test('held copy results expire: COPY STATUS of an old copy is INVALID FIELD IN CDB', async () => {
  const a = makeLun(4096n);
  const c = makeLun(4096n);
  const b = await bridge([a, c], { heldResultsMs: 1 });
  expect((await xcopy(b, list([cscdOf(a.lu), cscdOf(c.lu)], [b2b(0, 1, 8, 0, 0)], 5, 0))).status).toBe(GOOD);
  await new Promise((r) => setTimeout(r, 10));
  expectSense(await run(b, rcrCdb(0x00, 5)), ILLEGAL_REQUEST, 0x24, 0x00);
});

test('zero skipping: zero chunks are deallocated on a destination that reads zeros, not written; where it is unmapped already, nothing happens', async () => {
  const a = makeLun(16384n); // 8 MiB, all zeros except the first MiB
  const c = makeLun(16384n);
  const b = await bridge([a, c], { chunkBytes: 1 * MiB });
  const data = crypto.randomBytes(1 * MiB);
  await a.store.write(0n, data);
  await c.store.inner.write(4096n, crypto.randomBytes(1 * MiB)); // stale data to be zeroed
  const r = await xcopy(b, list([cscdOf(a.lu), cscdOf(c.lu)], [b2b(0, 1, 16384, 0, 0)]));
  expect(r.status).toBe(GOOD);
  expect(c.store.writes).toBe(1); // only the one data chunk was written
  expect(c.store.unmaps).toBe(1); // only the chunk with stale data was deallocated
  expect(b.cm.counters.zeroSkippedBytes).toBe(BigInt(7 * MiB));
  const out = await c.store.inner.read(0n, 16384);
  expect(sha256(out)).toBe(sha256(Buffer.concat([data, Buffer.alloc(7 * MiB)])));
  // the destination stays thin: only the data chunk is mapped
  const mapped = (await c.store.inner.extents(0n, 16384n)).filter((e) => e.mapped).reduce((n, e) => n + e.blocks, 0n);
  expect(mapped).toBe(2048n);
});

test('zeroSkip: false writes every chunk', async () => {
  const a = makeLun(4096n);
  const c = makeLun(4096n);
  const b = await bridge([a, c], { chunkBytes: 1 * MiB, zeroSkip: false });
  expect((await xcopy(b, list([cscdOf(a.lu), cscdOf(c.lu)], [b2b(0, 1, 4096, 0, 0)]))).status).toBe(GOOD);
  expect(c.store.writes).toBe(2);
  expect(b.cm.counters.zeroSkippedBytes).toBe(0n);
});

describe('file store → file store through copy_file_range', () => {
  const dir = { path: tempDir('xcopy-kernel') };
  async function fileLun(name: string, size: number): Promise<Lun & { file: FileStore }> {
    const file = await FileStore.open({ path: path.join(dir.path, name), size });
    const store = new TestStore(file);
    // The kernel path needs the FileStore itself as the LU's store (not a wrapper).
    const lu = new LogicalUnit({ store: file, targetName: 'iqn.2026-11.test:xcopy', opcodes: COPY_MANAGER_OPCODES });
    return { lu, store, file };
  }
  afterAll(() => removeDir(dir.path));

  test('data copied, holes kept holes (and punched where the destination had data), the result equals the source', async () => {
    const size = 64 * MiB;
    const a = await fileLun('src.img', size);
    const c = await fileLun('dst.img', size);
    // source: data at 0–3 MiB and 40–41 MiB, holes elsewhere; destination: data everywhere in 8–16 MiB
    const d1 = crypto.randomBytes(3 * MiB);
    const d2 = crypto.randomBytes(1 * MiB);
    await a.file.write(0n, d1);
    await a.file.write(BigInt((40 * MiB) / 512), d2);
    await c.file.write(BigInt((8 * MiB) / 512), crypto.randomBytes(8 * MiB));
    const b = await bridge([a, c]);
    const r = await xcopy(b, list([cscdOf(a.lu), cscdOf(c.lu)], [0, 1, 2, 3].map((i) => b2b(0, 1, 32768, i * 32768, i * 32768))));
    expect(r.status).toBe(GOOD);
    expect(b.cm.counters.kernelCopiedBytes).toBe(BigInt(size));
    await c.file.flush();
    const hash = (p: string) => crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    expect(hash(path.join(dir.path, 'dst.img'))).toBe(hash(path.join(dir.path, 'src.img')));
    // holes stay holes: at most the source's 4 MiB of data (plus file system rounding) is allocated
    const st = fs.statSync(path.join(dir.path, 'dst.img'));
    expect(st.blocks * 512).toBeLessThanOrEqual(5 * MiB);
    const ext = await c.file.extents(0n, BigInt(size / 512));
    expect(ext.filter((e) => e.mapped).map((e) => [e.lba, e.blocks])).toEqual([
      [0n, BigInt((3 * MiB) / 512)],
      [BigInt((40 * MiB) / 512), BigInt((1 * MiB) / 512)],
    ]);
    await a.file.close();
    await c.file.close();
  });

  test('kernelCopy: false moves the same bytes through the pool', async () => {
    const size = 8 * MiB;
    const a = await fileLun('src2.img', size);
    const c = await fileLun('dst2.img', size);
    await a.file.write(0n, crypto.randomBytes(size));
    const b = await bridge([a, c], { kernelCopy: false });
    expect((await xcopy(b, list([cscdOf(a.lu), cscdOf(c.lu)], [b2b(0, 1, size / 512, 0, 0)]))).status).toBe(GOOD);
    expect(b.cm.counters.kernelCopiedBytes).toBe(0n);
    expect(sha256(await c.file.read(0n, size / 512))).toBe(sha256(await a.file.read(0n, size / 512)));
    await a.file.close();
    await c.file.close();
  });
});

/**
 * Host writes carried by capture commits: a first write to a chunk (file source, file OBF) is
 * made on the source by the OBF commit's own thread-pool job, once the record and every record
 * before it are durable (src/native/fileops.ts captureCommit with a chain and hosts,
 * commitCaptures, ObfAppender.appendCapture's `host`, SnapshotSession.changeWith).
 *
 * Checked independently of the code under test: bytes read back with fs, record data against a
 * copy of the source taken before any write, the log with the format's scanner.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import pino from 'pino';
import * as captureModule from '../../../src/cow/capture-commit';
import { commitCaptures } from '../../../src/cow/capture-commit';
import { CowStore } from '../../../src/cow/cow-store';
import { decodeSuperblock, encodeDataRecordHeaderWithoutCrc, encodeSuperblock, OBF_LOG_START_LBA, OBF_RECORD_CRC_OFFSET, OBF_RECORD_HEADER_LENGTH, RollingHash, type ObfSuperblock } from '../../../src/obf/format';
import { scanLog } from '../../../src/obf/log';
import { ObfAppender } from '../../../src/cow/obf-writer';
import { SnapshotSession, type SessionJournal, type SessionRecord } from '../../../src/cow/session';
import { FileStore } from '../../../src/store/file';
import { StoreError, type Store } from '../../../src/store/store';
import * as fileops from '../../../src/native/fileops';
import { activeSuperblock } from '../../helpers/obf';
import { fileBytes, tempFiles } from '../../helpers/tmp';

const log = pino({ level: 'silent' });
const KiB = 1024;
const CHUNK = 64 * KiB;
const BS = 512;
const CHUNK_BLOCKS = CHUNK / BS;
const RECORD_BLOCKS = 1 + CHUNK_BLOCKS;

const files = tempFiles('carried-write');
afterEach(() => jest.restoreAllMocks());

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

async function sourceFile(bytes: number) {
  const path = files.fresh('src');
  fs.writeFileSync(path, crypto.randomBytes(bytes));
  return { path, store: await FileStore.open({ path }), original: fs.readFileSync(path) };
}

/** A source file of `sourceBytes` random bytes and an OBF file of `obfBytes`, closed after `f`. */
async function withFiles(sourceBytes: number, obfBytes: number, f: (fx: { src: Awaited<ReturnType<typeof sourceFile>>; obf: FileStore; obfPath: string }) => Promise<void>): Promise<void> {
  const src = await sourceFile(sourceBytes);
  const obfPath = files.fresh('obf');
  const obf = await FileStore.open({ path: obfPath, size: obfBytes });
  try {
    await f({ src, obf, obfPath });
  } finally {
    await src.store.close();
    await obf.close();
  }
}

function superblock(source: Store, capacityBlocks: bigint): ObfSuperblock {
  return activeSuperblock(source, capacityBlocks, { blockSize: BS, chunkSize: CHUNK });
}

class MemJournal implements SessionJournal {
  async save(_r: SessionRecord): Promise<void> {}
}

/** One capture of chunk `c` of `src` at OBF block `at`: its read and its run. */
function capture(src: FileStore, c: number, at: bigint, seq: bigint) {
  const header = encodeDataRecordHeaderWithoutCrc(
    { sequence: seq, snapshotId: crypto.randomUUID(), timeMs: 1, sourceLba: BigInt(c * CHUNK_BLOCKS), sourceBlocks: CHUNK_BLOCKS },
    CHUNK,
    { blockSize: BS, sourceBlockSize: BS, sourceCapacity: src.blocks },
  );
  const into = Buffer.alloc(CHUNK);
  return { read: { lba: BigInt(c * CHUNK_BLOCKS), into, header }, run: { lba: at, pieces: [header, into] } };
}

const order = (chain: fileops.CaptureChain) => ({ chain, ticket: fileops.takeCaptureTicket(chain) });

const hostWrite = (lba: bigint, data: Buffer, fua = false) => ({ lba, pieces: [data.subarray(0, 1024), data.subarray(1024)], fua, state: new Int32Array(1) });

describe('commitCaptures with host writes', () => {
  test('the host writes are made after the records: the OBF holds the originals, the source the new bytes', () =>
    withFiles(4 * CHUNK, 1024 * KiB, async ({ src, obf, obfPath }) => {
      const a = capture(src.store, 1, 1n, 1n);
      const b = capture(src.store, 3, 1n + BigInt(RECORD_BLOCKS), 2n);
      const dataA = crypto.randomBytes(8 * KiB);
      const dataB = crypto.randomBytes(4 * KiB);
      const hosts = [hostWrite(BigInt(CHUNK_BLOCKS) + 4n, dataA), hostWrite(3n * BigInt(CHUNK_BLOCKS), dataB, true)];
      const done = await commitCaptures(obf, src.store, [a.read, b.read], [{ lba: 1n, pieces: [...a.run.pieces, ...b.run.pieces] }], { order: order(fileops.newCaptureChain()), hosts });
      expect(done.hosts).toEqual(['written', 'written']);
      expect(hosts.map((h) => h.state[0])).toEqual([fileops.HOST_WRITE_STARTED, fileops.HOST_WRITE_STARTED]);
      // the records: the chunks as they were before the host writes
      expect(sha(fileBytes(obfPath, 2 * BS, CHUNK))).toBe(sha(src.original.subarray(CHUNK, 2 * CHUNK)));
      expect(sha(fileBytes(obfPath, (2 + RECORD_BLOCKS) * BS, CHUNK))).toBe(sha(src.original.subarray(3 * CHUNK, 4 * CHUNK)));
      // the source: the new bytes where written, the rest unchanged
      const now = fs.readFileSync(src.path);
      const want = Buffer.from(src.original);
      dataA.copy(want, CHUNK + 4 * BS);
      dataB.copy(want, 3 * CHUNK);
      expect(sha(now)).toBe(sha(want));
    }));

  test('a cancelled host write is not made; nor is any without a chain', () =>
    withFiles(2 * CHUNK, 512 * KiB, async ({ src, obf }) => {
      const a = capture(src.store, 0, 1n, 1n);
      const h = hostWrite(0n, crypto.randomBytes(4 * KiB));
      expect(Atomics.compareExchange(h.state, 0, fileops.HOST_WRITE_PENDING, fileops.HOST_WRITE_CANCELLED)).toBe(fileops.HOST_WRITE_PENDING);
      const done = await commitCaptures(obf, src.store, [a.read], [a.run], { order: order(fileops.newCaptureChain()), hosts: [h] });
      expect(done.hosts).toEqual(['not-written']);
      expect(h.state[0]).toBe(fileops.HOST_WRITE_CANCELLED);
      expect(sha(fs.readFileSync(src.path))).toBe(sha(src.original));
      await expect(commitCaptures(obf, src.store, [a.read], [a.run], { hosts: [hostWrite(0n, Buffer.alloc(BS))] })).rejects.toThrow(/capture chain/);
      expect(sha(fs.readFileSync(src.path))).toBe(sha(src.original));
    }));

  test('after a commit on the chain fails, the next commit (queued behind it) makes its records but not its host writes', async () => {
    const bad = await sourceFile(2 * CHUNK);
    const good = await sourceFile(2 * CHUNK);
    const obfPath = files.fresh('obf');
    const obf = await FileStore.open({ path: obfPath, size: 512 * KiB });
    try {
      fs.truncateSync(bad.path, 0); // its capture read finds the end of the file
      const chain = fileops.newCaptureChain();
      const a = capture(bad.store, 0, 1n, 1n);
      const b = capture(good.store, 1, 1n + BigInt(RECORD_BLOCKS), 2n);
      const hb = hostWrite(BigInt(CHUNK_BLOCKS), crypto.randomBytes(4 * KiB));
      const first = commitCaptures(obf, bad.store, [a.read], [a.run], { order: order(chain), hosts: [hostWrite(0n, Buffer.alloc(BS, 1))] });
      const second = commitCaptures(obf, good.store, [b.read], [b.run], { order: order(chain), hosts: [hb] });
      await expect(first).rejects.toMatchObject({ name: 'CaptureReadError' });
      const done = await second;
      expect(done.hosts).toEqual(['not-written']);
      expect(hb.state[0]).toBe(fileops.HOST_WRITE_PENDING); // still the caller's to make
      expect(sha(fileBytes(obfPath, (2 + RECORD_BLOCKS) * BS, CHUNK))).toBe(sha(good.original.subarray(CHUNK)));
      expect(sha(fs.readFileSync(good.path))).toBe(sha(good.original));
      // A new chain starts over.
      const again = await commitCaptures(obf, good.store, [b.read], [b.run], { order: order(fileops.newCaptureChain()), hosts: [hb] });
      expect(again.hosts).toEqual(['written']);
    } finally {
      await bad.store.close();
      await good.store.close();
      await obf.close();
    }
  });

  test('a host write that fails is that write\'s error (an errno from the job), the commit itself durable', async () => {
    const src = await sourceFile(2 * CHUNK);
    const obfPath = files.fresh('obf');
    const obf = await FileStore.open({ path: obfPath, size: 512 * KiB });
    const ro = fs.openSync(src.path, 'r');
    const obfFd = fs.openSync(obfPath, 'r+');
    try {
      const a = capture(src.store, 0, 1n, 1n);
      const done = await fileops.captureCommit(
        ro,
        [{ into: a.read.into, position: 0, header: a.read.header }],
        { headerLength: OBF_RECORD_HEADER_LENGTH, crcOffset: OBF_RECORD_CRC_OFFSET },
        obfFd,
        [{ position: BS, pieces: a.run.pieces }],
        order(fileops.newCaptureChain()),
        { fd: ro, writes: [{ position: 0, pieces: [Buffer.alloc(BS, 7)], fua: false, state: new Int32Array(1) }] },
      );
      expect(done.hosts).toEqual([9]); // EBADF: the source descriptor is read-only
      expect(sha(fileBytes(obfPath, 2 * BS, CHUNK))).toBe(sha(src.original.subarray(0, CHUNK)));
      expect(sha(fs.readFileSync(src.path))).toBe(sha(src.original));
    } finally {
      fs.closeSync(ro);
      fs.closeSync(obfFd);
      await src.store.close();
      await obf.close();
    }
  });

  test('a commit that fails before its job is queued abandons its ticket: later host writes are not made, and none waits for ever', () =>
    withFiles(4 * CHUNK, 1024 * KiB, async ({ src, obf }) => {
      const chain = fileops.newCaptureChain();
      const a = capture(src.store, 0, 1n, 1n);
      const b = capture(src.store, 1, 1n + BigInt(RECORD_BLOCKS), 2n);
      const c = capture(src.store, 2, 1n + 2n * BigInt(RECORD_BLOCKS), 3n);
      // 1: a host write past the end of the source (refused before any job); 2: a malformed state cell.
      await expect(commitCaptures(obf, src.store, [a.read], [a.run], { order: order(chain), hosts: [hostWrite(src.store.blocks, Buffer.alloc(BS))] })).rejects.toThrow();
      const bad = { ...hostWrite(BigInt(CHUNK_BLOCKS), Buffer.alloc(BS)), state: [0] as unknown as Int32Array };
      await expect(commitCaptures(obf, src.store, [b.read], [b.run], { order: order(chain), hosts: [bad] })).rejects.toThrow(/Int32Array/);
      const h = hostWrite(2n * BigInt(CHUNK_BLOCKS), crypto.randomBytes(4 * KiB));
      const done = await commitCaptures(obf, src.store, [c.read], [c.run], { order: order(chain), hosts: [h] });
      expect(done.hosts).toEqual(['not-written']);
      expect(h.state[0]).toBe(fileops.HOST_WRITE_PENDING);
      expect(sha(fs.readFileSync(src.path))).toBe(sha(src.original));
    }));

  test('tickets finish in order whatever order they end in: a ticket abandoned ahead stops a later host write; all succeeded lets it through', () =>
    withFiles(4 * CHUNK, 1024 * KiB, async ({ src, obf }) => {
      for (const abandonSecond of [true, false]) {
        const chain = fileops.newCaptureChain();
        const [t1, t2, t3] = [order(chain), order(chain), order(chain)];
        const a = capture(src.store, 0, 1n, 1n);
        const c = capture(src.store, 2, 1n + BigInt(RECORD_BLOCKS), 2n);
        const b = capture(src.store, 1, 1n + 2n * BigInt(RECORD_BLOCKS), 3n);
        // Jobs are queued in ticket order (as the appender does); ticket 2 is abandoned before
        // ticket 1 ends, or run after it.
        const h = hostWrite(2n * BigInt(CHUNK_BLOCKS), crypto.randomBytes(4 * KiB));
        const first = commitCaptures(obf, src.store, [a.read], [a.run], { order: t1 });
        if (abandonSecond) fileops.abandonCaptureTicket(chain, t2.ticket);
        const second = abandonSecond ? Promise.resolve() : commitCaptures(obf, src.store, [b.read], [b.run], { order: t2 });
        const third = commitCaptures(obf, src.store, [c.read], [c.run], { order: t3, hosts: [h] }); // waits for 1 and 2
        await Promise.all([first, second]);
        expect((await third).hosts).toEqual([abandonSecond ? 'not-written' : 'written']);
        expect(fileBytes(src.path, 2 * CHUNK, h.pieces[0].length).equals(h.pieces[0])).toBe(!abandonSecond);
      }
    }));
});

describe('ObfAppender.appendCapture with a host write', () => {
  async function fixture(opts: { minOverlapRecords?: number; depth?: number } = {}) {
    const src = await sourceFile(8 * CHUNK);
    const obfPath = files.fresh('obf');
    const obfBlocks = 1 + 9 * RECORD_BLOCKS + 16;
    const obfFile = await FileStore.open({ path: obfPath, size: obfBlocks * BS });
    const obf = new CowStore(obfFile);
    const sb = superblock(src.store, BigInt(obfBlocks));
    await obf.write(0n, encodeSuperblock(sb), { fua: true });
    const appender = new ObfAppender(obf, sb, { endLba: OBF_LOG_START_LBA, nextSequence: 1n, dataRecords: 0n, dataBytes: 0n, rolling: new RollingHash(), markerSequence: 0n }, opts);
    expect(appender.readOriginalsFrom(src.store)).toBe(true);
    return { src, obfPath, obfFile, appender, close: async () => (await src.store.close(), await obfFile.close()) };
  }

  test('concurrent captures carrying writes: all written, every record the original', async () => {
    const fx = await fixture({ minOverlapRecords: 0 });
    try {
      const writes = Array.from({ length: 8 }, (_, c) => ({ c, data: crypto.randomBytes((1 + (c % 4)) * 4 * KiB) }));
      const recs = await Promise.all(writes.map((w) => fx.appender.appendCapture(BigInt(w.c * CHUNK_BLOCKS), CHUNK_BLOCKS, hostWrite(BigInt(w.c * CHUNK_BLOCKS + 8), w.data))));
      expect(recs.map((r) => r.host)).toEqual(writes.map(() => 'written'));
      expect(fx.appender.commits).toBeGreaterThan(1); // pipelined commits, ordered by the chain
      const scan = await scanLog((lba, n) => fx.obfFile.read(lba, n), decodeSuperblock(fileBytes(fx.obfPath, 0, BS)));
      expect(scan.records).toHaveLength(8);
      for (const r of scan.records) {
        const at = Number(r.sourceLba) * BS;
        expect(sha(fileBytes(fx.obfPath, Number(r.dataLba) * BS, CHUNK))).toBe(sha(fx.src.original.subarray(at, at + CHUNK)));
      }
      const want = Buffer.from(fx.src.original);
      for (const w of writes) w.data.copy(want, w.c * CHUNK + 8 * BS);
      expect(sha(fs.readFileSync(fx.src.path))).toBe(sha(want));
    } finally {
      await fx.close();
    }
  });

  test('a source read failure in the batch: the carried writes of the other captures wait for their retry and are made then, the unreadable one never', async () => {
    const fx = await fixture({ depth: 4, minOverlapRecords: 2 });
    try {
      fs.truncateSync(fx.src.path, 6 * CHUNK); // chunk 7 now reads past the end of the file
      const spy = jest.spyOn(captureModule, 'commitCaptures');
      const writes = [1, 7, 2, 3].map((c) => ({ c, data: crypto.randomBytes(4 * KiB) }));
      const hosts = writes.map((w) => hostWrite(BigInt(w.c * CHUNK_BLOCKS), w.data));
      const out = await Promise.allSettled(writes.map((w, i) => fx.appender.appendCapture(BigInt(w.c * CHUNK_BLOCKS), CHUNK_BLOCKS, hosts[i])));
      expect(out.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      expect(out.map((o) => (o.status === 'fulfilled' ? o.value.host : undefined))).toEqual(['written', undefined, 'written', 'written']);
      expect(hosts[1].state[0]).toBe(fileops.HOST_WRITE_PENDING); // still the caller's (refused or made uncaptured)
      // chunk 1 alone, then [7, 2, 3] (fails reading 7: nothing written), then the retry of [2, 3]
      expect(spy.mock.calls.map((c) => c[2].map((r) => Number(r.lba) / CHUNK_BLOCKS))).toEqual([[1], [7, 2, 3], [2, 3]]);
      const now = fs.readFileSync(fx.src.path);
      expect(now.length).toBe(6 * CHUNK);
      const want = Buffer.from(fx.src.original.subarray(0, 6 * CHUNK));
      for (const w of [writes[0], writes[2], writes[3]]) w.data.copy(want, w.c * CHUNK);
      expect(sha(now)).toBe(sha(want));
      const scan = await scanLog((lba, n) => fx.obfFile.read(lba, n), decodeSuperblock(fileBytes(fx.obfPath, 0, BS)));
      expect(scan.records.map((r) => Number(r.sourceLba) / CHUNK_BLOCKS).sort()).toEqual([1, 2, 3]);
      for (const r of scan.records) {
        const at = Number(r.sourceLba) * BS;
        expect(sha(fileBytes(fx.obfPath, Number(r.dataLba) * BS, CHUNK))).toBe(sha(fx.src.original.subarray(at, at + CHUNK)));
      }
    } finally {
      await fx.close();
    }
  });

  test('behind a commit that is not on the chain (a MARKER) the host write is left to the caller', async () => {
    const fx = await fixture({ minOverlapRecords: 0 });
    try {
      const marker = fx.appender.appendMarker();
      const rec = await fx.appender.appendCapture(0n, CHUNK_BLOCKS, hostWrite(0n, crypto.randomBytes(4 * KiB)));
      await marker;
      expect(rec.host).toBe('not-written');
      expect(sha(fs.readFileSync(fx.src.path))).toBe(sha(fx.src.original));
    } finally {
      await fx.close();
    }
  });
});

describe('SnapshotSession.changeWith through the COW filter', () => {
  async function sessionFixture(o: { policy?: 'protect-application' | 'protect-snapshot'; cowTimeoutMs?: number } = {}) {
    const src = await sourceFile(16 * CHUNK);
    const obfPath = files.fresh('obf');
    const obfFile = await FileStore.open({ path: obfPath, size: 2 * 1024 * KiB });
    const cow = new CowStore(src.store);
    const session = await SnapshotSession.institute({
      source: cow,
      sourceKey: '/backstores/fileio/src',
      obf: new CowStore(obfFile),
      obfSpec: `file:${obfPath}`,
      journal: new MemJournal(),
      chunkBytes: CHUNK,
      log,
      ...o,
    });
    return { src, cow, session, close: async () => (await src.store.close(), await obfFile.close()) };
  }

  test('first writes to chunks not captured are made by the commit (one record for adjacent chunks); rewrites and writes across a captured chunk take the ordinary way; the image stays the original', async () => {
    const fx = await sessionFixture();
    const changeWith = jest.spyOn(fx.session, 'changeWith');
    const inner = jest.spyOn(fx.src.store, 'write');
    try {
      const want = Buffer.from(fx.src.original);
      const put = async (lba: number, data: Buffer) => {
        await fx.cow.write(BigInt(lba), data);
        data.copy(want, lba * BS);
      };
      await Promise.all([put(0, crypto.randomBytes(4 * KiB)), put(CHUNK_BLOCKS * 2 + 16, crypto.randomBytes(8 * KiB)), put(CHUNK_BLOCKS * 5, crypto.randomBytes(CHUNK))]);
      expect(inner).not.toHaveBeenCalled(); // all three made by their commits
      await put(8, crypto.randomBytes(4 * KiB)); // chunk 0 again: captured, ordinary write
      await put(CHUNK_BLOCKS * 8 - 8, crypto.randomBytes(8 * KiB)); // across chunks 7 and 8, neither captured: carried, one record
      expect(inner).toHaveBeenCalledTimes(1);
      await put(CHUNK_BLOCKS * 9 - 8, crypto.randomBytes(8 * KiB)); // across chunks 8 (captured) and 9: ordinary way
      expect(inner).toHaveBeenCalledTimes(2);
      expect(changeWith).toHaveBeenCalledTimes(5); // not for the rewrite of chunk 0: needsNothing
      expect(sha(fs.readFileSync(fx.src.path))).toBe(sha(want));
      expect(sha(await fx.session.readImage(0n, Number(fx.cow.blocks)))).toBe(sha(fx.src.original));
      expect(fx.session.status()).toMatchObject({ records: 5, captured_chunks: 6 }); // chunks 0, 2, 5, 7 + 8, 9
    } finally {
      await fx.close();
    }
  });

  test('a COW timeout after the commit started the write waits for it: made once, by the commit, the snapshot still ACTIVE', async () => {
    const fx = await sessionFixture({ policy: 'protect-snapshot', cowTimeoutMs: 100 });
    const appender = (fx.session as unknown as { appender: ObfAppender }).appender;
    jest.spyOn(appender, 'appendCapture').mockImplementation((_lba, _n, host) => {
      host!.state[0] = fileops.HOST_WRITE_STARTED; // the job is past the point of cancelling
      return new Promise((resolve) => setTimeout(() => resolve({ sequence: 1n, dataLba: 2n, host: 'written' }), 300));
    });
    const inner = jest.spyOn(fx.src.store, 'write');
    try {
      await fx.cow.write(0n, crypto.randomBytes(4 * KiB));
      expect(inner).not.toHaveBeenCalled();
      expect(fx.session.state).toBe('ACTIVE');
    } finally {
      await fx.close();
    }
  });

  test.each(['protect-application', 'protect-snapshot'] as const)('a COW timeout before the commit starts the write cancels it (%s)', async (policy) => {
    const fx = await sessionFixture({ policy, cowTimeoutMs: 100 });
    const appender = (fx.session as unknown as { appender: ObfAppender }).appender;
    let carried: fileops.CaptureHostWrite | undefined;
    jest.spyOn(appender, 'appendCapture').mockImplementation((_lba, _n, host) => {
      carried = host as unknown as fileops.CaptureHostWrite;
      return new Promise(() => undefined); // a commit that never ends
    });
    try {
      const data = crypto.randomBytes(4 * KiB);
      const w = fx.cow.write(0n, data);
      if (policy === 'protect-snapshot') {
        await expect(w).rejects.toBeInstanceOf(StoreError);
        expect(fx.session.state).toBe('ACTIVE');
        expect(sha(fs.readFileSync(fx.src.path))).toBe(sha(fx.src.original));
      } else {
        await w;
        expect(fx.session.state).toBe('INVALID');
        expect(fx.session.status().reason).toBe('COW_TIMEOUT');
        expect(fileBytes(fx.src.path, 0, data.length).equals(data)).toBe(true); // made once, the ordinary way
      }
      expect(carried?.state[0]).toBe(fileops.HOST_WRITE_CANCELLED);
    } finally {
      await fx.close();
    }
  });
});

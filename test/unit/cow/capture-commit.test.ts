/**
 * Captures whose originals the OBF commit reads itself: commitCaptures (one thread-pool
 * job: pread each original, store the record CRC in its header, pwritev the runs on the O_DSYNC
 * descriptor), encodeDataRecordHeaderWithoutCrc, ObfAppender.readOriginalsFrom/appendCapture
 * (group commit, pooled capture buffers, a failed source read and what the log looks like after
 * it) and a snapshot session over file stores that takes this path.
 *
 * Everything is checked independently of the code under test: file bytes read with fs, record
 * CRCs with the bitwise referenceCrc32c (test/helpers/crc32c.ts), the log with the format's own scanner, the image
 * against a copy of the source file taken before any write. Seeds are printed; COW_SEED=<n>
 * replays.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import pino from 'pino';
import { CowStore } from '../../../src/cow/cow-store';
import {
  decodeRecordHeader,
  decodeSuperblock,
  encodeDataRecordHeader,
  encodeDataRecordHeaderWithoutCrc,
  encodeMarkerRecord,
  encodeSuperblock,
  ObfRecordType,
  OBF_LOG_START_LBA,
  recordCrc,
  RollingHash,
  verifyRecord,
  type ObfDataRecordFields,
  type ObfRecordGeometry,
  type ObfSuperblock,
} from '../../../src/obf/format';
import { scanLog, type ObfScan } from '../../../src/obf/log';
import { ObfAppender, SourceReadError, type CommittedRecord } from '../../../src/cow/obf-writer';
import { SnapshotSession, type SessionJournal, type SessionRecord } from '../../../src/cow/session';
import { EncodeError } from '../../../src/errors';
import * as captureModule from '../../../src/cow/capture-commit';
import { CaptureReadError, commitCaptures } from '../../../src/cow/capture-commit';
import { FileStore } from '../../../src/store/file';
import { MemoryStore } from '../../../src/store/memory';
import { StoreError, type Store } from '../../../src/store/store';
import { referenceCrc32c } from '../../helpers/crc32c';
import * as fileops from '../../../src/native/fileops';
import { xorshift } from '../../helpers/rng';
import { DelegatingStore } from '../../helpers/store';
import { activeSuperblock } from '../../helpers/obf';
import { fileBytes, tempFiles, waitUntil } from '../../helpers/tmp';

const log = pino({ level: 'silent' });
const KiB = 1024;
const MiB = 1024 * KiB;
const CHUNK = 64 * KiB;
const BS = 512;
const CHUNK_BLOCKS = CHUNK / BS; // 128
const RECORD_BLOCKS = 1 + CHUNK_BLOCKS; // header + data of a whole-chunk record

const files = tempFiles('capture-commit');
afterEach(() => jest.restoreAllMocks());

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------


function seedFor(what: string): number {
  const seed = Number(process.env.COW_SEED ?? crypto.randomInt(1, 2 ** 31));
  console.info(`${what} seed ${seed} (replay with COW_SEED=${seed})`);
  return seed;
}

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const isZero = (b: Buffer) => b.every((x) => x === 0);

/** The record CRC by the independent reference: CRC32C over header bytes 0–123, continued over the data. */
function referenceCrc(header: Buffer, data: Buffer): number {
  return referenceCrc32c(data, referenceCrc32c(header.subarray(0, 124)));
}

/** A source file of `bytes` random bytes (written with fs) and a FileStore over it. */
async function sourceFile(bytes: number) {
  const path = files.fresh('src');
  fs.writeFileSync(path, crypto.randomBytes(bytes));
  const store = await FileStore.open({ path });
  return { path, store };
}

function superblock(source: Store, capacityBlocks: bigint): ObfSuperblock {
  return activeSuperblock(source, capacityBlocks, { blockSize: BS, chunkSize: CHUNK });
}

function freshState() {
  return { endLba: OBF_LOG_START_LBA, nextSequence: 1n, dataRecords: 0n, dataBytes: 0n, rolling: new RollingHash(), markerSequence: 0n };
}

/**
 * A source file of `chunks` chunks (+ `tailBytes`), an OBF file with room for all of them, the
 * OBF wrapped in a CowStore (a LUN of the target, as the session gets it), and an appender
 * reading originals from the source.
 */
async function appenderFixture(chunks: number, opts: { tailBytes?: number; depth?: number; minOverlapRecords?: number } = {}) {
  const src = await sourceFile(chunks * CHUNK + (opts.tailBytes ?? 0));
  const obfPath = files.fresh('obf');
  const obfBlocks = 1 + (chunks + 1) * RECORD_BLOCKS + 16;
  const obfFile = await FileStore.open({ path: obfPath, size: obfBlocks * BS });
  const obf = new CowStore(obfFile);
  const sb = superblock(src.store, BigInt(obfBlocks));
  await obf.write(0n, encodeSuperblock(sb), { fua: true });
  const appender = new ObfAppender(obf, sb, freshState(), { depth: opts.depth, minOverlapRecords: opts.minOverlapRecords });
  expect(appender.readOriginalsFrom(src.store)).toBe(true);
  const close = async () => {
    await src.store.close();
    await obfFile.close();
  };
  return { src, obfPath, obfFile, obf, sb, appender, close };
}

/**
 * Scans the OBF with the format's scanner and checks each record against the files read with
 * fs: data = the source's bytes, CRC = the reference CRC, sequences 1..n without a gap, no chunk
 * twice. Returns the scan.
 */
async function checkLog(fx: { src: { path: string }; obfPath: string; obfFile: FileStore; sb: ObfSuperblock }): Promise<ObfScan> {
  const scan = await scanLog((lba, n) => fx.obfFile.read(lba, n), fx.sb);
  expect(scan.stop).toBe('clean-end');
  // The header block where the scan stopped is all zeros on the file itself.
  expect(isZero(fileBytes(fx.obfPath, Number(scan.endLba) * BS, BS))).toBe(true);
  for (const r of scan.records) {
    const header = fileBytes(fx.obfPath, Number(r.obfLba) * BS, BS);
    const data = fileBytes(fx.obfPath, Number(r.dataLba) * BS, r.dataBlocks * BS);
    const want = fileBytes(fx.src.path, Number(r.sourceLba) * BS, r.sourceBlocks * BS);
    expect(data.equals(want)).toBe(true);
    const crc = referenceCrc(header, want);
    expect(header.readUInt32BE(124)).toBe(crc);
    expect(r.crc).toBe(crc);
  }
  const sequences = [...scan.records.map((r) => r.sequence), ...(scan.marker ? [scan.marker.sequence] : [])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  expect(sequences).toEqual(sequences.map((_, i) => BigInt(i + 1)));
  expect(new Set(scan.records.map((r) => r.sourceLba)).size).toBe(scan.records.length);
  return scan;
}

// ---------------------------------------------------------------------------------------------
// 1. commitCaptures
// ---------------------------------------------------------------------------------------------

describe('commitCaptures', () => {
  const T0 = 1_700_000_000_000;

  /** Headers (CRC field zero) and read buffers for captures of [lba, bytes) of the source. */
  function captures(src: FileStore, snapshotId: string, specs: Array<{ lba: bigint; bytes: number }>, geometry: ObfRecordGeometry, firstSeq = 1) {
    return specs.map((s, i) => {
      const fields: ObfDataRecordFields = { sequence: BigInt(firstSeq + i), snapshotId, timeMs: T0 + i, sourceLba: s.lba, sourceBlocks: s.bytes / src.blockSize };
      return { ...s, fields, header: encodeDataRecordHeaderWithoutCrc(fields, s.bytes, geometry), into: Buffer.alloc(s.bytes, 0xee) };
    });
  }

  /** A 4-chunk source file, a 1 MiB OBF file and their geometry for one test; both closed after it. */
  async function withFiles(f: (fx: { src: Awaited<ReturnType<typeof sourceFile>>; obfPath: string; obf: FileStore; geometry: ObfRecordGeometry }) => Promise<void>): Promise<void> {
    const src = await sourceFile(4 * CHUNK);
    const obfPath = files.fresh('obf');
    const obf = await FileStore.open({ path: obfPath, size: MiB });
    try {
      await f({ src, obfPath, obf, geometry: { blockSize: BS, sourceBlockSize: BS, sourceCapacity: src.store.blocks } });
    } finally {
      await src.store.close();
      await obf.close();
    }
  }

  test('one job reads every original, stores the reference CRC in each header and writes the runs (capture and non-capture pieces)', () =>
    withFiles(async ({ src, obfPath, obf, geometry }) => {
      const snapshotId = crypto.randomUUID();
      // three chunks, the last a short one that does not start on a chunk boundary
      const caps = captures(src.store, snapshotId, [{ lba: 3n * 128n, bytes: CHUNK }, { lba: 0n, bytes: CHUNK }, { lba: 128n + 8n, bytes: 24 * KiB }], geometry);
      const marker = encodeMarkerRecord({ sequence: 3n, snapshotId, timeMs: T0, dataRecordsBefore: 2n, dataBytesBefore: BigInt(2 * CHUNK) }, geometry);
      const runA = 1n; // [h0, d0, h1, d1]
      const runB = runA + 2n * BigInt(RECORD_BLOCKS) + 5n; // after a 5-block gap: [MARKER, h2, d2]
      const spy = jest.spyOn(fileops, 'captureCommit');
      const { crcs, hosts } = await commitCaptures(
        obf,
        src.store,
        caps.map((c) => ({ lba: c.lba, into: c.into, header: c.header })),
        [
          { lba: runA, pieces: [caps[0].header, caps[0].into, caps[1].header, caps[1].into] },
          { lba: runB, pieces: [marker, caps[2].header, caps[2].into] },
        ],
      );
      expect(spy).toHaveBeenCalledTimes(1); // one thread-pool job
      expect(crcs).toHaveLength(3);
      expect(hosts).toEqual([]);
      const originals = caps.map((c) => fileBytes(src.path, Number(c.lba) * BS, c.bytes));
      caps.forEach((c, i) => {
        const want = originals[i];
        expect(c.into.equals(want)).toBe(true);
        const ref = referenceCrc(c.header, want);
        expect(c.header.readUInt32BE(124)).toBe(ref);
        expect(crcs[i]).toBe(ref);
        expect(recordCrc(c.header, want)).toBe(ref);
        expect(verifyRecord(c.header, want)).toBe(true);
        // the header the job filled in is the one the encoder makes over the same data
        expect(encodeDataRecordHeader(c.fields, want, geometry).equals(c.header)).toBe(true);
      });
      // The OBF file: nothing before run A, run A, the gap, run B, nothing after.
      expect(isZero(fileBytes(obfPath, 0, BS))).toBe(true);
      const a = fileBytes(obfPath, Number(runA) * BS, 2 * RECORD_BLOCKS * BS);
      expect(sha(a)).toBe(sha(Buffer.concat([caps[0].header, originals[0], caps[1].header, originals[1]])));
      expect(isZero(fileBytes(obfPath, (Number(runA) + 2 * RECORD_BLOCKS) * BS, 5 * BS))).toBe(true);
      const bLen = BS + BS + 24 * KiB;
      const b = fileBytes(obfPath, Number(runB) * BS, bLen);
      expect(sha(b)).toBe(sha(Buffer.concat([marker, caps[2].header, originals[2]])));
      expect(decodeRecordHeader(b.subarray(0, BS)).type).toBe(ObfRecordType.MARKER);
      expect(verifyRecord(b.subarray(0, BS))).toBe(true);
      expect(isZero(fileBytes(obfPath, Number(runB) * BS + bLen, 4 * BS))).toBe(true);
    }));

  test('a read past the end of the (truncated) source file: CaptureReadError read-error, and nothing is written', () =>
    withFiles(async ({ src, obfPath, obf, geometry }) => {
      const snapshotId = crypto.randomUUID();
      // behind the store's back: chunk 2 now ends past EOF (4 KiB of it left), chunk 3 is gone
      fs.truncateSync(src.path, 2 * CHUNK + 4 * KiB);
      for (const bad of [2n, 3n]) {
        const caps = captures(src.store, snapshotId, [{ lba: 0n, bytes: CHUNK }, { lba: bad * 128n, bytes: CHUNK }], geometry);
        const at = 10n;
        const err = await commitCaptures(
          obf,
          src.store,
          caps.map((c) => ({ lba: c.lba, into: c.into, header: c.header })),
          [{ lba: at, pieces: caps.flatMap((c) => [c.header, c.into]) }],
        ).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(CaptureReadError);
        expect(err).toBeInstanceOf(StoreError);
        expect((err as Error).name).toBe('CaptureReadError');
        expect((err as StoreError).failure.kind).toBe('read-error');
        // the good read came first and still nothing reached the OBF
        expect(isZero(fileBytes(obfPath, Number(at) * BS, 2 * RECORD_BLOCKS * BS))).toBe(true);
      }
    }));

  test('a run or a read out of range fails before anything is read or written', () =>
    withFiles(async ({ src, obfPath, obf, geometry }) => {
      const caps = captures(src.store, crypto.randomUUID(), [{ lba: 0n, bytes: CHUNK }, { lba: 128n, bytes: CHUNK }], geometry);
      const reads = caps.map((c) => ({ lba: c.lba, into: c.into, header: c.header }));
      const spy = jest.spyOn(fileops, 'captureCommit');
      // run 2 crosses the end of the OBF; run 1 is fine
      await expect(
        commitCaptures(obf, src.store, reads, [
          { lba: 100n, pieces: [caps[0].header, caps[0].into] },
          { lba: obf.blocks - 10n, pieces: [caps[1].header, caps[1].into] },
        ]),
      ).rejects.toMatchObject({ failure: { kind: 'lba-out-of-range' } });
      // a read past the source's capacity
      const past = { lba: src.store.blocks - 8n, into: Buffer.alloc(CHUNK, 0xee), header: Buffer.from(caps[0].header) };
      await expect(commitCaptures(obf, src.store, [reads[0], past], [{ lba: 100n, pieces: [caps[0].header, caps[0].into] }])).rejects.toMatchObject({
        failure: { kind: 'lba-out-of-range' },
      });
      expect(spy).not.toHaveBeenCalled();
      for (const c of caps) {
        expect(c.into.every((x) => x === 0xee)).toBe(true); // not read
        expect(c.header.readUInt32BE(124)).toBe(0); // no CRC stored
      }
      expect(isZero(fileBytes(obfPath, 100 * BS, RECORD_BLOCKS * BS))).toBe(true);
      expect(isZero(fileBytes(obfPath, (Number(obf.blocks) - 10) * BS, 10 * BS))).toBe(true);
    }));
});

// ---------------------------------------------------------------------------------------------
// 2. encodeDataRecordHeaderWithoutCrc
// ---------------------------------------------------------------------------------------------

describe('encodeDataRecordHeaderWithoutCrc', () => {
  test('equals encodeDataRecordHeader but for bytes 124–127, which are zero; the CRC over it gives the full header', () => {
    for (const [blockSize, sourceBlockSize, bytes] of [
      [512, 512, 64 * KiB],
      [512, 512, 512],
      [4096, 512, 12 * KiB],
      [512, 4096, 8 * KiB],
      [4096, 4096, 4096],
    ]) {
      const geometry: ObfRecordGeometry = { blockSize, sourceBlockSize, sourceCapacity: 1n << 20n };
      const fields: ObfDataRecordFields = { sequence: 77n, snapshotId: crypto.randomUUID(), timeMs: 1_700_000_123_456, sourceLba: 4096n, sourceBlocks: bytes / sourceBlockSize };
      const data = Buffer.alloc(bytes);
      data.fill('capture'); // deterministic, non-zero
      const bare = encodeDataRecordHeaderWithoutCrc(fields, bytes, geometry);
      const full = encodeDataRecordHeader(fields, data, geometry);
      expect(bare.length).toBe(blockSize);
      expect(bare.subarray(0, 124).equals(full.subarray(0, 124))).toBe(true);
      expect(bare.subarray(128).equals(full.subarray(128))).toBe(true);
      expect(bare.readUInt32BE(124)).toBe(0);
      expect(full.readUInt32BE(124)).toBe(referenceCrc(bare, data));
      expect(full.readUInt32BE(124)).not.toBe(0);
      bare.writeUInt32BE(referenceCrc(bare, data), 124);
      expect(bare.equals(full)).toBe(true);
    }
  });

  test('bad data sizes are an EncodeError', () => {
    const geometry: ObfRecordGeometry = { blockSize: 512, sourceBlockSize: 512, sourceCapacity: 1n << 20n };
    const fields: ObfDataRecordFields = { sequence: 1n, snapshotId: crypto.randomUUID(), timeMs: 1_700_000_000_000, sourceLba: 0n, sourceBlocks: 128 };
    for (const bad of [0, -512, 100, 513, 1.5 * 512, Number.NaN]) {
      expect(() => encodeDataRecordHeaderWithoutCrc(fields, bad, geometry)).toThrow(EncodeError);
    }
    // whole blocks, but not what sourceBlocks says
    expect(() => encodeDataRecordHeaderWithoutCrc(fields, 32 * KiB, geometry)).toThrow(EncodeError);
    // not a whole number of 4096-byte OBF blocks
    expect(() => encodeDataRecordHeaderWithoutCrc({ ...fields, sourceBlocks: 1 }, 512, { ...geometry, blockSize: 4096 })).toThrow(EncodeError);
    // past the source's capacity
    expect(() => encodeDataRecordHeaderWithoutCrc({ ...fields, sourceLba: (1n << 20n) - 64n }, 64 * KiB, geometry)).toThrow(EncodeError);
  });
});

// ---------------------------------------------------------------------------------------------
// 3. ObfAppender.readOriginalsFrom / appendCapture
// ---------------------------------------------------------------------------------------------

describe('ObfAppender with commits that read the originals', () => {
  test('readOriginalsFrom: only a file source with a file OBF that writes zero data', async () => {
    const src = await sourceFile(4 * CHUNK);
    const obfFile = await FileStore.open({ path: files.fresh('obf'), size: MiB });
    try {
      const mem = () => new MemoryStore({ blocks: 2048n, blockSize: 512 });
      const appender = (obf: Store) => new ObfAppender(obf, superblock(src.store, obf.blocks), freshState());
      // a plain file OBF elides zero data (deallocates it): no
      const plain = appender(obfFile);
      expect(plain.readOriginalsFrom(src.store)).toBe(false);
      await expect(plain.appendCapture(0n, CHUNK_BLOCKS)).rejects.toThrow(/readOriginalsFrom/);
      // memory source, memory OBF, a CowStore over a memory OBF, a source still behind its filter: no
      expect(appender(new CowStore(obfFile)).readOriginalsFrom(mem())).toBe(false);
      expect(appender(mem()).readOriginalsFrom(src.store)).toBe(false);
      expect(appender(new CowStore(mem())).readOriginalsFrom(src.store)).toBe(false);
      expect(appender(new CowStore(obfFile)).readOriginalsFrom(new CowStore(src.store))).toBe(false);
      // the session's case: file source, file OBF behind its filter
      expect(appender(new CowStore(obfFile)).readOriginalsFrom(src.store)).toBe(true);
    } finally {
      await src.store.close();
      await obfFile.close();
    }
  });

  test('50 concurrent captures in random order and a MARKER: every record in the log with the source\'s bytes, grouped into fewer commits', async () => {
    const seed = seedFor('capture order');
    const r = xorshift(seed);
    const N = 50;
    // 50 whole chunks and a short 51st (24 KiB at the end of the source)
    const fx = await appenderFixture(N, { tailBytes: 24 * KiB });
    try {
      const spy = jest.spyOn(captureModule, 'commitCaptures');
      const order = Array.from({ length: N + 1 }, (_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = r.int(i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
      const blocksOf = (c: number) => (c === N ? (24 * KiB) / BS : CHUNK_BLOCKS);
      const pending: Array<{ c: number; p: Promise<CommittedRecord> }> = [];
      let markerP: Promise<CommittedRecord> | undefined;
      for (let i = 0; i < order.length; i++) {
        const c = order[i];
        pending.push({ c, p: fx.appender.appendCapture(BigInt(c * CHUNK_BLOCKS), blocksOf(c)) });
        // The format allows one MARKER per log; it goes in among the captures.
        if (i === 20) markerP = fx.appender.appendMarker();
        if (i % 7 === 3) await Promise.resolve(); // some in later turns
      }
      const recs = await Promise.all(pending.map((x) => x.p));
      const marker = await markerP!;
      await fx.appender.idle();
      const scan = await checkLog(fx);
      expect(scan.records).toHaveLength(N + 1);
      expect(new Set(scan.records.map((x) => Number(x.sourceLba / BigInt(CHUNK_BLOCKS))))).toEqual(new Set(order));
      // what each capture resolved with is where the scanner found it
      for (const [i, x] of pending.entries()) {
        const found = scan.records.find((s) => s.sourceLba === BigInt(x.c * CHUNK_BLOCKS))!;
        expect(found.sourceBlocks).toBe(blocksOf(x.c));
        expect(recs[i]).toEqual({ sequence: found.sequence, dataLba: found.dataLba });
      }
      // the MARKER counts the DATA records before it
      expect(scan.marker?.sequence).toBe(marker.sequence);
      const before = scan.records.filter((x) => x.sequence < marker.sequence);
      expect(scan.marker?.dataRecordsBefore).toBe(BigInt(before.length));
      expect(scan.marker?.dataBytesBefore).toBe(before.reduce((s, x) => s + BigInt(x.dataBlocks * BS), 0n));
      // the appender's durable state agrees with the log (CRCs from the job fed the rolling hash)
      expect(fx.appender.state.dataRecords).toBe(BigInt(N + 1));
      expect(fx.appender.state.endLba).toBe(scan.endLba);
      expect(fx.appender.state.markerSequence).toBe(marker.sequence);
      expect(fx.appender.state.rolling.digest().equals(scan.rollingHash)).toBe(true);
      // group commit: fewer commits than records, all through commitCaptures
      expect(fx.appender.commits).toBeGreaterThan(0);
      expect(fx.appender.commits).toBeLessThan(N + 2);
      expect(spy).toHaveBeenCalled();
      expect(spy.mock.calls.length).toBeLessThanOrEqual(fx.appender.commits);
    } finally {
      await fx.close();
    }
  });

  test('200 captures in waves of 20: pooled capture buffers are reused, never by two commits at once, and every record is right', async () => {
    const seed = seedFor('capture waves');
    const r = xorshift(seed);
    const N = 200;
    const fx = await appenderFixture(N);
    try {
      const real = captureModule.commitCaptures;
      const inUse = new Set<ArrayBufferLike>();
      const seen = new Set<ArrayBufferLike>();
      let shared = 0;
      let jobs = 0;
      jest.spyOn(captureModule, 'commitCaptures').mockImplementation(async (obf, source, reads, runs) => {
        jobs++;
        const bufs = reads.map((x) => x.into.buffer);
        for (const b of bufs) {
          if (inUse.has(b)) shared++;
          inUse.add(b);
          seen.add(b);
        }
        try {
          return await real(obf, source, reads, runs);
        } finally {
          for (const b of bufs) inUse.delete(b);
        }
      });
      const order = Array.from({ length: N }, (_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = r.int(i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
      for (let w = 0; w < N; w += 20) {
        await Promise.all(order.slice(w, w + 20).map((c) => fx.appender.appendCapture(BigInt(c * CHUNK_BLOCKS), CHUNK_BLOCKS)));
      }
      expect(jobs).toBeGreaterThan(N / 20);
      expect(shared).toBe(0);
      expect(seen.size).toBeLessThan(N / 2); // buffers came back to the pool and were used again
      const scan = await checkLog(fx);
      expect(scan.records).toHaveLength(N);
      expect(scan.records.map((x) => Number(x.sourceLba) / CHUNK_BLOCKS)).toEqual(order);
    } finally {
      await fx.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 4. a source read failure in a commit
// ---------------------------------------------------------------------------------------------

describe('a source read failure in a capture commit', () => {
  /** Cuts the source file to `chunks` chunks; returns what to put back. */
  function cut(path: string, chunks: number) {
    const size = fs.statSync(path).size;
    const tail = fileBytes(path, chunks * CHUNK, size - chunks * CHUNK);
    fs.truncateSync(path, chunks * CHUNK);
    return () => {
      const fd = fs.openSync(path, 'r+');
      try {
        fs.ftruncateSync(fd, size);
        fs.writeSync(fd, tail, 0, tail.length, chunks * CHUNK);
      } finally {
        fs.closeSync(fd);
      }
    };
  }
  const lbaOf = (c: number) => BigInt(c * CHUNK_BLOCKS);

  test('only the unreadable capture fails (SourceReadError); the others of its batch are retried and committed, with no hole in the log', async () => {
    const fx = await appenderFixture(16, { depth: 4, minOverlapRecords: 8 });
    try {
      await fx.appender.appendCapture(lbaOf(0), CHUNK_BLOCKS);
      const restore = cut(fx.src.path, 10);
      const spy = jest.spyOn(captureModule, 'commitCaptures');
      // chunk 1 commits alone; 12 (past EOF), 2 and 3 wait for it and go together
      const ps = [1, 12, 2, 3].map((c) => fx.appender.appendCapture(lbaOf(c), CHUNK_BLOCKS));
      const out = await Promise.allSettled(ps);
      expect(out.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      const e = (out[1] as PromiseRejectedResult).reason as Error;
      expect(e).toBeInstanceOf(SourceReadError);
      expect(e.name).toBe('SourceReadError');
      expect(e.cause).toBeInstanceOf(CaptureReadError);
      expect((e.cause as CaptureReadError).index).toBe(0);
      expect(e.message).toMatch(new RegExp(`LBA ${12 * CHUNK_BLOCKS}`));
      // the failed batch [12, 2, 3] and its retry [2, 3]
      expect(spy.mock.calls.map((c) => c[2].map((r) => Number(r.lba) / CHUNK_BLOCKS))).toEqual([[1], [12, 2, 3], [2, 3]]);
      expect(fx.appender.state.dataRecords).toBe(4n);
      restore();
      const again = [12, 13, 4];
      for (const c of again) await fx.appender.appendCapture(lbaOf(c), CHUNK_BLOCKS);
      const scan = await checkLog(fx);
      expect(scan.records.map((x) => Number(x.sourceLba) / CHUNK_BLOCKS)).toEqual([0, 1, 2, 3, ...again]);
      expect(scan.endLba).toBe(fx.appender.usedBlocks);
      expect(scan.endLba).toBe(1n + 7n * BigInt(RECORD_BLOCKS));
      expect(fx.appender.state.rolling.digest().equals(scan.rollingHash)).toBe(true);
    } finally {
      await fx.close();
    }
  });

  test('a later batch written while the failing one was in flight is retried after it, not taken for the log twice', async () => {
    const fx = await appenderFixture(40, { depth: 4, minOverlapRecords: 8 });
    try {
      const restore = cut(fx.src.path, 30);
      // batch A = [0] alone; B = 9 records with chunk 35 past EOF; C = 9 good records after B
      const a = fx.appender.appendCapture(lbaOf(0), CHUNK_BLOCKS);
      const bChunks = [1, 2, 3, 4, 35, 5, 6, 7, 8];
      const cChunks = [9, 10, 11, 12, 13, 14, 15, 16, 17];
      const b = bChunks.map((c) => fx.appender.appendCapture(lbaOf(c), CHUNK_BLOCKS));
      const c = cChunks.map((c2) => fx.appender.appendCapture(lbaOf(c2), CHUNK_BLOCKS));
      const [ra, rb, rc] = await Promise.all([a, Promise.allSettled(b), Promise.allSettled(c)]);
      expect(ra.sequence).toBe(1n);
      // only chunk 35 fails; B's others and all of C are committed on the retry, in order
      expect(rb.map((o) => o.status)).toEqual(bChunks.map((x) => (x === 35 ? 'rejected' : 'fulfilled')));
      expect((rb[4] as PromiseRejectedResult).reason).toBeInstanceOf(SourceReadError);
      expect(rc.every((o) => o.status === 'fulfilled')).toBe(true);
      const good = [0, ...bChunks.filter((x) => x !== 35), ...cChunks];
      let scan = await checkLog(fx);
      expect(scan.records.map((x) => Number(x.sourceLba) / CHUNK_BLOCKS)).toEqual(good);
      const seqs = [ra, ...rb.filter((o) => o.status === 'fulfilled').map((o) => (o as PromiseFulfilledResult<CommittedRecord>).value), ...rc.map((o) => (o as PromiseFulfilledResult<CommittedRecord>).value)].map((r) => r.sequence);
      expect(seqs).toEqual(good.map((_, i) => BigInt(i + 1)));
      restore();
      await fx.appender.appendCapture(lbaOf(35), CHUNK_BLOCKS);
      const wave = [20, 21, 22, 23, 24, 25, 26, 27, 28, 29];
      await Promise.all(wave.map((c2) => fx.appender.appendCapture(lbaOf(c2), CHUNK_BLOCKS)));
      scan = await checkLog(fx);
      expect(scan.records.map((x) => Number(x.sourceLba) / CHUNK_BLOCKS)).toEqual([...good, 35, ...wave]);
      expect(scan.endLba).toBe(fx.appender.usedBlocks);
    } finally {
      await fx.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 5. a snapshot session over file stores
// ---------------------------------------------------------------------------------------------

class MemJournal implements SessionJournal {
  readonly saved: SessionRecord[] = [];
  async save(r: SessionRecord): Promise<void> {
    this.saved.push({ ...r });
  }
}

test('session over file stores: random concurrent writes; the view and source + OBF equal the source as it was at institution', async () => {
  const seed = seedFor('cow file session');
  const SOURCE = 8 * MiB;
  const src = await sourceFile(SOURCE);
  const obfPath = files.fresh('obf');
  const obfFile = await FileStore.open({ path: obfPath, size: 10 * MiB });
  const cow = new CowStore(src.store);
  const obf = new CowStore(obfFile);
  const spy = jest.spyOn(captureModule, 'commitCaptures');
  try {
    const session = await SnapshotSession.institute({ source: cow, sourceKey: '/backstores/fileio/src', obf, obfSpec: `file:${obfPath}`, journal: new MemJournal(), log });
    const oracle = fs.readFileSync(src.path); // no write is in flight yet
    expect(oracle.length).toBe(SOURCE);
    const blocks = Number(cow.blocks);
    const r = xorshift(seed);
    let writing = true;
    let viewChecks = 0;
    const viewer = (async () => {
      const v = xorshift(seed ^ 0x5a5a);
      while (writing) {
        const n = 1 + v.int(300);
        const lba = v.int(blocks - n);
        const got = await session.readImage(BigInt(lba), n);
        expect(sha(got)).toBe(sha(oracle.subarray(lba * BS, (lba + n) * BS)));
        viewChecks++;
      }
    })();
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 40; i++) {
          const n = 8 + r.int(249); // 4 KiB .. 128 KiB
          const lba = r.int(blocks - n + 1);
          await cow.write(BigInt(lba), r.bytes(n * BS));
        }
      }),
    );
    writing = false;
    await viewer;
    expect(viewChecks).toBeGreaterThan(0);
    expect(spy).toHaveBeenCalled(); // the session took the capture-commit path
    const st = session.status();
    expect(st.state).toBe('ACTIVE');
    expect(st.records).toBeGreaterThan(0);
    expect(sha(fs.readFileSync(src.path))).not.toBe(sha(oracle)); // the source moved on
    expect(sha(await session.readImage(0n, blocks))).toBe(sha(oracle));

    /** Source now + every OBF record over it, read with fs. */
    const rebuild = async () => {
      const sb = decodeSuperblock(fileBytes(obfPath, 0, BS));
      const scan = await scanLog((lba, n) => obfFile.read(lba, n), sb);
      const img = fs.readFileSync(src.path);
      for (const rec of scan.records) fileBytes(obfPath, Number(rec.dataLba) * BS, rec.dataBlocks * BS).copy(img, Number(rec.sourceLba) * BS);
      return { img, scan };
    };
    const before = await rebuild();
    expect(before.scan.records).toHaveLength(st.records);
    expect(sha(before.img)).toBe(sha(oracle));

    const sealed = await session.terminate();
    expect(sealed.state).toBe('SEALED');
    const after = await rebuild();
    expect(after.scan.seal?.dataRecordCount).toBe(BigInt(sealed.records));
    expect(after.scan.seal?.rollingHash.equals(after.scan.rollingHash)).toBe(true);
    expect(sha(after.img)).toBe(sha(oracle));
  } finally {
    await src.store.close();
    await obfFile.close();
  }
});

// ---------------------------------------------------------------------------------------------
// 6. After a failed commit, the commit that zeros the given-up blocks runs alone
// ---------------------------------------------------------------------------------------------

/** A memory OBF whose writes fail while `fail` is set, and whose next write is held when asked. */
class HoldingStore extends DelegatingStore {
  fail = false;
  private hold?: { until: Promise<void>; started: () => void };
  /** The next write waits for `release`; `started` resolves when it arrives. */
  holdNext(): { started: Promise<void>; release: () => void } {
    let release!: () => void;
    let started!: () => void;
    const s = new Promise<void>((r) => (started = r));
    this.hold = { until: new Promise<void>((r) => (release = r)), started };
    return { started: s, release };
  }
  override async write(lba: bigint, data: Buffer, opts?: { fua?: boolean }) {
    if (this.fail) throw new StoreError({ kind: 'write-error' }, 'injected OBF write error');
    const h = this.hold;
    if (h) {
      this.hold = undefined;
      h.started();
      await h.until;
    }
    return this.inner.write(lba, data, opts);
  }
}

test('after a failed commit, records queued while the zeroing commit is in flight are not zeroed by it', async () => {
  const src = new MemoryStore({ blocks: 64n * BigInt(CHUNK_BLOCKS), blockSize: BS });
  const obf = new HoldingStore(new MemoryStore({ blocks: 64n * BigInt(RECORD_BLOCKS), blockSize: BS }));
  const sb = superblock(src, obf.blocks);
  await obf.write(0n, encodeSuperblock(sb), { fua: true });
  const appender = new ObfAppender(obf, sb, freshState(), { depth: 4, minOverlapRecords: 1 });
  const data = (i: number) => Buffer.alloc(CHUNK, i + 1);
  // Records that fail, the last two in one commit: their blocks are given up, and the next
  // commit (one record, shorter) zeros what is left of them.
  obf.fail = true;
  const lost = await Promise.allSettled([0, 1, 12].map((i) => appender.appendData(BigInt(i * CHUNK_BLOCKS), CHUNK_BLOCKS, data(i))));
  expect(lost.every((r) => r.status === 'rejected')).toBe(true);
  obf.fail = false;
  // D: one record plus the zeros, held; E: ten more queued meanwhile.
  const held = obf.holdNext();
  const d = appender.appendData(2n * BigInt(CHUNK_BLOCKS), CHUNK_BLOCKS, data(2));
  await held.started;
  const e = Array.from({ length: 9 }, (_, k) => appender.appendData(BigInt((3 + k) * CHUNK_BLOCKS), CHUNK_BLOCKS, data(3 + k)));
  await new Promise((r) => setImmediate(r));
  held.release();
  await d;
  await Promise.all(e);
  const scan = await scanLog((lba, n) => obf.read(lba, n), sb);
  expect(scan.stop).toBe('clean-end');
  expect(scan.records.map((r) => Number(r.sourceLba / BigInt(CHUNK_BLOCKS)))).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  for (const r of scan.records) {
    const got = await obf.read(r.dataLba, r.dataBlocks);
    expect(got.equals(data(Number(r.sourceLba / BigInt(CHUNK_BLOCKS))))).toBe(true);
  }
});

test('a commit settles only when every write of it has ended: a write failing fast does not let the next commit reuse blocks a slow one is still writing', async () => {
  // A memory OBF: a zero record leaves a gap, so one commit is two writes. The first fails at
  // once, the second is held: the records must not fail before it ends.
  const mem = new MemoryStore({ blocks: 65536n, blockSize: 512 });
  const gates: Array<() => void> = [];
  const plan: Array<'hold' | 'fail' | 'pass'> = ['hold', 'fail', 'hold'];
  class Scripted extends DelegatingStore {
    override async write(lba: bigint, data: Buffer, opts?: { fua?: boolean }) {
      const step = plan.shift() ?? 'pass';
      if (step === 'fail') throw new StoreError({ kind: 'write-error' }, 'injected: first run');
      if (step === 'hold') await new Promise<void>((r) => gates.push(r));
      return this.inner.write(lba, data, opts);
    }
  }
  const obf = new Scripted(mem);
  const sb = superblock(new MemoryStore({ blocks: 512n, blockSize: BS }), 65536n);
  const appender = new ObfAppender(obf, sb, freshState());
  const first = appender.appendData(0n, 128, Buffer.alloc(64 * KiB, 1)); // commits alone, held
  await waitUntil(() => gates.length === 1, 2000, 'the first commit');
  // three records queue behind it and go as one batch: [data, zero, data] = two runs
  let settled = false;
  const batch = Promise.allSettled([
    appender.appendData(128n, 128, Buffer.alloc(64 * KiB, 2)),
    appender.appendData(256n, 128, Buffer.alloc(64 * KiB), { zero: true }),
    appender.appendData(384n, 128, Buffer.alloc(64 * KiB, 3)),
  ]).then((r) => {
    settled = true;
    return r;
  });
  gates.shift()!();
  await first;
  await waitUntil(() => gates.length === 1, 2000, 'the second run of the batch');
  await new Promise((r) => setTimeout(r, 30));
  expect(settled).toBe(false); // its first run failed, but the second is still being written
  gates.shift()!();
  const out = await batch;
  expect(out.every((o) => o.status === 'rejected')).toBe(true);
});

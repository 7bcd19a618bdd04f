import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  encodeDataRecord,
  encodeMarkerRecord,
  encodeSealRecord,
  encodeSuperblock,
  decodeSuperblock,
  ObfPolicy,
  ObfReason,
  ObfState,
  RollingHash,
  type ObfSuperblock,
} from '../../../src/obf/format';
import { checkMarker, checkSeal, LogTail, scanLog, type ObfScan } from '../../../src/obf/log';
import { ArgumentError } from '../../../src/errors';

const SNAPSHOT = '6a0c1e2f-3b4d-4e5f-8a9b-0c1d2e3f4a5b';
const OTHER_SNAPSHOT = '00000000-1111-4222-8333-444444444444';

function superblock(over: Partial<ObfSuperblock> = {}): ObfSuperblock {
  return {
    blockSize: 512,
    snapshotId: SNAPSHOT,
    seriesId: '11111111-2222-4333-8444-555555555555',
    sourceDesignator: { designatorType: 3, designator: Buffer.alloc(16, 0x60) },
    sourceBlockSize: 512,
    sourceCapacity: 1n << 21n,
    chunkSize: 65536,
    institutionTimeMs: 1767225600000,
    state: ObfState.ACTIVE,
    policy: ObfPolicy.PROTECT_APPLICATION,
    reason: ObfReason.NONE,
    logStartLba: 1n,
    capacityBlocks: 4096n,
    generation: 1n,
    updatedTimeMs: 1767225600000,
    markerSequence: 0n,
    sealedRecordCount: 0n,
    ...over,
  };
}

/** A Buffer-backed OBF LUN that records its reads and refuses reads past its end. */
class MemObf {
  readonly buf: Buffer;
  readonly reads: Array<[bigint, number]> = [];
  constructor(
    readonly B: number,
    readonly blocks: number,
  ) {
    this.buf = Buffer.alloc(B * blocks);
  }
  read = async (lba: bigint, n: number): Promise<Buffer> => {
    if (!(n >= 1) || lba < 0n || lba + BigInt(n) > BigInt(this.blocks)) {
      throw new Error(`read of ${n} blocks at ${lba} outside the LUN (${this.blocks} blocks)`);
    }
    this.reads.push([lba, n]);
    const off = Number(lba) * this.B;
    return Buffer.from(this.buf.subarray(off, off + n * this.B));
  };
  write(lba: bigint, data: Buffer): void {
    data.copy(this.buf, Number(lba) * this.B);
  }
}

interface Placed {
  lba: bigint;
  blocks: number;
  kind: 'data' | 'marker' | 'seal';
  sequence: bigint;
}

/** Appends records to a MemObf as a COW writer would, keeping the layout for the oracle. */
class LogWriter {
  lba: bigint;
  sequence = 1n;
  readonly hash = new RollingHash();
  dataRecords = 0n;
  dataBytes = 0n;
  markerSequence = 0n;
  readonly placed: Placed[] = [];
  constructor(
    readonly obf: MemObf,
    readonly sb: ObfSuperblock,
    private snapshotId = sb.snapshotId,
  ) {
    this.lba = sb.logStartLba;
    obf.write(0n, encodeSuperblock(sb));
  }
  private put(rec: Buffer, kind: Placed['kind']): Placed {
    const p = { lba: this.lba, blocks: rec.length / this.sb.blockSize, kind, sequence: this.sequence };
    this.obf.write(this.lba, rec);
    this.placed.push(p);
    this.lba += BigInt(p.blocks);
    this.sequence++;
    return p;
  }
  data(sourceLba: bigint, bytes = this.sb.chunkSize, seed = Number(sourceLba)): Placed {
    const data = Buffer.alloc(bytes);
    let x = (seed * 2654435761 + 1) >>> 0;
    for (let i = 0; i < bytes; i += 4) {
      x = (x * 1103515245 + 12345) >>> 0;
      data.writeUInt32BE(x, i);
    }
    const rec = encodeDataRecord(
      {
        sequence: this.sequence,
        snapshotId: this.snapshotId,
        sourceLba,
        sourceBlocks: bytes / this.sb.sourceBlockSize,
        timeMs: 1767225601000,
      },
      data,
      this.sb,
    );
    this.hash.update(rec.readUInt32BE(124));
    this.dataRecords++;
    this.dataBytes += BigInt(bytes);
    return this.put(rec, 'data');
  }
  marker(): Placed {
    this.markerSequence = this.sequence;
    const rec = encodeMarkerRecord(
      {
        sequence: this.sequence,
        snapshotId: this.snapshotId,
        timeMs: 1767225602000,
        dataRecordsBefore: this.dataRecords,
        dataBytesBefore: this.dataBytes,
      },
      this.sb,
    );
    return this.put(rec, 'marker');
  }
  seal(over: Partial<{ dataRecordCount: bigint; rollingHash: Buffer; markerSequence: bigint }> = {}): Placed {
    const rec = encodeSealRecord(
      {
        sequence: this.sequence,
        snapshotId: this.snapshotId,
        timeMs: 1767225603000,
        dataRecordCount: this.dataRecords,
        dataBytes: this.dataBytes,
        rollingHash: this.hash.digest(),
        markerSequence: this.markerSequence,
        ...over,
      },
      this.sb,
    );
    return this.put(rec, 'seal');
  }
}

interface Setup {
  sb: ObfSuperblock;
  obf: MemObf;
  w: LogWriter;
}

function setup(over: Partial<ObfSuperblock> = {}, lunBlocks?: number): Setup {
  const sb = superblock(over);
  const obf = new MemObf(sb.blockSize, lunBlocks ?? Number(sb.capacityBlocks));
  return { sb, obf, w: new LogWriter(obf, sb) };
}

const sources = (scan: ObfScan): bigint[] => scan.records.map((r) => r.sourceLba);

describe('scanLog', () => {
  test('an empty log: clean end at the log start', async () => {
    const { sb, obf } = setup();
    const scan = await scanLog(obf.read, sb);
    expect(scan).toMatchObject({ records: [], endLba: 1n, nextSequence: 1n, stop: 'clean-end', dataBytes: 0n });
    expect(scan.marker).toBeUndefined();
    expect(scan.seal).toBeUndefined();
    expect(scan.rollingHash.equals(createHash('sha256').digest())).toBe(true);
  });

  test('a clean log: every record, the next free LBA and sequence, bytes and rolling hash', async () => {
    const { obf, w } = setup();
    w.data(0n);
    w.data(1024n);
    w.data(128n, 512); // a short record (e.g. the last, partial chunk of the source)
    const scan = await scanLog(obf.read, decodeSuperblock(obf.buf));
    expect(scan.stop).toBe('clean-end');
    expect(scan.records).toEqual([
      expect.objectContaining({ sequence: 1n, obfLba: 1n, dataLba: 2n, sourceLba: 0n, sourceBlocks: 128 }),
      expect.objectContaining({ sequence: 2n, obfLba: 130n, dataLba: 131n, sourceLba: 1024n, sourceBlocks: 128 }),
      expect.objectContaining({ sequence: 3n, obfLba: 259n, dataLba: 260n, sourceLba: 128n, dataBlocks: 1 }),
    ]);
    expect(scan.records[0].crc).toBe(obf.buf.readUInt32BE(512 + 124));
    expect(scan.endLba).toBe(261n);
    expect(scan.endLba).toBe(w.lba);
    expect(scan.nextSequence).toBe(4n);
    expect(scan.dataBytes).toBe(2n * 65536n + 512n);
    expect(scan.rollingHash.equals(w.hash.digest())).toBe(true);
    expect(scan.stopDetail).toMatch(/LBA 261/);
  });

  test('a 4096-byte OBF for a 512-byte source', async () => {
    const { sb, obf, w } = setup({ blockSize: 4096, capacityBlocks: 100n });
    w.data(64n);
    w.data(0n, 4096);
    const scan = await scanLog(obf.read, sb);
    expect(scan.records.map((r) => [r.obfLba, r.sourceBlocks, r.dataBlocks])).toEqual([
      [1n, 128, 16],
      [18n, 8, 1],
    ]);
    expect(scan.endLba).toBe(20n);
  });

  test('a torn last record (data half written) ends the log with bad-crc; the prefix stays', async () => {
    const { sb, obf, w } = setup();
    w.data(0n);
    w.data(128n);
    const torn = w.data(256n);
    obf.buf.fill(0, Number(torn.lba + 64n) * 512); // the second half of its data never reached the disk
    const scan = await scanLog(obf.read, sb);
    expect(scan.stop).toBe('bad-crc');
    expect(sources(scan)).toEqual([0n, 128n]);
    expect(scan.endLba).toBe(torn.lba);
    expect(scan.nextSequence).toBe(3n);
    expect(scan.stopDetail).toMatch(/record 3 CRC32C/);
  });

  test('a torn header (only its first sector written on a 4096-byte OBF)', async () => {
    const { sb, obf, w } = setup({ blockSize: 4096, capacityBlocks: 100n });
    w.data(0n);
    const torn = w.data(128n);
    obf.buf.fill(0, Number(torn.lba) * 4096 + 100);
    const scan = await scanLog(obf.read, sb);
    expect(scan.stop).toBe('bad-crc');
    expect(scan.records).toHaveLength(1);
    expect(scan.endLba).toBe(torn.lba);
  });

  test('a sequence gap', async () => {
    const { sb, obf, w } = setup();
    w.data(0n);
    w.sequence = 5n;
    const gap = w.data(128n);
    w.sequence = 3n;
    w.data(256n);
    const scan = await scanLog(obf.read, sb);
    expect(scan.stop).toBe('sequence-gap');
    expect(scan.stopDetail).toMatch(/sequence 5, expected 2/);
    expect(sources(scan)).toEqual([0n]);
    expect(scan.endLba).toBe(gap.lba);
  });

  test('a reused LUN: the new log ends where the earlier snapshot’s longer log shows through', async () => {
    const { obf } = setup();
    const old = new LogWriter(obf, superblock({ snapshotId: OTHER_SNAPSHOT }));
    for (let i = 0n; i < 5n; i++) old.data(i * 128n);
    const sb = superblock();
    const w = new LogWriter(obf, sb);
    w.data(4096n);
    w.data(8192n);
    const scan = await scanLog(obf.read, decodeSuperblock(obf.buf));
    expect(scan.stop).toBe('foreign-snapshot');
    expect(scan.stopDetail).toMatch(OTHER_SNAPSHOT);
    expect(sources(scan)).toEqual([4096n, 8192n]);
    expect(scan.endLba).toBe(w.lba);
  });

  test('stale data that is not a record: bad-magic', async () => {
    const { sb, obf, w } = setup();
    w.data(0n);
    obf.buf.fill(0xa5, Number(w.lba) * 512);
    const scan = await scanLog(obf.read, sb);
    expect(scan).toMatchObject({ stop: 'bad-magic', endLba: 130n, nextSequence: 2n });
    expect(scan.records).toHaveLength(1);
  });

  test('a record whose sizes break the superblock’s geometry: bad-record', async () => {
    const { sb, obf, w } = setup();
    w.data(0n);
    // Written for a 4096-byte source: 1 source block = 8 OBF blocks; this source has 512-byte blocks.
    const wrong = encodeDataRecord(
      { sequence: 2n, snapshotId: SNAPSHOT, sourceLba: 1n, sourceBlocks: 1, timeMs: 0 },
      Buffer.alloc(4096, 1),
      { ...sb, sourceBlockSize: 4096 },
    );
    obf.write(w.lba, wrong);
    const scan = await scanLog(obf.read, sb);
    expect(scan.stop).toBe('bad-record');
    expect(scan.stopDetail).toMatch(/data blocks 8 × 512 bytes ≠ source block count 1 × 512 bytes/);
    expect(scan.records).toHaveLength(1);
  });

  test('an undecodable header with the record magic: bad-record', async () => {
    const { sb, obf, w } = setup();
    w.data(0n);
    const at = w.lba;
    w.data(128n);
    obf.buf[Number(at) * 512 + 4] = 7; // type 7
    const scan = await scanLog(obf.read, sb);
    expect(scan.stop).toBe('bad-record');
    expect(scan.stopDetail).toMatch(/type 7/);
    expect(scan.endLba).toBe(at);
  });

  test('a MARKER, then more records; the MARKER’s counts check out', async () => {
    const { sb, obf, w } = setup();
    w.data(0n);
    w.data(128n);
    const m = w.marker();
    w.data(256n);
    const scan = await scanLog(obf.read, sb);
    expect(scan.stop).toBe('clean-end');
    expect(scan.marker).toEqual({
      sequence: 3n,
      obfLba: m.lba,
      timeMs: 1767225602000,
      dataRecordsBefore: 2n,
      dataBytesBefore: 131072n,
    });
    expect(scan.records.map((r) => r.sequence)).toEqual([1n, 2n, 4n]);
    expect(scan.nextSequence).toBe(5n);
    expect(checkMarker(scan, sb.blockSize)).toEqual({ ok: true, mismatches: [] });
    expect(checkSeal(scan).ok).toBe(false);
  });

  test('a second MARKER is not valid', async () => {
    const { sb, obf, w } = setup();
    w.data(0n);
    w.marker();
    const second = w.marker();
    const scan = await scanLog(obf.read, sb);
    expect(scan.stop).toBe('bad-record');
    expect(scan.stopDetail).toMatch(/second MARKER/);
    expect(scan.endLba).toBe(second.lba);
  });

  test('checkMarker reports counts that disagree with the log', async () => {
    const { sb, obf, w } = setup();
    w.data(0n);
    w.dataRecords = 5n;
    w.marker();
    const scan = await scanLog(obf.read, sb);
    expect(checkMarker(scan, sb.blockSize)).toEqual({
      ok: false,
      mismatches: ['MARKER counts 5 DATA records before it, the log has 1'],
    });
    const empty = await scanLog(setup().obf.read, sb);
    expect(checkMarker(empty, 512).ok).toBe(false);
  });

  test('a SEAL ends the log; what follows it is not read as records', async () => {
    const { sb, obf, w } = setup();
    w.data(0n);
    w.marker();
    w.data(128n);
    const s = w.seal();
    w.data(256n); // garbage after the seal, even a well-formed record
    obf.buf.fill(0x5a, Number(w.lba) * 512);
    const scan = await scanLog(obf.read, sb);
    expect(scan.stop).toBe('after-seal');
    expect(scan.seal).toEqual({
      sequence: 4n,
      obfLba: s.lba,
      timeMs: 1767225603000,
      dataRecordCount: 2n,
      dataBytes: 131072n,
      rollingHash: scan.rollingHash,
      markerSequence: 2n,
    });
    expect(sources(scan)).toEqual([0n, 128n]);
    expect(scan.endLba).toBe(s.lba + 1n);
    expect(scan.nextSequence).toBe(5n);
    expect(checkSeal(scan)).toEqual({ ok: true, mismatches: [] });
  });

  test('checkSeal reports each total that disagrees with the log', async () => {
    const { sb, obf, w } = setup();
    w.data(0n);
    w.data(128n);
    w.seal({ dataRecordCount: 3n, rollingHash: Buffer.alloc(32), markerSequence: 9n });
    const scan = await scanLog(obf.read, sb);
    expect(scan.stop).toBe('after-seal');
    const check = checkSeal(scan);
    expect(check.ok).toBe(false);
    expect(check.mismatches).toHaveLength(3);
    expect(check.mismatches.join('\n')).toMatch(/SEAL counts 3 DATA records, the log has 2/);
    expect(check.mismatches.join('\n')).toMatch(/rolling hash 0000/);
    expect(check.mismatches.join('\n')).toMatch(/SEAL names MARKER sequence 9, the log has none/);
  });

  test('a torn SEAL leaves an unsealed log', async () => {
    const { sb, obf, w } = setup();
    w.data(0n);
    const s = w.seal();
    obf.buf[Number(s.lba) * 512 + 70] ^= 1;
    const scan = await scanLog(obf.read, sb);
    expect(scan.stop).toBe('bad-crc');
    expect(scan.seal).toBeUndefined();
    expect(checkSeal(scan).mismatches[0]).toMatch(/no SEAL record.*bad-crc/);
  });

  test('a log that fills the OBF to its capacity ends there (never reads past it)', async () => {
    const { sb, obf, w } = setup({ capacityBlocks: 1n + 3n * 129n }); // the LUN is exactly this big
    w.data(0n);
    w.data(128n);
    w.data(256n);
    const scan = await scanLog(obf.read, sb);
    expect(scan).toMatchObject({ stop: 'past-capacity', endLba: 388n, nextSequence: 4n });
    expect(scan.records).toHaveLength(3);
  });

  test('a record that would cross the capacity is not part of the log', async () => {
    const { sb, obf, w } = setup();
    w.data(0n);
    w.data(128n);
    const scan = await scanLog(obf.read, sb, { capacityBlocks: 200n });
    expect(scan.stop).toBe('past-capacity');
    expect(scan.stopDetail).toMatch(/129 blocks would cross the OBF capacity \(200 blocks\)/);
    expect(scan.records).toHaveLength(1);
    expect(scan.endLba).toBe(130n);
    expect(obf.reads.every(([lba, n]) => lba + BigInt(n) <= 200n)).toBe(true);
  });

  describe('reading', () => {
    test('reads ahead: each block once, in few calls of at most maxBatchBlocks', async () => {
      const { sb, obf, w } = setup({ capacityBlocks: 3000n });
      for (let i = 0n; i < 20n; i++) w.data(i * 128n);
      const scan = await scanLog(obf.read, sb);
      expect(scan.records).toHaveLength(20);
      // Default: 1 MiB = 2048 blocks per call; 20 × 129 = 2580 blocks of log.
      expect(obf.reads.length).toBeLessThanOrEqual(3);
      expect(obf.reads.every(([, n]) => n <= 2048)).toBe(true);
      const sorted = [...obf.reads].sort((a, b) => (a[0] < b[0] ? -1 : 1));
      for (let i = 1; i < sorted.length; i++) {
        expect(sorted[i][0]).toBeGreaterThanOrEqual(sorted[i - 1][0] + BigInt(sorted[i - 1][1]));
      }
    });

    test.each([1, 7, 16, 129, 130, 500])(
      'maxBatchBlocks %i: the same result, no read longer than it',
      async (maxBatchBlocks) => {
        const { sb, obf, w } = setup();
        w.data(0n);
        w.marker();
        w.data(128n, 1024);
        w.data(256n);
        w.seal();
        const scan = await scanLog(obf.read, sb, { maxBatchBlocks });
        expect(scan.stop).toBe('after-seal');
        expect(scan.records.map((r) => r.sourceLba)).toEqual([0n, 128n, 256n]);
        expect(checkSeal(scan).ok).toBe(true);
        expect(obf.reads.every(([, n]) => n <= maxBatchBlocks)).toBe(true);
      },
    );

    test('a torn record longer than maxBatchBlocks is caught piece by piece', async () => {
      const { sb, obf, w } = setup();
      w.data(0n);
      const torn = w.data(128n);
      obf.buf[Number(torn.lba + 120n) * 512] ^= 0xff;
      const scan = await scanLog(obf.read, sb, { maxBatchBlocks: 16 });
      expect(scan.stop).toBe('bad-crc');
      expect(scan.records).toHaveLength(1);
    });

    test('read errors propagate', async () => {
      const { sb, obf, w } = setup();
      w.data(0n);
      const failing = async (lba: bigint, n: number): Promise<Buffer> => {
        if (lba + BigInt(n) > 100n) throw new Error('MEDIUM ERROR');
        return obf.read(lba, n);
      };
      await expect(scanLog(failing, sb, { maxBatchBlocks: 64 })).rejects.toThrow('MEDIUM ERROR');
    });

    test('a read function that returns too little is an ArgumentError', async () => {
      const { sb } = setup();
      await expect(scanLog(async () => Buffer.alloc(10), sb)).rejects.toThrow(ArgumentError);
    });

    test('bad options are ArgumentErrors', async () => {
      const { sb, obf } = setup();
      await expect(scanLog(obf.read, sb, { maxBatchBlocks: 0 })).rejects.toThrow(ArgumentError);
      await expect(scanLog(obf.read, sb, { capacityBlocks: -1n })).rejects.toThrow(ArgumentError);
    });
  });

  // ------------------------------------------------------------------------------------------
  // Properties: random logs, cut or damaged anywhere, scan to exactly the intact prefix.
  // ------------------------------------------------------------------------------------------
  type Op = { kind: 'data'; units: number; lba: number } | { kind: 'marker' } | { kind: 'seal' };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constant('data' as const),
        units: fc.integer({ min: 1, max: 3 }),
        lba: fc.nat(1000),
      }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'marker' as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'seal' as const }) },
  );
  const geometryArb = fc.record({ B: fc.constantFrom(512, 4096), S: fc.constantFrom(512, 4096) });

  /** Builds a log from ops (at most one MARKER; nothing after a SEAL), slack blocks after it. */
  function build(g: { B: number; S: number }, ops: Op[], slack: number): Setup {
    const unit = Math.max(g.B, g.S);
    const sealAt = ops.findIndex((op) => op.kind === 'seal');
    const markerAt = ops.findIndex((op) => op.kind === 'marker');
    ops = ops.filter((op, i) => (sealAt < 0 || i <= sealAt) && (op.kind !== 'marker' || i === markerAt));
    let blocks = 1;
    for (const op of ops) blocks += 1 + (op.kind === 'data' ? (op.units * unit) / g.B : 0);
    const sb = superblock({
      blockSize: g.B,
      sourceBlockSize: g.S,
      chunkSize: 3 * 4096,
      sourceCapacity: 1n << 20n,
      capacityBlocks: BigInt(blocks + slack),
    });
    const obf = new MemObf(g.B, blocks + slack);
    const w = new LogWriter(obf, sb);
    for (const op of ops) {
      if (op.kind === 'data') w.data(BigInt(op.lba * (unit / g.S)), op.units * unit, op.lba + op.units);
      else if (op.kind === 'marker') w.marker();
      else w.seal();
    }
    return { sb, obf, w };
  }

  /** Records whose CRC-covered bytes (header 0–127 and data) are unchanged between two images. */
  function intactPrefix(w: LogWriter, before: Buffer, after: Buffer): Placed[] {
    const B = w.sb.blockSize;
    const out: Placed[] = [];
    for (const p of w.placed) {
      const h = Number(p.lba) * B;
      const ranges: Array<[number, number]> = [
        [h, h + 128],
        [h + B, h + p.blocks * B],
      ];
      if (!ranges.every(([a, b]) => before.subarray(a, b).equals(after.subarray(a, b)))) break;
      out.push(p);
    }
    return out;
  }

  function expectPrefix(scan: ObfScan, w: LogWriter, kept: Placed[]): void {
    const data = kept.filter((p) => p.kind === 'data');
    expect(scan.records.map((r) => [r.sequence, r.obfLba])).toEqual(data.map((p) => [p.sequence, p.lba]));
    const last = kept[kept.length - 1];
    expect(scan.endLba).toBe(last ? last.lba + BigInt(last.blocks) : w.sb.logStartLba);
    expect(scan.nextSequence).toBe(BigInt(kept.length + 1));
    expect(scan.marker?.sequence).toBe(kept.find((p) => p.kind === 'marker')?.sequence);
    expect(scan.seal?.sequence).toBe(kept.find((p) => p.kind === 'seal')?.sequence);
    if (scan.seal) expect(scan.stop).toBe('after-seal');
    const hash = new RollingHash();
    for (const r of scan.records) hash.update(r.crc);
    expect(scan.rollingHash.equals(hash.digest())).toBe(true);
  }

  test('property: a log cut at any byte (zeros or garbage after) scans to exactly its valid records', async () => {
    await fc.assert(
      fc.asyncProperty(
        geometryArb,
        fc.array(opArb, { maxLength: 8 }),
        fc.integer({ min: 0, max: 3 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.boolean(),
        fc.integer({ min: 1, max: 40 }),
        async (g, ops, slack, where, garbage, maxBatchBlocks) => {
          const { sb, obf, w } = build(g, ops, slack);
          const before = Buffer.from(obf.buf);
          const logStart = g.B; // never cut into the superblock
          const cut = logStart + Math.floor(where * (Number(w.lba) * g.B - logStart));
          if (garbage) for (let i = cut; i < obf.buf.length; i++) obf.buf[i] = (i * 151 + 7) & 0xff;
          else obf.buf.fill(0, cut);
          const scan = await scanLog(obf.read, sb, { maxBatchBlocks });
          const kept = intactPrefix(w, before, obf.buf);
          expectPrefix(scan, w, kept);
          if (kept.length === w.placed.length && !scan.seal) {
            expect(scan.stop).toBe(slack === 0 ? 'past-capacity' : garbage ? 'bad-magic' : 'clean-end');
          }
          if (kept.length < w.placed.length) {
            // A cut inside a header that leaves its magic stops on the first field it spoiled:
            // the sequence (sequence-gap) or the snapshot id (foreign-snapshot) as well.
            expect(['clean-end', 'bad-magic', 'bad-crc', 'bad-record', 'sequence-gap', 'foreign-snapshot']).toContain(scan.stop);
          }
          if (scan.seal) expect(checkSeal(scan).ok).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
  });

  test('property: a live log (records landing out of order, half written) polled as it grows reads as scanLog does at each step', async () => {
    await fc.assert(
      fc.asyncProperty(
        geometryArb,
        fc.array(opArb, { minLength: 1, maxLength: 8 }),
        fc.array(fc.tuple(fc.nat(7), fc.boolean()), { minLength: 1, maxLength: 24 }),
        fc.integer({ min: 1, max: 40 }),
        async (g, ops, steps, maxBatchBlocks) => {
          const { sb, obf: final, w } = build(g, ops, 2);
          const B = g.B;
          const live = new MemObf(B, final.blocks);
          live.write(0n, final.buf.subarray(0, B));
          const tail = new LogTail(live.read, sb, { maxBatchBlocks });
          // Each step writes one of the next few records not written yet (commits land out of
          // order), whole or only its first half (a write still in progress), then polls.
          const pending = [...w.placed];
          const half = new Set<Placed>();
          const land = (p: Placed, whole: boolean) => {
            const a = Number(p.lba) * B;
            const b = a + p.blocks * B;
            const to = whole ? b : a + Math.max(1, Math.floor((b - a) / 2));
            final.buf.copy(live.buf, a, a, to);
          };
          const check = async () => {
            const got = await tail.poll();
            const want = await scanLog(live.read, sb, { maxBatchBlocks });
            expect({ seq: got.records.map((r) => r.sequence), end: got.endLba, next: got.nextSequence, stop: got.stop, hash: got.rollingHash.toString('hex'), seal: got.seal?.sequence, marker: got.marker?.sequence }).toEqual({
              seq: want.records.map((r) => r.sequence),
              end: want.endLba,
              next: want.nextSequence,
              stop: want.stop,
              hash: want.rollingHash.toString('hex'),
              seal: want.seal?.sequence,
              marker: want.marker?.sequence,
            });
          };
          for (const [k, whole] of steps) {
            if (pending.length === 0) break;
            const p = pending[k % Math.min(pending.length, 3)];
            const completes = whole || half.has(p);
            land(p, completes);
            if (completes) pending.splice(pending.indexOf(p), 1);
            else half.add(p);
            await check();
          }
          for (const p of pending) land(p, true);
          await check();
          expectPrefix(await tail.poll(), w, w.placed);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('property: damage anywhere in a log keeps exactly the records before it (never throws)', async () => {
    await fc.assert(
      fc.asyncProperty(
        geometryArb,
        fc.array(opArb, { minLength: 1, maxLength: 8 }),
        fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 255 })), {
          minLength: 1,
          maxLength: 3,
        }),
        async (g, ops, flips) => {
          const { sb, obf, w } = build(g, ops, 2);
          const before = Buffer.from(obf.buf);
          for (const [where, x] of flips) {
            const i = g.B + Math.floor(where * (obf.buf.length - g.B - 1));
            obf.buf[i] ^= x;
          }
          const scan = await scanLog(obf.read, sb, { maxBatchBlocks: 64 });
          expectPrefix(scan, w, intactPrefix(w, before, obf.buf));
        },
      ),
      { numRuns: 400 },
    );
  });
});

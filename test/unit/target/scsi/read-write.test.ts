/**
 * READ and WRITE (6/10/12/16): data checked by hash against an independent model buffer, the
 * shared LBA range check, transfer length limits, flags (DPO, FUA, WCE), write protection, and
 * the handling of Data-Out that disagrees with the CDB (what libiscsi's residual tests expect).
 */
import crypto from 'node:crypto';
import fc from 'fast-check';
import { MemoryStore } from '../../../../src/store/memory';
import { LogicalUnit } from '../../../../src/target/scsi/logical-unit';
import {
  GOOD,
  I1,
  I2,
  INVALID_FIELD_IN_CDB,
  LBA_OUT_OF_RANGE,
  WRITE_PROTECTED,
  blockCdb,
  expectSense,
  hexb,
  modeSelect6Cdb,
  modeSelect6List,
  modeSense6Cdb,
  pagesOf6,
  ready,
  run,
  sha256,
  type Fixture,
} from './helpers';

const BS = 512;
const LENGTHS = [6, 10, 12, 16] as const;

async function readAll(f: Fixture): Promise<Buffer> {
  return f.mem.read(0n, Number(f.mem.blocks));
}

describe('READ / WRITE', () => {
  test.each(LENGTHS)('WRITE(%i) then READ(%i) round-trips, at the start and at the end of the medium', async (len) => {
    const f = await ready();
    const blocks = Number(f.mem.blocks);
    for (const [lba, n] of [
      [0, 1],
      [3, 17],
      [blocks - 5, 5],
      [blocks - 1, 1],
    ]) {
      const data = crypto.randomBytes(n * BS);
      const w = await run(f, blockCdb('write', len, lba, n), { dataOut: data });
      expect(w).toEqual({ status: GOOD, dataOutLength: n * BS });
      const r = await run(f, blockCdb('read', len, lba, n));
      expect(r.status).toBe(GOOD);
      expect(sha256(r.data as Buffer)).toBe(sha256(data));
    }
  });

  test('READ(6) and WRITE(6) with TRANSFER LENGTH 0 move 256 blocks', async () => {
    const f = await ready();
    const data = crypto.randomBytes(256 * BS);
    expect((await run(f, blockCdb('write', 6, 10, 0), { dataOut: data })).status).toBe(GOOD);
    const r = await run(f, blockCdb('read', 6, 10, 0));
    expect(r.data?.length).toBe(256 * BS);
    expect(sha256(r.data as Buffer)).toBe(sha256(data));
  });

  test.each([10, 12, 16] as const)('TRANSFER LENGTH 0 in (%i) is GOOD with no data, and still range-checked', async (len) => {
    const f = await ready();
    const blocks = f.mem.blocks;
    expect(await run(f, blockCdb('read', len, 0, 0))).toEqual({ status: GOOD });
    expect((await run(f, blockCdb('write', len, blocks, 0))).status).toBe(GOOD); // just past the end, nothing moved
    expectSense(await run(f, blockCdb('read', len, blocks + 1n, 0)), LBA_OUT_OF_RANGE);
    expectSense(await run(f, blockCdb('write', len, blocks + 1n, 0)), LBA_OUT_OF_RANGE);
    expect(f.store.writes).toBe(0);
  });

  test.each(LENGTHS)('(%i) beyond the end of the medium is LOGICAL BLOCK ADDRESS OUT OF RANGE, and writes nothing', async (len) => {
    const f = await ready();
    const blocks = f.mem.blocks;
    const cases: Array<[bigint, number]> = [
      [blocks, 1],
      [blocks - 1n, 2],
      [blocks + 1n - 200n, 200],
    ];
    if (len !== 6) cases.push([len === 16 ? 0xffff_ffff_ffff_ffffn : 0xffff_ffffn, 1], [len === 16 ? 1n << 63n : 0x8000_0000n, 8]);
    for (const [lba, n] of cases) {
      expectSense(await run(f, blockCdb('read', len, lba, n)), LBA_OUT_OF_RANGE);
      expectSense(await run(f, blockCdb('write', len, lba, n), { dataOut: Buffer.alloc(n * BS, 1) }), LBA_OUT_OF_RANGE);
    }
    expect(f.store.mutations).toBe(0);
  });

  test('a TRANSFER LENGTH above MAXIMUM TRANSFER LENGTH is INVALID FIELD IN CDB at the count field', async () => {
    const f = await ready({}, { limits: { maxTransferBlocks: 64 } });
    expectSense(await run(f, blockCdb('read', 10, 0, 65)), { ...INVALID_FIELD_IN_CDB, cdbByte: 7 });
    expectSense(await run(f, blockCdb('read', 16, 0, 65)), { ...INVALID_FIELD_IN_CDB, cdbByte: 10 });
    expectSense(await run(f, blockCdb('write', 12, 0, 65), { dataOut: Buffer.alloc(65 * BS) }), { ...INVALID_FIELD_IN_CDB, cdbByte: 6 });
    expect((await run(f, blockCdb('read', 10, 0, 64))).status).toBe(GOOD);
  });

  test.each([10, 12, 16] as const)('RDPROTECT/WRPROTECT ≠ 0 in (%i) is INVALID FIELD IN CDB (byte 1), no protection information', async (len) => {
    const f = await ready();
    for (let p = 1; p < 8; p++) {
      expectSense(await run(f, blockCdb('read', len, 0, 1, p << 5)), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 7 });
      expectSense(await run(f, blockCdb('write', len, 0, 1, p << 5), { dataOut: Buffer.alloc(BS) }), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 7 });
    }
    expect(f.store.writes).toBe(0);
  });

  test('DPO, FUA and FUA_NV are accepted; FUA makes the store write durable (fua)', async () => {
    const f = await ready();
    for (const flags of [0x10, 0x08, 0x0a, 0x02, 0x1a]) {
      expect((await run(f, blockCdb('read', 10, 0, 1, flags))).status).toBe(GOOD);
      expect((await run(f, blockCdb('write', 16, 0, 1, flags), { dataOut: Buffer.alloc(BS, 1) })).status).toBe(GOOD);
    }
    expect(f.store.writes).toBe(5);
    expect(f.store.fuaWrites).toBe(3);
  });

  test('the mode parameter header advertises DPOFUA; WCE = 0 makes every write FUA', async () => {
    const f = await ready();
    const ms = (await run(f, modeSense6Cdb(0x3f))).data as Buffer;
    expect(ms[2] & 0x10).toBe(0x10);
    const caching = Buffer.from(pagesOf6(ms).get(0x08) as Buffer);
    caching[2] &= ~0x04; // WCE off
    expect((await run(f, modeSelect6Cdb(4 + caching.length), { dataOut: modeSelect6List(caching) })).status).toBe(GOOD);
    await run(f, blockCdb('write', 10, 0, 1), { dataOut: Buffer.alloc(BS, 1) });
    expect(f.store.fuaWrites).toBe(1);
  });

  test('READ ignores Data-Out sent with it (libiscsi Read10Invalid)', async () => {
    const f = await ready();
    const r = await run(f, blockCdb('read', 10, 0, 1), { dataOut: Buffer.alloc(BS, 0xa6) });
    expect(r.status).toBe(GOOD);
    expect(r.data).toEqual(Buffer.alloc(BS));
    expect(f.store.writes).toBe(0);
  });

  describe('Data-Out that disagrees with the TRANSFER LENGTH (iSCSI EDTL ≠ CDB)', () => {
    test('none at all: GOOD, nothing written, the transfer length reported for the residual', async () => {
      const f = await ready();
      expect(await run(f, blockCdb('write', 10, 0, 1), { edtl: 0 })).toEqual({ status: GOOD, dataOutLength: BS });
      expect(f.store.writes).toBe(0);
    });

    test('fewer whole blocks: only those are written; the rest of the range is untouched', async () => {
      const f = await ready();
      await run(f, blockCdb('write', 10, 0, 2), { dataOut: Buffer.alloc(2 * BS, 0x61) });
      expect((await run(f, blockCdb('write', 10, 0, 2), { dataOut: Buffer.alloc(BS, 0x62) })).status).toBe(GOOD);
      const back = (await run(f, blockCdb('read', 10, 0, 2))).data as Buffer;
      expect(sha256(back)).toBe(sha256(Buffer.concat([Buffer.alloc(BS, 0x62), Buffer.alloc(BS, 0x61)])));
    });

    test('more than asked: only the TRANSFER LENGTH is written', async () => {
      const f = await ready();
      await run(f, blockCdb('write', 10, 0, 2), { dataOut: Buffer.alloc(2 * BS, 0x61) });
      expect((await run(f, blockCdb('write', 10, 0, 1), { dataOut: Buffer.alloc(2 * BS, 0x62) })).status).toBe(GOOD);
      const back = (await run(f, blockCdb('read', 10, 0, 2))).data as Buffer;
      expect(sha256(back)).toBe(sha256(Buffer.concat([Buffer.alloc(BS, 0x62), Buffer.alloc(BS, 0x61)])));
    });

    test('data ending inside a block: INVALID FIELD IN COMMAND INFORMATION UNIT, nothing written', async () => {
      const f = await ready();
      const r = await run(f, blockCdb('write', 10, 0, 1), { dataOut: Buffer.alloc(200, 1) });
      expectSense(r, { key: 5, asc: 0x0e, ascq: 0x03 });
      expect(r.dataOutLength).toBe(BS); // the transport still reports the residual overflow
      expect(f.store.writes).toBe(0);
    });
  });

  test('write protection: configured, by the store, or by SWP; reads still work', async () => {
    const configured = await ready({}, { readOnly: true });
    const byStore = await ready({ readOnly: true });
    for (const f of [configured, byStore]) {
      expectSense(await run(f, blockCdb('write', 10, 0, 1), { dataOut: Buffer.alloc(BS) }), WRITE_PROTECTED);
      expect((await run(f, blockCdb('read', 10, 0, 1))).status).toBe(GOOD);
      const ms = (await run(f, modeSense6Cdb(0x3f))).data as Buffer;
      expect(ms[2] & 0x80).toBe(0x80); // WP
      expect(f.store.writes).toBe(0);
    }
  });

  test('a write-protected mapping protects one initiator only; the logical unit stays shared', async () => {
    const f = await ready({}, {}, [I1, I2]);
    expectSense(await run(f, blockCdb('write', 10, 0, 1), { dataOut: Buffer.alloc(BS), writeProtect: true }), WRITE_PROTECTED);
    expect(((await run(f, modeSense6Cdb(0x3f), { writeProtect: true })).data as Buffer)[2] & 0x80).toBe(0x80);
    expect((await run(f, blockCdb('read', 10, 0, 1), { writeProtect: true })).status).toBe(GOOD);
    expect((await run(f, blockCdb('write', 10, 0, 1), { dataOut: Buffer.alloc(BS, 1), nexus: I2 })).status).toBe(GOOD);
    expect(((await run(f, modeSense6Cdb(0x3f), { nexus: I2 })).data as Buffer)[2] & 0x80).toBe(0);
    expect(f.store.writes).toBe(1);
  });

  test('a 4096-byte-block logical unit moves 4096-byte blocks', async () => {
    const f = await ready({ blocks: 64n, blockSize: 4096 });
    const data = crypto.randomBytes(3 * 4096);
    expect((await run(f, blockCdb('write', 10, 61, 3), { dataOut: data })).status).toBe(GOOD);
    expect(sha256((await run(f, blockCdb('read', 16, 61, 3))).data as Buffer)).toBe(sha256(data));
    expectSense(await run(f, blockCdb('read', 16, 62, 3)), LBA_OUT_OF_RANGE);
  });

  test('a store failure becomes the sense of its kind (read error, COW refusals, forwarded sense)', async () => {
    const { StoreError } = await import('../../../../src/store/store');
    const mem = new MemoryStore({ blocks: 64n, blockSize: 512 });
    const store = Object.create(mem) as MemoryStore;
    let failure: ConstructorParameters<typeof StoreError>[0] = { kind: 'read-error' };
    store.read = async () => {
      throw new StoreError(failure, 'injected');
    };
    const lu = new LogicalUnit({ store });
    const view = new Map([[0, lu]]);
    const f = { lu, view } as unknown as Fixture;
    await run(f, '00 00 00 00 00 00');
    // Each kind's sense; the COW filter's refusals and not-ready states too (SPC-4 r37 Annex D,
    // SPC-5 r19 Annex F).
    const kinds: Array<[ConstructorParameters<typeof StoreError>[0], { key: number; asc: number; ascq: number }]> = [
      [{ kind: 'read-error' }, { key: 3, asc: 0x11, ascq: 0 }],
      [{ kind: 'not-ready' }, { key: 2, asc: 0x04, ascq: 0 }],
      [{ kind: 'no-space' }, { key: 7, asc: 0x27, ascq: 0x07 }],
      [{ kind: 'hardware-write-error' }, { key: 4, asc: 0x0c, ascq: 0 }],
      [{ kind: 'command-timeout' }, { key: 0xb, asc: 0x2e, ascq: 0x02 }],
      [{ kind: 'not-ready-becoming-ready' }, { key: 2, asc: 0x04, ascq: 0x01 }],
      [{ kind: 'not-ready-manual-intervention' }, { key: 2, asc: 0x04, ascq: 0x03 }],
    ];
    for (const [kind, sense] of kinds) {
      failure = kind;
      expectSense(await run(f, blockCdb('read', 10, 0, 1)), sense);
    }
    const remote = hexb('70 00 0b 00 00 00 00 0a 00 00 00 00 47 03 00 00 00 00');
    failure = { kind: 'forwarded', status: 0x02, sense: remote };
    expect(await run(f, blockCdb('read', 10, 0, 1))).toEqual({ status: 0x02, sense: remote });
    failure = { kind: 'forwarded', status: 0x08 };
    expect(await run(f, blockCdb('read', 10, 0, 1))).toEqual({ status: 0x08 });
  });

  test('model: random writes of every size and form leave exactly what an independent buffer predicts', async () => {
    const f = await ready({ blocks: 300n });
    const model = Buffer.alloc(300 * BS);
    const op = fc.record({
      len: fc.constantFrom(6, 10, 12, 16),
      lba: fc.integer({ min: 0, max: 299 }),
      n: fc.integer({ min: 1, max: 40 }),
      fill: fc.integer({ min: 0, max: 255 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
        for (const o of ops) {
          const n = Math.min(o.n, 300 - o.lba);
          const data = crypto.createHash('sha512').update(`${o.fill}:${o.lba}:${n}`).digest();
          const payload = Buffer.alloc(n * BS);
          for (let i = 0; i < payload.length; i += data.length) data.copy(payload, i);
          const r = await run(f, blockCdb('write', o.len as 6 | 10 | 12 | 16, o.lba, n), { dataOut: payload });
          expect(r.status).toBe(GOOD);
          payload.copy(model, o.lba * BS);
        }
        expect(sha256(await readAll(f))).toBe(sha256(model));
        const whole = await run(f, blockCdb('read', 16, 0, 300));
        expect(sha256(whole.data as Buffer)).toBe(sha256(model));
      }),
      { numRuns: 40 },
    );
  });
});

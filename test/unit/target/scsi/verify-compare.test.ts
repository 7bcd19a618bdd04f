/**
 * VERIFY, WRITE AND VERIFY, ORWRITE and COMPARE AND WRITE: byte checks against a model, the
 * MISCOMPARE sense with the offset of the first difference, and the atomicity of COMPARE AND
 * WRITE against concurrent writes through the same logical unit.
 */
import crypto from 'node:crypto';
import {
  GOOD,
  INVALID_FIELD_IN_CDB,
  LBA_OUT_OF_RANGE,
  MISCOMPARE,
  WRITE_PROTECTED,
  blockCdb,
  compareAndWriteCdb,
  expectSense,
  ready,
  run,
  sha256,
} from './helpers';

const BS = 512;

describe('VERIFY', () => {
  test.each([10, 12, 16] as const)('(%i) BYTCHK 01b: equal data is GOOD, one flipped byte is MISCOMPARE at its offset', async (len) => {
    const f = await ready();
    const data = crypto.randomBytes(9 * BS);
    await run(f, blockCdb('write', 16, 100, 9), { dataOut: data });
    expect(await run(f, blockCdb('verify', len, 100, 9, 0x02), { dataOut: data })).toEqual({ status: GOOD, dataOutLength: 9 * BS });
    for (const at of [0, 511, 512, 4000, 9 * BS - 1]) {
      const bad = Buffer.from(data);
      bad[at] ^= 0x58;
      expectSense(await run(f, blockCdb('verify', len, 100, 9, 0x02), { dataOut: bad }), { ...MISCOMPARE, information: BigInt(at) });
    }
  });

  test('BYTCHK 00b verifies the medium only: Data-Out is ignored (libiscsi MismatchNoCmp)', async () => {
    const f = await ready();
    expect((await run(f, blockCdb('verify', 10, 0, 4, 0), { dataOut: Buffer.alloc(4 * BS, 0xff) })).status).toBe(GOOD);
    expect((await run(f, blockCdb('verify', 16, 0, Number(f.mem.blocks), 0))).status).toBe(GOOD); // the whole medium, no transfer limit
  });

  test('BYTCHK 11b compares one block with every block of the range', async () => {
    const f = await ready();
    const block = crypto.randomBytes(BS);
    await run(f, blockCdb('writesame', 10, 50, 20), { dataOut: block });
    expect((await run(f, blockCdb('verify', 10, 50, 20, 0x06), { dataOut: block })).status).toBe(GOOD);
    expectSense(await run(f, blockCdb('verify', 10, 50, 21, 0x06), { dataOut: block }), MISCOMPARE);
  });

  test('BYTCHK 10b is reserved; VRPROTECT ≠ 0 refused; DPO accepted; ranges checked', async () => {
    const f = await ready();
    expectSense(await run(f, blockCdb('verify', 10, 0, 1, 0x04)), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 2 });
    for (let p = 1; p < 8; p++) expectSense(await run(f, blockCdb('verify', 12, 0, 1, (p << 5) | 0x02), { dataOut: Buffer.alloc(BS) }), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 7 });
    expect((await run(f, blockCdb('verify', 16, 0, 1, 0x12), { dataOut: Buffer.alloc(BS) })).status).toBe(GOOD);
    expectSense(await run(f, blockCdb('verify', 10, f.mem.blocks + 1n, 0, 0x02)), LBA_OUT_OF_RANGE);
    expectSense(await run(f, blockCdb('verify', 16, f.mem.blocks - 1n, 2, 0x02), { dataOut: Buffer.alloc(2 * BS) }), LBA_OUT_OF_RANGE);
  });
});

describe('WRITE AND VERIFY', () => {
  test.each([10, 12, 16] as const)('(%i) writes durably and verifies; BYTCHK 1x is INVALID FIELD IN CDB', async (len) => {
    const f = await ready();
    const data = crypto.randomBytes(5 * BS);
    for (const bytchk of [0, 0x02]) {
      expect(await run(f, blockCdb('writeverify', len, f.mem.blocks - 5n, 5, bytchk | 0x10), { dataOut: data })).toEqual({ status: GOOD, dataOutLength: 5 * BS });
    }
    expect(f.store.fuaWrites).toBe(2);
    expect(sha256((await run(f, blockCdb('read', 16, f.mem.blocks - 5n, 5))).data as Buffer)).toBe(sha256(data));
    expectSense(await run(f, blockCdb('writeverify', len, 0, 1, 0x04), { dataOut: data.subarray(0, BS) }), { ...INVALID_FIELD_IN_CDB, cdbByte: 1 });
    expectSense(await run(f, blockCdb('writeverify', len, f.mem.blocks, 1, 0x02), { dataOut: data.subarray(0, BS) }), LBA_OUT_OF_RANGE);
    expect((await run(f, blockCdb('writeverify', len, 0, 0))).status).toBe(GOOD);
  });

  test('is refused on a write-protected logical unit', async () => {
    const f = await ready({}, { readOnly: true });
    expectSense(await run(f, blockCdb('writeverify', 10, 0, 1, 0x02), { dataOut: Buffer.alloc(BS) }), WRITE_PROTECTED);
  });
});

describe('ORWRITE(16)', () => {
  test('ORs the Data-Out into the blocks (libiscsi OrWrite.Verify pattern)', async () => {
    const f = await ready();
    for (const n of [1, 7, 64]) {
      await run(f, blockCdb('write', 10, 0, n), { dataOut: Buffer.alloc(n * BS) });
      expect((await run(f, blockCdb('orwrite', 16, 0, n), { dataOut: Buffer.alloc(n * BS, 0xa5) })).status).toBe(GOOD);
      expect((await run(f, blockCdb('read', 10, 0, n))).data).toEqual(Buffer.alloc(n * BS, 0xa5));
      expect((await run(f, blockCdb('orwrite', 16, 0, n, 0x18), { dataOut: Buffer.alloc(n * BS, 0x5a) })).status).toBe(GOOD);
      expect((await run(f, blockCdb('read', 10, 0, n))).data).toEqual(Buffer.alloc(n * BS, 0xff));
    }
  });

  test('range, protection and 0 blocks', async () => {
    const f = await ready();
    expect((await run(f, blockCdb('orwrite', 16, 0, 0))).status).toBe(GOOD);
    expectSense(await run(f, blockCdb('orwrite', 16, f.mem.blocks + 1n, 0)), LBA_OUT_OF_RANGE);
    expectSense(await run(f, blockCdb('orwrite', 16, (1n << 64n) - 1n, 1), { dataOut: Buffer.alloc(BS) }), LBA_OUT_OF_RANGE);
    expectSense(await run(f, blockCdb('orwrite', 16, 0, 1, 0x20), { dataOut: Buffer.alloc(BS) }), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 7 });
    expect(f.store.writes).toBe(0);
  });
});

describe('COMPARE AND WRITE', () => {
  test('writes when the blocks match, for 1..255 blocks at both ends of the medium', async () => {
    const f = await ready({ blocks: 600n });
    for (const n of [1, 2, 100, 255]) {
      for (const lba of [0n, 600n - BigInt(n)]) {
        await run(f, blockCdb('write', 16, lba, n), { dataOut: Buffer.alloc(n * BS, 0x41) });
        const dataOut = Buffer.concat([Buffer.alloc(n * BS, 0x41), Buffer.alloc(n * BS, 0x42)]);
        expect(await run(f, compareAndWriteCdb(lba, n), { dataOut })).toEqual({ status: GOOD, dataOutLength: 2 * n * BS });
        expect((await run(f, blockCdb('read', 16, lba, n))).data).toEqual(Buffer.alloc(n * BS, 0x42));
      }
    }
  });

  test('a miscompare writes nothing and reports the offset of the first difference', async () => {
    const f = await ready();
    await run(f, blockCdb('write', 16, 10, 4), { dataOut: Buffer.alloc(4 * BS, 0x41) });
    const dataOut = Buffer.concat([Buffer.alloc(4 * BS, 0x41), Buffer.alloc(4 * BS, 0x42)]);
    dataOut[4 * BS - 27] = 0x43;
    const before = f.store.writes;
    expectSense(await run(f, compareAndWriteCdb(10, 4), { dataOut }), { ...MISCOMPARE, information: BigInt(4 * BS - 27) });
    expect(f.store.writes).toBe(before);
    expect((await run(f, blockCdb('read', 16, 10, 4))).data).toEqual(Buffer.alloc(4 * BS, 0x41));
  });

  test('NUMBER OF LOGICAL BLOCKS above the maximum, and Data-Out of the wrong size, are INVALID FIELD IN CDB (byte 13)', async () => {
    const f = await ready({}, { limits: { maxCompareAndWriteBlocks: 8 } });
    expectSense(await run(f, compareAndWriteCdb(0, 9), { dataOut: Buffer.alloc(18 * BS) }), { ...INVALID_FIELD_IN_CDB, cdbByte: 13 });
    expectSense(await run(f, compareAndWriteCdb(0, 1), { dataOut: Buffer.alloc(4 * BS) }), { ...INVALID_FIELD_IN_CDB, cdbByte: 13 });
    expectSense(await run(f, compareAndWriteCdb(0, 3), { dataOut: Buffer.alloc(4 * BS) }), { ...INVALID_FIELD_IN_CDB, cdbByte: 13 });
    // libiscsi sends 256 blocks as a NUMBER OF LOGICAL BLOCKS byte of 0 with 512 blocks of Data-Out.
    expectSense(await run(f, compareAndWriteCdb(0, 0), { dataOut: Buffer.alloc(512 * BS) }), { ...INVALID_FIELD_IN_CDB, cdbByte: 13 });
    expect(await run(f, compareAndWriteCdb(0, 0))).toEqual({ status: GOOD, dataOutLength: 0 });
    expect(f.store.writes).toBe(0);
  });

  test('range, write protection, WRPROTECT; DPO/FUA accepted (FUA durable)', async () => {
    const f = await ready();
    const two = Buffer.alloc(2 * BS);
    expectSense(await run(f, compareAndWriteCdb(f.mem.blocks, 1), { dataOut: two }), LBA_OUT_OF_RANGE);
    expectSense(await run(f, compareAndWriteCdb(0, 1, 0x20), { dataOut: two }), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 7 });
    for (const flags of [0x10, 0x08, 0x18]) expect((await run(f, compareAndWriteCdb(0, 1, flags), { dataOut: two })).status).toBe(GOOD);
    expect(f.store.fuaWrites).toBe(2);
    const ro = await ready({}, { readOnly: true });
    expectSense(await run(ro, compareAndWriteCdb(0, 1), { dataOut: two }), WRITE_PROTECTED);
  });

  test('is atomic against concurrent writes: of many racing CAWs from the same state, exactly one wins', async () => {
    const f = await ready();
    await run(f, blockCdb('write', 10, 0, 8), { dataOut: Buffer.alloc(8 * BS, 0) });
    const tries = 20;
    const replies = await Promise.all(
      Array.from({ length: tries }, (_, i) =>
        run(f, compareAndWriteCdb(0, 8), { dataOut: Buffer.concat([Buffer.alloc(8 * BS, 0), Buffer.alloc(8 * BS, i + 1)]) }),
      ),
    );
    const winners = replies.map((r, i) => [r.status, i] as const).filter(([s]) => s === GOOD);
    expect(winners).toHaveLength(1);
    for (const r of replies) if (r.status !== GOOD) expectSense(r, MISCOMPARE);
    expect((await run(f, blockCdb('read', 10, 0, 8))).data).toEqual(Buffer.alloc(8 * BS, winners[0][1] + 1));
    expect(f.lu.locks.heldCount).toBe(0);
  });
});

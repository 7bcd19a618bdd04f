/**
 * WRITE SAME, UNMAP, GET LBA STATUS, SYNCHRONIZE CACHE, PRE-FETCH, WRITE ATOMIC(16), READ DEFECT
 * DATA, START STOP UNIT and PREVENT ALLOW MEDIUM REMOVAL.
 */
import crypto from 'node:crypto';
import {
  GOOD,
  INVALID_FIELD_IN_CDB,
  INVALID_FIELD_IN_PARAMETER_LIST,
  INVALID_OPCODE,
  LBA_OUT_OF_RANGE,
  PARAMETER_LIST_LENGTH_ERROR,
  WRITE_PROTECTED,
  blockCdb,
  expectSense,
  hexb,
  ready,
  run,
  serviceActionIn16,
  sha256,
  unmapCdb,
  unmapList,
  type Fixture,
} from './helpers';

const BS = 512;
const IU = { key: 5, asc: 0x0e, ascq: 0x03 };

interface LbaStatus {
  lba: bigint;
  blocks: number;
  status: number;
}

function lbaStatus(data: Buffer): { length: number; descriptors: LbaStatus[] } {
  const descriptors: LbaStatus[] = [];
  for (let off = 8; off + 16 <= data.length; off += 16) {
    descriptors.push({ lba: data.readBigUInt64BE(off), blocks: data.readUInt32BE(off + 8), status: data[off + 12] & 0x0f });
  }
  return { length: data.readUInt32BE(0), descriptors };
}

async function readBlocks(f: Fixture, lba: bigint | number, n: number): Promise<Buffer> {
  return (await run(f, blockCdb('read', 16, lba, n))).data as Buffer;
}

describe('WRITE SAME', () => {
  test.each([10, 16] as const)('(%i) writes one block over the range; 0 blocks means to the end of the medium', async (len) => {
    const f = await ready({ blocks: 400n });
    const block = crypto.randomBytes(BS);
    expect(await run(f, blockCdb('writesame', len, 5, 37), { dataOut: block })).toEqual({ status: GOOD, dataOutLength: BS });
    const back = await readBlocks(f, 5, 37);
    for (let i = 0; i < 37; i++) expect(back.subarray(i * BS, (i + 1) * BS)).toEqual(block);
    expect(await readBlocks(f, 42, 1)).toEqual(Buffer.alloc(BS));
    expect((await run(f, blockCdb('writesame', len, 390, 0), { dataOut: block })).status).toBe(GOOD);
    const tail = await readBlocks(f, 390, 10);
    expect(sha256(tail)).toBe(sha256(Buffer.concat(Array.from({ length: 10 }, () => block))));
  });

  test('MAXIMUM WRITE SAME LENGTH is enforced, also for "to the end"', async () => {
    const f = await ready({ blocks: 400n }, { limits: { maxWriteSameBlocks: 100 } });
    const block = Buffer.alloc(BS);
    expectSense(await run(f, blockCdb('writesame', 10, 0, 101), { dataOut: block }), { ...INVALID_FIELD_IN_CDB, cdbByte: 7 });
    expectSense(await run(f, blockCdb('writesame', 16, 0, 0), { dataOut: block }), { ...INVALID_FIELD_IN_CDB, cdbByte: 10 });
    expectSense(await run(f, blockCdb('writesame', 10, 299, 0), { dataOut: block }), INVALID_FIELD_IN_CDB);
    expect((await run(f, blockCdb('writesame', 10, 300, 0), { dataOut: block })).status).toBe(GOOD);
    expect((await run(f, blockCdb('writesame', 16, 301, 0), { dataOut: block })).status).toBe(GOOD);
  });

  test('UNMAP = 1 deallocates (reads zeros, GET LBA STATUS deallocated), whatever the Data-Out block holds', async () => {
    const f = await ready({ blocks: 64n });
    await run(f, blockCdb('write', 10, 0, 64), { dataOut: Buffer.alloc(64 * BS, 0xff) });
    expect((await run(f, blockCdb('writesame', 10, 8, 16, 0x08), { dataOut: Buffer.alloc(BS) })).status).toBe(GOOD);
    expect(f.store.unmaps).toBe(1);
    expect(await readBlocks(f, 8, 16)).toEqual(Buffer.alloc(16 * BS));
    const st = lbaStatus((await run(f, serviceActionIn16(0x12, 8, 100))).data as Buffer);
    expect(st.descriptors[0]).toEqual({ lba: 8n, blocks: 16, status: 1 });
    expect((await run(f, blockCdb('writesame', 16, 30, 2, 0x08), { dataOut: Buffer.alloc(BS, 7) })).status).toBe(GOOD);
    expect(f.store.unmaps).toBe(2);
    expect(await readBlocks(f, 30, 2)).toEqual(Buffer.alloc(2 * BS));
  });

  test('NDOB (16) writes zeros with no Data-Out; with UNMAP it deallocates', async () => {
    const f = await ready({ blocks: 64n });
    await run(f, blockCdb('write', 10, 0, 64), { dataOut: Buffer.alloc(64 * BS, 0xff) });
    expect(await run(f, blockCdb('writesame', 16, 4, 4, 0x01))).toEqual({ status: GOOD, dataOutLength: 0 });
    expect(await run(f, blockCdb('writesame', 16, 10, 4, 0x09))).toEqual({ status: GOOD, dataOutLength: 0 });
    expect(f.store.unmaps).toBe(1);
    expect(await readBlocks(f, 4, 10)).toEqual(Buffer.concat([Buffer.alloc(4 * BS), Buffer.alloc(2 * BS, 0xff), Buffer.alloc(4 * BS)]));
  });

  test('ANCHOR, the obsolete PBDATA/LBDATA bits, WRPROTECT and NDOB in (10) are refused by the usage data', async () => {
    const f = await ready();
    const block = Buffer.alloc(BS);
    expectSense(await run(f, blockCdb('writesame', 10, 0, 1, 0x10), { dataOut: block }), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 4 });
    expectSense(await run(f, blockCdb('writesame', 10, 0, 1, 0x18), { dataOut: block }), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 4 });
    expectSense(await run(f, blockCdb('writesame', 16, 0, 1, 0x06), { dataOut: block }), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 2 });
    expectSense(await run(f, blockCdb('writesame', 10, 0, 1, 0x01), { dataOut: block }), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 0 });
    for (let p = 1; p < 8; p++) expectSense(await run(f, blockCdb('writesame', 10, 0, 1, p << 5), { dataOut: block }), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 7 });
    expect(f.store.mutations).toBe(0);
  });

  test('UNMAP = 1 on a fully provisioned logical unit is INVALID FIELD IN CDB', async () => {
    const f = await ready({}, { thinProvisioning: false });
    expectSense(await run(f, blockCdb('writesame', 16, 0, 1, 0x08), { dataOut: Buffer.alloc(BS) }), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 3 });
  });

  test('Data-Out must be exactly one block; write protection comes first', async () => {
    const f = await ready();
    for (const n of [0, BS / 2, 2 * BS]) {
      expectSense(await run(f, blockCdb('writesame', 10, 0, 1, 0x08), { dataOut: Buffer.alloc(n) }), IU);
    }
    const ro = await ready({}, { readOnly: true });
    expectSense(await run(ro, blockCdb('writesame', 10, 0, 1, 0x08)), WRITE_PROTECTED);
    expectSense(await run(ro, blockCdb('writesame', 16, 0, 1), { dataOut: Buffer.alloc(BS) }), WRITE_PROTECTED);
    expect(f.store.mutations + ro.store.mutations).toBe(0);
  });

  test('beyond the end: LOGICAL BLOCK ADDRESS OUT OF RANGE', async () => {
    const f = await ready();
    const b = f.mem.blocks;
    for (const [lba, n] of [[b, 1], [b - 1n, 2], [b + 1n, 0], [0xffff_ffffn, 1]] as Array<[bigint, number]>) {
      expectSense(await run(f, blockCdb('writesame', 10, lba, n), { dataOut: Buffer.alloc(BS) }), LBA_OUT_OF_RANGE);
    }
    expectSense(await run(f, blockCdb('writesame', 16, 1n << 63n, 1), { dataOut: Buffer.alloc(BS) }), LBA_OUT_OF_RANGE);
  });
});

describe('UNMAP', () => {
  test('deallocates every descriptor; unmapped blocks read zeros', async () => {
    const f = await ready({ blocks: 128n });
    await run(f, blockCdb('write', 10, 0, 128), { dataOut: Buffer.alloc(128 * BS, 0x61) });
    const list = unmapList([[0, 3], [10, 1], [127, 1], [50, 0]]);
    expect(await run(f, unmapCdb(list.length), { dataOut: list })).toEqual({ status: GOOD, dataOutLength: list.length });
    const back = await readBlocks(f, 0, 128);
    const model = Buffer.alloc(128 * BS, 0x61);
    model.fill(0, 0, 3 * BS);
    model.fill(0, 10 * BS, 11 * BS);
    model.fill(0, 127 * BS);
    expect(sha256(back)).toBe(sha256(model));
  });

  test('parameter list checks: lengths, descriptor count, LBA count, range — nothing deallocated on error', async () => {
    const f = await ready({ blocks: 128n }, { limits: { maxUnmapDescriptors: 2, maxUnmapLbaCount: 10 } });
    const ok = unmapList([[0, 1]]);
    expect(await run(f, unmapCdb(0))).toEqual({ status: GOOD, dataOutLength: 0 });
    expectSense(await run(f, unmapCdb(7), { dataOut: ok.subarray(0, 7) }), PARAMETER_LIST_LENGTH_ERROR);
    expectSense(await run(f, unmapCdb(24), { dataOut: ok.subarray(0, 20) }), PARAMETER_LIST_LENGTH_ERROR);
    const long = Buffer.from(ok);
    long.writeUInt16BE(32, 2); // BLOCK DESCRIPTOR DATA LENGTH past the list
    expectSense(await run(f, unmapCdb(long.length), { dataOut: long }), PARAMETER_LIST_LENGTH_ERROR);
    const three = unmapList([[0, 1], [2, 1], [4, 1]]);
    expectSense(await run(f, unmapCdb(three.length), { dataOut: three }), { ...INVALID_FIELD_IN_PARAMETER_LIST, paramByte: 2 });
    const many = unmapList([[0, 6], [20, 5]]);
    expectSense(await run(f, unmapCdb(many.length), { dataOut: many }), { ...INVALID_FIELD_IN_PARAMETER_LIST, paramByte: 32 });
    const outside = unmapList([[0, 1], [127, 2]]);
    expectSense(await run(f, unmapCdb(outside.length), { dataOut: outside }), LBA_OUT_OF_RANGE);
    expectSense(await run(f, unmapCdb(ok.length, true), { dataOut: ok }), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 0 });
    expect(f.store.unmaps).toBe(0);
    // A trailing partial descriptor is ignored.
    const partial = Buffer.concat([ok, Buffer.alloc(8)]);
    partial.writeUInt16BE(24, 2);
    expect((await run(f, unmapCdb(partial.length), { dataOut: partial })).status).toBe(GOOD);
    // An empty list and the LBA just past the end with 0 blocks are fine (libiscsi Unmap.ZeroBlocks).
    expect((await run(f, unmapCdb(8), { dataOut: unmapList([]) })).status).toBe(GOOD);
    expect((await run(f, unmapCdb(24), { dataOut: unmapList([[128, 0]]) })).status).toBe(GOOD);
  });

  test('is write protected on a read-only LU and absent on a fully provisioned one', async () => {
    const ro = await ready({}, { readOnly: true });
    const l = unmapList([[0, 1]]);
    expectSense(await run(ro, unmapCdb(l.length), { dataOut: l }), WRITE_PROTECTED);
    const thick = await ready({}, { thinProvisioning: false });
    expectSense(await run(thick, unmapCdb(l.length), { dataOut: l }), INVALID_OPCODE);
  });
});

describe('GET LBA STATUS', () => {
  test('mapped and deallocated extents from the requested LBA on, cut to the allocation length', async () => {
    const f = await ready({ blocks: 100n });
    await run(f, blockCdb('write', 10, 10, 5), { dataOut: Buffer.alloc(5 * BS, 1) });
    await run(f, blockCdb('write', 10, 30, 1), { dataOut: Buffer.alloc(BS, 1) });
    const st = lbaStatus((await run(f, serviceActionIn16(0x12, 12, 1000))).data as Buffer);
    expect(st.descriptors).toEqual([
      { lba: 12n, blocks: 3, status: 0 },
      { lba: 15n, blocks: 15, status: 1 },
      { lba: 30n, blocks: 1, status: 0 },
      { lba: 31n, blocks: 69, status: 1 },
    ]);
    expect(st.length).toBe(4 + 16 * 4);
    const one = (await run(f, serviceActionIn16(0x12, 0, 24))).data as Buffer;
    expect(one.length).toBe(24);
    expect(lbaStatus(one).descriptors).toEqual([{ lba: 0n, blocks: 10, status: 1 }]);
    expect((await run(f, serviceActionIn16(0x12, 99, 8))).data?.length).toBe(8);
  });

  test('a starting LBA past the last one is LOGICAL BLOCK ADDRESS OUT OF RANGE (libiscsi GetLBAStatus.BeyondEol)', async () => {
    const f = await ready();
    for (const lba of [f.mem.blocks, f.mem.blocks + 1n, 1n << 63n, (1n << 64n) - 1n]) {
      expectSense(await run(f, serviceActionIn16(0x12, lba, 24)), LBA_OUT_OF_RANGE);
    }
    expect((await run(f, serviceActionIn16(0x12, f.mem.blocks - 1n, 24))).status).toBe(GOOD);
  });

  test('a fully provisioned logical unit reports everything mapped', async () => {
    const f = await ready({ blocks: 50n }, { thinProvisioning: false });
    expect(lbaStatus((await run(f, serviceActionIn16(0x12, 5, 100))).data as Buffer).descriptors).toEqual([{ lba: 5n, blocks: 45, status: 0 }]);
  });
});

describe('SYNCHRONIZE CACHE and PRE-FETCH', () => {
  test.each([10, 16] as const)('SYNCHRONIZE CACHE(%i) flushes the store and checks the range', async (len) => {
    const f = await ready();
    expect(await run(f, blockCdb('sync', len, 0, 0))).toEqual({ status: GOOD });
    expect(await run(f, blockCdb('sync', len, 10, 5, 0x02))).toEqual({ status: GOOD });
    expect(f.store.flushes).toBe(2);
    expectSense(await run(f, blockCdb('sync', len, f.mem.blocks - 1n, 2)), LBA_OUT_OF_RANGE);
  });

  test.each([10, 16] as const)('PRE-FETCH(%i): GOOD (no cache to fill) whatever IMMED and GROUP say; range checked', async (len) => {
    const f = await ready();
    for (const [flags, group] of [[0, 0], [0x02, 0], [0, 3], [0x02, 3]]) {
      expect(await run(f, blockCdb('prefetch', len, 0, 1, flags, group))).toEqual({ status: GOOD });
    }
    expect((await run(f, blockCdb('prefetch', len, f.mem.blocks - 256n, 256))).status).toBe(GOOD);
    expectSense(await run(f, blockCdb('prefetch', len, f.mem.blocks + 1n, 0)), LBA_OUT_OF_RANGE);
    expectSense(await run(f, blockCdb('prefetch', len, f.mem.blocks - 1n, 2)), LBA_OUT_OF_RANGE);
  });
});

describe('WRITE ATOMIC(16)', () => {
  const atomic = (lba: bigint | number, n: number, flags = 0, boundary = 0) => {
    const c = Buffer.alloc(16);
    c[0] = 0x9c;
    c[1] = flags;
    c.writeBigUInt64BE(BigInt.asUintN(64, BigInt(lba)), 2);
    c.writeUInt16BE(boundary, 10);
    c.writeUInt16BE(n, 12);
    return c;
  };

  test('writes on a memory store; range, size and boundary checks', async () => {
    const f = await ready({}, { limits: { maxAtomicTransferBlocks: 16 } });
    const data = crypto.randomBytes(16 * BS);
    expect(await run(f, atomic(100, 16, 0x18), { dataOut: data })).toEqual({ status: GOOD, dataOutLength: 16 * BS });
    expect(f.store.fuaWrites).toBe(1);
    expect(sha256(await readBlocks(f, 100, 16))).toBe(sha256(data));
    expectSense(await run(f, atomic(0, 17), { dataOut: Buffer.alloc(17 * BS) }), { ...INVALID_FIELD_IN_CDB, cdbByte: 12 });
    expectSense(await run(f, atomic(0, 1, 0, 1), { dataOut: Buffer.alloc(BS) }), { ...INVALID_FIELD_IN_CDB, cdbByte: 11 });
    expectSense(await run(f, atomic(f.mem.blocks - 1n, 2), { dataOut: Buffer.alloc(2 * BS) }), LBA_OUT_OF_RANGE);
    expectSense(await run(f, atomic(0, 2), { dataOut: Buffer.alloc(BS) }), IU);
    expect((await run(f, atomic(0, 0))).status).toBe(GOOD);
  });

  test('is not offered where a write could be torn (atomicWrite off)', async () => {
    const f = await ready({}, { atomicWrite: false });
    expectSense(await run(f, atomic(0, 1), { dataOut: Buffer.alloc(BS) }), INVALID_OPCODE);
  });
});

describe('READ DEFECT DATA, START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL', () => {
  test('READ DEFECT DATA(10)/(12): empty lists in the requested format; reserved formats refused', async () => {
    const f = await ready();
    expect((await run(f, '37 00 18 00 00 00 00 00 20 00')).data).toEqual(hexb('00 18 00 00'));
    expect((await run(f, '37 00 03 00 00 00 00 00 02 00')).data).toEqual(hexb('00 03'));
    expect((await run(f, 'b7 1d 00 00 00 00 00 00 00 20 00 00')).data).toEqual(hexb('00 1d 00 00 00 00 00 00'));
    expectSense(await run(f, '37 00 01 00 00 00 00 00 20 00'), { ...INVALID_FIELD_IN_CDB, cdbByte: 2 });
  });

  test('START STOP UNIT: start/stop are GOOD (a stop flushes unless NO_FLUSH), LOEJ and reserved power conditions refused', async () => {
    const f = await ready();
    expect((await run(f, '1b 00 00 00 01 00')).status).toBe(GOOD);
    expect((await run(f, '1b 01 00 00 00 00')).status).toBe(GOOD);
    expect(f.store.flushes).toBe(1);
    expect((await run(f, '1b 00 00 00 04 00')).status).toBe(GOOD);
    expect(f.store.flushes).toBe(1);
    expect((await run(f, '1b 00 00 00 31 00')).status).toBe(GOOD);
    expectSense(await run(f, '1b 00 00 00 02 00'), { ...INVALID_FIELD_IN_CDB, cdbByte: 4, bit: 1 });
    expectSense(await run(f, '1b 00 00 00 41 00'), { ...INVALID_FIELD_IN_CDB, cdbByte: 4, bit: 7 });
  });

  test('PREVENT ALLOW MEDIUM REMOVAL: allow is GOOD, prevent is refused (no removable medium)', async () => {
    const f = await ready();
    expect((await run(f, '1e 00 00 00 00 00')).status).toBe(GOOD);
    expectSense(await run(f, '1e 00 00 00 01 00'), { ...INVALID_FIELD_IN_CDB, cdbByte: 4 });
  });
});

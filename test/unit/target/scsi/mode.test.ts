/**
 * MODE SENSE(6/10) and MODE SELECT(6/10): pages, page control, block descriptors, parameter list
 * validation with field pointers, D_SENSE (sense format), SWP (write protection), and the MODE
 * PARAMETERS CHANGED unit attention.
 */
import { decodeSense } from '../../../../src/scsi/sense';
import {
  GOOD,
  I1,
  I2,
  INVALID_FIELD_IN_CDB,
  INVALID_FIELD_IN_PARAMETER_LIST,
  PARAMETER_LIST_LENGTH_ERROR,
  blockCdb,
  expectSense,
  modeSelect10Cdb,
  modeSelect6Cdb,
  modeSelect6List,
  modeSense10Cdb,
  modeSense6Cdb,
  pagesOf6,
  ready,
  run,
  ua,
  type Fixture,
} from './helpers';

const BS = 512;

async function page(f: Fixture, code: number, pc = 0): Promise<Buffer> {
  const data = (await run(f, modeSense6Cdb(code, { pc, dbd: true }))).data as Buffer;
  return pagesOf6(data).get(code) as Buffer;
}

async function select(f: Fixture, p: Buffer, nexus = I1) {
  return run(f, modeSelect6Cdb(4 + p.length), { dataOut: modeSelect6List(p), nexus });
}

describe('MODE SENSE', () => {
  test('(6) all pages: header, short block descriptor, caching, control, IEC pages in order', async () => {
    const f = await ready({ blocks: 1000n });
    const d = (await run(f, modeSense6Cdb(0x3f))).data as Buffer;
    expect(d[0]).toBe(d.length - 1); // MODE DATA LENGTH
    expect(d[1]).toBe(0); // MEDIUM TYPE
    expect(d[2]).toBe(0x10); // DPOFUA, not WP
    expect(d[3]).toBe(8); // BLOCK DESCRIPTOR LENGTH
    expect(d.readUInt32BE(4)).toBe(1000);
    expect(d.readUIntBE(9, 3)).toBe(BS);
    expect([...pagesOf6(d).keys()]).toEqual([0x08, 0x0a, 0x1c]);
    const caching = pagesOf6(d).get(0x08) as Buffer;
    expect([caching.length, caching[2] & 0x05]).toEqual([20, 0x04]); // WCE on, RCD off
    const control = pagesOf6(d).get(0x0a) as Buffer;
    expect(control.length).toBe(12);
    expect(control[2] >> 5).toBe(0); // TST
    expect(control[3] >> 4).toBe(1); // QUEUE ALGORITHM MODIFIER
    expect((control[3] >> 1) & 3).toBe(0); // QERR
    expect(control[2] & 0x04).toBe(0); // D_SENSE
  });

  test('subpage FFh returns the same pages; one page alone equals its part of all pages', async () => {
    const f = await ready();
    const all = (await run(f, modeSense6Cdb(0x3f, { dbd: true }))).data as Buffer;
    expect((await run(f, modeSense6Cdb(0x3f, { dbd: true, subpage: 0xff }))).data).toEqual(all);
    for (const code of [0x08, 0x0a, 0x1c]) expect(await page(f, code)).toEqual(pagesOf6(all).get(code));
  });

  test('(10) with LLBAA returns a long LBA block descriptor; DBD leaves it out', async () => {
    const f = await ready({ blocks: 1234n });
    const d = (await run(f, modeSense10Cdb(0x0a, { llbaa: true }))).data as Buffer;
    expect(d.readUInt16BE(0)).toBe(d.length - 2);
    expect(d[4] & 0x01).toBe(1); // LONGLBA
    expect(d.readUInt16BE(6)).toBe(16);
    expect(d.readBigUInt64BE(8)).toBe(1234n);
    expect(d.readUInt32BE(20)).toBe(BS);
    expect(d[24]).toBe(0x0a);
    const short = (await run(f, modeSense10Cdb(0x0a))).data as Buffer;
    expect(short.readUInt16BE(6)).toBe(8);
    const none = (await run(f, modeSense10Cdb(0x0a, { dbd: true }))).data as Buffer;
    expect(none.readUInt16BE(6)).toBe(0);
    expect(none.length).toBe(8 + 12);
  });

  test('changeable values: WCE/RCD, D_SENSE, SWP; nothing in IEC', async () => {
    const f = await ready();
    expect((await page(f, 0x08, 1))[2]).toBe(0x05);
    const control = await page(f, 0x0a, 1);
    expect([control[2], control[3], control[4], control[5]]).toEqual([0x04, 0, 0x08, 0]);
    expect((await page(f, 0x1c, 1)).subarray(2)).toEqual(Buffer.alloc(10));
    expect(await page(f, 0x0a, 2)).toEqual(await page(f, 0x0a, 0)); // default = current, untouched
  });

  test('saved values are not supported (39h/00h); unknown pages and subpages are INVALID FIELD IN CDB', async () => {
    const f = await ready();
    expectSense(await run(f, modeSense6Cdb(0x3f, { pc: 3 })), { key: 5, asc: 0x39, ascq: 0, cdbByte: 2, bit: 7 });
    expectSense(await run(f, modeSense6Cdb(0x19)), { ...INVALID_FIELD_IN_CDB, cdbByte: 2, bit: 5 });
    expectSense(await run(f, modeSense6Cdb(0x0a, { subpage: 1 })), { ...INVALID_FIELD_IN_CDB, cdbByte: 3 });
  });

  test('allocation length cuts the data, MODE DATA LENGTH still tells the whole', async () => {
    const f = await ready();
    const full = (await run(f, modeSense6Cdb(0x3f))).data as Buffer;
    const cut = (await run(f, modeSense6Cdb(0x3f, { alloc: 4 }))).data as Buffer;
    expect(cut).toEqual(full.subarray(0, 4));
  });
});

describe('MODE SELECT', () => {
  test('D_SENSE = 1 switches errors to descriptor format sense; other nexuses get MODE PARAMETERS CHANGED', async () => {
    const f = await ready({}, {}, [I1, I2]);
    const control = await page(f, 0x0a);
    control[2] |= 0x04;
    expect(await select(f, control)).toEqual({ status: GOOD, dataOutLength: 16 });
    expect((await page(f, 0x0a))[2] & 0x04).toBe(0x04);
    const r = await run(f, blockCdb('read', 16, (1n << 64n) - 1n, 1));
    const s = decodeSense(r.sense as Buffer);
    expect(s).toMatchObject({ format: 'descriptor', senseKey: 5, asc: 0x21, ascq: 0 });
    expectSense(await run(f, '00 00 00 00 00 00', { nexus: I2 }), ua(0x2a, 0x01));
    expect((await run(f, '00 00 00 00 00 00', { nexus: I1 })).status).toBe(GOOD); // not the nexus that changed it
    // Selecting the same values again changes nothing and tells nobody.
    expect((await select(f, control)).status).toBe(GOOD);
    expect((await run(f, '00 00 00 00 00 00', { nexus: I2 })).status).toBe(GOOD);
  });

  test('descriptor format sense keeps the field pointer and the INFORMATION of a miscompare', async () => {
    const f = await ready();
    const control = await page(f, 0x0a);
    control[2] |= 0x04;
    expect((await select(f, control)).status).toBe(GOOD);
    const bad = decodeSense((await run(f, blockCdb('read', 10, 0, 1, 0x20))).sense as Buffer);
    expect(bad).toMatchObject({ format: 'descriptor', senseKey: 5, asc: 0x24, senseKeySpecific: { kind: 'fieldPointer', cd: true, fieldPointer: 1, bpv: true, bitPointer: 7 } });
    const data = Buffer.alloc(BS, 0x33);
    await run(f, blockCdb('write', 10, 0, 1), { dataOut: data });
    const wrong = Buffer.from(data);
    wrong[100] = 0;
    const mis = decodeSense((await run(f, blockCdb('verify', 10, 0, 1, 0x02), { dataOut: wrong })).sense as Buffer);
    expect(mis).toMatchObject({ format: 'descriptor', senseKey: 0xe, asc: 0x1d, valid: true, information: 100n });
    // REQUEST SENSE still follows its own DESC bit.
    expect(decodeSense((await run(f, '03 00 00 00 ff 00')).data as Buffer).format).toBe('fixed');
  });

  test('SWP = 1 write-protects the medium (27h/02h) and sets WP; reads still work; SWP = 0 undoes it', async () => {
    const f = await ready();
    const control = await page(f, 0x0a);
    control[4] |= 0x08;
    expect((await select(f, control)).status).toBe(GOOD);
    expect((await run(f, blockCdb('read', 10, 0, 1))).status).toBe(GOOD);
    expectSense(await run(f, blockCdb('write', 10, 0, 1), { dataOut: Buffer.alloc(BS) }), { key: 7, asc: 0x27, ascq: 0x02 });
    expect(((await run(f, modeSense6Cdb(0x3f))).data as Buffer)[2] & 0x80).toBe(0x80);
    control[4] &= ~0x08;
    expect((await select(f, control)).status).toBe(GOOD);
    expect((await run(f, blockCdb('write', 10, 0, 1), { dataOut: Buffer.alloc(BS) })).status).toBe(GOOD);
  });

  test('MODE SELECT(10) with a block descriptor restating the capacity is accepted', async () => {
    const f = await ready({ blocks: 100n });
    const caching = await page(f, 0x08);
    caching[2] &= ~0x04;
    const list = Buffer.concat([Buffer.alloc(8), Buffer.alloc(8), caching]);
    list.writeUInt16BE(8, 6);
    list.writeUInt32BE(100, 8);
    list.writeUIntBE(BS, 13, 3);
    expect((await run(f, modeSelect10Cdb(list.length), { dataOut: list })).status).toBe(GOOD);
    expect((await page(f, 0x08))[2] & 0x04).toBe(0);
  });

  test('parameter list errors point at the field and change nothing', async () => {
    const f = await ready({ blocks: 100n });
    const control = await page(f, 0x0a);
    const before = (await run(f, modeSense6Cdb(0x3f))).data;
    // A bit that is not changeable: TST (byte 2 bits 7:5) of the control page at list offset 4.
    const tst = Buffer.from(control);
    tst[2] |= 0x20;
    expectSense(await select(f, tst), { ...INVALID_FIELD_IN_PARAMETER_LIST, paramByte: 6, bit: 5 });
    // The changeable D_SENSE together with an unchangeable QERR: nothing applied.
    const mixed = Buffer.from(control);
    mixed[2] |= 0x04;
    mixed[3] |= 0x02;
    expectSense(await select(f, mixed), { ...INVALID_FIELD_IN_PARAMETER_LIST, paramByte: 7, bit: 1 });
    // Wrong PAGE LENGTH, unknown page, subpage format.
    const badLength = Buffer.from(control);
    badLength[1] = 0x0b;
    expectSense(await run(f, modeSelect6Cdb(4 + 13), { dataOut: modeSelect6List(badLength, Buffer.alloc(1)) }), { ...INVALID_FIELD_IN_PARAMETER_LIST, paramByte: 5 });
    expectSense(await select(f, Buffer.from([0x19, 0x02, 0, 0])), { ...INVALID_FIELD_IN_PARAMETER_LIST, paramByte: 4, bit: 5 });
    expectSense(await select(f, Buffer.from([0x4a, 0x01, 0x00, 0x00])), { ...INVALID_FIELD_IN_PARAMETER_LIST, paramByte: 4, bit: 6 });
    // MEDIUM TYPE, block descriptor length, block length, capacity.
    const medium = modeSelect6List(control);
    medium[1] = 1;
    expectSense(await run(f, modeSelect6Cdb(medium.length), { dataOut: medium }), { ...INVALID_FIELD_IN_PARAMETER_LIST, paramByte: 1 });
    const bdl = modeSelect6List(control);
    bdl[3] = 4;
    expectSense(await run(f, modeSelect6Cdb(bdl.length), { dataOut: bdl }), { ...INVALID_FIELD_IN_PARAMETER_LIST, paramByte: 3 });
    const desc = Buffer.concat([Buffer.from([0, 0, 0, 8]), Buffer.alloc(8), control]);
    desc.writeUIntBE(4096, 9, 3);
    expectSense(await run(f, modeSelect6Cdb(desc.length), { dataOut: desc }), { ...INVALID_FIELD_IN_PARAMETER_LIST, paramByte: 9 });
    desc.writeUIntBE(BS, 9, 3);
    desc.writeUInt32BE(99, 4);
    expectSense(await run(f, modeSelect6Cdb(desc.length), { dataOut: desc }), { ...INVALID_FIELD_IN_PARAMETER_LIST, paramByte: 4 });
    expect((await run(f, modeSense6Cdb(0x3f))).data).toEqual(before);
  });

  test('length errors, SP, PF; an empty list is a no-op', async () => {
    const f = await ready();
    const control = await page(f, 0x0a);
    expectSense(await run(f, modeSelect6Cdb(16), { dataOut: modeSelect6List(control).subarray(0, 10) }), PARAMETER_LIST_LENGTH_ERROR);
    expectSense(await run(f, modeSelect6Cdb(10), { dataOut: modeSelect6List(control).subarray(0, 10) }), PARAMETER_LIST_LENGTH_ERROR);
    expectSense(await run(f, modeSelect6Cdb(3), { dataOut: Buffer.alloc(3) }), PARAMETER_LIST_LENGTH_ERROR);
    expectSense(await run(f, modeSelect6Cdb(16, true, true), { dataOut: modeSelect6List(control) }), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 0 });
    expectSense(await run(f, modeSelect6Cdb(16, false), { dataOut: modeSelect6List(control) }), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 4 });
    expect(await run(f, modeSelect6Cdb(0))).toEqual({ status: GOOD, dataOutLength: 0 });
    expect((await run(f, modeSelect6Cdb(4), { dataOut: Buffer.alloc(4) })).status).toBe(GOOD);
  });

  test('a LUN reset returns mode parameters to their defaults', async () => {
    const f = await ready();
    const control = await page(f, 0x0a);
    control[2] |= 0x04;
    control[4] |= 0x08;
    expect((await select(f, control)).status).toBe(GOOD);
    f.lu.reset('lun-reset', I1);
    expectSense(await run(f, '00 00 00 00 00 00'), ua(0x29, 0x03));
    expect(await page(f, 0x0a)).toEqual(await page(f, 0x0a, 2));
  });
});

/**
 * SPC-2 RESERVE/RELEASE and persistent reservations across two I_T nexuses, following the
 * scenarios of libiscsi's Reserve6 and Prout/Prin suites, plus the unit attentions they raise.
 */
import { decodeSense } from '../../../../src/scsi/sense';
import {
  CHECK_CONDITION,
  GOOD,
  I1,
  I2,
  INVALID_FIELD_IN_CDB,
  INVALID_FIELD_IN_PARAMETER_LIST,
  PARAMETER_LIST_LENGTH_ERROR,
  RESERVATION_CONFLICT,
  blockCdb,
  clearUa,
  expectSense,
  inquiryCdb,
  modeSense6Cdb,
  nexus,
  prInCdb,
  prOutCdb,
  prOutParams,
  ready,
  run,
  ua,
  type Fixture,
} from './helpers';
import type { ItNexus } from '../../../../src/target/scsi/types';

const BS = 512;
const RESERVE6 = '16 00 00 00 00 00';
const RELEASE6 = '17 00 00 00 00 00';
const RESERVE10 = '56 00 00 00 00 00 00 00 00 00';
const RELEASE10 = '57 00 00 00 00 00 00 00 00 00';

const enum T {
  WE = 1,
  EA = 3,
  WE_RO = 5,
  EA_RO = 6,
  WE_AR = 7,
  EA_AR = 8,
}
const ALL_TYPES = [T.WE, T.EA, T.WE_RO, T.EA_RO, T.WE_AR, T.EA_AR];
const isAr = (t: number) => t === T.WE_AR || t === T.EA_AR;

async function prout(f: Fixture, n: ItNexus, sa: number, key: bigint, sark = 0n, type = 0, opts: { scope?: number; flags?: number; length?: number } = {}) {
  return run(f, prOutCdb(sa, type, opts.scope ?? 0, opts.length ?? 24), { nexus: n, dataOut: prOutParams(key, sark, opts.flags ?? 0) });
}
const register = (f: Fixture, n: ItNexus, sark: bigint, key = 0n) => prout(f, n, 0x00, key, sark);
const registerIgnore = (f: Fixture, n: ItNexus, sark: bigint) => prout(f, n, 0x06, 0n, sark);
const reserve = (f: Fixture, n: ItNexus, key: bigint, type: number) => prout(f, n, 0x01, key, 0n, type);
const release = (f: Fixture, n: ItNexus, key: bigint, type: number) => prout(f, n, 0x02, key, 0n, type);

async function readKeys(f: Fixture, n: ItNexus = I1, alloc = 4096): Promise<{ generation: number; length: number; keys: bigint[] }> {
  const r = await run(f, prInCdb(0x00, alloc), { nexus: n });
  expect(r.status).toBe(GOOD);
  const d = r.data as Buffer;
  const keys: bigint[] = [];
  for (let off = 8; off + 8 <= d.length; off += 8) keys.push(d.readBigUInt64BE(off));
  return { generation: d.readUInt32BE(0), length: d.readUInt32BE(4), keys };
}

async function readReservation(f: Fixture, n: ItNexus = I1): Promise<{ key: bigint; type: number } | undefined> {
  const r = await run(f, prInCdb(0x01, 4096), { nexus: n });
  expect(r.status).toBe(GOOD);
  const d = r.data as Buffer;
  if (d.readUInt32BE(4) === 0) return undefined;
  expect(d.readUInt32BE(4)).toBe(16);
  return { key: d.readBigUInt64BE(8), type: d[21] & 0x0f };
}

const read = (f: Fixture, n: ItNexus) => run(f, blockCdb('read', 10, 1, 1), { nexus: n });
const write = (f: Fixture, n: ItNexus) => run(f, blockCdb('write', 10, 1, 1), { nexus: n, dataOut: Buffer.alloc(BS, 0xa6) });

describe('SPC-2 RESERVE / RELEASE', () => {
  test('two initiators (libiscsi Reserve6.2Initiators)', async () => {
    const f = await ready({}, {}, [I1, I2]);
    expect((await run(f, RESERVE6)).status).toBe(GOOD);
    expect((await run(f, RESERVE6)).status).toBe(GOOD); // the holder may reserve again
    expect((await run(f, RESERVE6, { nexus: I2 })).status).toBe(RESERVATION_CONFLICT);
    expect((await run(f, RELEASE6, { nexus: I2 })).status).toBe(GOOD); // no effect
    expect((await run(f, modeSense6Cdb(0x3f))).status).toBe(GOOD);
    expect((await run(f, modeSense6Cdb(0x3f), { nexus: I2 })).status).toBe(RESERVATION_CONFLICT);
    expect((await run(f, RESERVE10, { nexus: I2 })).status).toBe(RESERVATION_CONFLICT);
    expect((await read(f, I2)).status).toBe(RESERVATION_CONFLICT);
    expect((await run(f, '00 00 00 00 00 00', { nexus: I2 })).status).toBe(RESERVATION_CONFLICT);
    expect((await run(f, prInCdb(0, 100), { nexus: I2 })).status).toBe(RESERVATION_CONFLICT);
    // INQUIRY, REPORT LUNS, REQUEST SENSE and RELEASE are not blocked.
    expect((await run(f, inquiryCdb(false, 0, 36), { nexus: I2 })).status).toBe(GOOD);
    expect((await run(f, 'a0 00 00 00 00 00 00 00 10 00 00 00', { nexus: I2 })).status).toBe(GOOD);
    expect((await run(f, '03 00 00 00 12 00', { nexus: I2 })).status).toBe(GOOD);
    expect((await run(f, RELEASE6)).status).toBe(GOOD);
    expect((await run(f, RESERVE6, { nexus: I2 })).status).toBe(GOOD);
    expect((await run(f, RELEASE10, { nexus: I2 })).status).toBe(GOOD);
    expect((await read(f, I1)).status).toBe(GOOD);
  });

  test('released when the holder logs out or its nexus is lost; the others do not see the holder again', async () => {
    const f = await ready({}, {}, [I1, I2]);
    expect((await run(f, RESERVE6)).status).toBe(GOOD);
    expect((await run(f, RESERVE6, { nexus: I2 })).status).toBe(RESERVATION_CONFLICT);
    f.lu.nexusGone(I1);
    expect((await run(f, RESERVE6, { nexus: I2 })).status).toBe(GOOD);
    expect((await run(f, RELEASE6, { nexus: I2 })).status).toBe(GOOD);
    // I1 comes back: a new nexus, it sees the power-on unit attention again.
    expectSense(await run(f, '00 00 00 00 00 00'), ua(0x29, 0x00));
  });

  test('released by a LUN reset (29h/03h to everyone) and by a target reset (29h/00h)', async () => {
    const f = await ready({}, {}, [I1, I2]);
    expect((await run(f, RESERVE6)).status).toBe(GOOD);
    f.lu.reset('lun-reset', I1);
    expectSense(await run(f, RESERVE6, { nexus: I2 }), ua(0x29, 0x03));
    expect((await run(f, RESERVE6, { nexus: I2 })).status).toBe(GOOD);
    expectSense(await run(f, '00 00 00 00 00 00'), ua(0x29, 0x03));
    f.lu.reset('target-warm-reset', I1);
    expectSense(await run(f, RESERVE6), ua(0x29, 0x00));
    expect((await run(f, RESERVE6)).status).toBe(GOOD);
  });

  test('the extent, third-party and LONGID forms are refused', async () => {
    const f = await ready();
    expectSense(await run(f, '16 01 00 00 00 00'), { ...INVALID_FIELD_IN_CDB, cdbByte: 1 });
    expectSense(await run(f, '56 10 00 00 00 00 00 00 00 00'), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 4 });
    expectSense(await run(f, '56 02 00 00 00 00 00 00 00 00'), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 1 });
  });

  test('with persistent reservation registrations (CRH = 1): RESERVE conflicts unless from the PR holder, RELEASE is a no-op', async () => {
    const f = await ready({}, {}, [I1, I2]);
    expect((await register(f, I1, 0x11n)).status).toBe(GOOD);
    expect((await run(f, RESERVE6)).status).toBe(RESERVATION_CONFLICT);
    expect((await reserve(f, I1, 0x11n, T.WE)).status).toBe(GOOD);
    expect((await run(f, RESERVE6)).status).toBe(GOOD);
    expect((await run(f, RESERVE6, { nexus: I2 })).status).toBe(RESERVATION_CONFLICT);
    expect((await run(f, RELEASE6, { nexus: I2 })).status).toBe(GOOD);
    expect(f.lu.reservations.spc2Holder).toBeUndefined();
  });
});

describe('PERSISTENT RESERVE IN', () => {
  test('service actions 0..3 work, 4..1Fh are INVALID FIELD IN CDB (libiscsi PrinServiceactionRange)', async () => {
    const f = await ready();
    for (let sa = 0; sa < 4; sa++) expect((await run(f, prInCdb(sa, 16384))).status).toBe(GOOD);
    for (let sa = 4; sa < 0x20; sa++) expectSense(await run(f, prInCdb(sa, 16384)), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 4 });
  });

  test('READ KEYS: ADDITIONAL LENGTH matches, and is kept when the allocation length truncates', async () => {
    const f = await ready();
    expect(await readKeys(f)).toEqual({ generation: 0, length: 0, keys: [] });
    expect((await registerIgnore(f, I1, 0xabcdn)).status).toBe(GOOD);
    const cut = await run(f, prInCdb(0, 8));
    expect(cut.data?.length).toBe(8);
    expect(cut.data?.readUInt32BE(4)).toBe(8);
    expect(await readKeys(f)).toEqual({ generation: 1, length: 8, keys: [0xabcdn] });
  });

  test('REPORT CAPABILITIES: length 8, CRH, all six types, ALLOW COMMANDS ≤ 5', async () => {
    const f = await ready();
    const d = (await run(f, prInCdb(0x02, 100))).data as Buffer;
    expect(d.length).toBe(8);
    expect(d.readUInt16BE(0)).toBe(8);
    expect(d[2]).toBe(0x10);
    expect((d[3] >> 4) & 7).toBeLessThanOrEqual(5);
    expect(d.readUInt16BE(4)).toBe(0xea01); // WR_EX_AR EX_AC_RO WR_EX_RO EX_AC WR_EX | EX_AC_AR
  });

  test('READ FULL STATUS: one descriptor per registration with the holder, type and iSCSI TransportID', async () => {
    const f = await ready({}, {}, [I1, I2]);
    await register(f, I1, 0x10n);
    await register(f, I2, 0x20n);
    await reserve(f, I2, 0x20n, T.EA_RO);
    const d = (await run(f, prInCdb(0x03, 4096))).data as Buffer;
    expect(d.readUInt32BE(0)).toBe(2);
    expect(d.readUInt32BE(4)).toBe(d.length - 8);
    const seen: Array<[bigint, boolean, number, string]> = [];
    for (let off = 8; off < d.length; ) {
      const tidLength = d.readUInt32BE(off + 20);
      const tid = d.subarray(off + 24, off + 24 + tidLength);
      expect(tid[0]).toBe(0x45);
      expect(tid.readUInt16BE(2) % 4).toBe(0);
      seen.push([d.readBigUInt64BE(off), (d[off + 12] & 1) === 1, d[off + 13] & 0x0f, tid.subarray(4).toString('utf8').replace(/\0+$/, '')]);
      expect(d.readUInt16BE(off + 18)).toBe(1);
      off += 24 + tidLength;
    }
    expect(seen).toEqual([
      [0x10n, false, 0, `${I1.initiatorName},i,0x${I1.isid}`],
      [0x20n, true, T.EA_RO, `${I2.initiatorName},i,0x${I2.isid}`],
    ]);
  });
});

describe('PERSISTENT RESERVE OUT', () => {
  test('REGISTER (libiscsi ProutRegister.Simple): register, re-register with a wrong key conflicts, unregister', async () => {
    const f = await ready();
    expect((await registerIgnore(f, I1, 0x1234n)).status).toBe(GOOD);
    expect((await readKeys(f)).keys).toEqual([0x1234n]);
    expect((await register(f, I1, 0x1235n)).status).toBe(RESERVATION_CONFLICT); // RESERVATION KEY 0 ≠ 0x1234
    expect((await register(f, I1, 0x1235n, 0x1234n)).status).toBe(GOOD); // change the key
    expect((await register(f, I1, 0n, 0x1235n)).status).toBe(GOOD);
    expect(await readKeys(f)).toEqual({ generation: 3, length: 0, keys: [] });
    // Unregistered with a non-zero RESERVATION KEY: conflict; SARK 0: nothing to do.
    expect((await register(f, I1, 0x1n, 0x99n)).status).toBe(RESERVATION_CONFLICT);
    expect((await register(f, I1, 0n)).status).toBe(GOOD);
    expect((await readKeys(f)).generation).toBe(3);
  });

  test('RESERVE and RELEASE each type (libiscsi ProutReserve.Simple); RESERVE does not bump the generation', async () => {
    const f = await ready();
    await registerIgnore(f, I1, 0x77n);
    for (const type of ALL_TYPES) {
      expect((await reserve(f, I1, 0x77n, type)).status).toBe(GOOD);
      expect(await readReservation(f)).toEqual({ key: isAr(type) ? 0n : 0x77n, type });
      expect((await reserve(f, I1, 0x77n, type)).status).toBe(GOOD); // again: no effect
      expect((await release(f, I1, 0x77n, type)).status).toBe(GOOD);
      expect(await readReservation(f)).toBeUndefined();
    }
    expect((await readKeys(f)).generation).toBe(1);
  });

  test('the access matrix of the six types for a registered and an unregistered second nexus (libiscsi ProutReserve.Access*)', async () => {
    // [type, registered I2 read, write, unregistered I2 read, write]
    const matrix: Array<[number, boolean, boolean, boolean, boolean]> = [
      [T.EA, false, false, false, false],
      [T.WE, true, false, true, false],
      [T.EA_RO, true, true, false, false],
      [T.WE_RO, true, true, true, false],
      [T.EA_AR, true, true, false, false],
      [T.WE_AR, true, true, true, false],
    ];
    for (const [type, rr, rw, ur, uw] of matrix) {
      const f = await ready({}, {}, [I1, I2]);
      await registerIgnore(f, I1, 0xaan);
      await registerIgnore(f, I2, 0xbbn);
      expect((await reserve(f, I1, 0xaan, type)).status).toBe(GOOD);
      expect((await read(f, I1)).status).toBe(GOOD);
      expect((await write(f, I1)).status).toBe(GOOD);
      const ok = (expected: boolean) => (expected ? GOOD : RESERVATION_CONFLICT);
      expect([type, (await read(f, I2)).status, (await write(f, I2)).status]).toEqual([type, ok(rr), ok(rw)]);
      expect((await register(f, I2, 0n, 0xbbn)).status).toBe(GOOD); // REGISTER is allowed under any reservation
      expect([type, (await read(f, I2)).status, (await write(f, I2)).status]).toEqual([type, ok(ur), ok(uw)]);
      // PERSISTENT RESERVE IN, INQUIRY, READ CAPACITY, TEST UNIT READY stay allowed.
      expect((await run(f, prInCdb(1, 100), { nexus: I2 })).status).toBe(GOOD);
      expect((await run(f, '25 00 00 00 00 00 00 00 00 00', { nexus: I2 })).status).toBe(GOOD);
      expect((await run(f, '00 00 00 00 00 00', { nexus: I2 })).status).toBe(GOOD);
      // Mode sense passes Write Exclusive types, conflicts under Exclusive Access for the unregistered.
      expect((await run(f, modeSense6Cdb(0x3f), { nexus: I2 })).status).toBe(ok(ur));
      expect((await release(f, I1, 0xaan, type)).status).toBe(GOOD);
      expect((await write(f, I2)).status).toBe(GOOD);
    }
  });

  test.each([T.EA, T.WE, T.EA_RO, T.WE_RO])('ownership, type %i: the holder unregistering releases the reservation (libiscsi ProutReserve.Ownership*)', async (type) => {
    const f = await ready({}, {}, [I1, I2]);
    await registerIgnore(f, I1, 0x1n);
    await registerIgnore(f, I2, 0x2n);
    expect((await reserve(f, I1, 0x1n, type)).status).toBe(GOOD);
    expect((await register(f, I1, 0n, 0x1n)).status).toBe(GOOD);
    // The unregistered former holder gets no unit attention: PRIN works at once.
    expect(await readReservation(f, I1)).toBeUndefined();
    const tur = await run(f, '00 00 00 00 00 00', { nexus: I2 });
    if (type === T.EA_RO || type === T.WE_RO) expectSense(tur, ua(0x2a, 0x04)); // RESERVATIONS RELEASED to registrants
    else expect(tur.status).toBe(GOOD);
    expect((await register(f, I2, 0n, 0x2n)).status).toBe(GOOD);
  });

  test.each([T.EA_AR, T.WE_AR])('ownership, type %i: an All Registrants reservation outlives one registrant', async (type) => {
    const f = await ready({}, {}, [I1, I2]);
    await registerIgnore(f, I1, 0x1n);
    await registerIgnore(f, I2, 0x2n);
    expect((await reserve(f, I1, 0x1n, type)).status).toBe(GOOD);
    expect((await register(f, I1, 0n, 0x1n)).status).toBe(GOOD);
    expect(await readReservation(f, I1)).toEqual({ key: 0n, type });
    expect((await release(f, I2, 0x2n, type)).status).toBe(GOOD);
    expect(await readReservation(f, I2)).toBeUndefined();
    expect((await register(f, I2, 0n, 0x2n)).status).toBe(GOOD);
    // The last registrant going also ends an All Registrants reservation.
    await registerIgnore(f, I1, 0x1n);
    expect((await reserve(f, I1, 0x1n, type)).status).toBe(GOOD);
    expect((await register(f, I1, 0n, 0x1n)).status).toBe(GOOD);
    expect(await readReservation(f)).toBeUndefined();
  });

  test('RESERVE conflicts: unregistered, wrong key, held by another, other type; RELEASE with the wrong type is 26h/04h', async () => {
    const f = await ready({}, {}, [I1, I2]);
    expect((await reserve(f, I1, 0x1n, T.WE)).status).toBe(RESERVATION_CONFLICT);
    await registerIgnore(f, I1, 0x1n);
    await registerIgnore(f, I2, 0x2n);
    expect((await reserve(f, I1, 0x9n, T.WE)).status).toBe(RESERVATION_CONFLICT);
    expect((await reserve(f, I1, 0x1n, T.WE)).status).toBe(GOOD);
    expect((await reserve(f, I2, 0x2n, T.WE)).status).toBe(RESERVATION_CONFLICT);
    expect((await reserve(f, I1, 0x1n, T.EA)).status).toBe(RESERVATION_CONFLICT);
    expectSense(await release(f, I1, 0x1n, T.EA), { key: 5, asc: 0x26, ascq: 0x04 });
    expect((await release(f, I2, 0x2n, T.WE)).status).toBe(GOOD); // not the holder: no effect
    expect(await readReservation(f)).toEqual({ key: 0x1n, type: T.WE });
    expect((await release(f, I2, 0x9n, T.WE)).status).toBe(RESERVATION_CONFLICT);
  });

  test('releasing a Registrants Only reservation tells the other registrants (2Ah/04h)', async () => {
    const f = await ready({}, {}, [I1, I2, nexus(3)]);
    await registerIgnore(f, I1, 0x1n);
    await registerIgnore(f, I2, 0x2n);
    await reserve(f, I1, 0x1n, T.WE_RO);
    expect((await release(f, I1, 0x1n, T.WE_RO)).status).toBe(GOOD);
    expectSense(await run(f, '00 00 00 00 00 00', { nexus: I2 }), ua(0x2a, 0x04));
    expect((await run(f, '00 00 00 00 00 00', { nexus: I1 })).status).toBe(GOOD);
    expect((await run(f, '00 00 00 00 00 00', { nexus: nexus(3) })).status).toBe(GOOD); // not registered
  });

  test('CLEAR removes everything, bumps the generation once, and preempts the others (libiscsi ProutClear.Simple)', async () => {
    const f = await ready({}, {}, [I1, I2]);
    await registerIgnore(f, I1, 0x1n);
    await registerIgnore(f, I2, 0x2n);
    const before = (await readKeys(f)).generation;
    expect((await reserve(f, I1, 0x1n, T.EA)).status).toBe(GOOD);
    expect((await prout(f, I1, 0x03, 0x1n)).status).toBe(GOOD);
    expect(await readReservation(f)).toBeUndefined();
    expect(await readKeys(f)).toEqual({ generation: before + 1, length: 0, keys: [] });
    expectSense(await run(f, '00 00 00 00 00 00', { nexus: I2 }), ua(0x2a, 0x03));
    expect((await prout(f, I2, 0x03, 0x2n)).status).toBe(RESERVATION_CONFLICT); // no longer registered
  });

  test('PREEMPT without a reservation removes the registration (libiscsi ProutPreempt.RemoveRegistration)', async () => {
    const f = await ready({}, {}, [I1, I2]);
    await registerIgnore(f, I1, 0x1n);
    await registerIgnore(f, I2, 0x2n);
    const before = (await readKeys(f)).generation;
    expect((await prout(f, I2, 0x04, 0x2n, 0x1n, T.EA)).status).toBe(GOOD);
    expect(await clearUa(f, I1)).toBe(1); // REGISTRATIONS PREEMPTED, once
    expect(await clearUa(f, I2)).toBe(0);
    expect(await readKeys(f)).toEqual({ generation: before + 1, length: 8, keys: [0x2n] });
    expect(await readReservation(f)).toBeUndefined();
    expect((await prout(f, I2, 0x04, 0x2n, 0x99n, T.EA)).status).toBe(RESERVATION_CONFLICT); // nobody has that key
    expectSense(await prout(f, I2, 0x04, 0x2n, 0n, T.EA), { ...INVALID_FIELD_IN_PARAMETER_LIST, paramByte: 8 });
  });

  test('PREEMPT of the holder moves the reservation, with the new type', async () => {
    const f = await ready({}, {}, [I1, I2]);
    await registerIgnore(f, I1, 0x1n);
    await registerIgnore(f, I2, 0x2n);
    await reserve(f, I1, 0x1n, T.WE);
    expect((await prout(f, I2, 0x05, 0x2n, 0x1n, T.EA)).status).toBe(GOOD); // PREEMPT AND ABORT
    expect(await readReservation(f, I2)).toEqual({ key: 0x2n, type: T.EA });
    expect((await readKeys(f, I2)).keys).toEqual([0x2n]);
    const r = await read(f, I1);
    expect(r.status).toBe(CHECK_CONDITION);
    expect(decodeSense(r.sense as Buffer)).toMatchObject({ senseKey: 6, asc: 0x2a, ascq: 0x05 });
    expect((await read(f, I1)).status).toBe(RESERVATION_CONFLICT);
  });

  test('PREEMPT of an All Registrants reservation with key 0 takes it over', async () => {
    const f = await ready({}, {}, [I1, I2]);
    await registerIgnore(f, I1, 0x1n);
    await registerIgnore(f, I2, 0x2n);
    await reserve(f, I1, 0x1n, T.WE_AR);
    expect((await prout(f, I2, 0x04, 0x2n, 0n, T.WE)).status).toBe(GOOD);
    expect(await readReservation(f, I2)).toEqual({ key: 0x2n, type: T.WE });
    expect((await readKeys(f, I2)).keys).toEqual([0x2n]);
  });

  test('parameter list and CDB checks', async () => {
    const f = await ready();
    expectSense(await prout(f, I1, 0x00, 0n, 0x5n, 0, { length: 23 }), PARAMETER_LIST_LENGTH_ERROR);
    expectSense(await prout(f, I1, 0x00, 0n, 0x5n, 0, { flags: 0x08 }), { ...INVALID_FIELD_IN_PARAMETER_LIST, paramByte: 20, bit: 3 });
    expectSense(await prout(f, I1, 0x00, 0n, 0x5n, 0, { flags: 0x04 }), { ...INVALID_FIELD_IN_PARAMETER_LIST, paramByte: 20, bit: 2 });
    expectSense(await prout(f, I1, 0x00, 0n, 0x5n, 0, { flags: 0x01 }), { ...INVALID_FIELD_IN_PARAMETER_LIST, paramByte: 20, bit: 0 });
    await registerIgnore(f, I1, 0x5n);
    expectSense(await prout(f, I1, 0x01, 0x5n, 0n, 2), { ...INVALID_FIELD_IN_CDB, cdbByte: 2, bit: 3 });
    expectSense(await prout(f, I1, 0x01, 0x5n, 0n, T.WE, { scope: 1 }), { ...INVALID_FIELD_IN_CDB, cdbByte: 2, bit: 7 });
    expectSense(await prout(f, I1, 0x07, 0x5n), { ...INVALID_FIELD_IN_CDB, cdbByte: 1 }); // REGISTER AND MOVE
    expect((await readKeys(f)).keys).toEqual([0x5n]);
  });

  test('registrations survive a LUN reset and the loss of the nexus', async () => {
    const f = await ready({}, {}, [I1, I2]);
    await registerIgnore(f, I1, 0x1n);
    await reserve(f, I1, 0x1n, T.EA);
    f.lu.reset('lun-reset', I2);
    f.lu.nexusGone(I1);
    await clearUa(f, I1);
    await clearUa(f, I2);
    expect(await readReservation(f)).toEqual({ key: 0x1n, type: T.EA });
    expect((await read(f, I1)).status).toBe(GOOD);
    expect((await read(f, I2)).status).toBe(RESERVATION_CONFLICT);
  });
});

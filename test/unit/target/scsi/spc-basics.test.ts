/**
 * INQUIRY (standard and VPD), READ CAPACITY, TEST UNIT READY, REQUEST SENSE, REPORT LUNS and the
 * view dispatcher (absent LUNs), decoded with the project's own codecs.
 */
import { decodeStandardInquiry } from '../../../../src/scsi/inquiry';
import { decodeReadCapacity16 } from '../../../../src/scsi/read-capacity';
import { decodeReportLuns } from '../../../../src/scsi/report-luns';
import { decodeSense } from '../../../../src/scsi/sense';
import {
  Association,
  DesignatorType,
  decodeBlockLimits,
  decodeDeviceIdentification,
  decodeLogicalBlockProvisioning,
  decodeSupportedVpdPages,
  decodeUnitSerialNumber,
  pickCscdDesignator,
} from '../../../../src/scsi/vpd';
import { MemoryStore } from '../../../../src/store/memory';
import { LogicalUnit } from '../../../../src/target/scsi/logical-unit';
import { executeOnView } from '../../../../src/target/scsi/dispatch';
import {
  GOOD,
  I1,
  I2,
  INVALID_FIELD_IN_CDB,
  LUN_NOT_SUPPORTED,
  expectSense,
  fixture,
  hexb,
  inquiryCdb,
  nexus,
  ready,
  run,
  serviceActionIn16,
  ua,
} from './helpers';

describe('INQUIRY', () => {
  test('standard data: SPC-4, HISUP, CMDQUE, identity, version descriptors, 3PC off', async () => {
    const f = await ready();
    const r = await run(f, inquiryCdb(false, 0, 255));
    expect(r.status).toBe(GOOD);
    const d = decodeStandardInquiry(r.data as Buffer);
    expect(d).toMatchObject({
      peripheralQualifier: 0,
      peripheralDeviceType: 0,
      rmb: false,
      version: 6,
      responseDataFormat: 2,
      hisup: true,
      cmdque: true,
      threePc: false,
      protect: false,
      t10VendorIdentification: 'XCOPYAGT',
      productIdentification: 'xcopy-agent LUN',
      productRevisionLevel: '0001',
      truncated: false,
    });
    expect(d.versionDescriptors).toEqual([0x00a0, 0x0960, 0x0460, 0x04c0]);
    expect(r.data?.length).toBe(5 + d.additionalLength);
  });

  test('3PC needs both the flag and EXTENDED COPY in the opcode table', async () => {
    const f = await ready({}, { thirdPartyCopy: true });
    const d = decodeStandardInquiry((await run(f, inquiryCdb(false, 0, 96))).data as Buffer);
    expect(d.threePc).toBe(false); // the flag alone does not advertise a command we lack
  });

  test('the allocation length cuts the data (5..511 bytes, 16-bit field)', async () => {
    const f = await ready();
    const full = (await run(f, inquiryCdb(false, 0, 1000))).data as Buffer;
    for (const n of [0, 1, 5, 36, 73, 255, 511, 512]) {
      const r = await run(f, inquiryCdb(false, 0, n));
      expect(r.status).toBe(GOOD);
      expect(r.data).toEqual(full.subarray(0, n));
    }
  });

  test('EVPD = 0 with a page code is INVALID FIELD IN CDB (byte 2)', async () => {
    const f = await ready();
    expectSense(await run(f, inquiryCdb(false, 1, 255)), { ...INVALID_FIELD_IN_CDB, cdbByte: 2, bit: 7 });
  });

  test('CMDDT (obsolete) and an unknown VPD page are INVALID FIELD IN CDB', async () => {
    const f = await ready();
    expectSense(await run(f, '12 02 00 00 ff 00'), { ...INVALID_FIELD_IN_CDB, cdbByte: 1, bit: 1 });
    expectSense(await run(f, inquiryCdb(true, 0x99, 255)), { ...INVALID_FIELD_IN_CDB, cdbByte: 2 });
  });

  test('VPD 00h lists exactly the pages INQUIRY serves, ascending, each readable', async () => {
    const f = await ready();
    const pages = decodeSupportedVpdPages((await run(f, inquiryCdb(true, 0, 255))).data as Buffer).pages;
    expect(pages).toEqual([0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2]);
    for (const p of pages) {
      const r = await run(f, inquiryCdb(true, p, 255));
      expect(r.status).toBe(GOOD);
      expect(r.data?.[1]).toBe(p);
      expect(r.data?.length).toBe(4 + (r.data as Buffer).readUInt16BE(2));
    }
  });

  test('an added VPD page is listed and served', async () => {
    const f = await ready();
    f.lu.addVpdPage(0x8f, () => Buffer.from([0, 0x8f, 0, 2, 0xab, 0xcd]));
    expect(decodeSupportedVpdPages((await run(f, inquiryCdb(true, 0, 255))).data as Buffer).pages).toContain(0x8f);
    expect((await run(f, inquiryCdb(true, 0x8f, 255))).data).toEqual(Buffer.from([0, 0x8f, 0, 2, 0xab, 0xcd]));
  });

  test('VPD 80h and 83h: serial, NAA 6h, T10 vendor ID, target port designators and SCSI names', async () => {
    const f = await ready();
    expect(decodeUnitSerialNumber((await run(f, inquiryCdb(true, 0x80, 255))).data as Buffer).productSerialNumber).toBe(f.mem.identity.serial);
    const di = decodeDeviceIdentification((await run(f, inquiryCdb(true, 0x83, 255))).data as Buffer);
    const kinds = di.designators.map((d) => [d.association, d.designatorType]);
    expect(kinds).toEqual([
      [Association.LOGICAL_UNIT, DesignatorType.NAA],
      [Association.LOGICAL_UNIT, DesignatorType.T10_VENDOR_ID],
      [Association.TARGET_PORT, DesignatorType.RELATIVE_TARGET_PORT],
      [Association.TARGET_PORT, DesignatorType.TARGET_PORT_GROUP],
      [Association.TARGET_PORT, DesignatorType.SCSI_NAME_STRING],
      [Association.TARGET_DEVICE, DesignatorType.SCSI_NAME_STRING],
    ]);
    expect(di.designators[0].designator).toEqual(f.mem.identity.naa);
    expect(di.designators[0].designator[0] >> 4).toBe(6);
    expect(di.designators[1].designator.toString('latin1')).toBe(`XCOPYAGT${f.mem.identity.serial}`);
    expect(di.designators[2].designator.readUInt16BE(2)).toBe(1);
    expect(di.designators[3].designator.readUInt16BE(2)).toBe(1);
    for (const d of di.designators.slice(4)) expect(d.designator.length % 4).toBe(0);
    expect(di.designators[4].designator.toString('utf8').replace(/\0+$/, '')).toBe('iqn.2026-11.test:target,t,0x0001');
    expect(di.designators[5].designator.toString('utf8').replace(/\0+$/, '')).toBe('iqn.2026-11.test:target');
    // The EXTENDED COPY CSCD designator rule picks the NAA.
    expect(pickCscdDesignator(di.designators)?.designatorType).toBe(DesignatorType.NAA);
  });

  test('two logical units have distinct NAA designators; options override identity', async () => {
    const a = fixture({ name: 'memory:a' });
    const b = fixture({ name: 'memory:b' }, { identity: { vendor: 'ACME', product: 'P', revision: '9', serial: 'SER1' }, relativeTargetPortId: 7, targetPortGroup: 3 });
    expect(a.lu.naa.equals(b.lu.naa)).toBe(false);
    const std = decodeStandardInquiry((await run(b, inquiryCdb(false, 0, 96))).data as Buffer);
    expect([std.t10VendorIdentification, std.productIdentification, std.productRevisionLevel]).toEqual(['ACME', 'P', '9']);
    const di = decodeDeviceIdentification((await run(b, inquiryCdb(true, 0x83, 255))).data as Buffer);
    expect(di.designators[2].designator.readUInt16BE(2)).toBe(7);
    expect(di.designators[3].designator.readUInt16BE(2)).toBe(3);
    expect(() => new LogicalUnit({ store: a.mem, identity: { vendor: 'TOO-LONG-VENDOR' } })).toThrow(/vendor/);
    expect(() => new LogicalUnit({ store: a.mem, identity: { naa: Buffer.alloc(16) } })).toThrow(/NAA/);
  });

  test('VPD B0h, B1h, B2h of a thin logical unit', async () => {
    const f = await ready();
    const bl = decodeBlockLimits((await run(f, inquiryCdb(true, 0xb0, 255))).data as Buffer);
    expect(bl).toMatchObject({
      pageLength: 0x3c,
      wsnz: false,
      maximumCompareAndWriteLength: 255,
      maximumTransferLength: f.lu.limits.maxTransferBlocks,
      maximumUnmapLbaCount: 0xffffffff,
      maximumUnmapBlockDescriptorCount: 4095,
      maximumWriteSameLength: BigInt(f.lu.limits.maxWriteSameBlocks),
      optimalTransferLengthGranularity: 1,
    });
    const raw = (await run(f, inquiryCdb(true, 0xb0, 255))).data as Buffer;
    expect(raw.readUInt32BE(44)).toBe(f.lu.limits.maxAtomicTransferBlocks); // memory store: WRITE ATOMIC offered
    expect(((await run(f, inquiryCdb(true, 0xb1, 255))).data as Buffer).readUInt16BE(4)).toBe(1); // MEDIUM ROTATION RATE: non-rotating
    expect(decodeLogicalBlockProvisioning((await run(f, inquiryCdb(true, 0xb2, 255))).data as Buffer)).toMatchObject({
      lbpu: true,
      lbpws: true,
      lbpws10: true,
      lbprz: 1,
      provisioningType: 2,
    });
  });

  test('VPD B0h and B2h of a fully provisioned logical unit report no unmap', async () => {
    const f = await ready({}, { thinProvisioning: false, atomicWrite: false });
    const raw = (await run(f, inquiryCdb(true, 0xb0, 255))).data as Buffer;
    const bl = decodeBlockLimits(raw);
    expect([bl.maximumUnmapLbaCount, bl.maximumUnmapBlockDescriptorCount]).toEqual([0, 0]);
    expect(raw.readUInt32BE(44)).toBe(0);
    expect(decodeLogicalBlockProvisioning((await run(f, inquiryCdb(true, 0xb2, 255))).data as Buffer)).toMatchObject({
      lbpu: false,
      lbpws: false,
      lbprz: 0,
      provisioningType: 0,
    });
  });
});

describe('READ CAPACITY', () => {
  test('(10) and (16): last LBA, block length, LBPME/LBPRZ on a thin LU', async () => {
    const f = await ready({ blocks: 777n, blockSize: 4096 });
    const r10 = await run(f, '25 00 00 00 00 00 00 00 00 00');
    expect((r10.data as Buffer).toString('hex')).toBe('0000030800001000'); // last LBA 776, 4096-byte blocks
    const r16 = decodeReadCapacity16((await run(f, serviceActionIn16(0x10, 0, 32))).data as Buffer);
    expect(r16).toMatchObject({ returnedLogicalBlockAddress: 776n, logicalBlockLength: 4096, lbpme: true, lbprz: true, protEn: false });
  });

  test('(16) honours the allocation length 0..32 and the physical block exponent', async () => {
    const f = await ready({}, { physicalBlockExponent: 3, thinProvisioning: false });
    const full = (await run(f, serviceActionIn16(0x10, 0, 32))).data as Buffer;
    expect(full.length).toBe(32);
    expect(decodeReadCapacity16(full)).toMatchObject({ logicalBlocksPerPhysicalBlockExponent: 3, lbpme: false, lbprz: false });
    for (let n = 0; n < 32; n++) expect((await run(f, serviceActionIn16(0x10, 0, n))).data).toEqual(full.subarray(0, n));
  });

  test('(10) reports FFFFFFFFh when the capacity does not fit 32 bits', async () => {
    const lu = new LogicalUnit({ store: new MemoryStore({ blocks: (1n << 33n) + 5n, blockSize: 512 }) });
    const view = new Map([[0, lu]]);
    const go = (cdb: string) => executeOnView(view, { nexus: I1, lun: 0, cdb: hexb(cdb), expectedDataTransferLength: 32, taskAttribute: 1 });
    await go('00 00 00 00 00 00');
    expect(((await go('25 00 00 00 00 00 00 00 00 00')).data as Buffer).readUInt32BE(0)).toBe(0xffffffff);
    expect(decodeReadCapacity16((await go('9e 10 00 00 00 00 00 00 00 00 00 00 00 20 00 00')).data as Buffer).returnedLogicalBlockAddress).toBe((1n << 33n) + 4n);
  });

  test('a non-zero LBA with PMI = 0 is INVALID FIELD IN CDB', async () => {
    const f = await ready();
    expectSense(await run(f, '25 00 00 00 00 01 00 00 00 00'), { ...INVALID_FIELD_IN_CDB, cdbByte: 2 });
    expect((await run(f, '25 00 00 00 00 01 00 00 01 00')).status).toBe(GOOD);
  });
});

describe('TEST UNIT READY and REQUEST SENSE', () => {
  test('a new nexus gets POWER ON, RESET, OR BUS DEVICE RESET OCCURRED once, then GOOD', async () => {
    const f = fixture();
    expectSense(await run(f, '00 00 00 00 00 00'), ua(0x29, 0x00));
    expect((await run(f, '00 00 00 00 00 00')).status).toBe(GOOD);
    // Another nexus has its own.
    expectSense(await run(f, '00 00 00 00 00 00', { nexus: I2 }), ua(0x29, 0x00));
  });

  test('REQUEST SENSE returns and clears the pending unit attention, then NO SENSE; DESC selects the format', async () => {
    const f = fixture();
    const first = await run(f, '03 00 00 00 12 00');
    expect(first.status).toBe(GOOD);
    expect(decodeSense(first.data as Buffer)).toMatchObject({ format: 'fixed', senseKey: 6, asc: 0x29, ascq: 0 });
    const second = await run(f, '03 01 00 00 ff 00');
    expect(decodeSense(second.data as Buffer)).toMatchObject({ format: 'descriptor', senseKey: 0, asc: 0, ascq: 0 });
    expect((await run(f, '03 00 00 00 04 00')).data?.length).toBe(4);
    expect((await run(f, '00 00 00 00 00 00')).status).toBe(GOOD);
  });
});

describe('REPORT LUNS and the view', () => {
  const reportLuns = (select = 0, alloc = 4096) => {
    const c = hexb('a0 00 00 00 00 00 00 00 00 00 00 00');
    c[2] = select;
    c.writeUInt32BE(alloc, 6);
    return c;
  };

  test('lists exactly the view, ascending, from any LUN of it and from an absent one', async () => {
    const a = fixture({ name: 'memory:a' });
    const b = fixture({ name: 'memory:b' });
    const view = new Map([
      [7, b.lu],
      [0, a.lu],
      [300, b.lu],
    ]);
    for (const lun of [0, 7, 5]) {
      const r = await run(a, reportLuns(), { view, lun });
      expect(r.status).toBe(GOOD);
      expect(decodeReportLuns(r.data as Buffer).luns).toEqual([0, 7, 300]);
    }
    expect(decodeReportLuns((await run(a, reportLuns(1), { view })).data as Buffer).luns).toEqual([]);
    expect(decodeReportLuns((await run(a, reportLuns(2), { view })).data as Buffer).luns).toEqual([0, 7, 300]);
    expectSense(await run(a, reportLuns(0x10), { view }), { ...INVALID_FIELD_IN_CDB, cdbByte: 2 });
    const cut = await run(a, reportLuns(0, 12), { view });
    expect(cut.data?.length).toBe(12);
    expect(cut.data?.readUInt32BE(0)).toBe(24); // the LUN LIST LENGTH still tells the whole size
  });

  test('INQUIRY to an absent LUN: PERIPHERAL QUALIFIER 011b, DEVICE TYPE 1Fh; other commands: LOGICAL UNIT NOT SUPPORTED', async () => {
    const f = fixture();
    const r = await run(f, inquiryCdb(false, 0, 96), { lun: 3 });
    expect(r.status).toBe(GOOD);
    expect(r.data?.[0]).toBe(0x7f);
    expect(decodeStandardInquiry(r.data as Buffer).peripheralQualifier).toBe(3);
    const vpd = await run(f, inquiryCdb(true, 0, 96), { lun: 3 });
    expect(decodeSupportedVpdPages(vpd.data as Buffer)).toMatchObject({ peripheralQualifier: 3, peripheralDeviceType: 0x1f, pages: [0] });
    expectSense(await run(f, inquiryCdb(true, 0x83, 96), { lun: 3 }), INVALID_FIELD_IN_CDB);
    expectSense(await run(f, '00 00 00 00 00 00', { lun: 3 }), LUN_NOT_SUPPORTED);
    expectSense(await run(f, '28 00 00 00 00 00 00 00 01 00', { lun: 3 }), LUN_NOT_SUPPORTED);
    const rs = await run(f, '03 00 00 00 ff 00', { lun: 3 });
    expect(rs.status).toBe(GOOD);
    expect(decodeSense(rs.data as Buffer)).toMatchObject({ senseKey: 5, asc: 0x25, ascq: 0 });
  });

  test('INQUIRY and REPORT LUNS neither report nor clear a unit attention', async () => {
    const f = fixture();
    expect((await run(f, inquiryCdb(false, 0, 96))).status).toBe(GOOD);
    expect((await run(f, reportLuns())).status).toBe(GOOD);
    expectSense(await run(f, '00 00 00 00 00 00'), ua(0x29, 0x00));
  });

  test('REPORTED LUNS DATA HAS CHANGED is established by reportedLunsChanged() and cleared by REPORT LUNS', async () => {
    const { reportedLunsChanged } = await import('../../../../src/target/scsi/dispatch');
    const f = await ready({}, {}, [I1, I2]);
    reportedLunsChanged(f.view, [I1]);
    expect((await run(f, reportLuns())).status).toBe(GOOD); // clears it for I1
    expect((await run(f, '00 00 00 00 00 00')).status).toBe(GOOD);
    reportedLunsChanged(f.view);
    expectSense(await run(f, '00 00 00 00 00 00', { nexus: I2 }), ua(0x3f, 0x0e));
    expectSense(await run(f, '00 00 00 00 00 00'), ua(0x3f, 0x0e));
    const n3 = nexus(3);
    expectSense(await run(f, '00 00 00 00 00 00', { nexus: n3 }), ua(0x29, 0x00)); // a new nexus: power on only
  });
});

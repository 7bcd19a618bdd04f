/**
 * The libiscsi ExtendedCopy and ReceiveCopyResults cases (libiscsi's test-tool suites), sent to one LUN as
 * iscsi-test-cu does: what each sends and what it accepts.
 */
import { decodeCopyStatusLid1, decodeOperatingParameters } from '../../../src/scsi/copy-results';
import { decodeSupportedVpdPages } from '../../../src/scsi/vpd';
import { decodeThirdPartyCopy } from '../../../src/scsi/vpd-third-party-copy';
import { decodeStandardInquiry } from '../../../src/scsi/inquiry';
import {
  thirdPartyCopySupports,
  COPY_ABORTED,
  GOOD,
  ILLEGAL_REQUEST,
  b2b,
  bridge,
  cscdOf,
  expectSense,
  list,
  makeLun,
  rcrCdb,
  readCdb,
  run,
  sha256,
  xcopy,
  type Bridge,
} from './helpers';

const BLOCKS = 8192n; // 4 MiB of 512-byte blocks

async function opParams(b: Bridge) {
  const r = await run(b, rcrCdb(0x03, 0));
  expect(r.status).toBe(GOOD);
  return decodeOperatingParameters(r.data as Buffer);
}

function inquiryCdb(evpd: boolean, page: number, alloc = 1024): Buffer {
  return Buffer.from([0x12, evpd ? 1 : 0, page, alloc >> 8, alloc & 0xff, 0]);
}

describe('ExtendedCopy', () => {
  test('Simple: one CSCD as source and destination, list id 1, usage 10b', async () => {
    const l = makeLun(BLOCKS);
    const b = await bridge([l]);
    const n = Math.min(Number(BLOCKS) / 2, 2048);
    await l.store.inner.write(0n, Buffer.alloc(n * 512, 'A'));
    const lu = l.lu;
    const r = await xcopy(b, list([cscdOf(lu)], [b2b(0, 0, n, 0, BLOCKS - BigInt(n))], 1, 2));
    expect(r.status).toBe(GOOD);
    const back = await run(b, readCdb(BLOCKS - BigInt(n), n));
    expect(sha256(back.data as Buffer)).toBe(sha256(Buffer.alloc(n * 512, 'A')));
    expect(b.cm.counters.completed).toBe(1);
  });

  test('Large: 0Ah segment of MAXIMUM SEGMENT LENGTH bytes', async () => {
    const l = makeLun((512n * 1024n * 1024n) / 512n); // 2 × 256 MiB, sparse
    const b = await bridge([l]);
    const op = await opParams(b);
    expect(op.implementedDescriptorTypeCodes).toContain(0x0a);
    const bytes = Math.min(op.maximumSegmentLength, 256 * 1024 * 1024);
    const head = Buffer.alloc(2048 * 512);
    for (let i = 0; i < head.length; i += 512) head.write(`block ${i / 512}`, i);
    await l.store.inner.write(0n, head);
    const seg = { kind: 'blockOffsetToBlockOffset' as const, cat: false, sourceCscdDescriptorId: 0, destinationCscdDescriptorId: 0, numberOfBytes: bytes, sourceBlockDeviceLba: 0n, destinationBlockDeviceLba: BigInt(bytes / 512), sourceBlockDeviceByteOffset: 0, destinationBlockDeviceByteOffset: 0 };
    const r = await xcopy(b, list([cscdOf(l.lu)], [seg], 1, 2));
    expect(r.status).toBe(GOOD);
    expect((await run(b, readCdb(bytes / 512, 2048))).data).toEqual(head);
    expect(b.cm.pool.allocatedBytes).toBeLessThanOrEqual(8 * 4 * 1024 * 1024);
  });

  test('ParamHdr: truncated CSCD, truncated segment → 1Ah/00h; length 0 → GOOD', async () => {
    const l = makeLun(BLOCKS);
    const b = await bridge([l]);
    const full = list([cscdOf(l.lu)], [b2b(0, 0, 2048, 0, BLOCKS - 2048n)], 1, 0);
    expect(full.length).toBe(16 + 32 + 28);
    expectSense(await xcopy(b, full, { length: 47 }), ILLEGAL_REQUEST, 0x1a, 0x00);
    expectSense(await xcopy(b, full, { length: 75 }), ILLEGAL_REQUEST, 0x1a, 0x00);
    expect((await xcopy(b, Buffer.alloc(0), { length: 0 })).status).toBe(GOOD);
    expect(b.cm.counters.extendedCopies).toBe(0);
  });

  test('DescrLimits: too many CSCDs, too many segments, too long a descriptor list', async () => {
    const l = makeLun(BLOCKS);
    const b = await bridge([l]);
    const op = await opParams(b);
    expect(op.maximumCscdDescriptorCount).toBeGreaterThanOrEqual(64);
    expect(op.maximumSegmentDescriptorCount).toBeGreaterThanOrEqual(256);
    const c = cscdOf(l.lu);
    const seg = b2b(0, 0, 1, 0, 1);
    const tooManyCscds = list(Array(op.maximumCscdDescriptorCount + 1).fill(c), [seg], 1, 0);
    const s1 = expectSense(await xcopy(b, tooManyCscds), ILLEGAL_REQUEST, 0x26, 0x06);
    expect(s1.senseKeySpecific).toMatchObject({ kind: 'fieldPointer', cd: false });
    const tooManySegs = list([c], Array(op.maximumSegmentDescriptorCount + 1).fill(seg), 2, 0);
    expectSense(await xcopy(b, tooManySegs), ILLEGAL_REQUEST, 0x26, 0x08);
    const segsToExceed = Math.ceil((op.maximumDescriptorListLength - (op.maximumCscdDescriptorCount + 1) * 32) / 28) + 1;
    const tooLong = list(Array(op.maximumCscdDescriptorCount + 1).fill(c), Array(segsToExceed).fill(seg), 3, 0);
    expectSense(await xcopy(b, tooLong), ILLEGAL_REQUEST, 0x1a, 0x00);
  });

  test('DescrType: CSCD E0h → 26h/07h; segment 03h → 26h/09h', async () => {
    const l = makeLun(BLOCKS);
    const b = await bridge([l]);
    const good = list([cscdOf(l.lu)], [b2b(0, 0, 2048, 0, 2048)], 1, 0);
    const e0 = Buffer.from(good);
    e0[16] = 0xe0;
    const s = expectSense(await xcopy(b, e0), ILLEGAL_REQUEST, 0x26, 0x07);
    expect(s.senseKeySpecific).toMatchObject({ kind: 'fieldPointer', cd: false, fieldPointer: 16 });
    const seg03 = Buffer.alloc(20);
    seg03[0] = 0x03;
    seg03.writeUInt16BE(0x10, 2);
    const withSeg03 = Buffer.concat([good.subarray(0, 48), seg03]);
    withSeg03.writeUInt32BE(20, 8);
    const s2 = expectSense(await xcopy(b, withSeg03), ILLEGAL_REQUEST, 0x26, 0x09);
    expect(s2.senseKeySpecific).toMatchObject({ kind: 'fieldPointer', fieldPointer: 48 });
  });

  test('ValidTgtDescr: an SPC-4 target (version 6) ignores LU ID TYPE 10b', async () => {
    const l = makeLun(BLOCKS);
    const b = await bridge([l]);
    const inq = decodeStandardInquiry((await run(b, inquiryCdb(false, 0, 96))).data as Buffer);
    expect(inq.version).toBeGreaterThanOrEqual(6);
    expect(inq.threePc).toBe(true);
    const p = list([cscdOf(l.lu)], [b2b(0, 0, 2048, 0, 4096)], 1, 0);
    p[17] = (p[17] & 0x3f) | 0x80; // LU ID TYPE 10b
    expect((await xcopy(b, p)).status).toBe(GOOD);
  });

  test('ValidSegDescr: a missing CSCD and a range past the end → COPY ABORTED 0Dh/02h', async () => {
    const l = makeLun(BLOCKS);
    const b = await bridge([l]);
    const s1 = expectSense(await xcopy(b, list([cscdOf(l.lu)], [b2b(0, 1, 2048, 0, 0)], 1, 0)), COPY_ABORTED, 0x0d, 0x02);
    expect(s1.commandSpecificInformation).toBe(0n);
    const s2 = expectSense(await xcopy(b, list([cscdOf(l.lu)], [b2b(0, 0, 2048, 0, BLOCKS - 1n)], 2, 0)), COPY_ABORTED, 0x0d, 0x02);
    expect(s2.commandSpecificInformation).toBe(0n);
    expect(l.store.writes).toBe(0);
  });
});

describe('ReceiveCopyResults', () => {
  test('OpParams: AVAILABLE DATA ≥ 40 and the advertised limits', async () => {
    const b = await bridge([makeLun(BLOCKS)]);
    const op = await opParams(b);
    expect(op.availableData).toBeGreaterThanOrEqual(40);
    expect(op).toMatchObject({
      snlid: true,
      maximumCscdDescriptorCount: 64,
      maximumSegmentDescriptorCount: 256,
      maximumSegmentLength: 256 * 1024 * 1024,
      maximumInlineDataLength: 0,
      implementedDescriptorTypeCodes: [0x02, 0x0a, 0xe4],
    });
    expect(op.totalConcurrentCopies).toBeGreaterThan(1);
  });

  test('CopyStatus: VPD 8Fh lists 84h/00h; unknown list → 24h/00h; after a copy AVAILABLE DATA ≥ 8', async () => {
    const l = makeLun(BLOCKS);
    const b = await bridge([l]);
    const pages = decodeSupportedVpdPages((await run(b, inquiryCdb(true, 0x00))).data as Buffer);
    expect(pages.pages).toContain(0x8f);
    const tpc = decodeThirdPartyCopy((await run(b, inquiryCdb(true, 0x8f))).data as Buffer);
    expect(thirdPartyCopySupports(tpc, 0x84, 0x00)).toBe(true);
    expect(thirdPartyCopySupports(tpc, 0x83, 0x00)).toBe(true);
    expect(tpc.descriptors.map((d) => d.kind)).toEqual(['supportedCommands', 'parameterData', 'supportedDescriptors', 'supportedCscdDescriptorIds', 'generalCopyOperations']);
    const before = expectSense(await run(b, rcrCdb(0x00, 1)), ILLEGAL_REQUEST, 0x24, 0x00);
    expect(before.senseKeySpecific).toMatchObject({ kind: 'fieldPointer', cd: true, fieldPointer: 2 });
    expect((await xcopy(b, list([cscdOf(l.lu)], [b2b(0, 0, 2048, 0, 4096)], 1, 0))).status).toBe(GOOD);
    const r = await run(b, rcrCdb(0x00, 1));
    expect(r.status).toBe(GOOD);
    const st = decodeCopyStatusLid1(r.data as Buffer);
    expect(st.availableData).toBeGreaterThanOrEqual(8);
    expect(st).toMatchObject({ copyManagerStatus: 1, segmentsProcessed: 1, transferCountUnits: 0, transferCount: 2048 * 512 });
  });

  test('unsupported service actions → INVALID FIELD IN CDB', async () => {
    const b = await bridge([makeLun(BLOCKS)]);
    for (const sa of [0x01, 0x05, 0x07]) {
      const s = expectSense(await run(b, rcrCdb(sa, 0)), ILLEGAL_REQUEST, 0x24, 0x00);
      expect(s.senseKeySpecific).toMatchObject({ kind: 'fieldPointer', cd: true, fieldPointer: 1 });
    }
    const c = Buffer.alloc(16);
    c[0] = 0x83;
    c[1] = 0x10; // POPULATE TOKEN
    expectSense(await run(b, c), ILLEGAL_REQUEST, 0x24, 0x00);
  });
});

test('REPORT SUPPORTED OPERATION CODES lists 83h/00h, 1Ch and 84h/00h, 03h, 04h from the same table', async () => {
  const b = await bridge([makeLun(BLOCKS)]);
  const c = Buffer.alloc(12);
  c[0] = 0xa3;
  c[1] = 0x0c;
  c.writeUInt32BE(65535, 6);
  const r = await run(b, c);
  expect(r.status).toBe(GOOD);
  const d = r.data as Buffer;
  const found: string[] = [];
  for (let off = 4; off + 8 <= 4 + d.readUInt32BE(0); off += 8 + ((d[off + 5] & 0x02) !== 0 ? 12 : 0)) {
    if (d[off] === 0x83 || d[off] === 0x84) found.push(`${d[off].toString(16)}/${d.readUInt16BE(off + 2)}`);
  }
  expect(found.sort()).toEqual(['83/0', '83/28', '84/0', '84/3', '84/4']);
});

/**
 * Command descriptor blocks the agent sends and the target parses: encode and decode, one
 * decoder per CDB layout, used by the target's handlers (and the copy manager's).
 *
 * Pure codec, no I/O. Decoders check the OPERATION CODE (byte 0), the SERVICE ACTION where the
 * command has one (byte 1), and the length, and throw DecodeError otherwise; they do not judge
 * field values that are the device server's business (e.g. INQUIRY EVPD = 0 with a non-zero page
 * code is INVALID FIELD IN CDB, SPC-4 r37 6.6.1 — the handler checks that). A buffer longer than the
 * CDB is accepted (iSCSI carries CDBs in a 16-byte field, RFC 7143 11.3.5); the extra bytes are
 * ignored. The CONTROL byte (SAM-5 r21 5.2) is passed through both ways.
 *
 * DecodeError offsets: a short buffer names the first byte that is missing.
 */
import { DecodeError, EncodeError } from '../errors';
import { ExtendedCopySa, Opcode, ReceiveCopyResultsSa, ServiceActionIn16, opcodeName } from './constants';
import { bigUintUpTo, UINT64_MAX, uintUpTo } from './fields';

// ---------------------------------------------------------------------------------------------
// Shared checks
// ---------------------------------------------------------------------------------------------

/** Checks length and OPERATION CODE (and SERVICE ACTION, bits 4:0 of byte 1, when given). */
function expect(structure: string, cdb: Buffer, length: number, opcode: number, serviceAction?: number): void {
  if (cdb.length < 1) throw new DecodeError(structure, 0, 'empty CDB');
  if (cdb[0] !== opcode) {
    throw new DecodeError(structure, 0, `OPERATION CODE is ${opcodeName(cdb[0])}, expected ${opcodeName(opcode)}`);
  }
  if (cdb.length < length) throw new DecodeError(structure, cdb.length, `CDB is ${cdb.length} bytes, expected ${length}`);
  if (serviceAction !== undefined && (cdb[1] & 0x1f) !== serviceAction) {
    throw new DecodeError(
      structure,
      1,
      `SERVICE ACTION is 0x${(cdb[1] & 0x1f).toString(16).padStart(2, '0')}, expected ${opcodeName(opcode, serviceAction)}`,
    );
  }
}

/**
 * CDB length from the GROUP CODE in bits 7:5 of the OPERATION CODE (SPC-4 r37 4.2.5.1):
 * 6, 10, 12 or 16 bytes; undefined for group 3 (variable length / reserved) and the vendor
 * specific groups 6 and 7.
 */
export function cdbLengthOfOpcode(opcode: number): number | undefined {
  switch ((opcode >> 5) & 0x7) {
    case 0:
      return 6;
    case 1:
    case 2:
      return 10;
    case 4:
      return 16;
    case 5:
      return 12;
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// TEST UNIT READY (SPC-4 TEST UNIT READY command): 6 bytes, bytes 1–4 reserved
// ---------------------------------------------------------------------------------------------

const TUR = 'TEST UNIT READY CDB';

export function encodeTestUnitReadyCdb(p: { control?: number } = {}): Buffer {
  const cdb = Buffer.alloc(6);
  cdb[0] = Opcode.TEST_UNIT_READY;
  cdb[5] = uintUpTo(TUR, 'control', p.control, 0xff);
  return cdb;
}

// ---------------------------------------------------------------------------------------------
// INQUIRY (SPC-4 r37 6.6.1): byte 1 bit 0 EVPD, byte 2 PAGE CODE, bytes 3–4 ALLOCATION LENGTH
// ---------------------------------------------------------------------------------------------

export interface InquiryCdb {
  evpd: boolean;
  pageCode: number;
  allocationLength: number;
  control: number;
}

const INQ = 'INQUIRY CDB';

export function encodeInquiryCdb(p: {
  evpd?: boolean;
  pageCode?: number;
  allocationLength: number;
  control?: number;
}): Buffer {
  const cdb = Buffer.alloc(6);
  cdb[0] = Opcode.INQUIRY;
  cdb[1] = p.evpd ? 0x01 : 0;
  cdb[2] = uintUpTo(INQ, 'pageCode', p.pageCode, 0xff);
  cdb.writeUInt16BE(uintUpTo(INQ, 'allocationLength', p.allocationLength, 0xffff), 3);
  cdb[5] = uintUpTo(INQ, 'control', p.control, 0xff);
  return cdb;
}

export function decodeInquiryCdb(cdb: Buffer): InquiryCdb {
  expect(INQ, cdb, 6, Opcode.INQUIRY);
  return { evpd: (cdb[1] & 0x01) !== 0, pageCode: cdb[2], allocationLength: cdb.readUInt16BE(3), control: cdb[5] };
}

// ---------------------------------------------------------------------------------------------
// READ CAPACITY(16) (SBC-3 r36 5.16.1): SERVICE ACTION IN(16) 9Eh / 10h, 16 bytes.
// Bytes 2–9 LOGICAL BLOCK ADDRESS and byte 14 bit 0 PMI are obsolete (SBC-3); kept so a decoded
// CDB shows what an old initiator sent. Bytes 10–13 ALLOCATION LENGTH.
// ---------------------------------------------------------------------------------------------

export interface ReadCapacity16Cdb {
  allocationLength: number;
  lba: bigint;
  pmi: boolean;
  control: number;
}

const RC16 = 'READ CAPACITY(16) CDB';

export function encodeReadCapacity16Cdb(p: {
  allocationLength: number;
  lba?: bigint;
  pmi?: boolean;
  control?: number;
}): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = Opcode.SERVICE_ACTION_IN_16;
  cdb[1] = ServiceActionIn16.READ_CAPACITY_16;
  cdb.writeBigUInt64BE(bigUintUpTo(RC16, 'lba', p.lba ?? 0n, UINT64_MAX, '2^64-1'), 2);
  cdb.writeUInt32BE(uintUpTo(RC16, 'allocationLength', p.allocationLength, 0xffff_ffff), 10);
  cdb[14] = p.pmi ? 0x01 : 0;
  cdb[15] = uintUpTo(RC16, 'control', p.control, 0xff);
  return cdb;
}

export function decodeReadCapacity16Cdb(cdb: Buffer): ReadCapacity16Cdb {
  expect(RC16, cdb, 16, Opcode.SERVICE_ACTION_IN_16, ServiceActionIn16.READ_CAPACITY_16);
  return {
    allocationLength: cdb.readUInt32BE(10),
    lba: cdb.readBigUInt64BE(2),
    pmi: (cdb[14] & 0x01) !== 0,
    control: cdb[15],
  };
}

// ---------------------------------------------------------------------------------------------
// Block-addressed CDBs (SBC-3 r36 5.1): READ, WRITE, VERIFY, WRITE AND VERIFY, ORWRITE, PRE-FETCH,
// SYNCHRONIZE CACHE and WRITE SAME in their 6-, 10-, 12- and 16-byte forms share one layout per
// length; the agent builds READ(16), WRITE(16) and SYNCHRONIZE CACHE(16), the target decodes
// every form with decodeBlockCdb.
// ---------------------------------------------------------------------------------------------

/** A decoded block-addressed CDB. */
export interface BlockCdb {
  /** LOGICAL BLOCK ADDRESS. */
  lba: bigint;
  /** TRANSFER LENGTH / NUMBER OF LOGICAL BLOCKS / PREFETCH LENGTH, in blocks. */
  count: number;
  /** Byte 1 (protection field, DPO, FUA, BYTCHK, IMMED, ... per command); 0 for 6-byte CDBs. */
  flags: number;
  /** GROUP NUMBER (SBC-3 grouping function). */
  group: number;
  /** CDB byte offsets of the LBA and count fields, for field pointers. */
  lbaByte: number;
  countByte: number;
}

/**
 * Decodes the LBA and count of a block-addressed CDB by its length (SBC-3 r36 5.1). The caller
 * has matched the OPERATION CODE to its command; the CONTROL byte is not read.
 * - 6 bytes: LBA in byte 1 bits 4:0 and bytes 2–3, count in byte 4 (0 means 256 for READ(6)
 *   and WRITE(6), SBC-3 r36 5.10 and 5.32; pass `zeroMeans256`);
 * - 10 bytes: LBA bytes 2–5, GROUP NUMBER byte 6, count bytes 7–8;
 * - 12 bytes: LBA bytes 2–5, count bytes 6–9, GROUP NUMBER byte 10;
 * - 16 bytes: LBA bytes 2–9, count bytes 10–13, GROUP NUMBER byte 14.
 */
export function decodeBlockCdb(cdb: Buffer, cdbLength: 6 | 10 | 12 | 16, zeroMeans256 = false): BlockCdb {
  if (cdb.length < cdbLength) throw new DecodeError('block CDB', cdb.length, `CDB is ${cdb.length} bytes, expected ${cdbLength}`);
  switch (cdbLength) {
    case 6: {
      const lba = BigInt(((cdb[1] & 0x1f) << 16) | cdb.readUInt16BE(2));
      const count = cdb[4] === 0 && zeroMeans256 ? 256 : cdb[4];
      return { lba, count, flags: 0, group: 0, lbaByte: 1, countByte: 4 };
    }
    case 10:
      return { lba: BigInt(cdb.readUInt32BE(2)), count: cdb.readUInt16BE(7), flags: cdb[1], group: cdb[6] & 0x1f, lbaByte: 2, countByte: 7 };
    case 12:
      return { lba: BigInt(cdb.readUInt32BE(2)), count: cdb.readUInt32BE(6), flags: cdb[1], group: cdb[10] & 0x1f, lbaByte: 2, countByte: 6 };
    case 16:
      return { lba: cdb.readBigUInt64BE(2), count: cdb.readUInt32BE(10), flags: cdb[1], group: cdb[14] & 0x1f, lbaByte: 2, countByte: 10 };
  }
}

// READ(16) (SBC-3 r36 5.13) and WRITE(16) (SBC-3 r36 5.35): byte 1 RDPROTECT/WRPROTECT (7:5),
// DPO (4), FUA (3); bytes 2–9 LOGICAL BLOCK ADDRESS; 10–13 TRANSFER LENGTH; byte 14 bits 4:0
// GROUP NUMBER.

export interface Read16CdbInput {
  lba: bigint;
  transferLength: number;
  dpo?: boolean;
  fua?: boolean;
  rdprotect?: number;
  groupNumber?: number;
  control?: number;
}

export interface Write16CdbInput {
  lba: bigint;
  transferLength: number;
  dpo?: boolean;
  fua?: boolean;
  wrprotect?: number;
  groupNumber?: number;
  control?: number;
}

function encodeRw16(
  structure: string,
  opcode: number,
  protectField: string,
  p: { lba: bigint; transferLength: number; dpo?: boolean; fua?: boolean; groupNumber?: number; control?: number },
  protect: number | undefined,
): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = opcode;
  cdb[1] = (uintUpTo(structure, protectField, protect, 7) << 5) | (p.dpo ? 0x10 : 0) | (p.fua ? 0x08 : 0);
  if (p.lba === undefined) throw new EncodeError(structure, 'lba', 'is required');
  cdb.writeBigUInt64BE(bigUintUpTo(structure, 'lba', p.lba ?? 0n, UINT64_MAX, '2^64-1'), 2);
  cdb.writeUInt32BE(uintUpTo(structure, 'transferLength', p.transferLength, 0xffff_ffff, true), 10);
  cdb[14] = uintUpTo(structure, 'groupNumber', p.groupNumber, 0x1f);
  cdb[15] = uintUpTo(structure, 'control', p.control, 0xff);
  return cdb;
}

const R16 = 'READ(16) CDB';
const W16 = 'WRITE(16) CDB';

export function encodeRead16Cdb(p: Read16CdbInput): Buffer {
  return encodeRw16(R16, Opcode.READ_16, 'rdprotect', p, p.rdprotect);
}

export function encodeWrite16Cdb(p: Write16CdbInput): Buffer {
  return encodeRw16(W16, Opcode.WRITE_16, 'wrprotect', p, p.wrprotect);
}

// ---------------------------------------------------------------------------------------------
// SYNCHRONIZE CACHE(16) (SBC-3 r36 5.27): byte 1 bit 1 IMMED; bytes 2–9 LOGICAL BLOCK ADDRESS;
// 10–13 NUMBER OF LOGICAL BLOCKS (0 = to the end of the medium); byte 14 bits 4:0 GROUP NUMBER.
// ---------------------------------------------------------------------------------------------

const SC16 = 'SYNCHRONIZE CACHE(16) CDB';

export function encodeSynchronizeCache16Cdb(
  p: { immed?: boolean; lba?: bigint; numberOfBlocks?: number; groupNumber?: number; control?: number } = {},
): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = Opcode.SYNCHRONIZE_CACHE_16;
  cdb[1] = p.immed ? 0x02 : 0;
  cdb.writeBigUInt64BE(bigUintUpTo(SC16, 'lba', p.lba ?? 0n, UINT64_MAX, '2^64-1'), 2);
  cdb.writeUInt32BE(uintUpTo(SC16, 'numberOfBlocks', p.numberOfBlocks, 0xffff_ffff), 10);
  cdb[14] = uintUpTo(SC16, 'groupNumber', p.groupNumber, 0x1f);
  cdb[15] = uintUpTo(SC16, 'control', p.control, 0xff);
  return cdb;
}

// ---------------------------------------------------------------------------------------------
// REPORT LUNS (SPC-4 r37 6.33): 12 bytes; byte 2 SELECT REPORT; bytes 6–9 ALLOCATION LENGTH.
// ---------------------------------------------------------------------------------------------

/** SPC-4 r37 6.33: SELECT REPORT values. */
export const enum SelectReport {
  /** Logical units with LUN addressing (no well-known LUs). */
  ALL_LOGICAL_UNITS = 0x00,
  WELL_KNOWN_ONLY = 0x01,
  ALL = 0x02,
}

export interface ReportLunsCdb {
  selectReport: number;
  allocationLength: number;
  control: number;
}

const RL = 'REPORT LUNS CDB';

export function encodeReportLunsCdb(p: { selectReport?: number; allocationLength: number; control?: number }): Buffer {
  const cdb = Buffer.alloc(12);
  cdb[0] = Opcode.REPORT_LUNS;
  cdb[2] = uintUpTo(RL, 'selectReport', p.selectReport, 0xff);
  cdb.writeUInt32BE(uintUpTo(RL, 'allocationLength', p.allocationLength, 0xffff_ffff, true), 6);
  cdb[11] = uintUpTo(RL, 'control', p.control, 0xff);
  return cdb;
}

export function decodeReportLunsCdb(cdb: Buffer): ReportLunsCdb {
  expect(RL, cdb, 12, Opcode.REPORT_LUNS);
  return { selectReport: cdb[2], allocationLength: cdb.readUInt32BE(6), control: cdb[11] };
}

// ---------------------------------------------------------------------------------------------
// EXTENDED COPY(LID1) (SPC-4 r37 6.5.1; 83h SA 00h): 16 bytes; bytes 10–13 PARAMETER LIST LENGTH.
// ---------------------------------------------------------------------------------------------

export interface ExtendedCopyCdb {
  parameterListLength: number;
  control: number;
}

const EC = 'EXTENDED COPY(LID1) CDB';

export function encodeExtendedCopyCdb(p: { parameterListLength: number; control?: number }): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = Opcode.EXTENDED_COPY;
  cdb[1] = ExtendedCopySa.EXTENDED_COPY_LID1;
  cdb.writeUInt32BE(uintUpTo(EC, 'parameterListLength', p.parameterListLength, 0xffff_ffff, true), 10);
  cdb[15] = uintUpTo(EC, 'control', p.control, 0xff);
  return cdb;
}

export function decodeExtendedCopyCdb(cdb: Buffer): ExtendedCopyCdb {
  expect(EC, cdb, 16, Opcode.EXTENDED_COPY, ExtendedCopySa.EXTENDED_COPY_LID1);
  return { parameterListLength: cdb.readUInt32BE(10), control: cdb[15] };
}

/**
 * COPY OPERATION ABORT (SPC-4 r37 6.3; THIRD-PARTY COPY OUT SA 1Ch): 16 bytes; bytes 2–5 LIST
 * IDENTIFIER of the copy to stop (a LID1 list identifier fits in its low byte).
 */
export function encodeCopyOperationAbortCdb(p: { listIdentifier: number; control?: number }): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = Opcode.EXTENDED_COPY;
  cdb[1] = ExtendedCopySa.COPY_OPERATION_ABORT;
  cdb.writeUInt32BE(uintUpTo('COPY OPERATION ABORT CDB', 'listIdentifier', p.listIdentifier, 0xffff_ffff, true), 2);
  cdb[15] = uintUpTo('COPY OPERATION ABORT CDB', 'control', p.control, 0xff);
  return cdb;
}

// ---------------------------------------------------------------------------------------------
// RECEIVE COPY RESULTS (SPC-3 r23 6.17; in SPC-4 the RECEIVE COPY STATUS(LID1), DATA(LID1),
// OPERATING PARAMETERS and FAILURE DETAILS(LID1) commands; 84h): 16 bytes; byte 1 bits 4:0 SERVICE ACTION; byte 2 LIST
// IDENTIFIER; bytes 10–13 ALLOCATION LENGTH. Only the service actions with this layout (the LID1
// ones and OPERATING PARAMETERS) are handled; the LID4 ones carry a 4-byte list identifier in
// bytes 2–5 and are rejected here (DecodeError at byte 1).
// ---------------------------------------------------------------------------------------------

/** Service actions whose CDB has the one-byte LIST IDENTIFIER at byte 2. */
const RCR_LID1_SAS: ReadonlySet<number> = new Set([
  ReceiveCopyResultsSa.COPY_STATUS,
  ReceiveCopyResultsSa.RECEIVE_DATA,
  ReceiveCopyResultsSa.OPERATING_PARAMETERS,
  ReceiveCopyResultsSa.FAILED_SEGMENT_DETAILS,
]);

export interface ReceiveCopyResultsCdb {
  serviceAction: number;
  listIdentifier: number;
  allocationLength: number;
  control: number;
}

const RCR = 'RECEIVE COPY RESULTS CDB';

export function encodeReceiveCopyResultsCdb(p: {
  serviceAction: number;
  listIdentifier?: number;
  allocationLength: number;
  control?: number;
}): Buffer {
  if (!RCR_LID1_SAS.has(p.serviceAction)) {
    throw new EncodeError(RCR, 'serviceAction', `must be 00h, 01h, 03h or 04h, got ${String(p.serviceAction)}`);
  }
  const cdb = Buffer.alloc(16);
  cdb[0] = Opcode.RECEIVE_COPY_RESULTS;
  cdb[1] = p.serviceAction;
  cdb[2] = uintUpTo(RCR, 'listIdentifier', p.listIdentifier, 0xff);
  cdb.writeUInt32BE(uintUpTo(RCR, 'allocationLength', p.allocationLength, 0xffff_ffff, true), 10);
  cdb[15] = uintUpTo(RCR, 'control', p.control, 0xff);
  return cdb;
}

export function decodeReceiveCopyResultsCdb(cdb: Buffer): ReceiveCopyResultsCdb {
  expect(RCR, cdb, 16, Opcode.RECEIVE_COPY_RESULTS);
  const serviceAction = cdb[1] & 0x1f;
  if (!RCR_LID1_SAS.has(serviceAction)) {
    throw new DecodeError(RCR, 1, `SERVICE ACTION ${opcodeName(Opcode.RECEIVE_COPY_RESULTS, serviceAction)} not supported`);
  }
  return { serviceAction, listIdentifier: cdb[2], allocationLength: cdb.readUInt32BE(10), control: cdb[15] };
}

// ---------------------------------------------------------------------------------------------
// MODE SENSE(10) (SPC-4 MODE SENSE(10) command; 5Ah): 10 bytes; byte 1 bit 4 LLBAA, bit 3 DBD;
// byte 2 bits 7:6 PC (page control), bits 5:0 PAGE CODE; byte 3 SUBPAGE CODE; bytes 7–8
// ALLOCATION LENGTH.
// ---------------------------------------------------------------------------------------------

export interface ModeSense10Cdb {
  llbaa: boolean;
  dbd: boolean;
  pageControl: number;
  pageCode: number;
  subpageCode: number;
  allocationLength: number;
  control: number;
}

const MS10 = 'MODE SENSE(10) CDB';

export function encodeModeSense10Cdb(p: {
  llbaa?: boolean;
  dbd?: boolean;
  pageControl?: number;
  pageCode: number;
  subpageCode?: number;
  allocationLength: number;
  control?: number;
}): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = Opcode.MODE_SENSE_10;
  cdb[1] = (p.llbaa ? 0x10 : 0) | (p.dbd ? 0x08 : 0);
  cdb[2] = (uintUpTo(MS10, 'pageControl', p.pageControl, 3) << 6) | uintUpTo(MS10, 'pageCode', p.pageCode, 0x3f, true);
  cdb[3] = uintUpTo(MS10, 'subpageCode', p.subpageCode, 0xff);
  cdb.writeUInt16BE(uintUpTo(MS10, 'allocationLength', p.allocationLength, 0xffff, true), 7);
  cdb[9] = uintUpTo(MS10, 'control', p.control, 0xff);
  return cdb;
}

export function decodeModeSense10Cdb(cdb: Buffer): ModeSense10Cdb {
  expect(MS10, cdb, 10, Opcode.MODE_SENSE_10);
  return {
    llbaa: (cdb[1] & 0x10) !== 0,
    dbd: (cdb[1] & 0x08) !== 0,
    pageControl: cdb[2] >> 6,
    pageCode: cdb[2] & 0x3f,
    subpageCode: cdb[3],
    allocationLength: cdb.readUInt16BE(7),
    control: cdb[9],
  };
}

/**
 * RECEIVE COPY RESULTS (LID1) parameter data (SPC-4 r37 6.22, 6.23, 6.25; SPC-3 r23 6.17): COPY
 * STATUS (service action 00h; SPC-4 r37 6.25 RECEIVE COPY STATUS(LID1)), OPERATING PARAMETERS (03h;
 * SPC-4 r37 6.22 RECEIVE COPY OPERATING PARAMETERS) and FAILED SEGMENT DETAILS (04h; SPC-4 r37 6.23
 * RECEIVE COPY FAILURE DETAILS(LID1)). Pure codecs, big-endian.
 *
 * AVAILABLE DATA (bytes 0–3) always gives the full length − 4, and the device server returns
 * min(allocation length, full length) bytes. The decoders honour AVAILABLE DATA (bytes beyond it
 * are ignored) and tolerate a response cut by the allocation length: the fixed part must be
 * present (a shorter buffer is a DecodeError naming the first missing byte), the variable tail
 * (implemented descriptor type codes, sense data) is reported as far as it is present, with
 * `truncated` set.
 */
import { ArgumentError, DecodeError, EncodeError } from '../errors';
import { checkUint } from './fields';

const COPY_STATUS = 'COPY STATUS parameter data';
const OPERATING_PARAMETERS = 'OPERATING PARAMETERS parameter data';
const FAILED_SEGMENT_DETAILS = 'FAILED SEGMENT DETAILS parameter data';

// ---------------------------------------------------------------------------------------------
// COPY STATUS (LID1), service action 00h (SPC-4 r37 6.25, Table 253)
// ---------------------------------------------------------------------------------------------

/** COPY MANAGER STATUS (byte 4 bits 6:0; "COPY COMMAND STATUS" in SPC-4 r37 Table 254). */
export const enum CopyManagerStatus {
  IN_PROGRESS = 0x00,
  COMPLETED_WITHOUT_ERRORS = 0x01,
  COMPLETED_WITH_ERRORS = 0x02,
}

/** TRANSFER COUNT UNITS (byte 7; SPC-4 r37 Table 251). */
export const enum TransferCountUnits {
  BYTES = 0x00,
  KIBIBYTES = 0x01,
  MEBIBYTES = 0x02,
  GIBIBYTES = 0x03,
  TEBIBYTES = 0x04,
  PEBIBYTES = 0x05,
  EXBIBYTES = 0x06,
  /** Logical blocks of the destination (direct-access block devices). */
  LOGICAL_BLOCKS = 0xf1,
}

/** The response is 12 bytes; AVAILABLE DATA = 8 (libiscsi requires ≥ 8). */
export const COPY_STATUS_LENGTH = 12;

export interface CopyStatusLid1 {
  /** HDD (byte 4 bit 7): held data discarded. */
  hdd: boolean;
  /** COPY MANAGER STATUS (byte 4 bits 6:0); see {@link CopyManagerStatus}. Reserved values are passed through. */
  copyManagerStatus: number;
  /** SEGMENTS PROCESSED (bytes 5–6). */
  segmentsProcessed: number;
  /** TRANSFER COUNT UNITS (byte 7). */
  transferCountUnits: number;
  /** TRANSFER COUNT (bytes 8–11). */
  transferCount: number;
}

export interface DecodedCopyStatusLid1 extends CopyStatusLid1 {
  availableData: number;
}

function isTransferCountUnits(u: number): boolean {
  return (
    (u >= TransferCountUnits.BYTES && u <= TransferCountUnits.EXBIBYTES) || u === TransferCountUnits.LOGICAL_BLOCKS
  );
}

/** Decode COPY STATUS. A reserved TRANSFER COUNT UNITS value is a DecodeError: the count means nothing without it. */
export function decodeCopyStatusLid1(buf: Buffer): DecodedCopyStatusLid1 {
  const availableData = readAvailableData(buf, COPY_STATUS);
  if (availableData < COPY_STATUS_LENGTH - 4) {
    throw new DecodeError(COPY_STATUS, 0, `AVAILABLE DATA ${availableData} is less than ${COPY_STATUS_LENGTH - 4}`);
  }
  need(buf, COPY_STATUS_LENGTH, COPY_STATUS);
  const transferCountUnits = buf[7];
  if (!isTransferCountUnits(transferCountUnits)) {
    throw new DecodeError(COPY_STATUS, 7, `TRANSFER COUNT UNITS ${hex2(transferCountUnits)}h is reserved`);
  }
  return {
    availableData,
    hdd: (buf[4] & 0x80) !== 0,
    copyManagerStatus: buf[4] & 0x7f,
    segmentsProcessed: buf.readUInt16BE(5),
    transferCountUnits,
    transferCount: buf.readUInt32BE(8),
  };
}

export function encodeCopyStatusLid1(fields: CopyStatusLid1): Buffer {
  const s = COPY_STATUS;
  checkUint(s, 'COPY MANAGER STATUS', fields.copyManagerStatus, 7);
  checkUint(s, 'SEGMENTS PROCESSED', fields.segmentsProcessed, 16);
  checkUint(s, 'TRANSFER COUNT UNITS', fields.transferCountUnits, 8);
  if (!isTransferCountUnits(fields.transferCountUnits)) {
    throw new EncodeError(s, 'TRANSFER COUNT UNITS', `${hex2(fields.transferCountUnits)}h is reserved`);
  }
  checkUint(s, 'TRANSFER COUNT', fields.transferCount, 32);
  const out = Buffer.alloc(COPY_STATUS_LENGTH);
  out.writeUInt32BE(COPY_STATUS_LENGTH - 4, 0);
  out[4] = (fields.hdd ? 0x80 : 0) | fields.copyManagerStatus;
  out.writeUInt16BE(fields.segmentsProcessed, 5);
  out[7] = fields.transferCountUnits;
  out.writeUInt32BE(fields.transferCount, 8);
  return out;
}

/**
 * TRANSFER COUNT in bytes. LOGICAL_BLOCKS needs the block length; an unknown unit or a missing
 * block length is an ArgumentError.
 */
export function transferCountToBytes(units: number, count: number, logicalBlockLength?: number): bigint {
  if (!Number.isInteger(count) || count < 0) {
    throw new ArgumentError(`transfer count ${count} is not a non-negative integer`);
  }
  if (units >= TransferCountUnits.BYTES && units <= TransferCountUnits.EXBIBYTES) {
    return BigInt(count) << BigInt(10 * units);
  }
  if (units === TransferCountUnits.LOGICAL_BLOCKS) {
    if (logicalBlockLength === undefined || !Number.isInteger(logicalBlockLength) || logicalBlockLength <= 0) {
      throw new ArgumentError('TRANSFER COUNT in logical blocks needs the logical block length');
    }
    return BigInt(count) * BigInt(logicalBlockLength);
  }
  throw new ArgumentError(`TRANSFER COUNT UNITS ${hex2(units)}h is reserved`);
}

/**
 * The smallest unit (bytes, KiB, … EiB) in which `bytes` fits the 32-bit TRANSFER COUNT, and the
 * count in it, rounded down (a status never claims more than was moved; CTL does the same when it
 * switches to MiB). EncodeError if negative or not representable even in EiB.
 */
export function bytesToTransferCount(bytes: bigint | number): { transferCountUnits: number; transferCount: number } {
  if (typeof bytes === 'number' && !Number.isSafeInteger(bytes)) {
    throw new EncodeError(COPY_STATUS, 'TRANSFER COUNT', `${bytes} is not a safe integer byte count`);
  }
  const b = BigInt(bytes);
  if (b < 0n) throw new EncodeError(COPY_STATUS, 'TRANSFER COUNT', `${b} bytes is negative`);
  for (let units = TransferCountUnits.BYTES as number; units <= TransferCountUnits.EXBIBYTES; units++) {
    const count = b >> BigInt(10 * units);
    if (count <= 0xffffffffn) return { transferCountUnits: units, transferCount: Number(count) };
  }
  throw new EncodeError(COPY_STATUS, 'TRANSFER COUNT', `${b} bytes does not fit 32 bits even in EiB`);
}

// ---------------------------------------------------------------------------------------------
// OPERATING PARAMETERS, service action 03h (SPC-4 r37 6.22, Table 244)
// ---------------------------------------------------------------------------------------------

/** Bytes before the LIST OF IMPLEMENTED DESCRIPTOR TYPE CODES. */
export const OPERATING_PARAMETERS_FIXED_LENGTH = 44;

export interface OperatingParameters {
  /** SNLID (byte 4 bit 0): LIST ID USAGE 11b supported. */
  snlid: boolean;
  /** MAXIMUM CSCD DESCRIPTOR COUNT (bytes 8–9; "MAXIMUM TARGET DESCRIPTOR COUNT" before SPC-4). */
  maximumCscdDescriptorCount: number;
  /** MAXIMUM SEGMENT DESCRIPTOR COUNT (bytes 10–11). */
  maximumSegmentDescriptorCount: number;
  /** MAXIMUM DESCRIPTOR LIST LENGTH (bytes 12–15), CSCD + segment bytes. */
  maximumDescriptorListLength: number;
  /** MAXIMUM SEGMENT LENGTH (bytes 16–19), bytes; 0 = no limit (ddpt). */
  maximumSegmentLength: number;
  /** MAXIMUM INLINE DATA LENGTH (bytes 20–23). */
  maximumInlineDataLength: number;
  /** HELD DATA LIMIT (bytes 24–27). */
  heldDataLimit: number;
  /** MAXIMUM STREAM DEVICE TRANSFER SIZE (bytes 28–31). */
  maximumStreamDeviceTransferSize: number;
  /** TOTAL CONCURRENT COPIES (bytes 34–35). */
  totalConcurrentCopies: number;
  /** MAXIMUM CONCURRENT COPIES (byte 36). */
  maximumConcurrentCopies: number;
  /** DATA SEGMENT GRANULARITY (byte 37), log2 of bytes. */
  dataSegmentGranularity: number;
  /** INLINE DATA GRANULARITY (byte 38), log2 of bytes. */
  inlineDataGranularity: number;
  /** HELD DATA GRANULARITY (byte 39), log2 of bytes. */
  heldDataGranularity: number;
  /** LIST OF IMPLEMENTED DESCRIPTOR TYPE CODES (bytes 44…): segment codes, then CSCD codes. */
  implementedDescriptorTypeCodes: number[];
}

export interface DecodedOperatingParameters extends OperatingParameters {
  availableData: number;
  /** IMPLEMENTED DESCRIPTOR LIST LENGTH (byte 43) as declared. */
  implementedDescriptorListLength: number;
  /** True when the buffer ended inside the implemented descriptor list. */
  truncated: boolean;
}

export function decodeOperatingParameters(buf: Buffer): DecodedOperatingParameters {
  const s = OPERATING_PARAMETERS;
  const availableData = readAvailableData(buf, s);
  if (availableData < OPERATING_PARAMETERS_FIXED_LENGTH - 4) {
    throw new DecodeError(
      s,
      0,
      `AVAILABLE DATA ${availableData} is less than ${OPERATING_PARAMETERS_FIXED_LENGTH - 4}`,
    );
  }
  need(buf, OPERATING_PARAMETERS_FIXED_LENGTH, s);
  const n = buf[43];
  if (OPERATING_PARAMETERS_FIXED_LENGTH + n > 4 + availableData) {
    throw new DecodeError(s, 43, `IMPLEMENTED DESCRIPTOR LIST LENGTH ${n} runs past AVAILABLE DATA ${availableData}`);
  }
  const listEnd = Math.min(buf.length, OPERATING_PARAMETERS_FIXED_LENGTH + n);
  return {
    availableData,
    snlid: (buf[4] & 0x01) !== 0,
    maximumCscdDescriptorCount: buf.readUInt16BE(8),
    maximumSegmentDescriptorCount: buf.readUInt16BE(10),
    maximumDescriptorListLength: buf.readUInt32BE(12),
    maximumSegmentLength: buf.readUInt32BE(16),
    maximumInlineDataLength: buf.readUInt32BE(20),
    heldDataLimit: buf.readUInt32BE(24),
    maximumStreamDeviceTransferSize: buf.readUInt32BE(28),
    totalConcurrentCopies: buf.readUInt16BE(34),
    maximumConcurrentCopies: buf[36],
    dataSegmentGranularity: buf[37],
    inlineDataGranularity: buf[38],
    heldDataGranularity: buf[39],
    implementedDescriptorListLength: n,
    implementedDescriptorTypeCodes: [...buf.subarray(OPERATING_PARAMETERS_FIXED_LENGTH, listEnd)],
    truncated: listEnd < OPERATING_PARAMETERS_FIXED_LENGTH + n,
  };
}

export function encodeOperatingParameters(fields: OperatingParameters): Buffer {
  const s = OPERATING_PARAMETERS;
  const codes = fields.implementedDescriptorTypeCodes;
  checkUint(s, 'MAXIMUM CSCD DESCRIPTOR COUNT', fields.maximumCscdDescriptorCount, 16);
  checkUint(s, 'MAXIMUM SEGMENT DESCRIPTOR COUNT', fields.maximumSegmentDescriptorCount, 16);
  checkUint(s, 'MAXIMUM DESCRIPTOR LIST LENGTH', fields.maximumDescriptorListLength, 32);
  checkUint(s, 'MAXIMUM SEGMENT LENGTH', fields.maximumSegmentLength, 32);
  checkUint(s, 'MAXIMUM INLINE DATA LENGTH', fields.maximumInlineDataLength, 32);
  checkUint(s, 'HELD DATA LIMIT', fields.heldDataLimit, 32);
  checkUint(s, 'MAXIMUM STREAM DEVICE TRANSFER SIZE', fields.maximumStreamDeviceTransferSize, 32);
  checkUint(s, 'TOTAL CONCURRENT COPIES', fields.totalConcurrentCopies, 16);
  checkUint(s, 'MAXIMUM CONCURRENT COPIES', fields.maximumConcurrentCopies, 8);
  checkUint(s, 'DATA SEGMENT GRANULARITY', fields.dataSegmentGranularity, 8);
  checkUint(s, 'INLINE DATA GRANULARITY', fields.inlineDataGranularity, 8);
  checkUint(s, 'HELD DATA GRANULARITY', fields.heldDataGranularity, 8);
  checkUint(s, 'IMPLEMENTED DESCRIPTOR LIST LENGTH', codes.length, 8);
  codes.forEach((c, i) => checkUint(s, `implemented descriptor type code [${i}]`, c, 8));
  const out = Buffer.alloc(OPERATING_PARAMETERS_FIXED_LENGTH + codes.length);
  out.writeUInt32BE(out.length - 4, 0);
  out[4] = fields.snlid ? 0x01 : 0;
  out.writeUInt16BE(fields.maximumCscdDescriptorCount, 8);
  out.writeUInt16BE(fields.maximumSegmentDescriptorCount, 10);
  out.writeUInt32BE(fields.maximumDescriptorListLength, 12);
  out.writeUInt32BE(fields.maximumSegmentLength, 16);
  out.writeUInt32BE(fields.maximumInlineDataLength, 20);
  out.writeUInt32BE(fields.heldDataLimit, 24);
  out.writeUInt32BE(fields.maximumStreamDeviceTransferSize, 28);
  out.writeUInt16BE(fields.totalConcurrentCopies, 34);
  out[36] = fields.maximumConcurrentCopies;
  out[37] = fields.dataSegmentGranularity;
  out[38] = fields.inlineDataGranularity;
  out[39] = fields.heldDataGranularity;
  out[43] = codes.length;
  Buffer.from(codes).copy(out, OPERATING_PARAMETERS_FIXED_LENGTH);
  return out;
}

// ---------------------------------------------------------------------------------------------
// FAILED SEGMENT DETAILS, service action 04h (SPC-4 r37 6.23, Table 246)
// ---------------------------------------------------------------------------------------------

/** Offset of the SENSE DATA; bytes 4–55 are reserved. */
export const FAILED_SEGMENT_DETAILS_FIXED_LENGTH = 60;

export interface FailedSegmentDetails {
  /**
   * COPY COMMAND STATUS (byte 56; "EXTENDED COPY COMMAND STATUS" in SPC-4): the SCSI status the
   * EXTENDED COPY ended with.
   */
  copyCommandStatus: number;
  /** SENSE DATA (bytes 60…). */
  senseData: Buffer;
}

export type DecodedFailedSegmentDetails =
  | { held: false; availableData: 0 }
  | (FailedSegmentDetails & {
      held: true;
      availableData: number;
      /** SENSE DATA LENGTH (bytes 58–59) as declared. */
      senseDataLength: number;
      /** True when the buffer ended inside the sense data (`senseData` holds what is present). */
      truncated: boolean;
    });

/** AVAILABLE DATA 0 means the copy manager holds no details for the list. */
export function decodeFailedSegmentDetails(buf: Buffer): DecodedFailedSegmentDetails {
  const s = FAILED_SEGMENT_DETAILS;
  const availableData = readAvailableData(buf, s);
  if (availableData === 0) return { held: false, availableData: 0 };
  if (availableData < FAILED_SEGMENT_DETAILS_FIXED_LENGTH - 4) {
    throw new DecodeError(
      s,
      0,
      `AVAILABLE DATA ${availableData} is neither 0 nor at least ${FAILED_SEGMENT_DETAILS_FIXED_LENGTH - 4}`,
    );
  }
  need(buf, FAILED_SEGMENT_DETAILS_FIXED_LENGTH, s);
  const senseDataLength = buf.readUInt16BE(58);
  if (FAILED_SEGMENT_DETAILS_FIXED_LENGTH + senseDataLength > 4 + availableData) {
    throw new DecodeError(s, 58, `SENSE DATA LENGTH ${senseDataLength} runs past AVAILABLE DATA ${availableData}`);
  }
  const end = Math.min(buf.length, FAILED_SEGMENT_DETAILS_FIXED_LENGTH + senseDataLength);
  return {
    held: true,
    availableData,
    copyCommandStatus: buf[56],
    senseDataLength,
    senseData: Buffer.from(buf.subarray(FAILED_SEGMENT_DETAILS_FIXED_LENGTH, end)),
    truncated: end < FAILED_SEGMENT_DETAILS_FIXED_LENGTH + senseDataLength,
  };
}

/** With no details: the 4-byte "nothing held" answer (AVAILABLE DATA 0). */
export function encodeFailedSegmentDetails(details?: FailedSegmentDetails): Buffer {
  const s = FAILED_SEGMENT_DETAILS;
  if (!details) return Buffer.alloc(4);
  checkUint(s, 'COPY COMMAND STATUS', details.copyCommandStatus, 8);
  checkUint(s, 'SENSE DATA LENGTH', details.senseData.length, 16);
  const out = Buffer.alloc(FAILED_SEGMENT_DETAILS_FIXED_LENGTH + details.senseData.length);
  out.writeUInt32BE(out.length - 4, 0);
  out[56] = details.copyCommandStatus;
  out.writeUInt16BE(details.senseData.length, 58);
  details.senseData.copy(out, FAILED_SEGMENT_DETAILS_FIXED_LENGTH);
  return out;
}

// ---------------------------------------------------------------------------------------------

function readAvailableData(buf: Buffer, structure: string): number {
  need(buf, 4, structure);
  return buf.readUInt32BE(0);
}

function need(buf: Buffer, length: number, structure: string): void {
  if (buf.length < length) {
    throw new DecodeError(structure, buf.length, `needs at least ${length} bytes, got ${buf.length}`);
  }
}

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}

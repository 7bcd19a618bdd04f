/**
 * Standard INQUIRY data (SPC-4 r37 6.6.2, Table 139). Pure codec, big-endian.
 *
 * The decoder honours ADDITIONAL LENGTH and tolerates data cut short by the allocation length as
 * long as the first 36 bytes (through PRODUCT REVISION LEVEL) are present; version descriptors
 * are read only where whole. The encoder writes 36 bytes, or 74 when version descriptors are
 * given (through byte 73, the last VERSION DESCRIPTOR).
 */
import { DecodeError, EncodeError } from '../errors';
import { asciiBytes, checkUint, trimAscii } from './fields';

const STANDARD_INQUIRY = 'standard INQUIRY data';

/** SPC-4 r37 6.6.2: the bytes every standard INQUIRY response must hold (ADDITIONAL LENGTH ≥ 31). */
export const STANDARD_INQUIRY_MIN_LENGTH = 36;
/** Offset of the first VERSION DESCRIPTOR (SPC-4 r37 Table 139, bytes 58–73: eight of them). */
const VERSION_DESCRIPTORS_OFFSET = 58;
const MAX_VERSION_DESCRIPTORS = 8;

export interface StandardInquiryData {
  /** PERIPHERAL QUALIFIER (byte 0 bits 7:5): 0 connected, 1 not connected, 3 no LU. */
  peripheralQualifier: number;
  /** PERIPHERAL DEVICE TYPE (byte 0 bits 4:0): 00h direct access block device. */
  peripheralDeviceType: number;
  /** RMB (byte 1 bit 7): removable medium. */
  rmb: boolean;
  /** VERSION (byte 2): see {@link spcVersionName}. */
  version: number;
  /** NORMACA (byte 3 bit 5). */
  normaca: boolean;
  /** HISUP (byte 3 bit 4). */
  hisup: boolean;
  /** RESPONSE DATA FORMAT (byte 3 bits 3:0): 2 for SPC-2 and later. */
  responseDataFormat: number;
  /** SCCS (byte 5 bit 7). */
  sccs: boolean;
  /** ACC (byte 5 bit 6). */
  acc: boolean;
  /** TPGS (byte 5 bits 5:4): ALUA support (01b implicit, 10b explicit, 11b both). */
  tpgs: number;
  /** 3PC (byte 5 bit 3): third-party copy (EXTENDED COPY) supported. */
  threePc: boolean;
  /** PROTECT (byte 5 bit 0). */
  protect: boolean;
  /** ENCSERV (byte 6 bit 6). */
  encserv: boolean;
  /** MULTIP (byte 6 bit 4). */
  multip: boolean;
  /** CMDQUE (byte 7 bit 1). */
  cmdque: boolean;
  /** T10 VENDOR IDENTIFICATION (bytes 8–15), trailing spaces removed. */
  t10VendorIdentification: string;
  /** PRODUCT IDENTIFICATION (bytes 16–31), trailing spaces removed. */
  productIdentification: string;
  /** PRODUCT REVISION LEVEL (bytes 32–35), trailing spaces removed. */
  productRevisionLevel: string;
  /** VERSION DESCRIPTORs (bytes 58–73) that are present and non-zero, in order. */
  versionDescriptors: number[];
}

export interface DecodedStandardInquiry extends StandardInquiryData {
  /** ADDITIONAL LENGTH (byte 4) as declared: the data is 5 + this many bytes long. */
  additionalLength: number;
  /** True when the buffer holds fewer than 5 + ADDITIONAL LENGTH bytes. */
  truncated: boolean;
}

/**
 * What the encoder needs. Omitted fields default to 0/false/[], except VERSION (6, SPC-4) and
 * RESPONSE DATA FORMAT (2, the only non-obsolete value).
 */
export type StandardInquiryFields = Partial<StandardInquiryData> &
  Pick<
    StandardInquiryData,
    'peripheralDeviceType' | 't10VendorIdentification' | 'productIdentification' | 'productRevisionLevel'
  >;

/** SPC-4 r37 6.6.2: decode standard INQUIRY data. */
export function decodeStandardInquiry(buf: Buffer): DecodedStandardInquiry {
  if (buf.length < STANDARD_INQUIRY_MIN_LENGTH) {
    throw new DecodeError(
      STANDARD_INQUIRY,
      buf.length,
      `needs at least ${STANDARD_INQUIRY_MIN_LENGTH} bytes, got ${buf.length}`,
    );
  }
  const additionalLength = buf[4];
  if (additionalLength < STANDARD_INQUIRY_MIN_LENGTH - 5) {
    throw new DecodeError(STANDARD_INQUIRY, 4, `ADDITIONAL LENGTH ${additionalLength} is less than 31`);
  }
  const end = Math.min(buf.length, 5 + additionalLength);
  const versionDescriptors: number[] = [];
  for (let i = 0; i < MAX_VERSION_DESCRIPTORS; i++) {
    const off = VERSION_DESCRIPTORS_OFFSET + 2 * i;
    if (off + 2 > end) break;
    const v = buf.readUInt16BE(off);
    if (v !== 0) versionDescriptors.push(v);
  }
  return {
    peripheralQualifier: buf[0] >> 5,
    peripheralDeviceType: buf[0] & 0x1f,
    rmb: (buf[1] & 0x80) !== 0,
    version: buf[2],
    normaca: (buf[3] & 0x20) !== 0,
    hisup: (buf[3] & 0x10) !== 0,
    responseDataFormat: buf[3] & 0x0f,
    additionalLength,
    sccs: (buf[5] & 0x80) !== 0,
    acc: (buf[5] & 0x40) !== 0,
    tpgs: (buf[5] >> 4) & 0x3,
    threePc: (buf[5] & 0x08) !== 0,
    protect: (buf[5] & 0x01) !== 0,
    encserv: (buf[6] & 0x40) !== 0,
    multip: (buf[6] & 0x10) !== 0,
    cmdque: (buf[7] & 0x02) !== 0,
    t10VendorIdentification: trimAscii(buf.subarray(8, 16), false),
    productIdentification: trimAscii(buf.subarray(16, 32), false),
    productRevisionLevel: trimAscii(buf.subarray(32, 36), false),
    versionDescriptors,
    truncated: buf.length < 5 + additionalLength,
  };
}

/** SPC-4 r37 6.6.2: encode standard INQUIRY data (ASCII fields left-aligned, space-padded). */
export function encodeStandardInquiry(fields: StandardInquiryFields): Buffer {
  const s = STANDARD_INQUIRY;
  const pq = fields.peripheralQualifier ?? 0;
  const version = fields.version ?? 6;
  const rdf = fields.responseDataFormat ?? 2;
  const tpgs = fields.tpgs ?? 0;
  const vds = fields.versionDescriptors ?? [];
  checkUint(s, 'PERIPHERAL QUALIFIER', pq, 3);
  checkUint(s, 'PERIPHERAL DEVICE TYPE', fields.peripheralDeviceType, 5);
  checkUint(s, 'VERSION', version, 8);
  checkUint(s, 'RESPONSE DATA FORMAT', rdf, 4);
  checkUint(s, 'TPGS', tpgs, 2);
  if (vds.length > MAX_VERSION_DESCRIPTORS) {
    throw new EncodeError(s, 'VERSION DESCRIPTOR', `${vds.length} given, at most ${MAX_VERSION_DESCRIPTORS} fit`);
  }
  vds.forEach((v, i) => {
    checkUint(s, `VERSION DESCRIPTOR [${i}]`, v, 16);
    if (v === 0) throw new EncodeError(s, `VERSION DESCRIPTOR [${i}]`, '0000h means "none"; leave it out');
  });
  const length =
    vds.length > 0 ? VERSION_DESCRIPTORS_OFFSET + 2 * MAX_VERSION_DESCRIPTORS : STANDARD_INQUIRY_MIN_LENGTH;
  const out = Buffer.alloc(length);
  out[0] = (pq << 5) | fields.peripheralDeviceType;
  out[1] = fields.rmb ? 0x80 : 0;
  out[2] = version;
  out[3] = (fields.normaca ? 0x20 : 0) | (fields.hisup ? 0x10 : 0) | rdf;
  out[4] = length - 5; // ADDITIONAL LENGTH (n-4)
  out[5] =
    (fields.sccs ? 0x80 : 0) |
    (fields.acc ? 0x40 : 0) |
    (tpgs << 4) |
    (fields.threePc ? 0x08 : 0) |
    (fields.protect ? 0x01 : 0);
  out[6] = (fields.encserv ? 0x40 : 0) | (fields.multip ? 0x10 : 0);
  out[7] = fields.cmdque ? 0x02 : 0;
  writeAsciiField(out, 8, 8, 'T10 VENDOR IDENTIFICATION', fields.t10VendorIdentification);
  writeAsciiField(out, 16, 16, 'PRODUCT IDENTIFICATION', fields.productIdentification);
  writeAsciiField(out, 32, 4, 'PRODUCT REVISION LEVEL', fields.productRevisionLevel);
  vds.forEach((v, i) => out.writeUInt16BE(v, VERSION_DESCRIPTORS_OFFSET + 2 * i));
  return out;
}

function writeAsciiField(out: Buffer, offset: number, width: number, field: string, text: string): void {
  const bytes = asciiBytes(STANDARD_INQUIRY, field, text);
  if (bytes.length > width) {
    throw new EncodeError(STANDARD_INQUIRY, field, `"${text}" is longer than ${width} bytes`);
  }
  out.fill(0x20, offset, offset + width);
  bytes.copy(out, offset);
}

/** SPC-4 r37 6.6.2, Table 142: the standard a VERSION value claims. */
export function spcVersionName(version: number): string {
  switch (version) {
    case 0x00:
      return 'none';
    case 0x01:
      return 'SCSI-1';
    case 0x02:
      return 'SCSI-2';
    case 0x03:
      return 'SPC';
    case 0x04:
      return 'SPC-2';
    case 0x05:
      return 'SPC-3';
    case 0x06:
      return 'SPC-4';
    case 0x07:
      return 'SPC-5';
    default:
      return `reserved (${version.toString(16).toUpperCase().padStart(2, '0')}h)`;
  }
}

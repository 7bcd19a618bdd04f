/**
 * Vital product data pages (SPC-4 r37 7.8; SBC-3 r36 6.6): the common page header, Supported VPD Pages
 * (00h), Unit Serial Number (80h), Device Identification (83h), Block Limits (B0h), Block Device
 * Characteristics (B1h) and Logical Block Provisioning (B2h). The Third-party Copy page (8Fh)
 * lives in vpd-third-party-copy.ts.
 *
 * Pure codecs, big-endian. Decoders honour the PAGE LENGTH field and tolerate a page cut short by
 * the INQUIRY allocation length (they report `truncated` and decode only whole fields or
 * descriptors); a descriptor whose own length runs past the page is a DecodeError. Encoders throw
 * EncodeError for values that do not fit.
 */
import { DecodeError, EncodeError } from '../errors';
import { asciiBytes, checkBigUint, checkUint, trimAscii } from './fields';

/** VPD page codes used by this project (SPC-4 r37 Table 589; SBC-3 r36 Table 181). */
export const enum VpdPageCode {
  SUPPORTED_VPD_PAGES = 0x00,
  UNIT_SERIAL_NUMBER = 0x80,
  DEVICE_IDENTIFICATION = 0x83,
  EXTENDED_INQUIRY_DATA = 0x86,
  THIRD_PARTY_COPY = 0x8f,
  BLOCK_LIMITS = 0xb0,
  BLOCK_DEVICE_CHARACTERISTICS = 0xb1,
  LOGICAL_BLOCK_PROVISIONING = 0xb2,
  REFERRALS = 0xb3,
}

const VPD_PAGE_NAMES: ReadonlyMap<number, string> = new Map([
  [0x00, 'Supported VPD Pages'],
  [0x80, 'Unit Serial Number'],
  [0x83, 'Device Identification'],
  [0x86, 'Extended INQUIRY Data'],
  [0x8f, 'Third-party Copy'],
  [0xb0, 'Block Limits'],
  [0xb1, 'Block Device Characteristics'],
  [0xb2, 'Logical Block Provisioning'],
  [0xb3, 'Referrals'],
]);

/** The standard's name of a VPD page, for messages. */
function vpdPageName(pageCode: number): string {
  return VPD_PAGE_NAMES.get(pageCode) ?? `VPD page ${hex2(pageCode)}h`;
}

// ---------------------------------------------------------------------------------------------
// Common header (SPC-4 r37 7.8.2)
// ---------------------------------------------------------------------------------------------

/** Byte 0 of INQUIRY and VPD data: PERIPHERAL QUALIFIER (7:5) and PERIPHERAL DEVICE TYPE (4:0). */
export interface Peripheral {
  peripheralQualifier: number;
  peripheralDeviceType: number;
}

export interface VpdPageHeader extends Peripheral {
  pageCode: number;
  /** PAGE LENGTH as declared (bytes after byte 3). */
  pageLength: number;
}

/** A VPD page split into its header and the part of its body that is present. */
export interface VpdPageParts {
  header: VpdPageHeader;
  /** Bytes 4 .. min(3 + PAGE LENGTH, end of buffer). Offsets inside it are page offset − 4. */
  body: Buffer;
  /** True when the buffer ends before 4 + PAGE LENGTH (cut by the allocation length). */
  truncated: boolean;
}

/** SPC-4 r37 7.8.2: decode the 4-byte VPD page header; optionally insist on a page code. */
function decodeVpdHeader(buf: Buffer, expectedPageCode?: number, structure = 'VPD page'): VpdPageHeader {
  if (buf.length < 4) {
    throw new DecodeError(structure, buf.length, `page header needs 4 bytes, got ${buf.length}`);
  }
  const pageCode = buf[1];
  if (expectedPageCode !== undefined && pageCode !== expectedPageCode) {
    throw new DecodeError(structure, 1, `PAGE CODE is ${hex2(pageCode)}h, expected ${hex2(expectedPageCode)}h`);
  }
  return {
    peripheralQualifier: buf[0] >> 5,
    peripheralDeviceType: buf[0] & 0x1f,
    pageCode,
    pageLength: buf.readUInt16BE(2),
  };
}

/** Decode the header and return the body bytes that PAGE LENGTH covers and the buffer holds. */
export function splitVpdPage(buf: Buffer, expectedPageCode: number, structure: string): VpdPageParts {
  const header = decodeVpdHeader(buf, expectedPageCode, structure);
  const end = Math.min(buf.length, 4 + header.pageLength);
  return { header, body: buf.subarray(4, end), truncated: buf.length < 4 + header.pageLength };
}

/** SPC-4 r37 7.8.2: build a VPD page from its body. */
export function encodeVpdPage(
  pageCode: number,
  body: Buffer,
  peripheral: Partial<Peripheral> = {},
  structure = vpdPageName(pageCode) + ' VPD page',
): Buffer {
  const pq = peripheral.peripheralQualifier ?? 0;
  const pdt = peripheral.peripheralDeviceType ?? 0;
  checkUint(structure, 'PERIPHERAL QUALIFIER', pq, 3);
  checkUint(structure, 'PERIPHERAL DEVICE TYPE', pdt, 5);
  checkUint(structure, 'PAGE CODE', pageCode, 8);
  if (body.length > 0xffff) throw new EncodeError(structure, 'PAGE LENGTH', `${body.length} does not fit 16 bits`);
  const out = Buffer.alloc(4 + body.length);
  out[0] = (pq << 5) | pdt;
  out[1] = pageCode;
  out.writeUInt16BE(body.length, 2);
  body.copy(out, 4);
  return out;
}

// ---------------------------------------------------------------------------------------------
// 00h Supported VPD Pages (SPC-4 r37 7.8.16)
// ---------------------------------------------------------------------------------------------

const SUPPORTED_VPD_PAGES = 'Supported VPD Pages VPD page';

export interface SupportedVpdPages extends Peripheral {
  /** The supported page list, in the order reported (ascending per SPC-4). */
  pages: number[];
  truncated: boolean;
}

export function decodeSupportedVpdPages(buf: Buffer): SupportedVpdPages {
  const { header, body, truncated } = splitVpdPage(buf, VpdPageCode.SUPPORTED_VPD_PAGES, SUPPORTED_VPD_PAGES);
  return {
    peripheralQualifier: header.peripheralQualifier,
    peripheralDeviceType: header.peripheralDeviceType,
    pages: [...body],
    truncated,
  };
}

export function encodeSupportedVpdPages(pages: readonly number[], peripheral?: Partial<Peripheral>): Buffer {
  pages.forEach((p, i) => checkUint(SUPPORTED_VPD_PAGES, `supported page [${i}]`, p, 8));
  return encodeVpdPage(VpdPageCode.SUPPORTED_VPD_PAGES, Buffer.from(pages), peripheral, SUPPORTED_VPD_PAGES);
}

// ---------------------------------------------------------------------------------------------
// 80h Unit Serial Number (SPC-4 r37 7.8.18)
// ---------------------------------------------------------------------------------------------

const UNIT_SERIAL_NUMBER = 'Unit Serial Number VPD page';

export interface UnitSerialNumber extends Peripheral {
  /** PRODUCT SERIAL NUMBER, with padding spaces and NULs (LIO appends one) removed. */
  productSerialNumber: string;
  truncated: boolean;
}

export function decodeUnitSerialNumber(buf: Buffer): UnitSerialNumber {
  const { header, body, truncated } = splitVpdPage(buf, VpdPageCode.UNIT_SERIAL_NUMBER, UNIT_SERIAL_NUMBER);
  return {
    peripheralQualifier: header.peripheralQualifier,
    peripheralDeviceType: header.peripheralDeviceType,
    productSerialNumber: trimAscii(body, true),
    truncated,
  };
}

/** SPC-4 r37 7.8.18: PRODUCT SERIAL NUMBER is ASCII; we write it as given, with no padding. */
export function encodeUnitSerialNumber(productSerialNumber: string, peripheral?: Partial<Peripheral>): Buffer {
  const body = asciiBytes(UNIT_SERIAL_NUMBER, 'PRODUCT SERIAL NUMBER', productSerialNumber);
  return encodeVpdPage(VpdPageCode.UNIT_SERIAL_NUMBER, body, peripheral, UNIT_SERIAL_NUMBER);
}

// ---------------------------------------------------------------------------------------------
// 83h Device Identification (SPC-4 r37 7.8.6)
// ---------------------------------------------------------------------------------------------

const DEVICE_IDENTIFICATION = 'Device Identification VPD page';

/** CODE SET (SPC-4 r37 Table 597). */
export const enum CodeSet {
  BINARY = 0x1,
  ASCII = 0x2,
  UTF8 = 0x3,
}

/** ASSOCIATION (SPC-4 r37 Table 598). */
export const enum Association {
  LOGICAL_UNIT = 0,
  TARGET_PORT = 1,
  TARGET_DEVICE = 2,
}

/** DESIGNATOR TYPE (SPC-4 r37 Table 599). */
export const enum DesignatorType {
  VENDOR_SPECIFIC = 0x0,
  T10_VENDOR_ID = 0x1,
  EUI64 = 0x2,
  NAA = 0x3,
  RELATIVE_TARGET_PORT = 0x4,
  TARGET_PORT_GROUP = 0x5,
  LOGICAL_UNIT_GROUP = 0x6,
  MD5_LOGICAL_UNIT = 0x7,
  SCSI_NAME_STRING = 0x8,
}

/** PROTOCOL IDENTIFIER values (SPC-4 r37 Table 362) that matter here. */
export const enum ProtocolIdentifier {
  FIBRE_CHANNEL = 0x0,
  ISCSI = 0x5,
  SAS = 0x6,
  NONE = 0xf,
}

/** A designation descriptor (SPC-4 r37 7.8.6.1, Table 596). */
export interface DesignationDescriptor {
  /** PROTOCOL IDENTIFIER (byte 0 bits 7:4); meaningful only when `piv` is set. */
  protocolIdentifier: number;
  /** CODE SET (byte 0 bits 3:0). */
  codeSet: number;
  /** PIV (byte 1 bit 7). */
  piv: boolean;
  /** ASSOCIATION (byte 1 bits 5:4). */
  association: number;
  /** DESIGNATOR TYPE (byte 1 bits 3:0). */
  designatorType: number;
  /** DESIGNATOR (DESIGNATOR LENGTH bytes). */
  designator: Buffer;
}

export interface DeviceIdentification extends Peripheral {
  designators: DesignationDescriptor[];
  /** True when the page was cut short and the last descriptors were dropped. */
  truncated: boolean;
}

/**
 * Decode designation descriptors from `body` (which starts at `base` within the page).
 * `declaredEnd` is where the page (or list) says the descriptors end; a descriptor past it is a
 * DecodeError, one past the end of the present bytes only ends the list (`truncated`).
 */
function decodeDesignationList(
  body: Buffer,
  base: number,
  declaredEnd: number,
  structure: string,
): { designators: DesignationDescriptor[]; truncated: boolean } {
  const designators: DesignationDescriptor[] = [];
  let off = 0;
  while (off < declaredEnd) {
    if (off + 4 > declaredEnd) {
      throw new DecodeError(structure, base + off, 'designation descriptor header runs past the page');
    }
    if (off + 4 > body.length) return { designators, truncated: true };
    const len = body[off + 3];
    if (off + 4 + len > declaredEnd) {
      throw new DecodeError(structure, base + off + 3, `DESIGNATOR LENGTH ${len} runs past the page`);
    }
    if (off + 4 + len > body.length) return { designators, truncated: true };
    designators.push({
      protocolIdentifier: body[off] >> 4,
      codeSet: body[off] & 0x0f,
      piv: (body[off + 1] & 0x80) !== 0,
      association: (body[off + 1] >> 4) & 0x3,
      designatorType: body[off + 1] & 0x0f,
      designator: Buffer.from(body.subarray(off + 4, off + 4 + len)),
    });
    off += 4 + len;
  }
  return { designators, truncated: false };
}

function encodeDesignation(d: DesignationDescriptor, structure: string, index: number): Buffer {
  const f = (name: string) => `${name} [${index}]`;
  checkUint(structure, f('PROTOCOL IDENTIFIER'), d.protocolIdentifier, 4);
  checkUint(structure, f('CODE SET'), d.codeSet, 4);
  checkUint(structure, f('ASSOCIATION'), d.association, 2);
  checkUint(structure, f('DESIGNATOR TYPE'), d.designatorType, 4);
  if (d.designator.length > 0xff) {
    throw new EncodeError(structure, f('DESIGNATOR LENGTH'), `${d.designator.length} does not fit 8 bits`);
  }
  const out = Buffer.alloc(4 + d.designator.length);
  out[0] = (d.protocolIdentifier << 4) | d.codeSet;
  out[1] = (d.piv ? 0x80 : 0) | (d.association << 4) | d.designatorType;
  out[3] = d.designator.length;
  d.designator.copy(out, 4);
  return out;
}

/** SPC-4 r37 7.8.6: decode the Device Identification page. */
export function decodeDeviceIdentification(buf: Buffer): DeviceIdentification {
  const { header, body, truncated } = splitVpdPage(buf, VpdPageCode.DEVICE_IDENTIFICATION, DEVICE_IDENTIFICATION);
  const list = decodeDesignationList(body, 4, header.pageLength, DEVICE_IDENTIFICATION);
  return {
    peripheralQualifier: header.peripheralQualifier,
    peripheralDeviceType: header.peripheralDeviceType,
    designators: list.designators,
    truncated: truncated || list.truncated,
  };
}

export function encodeDeviceIdentification(
  designators: readonly DesignationDescriptor[],
  peripheral?: Partial<Peripheral>,
): Buffer {
  const body = Buffer.concat(designators.map((d, i) => encodeDesignation(d, DEVICE_IDENTIFICATION, i)));
  return encodeVpdPage(VpdPageCode.DEVICE_IDENTIFICATION, body, peripheral, DEVICE_IDENTIFICATION);
}

/** Largest designator an EXTENDED COPY identification CSCD descriptor can carry (SPC-4 r37 6.4.5.6: 20 bytes). */
export const CSCD_DESIGNATOR_MAX_LENGTH = 20;

/**
 * The designator to put in an EXTENDED COPY identification (E4h) CSCD descriptor, by the rule in
 * docs/xcopy.md "The identification CSCD": association logical unit only, designator at most 20 bytes;
 * the first NAA, else the first EUI-64, else the first T10 vendor ID. `undefined` if none fits
 * (then the LU cannot be named in an EXTENDED COPY: fall back to READ/WRITE).
 */
export function pickCscdDesignator(designators: readonly DesignationDescriptor[]): DesignationDescriptor | undefined {
  for (const type of [DesignatorType.NAA, DesignatorType.EUI64, DesignatorType.T10_VENDOR_ID]) {
    const d = designators.find(
      (x) =>
        x.association === Association.LOGICAL_UNIT &&
        x.designatorType === type &&
        x.designator.length <= CSCD_DESIGNATOR_MAX_LENGTH,
    );
    if (d) return d;
  }
  return undefined;
}

const DESIGNATOR_PREFIXES: Readonly<Record<number, string>> = {
  [DesignatorType.VENDOR_SPECIFIC]: 'vendor',
  [DesignatorType.T10_VENDOR_ID]: 't10',
  [DesignatorType.EUI64]: 'eui',
  [DesignatorType.NAA]: 'naa',
  [DesignatorType.RELATIVE_TARGET_PORT]: 'rtpi',
  [DesignatorType.TARGET_PORT_GROUP]: 'tpg',
  [DesignatorType.LOGICAL_UNIT_GROUP]: 'lug',
  [DesignatorType.MD5_LOGICAL_UNIT]: 'md5',
};

/**
 * A designator as text, in the style of Linux's `wwid` and iSCSI names: `naa.6001405…` and
 * `eui.…` as lower-case hex; `t10.` + the ASCII text (trailing spaces and NULs dropped); a SCSI
 * name string as the string itself (it already starts with `iqn.`, `eui.` or `naa.`). Other
 * types: a short prefix, then text for ASCII/UTF-8 code sets or hex for binary.
 */
export function formatDesignator(d: DesignationDescriptor): string {
  if (d.designatorType === DesignatorType.SCSI_NAME_STRING) return trimAscii(d.designator, false, 'utf8');
  const prefix = DESIGNATOR_PREFIXES[d.designatorType] ?? `type${d.designatorType}`;
  if (d.designatorType === DesignatorType.NAA || d.designatorType === DesignatorType.EUI64) {
    return `${prefix}.${d.designator.toString('hex')}`;
  }
  if (d.codeSet === CodeSet.ASCII || d.codeSet === CodeSet.UTF8) {
    return `${prefix}.${trimAscii(d.designator, false, d.codeSet === CodeSet.UTF8 ? 'utf8' : 'latin1')}`;
  }
  return `${prefix}.${d.designator.toString('hex')}`;
}

// ---------------------------------------------------------------------------------------------
// B0h Block Limits (SBC-3 r36 6.6.4)
// ---------------------------------------------------------------------------------------------

const BLOCK_LIMITS = 'Block Limits VPD page';

/** SBC-3 r36 6.6.4: page length of the current layout (SBC-2-era pages used 0010h). */
export const BLOCK_LIMITS_PAGE_LENGTH = 0x3c;

export interface BlockLimits {
  /** WSNZ (byte 4 bit 0): WRITE SAME with NUMBER OF LOGICAL BLOCKS 0 is refused. */
  wsnz: boolean;
  /** MAXIMUM COMPARE AND WRITE LENGTH (byte 5), in blocks. */
  maximumCompareAndWriteLength: number;
  /** OPTIMAL TRANSFER LENGTH GRANULARITY (bytes 6–7), in blocks. */
  optimalTransferLengthGranularity: number;
  /** MAXIMUM TRANSFER LENGTH (bytes 8–11), in blocks; 0 = not reported. */
  maximumTransferLength: number;
  /** OPTIMAL TRANSFER LENGTH (bytes 12–15), in blocks. */
  optimalTransferLength: number;
  /** MAXIMUM PREFETCH LENGTH (bytes 16–19; "MAXIMUM PREFETCH XDREAD XDWRITE TRANSFER LENGTH" in SBC-3). */
  maximumPrefetchLength: number;
  /** MAXIMUM UNMAP LBA COUNT (bytes 20–23). */
  maximumUnmapLbaCount: number;
  /** MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT (bytes 24–27). */
  maximumUnmapBlockDescriptorCount: number;
  /** OPTIMAL UNMAP GRANULARITY (bytes 28–31). */
  optimalUnmapGranularity: number;
  /** UGAVALID (byte 32 bit 7). */
  ugavalid: boolean;
  /** UNMAP GRANULARITY ALIGNMENT (bytes 32–35, 31 bits). */
  unmapGranularityAlignment: number;
  /** MAXIMUM WRITE SAME LENGTH (bytes 36–43). */
  maximumWriteSameLength: bigint;
}

export interface DecodedBlockLimits extends BlockLimits, Peripheral {
  /** PAGE LENGTH as declared: 003Ch today, 0010h on older targets (LIO without thin provisioning). */
  pageLength: number;
  truncated: boolean;
}

/**
 * SBC-3 r36 6.6.4. Fields beyond the PAGE LENGTH (e.g. a 0010h-long page) or beyond the end of the
 * buffer read as 0, which SBC-3 defines as "no limit reported" for every limit field here.
 * Bytes 44–63 (SBC-4 atomic-write limits) are not decoded.
 */
export function decodeBlockLimits(buf: Buffer): DecodedBlockLimits {
  const { header, body, truncated } = splitVpdPage(buf, VpdPageCode.BLOCK_LIMITS, BLOCK_LIMITS);
  const f = fieldReader(body, 4);
  const b32 = f.u8(32);
  return {
    peripheralQualifier: header.peripheralQualifier,
    peripheralDeviceType: header.peripheralDeviceType,
    pageLength: header.pageLength,
    truncated,
    wsnz: (f.u8(4) & 0x01) !== 0,
    maximumCompareAndWriteLength: f.u8(5),
    optimalTransferLengthGranularity: f.u16(6),
    maximumTransferLength: f.u32(8),
    optimalTransferLength: f.u32(12),
    maximumPrefetchLength: f.u32(16),
    maximumUnmapLbaCount: f.u32(20),
    maximumUnmapBlockDescriptorCount: f.u32(24),
    optimalUnmapGranularity: f.u32(28),
    ugavalid: f.has(32, 4) && (b32 & 0x80) !== 0,
    unmapGranularityAlignment: f.u32(32) & 0x7fffffff,
    maximumWriteSameLength: f.u64(36),
  };
}

/** SBC-3 r36 6.6.4: always the 64-byte (PAGE LENGTH 003Ch) layout. */
export function encodeBlockLimits(fields: BlockLimits, peripheral?: Partial<Peripheral>): Buffer {
  const s = BLOCK_LIMITS;
  checkUint(s, 'MAXIMUM COMPARE AND WRITE LENGTH', fields.maximumCompareAndWriteLength, 8);
  checkUint(s, 'OPTIMAL TRANSFER LENGTH GRANULARITY', fields.optimalTransferLengthGranularity, 16);
  checkUint(s, 'MAXIMUM TRANSFER LENGTH', fields.maximumTransferLength, 32);
  checkUint(s, 'OPTIMAL TRANSFER LENGTH', fields.optimalTransferLength, 32);
  checkUint(s, 'MAXIMUM PREFETCH LENGTH', fields.maximumPrefetchLength, 32);
  checkUint(s, 'MAXIMUM UNMAP LBA COUNT', fields.maximumUnmapLbaCount, 32);
  checkUint(s, 'MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT', fields.maximumUnmapBlockDescriptorCount, 32);
  checkUint(s, 'OPTIMAL UNMAP GRANULARITY', fields.optimalUnmapGranularity, 32);
  checkUint(s, 'UNMAP GRANULARITY ALIGNMENT', fields.unmapGranularityAlignment, 31);
  checkBigUint(s, 'MAXIMUM WRITE SAME LENGTH', fields.maximumWriteSameLength, 64);
  const body = Buffer.alloc(BLOCK_LIMITS_PAGE_LENGTH);
  // body offset = page offset - 4
  body[0] = fields.wsnz ? 0x01 : 0;
  body[1] = fields.maximumCompareAndWriteLength;
  body.writeUInt16BE(fields.optimalTransferLengthGranularity, 2);
  body.writeUInt32BE(fields.maximumTransferLength, 4);
  body.writeUInt32BE(fields.optimalTransferLength, 8);
  body.writeUInt32BE(fields.maximumPrefetchLength, 12);
  body.writeUInt32BE(fields.maximumUnmapLbaCount, 16);
  body.writeUInt32BE(fields.maximumUnmapBlockDescriptorCount, 20);
  body.writeUInt32BE(fields.optimalUnmapGranularity, 24);
  body.writeUInt32BE(((fields.ugavalid ? 0x80000000 : 0) | fields.unmapGranularityAlignment) >>> 0, 28);
  body.writeBigUInt64BE(fields.maximumWriteSameLength, 32);
  return encodeVpdPage(VpdPageCode.BLOCK_LIMITS, body, peripheral, s);
}

// ---------------------------------------------------------------------------------------------
// B1h Block Device Characteristics (SBC-3 r36 6.6.2)
// ---------------------------------------------------------------------------------------------

const BLOCK_DEVICE_CHARACTERISTICS = 'Block Device Characteristics VPD page';

export interface BlockDeviceCharacteristics {
  /** MEDIUM ROTATION RATE (bytes 4–5): 0 not reported, 1 non-rotating medium, else rpm. */
  mediumRotationRate: number;
  /** PRODUCT TYPE (byte 6). */
  productType: number;
  /** WABEREQ (byte 7 bits 7:6). */
  wabereq: number;
  /** WACEREQ (byte 7 bits 5:4). */
  wacereq: number;
  /** NOMINAL FORM FACTOR (byte 7 bits 3:0). */
  nominalFormFactor: number;
  /** FUAB (byte 8 bit 1). */
  fuab: boolean;
  /** VBULS (byte 8 bit 0). */
  vbuls: boolean;
}

/** SBC-3 r36 6.6.2: PAGE LENGTH 003Ch. */
export function encodeBlockDeviceCharacteristics(
  fields: BlockDeviceCharacteristics,
  peripheral?: Partial<Peripheral>,
): Buffer {
  const s = BLOCK_DEVICE_CHARACTERISTICS;
  checkUint(s, 'MEDIUM ROTATION RATE', fields.mediumRotationRate, 16);
  checkUint(s, 'PRODUCT TYPE', fields.productType, 8);
  checkUint(s, 'WABEREQ', fields.wabereq, 2);
  checkUint(s, 'WACEREQ', fields.wacereq, 2);
  checkUint(s, 'NOMINAL FORM FACTOR', fields.nominalFormFactor, 4);
  const body = Buffer.alloc(0x3c);
  body.writeUInt16BE(fields.mediumRotationRate, 0);
  body[2] = fields.productType;
  body[3] = (fields.wabereq << 6) | (fields.wacereq << 4) | fields.nominalFormFactor;
  body[4] = (fields.fuab ? 0x02 : 0) | (fields.vbuls ? 0x01 : 0);
  return encodeVpdPage(VpdPageCode.BLOCK_DEVICE_CHARACTERISTICS, body, peripheral, s);
}

// ---------------------------------------------------------------------------------------------
// B2h Logical Block Provisioning (SBC-3 r36 6.6.5)
// ---------------------------------------------------------------------------------------------

const LOGICAL_BLOCK_PROVISIONING = 'Logical Block Provisioning VPD page';

export interface LogicalBlockProvisioning {
  /** THRESHOLD EXPONENT (byte 4). */
  thresholdExponent: number;
  /** LBPU (byte 5 bit 7): UNMAP supported. */
  lbpu: boolean;
  /** LBPWS (byte 5 bit 6): WRITE SAME(16) with UNMAP supported. */
  lbpws: boolean;
  /** LBPWS10 (byte 5 bit 5): WRITE SAME(10) with UNMAP supported. */
  lbpws10: boolean;
  /**
   * LBPRZ (byte 5 bits 4:2 in SBC-4; a single bit 2 in SBC-3, which reads the same for 0 and 1):
   * unmapped blocks read as zeros when non-zero.
   */
  lbprz: number;
  /** ANC_SUP (byte 5 bit 1). */
  ancSup: boolean;
  /** DP (byte 5 bit 0): a provisioning group descriptor follows. */
  dp: boolean;
  /** PROVISIONING TYPE (byte 6 bits 2:0): 0 full, 1 resource, 2 thin. */
  provisioningType: number;
  /** The provisioning group descriptor (a designation descriptor, bytes 8…), when DP is set. */
  provisioningGroupDescriptor?: DesignationDescriptor;
}

export interface DecodedLogicalBlockProvisioning extends LogicalBlockProvisioning, Peripheral {
  pageLength: number;
  truncated: boolean;
}

/** SBC-3 r36 6.6.5; absent fields read as 0. */
export function decodeLogicalBlockProvisioning(buf: Buffer): DecodedLogicalBlockProvisioning {
  const s = LOGICAL_BLOCK_PROVISIONING;
  const { header, body, truncated } = splitVpdPage(buf, VpdPageCode.LOGICAL_BLOCK_PROVISIONING, s);
  const f = fieldReader(body, 4);
  const b5 = f.u8(5);
  const out: DecodedLogicalBlockProvisioning = {
    peripheralQualifier: header.peripheralQualifier,
    peripheralDeviceType: header.peripheralDeviceType,
    pageLength: header.pageLength,
    truncated,
    thresholdExponent: f.u8(4),
    lbpu: (b5 & 0x80) !== 0,
    lbpws: (b5 & 0x40) !== 0,
    lbpws10: (b5 & 0x20) !== 0,
    lbprz: (b5 >> 2) & 0x7,
    ancSup: (b5 & 0x02) !== 0,
    dp: (b5 & 0x01) !== 0,
    provisioningType: f.u8(6) & 0x7,
  };
  if (out.dp && header.pageLength > 4) {
    // SBC-3 r36 6.6.5: the provisioning group descriptor occupies bytes 8..n (one designation descriptor).
    const list = decodeDesignationList(body.subarray(4), 8, header.pageLength - 4, s);
    if (list.designators.length > 0) out.provisioningGroupDescriptor = list.designators[0];
    if (list.truncated) out.truncated = true;
  }
  return out;
}

/** SBC-3 r36 6.6.5: PAGE LENGTH 0004h, or 4 + the provisioning group descriptor when one is given. */
export function encodeLogicalBlockProvisioning(
  fields: LogicalBlockProvisioning,
  peripheral?: Partial<Peripheral>,
): Buffer {
  const s = LOGICAL_BLOCK_PROVISIONING;
  checkUint(s, 'THRESHOLD EXPONENT', fields.thresholdExponent, 8);
  checkUint(s, 'LBPRZ', fields.lbprz, 3);
  checkUint(s, 'PROVISIONING TYPE', fields.provisioningType, 3);
  if (fields.provisioningGroupDescriptor && !fields.dp) {
    throw new EncodeError(s, 'DP', 'must be set when a provisioning group descriptor is given');
  }
  const fixed = Buffer.alloc(4);
  fixed[0] = fields.thresholdExponent;
  fixed[1] =
    (fields.lbpu ? 0x80 : 0) |
    (fields.lbpws ? 0x40 : 0) |
    (fields.lbpws10 ? 0x20 : 0) |
    (fields.lbprz << 2) |
    (fields.ancSup ? 0x02 : 0) |
    (fields.dp ? 0x01 : 0);
  fixed[2] = fields.provisioningType;
  const parts: Buffer[] = [fixed];
  if (fields.provisioningGroupDescriptor) parts.push(encodeDesignation(fields.provisioningGroupDescriptor, s, 0));
  return encodeVpdPage(VpdPageCode.LOGICAL_BLOCK_PROVISIONING, Buffer.concat(parts), peripheral, s);
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/**
 * Reads fixed fields by their page offset from a page body that starts at `base`; a field not
 * wholly present reads as 0.
 */
function fieldReader(body: Buffer, base: number) {
  const has = (off: number, len: number) => off - base >= 0 && off - base + len <= body.length;
  return {
    has,
    u8: (off: number) => (has(off, 1) ? body[off - base] : 0),
    u16: (off: number) => (has(off, 2) ? body.readUInt16BE(off - base) : 0),
    u32: (off: number) => (has(off, 4) ? body.readUInt32BE(off - base) : 0),
    u64: (off: number) => (has(off, 8) ? body.readBigUInt64BE(off - base) : 0n),
  };
}

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}

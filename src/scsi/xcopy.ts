/**
 * The EXTENDED COPY (LID1) parameter list (SPC-4 r37 6.5; SPC-3 r23 6.3; docs/xcopy.md): the 16-byte
 * header, CSCD descriptors (formerly "target descriptors"), segment descriptors and inline data.
 * Pure codec, big-endian, LBAs as bigint.
 *
 * Both sides use it: the agent encodes lists, our copy manager decodes them. The decoder is built
 * for a copy manager:
 * - every descriptor carries the byte offset it came from (for sense-key-specific field
 *   pointers, SPC-4 r37 5.17.7.4 / docs/xcopy.md "COPY ABORTED: which segment failed"), and every DecodeError names the offending offset;
 * - it does not pre-empt the copy manager's own validation order (docs/xcopy.md "Validation order"): CSCD and
 *   segment types it does not know, and known segment types whose DESCRIPTOR LENGTH is wrong,
 *   come back as `raw` with their type code (for 26h/07h, 26h/09h or 26h/00h), an identification
 *   descriptor's DESIGNATOR LENGTH is reported as declared even when it exceeds 20, and reserved
 *   fields are not checked (each descriptor's `bytes` are there for that);
 * - {@link decodeExtendedCopyLid1Header} reads the header alone, so the list lengths can be
 *   checked against the PARAMETER LIST LENGTH and the copy manager's limits before the full decode;
 * - the full decoder rejects (DecodeError) a parameter list shorter than 16 + its three list
 *   lengths (the copy manager's 1Ah/00h PARAMETER LIST LENGTH ERROR, offset = the length field
 *   that overran) and any descriptor that runs past its list (offset = the descriptor, or its
 *   DESCRIPTOR LENGTH field).
 */
import { DecodeError, EncodeError } from '../errors';
import { checkBigUint, checkUint } from './fields';
import { CSCD_DESIGNATOR_MAX_LENGTH, DesignationDescriptor } from './vpd';

const LIST = 'EXTENDED COPY parameter list';
const CSCD = 'CSCD descriptor';
const SEGMENT = 'segment descriptor';

/** SPC-4 r37 6.5.1 (LID1): the header is 16 bytes; CSCD descriptors start right after it. */
export const EXTENDED_COPY_LID1_HEADER_LENGTH = 16;

/** LIST ID USAGE (header byte 1 bits 4:3; SPC-4 r37 Table 122). Names as in libiscsi and sg_xcopy. */
export const enum ListIdUsage {
  /** 00b: the copy manager holds data for RECEIVE COPY RESULTS. */
  HOLD = 0,
  /** 01b: reserved. */
  RESERVED = 1,
  /** 10b: LIST IDENTIFIER valid and unique, held data may be discarded (what QEMU sends). */
  DISCARD = 2,
  /** 11b: no LIST IDENTIFIER (it shall be 0); needs SNLID in OPERATING PARAMETERS. */
  DISABLE = 3,
}

/** CSCD descriptor type codes (SPC-4 r37 Table 131). */
export const enum CscdTypeCode {
  FIBRE_CHANNEL_N_PORT_NAME = 0xe0,
  FIBRE_CHANNEL_N_PORT_ID = 0xe1,
  FIBRE_CHANNEL_N_PORT_ID_WITH_N_PORT_NAME = 0xe2,
  PARALLEL_INTERFACE_T_L = 0xe3,
  IDENTIFICATION = 0xe4,
  IPV4 = 0xe5,
  ALIAS = 0xe6,
  RDMA = 0xe7,
  IEEE_1394_EUI64 = 0xe8,
  SAS_SERIAL_SCSI_PROTOCOL = 0xe9,
  IPV6 = 0xea,
  IP_COPY_SERVICE = 0xeb,
  ROD = 0xfe,
  EXTENSION = 0xff,
}

/** Segment descriptor type codes (SPC-4 r37 Table 146), those with a name here. */
export const enum SegmentTypeCode {
  BLOCK_TO_STREAM = 0x00,
  STREAM_TO_BLOCK = 0x01,
  BLOCK_TO_BLOCK = 0x02,
  STREAM_TO_STREAM = 0x03,
  INLINE_TO_STREAM = 0x04,
  EMBEDDED_TO_STREAM = 0x05,
  STREAM_TO_DISCARD = 0x06,
  VERIFY_CSCD = 0x07,
  BLOCK_OFFSET_TO_STREAM = 0x08,
  STREAM_TO_BLOCK_OFFSET = 0x09,
  BLOCK_OFFSET_TO_BLOCK_OFFSET = 0x0a,
  BLOCK_TO_BLOCK_HOLD = 0x0d,
  REGISTER_PERSISTENT_RESERVATION_KEY = 0x14,
}

const CSCD_TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [0xe0, 'Fibre Channel N_Port_Name'],
  [0xe1, 'Fibre Channel N_Port_ID'],
  [0xe2, 'Fibre Channel N_Port_ID with N_Port_Name checking'],
  [0xe3, 'Parallel Interface T_L'],
  [0xe4, 'Identification'],
  [0xe5, 'IPv4'],
  [0xe6, 'Alias'],
  [0xe7, 'RDMA'],
  [0xe8, 'IEEE 1394 EUI-64'],
  [0xe9, 'SAS Serial SCSI Protocol'],
  [0xea, 'IPv6'],
  [0xeb, 'IP Copy Service'],
  [0xfe, 'ROD'],
  [0xff, 'extension'],
]);

function cscdTypeName(typeCode: number): string {
  return CSCD_TYPE_NAMES.get(typeCode) ?? `CSCD descriptor type ${hex2(typeCode)}h`;
}

/**
 * Length in bytes of a CSCD descriptor with this type code: 64 for EAh (IPv6) and EBh (IP copy
 * service), 32 for all others (libiscsi `get_desc_len`; SPC-4 r37 6.4.5.1). A code outside E0h–FFh has
 * no defined length; 32 is assumed, and the copy manager rejects it at its offset (26h/07h)
 * before anything after it matters.
 */
function cscdDescriptorLength(typeCode: number): number {
  return typeCode === CscdTypeCode.IPV6 || typeCode === CscdTypeCode.IP_COPY_SERVICE ? 64 : 32;
}

/**
 * The DESCRIPTOR LENGTH (total − 4) each segment type this codec decodes must carry (SPC-4
 * Tables 149–151, 159). A known type with another length decodes as `raw`.
 */
export const SEGMENT_DESCRIPTOR_LENGTHS: ReadonlyMap<number, number> = new Map([
  [SegmentTypeCode.BLOCK_TO_STREAM, 0x14],
  [SegmentTypeCode.STREAM_TO_BLOCK, 0x14],
  [SegmentTypeCode.BLOCK_TO_BLOCK, 0x18],
  [SegmentTypeCode.BLOCK_OFFSET_TO_BLOCK_OFFSET, 0x1c],
]);

/** Peripheral device types whose device-type-specific CSCD parameters are the block layout (SPC-4 r37 6.4.5.2). */
const BLOCK_PERIPHERAL_DEVICE_TYPES: ReadonlySet<number> = new Set([0x00, 0x04, 0x05, 0x07, 0x0e]);
const STREAM_PERIPHERAL_DEVICE_TYPE = 0x01;

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/** The LID1 header as declared (SPC-4 r37 6.5.1, Table 123). */
export interface ExtendedCopyLid1Header {
  /** LIST IDENTIFIER (byte 0). */
  listIdentifier: number;
  /** STR (byte 1 bit 5). */
  str: boolean;
  /** LIST ID USAGE (byte 1 bits 4:3); NRCR (bit 4) in SPC-2/SPC-3. */
  listIdUsage: number;
  /** PRIORITY (byte 1 bits 2:0). */
  priority: number;
  /** CSCD DESCRIPTOR LIST LENGTH (bytes 2–3), in bytes. */
  cscdDescriptorListLength: number;
  /** SEGMENT DESCRIPTOR LIST LENGTH (bytes 8–11), in bytes. */
  segmentDescriptorListLength: number;
  /** INLINE DATA LENGTH (bytes 12–15), in bytes. */
  inlineDataLength: number;
}

/** Device type specific parameters for block devices (CSCD bytes 28–31; SPC-4 r37 6.4.5.2). */
export interface BlockDeviceParameters {
  kind: 'block';
  /** PAD (byte 28 bit 2). */
  pad: boolean;
  /** DISK BLOCK LENGTH (bytes 29–31). */
  diskBlockLength: number;
}

/** Device type specific parameters for sequential-access devices (SPC-4 r37 6.4.5.4). */
export interface StreamDeviceParameters {
  kind: 'stream';
  /** PAD (byte 28 bit 2). */
  pad: boolean;
  /** FIXED (byte 28 bit 0). */
  fixed: boolean;
  /** STREAM BLOCK LENGTH (bytes 29–31). */
  streamBlockLength: number;
}

/** Device type specific parameters of any other peripheral device type, as 4 raw bytes. */
export interface RawDeviceParameters {
  kind: 'raw';
  bytes: Buffer;
}

export type DeviceTypeSpecificParameters = BlockDeviceParameters | StreamDeviceParameters | RawDeviceParameters;

/** E4h identification descriptor CSCD (SPC-4 r37 6.4.5.6; docs/xcopy.md "The identification CSCD"). */
export interface IdentificationCscd {
  kind: 'identification';
  /** LU ID TYPE (byte 1 bits 7:6): 00b LUN, 01b proxy token. */
  luIdType: number;
  /** NUL (byte 1 bit 5; obsolete in SPC-4). */
  nul: boolean;
  /** PERIPHERAL DEVICE TYPE (byte 1 bits 4:0). */
  peripheralDeviceType: number;
  /** RELATIVE INITIATOR PORT IDENTIFIER (bytes 2–3). */
  relativeInitiatorPortIdentifier: number;
  /** CODE SET (byte 4 bits 3:0). */
  codeSet: number;
  /** ASSOCIATION (byte 5 bits 5:4). */
  association: number;
  /** DESIGNATOR TYPE (byte 5 bits 3:0). */
  designatorType: number;
  /**
   * DESIGNATOR LENGTH (byte 7). Decoded: as declared (may exceed 20: the copy manager answers
   * 26h/00h). Encoding: omit it to write `designator.length`; give it to write another value.
   */
  designatorLength?: number;
  /** DESIGNATOR (bytes 8–27, zero-padded): min(DESIGNATOR LENGTH, 20) bytes when decoded. */
  designator: Buffer;
  /** Bytes 28–31, by the peripheral device type. */
  deviceTypeSpecific: DeviceTypeSpecificParameters;
}

/** Any other CSCD descriptor, kept whole (type code in byte 0), for the copy manager to refuse. */
export interface RawCscd {
  kind: 'raw';
  typeCode: number;
  /** The whole descriptor, 32 or 64 bytes ({@link cscdDescriptorLength}); byte 0 is the type code. */
  bytes: Buffer;
}

export type CscdDescriptor = IdentificationCscd | RawCscd;

interface SegmentIds {
  /** SOURCE CSCD DESCRIPTOR ID (bytes 4–5). */
  sourceCscdDescriptorId: number;
  /** DESTINATION CSCD DESCRIPTOR ID (bytes 6–7). */
  destinationCscdDescriptorId: number;
}

/** 02h block device to block device (SPC-4 r37 6.4.6.4, Table 151; 28 bytes). */
export interface BlockToBlockSegment extends SegmentIds {
  kind: 'blockToBlock';
  /** DC (byte 1 bit 1): the count is in destination blocks. */
  dc: boolean;
  /** CAT (byte 1 bit 0). */
  cat: boolean;
  /** BLOCK DEVICE NUMBER OF BLOCKS (bytes 10–11). */
  blockDeviceNumberOfBlocks: number;
  /** SOURCE BLOCK DEVICE LOGICAL BLOCK ADDRESS (bytes 12–19). */
  sourceBlockDeviceLba: bigint;
  /** DESTINATION BLOCK DEVICE LOGICAL BLOCK ADDRESS (bytes 20–27). */
  destinationBlockDeviceLba: bigint;
}

/** 0Ah block device with offset to block device with offset (SPC-4 r37 6.4.6.12, Table 159; 32 bytes). */
export interface BlockOffsetToBlockOffsetSegment extends SegmentIds {
  kind: 'blockOffsetToBlockOffset';
  cat: boolean;
  /** NUMBER OF BYTES (bytes 8–11). */
  numberOfBytes: number;
  /** SOURCE BLOCK DEVICE LOGICAL BLOCK ADDRESS (bytes 12–19). */
  sourceBlockDeviceLba: bigint;
  /** DESTINATION BLOCK DEVICE LOGICAL BLOCK ADDRESS (bytes 20–27). */
  destinationBlockDeviceLba: bigint;
  /** SOURCE BLOCK DEVICE BYTE OFFSET (bytes 28–29). */
  sourceBlockDeviceByteOffset: number;
  /** DESTINATION BLOCK DEVICE BYTE OFFSET (bytes 30–31). */
  destinationBlockDeviceByteOffset: number;
}

/**
 * 00h block→stream and 01h stream→block (SPC-4 r37 6.4.6.2/6.4.6.3, Tables 149/150; 24 bytes).
 * Layout checked against the SPC-4 draft text of Tables 149 and 150 (field order: reserved,
 * STREAM DEVICE TRANSFER LENGTH, two reserved bytes, BLOCK DEVICE NUMBER OF BLOCKS, BLOCK DEVICE
 * LOGICAL BLOCK ADDRESS; DESCRIPTOR LENGTH 0014h); the byte offsets follow from the field order
 * and the 24-byte total.
 */
interface StreamSegmentFields extends SegmentIds {
  cat: boolean;
  /** STREAM DEVICE TRANSFER LENGTH (bytes 9–11). */
  streamDeviceTransferLength: number;
  /** BLOCK DEVICE NUMBER OF BLOCKS (bytes 14–15). */
  blockDeviceNumberOfBlocks: number;
  /** BLOCK DEVICE LOGICAL BLOCK ADDRESS (bytes 16–23). */
  blockDeviceLba: bigint;
}
export interface BlockToStreamSegment extends StreamSegmentFields {
  kind: 'blockToStream';
}
export interface StreamToBlockSegment extends StreamSegmentFields {
  kind: 'streamToBlock';
}

/** Any other segment descriptor (or a known type with the wrong DESCRIPTOR LENGTH), kept whole. */
export interface RawSegment {
  kind: 'raw';
  typeCode: number;
  /** The whole descriptor: byte 0 type code, bytes 2–3 DESCRIPTOR LENGTH = bytes.length − 4. */
  bytes: Buffer;
}

export type SegmentDescriptor =
  | BlockToBlockSegment
  | BlockOffsetToBlockOffsetSegment
  | BlockToStreamSegment
  | StreamToBlockSegment
  | RawSegment;

/** What the agent builds: the encoder computes the three list lengths. */
export interface ExtendedCopyLid1ParameterList {
  listIdentifier: number;
  str?: boolean;
  listIdUsage: number;
  priority?: number;
  cscdDescriptors: CscdDescriptor[];
  segmentDescriptors: SegmentDescriptor[];
  inlineData?: Buffer;
}

/** A decoded CSCD descriptor and where it came from. */
export interface DecodedCscd {
  /** Byte offset of the descriptor in the parameter list (16 + 32·index when all are 32 bytes). */
  offset: number;
  /** Its length in bytes (32 or 64). */
  length: number;
  /** DESCRIPTOR TYPE CODE (byte 0). */
  typeCode: number;
  /** The raw descriptor bytes (a copy), for reserved-field checks. */
  bytes: Buffer;
  descriptor: CscdDescriptor;
}

/** A decoded segment descriptor and where it came from. */
export interface DecodedSegment {
  /** Byte offset of the descriptor in the parameter list. */
  offset: number;
  /** Its length in bytes (DESCRIPTOR LENGTH + 4). */
  length: number;
  /** DESCRIPTOR TYPE CODE (byte 0). */
  typeCode: number;
  /** DESCRIPTOR LENGTH (bytes 2–3) as declared. */
  descriptorLength: number;
  bytes: Buffer;
  descriptor: SegmentDescriptor;
}

export interface DecodedExtendedCopyLid1 {
  header: ExtendedCopyLid1Header;
  cscdDescriptors: DecodedCscd[];
  segmentDescriptors: DecodedSegment[];
  /** Offset of the inline data in the parameter list. */
  inlineDataOffset: number;
  inlineData: Buffer;
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/**
 * SPC-4 r37 6.5.1: the header alone, with its lengths as declared even when the buffer is shorter
 * than they claim (the copy manager checks them in its own order, docs/xcopy.md "Validation order").
 */
export function decodeExtendedCopyLid1Header(buf: Buffer): ExtendedCopyLid1Header {
  if (buf.length < EXTENDED_COPY_LID1_HEADER_LENGTH) {
    throw new DecodeError(
      LIST,
      buf.length,
      `header needs ${EXTENDED_COPY_LID1_HEADER_LENGTH} bytes, got ${buf.length}`,
    );
  }
  return {
    listIdentifier: buf[0],
    str: (buf[1] & 0x20) !== 0,
    listIdUsage: (buf[1] >> 3) & 0x3,
    priority: buf[1] & 0x07,
    cscdDescriptorListLength: buf.readUInt16BE(2),
    segmentDescriptorListLength: buf.readUInt32BE(8),
    inlineDataLength: buf.readUInt32BE(12),
  };
}

/** SPC-4 r37 6.5: decode a whole LID1 parameter list. Bytes after the inline data are ignored. */
export function decodeExtendedCopyLid1(buf: Buffer): DecodedExtendedCopyLid1 {
  const header = decodeExtendedCopyLid1Header(buf);
  const cscdStart = EXTENDED_COPY_LID1_HEADER_LENGTH;
  const segStart = cscdStart + header.cscdDescriptorListLength;
  const inlineStart = segStart + header.segmentDescriptorListLength;
  const end = inlineStart + header.inlineDataLength;
  if (segStart > buf.length) {
    throw new DecodeError(
      LIST,
      2,
      `CSCD DESCRIPTOR LIST LENGTH ${header.cscdDescriptorListLength} runs past the ${buf.length}-byte parameter list`,
    );
  }
  if (inlineStart > buf.length) {
    throw new DecodeError(
      LIST,
      8,
      `SEGMENT DESCRIPTOR LIST LENGTH ${header.segmentDescriptorListLength} runs past the ` +
        `${buf.length}-byte parameter list`,
    );
  }
  if (end > buf.length) {
    throw new DecodeError(
      LIST,
      12,
      `INLINE DATA LENGTH ${header.inlineDataLength} runs past the ${buf.length}-byte parameter list`,
    );
  }

  const cscdDescriptors: DecodedCscd[] = [];
  for (let off = cscdStart; off < segStart; ) {
    const typeCode = buf[off];
    const length = cscdDescriptorLength(typeCode);
    if (off + length > segStart) {
      throw new DecodeError(
        LIST,
        off,
        `${cscdTypeName(typeCode)} ${CSCD} (${length} bytes) runs past the CSCD descriptor list`,
      );
    }
    const bytes = Buffer.from(buf.subarray(off, off + length));
    cscdDescriptors.push({ offset: off, length, typeCode, bytes, descriptor: decodeCscd(bytes) });
    off += length;
  }

  const segmentDescriptors: DecodedSegment[] = [];
  for (let off = segStart; off < inlineStart; ) {
    if (off + 4 > inlineStart) {
      throw new DecodeError(LIST, off, `${SEGMENT} header runs past the segment descriptor list`);
    }
    const typeCode = buf[off];
    const descriptorLength = buf.readUInt16BE(off + 2);
    const length = 4 + descriptorLength;
    if (off + length > inlineStart) {
      throw new DecodeError(
        LIST,
        off + 2,
        `DESCRIPTOR LENGTH ${descriptorLength} runs past the segment descriptor list`,
      );
    }
    const bytes = Buffer.from(buf.subarray(off, off + length));
    const descriptor = decodeSegment(bytes);
    segmentDescriptors.push({ offset: off, length, typeCode, descriptorLength, bytes, descriptor });
    off += length;
  }

  return {
    header,
    cscdDescriptors,
    segmentDescriptors,
    inlineDataOffset: inlineStart,
    inlineData: Buffer.from(buf.subarray(inlineStart, end)),
  };
}

/** `b` is one whole CSCD descriptor (length checked by the caller). */
function decodeCscd(b: Buffer): CscdDescriptor {
  if (b[0] !== CscdTypeCode.IDENTIFICATION) return { kind: 'raw', typeCode: b[0], bytes: Buffer.from(b) };
  // SPC-4 r37 6.4.5.6 (E4h); byte 4 bits 7:4 and byte 5 bits 7:6 are reserved (protocol id/PIV cleared).
  const peripheralDeviceType = b[1] & 0x1f;
  const designatorLength = b[7];
  return {
    kind: 'identification',
    luIdType: b[1] >> 6,
    nul: (b[1] & 0x20) !== 0,
    peripheralDeviceType,
    relativeInitiatorPortIdentifier: b.readUInt16BE(2),
    codeSet: b[4] & 0x0f,
    association: (b[5] >> 4) & 0x3,
    designatorType: b[5] & 0x0f,
    designatorLength,
    designator: Buffer.from(b.subarray(8, 8 + Math.min(designatorLength, CSCD_DESIGNATOR_MAX_LENGTH))),
    deviceTypeSpecific: decodeDeviceTypeSpecific(peripheralDeviceType, b.subarray(28, 32)),
  };
}

/** SPC-4 r37 6.4.5.2–6.4.5.4: bytes 28–31 by peripheral device type. */
function decodeDeviceTypeSpecific(pdt: number, b: Buffer): DeviceTypeSpecificParameters {
  const length24 = (b[1] << 16) | (b[2] << 8) | b[3];
  if (BLOCK_PERIPHERAL_DEVICE_TYPES.has(pdt)) {
    return { kind: 'block', pad: (b[0] & 0x04) !== 0, diskBlockLength: length24 };
  }
  if (pdt === STREAM_PERIPHERAL_DEVICE_TYPE) {
    return { kind: 'stream', pad: (b[0] & 0x04) !== 0, fixed: (b[0] & 0x01) !== 0, streamBlockLength: length24 };
  }
  return { kind: 'raw', bytes: Buffer.from(b) };
}

/** `b` is one whole segment descriptor (length checked by the caller). */
function decodeSegment(b: Buffer): SegmentDescriptor {
  const typeCode = b[0];
  const expected = SEGMENT_DESCRIPTOR_LENGTHS.get(typeCode);
  if (expected === undefined || b.length !== 4 + expected) return { kind: 'raw', typeCode, bytes: Buffer.from(b) };
  const ids = { sourceCscdDescriptorId: b.readUInt16BE(4), destinationCscdDescriptorId: b.readUInt16BE(6) };
  const cat = (b[1] & 0x01) !== 0;
  switch (typeCode) {
    case SegmentTypeCode.BLOCK_TO_BLOCK:
      // SPC-4 r37 6.4.6.4, Table 151.
      return {
        kind: 'blockToBlock',
        dc: (b[1] & 0x02) !== 0,
        cat,
        ...ids,
        blockDeviceNumberOfBlocks: b.readUInt16BE(10),
        sourceBlockDeviceLba: b.readBigUInt64BE(12),
        destinationBlockDeviceLba: b.readBigUInt64BE(20),
      };
    case SegmentTypeCode.BLOCK_OFFSET_TO_BLOCK_OFFSET:
      // SPC-4 r37 6.4.6.12, Table 159 (DC is ignored for this type).
      return {
        kind: 'blockOffsetToBlockOffset',
        cat,
        ...ids,
        numberOfBytes: b.readUInt32BE(8),
        sourceBlockDeviceLba: b.readBigUInt64BE(12),
        destinationBlockDeviceLba: b.readBigUInt64BE(20),
        sourceBlockDeviceByteOffset: b.readUInt16BE(28),
        destinationBlockDeviceByteOffset: b.readUInt16BE(30),
      };
    default: {
      // SPC-4 r37 6.4.6.2 / 6.4.6.3, Tables 149/150 (00h, 01h).
      const fields = {
        cat,
        ...ids,
        streamDeviceTransferLength: (b[9] << 16) | (b[10] << 8) | b[11],
        blockDeviceNumberOfBlocks: b.readUInt16BE(14),
        blockDeviceLba: b.readBigUInt64BE(16),
      };
      return typeCode === SegmentTypeCode.BLOCK_TO_STREAM
        ? { kind: 'blockToStream', ...fields }
        : { kind: 'streamToBlock', ...fields };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/** SPC-4 r37 6.5: encode a LID1 parameter list (header lengths computed from the descriptors). */
export function encodeExtendedCopyLid1(list: ExtendedCopyLid1ParameterList): Buffer {
  const priority = list.priority ?? 0;
  checkUint(LIST, 'LIST IDENTIFIER', list.listIdentifier, 8);
  checkUint(LIST, 'LIST ID USAGE', list.listIdUsage, 2);
  checkUint(LIST, 'PRIORITY', priority, 3);
  const cscds = Buffer.concat(list.cscdDescriptors.map((d, i) => encodeCscd(d, i)));
  const segments = Buffer.concat(list.segmentDescriptors.map((d, i) => encodeSegment(d, i)));
  const inline = list.inlineData ?? Buffer.alloc(0);
  checkUint(LIST, 'CSCD DESCRIPTOR LIST LENGTH', cscds.length, 16);
  checkUint(LIST, 'SEGMENT DESCRIPTOR LIST LENGTH', segments.length, 32);
  checkUint(LIST, 'INLINE DATA LENGTH', inline.length, 32);
  const header = Buffer.alloc(EXTENDED_COPY_LID1_HEADER_LENGTH);
  header[0] = list.listIdentifier;
  header[1] = (list.str ? 0x20 : 0) | (list.listIdUsage << 3) | priority;
  header.writeUInt16BE(cscds.length, 2);
  header.writeUInt32BE(segments.length, 8);
  header.writeUInt32BE(inline.length, 12);
  return Buffer.concat([header, cscds, segments, inline]);
}

function encodeCscd(d: CscdDescriptor, index: number): Buffer {
  const field = (name: string) => `${name} [CSCD ${index}]`;
  if (d.kind === 'raw') {
    checkUint(CSCD, field('DESCRIPTOR TYPE CODE'), d.typeCode, 8);
    if (d.bytes.length !== cscdDescriptorLength(d.typeCode) || d.bytes[0] !== d.typeCode) {
      throw new EncodeError(
        CSCD,
        field('bytes'),
        `must be ${cscdDescriptorLength(d.typeCode)} bytes starting with the type code`,
      );
    }
    return Buffer.from(d.bytes);
  }
  // SPC-4 r37 6.4.5.6: E4h identification descriptor.
  const designatorLength = d.designatorLength ?? d.designator.length;
  checkUint(CSCD, field('LU ID TYPE'), d.luIdType, 2);
  checkUint(CSCD, field('PERIPHERAL DEVICE TYPE'), d.peripheralDeviceType, 5);
  checkUint(CSCD, field('RELATIVE INITIATOR PORT IDENTIFIER'), d.relativeInitiatorPortIdentifier, 16);
  checkUint(CSCD, field('CODE SET'), d.codeSet, 4);
  checkUint(CSCD, field('ASSOCIATION'), d.association, 2);
  checkUint(CSCD, field('DESIGNATOR TYPE'), d.designatorType, 4);
  checkUint(CSCD, field('DESIGNATOR LENGTH'), designatorLength, 8);
  if (d.designator.length > CSCD_DESIGNATOR_MAX_LENGTH) {
    throw new EncodeError(
      CSCD,
      field('DESIGNATOR'),
      `is ${d.designator.length} bytes, at most ${CSCD_DESIGNATOR_MAX_LENGTH} fit`,
    );
  }
  const out = Buffer.alloc(32);
  out[0] = CscdTypeCode.IDENTIFICATION;
  out[1] = (d.luIdType << 6) | (d.nul ? 0x20 : 0) | d.peripheralDeviceType;
  out.writeUInt16BE(d.relativeInitiatorPortIdentifier, 2);
  out[4] = d.codeSet; // bits 7:4 reserved: the VPD 83h protocol identifier is not carried
  out[5] = (d.association << 4) | d.designatorType; // bits 7:6 reserved: PIV is not carried
  out[7] = designatorLength;
  d.designator.copy(out, 8); // zero-padded to 20 bytes
  encodeDeviceTypeSpecific(d.peripheralDeviceType, d.deviceTypeSpecific, field).copy(out, 28);
  return out;
}

function encodeDeviceTypeSpecific(
  pdt: number,
  p: DeviceTypeSpecificParameters,
  field: (name: string) => string,
): Buffer {
  const expected = BLOCK_PERIPHERAL_DEVICE_TYPES.has(pdt)
    ? 'block'
    : pdt === STREAM_PERIPHERAL_DEVICE_TYPE
      ? 'stream'
      : 'raw';
  if (p.kind !== expected) {
    throw new EncodeError(
      CSCD,
      field('device type specific parameters'),
      `are '${p.kind}', peripheral device type ${hex2(pdt)}h needs '${expected}'`,
    );
  }
  const out = Buffer.alloc(4);
  switch (p.kind) {
    case 'block':
      checkUint(CSCD, field('DISK BLOCK LENGTH'), p.diskBlockLength, 24);
      out[0] = p.pad ? 0x04 : 0;
      out.writeUIntBE(p.diskBlockLength, 1, 3);
      break;
    case 'stream':
      checkUint(CSCD, field('STREAM BLOCK LENGTH'), p.streamBlockLength, 24);
      out[0] = (p.pad ? 0x04 : 0) | (p.fixed ? 0x01 : 0);
      out.writeUIntBE(p.streamBlockLength, 1, 3);
      break;
    case 'raw':
      if (p.bytes.length !== 4) {
        throw new EncodeError(CSCD, field('device type specific parameters'), 'must be 4 bytes');
      }
      p.bytes.copy(out);
      break;
  }
  return out;
}

function encodeSegment(d: SegmentDescriptor, index: number): Buffer {
  const field = (name: string) => `${name} [segment ${index}]`;
  if (d.kind === 'raw') {
    checkUint(SEGMENT, field('DESCRIPTOR TYPE CODE'), d.typeCode, 8);
    if (d.bytes.length < 4 || d.bytes[0] !== d.typeCode || d.bytes.readUInt16BE(2) !== d.bytes.length - 4) {
      throw new EncodeError(
        SEGMENT,
        field('bytes'),
        'must start with the type code and carry DESCRIPTOR LENGTH = length − 4',
      );
    }
    return Buffer.from(d.bytes);
  }
  checkUint(SEGMENT, field('SOURCE CSCD DESCRIPTOR ID'), d.sourceCscdDescriptorId, 16);
  checkUint(SEGMENT, field('DESTINATION CSCD DESCRIPTOR ID'), d.destinationCscdDescriptorId, 16);
  let typeCode: number;
  let flags = d.cat ? 0x01 : 0;
  switch (d.kind) {
    case 'blockToBlock':
      typeCode = SegmentTypeCode.BLOCK_TO_BLOCK;
      if (d.dc) flags |= 0x02;
      break;
    case 'blockOffsetToBlockOffset':
      typeCode = SegmentTypeCode.BLOCK_OFFSET_TO_BLOCK_OFFSET;
      break;
    case 'blockToStream':
      typeCode = SegmentTypeCode.BLOCK_TO_STREAM;
      break;
    case 'streamToBlock':
      typeCode = SegmentTypeCode.STREAM_TO_BLOCK;
      break;
  }
  const descriptorLength = SEGMENT_DESCRIPTOR_LENGTHS.get(typeCode) ?? 0;
  const out = Buffer.alloc(4 + descriptorLength);
  out[0] = typeCode;
  out[1] = flags;
  out.writeUInt16BE(descriptorLength, 2);
  out.writeUInt16BE(d.sourceCscdDescriptorId, 4);
  out.writeUInt16BE(d.destinationCscdDescriptorId, 6);
  switch (d.kind) {
    case 'blockToBlock':
      checkUint(SEGMENT, field('BLOCK DEVICE NUMBER OF BLOCKS'), d.blockDeviceNumberOfBlocks, 16);
      checkBigUint(SEGMENT, field('SOURCE BLOCK DEVICE LOGICAL BLOCK ADDRESS'), d.sourceBlockDeviceLba, 64);
      checkBigUint(SEGMENT, field('DESTINATION BLOCK DEVICE LOGICAL BLOCK ADDRESS'), d.destinationBlockDeviceLba, 64);
      out.writeUInt16BE(d.blockDeviceNumberOfBlocks, 10);
      out.writeBigUInt64BE(d.sourceBlockDeviceLba, 12);
      out.writeBigUInt64BE(d.destinationBlockDeviceLba, 20);
      break;
    case 'blockOffsetToBlockOffset':
      checkUint(SEGMENT, field('NUMBER OF BYTES'), d.numberOfBytes, 32);
      checkBigUint(SEGMENT, field('SOURCE BLOCK DEVICE LOGICAL BLOCK ADDRESS'), d.sourceBlockDeviceLba, 64);
      checkBigUint(SEGMENT, field('DESTINATION BLOCK DEVICE LOGICAL BLOCK ADDRESS'), d.destinationBlockDeviceLba, 64);
      checkUint(SEGMENT, field('SOURCE BLOCK DEVICE BYTE OFFSET'), d.sourceBlockDeviceByteOffset, 16);
      checkUint(SEGMENT, field('DESTINATION BLOCK DEVICE BYTE OFFSET'), d.destinationBlockDeviceByteOffset, 16);
      out.writeUInt32BE(d.numberOfBytes, 8);
      out.writeBigUInt64BE(d.sourceBlockDeviceLba, 12);
      out.writeBigUInt64BE(d.destinationBlockDeviceLba, 20);
      out.writeUInt16BE(d.sourceBlockDeviceByteOffset, 28);
      out.writeUInt16BE(d.destinationBlockDeviceByteOffset, 30);
      break;
    case 'blockToStream':
    case 'streamToBlock':
      checkUint(SEGMENT, field('STREAM DEVICE TRANSFER LENGTH'), d.streamDeviceTransferLength, 24);
      checkUint(SEGMENT, field('BLOCK DEVICE NUMBER OF BLOCKS'), d.blockDeviceNumberOfBlocks, 16);
      checkBigUint(SEGMENT, field('BLOCK DEVICE LOGICAL BLOCK ADDRESS'), d.blockDeviceLba, 64);
      out.writeUIntBE(d.streamDeviceTransferLength, 9, 3);
      out.writeUInt16BE(d.blockDeviceNumberOfBlocks, 14);
      out.writeBigUInt64BE(d.blockDeviceLba, 16);
      break;
  }
  return out;
}

/**
 * An E4h identification CSCD descriptor for a LU named by a VPD 83h designation descriptor
 * (docs/xcopy.md "The identification CSCD"): CODE SET, ASSOCIATION, DESIGNATOR TYPE and DESIGNATOR copied, PIV and
 * PROTOCOL IDENTIFIER cleared, LU ID TYPE 00b, NUL 0, RELATIVE INITIATOR PORT IDENTIFIER 0 and
 * DISK BLOCK LENGTH = `blockLength` (PAD 0) unless `options` say otherwise. Throws EncodeError if
 * the designator is longer than 20 bytes or the block length does not fit 24 bits.
 */
export function cscdFromDesignator(
  designation: DesignationDescriptor,
  blockLength: number,
  options: { peripheralDeviceType?: number; relativeInitiatorPortIdentifier?: number; pad?: boolean } = {},
): IdentificationCscd {
  const pdt = options.peripheralDeviceType ?? 0x00;
  if (designation.designator.length > CSCD_DESIGNATOR_MAX_LENGTH) {
    throw new EncodeError(
      CSCD,
      'DESIGNATOR',
      `is ${designation.designator.length} bytes, at most ${CSCD_DESIGNATOR_MAX_LENGTH} fit`,
    );
  }
  checkUint(CSCD, 'PERIPHERAL DEVICE TYPE', pdt, 5);
  checkUint(CSCD, 'DISK BLOCK LENGTH', blockLength, 24);
  const pad = options.pad ?? false;
  let deviceTypeSpecific: DeviceTypeSpecificParameters;
  if (BLOCK_PERIPHERAL_DEVICE_TYPES.has(pdt)) {
    deviceTypeSpecific = { kind: 'block', pad, diskBlockLength: blockLength };
  } else if (pdt === STREAM_PERIPHERAL_DEVICE_TYPE) {
    // SPC-4 r37 6.4.5.4: FIXED with a non-zero STREAM BLOCK LENGTH, variable-length transfers with 0.
    deviceTypeSpecific = { kind: 'stream', pad, fixed: blockLength !== 0, streamBlockLength: blockLength };
  } else {
    throw new EncodeError(CSCD, 'PERIPHERAL DEVICE TYPE', `${hex2(pdt)}h is neither a block nor a stream device`);
  }
  return {
    kind: 'identification',
    luIdType: 0,
    nul: false,
    peripheralDeviceType: pdt,
    relativeInitiatorPortIdentifier: options.relativeInitiatorPortIdentifier ?? 0,
    codeSet: designation.codeSet,
    association: designation.association,
    designatorType: designation.designatorType,
    designator: Buffer.from(designation.designator),
    deviceTypeSpecific,
  };
}

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}

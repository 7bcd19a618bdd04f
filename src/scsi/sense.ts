/**
 * Sense data (SPC-4 r37 4.5): decode both formats, encode both formats, describe for logs.
 *
 * Pure codec, no I/O. Decoders return a typed value or throw DecodeError; encoders throw
 * EncodeError when a value does not fit its field.
 */
import { DecodeError, EncodeError } from '../errors';
import { SenseKey, ascName, senseKeyName } from './constants';
import { bigUintUpTo, UINT32_MAX, UINT64_MAX, uintUpTo } from './fields';

const STRUCTURE = 'sense data';

/** SPC-4 r37 4.5.1: RESPONSE CODE values. */
export const enum SenseResponseCode {
  FIXED_CURRENT = 0x70,
  FIXED_DEFERRED = 0x71,
  DESCRIPTOR_CURRENT = 0x72,
  DESCRIPTOR_DEFERRED = 0x73,
}

/** SPC-4 r37 4.5.2.1: sense data descriptor types this codec decodes into typed form. */
export const enum SenseDescriptorType {
  INFORMATION = 0x00,
  COMMAND_SPECIFIC_INFORMATION = 0x01,
  SENSE_KEY_SPECIFIC = 0x02,
  FORWARDED_SENSE_DATA = 0x0c,
}

/** SPC-4 r37 4.5.2, forwarded sense data descriptor: SENSE DATA SOURCE values. */
export const enum SenseDataSource {
  UNKNOWN = 0x0,
  /** EXTENDED COPY command copy source device (CTL's SSD_FORWARDED_SDS_EXSRC). */
  EXTENDED_COPY_SOURCE = 0x1,
  /** EXTENDED COPY command copy destination device (CTL's SSD_FORWARDED_SDS_EXDST). */
  EXTENDED_COPY_DESTINATION = 0x2,
}

/**
 * The SENSE KEY SPECIFIC field (SPC-4 r37 4.5.2.4): three bytes whose meaning depends on the sense
 * key. `raw` keeps the three bytes verbatim (SKSV bit included) for sense keys with no defined
 * format, or when a peer sent a descriptor with SKSV = 0. Encoders write `raw` as given for any
 * sense key (so a typed format must match the key, but raw bytes can forward anything); raw bytes
 * under a key with a defined format decode back in that format.
 */
export type SenseKeySpecific =
  /** ILLEGAL REQUEST (SPC-4 r37 4.5.2.4.2). `cd`: the field is in the CDB (else the parameter list). */
  | { kind: 'fieldPointer'; cd: boolean; bpv: boolean; bitPointer: number; fieldPointer: number }
  /** RECOVERED ERROR, MEDIUM ERROR, HARDWARE ERROR (SPC-4 r37 4.5.2.4.3). */
  | { kind: 'actualRetryCount'; actualRetryCount: number }
  /** NO SENSE, NOT READY (SPC-4 r37 4.5.2.4.4): fraction complete, numerator over 65536. */
  | { kind: 'progressIndication'; progressIndication: number }
  /** COPY ABORTED (SPC-4 r37 4.5.2.4.5). `sd`: the field pointer is relative to the segment
   *  descriptor named by COMMAND-SPECIFIC INFORMATION (else to the parameter list). */
  | { kind: 'segmentPointer'; sd: boolean; bpv: boolean; bitPointer: number; fieldPointer: number }
  /** UNIT ATTENTION (SPC-4 r37 4.5.2.4.6). */
  | { kind: 'unitAttentionConditionQueueOverflow'; overflow: boolean }
  | { kind: 'raw'; bytes: Buffer };

/** One descriptor of descriptor-format sense data (SPC-4 r37 4.5.2). */
export type SenseDescriptor =
  /** 00h, SPC-4 r37 4.5.2.2. */
  | { kind: 'information'; valid: boolean; information: bigint }
  /** 01h, SPC-4 r37 4.5.2.3. */
  | { kind: 'commandSpecificInformation'; commandSpecificInformation: bigint }
  /** 02h, SPC-4 r37 4.5.2.4. */
  | { kind: 'senseKeySpecific'; senseKeySpecific: SenseKeySpecific }
  /** 0Ch, SPC-4 r37 4.5.2 forwarded sense data descriptor: sense data a copy manager got from a
   *  copy source or destination. */
  | { kind: 'forwardedSenseData'; fsdt: boolean; senseDataSource: number; forwardedStatus: number; senseData: Buffer }
  /** Any other type; `data` is everything after the two header bytes. */
  | { kind: 'raw'; descriptorType: number; data: Buffer };

/**
 * Decoded sense data, either format. For descriptor format the information, command-specific
 * information and sense-key-specific descriptors are also lifted to the top-level fields (first
 * of each), so callers need not care which format a peer chose.
 */
export interface SenseData {
  responseCode: number;
  format: 'fixed' | 'descriptor';
  /** Current (70h/72h) or deferred (71h/73h) error. */
  current: boolean;
  /** Fixed: byte 0 bit 7. Descriptor: the information descriptor's VALID bit. */
  valid?: boolean;
  senseKey: number;
  asc: number;
  ascq: number;
  filemark?: boolean;
  eom?: boolean;
  ili?: boolean;
  /** Present only when VALID is set. */
  information?: bigint;
  commandSpecificInformation?: bigint;
  /** Fixed format byte 14; decoded only when non-zero ("no unit identified" is zero). */
  fieldReplaceableUnitCode?: number;
  /** Present only when SKSV is set. */
  senseKeySpecific?: SenseKeySpecific;
  /** Descriptor format only: every descriptor, in order. */
  descriptors?: SenseDescriptor[];
}

/**
 * What the encoders take: SenseData without the decode-only fields. The response code comes
 * from `current` (default true) and the function called, so a decoded fixed sense can be
 * re-encoded in descriptor format and back.
 */
export type SenseInput = Omit<SenseData, 'responseCode' | 'format' | 'current'> & {
  responseCode?: number;
  format?: 'fixed' | 'descriptor';
  current?: boolean;
};

// ---------------------------------------------------------------------------------------------
// Sense key specific (SPC-4 r37 4.5.2.4)
// ---------------------------------------------------------------------------------------------

type SksKind = SenseKeySpecific['kind'];

/** SPC-4 r37 4.5.2.4.1: which SENSE KEY SPECIFIC format a sense key uses. */
function sksKindFor(senseKey: number): SksKind {
  switch (senseKey) {
    case SenseKey.ILLEGAL_REQUEST:
      return 'fieldPointer';
    case SenseKey.RECOVERED_ERROR:
    case SenseKey.MEDIUM_ERROR:
    case SenseKey.HARDWARE_ERROR:
      return 'actualRetryCount';
    case SenseKey.NO_SENSE:
    case SenseKey.NOT_READY:
      return 'progressIndication';
    case SenseKey.COPY_ABORTED:
      return 'segmentPointer';
    case SenseKey.UNIT_ATTENTION:
      return 'unitAttentionConditionQueueOverflow';
    default:
      return 'raw';
  }
}

/** Bytes `at`..`at+2` hold SKSV and the SENSE KEY SPECIFIC field. */
function decodeSks(buf: Buffer, at: number, senseKey: number): SenseKeySpecific {
  const b0 = buf[at];
  const word = buf.readUInt16BE(at + 1);
  if ((b0 & 0x80) === 0) return { kind: 'raw', bytes: Buffer.from(buf.subarray(at, at + 3)) };
  switch (sksKindFor(senseKey)) {
    case 'fieldPointer':
      return {
        kind: 'fieldPointer',
        cd: (b0 & 0x40) !== 0, // C/D
        bpv: (b0 & 0x08) !== 0,
        bitPointer: b0 & 0x07,
        fieldPointer: word,
      };
    case 'actualRetryCount':
      return { kind: 'actualRetryCount', actualRetryCount: word };
    case 'progressIndication':
      return { kind: 'progressIndication', progressIndication: word };
    case 'segmentPointer':
      return {
        kind: 'segmentPointer',
        sd: (b0 & 0x20) !== 0,
        bpv: (b0 & 0x08) !== 0,
        bitPointer: b0 & 0x07,
        fieldPointer: word,
      };
    case 'unitAttentionConditionQueueOverflow':
      return { kind: 'unitAttentionConditionQueueOverflow', overflow: (b0 & 0x01) !== 0 };
    case 'raw':
      return { kind: 'raw', bytes: Buffer.from(buf.subarray(at, at + 3)) };
  }
}

function encodeSks(out: Buffer, at: number, sks: SenseKeySpecific, senseKey: number): void {
  if (sks.kind !== 'raw' && sks.kind !== sksKindFor(senseKey)) {
    throw new EncodeError(
      STRUCTURE,
      'senseKeySpecific',
      `${sks.kind} does not apply to sense key ${senseKeyName(senseKey)} (SPC-4 r37 4.5.2.4.1 wants ${sksKindFor(senseKey)})`,
    );
  }
  switch (sks.kind) {
    case 'fieldPointer':
    case 'segmentPointer': {
      uintUpTo(STRUCTURE, 'senseKeySpecific.bitPointer', sks.bitPointer, 7, true);
      uintUpTo(STRUCTURE, 'senseKeySpecific.fieldPointer', sks.fieldPointer, 0xffff, true);
      const flag = sks.kind === 'fieldPointer' ? (sks.cd ? 0x40 : 0) : sks.sd ? 0x20 : 0;
      out[at] = 0x80 | flag | (sks.bpv ? 0x08 : 0) | sks.bitPointer;
      out.writeUInt16BE(sks.fieldPointer, at + 1);
      return;
    }
    case 'actualRetryCount':
      uintUpTo(STRUCTURE, 'senseKeySpecific.actualRetryCount', sks.actualRetryCount, 0xffff, true);
      out[at] = 0x80;
      out.writeUInt16BE(sks.actualRetryCount, at + 1);
      return;
    case 'progressIndication':
      uintUpTo(STRUCTURE, 'senseKeySpecific.progressIndication', sks.progressIndication, 0xffff, true);
      out[at] = 0x80;
      out.writeUInt16BE(sks.progressIndication, at + 1);
      return;
    case 'unitAttentionConditionQueueOverflow':
      out[at] = 0x80 | (sks.overflow ? 0x01 : 0);
      out[at + 1] = 0;
      out[at + 2] = 0;
      return;
    case 'raw':
      if (!Buffer.isBuffer(sks.bytes) || sks.bytes.length !== 3) {
        throw new EncodeError(STRUCTURE, 'senseKeySpecific.bytes', 'must be a 3-byte Buffer');
      }
      sks.bytes.copy(out, at);
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// Decode
// ---------------------------------------------------------------------------------------------

/**
 * Decodes sense data of either format (SPC-4 r37 4.5.1). ADDITIONAL SENSE LENGTH is honoured: bytes
 * past it are ignored, and a buffer shorter than it declares (cut by an allocation length, as
 * initiators commonly see 14- or 18-byte fixed sense) is decoded as far as it goes; fields not
 * returned read as absent (ASC/ASCQ as zero). Fewer than 8 bytes, or a response code other
 * than 70h–73h, is a DecodeError.
 */
export function decodeSense(buf: Buffer): SenseData {
  if (buf.length < 8) {
    throw new DecodeError(STRUCTURE, buf.length, `need at least 8 bytes, got ${buf.length}`);
  }
  const responseCode = buf[0] & 0x7f;
  switch (responseCode) {
    case SenseResponseCode.FIXED_CURRENT:
    case SenseResponseCode.FIXED_DEFERRED:
      return decodeFixed(buf, responseCode);
    case SenseResponseCode.DESCRIPTOR_CURRENT:
    case SenseResponseCode.DESCRIPTOR_DEFERRED:
      return decodeDescriptor(buf, responseCode);
    default:
      throw new DecodeError(STRUCTURE, 0, `unsupported RESPONSE CODE 0x${responseCode.toString(16).padStart(2, '0')}`);
  }
}

// SPC-4 r37 4.5.3 Fixed format sense data
function decodeFixed(buf: Buffer, responseCode: number): SenseData {
  const end = Math.min(buf.length, 8 + buf[7]); // ADDITIONAL SENSE LENGTH (byte 7) = n − 7
  const valid = (buf[0] & 0x80) !== 0;
  const senseKey = buf[2] & 0x0f;
  const s: SenseData = {
    responseCode,
    format: 'fixed',
    current: responseCode === SenseResponseCode.FIXED_CURRENT,
    valid,
    senseKey,
    asc: end >= 13 ? buf[12] : 0,
    ascq: end >= 14 ? buf[13] : 0,
    filemark: (buf[2] & 0x80) !== 0,
    eom: (buf[2] & 0x40) !== 0,
    ili: (buf[2] & 0x20) !== 0,
  };
  if (valid) s.information = BigInt(buf.readUInt32BE(3));
  if (end >= 12) s.commandSpecificInformation = BigInt(buf.readUInt32BE(8));
  if (end >= 15 && buf[14] !== 0) s.fieldReplaceableUnitCode = buf[14];
  // SKSV (byte 15 bit 7) set: bytes 15–17 are the SENSE KEY SPECIFIC field.
  if (end >= 18 && (buf[15] & 0x80) !== 0) s.senseKeySpecific = decodeSks(buf, 15, senseKey);
  return s;
}

// SPC-4 r37 4.5.2 Descriptor format sense data
function decodeDescriptor(buf: Buffer, responseCode: number): SenseData {
  const declaredEnd = 8 + buf[7]; // ADDITIONAL SENSE LENGTH
  const end = Math.min(buf.length, declaredEnd);
  const senseKey = buf[1] & 0x0f;
  const s: SenseData = {
    responseCode,
    format: 'descriptor',
    current: responseCode === SenseResponseCode.DESCRIPTOR_CURRENT,
    senseKey,
    asc: buf[2],
    ascq: buf[3],
  };
  const descriptors: SenseDescriptor[] = [];
  let off = 8;
  while (off < end) {
    if (off + 2 > declaredEnd) {
      throw new DecodeError(STRUCTURE, off, 'sense data descriptor header runs past ADDITIONAL SENSE LENGTH');
    }
    if (off + 2 > end) break; // cut by the allocation length: keep what is whole
    const type = buf[off];
    const next = off + 2 + buf[off + 1]; // ADDITIONAL LENGTH = n − 1
    if (next > declaredEnd) {
      throw new DecodeError(STRUCTURE, off + 1, `descriptor type 0x${type.toString(16)} runs past ADDITIONAL SENSE LENGTH`);
    }
    if (next > end) break; // truncated descriptor
    descriptors.push(decodeOneDescriptor(buf, off, next, senseKey));
    off = next;
  }
  s.descriptors = descriptors;
  for (const d of descriptors) {
    if (d.kind === 'information' && s.valid === undefined) {
      s.valid = d.valid;
      if (d.valid) s.information = d.information;
    } else if (d.kind === 'commandSpecificInformation' && s.commandSpecificInformation === undefined) {
      s.commandSpecificInformation = d.commandSpecificInformation;
    } else if (d.kind === 'senseKeySpecific' && s.senseKeySpecific === undefined) {
      s.senseKeySpecific = d.senseKeySpecific;
    }
  }
  return s;
}

function needLength(off: number, next: number, min: number, name: string): void {
  if (next - off - 2 < min) {
    throw new DecodeError(STRUCTURE, off + 1, `${name} descriptor ADDITIONAL LENGTH ${next - off - 2} < ${min}`);
  }
}

function decodeOneDescriptor(buf: Buffer, off: number, next: number, senseKey: number): SenseDescriptor {
  const type = buf[off];
  switch (type) {
    case SenseDescriptorType.INFORMATION: // SPC-4 r37 4.5.2.2: VALID byte 2 bit 7, INFORMATION bytes 4–11
      needLength(off, next, 0x0a, 'information');
      return { kind: 'information', valid: (buf[off + 2] & 0x80) !== 0, information: buf.readBigUInt64BE(off + 4) };
    case SenseDescriptorType.COMMAND_SPECIFIC_INFORMATION: // SPC-4 r37 4.5.2.3: bytes 4–11
      needLength(off, next, 0x0a, 'command-specific information');
      return { kind: 'commandSpecificInformation', commandSpecificInformation: buf.readBigUInt64BE(off + 4) };
    case SenseDescriptorType.SENSE_KEY_SPECIFIC: // SPC-4 r37 4.5.2.4: SKSV + field in bytes 4–6
      needLength(off, next, 0x06, 'sense key specific');
      return { kind: 'senseKeySpecific', senseKeySpecific: decodeSks(buf, off + 4, senseKey) };
    case SenseDescriptorType.FORWARDED_SENSE_DATA: // SPC-4 r37 4.5.2, forwarded sense data descriptor
      needLength(off, next, 0x02, 'forwarded sense data');
      return {
        kind: 'forwardedSenseData',
        fsdt: (buf[off + 2] & 0x80) !== 0,
        senseDataSource: buf[off + 2] & 0x0f,
        forwardedStatus: buf[off + 3],
        senseData: Buffer.from(buf.subarray(off + 4, next)),
      };
    default:
      return { kind: 'raw', descriptorType: type, data: Buffer.from(buf.subarray(off + 2, next)) };
  }
}

// ---------------------------------------------------------------------------------------------
// Encode
// ---------------------------------------------------------------------------------------------

function checkHeader(s: SenseInput): void {
  uintUpTo(STRUCTURE, 'senseKey', s.senseKey, 0x0f, true);
  uintUpTo(STRUCTURE, 'asc', s.asc, 0xff, true);
  uintUpTo(STRUCTURE, 'ascq', s.ascq, 0xff, true);
}

/**
 * Fixed format sense data (SPC-4 r37 4.5.3), 18 bytes (ADDITIONAL SENSE LENGTH 0Ah). VALID is
 * `s.valid`, or set when `information` is given. INFORMATION and COMMAND-SPECIFIC INFORMATION
 * must fit 32 bits (use descriptor format otherwise). Descriptors in `s.descriptors` other than
 * the three lifted to top-level fields have no place in this format and are not written.
 */
export function encodeFixedSense(s: SenseInput): Buffer {
  checkHeader(s);
  const out = Buffer.alloc(18);
  const valid = s.valid ?? s.information !== undefined;
  out[0] = (valid ? 0x80 : 0) | (s.current === false ? SenseResponseCode.FIXED_DEFERRED : SenseResponseCode.FIXED_CURRENT);
  out[2] = (s.filemark ? 0x80 : 0) | (s.eom ? 0x40 : 0) | (s.ili ? 0x20 : 0) | s.senseKey;
  if (s.information !== undefined) {
    bigUintUpTo(STRUCTURE, 'information', s.information, UINT32_MAX, '2^32-1');
    out.writeUInt32BE(Number(s.information), 3);
  }
  out[7] = 18 - 8; // ADDITIONAL SENSE LENGTH
  if (s.commandSpecificInformation !== undefined) {
    bigUintUpTo(STRUCTURE, 'commandSpecificInformation', s.commandSpecificInformation, UINT32_MAX, '2^32-1');
    out.writeUInt32BE(Number(s.commandSpecificInformation), 8);
  }
  out[12] = s.asc;
  out[13] = s.ascq;
  if (s.fieldReplaceableUnitCode !== undefined) {
    uintUpTo(STRUCTURE, 'fieldReplaceableUnitCode', s.fieldReplaceableUnitCode, 0xff, true);
    out[14] = s.fieldReplaceableUnitCode;
  }
  if (s.senseKeySpecific !== undefined) encodeSks(out, 15, s.senseKeySpecific, s.senseKey);
  return out;
}

function sksBytes(sks: SenseKeySpecific, senseKey: number): Buffer {
  const b = Buffer.alloc(3);
  encodeSks(b, 0, sks, senseKey);
  return b;
}

/**
 * Descriptor format sense data (SPC-4 r37 4.5.2). Writes, in order: an information descriptor for
 * `information` (VALID = `valid` ?? true), a command-specific information descriptor, a sense
 * key specific descriptor — each unless `descriptors` already holds one of that type, in which
 * case the two must agree (EncodeError otherwise) — then every entry of `descriptors`.
 */
export function encodeDescriptorSense(s: SenseInput): Buffer {
  checkHeader(s);
  const list: SenseDescriptor[] = [];
  const given = s.descriptors ?? [];
  if (s.information !== undefined) {
    const d = given.find((x) => x.kind === 'information');
    if (d === undefined) list.push({ kind: 'information', valid: s.valid ?? true, information: s.information });
    else if (d.information !== s.information) {
      throw new EncodeError(STRUCTURE, 'information', 'disagrees with the information descriptor in descriptors');
    }
  }
  if (s.commandSpecificInformation !== undefined) {
    const d = given.find((x) => x.kind === 'commandSpecificInformation');
    if (d === undefined) {
      list.push({ kind: 'commandSpecificInformation', commandSpecificInformation: s.commandSpecificInformation });
    } else if (d.commandSpecificInformation !== s.commandSpecificInformation) {
      throw new EncodeError(STRUCTURE, 'commandSpecificInformation', 'disagrees with the descriptor in descriptors');
    }
  }
  if (s.senseKeySpecific !== undefined) {
    const d = given.find((x) => x.kind === 'senseKeySpecific');
    if (d === undefined) list.push({ kind: 'senseKeySpecific', senseKeySpecific: s.senseKeySpecific });
    else if (!sksBytes(d.senseKeySpecific, s.senseKey).equals(sksBytes(s.senseKeySpecific, s.senseKey))) {
      throw new EncodeError(STRUCTURE, 'senseKeySpecific', 'disagrees with the descriptor in descriptors');
    }
  }
  list.push(...given);

  const parts = list.map((d) => encodeOneDescriptor(d, s.senseKey));
  const additional = parts.reduce((n, p) => n + p.length, 0);
  if (additional > 0xff) {
    throw new EncodeError(STRUCTURE, 'descriptors', `total ${additional} bytes exceed ADDITIONAL SENSE LENGTH (255)`);
  }
  const head = Buffer.alloc(8);
  head[0] = s.current === false ? SenseResponseCode.DESCRIPTOR_DEFERRED : SenseResponseCode.DESCRIPTOR_CURRENT;
  head[1] = s.senseKey;
  head[2] = s.asc;
  head[3] = s.ascq;
  head[7] = additional;
  return Buffer.concat([head, ...parts]);
}

function encodeOneDescriptor(d: SenseDescriptor, senseKey: number): Buffer {
  switch (d.kind) {
    case 'information': {
      // SPC-4 r37 4.5.2.2: type 00h, ADDITIONAL LENGTH 0Ah, VALID byte 2 bit 7, INFORMATION 4–11
      bigUintUpTo(STRUCTURE, 'information', d.information, UINT64_MAX, '2^64-1');
      const b = Buffer.alloc(12);
      b[0] = SenseDescriptorType.INFORMATION;
      b[1] = 0x0a;
      b[2] = d.valid ? 0x80 : 0;
      b.writeBigUInt64BE(d.information, 4);
      return b;
    }
    case 'commandSpecificInformation': {
      // SPC-4 r37 4.5.2.3: type 01h, ADDITIONAL LENGTH 0Ah, COMMAND-SPECIFIC INFORMATION 4–11
      bigUintUpTo(STRUCTURE, 'commandSpecificInformation', d.commandSpecificInformation, UINT64_MAX, '2^64-1');
      const b = Buffer.alloc(12);
      b[0] = SenseDescriptorType.COMMAND_SPECIFIC_INFORMATION;
      b[1] = 0x0a;
      b.writeBigUInt64BE(d.commandSpecificInformation, 4);
      return b;
    }
    case 'senseKeySpecific': {
      // SPC-4 r37 4.5.2.4: type 02h, ADDITIONAL LENGTH 06h, SKSV + field in bytes 4–6
      const b = Buffer.alloc(8);
      b[0] = SenseDescriptorType.SENSE_KEY_SPECIFIC;
      b[1] = 0x06;
      encodeSks(b, 4, d.senseKeySpecific, senseKey);
      return b;
    }
    case 'forwardedSenseData': {
      // SPC-4 forwarded sense data descriptor: type 0Ch, FSDT byte 2 bit 7, SENSE DATA SOURCE byte 2 bits 3:0,
      // FORWARDED STATUS byte 3, SENSE DATA from byte 4
      uintUpTo(STRUCTURE, 'forwardedSenseData.senseDataSource', d.senseDataSource, 0x0f, true);
      uintUpTo(STRUCTURE, 'forwardedSenseData.forwardedStatus', d.forwardedStatus, 0xff, true);
      if (!Buffer.isBuffer(d.senseData) || d.senseData.length > 0xff - 2) {
        throw new EncodeError(STRUCTURE, 'forwardedSenseData.senseData', 'must be a Buffer of at most 253 bytes');
      }
      const b = Buffer.alloc(4 + d.senseData.length);
      b[0] = SenseDescriptorType.FORWARDED_SENSE_DATA;
      b[1] = 2 + d.senseData.length;
      b[2] = (d.fsdt ? 0x80 : 0) | d.senseDataSource;
      b[3] = d.forwardedStatus;
      d.senseData.copy(b, 4);
      return b;
    }
    case 'raw': {
      uintUpTo(STRUCTURE, 'descriptors.descriptorType', d.descriptorType, 0xff, true);
      if (!Buffer.isBuffer(d.data) || d.data.length > 0xff) {
        throw new EncodeError(STRUCTURE, 'descriptors.data', 'must be a Buffer of at most 255 bytes');
      }
      return Buffer.concat([Buffer.from([d.descriptorType, d.data.length]), d.data]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Describe
// ---------------------------------------------------------------------------------------------

function hex(n: number | bigint, width = 2): string {
  return '0x' + n.toString(16).padStart(width, '0');
}

function describeSks(sks: SenseKeySpecific): string | undefined {
  switch (sks.kind) {
    case 'fieldPointer': {
      const bit = sks.bpv ? ` bit ${sks.bitPointer}` : '';
      return `field pointer: ${sks.cd ? 'CDB' : 'parameter list'} byte ${sks.fieldPointer}${bit}`;
    }
    case 'segmentPointer': {
      const bit = sks.bpv ? ` bit ${sks.bitPointer}` : '';
      return `segment pointer: ${sks.sd ? 'segment descriptor' : 'parameter list'} byte ${sks.fieldPointer}${bit}`;
    }
    case 'progressIndication':
      return `progress ${((sks.progressIndication * 100) / 65536).toFixed(1)}%`;
    case 'actualRetryCount':
      return `actual retry count ${sks.actualRetryCount}`;
    case 'unitAttentionConditionQueueOverflow':
      return sks.overflow ? 'unit attention condition queue overflow' : undefined;
    case 'raw':
      return undefined;
  }
}

/**
 * One line for logs and messages: `ILLEGAL REQUEST: INVALID FIELD IN CDB (0x24/0x00)`, then, when
 * present, `, field pointer: CDB byte 2`, `, information 0x...` and the like. Deferred errors
 * start with `deferred `.
 */
export function describeSense(s: Pick<SenseData, 'senseKey' | 'asc' | 'ascq'> & Partial<SenseData>): string {
  const deferred = s.current === false ? 'deferred ' : '';
  let text = `${deferred}${senseKeyName(s.senseKey)}: ${ascName(s.asc, s.ascq)} (${hex(s.asc)}/${hex(s.ascq)})`;
  const sks = s.senseKeySpecific ? describeSks(s.senseKeySpecific) : undefined;
  if (sks !== undefined) text += `, ${sks}`;
  if (s.information !== undefined && s.valid !== false) text += `, information ${hex(s.information, 1)}`;
  if (s.commandSpecificInformation !== undefined && s.commandSpecificInformation !== 0n) {
    text += `, command-specific information ${hex(s.commandSpecificInformation, 1)}`;
  }
  return text;
}

/**
 * READ CAPACITY parameter data (SBC-3 r36 5.15.2 and 5.16.2): encode and decode.
 *
 * Pure codec, no I/O. Decoders return a typed value or throw DecodeError (offset = the first
 * byte missing when the buffer is short); encoders throw EncodeError when a value does not fit.
 */
import { DecodeError } from '../errors';
import { bigUintUpTo, UINT32_MAX, UINT64_MAX, uintUpTo } from './fields';

/** READ CAPACITY(16) parameter data (SBC-3 r36 5.16.2). */
export interface ReadCapacity16Data {
  /** Bytes 0–7: the LBA of the last logical block. */
  returnedLogicalBlockAddress: bigint;
  /** Bytes 8–11: LOGICAL BLOCK LENGTH IN BYTES. */
  logicalBlockLength: number;
  /** Byte 12 bits 3:1: P_TYPE (protection type − 1 when PROT_EN is set). */
  pType: number;
  /** Byte 12 bit 0: PROT_EN. */
  protEn: boolean;
  /** Byte 13 bits 7:4: P_I_EXPONENT. */
  piExponent: number;
  /** Byte 13 bits 3:0: LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT. */
  logicalBlocksPerPhysicalBlockExponent: number;
  /** Byte 14 bit 7: LBPME (logical block provisioning management enabled). */
  lbpme: boolean;
  /** Byte 14 bit 6: LBPRZ (unmapped blocks read as zeros). */
  lbprz: boolean;
  /** Byte 14 bits 5:0 and byte 15: LOWEST ALIGNED LOGICAL BLOCK ADDRESS (14 bits). */
  lowestAlignedLogicalBlockAddress: number;
}

/** READ CAPACITY(10) parameter data (SBC-3 r36 5.15.2). */
export interface ReadCapacity10Data {
  /** Bytes 0–3: the last LBA, or FFFFFFFFh when it does not fit (then use READ CAPACITY(16)). */
  returnedLogicalBlockAddress: bigint;
  /** Bytes 4–7: LOGICAL BLOCK LENGTH IN BYTES. */
  logicalBlockLength: number;
}

/** Full length of READ CAPACITY(16) parameter data; bytes 16–31 are reserved. */
export const READ_CAPACITY_16_DATA_LENGTH = 32;
/** Length of READ CAPACITY(10) parameter data. */
export const READ_CAPACITY_10_DATA_LENGTH = 8;

const RC16 = 'READ CAPACITY(16) parameter data';
const RC10 = 'READ CAPACITY(10) parameter data';

/**
 * Decodes READ CAPACITY(16) parameter data. Bytes 16–31 are reserved, so 16 bytes are enough
 * (a target or an allocation length may cut the rest); fewer is a DecodeError.
 */
export function decodeReadCapacity16(buf: Buffer): ReadCapacity16Data {
  if (buf.length < 16) {
    throw new DecodeError(RC16, buf.length, `need at least 16 bytes, got ${buf.length}`);
  }
  return {
    returnedLogicalBlockAddress: buf.readBigUInt64BE(0),
    logicalBlockLength: buf.readUInt32BE(8),
    pType: (buf[12] >> 1) & 0x07,
    protEn: (buf[12] & 0x01) !== 0,
    piExponent: buf[13] >> 4,
    logicalBlocksPerPhysicalBlockExponent: buf[13] & 0x0f,
    lbpme: (buf[14] & 0x80) !== 0,
    lbprz: (buf[14] & 0x40) !== 0,
    lowestAlignedLogicalBlockAddress: buf.readUInt16BE(14) & 0x3fff,
  };
}

/** Encodes READ CAPACITY(16) parameter data, 32 bytes; omitted fields are zero. */
export function encodeReadCapacity16(
  d: Pick<ReadCapacity16Data, 'returnedLogicalBlockAddress' | 'logicalBlockLength'> & Partial<ReadCapacity16Data>,
): Buffer {
  const out = Buffer.alloc(READ_CAPACITY_16_DATA_LENGTH);
  out.writeBigUInt64BE(bigUintUpTo(RC16, 'returnedLogicalBlockAddress', d.returnedLogicalBlockAddress, UINT64_MAX), 0);
  out.writeUInt32BE(uintUpTo(RC16, 'logicalBlockLength', d.logicalBlockLength, 0xffff_ffff, true), 8);
  out[12] = (uintUpTo(RC16, 'pType', d.pType, 7) << 1) | (d.protEn ? 0x01 : 0);
  out[13] =
    (uintUpTo(RC16, 'piExponent', d.piExponent, 0x0f) << 4) |
    uintUpTo(RC16, 'logicalBlocksPerPhysicalBlockExponent', d.logicalBlocksPerPhysicalBlockExponent, 0x0f);
  const lowest = uintUpTo(RC16, 'lowestAlignedLogicalBlockAddress', d.lowestAlignedLogicalBlockAddress, 0x3fff);
  out.writeUInt16BE((d.lbpme ? 0x8000 : 0) | (d.lbprz ? 0x4000 : 0) | lowest, 14);
  return out;
}

/**
 * Encodes READ CAPACITY(10) parameter data. The caller clamps: SBC-3 r36 5.15.2 says a last LBA
 * above FFFFFFFEh is reported as FFFFFFFFh ({@link readCapacity10Lba} does that).
 */
export function encodeReadCapacity10(d: ReadCapacity10Data): Buffer {
  const out = Buffer.alloc(READ_CAPACITY_10_DATA_LENGTH);
  out.writeUInt32BE(Number(bigUintUpTo(RC10, 'returnedLogicalBlockAddress', d.returnedLogicalBlockAddress, UINT32_MAX)), 0);
  out.writeUInt32BE(uintUpTo(RC10, 'logicalBlockLength', d.logicalBlockLength, 0xffff_ffff, true), 4);
  return out;
}

/** SBC-3 r36 5.15.2: the RETURNED LOGICAL BLOCK ADDRESS for a last LBA, FFFFFFFFh if it does not fit. */
export function readCapacity10Lba(lastLba: bigint): bigint {
  return lastLba > 0xffff_fffen ? 0xffff_ffffn : lastLba;
}

/**
 * Logical block provisioning CDBs and parameter data an initiator builds (SBC-3, T10/BSR INCITS
 * 514 r35): UNMAP (5.28) with its parameter list, WRITE SAME(16) (5.42), GET LBA STATUS (5.4)
 * and its parameter data. Pure codecs: no I/O.
 */
import { ArgumentError } from '../errors';

const OP_UNMAP = 0x42;
const OP_WRITE_SAME_16 = 0x93;
const OP_SERVICE_ACTION_IN_16 = 0x9e;
const SA_GET_LBA_STATUS = 0x12;

/** SBC-3 r36 5.28.2: the UNMAP parameter list is an 8-byte header then 16-byte block descriptors. */
export const UNMAP_HEADER_LENGTH = 8;
export const UNMAP_DESCRIPTOR_LENGTH = 16;
/** The PARAMETER LIST LENGTH field is 16 bits: at most (65535 - 8) / 16 descriptors. */
export const UNMAP_MAX_DESCRIPTORS = Math.floor((0xffff - UNMAP_HEADER_LENGTH) / UNMAP_DESCRIPTOR_LENGTH);

function u32(field: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new ArgumentError(`${field} must be an integer from 0 to 2^32-1, got ${v}`);
  return v;
}

function u64(field: string, v: bigint): bigint {
  if (typeof v !== 'bigint' || v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new ArgumentError(`${field} must be a bigint from 0 to 2^64-1`);
  return v;
}

/**
 * UNMAP CDB (SBC-3 r36 5.28.1, 10 bytes): byte 0 OPERATION CODE 42h, byte 1 bit 0 ANCHOR, byte 6
 * GROUP NUMBER, bytes 7–8 PARAMETER LIST LENGTH, byte 9 CONTROL.
 */
export function encodeUnmapCdb(p: { parameterListLength: number; anchor?: boolean }): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = OP_UNMAP;
  cdb[1] = p.anchor ? 0x01 : 0;
  if (!Number.isInteger(p.parameterListLength) || p.parameterListLength < 0 || p.parameterListLength > 0xffff) {
    throw new ArgumentError(`parameterListLength must be an integer from 0 to 65535, got ${p.parameterListLength}`);
  }
  cdb.writeUInt16BE(p.parameterListLength, 7);
  return cdb;
}

/**
 * UNMAP parameter list (SBC-3 r36 5.28.2): bytes 0–1 UNMAP DATA LENGTH (n − 1), bytes 2–3 UNMAP BLOCK
 * DESCRIPTOR DATA LENGTH (n − 7), bytes 4–7 reserved; then per descriptor bytes 0–7 UNMAP LOGICAL
 * BLOCK ADDRESS, 8–11 NUMBER OF LOGICAL BLOCKS, 12–15 reserved.
 */
export function encodeUnmapParameterList(ranges: readonly { lba: bigint; blocks: number }[]): Buffer {
  if (ranges.length > UNMAP_MAX_DESCRIPTORS) throw new ArgumentError(`at most ${UNMAP_MAX_DESCRIPTORS} UNMAP block descriptors fit one list, got ${ranges.length}`);
  const out = Buffer.alloc(UNMAP_HEADER_LENGTH + UNMAP_DESCRIPTOR_LENGTH * ranges.length);
  out.writeUInt16BE(out.length - 2, 0);
  out.writeUInt16BE(out.length - UNMAP_HEADER_LENGTH, 2);
  ranges.forEach((r, i) => {
    const at = UNMAP_HEADER_LENGTH + i * UNMAP_DESCRIPTOR_LENGTH;
    out.writeBigUInt64BE(u64('lba', r.lba), at);
    out.writeUInt32BE(u32('blocks', r.blocks), at + 8);
  });
  return out;
}

/**
 * WRITE SAME(16) CDB (SBC-3 r36 5.42, 16 bytes): byte 1 bits 7:5 WRPROTECT, bit 4 ANCHOR, bit 3
 * UNMAP; bytes 2–9 LOGICAL BLOCK ADDRESS; 10–13 NUMBER OF LOGICAL BLOCKS (never 0 here: 0 means
 * "to the last LBA" unless WSNZ); byte 14 GROUP NUMBER; byte 15 CONTROL. One block of Data-Out.
 */
export function encodeWriteSame16Cdb(p: { lba: bigint; blocks: number; unmap?: boolean; anchor?: boolean }): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = OP_WRITE_SAME_16;
  cdb[1] = (p.anchor ? 0x10 : 0) | (p.unmap ? 0x08 : 0);
  cdb.writeBigUInt64BE(u64('lba', p.lba), 2);
  cdb.writeUInt32BE(u32('blocks', p.blocks), 10);
  return cdb;
}

/**
 * GET LBA STATUS CDB (SBC-3 r36 5.4.1): SERVICE ACTION IN(16) 9Eh, service action 12h; bytes 2–9
 * STARTING LOGICAL BLOCK ADDRESS, 10–13 ALLOCATION LENGTH, byte 15 CONTROL.
 */
export function encodeGetLbaStatusCdb(p: { lba: bigint; allocationLength: number }): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = OP_SERVICE_ACTION_IN_16;
  cdb[1] = SA_GET_LBA_STATUS;
  cdb.writeBigUInt64BE(u64('lba', p.lba), 2);
  cdb.writeUInt32BE(u32('allocationLength', p.allocationLength), 10);
  return cdb;
}

/** PROVISIONING STATUS of an LBA status descriptor (SBC-3 r36 5.4.2, Table 39). */
export const enum ProvisioningStatus {
  MAPPED = 0x0,
  DEALLOCATED = 0x1,
  ANCHORED = 0x2,
}

export interface LbaStatusDescriptor {
  lba: bigint;
  blocks: number;
  provisioningStatus: number;
}

/**
 * GET LBA STATUS parameter data (SBC-3 r36 5.4.2): bytes 0–3 PARAMETER DATA LENGTH (n − 3), 4–7
 * reserved, then 16-byte descriptors: 0–7 LBA, 8–11 NUMBER OF LOGICAL BLOCKS, byte 12 bits 3:0
 * PROVISIONING STATUS. Descriptors cut off by the allocation length are dropped.
 */
export function decodeLbaStatus(data: Buffer): LbaStatusDescriptor[] {
  if (data.length < 8) return [];
  const end = Math.min(data.length, data.readUInt32BE(0) + 4);
  const out: LbaStatusDescriptor[] = [];
  for (let at = 8; at + 16 <= end; at += 16) {
    out.push({ lba: data.readBigUInt64BE(at), blocks: data.readUInt32BE(at + 8), provisioningStatus: data[at + 12] & 0x0f });
  }
  return out;
}

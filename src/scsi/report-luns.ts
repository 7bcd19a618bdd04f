/**
 * REPORT LUNS parameter data (SPC-4 r37 6.33.2) and the 8-byte LUN field (SAM-5 r21 4.7): encode and
 * decode.
 *
 * Pure codec, no I/O. Decoders return a typed value or throw DecodeError (offset = the first
 * byte missing when the buffer is short); encoders throw EncodeError when a value does not fit.
 */
import { DecodeError, EncodeError } from '../errors';
import { uintUpTo } from './fields';

/**
 * A LUN as this project names it: a plain number for the single-level LUNs SAM-5 r21 4.7 encodes
 * with the peripheral device (LUN < 256) or flat space (LUN < 16384) addressing method.
 */
export type LunNumber = number;

/** REPORT LUNS parameter data, as decoded. */
export interface ReportLunsData {
  /**
   * LUN LIST LENGTH (bytes 0–3) as the device server reported it: 8 × the number of LUNs it
   * has. It can exceed what was received when the allocation length cut the list; compare
   * with `8 * (luns.length + otherLuns.length)` to see whether to ask again with more.
   */
  listLength: number;
  /** Single-level LUNs (peripheral device or flat space addressing), in list order. */
  luns: LunNumber[];
  /** Every other entry (multi-level, logical unit addressing, extended, well-known), as the raw
   *  8 bytes, in list order. */
  otherLuns: Buffer[];
}

const RL = 'REPORT LUNS parameter data';
const LUN = 'LUN';

/** Largest LUN a single-level flat space address holds (SAM-5 r21 4.7: 14 bits). */
export const MAX_FLAT_SPACE_LUN = 0x3fff;

/**
 * The 8-byte LUN field for a number (SAM-5 r21 4.7, single level): peripheral device addressing
 * (byte 0 = 00h, byte 1 = LUN) below 256, flat space addressing (byte 0 = 40h | LUN bits 13:8,
 * byte 1 = LUN bits 7:0) up to 16383; bytes 2–7 zero. A Buffer is taken as the raw 8 bytes.
 */
export function encodeLun(lun: LunNumber | Buffer): Buffer {
  if (Buffer.isBuffer(lun)) {
    if (lun.length !== 8) throw new EncodeError(LUN, 'lun', `raw LUN must be 8 bytes, got ${lun.length}`);
    return Buffer.from(lun);
  }
  uintUpTo(LUN, 'lun', lun, MAX_FLAT_SPACE_LUN, true);
  const out = Buffer.alloc(8);
  if (lun < 256) {
    out[1] = lun; // ADDRESS METHOD 00b, BUS IDENTIFIER 0
  } else {
    out[0] = 0x40 | (lun >> 8); // ADDRESS METHOD 01b
    out[1] = lun & 0xff;
  }
  return out;
}

/**
 * The number of a single-level LUN (SAM-5 r21 4.7), or undefined when the 8 bytes at `offset` use
 * another form: a non-zero BUS IDENTIFIER, a second level, logical unit or extended addressing.
 */
export function lunNumberAt(buf: Buffer, offset = 0): LunNumber | undefined {
  if (offset < 0 || buf.length < offset + 8) {
    throw new DecodeError(LUN, buf.length, `need 8 bytes at offset ${offset}, got ${buf.length - offset}`);
  }
  for (let i = 2; i < 8; i++) if (buf[offset + i] !== 0) return undefined;
  const b0 = buf[offset];
  switch (b0 >> 6) {
    case 0b00: // peripheral device addressing; BUS IDENTIFIER must be 0 for a single level
      return b0 === 0 ? buf[offset + 1] : undefined;
    case 0b01: // flat space addressing
      return ((b0 & 0x3f) << 8) | buf[offset + 1];
    default:
      return undefined;
  }
}

/**
 * Decodes REPORT LUNS parameter data (SPC-4 r37 6.33.2): LUN LIST LENGTH (bytes 0–3), 4 reserved
 * bytes, then 8-byte LUNs. A list cut short by the allocation length is accepted: the whole
 * entries received are returned and `listLength` says how long the full list is. Fewer than 8
 * bytes, or a LUN LIST LENGTH that is not a multiple of 8, is a DecodeError.
 */
export function decodeReportLuns(buf: Buffer): ReportLunsData {
  if (buf.length < 8) throw new DecodeError(RL, buf.length, `need at least 8 bytes, got ${buf.length}`);
  const listLength = buf.readUInt32BE(0);
  if (listLength % 8 !== 0) {
    throw new DecodeError(RL, 0, `LUN LIST LENGTH ${listLength} is not a multiple of 8`);
  }
  const end = Math.min(buf.length, 8 + listLength);
  const count = Math.floor((end - 8) / 8);
  const luns: LunNumber[] = [];
  const otherLuns: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const at = 8 + 8 * i;
    const n = lunNumberAt(buf, at); // single-level: a number; else the raw 8 bytes, copied
    if (n !== undefined) luns.push(n);
    else otherLuns.push(Buffer.from(buf.subarray(at, at + 8)));
  }
  return { listLength, luns, otherLuns };
}

/**
 * Encodes REPORT LUNS parameter data: the single-level `luns` first, then `otherLuns` verbatim.
 * The caller truncates to the allocation length (SPC-4 r37 4.2.5.6).
 */
export function encodeReportLuns(d: { luns: readonly LunNumber[]; otherLuns?: readonly Buffer[] }): Buffer {
  const entries = [...d.luns, ...(d.otherLuns ?? [])].map((l) => encodeLun(l));
  const listLength = 8 * entries.length;
  if (listLength > 0xffff_ffff) throw new EncodeError(RL, 'luns', `too many LUNs (${entries.length})`);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(listLength, 0);
  return Buffer.concat([head, ...entries]);
}

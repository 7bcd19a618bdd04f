/**
 * CRC32C (Castagnoli), the one digest iSCSI defines for HeaderDigest and DataDigest
 * (RFC 7143 13.1; generator 0x11EDC6F41, reflected 0x82F63B78; test vectors in RFC 3720 B.4).
 *
 * Node 20 has no CRC32C of its own (`zlib.crc32` is CRC-32/ISO-HDLC, another polynomial), and
 * this project takes no dependency for it. Data digests cover whole data segments (MiBs per
 * command), so the loop is table-driven "slicing-by-8": eight 256-entry tables, eight input
 * bytes per step.
 *
 * On the wire the 32-bit digest goes least significant byte first (RFC 3720 B.4 lists the CRC
 * of 32 zero bytes, 0x8A9136AA, as the bytes `aa 36 91 8a`; libiscsi and Linux read it the
 * same way): use `writeCrc32c` / `readCrc32c`.
 */
import { loadNative } from './index';

/** The reflected polynomial (bit-reversed 0x1EDC6F41). */
const POLY = 0x82f63b78;

/** TABLES[k * 256 + b]: CRC of byte b followed by k zero bytes (k = 0..7). */
const TABLES: Int32Array = (() => {
  const t = new Int32Array(8 * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[b] = c;
  }
  for (let b = 0; b < 256; b++) {
    for (let k = 1; k < 8; k++) {
      const prev = t[(k - 1) * 256 + b];
      t[k * 256 + b] = (prev >>> 8) ^ t[prev & 0xff];
    }
  }
  return t;
})();

/** From this size up the native addon's CRC32C (SSE4.2 where present) is used; below, the call costs more than it saves. */
const NATIVE_MIN_BYTES = 512;
let nativeCrc: ((data: Uint8Array, previous: number) => number) | null | undefined;

function native(): ((data: Uint8Array, previous: number) => number) | null {
  if (nativeCrc === undefined) {
    try {
      const m = loadNative();
      nativeCrc = typeof m.crc32c === 'function' ? m.crc32c : null;
    } catch {
      nativeCrc = null; // not built: the tables below do the work
    }
  }
  return nativeCrc;
}

/**
 * CRC32C of `data`. Pass the CRC of the bytes before `data` as `previous` to continue a
 * running digest: `crc32c(b, crc32c(a))` equals `crc32c(Buffer.concat([a, b]))`.
 * Returns an unsigned 32-bit number. Large buffers go to the native addon (same result).
 */
export function crc32c(data: Uint8Array, previous = 0): number {
  if (data.length >= NATIVE_MIN_BYTES) {
    const n = native();
    if (n) return n(data, previous >>> 0);
  }
  return crc32cSoftware(data, previous);
}

/** The table-driven CRC32C (the reference the native one is tested against). */
export function crc32cSoftware(data: Uint8Array, previous = 0): number {
  const t = TABLES;
  let crc = ~previous | 0;
  let i = 0;
  const n = data.length;
  const end8 = n - (n & 7);
  while (i < end8) {
    const lo = crc ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    crc =
      t[0x700 + (lo & 0xff)] ^
      t[0x600 + ((lo >>> 8) & 0xff)] ^
      t[0x500 + ((lo >>> 16) & 0xff)] ^
      t[0x400 + (lo >>> 24)] ^
      t[0x300 + data[i + 4]] ^
      t[0x200 + data[i + 5]] ^
      t[0x100 + data[i + 6]] ^
      t[data[i + 7]];
    i += 8;
  }
  while (i < n) {
    crc = (crc >>> 8) ^ t[(crc ^ data[i]) & 0xff];
    i++;
  }
  return ~crc >>> 0;
}

/** a·b mod P, polynomials in the reflected order of the CRC (bit 31 is x^0). */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/**
 * X2N[k] = x^(2^k) mod P, for every k a safe-integer length needs (3 + 53). No wrap-around
 * index: zlib's CRC-32 may reuse its table mod 32, but for this polynomial x^(2^31) = x, so the
 * powers repeat every 31 squarings, not 32.
 */
const X2N: number[] = (() => {
  const t = [0x40000000]; // x^1
  for (let k = 1; k < 64; k++) t.push(multModP(t[k - 1], t[k - 1]));
  return t;
})();

/** x^(8·bytes) mod P, the operator that moves a CRC past `bytes` more bytes; cached per length. */
const shiftOps = new Map<number, number>();
function shiftOp(bytes: number): number {
  let op = shiftOps.get(bytes);
  if (op === undefined) {
    op = 0x80000000; // x^0
    let n = bytes;
    for (let k = 3; n > 0; k++, n = Math.floor(n / 2)) if (n % 2 === 1) op = multModP(X2N[k], op);
    if (shiftOps.size < 64) shiftOps.set(bytes, op);
  }
  return op;
}

/**
 * The CRC32C of A followed by B from the CRC of A, the CRC of B and B's length, without the
 * bytes: `crc32cCombine(crc32c(a), crc32c(b), b.length) === crc32c(Buffer.concat([a, b]))`.
 * (CRCs are linear over GF(2): the CRC of A is carried past B's length by multiplying it by
 * x^(8·len B) mod P.) Lets a checksum computed where the data was read join a header's later.
 */
export function crc32cCombine(crcA: number, crcB: number, lengthB: number): number {
  if (!Number.isSafeInteger(lengthB) || lengthB < 0) throw new RangeError(`length ${lengthB} is not a non-negative integer`);
  if (lengthB === 0) return crcA >>> 0;
  return (multModP(shiftOp(lengthB), crcA >>> 0) ^ crcB) >>> 0;
}

/** CRC32C over several pieces in order, as if they were one buffer. */
export function crc32cOf(pieces: readonly Uint8Array[]): number {
  let crc = 0;
  for (const p of pieces) crc = crc32c(p, crc);
  return crc;
}

/** The 4 digest bytes of `crc` as iSCSI sends them (least significant byte first). */
export function crc32cBytes(crc: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(crc >>> 0, 0);
  return b;
}

/** Reads a digest sent on the wire at `offset` (least significant byte first). */
export function readCrc32c(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset);
}

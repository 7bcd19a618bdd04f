/**
 * CRC32C (Castagnoli), the one digest iSCSI defines for HeaderDigest and DataDigest
 * (RFC 7143 13.1; generator 0x11EDC6F41, reflected 0x82F63B78; test vectors in RFC 3720 B.4),
 * also the CRC of OBF records and superblocks (docs/obf-format.md).
 *
 * The project's one CRC32C is the native addon's (native/src/crc32c.cc: the SSE4.2 instruction
 * where the CPU has it, else portable slicing-by-8 tables, chosen once at load); this module is
 * its typed face, for every size. Node 20 has no CRC32C of its own (`zlib.crc32` is
 * CRC-32/ISO-HDLC, another polynomial). Why no TypeScript table for small inputs (48-byte header
 * digests): docs/native.md.
 *
 * On the wire the 32-bit digest goes least significant byte first (RFC 3720 B.4 lists the CRC
 * of 32 zero bytes, 0x8A9136AA, as the bytes `aa 36 91 8a`; libiscsi and Linux read it the
 * same way): use `crc32cBytes` / `readCrc32c`.
 */
import { loadNative } from './index';

/** The reflected polynomial (bit-reversed 0x1EDC6F41). */
const POLY = 0x82f63b78;

let nativeCrc: ((data: Uint8Array, previous: number) => number) | undefined;

/**
 * CRC32C of `data`. Pass the CRC of the bytes before `data` as `previous` to continue a
 * running digest: `crc32c(b, crc32c(a))` equals `crc32c(Buffer.concat([a, b]))`.
 * Returns an unsigned 32-bit number. Throws ERR_NATIVE_MISSING when the addon is not built.
 */
export function crc32c(data: Uint8Array, previous = 0): number {
  if (!(data instanceof Uint8Array)) throw new TypeError('crc32c takes a Uint8Array (a Buffer)');
  return (nativeCrc ??= loadNative().crc32c)(data, previous >>> 0);
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
 * Arithmetic on CRC values, not on bytes, so it stays here (a few multiplications per call).
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

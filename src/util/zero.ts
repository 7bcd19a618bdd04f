/** All-zero tests over buffers: one shared zero page, compared in slices (memcmp, no allocation). */

const ZERO = Buffer.alloc(64 * 1024);

/** True when bytes [start, end) of `b` (all of it by default) are zero. */
export function isAllZero(b: Uint8Array, start = 0, end = b.length): boolean {
  if (end <= start) return true;
  if (b[start] !== 0 || b[end - 1] !== 0) return false; // most data says no at once
  for (let off = start; off < end; off += ZERO.length) {
    const n = Math.min(ZERO.length, end - off);
    if (Buffer.compare(b.subarray(off, off + n), ZERO.subarray(0, n)) !== 0) return false;
  }
  return true;
}

/**
 * SHA-256 (FIPS 180-4) of a buffer on the libuv thread pool, read in place: OpenSSL's, the one
 * Node.js carries (native/src/digest.cc). Node's own asynchronous digest (WebCrypto's
 * subtle.digest) copies its input first; hashing a snapshot's image a megabyte at a time in the
 * target (src/target/snapshots/image-hash.ts), that copy and its page faults cost as much as the
 * digest (docs/native.md, "SHA-256").
 */
import { loadNative } from './index';

/**
 * The SHA-256 digest (32 bytes) of `data`. The buffer is read on another thread until the
 * promise settles: do not change or reuse it before. Throws ERR_NATIVE_MISSING when the addon is
 * not built.
 */
export function sha256Async(data: Buffer): Promise<Buffer> {
  if (!Buffer.isBuffer(data)) throw new TypeError('sha256Async takes a Buffer');
  return loadNative().sha256Async(data, 0);
}

/**
 * The SHA-256 digests of the consecutive `pieceBytes`-byte pieces of `data` (the last one
 * shorter), computed one after the other in one thread-pool job. Same rule for the buffer as
 * sha256Async.
 */
export async function sha256Pieces(data: Buffer, pieceBytes: number): Promise<Buffer[]> {
  if (!Buffer.isBuffer(data)) throw new TypeError('sha256Pieces takes a Buffer');
  if (!Number.isSafeInteger(pieceBytes) || pieceBytes < 1) throw new RangeError(`pieceBytes must be a positive integer, got ${pieceBytes}`);
  if (data.length === 0) return [];
  const all = await loadNative().sha256Async(data, pieceBytes);
  return Array.from({ length: all.length / 32 }, (_, i) => all.subarray(i * 32, i * 32 + 32));
}

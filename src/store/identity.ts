/**
 * Stable identities for stores that have none of their own (files, memory): a 16-byte NAA IEEE
 * Registered Extended designator (SPC-4 r37 7.8.6.6.4, NAA 6h) and a unit serial number (VPD 80h),
 * both hashed from a seed that names the backing object, so restarting the target keeps them.
 */
import crypto from 'node:crypto';
import { ArgumentError } from '../errors';

/**
 * The IEEE COMPANY ID in our NAA designators. The project owns no IEEE assignment, so this value
 * has the locally administered (X) bit of its first octet set and collides with no OUI; the
 * designators are therefore unique within a site, not worldwide. Replace it if one is assigned.
 */
export const XCOPY_AGENT_COMPANY_ID = 0x2a7863;

function digest(seed: string | Buffer): Buffer {
  return crypto.createHash('sha256').update('xcopy-agent store identity\0').update(seed).digest();
}

/**
 * NAA 6h layout (SPC-4 r37 7.8.6.6.4): NAA (4 bits) | IEEE COMPANY ID (24) | VENDOR SPECIFIC
 * IDENTIFIER (36) | VENDOR SPECIFIC IDENTIFIER EXTENSION (64). The 100 vendor bits come from the
 * seed's hash.
 */
export function naaFromSeed(seed: string | Buffer): Buffer {
  const h = digest(seed);
  const out = Buffer.alloc(16);
  const cid = XCOPY_AGENT_COMPANY_ID;
  out[0] = 0x60 | ((cid >> 20) & 0x0f);
  out[1] = (cid >> 12) & 0xff;
  out[2] = (cid >> 4) & 0xff;
  out[3] = ((cid & 0x0f) << 4) | (h[0] & 0x0f);
  h.copy(out, 4, 1, 13);
  return out;
}

/** A 16-character upper-case hex serial (VPD 80h PRODUCT SERIAL NUMBER is ASCII). */
export function serialFromSeed(seed: string | Buffer): string {
  return digest(seed).subarray(16, 24).toString('hex').toUpperCase();
}

/** Throws unless `naa` is a 16-byte NAA 6h designator. */
export function checkNaa(naa: unknown, what = 'naa'): Buffer {
  if (!Buffer.isBuffer(naa) || naa.length !== 16 || naa[0] >> 4 !== 6) {
    throw new ArgumentError(`${what} must be a 16-byte NAA IEEE Registered Extended (6h) designator`);
  }
  return naa;
}

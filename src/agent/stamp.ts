/**
 * Self-describing blocks (blksnap's test method): each block carries its own LBA, a write
 * sequence number, a seed-derived fill and a checksum, so a block read back from anywhere tells
 * whether it is the right block, from the right write, and intact.
 *
 * Layout of a stamped block (big-endian): 0-7 magic "XCSTAMP1", 8-15 LBA, 16-23 sequence,
 * 24-27 CRC-32 of bytes 0-23 and 28-end, 28-end deterministic fill from (LBA, sequence).
 */
import zlib from 'node:zlib';

const MAGIC = Buffer.from('XCSTAMP1');

function crcOf(block: Buffer): number {
  return zlib.crc32(block.subarray(28), zlib.crc32(block.subarray(0, 24)));
}

/** Stamps `count` blocks of `blockSize` starting at `lba` into a new Buffer. */
export function stampBlocks(lba: bigint, count: number, blockSize: number, sequence: bigint): Buffer {
  const out = Buffer.alloc(count * blockSize);
  for (let i = 0; i < count; i++) {
    const b = out.subarray(i * blockSize, (i + 1) * blockSize);
    MAGIC.copy(b, 0);
    b.writeBigUInt64BE(lba + BigInt(i), 8);
    b.writeBigUInt64BE(sequence, 16);
    // xorshift fill seeded by LBA and sequence
    let x = Number((lba + BigInt(i)) & 0xffffffffn) ^ Number(sequence & 0xffffffffn) ^ 0x9e3779b9;
    for (let o = 28; o + 4 <= blockSize; o += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b.writeInt32BE(x | 0, o);
    }
    b.writeUInt32BE(crcOf(b), 24);
  }
  return out;
}

export interface StampCheck {
  ok: boolean;
  lba?: bigint;
  sequence?: bigint;
  why?: string;
}

/** Checks one block that should be the stamp of `expectedLba` (any sequence unless given). */
export function checkBlock(block: Buffer, expectedLba: bigint, expectedSequence?: bigint): StampCheck {
  if (block.length < 32 || !block.subarray(0, 8).equals(MAGIC)) return { ok: false, why: 'no stamp' };
  const lba = block.readBigUInt64BE(8);
  const sequence = block.readBigUInt64BE(16);
  if (block.readUInt32BE(24) !== crcOf(block)) return { ok: false, lba, sequence, why: 'checksum mismatch' };
  if (lba !== expectedLba) return { ok: false, lba, sequence, why: `block of LBA ${lba} found at LBA ${expectedLba}` };
  if (expectedSequence !== undefined && sequence !== expectedSequence) {
    return { ok: false, lba, sequence, why: `sequence ${sequence}, expected ${expectedSequence}` };
  }
  return { ok: true, lba, sequence };
}

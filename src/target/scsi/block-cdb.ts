/**
 * What every block command handler shares: the decoder of the block-addressed CDB layouts
 * (decodeBlockCdb, from src/scsi/cdb.ts: the 6-, 10-, 12- and 16-byte forms of READ, WRITE,
 * VERIFY, WRITE AND VERIFY, ORWRITE, PRE-FETCH, SYNCHRONIZE CACHE, WRITE SAME) and the one LBA
 * range check (SBC-3 r36 4.5). Parse here, execute in the handler: a handler receives numbers it
 * can trust.
 */
import type { LogicalUnit } from './logical-unit';
import { Sense, SenseError, invalidCdbField } from './sense-errors';

// The decoder itself is src/scsi's, shared with the agent's encoders; re-exported for handlers.
export { decodeBlockCdb, type BlockCdb } from '../../scsi/cdb';

/**
 * SBC-3 r36 4.5: the range [lba, lba + count) must lie inside the medium, else ILLEGAL REQUEST,
 * LOGICAL BLOCK ADDRESS OUT OF RANGE. A count of 0 is checked too (an LBA past the end with no
 * blocks is still out of range; the LBA just past the last one is not, as in LIO and tgt).
 */
export function checkLbaRange(lu: LogicalUnit, lba: bigint, count: bigint | number): void {
  if (lba < 0n || lba + BigInt(count) > lu.store.blocks) {
    throw new SenseError(
      Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE,
      {},
      `LBA ${lba} + ${count} blocks is outside the medium (${lu.store.blocks} blocks)`,
    );
  }
}

/**
 * SBC-3 r36 6.6.4: a TRANSFER LENGTH above MAXIMUM TRANSFER LENGTH of the Block Limits page is
 * INVALID FIELD IN CDB, pointing at the count field.
 */
export function checkTransferLength(lu: LogicalUnit, count: number, countByte: number): void {
  if (count > lu.limits.maxTransferBlocks) {
    throw invalidCdbField(
      countByte,
      undefined,
      `TRANSFER LENGTH ${count} exceeds MAXIMUM TRANSFER LENGTH ${lu.limits.maxTransferBlocks}`,
    );
  }
}

/**
 * The Data-Out blocks of a write of `count` blocks. iSCSI may carry a different amount than the
 * CDB asks for (EDTL ≠ TRANSFER LENGTH × block size, RFC 7143 11.4.5): like tgt and LIO we
 * write only the whole blocks both agree on — min(count, received blocks) — and the transport
 * reports the residual. Data that ends inside a block is refused whole (nothing is written):
 * INVALID FIELD IN COMMAND INFORMATION UNIT (SPC-4 r37 Annex D 0Eh/03h).
 */
export function dataOutBlocks(lu: LogicalUnit, dataOut: Buffer | undefined, count: number): Buffer {
  const bs = lu.blockSize;
  const want = count * bs;
  const got = dataOut?.length ?? 0;
  if (got >= want) return dataOut === undefined ? Buffer.alloc(0) : dataOut.subarray(0, want);
  if (got % bs !== 0) {
    const err = new SenseError(
      Sense.INVALID_FIELD_IN_COMMAND_INFORMATION_UNIT,
      {},
      `Data-Out of ${got} bytes ends inside a ${bs}-byte block (${want} bytes expected)`,
    );
    err.dataOutLength = want;
    throw err;
  }
  return dataOut === undefined ? Buffer.alloc(0) : dataOut.subarray(0, got);
}

/** Largest buffer handlers build at once when they walk a long range (WRITE SAME, VERIFY). */
export const CHUNK_BYTES = 1024 * 1024;

/** [lba, lba + count) cut into pieces of at most `CHUNK_BYTES` (whole blocks). */
export function* chunks(lba: bigint, count: bigint, blockSize: number): Generator<[bigint, number]> {
  const per = BigInt(Math.max(1, Math.floor(CHUNK_BYTES / blockSize)));
  let at = lba;
  const end = lba + count;
  while (at < end) {
    const n = end - at < per ? end - at : per;
    yield [at, Number(n)];
    at += n;
  }
}

/** Offset of the first byte where `a` and `b` differ (over `a`'s length), or -1. */
export function firstMismatch(a: Buffer, b: Buffer): number {
  if (a.equals(b)) return -1;
  // Narrow down in 4 KiB steps, then byte by byte.
  const step = 4096;
  for (let off = 0; off < a.length; off += step) {
    const end = Math.min(a.length, off + step);
    if (a.compare(b, off, end, off, end) !== 0) {
      for (let i = off; i < end; i++) if (a[i] !== b[i]) return i;
    }
  }
  return -1;
}

/**
 * SBC-3 r36 5.2 (COMPARE AND WRITE) and VERIFY: MISCOMPARE, MISCOMPARE DURING VERIFY OPERATION, with INFORMATION set to the
 * offset (in bytes, from the start of the compared Data-Out) of the first byte that differs.
 */
export function miscompare(offset: number): SenseError {
  return new SenseError(Sense.MISCOMPARE_DURING_VERIFY_OPERATION, { information: BigInt(offset) });
}

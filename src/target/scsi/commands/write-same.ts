/**
 * WRITE SAME(10) and (16) (SBC-3). One block of Data-Out is written to every block of the range
 * (in chunks, under the range lock). NUMBER OF LOGICAL BLOCKS 0 means "to the end of the
 * medium" (WSNZ = 0 in the Block Limits page); more than MAXIMUM WRITE SAME LENGTH blocks is
 * INVALID FIELD IN CDB.
 *
 * - UNMAP = 1 (thin logical units only; refused by the CDB usage data otherwise): the range is
 *   deallocated (SBC-3: the device server unmaps the LBAs, and writes the data only if it cannot
 *   unmap); deallocated blocks then read back zeros (LBPRZ = 1), as LIO and tgt do and libiscsi's
 *   WriteSame*.UnmapUntilEnd expects even when the Data-Out block is not zeros.
 * - NDOB = 1 (WRITE SAME(16)): there is no Data-Out; the block is all zeros.
 * - ANCHOR = 1 is refused (ANC_SUP = 0), and so are the obsolete PBDATA/LBDATA bits and
 *   WRPROTECT ≠ 0 — all by the CDB usage data.
 * - Without NDOB the Data-Out must be exactly one block: anything else is INVALID FIELD IN
 *   COMMAND INFORMATION UNIT (the CDB and the EDTL disagree).
 */
import { ScsiStatus } from '../../../scsi/constants';
import { CHUNK_BYTES, checkLbaRange, decodeBlockCdb } from '../block-cdb';
import type { CommandContext, CommandResult, Handler } from '../command';
import { Sense, SenseError, StatusError, invalidCdbField } from '../sense-errors';
import { requestAborted } from '../types';

function writeSameHandler(cdbLength: 10 | 16): Handler {
  return async (ctx: CommandContext): Promise<CommandResult> => {
    const { lu } = ctx;
    const bs = lu.blockSize;
    const c = decodeBlockCdb(ctx.cdb, cdbLength);
    const unmap = (c.flags & 0x08) !== 0;
    const ndob = cdbLength === 16 && (c.flags & 0x01) !== 0;
    checkLbaRange(lu, c.lba, c.count);
    const count = c.count === 0 ? lu.store.blocks - c.lba : BigInt(c.count);
    if (count > BigInt(lu.limits.maxWriteSameBlocks)) {
      throw invalidCdbField(c.countByte, 7, `${count} blocks exceed MAXIMUM WRITE SAME LENGTH ${lu.limits.maxWriteSameBlocks}`);
    }
    lu.assertWritable(ctx.req);
    let block: Buffer;
    if (ndob) {
      block = Buffer.alloc(bs);
    } else {
      const got = ctx.req.dataOut?.length ?? 0;
      if (got !== bs) {
        throw new SenseError(Sense.INVALID_FIELD_IN_COMMAND_INFORMATION_UNIT, {}, `WRITE SAME needs one ${bs}-byte block of Data-Out, got ${got} bytes`);
      }
      block = (ctx.req.dataOut as Buffer).subarray(0, bs);
    }
    const dataOutLength = ndob ? 0 : bs;
    if (count === 0n) return { dataOutLength };
    await lu.locks.with(c.lba, count, async () => {
      if (unmap) {
        await lu.store.unmap(c.lba, count);
        return;
      }
      const perChunk = BigInt(Math.max(1, Math.floor(CHUNK_BYTES / bs)));
      const chunkBlocks = count < perChunk ? count : perChunk;
      const pattern = Buffer.alloc(Number(chunkBlocks) * bs);
      for (let off = 0; off < pattern.length; off += bs) block.copy(pattern, off);
      const fua = lu.forceUnitAccess(false);
      for (let at = c.lba, left = count; left > 0n; ) {
        if (requestAborted(ctx.req)) throw new StatusError(ScsiStatus.TASK_ABORTED);
        const n = left < chunkBlocks ? left : chunkBlocks;
        await lu.store.write(at, pattern.subarray(0, Number(n) * bs), { fua });
        at += n;
        left -= n;
      }
    });
    return { dataOutLength };
  };
}

export const writeSame10 = writeSameHandler(10);
export const writeSame16 = writeSameHandler(16);

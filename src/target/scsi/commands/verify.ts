/**
 * VERIFY(10/12/16) (SBC-3 r36 5.29–5.31). BYTCHK (byte 1 bits 2:1):
 * - 00b: verify the medium — every block of the range must read back (read in chunks, so any
 *   VERIFICATION LENGTH is fine); Data-Out, if an initiator sends some, is ignored;
 * - 01b: compare the Data-Out with the blocks (MISCOMPARE, INFORMATION = offset of the first
 *   byte that differs);
 * - 10b: reserved (INVALID FIELD IN CDB);
 * - 11b: compare one block of Data-Out with every block of the range.
 * VRPROTECT ≠ 0 is refused by the CDB usage data; DPO is accepted (a cache hint).
 */
import { chunks, checkLbaRange, checkTransferLength, dataOutBlocks, decodeBlockCdb, firstMismatch, miscompare } from '../block-cdb';
import type { CommandContext, CommandResult, Handler } from '../command';
import { ScsiStatus } from '../../../scsi/constants';
import { StatusError, invalidCdbField } from '../sense-errors';
import { requestAborted } from '../types';

function verifyHandler(cdbLength: 10 | 12 | 16): Handler {
  return async (ctx: CommandContext): Promise<CommandResult> => {
    const { lu } = ctx;
    const bs = lu.blockSize;
    const c = decodeBlockCdb(ctx.cdb, cdbLength);
    const bytchk = (c.flags >> 1) & 0x03;
    if (bytchk === 2) throw invalidCdbField(1, 2, 'BYTCHK 10b is reserved');
    checkLbaRange(lu, c.lba, c.count);
    if (bytchk === 0) {
      for (const [lba, n] of chunks(c.lba, BigInt(c.count), bs)) {
        if (requestAborted(ctx.req)) throw new StatusError(ScsiStatus.TASK_ABORTED);
        await lu.store.read(lba, n);
      }
      return {};
    }
    if (bytchk === 1) {
      checkTransferLength(lu, c.count, c.countByte);
      const data = dataOutBlocks(lu, ctx.req.dataOut, c.count);
      const blocks = data.length / bs;
      if (blocks > 0) {
        const at = firstMismatch(data, await lu.store.read(c.lba, blocks));
        if (at >= 0) throw miscompare(at);
      }
      return { dataOutLength: c.count * bs };
    }
    // BYTCHK 11b: one block of Data-Out against each block of the range.
    const pattern = dataOutBlocks(lu, ctx.req.dataOut, Math.min(c.count, 1));
    if (pattern.length === 0) return { dataOutLength: c.count > 0 ? bs : 0 };
    for (const [lba, n] of chunks(c.lba, BigInt(c.count), bs)) {
      if (requestAborted(ctx.req)) throw new StatusError(ScsiStatus.TASK_ABORTED);
      const got = await lu.store.read(lba, n);
      for (let i = 0; i < n; i++) {
        const at = firstMismatch(pattern, got.subarray(i * bs, (i + 1) * bs));
        if (at >= 0) throw miscompare(at);
      }
    }
    return { dataOutLength: bs };
  };
}

export const verify10 = verifyHandler(10);
export const verify12 = verifyHandler(12);
export const verify16 = verifyHandler(16);

/**
 * ORWRITE(16) (SBC-3): each block of the range becomes the bitwise OR of its old contents
 * and the Data-Out. Read, OR and write happen under the range lock, so no other write through
 * this logical unit lands in between. FUA/DPO as for WRITE(16); ORPROTECT ≠ 0 refused by the
 * CDB usage data.
 */
import { checkLbaRange, checkTransferLength, dataOutBlocks, decodeBlockCdb } from '../block-cdb';
import type { CommandContext, CommandResult } from '../command';

export async function orwrite16(ctx: CommandContext): Promise<CommandResult> {
  const { lu } = ctx;
  const c = decodeBlockCdb(ctx.cdb, 16);
  checkLbaRange(lu, c.lba, c.count);
  checkTransferLength(lu, c.count, c.countByte);
  lu.assertWritable(ctx.req);
  const data = dataOutBlocks(lu, ctx.req.dataOut, c.count);
  const blocks = data.length / lu.blockSize;
  if (blocks > 0) {
    const fua = lu.forceUnitAccess((c.flags & 0x08) !== 0);
    await lu.locks.with(c.lba, BigInt(blocks), async () => {
      const merged = await lu.store.read(c.lba, blocks);
      for (let i = 0; i < merged.length; i++) merged[i] |= data[i];
      await lu.store.write(c.lba, merged, { fua });
    });
  }
  return { dataOutLength: c.count * lu.blockSize };
}

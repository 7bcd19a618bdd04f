/**
 * WRITE(6), WRITE(10), WRITE(12), WRITE(16) (SBC-3 r36 5.32–5.35). FUA (byte 1 bit 3) makes the
 * store write durable before GOOD (store.write with fua, i.e. write then flush); so does a
 * disabled write cache (caching mode page WCE = 0). DPO and FUA_NV are accepted and have no
 * further effect. WRPROTECT ≠ 0 is refused by the CDB usage data. A TRANSFER LENGTH of 0
 * writes nothing; in WRITE(6) it means 256 blocks. When the Data-Out carries fewer whole
 * blocks than the CDB asks for, only those are written (see dataOutBlocks).
 */
import { checkLbaRange, checkTransferLength, dataOutBlocks, decodeBlockCdb } from '../block-cdb';
import type { CommandContext, CommandResult, Handler } from '../command';

function writeHandler(cdbLength: 6 | 10 | 12 | 16): Handler {
  return async (ctx: CommandContext): Promise<CommandResult> => {
    const { lu } = ctx;
    const c = decodeBlockCdb(ctx.cdb, cdbLength, cdbLength === 6);
    checkLbaRange(lu, c.lba, c.count);
    checkTransferLength(lu, c.count, c.countByte);
    lu.assertWritable(ctx.req);
    const data = dataOutBlocks(lu, ctx.req.dataOut, c.count);
    await lu.writeBlocks(c.lba, data, (c.flags & 0x08) !== 0);
    return { dataOutLength: c.count * lu.blockSize };
  };
}

export const write6 = writeHandler(6);
export const write10 = writeHandler(10);
export const write12 = writeHandler(12);
export const write16 = writeHandler(16);

/**
 * WRITE AND VERIFY(10), (12), (16) (SBC-3): write, make it durable, then verify the
 * medium. BYTCHK (byte 1 bits 2:1) 00b: verify that the blocks read back; 01b: also compare
 * them with the Data-Out (MISCOMPARE with the offset of the first difference); 10b and 11b are
 * not defined for WRITE AND VERIFY (INVALID FIELD IN CDB). The write and the check hold the
 * range lock together, so no other write slips in between.
 */
import { checkLbaRange, checkTransferLength, dataOutBlocks, decodeBlockCdb, firstMismatch, miscompare } from '../block-cdb';
import type { CommandContext, CommandResult, Handler } from '../command';
import { invalidCdbField } from '../sense-errors';

function writeAndVerifyHandler(cdbLength: 10 | 12 | 16): Handler {
  return async (ctx: CommandContext): Promise<CommandResult> => {
    const { lu } = ctx;
    const c = decodeBlockCdb(ctx.cdb, cdbLength);
    const bytchk = (c.flags >> 1) & 0x03;
    if (bytchk > 1) throw invalidCdbField(1, 2, `BYTCHK ${bytchk} is not defined for WRITE AND VERIFY`);
    checkLbaRange(lu, c.lba, c.count);
    checkTransferLength(lu, c.count, c.countByte);
    lu.assertWritable(ctx.req);
    const data = dataOutBlocks(lu, ctx.req.dataOut, c.count);
    const blocks = data.length / lu.blockSize;
    if (blocks > 0) {
      await lu.locks.with(c.lba, BigInt(blocks), async () => {
        await lu.store.write(c.lba, data, { fua: true });
        const back = await lu.store.read(c.lba, blocks);
        if (bytchk === 1) {
          const at = firstMismatch(data, back);
          if (at >= 0) throw miscompare(at);
        }
      });
    }
    return { dataOutLength: c.count * lu.blockSize };
  };
}

export const writeAndVerify10 = writeAndVerifyHandler(10);
export const writeAndVerify12 = writeAndVerifyHandler(12);
export const writeAndVerify16 = writeAndVerifyHandler(16);

/**
 * SYNCHRONIZE CACHE(10) and (16) (SBC-3 r36 5.26, 5.27): the range is checked (LBA OUT OF RANGE;
 * NUMBER OF LOGICAL BLOCKS 0 means "to the end of the medium"), then every completed write is
 * made durable — the store flushes as a whole (fdatasync), which covers any range. IMMED = 1
 * allows GOOD before the flush completes; we answer after it either way. SYNC_NV is obsolete
 * and ignored.
 */
import { checkLbaRange, decodeBlockCdb } from '../block-cdb';
import type { CommandContext, CommandResult, Handler } from '../command';

function synchronizeCacheHandler(cdbLength: 10 | 16): Handler {
  return async (ctx: CommandContext): Promise<CommandResult> => {
    const c = decodeBlockCdb(ctx.cdb, cdbLength);
    checkLbaRange(ctx.lu, c.lba, c.count);
    await ctx.lu.store.flush();
    return {};
  };
}

export const synchronizeCache10 = synchronizeCacheHandler(10);
export const synchronizeCache16 = synchronizeCacheHandler(16);

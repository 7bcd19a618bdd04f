/**
 * PRE-FETCH(10) and (16) (SBC-3). This device server has no cache to load blocks into:
 * SBC-3 answers that case — "the cache does not have sufficient capacity to accept
 * all of the specified logical blocks" — with GOOD (CONDITION MET would claim the blocks are
 * now cached), whatever IMMED says. The range is still checked (LBA OUT OF RANGE). GROUP
 * NUMBER is accepted and ignored.
 */
import { checkLbaRange, decodeBlockCdb } from '../block-cdb';
import type { CommandContext, CommandResult, Handler } from '../command';

function preFetchHandler(cdbLength: 10 | 16): Handler {
  return async (ctx: CommandContext): Promise<CommandResult> => {
    const c = decodeBlockCdb(ctx.cdb, cdbLength);
    checkLbaRange(ctx.lu, c.lba, c.count);
    return {};
  };
}

export const preFetch10 = preFetchHandler(10);
export const preFetch16 = preFetchHandler(16);

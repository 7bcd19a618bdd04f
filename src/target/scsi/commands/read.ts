/**
 * READ(6), READ(10), READ(12), READ(16) (SBC-3 r36 5.10–5.13), through the one block CDB decoder
 * and the one range check. DPO and FUA are accepted (the DPOFUA bit of the mode parameter
 * header is set): every read comes from the store, so FUA (read from the medium) holds by
 * construction and DPO (a cache retention hint) has nothing to act on. RDPROTECT ≠ 0 is
 * refused by the CDB usage data (no protection information). A TRANSFER LENGTH of 0 is not an
 * error (no data); in READ(6) it means 256 blocks.
 */
import { checkLbaRange, checkTransferLength, decodeBlockCdb } from '../block-cdb';
import type { CommandContext, CommandResult, Handler } from '../command';

function readHandler(cdbLength: 6 | 10 | 12 | 16): Handler {
  return async (ctx: CommandContext): Promise<CommandResult> => {
    const { lu } = ctx;
    const c = decodeBlockCdb(ctx.cdb, cdbLength, cdbLength === 6);
    checkLbaRange(lu, c.lba, c.count);
    checkTransferLength(lu, c.count, c.countByte);
    if (c.count === 0) return {};
    return { data: await lu.store.read(c.lba, c.count) };
  };
}

export const read6 = readHandler(6);
export const read10 = readHandler(10);
export const read12 = readHandler(12);
export const read16 = readHandler(16);

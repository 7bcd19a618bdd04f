/**
 * WRITE ATOMIC(16) (SBC-4, opcode 9Ch): the blocks are written all or nothing. Offered only
 * where the store applies one write in one step (LogicalUnit.atomicWrite); the range lock keeps
 * other writes through this logical unit from interleaving. The Block Limits page reports no
 * alignment or granularity constraint and no atomic boundary (ATOMIC BOUNDARY, bytes 10–11, must
 * be zero: refused by the CDB usage data). TRANSFER LENGTH (bytes 12–13) above MAXIMUM ATOMIC
 * TRANSFER LENGTH is INVALID FIELD IN CDB. A Data-Out shorter than the transfer length cannot be
 * written atomically: INVALID FIELD IN COMMAND INFORMATION UNIT, nothing written.
 */
import { checkLbaRange } from '../block-cdb';
import type { CommandContext, CommandResult } from '../command';
import { Sense, SenseError, invalidCdbField } from '../sense-errors';

export async function writeAtomic16(ctx: CommandContext): Promise<CommandResult> {
  const { lu, cdb } = ctx;
  const bs = lu.blockSize;
  const lba = cdb.readBigUInt64BE(2);
  const count = cdb.readUInt16BE(12);
  checkLbaRange(lu, lba, count);
  if (count > lu.limits.maxAtomicTransferBlocks) {
    throw invalidCdbField(12, 7, `TRANSFER LENGTH ${count} exceeds MAXIMUM ATOMIC TRANSFER LENGTH ${lu.limits.maxAtomicTransferBlocks}`);
  }
  lu.assertWritable(ctx.req);
  if (count === 0) return { dataOutLength: 0 };
  const want = count * bs;
  const got = ctx.req.dataOut?.length ?? 0;
  if (got < want) {
    throw new SenseError(Sense.INVALID_FIELD_IN_COMMAND_INFORMATION_UNIT, {}, `Data-Out is ${got} bytes, ${want} needed for an atomic write`);
  }
  await lu.writeBlocks(lba, (ctx.req.dataOut as Buffer).subarray(0, want), (cdb[1] & 0x08) !== 0);
  return { dataOutLength: want };
}

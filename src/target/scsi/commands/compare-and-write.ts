/**
 * COMPARE AND WRITE (SBC-3 r36 5.2). The Data-Out holds NUMBER OF LOGICAL BLOCKS blocks of verify
 * data followed by as many blocks of write data. Under the range lock (atomic with respect to
 * every other write through this logical unit): read the blocks, compare them with the verify
 * data — on a difference, MISCOMPARE DURING VERIFY OPERATION with INFORMATION = the offset of
 * the first differing byte, and nothing is written — else write the write data (FUA honoured).
 *
 * Checks, in order: the LBA range; NUMBER OF LOGICAL BLOCKS ≤ MAXIMUM COMPARE AND WRITE LENGTH
 * (INVALID FIELD IN CDB, byte 13); write protection; the Data-Out must be exactly
 * 2 × NUMBER OF LOGICAL BLOCKS blocks — a disagreement between the CDB and the EDTL cannot be
 * resolved for this command (which half would be short?), so it is INVALID FIELD IN CDB too.
 */
import { checkLbaRange, firstMismatch, miscompare } from '../block-cdb';
import type { CommandContext, CommandResult } from '../command';
import { invalidCdbField } from '../sense-errors';

export async function compareAndWrite(ctx: CommandContext): Promise<CommandResult> {
  const { lu, cdb } = ctx;
  const bs = lu.blockSize;
  const lba = cdb.readBigUInt64BE(2);
  const nlb = cdb[13];
  const fua = (cdb[1] & 0x08) !== 0;
  checkLbaRange(lu, lba, nlb);
  if (nlb > lu.limits.maxCompareAndWriteBlocks) {
    throw invalidCdbField(13, 7, `NUMBER OF LOGICAL BLOCKS ${nlb} exceeds MAXIMUM COMPARE AND WRITE LENGTH ${lu.limits.maxCompareAndWriteBlocks}`);
  }
  lu.assertWritable(ctx.req);
  const want = 2 * nlb * bs;
  const got = ctx.req.dataOut?.length ?? 0;
  if (got !== want) throw invalidCdbField(13, 7, `Data-Out is ${got} bytes, NUMBER OF LOGICAL BLOCKS ${nlb} needs ${want}`);
  if (nlb === 0) return { dataOutLength: 0 };
  const dataOut = ctx.req.dataOut as Buffer;
  const verifyData = dataOut.subarray(0, nlb * bs);
  const writeData = dataOut.subarray(nlb * bs, want);
  await lu.locks.with(lba, BigInt(nlb), async () => {
    const current = await lu.store.read(lba, nlb);
    const at = firstMismatch(verifyData, current);
    if (at >= 0) throw miscompare(at);
    await lu.store.write(lba, writeData, { fua: lu.forceUnitAccess(fua) });
  });
  return { dataOutLength: want };
}

/**
 * UNMAP (SBC-3). Thin logical units only (LBPU = 1; the opcode is absent otherwise). The
 * parameter list: UNMAP DATA LENGTH (bytes 0–1), UNMAP BLOCK DESCRIPTOR DATA LENGTH (2–3), then
 * 16-byte descriptors (LBA 0–7, NUMBER OF LOGICAL BLOCKS 8–11). Checks, all before anything is
 * deallocated:
 * - ANCHOR = 1: refused (ANC_SUP = 0) by the CDB usage data;
 * - PARAMETER LIST LENGTH 0: nothing to do, GOOD; 1–7: PARAMETER LIST LENGTH ERROR;
 * - Data-Out shorter than the PARAMETER LIST LENGTH, or a BLOCK DESCRIPTOR DATA LENGTH running
 *   past it: PARAMETER LIST LENGTH ERROR; a trailing partial descriptor is ignored (SBC-3);
 * - more descriptors than MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT, or more blocks in all than
 *   MAXIMUM UNMAP LBA COUNT: INVALID FIELD IN PARAMETER LIST (pointing at the field);
 * - a descriptor outside the medium: LOGICAL BLOCK ADDRESS OUT OF RANGE;
 * - write protection: DATA PROTECT.
 */
import type { CommandContext, CommandResult } from '../command';
import { checkLbaRange } from '../block-cdb';
import { Sense, SenseError, invalidParameterField } from '../sense-errors';

export async function unmap(ctx: CommandContext): Promise<CommandResult> {
  const { lu, cdb } = ctx;
  const parameterListLength = cdb.readUInt16BE(7);
  lu.assertWritable(ctx.req);
  if (parameterListLength === 0) return { dataOutLength: 0 };
  const data = ctx.req.dataOut ?? Buffer.alloc(0);
  if (parameterListLength < 8 || data.length < parameterListLength) {
    throw new SenseError(Sense.PARAMETER_LIST_LENGTH_ERROR, {}, `UNMAP parameter list of ${Math.min(data.length, parameterListLength)} bytes (PARAMETER LIST LENGTH ${parameterListLength})`);
  }
  const list = data.subarray(0, parameterListLength);
  const descriptorBytes = list.readUInt16BE(2);
  if (8 + descriptorBytes > list.length) {
    throw new SenseError(Sense.PARAMETER_LIST_LENGTH_ERROR, {}, `UNMAP BLOCK DESCRIPTOR DATA LENGTH ${descriptorBytes} runs past the parameter list`);
  }
  const n = Math.floor(descriptorBytes / 16);
  if (n > lu.limits.maxUnmapDescriptors) {
    throw invalidParameterField(2, 7, `${n} block descriptors exceed MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT ${lu.limits.maxUnmapDescriptors}`);
  }
  const ranges: Array<[bigint, bigint]> = [];
  let total = 0n;
  for (let i = 0; i < n; i++) {
    const off = 8 + 16 * i;
    const lba = list.readBigUInt64BE(off);
    const count = BigInt(list.readUInt32BE(off + 8));
    total += count;
    if (total > BigInt(lu.limits.maxUnmapLbaCount)) {
      throw invalidParameterField(off + 8, 7, `more than MAXIMUM UNMAP LBA COUNT ${lu.limits.maxUnmapLbaCount} blocks`);
    }
    checkLbaRange(lu, lba, count);
    if (count > 0n) ranges.push([lba, count]);
  }
  for (const [lba, count] of ranges) await lu.locks.with(lba, count, () => lu.store.unmap(lba, count));
  return { dataOutLength: parameterListLength };
}

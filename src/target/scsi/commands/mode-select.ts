/**
 * MODE SELECT(6) and (10) (SPC-4). The parameter list is checked whole before any
 * value changes:
 * - SP = 1 (save): nothing can be saved — INVALID FIELD IN CDB;
 * - PF = 0 with a non-empty list: only the page format is implemented — INVALID FIELD IN CDB;
 * - a list shorter than its header, block descriptors or pages claim, or a Data-Out shorter
 *   than the PARAMETER LIST LENGTH: PARAMETER LIST LENGTH ERROR;
 * - MEDIUM TYPE ≠ 0, a BLOCK DESCRIPTOR LENGTH other than 0 or one descriptor (8, or 16 with
 *   LONGLBA), a descriptor that changes the block count or length, an unknown page, a wrong
 *   PAGE LENGTH, or a change to a bit that is not changeable: INVALID FIELD IN PARAMETER LIST,
 *   with the field pointer (byte and bit) in the sense key specific field.
 * The DEVICE-SPECIFIC PARAMETER is ignored (SBC-3 r36 6.4.1: WP and DPOFUA are reserved in MODE
 * SELECT), and so is the PS bit of each page. When a value changed, every other I_T nexus gets
 * MODE PARAMETERS CHANGED (SPC-4).
 */
import type { CommandContext, CommandResult, Handler } from '../command';
import type { LogicalUnit } from '../logical-unit';
import { Sense, SenseError, invalidCdbField, invalidParameterField } from '../sense-errors';

function lengthError(why: string): SenseError {
  return new SenseError(Sense.PARAMETER_LIST_LENGTH_ERROR, {}, why);
}

/** SBC-3 r36 6.4.2: a block descriptor may restate the capacity and block length, not change them. */
function checkBlockDescriptor(lu: LogicalUnit, d: Buffer, offset: number, long: boolean): void {
  const blocks = long ? d.readBigUInt64BE(0) : BigInt(d.readUInt32BE(0));
  const length = long ? d.readUInt32BE(12) : d.readUIntBE(5, 3);
  const capacity = lu.store.blocks;
  const sameCount = blocks === 0n || blocks === capacity || (!long && blocks === 0xffff_ffffn && capacity > 0xffff_ffffn);
  if (!sameCount) throw invalidParameterField(offset, 7, 'NUMBER OF LOGICAL BLOCKS cannot be changed');
  if (length !== lu.blockSize) throw invalidParameterField(offset + (long ? 12 : 5), 7, `LOGICAL BLOCK LENGTH must be ${lu.blockSize}`);
}

function modeSelectHandler(ten: boolean): Handler {
  return async (ctx: CommandContext): Promise<CommandResult> => {
    const { lu, cdb } = ctx;
    const pf = (cdb[1] & 0x10) !== 0;
    const sp = (cdb[1] & 0x01) !== 0;
    const parameterListLength = ten ? cdb.readUInt16BE(7) : cdb[4];
    if (sp) throw invalidCdbField(1, 0, 'saving mode pages is not supported');
    if (parameterListLength === 0) return { dataOutLength: 0 };
    if (!pf) throw invalidCdbField(1, 4, 'only the page format (PF = 1) is supported');
    const data = ctx.req.dataOut ?? Buffer.alloc(0);
    if (data.length < parameterListLength) throw lengthError(`Data-Out of ${data.length} bytes, PARAMETER LIST LENGTH ${parameterListLength}`);
    const list = data.subarray(0, parameterListLength);
    const headerLength = ten ? 8 : 4;
    if (list.length < headerLength) throw lengthError('the parameter list is shorter than its header');
    const mediumTypeAt = ten ? 2 : 1;
    if (list[mediumTypeAt] !== 0) throw invalidParameterField(mediumTypeAt, 7, 'MEDIUM TYPE must be 0');
    const long = ten && (list[4] & 0x01) !== 0;
    const descriptorsAt = ten ? 6 : 3;
    const descriptorLength = ten ? list.readUInt16BE(6) : list[3];
    const one = long ? 16 : 8;
    if (descriptorLength !== 0 && descriptorLength !== one) {
      throw invalidParameterField(descriptorsAt, 7, `BLOCK DESCRIPTOR LENGTH must be 0 or ${one}`);
    }
    if (headerLength + descriptorLength > list.length) throw lengthError('the block descriptor runs past the parameter list');
    if (descriptorLength > 0) checkBlockDescriptor(lu, list.subarray(headerLength, headerLength + one), headerLength, long);
    const pages: Buffer[] = [];
    for (let off = headerLength + descriptorLength; off < list.length; ) {
      if (off + 2 > list.length) throw lengthError('a mode page header runs past the parameter list');
      const spf = (list[off] & 0x40) !== 0;
      const end = spf ? off + 4 + (off + 4 <= list.length ? list.readUInt16BE(off + 2) : 0) : off + 2 + list[off + 1];
      if (end > list.length) throw lengthError('a mode page runs past the parameter list');
      const page = list.subarray(off, end);
      lu.modes.validate(page, off);
      if (pages.some((p) => (p[0] & 0x3f) === (page[0] & 0x3f))) throw invalidParameterField(off, 5, 'the same mode page twice');
      pages.push(page);
      off = end;
    }
    let changed = false;
    for (const page of pages) changed = lu.modes.apply(page) || changed;
    if (changed) lu.unitAttention(Sense.MODE_PARAMETERS_CHANGED, undefined, ctx.nexus);
    return { dataOutLength: parameterListLength };
  };
}

export const modeSelect6 = modeSelectHandler(false);
export const modeSelect10 = modeSelectHandler(true);

/**
 * REPORT LUNS (SPC-4 r37 6.33): the LUNs of the initiator's view, in ascending order, cut to the
 * ALLOCATION LENGTH (bytes 6–9). SELECT REPORT 00h and 02h list the logical units (there are no
 * well-known logical units here), 01h lists the well-known ones (none); other values are
 * INVALID FIELD IN CDB. Sending REPORT LUNS clears the REPORTED LUNS DATA HAS CHANGED unit
 * attention of the I_T nexus on every logical unit of the view (SPC-4 r37 6.33: it has seen them).
 */
import { decodeReportLunsCdb } from '../../../scsi/cdb';
import { MAX_FLAT_SPACE_LUN, encodeReportLuns } from '../../../scsi/report-luns';
import type { CommandContext, CommandResult } from '../command';
import type { LogicalUnit } from '../logical-unit';
import { Sense, invalidCdbField } from '../sense-errors';
import type { ItNexus } from '../types';

/** The parameter data for a view (the LUN numbers an initiator may address). */
export function reportLunsData(cdb: Buffer, luns: Iterable<number>): Buffer {
  const { selectReport, allocationLength } = decodeReportLunsCdb(cdb);
  let list: number[];
  switch (selectReport) {
    case 0x00:
    case 0x02:
      list = [...luns].filter((n) => Number.isInteger(n) && n >= 0 && n <= MAX_FLAT_SPACE_LUN).sort((a, b) => a - b);
      break;
    case 0x01:
      list = [];
      break;
    default:
      throw invalidCdbField(2, 7, `SELECT REPORT ${selectReport.toString(16)}h is not supported`);
  }
  return encodeReportLuns({ luns: list }).subarray(0, allocationLength);
}

/** Clears REPORTED LUNS DATA HAS CHANGED for `nexus` on every logical unit of the view. */
export function clearReportedLunsChanged(view: Iterable<LogicalUnit>, nexus: ItNexus): void {
  for (const lu of view) lu.unitAttentions.clear(nexus.id, Sense.REPORTED_LUNS_DATA_HAS_CHANGED);
}

export async function reportLuns(ctx: CommandContext): Promise<CommandResult> {
  const view: ReadonlyMap<number, LogicalUnit> = ctx.view ?? new Map([[ctx.req.lun, ctx.lu]]);
  const data = reportLunsData(ctx.cdb, view.keys());
  clearReportedLunsChanged(view.values(), ctx.nexus);
  return { data };
}

/**
 * The entry point of the transport: a command for a LUN of an initiator's view (the LUNs its
 * ACL maps, by the numbers it sees). Commands for a mapped LUN go to its LogicalUnit (with the
 * view, for REPORT LUNS); for a LUN that is not in the view (SAM-5 "incorrect logical unit"), SPC-4 says:
 * - INQUIRY answers with PERIPHERAL QUALIFIER 011b and PERIPHERAL DEVICE TYPE 1Fh (SPC-4 r37 6.6.2);
 *   with EVPD = 1 only the Supported VPD Pages page exists there;
 * - REPORT LUNS answers as for any LUN: the view (SPC-4 r37 6.33, usually sent to LUN 0);
 * - REQUEST SENSE completes with GOOD and returns sense data ILLEGAL REQUEST, LOGICAL UNIT NOT
 *   SUPPORTED (SPC-4 r37 6.39);
 * - every other command ends in CHECK CONDITION, ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED.
 */
import { decodeInquiryCdb } from '../../scsi/cdb';
import { Opcode, ScsiStatus } from '../../scsi/constants';
import { encodeSupportedVpdPages } from '../../scsi/vpd';
import { NO_LU_PERIPHERAL, standardInquiryData } from './commands/inquiry';
import { reportLunsData } from './commands/report-luns';
import type { LogicalUnit } from './logical-unit';
import { Sense, SenseError, buildSense, invalidCdbField, replyOfError } from './sense-errors';
import type { ItNexus, ScsiReply, ScsiRequest } from './types';

/** What standard INQUIRY data says where there is no logical unit. */
export const NO_LU_IDENTITY = { vendor: 'XCOPYAGT', product: 'xcopy-agent', revision: '0001', thirdPartyCopy: false };

function absentLun(view: ReadonlyMap<number, LogicalUnit>, req: ScsiRequest): ScsiReply {
  const cdb = req.cdb;
  switch (cdb.length > 0 ? cdb[0] : -1) {
    case Opcode.INQUIRY: {
      if (cdb.length < 6) throw invalidCdbField(0, 7);
      const { evpd, pageCode, allocationLength } = decodeInquiryCdb(cdb);
      let data: Buffer;
      if (!evpd) {
        if (pageCode !== 0) throw invalidCdbField(2, 7, 'PAGE CODE must be zero when EVPD is zero');
        data = standardInquiryData(NO_LU_IDENTITY, NO_LU_PERIPHERAL);
      } else {
        if (pageCode !== 0x00) throw invalidCdbField(2, 7, 'only VPD page 00h exists where there is no logical unit');
        data = encodeSupportedVpdPages([0x00], NO_LU_PERIPHERAL);
      }
      return { status: ScsiStatus.GOOD, data: data.subarray(0, allocationLength) };
    }
    case Opcode.REPORT_LUNS:
      if (cdb.length < 12) throw invalidCdbField(0, 7);
      return { status: ScsiStatus.GOOD, data: reportLunsData(cdb, view.keys()) };
    case Opcode.REQUEST_SENSE: {
      if (cdb.length < 6) throw invalidCdbField(0, 7);
      const data = buildSense(Sense.LOGICAL_UNIT_NOT_SUPPORTED, {}, (cdb[1] & 0x01) !== 0);
      return { status: ScsiStatus.GOOD, data: data.subarray(0, cdb[4]) };
    }
    default:
      throw new SenseError(Sense.LOGICAL_UNIT_NOT_SUPPORTED, {}, `LUN ${req.lun} is not mapped for ${req.nexus.initiatorName}`);
  }
}

/**
 * Executes a command on a view: `view` maps the LUN numbers this initiator uses to logical units.
 * Never rejects.
 */
export async function executeOnView(view: ReadonlyMap<number, LogicalUnit>, req: ScsiRequest): Promise<ScsiReply> {
  const lu = view.get(req.lun);
  if (lu !== undefined) return lu.execute(req, view);
  try {
    return absentLun(view, req);
  } catch (err) {
    return replyOfError(err, false);
  }
}

/**
 * The LUN inventory of a view changed (a LUN was added or removed): every logical unit of the
 * view establishes REPORTED LUNS DATA HAS CHANGED (SPC-4 r37 6.33) for the given I_T nexuses, or for
 * every nexus it knows. REPORT LUNS clears it again.
 */
export function reportedLunsChanged(view: ReadonlyMap<number, LogicalUnit>, nexuses?: Iterable<ItNexus>): void {
  const targets = nexuses === undefined ? undefined : [...nexuses];
  for (const lu of view.values()) {
    if (targets === undefined) lu.unitAttention(Sense.REPORTED_LUNS_DATA_HAS_CHANGED);
    else for (const n of targets) lu.unitAttention(Sense.REPORTED_LUNS_DATA_HAS_CHANGED, n);
  }
}

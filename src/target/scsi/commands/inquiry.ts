/**
 * INQUIRY (SPC-4 r37 6.6). EVPD = 0: standard INQUIRY data (6.6.2); PAGE CODE must then be zero
 * (6.6.1: INVALID FIELD IN CDB). EVPD = 1: the VPD page named by PAGE CODE (7.8), from the
 * logical unit's VPD table (INVALID FIELD IN CDB for a page it does not have). The data is cut
 * to the ALLOCATION LENGTH (bytes 3–4, SPC-4 r37 4.2.5.6); the CMDDT bit (obsolete) is refused by
 * the CDB usage data.
 */
import { decodeInquiryCdb } from '../../../scsi/cdb';
import { encodeStandardInquiry } from '../../../scsi/inquiry';
import type { CommandContext, CommandResult } from '../command';
import type { LogicalUnit } from '../logical-unit';
import { invalidCdbField } from '../sense-errors';

/** Version descriptors (SPC-4 r37 6.6.2): SAM-5, iSCSI, SPC-4, SBC-3 — no particular revision. */
export const VERSION_DESCRIPTORS = [0x00a0, 0x0960, 0x0460, 0x04c0];

/** PERIPHERAL QUALIFIER 000b + PERIPHERAL DEVICE TYPE 00h: a direct-access block device is connected. */
export const DISK_PERIPHERAL = { peripheralQualifier: 0, peripheralDeviceType: 0x00 };
/** PERIPHERAL QUALIFIER 011b + PERIPHERAL DEVICE TYPE 1Fh: no logical unit at this LUN (SPC-4 r37 6.6.2). */
export const NO_LU_PERIPHERAL = { peripheralQualifier: 3, peripheralDeviceType: 0x1f };

/** Fields of standard INQUIRY data that are not per logical unit. */
export interface InquiryIdentity {
  vendor: string;
  product: string;
  revision: string;
  thirdPartyCopy: boolean;
}

/**
 * Standard INQUIRY data (SPC-4 r37 6.6.2): VERSION 06h (SPC-4), RESPONSE DATA FORMAT 2, HISUP = 1
 * (hierarchical LUNs), CMDQUE = 1 (full task management model), 3PC from the logical unit
 * (EXTENDED COPY available), the four version descriptors.
 */
export function standardInquiryData(
  id: InquiryIdentity,
  peripheral: { peripheralQualifier: number; peripheralDeviceType: number } = DISK_PERIPHERAL,
): Buffer {
  return encodeStandardInquiry({
    ...peripheral,
    version: 0x06,
    responseDataFormat: 2,
    hisup: true,
    cmdque: true,
    threePc: id.thirdPartyCopy,
    t10VendorIdentification: id.vendor,
    productIdentification: id.product,
    productRevisionLevel: id.revision,
    versionDescriptors: VERSION_DESCRIPTORS,
  });
}

/** The 3PC bit is generated from the opcode table: set only when EXTENDED COPY is in it too. */
export function inquiryIdentityOf(lu: LogicalUnit): InquiryIdentity {
  return {
    vendor: lu.vendor,
    product: lu.product,
    revision: lu.revision,
    thirdPartyCopy: lu.thirdPartyCopy && lu.opcodes.has(0x83),
  };
}

export async function inquiry(ctx: CommandContext): Promise<CommandResult> {
  const { lu } = ctx;
  const { evpd, pageCode, allocationLength } = decodeInquiryCdb(ctx.cdb);
  let data: Buffer;
  if (!evpd) {
    if (pageCode !== 0) throw invalidCdbField(2, 7, 'PAGE CODE must be zero when EVPD is zero');
    data = standardInquiryData(inquiryIdentityOf(lu));
  } else {
    const build = lu.vpdPages.get(pageCode);
    if (build === undefined) throw invalidCdbField(2, 7, `VPD page ${pageCode.toString(16)}h is not supported`);
    data = build(lu, ctx.nexus);
  }
  return { data: data.subarray(0, allocationLength) };
}

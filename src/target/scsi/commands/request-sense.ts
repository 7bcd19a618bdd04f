/**
 * REQUEST SENSE (SPC-4 r37 6.39). iSCSI always delivers sense with the status (autosense), so there
 * is never sense data left over from a failed command; what REQUEST SENSE returns is the oldest
 * pending unit attention of the I_T nexus — reported and cleared (SAM-5 r21 5.14) — or NO SENSE,
 * NO ADDITIONAL SENSE INFORMATION. DESC (byte 1 bit 0) selects descriptor format (4.5.2) over
 * fixed format (4.5.3); the data is cut to the ALLOCATION LENGTH (byte 4).
 */
import type { CommandContext, CommandResult } from '../command';
import { Sense, buildSense } from '../sense-errors';

export async function requestSense(ctx: CommandContext): Promise<CommandResult> {
  const descriptor = (ctx.cdb[1] & 0x01) !== 0;
  const allocationLength = ctx.cdb[4];
  const pending = ctx.lu.unitAttentions.take(ctx.nexus.id);
  const data = buildSense(pending ?? Sense.NO_ADDITIONAL_SENSE_INFORMATION, {}, descriptor);
  return { data: data.subarray(0, allocationLength) };
}

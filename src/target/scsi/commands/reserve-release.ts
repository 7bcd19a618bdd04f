/**
 * RESERVE(6), RESERVE(10), RELEASE(6), RELEASE(10) (SPC-2; SPC-4 r37 5.13 keeps them as compatible
 * reservation handling, CRH = 1). Logical unit reservations only: the obsolete
 * extent, third-party and LONGID forms are refused by the CDB usage data.
 *
 * - RESERVE from the holder, or of an unreserved logical unit: the nexus holds it (GOOD). From
 *   another nexus the dispatcher has already answered RESERVATION CONFLICT.
 * - RELEASE from the holder releases it; from any other nexus it is GOOD with no effect.
 * - While persistent reservation registrations exist (SPC-4 r37 5.13, CRH = 1): RESERVE from the
 *   persistent reservation holder is GOOD with no effect, from anyone else RESERVATION
 *   CONFLICT; RELEASE is GOOD with no effect.
 * The reservation ends with RELEASE, a LUN reset, a target reset or the loss of the I_T nexus.
 */
import { ScsiStatus } from '../../../scsi/constants';
import type { CommandContext, CommandResult } from '../command';
import { StatusError } from '../sense-errors';

export async function reserve(ctx: CommandContext): Promise<CommandResult> {
  const r = ctx.lu.reservations;
  const id = ctx.nexus.id;
  if (r.registrations.size > 0) {
    if (r.isHolder(id)) return {};
    throw new StatusError(ScsiStatus.RESERVATION_CONFLICT, 'RESERVE while persistent reservation registrations exist');
  }
  if (r.spc2Conflict(id)) throw new StatusError(ScsiStatus.RESERVATION_CONFLICT, 'reserved by another I_T nexus');
  r.spc2Holder = id;
  return {};
}

export async function release(ctx: CommandContext): Promise<CommandResult> {
  const r = ctx.lu.reservations;
  if (r.registrations.size === 0 && r.spc2Holder === ctx.nexus.id) r.spc2Holder = undefined;
  return {};
}

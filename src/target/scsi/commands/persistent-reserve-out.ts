/**
 * PERSISTENT RESERVE OUT (SPC-4; the model is SPC-4 r37 5.13): REGISTER (00h), RESERVE (01h),
 * RELEASE (02h), CLEAR (03h), PREEMPT (04h), PREEMPT AND ABORT (05h), REGISTER AND IGNORE
 * EXISTING KEY (06h). REGISTER AND MOVE (07h) is not implemented (INVALID FIELD IN CDB via the
 * opcode table).
 *
 * Parameter list (24 bytes): RESERVATION KEY (0–7), SERVICE ACTION RESERVATION
 * KEY (8–15), SPEC_I_PT / ALL_TG_PT / APTPL (byte 20 bits 3, 2, 0). PARAMETER LIST LENGTH must be
 * 24 (PARAMETER LIST LENGTH ERROR); SPEC_I_PT, ALL_TG_PT and APTPL are not supported (SIP_C =
 * ATP_C = PTPL_C = 0: INVALID FIELD IN PARAMETER LIST). RESERVE, RELEASE, PREEMPT and PREEMPT
 * AND ABORT need SCOPE = LU_SCOPE and a defined TYPE (INVALID FIELD IN CDB).
 *
 * Unit attentions to the other I_T nexuses: RESERVATIONS RELEASED when a Registrants Only or
 * All Registrants reservation is released, or a Registrants Only holder unregisters;
 * RESERVATIONS PREEMPTED after CLEAR; REGISTRATIONS PREEMPTED to every nexus whose registration a
 * PREEMPT removes. PREEMPT AND ABORT does what PREEMPT
 * does; the preempted nexuses' tasks are not aborted here (the transport owns the tasks).
 */
import { ScsiStatus } from '../../../scsi/constants';
import type { CommandContext, CommandResult } from '../command';
import type { LogicalUnit } from '../logical-unit';
import { LU_SCOPE, PR_TYPES, isAllRegistrants, isRegistrantsOnly } from '../reservations';
import { Sense, SenseError, StatusError, invalidCdbField, invalidParameterField } from '../sense-errors';
import type { ItNexus } from '../types';

/** Service actions of PERSISTENT RESERVE OUT (SPC-4). */
export const enum PrOutServiceAction {
  REGISTER = 0x00,
  RESERVE = 0x01,
  RELEASE = 0x02,
  CLEAR = 0x03,
  PREEMPT = 0x04,
  PREEMPT_AND_ABORT = 0x05,
  REGISTER_AND_IGNORE_EXISTING_KEY = 0x06,
}

const PARAMETER_LIST_LENGTH = 24;

interface Params {
  key: bigint;
  serviceActionKey: bigint;
  scope: number;
  type: number;
}

function conflict(why: string): StatusError {
  return new StatusError(ScsiStatus.RESERVATION_CONFLICT, why);
}

function parse(ctx: CommandContext, sa: number): Params {
  const { cdb } = ctx;
  const scope = cdb[2] >> 4;
  const type = cdb[2] & 0x0f;
  const parameterListLength = cdb.readUInt32BE(5);
  const needsType =
    sa === PrOutServiceAction.RESERVE ||
    sa === PrOutServiceAction.RELEASE ||
    sa === PrOutServiceAction.PREEMPT ||
    sa === PrOutServiceAction.PREEMPT_AND_ABORT;
  if (needsType && scope !== LU_SCOPE) throw invalidCdbField(2, 7, `SCOPE ${scope} is not supported (LU_SCOPE only)`);
  if (needsType && !PR_TYPES.has(type)) throw invalidCdbField(2, 3, `TYPE ${type} is not a persistent reservation type`);
  const data = ctx.req.dataOut ?? Buffer.alloc(0);
  if (parameterListLength !== PARAMETER_LIST_LENGTH || data.length < PARAMETER_LIST_LENGTH) {
    throw new SenseError(Sense.PARAMETER_LIST_LENGTH_ERROR, {}, `PARAMETER LIST LENGTH ${parameterListLength}, Data-Out ${data.length} bytes (24 expected)`);
  }
  const flags = data[20];
  if ((flags & 0x08) !== 0) throw invalidParameterField(20, 3, 'SPEC_I_PT is not supported');
  if ((flags & 0x04) !== 0) throw invalidParameterField(20, 2, 'ALL_TG_PT is not supported');
  if ((flags & 0x01) !== 0) throw invalidParameterField(20, 0, 'APTPL is not supported (reservations do not persist through power loss)');
  return { key: data.readBigUInt64BE(0), serviceActionKey: data.readBigUInt64BE(8), scope, type };
}

/** SPC-4 r37 5.13, registering: REGISTER and REGISTER AND IGNORE EXISTING KEY. */
function register(lu: LogicalUnit, nexus: ItNexus, p: Params, ignoreExisting: boolean): void {
  const r = lu.reservations;
  const reg = r.registrations.get(nexus.id);
  if (reg === undefined) {
    if (!ignoreExisting && p.key !== 0n) throw conflict('not registered, and RESERVATION KEY is not zero');
    if (p.serviceActionKey === 0n) return; // nothing to register
    r.registrations.set(nexus.id, { key: p.serviceActionKey, nexus });
    r.bumpGeneration();
    return;
  }
  if (!ignoreExisting && p.key !== reg.key) throw conflict('RESERVATION KEY does not match the registered key');
  if (p.serviceActionKey === 0n) {
    for (const id of r.unregister(nexus.id)) lu.unitAttentions.establish(id, Sense.RESERVATIONS_RELEASED);
  } else {
    reg.key = p.serviceActionKey;
    reg.nexus = nexus;
  }
  r.bumpGeneration();
}

/** The calling nexus must be registered with RESERVATION KEY (SPC-4 r37 5.13). */
function requireRegistration(lu: LogicalUnit, nexus: ItNexus, p: Params): void {
  const reg = lu.reservations.registrations.get(nexus.id);
  if (reg === undefined) throw conflict('the I_T nexus is not registered');
  if (reg.key !== p.key) throw conflict('RESERVATION KEY does not match the registered key');
}

/** SPC-4 r37 5.13, reserving. */
function reserve(lu: LogicalUnit, nexus: ItNexus, p: Params): void {
  const r = lu.reservations;
  requireRegistration(lu, nexus, p);
  const res = r.reservation;
  if (res === undefined) {
    r.reservation = { type: p.type, scope: p.scope, holder: isAllRegistrants(p.type) ? undefined : nexus.id };
    return;
  }
  if (!r.isHolder(nexus.id)) throw conflict('another I_T nexus holds the persistent reservation');
  if (res.type !== p.type || res.scope !== p.scope) throw conflict('the reservation is held with another type or scope');
}

/** SPC-4 r37 5.13, releasing. */
function release(lu: LogicalUnit, nexus: ItNexus, p: Params): void {
  const r = lu.reservations;
  requireRegistration(lu, nexus, p);
  const res = r.reservation;
  if (res === undefined || !r.isHolder(nexus.id)) return; // GOOD, no effect
  if (res.type !== p.type || res.scope !== p.scope) {
    throw new SenseError(Sense.INVALID_RELEASE_OF_PERSISTENT_RESERVATION, {}, 'TYPE or SCOPE differs from the reservation');
  }
  r.reservation = undefined;
  if (isRegistrantsOnly(res.type) || isAllRegistrants(res.type)) {
    for (const id of r.registrations.keys()) if (id !== nexus.id) lu.unitAttentions.establish(id, Sense.RESERVATIONS_RELEASED);
  }
}

/** SPC-4 r37 5.13, clearing. */
function clear(lu: LogicalUnit, nexus: ItNexus, p: Params): void {
  const r = lu.reservations;
  requireRegistration(lu, nexus, p);
  const others = [...r.registrations.keys()].filter((id) => id !== nexus.id);
  r.registrations.clear();
  r.reservation = undefined;
  r.bumpGeneration();
  for (const id of others) lu.unitAttentions.establish(id, Sense.RESERVATIONS_PREEMPTED);
}

/** SPC-4 r37 5.13, preempting: PREEMPT and PREEMPT AND ABORT. */
function preempt(lu: LogicalUnit, nexus: ItNexus, p: Params): void {
  const r = lu.reservations;
  requireRegistration(lu, nexus, p);
  const res = r.reservation;
  const sark = p.serviceActionKey;
  const holderKey = res !== undefined && res.holder !== undefined ? r.registrations.get(res.holder)?.key : undefined;
  const removeKeyed = (match: (key: bigint) => boolean): string[] => {
    const victims = [...r.registrations.entries()].filter(([id, reg]) => id !== nexus.id && match(reg.key)).map(([id]) => id);
    for (const id of victims) r.registrations.delete(id);
    return victims;
  };
  let victims: string[];
  let releasedTo: string[] = [];
  if (res !== undefined && isAllRegistrants(res.type) && sark === 0n) {
    // Preempting an All Registrants reservation — every other registration goes.
    victims = removeKeyed(() => true);
    r.reservation = { type: p.type, scope: p.scope, holder: isAllRegistrants(p.type) ? undefined : nexus.id };
  } else if (res !== undefined && !isAllRegistrants(res.type) && holderKey === sark) {
    // The holder is preempted — its registrations go and the reservation moves.
    victims = removeKeyed((key) => key === sark);
    const changed = res.type !== p.type || res.scope !== p.scope;
    r.reservation = { type: p.type, scope: p.scope, holder: isAllRegistrants(p.type) ? undefined : nexus.id };
    if (changed) releasedTo = [...r.registrations.keys()].filter((id) => id !== nexus.id);
  } else {
    // No reservation to preempt — only the registrations with that key go.
    if (sark === 0n) throw invalidParameterField(8, 7, 'SERVICE ACTION RESERVATION KEY must not be zero');
    victims = removeKeyed((key) => key === sark);
    if (victims.length === 0) throw conflict('no registration has the SERVICE ACTION RESERVATION KEY');
    if (r.reservation !== undefined && isAllRegistrants(r.reservation.type) && r.registrations.size === 0) r.reservation = undefined;
  }
  r.bumpGeneration();
  for (const id of victims) lu.unitAttentions.establish(id, Sense.REGISTRATIONS_PREEMPTED);
  for (const id of releasedTo) lu.unitAttentions.establish(id, Sense.RESERVATIONS_RELEASED);
}

export async function persistentReserveOut(ctx: CommandContext): Promise<CommandResult> {
  const { lu, nexus } = ctx;
  const sa = ctx.cdb[1] & 0x1f;
  const p = parse(ctx, sa);
  switch (sa) {
    case PrOutServiceAction.REGISTER:
      register(lu, nexus, p, false);
      break;
    case PrOutServiceAction.REGISTER_AND_IGNORE_EXISTING_KEY:
      register(lu, nexus, p, true);
      break;
    case PrOutServiceAction.RESERVE:
      reserve(lu, nexus, p);
      break;
    case PrOutServiceAction.RELEASE:
      release(lu, nexus, p);
      break;
    case PrOutServiceAction.CLEAR:
      clear(lu, nexus, p);
      break;
    default: // PREEMPT, PREEMPT AND ABORT
      preempt(lu, nexus, p);
      break;
  }
  return { dataOutLength: PARAMETER_LIST_LENGTH };
}

/**
 * Sense as typed errors. Handlers throw `new SenseError(Sense.INVALID_FIELD_IN_CDB, { field:
 * { cdbByte: 1, bit: 4 } })`; the logical unit turns the error into CHECK CONDITION with sense
 * data in the format the control mode page asks for (D_SENSE). The one table of reasons, named
 * in the standard's words, is `Sense` in src/scsi/sense-reasons.ts (SPC-4 r37 4.5.6 and
 * Annex D). Statuses without sense (RESERVATION CONFLICT, TASK ABORTED) are StatusErrors.
 *
 * Store failures map to sense here too (one place, SENSE_OF_STORE_FAILURE), written in the
 * format the logical unit's D_SENSE asks for; a remote LUN's status and sense are forwarded
 * unchanged.
 */
import { AgentError } from '../../errors';
import { ScsiStatus } from '../../scsi/constants';
import { Sense, buildSense, type SenseDetails, type SenseReason } from '../../scsi/sense-reasons';
import { StoreError, type StoreFailure } from '../../store/store';
import type { ScsiReply } from './types';

// The command layer names reasons from the one table in src/scsi/ (re-exported for its handlers).
export { Sense, buildSense, type FieldPointer, type SenseDetails, type SenseName, type SenseReason } from '../../scsi/sense-reasons';

/** A command ends in CHECK CONDITION with this sense (code ERR_SCSI_CHECK_CONDITION, as IscsiError's). */
export class SenseError extends AgentError {
  readonly reason: SenseReason;
  readonly details: SenseDetails;
  /** The reason's sense key, ASC and ASCQ, named as on IscsiError (so `senseIs` reads both). */
  readonly senseKey: number;
  readonly asc: number;
  readonly ascq: number;
  /**
   * Set when the command had Data-Out and the error came after its length was known, so the
   * reply still tells the transport how much the CDB asked for (see ScsiReply.dataOutLength).
   */
  dataOutLength?: number;
  constructor(senseReason: SenseReason, details: SenseDetails = {}, message?: string) {
    super('ERR_SCSI_CHECK_CONDITION', message ?? describeReason(senseReason, details));
    this.reason = senseReason;
    this.details = details;
    ({ key: this.senseKey, asc: this.asc, ascq: this.ascq } = senseReason);
  }
}

/** A command ends with a status that carries no sense (RESERVATION CONFLICT, TASK ABORTED, BUSY): ERR_SCSI_STATUS. */
export class StatusError extends AgentError {
  readonly status: number;
  constructor(status: number, message?: string) {
    super('ERR_SCSI_STATUS', message ?? `status 0x${status.toString(16).padStart(2, '0')}`);
    this.status = status;
  }
}

function describeReason(r: SenseReason, d: SenseDetails): string {
  let text = `${r.name} (${hex(r.key)}/${hex(r.asc)}/${hex(r.ascq)})`;
  if (d.field) {
    const where = 'cdbByte' in d.field ? `CDB byte ${d.field.cdbByte}` : `parameter list byte ${d.field.paramByte}`;
    text += `, ${where}${d.field.bit === undefined ? '' : ` bit ${d.field.bit}`}`;
  }
  if (d.information !== undefined) text += `, information ${d.information}`;
  return text;
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0') + 'h';
}

/** Shorthands for the two field-pointer errors every handler needs. */
export function invalidCdbField(cdbByte: number, bit?: number, message?: string): SenseError {
  return new SenseError(Sense.INVALID_FIELD_IN_CDB, { field: { cdbByte, bit } }, message);
}

export function invalidParameterField(paramByte: number, bit?: number, message?: string): SenseError {
  return new SenseError(Sense.INVALID_FIELD_IN_PARAMETER_LIST, { field: { paramByte, bit } }, message);
}

/** The sense reason of each store failure (SPC-4 r37 Annex D); `forwarded` carries its own sense. */
const SENSE_OF_STORE_FAILURE: Readonly<Record<Exclude<StoreFailure['kind'], 'forwarded'>, SenseReason>> = {
  'lba-out-of-range': Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE,
  'read-error': Sense.UNRECOVERED_READ_ERROR,
  'write-error': Sense.WRITE_ERROR,
  'hardware-write-error': Sense.HARDWARE_ERROR_WRITE_ERROR,
  'write-protected': Sense.WRITE_PROTECTED,
  'not-ready': Sense.LOGICAL_UNIT_NOT_READY_CAUSE_NOT_REPORTABLE,
  'not-ready-becoming-ready': Sense.LOGICAL_UNIT_IS_IN_PROCESS_OF_BECOMING_READY,
  'not-ready-manual-intervention': Sense.LOGICAL_UNIT_NOT_READY_MANUAL_INTERVENTION_REQUIRED,
  'no-space': Sense.SPACE_ALLOCATION_FAILED_WRITE_PROTECT,
  'command-timeout': Sense.COMMAND_TIMEOUT_DURING_PROCESSING,
};

/**
 * The sense of a store failure: a SenseError with its kind's reason, or, for `forwarded`, the
 * remote LUN's status and sense as it answered.
 */
export function senseOfStoreError(err: StoreError): SenseError | { status: number; sense?: Buffer } {
  const f = err.failure;
  if (f.kind === 'forwarded') return { status: f.status, sense: f.sense };
  return new SenseError(SENSE_OF_STORE_FAILURE[f.kind], {}, err.message);
}

/**
 * The reply for an error a command ended with. SenseError → CHECK CONDITION; StatusError → its
 * status; StoreError → its sense (forwarded sense unchanged); anything else is a bug of ours:
 * HARDWARE ERROR, INTERNAL TARGET FAILURE (and `onInternalError` hears about it).
 */
export function replyOfError(err: unknown, descriptorFormat: boolean, onInternalError?: (err: unknown) => void): ScsiReply {
  if (err instanceof SenseError) {
    const reply: ScsiReply = { status: ScsiStatus.CHECK_CONDITION, sense: buildSense(err.reason, err.details, descriptorFormat) };
    if (err.dataOutLength !== undefined) reply.dataOutLength = err.dataOutLength;
    return reply;
  }
  if (err instanceof StatusError) return { status: err.status };
  if (err instanceof StoreError) {
    const mapped = senseOfStoreError(err);
    if (mapped instanceof SenseError) return replyOfError(mapped, descriptorFormat);
    const reply: ScsiReply = { status: mapped.status };
    if (mapped.sense !== undefined && mapped.sense.length > 0) reply.sense = Buffer.from(mapped.sense);
    return reply;
  }
  onInternalError?.(err);
  return {
    status: ScsiStatus.CHECK_CONDITION,
    sense: buildSense(Sense.INTERNAL_TARGET_FAILURE, {}, descriptorFormat),
  };
}

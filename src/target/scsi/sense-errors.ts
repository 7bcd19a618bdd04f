/**
 * Sense as typed errors. Handlers throw `new SenseError(Sense.INVALID_FIELD_IN_CDB, { field:
 * { cdbByte: 1, bit: 4 } })`; the logical unit turns the error into CHECK CONDITION with sense
 * data in the format the control mode page asks for (D_SENSE). One table maps each
 * reason, named in the standard's words, to its sense key and additional sense code (SPC-4 4.5.6
 * and Annex D). Statuses without sense (RESERVATION CONFLICT, TASK ABORTED) are StatusErrors.
 *
 * Store failures map to sense here too (one place): lba-out-of-range → ILLEGAL REQUEST 21h/00h,
 * read-error → MEDIUM ERROR 11h/00h, write-error → MEDIUM ERROR 0Ch/00h, write-protected →
 * DATA PROTECT 27h/00h, not-ready → NOT READY 04h/00h, no-space → DATA PROTECT 27h/07h, and a
 * remote LUN's status and sense are forwarded unchanged.
 */
import { ScsiStatus, SenseKey } from '../../scsi/constants';
import { encodeDescriptorSense, encodeFixedSense, type SenseDescriptor, type SenseKeySpecific } from '../../scsi/sense';
import { StoreError } from '../../store/store';
import type { ScsiReply } from './types';

/** A sense key and additional sense code, with the standard's name for logs. */
export interface SenseReason {
  readonly key: number;
  readonly asc: number;
  readonly ascq: number;
  readonly name: string;
}

/** A sense reason (sense key, ASC, ASCQ and its SPC-4 Annex D name), frozen. */
export function senseReason(key: number, asc: number, ascq: number, name: string): SenseReason {
  return Object.freeze({ key, asc, ascq, name });
}

const reason = senseReason;

/** Every reason this layer reports (SPC-4 Annex D names). */
export const Sense = {
  NO_ADDITIONAL_SENSE_INFORMATION: reason(SenseKey.NO_SENSE, 0x00, 0x00, 'NO ADDITIONAL SENSE INFORMATION'),
  // NOT READY
  LOGICAL_UNIT_NOT_READY_CAUSE_NOT_REPORTABLE: reason(SenseKey.NOT_READY, 0x04, 0x00, 'LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE'),
  // MEDIUM ERROR
  WRITE_ERROR: reason(SenseKey.MEDIUM_ERROR, 0x0c, 0x00, 'WRITE ERROR'),
  UNRECOVERED_READ_ERROR: reason(SenseKey.MEDIUM_ERROR, 0x11, 0x00, 'UNRECOVERED READ ERROR'),
  // HARDWARE ERROR
  INTERNAL_TARGET_FAILURE: reason(SenseKey.HARDWARE_ERROR, 0x44, 0x00, 'INTERNAL TARGET FAILURE'),
  // ILLEGAL REQUEST
  INVALID_FIELD_IN_COMMAND_INFORMATION_UNIT: reason(SenseKey.ILLEGAL_REQUEST, 0x0e, 0x03, 'INVALID FIELD IN COMMAND INFORMATION UNIT'),
  PARAMETER_LIST_LENGTH_ERROR: reason(SenseKey.ILLEGAL_REQUEST, 0x1a, 0x00, 'PARAMETER LIST LENGTH ERROR'),
  INVALID_COMMAND_OPERATION_CODE: reason(SenseKey.ILLEGAL_REQUEST, 0x20, 0x00, 'INVALID COMMAND OPERATION CODE'),
  LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE: reason(SenseKey.ILLEGAL_REQUEST, 0x21, 0x00, 'LOGICAL BLOCK ADDRESS OUT OF RANGE'),
  INVALID_FIELD_IN_CDB: reason(SenseKey.ILLEGAL_REQUEST, 0x24, 0x00, 'INVALID FIELD IN CDB'),
  LOGICAL_UNIT_NOT_SUPPORTED: reason(SenseKey.ILLEGAL_REQUEST, 0x25, 0x00, 'LOGICAL UNIT NOT SUPPORTED'),
  INVALID_FIELD_IN_PARAMETER_LIST: reason(SenseKey.ILLEGAL_REQUEST, 0x26, 0x00, 'INVALID FIELD IN PARAMETER LIST'),
  PARAMETER_NOT_SUPPORTED: reason(SenseKey.ILLEGAL_REQUEST, 0x26, 0x01, 'PARAMETER NOT SUPPORTED'),
  PARAMETER_VALUE_INVALID: reason(SenseKey.ILLEGAL_REQUEST, 0x26, 0x02, 'PARAMETER VALUE INVALID'),
  INVALID_RELEASE_OF_PERSISTENT_RESERVATION: reason(SenseKey.ILLEGAL_REQUEST, 0x26, 0x04, 'INVALID RELEASE OF PERSISTENT RESERVATION'),
  SAVING_PARAMETERS_NOT_SUPPORTED: reason(SenseKey.ILLEGAL_REQUEST, 0x39, 0x00, 'SAVING PARAMETERS NOT SUPPORTED'),
  INSUFFICIENT_REGISTRATION_RESOURCES: reason(SenseKey.ILLEGAL_REQUEST, 0x55, 0x04, 'INSUFFICIENT REGISTRATION RESOURCES'),
  // UNIT ATTENTION
  POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED: reason(SenseKey.UNIT_ATTENTION, 0x29, 0x00, 'POWER ON, RESET, OR BUS DEVICE RESET OCCURRED'),
  BUS_DEVICE_RESET_FUNCTION_OCCURRED: reason(SenseKey.UNIT_ATTENTION, 0x29, 0x03, 'BUS DEVICE RESET FUNCTION OCCURRED'),
  I_T_NEXUS_LOSS_OCCURRED: reason(SenseKey.UNIT_ATTENTION, 0x29, 0x07, 'I_T NEXUS LOSS OCCURRED'),
  MODE_PARAMETERS_CHANGED: reason(SenseKey.UNIT_ATTENTION, 0x2a, 0x01, 'MODE PARAMETERS CHANGED'),
  RESERVATIONS_PREEMPTED: reason(SenseKey.UNIT_ATTENTION, 0x2a, 0x03, 'RESERVATIONS PREEMPTED'),
  RESERVATIONS_RELEASED: reason(SenseKey.UNIT_ATTENTION, 0x2a, 0x04, 'RESERVATIONS RELEASED'),
  REGISTRATIONS_PREEMPTED: reason(SenseKey.UNIT_ATTENTION, 0x2a, 0x05, 'REGISTRATIONS PREEMPTED'),
  CAPACITY_DATA_HAS_CHANGED: reason(SenseKey.UNIT_ATTENTION, 0x2a, 0x09, 'CAPACITY DATA HAS CHANGED'),
  COMMANDS_CLEARED_BY_ANOTHER_INITIATOR: reason(SenseKey.UNIT_ATTENTION, 0x2f, 0x00, 'COMMANDS CLEARED BY ANOTHER INITIATOR'),
  INQUIRY_DATA_HAS_CHANGED: reason(SenseKey.UNIT_ATTENTION, 0x3f, 0x03, 'INQUIRY DATA HAS CHANGED'),
  REPORTED_LUNS_DATA_HAS_CHANGED: reason(SenseKey.UNIT_ATTENTION, 0x3f, 0x0e, 'REPORTED LUNS DATA HAS CHANGED'),
  // DATA PROTECT
  WRITE_PROTECTED: reason(SenseKey.DATA_PROTECT, 0x27, 0x00, 'WRITE PROTECTED'),
  LOGICAL_UNIT_SOFTWARE_WRITE_PROTECTED: reason(SenseKey.DATA_PROTECT, 0x27, 0x02, 'LOGICAL UNIT SOFTWARE WRITE PROTECTED'),
  SPACE_ALLOCATION_FAILED_WRITE_PROTECT: reason(SenseKey.DATA_PROTECT, 0x27, 0x07, 'SPACE ALLOCATION FAILED WRITE PROTECT'),
  // MISCOMPARE
  MISCOMPARE_DURING_VERIFY_OPERATION: reason(SenseKey.MISCOMPARE, 0x1d, 0x00, 'MISCOMPARE DURING VERIFY OPERATION'),
} as const;

export type SenseName = keyof typeof Sense;

/**
 * Where the offending field is (SPC-4 4.5.2.4.2, sense key specific field pointer): a byte of
 * the CDB or of the parameter list (Data-Out), and optionally the bit (7..0) within it.
 */
export type FieldPointer = { cdbByte: number; bit?: number } | { paramByte: number; bit?: number };

export interface SenseDetails {
  field?: FieldPointer;
  /** The INFORMATION field (e.g. the offset of a miscompare, SBC-3 5.2). */
  information?: bigint;
  /** COMMAND-SPECIFIC INFORMATION (e.g. the failing segment of an EXTENDED COPY, SPC-4 6.4.3). */
  commandSpecificInformation?: bigint;
  /**
   * A segment pointer in SENSE KEY SPECIFIC (SPC-4 4.5.2.4.5): the byte, within the segment
   * descriptor (SD = 1), of the field found wrong. Takes the place of `field`.
   */
  segmentField?: number;
  /**
   * The sense a third-party device answered with, forwarded in descriptor format (SPC-4
   * 4.5.2.9, forwarded sense data descriptor; at most 64 bytes, FSDT set when cut).
   */
  forwarded?: { senseDataSource: number; status: number; sense: Buffer };
}

/** A command ends in CHECK CONDITION with this sense. */
export class SenseError extends Error {
  readonly reason: SenseReason;
  readonly details: SenseDetails;
  /**
   * Set when the command had Data-Out and the error came after its length was known, so the
   * reply still tells the transport how much the CDB asked for (see ScsiReply.dataOutLength).
   */
  dataOutLength?: number;
  constructor(senseReason: SenseReason, details: SenseDetails = {}, message?: string) {
    super(message ?? describeReason(senseReason, details));
    this.reason = senseReason;
    this.details = details;
    Object.defineProperty(this, 'name', { value: 'SenseError', enumerable: false });
  }
}

/** A command ends with a status that carries no sense (RESERVATION CONFLICT, TASK ABORTED, BUSY). */
export class StatusError extends Error {
  readonly status: number;
  constructor(status: number, message?: string) {
    super(message ?? `status 0x${status.toString(16).padStart(2, '0')}`);
    this.status = status;
    Object.defineProperty(this, 'name', { value: 'StatusError', enumerable: false });
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

function senseKeySpecific(field: FieldPointer): SenseKeySpecific {
  const cd = 'cdbByte' in field;
  const byte = cd ? field.cdbByte : field.paramByte;
  return {
    kind: 'fieldPointer',
    cd,
    bpv: field.bit !== undefined,
    bitPointer: field.bit ?? 0,
    fieldPointer: Math.max(0, Math.min(0xffff, byte)),
  };
}

/**
 * Sense data for a reason: fixed format (SPC-4 4.5.3, 18 bytes) or descriptor format (4.5.2).
 * The field pointer goes in the SENSE KEY SPECIFIC field; INFORMATION is written when given (in
 * fixed format only when it fits 32 bits, else VALID stays zero).
 */
export function buildSense(r: SenseReason, details: SenseDetails = {}, descriptorFormat = false): Buffer {
  const info = details.information;
  const csi = details.commandSpecificInformation;
  const sks: SenseKeySpecific | undefined =
    details.segmentField !== undefined
      ? { kind: 'segmentPointer', sd: true, bpv: false, bitPointer: 0, fieldPointer: details.segmentField }
      : details.field
        ? senseKeySpecific(details.field)
        : undefined;
  if (descriptorFormat) {
    const f = details.forwarded;
    const descriptors: SenseDescriptor[] = [];
    if (f !== undefined) {
      descriptors.push({
        kind: 'forwardedSenseData',
        fsdt: f.sense.length > FORWARDED_SENSE_MAX,
        senseDataSource: f.senseDataSource,
        forwardedStatus: f.status,
        senseData: Buffer.from(f.sense.subarray(0, FORWARDED_SENSE_MAX)),
      });
    }
    return encodeDescriptorSense({ senseKey: r.key, asc: r.asc, ascq: r.ascq, information: info, commandSpecificInformation: csi, senseKeySpecific: sks, descriptors });
  }
  const fits = (v: bigint | undefined) => v !== undefined && v >= 0n && v <= 0xffff_ffffn;
  return encodeFixedSense({
    senseKey: r.key,
    asc: r.asc,
    ascq: r.ascq,
    information: fits(info) ? info : undefined,
    commandSpecificInformation: fits(csi) ? csi : undefined,
    senseKeySpecific: sks,
  });
}

/** SPC-4 4.5.2.9: at most this much forwarded sense; more sets FSDT. */
const FORWARDED_SENSE_MAX = 64;

/** The sense reason of a store failure (all but `forwarded`, which carries its own sense). */
export function senseOfStoreError(err: StoreError): SenseError | { status: number; sense?: Buffer } {
  const f = err.failure;
  switch (f.kind) {
    case 'lba-out-of-range':
      return new SenseError(Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE, {}, err.message);
    case 'read-error':
      return new SenseError(Sense.UNRECOVERED_READ_ERROR, {}, err.message);
    case 'write-error':
      return new SenseError(Sense.WRITE_ERROR, {}, err.message);
    case 'write-protected':
      return new SenseError(Sense.WRITE_PROTECTED, {}, err.message);
    case 'not-ready':
      return new SenseError(Sense.LOGICAL_UNIT_NOT_READY_CAUSE_NOT_REPORTABLE, {}, err.message);
    case 'no-space':
      return new SenseError(Sense.SPACE_ALLOCATION_FAILED_WRITE_PROTECT, {}, err.message);
    case 'forwarded':
      return { status: f.status, sense: f.sense };
  }
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

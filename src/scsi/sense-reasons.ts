/**
 * Sense reasons: the one table of why a command ends in CHECK CONDITION, shared by both sides
 * (as LIO's sense_reason_t with its sense_info_table, or QEMU's scsi/utils.c shared by its
 * target and block/iscsi.c). Each reason is named in the standard's words (the additional sense
 * code's description, SPC-4 r37 Annex D) and carries its sense key (SPC-4 r37 4.5.6) and
 * ASC/ASCQ. The target's command layer, the COW filter's refusals (through the store failures
 * the SCSI layer maps here), the copy manager and the initiator's retry and fallback tests
 * (`senseIs`) all name reasons from `Sense`; no other place spells a sense key/ASC/ASCQ triple.
 *
 * `buildSense` writes a reason (with its details) as sense data in fixed or descriptor format,
 * whichever the logical unit's D_SENSE bit asks for (SPC-4 r37 7.5.7 Control mode page).
 * Pure, no I/O.
 */
import { ascName, SenseKey } from './constants';
import { encodeDescriptorSense, encodeFixedSense, type SenseDescriptor, type SenseKeySpecific } from './sense';

/** A sense key and additional sense code, with the standard's name for logs. */
export interface SenseReason {
  /** SENSE KEY (SPC-4 r37 4.5.6), a SenseKey value. */
  readonly key: number;
  readonly asc: number;
  readonly ascq: number;
  /** The ASC/ASCQ description of SPC-4 r37 Annex D, e.g. `INVALID FIELD IN CDB`. */
  readonly name: string;
}

/** A reason whose name is its ASC/ASCQ's in the Annex D table (constants.ts). */
function reason(key: SenseKey, asc: number, ascq: number): SenseReason {
  return Object.freeze({ key, asc, ascq, name: ascName(asc, ascq) });
}

/**
 * Every reason the project reports or tests for. Keys are the Annex D descriptions; where one
 * ASC/ASCQ is used under a sense key other than its usual one, the key's name comes first.
 */
export const Sense = {
  // NO SENSE
  NO_ADDITIONAL_SENSE_INFORMATION: reason(SenseKey.NO_SENSE, 0x00, 0x00),
  // NOT READY
  LOGICAL_UNIT_NOT_READY_CAUSE_NOT_REPORTABLE: reason(SenseKey.NOT_READY, 0x04, 0x00),
  /** Hosts retry it: a snapshot's source resuming after a restart. */
  LOGICAL_UNIT_IS_IN_PROCESS_OF_BECOMING_READY: reason(SenseKey.NOT_READY, 0x04, 0x01),
  LOGICAL_UNIT_NOT_READY_MANUAL_INTERVENTION_REQUIRED: reason(SenseKey.NOT_READY, 0x04, 0x03),
  // MEDIUM ERROR
  WRITE_ERROR: reason(SenseKey.MEDIUM_ERROR, 0x0c, 0x00),
  UNRECOVERED_READ_ERROR: reason(SenseKey.MEDIUM_ERROR, 0x11, 0x00),
  // HARDWARE ERROR
  /** WRITE ERROR of the device rather than of its medium: a COW capture that failed. */
  HARDWARE_ERROR_WRITE_ERROR: reason(SenseKey.HARDWARE_ERROR, 0x0c, 0x00),
  INTERNAL_TARGET_FAILURE: reason(SenseKey.HARDWARE_ERROR, 0x44, 0x00),
  // ILLEGAL REQUEST
  /** An EXTENDED COPY whose LIST IDENTIFIER is in use (SPC-4 r37 6.4.3.1). */
  OPERATION_IN_PROGRESS: reason(SenseKey.ILLEGAL_REQUEST, 0x00, 0x16),
  INVALID_FIELD_IN_COMMAND_INFORMATION_UNIT: reason(SenseKey.ILLEGAL_REQUEST, 0x0e, 0x03),
  PARAMETER_LIST_LENGTH_ERROR: reason(SenseKey.ILLEGAL_REQUEST, 0x1a, 0x00),
  INVALID_COMMAND_OPERATION_CODE: reason(SenseKey.ILLEGAL_REQUEST, 0x20, 0x00),
  LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE: reason(SenseKey.ILLEGAL_REQUEST, 0x21, 0x00),
  INVALID_FIELD_IN_CDB: reason(SenseKey.ILLEGAL_REQUEST, 0x24, 0x00),
  LOGICAL_UNIT_NOT_SUPPORTED: reason(SenseKey.ILLEGAL_REQUEST, 0x25, 0x00),
  INVALID_FIELD_IN_PARAMETER_LIST: reason(SenseKey.ILLEGAL_REQUEST, 0x26, 0x00),
  PARAMETER_NOT_SUPPORTED: reason(SenseKey.ILLEGAL_REQUEST, 0x26, 0x01),
  PARAMETER_VALUE_INVALID: reason(SenseKey.ILLEGAL_REQUEST, 0x26, 0x02),
  INVALID_RELEASE_OF_PERSISTENT_RESERVATION: reason(SenseKey.ILLEGAL_REQUEST, 0x26, 0x04),
  // EXTENDED COPY parameter list checks, before any segment is processed (SPC-4 r37 6.4.3.1).
  TOO_MANY_TARGET_DESCRIPTORS: reason(SenseKey.ILLEGAL_REQUEST, 0x26, 0x06),
  UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE: reason(SenseKey.ILLEGAL_REQUEST, 0x26, 0x07),
  TOO_MANY_SEGMENT_DESCRIPTORS: reason(SenseKey.ILLEGAL_REQUEST, 0x26, 0x08),
  UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE_CODE: reason(SenseKey.ILLEGAL_REQUEST, 0x26, 0x09),
  INLINE_DATA_LENGTH_EXCEEDED: reason(SenseKey.ILLEGAL_REQUEST, 0x26, 0x0b),
  SAVING_PARAMETERS_NOT_SUPPORTED: reason(SenseKey.ILLEGAL_REQUEST, 0x39, 0x00),
  /** More tasks than the session takes, or more copies than MAXIMUM CONCURRENT COPIES. */
  INSUFFICIENT_RESOURCES: reason(SenseKey.ILLEGAL_REQUEST, 0x55, 0x03),
  INSUFFICIENT_REGISTRATION_RESOURCES: reason(SenseKey.ILLEGAL_REQUEST, 0x55, 0x04),
  // UNIT ATTENTION
  POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED: reason(SenseKey.UNIT_ATTENTION, 0x29, 0x00),
  BUS_DEVICE_RESET_FUNCTION_OCCURRED: reason(SenseKey.UNIT_ATTENTION, 0x29, 0x03),
  I_T_NEXUS_LOSS_OCCURRED: reason(SenseKey.UNIT_ATTENTION, 0x29, 0x07),
  MODE_PARAMETERS_CHANGED: reason(SenseKey.UNIT_ATTENTION, 0x2a, 0x01),
  RESERVATIONS_PREEMPTED: reason(SenseKey.UNIT_ATTENTION, 0x2a, 0x03),
  RESERVATIONS_RELEASED: reason(SenseKey.UNIT_ATTENTION, 0x2a, 0x04),
  REGISTRATIONS_PREEMPTED: reason(SenseKey.UNIT_ATTENTION, 0x2a, 0x05),
  CAPACITY_DATA_HAS_CHANGED: reason(SenseKey.UNIT_ATTENTION, 0x2a, 0x09),
  COMMANDS_CLEARED_BY_ANOTHER_INITIATOR: reason(SenseKey.UNIT_ATTENTION, 0x2f, 0x00),
  INQUIRY_DATA_HAS_CHANGED: reason(SenseKey.UNIT_ATTENTION, 0x3f, 0x03),
  REPORTED_LUNS_DATA_HAS_CHANGED: reason(SenseKey.UNIT_ATTENTION, 0x3f, 0x0e),
  // DATA PROTECT
  WRITE_PROTECTED: reason(SenseKey.DATA_PROTECT, 0x27, 0x00),
  LOGICAL_UNIT_SOFTWARE_WRITE_PROTECTED: reason(SenseKey.DATA_PROTECT, 0x27, 0x02),
  /** What a thin LUN out of space answers; the COW filter's OBF full under protect-snapshot. */
  SPACE_ALLOCATION_FAILED_WRITE_PROTECT: reason(SenseKey.DATA_PROTECT, 0x27, 0x07),
  // COPY ABORTED: during EXTENDED COPY segment processing (SPC-4 r37 6.4.3.1).
  /** Some copy managers report an unreachable CSCD with this older code (SPC-4 r37 Annex D). */
  UNREACHABLE_COPY_TARGET: reason(SenseKey.COPY_ABORTED, 0x08, 0x04),
  THIRD_PARTY_DEVICE_FAILURE: reason(SenseKey.COPY_ABORTED, 0x0d, 0x01),
  COPY_TARGET_DEVICE_NOT_REACHABLE: reason(SenseKey.COPY_ABORTED, 0x0d, 0x02),
  INCORRECT_COPY_TARGET_DEVICE_TYPE: reason(SenseKey.COPY_ABORTED, 0x0d, 0x03),
  UNEXPECTED_INEXACT_SEGMENT: reason(SenseKey.COPY_ABORTED, 0x26, 0x0a),
  // ABORTED COMMAND
  /** Hosts retry it: a COW capture that timed out under protect-snapshot (SPC-5 r19 Annex F). */
  COMMAND_TIMEOUT_DURING_PROCESSING: reason(SenseKey.ABORTED_COMMAND, 0x2e, 0x02),
  DATA_PHASE_ERROR: reason(SenseKey.ABORTED_COMMAND, 0x4b, 0x00),
  // MISCOMPARE
  MISCOMPARE_DURING_VERIFY_OPERATION: reason(SenseKey.MISCOMPARE, 0x1d, 0x00),
} as const;

export type SenseName = keyof typeof Sense;

/** What `senseIs` reads: an IscsiError, a SenseError or decoded sense data. */
export interface HasSense {
  readonly senseKey?: number;
  readonly asc?: number;
  readonly ascq?: number;
}

/**
 * Is this sense (an initiator's IscsiError, the target's SenseError, decoded SenseData) reason
 * `r`: same sense key, ASC and ASCQ? False for anything without sense, so callers may pass any
 * caught value: `if (senseIs(err, Sense.COPY_TARGET_DEVICE_NOT_REACHABLE)) ...`.
 */
export function senseIs(s: unknown, r: SenseReason): boolean {
  if (typeof s !== 'object' || s === null) return false;
  const h = s as HasSense;
  return h.senseKey === r.key && h.asc === r.asc && h.ascq === r.ascq;
}

/**
 * Where the offending field is (SPC-4 r37 4.5.2.4.2, sense key specific field pointer): a byte
 * of the CDB or of the parameter list (Data-Out), and optionally the bit (7..0) within it.
 */
export type FieldPointer = { cdbByte: number; bit?: number } | { paramByte: number; bit?: number };

/** What sense data says besides its reason. */
export interface SenseDetails {
  field?: FieldPointer;
  /** The INFORMATION field (e.g. the offset of a miscompare, SBC-3 r36 5.2). */
  information?: bigint;
  /** COMMAND-SPECIFIC INFORMATION (e.g. the failing segment of an EXTENDED COPY, SPC-4 r37 6.4.3.1). */
  commandSpecificInformation?: bigint;
  /**
   * A segment pointer in SENSE KEY SPECIFIC (SPC-4 r37 4.5.2.4.5): the byte, within the segment
   * descriptor (SD = 1), of the field found wrong. Takes the place of `field`.
   */
  segmentField?: number;
  /**
   * The sense a third-party device answered with, forwarded in descriptor format (SPC-4 r37
   * 4.5.2.9, forwarded sense data descriptor; at most 64 bytes, FSDT set when cut).
   */
  forwarded?: { senseDataSource: number; status: number; sense: Buffer };
}

/** SPC-4 r37 4.5.2.9: at most this much forwarded sense; more sets FSDT. */
const FORWARDED_SENSE_MAX = 64;

function fieldPointer(field: FieldPointer): SenseKeySpecific {
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
 * Sense data for a reason: fixed format (SPC-4 r37 4.5.3, 18 bytes) or descriptor format
 * (4.5.2), as D_SENSE asks. The field or segment pointer goes in the SENSE KEY SPECIFIC field;
 * INFORMATION and COMMAND-SPECIFIC INFORMATION are written when given (in fixed format only when
 * they fit 32 bits, else VALID stays zero); forwarded sense only exists in descriptor format.
 */
export function buildSense(r: SenseReason, details: SenseDetails = {}, descriptorFormat = false): Buffer {
  const info = details.information;
  const csi = details.commandSpecificInformation;
  const sks: SenseKeySpecific | undefined =
    details.segmentField !== undefined
      ? { kind: 'segmentPointer', sd: true, bpv: false, bitPointer: 0, fieldPointer: details.segmentField }
      : details.field
        ? fieldPointer(details.field)
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

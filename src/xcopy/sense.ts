/**
 * The sense reasons of the copy manager (SPC-4 Annex D names; xcopy-spec §5) and the COPY ABORTED
 * sense data it builds itself: the failing segment number in COMMAND-SPECIFIC INFORMATION, a
 * segment pointer in SENSE KEY SPECIFIC (SPC-4 4.5.2.4.5) and, in descriptor format, the failing
 * device's own sense in a forwarded sense data descriptor (SPC-4 4.5.2.9; what CTL does).
 *
 * Why this builds sense bytes instead of throwing a SenseError: SenseError (src/target/scsi) has
 * no COMMAND-SPECIFIC INFORMATION, no segment pointer and no forwarded sense. Until it does, the
 * finished sense is handed to the dispatcher the one way it passes sense through unchanged — a
 * StoreError of kind `forwarded` (see replyOfError).
 */
import { ScsiStatus, SenseKey } from '../scsi/constants';
import { encodeDescriptorSense, encodeFixedSense, SenseDataSource, type SenseDescriptor, type SenseKeySpecific } from '../scsi/sense';
import { StoreError } from '../store/store';
import type { SenseReason } from '../target/scsi';

function reason(key: number, asc: number, ascq: number, name: string): SenseReason {
  return Object.freeze({ key, asc, ascq, name });
}

export const XcopySense = {
  // ILLEGAL REQUEST: parameter list checks, before any segment is processed (SPC-2 7.2.2).
  OPERATION_IN_PROGRESS: reason(SenseKey.ILLEGAL_REQUEST, 0x00, 0x16, 'OPERATION IN PROGRESS'),
  TOO_MANY_TARGET_DESCRIPTORS: reason(SenseKey.ILLEGAL_REQUEST, 0x26, 0x06, 'TOO MANY TARGET DESCRIPTORS'),
  UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE: reason(SenseKey.ILLEGAL_REQUEST, 0x26, 0x07, 'UNSUPPORTED TARGET DESCRIPTOR TYPE CODE'),
  TOO_MANY_SEGMENT_DESCRIPTORS: reason(SenseKey.ILLEGAL_REQUEST, 0x26, 0x08, 'TOO MANY SEGMENT DESCRIPTORS'),
  UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE_CODE: reason(SenseKey.ILLEGAL_REQUEST, 0x26, 0x09, 'UNSUPPORTED SEGMENT DESCRIPTOR TYPE CODE'),
  INLINE_DATA_LENGTH_EXCEEDED: reason(SenseKey.ILLEGAL_REQUEST, 0x26, 0x0b, 'INLINE DATA LENGTH EXCEEDED'),
  // More copies than MAXIMUM CONCURRENT COPIES advertises (SPC-4 6.18.4): the command is refused,
  // nothing is copied; the initiator may retry when one finishes.
  INSUFFICIENT_RESOURCES: reason(SenseKey.ILLEGAL_REQUEST, 0x55, 0x03, 'INSUFFICIENT RESOURCES'),
  // COPY ABORTED: during segment processing.
  THIRD_PARTY_DEVICE_FAILURE: reason(SenseKey.COPY_ABORTED, 0x0d, 0x01, 'THIRD PARTY DEVICE FAILURE'),
  COPY_TARGET_DEVICE_NOT_REACHABLE: reason(SenseKey.COPY_ABORTED, 0x0d, 0x02, 'COPY TARGET DEVICE NOT REACHABLE'),
  INCORRECT_COPY_TARGET_DEVICE_TYPE: reason(SenseKey.COPY_ABORTED, 0x0d, 0x03, 'INCORRECT COPY TARGET DEVICE TYPE'),
  UNEXPECTED_INEXACT_SEGMENT: reason(SenseKey.COPY_ABORTED, 0x26, 0x0a, 'UNEXPECTED INEXACT SEGMENT'),
} as const;

/** The sense (and status) a copy source or destination failed with, to forward. */
export interface ForwardedSense {
  source: 'source' | 'destination';
  status: number;
  sense?: Buffer;
}

/** Why a copy stopped in segment `segment` (0-based). */
export interface CopyAbort {
  reason: SenseReason;
  segment: number;
  /** Field pointer relative to the segment descriptor (SD = 1), e.g. 4 for the source CSCD id. */
  segmentField?: number;
  forwarded?: ForwardedSense;
  message: string;
}

export class CopyAbortError extends Error {
  readonly abort: CopyAbort;
  constructor(abort: CopyAbort) {
    super(`${abort.reason.name} in segment ${abort.segment}: ${abort.message}`);
    this.abort = abort;
    Object.defineProperty(this, 'name', { value: 'CopyAbortError', enumerable: false });
  }
}

/** SPC-4 4.5.2.9: at most this much forwarded sense; more sets FSDT. */
const FORWARDED_SENSE_MAX = 64;

/** COPY ABORTED sense data for `a`, fixed or descriptor format. */
export function copyAbortedSense(a: CopyAbort, descriptorFormat: boolean): Buffer {
  const sks: SenseKeySpecific | undefined =
    a.segmentField === undefined ? undefined : { kind: 'segmentPointer', sd: true, bpv: false, bitPointer: 0, fieldPointer: a.segmentField };
  const input = {
    senseKey: a.reason.key,
    asc: a.reason.asc,
    ascq: a.reason.ascq,
    commandSpecificInformation: BigInt(a.segment),
    senseKeySpecific: sks,
  };
  if (!descriptorFormat) return encodeFixedSense(input);
  const descriptors: SenseDescriptor[] = [];
  if (a.forwarded !== undefined) {
    const s = a.forwarded.sense ?? Buffer.alloc(0);
    descriptors.push({
      kind: 'forwardedSenseData',
      fsdt: s.length > FORWARDED_SENSE_MAX,
      senseDataSource: a.forwarded.source === 'source' ? SenseDataSource.EXTENDED_COPY_SOURCE : SenseDataSource.EXTENDED_COPY_DESTINATION,
      forwardedStatus: a.forwarded.status,
      senseData: Buffer.from(s.subarray(0, FORWARDED_SENSE_MAX)),
    });
  }
  return encodeDescriptorSense({ ...input, descriptors });
}

/**
 * An error the dispatcher turns into CHECK CONDITION with exactly `sense` (see the file comment).
 */
export function checkConditionWithSense(sense: Buffer, message: string): StoreError {
  return new StoreError({ kind: 'forwarded', status: ScsiStatus.CHECK_CONDITION, sense }, message);
}

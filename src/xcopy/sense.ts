/**
 * The sense reasons of the copy manager (SPC-4 Annex D names; xcopy-spec §5) and the COPY ABORTED
 * sense data it builds itself: the failing segment number in COMMAND-SPECIFIC INFORMATION, a
 * segment pointer in SENSE KEY SPECIFIC (SPC-4 4.5.2.4.5) and, in descriptor format, the failing
 * device's own sense in a forwarded sense data descriptor (SPC-4 4.5.2.9; what CTL does).
 * The copy manager throws a SenseError with these details; the SCSI layer's buildSense writes
 * them in fixed or descriptor format, as the LU's D_SENSE asks.
 */
import { SenseKey } from '../scsi/constants';
import { SenseDataSource } from '../scsi/sense';
import { senseReason as reason, type SenseDetails, type SenseReason } from '../target/scsi';

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

/**
 * The sense details of COPY ABORTED for `a` (SPC-4 6.4.3): the failing segment's number in
 * COMMAND-SPECIFIC INFORMATION, a segment pointer when a field of it is to blame, and the
 * failing device's own sense forwarded (descriptor format). The SCSI layer builds the bytes.
 */
export function copyAbortedDetails(a: CopyAbort): SenseDetails {
  return {
    commandSpecificInformation: BigInt(a.segment),
    ...(a.segmentField !== undefined ? { segmentField: a.segmentField } : {}),
    ...(a.forwarded !== undefined
      ? {
          forwarded: {
            senseDataSource: a.forwarded.source === 'source' ? SenseDataSource.EXTENDED_COPY_SOURCE : SenseDataSource.EXTENDED_COPY_DESTINATION,
            status: a.forwarded.status,
            sense: a.forwarded.sense ?? Buffer.alloc(0),
          },
        }
      : {}),
  };
}

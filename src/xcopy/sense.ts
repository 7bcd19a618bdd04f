/**
 * The COPY ABORTED sense data the copy manager builds itself (its reasons are in the one table,
 * `Sense` in src/scsi/sense-reasons.ts): the failing segment number in COMMAND-SPECIFIC INFORMATION, a
 * segment pointer in SENSE KEY SPECIFIC (SPC-4 r37 4.5.2.4.5) and, in descriptor format, the failing
 * device's own sense in a forwarded sense data descriptor (SPC-4 r37 4.5.2.9; what CTL does).
 * The copy manager throws a SenseError with these details; the SCSI layer's buildSense writes
 * them in fixed or descriptor format, as the LU's D_SENSE asks.
 */
import { AgentError } from '../errors';
import { SenseDataSource } from '../scsi/sense';
import type { SenseDetails, SenseReason } from '../scsi/sense-reasons';

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

/** The copy manager stopped a copy in a segment (code ERR_XCOPY_ABORTED); it answers COPY ABORTED. */
export class CopyAbortError extends AgentError {
  readonly abort: CopyAbort;
  constructor(abort: CopyAbort) {
    super('ERR_XCOPY_ABORTED', `${abort.reason.name} in segment ${abort.segment}: ${abort.message}`);
    this.abort = abort;
  }
}

/**
 * The sense details of COPY ABORTED for `a` (SPC-4 r37 6.4.3): the failing segment's number in
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

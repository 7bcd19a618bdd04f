/**
 * The one retry policy of the initiator (QEMU block/iscsi.c iscsi_co_generic_cb keeps its policy
 * in one place too): BUSY, TASK SET FULL and UNIT ATTENTION are retried a bounded number of times
 * after a randomized exponential backoff; everything else is final.
 */
import { ScsiStatus, SenseKey } from '../scsi/constants';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** First backoff in ms; doubles each attempt, capped at maxDelayMs, with full jitter. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 8, baseDelayMs: 5, maxDelayMs: 1000 };
export const NO_RETRY: RetryPolicy = { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 };


/**
 * Milliseconds to wait before attempt `attempt + 1`, or undefined when the outcome is final.
 * `attempt` counts from 1. A UNIT ATTENTION is retried at once the first time (it reports a
 * one-off event such as a power on or a reset and is cleared by being reported), then backs off.
 */
export function retryDelay(
  policy: RetryPolicy,
  attempt: number,
  scsiStatus: number,
  senseKey: number | undefined,
  random: () => number = Math.random,
): number | undefined {
  if (attempt >= policy.maxAttempts) return undefined;
  const retryable =
    scsiStatus === ScsiStatus.BUSY ||
    scsiStatus === ScsiStatus.TASK_SET_FULL ||
    (scsiStatus === ScsiStatus.CHECK_CONDITION && senseKey === SenseKey.UNIT_ATTENTION);
  if (!retryable) return undefined;
  if (scsiStatus === ScsiStatus.CHECK_CONDITION && attempt === 1) return 0;
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(random() * ceiling);
}

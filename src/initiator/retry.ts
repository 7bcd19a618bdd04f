/**
 * The one retry policy of the initiator (QEMU block/iscsi.c iscsi_co_generic_cb keeps its policy
 * in one place too): BUSY, TASK SET FULL and UNIT ATTENTION are retried a bounded number of times
 * after a randomized exponential backoff; NOT READY, LOGICAL UNIT IS IN PROCESS OF BECOMING READY
 * (04h/01h: e.g. the project's target resuming a snapshot after a restart) is waited out for a
 * bounded time; everything else is final.
 */
import { ScsiStatus, SenseKey } from '../scsi/constants';
import { Sense, senseIs } from '../scsi/sense-reasons';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** First backoff in ms; doubles each attempt, capped at maxDelayMs, with full jitter. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** How long NOT READY 04h/01h (becoming ready) is retried, in ms since the first attempt (0: final). */
  becomingReadyMs?: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 8, baseDelayMs: 5, maxDelayMs: 1000, becomingReadyMs: 60_000 };
export const NO_RETRY: RetryPolicy = { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 };

/** Backoff while a logical unit becomes ready: 100 ms doubling to 1 s. */
function becomingReadyDelay(attempt: number): number {
  return Math.min(1000, 100 * 2 ** Math.min(attempt - 1, 4));
}


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
  more: { asc?: number; ascq?: number; elapsedMs?: number } = {},
): number | undefined {
  if (scsiStatus === ScsiStatus.CHECK_CONDITION && senseIs({ senseKey, asc: more.asc, ascq: more.ascq }, Sense.LOGICAL_UNIT_IS_IN_PROCESS_OF_BECOMING_READY)) {
    // SPC-4 r37 Annex D: LOGICAL UNIT IS IN PROCESS OF BECOMING READY — it will be; wait, bounded.
    const budget = policy.becomingReadyMs ?? 0;
    return (more.elapsedMs ?? 0) < budget ? becomingReadyDelay(attempt) : undefined;
  }
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

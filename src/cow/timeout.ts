/**
 * The bound a snapshot session puts on the work a change waits for: its captures (cow_timeout_ms,
 * docs/cow.md "Failure policies") and the writes that record an invalidation.
 */
import { AgentError } from '../errors';

/** A capture (or an invalidation's write) took longer than its bound. */
export class CaptureTimeout extends AgentError {
  constructor(message: string) {
    super('ERR_COW_TIMEOUT', message);
  }
}

/** `p`, or a CaptureTimeout after `ms` (`p` itself goes on). */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CaptureTimeout(`${what} took longer than ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

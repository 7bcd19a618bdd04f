/**
 * The snapshot events (docs/cow.md "The held event", "The resuming event") for tests in this
 * process: run something while a snapshot's writes are held — the oracle copy of the source,
 * made without the COW code — or before a journalled snapshot resumes after a restart. (A target
 * started as a child process takes test/helpers/hold-copy.js instead, with node --require.)
 */
import { SNAPSHOT_HELD_CHANNEL, SNAPSHOT_RESUMING_CHANNEL, subscribeSnapshotEvent, type SnapshotHeldMessage, type SnapshotResumingMessage } from '../../src/cow/events';
import type { Store } from '../../src/store/store';

/** Subscribes `fn` to `channel`, each message's `hold()` given what `fn` returns; returns the unsubscribe. */
function subscribeHolding<M extends { hold(work: Promise<unknown>): void }>(
  channel: typeof SNAPSHOT_HELD_CHANNEL | typeof SNAPSHOT_RESUMING_CHANNEL,
  fn: (m: M) => unknown,
  wanted: (m: M) => boolean,
): () => void {
  const subscriber = (message: unknown) => {
    const m = message as M;
    if (wanted(m)) m.hold((async () => fn(m))());
  };
  return subscribeSnapshotEvent(channel, subscriber);
}

/**
 * Runs `fn` at each held event — of `source`'s snapshots only, when given — until the returned
 * function is called. The writes stay held until what `fn` returns settles; if it throws or
 * rejects, the institute fails.
 */
export function onSnapshotHeld(fn: (held: SnapshotHeldMessage) => unknown, source?: Store): () => void {
  return subscribeHolding<SnapshotHeldMessage>(SNAPSHOT_HELD_CHANNEL, fn, (held) => source === undefined || held.source === source);
}

/** Runs `run` with `fn` subscribed to the held events of `source`'s snapshots (onSnapshotHeld). */
export async function whileHeld<T>(source: Store, fn: (held: SnapshotHeldMessage) => unknown, run: () => Promise<T>): Promise<T> {
  const off = onSnapshotHeld(fn, source);
  try {
    return await run();
  } finally {
    off();
  }
}

/**
 * Runs `fn` at each resuming event until the returned function is called: the snapshot's resume
 * waits until what `fn` returns settles; if it throws or rejects, that resume fails.
 */
export function onSnapshotResuming(fn: (resuming: SnapshotResumingMessage) => unknown): () => void {
  return subscribeHolding<SnapshotResumingMessage>(SNAPSHOT_RESUMING_CHANNEL, fn, () => true);
}

/**
 * The held event of snapshot institution (docs/cow.md "The held event") for tests in this
 * process: run something while a snapshot's writes are held — the oracle copy of the source,
 * made without the COW code. (A target started as a child process takes test/helpers/hold-copy.js
 * instead, with node --require.)
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { SNAPSHOT_HELD_CHANNEL, type SnapshotHeldMessage } from '../../src/cow/session';
import type { Store } from '../../src/store/store';

/**
 * Runs `fn` at each held event — of `source`'s snapshots only, when given — until the returned
 * function is called. The writes stay held until what `fn` returns settles; if it throws or
 * rejects, the institute fails.
 */
export function onSnapshotHeld(fn: (held: SnapshotHeldMessage) => unknown, source?: Store): () => void {
  const subscriber = (m: unknown) => {
    const held = m as SnapshotHeldMessage;
    if (source === undefined || held.source === source) held.hold((async () => fn(held))());
  };
  diagnosticsChannel.subscribe(SNAPSHOT_HELD_CHANNEL, subscriber);
  return () => {
    diagnosticsChannel.unsubscribe(SNAPSHOT_HELD_CHANNEL, subscriber);
  };
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

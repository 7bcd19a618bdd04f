/**
 * The events a snapshot publishes on node:diagnostics_channel (docs/cow.md "The held event" and
 * "The resuming event"): diagnostic hooks, not a management interface. The tests and the drill
 * subscribe to them (the oracle copy of a source while its writes are held; a resume held back
 * or failed on purpose); production code passes no test hook through its options.
 *
 * A subscriber that must act before the snapshot goes on passes its promise to the message's
 * `hold()`, from the subscriber itself (not later); the publisher waits until every such promise
 * has settled, and a rejected one fails the step. Subscribers must not throw: the channel reports
 * a subscriber's exception as uncaught, not to the publisher. With no subscriber nothing is
 * published and nothing waits.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import type { Store } from '../store/store';

/**
 * The channel a session publishes on at institution (docs/method.md 602) while the source's
 * writes are held — drained, none admitted — before its capture is armed: a SnapshotHeldMessage.
 * The tests and the drill copy the source's backing file here, an oracle of the image made
 * without the COW code. A rejected `hold()` fails the institution (journalled ABANDONED).
 */
export const SNAPSHOT_HELD_CHANNEL = 'xcopy-agent:snapshot:held';

export interface SnapshotHeldMessage {
  snapshotId: string;
  /** The source LUN's store (its COW filter): nothing changes it until the release. */
  source: Store;
  /**
   * Keeps the writes held until `work` settles; call it from the subscriber itself (not later).
   * A rejected `work` fails the institution (journalled ABANDONED). Subscribers must not throw:
   * the channel reports a subscriber's exception as uncaught, not to the session.
   */
  hold(work: Promise<unknown>): void;
}

/**
 * The channel the snapshot manager publishes on after a restart, before it resumes each
 * journalled session from its OBF (capturing sessions first): a SnapshotResumingMessage. Until
 * the resume is done, a capturing session's source refuses changes (NOT READY, becoming ready).
 * A rejected `hold()` fails that resume as an unreadable OBF would: a capturing session's source
 * then stays NOT READY (manual intervention), an ended one is listed as unresumable.
 */
export const SNAPSHOT_RESUMING_CHANNEL = 'xcopy-agent:snapshot:resuming';

export interface SnapshotResumingMessage {
  snapshotId: string;
  /** The source LUN's storage object key, as journalled (e.g. /backstores/fileio/src). */
  source: string;
  /** The OBF's store spec or storage object key, as journalled. */
  obf: string;
  /** Keeps the resume waiting until `work` settles; call it from the subscriber itself. */
  hold(work: Promise<unknown>): void;
}

const heldChannel = diagnosticsChannel.channel(SNAPSHOT_HELD_CHANNEL);
const resumingChannel = diagnosticsChannel.channel(SNAPSHOT_RESUMING_CHANNEL);

/**
 * Subscribes `fn` to a snapshot event through the very channel object this module publishes on;
 * returns the unsubscribe. In-process subscribers use this rather than subscribing by name: in
 * Node 20 the by-name registry holds channels weakly, and the finalizer of a collected channel
 * of the same name (e.g. of an earlier copy of this module) can drop the current one from the
 * registry, so that a subscription by name lands on a channel nobody publishes on. (A subscriber
 * preloaded into another process, before this module loads, may subscribe by name.)
 */
export function subscribeSnapshotEvent(name: typeof SNAPSHOT_HELD_CHANNEL | typeof SNAPSHOT_RESUMING_CHANNEL, fn: (message: unknown) => void): () => void {
  const channel = name === SNAPSHOT_HELD_CHANNEL ? heldChannel : resumingChannel;
  channel.subscribe(fn);
  return () => {
    channel.unsubscribe(fn);
  };
}

/** Publishes the held event (when anyone listens) and waits for the work its subscribers hold on. */
export function publishHeld(snapshotId: string, source: Store): Promise<void> {
  return publishAndWait(heldChannel, 'held', snapshotId, { source });
}

/** Publishes the resuming event (when anyone listens) and waits for the work its subscribers hold on. */
export function publishResuming(record: { id: string; source: string; obf: string }): Promise<void> {
  return publishAndWait(resumingChannel, 'resuming', record.id, { source: record.source, obf: record.obf });
}

async function publishAndWait(channel: diagnosticsChannel.Channel, event: string, snapshotId: string, fields: object): Promise<void> {
  if (!channel.hasSubscribers) return;
  const work: Array<Promise<unknown>> = [];
  let open = true;
  channel.publish({
    snapshotId,
    ...fields,
    hold: (w: Promise<unknown>) => {
      if (!open) throw new Error(`snapshot ${snapshotId}: hold() after the ${event} event was published`);
      work.push(w);
    },
  });
  open = false;
  const failed = (await Promise.allSettled(work)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

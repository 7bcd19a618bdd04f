/**
 * Never silently wrong (docs/design.md "Why the result is exact"): when a snapshot gives up
 * capturing under protect-application, its INVALID state is made durable — the journal and,
 * where it still works, the OBF's superblock — before any uncaptured change may reach the
 * source. The changes that found the snapshot invalidating wait for it (capture.ts); if neither
 * record can be written they fail: a snapshot must never be wrong in silence.
 */
import { StoreError } from '../store/store';
import { ObfState } from '../obf/format';
import type { Logger } from '../util/log';
import type { SessionJournal, SessionRecord, SnapshotReason } from './session-record';
import { OBF_REASON_OF, type SuperblockWriter } from './superblock-writer';
import { withTimeout } from './timeout';

/** How long the journal's INVALID entry may take. */
const JOURNAL_BOUND_MS = 5_000;
/** How long the superblock's INVALID rewrite may take (the OBF may be the thing failing). */
const SUPERBLOCK_BOUND_MS = 2_000;

export class Invalidation {
  private recording: Promise<void> | undefined;
  private writing = false;

  /** `record`: the session's, already INVALID with its reason when `begin` is called. */
  constructor(
    private readonly o: { id: string; record: SessionRecord; journal: SessionJournal; superblock: SuperblockWriter; log: Logger },
  ) {}

  /**
   * The invalidation once begun: resolves when INVALID is recorded, rejects (a StoreError,
   * write-error) when it could be recorded nowhere. Changes wait for it.
   */
  get pending(): Promise<void> | undefined {
    return this.recording;
  }

  /** Its own writes (journal, superblock) are still running. */
  get running(): boolean {
    return this.writing;
  }

  /**
   * Records INVALID (`reason`, `detail`) in the journal and the superblock, both at once and
   * both bounded: either one failing or hanging must not hold writes forever. Once one of them
   * has it, `letGo` runs (the session gives its source and OBF up) and the promise resolves.
   */
  begin(reason: SnapshotReason, detail: string, letGo: () => void): Promise<void> {
    const { id, record, journal, superblock, log } = this.o;
    this.writing = true;
    this.recording = (async () => {
      const [journalled, superblocked] = await Promise.allSettled([
        withTimeout(journal.save({ ...record }), JOURNAL_BOUND_MS, 'the journal update'),
        withTimeout(superblock.rewrite({ state: ObfState.INVALID, reason: OBF_REASON_OF[reason] }), SUPERBLOCK_BOUND_MS, 'the superblock update'),
      ]);
      if (journalled.status === 'rejected') log.error({ err: (journalled.reason as Error).message }, 'could not journal the INVALID state');
      if (superblocked.status === 'rejected') log.warn({ err: (superblocked.reason as Error).message }, 'could not mark the OBF superblock INVALID');
      const recorded = journalled.status === 'fulfilled' || superblocked.status === 'fulfilled';
      log.warn({ reason, detail, durable: recorded }, 'snapshot INVALID (protect-application: writes go on uncaptured)');
      if (!recorded) throw new StoreError({ kind: 'write-error' }, `snapshot ${id} is INVALID (${reason}) and that could not be recorded anywhere; writes are refused`);
      letGo();
    })().finally(() => {
      this.writing = false;
    });
    return this.recording;
  }
}

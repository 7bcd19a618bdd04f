/**
 * The superblock a snapshot session keeps at the start of its OBF (docs/obf-format.md): the
 * first one, written ACTIVE at institution (docs/method.md 602), and its rewrites afterwards —
 * the time of institution, MARKED, SEALED (docs/method.md 606), INVALID with its reason.
 */
import crypto from 'node:crypto';
import type { Store } from '../store/store';
import { ObfPolicy, ObfReason, ObfState, OBF_LOG_START_LBA, type ObfSuperblock } from '../obf/format';
import type { ObfAppender } from './obf-writer';
import type { SessionRecord, SnapshotPolicy, SnapshotReason, SnapshotState } from './session-record';

/** The superblock's STATE of each session state. */
export const OBF_STATE_OF: Record<SnapshotState, ObfState> = { ACTIVE: ObfState.ACTIVE, MARKED: ObfState.MARKED, SEALED: ObfState.SEALED, INVALID: ObfState.INVALID };

/** The superblock's REASON of each reason a session is INVALID. */
export const OBF_REASON_OF: Record<SnapshotReason, ObfReason> = {
  OBF_FULL: ObfReason.OBF_FULL,
  OBF_IO_ERROR: ObfReason.OBF_IO_ERROR,
  COW_TIMEOUT: ObfReason.COW_TIMEOUT,
  TRACKING_GAP: ObfReason.TRACKING_GAP,
  SOURCE_IO_ERROR: ObfReason.SOURCE_IO_ERROR,
  ABANDONED: ObfReason.ABANDONED,
};

function policyCode(p: SnapshotPolicy): ObfPolicy {
  return p === 'protect-snapshot' ? ObfPolicy.PROTECT_SNAPSHOT : ObfPolicy.PROTECT_APPLICATION;
}

/**
 * The source's designator for the superblock: its NAA (designator type 3, SPC-4 r37 7.8.6), else
 * a hash of its name (type 0, vendor specific).
 */
export function sourceDesignator(store: Store): { designatorType: number; designator: Buffer } {
  const naa = store.identity.naa;
  if (naa) return { designatorType: 3, designator: Buffer.from(naa) };
  return { designatorType: 0, designator: crypto.createHash('sha256').update(store.identity.name).digest().subarray(0, 16) };
}

/** The superblock of a new snapshot (ACTIVE, generation 1) of `source` into `obf`. */
export function initialSuperblock(o: { snapshotId: string; seriesId: string; source: Store; obf: Store; chunkBytes: number; policy: SnapshotPolicy; now: number }): ObfSuperblock {
  return {
    blockSize: o.obf.blockSize,
    snapshotId: o.snapshotId,
    seriesId: o.seriesId,
    sourceDesignator: sourceDesignator(o.source),
    sourceBlockSize: o.source.blockSize,
    sourceCapacity: o.source.blocks,
    chunkSize: o.chunkBytes,
    institutionTimeMs: o.now,
    state: ObfState.ACTIVE,
    policy: policyCode(o.policy),
    reason: ObfReason.NONE,
    logStartLba: OBF_LOG_START_LBA,
    capacityBlocks: o.obf.blocks,
    generation: 1n,
    updatedTimeMs: o.now,
    markerSequence: 0n,
    sealedRecordCount: 0n,
  };
}

/**
 * Rewrites a session's superblock, one rewrite at a time, never taking an INVALID snapshot back
 * to another state (INVALID is final: a late MARKED or SEALED rewrite is dropped).
 */
export class SuperblockWriter {
  private chain: Promise<unknown> = Promise.resolve();
  /** Rewrites started and not finished (a timed-out one may still land). */
  private running = 0;

  /** `record`: the session's, whose state says whether the snapshot is INVALID. */
  constructor(
    private readonly appender: Pick<ObfAppender, 'writeSuperblock'>,
    private readonly record: Pick<SessionRecord, 'state'>,
  ) {}

  /** A rewrite has started and not finished (queued, running, or given up on and still running). */
  get writing(): boolean {
    return this.running > 0;
  }

  /** Rewrites the superblock with `update` once the rewrites before it have finished. */
  rewrite(update: Partial<ObfSuperblock>): Promise<void> {
    this.running++;
    const run = this.chain
      .then(async () => {
        if (this.record.state === 'INVALID' && update.state !== ObfState.INVALID) return;
        await this.appender.writeSuperblock(update);
      })
      .finally(() => this.running--);
    this.chain = run.catch(() => undefined);
    return run;
  }
}

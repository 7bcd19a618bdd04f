/**
 * The capture path of a snapshot session (docs/cow.md "COW"): the guard the COW filter puts in
 * front of every change while the snapshot captures (docs/method.md 602, step 3). Two of the
 * invariants of docs/design.md "Why the result is exact" live here:
 * - capture before change: beforeChange() resolves only once every chunk the change touches has
 *   its original durably in the OBF (group-committed: write + flush); changeWith() makes a write
 *   only once its capture, and every capture before it, is durable (capture-commit.ts);
 * - first capture wins: a chunk is captured once (the chunk table, and one in-flight capture per
 *   chunk that concurrent changes share); adjacent chunks a change needs at once are captured
 *   as one record (up to MAX_CAPTURE_RUN_BYTES).
 * A capture that fails takes the policy's way (captureFailed): refused with sense under
 * protect-snapshot, the snapshot made INVALID durably first under protect-application
 * (invalidation.ts).
 *
 * Every host write of a captured source passes here: no allocation and no await beyond what a
 * capture needs (bench:cow measures this path).
 */
import type { Store } from '../store/store';
import { HOST_WRITE_CANCELLED, HOST_WRITE_PENDING } from '../native/fileops';
import type { Logger } from '../util/log';
import type { HostWriteOutcome, SourceHostWrite } from './capture-commit';
import type { CaptureRate } from './capture-rate';
import type { ChunkTable } from './chunk-table';
import { refusedChange, type RefusalKind } from './cow-store';
import { ObfFullError, SourceReadError, type CommittedRecord, type ObfAppender } from './obf-writer';
import { OriginalReader, type Original } from './original-reader';
import type { SessionRecord, SnapshotReason } from './session-record';
import { CaptureTimeout, withTimeout } from './timeout';

/** Bytes of originals one change captures at a time (a window of its chunks). */
const CAPTURE_WINDOW_BYTES = 4 * 1024 * 1024;

/** What the capture path asks of its session. */
export interface CaptureOwner {
  readonly id: string;
  readonly record: Pick<SessionRecord, 'policy' | 'cowTimeoutMs'>;
  /** Captures are made (ACTIVE or MARKED, not terminating). */
  readonly capturing: boolean;
  /** The snapshot is being made INVALID: changes wait until that is recorded. */
  readonly invalidating: Promise<void> | undefined;
  /** Gives up capturing, durably, before any uncaptured change may reach the source. */
  invalidate(reason: SnapshotReason, detail: string): Promise<void>;
}

/** A host write a capture commit carries (changeWith), and what became of it. */
interface CarriedWrite {
  write: SourceHostWrite;
  outcome?: HostWriteOutcome;
}

/**
 * Why a change refused under protect-snapshot fails (the SCSI layer gives the sense from
 * src/scsi/sense-reasons.ts; ASC/ASCQ names of SPC-4 r37 Annex D): OBF full → no-space, DATA
 * PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT (27h/07h, what a thin LUN out of space
 * answers); COW timeout → command-timeout, ABORTED COMMAND, COMMAND TIMEOUT DURING PROCESSING
 * (2Eh/02h, hosts retry it); OBF or source I/O error → hardware-write-error, HARDWARE ERROR,
 * WRITE ERROR (0Ch/00h). The source is unchanged in each case.
 */
function refusalKind(reason: SnapshotReason): RefusalKind {
  switch (reason) {
    case 'OBF_FULL':
      return 'no-space';
    case 'COW_TIMEOUT':
      return 'command-timeout';
    default:
      return 'hardware-write-error';
  }
}

export class ChunkCapture {
  /**
   * Once the session has claimed its source (readFrom): the store below the source's filter,
   * the reader of the originals of chunks being captured there, and whether the OBF commit reads
   * them itself (a file source and a file OBF: ObfAppender.appendCapture).
   */
  private below: { store: Store; originals: OriginalReader; commitReads: boolean } | undefined;

  /** `source`: the source LUN's store (its COW filter), for its geometry. */
  constructor(
    private readonly owner: CaptureOwner,
    private readonly source: Store,
    private readonly chunks: ChunkTable,
    private readonly appender: ObfAppender,
    private readonly rate: CaptureRate,
    private readonly log: Logger,
  ) {}

  /**
   * Sets up the captures once the source is claimed: the originals of `chunkBytes` chunks are
   * read from `store`, the store below the source's filter (or by the OBF commit itself).
   */
  readFrom(store: Store, chunkBytes: number): void {
    this.below = { store, originals: new OriginalReader(store, chunkBytes), commitReads: this.appender.readOriginalsFrom(store) };
  }

  /** Capturing has ended: the pooled chunk buffers go (a session lives on until forgotten). */
  releaseBuffers(): void {
    this.below?.originals.releaseBuffers();
    this.appender.releaseBuffers();
  }

  /**
   * True when a change of `count` blocks at `lba` needs nothing of the capture now — every chunk
   * it touches is captured, or capturing has stopped, and no invalidation is being recorded — so
   * the filter makes it without a call to changeWith or beforeChange (a rewrite costs a Map
   * lookup per chunk and no promise). False says nothing more: ask beforeChange.
   */
  needsNothing(lba: bigint, count: bigint): boolean {
    if (this.owner.invalidating) return false;
    if (!this.owner.capturing) return true;
    const { chunkBlocks, where } = this.chunks;
    const last = Number((lba + count - 1n) / chunkBlocks);
    for (let c = Number(lba / chunkBlocks); c <= last; c++) if (!where.has(c)) return false;
    return true;
  }

  async beforeChange(lba: bigint, count: bigint): Promise<void> {
    if (this.owner.invalidating) await this.owner.invalidating;
    if (!this.owner.capturing) return;
    const { chunkBlocks, where, inProgress, maxRunChunks } = this.chunks;
    const first = Number(lba / chunkBlocks);
    const last = Number((lba + count - 1n) / chunkBlocks);
    const window = Math.max(1, Math.floor(CAPTURE_WINDOW_BYTES / (Number(chunkBlocks) * this.source.blockSize)));
    // A large change (an UNMAP of the whole LUN) captures a window of chunks at a time, each
    // window under its own timeout: memory stays bounded and a big discard is not a timeout.
    // Adjacent chunks neither captured nor being captured go in one record (captureRun).
    for (let from = first; from <= last && this.owner.capturing; ) {
      let waits: Promise<void>[] | undefined;
      let c = from;
      while (c <= last && c - from < window) {
        if (where.has(c)) {
          c++;
          continue;
        }
        const running = inProgress.get(c);
        if (running) {
          (waits ??= []).push(running);
          while (c <= last && inProgress.get(c) === running) c++;
          continue;
        }
        let end = c + 1;
        while (end <= last && end - c < maxRunChunks && end - from < window && !where.has(end) && !inProgress.has(end)) end++;
        (waits ??= []).push(this.captureRun(c, end - c));
        c = end;
      }
      from = c;
      if (!waits) continue;
      try {
        await withTimeout<unknown>(waits.length === 1 ? waits[0] : Promise.all(waits), this.owner.record.cowTimeoutMs, `capturing chunks up to ${c - 1}`);
      } catch (err) {
        await this.captureFailed(err, lba, count);
        return;
      }
    }
  }

  /**
   * A capture the change at `lba` needed failed: under protect-snapshot the change is refused
   * (throws, with the policy's sense); under protect-application the snapshot becomes INVALID,
   * durably, and the change goes on uncaptured.
   */
  private async captureFailed(err: unknown, lba: bigint, count: bigint): Promise<void> {
    const reason: SnapshotReason =
      err instanceof ObfFullError ? 'OBF_FULL' : err instanceof CaptureTimeout ? 'COW_TIMEOUT' : err instanceof SourceReadError ? 'SOURCE_IO_ERROR' : 'OBF_IO_ERROR';
    const detail = (err as Error).message;
    if (this.owner.record.policy === 'protect-snapshot') {
      this.log.warn({ reason, detail, lba: lba.toString(), blocks: count.toString() }, 'write refused to keep the snapshot exact (protect-snapshot)');
      throw refusedChange(refusalKind(reason), `snapshot ${this.owner.id}: ${reason}: ${detail}`);
    }
    await this.owner.invalidate(reason, detail);
  }

  /**
   * Makes a host write together with the capture it needs, where the OBF commit can carry it (a
   * file source and a file OBF: appendCapture): the write lies in one chunk not captured yet,
   * and the commit's thread-pool job writes the host's data to the source once the record and
   * every record before it are durable — a first write then costs no thread-pool job and no
   * event-loop turn of its own. Resolves true when the change reached the source, false when the
   * caller must make it (beforeChange, then its own write); rejects as beforeChange does, or
   * with the source's write error. A COW timeout cancels the host write if it has not started.
   */
  async changeWith(lba: bigint, pieces: readonly Buffer[], opts: { fua: boolean }): Promise<boolean> {
    const below = this.below;
    if (this.owner.invalidating || !this.owner.capturing || !below?.commitReads || below.store.readOnly) return false;
    const bs = this.source.blockSize;
    let bytes = 0;
    for (const p of pieces) bytes += p.length;
    if (bytes === 0 || bytes % bs !== 0) return false;
    const count = BigInt(bytes / bs);
    if (lba < 0n || lba + count > this.source.blocks) return false;
    const { chunkBlocks, where, inProgress, maxRunChunks } = this.chunks;
    const c = Number(lba / chunkBlocks);
    const chunks = Number((lba + count - 1n) / chunkBlocks) - c + 1;
    if (chunks > maxRunChunks) return false;
    for (let k = c; k < c + chunks; k++) if (where.has(k) || inProgress.has(k)) return false;
    const host: CarriedWrite = { write: { lba, pieces, fua: opts.fua, state: new Int32Array(1) } };
    const capture = this.captureRun(c, chunks, host);
    try {
      await withTimeout(capture, this.owner.record.cowTimeoutMs, `capturing chunks ${c} to ${c + chunks - 1}`);
    } catch (err) {
      if (Atomics.compareExchange(host.write.state, 0, HOST_WRITE_PENDING, HOST_WRITE_CANCELLED) === HOST_WRITE_PENDING) {
        // Not written, and now never by the commit: the caller's way (refused, or uncaptured
        // once the snapshot is INVALID).
        await this.captureFailed(err, lba, count);
        return false;
      }
      // Too late to cancel: the commit is durable and its job is writing the change.
      try {
        await capture;
      } catch (late) {
        // Not reachable by design: a host write starts only once every commit holding an earlier
        // ticket of the chain finished successfully (commits that fail before their job abandon
        // their ticket as failed). Were it reached, the image could not be trusted.
        await this.owner.invalidate('OBF_IO_ERROR', `a carried write started but its capture failed: ${(late as Error).message}`);
        return true;
      }
    }
    const outcome = host.outcome ?? 'not-written';
    if (outcome === 'written') return true;
    if (outcome === 'not-written') return false;
    throw outcome;
  }

  /**
   * The originals of the `k` chunks from chunk `c` (none captured or being captured) into the
   * OBF as one record, once; concurrent changes to any of them share the capture. `host`: the
   * change that needs it, for the commit to make (changeWith); its outcome is set there.
   */
  private captureRun(c: number, k: number, host?: CarriedWrite): Promise<void> {
    const { inProgress, chunkBlocks } = this.chunks;
    const started = performance.now();
    const p = (async () => {
      const lba = BigInt(c) * chunkBlocks;
      const end = BigInt(c + k) * chunkBlocks;
      const n = Number((end < this.source.blocks ? end : this.source.blocks) - lba);
      const below = this.below!; // set before the capture is armed
      if (below.commitReads) {
        const rec = await this.appender.appendCapture(lba, n, host?.write);
        if (host) host.outcome = rec.host;
        this.chunks.captured(c, k, Number(rec.dataLba));
        this.rate.sample(this.appender.state.dataBytes);
        this.rate.captured(performance.now() - started);
        return;
      }
      let original: Original;
      try {
        original = await below.originals.read(lba, n);
      } catch (err) {
        throw new SourceReadError(`reading the original of chunks ${c} to ${c + k - 1}: ${(err as Error).message}`);
      }
      let rec: CommittedRecord;
      try {
        rec = await this.appender.appendData(lba, n, original.data, { zero: original.zero, dataCrc: original.crc });
      } finally {
        original.release();
      }
      this.chunks.captured(c, k, Number(rec.dataLba));
      this.rate.sample(this.appender.state.dataBytes);
      this.rate.captured(performance.now() - started);
    })().finally(() => {
      for (let i = 0; i < k; i++) inProgress.delete(c + i);
    });
    for (let i = 0; i < k; i++) inProgress.set(c + i, p);
    return p;
  }
}

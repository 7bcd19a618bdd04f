/**
 * A snapshot session (docs/method.md 602 and 606): for one source LUN (behind its COW filter)
 * and one OBF LUN, institute (hold, drain, arm, release), capture first changes of each chunk into
 * the OBF, mark, terminate (seal), report status, serve the image as of institution to a
 * snapshot view, and resume after a crash from what the OBF holds.
 *
 * The session coordinates; what changes for its own reasons lives beside it:
 * - the capture path, in front of every change (capture.ts): capture before change, first
 *   capture wins — the invariants of docs/design.md "Why the result is exact" — over the
 *   captured-chunk table (chunk-table.ts) and the OBF writer (obf-writer.ts);
 * - never silently wrong (invalidation.ts): when a chunk cannot be captured, protect-application
 *   records INVALID durably (journal file and, where it still works, the superblock) before the
 *   change goes on; protect-snapshot fails the change with sense and keeps the snapshot exact;
 * - the superblock and its serialised rewrites (superblock-writer.ts), the capture rate of
 *   status (capture-rate.ts), the view's reads (image-reader.ts), the checks before institution
 *   (institute-options.ts) and the held and resuming events (events.ts).
 * This file keeps the lifecycle: institute, resume, mark, terminate, invalidate, status, ended.
 */
import crypto from 'node:crypto';
import { AgentError } from '../errors';
import { StoreError, type Store } from '../store/store';
import type { Logger } from '../util/log';
import type { ChangeGuard, CowStore } from './cow-store';
import { decodeSuperblock, encodeSuperblock, ObfReason, ObfState, obfReasonName, obfStateName, OBF_LOG_START_LBA, RollingHash, type ObfSuperblock } from '../obf/format';
import { scanLog, type ObfScan } from '../obf/log';
import { ObfAppender, type ObfAppenderState } from './obf-writer';
import { ChunkCapture } from './capture';
import { CaptureRate } from './capture-rate';
import { ChunkTable } from './chunk-table';
import { publishHeld } from './events';
import { ImageReader } from './image-reader';
import { checkNoClash, checkObfIsFree, DEFAULT_DRAIN_TIMEOUT_MS, instituteSettings, type InstituteOptions, type InstituteSettings } from './institute-options';
import { Invalidation } from './invalidation';
import type { SessionJournal, SessionRecord, SnapshotPolicy, SnapshotReason, SnapshotState } from './session-record';
import { initialSuperblock, OBF_STATE_OF, sourceDesignator, SuperblockWriter } from './superblock-writer';

export type { SessionJournal, SessionRecord, SnapshotPolicy, SnapshotReason, SnapshotState } from './session-record';
export { DEFAULT_CHUNK_BYTES, DEFAULT_COW_TIMEOUT_MS, DEFAULT_DRAIN_TIMEOUT_MS, type InstituteOptions } from './institute-options';
export { SNAPSHOT_HELD_CHANNEL, type SnapshotHeldMessage } from './events';

export interface SnapshotStatus {
  id: string;
  series_id: string;
  state: SnapshotState;
  reason?: SnapshotReason;
  reason_detail?: string;
  source: string;
  obf: string;
  policy: SnapshotPolicy;
  chunk_bytes: number;
  instituted_at: string;
  institute_pause_ms: number;
  records: number;
  bytes: number;
  captured_chunks: number;
  obf_used_blocks: number;
  obf_capacity_blocks: number;
  obf_block_size: number;
  fill: number;
  rate_bytes_per_s: number;
  projected_full_s: number | null;
  commits: number;
  marker_sequence?: number;
}

/** An institute that failed after its session was journalled: the journal says ABANDONED. */
export class InstituteFailedError extends AgentError {
  constructor(
    message: string,
    readonly snapshotId: string,
  ) {
    super('ERR_SNAPSHOT_STATE', message);
  }
}

/** The log of a new OBF: nothing after the superblock. */
function emptyLog(endLba: bigint): ObfAppenderState {
  return { endLba, nextSequence: 1n, dataRecords: 0n, dataBytes: 0n, rolling: new RollingHash(), markerSequence: 0n };
}

/** The appender's state over an OBF's valid log prefix (resume). */
function logOf(scan: ObfScan): ObfAppenderState {
  const rolling = new RollingHash();
  for (const r of scan.records) rolling.update(r.crc);
  return {
    endLba: scan.endLba,
    nextSequence: scan.nextSequence,
    dataRecords: BigInt(scan.records.length),
    dataBytes: scan.dataBytes,
    rolling,
    markerSequence: scan.marker?.sequence ?? 0n,
  };
}

/**
 * The state a journalled session resumes in, from what its OBF holds: a capturing one (ACTIVE,
 * MARKED) takes the OBF's word — INVALID with the superblock's reason, SEALED, MARKED or ACTIVE
 * by the log —; an ended one keeps its state, except that a SEALED one whose log lost its SEAL is
 * a tracking gap (`gap`: why). A terminated snapshot never captures again.
 */
export function resumedState(rec: Pick<SessionRecord, 'state'>, sb: ObfSuperblock, scan: ObfScan): { state: SnapshotState; reason?: SnapshotReason } | { gap: string } {
  if (rec.state === 'ACTIVE' || rec.state === 'MARKED') {
    if (sb.state === ObfState.INVALID) return { state: 'INVALID', reason: (obfReasonName(sb.reason) as SnapshotReason) ?? 'OBF_IO_ERROR' };
    if (scan.seal) return { state: 'SEALED' };
    if (scan.marker) return { state: 'MARKED' };
    return { state: 'ACTIVE' };
  }
  // A terminated snapshot never captures again; a seal that is gone means the OBF changed.
  if (rec.state === 'SEALED' && !scan.seal) return { gap: `the journal says SEALED but the OBF's log has no SEAL (scan stopped: ${scan.stop})` };
  return { state: rec.state };
}

export class SnapshotSession implements ChangeGuard {
  readonly id: string;
  readonly source: CowStore;
  readonly obf: Store;
  readonly record: SessionRecord;
  private readonly journal: SessionJournal;
  private readonly log: Logger;
  private readonly appender: ObfAppender;
  private readonly chunks: ChunkTable;
  private readonly capture: ChunkCapture;
  private readonly superblock: SuperblockWriter;
  private readonly invalidation: Invalidation;
  private readonly rate = new CaptureRate();
  private readonly image: ImageReader;
  /** Captures are made (ACTIVE or MARKED, not terminating). */
  capturing: boolean;
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(o: { source: CowStore; obf: Store; record: SessionRecord; journal: SessionJournal; log: Logger; appender: ObfAppender; capturing: boolean }) {
    this.id = o.record.id;
    this.source = o.source;
    this.obf = o.obf;
    this.record = o.record;
    this.journal = o.journal;
    this.log = o.log.child({ snapshot: o.record.id });
    this.appender = o.appender;
    this.capturing = o.capturing;
    this.chunks = new ChunkTable(o.record.chunkBytes, o.source.blockSize, o.appender.sb.blockSize);
    this.capture = new ChunkCapture(this, o.source, this.chunks, o.appender, this.rate, this.log);
    this.superblock = new SuperblockWriter(o.appender, o.record);
    this.invalidation = new Invalidation({ id: this.id, record: o.record, journal: o.journal, superblock: this.superblock, log: this.log });
    this.image = new ImageReader(this, this.chunks, o.source, o.obf, o.appender.sb.blockSize);
  }

  /** Sets up the captures once the source is claimed: its filter hands over the store it wraps. */
  private capturesFrom(source: CowStore): void {
    this.capture.readFrom(source.claimedStore(this), this.record.chunkBytes);
  }

  /** Chunks captured since this session (re)started, and the seconds their captures took in all. */
  get captureTime(): { captures: number; seconds: number } {
    return { captures: this.rate.captures, seconds: this.rate.captureMs / 1000 };
  }

  get state(): SnapshotState {
    return this.record.state;
  }

  // -------------------------------------------------------------------------------------------
  // institute (docs/method.md 602; its steps 0–5 are those of docs/cow.md "Institute (602)")
  // -------------------------------------------------------------------------------------------

  static async institute(o: InstituteOptions): Promise<SnapshotSession> {
    const session = SnapshotSession.fresh(o, instituteSettings(o));
    session.claimSource(o);
    await session.prepareObf(o);
    const pauseMs = await session.holdAndArm(o.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS);
    await session.recordInstitution(pauseMs);
    return session;
  }

  /** A new snapshot of `o.source` into `o.obf`: its superblock (ACTIVE), record and appender. */
  private static fresh(o: InstituteOptions, s: InstituteSettings): SnapshotSession {
    const id = crypto.randomUUID();
    const seriesId = o.seriesId ?? crypto.randomUUID();
    const now = Date.now();
    const sb = initialSuperblock({ snapshotId: id, seriesId, source: o.source, obf: o.obf, chunkBytes: s.chunkBytes, policy: s.policy, now });
    const record: SessionRecord = {
      id,
      seriesId,
      source: o.sourceKey,
      obf: o.obfSpec,
      chunkBytes: s.chunkBytes,
      policy: s.policy,
      cowTimeoutMs: s.cowTimeoutMs,
      state: 'ACTIVE',
      institutedAtMs: now,
      institutePauseMs: 0,
    };
    const appender = new ObfAppender(o.obf, sb, emptyLog(OBF_LOG_START_LBA));
    return new SnapshotSession({ source: o.source, obf: o.obf, record, journal: o.journal, log: o.log, appender, capturing: true });
  }

  /**
   * Checked and claimed before the first await: a second institute on this source is refused,
   * not raced; an active snapshot's OBF cannot be a source, nor a source an OBF (checkNoClash).
   * The captures are set up and the OBF is protected from hosts.
   */
  private claimSource(o: InstituteOptions): void {
    checkNoClash(o);
    if (!this.source.claim(this)) throw new AgentError('ERR_SNAPSHOT_STATE', `${o.sourceKey} already has an active snapshot; terminate it first`);
    this.capturesFrom(this.source);
    this.protectObf(true);
  }

  /**
   * Steps 0 and 1: the OBF is checked (unless overwrite_obf), its superblock written ACTIVE and
   * the session journalled. The OBF is made ready before the hold, so the hold itself does no
   * OBF I/O.
   */
  private async prepareObf(o: InstituteOptions): Promise<void> {
    let sbWritten = false;
    try {
      if (!o.overwriteObf) await checkObfIsFree(o.obf, o.obfSpec, o.endedHere);
      await o.obf.write(0n, encodeSuperblock(this.appender.sb), { fua: true });
      sbWritten = true;
      await this.journal.save(this.record);
    } catch (err) {
      const why = `the OBF or the journal cannot be written (${(err as Error).message})`;
      if (sbWritten) return this.abandon(why);
      this.letGo();
      if (err instanceof AgentError && !(err instanceof StoreError)) throw err;
      throw new AgentError('ERR_SNAPSHOT_STATE', `institute failed: ${why}`);
    }
  }

  /**
   * Steps 2–4, the hold: new changes wait, changes in flight drain, the held event is published,
   * COW is armed, changes go on. Returns the pause hosts saw (ms).
   */
  private async holdAndArm(drainTimeoutMs: number): Promise<number> {
    const t0 = process.hrtime.bigint();
    try {
      await this.source.hold(drainTimeoutMs);
    } catch (err) {
      return this.abandon(`${(err as Error).message} (retry when the host load is lower, or raise drain_timeout_ms)`);
    }
    let heldError: unknown;
    try {
      await publishHeld(this.id, this.source);
      this.source.arm(this);
    } catch (err) {
      heldError = err;
    } finally {
      this.source.release();
    }
    if (heldError !== undefined) return this.abandon(`while writes were held: ${(heldError as Error).message}`);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  }

  /**
   * Step 5, outside the hold: record T0 and the pause. From here on the session exists whatever
   * fails.
   */
  private async recordInstitution(pauseMs: number): Promise<void> {
    const record = this.record;
    record.institutedAtMs = Date.now();
    record.institutePauseMs = pauseMs;
    try {
      await this.serialize(() => this.superblock.rewrite({ institutionTimeMs: record.institutedAtMs }));
    } catch (err) {
      await this.invalidate('OBF_IO_ERROR', `superblock: ${(err as Error).message}`).catch(() => undefined);
    }
    await this.journal.save(record).catch(() => undefined);
    this.log.info({ source: record.source, obf: record.obf, chunk_bytes: record.chunkBytes, policy: record.policy, pause_ms: Number(pauseMs.toFixed(3)) }, 'snapshot instituted');
  }

  /**
   * A session that never ran: the journal and the superblock say ABANDONED where they still
   * can, or an ACTIVE entry of it would fence the source and its OBF at the next start.
   */
  private async abandon(why: string): Promise<never> {
    this.capturing = false;
    this.letGo();
    this.record.state = 'INVALID';
    this.record.reason = 'ABANDONED';
    this.record.reasonDetail = `institute: ${why}`;
    await this.journal.save(this.record).catch(() => undefined);
    await this.appender.writeSuperblock({ state: ObfState.INVALID, reason: ObfReason.ABANDONED }).catch(() => undefined);
    throw new InstituteFailedError(`institute failed: ${why}`, this.id);
  }

  // -------------------------------------------------------------------------------------------
  // resume after a restart
  // -------------------------------------------------------------------------------------------

  /**
   * After a restart: rebuilds the captured-chunk map from the OBF's valid log prefix and re-arms
   * COW before the target serves the source again. A record whose OBF cannot be read, or belongs
   * to another snapshot or source, comes back INVALID with reason TRACKING_GAP.
   */
  static async resume(o: {
    source: CowStore;
    obf: Store | undefined;
    record: SessionRecord;
    journal: SessionJournal;
    log: Logger;
    obfError?: string;
    /** Stops the scan of the log (the target is stopping): resume then throws, nothing changed. */
    signal?: AbortSignal;
  }): Promise<SnapshotSession> {
    const rec = { ...o.record };
    const log = o.log.child({ snapshot: rec.id });
    const gap = (why: string, obf?: Store) => SnapshotSession.trackingGap(o, rec, log, why, obf);
    if (!o.obf) return gap(`the OBF ${rec.obf} cannot be opened: ${o.obfError ?? 'unknown'}`);
    const obf = o.obf;
    let sb: ObfSuperblock;
    try {
      sb = decodeSuperblock(await obf.read(0n, 1));
    } catch (err) {
      return gap(`the OBF superblock cannot be read: ${(err as Error).message}`, obf);
    }
    if (sb.snapshotId !== rec.id) return gap(`the OBF holds snapshot ${sb.snapshotId}, not ${rec.id}`, obf);
    const des = sourceDesignator(o.source);
    if (sb.sourceCapacity !== o.source.blocks || sb.sourceBlockSize !== o.source.blockSize || !sb.sourceDesignator.designator.equals(des.designator)) {
      return gap('the source LUN is not the one the OBF was made for (designator, capacity or block size differ)', obf);
    }
    const scan = await scanLog((lba, n) => {
      o.signal?.throwIfAborted();
      return obf.read(lba, n);
    }, sb);
    const appender = new ObfAppender(obf, sb, logOf(scan));
    const resumed = resumedState(rec, sb, scan);
    if ('gap' in resumed) return gap(resumed.gap, obf);
    if (resumed.reason) rec.reason = resumed.reason;
    rec.state = resumed.state;
    const capturing = rec.state === 'ACTIVE' || rec.state === 'MARKED';
    const session = new SnapshotSession({ source: o.source, obf, record: rec, journal: o.journal, log: o.log, appender, capturing });
    session.chunks.rebuild(scan.records);
    if (capturing) {
      if (!o.source.claim(session)) return gap('another snapshot of the same source was resumed first');
      session.capturesFrom(o.source);
      session.protectObf(true);
      await o.source.hold(0).catch(() => undefined);
      o.source.arm(session);
      o.source.release();
    }
    await o.journal.save(rec);
    log.info({ state: rec.state, records: scan.records.length, scan_stop: scan.stop, scan_detail: scan.stopDetail, end_lba: scan.endLba.toString() }, 'snapshot resumed from its OBF');
    return session;
  }

  /** A journalled session that cannot resume: INVALID, TRACKING_GAP (journalled), never capturing. */
  private static async trackingGap(
    o: { source: CowStore; journal: SessionJournal; log: Logger },
    rec: SessionRecord,
    log: Logger,
    why: string,
    obf?: Store,
  ): Promise<SnapshotSession> {
    if (rec.state !== 'INVALID') {
      rec.state = 'INVALID';
      rec.reason = 'TRACKING_GAP';
      rec.reasonDetail = why;
      await o.journal.save(rec);
      log.warn({ reason: why }, 'snapshot INVALID after restart: TRACKING_GAP');
    }
    const dummySb = { blockSize: 512, capacityBlocks: 0n } as ObfSuperblock;
    const appender = new ObfAppender(obf ?? o.source, dummySb, emptyLog(0n));
    return new SnapshotSession({ source: o.source, obf: obf ?? o.source, record: rec, journal: o.journal, log: o.log, appender, capturing: false });
  }

  // -------------------------------------------------------------------------------------------
  // COW (the guard in front of every change: capture.ts)
  // -------------------------------------------------------------------------------------------

  beforeChange(lba: bigint, count: bigint): Promise<void> {
    return this.capture.beforeChange(lba, count);
  }

  /** ChunkCapture.needsNothing: the change may go straight to the source (a rewrite). */
  needsNothing(lba: bigint, count: bigint): boolean {
    return this.capture.needsNothing(lba, count);
  }

  /** ChunkCapture.changeWith: a host write made together with the capture it needs, where it can be. */
  changeWith(lba: bigint, pieces: readonly Buffer[], opts: { fua: boolean }): Promise<boolean> {
    return this.capture.changeWith(lba, pieces, opts);
  }

  /** The snapshot is being made INVALID (invalidate): changes wait until that is recorded. */
  get invalidating(): Promise<void> | undefined {
    return this.invalidation.pending;
  }

  /** Capturing has ended: the pooled chunk buffers go (a session lives on until forgotten). */
  private releaseBuffers(): void {
    this.capture.releaseBuffers();
  }

  /** Gives the source up (its capture disarmed) and lets hosts write the OBF again. */
  private letGo(): void {
    this.source.unclaim(this);
    this.protectObf(false);
  }

  /**
   * Gives up capturing, durably, before any uncaptured change may reach the source: the journal
   * first, then the superblock (bounded: the OBF may be the thing failing). If neither can be
   * written the changes waiting here fail — a snapshot must never be wrong in silence.
   */
  invalidate(reason: SnapshotReason, detail: string): Promise<void> {
    const pending = this.invalidation.pending;
    if (pending) return pending;
    if (this.record.state === 'INVALID' || this.record.state === 'SEALED') return Promise.resolve();
    this.capturing = false;
    this.record.state = 'INVALID';
    this.record.reason = reason;
    this.record.reasonDetail = detail;
    this.releaseBuffers();
    return this.invalidation.begin(reason, detail, () => this.letGo());
  }

  /**
   * While the snapshot captures, an OBF that is a LUN of this target is read-only to hosts and
   * to the copy manager (DATA PROTECT): only the session appends to it.
   */
  protectObf(on: boolean): void {
    const o = this.obf as { obfOf?: string };
    if (!('obfOf' in (this.obf as object))) return;
    if (on) o.obfOf = this.id;
    else if (o.obfOf === this.id) o.obfOf = undefined;
  }

  /** Runs state changes (mark, terminate, the T0 rewrite) one at a time. */
  serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  // -------------------------------------------------------------------------------------------
  // mark, terminate (docs/method.md 606), status
  // -------------------------------------------------------------------------------------------

  /** The alternative embodiment: a MARKER record at the end of the outboard copy; COW goes on. */
  mark(): Promise<SnapshotStatus> {
    return this.serialize(async () => {
      if (this.record.state !== 'ACTIVE') throw new AgentError('ERR_SNAPSHOT_STATE', `snapshot ${this.id} is ${this.record.state}; only an ACTIVE snapshot can be marked`);
      await this.appender.appendMarker();
      if (this.record.state !== 'ACTIVE') throw new AgentError('ERR_SNAPSHOT_STATE', `snapshot ${this.id} became ${this.record.state} while it was being marked`);
      this.record.state = 'MARKED';
      await this.superblock.rewrite({ state: ObfState.MARKED, markerSequence: this.appender.state.markerSequence });
      await this.journal.save(this.record);
      this.log.info({ marker_sequence: this.appender.state.markerSequence.toString() }, 'snapshot marked');
      return this.status();
    });
  }

  /**
   * Stops capturing, waits for captures in flight, writes the SEAL record, seals the superblock.
   * A failure on the way makes the snapshot INVALID (OBF_IO_ERROR): it no longer captures, so it
   * must not stay ACTIVE.
   */
  terminate(): Promise<SnapshotStatus> {
    return this.serialize(async () => {
      if (this.record.state === 'SEALED' || this.record.state === 'INVALID') return this.status();
      this.capturing = false;
      try {
        await this.chunks.settled();
        await this.appender.idle();
        if ((this.record.state as SnapshotState) === 'INVALID') return this.status(); // a capture failed meanwhile
        await this.appender.appendSeal();
        await this.superblock.rewrite({ state: ObfState.SEALED, sealedRecordCount: this.appender.state.dataRecords });
      } catch (err) {
        await this.invalidate('OBF_IO_ERROR', `terminate: ${(err as Error).message}`).catch(() => undefined);
        throw new AgentError('ERR_SNAPSHOT_STATE', `snapshot ${this.id} could not be sealed (${(err as Error).message}); it is INVALID`);
      }
      this.record.state = 'SEALED';
      this.letGo();
      this.releaseBuffers();
      // The OBF holds the SEAL: a restart finds the snapshot SEALED even if this write fails.
      await this.journal.save(this.record).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'could not journal SEALED'));
      this.log.info({ records: this.appender.state.dataRecords.toString(), bytes: this.appender.state.dataBytes.toString() }, 'snapshot terminated and sealed');
      return this.status();
    });
  }

  status(): SnapshotStatus {
    const st = this.appender.state;
    const sb = this.appender.sb;
    const cap = Number(sb.capacityBlocks);
    const used = Number(st.endLba);
    const rate = this.rate.perSecond();
    const freeBytes = Math.max(0, cap - used - 2) * sb.blockSize;
    return {
      id: this.id,
      series_id: this.record.seriesId,
      state: this.record.state,
      ...(this.record.reason ? { reason: this.record.reason, reason_detail: this.record.reasonDetail } : {}),
      source: this.record.source,
      obf: this.record.obf,
      policy: this.record.policy,
      chunk_bytes: this.record.chunkBytes,
      instituted_at: new Date(this.record.institutedAtMs).toISOString(),
      institute_pause_ms: Number(this.record.institutePauseMs.toFixed(3)),
      records: Number(st.dataRecords),
      bytes: Number(st.dataBytes),
      captured_chunks: this.chunks.where.size,
      obf_used_blocks: used,
      obf_capacity_blocks: cap,
      obf_block_size: sb.blockSize,
      fill: cap > 0 ? Number((used / cap).toFixed(6)) : 0,
      rate_bytes_per_s: Math.round(rate),
      projected_full_s: rate > 0 && this.capturing ? Math.round(freeBytes / rate) : null,
      commits: this.appender.commits,
      ...(st.markerSequence > 0n ? { marker_sequence: Number(st.markerSequence) } : {}),
    };
  }

  // -------------------------------------------------------------------------------------------
  // The end of a snapshot, and the image as of institution (the snapshot view)
  // -------------------------------------------------------------------------------------------

  /**
   * True once the snapshot has ended and nothing of it writes its OBF any more: SEALED, or
   * INVALID with its invalidation recorded; no capture running (one may still be reading its
   * original, its record to come), no commit in flight, no superblock rewrite running (one given
   * up on by its timeout may still land). Only then may another snapshot take the OBF, or the
   * snapshot be forgotten. A write to the OBF that never returns keeps it false.
   */
  get ended(): boolean {
    if (this.record.state !== 'SEALED' && this.record.state !== 'INVALID') return false;
    return !this.invalidation.running && !this.superblock.writing && this.chunks.inProgress.size === 0 && this.appender.idleNow;
  }

  /** Resolves true once `ended`, false if it is not within `timeoutMs`. */
  async waitEnded(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  }

  /** True while the image as of institution can be read (captures still armed). */
  get viewable(): boolean {
    return this.capturing;
  }

  /** Reads the image as of institution (ImageReader.read): the snapshot view's reads. */
  readImage(lba: bigint, count: number, into?: Buffer): Promise<Buffer> {
    return this.image.read(lba, count, into);
  }

  /** Waits for captures and OBF commits in flight (a clean stop of the target). */
  async quiesce(): Promise<void> {
    await this.chunks.settled();
    await this.appender.idle();
  }

  /** For logs and errors. */
  describe(): string {
    return `${this.id} (${obfStateName(OBF_STATE_OF[this.record.state])})`;
  }
}

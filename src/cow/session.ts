/**
 * A snapshot session (the method's steps 602 and 606): for one source LUN (behind its COW filter)
 * and one OBF LUN, institute (hold, drain, arm, release), capture first changes of each chunk into
 * the OBF, mark, terminate (seal), report status, serve the image as of institution to a
 * snapshot view, and resume after a crash from what the OBF holds.
 *
 * The invariants of ../shared/DESIGN.md "Why the result is exact" live here:
 * - capture before change: beforeChange() resolves only once every chunk the change touches has
 *   its original durably in the OBF (group-committed: write + flush);
 * - first capture wins: a chunk is captured once (a bitmap, and one in-flight capture per chunk
 *   that concurrent changes share);
 * - never silently wrong: when a chunk cannot be captured, protect-application records INVALID
 *   durably (journal file and, where it still works, the superblock) before the change goes on;
 *   protect-snapshot fails the change with sense and keeps the snapshot exact.
 */
import crypto from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import { AgentError } from '../errors';
import { StoreError, type Store } from '../store/store';
import { HOST_WRITE_CANCELLED, HOST_WRITE_PENDING } from '../native/fileops';
import type { Logger } from '../util/log';
import { isAllZero } from '../util/zero';
import type { HostWriteOutcome, SourceHostWrite } from './capture-commit';
import { isSnapshotSource, refusedChange, type ChangeGuard, type CowStore, type RefusalKind } from './cow-store';
import {
  decodeSuperblock,
  encodeSuperblock,
  ObfPolicy,
  ObfReason,
  ObfState,
  obfReasonName,
  obfStateName,
  OBF_LOG_START_LBA,
  OBF_MAGIC,
  RollingHash,
  type ObfSuperblock,
} from '../obf/format';
import { scanLog } from '../obf/log';
import { ObfAppender, ObfFullError, SourceReadError, type CommittedRecord } from './obf-writer';
import { OriginalReader, type Original } from './original-reader';

export type SnapshotPolicy = 'protect-application' | 'protect-snapshot';
export type SnapshotState = 'ACTIVE' | 'MARKED' | 'SEALED' | 'INVALID';
export type SnapshotReason = 'OBF_FULL' | 'OBF_IO_ERROR' | 'COW_TIMEOUT' | 'TRACKING_GAP' | 'SOURCE_IO_ERROR' | 'ABANDONED';

export const DEFAULT_CHUNK_BYTES = 64 * 1024;
export const DEFAULT_COW_TIMEOUT_MS = 5_000;
export const DEFAULT_DRAIN_TIMEOUT_MS = 2_000;
/** Chunks one change captures at a time. */
const CAPTURE_WINDOW = 64;

/** What the target keeps about a session outside the OBF (the journal file), to resume it. */
export interface SessionRecord {
  id: string;
  seriesId: string;
  /** The source LUN's storage object key (e.g. /backstores/fileio/src). */
  source: string;
  /** The OBF's store spec (file:PATH, memory:SIZE, iscsi://...) or storage object key. */
  obf: string;
  chunkBytes: number;
  policy: SnapshotPolicy;
  cowTimeoutMs: number;
  state: SnapshotState;
  reason?: SnapshotReason;
  reasonDetail?: string;
  institutedAtMs: number;
  institutePauseMs: number;
}

/** Where session records are kept durably (src/cow/journal.ts). */
export interface SessionJournal {
  save(record: SessionRecord): Promise<void>;
}

export interface InstituteOptions {
  source: CowStore;
  sourceKey: string;
  obf: Store;
  obfSpec: string;
  journal: SessionJournal;
  chunkBytes?: number;
  policy?: SnapshotPolicy;
  cowTimeoutMs?: number;
  drainTimeoutMs?: number;
  seriesId?: string;
  /**
   * Institute on an OBF that holds something else (data, or the superblock of a snapshot that
   * may still be capturing elsewhere): refused unless this is set (see checkObfIsFree).
   */
  overwriteObf?: boolean;
  /** Snapshots this target knows have ended: an ACTIVE superblock of one is no longer in use. */
  endedHere?: (snapshotId: string) => boolean;
  log: Logger;
}

/**
 * The diagnostics channel (node:diagnostics_channel; docs/cow.md "The held event") a session
 * publishes on at institution while the source's writes are held — drained, none admitted —
 * before its capture is armed: a SnapshotHeldMessage. A diagnostic hook: the tests and the drill
 * copy the source's backing file here, an oracle of the image made without the COW code.
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

const heldChannel = diagnosticsChannel.channel(SNAPSHOT_HELD_CHANNEL);

/** Publishes the held event (when anyone listens) and waits for the work its subscribers hold on. */
async function publishHeld(snapshotId: string, source: Store): Promise<void> {
  if (!heldChannel.hasSubscribers) return;
  const work: Array<Promise<unknown>> = [];
  let open = true;
  const message: SnapshotHeldMessage = {
    snapshotId,
    source,
    hold: (w) => {
      if (!open) throw new Error(`snapshot ${snapshotId}: hold() after the held event was published`);
      work.push(w);
    },
  };
  heldChannel.publish(message);
  open = false;
  const failed = (await Promise.allSettled(work)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

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

class CaptureTimeout extends AgentError {
  constructor(message: string) {
    super('ERR_COW_TIMEOUT', message);
  }
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

/** A host write a capture commit carries (changeWith), and what became of it. */
interface CarriedWrite {
  write: SourceHostWrite;
  outcome?: HostWriteOutcome;
}

const STATE_OF: Record<SnapshotState, ObfState> = { ACTIVE: ObfState.ACTIVE, MARKED: ObfState.MARKED, SEALED: ObfState.SEALED, INVALID: ObfState.INVALID };
const REASON_OF: Record<SnapshotReason, ObfReason> = {
  OBF_FULL: ObfReason.OBF_FULL,
  OBF_IO_ERROR: ObfReason.OBF_IO_ERROR,
  COW_TIMEOUT: ObfReason.COW_TIMEOUT,
  TRACKING_GAP: ObfReason.TRACKING_GAP,
  SOURCE_IO_ERROR: ObfReason.SOURCE_IO_ERROR,
  ABANDONED: ObfReason.ABANDONED,
};

/**
 * Why a change refused under protect-snapshot fails (the SCSI layer gives the sense): OBF full →
 * no-space, DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT (27h/07h, what a thin LUN out of
 * space answers); COW timeout → command-timeout, ABORTED COMMAND, COMMAND TIMEOUT DURING
 * PROCESSING (2Eh/02h, hosts retry it); OBF or source I/O error → hardware-write-error, HARDWARE
 * ERROR, WRITE ERROR (0Ch/00h). The source is unchanged in each case.
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

function policyCode(p: SnapshotPolicy): ObfPolicy {
  return p === 'protect-snapshot' ? ObfPolicy.PROTECT_SNAPSHOT : ObfPolicy.PROTECT_APPLICATION;
}

/** What institute reads of an OBF before it writes one there (checkObfIsFree). */
const OBF_CHECK_BYTES = 1024 * 1024;

/**
 * An OBF is free for a new snapshot when its first MiB is zeros (a blank LUN or file) or it
 * begins with an OBF superblock (a reused OBF; one torn or of another version too) of a snapshot
 * that no longer captures: SEALED, INVALID, or ACTIVE/MARKED on the OBF but ended here
 * (`endedHere`: the journal, not the superblock, records INVALID when the OBF failed). Anything
 * else is refused before a byte is written, with what to do:
 *  - other data: a partition table, a file system's superblock (ext4's at byte 1024, LVM's label
 *    in block 1, btrfs's at 64 KiB — hence a MiB, not block 0), a file's contents;
 *  - the superblock of an ACTIVE or MARKED snapshot this target does not know: it may still be
 *    capturing, from another target sharing the LUN. (Sessions of this target are checked by
 *    the manager before this.)
 * overwrite_obf takes the OBF whatever it holds.
 */
async function checkObfIsFree(obf: Store, spec: string, endedHere?: (snapshotId: string) => boolean): Promise<void> {
  const blocks = Math.min(Number(obf.blocks), Math.ceil(OBF_CHECK_BYTES / obf.blockSize));
  const head = await obf.read(0n, blocks);
  if (head.subarray(0, OBF_MAGIC.length).equals(OBF_MAGIC)) {
    let sb: ObfSuperblock | undefined;
    try {
      sb = decodeSuperblock(head);
    } catch {
      return; // an OBF of another version, or a torn superblock: an OBF all the same
    }
    if ((sb.state === ObfState.ACTIVE || sb.state === ObfState.MARKED) && endedHere?.(sb.snapshotId) !== true) {
      throw new AgentError(
        'ERR_SNAPSHOT_STATE',
        `the OBF ${spec} holds snapshot ${sb.snapshotId}, ${obfStateName(sb.state)} and unknown to this target (it may be capturing from another target): give another OBF, or institute with overwrite_obf if that snapshot is gone`,
      );
    }
    return;
  }
  if (!isAllZero(head)) {
    throw new AgentError(
      'ERR_INVALID_ARG',
      `the OBF ${spec} holds data that is not an OBF (its first ${head.length >= OBF_CHECK_BYTES ? 'MiB is' : `${head.length} bytes are`} not zeros): give a blank LUN or a new file, or institute with overwrite_obf to overwrite it`,
    );
  }
}

/** The source's designator for the superblock: its NAA (type 3), else a hash of its name (type 0). */
function sourceDesignator(store: Store): { designatorType: number; designator: Buffer } {
  const naa = store.identity.naa;
  if (naa) return { designatorType: 3, designator: Buffer.from(naa) };
  return { designatorType: 0, designator: crypto.createHash('sha256').update(store.identity.name).digest().subarray(0, 16) };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CaptureTimeout(`${what} took longer than ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export class SnapshotSession implements ChangeGuard {
  readonly id: string;
  readonly source: CowStore;
  readonly obf: Store;
  readonly record: SessionRecord;
  private readonly journal: SessionJournal;
  private readonly log: Logger;
  private appender: ObfAppender;
  /** Source blocks per chunk. */
  private readonly chunkBlocks: bigint;
  /**
   * Once the session has claimed its source (capturesFrom): the store below the source's filter,
   * the reader of the originals of chunks being captured there, and whether the OBF commit reads
   * them itself (a file source and a file OBF: ObfAppender.appendCapture).
   */
  private below: { store: Store; originals: OriginalReader; commitReads: boolean } | undefined;
  /**
   * Captured chunk → first OBF data block of its record (a number: memory grows with what was
   * captured, ≈ 40 bytes a chunk, never with the source's size).
   */
  private readonly where = new Map<number, number>();
  private readonly inProgress = new Map<number, Promise<void>>();
  /** Captures are made (ACTIVE or MARKED, not terminating). */
  capturing: boolean;
  private invalidating: Promise<void> | undefined;
  /** The invalidation's own writes (journal, superblock) are still running. */
  private invalidationRunning = false;
  /** Superblock rewrites started and not finished (a timed-out one may still land). */
  private superblockWrites = 0;
  private samples: Array<{ t: number; bytes: bigint }> = [];
  private chain: Promise<unknown> = Promise.resolve();
  private sbChain: Promise<unknown> = Promise.resolve();

  private constructor(o: { source: CowStore; obf: Store; record: SessionRecord; journal: SessionJournal; log: Logger; appender: ObfAppender; capturing: boolean }) {
    this.id = o.record.id;
    this.source = o.source;
    this.obf = o.obf;
    this.record = o.record;
    this.journal = o.journal;
    this.log = o.log.child({ snapshot: o.record.id });
    this.appender = o.appender;
    this.chunkBlocks = BigInt(o.record.chunkBytes / o.source.blockSize);
    this.capturing = o.capturing;
  }

  /** Sets up the captures once the source is claimed: its filter hands over the store it wraps. */
  private capturesFrom(source: CowStore): void {
    const store = source.claimedStore(this);
    this.below = { store, originals: new OriginalReader(store, this.record.chunkBytes), commitReads: this.appender.readOriginalsFrom(store) };
  }

  get state(): SnapshotState {
    return this.record.state;
  }

  // -------------------------------------------------------------------------------------------
  // institute (602)
  // -------------------------------------------------------------------------------------------

  static async institute(o: InstituteOptions): Promise<SnapshotSession> {
    const src = o.source;
    const chunkBytes = o.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    const policy = o.policy ?? 'protect-application';
    const cowTimeoutMs = o.cowTimeoutMs ?? DEFAULT_COW_TIMEOUT_MS;
    const B = o.obf.blockSize;
    const sbs = src.blockSize;
    if (src.claimed || src.capturing || src.held) throw new AgentError('ERR_SNAPSHOT_STATE', `${o.sourceKey} already has an active snapshot; terminate it first`);
    if (!Number.isInteger(chunkBytes) || chunkBytes < Math.max(B, sbs) || chunkBytes % B !== 0 || chunkBytes % sbs !== 0 || chunkBytes > 64 * 1024 * 1024) {
      throw new AgentError('ERR_INVALID_ARG', `chunk size ${chunkBytes} must be a multiple of the source block size ${sbs} and the OBF block size ${B}, at most 64 MiB (default 64 KiB)`);
    }
    if ((src.blocks * BigInt(sbs)) % BigInt(B) !== 0n) {
      throw new AgentError('ERR_INVALID_ARG', `the source (${src.blocks} blocks of ${sbs}) is not a whole number of the OBF's ${B}-byte blocks: use an OBF with ${sbs}-byte blocks`);
    }
    if (o.obf.readOnly) throw new AgentError('ERR_INVALID_ARG', `the OBF ${o.obfSpec} is read-only`);
    if (o.obf === src || src.wraps(o.obf)) throw new AgentError('ERR_INVALID_ARG', 'the OBF must not be the source LUN');
    const minBlocks = 1n + 1n + BigInt(chunkBytes / B) + 2n;
    if (o.obf.blocks < minBlocks) throw new AgentError('ERR_INVALID_ARG', `the OBF ${o.obfSpec} has ${o.obf.blocks} blocks; at least ${minBlocks} are needed for one chunk`);
    const id = crypto.randomUUID();
    const seriesId = o.seriesId ?? crypto.randomUUID();
    const now = Date.now();
    const sb: ObfSuperblock = {
      blockSize: B,
      snapshotId: id,
      seriesId,
      sourceDesignator: sourceDesignator(src),
      sourceBlockSize: sbs,
      sourceCapacity: src.blocks,
      chunkSize: chunkBytes,
      institutionTimeMs: now,
      state: ObfState.ACTIVE,
      policy: policyCode(policy),
      reason: ObfReason.NONE,
      logStartLba: OBF_LOG_START_LBA,
      capacityBlocks: o.obf.blocks,
      generation: 1n,
      updatedTimeMs: now,
      markerSequence: 0n,
      sealedRecordCount: 0n,
    };
    const record: SessionRecord = {
      id,
      seriesId,
      source: o.sourceKey,
      obf: o.obfSpec,
      chunkBytes,
      policy,
      cowTimeoutMs,
      state: 'ACTIVE',
      institutedAtMs: now,
      institutePauseMs: 0,
    };
    const appender = new ObfAppender(o.obf, sb, { endLba: OBF_LOG_START_LBA, nextSequence: 1n, dataRecords: 0n, dataBytes: 0n, rolling: new RollingHash(), markerSequence: 0n });
    const session = new SnapshotSession({ source: src, obf: o.obf, record, journal: o.journal, log: o.log, appender, capturing: true });
    // Checked and claimed before the first await: a second institute on this source is refused,
    // not raced; an active snapshot's OBF is written below its filter (the capture commit), so
    // it cannot be a source, and a source cannot become an OBF.
    if (src.obfOf !== undefined) throw new AgentError('ERR_SNAPSHOT_STATE', `${o.sourceKey} is the OBF of active snapshot ${src.obfOf}; it cannot be a source now`);
    if (isSnapshotSource(o.obf)) {
      throw new AgentError('ERR_SNAPSHOT_STATE', `${o.obfSpec} is the source of an active snapshot; it cannot be an OBF now`);
    }
    if (!src.claim(session)) throw new AgentError('ERR_SNAPSHOT_STATE', `${o.sourceKey} already has an active snapshot; terminate it first`);
    session.capturesFrom(src);
    session.protectObf(true);
    // A session that never ran: the journal and the superblock say ABANDONED where they still
    // can, or an ACTIVE entry of it would fence the source and its OBF at the next start.
    const abandon = async (why: string): Promise<never> => {
      session.capturing = false;
      src.unclaim(session);
      session.protectObf(false);
      record.state = 'INVALID';
      record.reason = 'ABANDONED';
      record.reasonDetail = `institute: ${why}`;
      await o.journal.save(record).catch(() => undefined);
      await appender.writeSuperblock({ state: ObfState.INVALID, reason: ObfReason.ABANDONED }).catch(() => undefined);
      throw new InstituteFailedError(`institute failed: ${why}`, id);
    };
    let sbWritten = false;
    try {
      if (!o.overwriteObf) await checkObfIsFree(o.obf, o.obfSpec, o.endedHere);
      // The OBF is made ready before the hold, so the hold itself does no OBF I/O.
      await o.obf.write(0n, encodeSuperblock(sb), { fua: true });
      sbWritten = true;
      await o.journal.save(record);
    } catch (err) {
      const why = `the OBF or the journal cannot be written (${(err as Error).message})`;
      if (sbWritten) return abandon(why);
      src.unclaim(session);
      session.protectObf(false);
      if (err instanceof AgentError && !(err instanceof StoreError)) throw err;
      throw new AgentError('ERR_SNAPSHOT_STATE', `institute failed: ${why}`);
    }
    // The hold: new changes wait, changes in flight drain, COW is armed, changes go on.
    const t0 = process.hrtime.bigint();
    try {
      await src.hold(o.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS);
    } catch (err) {
      return abandon(`${(err as Error).message} (retry when the host load is lower, or raise drain_timeout_ms)`);
    }
    let heldError: unknown;
    try {
      await publishHeld(id, src);
      src.arm(session);
    } catch (err) {
      heldError = err;
    } finally {
      src.release();
    }
    if (heldError !== undefined) return abandon(`while writes were held: ${(heldError as Error).message}`);
    const pauseMs = Number(process.hrtime.bigint() - t0) / 1e6;
    record.institutedAtMs = Date.now();
    record.institutePauseMs = pauseMs;
    // Outside the hold: record T0 and the pause. From here on the session exists whatever fails.
    try {
      await session.serialize(() => session.writeSuperblock({ institutionTimeMs: record.institutedAtMs }));
    } catch (err) {
      await session.invalidate('OBF_IO_ERROR', `superblock: ${(err as Error).message}`).catch(() => undefined);
    }
    await o.journal.save(record).catch(() => undefined);
    session.log.info({ source: o.sourceKey, obf: o.obfSpec, chunk_bytes: chunkBytes, policy, pause_ms: Number(pauseMs.toFixed(3)) }, 'snapshot instituted');
    return session;
  }

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
    const gap = async (why: string, obf?: Store): Promise<SnapshotSession> => {
      if (rec.state !== 'INVALID') {
        rec.state = 'INVALID';
        rec.reason = 'TRACKING_GAP';
        rec.reasonDetail = why;
        await o.journal.save(rec);
        log.warn({ reason: why }, 'snapshot INVALID after restart: TRACKING_GAP');
      }
      const dummySb = { blockSize: 512, capacityBlocks: 0n } as ObfSuperblock;
      const appender = new ObfAppender(obf ?? o.source, dummySb, { endLba: 0n, nextSequence: 1n, dataRecords: 0n, dataBytes: 0n, rolling: new RollingHash(), markerSequence: 0n });
      return new SnapshotSession({ source: o.source, obf: obf ?? o.source, record: rec, journal: o.journal, log: o.log, appender, capturing: false });
    };
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
    const rolling = new RollingHash();
    for (const r of scan.records) rolling.update(r.crc);
    const appender = new ObfAppender(obf, sb, {
      endLba: scan.endLba,
      nextSequence: scan.nextSequence,
      dataRecords: BigInt(scan.records.length),
      dataBytes: scan.dataBytes,
      rolling,
      markerSequence: scan.marker?.sequence ?? 0n,
    });
    let state: SnapshotState = rec.state;
    if (rec.state === 'ACTIVE' || rec.state === 'MARKED') {
      if (sb.state === ObfState.INVALID) {
        state = 'INVALID';
        rec.reason = (obfReasonName(sb.reason) as SnapshotReason) ?? 'OBF_IO_ERROR';
      } else if (scan.seal) state = 'SEALED';
      else if (scan.marker) state = 'MARKED';
      else state = 'ACTIVE';
    } else if (rec.state === 'SEALED' && !scan.seal) {
      // A terminated snapshot never captures again; a seal that is gone means the OBF changed.
      return gap(`the journal says SEALED but the OBF's log has no SEAL (scan stopped: ${scan.stop})`, obf);
    }
    rec.state = state;
    const capturing = state === 'ACTIVE' || state === 'MARKED';
    const session = new SnapshotSession({ source: o.source, obf, record: rec, journal: o.journal, log: o.log, appender, capturing });
    for (const r of scan.records) session.where.set(Number(r.sourceLba / session.chunkBlocks), Number(r.dataLba));
    if (capturing) {
      if (!o.source.claim(session)) return gap('another snapshot of the same source was resumed first');
      session.capturesFrom(o.source);
      session.protectObf(true);
      await o.source.hold(0).catch(() => undefined);
      o.source.arm(session);
      o.source.release();
    }
    await o.journal.save(rec);
    log.info({ state, records: scan.records.length, scan_stop: scan.stop, scan_detail: scan.stopDetail, end_lba: scan.endLba.toString() }, 'snapshot resumed from its OBF');
    return session;
  }

  // -------------------------------------------------------------------------------------------
  // COW (the guard in front of every change)
  // -------------------------------------------------------------------------------------------

  async beforeChange(lba: bigint, count: bigint): Promise<void> {
    if (this.invalidating) await this.invalidating;
    if (!this.capturing) return;
    const first = Number(lba / this.chunkBlocks);
    const last = Number((lba + count - 1n) / this.chunkBlocks);
    // A large change (an UNMAP of the whole LUN) captures a window of chunks at a time, each
    // window under its own timeout: memory stays bounded and a big discard is not a timeout.
    for (let from = first; from <= last && this.capturing; ) {
      let waits: Promise<void>[] | undefined;
      let c = from;
      for (; c <= last && (waits?.length ?? 0) < CAPTURE_WINDOW; c++) {
        if (this.where.has(c)) continue;
        (waits ??= []).push(this.captureChunk(c));
      }
      from = c;
      if (!waits) continue;
      try {
        await withTimeout<unknown>(waits.length === 1 ? waits[0] : Promise.all(waits), this.record.cowTimeoutMs, `capturing chunks up to ${c - 1}`);
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
    if (this.record.policy === 'protect-snapshot') {
      this.log.warn({ reason, detail, lba: lba.toString(), blocks: count.toString() }, 'write refused to keep the snapshot exact (protect-snapshot)');
      throw refusedChange(refusalKind(reason), `snapshot ${this.id}: ${reason}: ${detail}`);
    }
    await this.invalidate(reason, detail);
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
    if (this.invalidating || !this.capturing || !below?.commitReads || below.store.readOnly) return false;
    const bs = this.source.blockSize;
    let bytes = 0;
    for (const p of pieces) bytes += p.length;
    if (bytes === 0 || bytes % bs !== 0) return false;
    const count = BigInt(bytes / bs);
    if (lba < 0n || lba + count > this.source.blocks) return false;
    const c = Number(lba / this.chunkBlocks);
    if (Number((lba + count - 1n) / this.chunkBlocks) !== c || this.where.has(c) || this.inProgress.has(c)) return false;
    const host: CarriedWrite = { write: { lba, pieces, fua: opts.fua, state: new Int32Array(1) } };
    const capture = this.captureChunk(c, host);
    try {
      await withTimeout(capture, this.record.cowTimeoutMs, `capturing chunk ${c}`);
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
        await this.invalidate('OBF_IO_ERROR', `a carried write started but its capture failed: ${(late as Error).message}`);
        return true;
      }
    }
    const outcome = host.outcome ?? 'not-written';
    if (outcome === 'written') return true;
    if (outcome === 'not-written') return false;
    throw outcome;
  }

  /** Capturing has ended: the pooled chunk buffers go (a session lives on until forgotten). */
  private releaseBuffers(): void {
    this.below?.originals.releaseBuffers();
    this.appender.releaseBuffers();
  }

  /**
   * The original of chunk `c` into the OBF, once; concurrent changes share the capture. `host`:
   * the change that needs it, for the commit to make (changeWith); its outcome is set there.
   */
  private captureChunk(c: number, host?: CarriedWrite): Promise<void> {
    const running = this.inProgress.get(c);
    if (running) return running;
    const p = (async () => {
      const lba = BigInt(c) * this.chunkBlocks;
      const n = Number(this.source.blocks - lba < this.chunkBlocks ? this.source.blocks - lba : this.chunkBlocks);
      const below = this.below!; // set before the capture is armed
      if (below.commitReads) {
        const rec = await this.appender.appendCapture(lba, n, host?.write);
        if (host) host.outcome = rec.host;
        this.where.set(c, Number(rec.dataLba));
        this.sample();
        return;
      }
      let original: Original;
      try {
        original = await below.originals.read(lba, n);
      } catch (err) {
        throw new SourceReadError(`reading the original of chunk ${c}: ${(err as Error).message}`);
      }
      let rec: CommittedRecord;
      try {
        rec = await this.appender.appendData(lba, n, original.data, { zero: original.zero, dataCrc: original.crc });
      } finally {
        original.release();
      }
      this.where.set(c, Number(rec.dataLba));
      this.sample();
    })().finally(() => this.inProgress.delete(c));
    this.inProgress.set(c, p);
    return p;
  }

  /**
   * Gives up capturing, durably, before any uncaptured change may reach the source: the journal
   * first, then the superblock (bounded: the OBF may be the thing failing). If neither can be
   * written the changes waiting here fail — a snapshot must never be wrong in silence.
   */
  invalidate(reason: SnapshotReason, detail: string): Promise<void> {
    if (this.invalidating) return this.invalidating;
    if (this.record.state === 'INVALID' || this.record.state === 'SEALED') return Promise.resolve();
    this.capturing = false;
    this.record.state = 'INVALID';
    this.record.reason = reason;
    this.record.reasonDetail = detail;
    this.invalidationRunning = true;
    this.invalidating = (async () => {
      this.releaseBuffers();
      // Both at once, both bounded: either one failing or hanging must not hold writes forever.
      const [journal, superblock] = await Promise.allSettled([
        withTimeout(this.journal.save({ ...this.record }), 5_000, 'the journal update'),
        withTimeout(this.writeSuperblock({ state: ObfState.INVALID, reason: REASON_OF[reason] }), 2_000, 'the superblock update'),
      ]);
      if (journal.status === 'rejected') this.log.error({ err: (journal.reason as Error).message }, 'could not journal the INVALID state');
      if (superblock.status === 'rejected') this.log.warn({ err: (superblock.reason as Error).message }, 'could not mark the OBF superblock INVALID');
      const recorded = journal.status === 'fulfilled' || superblock.status === 'fulfilled';
      this.log.warn({ reason, detail, durable: recorded }, 'snapshot INVALID (protect-application: writes go on uncaptured)');
      if (!recorded) throw new StoreError({ kind: 'write-error' }, `snapshot ${this.id} is INVALID (${reason}) and that could not be recorded anywhere; writes are refused`);
      this.source.unclaim(this);
      this.protectObf(false);
    })().finally(() => {
      this.invalidationRunning = false;
    });
    return this.invalidating;
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

  /**
   * Rewrites the superblock, one rewrite at a time, never taking an INVALID snapshot back to
   * another state (INVALID is final: a late MARKED or SEALED rewrite is dropped).
   */
  private writeSuperblock(update: Partial<ObfSuperblock>): Promise<void> {
    this.superblockWrites++;
    const run = this.sbChain
      .then(async () => {
        if (this.record.state === 'INVALID' && update.state !== ObfState.INVALID) return;
        await this.appender.writeSuperblock(update);
      })
      .finally(() => this.superblockWrites--);
    this.sbChain = run.catch(() => undefined);
    return run;
  }

  // -------------------------------------------------------------------------------------------
  // mark, terminate (606), status
  // -------------------------------------------------------------------------------------------

  /** The alternative embodiment: a MARKER record at the end of the outboard copy; COW goes on. */
  mark(): Promise<SnapshotStatus> {
    return this.serialize(async () => {
      if (this.record.state !== 'ACTIVE') throw new AgentError('ERR_SNAPSHOT_STATE', `snapshot ${this.id} is ${this.record.state}; only an ACTIVE snapshot can be marked`);
      await this.appender.appendMarker();
      if (this.record.state !== 'ACTIVE') throw new AgentError('ERR_SNAPSHOT_STATE', `snapshot ${this.id} became ${this.record.state} while it was being marked`);
      this.record.state = 'MARKED';
      await this.writeSuperblock({ state: ObfState.MARKED, markerSequence: this.appender.state.markerSequence });
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
        await Promise.allSettled([...this.inProgress.values()]);
        await this.appender.idle();
        if ((this.record.state as SnapshotState) === 'INVALID') return this.status(); // a capture failed meanwhile
        await this.appender.appendSeal();
        await this.writeSuperblock({ state: ObfState.SEALED, sealedRecordCount: this.appender.state.dataRecords });
      } catch (err) {
        await this.invalidate('OBF_IO_ERROR', `terminate: ${(err as Error).message}`).catch(() => undefined);
        throw new AgentError('ERR_SNAPSHOT_STATE', `snapshot ${this.id} could not be sealed (${(err as Error).message}); it is INVALID`);
      }
      this.record.state = 'SEALED';
      this.source.unclaim(this);
      this.protectObf(false);
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
    const rate = this.rate();
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
      captured_chunks: this.where.size,
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

  /** One (time, bytes) sample per 100 ms at most, 30 s kept: the capture rate of status(). */
  private sample(): void {
    const now = Date.now();
    const last = this.samples[this.samples.length - 1];
    if (last && now - last.t < 100) {
      last.bytes = this.appender.state.dataBytes;
      return;
    }
    this.samples.push({ t: now, bytes: this.appender.state.dataBytes });
    while (this.samples.length > 2 && now - this.samples[0].t > 30_000) this.samples.shift();
  }

  /** Capture rate over the last 30 s (bytes/s). */
  private rate(): number {
    if (this.samples.length < 2) return 0;
    const a = this.samples[0];
    const b = this.samples[this.samples.length - 1];
    const dt = (Math.max(b.t, Date.now()) - a.t) / 1000;
    return dt > 0 ? Number(b.bytes - a.bytes) / dt : 0;
  }

  // -------------------------------------------------------------------------------------------
  // The image as of institution (the snapshot view)
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
    return !this.invalidationRunning && this.superblockWrites === 0 && this.inProgress.size === 0 && this.appender.idleNow;
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

  /**
   * Reads the image as of institution: captured chunks from the OBF, the rest from the source.
   * A chunk read from the source is read again from the OBF when a capture of it began meanwhile
   * (its change may have reached the source during the read); a change reaches the source only
   * after its chunk is marked captured, so a read that saw no capture before and after is exact.
   */
  async readImage(lba: bigint, count: number, into?: Buffer): Promise<Buffer> {
    const bs = this.source.blockSize;
    const out = into && into.length >= count * bs ? into.subarray(0, count * bs) : Buffer.alloc(count * bs);
    let at = lba;
    const end = lba + BigInt(count);
    while (at < end) {
      const c = Number(at / this.chunkBlocks);
      const chunkEnd = BigInt(c + 1) * this.chunkBlocks;
      const n = Number((chunkEnd < end ? chunkEnd : end) - at);
      const dst = out.subarray(Number(at - lba) * bs, Number(at - lba + BigInt(n)) * bs);
      await this.readChunkPart(c, at, n, dst);
      at += BigInt(n);
    }
    return out;
  }

  private async readChunkPart(c: number, lba: bigint, n: number, dst: Buffer): Promise<void> {
    const bs = this.source.blockSize;
    const B = this.appender.sb.blockSize;
    for (;;) {
      if (!this.capturing) throw new StoreError({ kind: 'not-ready' }, `snapshot ${this.id} is ${this.record.state}: its view is no longer readable`);
      const pending = this.inProgress.get(c);
      if (pending) await pending.catch(() => undefined);
      const at = this.where.get(c);
      if (at !== undefined) {
        const offBytes = Number(lba - BigInt(c) * this.chunkBlocks) * bs;
        const first = BigInt(at + Math.floor(offBytes / B));
        const skip = offBytes % B;
        const blocks = Math.ceil((skip + n * bs) / B);
        const data = await this.obf.read(first, blocks);
        data.copy(dst, 0, skip, skip + n * bs);
        return;
      }
      await this.source.read(lba, n, dst);
      if (!this.where.has(c) && !this.inProgress.has(c) && this.capturing) return;
    }
  }

  /** Waits for captures and OBF commits in flight (a clean stop of the target). */
  async quiesce(): Promise<void> {
    await Promise.allSettled([...this.inProgress.values()]);
    await this.appender.idle();
  }

  /** For logs and errors. */
  describe(): string {
    return `${this.id} (${obfStateName(STATE_OF[this.record.state])})`;
  }
}

/**
 * `backup`: the method as a product (docs/method.md 602–608). One run:
 *  preflight  every LUN reached and identified, the secondary writable, the source matched to
 *             a LUN of the target that snapshots it (by VPD 83h designators, never by name),
 *             sizes and block sizes, the bridge's copy manager — before anything changes;
 *  602        pre-hook, institute (writes held, COW armed, released), post-hook;
 *  604        the whole source to the secondary by EXTENDED COPY through the bridge;
 *  606        mark (with --mark) or terminate, the OBF retained;
 *  608        overwrite: the OBF's records laid over the secondary; append: the used OBF copied
 *             after the image (integrated later, 610);
 *  hashes     per-extent SHA-256 of the image as of 602, computed by the source's target from
 *             the snapshot's view while 604 runs, written to the secondary's metadata area;
 *             with --verify, the secondary read back after 608 and checked against them;
 * and the secondary's metadata (docs/secondary-format.md) says at every step what it holds:
 * copying → image-complete / log-appended, or failed with the reason. Nothing is left armed: a
 * failure after institute ends (terminates and forgets) the snapshot unless told to keep it.
 */
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentError, ArgumentError, IscsiError } from '../errors';
import { DEFAULT_RETRY } from '../initiator/retry';
import { IscsiSession, type SessionOptions } from '../initiator/session';
import { redactUrl } from '../initiator/url';
import type { ManagementClient } from '../mgmt';
import * as secondary from '../secondary';
import { DEFAULT_CHUNK_BYTES, decodeSuperblock } from '../obf/format';
import { encodeToc, TOC_FORMAT_NAME } from '../toc/format';
import { readToc } from '../toc/read';
import { SenseKey } from '../scsi/constants';
import type { CscdDescriptor } from '../scsi/xcopy';
import { every } from '../util/every';
import { logger, type Logger } from '../util/log';
import { applyObf, cscdOfLun, ObfLogReader, type ObfLog } from './apply-obf';
import { runHook } from './hooks';
import { imageExtentHashes } from './image-hashes';
import { noViewHashing, viewExtentHashes } from './view-hashes';
import { blankOrSecondary, readHashTable, SecondaryLun } from './secondary-lun';
import { inquire, type InquireReport } from './inquire';
import { matchLun, naasOf, type LunEntry } from './target-luns';
import { operatingParametersOf, unreachable, xcopyCopy, type XcopyCopyResult } from './xcopy-copy';

export type BackupMode = secondary.SecondaryMode;
export type BackupPhase = 'preflight' | 'institute' | 'copy' | 'toc' | 'terminate' | 'apply' | 'append' | 'hash' | 'verify' | 'done';

export interface BackupOptions {
  source: string;
  secondary: string;
  /** The OBF: an iSCSI URL of a LUN served by the source's target (the bridge must reach it). */
  obf: string;
  /** The copy manager (default: the one serving the secondary). */
  bridge?: string;
  mode?: BackupMode;
  /** The marker embodiment: mark when the copy completes, apply the records before the marker. */
  mark?: boolean;
  chunkBytes?: number;
  policy?: 'protect-application' | 'protect-snapshot';
  /**
   * The longest a capture may take before the snapshot turns INVALID (protect-application) or
   * the write fails (protect-snapshot); the target's default is 5000 ms. A gateway in front of a
   * slow or distant target may need more.
   */
  cowTimeoutMs?: number;
  preHook?: string;
  postHook?: string;
  hookTimeoutMs?: number;
  label?: string;
  /** The backup's id (a UUID; default a new one): lets the caller record the copy before the run. */
  backupId?: string;
  /**
   * Continue the backup `backupId` that an agent left unfinished (killed, host lost) from what
   * its secondary's metadata and its snapshot say is done (docs/backup.md, "Resume").
   */
  resume?: boolean;
  /** The management API of the target serving the source. */
  mgmt: ManagementClient;
  /** Copy through this host when no copy manager can (stated in the result). */
  fallback?: boolean;
  /** Expected fraction of the source changed while the backup runs (OBF budget warning; default 0.1). */
  expectedChange?: number;
  /** Take a secondary that holds data other than a copy of ours. */
  yes?: boolean;
  /** After 608, read the secondary back and check each extent against the hashes of the view. */
  verify?: boolean;
  /**
   * 603: the table of contents of the ext2/3/4 file system on the source, read from the
   * snapshot's view while the copy runs, into the secondary's TOC reserve (docs/backup.md, "The
   * table of contents"). A source it cannot list gets a warning, not a failed backup.
   */
  toc?: boolean;
  /** On failure or interruption, keep the snapshot (ACTIVE) instead of ending it. */
  keepSnapshotOnAbort?: boolean;
  signal?: AbortSignal;
  session?: SessionOptions;
  log?: Logger;
  onEvent?: (e: BackupEvent) => void;
}

export type BackupEvent =
  | { type: 'phase'; phase: BackupPhase; [k: string]: unknown }
  | { type: 'progress'; phase: BackupPhase; done: bigint; total: bigint; unit: 'blocks' | 'records'; obf_records?: number; obf_fill?: number; path?: 'xcopy' | 'host' }
  | { type: 'warning'; message: string };

export interface BackupResult {
  backup_id: string;
  snapshot_id: string;
  mode: BackupMode;
  label?: string;
  state: secondary.SecondaryState;
  institute_pause_ms?: number;
  image_bytes: bigint;
  /** Bytes the copy manager moved in 604. */
  xcopy_bytes: bigint;
  /** Bytes that went through this host (--fallback), in 604 and 608. */
  host_bytes: bigint;
  /** The EXTENDED COPY commands of 604 and of 608 (one per record on LIO: one segment per command). */
  extended_copy_commands: { copy: number; apply: number };
  /** How 604 went. */
  copy_path: XcopyCopyResult['path'];
  fallback_reason?: string;
  obf_records: number;
  obf_bytes: bigint;
  records_after_marker?: number;
  extents: number;
  /** Where the extent hashes were computed: the snapshot's view in its target (during the copy), or the secondary read back (a target without snapshot_hash). */
  hashed_from: 'view' | 'secondary';
  /** True when the secondary was read back after 608 and matched the view's hashes (--verify). */
  verified: boolean;
  /** With --toc: the files listed and the bytes of the TOC written to the reserve (absent when none could be made). */
  toc?: { files: number; bytes: number };
  /** With `resume`: what the earlier run had done (the secondary's state then), or `nothing` (it had not instituted). */
  resumed_from?: secondary.SecondaryState | 'nothing';
  phases: Record<string, number>;
  seconds: number;
}

/** What 608 did: the records laid (or the log appended), by how many EXTENDED COPY commands, and what went through this host. */
interface PassResult {
  records: number;
  dataBytes: bigint;
  commands: number;
  hostBytes: bigint;
  fallbackReason?: string;
}

/** What preflight found: the sessions and facts every later step uses. */
interface Plan {
  src: IscsiSession;
  sec: IscsiSession;
  obf: IscsiSession;
  bridge: IscsiSession;
  source: InquireReport;
  /** The source as the target's management API names it ("IQN/LUN"). */
  sourceRef: string;
  obfRef: string;
  blockSize: number;
  imageBlocks: bigint;
  layout: secondary.SecondaryLayout;
  identity: secondary.SourceIdentity;
}

const nowIso = () => new Date().toISOString();

/** The outboard copy goes in slices this large; the secondary's header is updated after each. */
export const COPY_SLICE_BYTES = 1024 * 1024 * 1024;
/** Header updates while records are applied: at most one per this many milliseconds. */
const PROGRESS_SAVE_MS = 2000;
const elapsed = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
/**
 * How long a restart of the source's target is waited out (docs/backup.md, "A restart of the
 * source's target"): as long as the initiator waits out NOT READY, becoming ready.
 */
const RESTART_WAIT_MS = DEFAULT_RETRY.becomingReadyMs ?? 60_000;
const RESTART_POLL_MS = 250;

/** `url` (a LUN of the source's target, with its credentials and options) naming another LUN of that target. */
export function lunUrl(url: string, target: string, lun: number): string {
  const m = /^(iscsi:\/\/[^/]+)\/[^/?]+\/\d+(\?.*)?$/.exec(url);
  if (!m) throw new ArgumentError(`${redactUrl(url)} is not an iscsi://HOST/IQN/LUN URL`);
  return `${m[1]}/${target}/${lun}${m[2] ?? ''}`;
}

/** The management API's view of a snapshot (snapshot_list). */
interface SnapshotEntry {
  id: string;
  state: string;
  series_id?: string;
  instituted_at?: string;
  reason?: string;
  resuming?: boolean;
  unresumable?: string;
}

/**
 * Whether the LUN is write protected for this I_T nexus (the WP bit of MODE SENSE(10), SBC-3 r36
 * 6.4.1). A LUN that answers no MODE SENSE (ILLEGAL REQUEST) is taken as writable: its first
 * write says otherwise.
 */
async function writeProtected(s: IscsiSession): Promise<boolean> {
  try {
    return (await s.modeParameterHeader10()).writeProtect;
  } catch (err) {
    if (err instanceof IscsiError && err.senseKey === SenseKey.ILLEGAL_REQUEST) return false;
    throw err;
  }
}

export class Backup {
  private readonly log: Logger;
  private readonly emit: (e: BackupEvent) => void;
  private readonly backupId: string;
  private readonly phases: Record<string, number> = {};
  private plan?: Plan;
  private meta?: SecondaryLun;
  private snapshotId?: string;
  /** The OBF's log, read while the copy runs (606 finishes it). */
  private logReader?: ObfLogReader;
  /** True once the snapshot's COW is no longer needed (terminated, or ended on failure). */
  private snapshotEnded = false;
  /** True while management calls wait for the source's target to come back (said once). */
  private waitingForTarget = false;
  /** The management API for this backup's snapshot, waiting out a restart of its target (snapshotCall). */
  private readonly snapshots: Pick<ManagementClient, 'call'> = { call: <T>(method: string, params?: object) => this.snapshotCall<T>(method, params) };

  constructor(private readonly opts: BackupOptions) {
    this.log = opts.log ?? logger();
    this.emit = opts.onEvent ?? (() => undefined);
    this.backupId = opts.backupId ?? crypto.randomUUID();
    this.mode = opts.mode ?? 'overwrite';
    this.marked = opts.mark === true;
    if (opts.resume && !opts.backupId) throw new ArgumentError('resume needs the id of the backup to resume');
  }

  async run(): Promise<BackupResult> {
    const t0 = process.hrtime.bigint();
    try {
      const plan = await this.timed('preflight', () => this.preflight());
      const recovered = this.opts.resume ? await this.recover(plan) : undefined;
      if (recovered && 'result' in recovered) return { ...recovered.result, seconds: elapsed(t0) };
      let snap = recovered?.snap;
      if (!snap) {
        snap = await this.timed('institute', () => this.institute(plan));
        // The secondary is untouched until here (a failing hook leaves it as it was).
        await this.writeInitialMetadata(plan, snap);
      } else if (!this.meta) await this.writeInitialMetadata(plan, snap);
      let copy: XcopyCopyResult = { blocks: 0n, block_size: plan.blockSize, xcopy_bytes: 0n, host_bytes: 0n, extended_copy_commands: 0, seconds: 0, path: 'xcopy' };
      let viewHashes: Buffer[] | undefined;
      let toc: BackupResult['toc'];
      let log: ObfLog;
      if (this.record.state === 'copying' && recovered?.capture !== 'sealed') {
        // The image's hashes from the snapshot's view, in the target, while the copy runs; and
        // with --toc (603) the table of contents from the view, beside them.
        const hashing = this.hashView(plan, snap.id);
        const listing = this.opts.toc ? this.tableOfContents(plan, snap.id) : undefined;
        try {
          copy = await this.timed('copy', () => this.outboardCopy(plan));
          viewHashes = await this.timed('hash', () => hashing.finish());
          if (listing) toc = await this.timed('toc', () => listing);
        } finally {
          await hashing.stop();
          await listing?.catch(() => undefined);
        }
        log = await this.timed('terminate', () => this.endCapture(plan, recovered?.capture === 'marked'));
      } else {
        // Resumed after 606: the snapshot no longer captures, its log is complete in the OBF.
        log = await this.timed('terminate', () => this.readEndedLog(plan, snap.id));
        if (this.opts.toc && !this.record.toc) {
          this.emit({ type: 'warning', message: 'no table of contents: the run cut short ended its snapshot before listing the file system; list the copy\'s image once it is integrated (toc --lun on a LUN holding it), or restore files from it all the same (restore --files reads the image then)' });
        }
      }
      const applied = this.mode === 'overwrite' ? await this.timed('apply', () => this.applyRecords(plan, log)) : await this.timed('append', () => this.appendLog(plan, log));
      if (!viewHashes && this.record.progress.hashedExtents === plan.layout.extents) viewHashes = await readHashTable((lba, n) => plan.sec.read16(lba, n), this.record);
      const extents = viewHashes
        ? this.opts.verify
          ? await this.timed('verify', () => this.verifyImage(plan, log, viewHashes))
          : viewHashes.length
        : await this.timed('hash', () => this.hashImage(plan, log));
      await this.checkObfUnchanged(plan, log);
      const state: secondary.SecondaryState = this.mode === 'overwrite' ? 'integrated' : 'log-appended';
      await this.saveRecord({ state, times: { ...this.record.times, finishedAt: nowIso(), phases: { ...this.phases } } });
      await this.forgetSnapshot();
      this.emit({ type: 'phase', phase: 'done', state });
      return {
        backup_id: this.backupId,
        snapshot_id: snap.id,
        mode: this.mode,
        label: this.opts.label ?? this.record.label,
        state,
        institute_pause_ms: snap.pauseMs,
        image_bytes: plan.imageBlocks * BigInt(plan.blockSize),
        xcopy_bytes: copy.xcopy_bytes,
        host_bytes: copy.host_bytes + applied.hostBytes,
        extended_copy_commands: { copy: copy.extended_copy_commands, apply: applied.commands },
        copy_path: copy.path,
        fallback_reason: copy.fallback_reason ?? applied.fallbackReason,
        obf_records: applied.records,
        obf_bytes: applied.dataBytes,
        records_after_marker: this.marked ? log.afterMarker : undefined,
        extents,
        hashed_from: viewHashes ? 'view' : 'secondary',
        verified: viewHashes !== undefined && this.opts.verify === true,
        ...(toc ? { toc } : {}),
        ...(recovered ? { resumed_from: recovered.from } : {}),
        phases: { ...this.phases },
        seconds: elapsed(t0),
      };
    } catch (err) {
      await this.fail(err);
      throw this.interrupted() ? new AgentError('ERR_INTERRUPTED', 'backup interrupted; the secondary is marked failed', { cause: err }) : err;
    } finally {
      await this.close();
    }
  }

  /** The mode and the marker: as asked, or, resuming, as the secondary's record says. */
  private mode: BackupMode;
  private marked: boolean;

  private interrupted(): boolean {
    return this.opts.signal?.aborted === true;
  }

  private checkInterrupted(): void {
    if (this.interrupted()) throw new AgentError('ERR_INTERRUPTED', 'backup interrupted');
  }

  private async timed<T>(phase: BackupPhase, fn: () => Promise<T>): Promise<T> {
    this.checkInterrupted();
    this.emit({ type: 'phase', phase });
    const t0 = process.hrtime.bigint();
    const r = await fn();
    this.phases[phase] = elapsed(t0);
    return r;
  }

  // ---- preflight -------------------------------------------------------------------------

  /** Everything checked before anything changes; each failure one line with what to do. */
  private async preflight(): Promise<Plan> {
    const o = this.opts;
    if (this.marked && this.mode === 'append') this.log.debug('append mode with --mark: the log is copied up to its end; the marker is recorded');
    const src = await IscsiSession.connect(o.source, o.session);
    const sessions: IscsiSession[] = [src];
    try {
      const sec = await IscsiSession.connect(o.secondary, o.session);
      sessions.push(sec);
      const obf = await IscsiSession.connect(o.obf, o.session);
      sessions.push(obf);
      const bridge = o.bridge ? await IscsiSession.connect(o.bridge, o.session) : sec;
      if (o.bridge) sessions.push(bridge);
      const [source, second, obfInfo] = [await inquire(src), await inquire(sec), await inquire(obf)];
      const blockSize = source.block_size;
      const imageBlocks = BigInt(source.capacity_blocks);
      if (second.block_size !== blockSize) {
        throw new ArgumentError(`the secondary's block size is ${second.block_size} bytes, the source's ${blockSize}: choose a secondary with ${blockSize}-byte blocks`);
      }
      // A secondary this host may not write would fail at its first header, after institute.
      if (await writeProtected(sec)) {
        throw new ArgumentError(`the secondary ${redactUrl(o.secondary)} is write protected (MODE SENSE: WP=1): give a LUN this host may write, or lift its write protection`);
      }
      // The target that snapshots the source: the LUN it names must be the LUN we reach.
      const luns = await o.mgmt.call<LunEntry[]>('lun_list');
      const srcLun = matchLun(luns, source);
      if (!srcLun) {
        throw new AgentError(
          'ERR_NOT_SNAPSHOT_CAPABLE',
          `the source ${redactUrl(o.source)} is not a LUN of the target at ${o.mgmt.url} (no LUN there has its designators): serve it through that target, e.g. \`xcopy-agent target --lun iscsi://...\` in front of it, and back up the gateway's LUN`,
        );
      }
      if (srcLun.snapshot && !(o.resume && (await this.ourSnapshot(srcLun.snapshot)))) throw new AgentError('ERR_SNAPSHOT_STATE', `the source already has an active snapshot ${srcLun.snapshot} (another backup running?): wait for it, or end it with \`xcopy-agent snapshot terminate ${srcLun.snapshot}\``);
      const obfLun = matchLun(luns, obfInfo);
      if (!obfLun) throw new ArgumentError(`the OBF ${redactUrl(o.obf)} is not a LUN of the target at ${o.mgmt.url}: give a LUN of the source's target (the copy manager reads it in step 608)`);
      if (obfLun.naa === srcLun.naa) throw new ArgumentError('the OBF is the source LUN itself: give another LUN');
      if (naasOf(second).some((n) => n === srcLun.naa || n === obfLun.naa)) throw new ArgumentError('the secondary is the source or the OBF: give another LUN');
      if (this.mode === 'append' && obfInfo.block_size !== blockSize) {
        throw new ArgumentError(`append mode copies the OBF after the image: the OBF's block size (${obfInfo.block_size}) must be the source's (${blockSize})`);
      }
      // The OBF's budget: a record per changed chunk (its data and a header block).
      const obfBytes = BigInt(obfInfo.capacity_bytes);
      const change = o.expectedChange ?? 0.1;
      const chunk = o.chunkBytes ?? DEFAULT_CHUNK_BYTES;
      const projected = BigInt(Math.ceil(Number(imageBlocks) * blockSize * change * (1 + blockSize / chunk)));
      if (projected > obfBytes) {
        this.emit({ type: 'warning', message: `the OBF (${obfBytes} bytes) may fill: ${Math.round(change * 100)} % of the source changing during the backup needs about ${projected} bytes (grow the OBF, or --expected-change if less changes)` });
      }
      const logBlocksMax = this.mode === 'append' ? BigInt(obfInfo.capacity_blocks) : 0n;
      const layout = secondary.planLayout({ blockSize, capacityBlocks: BigInt(second.capacity_blocks), imageBlocks, mode: this.mode, logBlocksMax });
      await this.checkSecondaryFree(sec, layout);
      // The copy manager: present, and able to name all three LUNs.
      const bInfo = o.bridge ? await inquire(bridge) : second;
      if (!bInfo.three_pc && !o.fallback) {
        throw new AgentError('ERR_INVALID_ARG', `${redactUrl(bridge.url)} has no copy manager (3PC=0): give --bridge with one that reaches the source and the secondary, or --fallback to copy through this host`);
      }
      const op = bInfo.three_pc ? await operatingParametersOf(bridge) : undefined;
      if (bInfo.three_pc && !op && !o.fallback) {
        throw new AgentError('ERR_INVALID_ARG', `${redactUrl(bridge.url)} answers no OPERATING PARAMETERS: give another --bridge, or --fallback to copy through this host`);
      }
      const cscds = new Map<string, CscdDescriptor>();
      for (const [name, s, bs] of [['source', src, blockSize], ['secondary', sec, blockSize], ['OBF', obf, obfInfo.block_size]] as const) {
        const c = await cscdOfLun(s, bs);
        if (!c) throw new ArgumentError(`the ${name} reports no designator a copy manager can resolve (VPD 83h NAA, EUI-64 or T10): it cannot take part in EXTENDED COPY`);
        cscds.set(name, c);
      }
      // The copy manager must reach the LUNs of 604 and 608 (LIO: only LUNs of the target the
      // command came to), asked with a copy of 0 blocks before anything changes.
      if (op) {
        for (const from of ['source', 'OBF']) {
          const why = await unreachable(bridge, [cscds.get(from)!, cscds.get('secondary')!]);
          if (why === undefined) continue;
          if (!o.fallback) {
            throw new AgentError(
              'ERR_XCOPY_UNAVAILABLE',
              `the copy manager at ${redactUrl(bridge.url)} cannot copy from the ${from} to the secondary (${why}): give --bridge with one that reaches the source, the OBF and the secondary (on LIO, LUNs of one target), or --fallback to copy through this host`,
            );
          }
          this.emit({ type: 'warning', message: `the copy manager at ${redactUrl(bridge.url)} cannot copy from the ${from} to the secondary (${why}): that copy goes through this host (--fallback)` });
        }
      }
      const identity: secondary.SourceIdentity = {
        designators: source.designators.map((d) => ({ codeSet: d.code_set, designatorType: d.designator_type, association: d.association, designator: d.hex })),
        capacityBlocks: imageBlocks,
        blockSize,
        vendor: source.vendor,
        product: source.product,
        url: redactUrl(o.source),
      };
      this.emit({ type: 'phase', phase: 'preflight', block_size: blockSize, image_blocks: imageBlocks });
      this.plan = { src, sec, obf, bridge, source, sourceRef: `${srcLun.target}/${srcLun.lun}`, obfRef: `${obfLun.target}/${obfLun.lun}`, blockSize, imageBlocks, layout, identity };
      return this.plan;
    } catch (err) {
      for (const s of sessions.reverse()) await s.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * The secondary must be blank, or a copy of ours (its trailer says so), unless --yes: a
   * mistyped URL must not destroy a LUN that holds a file system.
   */
  private async checkSecondaryFree(sec: IscsiSession, layout: secondary.SecondaryLayout): Promise<void> {
    if (this.opts.yes) return;
    if (!(await blankOrSecondary((lba, n) => sec.read16(lba, n), layout.capacityBlocks, layout.blockSize))) {
      throw new AgentError('ERR_SECONDARY_IN_USE', `the secondary ${redactUrl(sec.url)} holds data that is not a copy made by xcopy-agent: give a blank LUN, or --yes to overwrite it`);
    }
  }

  // ---- the secondary's metadata ---------------------------------------------------------

  private async writeInitialMetadata(plan: Plan, snap: { id: string; pauseMs?: number; institutedAt: string }): Promise<void> {
    const t = nowIso();
    this.meta = await SecondaryLun.create(plan.sec, {
      version: secondary.SECONDARY_FORMAT_VERSION,
      generation: 0n,
      backupId: this.backupId,
      state: 'copying',
      mode: this.mode,
      label: this.opts.label,
      source: plan.identity,
      snapshot: { id: snap.id, institutedAt: snap.institutedAt, pauseMs: snap.pauseMs, marked: this.marked },
      layout: plan.layout,
      progress: { copiedBlocks: 0n, appliedRecords: 0, integratedRecords: 0, hashedExtents: 0 },
      times: { startedAt: t, updatedAt: t },
    });
  }

  private get record(): secondary.SecondaryRecord {
    return this.meta!.record;
  }

  /** Writes the next header slot with `update` applied (durable before it resolves). */
  private saveRecord(update: Partial<secondary.SecondaryRecord>): Promise<void> {
    return this.meta!.save(update);
  }

  // ---- resume ----------------------------------------------------------------------------

  /** Whether the snapshot `id` is this backup's (its series id is the backup's id). */
  private async ourSnapshot(id: string): Promise<boolean> {
    const all = await this.listSnapshots();
    return all.some((x) => x.id === id && x.series_id === this.backupId);
  }

  /** The target's snapshots, once none is still resuming from its OBF after a restart (bounded). */
  private async listSnapshots(): Promise<SnapshotEntry[]> {
    const deadline = Date.now() + RESTART_WAIT_MS;
    for (;;) {
      const all = await this.snapshots.call<SnapshotEntry[]>('snapshot_list');
      if (!all.some((x) => x.resuming) || Date.now() >= deadline) return all;
      await sleep(RESTART_POLL_MS);
    }
  }

  /**
   * Where an unfinished backup stands (docs/backup.md, "Resume"), from the two places that know:
   * the secondary's metadata (state and progress, written after each unit) and the target's
   * snapshot of this series. It either says what to continue from — the snapshot to copy under
   * (still capturing: ACTIVE, or MARKED), or an ended one whose log the OBF still holds — or ends
   * the backup: done already (the result), or not resumable (ERR_NOT_RESUMABLE, exit 50: the
   * snapshot is gone or INVALID before the image was complete; the secondary is marked failed).
   * With neither a snapshot nor metadata the earlier run never instituted: start afresh.
   */
  private async recover(plan: Plan): Promise<{ snap?: { id: string; pauseMs?: number; institutedAt: string }; capture?: 'active' | 'marked' | 'sealed'; from: BackupResult['resumed_from'] } | { result: BackupResult }> {
    const snap = (await this.listSnapshots()).find((x) => x.series_id === this.backupId);
    if (snap) this.snapshotId = snap.id;
    let record: secondary.SecondaryRecord | undefined;
    try {
      const lun = await SecondaryLun.open(plan.sec);
      if (lun.record.backupId !== this.backupId) {
        throw new AgentError('ERR_NOT_RESUMABLE', `the secondary ${redactUrl(plan.sec.url)} now holds backup ${lun.record.backupId}, not ${this.backupId}: that backup cannot be resumed there; run a new one`);
      }
      this.meta = lun;
      record = lun.record;
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_NOT_RESUMABLE') {
        this.snapshotEnded = snap === undefined;
        throw err;
      }
      // No metadata of this backup yet: the run stopped between institute and its first header.
    }
    if (record) {
      // The earlier run's choices stand: its mode, marker and layout (the secondary's truth).
      this.mode = record.mode;
      this.marked = record.snapshot.marked === true;
      plan.layout = record.layout;
      const naa = (x: secondary.SourceIdentity) => x.designators.filter((d) => d.designatorType === 3 && d.association === 0).map((d) => d.designator.toLowerCase());
      const now = new Set(naa(plan.identity));
      if (record.source.capacityBlocks !== plan.imageBlocks || record.source.blockSize !== plan.blockSize || !naa(record.source).some((d) => now.has(d))) {
        this.snapshotEnded = snap === undefined;
        throw new AgentError('ERR_NOT_RESUMABLE', `backup ${this.backupId} was of another source than ${redactUrl(this.opts.source)} (its designators or size differ): give the --source it was made of`);
      }
    }
    const from: BackupResult['resumed_from'] = record?.state ?? 'nothing';
    if (record?.state === 'failed') {
      this.snapshotEnded = snap === undefined;
      throw new AgentError('ERR_NOT_RESUMABLE', `backup ${this.backupId} ended failed (${record.reason ?? 'no reason recorded'}): it cannot be resumed; run a new backup`);
    }
    if (record && (record.state === 'integrated' || record.state === 'log-appended')) {
      this.snapshotEnded = true;
      await this.forgetSnapshot();
      this.emit({ type: 'phase', phase: 'done', state: record.state });
      return { result: this.finishedResult(plan, record) };
    }
    const snapInfo = (s: SnapshotEntry) => ({ id: s.id, pauseMs: record?.snapshot.pauseMs, institutedAt: record?.snapshot.institutedAt ?? s.instituted_at ?? nowIso() });
    if (record && record.state === 'image-complete') {
      // 606 was done: the log is in the OBF, whatever became of the snapshot's record.
      return { snap: snap ? snapInfo(snap) : { id: record.snapshot.id, pauseMs: record.snapshot.pauseMs, institutedAt: record.snapshot.institutedAt }, capture: 'sealed', from };
    }
    if (!snap) {
      if (!record) return { from }; // never instituted (or its institute failed): begin again
      this.snapshotEnded = true;
      throw new AgentError('ERR_NOT_RESUMABLE', `backup ${this.backupId} cannot be resumed: its snapshot ${record.snapshot.id} is no longer in the source's target (forgotten, or the target lost its journal); run a new backup`);
    }
    if (snap.unresumable || snap.state === 'INVALID' || (snap.state !== 'ACTIVE' && snap.state !== 'MARKED' && snap.state !== 'SEALED')) {
      const why = snap.unresumable ?? (snap.state === 'INVALID' ? `INVALID: ${snap.reason ?? 'no reason given'}` : snap.state);
      throw new AgentError('ERR_NOT_RESUMABLE', `backup ${this.backupId} cannot be resumed: its snapshot ${snap.id} is ${why}; no consistent copy can be made from it; run a new backup`);
    }
    if (snap.state === 'SEALED') {
      // Terminated by the earlier run (606) before it recorded so: only a complete image makes a copy.
      if (!record || record.progress.copiedBlocks < plan.imageBlocks) {
        this.snapshotEnded = true;
        throw new AgentError('ERR_NOT_RESUMABLE', `backup ${this.backupId} cannot be resumed: its snapshot ${snap.id} was terminated before the image was copied; run a new backup`);
      }
      return { snap: snapInfo(snap), capture: 'sealed', from };
    }
    this.log.info({ snapshot: snap.id, copied_blocks: record?.progress.copiedBlocks ?? 0n }, 'resuming the backup under its snapshot');
    return { snap: snapInfo(snap), capture: snap.state === 'MARKED' ? 'marked' : 'active', from };
  }

  /** The result of a backup a resume found finished already (nothing done now). */
  private finishedResult(plan: Plan, r: secondary.SecondaryRecord): BackupResult {
    return {
      backup_id: this.backupId,
      snapshot_id: r.snapshot.id,
      mode: r.mode,
      label: r.label,
      state: r.state,
      institute_pause_ms: r.snapshot.pauseMs,
      image_bytes: plan.imageBlocks * BigInt(plan.blockSize),
      xcopy_bytes: 0n,
      host_bytes: 0n,
      extended_copy_commands: { copy: 0, apply: 0 },
      copy_path: 'xcopy',
      obf_records: r.mode === 'overwrite' ? r.progress.appliedRecords : (r.log?.records ?? 0),
      obf_bytes: 0n,
      extents: r.progress.hashedExtents,
      hashed_from: 'view',
      verified: false,
      resumed_from: r.state,
      phases: { ...this.phases },
      seconds: 0,
    };
  }

  // ---- 602 -------------------------------------------------------------------------------

  private async institute(plan: Plan): Promise<{ id: string; pauseMs?: number; institutedAt: string }> {
    const o = this.opts;
    if (o.preHook) await runHook({ name: 'pre-hook', command: o.preHook, timeoutMs: o.hookTimeoutMs, log: this.log, signal: o.signal });
    let st: { id: string; institute_pause_ms?: number; instituted_at?: string } | undefined;
    try {
      st = await o.mgmt.call<{ id: string; institute_pause_ms?: number; instituted_at?: string }>('snapshot_institute', {
        source: plan.sourceRef,
        obf: plan.obfRef,
        series_id: this.backupId,
        ...(o.chunkBytes !== undefined ? { chunk_bytes: o.chunkBytes } : {}),
        ...(o.policy ? { policy: o.policy } : {}),
        ...(o.cowTimeoutMs !== undefined ? { cow_timeout_ms: o.cowTimeoutMs } : {}),
      });
      this.snapshotId = st.id;
      this.emit({ type: 'phase', phase: 'institute', snapshot_id: st.id, institute_pause_ms: st.institute_pause_ms });
    } catch (err) {
      // A lost answer (timeout, reset) may hide a snapshot the target did arm: find it by our
      // series id, so that the failure path ends it.
      const all = await o.mgmt.call<Array<{ id: string; series_id?: string }>>('snapshot_list').catch(() => []);
      this.snapshotId = all.find((x) => x.series_id === this.backupId)?.id;
      throw err;
    } finally {
      // After a pre-hook that ran (e.g. fsfreeze -f), the post-hook runs whatever happened, even
      // on Ctrl-C (its own timeout still bounds it): an application is never left frozen. Its
      // failure fails the backup, unless the institute failed already (then that error stands).
      if (o.postHook && (st !== undefined || o.preHook)) {
        const hook = runHook({ name: 'post-hook', command: o.postHook, timeoutMs: o.hookTimeoutMs, log: this.log, env: { XCOPY_AGENT_SNAPSHOT_ID: st?.id ?? '' } });
        await (st !== undefined ? hook : hook.catch((e: unknown) => this.log.error({ err: e }, 'the post-hook failed after a failed institute')));
      }
    }
    return { id: st.id, pauseMs: st.institute_pause_ms, institutedAt: st.instituted_at ?? nowIso() };
  }

  // ---- 604 -------------------------------------------------------------------------------

  /**
   * The whole source to the secondary, in slices of at most COPY_SLICE_BYTES, one after the
   * other: after each, the secondary's header records the blocks copied so far (a low-water
   * mark a resume may continue from). Within a slice the bridge runs several commands at once.
   */
  private async outboardCopy(plan: Plan): Promise<XcopyCopyResult> {
    const o = this.opts;
    const slice = BigInt(Math.max(1, Math.floor(COPY_SLICE_BYTES / plan.blockSize)));
    // The OBF's growth while the copy runs, from the snapshot's status once a second; its log
    // read as it grows, so that 606 reads only what comes after the copy.
    const obf: { records?: number; fill?: number } = {};
    this.logReader = await ObfLogReader.open(plan.obf);
    const reader = this.logReader;
    const poll = () => reader.poll().catch((err: unknown) => this.log.debug({ err }, 'reading the OBF log during the copy failed; 606 reads the rest'));
    void poll(); // what the first captures wrote, while the copy starts
    const watcher = every(1000, async () => {
      const st = await o.mgmt.call<{ records: number; fill: number }>('snapshot_status', { id: this.snapshotId }).catch(() => undefined);
      if (st) Object.assign(obf, { records: st.records, fill: st.fill });
      await poll();
    });
    try {
      return await this.copySlices(plan, slice, obf);
    } finally {
      await watcher.stop();
    }
  }

  private async copySlices(plan: Plan, slice: bigint, obf: { records?: number; fill?: number }): Promise<XcopyCopyResult> {
    const o = this.opts;
    const total: XcopyCopyResult = { blocks: plan.imageBlocks, block_size: plan.blockSize, xcopy_bytes: 0n, host_bytes: 0n, extended_copy_commands: 0, seconds: 0, path: 'xcopy' };
    for (let at = this.record.progress.copiedBlocks; at < plan.imageBlocks; ) {
      const count = plan.imageBlocks - at < slice ? plan.imageBlocks - at : slice;
      const part = await xcopyCopy({
        from: o.source,
        to: o.secondary,
        bridge: o.bridge,
        skip: at,
        seek: at,
        count,
        fallback: o.fallback === true,
        fallbackHint: 'give --fallback',
        session: o.session,
        signal: o.signal,
        onProgress: (done, _total, path) => this.emit({ type: 'progress', phase: 'copy', done: at + done, total: plan.imageBlocks, unit: 'blocks', obf_records: obf.records, obf_fill: obf.fill, path }),
      });
      total.xcopy_bytes += part.xcopy_bytes;
      total.host_bytes += part.host_bytes;
      total.extended_copy_commands += part.extended_copy_commands;
      total.seconds += part.seconds;
      if (part.fallback_reason) total.fallback_reason = part.fallback_reason;
      total.path = total.host_bytes === 0n ? 'xcopy' : total.xcopy_bytes === 0n ? 'host' : 'mixed';
      at += count;
      await plan.sec.synchronizeCache16();
      await this.saveRecord({ progress: { ...this.record.progress, copiedBlocks: at } });
    }
    await this.checkSnapshot();
    return total;
  }

  /** The snapshot must still be valid once the copy is done: an INVALID one made no consistent copy. */
  private async checkSnapshot(): Promise<void> {
    const st = await this.snapshots.call<{ state: string; reason?: string; reason_detail?: string }>('snapshot_status', { id: this.snapshotId });
    if (st.state === 'INVALID') {
      throw new AgentError('ERR_SNAPSHOT_INVALID', `the snapshot turned INVALID during the backup (${st.reason ?? 'no reason given'}${st.reason_detail ? `: ${st.reason_detail}` : ''}); no consistent copy was made (grow the OBF for OBF_FULL)`);
    }
  }

  // ---- 606 -------------------------------------------------------------------------------

  /**
   * Marks (with --mark; not again when a resumed snapshot is MARKED already) or terminates the
   * snapshot, then reads the rest of its OBF log.
   */
  private async endCapture(plan: Plan, alreadyMarked = false): Promise<ObfLog> {
    const mgmt = this.snapshots;
    let log: ObfLog;
    const reader = this.logReader ?? (await ObfLogReader.open(plan.obf));
    if (this.marked) {
      if (!alreadyMarked) await this.invalidAware(() => mgmt.call('snapshot_mark', { id: this.snapshotId }));
      await this.checkSnapshot();
      log = await reader.finish({ upToMarker: true });
      await this.terminate();
    } else {
      await this.terminate();
      log = await reader.finish();
    }
    await this.saveRecord({ state: 'image-complete' });
    return log;
  }

  /**
   * Resumed after 606 (the snapshot terminated, or already forgotten): its whole log from the
   * OBF, which must still be this snapshot's.
   */
  private async readEndedLog(plan: Plan, snapshotId: string): Promise<ObfLog> {
    const reader = await ObfLogReader.open(plan.obf);
    const log = await reader.finish({ upToMarker: this.marked });
    if (log.superblock.snapshotId !== snapshotId) {
      throw new AgentError('ERR_NOT_RESUMABLE', `backup ${this.backupId} cannot be resumed: its OBF now holds snapshot ${log.superblock.snapshotId}'s log, not ${snapshotId}'s (it was taken by another snapshot); run a new backup`);
    }
    this.snapshotEnded = true;
    if (this.record.state === 'copying') await this.saveRecord({ state: 'image-complete' });
    return log;
  }

  private async terminate(): Promise<void> {
    const st = await this.invalidAware(() => this.snapshots.call<{ state: string; reason?: string; reason_detail?: string }>('snapshot_terminate', { id: this.snapshotId }));
    this.snapshotEnded = true;
    if (st.state === 'INVALID') throw new AgentError('ERR_SNAPSHOT_INVALID', `the snapshot turned INVALID during the backup (${st.reason ?? 'no reason given'}); no consistent copy was made`);
  }

  /** A refusal of mark or terminate because the snapshot turned INVALID is that, not a usage error. */
  private async invalidAware<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_SNAPSHOT_STATE') await this.checkSnapshot();
      throw err;
    }
  }

  /**
   * After the OBF has been read for 608 (and the image hashed): its superblock must still be this
   * snapshot's, or another snapshot took the OBF meanwhile (an ended snapshot's OBF is free to
   * the target) and what was laid over the secondary may be another source's data.
   */
  private async checkObfUnchanged(plan: Plan, log: ObfLog): Promise<void> {
    const now = decodeSuperblock(await plan.obf.read16(0n, 1));
    if (now.snapshotId !== log.superblock.snapshotId) {
      throw new AgentError('ERR_OBF_IO', 'the OBF was taken by another snapshot while this backup read it: the secondary is not a consistent copy; run the backup again, with an OBF of its own');
    }
  }

  // ---- 608 -------------------------------------------------------------------------------

  private async applyRecords(plan: Plan, log: ObfLog): Promise<PassResult> {
    let saved = Date.now();
    const r = await applyObf(plan.obf, plan.sec, {
      bridge: plan.bridge,
      log,
      fallback: this.opts.fallback === true,
      fallbackHint: 'give --fallback',
      // Resumed: the records laid before the agent stopped (a completed prefix) are not laid again.
      from: Math.min(this.record.progress.appliedRecords, log.records.length),
      signal: this.opts.signal,
      onProgress: async (done, total) => {
        this.emit({ type: 'progress', phase: 'apply', done: BigInt(done), total: BigInt(total), unit: 'records' });
        if (Date.now() - saved < PROGRESS_SAVE_MS) return;
        saved = Date.now();
        await this.saveRecord({ progress: { ...this.record.progress, appliedRecords: done } });
      },
    });
    await this.saveRecord({ progress: { ...this.record.progress, appliedRecords: r.records } });
    return { records: r.records, dataBytes: r.dataBytes, commands: r.extendedCopyCommands, hostBytes: r.hostBytes, fallbackReason: r.fallbackReason };
  }

  /** Append mode: the used OBF (superblock and log) after the image, one contiguous copy. */
  private async appendLog(plan: Plan, log: ObfLog): Promise<PassResult> {
    const used = log.scan.endLba;
    if (used > plan.layout.logBlocksMax) throw new AgentError('ERR_INTERNAL', `the OBF's log (${used} blocks) exceeds the log area reserved on the secondary (${plan.layout.logBlocksMax})`);
    const c = await xcopyCopy({
      from: this.opts.obf,
      to: this.opts.secondary,
      bridge: this.opts.bridge,
      skip: 0n,
      seek: plan.layout.logLba,
      count: used,
      fallback: this.opts.fallback === true,
      fallbackHint: 'give --fallback',
      session: this.opts.session,
      signal: this.opts.signal,
      onProgress: (done, total, path) => this.emit({ type: 'progress', phase: 'append', done, total, unit: 'blocks', path }),
    });
    const dataBlocks = log.records.reduce((n, r) => n + BigInt(r.dataBlocks), 0n);
    const dataBytes = dataBlocks * BigInt(log.superblock.blockSize);
    await plan.sec.synchronizeCache16();
    await this.saveRecord({ log: { records: log.records.length, dataBlocks, usedBlocks: used }, progress: { ...this.record.progress, appendedBlocks: used } });
    return { records: log.records.length, dataBytes, commands: c.extended_copy_commands, hostBytes: c.host_bytes, fallbackReason: c.fallback_reason };
  }

  // ---- 603: the table of contents --------------------------------------------------------

  /**
   * The file system on the snapshot's view (the image as of 602, not the live source): the view
   * exported as a LUN of the source's target for the walk (src/toc/read.ts), then removed; the
   * TOC encoded (docs/toc-format.md) into the secondary's TOC reserve and recorded in its
   * header. Resolves undefined, with a warning, when no TOC can be made (no ext2/3/4, a damaged
   * file system, a TOC larger than the reserve): the copy stands without it.
   */
  private async tableOfContents(plan: Plan, snapshotId: string): Promise<BackupResult['toc']> {
    let view: { target: string; lun: number } | undefined;
    try {
      view = await this.snapshots.call<{ target: string; lun: number }>('view_add', { id: snapshotId });
      const r = await readToc({ url: lunUrl(this.opts.source, view.target, view.lun), session: this.opts.session });
      await this.snapshots.call('view_remove', { id: snapshotId, lun: view.lun });
      view = undefined;
      if (r.fs.needsRecovery) this.emit({ type: 'warning', message: 'the file system on the source needs journal recovery (in use, not flushed): its table of contents may list files written since its last commit wrong; freeze it with a pre-hook (fsfreeze -f) for a clean copy' });
      const body = encodeToc(r);
      const L = plan.layout;
      const room = L.tocBlocks * BigInt(L.blockSize);
      if (BigInt(body.length) > room) {
        this.emit({ type: 'warning', message: `no table of contents kept: it takes ${body.length} bytes, the secondary's TOC reserve ${room} (a file system of ${r.entries.length} inodes)` });
        return undefined;
      }
      const blocks = Math.ceil(body.length / L.blockSize);
      const out = Buffer.alloc(blocks * L.blockSize);
      body.copy(out);
      await plan.sec.write16(L.tocLba, out, { fua: true });
      await this.saveRecord({ toc: { usedBytes: BigInt(body.length), format: TOC_FORMAT_NAME } });
      return { files: r.entries.length, bytes: body.length };
    } catch (err) {
      if (this.interrupted()) throw err;
      this.emit({ type: 'warning', message: `no table of contents: ${(err as Error).message}` });
      return undefined;
    } finally {
      if (view) await this.snapshots.call('view_remove', { id: snapshotId, lun: view.lun }).catch(() => undefined);
    }
  }

  // ---- hashes of the image as of 602 ------------------------------------------------------

  /**
   * Starts hashing the image from the snapshot's view (view-hashes.ts), to run beside the copy.
   * finish() waits for the rest (reporting it as the hash phase) and writes the hash table; it
   * resolves undefined when the target cannot hash (then hashImage reads the secondary back).
   * stop() ends the hashing early (the copy failed) and waits for it to settle.
   */
  private hashView(plan: Plan, snapshotId: string): { finish(): Promise<Buffer[] | undefined>; stop(): Promise<void> } {
    const abort = new AbortController();
    const onAbort = () => abort.abort();
    this.opts.signal?.addEventListener('abort', onAbort, { once: true });
    let reporting = false;
    const running = viewExtentHashes({
      mgmt: this.snapshots,
      snapshotId,
      layout: plan.layout,
      signal: abort.signal,
      onProgress: (done) => {
        if (reporting) this.emit({ type: 'progress', phase: 'hash', done, total: plan.imageBlocks, unit: 'blocks' });
      },
    }).then(
      (hashes) => ({ hashes }),
      (err: unknown) => ({ err }),
    );
    return {
      finish: async () => {
        reporting = true;
        const r = await running;
        if ('err' in r) {
          if (!noViewHashing(r.err)) throw r.err;
          this.log.info('the source\'s target has no snapshot_hash: the image is hashed from the secondary after 608');
          return undefined;
        }
        await this.meta!.writeHashes(r.hashes);
        await this.saveRecord({ progress: { ...this.record.progress, hashedExtents: r.hashes.length } });
        return r.hashes;
      },
      stop: async () => {
        abort.abort();
        this.opts.signal?.removeEventListener('abort', onAbort);
        await running;
      },
    };
  }

  /**
   * --verify: the image read back from the secondary (with the log's records laid over it in
   * append mode), each extent checked against the hash the view gave.
   */
  private async verifyImage(plan: Plan, log: ObfLog, expected: Buffer[]): Promise<number> {
    const got = await this.readBackHashes(plan, log, 'verify');
    const bad = got.flatMap((h, i) => (h.equals(expected[i]) ? [] : [i]));
    if (bad.length > 0) {
      const r = secondary.extentRange(plan.layout, bad[0]);
      throw new AgentError(
        'ERR_BACKUP_VERIFY',
        `the secondary does not read back as the snapshot's image: ${bad.length} of ${got.length} extents differ, the first extent ${bad[0]} (bytes ${r.offset}..${r.offset + BigInt(r.bytes)}); it is not a good backup`,
      );
    }
    return got.length;
  }

  /** Each extent's SHA-256 as the secondary reads back (records laid over in append mode). */
  private readBackHashes(plan: Plan, log: ObfLog, phase: BackupPhase): Promise<Buffer[]> {
    return imageExtentHashes({
      layout: plan.layout,
      read: (lba, n) => plan.sec.read16(lba, n),
      overlay: this.mode === 'append' ? { records: log.records, read: (lba, n) => plan.obf.read16(lba, n) } : undefined,
      beforeExtent: () => this.checkInterrupted(),
      onExtent: (done, total) => {
        if (done % 16 !== 0 && done !== total) return;
        const r = secondary.extentRange(plan.layout, done - 1);
        this.emit({ type: 'progress', phase, done: (r.offset + BigInt(r.bytes)) / BigInt(plan.layout.blockSize), total: plan.imageBlocks, unit: 'blocks' });
      },
    });
  }

  /**
   * SHA-256 of each extent of the image as of 602 read from the secondary, for a target that
   * cannot hash its view; in append mode the image is not yet exact there, so the records the
   * log holds are laid over each extent in memory first.
   */
  private async hashImage(plan: Plan, log: ObfLog): Promise<number> {
    const hashes = await this.readBackHashes(plan, log, 'hash');
    await this.meta!.writeHashes(hashes);
    await this.saveRecord({ progress: { ...this.record.progress, hashedExtents: hashes.length } });
    return hashes.length;
  }

  // ---- the source's target restarting ---------------------------------------------------

  /**
   * A management call about this backup's snapshot that waits out a restart of the source's
   * target (docs/backup.md, "A restart of the source's target"): while its API cannot be reached,
   * or the snapshot is resuming from its OBF, the call is made again every RESTART_POLL_MS, for
   * RESTART_WAIT_MS at most. Any other failure stands at once.
   */
  private async snapshotCall<T>(method: string, params?: object): Promise<T> {
    const deadline = Date.now() + RESTART_WAIT_MS;
    for (;;) {
      try {
        const r = await this.opts.mgmt.call<T>(method, params);
        if (this.waitingForTarget) this.log.info({ method }, 'the source\'s target answers again');
        this.waitingForTarget = false;
        return r;
      } catch (err) {
        if (Date.now() >= deadline || this.interrupted() || !(await this.restarting(err))) throw err;
        if (!this.waitingForTarget) {
          this.emit({ type: 'warning', message: `the source's target is restarting (${(err as Error).message}): waiting for it, at most ${RESTART_WAIT_MS / 1000} s` });
        }
        this.waitingForTarget = true;
        await sleep(RESTART_POLL_MS);
      }
    }
  }

  /** Whether `err` says the source's target is restarting: its API unreachable, or this snapshot resuming (snapshot_list). */
  private async restarting(err: unknown): Promise<boolean> {
    const code = (err as { code?: unknown }).code;
    if (code === 'ERR_MGMT_UNREACHABLE') return true;
    if (code !== 'ERR_SNAPSHOT_STATE' || this.snapshotId === undefined) return false;
    const all = await this.opts.mgmt.call<Array<{ id: string; resuming?: boolean }>>('snapshot_list').catch(() => []);
    return all.some((x) => x.id === this.snapshotId && x.resuming === true);
  }

  // ---- endings -----------------------------------------------------------------------------

  /** After a successful backup the target forgets the snapshot (the OBF's content stays). */
  private async forgetSnapshot(): Promise<void> {
    if (!this.snapshotId) return;
    await this.snapshots.call('snapshot_forget', { id: this.snapshotId }).catch((err: unknown) => this.log.warn({ err, snapshot: this.snapshotId }, 'could not forget the snapshot'));
  }

  /** Leaves nothing armed and marks the secondary failed with the reason. */
  private async fail(err: unknown): Promise<void> {
    const reason = secondary.clipText(this.interrupted() ? 'interrupted' : err instanceof Error ? err.message : String(err), secondary.SECONDARY_REASON_MAX_BYTES);
    if (this.snapshotId && !this.snapshotEnded && !this.opts.keepSnapshotOnAbort) {
      try {
        await this.snapshots.call('snapshot_terminate', { id: this.snapshotId });
        this.snapshotEnded = true;
        await this.snapshots.call('snapshot_forget', { id: this.snapshotId });
      } catch (e) {
        this.log.error({ err: e, snapshot: this.snapshotId }, 'could not end the snapshot after a failed backup: end it with `xcopy-agent snapshot terminate`');
      }
    } else if (this.snapshotId && this.snapshotEnded && !this.opts.keepSnapshotOnAbort) {
      await this.forgetSnapshot();
    }
    if (this.meta && this.record.state !== 'failed') {
      await this.saveRecord({ state: 'failed', reason, times: { ...this.record.times, finishedAt: nowIso(), phases: { ...this.phases } } }).catch((e: unknown) =>
        this.log.error({ err: e }, 'could not mark the secondary failed'),
      );
    }
  }

  private async close(): Promise<void> {
    const p = this.plan;
    if (!p) return;
    for (const s of new Set([p.bridge, p.obf, p.sec, p.src])) await s.close().catch(() => undefined);
  }
}

/** Runs one backup (see the file's header). */
export function backup(opts: BackupOptions): Promise<BackupResult> {
  return new Backup(opts).run();
}

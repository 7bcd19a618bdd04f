/**
 * The target's snapshot sessions: institute / mark / terminate / status over the LUNs of a
 * TargetModel, snapshot-view LUNs added to and removed from target portal groups, the journal
 * in the state directory, and resumption after a restart (in the background: see open()).
 * The management API (src/target/management.ts) is a thin JSON face over this class.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AgentError } from '../../errors';
import { openStore, parseStoreSpec } from '../../store/open';
import type { Store } from '../../store/store';
import { LogicalUnit, reportedLunsChanged } from '../scsi';
import type { TargetModel, TargetPortalGroup } from '../target';
import type { Logger } from '../../util/log';
import { COPY_MANAGER_OPCODES, copyManagerOf, enableCopyManager } from '../../xcopy';
import { refusedChange, type CowStore } from '../../cow/cow-store';
import { publishResuming } from '../../cow/events';
import { FileJournal } from '../../cow/journal';
import { InstituteFailedError, SnapshotSession, type SessionRecord, type SnapshotPolicy, type SnapshotStatus } from '../../cow/session';
import { SnapshotViewStore } from '../../cow/view-store';
import { StoreError } from '../../store/store';
import { checkHashRange, hashImagePieces } from './image-hash';

/** A LUN of this target: `{target, lun, tpg?}`, or "IQN/LUN". */
export type LunRef = string | { target: string; lun: number; tpg?: number };

export interface InstituteParams {
  source: LunRef;
  /** A store spec (file:PATH[:SIZE], memory:SIZE, iscsi://...) or a LUN of this target. */
  obf: string | LunRef;
  chunk_bytes?: number;
  policy?: SnapshotPolicy;
  cow_timeout_ms?: number;
  drain_timeout_ms?: number;
  series_id?: string;
  /** Take an OBF that holds something else (data, another target's active snapshot). */
  overwrite_obf?: boolean;
}

export interface ViewInfo {
  snapshot: string;
  target: string;
  tpg: number;
  lun: number;
  naa: string;
}

export interface ManagerOptions {
  log: Logger;
}

interface Entry {
  session: SnapshotSession;
  /** The OBF store when the session opened it (closed when the session is forgotten). */
  ownedObf?: Store;
  views: Array<{ tpg: TargetPortalGroup; lun: number; lu: LogicalUnit }>;
}

/** A journalled session that was capturing when the target stopped. */
function capturingRecord(r: SessionRecord): boolean {
  return r.state === 'ACTIVE' || r.state === 'MARKED';
}

/** A journalled snapshot not in service yet after a restart (resuming), or that could not be. */
export interface PendingSnapshot {
  id: string;
  state: string;
  source: string;
  obf: string;
  policy: SnapshotPolicy;
  chunk_bytes: number;
  resuming?: true;
  unresumable?: string;
}

/** The backing file of a store (a file store, or one under its COW filter), if any. */
function backingPath(st: Store | undefined): string | undefined {
  return st?.backingFile?.()?.path;
}

/** The backing file a session's OBF spec names (a file: spec, or a file LUN's key), if any. */
function specPath(spec: string, model: TargetModel): string | undefined {
  if (spec.startsWith('/backstores/')) return backingPath(model.stores.get(spec));
  try {
    const p = parseStoreSpec(spec);
    if (p.kind !== 'file') return undefined;
    try {
      return fs.realpathSync(path.resolve(p.path)); // FileStore.path is the real path
    } catch {
      return path.resolve(p.path);
    }
  } catch {
    return undefined;
  }
}

function notFound(id: unknown): AgentError {
  return new AgentError('ERR_SNAPSHOT_NOT_FOUND', `no snapshot ${String(id)} on this target (snapshot_list shows them)`);
}

export class SnapshotManager {
  readonly model: TargetModel;
  readonly journal: FileJournal;
  private readonly log: Logger;
  private readonly entries = new Map<string, Entry>();
  /** Journalled sessions not resumed yet after the restart, and those that could not be. */
  private readonly resuming = new Map<string, SessionRecord>();
  private readonly unresumable = new Map<string, { record: SessionRecord; why: string }>();
  /** Sources refusing changes until these (capturing) sessions have resumed. */
  private readonly fenced = new Map<CowStore, Set<string>>();
  /** Settles when every journalled session has been resumed (or could not be). */
  resumed: Promise<void> = Promise.resolve();
  /** Aborts the resumes still to come or running (close: the target is stopping). */
  private readonly stopping = new AbortController();
  /**
   * Told when a view LUN was added to or removed from a TPG. The server gives the sessions their
   * new LUN views (TargetServer.refreshSessions); alone, every nexus the TPG's LUs know gets
   * REPORTED LUNS DATA HAS CHANGED.
   */
  lunsChanged: (tpg: TargetPortalGroup) => void = (tpg) => reportedLunsChanged(tpg.luns);

  private constructor(model: TargetModel, journal: FileJournal, opts: ManagerOptions) {
    this.model = model;
    this.journal = journal;
    this.log = opts.log;
  }

  /**
   * Opens the journal in `stateDir` and resumes its sessions in the background (call before
   * serving I/O): resuming reads the OBF's whole valid log, which can take a while, and the rest
   * of the target serves meanwhile. Until its session has resumed, the source of a session that
   * was capturing refuses changes (NOT READY, 04h/01h: hosts retry) and answers TEST UNIT READY
   * so — reads go on, nothing reaches it uncaptured — and an OBF that is a LUN here is read-only
   * to hosts. Capturing sessions resume first, ended ones (SEALED, INVALID: their logs are
   * checked) after. An OBF that cannot be opened, or whose superblock cannot be read or is not
   * this snapshot's, makes the session INVALID (TRACKING_GAP, journalled before the source takes
   * changes again). A resume that throws — a read error while scanning the log, the journal
   * failing — leaves a capturing session's source NOT READY (04h/03h, manual intervention) and
   * the journal as it was; an ended one only leaves its record (status says why; forget takes it
   * away). A stop aborts the scans (stopResuming).
   */
  static async open(model: TargetModel, stateDir: string, opts: ManagerOptions): Promise<SnapshotManager> {
    const journal = await FileJournal.open(stateDir);
    const m = new SnapshotManager(model, journal, opts);
    const records = journal.list();
    const order = [...records.filter(capturingRecord), ...records.filter((r) => !capturingRecord(r))];
    for (const rec of order) {
      m.resuming.set(rec.id, rec);
      if (!capturingRecord(rec)) continue;
      const source = model.stores.get(rec.source);
      if (source) {
        let ids = m.fenced.get(source);
        if (!ids) m.fenced.set(source, (ids = new Set()));
        ids.add(rec.id);
        source.setNotReady(refusedChange('not-ready-becoming-ready', `${rec.source} is resuming snapshot ${rec.id} after a restart`));
      }
      const obf = model.stores.get(rec.obf);
      if (obf) obf.obfOf = rec.id;
    }
    m.resumed = (async () => {
      for (const rec of order) {
        if (m.stopping.signal.aborted) {
          m.resuming.delete(rec.id);
          continue; // the journal keeps it: the next start resumes it
        }
        try {
          await publishResuming(rec); // docs/cow.md "The resuming event"
          await m.resume(rec);
          m.unfence(rec);
        } catch (err) {
          if (m.stopping.signal.aborted) continue; // stopped, not failed: the next start resumes it
          const why = (err as Error).message;
          m.unresumable.set(rec.id, { record: rec, why });
          const source = model.stores.get(rec.source);
          if (capturingRecord(rec) && source) {
            source.setNotReady(refusedChange('not-ready-manual-intervention', `snapshot ${rec.id} could not be resumed: ${why}`));
            m.log.error({ snapshot: rec.id, source: rec.source, err: why }, 'snapshot could not be resumed after the restart: its source refuses writes (NOT READY) until the OBF is fixed and the target restarted');
          } else {
            m.log.warn({ snapshot: rec.id, err: why }, 'an ended snapshot could not be read back after the restart (snapshot_forget removes it)');
          }
        } finally {
          m.resuming.delete(rec.id);
        }
      }
    })();
    return m;
  }

  /**
   * A capturing session has resumed (armed again, or INVALID): its source takes changes again
   * once no other capturing session of it is still to resume; its OBF LUN is let go if it no
   * longer captures.
   */
  private unfence(rec: SessionRecord): void {
    if (!capturingRecord(rec)) return;
    const e = this.entries.get(rec.id);
    if (!e?.session.capturing) {
      const o = this.model.stores.get(rec.obf);
      if (o && o.obfOf === rec.id) o.obfOf = undefined;
    }
    const source = this.model.stores.get(rec.source);
    if (!source) return;
    const ids = this.fenced.get(source);
    ids?.delete(rec.id);
    if (ids && ids.size > 0) return;
    this.fenced.delete(source);
    source.setNotReady(undefined);
  }

  /** What status says of a snapshot still resuming, or that could not be resumed. */
  private pendingInfo(rec: SessionRecord, why?: string): PendingSnapshot {
    return { id: rec.id, state: rec.state, source: rec.source, obf: rec.obf, policy: rec.policy, chunk_bytes: rec.chunkBytes, ...(why === undefined ? { resuming: true as const } : { unresumable: why }) };
  }

  /** A session by id; one still resuming, or that could not be, is a state error saying so. */
  private entryOf(id: unknown): Entry {
    const e = typeof id === 'string' ? this.entries.get(id) : undefined;
    if (e) return e;
    if (typeof id === 'string' && this.resuming.has(id)) {
      throw new AgentError('ERR_SNAPSHOT_STATE', `snapshot ${id} is resuming from its OBF after a restart; retry shortly`);
    }
    const u = typeof id === 'string' ? this.unresumable.get(id) : undefined;
    if (u !== undefined) {
      throw new AgentError(
        'ERR_SNAPSHOT_STATE',
        capturingRecord(u.record)
          ? `snapshot ${String(id)} could not be resumed after the restart (${u.why}); its source refuses writes: fix the OBF and restart the target`
          : `snapshot ${String(id)} (${u.record.state}) could not be read back after the restart (${u.why}); snapshot_forget removes it`,
      );
    }
    throw notFound(id);
  }

  private async resume(rec: SessionRecord): Promise<void> {
    const source = this.model.stores.get(rec.source);
    if (!source) {
      rec.state = rec.state === 'ACTIVE' || rec.state === 'MARKED' ? 'INVALID' : rec.state;
      if (rec.state === 'INVALID' && !rec.reason) {
        rec.reason = 'TRACKING_GAP';
        rec.reasonDetail = `the source ${rec.source} is no longer configured`;
      }
      await this.journal.save(rec);
      this.log.warn({ snapshot: rec.id, source: rec.source }, 'snapshot source not configured; kept in the journal only');
      const o = this.model.stores.get(rec.obf);
      if (o && o.obfOf === rec.id) o.obfOf = undefined;
      return;
    }
    let obf: Store | undefined;
    let owned: Store | undefined;
    let obfError: string | undefined;
    try {
      if (rec.obf.startsWith('/backstores/')) obf = this.model.stores.get(rec.obf);
      else obf = owned = await openStore(rec.obf);
      if (!obf) obfError = `${rec.obf} is not configured`;
    } catch (err) {
      obfError = (err as Error).message;
    }
    let session: SnapshotSession;
    try {
      session = await SnapshotSession.resume({ source, obf, record: rec, journal: this.journal, log: this.log, obfError, signal: this.stopping.signal });
    } catch (err) {
      await owned?.close().catch(() => undefined);
      throw err;
    }
    if (!session.capturing && owned) {
      await owned.close().catch(() => undefined);
      owned = undefined;
    }
    this.entries.set(rec.id, { session, ownedObf: owned, views: [] });
  }

  // -------------------------------------------------------------------------------------------

  /** Resolves a LUN reference to its TPG, LUN number, logical unit and storage object key. */
  resolveLun(ref: LunRef): { tpg: TargetPortalGroup; lun: number; lu: LogicalUnit; key: string } {
    let target: string;
    let lun: number;
    let tag: number | undefined;
    if (typeof ref === 'string') {
      const m = /^(.+)\/(\d+)$/.exec(ref);
      if (!m) throw new AgentError('ERR_INVALID_ARG', `LUN ${JSON.stringify(ref)} is not IQN/LUN (e.g. iqn.2026-11.io.example:t1/0)`);
      target = m[1];
      lun = Number(m[2]);
    } else if (ref && typeof ref === 'object' && typeof ref.target === 'string' && Number.isInteger(ref.lun)) {
      target = ref.target;
      lun = ref.lun;
      tag = ref.tpg;
    } else {
      throw new AgentError('ERR_INVALID_ARG', 'a LUN is "IQN/LUN" or {"target": IQN, "lun": N, "tpg"?: TAG}');
    }
    const tpg = this.model.tpg(target, tag);
    if (!tpg) throw new AgentError('ERR_INVALID_ARG', `no target ${target}${tag !== undefined ? ` with TPG ${tag}` : ''} here (lun_list shows the LUNs)`);
    const lu = tpg.luns.get(lun);
    if (!lu) throw new AgentError('ERR_INVALID_ARG', `${target} has no LUN ${lun} (lun_list shows the LUNs)`);
    const key = this.keyOf(lu.store) ?? '';
    return { tpg, lun, lu, key };
  }

  async institute(p: InstituteParams): Promise<SnapshotStatus> {
    const src = this.resolveLun(p.source);
    // The LUNs of the model's storage objects sit behind their COW filters; a view does not.
    const cow = this.model.stores.get(src.key);
    if (!cow) {
      throw new AgentError('ERR_INVALID_ARG', `${src.tpg.node.name}/${src.lun} is not a source LUN (a snapshot view cannot itself be snapshotted)`);
    }
    const notReady = cow.notReady();
    if (notReady) throw new AgentError('ERR_SNAPSHOT_STATE', `${src.tpg.node.name}/${src.lun} is not ready: ${notReady.message}`);
    for (const e of this.entries.values()) {
      if (e.session.source === cow && (e.session.state === 'ACTIVE' || e.session.state === 'MARKED')) {
        throw new AgentError('ERR_SNAPSHOT_STATE', `${src.tpg.node.name}/${src.lun} already has snapshot ${e.session.id} (${e.session.state}); terminate it first`);
      }
    }
    let obf: Store;
    let owned: Store | undefined;
    let obfSpec: string;
    // Capturing, or still ending (its SEAL, INVALID superblock or last commits not written yet).
    const active = [...this.entries.values()].filter((e) => !e.session.ended);
    if (active.some((e) => e.session.obf === cow || cow.wraps(e.session.obf))) {
      throw new AgentError('ERR_SNAPSHOT_STATE', `${src.tpg.node.name}/${src.lun} is the OBF of an active snapshot; it cannot be a source now`);
    }
    if (typeof p.obf === 'string' && !/^[^/]+\/\d+$/.test(p.obf)) {
      obfSpec = p.obf;
      obf = owned = await openStore(p.obf);
      // A store spec must not name the backing file of a LUN (the superblock would overwrite it).
      const file = backingPath(owned);
      if (file !== undefined && [...this.model.stores.values()].some((st) => backingPath(st) === file)) {
        await owned.close().catch(() => undefined);
        throw new AgentError('ERR_INVALID_ARG', `${p.obf} is the backing file of a LUN of this target; name the LUN ("IQN/LUN") or another file`);
      }
    } else {
      const o = this.resolveLun(p.obf as LunRef);
      if (o.lu.store === cow) throw new AgentError('ERR_INVALID_ARG', 'the OBF must not be the source LUN');
      if (o.lu.store instanceof SnapshotViewStore) throw new AgentError('ERR_INVALID_ARG', 'a snapshot view is read-only; it cannot be an OBF');
      if (this.model.stores.get(o.key)?.claimed) {
        throw new AgentError('ERR_SNAPSHOT_STATE', `${JSON.stringify(p.obf)} is the source of an active snapshot; it cannot be an OBF now`);
      }
      obf = o.lu.store;
      obfSpec = o.key;
    }
    const obfPath = backingPath(obf);
    // A capturing snapshot still resuming (or that could not be) owns its OBF as much as one in service.
    const pendingOwner = [...this.resuming.values(), ...[...this.unresumable.values()].map((u) => u.record)].find(
      (r) => capturingRecord(r) && (r.obf === obfSpec || (obfPath !== undefined && specPath(r.obf, this.model) === obfPath)),
    );
    if (pendingOwner) {
      await owned?.close().catch(() => undefined);
      throw new AgentError('ERR_SNAPSHOT_STATE', `that OBF is snapshot ${pendingOwner.id}'s, which ${this.resuming.has(pendingOwner.id) ? 'is resuming after a restart; retry shortly' : 'could not be resumed after the restart'}`);
    }
    // The same OBF: the same store (a LUN's, or one opened here: never one under another's
    // filter), or the same backing file reached another way.
    const clash = active.find((e) => e.session.obf === obf || (obfPath !== undefined && backingPath(e.session.obf) === obfPath));
    // A sealed snapshot the target still remembers retains its OBF (606): its log is what the
    // agent lays over the secondary (608), until it forgets the snapshot. Only overwrite_obf
    // takes such an OBF.
    const retained =
      p.overwrite_obf === true
        ? undefined
        : [...this.entries.values()].find((e) => e.session.state === 'SEALED' && (e.session.obf === obf || (obfPath !== undefined && backingPath(e.session.obf) === obfPath)));
    if (retained) {
      await owned?.close().catch(() => undefined);
      const s = retained.session;
      throw new AgentError(
        'ERR_SNAPSHOT_STATE',
        `that OBF holds the log of snapshot ${s.id} (${s.state}), retained until the snapshot is forgotten: snapshot_forget ${s.id} once its log is applied, or overwrite_obf to take it anyway`,
      );
    }
    if (clash) {
      await owned?.close().catch(() => undefined);
      const s = clash.session;
      throw new AgentError(
        'ERR_SNAPSHOT_STATE',
        s.capturing
          ? `that OBF is in use by snapshot ${s.id}; terminate it or choose another OBF`
          : `that OBF is in use by snapshot ${s.id} (${s.state}), whose last writes to it are still in flight; retry shortly or choose another OBF`,
      );
    }
    try {
      const session = await SnapshotSession.institute({
        source: cow,
        sourceKey: src.key,
        obf,
        obfSpec,
        journal: this.journal,
        chunkBytes: p.chunk_bytes,
        policy: p.policy,
        cowTimeoutMs: p.cow_timeout_ms,
        drainTimeoutMs: p.drain_timeout_ms,
        seriesId: p.series_id,
        overwriteObf: p.overwrite_obf === true,
        endedHere: (sid) => this.entries.get(sid)?.session.ended === true,
        log: this.log,
      });
      this.entries.set(session.id, { session, ownedObf: owned, views: [] });
      return session.status();
    } catch (err) {
      // A session journalled ABANDONED is shown (and forgotten) like any ended one, as it will
      // be after a restart.
      const rec = err instanceof InstituteFailedError ? this.journal.get(err.snapshotId) : undefined;
      if (rec && rec.state === 'INVALID' && !this.entries.has(rec.id)) {
        const reading = SnapshotSession.resume({ source: cow, obf, record: rec, journal: this.journal, log: this.log });
        reading.catch(() => undefined); // given up on after 5 s: a late failure is nobody's
        const session = await Promise.race([reading, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5_000).unref())]).catch(() => undefined);
        if (session && !session.capturing) this.entries.set(rec.id, { session, views: [] });
      }
      await owned?.close().catch(() => undefined);
      throw err;
    }
  }

  get(id: unknown): SnapshotSession {
    const e = this.entryOf(id);
    return e.session;
  }

  status(id: unknown): SnapshotStatus & { views: ViewInfo[] } {
    const e = this.entryOf(id);
    return { ...e.session.status(), views: e.views.map((v) => this.viewInfo(e.session.id, v)) };
  }

  /** Every snapshot: those in service, then those still resuming or that could not be. */
  list(): Array<(SnapshotStatus & { views: ViewInfo[] }) | PendingSnapshot> {
    return [
      ...[...this.entries.keys()].map((id) => this.status(id)),
      ...[...this.resuming.values()].map((r) => this.pendingInfo(r)),
      ...[...this.unresumable.values()].map((u) => this.pendingInfo(u.record, u.why)),
    ];
  }

  /**
   * SHA-256 of consecutive pieces of the image as of institution (image-hash.ts): blocks
   * [lba, lba + blocks) of the source's blocks, `pieceBlocks` blocks per piece. Only while the
   * snapshot captures (ACTIVE or MARKED): once it ends its image can no longer be read.
   */
  async hashImage(id: unknown, range: { lba: bigint; blocks: bigint; pieceBlocks: number }): Promise<{ block_size: number; hashes: string[] }> {
    const { session } = this.entryOf(id);
    const blockSize = session.source.blockSize;
    const r = { ...range, blockSize };
    checkHashRange(r, session.source.blocks);
    const notViewable = () => new AgentError('ERR_SNAPSHOT_STATE', `snapshot ${session.id} is ${session.state}: its image can no longer be read (hash while it is ACTIVE or MARKED)`);
    if (!session.viewable) throw notViewable();
    try {
      const hashes = await hashImagePieces(session, r);
      return { block_size: blockSize, hashes: hashes.map((h) => h.toString('hex')) };
    } catch (err) {
      if (err instanceof StoreError && err.failure.kind === 'not-ready' && !session.viewable) throw notViewable();
      throw err;
    }
  }

  async mark(id: unknown): Promise<SnapshotStatus> {
    return this.get(id).mark();
  }

  /** Terminates (seals) the snapshot and removes its view LUNs, whose image ends with it. */
  async terminate(id: unknown): Promise<SnapshotStatus & { views_removed: ViewInfo[] }> {
    const e = this.entryOf(id);
    const removed = [...e.views];
    for (const v of removed) this.dropView(e, v);
    const st = await e.session.terminate();
    // The OBF is retained, sealed, for the agent; an OBF this target opened itself is let go.
    if (e.ownedObf) {
      await e.ownedObf.close().catch(() => undefined);
      e.ownedObf = undefined;
    }
    return { ...st, views_removed: removed.map((v) => this.viewInfo(e.session.id, v)) };
  }

  /**
   * Forgets an ended (SEALED or INVALID) snapshot: removed from the journal and from status; its
   * OBF is left as it is (the agent may still read it). An ACTIVE or MARKED one must be
   * terminated first.
   */
  async forget(id: unknown): Promise<{ forgotten: string }> {
    const u = typeof id === 'string' ? this.unresumable.get(id) : undefined;
    if (u && !capturingRecord(u.record)) {
      await this.journal.remove(u.record.id);
      this.unresumable.delete(u.record.id);
      this.log.info({ snapshot: u.record.id }, 'snapshot forgotten (it could not be read back after the restart)');
      return { forgotten: u.record.id };
    }
    const e = this.entryOf(id);
    if (e.session.capturing) throw new AgentError('ERR_SNAPSHOT_STATE', `snapshot ${e.session.id} is ${e.session.state}; terminate it before forgetting it`);
    // Its last OBF writes land first: once forgotten, its OBF is free for another snapshot.
    if (!(await e.session.waitEnded(10_000))) {
      throw new AgentError('ERR_SNAPSHOT_STATE', `snapshot ${e.session.id} is ${e.session.state} but still has writes to its OBF in flight (a hung OBF or source?); retry later`);
    }
    if (!this.entries.has(e.session.id)) throw notFound(id);
    await this.journal.remove(e.session.id);
    this.entries.delete(e.session.id);
    await e.ownedObf?.close().catch(() => undefined);
    this.log.info({ snapshot: e.session.id }, 'snapshot forgotten');
    return { forgotten: e.session.id };
  }

  /**
   * Exports the image as of institution as a read-only LUN in the source's target portal group
   * (or `target`'s), mapped read-only to every ACL that maps the source.
   */
  addView(id: unknown, where: { target?: string; tpg?: number; lun?: number } = {}): ViewInfo {
    const e = this.entryOf(id);
    const s = e.session;
    if (!s.viewable) throw new AgentError('ERR_SNAPSHOT_STATE', `snapshot ${s.id} is ${s.state}: only an ACTIVE or MARKED snapshot has a view`);
    const srcTpg = this.tpgOfStore(s.source);
    const tpg = where.target !== undefined ? this.model.tpg(where.target, where.tpg) : srcTpg?.tpg;
    if (!tpg) throw new AgentError('ERR_INVALID_ARG', `no target portal group ${where.target ?? ''} here`);
    let lun = where.lun;
    if (lun === undefined) for (lun = 0; tpg.luns.has(lun); lun++);
    if (!Number.isInteger(lun) || lun < 0 || lun > 16383) throw new AgentError('ERR_INVALID_ARG', `LUN ${String(lun)} must be 0..16383`);
    if (tpg.luns.has(lun)) throw new AgentError('ERR_INVALID_ARG', `LUN ${lun} of ${tpg.node.name} is in use (omit lun to take the first free one)`);
    const lu = new LogicalUnit({ store: new SnapshotViewStore(s), targetName: tpg.node.name, targetPortGroup: tpg.tag, opcodes: COPY_MANAGER_OPCODES, readOnly: true });
    const cm = [...tpg.luns.values()].map((x) => copyManagerOf(x)).find((x) => x !== undefined);
    if (cm) enableCopyManager(lu, cm);
    tpg.luns.set(lun, lu);
    this.mapView(s, tpg, lun);
    const v = { tpg, lun, lu };
    e.views.push(v);
    this.lunsChanged(tpg);
    this.log.info({ snapshot: s.id, target: tpg.node.name, lun }, 'snapshot view added');
    return this.viewInfo(s.id, v);
  }

  /** Whoever sees the snapshot's source in `tpg` sees its view at TPG LUN `lun`, read-only. */
  private mapView(s: SnapshotSession, tpg: TargetPortalGroup, lun: number): void {
    const srcTpg = this.tpgOfStore(s.source);
    const srcLun = srcTpg && srcTpg.tpg === tpg ? srcTpg.lun : undefined;
    if (srcLun === undefined) return;
    for (const acl of tpg.config.nodeAcls) {
      if (!acl.mappedLuns.some((x) => x.tpgLun === srcLun)) continue;
      let index = lun;
      while (acl.mappedLuns.some((x) => x.index === index)) index++;
      acl.mappedLuns.push({ index, tpgLun: lun, writeProtect: true });
    }
  }

  /**
   * After a configuration reload replaced `tpg`'s ACLs (TargetModel.swap): its views are mapped
   * again to the ACLs that map their sources. The views themselves stay at their LUN numbers.
   */
  remapViews(tpg: TargetPortalGroup): void {
    for (const e of this.entries.values()) for (const v of e.views) if (v.tpg === tpg) this.mapView(e.session, tpg, v.lun);
  }

  /** The LUN numbers of `tpg` that snapshot views hold (a reload must leave them to the views). */
  viewLuns(tpg: TargetPortalGroup): Array<{ lun: number; snapshot: string }> {
    return [...this.entries.values()].flatMap((e) => e.views.filter((v) => v.tpg === tpg).map((v) => ({ lun: v.lun, snapshot: e.session.id })));
  }

  /**
   * Why a configuration reload must leave the storage object `key` as it is — neither remove
   * nor replace its store — if it must: a snapshot captures it or is being instituted on it; it
   * is the OBF of a snapshot not ended yet, or of a sealed one the target retains (its log is
   * still to be read); a journalled snapshot naming it is resuming, or could not be resumed.
   */
  pinnedBy(key: string): string | undefined {
    const cow = this.model.stores.get(key);
    for (const e of this.entries.values()) {
      const s = e.session;
      if (cow !== undefined && s.source === cow && !s.ended) return `snapshot ${s.id} (${s.state}) captures it`;
      if (cow !== undefined && (s.obf === cow || cow.wraps(s.obf)) && (!s.ended || s.state === 'SEALED')) {
        return `it is the OBF of snapshot ${s.id} (${s.state})${s.ended ? ', retained until snapshot_forget' : ''}`;
      }
    }
    if (cow?.claimed || cow?.obfOf !== undefined) return 'a snapshot is being instituted on it';
    const pending = [...this.resuming.values(), ...[...this.unresumable.values()].map((u) => u.record)].find((r) => r.source === key || r.obf === key);
    if (pending) return `snapshot ${pending.id} names it and ${this.resuming.has(pending.id) ? 'is resuming after a restart' : 'could not be resumed after the restart'}`;
    return undefined;
  }

  removeView(id: unknown, lun: unknown): ViewInfo {
    const e = this.entryOf(id);
    const v = e.views.find((x) => x.lun === lun);
    if (!v) throw new AgentError('ERR_INVALID_ARG', `snapshot ${e.session.id} has no view at LUN ${String(lun)}`);
    this.dropView(e, v);
    return this.viewInfo(e.session.id, v);
  }

  private dropView(e: Entry, v: Entry['views'][number]): void {
    if (v.tpg.luns.get(v.lun) === v.lu) v.tpg.luns.delete(v.lun);
    for (const acl of v.tpg.config.nodeAcls) acl.mappedLuns = acl.mappedLuns.filter((x) => x.tpgLun !== v.lun);
    e.views = e.views.filter((x) => x !== v);
    this.lunsChanged(v.tpg);
    this.log.info({ snapshot: e.session.id, target: v.tpg.node.name, lun: v.lun }, 'snapshot view removed');
  }

  private viewInfo(id: string, v: { tpg: TargetPortalGroup; lun: number; lu: LogicalUnit }): ViewInfo {
    return { snapshot: id, target: v.tpg.node.name, tpg: v.tpg.tag, lun: v.lun, naa: v.lu.naa.toString('hex') };
  }

  /** The storage object key (/backstores/...) of a store of the model, if it is one. */
  private keyOf(store: Store): string | undefined {
    for (const [key, s] of this.model.stores) if (s === store) return key;
    return undefined;
  }

  private tpgOfStore(store: Store): { tpg: TargetPortalGroup; lun: number } | undefined {
    for (const tpg of this.model.allTpgs()) for (const [lun, lu] of tpg.luns) if (lu.store === store) return { tpg, lun };
    return undefined;
  }

  /** Every LUN of the target, with what the snapshots make of it. */
  lunList(): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const tpg of this.model.allTpgs()) {
      for (const [lun, lu] of [...tpg.luns].sort((a, b) => a[0] - b[0])) {
        const key = this.keyOf(lu.store);
        const snap = [...this.entries.values()].find((e) => e.session.source === lu.store && (e.session.state === 'ACTIVE' || e.session.state === 'MARKED'));
        const viewOf = lu.store instanceof SnapshotViewStore ? lu.store.session.id : undefined;
        out.push({
          target: tpg.node.name,
          tpg: tpg.tag,
          lun,
          ...(key ? { storage_object: key } : {}),
          // What the storage object is (file, memory, remote), not its filter.
          kind: (key !== undefined ? this.model.backingKinds.get(key) : undefined) ?? lu.store.kind,
          name: lu.store.identity.name,
          blocks: lu.store.blocks.toString(),
          block_size: lu.blockSize,
          naa: lu.naa.toString('hex'),
          read_only: lu.store.readOnly,
          ...(snap ? { snapshot: snap.session.id, snapshot_state: snap.session.state } : {}),
          ...(viewOf ? { view_of: viewOf } : {}),
        });
      }
    }
    return out;
  }

  /** Resumes still running stop at their next read of the OBF; those to come do not start (their journal entries stay). */
  stopResuming(): void {
    if (!this.stopping.signal.aborted) this.stopping.abort(new AgentError('ERR_SNAPSHOT_STATE', 'the target is stopping'));
  }

  /** Terminates nothing: sessions stay armed across a stop (the journal resumes them). Closes owned OBFs. */
  async close(): Promise<void> {
    this.stopResuming();
    await this.resumed;
    for (const e of this.entries.values()) {
      await e.session.quiesce();
      await e.ownedObf?.close().catch(() => undefined);
    }
  }
}

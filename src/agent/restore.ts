/**
 * `restore` (docs/method.md 700 / 750): a copy back onto a LUN — the original or another — from
 * the secondary alone, by EXTENDED COPY through a copy manager that reaches both.
 *  750  an overwrite-mode or integrated copy: the image, as it is on the secondary;
 *  700  an append-mode copy not integrated: the image as copied, then the records of its
 *       appended log laid over it on the restored LUN (the secondary is not changed);
 * the whole image, or block ranges of it (`ranges`, records clipped to them). Then checked:
 * a whole restore against the hash table — hashed where its data is by the target serving the
 * restored LUN (`mgmt`: lun_hash, the LUN found by its NAA designator), or read back through
 * iSCSI (verify --against) without one — and ranges byte for byte against the image read from
 * the secondary with the log laid over it (docs/restore.md, "The check").
 *
 * A LUN that answers NOT READY, LOGICAL UNIT IS IN PROCESS OF BECOMING READY (04h/01h: its
 * target resuming a snapshot after a restart) is waited for, bounded, before anything is written.
 *
 * A restore overwrites the LUN it writes: it needs `yes`, and refuses a LUN too small for what it
 * writes, with another block size, or that is the secondary itself, before anything is written.
 */
import { AgentError, ArgumentError, IscsiError } from '../errors';
import { DEFAULT_RETRY } from '../initiator/retry';
import { IscsiSession, type ScsiResult, type SessionOptions } from '../initiator/session';
import { redactUrl } from '../initiator/url';
import type { ManagementClient } from '../mgmt';
import type { DataRecordRef } from '../obf/log';
import { encodeTestUnitReadyCdb } from '../scsi/cdb';
import { ScsiStatus } from '../scsi/constants';
import { Sense, senseIs } from '../scsi/sense-reasons';
import * as secondary from '../secondary';
import { applyObf, readAppendedLog, type ObfLog } from './apply-obf';
import { layOver } from './image-hashes';
import { inquire } from './inquire';
import { readHashTable, readSecondaryMetadata } from './secondary-lun';
import { matchLun, type LunEntry } from './target-luns';
import { checkExtentHashes, verify } from './verify';
import { lunExtentHashes, noViewHashing } from './view-hashes';
import { xcopyCopy } from './xcopy-copy';

export interface RestoreRange {
  lba: bigint;
  blocks: bigint;
}

export interface RestoreOptions {
  secondary: string;
  /** The LUN to write (the original source or another). */
  to: string;
  /** Block ranges of the image to restore (default: all of it). */
  ranges?: RestoreRange[];
  /** The copy manager (default: the one serving `to`). */
  bridge?: string;
  /** Required: the LUN written loses what it held there. */
  yes?: boolean;
  fallback?: boolean;
  /**
   * The management API of the target serving `to`: a whole restore is checked by hashing the LUN
   * there (lun_hash) instead of reading it back through iSCSI.
   */
  mgmt?: Pick<ManagementClient, 'call' | 'url'>;
  /** How long `to` is waited for while it is becoming ready (NOT READY 04h/01h), in ms (default: the initiator's, 60 s). */
  readyTimeoutMs?: number;
  /** Called with a line a person should read (a wait, a fallback). */
  onWarning?: (message: string) => void;
  session?: SessionOptions;
  signal?: AbortSignal;
  /** `path`: how a copy's data goes (the copy manager's EXTENDED COPY, or this host), when known. */
  onProgress?: (phase: 'copy' | 'log' | 'verify', done: bigint, total: bigint, blockSize: number, path?: 'xcopy' | 'host') => void;
  /**
   * Continue a restore of the copy `backupId` that an agent left unfinished: the pieces within
   * the first `copiedBlocks` blocks (in the restore's order) and the first `logRecords` records
   * are not written again (docs/restore.md, "Resume"). The check still covers everything.
   */
  resume?: RestoreUnits & { backupId: string };
  /** Called after each unit is written (and, for the image, made durable): what a resume may skip. */
  onUnit?: (u: RestoreUnits) => Promise<void> | void;
}

/** A restore's resume units, each a prefix: blocks of the image copied (in the restore's order), log records laid. */
export interface RestoreUnits {
  copiedBlocks: bigint;
  logRecords: number;
}

export interface RestoreResult {
  backup_id: string;
  label?: string;
  /** 750: the image as it is; 700: the image, then the appended log's records over it. */
  method: '700' | '750';
  to: string;
  ranges: Array<{ lba: bigint; blocks: bigint }>;
  restored_bytes: bigint;
  xcopy_bytes: bigint;
  host_bytes: bigint;
  log_records: number;
  verified: 'hashes' | 'bytes';
  /** Who read the restored LUN for the check: its target (lun_hash), or this host through iSCSI. */
  checked_by: 'target' | 'read-back';
  seconds: number;
  /** Where the time went: checks and reads before the copy, the copy, the log laid over (700), the check. */
  phase_seconds: { prepare: number; copy: number; log: number; check: number };
}

/** Parses "LBA+COUNT" (decimal, or 0x hex), as --range takes it. */
export function parseRange(text: string): RestoreRange {
  const m = /^(0x[0-9a-f]+|[0-9]+)\+(0x[0-9a-f]+|[0-9]+)$/i.exec(text.trim());
  if (!m) throw new ArgumentError(`--range ${JSON.stringify(text)}: give LBA+COUNT in blocks, e.g. 2048+4096`);
  const r = { lba: BigInt(m[1]), blocks: BigInt(m[2]) };
  if (r.blocks === 0n) throw new ArgumentError(`--range ${text}: COUNT must be at least 1`);
  return r;
}

/** Ranges sorted and merged, each checked against the image. */
function normalize(ranges: readonly RestoreRange[], imageBlocks: bigint): RestoreRange[] {
  for (const r of ranges) {
    if (r.lba < 0n || r.blocks < 1n || r.lba + r.blocks > imageBlocks) {
      throw new ArgumentError(`range ${r.lba}+${r.blocks} is not inside the image (${imageBlocks} blocks): give ranges within 0+${imageBlocks}`);
    }
  }
  return mergeRanges(ranges);
}

/** Ranges sorted, those that overlap or touch merged into one. */
export function mergeRanges(ranges: readonly RestoreRange[]): RestoreRange[] {
  const sorted = [...ranges].sort((a, b) => (a.lba < b.lba ? -1 : a.lba > b.lba ? 1 : 0));
  const out: RestoreRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.lba <= last.lba + last.blocks) {
      const end = r.lba + r.blocks > last.lba + last.blocks ? r.lba + r.blocks : last.lba + last.blocks;
      last.blocks = end - last.lba;
    } else out.push({ ...r });
  }
  return out;
}

/** The parts of `records` inside `ranges` (append mode: OBF blocks are the image's blocks). */
export function clipRecords(records: readonly DataRecordRef[], ranges: readonly RestoreRange[]): DataRecordRef[] {
  const out: DataRecordRef[] = [];
  for (const r of records) {
    const end = r.sourceLba + BigInt(r.sourceBlocks);
    for (const g of ranges) {
      const lo = r.sourceLba > g.lba ? r.sourceLba : g.lba;
      const hi = end < g.lba + g.blocks ? end : g.lba + g.blocks;
      if (hi <= lo) continue;
      const n = Number(hi - lo);
      out.push({ ...r, sourceLba: lo, sourceBlocks: n, dataLba: r.dataLba + (lo - r.sourceLba), dataBlocks: n });
    }
  }
  return out;
}

export async function restore(o: RestoreOptions): Promise<RestoreResult> {
  const t0 = process.hrtime.bigint();
  const sec = await IscsiSession.connect(o.secondary, o.session);
  let dst: IscsiSession | undefined;
  let bridge: IscsiSession | undefined;
  try {
    const name = redactUrl(sec.url);
    const capacity = (await sec.readCapacity16()).returnedLogicalBlockAddress + 1n;
    const r = await readSecondaryMetadata((lba, n) => sec.read16(lba, n), capacity, name);
    if (r.state !== 'integrated' && r.state !== 'log-appended') {
      throw new AgentError('ERR_SNAPSHOT_STATE', `${name} holds a copy in state ${r.state}${r.reason ? ` (${r.reason})` : ''}: only a complete copy (integrated, or log-appended) can be restored`);
    }
    if (o.resume && r.backupId !== o.resume.backupId) {
      throw new AgentError('ERR_NOT_RESUMABLE', `${name} now holds backup ${r.backupId}, not ${o.resume.backupId} whose restore was cut short: restore that copy from where it is now, or this one afresh (without --resume)`);
    }
    const L = r.layout;
    const ranges = normalize(o.ranges?.length ? o.ranges : [{ lba: 0n, blocks: L.imageBlocks }], L.imageBlocks);
    const whole = ranges.length === 1 && ranges[0].lba === 0n && ranges[0].blocks === L.imageBlocks;

    // The LUN's readiness is waited for below, with a warning: not silently by the login's probe.
    const retry = o.session?.retry ?? DEFAULT_RETRY;
    dst = await IscsiSession.connect(o.to, { ...o.session, retry: { ...retry, becomingReadyMs: 0 } });
    const to = redactUrl(dst.url);
    const [secInfo, dstInfo] = [await inquire(sec), await inquire(dst)];
    if (dstInfo.block_size !== L.blockSize) throw new ArgumentError(`${to} has ${dstInfo.block_size}-byte blocks, the copy ${L.blockSize}-byte ones: restore onto a LUN with ${L.blockSize}-byte blocks`);
    const last = ranges[ranges.length - 1];
    if (BigInt(dstInfo.capacity_blocks) < last.lba + last.blocks) {
      throw new ArgumentError(`${to} has ${dstInfo.capacity_blocks} blocks, fewer than the ${last.lba + last.blocks} the restore writes: restore onto a LUN of at least ${last.lba + last.blocks} blocks`);
    }
    // The LU's own designators (association 0), not its LOGICAL UNIT GROUP (type 6h, SPC-4 r37
    // 7.8.6.9), which LUs share by design: LIO gives all its LUNs group 0.
    const ids = (x: typeof secInfo) => x.designators.filter((d) => d.association === 0 && d.designator_type !== 6).map((d) => `${d.designator_type}:${d.hex.toLowerCase()}`);
    const secIds = new Set(ids(secInfo));
    if (ids(dstInfo).some((n) => secIds.has(n))) throw new ArgumentError(`${to} is the secondary itself: restore onto the original LUN or another`);
    // The LUN in the target's API: by its NAA designator, never by name (target-luns.ts).
    let naa: string | undefined;
    if (o.mgmt) {
      // Not there (XCOPY_AGENT_MGMT set for the backups' target, a restore onto another): read back.
      const lun = matchLun(await o.mgmt.call<LunEntry[]>('lun_list'), dstInfo);
      if (lun) naa = lun.naa;
      else o.onWarning?.(`${to} is not a LUN of the target at ${o.mgmt.url} (no LUN there has its NAA designator): checking it by reading it back (give the --mgmt of the target serving it to have it hashed there)`);
    }
    if (!o.yes) throw new ArgumentError(`a restore overwrites ${to} (${whole ? 'its first ' + String(L.imageBlocks) + ' blocks' : `${ranges.length} range(s)`}): give --yes to proceed`);

    // 700: the log read (and checked against its SEAL or MARKER) before anything is written.
    let log: ObfLog | undefined;
    if (r.state === 'log-appended') {
      log = await readAppendedLog(sec, r);
    }
    await waitReady(dst, to, o.readyTimeoutMs ?? retry.becomingReadyMs ?? 60_000, retry, o.onWarning);
    // The hash table the check compares with (all of it there, or verify says what is missing).
    const hashes = naa !== undefined && whole && r.progress.hashedExtents >= L.extents ? await readHashTable((lba, n) => sec.read16(lba, n), r) : undefined;
    const targetHashes = (extents: { first: number; count: number }) =>
      lunExtentHashes({ mgmt: o.mgmt!, naa: naa!, layout: L, extents, signal: o.signal, onProgress: onVerify }).catch((err: unknown) => {
        if (!noViewHashing(err)) throw err;
        if (extents.first === 0) o.onWarning?.(`the target at ${o.mgmt!.url} cannot hash a LUN (it has no lun_hash: an older target): checking ${to} by reading it back`);
        return undefined;
      });
    // Hashing beside the copy reports once the copy has ended: one phase at a time on the display.
    let copying = false;
    const onVerify = (d: bigint) => {
      if (!copying) o.onProgress?.('verify', d, L.imageBlocks, L.blockSize);
    };
    const interrupted = () => {
      if (o.signal?.aborted) throw new AgentError('ERR_INTERRUPTED', 'restore interrupted: the LUN holds part of the copy (restore again)');
    };

    const tCopy = process.hrtime.bigint();
    // The image (or its ranges) by EXTENDED COPY.
    const totalBlocks = ranges.reduce((n, g) => n + g.blocks, 0n);
    // Checked by the target and nothing laid over the image afterwards (750): each slice is hashed
    // there while the next one copies (docs/restore.md, "The check").
    const overlap = hashes !== undefined && naa !== undefined && o.mgmt !== undefined && (log === undefined || log.records.length === 0);
    const hashing: Array<Promise<Buffer[] | undefined>> = [];
    let lastHash: Promise<unknown> = Promise.resolve();
    copying = true;
    let doneBefore = 0n;
    let xcopyBytes = 0n;
    let hostBytes = 0n;
    /** Hashes a slice in the target after the previous one, while the next copies. */
    const hashSlice = (g: RestoreRange) => {
      const p = lastHash.then(() => targetHashes(extentsOf(L, g)));
      p.catch(() => undefined); // awaited at the check; a failure while the next slice copies is not unhandled
      hashing.push(p);
      lastHash = p;
    };
    // In pieces, each made durable and recorded before the next (a resume skips the ones done).
    const skip = o.resume?.copiedBlocks ?? 0n;
    for (const g of whole ? slices(L) : pieces(ranges, L.blockSize)) {
      interrupted();
      if (doneBefore + g.blocks <= skip) {
        doneBefore += g.blocks;
        if (overlap) hashSlice(g);
        continue;
      }
      const c = await xcopyCopy({
        from: o.secondary,
        to: o.to,
        bridge: o.bridge,
        skip: g.lba,
        seek: g.lba,
        count: g.blocks,
        fallback: o.fallback === true,
        fallbackHint: 'give --fallback',
        session: o.session,
        signal: o.signal,
        onProgress: (done, _total, path) => o.onProgress?.('copy', doneBefore + done, totalBlocks, L.blockSize, path),
      });
      xcopyBytes += c.xcopy_bytes;
      hostBytes += c.host_bytes;
      doneBefore += g.blocks;
      await dst.synchronizeCache16();
      await o.onUnit?.({ copiedBlocks: doneBefore, logRecords: 0 });
      if (overlap) hashSlice(g);
    }
    copying = false;
    const tLog = process.hrtime.bigint();
    // 700: the appended log's records over the image, on the restored LUN.
    let logRecords = 0;
    if (log) {
      interrupted();
      const records = whole ? log.records : clipRecords(log.records, ranges);
      logRecords = records.length;
      if (records.length > 0) {
        bridge = o.bridge ? await IscsiSession.connect(o.bridge, o.session) : dst;
        let saved = Date.now();
        await applyObf(sec, dst, {
          bridge,
          log: { ...log, records },
          obfOffset: L.logLba,
          fallback: o.fallback === true,
          fallbackHint: 'give --fallback',
          // Resumed: the records laid before (a completed prefix) are not laid again.
          from: Math.min(o.resume?.logRecords ?? 0, records.length),
          signal: o.signal,
          onProgress: async (done, total) => {
            o.onProgress?.('log', BigInt(done), BigInt(total), 1);
            if (Date.now() - saved < UNIT_SAVE_MS) return;
            saved = Date.now();
            await o.onUnit?.({ copiedBlocks: totalBlocks, logRecords: done });
          },
        });
        await o.onUnit?.({ copiedBlocks: totalBlocks, logRecords: records.length });
      }
    }
    await dst.synchronizeCache16();
    const tCheck = process.hrtime.bigint();

    // Checked: a whole restore against the hash table (hashed by its target, or read back), ranges byte for byte.
    interrupted();
    let verified: RestoreResult['verified'];
    let checkedBy: RestoreResult['checked_by'] = 'read-back';
    if (whole) {
      let got: Buffer[] | undefined;
      if (overlap) {
        const parts = await Promise.all(hashing);
        got = parts.every((x) => x !== undefined) ? parts.flat() : undefined;
      } else if (hashes) got = await targetHashes({ first: 0, count: L.extents });
      if (got && hashes) {
        checkedBy = 'target';
        try {
          checkExtentHashes(to, r.backupId, L, got, hashes);
        } catch (err) {
          throw new AgentError('ERR_VERIFY_MISMATCH', `the restore, hashed by its target, does not match the copy: ${(err as Error).message}`, { cause: err });
        }
      } else {
        await verify({ secondary: o.secondary, against: o.to, session: o.session, signal: o.signal, onProgress: (d) => onVerify(d) }).catch((err: unknown) => {
          if ((err as { code?: string }).code === 'ERR_VERIFY_MISMATCH') throw new AgentError('ERR_VERIFY_MISMATCH', `the restore did not read back as the copy: ${(err as Error).message}`, { cause: err });
          throw err;
        });
      }
      verified = 'hashes';
    } else {
      await compareRanges(sec, dst, ranges, log ? clipRecords(log.records, ranges) : [], L, to);
      verified = 'bytes';
    }
    const tEnd = process.hrtime.bigint();
    return {
      backup_id: r.backupId,
      ...(r.label !== undefined ? { label: r.label } : {}),
      method: log ? '700' : '750',
      to,
      ranges,
      restored_bytes: totalBlocks * BigInt(L.blockSize),
      xcopy_bytes: xcopyBytes,
      host_bytes: hostBytes,
      log_records: logRecords,
      verified,
      checked_by: checkedBy,
      seconds: secs(t0, tEnd),
      phase_seconds: { prepare: secs(t0, tCopy), copy: secs(tCopy, tLog), log: secs(tLog, tCheck), check: secs(tCheck, tEnd) },
    };
  } finally {
    if (bridge && bridge !== dst) await bridge.close().catch(() => undefined);
    await dst?.close().catch(() => undefined);
    await sec.close().catch(() => undefined);
  }
}

const secs = (from: bigint, to: bigint) => Number(to - from) / 1e9;

/**
 * Image bytes per slice when the copy and the target's hashing overlap: the last slice's hashing
 * is what the check adds to the copy, the first's copy what it adds to the hashing; each slice
 * costs a copy (EXTENDED COPY, its sessions) and a call.
 */
const SLICE_BYTES = 128 * 1024 * 1024;

/** Log records laid are recorded for a resume at most once per this many milliseconds. */
const UNIT_SAVE_MS = 2000;

/** Ranges cut into pieces of at most SLICE_BYTES (512-byte blocks or larger), in order. */
function pieces(ranges: readonly RestoreRange[], blockSize = 512): RestoreRange[] {
  const most = BigInt(Math.max(1, Math.floor(SLICE_BYTES / blockSize)));
  const out: RestoreRange[] = [];
  for (const g of ranges) for (let at = 0n; at < g.blocks; at += most) out.push({ lba: g.lba + at, blocks: g.blocks - at < most ? g.blocks - at : most });
  return out;
}

/** The whole image in slices of whole extents, SLICE_BYTES or so each. */
function slices(L: secondary.SecondaryLayout): RestoreRange[] {
  const per = Math.max(1, Math.floor(SLICE_BYTES / L.extentBytes));
  const out: RestoreRange[] = [];
  for (let i = 0; i < L.extents; i += per) {
    const first = secondary.extentRange(L, i);
    const last = secondary.extentRange(L, Math.min(L.extents, i + per) - 1);
    const B = BigInt(L.blockSize);
    out.push({ lba: first.offset / B, blocks: (last.offset + BigInt(last.bytes)) / B - first.offset / B });
  }
  return out;
}

/** The extents a slice of whole extents covers. */
function extentsOf(L: secondary.SecondaryLayout, g: RestoreRange): { first: number; count: number } {
  const E = BigInt(L.extentBytes / L.blockSize);
  return { first: Number(g.lba / E), count: Number((g.blocks + E - 1n) / E) };
}

/** NOT READY, LOGICAL UNIT IS IN PROCESS OF BECOMING READY (SPC-4 r37 Annex D: 04h/01h). */
function becomingReady(r: ScsiResult): boolean {
  return r.status === ScsiStatus.CHECK_CONDITION && senseIs(r.sense, Sense.LOGICAL_UNIT_IS_IN_PROCESS_OF_BECOMING_READY);
}

/**
 * TEST UNIT READY on the LUN to restore onto; while it answers becoming ready (its target
 * resuming a snapshot after a restart, docs/cow.md), one warning and the initiator's retry
 * policy waits it out for `boundMs` at most (src/initiator/retry.ts). Still not ready then, or
 * not ready for another reason: the LUN's NOT READY (exit status 2), nothing written.
 */
async function waitReady(dst: IscsiSession, to: string, boundMs: number, retry: NonNullable<SessionOptions['retry']>, warn?: (message: string) => void): Promise<void> {
  const tur = encodeTestUnitReadyCdb();
  let r = await dst.execute(tur);
  if (becomingReady(r)) {
    const secs = `${(boundMs / 1000).toFixed(boundMs % 1000 === 0 ? 0 : 1)} s`;
    warn?.(`${to} is becoming ready (NOT READY 04h/01h: its target resumes a snapshot after a restart): waiting for it, at most ${secs}`);
    r = await dst.execute(tur, { retry: { ...retry, becomingReadyMs: boundMs } });
    if (becomingReady(r)) {
      throw new IscsiError('ERR_SCSI_CHECK_CONDITION', `${to} did not become ready within ${secs} (NOT READY, LOGICAL UNIT IS IN PROCESS OF BECOMING READY): nothing was written; restore again once its target has resumed its snapshot, or give a longer --ready-timeout`, {
        scsiStatus: r.status,
        senseKey: r.sense?.senseKey,
        asc: r.sense?.asc,
        ascq: r.sense?.ascq,
        sense: r.senseBytes,
      });
    }
  }
  dst.check(r, 'TEST UNIT READY');
}

/** Reads at most this many blocks' bytes at a time when comparing ranges. */
const COMPARE_BYTES = 1024 * 1024;

/** Each range of `dst` against the image the copy stands for (the secondary's, with `records` laid over it). */
async function compareRanges(sec: IscsiSession, dst: IscsiSession, ranges: readonly RestoreRange[], records: readonly DataRecordRef[], L: secondary.SecondaryLayout, to: string): Promise<void> {
  const step = BigInt(Math.max(1, Math.floor(COMPARE_BYTES / L.blockSize)));
  const B = L.blockSize;
  const sorted = [...records].sort((a, b) => (a.sourceLba < b.sourceLba ? -1 : a.sourceLba > b.sourceLba ? 1 : 0));
  const readLog = (lba: bigint, n: number) => sec.read16(L.logLba + lba, n);
  let k = 0;
  for (const g of ranges) {
    for (let at = g.lba; at < g.lba + g.blocks; at += step) {
      const end = g.lba + g.blocks - at < step ? g.lba + g.blocks : at + step;
      const want = await sec.read16(at, Number(end - at));
      while (k < sorted.length && sorted[k].sourceLba + BigInt(sorted[k].sourceBlocks) <= at) k++;
      for (let j = k; j < sorted.length && sorted[j].sourceLba < end; j++) await layOver(readLog, sorted[j], want, at, end, B);
      const got = await dst.read16(at, Number(end - at));
      if (!got.equals(want)) {
        let i = 0;
        while (got[i] === want[i]) i++;
        const lba = at + BigInt(Math.floor(i / B));
        throw new AgentError('ERR_VERIFY_MISMATCH', `the restore did not read back as the copy: ${to} differs from it at block ${lba} (byte ${i % B} of that block)`);
      }
    }
  }
}

/**
 * `restore` (docs/method.md 700 / 750): a copy back onto a LUN — the original or another — from
 * the secondary alone, by EXTENDED COPY through a copy manager that reaches both.
 *  750  an overwrite-mode or integrated copy: the image, as it is on the secondary;
 *  700  an append-mode copy not integrated: the image as copied, then the records of its
 *       appended log laid over it on the restored LUN (the secondary is not changed);
 * the whole image, or block ranges of it (`ranges`, records clipped to them). Then checked:
 * a whole restore against the hash table (verify --against), ranges byte for byte against the
 * image read from the secondary with the log laid over it.
 *
 * A restore overwrites the LUN it writes: it needs `yes`, and refuses a LUN too small for what it
 * writes, with another block size, or that is the secondary itself, before anything is written.
 */
import { AgentError, ArgumentError } from '../errors';
import { IscsiSession, type SessionOptions } from '../initiator/session';
import { redactUrl } from '../initiator/url';
import type { DataRecordRef } from '../obf/log';
import * as secondary from '../secondary';
import { applyObf, readAppendedLog, type ObfLog } from './apply-obf';
import { layOver } from './image-hashes';
import { inquire } from './inquire';
import { readSecondaryMetadata } from './secondary-lun';
import { verify } from './verify';
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
  session?: SessionOptions;
  signal?: AbortSignal;
  onProgress?: (phase: 'copy' | 'log' | 'verify', done: bigint, total: bigint, blockSize: number) => void;
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
  seconds: number;
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
    const L = r.layout;
    const ranges = normalize(o.ranges?.length ? o.ranges : [{ lba: 0n, blocks: L.imageBlocks }], L.imageBlocks);
    const whole = ranges.length === 1 && ranges[0].lba === 0n && ranges[0].blocks === L.imageBlocks;

    dst = await IscsiSession.connect(o.to, o.session);
    const to = redactUrl(dst.url);
    const [secInfo, dstInfo] = [await inquire(sec), await inquire(dst)];
    if (dstInfo.block_size !== L.blockSize) throw new ArgumentError(`${to} has ${dstInfo.block_size}-byte blocks, the copy ${L.blockSize}-byte ones: restore onto a LUN with ${L.blockSize}-byte blocks`);
    const last = ranges[ranges.length - 1];
    if (BigInt(dstInfo.capacity_blocks) < last.lba + last.blocks) {
      throw new ArgumentError(`${to} has ${dstInfo.capacity_blocks} blocks, fewer than the ${last.lba + last.blocks} the restore writes: restore onto a LUN of at least ${last.lba + last.blocks} blocks`);
    }
    const naas = (x: typeof secInfo) => new Set(x.designators.filter((d) => d.association === 0).map((d) => d.hex.toLowerCase()));
    const secNaas = naas(secInfo);
    if ([...naas(dstInfo)].some((n) => secNaas.has(n))) throw new ArgumentError(`${to} is the secondary itself: restore onto the original LUN or another`);
    if (!o.yes) throw new ArgumentError(`a restore overwrites ${to} (${whole ? 'its first ' + String(L.imageBlocks) + ' blocks' : `${ranges.length} range(s)`}): give --yes to proceed`);

    // 700: the log read (and checked against its SEAL or MARKER) before anything is written.
    let log: ObfLog | undefined;
    if (r.state === 'log-appended') {
      log = await readAppendedLog(sec, r);
    }
    const interrupted = () => {
      if (o.signal?.aborted) throw new AgentError('ERR_INTERRUPTED', 'restore interrupted: the LUN holds part of the copy (restore again)');
    };

    // The image (or its ranges) by EXTENDED COPY.
    const totalBlocks = ranges.reduce((n, g) => n + g.blocks, 0n);
    let doneBefore = 0n;
    let xcopyBytes = 0n;
    let hostBytes = 0n;
    for (const g of ranges) {
      interrupted();
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
        onProgress: (done) => o.onProgress?.('copy', doneBefore + done, totalBlocks, L.blockSize),
      });
      xcopyBytes += c.xcopy_bytes;
      hostBytes += c.host_bytes;
      doneBefore += g.blocks;
    }
    // 700: the appended log's records over the image, on the restored LUN.
    let logRecords = 0;
    if (log) {
      interrupted();
      const records = whole ? log.records : clipRecords(log.records, ranges);
      logRecords = records.length;
      if (records.length > 0) {
        bridge = o.bridge ? await IscsiSession.connect(o.bridge, o.session) : dst;
        await applyObf(sec, dst, {
          bridge,
          log: { ...log, records },
          obfOffset: L.logLba,
          signal: o.signal,
          onProgress: (done, total) => o.onProgress?.('log', BigInt(done), BigInt(total), 1),
        });
      }
    }
    await dst.synchronizeCache16();

    // Checked: a whole restore against the hash table, ranges byte for byte.
    interrupted();
    let verified: RestoreResult['verified'];
    if (whole) {
      await verify({ secondary: o.secondary, against: o.to, session: o.session, signal: o.signal, onProgress: (d, t, b) => o.onProgress?.('verify', d, t, b) }).catch((err: unknown) => {
        if ((err as { code?: string }).code === 'ERR_VERIFY_MISMATCH') throw new AgentError('ERR_VERIFY_MISMATCH', `the restore did not read back as the copy: ${(err as Error).message}`, { cause: err });
        throw err;
      });
      verified = 'hashes';
    } else {
      await compareRanges(sec, dst, ranges, log ? clipRecords(log.records, ranges) : [], L, to);
      verified = 'bytes';
    }
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
      seconds: Number(process.hrtime.bigint() - t0) / 1e9,
    };
  } finally {
    if (bridge && bridge !== dst) await bridge.close().catch(() => undefined);
    await dst?.close().catch(() => undefined);
    await sec.close().catch(() => undefined);
  }
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

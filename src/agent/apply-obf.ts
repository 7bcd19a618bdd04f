/**
 * Step 608 (docs/method.md 608), overwrite mode: lay the records of an OBF over their source
 * addresses on the secondary with EXTENDED COPY, one block→block (02h) segment per record, sent to
 * a copy manager that reaches both (by default the one serving the secondary). The OBF is read
 * through the initiator (it is self-describing: docs/obf-format.md); its log must match its SEAL,
 * or, when only the records before the MARKER are wanted (the marker embodiment), its MARKER.
 *
 * A record's data is contiguous in the OBF, but two records never are (a header block lies
 * between them) and no two records share a chunk (first capture wins), so there is nothing to
 * merge into longer segments: "coalescing" here is packing as many segments into each command as
 * the copy manager's OPERATING PARAMETERS allow, with several commands in flight.
 */
import { AgentError } from '../errors';
import type { IscsiSession } from '../initiator/session';
import { decodeSuperblock, type ObfSuperblock } from '../obf/format';
import { checkMarker, checkSeal, LogTail, type DataRecordRef, type ObfScan } from '../obf/log';
import { pickCscdDesignator } from '../scsi/vpd';
import type * as secondary from '../secondary';
import { cscdFromDesignator, encodeExtendedCopyLid1, type CscdDescriptor, type SegmentDescriptor } from '../scsi/xcopy';
import { copyLimits, isFallbackCondition, operatingParametersOf, type CopyLimits } from './xcopy-copy';

/** The E4h CSCD descriptor naming a LUN (from its VPD 83h), or undefined when it has none usable. */
export async function cscdOfLun(s: IscsiSession, blockSize: number): Promise<CscdDescriptor | undefined> {
  const d = pickCscdDesignator((await s.deviceIdentification().catch(() => ({ designators: [] }))).designators);
  return d ? cscdFromDesignator(d, blockSize) : undefined;
}

/** A sealed (or marked) OBF read back: its superblock, its log, and the records to apply. */
export interface ObfLog {
  superblock: ObfSuperblock;
  scan: ObfScan;
  /** The records to lay over the secondary (all, or those before the MARKER). */
  records: DataRecordRef[];
  /** Records in the log after the MARKER (not needed for the image; 0 without `upToMarker`). */
  afterMarker: number;
}

/**
 * An OBF's log read while its snapshot still captures (LogTail, docs/obf-format.md "Reading a
 * live log") and checked once the snapshot is sealed or marked: a backup polls it during the
 * outboard copy, so that 606 reads only the records added since (the log of a large copy is
 * not read back all at once after it).
 */
export class ObfLogReader {
  private constructor(
    private readonly obf: Pick<IscsiSession, 'read16'>,
    private readonly at: bigint,
    private readonly tail: LogTail,
  ) {}

  /** Reads the OBF's superblock at `obfOffset` (a log appended to a secondary starts after its image). */
  static async open(obf: Pick<IscsiSession, 'read16'>, opts: { obfOffset?: bigint; capacityBlocks?: bigint } = {}): Promise<ObfLogReader> {
    const at = opts.obfOffset ?? 0n;
    const superblock = decodeSuperblock(await obf.read16(at, 1));
    // A log copied elsewhere (appended to a secondary) ends where the copy ends.
    const tail = new LogTail((lba, n) => obf.read16(at + lba, n), superblock, opts.capacityBlocks !== undefined ? { capacityBlocks: opts.capacityBlocks } : {});
    return new ObfLogReader(obf, at, tail);
  }

  /** The polls, one after the other (a LogTail takes one walk at a time). */
  private queue: Promise<unknown> = Promise.resolve();

  /** Takes the valid prefix on over what was written since; the records valid so far. */
  poll(): Promise<number> {
    const next = this.queue.then(async () => (await this.tail.poll()).records.length);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * The log as it ends now — sealed, or with `upToMarker` marked — checked against its SEAL
   * (or its MARKER); the records to apply are all of them, or those before the MARKER.
   */
  async finish(opts: { upToMarker?: boolean } = {}): Promise<ObfLog> {
    const superblock = this.tail.superblock;
    await this.queue;
    const scan = await this.tail.poll();
    const now = decodeSuperblock(await this.obf.read16(this.at, 1));
    if (now.snapshotId !== superblock.snapshotId) {
      throw new AgentError('ERR_OBF_IO', `the OBF now belongs to snapshot ${now.snapshotId}, not ${superblock.snapshotId} whose log was being read: it was taken meanwhile`);
    }
    if (opts.upToMarker) {
      const check = checkMarker(scan, superblock.blockSize);
      if (!check.ok) throw new AgentError('ERR_OBF_IO', `the OBF's log does not match its MARKER: ${check.mismatches.join('; ')}`);
      const before = scan.records.filter((r) => r.sequence < scan.marker!.sequence);
      return { superblock, scan, records: before, afterMarker: scan.records.length - before.length };
    }
    const seal = checkSeal(scan);
    if (!seal.ok) throw new AgentError('ERR_OBF_IO', `the OBF's log does not match its SEAL: ${seal.mismatches.join('; ')}`);
    return { superblock, scan, records: [...scan.records], afterMarker: 0 };
  }
}

/**
 * Reads the OBF's log and checks it against its SEAL (or, with `upToMarker`, its MARKER); the
 * records to apply are all of them, or those before the MARKER.
 */
export async function readObfLog(obf: Pick<IscsiSession, 'read16'>, opts: { upToMarker?: boolean; obfOffset?: bigint; capacityBlocks?: bigint } = {}): Promise<ObfLog> {
  return (await ObfLogReader.open(obf, opts)).finish(opts);
}

/**
 * The OBF log an append-mode backup copied after the image (docs/secondary-format.md, "Layout"):
 * read from `logLba` up to the blocks the copy used, and checked against its SEAL, or its MARKER
 * for a copy made with --mark (the records to lay over the image are then those before it).
 */
export function readAppendedLog(s: Pick<IscsiSession, 'read16'>, r: Pick<secondary.SecondaryRecord, 'layout' | 'snapshot' | 'log'>): Promise<ObfLog> {
  return readObfLog(s, { obfOffset: r.layout.logLba, upToMarker: r.snapshot.marked === true, capacityBlocks: r.log?.usedBlocks });
}

export interface ApplyObfOptions {
  /** The copy manager to send the EXTENDED COPY commands to (default: the secondary). */
  bridge?: IscsiSession;
  /** Apply only the records before the MARKER (the marker embodiment), the log need not be sealed. */
  upToMarker?: boolean;
  /** The log, when the caller has read it already. */
  log?: ObfLog;
  /** Where the OBF's block 0 is on `obf` (a log appended to a secondary starts after its image). */
  obfOffset?: bigint;
  /** Records already applied (a resumed pass): the first `from` are skipped. */
  from?: number;
  /**
   * When no copy manager can lay the records (no designators, no OPERATING PARAMETERS, or a
   * refusal such as LIO's COPY ABORTED 0Dh/02h for a LUN of another target), lay the rest through
   * this host (READ from the OBF, WRITE to the secondary). Without it, that refusal fails with
   * ERR_XCOPY_UNAVAILABLE, saying `fallbackHint` (default "give --fallback").
   */
  fallback?: boolean;
  fallbackHint?: string;
  /** Stops sending commands (those in flight finish); the apply then rejects with ERR_INTERRUPTED. */
  signal?: AbortSignal;
  /** Called after each command with the records applied so far (counting `from`); awaited. */
  onProgress?: (appliedRecords: number, totalRecords: number) => void | Promise<void>;
}

export interface ApplyObfResult {
  records: number;
  dataBytes: bigint;
  afterMarker: number;
  extendedCopyCommands: number;
  /** Bytes laid through this host (with `fallback`, after the copy manager could not). */
  hostBytes: bigint;
  /** Why records went through this host, when they did. */
  fallbackReason?: string;
}

/**
 * Lays the log's records (from `from` on) over the secondary: by EXTENDED COPY through the bridge,
 * split by its OPERATING PARAMETERS (for LIO: one 02h segment per command, one command at a time);
 * what the copy manager cannot do goes through this host when `fallback` allows it.
 */
export async function applyObf(obf: IscsiSession, secondary: IscsiSession, opts: ApplyObfOptions = {}): Promise<ApplyObfResult> {
  const log = opts.log ?? (await readObfLog(obf, { upToMarker: opts.upToMarker, obfOffset: opts.obfOffset }));
  const { superblock: sb } = log;
  const from = opts.from ?? 0;
  const records = log.records.slice(from);
  const at = opts.obfOffset ?? 0n;
  const bridge = opts.bridge ?? secondary;
  const plan = await planApply(obf, secondary, bridge, sb);
  let sent: SentLists = { applied: 0, commands: 0 };
  let why = 'fallback' in plan ? plan.fallback : undefined;
  if (!('fallback' in plan)) {
    const lists = segmentLists(records, { at, obfBlockSize: sb.blockSize, sourceBlockSize: sb.sourceBlockSize, blocksPerSegment: Number(plan.limits.blocksPerSegment), segmentsPerCommand: plan.limits.segmentsPerCommand });
    sent = await sendLists(bridge, plan, lists, { ...opts, from, total: log.records.length });
    if (sent.failure !== undefined) {
      if (!isFallbackCondition(sent.failure)) throw sent.failure;
      why = `${bridge.url}: ${(sent.failure as Error).message}`;
    }
  }
  let hostBytes = 0n;
  if (why !== undefined) {
    if (!opts.fallback) {
      throw new AgentError('ERR_XCOPY_UNAVAILABLE', `EXTENDED COPY not possible: ${why} (${opts.fallbackHint ?? 'give --fallback'} to lay the OBF's records through this host)`);
    }
    hostBytes = await layThroughHost(obf, secondary, records.slice(sent.applied), { at, sb, signal: opts.signal, onRecord: (n) => opts.onProgress?.(from + sent.applied + n, log.records.length) });
  }
  await secondary.synchronizeCache16();
  const dataBytes = log.records.reduce((sum, r) => sum + BigInt(r.dataBlocks) * BigInt(sb.blockSize), 0n);
  return { records: log.records.length, dataBytes, afterMarker: log.afterMarker, extendedCopyCommands: sent.commands, hostBytes, ...(why !== undefined ? { fallbackReason: why } : {}) };
}

/**
 * The CSCD descriptors and limits to lay records with through `bridge`, or why a copy manager
 * cannot (a LUN without a designator a CSCD can name, a bridge without OPERATING PARAMETERS).
 */
async function planApply(obf: IscsiSession, secondary: IscsiSession, bridge: IscsiSession, sb: ObfSuperblock): Promise<{ cscds: CscdDescriptor[]; limits: CopyLimits } | { fallback: string }> {
  const o = await cscdOfLun(obf, sb.blockSize);
  const d = await cscdOfLun(secondary, sb.sourceBlockSize);
  if (!o || !d) return { fallback: 'the OBF or the secondary reports no designator a copy manager can resolve (VPD 83h: NAA, EUI-64 or T10)' };
  const op = await operatingParametersOf(bridge);
  if (!op) return { fallback: `${bridge.url} has no copy manager that answers OPERATING PARAMETERS` };
  return { cscds: [o, d], limits: copyLimits(op, sb.sourceBlockSize) };
}

/** How the EXTENDED COPY commands went: records applied (a prefix), commands that succeeded, the first failure. */
interface SentLists {
  applied: number;
  commands: number;
  failure?: unknown;
}

/**
 * Sends the lists, `limits.commandsInFlight` commands at a time, each with its own LIST
 * IDENTIFIER (never one still in flight); the first failure, or the signal, stops the others from
 * sending more (the ones in flight finish). Progress is the records whose every segment is in
 * the prefix of lists all done (commands finish out of order): what a resumed pass may skip.
 */
async function sendLists(
  bridge: IscsiSession,
  plan: { cscds: CscdDescriptor[]; limits: CopyLimits },
  lists: ReturnType<typeof segmentLists>,
  opts: Pick<ApplyObfOptions, 'signal' | 'onProgress'> & { from: number; total: number },
): Promise<SentLists> {
  let next = 0;
  let listId = 1;
  const busy = new Set<number>();
  const finished: boolean[] = [];
  let prefix = 0;
  const out: SentLists = { applied: 0, commands: 0 };
  const worker = async () => {
    while (next < lists.length && out.failure === undefined) {
      if (opts.signal?.aborted) {
        out.failure ??= new AgentError('ERR_INTERRUPTED', `applying the OBF interrupted after ${opts.from + out.applied} of ${opts.total} records`);
        return;
      }
      const index = next++;
      while (busy.has(listId)) listId = listId >= 255 ? 1 : listId + 1;
      const id = listId;
      listId = listId >= 255 ? 1 : listId + 1;
      busy.add(id);
      try {
        await bridge.extendedCopy(encodeExtendedCopyLid1({ listIdentifier: id, listIdUsage: 2, cscdDescriptors: plan.cscds, segmentDescriptors: lists[index].segments }));
        out.commands++;
        finished[index] = true;
        while (prefix < lists.length && finished[prefix]) out.applied += lists[prefix++].recordsEnding;
        await opts.onProgress?.(opts.from + out.applied, opts.total);
      } catch (err) {
        out.failure ??= err;
        return;
      } finally {
        busy.delete(id);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(plan.limits.commandsInFlight, Math.max(1, lists.length)) }, worker));
  return out;
}

/** Bytes per READ/WRITE when records go through this host (a multiple of every block length). */
const HOST_PIECE_BYTES = 1024 * 1024;

/**
 * The records laid through this host, in log order: each record's data read from the OBF and
 * written at its source address on the secondary, in pieces of HOST_PIECE_BYTES; `onRecord` after
 * each with the records laid so far. The bytes laid.
 */
async function layThroughHost(
  obf: IscsiSession,
  secondary: IscsiSession,
  records: readonly DataRecordRef[],
  p: { at: bigint; sb: ObfSuperblock; signal?: AbortSignal; onRecord: (laid: number) => void | Promise<void> },
): Promise<bigint> {
  const { blockSize: obfBs, sourceBlockSize: srcBs } = p.sb;
  let bytes = 0n;
  for (const [i, r] of records.entries()) {
    if (p.signal?.aborted) throw new AgentError('ERR_INTERRUPTED', `laying the OBF's records through this host interrupted after ${i} of ${records.length}`);
    const length = r.dataBlocks * obfBs; // = r.sourceBlocks * srcBs
    for (let off = 0; off < length; off += HOST_PIECE_BYTES) {
      const n = Math.min(HOST_PIECE_BYTES, length - off);
      const data = await obf.read16(p.at + r.dataLba + BigInt(off / obfBs), n / obfBs);
      await secondary.write16(r.sourceLba + BigInt(off / srcBs), data);
    }
    bytes += BigInt(length);
    await p.onRecord(i + 1);
  }
  return bytes;
}

/**
 * The EXTENDED COPY parameter lists for `records`: one 02h segment per record, or several where a
 * record is longer than the copy manager's MAXIMUM SEGMENT LENGTH allows (cut at a multiple of
 * the OBF's block so each piece starts on an OBF block), packed `segmentsPerCommand` to a list.
 * `recordsEnding` counts the records whose last segment is in the list.
 */
export function segmentLists(
  records: readonly DataRecordRef[],
  p: { at: bigint; obfBlockSize: number; sourceBlockSize: number; blocksPerSegment: number; segmentsPerCommand: number },
): Array<{ segments: SegmentDescriptor[]; recordsEnding: number }> {
  // Source blocks per OBF block (≥ 1 when the OBF's blocks are larger), to cut on OBF blocks.
  const perObf = Math.max(1, p.obfBlockSize / p.sourceBlockSize);
  const piece = Math.max(perObf, Math.floor(p.blocksPerSegment / perObf) * perObf);
  const lists: Array<{ segments: SegmentDescriptor[]; recordsEnding: number }> = [];
  let current: { segments: SegmentDescriptor[]; recordsEnding: number } = { segments: [], recordsEnding: 0 };
  for (const r of records) {
    for (let off = 0; off < r.sourceBlocks; off += piece) {
      if (current.segments.length === p.segmentsPerCommand) {
        lists.push(current);
        current = { segments: [], recordsEnding: 0 };
      }
      const n = Math.min(piece, r.sourceBlocks - off);
      current.segments.push({
        kind: 'blockToBlock',
        dc: true, // NUMBER OF BLOCKS counts destination (source LUN) blocks
        cat: false,
        sourceCscdDescriptorId: 0,
        destinationCscdDescriptorId: 1,
        blockDeviceNumberOfBlocks: n,
        sourceBlockDeviceLba: p.at + r.dataLba + BigInt((off * p.sourceBlockSize) / p.obfBlockSize),
        destinationBlockDeviceLba: r.sourceLba + BigInt(off),
      });
    }
    current.recordsEnding++;
  }
  if (current.segments.length > 0) lists.push(current);
  return lists;
}

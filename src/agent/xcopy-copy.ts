/**
 * A ddpt-style LUN-to-LUN copy through a copy manager: EXTENDED COPY (LID1) lists sent to the
 * bridge (by default the copy manager serving the destination), split by the bridge's OPERATING
 * PARAMETERS (segment length, descriptor counts, the 16-bit block count of a 02h segment), several
 * commands in flight where it allows. Falls back to host READ/WRITE (hostCopy) when the bridge
 * has no copy manager or cannot reach a LUN (COPY ABORTED 0Dh/02h), unless told not to.
 *
 * The steps, in order: connect the ends (CopyEnds), read and check the range (probeRange), find
 * whether and through which bridge EXTENDED COPY can do it (planExtendedCopy, with the bridge's
 * limits from copyLimits), run the commands (ExtendedCopyRun: segments from commandSegments,
 * progress from COPY STATUS, COPY OPERATION ABORT on abort), then finish: done, interrupted, or
 * the rest through the host (copyThroughHost). Standards: SPC-4 r37 (T10/1731-D) 6.5 EXTENDED
 * COPY(LID1) (descriptors in 6.4.5 and 6.4.6), 6.22 RECEIVE COPY OPERATING PARAMETERS, 6.25
 * RECEIVE COPY STATUS(LID1), 6.3 COPY OPERATION ABORT.
 */
import { AgentError, IscsiError } from '../errors';
import { SenseKey } from '../scsi/constants';
import { transferCountToBytes, type OperatingParameters } from '../scsi/copy-results';
import { Sense, senseIs } from '../scsi/sense-reasons';
import { IscsiSession, type SessionOptions } from '../initiator/session';
import { every } from '../util/every';
import { encodeExtendedCopyLid1, ListIdUsage, type CscdDescriptor, type SegmentDescriptor } from '../scsi/xcopy';
import { cscdOfLun } from './apply-obf';
import { hostCopy } from './host-copy';

export interface XcopyCopyOptions {
  from: string;
  to: string;
  /** The copy manager to send EXTENDED COPY to (default: the destination LUN). */
  bridge?: string;
  skip?: bigint;
  seek?: bigint;
  /** Blocks to copy (default: the rest of the source from skip). */
  count?: bigint;
  /** First LIST IDENTIFIER (default 1); each command in flight uses the next one. */
  listId?: number;
  fallback?: boolean;
  /** How the refusal when fallback is off says to allow the host path (default: "drop --no-fallback"). */
  fallbackHint?: string;
  session?: SessionOptions;
  /** Blocks copied of the range so far, the path they took, and the source's block length. */
  onProgress?: (copiedBlocks: bigint, totalBlocks: bigint, path: 'xcopy' | 'host', blockSize: number) => void;
  /** How often COPY STATUS is asked for progress while commands run (default 500 ms). */
  progressIntervalMs?: number;
  /**
   * Stops the copy: no new command is sent, the ones in flight are stopped with COPY OPERATION
   * ABORT (where the bridge knows it), and xcopyCopy rejects with ERR_INTERRUPTED.
   */
  signal?: AbortSignal;
}

export interface XcopyCopyResult {
  blocks: bigint;
  block_size: number;
  xcopy_bytes: bigint;
  host_bytes: bigint;
  extended_copy_commands: number;
  seconds: number;
  path: 'xcopy' | 'host' | 'mixed';
  /** Why the host path was used, when it was. */
  fallback_reason?: string;
}

/**
 * An answer that means "this copy manager cannot do it" (SPC-4 r37 6.4.3.1: COPY ABORTED, COPY
 * TARGET DEVICE NOT REACHABLE or UNREACHABLE COPY TARGET; or no EXTENDED COPY at all): fall back
 * to host I/O where allowed.
 */
export function isFallbackCondition(err: unknown): boolean {
  if (!(err instanceof IscsiError) || err.code !== 'ERR_SCSI_CHECK_CONDITION') return false;
  if (senseIs(err, Sense.COPY_TARGET_DEVICE_NOT_REACHABLE) || senseIs(err, Sense.UNREACHABLE_COPY_TARGET)) return true;
  return senseIs(err, Sense.INVALID_COMMAND_OPERATION_CODE); // no EXTENDED COPY at all
}

/**
 * Copies `count` blocks from `from` (at `skip`) to `to` (at `seek`): by EXTENDED COPY through the
 * bridge where it can, else (or for what a failed command left) through this host.
 */
export async function xcopyCopy(opts: XcopyCopyOptions): Promise<XcopyCopyResult> {
  const t0 = process.hrtime.bigint();
  const ends = await CopyEnds.connect(opts);
  try {
    const range = await probeRange(ends, opts);
    const job: CopyJob = { opts, ends, range, t0, result: emptyResult(range) };
    const plan = await planExtendedCopy(ends, range, opts);
    if ('fallback' in plan) return await copyThroughHost(job, plan.fallback, 0n);
    const outcome = await new ExtendedCopyRun(plan, range, opts).run();
    return await finishExtendedCopy(job, plan, outcome);
  } finally {
    await ends.close();
  }
}

/** The sessions of one copy: source, destination and, once connected, the bridge. */
class CopyEnds {
  bridge?: IscsiSession;

  private constructor(
    readonly src: IscsiSession,
    readonly dst: IscsiSession,
  ) {}

  /** Logs in to the source, then the destination (logging out of the source if that fails). */
  static async connect(opts: XcopyCopyOptions): Promise<CopyEnds> {
    const src = await IscsiSession.connect(opts.from, opts.session);
    const dst = await IscsiSession.connect(opts.to, opts.session).catch(async (e: unknown) => {
      await src.close();
      throw e;
    });
    return new CopyEnds(src, dst);
  }

  /** The copy manager to send EXTENDED COPY to: `url`'s, or the destination's when none is given. */
  async connectBridge(url: string | undefined, session: SessionOptions | undefined): Promise<IscsiSession> {
    this.bridge = url ? await IscsiSession.connect(url, session) : this.dst;
    return this.bridge;
  }

  /** Logs out of the bridge (unless it is the destination), the source, then the destination. */
  async close(): Promise<void> {
    if (this.bridge && this.bridge !== this.dst) await this.bridge.close();
    await this.src.close();
    await this.dst.close();
  }
}

/** The blocks to copy: `count` from source LBA `skip` to destination LBA `seek`. */
export interface CopyRange {
  /** The source's logical block length (that of the copy). */
  blockSize: number;
  destinationBlockSize: number;
  skip: bigint;
  seek: bigint;
  count: bigint;
}

/** Reads both LUNs' block lengths and capacities and checks the range against them. */
async function probeRange(ends: CopyEnds, opts: XcopyCopyOptions): Promise<CopyRange> {
  const { src, dst } = ends;
  const bs = await src.blockSize();
  const dbs = await dst.blockSize();
  const srcBlocks = (await src.readCapacity16()).returnedLogicalBlockAddress + 1n;
  const dstBlocks = (await dst.readCapacity16()).returnedLogicalBlockAddress + 1n;
  return { blockSize: bs, destinationBlockSize: dbs, ...resolveRange(opts, srcBlocks, dstBlocks) };
}

/**
 * The range to copy from the options (skip and seek default to 0, count to the rest of the
 * source), refused with ERR_INVALID_ARG when it ends past either LUN.
 */
export function resolveRange(
  opts: Pick<XcopyCopyOptions, 'skip' | 'seek' | 'count'>,
  srcBlocks: bigint,
  dstBlocks: bigint,
): Pick<CopyRange, 'skip' | 'seek' | 'count'> {
  const skip = opts.skip ?? 0n;
  const seek = opts.seek ?? 0n;
  const count = opts.count ?? srcBlocks - skip;
  if (skip + count > srcBlocks) throw new AgentError('ERR_INVALID_ARG', `source range ${skip}+${count} ends past its ${srcBlocks} blocks`);
  if (seek + count > dstBlocks) {
    throw new AgentError('ERR_INVALID_ARG', `destination too small: ${seek + count} blocks needed, ${dstBlocks} present (grow it or copy fewer blocks with --count)`);
  }
  return { skip, seek, count };
}

/** What every step of one copy shares; `result` is filled in as the copy goes. */
interface CopyJob {
  readonly opts: XcopyCopyOptions;
  readonly ends: CopyEnds;
  readonly range: CopyRange;
  readonly t0: bigint;
  readonly result: XcopyCopyResult;
}

function emptyResult(range: CopyRange): XcopyCopyResult {
  return {
    blocks: range.count,
    block_size: range.blockSize,
    xcopy_bytes: 0n,
    host_bytes: 0n,
    extended_copy_commands: 0,
    seconds: 0,
    path: 'xcopy',
  };
}

function secondsSince(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/**
 * Copies the range from block `from` on through this host (READ/WRITE), because EXTENDED COPY
 * could not (`why`); refused with ERR_SCSI_STATUS when fallback is off (--no-fallback).
 */
async function copyThroughHost(job: CopyJob, why: string, from: bigint): Promise<XcopyCopyResult> {
  const { opts, ends, range, result } = job;
  if (!(opts.fallback ?? true)) throw new AgentError('ERR_XCOPY_UNAVAILABLE', `EXTENDED COPY not possible: ${why} (${opts.fallbackHint ?? 'drop --no-fallback'} to copy through this host)`);
  result.fallback_reason = why;
  const r = await hostCopy(ends.src, ends.dst, {
    skip: range.skip + from,
    seek: range.seek + from,
    count: range.count - from,
    onProgress: (c, total) => opts.onProgress?.(from + c, from + total, 'host', range.blockSize),
    signal: opts.signal,
  });
  result.host_bytes += r.bytes;
  result.path = result.xcopy_bytes > 0n ? 'mixed' : 'host';
  result.seconds = secondsSince(job.t0);
  return result;
}

/** How EXTENDED COPY will do the copy: through which bridge, naming which LUNs, within what limits. */
export interface XcopyPlan {
  bridge: IscsiSession;
  /** CSCD descriptors 0 (source) and 1 (destination). */
  cscds: CscdDescriptor[];
  limits: CopyLimits;
}

/**
 * Whether EXTENDED COPY can do the copy, asked in this order (each answer may end it with the
 * reason for the host path): both LUNs have a designator a CSCD can name, their block lengths
 * match, the bridge has a copy manager (3PC), and it answers OPERATING PARAMETERS.
 */
async function planExtendedCopy(ends: CopyEnds, range: CopyRange, opts: XcopyCopyOptions): Promise<XcopyPlan | { fallback: string }> {
  const bs = range.blockSize;
  const srcCscd = await cscdOfLun(ends.src, bs);
  const dstCscd = await cscdOfLun(ends.dst, bs);
  if (!srcCscd || !dstCscd) return { fallback: 'a LUN has no NAA, EUI-64 or T10 designator for a CSCD' };
  if (bs !== range.destinationBlockSize) return { fallback: `block sizes differ (${bs} and ${range.destinationBlockSize})` };
  const bridge = await ends.connectBridge(opts.bridge, opts.session);
  const inq = await bridge.inquiry();
  if (!inq.threePc) return { fallback: `${bridge.url} has no copy manager (3PC=0)` };
  const op = await operatingParametersOf(bridge);
  if (op === undefined) return { fallback: `${bridge.url} answers no OPERATING PARAMETERS` };
  return { bridge, cscds: [srcCscd, dstCscd], limits: copyLimits(op, bs) };
}

/**
 * The bridge's OPERATING PARAMETERS (SPC-4 r37 6.22), or undefined when it has none to give
 * (a fallback condition, or any ILLEGAL REQUEST): the copy then goes through the host.
 */
export async function operatingParametersOf(bridge: Pick<IscsiSession, 'operatingParameters'>): Promise<OperatingParameters | undefined> {
  try {
    return await bridge.operatingParameters();
  } catch (err) {
    if (isFallbackCondition(err) || (err instanceof IscsiError && err.senseKey === SenseKey.ILLEGAL_REQUEST)) {
      return undefined;
    }
    throw err;
  }
}

/**
 * Whether the copy manager behind `bridge` reaches the two LUNs that `cscds` name (source, then
 * destination), asked before anything is written: an EXTENDED COPY (LID1, LIST ID USAGE 11b) of
 * one 02h segment of 0 blocks. It moves no data, and a copy manager answers it only after
 * resolving both CSCD descriptors: LIO with GOOD or COPY ABORTED, COPY TARGET DEVICE NOT
 * REACHABLE (docs/lio.md), this project's the same (docs/xcopy.md). The refusal's message when
 * the answer is a fallback condition; undefined otherwise (any other answer proves nothing, and
 * the copy itself will say).
 */
export async function unreachable(bridge: Pick<IscsiSession, 'extendedCopy'>, cscds: [CscdDescriptor, CscdDescriptor]): Promise<string | undefined> {
  const probe = encodeExtendedCopyLid1({
    listIdentifier: 0,
    listIdUsage: ListIdUsage.DISABLE,
    cscdDescriptors: cscds,
    segmentDescriptors: [{ kind: 'blockToBlock', dc: false, cat: false, sourceCscdDescriptorId: 0, destinationCscdDescriptorId: 1, blockDeviceNumberOfBlocks: 0, sourceBlockDeviceLba: 0n, destinationBlockDeviceLba: 0n }],
  });
  try {
    await bridge.extendedCopy(probe);
    return undefined;
  } catch (err) {
    return isFallbackCondition(err) ? (err as Error).message : undefined;
  }
}

/** How this client splits a copy for one copy manager. */
export interface CopyLimits {
  /** Blocks in one 02h segment: MAXIMUM SEGMENT LENGTH, and at most 65535 (its 16-bit field). */
  blocksPerSegment: bigint;
  /** Segments in one command: MAXIMUM SEGMENT DESCRIPTOR COUNT and DESCRIPTOR LIST LENGTH, at most 64. */
  segmentsPerCommand: number;
  /** Commands sent at once: MAXIMUM CONCURRENT COPIES, at most 4. */
  commandsInFlight: number;
}

/**
 * The limits of a copy manager (its OPERATING PARAMETERS, SPC-4 r37 6.22) for blocks of `blockSize`
 * bytes. A descriptor list holds the two 32-byte E4h CSCD descriptors (64 bytes) and 28-byte 02h
 * segment descriptors (SPC-4 r37 6.4.5.6, 6.4.6.4); each limit is at least 1.
 */
export function copyLimits(
  op: Pick<OperatingParameters, 'maximumSegmentLength' | 'maximumSegmentDescriptorCount' | 'maximumDescriptorListLength' | 'maximumConcurrentCopies'>,
  blockSize: number,
): CopyLimits {
  const maxSegLenBlocks = op.maximumSegmentLength === 0 ? 65535 : Math.floor(op.maximumSegmentLength / blockSize);
  const byListLength = Math.floor((op.maximumDescriptorListLength - 64) / 28);
  return {
    blocksPerSegment: BigInt(Math.max(1, Math.min(65535, maxSegLenBlocks))),
    segmentsPerCommand: Math.max(1, Math.min(op.maximumSegmentDescriptorCount, byListLength > 0 ? byListLength : 1, 64)),
    commandsInFlight: Math.max(1, Math.min(op.maximumConcurrentCopies || 1, 4)),
  };
}

/**
 * The 02h (block to block) segments of the command that copies the range from block `from` on:
 * as many as `limits` allow, each of at most blocksPerSegment blocks; `end` is the first block
 * the command leaves to the next one.
 */
export function commandSegments(range: Pick<CopyRange, 'skip' | 'seek' | 'count'>, from: bigint, limits: CopyLimits): { segments: SegmentDescriptor[]; end: bigint } {
  const { skip, seek, count } = range;
  const segments: SegmentDescriptor[] = [];
  let at = from;
  for (let i = 0; i < limits.segmentsPerCommand && at < count; i++) {
    const n = count - at < limits.blocksPerSegment ? count - at : limits.blocksPerSegment;
    segments.push({
      kind: 'blockToBlock',
      dc: false,
      cat: false,
      sourceCscdDescriptorId: 0,
      destinationCscdDescriptorId: 1,
      blockDeviceNumberOfBlocks: Number(n),
      sourceBlockDeviceLba: skip + at,
      destinationBlockDeviceLba: seek + at,
    });
    at += n;
  }
  return { segments, end: at };
}

/**
 * LIST ID USAGE 10b with a distinct list id per command in flight: the bridge tracks each, so
 * COPY STATUS can report progress and COPY OPERATION ABORT can stop it (SPC-4 r37 6.4.3.2, 5.17.4.2).
 */
const LIST_ID_USAGE = 2;

/** How the commands went: blocks copied, commands that succeeded, and the first failure. */
interface RunOutcome {
  done: bigint;
  commands: number;
  /** First block of the earliest command that failed. */
  failedAt?: bigint;
  failure?: unknown;
}

/**
 * The EXTENDED COPY commands of one copy: workers (commandsInFlight of them) each send the next
 * command until the range is done, one fails, or the signal aborts; meanwhile COPY STATUS is
 * polled for progress, and an abort sends COPY OPERATION ABORT for every command in flight.
 */
class ExtendedCopyRun {
  private next = 0n;
  private done = 0n;
  private commands = 0;
  private failedAt: bigint | undefined;
  private failure: unknown;
  private listId: number;
  private ended = false;
  /** list id → blocks of its command (for progress); in flight only. */
  private readonly running = new Map<number, bigint>();

  constructor(
    private readonly plan: XcopyPlan,
    private readonly range: CopyRange,
    private readonly opts: XcopyCopyOptions,
  ) {
    this.listId = opts.listId ?? 1;
  }

  /** Runs the workers and the progress poll until every command has ended. */
  async run(): Promise<RunOutcome> {
    const onAbort = () => this.abortRunning();
    this.opts.signal?.addEventListener('abort', onAbort, { once: true });
    const poller = this.opts.onProgress ? every(this.opts.progressIntervalMs ?? 500, () => this.pollProgress()) : undefined;
    try {
      await Promise.all(Array.from({ length: this.plan.limits.commandsInFlight }, () => this.worker()));
    } finally {
      this.ended = true; // a poll still asking COPY STATUS reports nothing after this
      this.opts.signal?.removeEventListener('abort', onAbort);
      await poller?.stop(); // the copy ends now, not at the poll's next tick
    }
    return { done: this.done, commands: this.commands, failedAt: this.failedAt, failure: this.failure };
  }

  private interrupted(): boolean {
    return this.opts.signal?.aborted === true;
  }

  /** Sends the next command, in range order, until none is left, one failed, or the copy is interrupted. */
  private async worker(): Promise<void> {
    while (this.next < this.range.count && this.failedAt === undefined && !this.interrupted()) {
      const start = this.next;
      const { segments, end } = commandSegments(this.range, start, this.plan.limits);
      this.next = end;
      await this.send(start, end, segments);
    }
  }

  /** One EXTENDED COPY for blocks start to end; a failure is kept (the earliest one wins). */
  private async send(start: bigint, end: bigint, segments: SegmentDescriptor[]): Promise<void> {
    const id = this.takeListId();
    this.running.set(id, end - start);
    try {
      await this.plan.bridge.extendedCopy(encodeExtendedCopyLid1({ listIdentifier: id, listIdUsage: LIST_ID_USAGE, cscdDescriptors: this.plan.cscds, segmentDescriptors: segments }));
      this.commands++;
      this.done += end - start;
      this.opts.onProgress?.(this.done, this.range.count, 'xcopy', this.range.blockSize);
    } catch (err) {
      if (this.failedAt === undefined || start < this.failedAt) this.failedAt = start;
      this.failure = err;
    } finally {
      this.running.delete(id);
    }
  }

  /** The next list identifier (1–255, wrapping) that no command in flight uses. */
  private takeListId(): number {
    while (this.running.has(this.listId)) this.listId = this.listId >= 255 ? 1 : this.listId + 1;
    const id = this.listId;
    this.listId = this.listId >= 255 ? 1 : this.listId + 1;
    return id;
  }

  /** COPY OPERATION ABORT for every command in flight (answers ignored: the commands end anyway). */
  private abortRunning(): void {
    for (const id of this.running.keys()) this.plan.bridge.copyOperationAbort(id).catch(() => undefined);
  }

  /**
   * Progress while commands run: every interval, the blocks done plus what COPY STATUS (SPC-4 r37
   * 6.25) says each command in flight has copied. Stops for good when COPY STATUS fails (no COPY
   * STATUS here, or the list is gone): progress then comes from completions only.
   */
  /** Progress from COPY STATUS of each command in flight; false (stop polling) where COPY STATUS is missing. */
  private async pollProgress(): Promise<boolean> {
    if (this.running.size === 0) return true;
    const bs = this.range.blockSize;
    let partial = 0n;
    try {
      for (const [id, blocks] of [...this.running]) {
        const st = await this.plan.bridge.copyStatus(id);
        const b = transferCountToBytes(st.transferCountUnits, st.transferCount, bs) / BigInt(bs);
        if (this.running.has(id)) partial += b < blocks ? b : blocks;
      }
    } catch {
      return false; // no COPY STATUS here (or the list is gone): completions only
    }
    if (!this.ended) this.opts.onProgress?.(this.done + partial, this.range.count, 'xcopy', this.range.blockSize);
    return true;
  }
}

/**
 * The end of the EXTENDED COPY path: ERR_INTERRUPTED if the signal stopped it short; after a
 * failed command, the rest through the host (when the failure is a fallback condition; else the
 * failure itself); otherwise SYNCHRONIZE CACHE on the destination.
 */
async function finishExtendedCopy(job: CopyJob, plan: XcopyPlan, outcome: RunOutcome): Promise<XcopyCopyResult> {
  const { opts, range, result } = job;
  const { done, failedAt, failure } = outcome;
  result.extended_copy_commands = outcome.commands;
  result.xcopy_bytes = done * BigInt(range.blockSize);
  if (opts.signal?.aborted === true && (done < range.count || failedAt !== undefined)) {
    throw new AgentError('ERR_INTERRUPTED', `copy interrupted after ${done} of ${range.count} blocks; the copy manager was told to stop (COPY OPERATION ABORT) — run the copy again to finish it`);
  }
  if (failedAt !== undefined) {
    if (!isFallbackCondition(failure)) throw failure;
    // Everything before the first failed command was copied (commands run in list order
    // per worker; a later one that succeeded is simply copied again by the host path).
    return await copyThroughHost(job, `${plan.bridge.url}: ${(failure as Error).message}`, failedAt);
  }
  await job.ends.dst.synchronizeCache16();
  result.seconds = secondsSince(job.t0);
  return result;
}

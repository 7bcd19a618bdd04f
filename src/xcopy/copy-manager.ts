/**
 * The copy manager (the bridge; SPC-4 r37 5.17): executes EXTENDED COPY (LID1) parameter lists against
 * the stores of the logical units an initiator may reach, and answers RECEIVE COPY RESULTS.
 *
 * One CopyManager serves any number of logical units (typically those of one target portal
 * group); the LU that received a command is the one of its CommandContext. State — list
 * identifiers, copy status, failed segment details — is kept per logical unit and I_T nexus.
 *
 * EXTENDED COPY, in the order of docs/xcopy.md "Validation order":
 *  1. PARAMETER LIST LENGTH 0 → GOOD, nothing copied;
 *  2. < 16 (or Data-Out shorter than it) → PARAMETER LIST LENGTH ERROR;
 *  3. CSCD + segment list lengths > MAXIMUM DESCRIPTOR LIST LENGTH → PARAMETER LIST LENGTH ERROR;
 *  4. INLINE DATA LENGTH > 0 (none supported) → INLINE DATA LENGTH EXCEEDED;
 *  5. PARAMETER LIST LENGTH < 16 + the three lengths → PARAMETER LIST LENGTH ERROR;
 *  6. more CSCD descriptors than the maximum → TOO MANY TARGET DESCRIPTORS;
 *  7. more segment descriptors than the maximum → TOO MANY SEGMENT DESCRIPTORS;
 *  8. CSCD type other than E4h → 26h/07h; segment type other than 02h/0Ah → 26h/09h;
 *  9. field checks → INVALID FIELD IN PARAMETER LIST (field pointer at the field);
 * 10. LIST IDENTIFIER of a copy still running on this I_T nexus → OPERATION IN PROGRESS;
 * 11. per segment: resolve its CSCDs (designator match against the reachable LUs' VPD 83h
 *     logical-unit designators; otherwise COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE), check
 *     the ranges, copy. Failures are COPY ABORTED with the segment number in COMMAND-SPECIFIC
 *     INFORMATION.
 *
 * Data moves through a fixed BufferPool in chunks, several chunks in flight per segment; source
 * and destination ranges that overlap on the same store are copied one chunk at a time in the
 * direction that never reads a block after overwriting it (memmove).
 */
import { decodeExtendedCopyCdb, decodeReceiveCopyResultsCdb } from '../scsi/cdb';
import { ScsiStatus } from '../scsi/constants';
import { bytesToTransferCount, CopyManagerStatus, encodeCopyStatusLid1, encodeFailedSegmentDetails, encodeOperatingParameters, type OperatingParameters } from '../scsi/copy-results';
import { encodeThirdPartyCopy } from '../scsi/vpd-third-party-copy';
import { Association } from '../scsi/vpd';
import {
  CscdTypeCode,
  decodeExtendedCopyLid1,
  decodeExtendedCopyLid1Header,
  ListIdUsage,
  SegmentTypeCode,
  type DecodedCscd,
  type DecodedExtendedCopyLid1,
  type DecodedSegment,
  type IdentificationCscd,
} from '../scsi/xcopy';
import { DecodeError, ArgumentError } from '../errors';
import { StoreError, type Store } from '../store/store';
import {
  Sense,
  SenseError,
  StatusError,
  buildSense,
  deviceDesignators,
  type CommandContext,
  type CommandResult,
  type ItNexus,
  type LogicalUnit,
} from '../target/scsi';
import { invalidCdbField, senseOfStoreError } from '../target/scsi/sense-errors';
import { requestAborted } from '../target/scsi/types';
import { logger, type Logger } from '../util/log';
import { isAllZero } from '../util/zero';
import { BufferPool } from './buffer-pool';
import { copyAbortedDetails, CopyAbortError, type CopyAbort, type ForwardedSense } from './sense';

const MiB = 1024 * 1024;

/** What the copy manager advertises (OPERATING PARAMETERS, VPD 8Fh) and enforces. */
export interface CopyManagerLimits {
  /** MAXIMUM CSCD DESCRIPTOR COUNT. */
  maxCscdDescriptors: number;
  /** MAXIMUM SEGMENT DESCRIPTOR COUNT. */
  maxSegmentDescriptors: number;
  /** MAXIMUM DESCRIPTOR LIST LENGTH (CSCD + segment bytes). */
  maxDescriptorListLength: number;
  /** MAXIMUM SEGMENT LENGTH, bytes. */
  maxSegmentLength: number;
  /** TOTAL CONCURRENT COPIES / MAXIMUM CONCURRENT COPIES (copies share the buffer pool). */
  maxConcurrentCopies: number;
}

export const DEFAULT_COPY_MANAGER_LIMITS: Readonly<CopyManagerLimits> = Object.freeze({
  maxCscdDescriptors: 64,
  maxSegmentDescriptors: 256,
  // 64 CSCDs and 256 of the largest segment descriptor we take (0Ah, 32 bytes).
  maxDescriptorListLength: 64 * 32 + 256 * 32,
  maxSegmentLength: 256 * MiB,
  maxConcurrentCopies: 16,
});

/** Segment and CSCD type codes implemented, segment codes first (OPERATING PARAMETERS order). */
export const IMPLEMENTED_DESCRIPTOR_TYPE_CODES: readonly number[] = [
  SegmentTypeCode.BLOCK_TO_BLOCK,
  SegmentTypeCode.BLOCK_OFFSET_TO_BLOCK_OFFSET,
  CscdTypeCode.IDENTIFICATION,
];

/** CSCD DESCRIPTOR ID FFFFh: the logical unit that received the EXTENDED COPY (as CTL). */
export const CSCD_ID_RECEIVING_LU = 0xffff;
/** CSCD descriptor ids 0000h–07FFh index the CSCD list (SPC-4 r37 6.4.3.6). */
const CSCD_ID_INDEX_MAX = 0x07ff;

/** A logical unit an initiator may reach, and whether its mapping is write protected for it. */
export interface ReachableLu {
  lu: LogicalUnit;
  writeProtect?: boolean;
}

export interface CopyManagerOptions {
  /**
   * The logical units `nexus` may name as a copy source or destination: exactly those its ACL maps
   * (no confused deputy, CVE-2020-28374). The LU that received the command is always reachable.
   */
  reachable: (nexus: ItNexus) => Iterable<LogicalUnit | ReachableLu>;
  /** Size of one copy buffer (default 4 MiB). */
  chunkBytes?: number;
  /** Buffers in the pool (default 8): the copy manager's data memory is chunkBytes × buffers. */
  buffers?: number;
  /** Chunks in flight per segment (default 4). */
  inFlight?: number;
  limits?: Partial<CopyManagerLimits>;
  /** Held copy results (COPY STATUS, FAILED SEGMENT DETAILS) are dropped this long after the copy ends (default 10 min). */
  heldResultsMs?: number;
  /** Use copy_file_range between two file stores (default true; off to measure the pool path). */
  kernelCopy?: boolean;
  /** Skip writing zero-filled source chunks where the destination reads zeros already (default true). */
  zeroSkip?: boolean;
  log?: Logger;
}

/** One list identifier's copy (SPC-4 r37 5.17.4.3), as COPY STATUS reports it. */
interface CopyList {
  readonly listId: number;
  readonly usage: number;
  state: 'running' | 'completed' | 'failed';
  segmentsProcessed: number;
  bytes: bigint;
  /** For FAILED SEGMENT DETAILS. */
  failure?: { status: number; sense: Buffer };
  /** COPY OPERATION ABORT (SPC-4 r37 6.3) sets it; the copy stops at the next chunk boundary. */
  readonly abort: AbortController;
  /** When the final status became available (held-result expiry). */
  finishedAt?: number;
}

/** Counters for tests, logs and the conformance checks ("was XCOPY really used?"). */
export interface CopyManagerCounters {
  extendedCopies: number;
  completed: number;
  failed: number;
  rejected: number;
  segments: number;
  bytes: bigint;
  unreachable: number;
  /** Bytes moved by copy_file_range (file→file), and bytes not written because they were zeros. */
  kernelCopiedBytes: bigint;
  zeroSkippedBytes: bigint;
  /** Copies stopped by COPY OPERATION ABORT, ABORT TASK, a reset or a lost nexus. */
  aborted: number;
}

/** A segment resolved to byte ranges on two logical units. */
interface SegmentPlan {
  src: LogicalUnit;
  dst: LogicalUnit;
  srcByte: bigint;
  dstByte: bigint;
  bytes: bigint;
}

function isReachableLu(x: LogicalUnit | ReachableLu): x is ReachableLu {
  return 'lu' in x;
}

export class CopyManager {
  readonly limits: Readonly<CopyManagerLimits>;
  readonly pool: BufferPool;
  readonly counters: CopyManagerCounters = { extendedCopies: 0, completed: 0, failed: 0, rejected: 0, segments: 0, bytes: 0n, unreachable: 0, kernelCopiedBytes: 0n, zeroSkippedBytes: 0n, aborted: 0 };
  private readonly reachable: (nexus: ItNexus) => Iterable<LogicalUnit | ReachableLu>;
  private readonly inFlight: number;
  private readonly log: Logger;
  /** LU → nexus id → list id → list. */
  private readonly lists = new WeakMap<LogicalUnit, Map<string, Map<number, CopyList>>>();
  private running = 0;
  private readonly heldResultsMs: number;
  private readonly kernelCopy: boolean;
  private readonly zeroSkip: boolean;

  constructor(opts: CopyManagerOptions) {
    if (typeof opts?.reachable !== 'function') throw new ArgumentError('reachable must be a function of the I_T nexus');
    this.reachable = opts.reachable;
    const l = { ...DEFAULT_COPY_MANAGER_LIMITS, ...(opts.limits ?? {}) };
    const int = (v: number, min: number, max: number, what: string) => {
      if (!Number.isInteger(v) || v < min || v > max) throw new ArgumentError(`${what} must be an integer in ${min}..${max}, got ${String(v)}`);
      return v;
    };
    this.limits = Object.freeze({
      maxCscdDescriptors: int(l.maxCscdDescriptors, 1, 0x0800, 'limits.maxCscdDescriptors'),
      maxSegmentDescriptors: int(l.maxSegmentDescriptors, 1, 0xffff, 'limits.maxSegmentDescriptors'),
      maxDescriptorListLength: int(l.maxDescriptorListLength, 60, 0xffff, 'limits.maxDescriptorListLength'),
      maxSegmentLength: int(l.maxSegmentLength, 4096, 0xffff_ffff, 'limits.maxSegmentLength'),
      maxConcurrentCopies: int(l.maxConcurrentCopies, 1, 255, 'limits.maxConcurrentCopies'),
    });
    this.pool = new BufferPool(opts.buffers ?? 8, opts.chunkBytes ?? 4 * MiB);
    this.inFlight = int(opts.inFlight ?? 4, 1, this.pool.count, 'inFlight');
    this.log = opts.log ?? logger();
    this.heldResultsMs = opts.heldResultsMs ?? 10 * 60_000;
    this.kernelCopy = opts.kernelCopy ?? true;
    this.zeroSkip = opts.zeroSkip ?? true;
  }

  /** Copies running now (all logical units, all nexuses). */
  get runningCopies(): number {
    return this.running;
  }

  // -------------------------------------------------------------------------------------------
  // What is advertised
  // -------------------------------------------------------------------------------------------

  /** RECEIVE COPY RESULTS, OPERATING PARAMETERS (SPC-4 r37 6.22). */
  operatingParameters(): OperatingParameters {
    const l = this.limits;
    return {
      snlid: true, // LIST ID USAGE 11b is supported
      maximumCscdDescriptorCount: l.maxCscdDescriptors,
      maximumSegmentDescriptorCount: l.maxSegmentDescriptors,
      maximumDescriptorListLength: l.maxDescriptorListLength,
      maximumSegmentLength: l.maxSegmentLength,
      maximumInlineDataLength: 0,
      heldDataLimit: 0,
      maximumStreamDeviceTransferSize: 0,
      totalConcurrentCopies: l.maxConcurrentCopies,
      maximumConcurrentCopies: l.maxConcurrentCopies,
      dataSegmentGranularity: 9, // whole 512-byte blocks at least (inexact segments are refused)
      inlineDataGranularity: 0,
      heldDataGranularity: 0,
      implementedDescriptorTypeCodes: [...IMPLEMENTED_DESCRIPTOR_TYPE_CODES],
    };
  }

  /** The Third-party Copy VPD page (SPC-4 r37 7.8.17) for a LID1 copy manager. */
  thirdPartyCopyPage(): Buffer {
    const l = this.limits;
    return encodeThirdPartyCopy([
      {
        kind: 'supportedCommands',
        commands: [
          { opcode: 0x83, serviceActions: [0x00, 0x1c] },
          { opcode: 0x84, serviceActions: [0x00, 0x03, 0x04] },
        ],
      },
      {
        kind: 'parameterData',
        maximumCscdDescriptorCount: l.maxCscdDescriptors,
        maximumSegmentDescriptorCount: l.maxSegmentDescriptors,
        maximumDescriptorListLength: l.maxDescriptorListLength,
        maximumInlineDataLength: 0,
      },
      { kind: 'supportedDescriptors', descriptorTypeCodes: [...IMPLEMENTED_DESCRIPTOR_TYPE_CODES] },
      { kind: 'supportedCscdDescriptorIds', cscdDescriptorIds: [CSCD_ID_RECEIVING_LU] },
      {
        kind: 'generalCopyOperations',
        totalConcurrentCopies: l.maxConcurrentCopies,
        maximumIdentifiedConcurrentCopies: l.maxConcurrentCopies,
        maximumSegmentLength: l.maxSegmentLength,
        dataSegmentGranularity: 9,
        inlineDataGranularity: 0,
      },
    ]);
  }

  // -------------------------------------------------------------------------------------------
  // Events from the target
  // -------------------------------------------------------------------------------------------

  /** The I_T nexus is gone: its held copy results go (running copies finish on their own). */
  nexusGone(nexus: ItNexus, lus?: Iterable<LogicalUnit>): void {
    for (const lu of lus ?? []) this.lists.get(lu)?.delete(nexus.id);
  }

  /** A LUN reset or target reset: held results of `lu` are discarded (SPC-2: "on reset"). */
  reset(lu: LogicalUnit): void {
    const byNexus = this.lists.get(lu);
    if (!byNexus) return;
    for (const [id, m] of byNexus) {
      for (const [listId, l] of m) if (l.state !== 'running') m.delete(listId);
      if (m.size === 0) byNexus.delete(id);
    }
  }

  // -------------------------------------------------------------------------------------------
  // EXTENDED COPY (LID1), SPC-4 r37 6.5
  // -------------------------------------------------------------------------------------------

  async extendedCopy(ctx: CommandContext): Promise<CommandResult> {
    const { lu, cdb, nexus } = ctx;
    const { parameterListLength } = decodeExtendedCopyCdb(cdb);
    // 1. SPC-2 r20 7.2.1: a PARAMETER LIST LENGTH of zero is not an error.
    if (parameterListLength === 0) return { dataOutLength: 0 };
    const data = ctx.req.dataOut ?? Buffer.alloc(0);
    // 2.
    if (parameterListLength < 16 || data.length < parameterListLength) {
      this.counters.rejected++;
      throw this.withLength(
        new SenseError(Sense.PARAMETER_LIST_LENGTH_ERROR, {}, `EXTENDED COPY parameter list of ${Math.min(data.length, parameterListLength)} bytes (PARAMETER LIST LENGTH ${parameterListLength})`),
        parameterListLength,
      );
    }
    const list = data.subarray(0, parameterListLength);
    let decoded: DecodedExtendedCopyLid1;
    try {
      decoded = this.validate(list);
    } catch (err) {
      this.counters.rejected++;
      if (err instanceof SenseError) throw this.withLength(err, parameterListLength);
      throw err;
    }
    const h = decoded.header;
    // 10. SPC-4 r37 5.17.4.3: a list identifier in use by a running copy of this I_T nexus.
    const tracked = h.listIdUsage !== ListIdUsage.DISABLE;
    const lists = this.listsOf(lu, nexus);
    if (tracked && lists.get(h.listIdentifier)?.state === 'running') {
      this.counters.rejected++;
      throw this.withLength(
        new SenseError(Sense.OPERATION_IN_PROGRESS, { field: { paramByte: 0, bit: 7 } }, `LIST IDENTIFIER ${h.listIdentifier} is in use by a running EXTENDED COPY`),
        parameterListLength,
      );
    }
    // SPC-4 r37 6.22 MAXIMUM CONCURRENT COPIES: more are refused, not queued behind the others.
    if (this.running >= this.limits.maxConcurrentCopies) {
      this.counters.rejected++;
      throw this.withLength(
        new SenseError(Sense.INSUFFICIENT_RESOURCES, {}, `${this.running} copies are running, the most this copy manager runs at once (retry when one ends)`),
        parameterListLength,
      );
    }
    this.expireHeld(lists);
    const copy: CopyList = { listId: h.listIdentifier, usage: h.listIdUsage, state: 'running', segmentsProcessed: 0, bytes: 0n, abort: new AbortController() };
    // A new command with the same list id discards what was held for the old one.
    if (tracked) lists.set(h.listIdentifier, copy);
    this.counters.extendedCopies++;
    this.running++;
    const started = process.hrtime.bigint();
    let result = 'GOOD';
    try {
      await this.run(ctx, decoded, copy);
      copy.state = 'completed';
      this.counters.completed++;
      return { dataOutLength: parameterListLength };
    } catch (err) {
      copy.state = 'failed';
      this.counters.failed++;
      if (err instanceof StatusError && err.status === ScsiStatus.TASK_ABORTED) this.counters.aborted++;
      if (err instanceof CopyAbortError) {
        const a = err.abort;
        result = `COPY ABORTED ${a.reason.name} in segment ${a.segment}`;
        const details = copyAbortedDetails(a);
        copy.failure = { status: ScsiStatus.CHECK_CONDITION, sense: buildSense(a.reason, details, lu.modes.descriptorSense) };
        throw new SenseError(a.reason, details, err.message);
      }
      result = err instanceof StatusError ? `status 0x${err.status.toString(16)}` : String(err);
      copy.failure = { status: err instanceof StatusError ? err.status : ScsiStatus.CHECK_CONDITION, sense: err instanceof StatusError ? Buffer.alloc(0) : buildSense(Sense.INTERNAL_TARGET_FAILURE) };
      throw err;
    } finally {
      this.running--;
      copy.finishedAt = Date.now();
      // LIST ID USAGE 10b: the list id is unique while the copy runs; nothing is held afterwards.
      if (tracked && copy.usage !== ListIdUsage.HOLD && lists.get(copy.listId) === copy) lists.delete(copy.listId);
      this.log.info(
        {
          initiator: nexus.initiatorName,
          list_id: copy.listId,
          list_id_usage: copy.usage,
          segments: decoded.segmentDescriptors.length,
          segments_processed: copy.segmentsProcessed,
          bytes: copy.bytes.toString(),
          duration_ms: Number((process.hrtime.bigint() - started) / 1_000_000n),
          result,
        },
        'EXTENDED COPY',
      );
    }
  }

  private withLength(err: SenseError, dataOutLength: number): SenseError {
    err.dataOutLength = dataOutLength;
    return err;
  }

  private listsOf(lu: LogicalUnit, nexus: ItNexus): Map<number, CopyList> {
    let byNexus = this.lists.get(lu);
    if (!byNexus) this.lists.set(lu, (byNexus = new Map()));
    let m = byNexus.get(nexus.id);
    if (!m) byNexus.set(nexus.id, (m = new Map()));
    return m;
  }

  /**
   * ABORT TASK, a reset or a lost nexus (the task's signal), or COPY OPERATION ABORT (the copy's
   * own): the copy ends with TASK ABORTED, as FreeBSD CTL's does (docs/xcopy.md "Peers observed"), at a chunk boundary —
   * no read or write is cut short; whole segments done are counted in COPY STATUS.
   */
  private checkStopped(ctx: CommandContext, copy: CopyList, where: string): void {
    if (requestAborted(ctx.req)) throw new StatusError(ScsiStatus.TASK_ABORTED, `EXTENDED COPY aborted ${where}`);
    if (copy.abort.signal.aborted) throw new StatusError(ScsiStatus.TASK_ABORTED, `EXTENDED COPY stopped by COPY OPERATION ABORT ${where}`);
  }

  /**
   * The list `listId` this I_T nexus sent to `lu`, for RECEIVE COPY RESULTS (held results that
   * expired dropped first); none → INVALID FIELD IN CDB.
   */
  private heldList(lu: LogicalUnit, nexus: ItNexus, listId: number): { lists: Map<number, CopyList>; l: CopyList } {
    const lists = this.listsOf(lu, nexus);
    this.expireHeld(lists);
    const l = lists.get(listId);
    if (l === undefined) throw invalidCdbField(2, 7, `no copy with LIST IDENTIFIER ${listId} is known for this I_T nexus`);
    return { lists, l };
  }

  /** Held results older than heldResultsMs go: nobody asked for them in time. */
  private expireHeld(lists: Map<number, CopyList>): void {
    const before = Date.now() - this.heldResultsMs;
    for (const [id, l] of lists) if (l.state !== 'running' && l.finishedAt !== undefined && l.finishedAt < before) lists.delete(id);
  }

  /**
   * COPY OPERATION ABORT (SPC-4 r37 6.3, THIRD-PARTY COPY OUT SA 1Ch): stops the running copy with
   * that LIST IDENTIFIER sent on this I_T nexus to this logical unit. None running → INVALID FIELD
   * IN CDB (as CTL). GOOD once the request is registered; the EXTENDED COPY itself ends with TASK
   * ABORTED at its next chunk boundary, and COPY STATUS then reports it completed with errors.
   */
  copyOperationAbort(ctx: CommandContext): CommandResult {
    const listId = ctx.cdb.readUInt32BE(2);
    const l = listId <= 0xff ? this.listsOf(ctx.lu, ctx.nexus).get(listId) : undefined;
    if (l === undefined || l.state !== 'running') throw invalidCdbField(2, 7, `no EXTENDED COPY with LIST IDENTIFIER ${listId} is running for this I_T nexus`);
    l.abort.abort();
    this.log.info({ initiator: ctx.nexus.initiatorName, list_id: listId }, 'COPY OPERATION ABORT');
    return {};
  }

  /** Steps 3–9 of the validation order; throws SenseError (ILLEGAL REQUEST). */
  private validate(list: Buffer): DecodedExtendedCopyLid1 {
    const l = this.limits;
    const h = decodeExtendedCopyLid1Header(list);
    // 3.
    if (h.cscdDescriptorListLength + h.segmentDescriptorListLength > l.maxDescriptorListLength) {
      throw new SenseError(
        Sense.PARAMETER_LIST_LENGTH_ERROR,
        {},
        `descriptor lists of ${h.cscdDescriptorListLength} + ${h.segmentDescriptorListLength} bytes exceed MAXIMUM DESCRIPTOR LIST LENGTH ${l.maxDescriptorListLength}`,
      );
    }
    // 4.
    if (h.inlineDataLength > 0) {
      throw new SenseError(Sense.INLINE_DATA_LENGTH_EXCEEDED, { field: { paramByte: 12, bit: 7 } }, `INLINE DATA LENGTH ${h.inlineDataLength} exceeds 0`);
    }
    // 5.
    const needed = 16 + h.cscdDescriptorListLength + h.segmentDescriptorListLength + h.inlineDataLength;
    if (list.length < needed) {
      throw new SenseError(Sense.PARAMETER_LIST_LENGTH_ERROR, {}, `parameter list of ${list.length} bytes is shorter than the ${needed} its header describes`);
    }
    let d: DecodedExtendedCopyLid1;
    try {
      d = decodeExtendedCopyLid1(list);
    } catch (err) {
      // Only a descriptor running past the end of its own list can fail here.
      if (err instanceof DecodeError) throw new SenseError(Sense.INVALID_FIELD_IN_PARAMETER_LIST, { field: { paramByte: err.offset, bit: 7 } }, err.message);
      throw err;
    }
    // 6., 7.
    if (d.cscdDescriptors.length > l.maxCscdDescriptors) {
      throw new SenseError(Sense.TOO_MANY_TARGET_DESCRIPTORS, { field: { paramByte: 2, bit: 7 } }, `${d.cscdDescriptors.length} CSCD descriptors exceed ${l.maxCscdDescriptors}`);
    }
    if (d.segmentDescriptors.length > l.maxSegmentDescriptors) {
      throw new SenseError(Sense.TOO_MANY_SEGMENT_DESCRIPTORS, { field: { paramByte: 8, bit: 7 } }, `${d.segmentDescriptors.length} segment descriptors exceed ${l.maxSegmentDescriptors}`);
    }
    // 8.
    for (const c of d.cscdDescriptors) {
      if (c.typeCode !== CscdTypeCode.IDENTIFICATION) {
        throw new SenseError(Sense.UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE, { field: { paramByte: c.offset, bit: 7 } }, `CSCD descriptor type ${hex(c.typeCode)}h is not supported (only E4h)`);
      }
    }
    for (const s of d.segmentDescriptors) {
      if (s.typeCode !== SegmentTypeCode.BLOCK_TO_BLOCK && s.typeCode !== SegmentTypeCode.BLOCK_OFFSET_TO_BLOCK_OFFSET) {
        throw new SenseError(Sense.UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE_CODE, { field: { paramByte: s.offset, bit: 7 } }, `segment descriptor type ${hex(s.typeCode)}h is not supported (02h and 0Ah are)`);
      }
    }
    // 9.
    if (h.listIdUsage === ListIdUsage.RESERVED) throw fieldError(1, 4, 'LIST ID USAGE 01b is reserved');
    if (h.listIdUsage === ListIdUsage.DISABLE && h.listIdentifier !== 0) throw fieldError(0, 7, 'LIST IDENTIFIER must be 0 with LIST ID USAGE 11b');
    d.cscdDescriptors.forEach((c) => checkCscdFields(c));
    d.segmentDescriptors.forEach((s) => checkSegmentFields(s, l.maxSegmentLength));
    return d;
  }

  /** Step 11: the segments, in order. */
  private async run(ctx: CommandContext, d: DecodedExtendedCopyLid1, copy: CopyList): Promise<void> {
    const resolved = new Map<number, { lu: LogicalUnit; writeProtect: boolean }>();
    for (let i = 0; i < d.segmentDescriptors.length; i++) {
      this.checkStopped(ctx, copy, `before segment ${i}`);
      const seg = d.segmentDescriptors[i];
      const plan = this.plan(ctx, d, seg, i, resolved);
      if (plan.bytes > 0n) await this.copySegment(ctx, plan, i, copy);
      copy.segmentsProcessed = i + 1;
      this.counters.segments++;
    }
  }

  /** Resolves a segment's CSCDs and byte ranges, and checks them. Throws CopyAbortError. */
  private plan(ctx: CommandContext, d: DecodedExtendedCopyLid1, seg: DecodedSegment, index: number, resolved: Map<number, { lu: LogicalUnit; writeProtect: boolean }>): SegmentPlan {
    const desc = seg.descriptor;
    if (desc.kind !== 'blockToBlock' && desc.kind !== 'blockOffsetToBlockOffset') throw new Error(`unvalidated segment kind ${desc.kind}`);
    const srcId = desc.sourceCscdDescriptorId;
    const dstId = desc.destinationCscdDescriptorId;
    const src = this.resolve(ctx, d, srcId, index, 4, resolved);
    const dst = this.resolve(ctx, d, dstId, index, 6, resolved);
    const srcLen = blockLengthOf(d, srcId, src.lu);
    const dstLen = blockLengthOf(d, dstId, dst.lu);
    let srcByte: bigint;
    let dstByte: bigint;
    let bytes: bigint;
    if (desc.kind === 'blockToBlock') {
      // SPC-4 r37 6.4.6.4: DC = 0 counts source blocks, DC = 1 destination blocks.
      bytes = BigInt(desc.blockDeviceNumberOfBlocks) * BigInt(desc.dc ? dstLen : srcLen);
      srcByte = desc.sourceBlockDeviceLba * BigInt(srcLen);
      dstByte = desc.destinationBlockDeviceLba * BigInt(dstLen);
    } else {
      // SPC-4 r37 6.4.6.12: LBA × block length + BYTE OFFSET.
      bytes = BigInt(desc.numberOfBytes);
      srcByte = desc.sourceBlockDeviceLba * BigInt(srcLen) + BigInt(desc.sourceBlockDeviceByteOffset);
      dstByte = desc.destinationBlockDeviceLba * BigInt(dstLen) + BigInt(desc.destinationBlockDeviceByteOffset);
    }
    const abort = (reason: CopyAbort['reason'], message: string, extra: Partial<CopyAbort> = {}): never => {
      throw new CopyAbortError({ reason, segment: index, message, ...extra });
    };
    if (bytes === 0n) return { src: src.lu, dst: dst.lu, srcByte, dstByte, bytes };
    // Only whole logical blocks of both devices move (PAD/CAT residue handling is not implemented).
    const sbs = BigInt(src.lu.blockSize);
    const dbs = BigInt(dst.lu.blockSize);
    if (bytes % sbs !== 0n || bytes % dbs !== 0n || srcByte % sbs !== 0n || dstByte % dbs !== 0n) {
      abort(Sense.UNEXPECTED_INEXACT_SEGMENT, `${bytes} bytes from byte ${srcByte} to byte ${dstByte} are not whole blocks (${sbs}/${dbs})`);
    }
    // A range past the end: COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE (LIO's code, and one
    // libiscsi's ValidSegDescr accepts), with the device's own LBA OUT OF RANGE forwarded.
    for (const [side, lu, at] of [['source', src.lu, srcByte], ['destination', dst.lu, dstByte]] as const) {
      const end = (at + bytes) / BigInt(lu.blockSize);
      if (end > lu.store.blocks) {
        abort(Sense.COPY_TARGET_DEVICE_NOT_REACHABLE, `${side} blocks ${at / BigInt(lu.blockSize)}..${end} lie past the end (${lu.store.blocks} blocks)`, {
          segmentField: side === 'source' ? 12 : 20,
          forwarded: { source: side, status: ScsiStatus.CHECK_CONDITION, sense: buildSense(Sense.LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE) },
        });
      }
    }
    const why = dst.lu.writeProtection(dst.writeProtect ? { ...ctx.req, writeProtect: true } : undefined);
    if (why !== undefined) {
      abort(Sense.THIRD_PARTY_DEVICE_FAILURE, `destination is write protected (${why.name})`, {
        forwarded: { source: 'destination', status: ScsiStatus.CHECK_CONDITION, sense: buildSense(why) },
      });
    }
    return { src: src.lu, dst: dst.lu, srcByte, dstByte, bytes };
  }

  /**
   * The LU a CSCD descriptor id names: FFFFh is the receiving LU; 0000h–07FFh index the CSCD list
   * and the E4h designator must match a logical-unit designator (code set, designator type,
   * designator) of VPD 83h of a reachable LU. LU ID TYPE and NUL are ignored (SPC-4).
   */
  private resolve(ctx: CommandContext, d: DecodedExtendedCopyLid1, id: number, segment: number, field: number, cache: Map<number, { lu: LogicalUnit; writeProtect: boolean }>): { lu: LogicalUnit; writeProtect: boolean } {
    const hit = cache.get(id);
    if (hit) return hit;
    const notReachable = (message: string): never => {
      // A security event: an initiator named a LUN it may not reach; log who tried to name what.
      this.counters.unreachable++;
      this.log.warn({ initiator: ctx.nexus.initiatorName, lun: ctx.req.lun, segment, cscd_id: id, reason: message }, 'EXTENDED COPY names a logical unit this initiator cannot reach');
      throw new CopyAbortError({ reason: Sense.COPY_TARGET_DEVICE_NOT_REACHABLE, segment, segmentField: field, message });
    };
    let found: { lu: LogicalUnit; writeProtect: boolean } | undefined;
    if (id === CSCD_ID_RECEIVING_LU) {
      found = { lu: ctx.lu, writeProtect: ctx.req.writeProtect === true };
    } else {
      const c = d.cscdDescriptors[id];
      if (c === undefined) notReachable(`CSCD descriptor id ${id} names no descriptor (${d.cscdDescriptors.length} given)`);
      const e4 = c.descriptor as IdentificationCscd;
      if (e4.peripheralDeviceType !== 0x00) {
        throw new CopyAbortError({ reason: Sense.INCORRECT_COPY_TARGET_DEVICE_TYPE, segment, segmentField: field, message: `CSCD ${id} has peripheral device type ${hex(e4.peripheralDeviceType)}h, the logical units here are disks (00h)` });
      }
      found = this.candidates(ctx).find((cand) => matches(cand.lu, ctx.nexus, e4));
      if (found === undefined) notReachable(`no logical unit reachable by ${ctx.nexus.initiatorName} has the designator of CSCD ${id}`);
    }
    cache.set(id, found!);
    return found!;
  }

  private candidates(ctx: CommandContext): Array<{ lu: LogicalUnit; writeProtect: boolean }> {
    const out = [{ lu: ctx.lu, writeProtect: ctx.req.writeProtect === true }];
    for (const x of this.reachable(ctx.nexus)) {
      const r = isReachableLu(x) ? { lu: x.lu, writeProtect: x.writeProtect === true } : { lu: x, writeProtect: false };
      if (r.lu !== ctx.lu) out.push(r);
    }
    return out;
  }

  /**
   * Moves one segment, chunk by chunk, several chunks in flight. Stores that offer a kernel copy
   * to each other (Store.copyRangeTo: file → file, also behind COW filters; same block size, no
   * overlap): copy_file_range, holes kept holes.
   * Otherwise through the buffer pool; a zero-filled source chunk is not written where the
   * destination already reads zeros (unmapped, LBPRZ), and is deallocated instead of written where
   * the destination's unmapped blocks read zeros. Throws CopyAbortError (THIRD PARTY DEVICE
   * FAILURE) on I/O errors, StatusError TASK ABORTED when stopped.
   */
  private async copySegment(ctx: CommandContext, p: SegmentPlan, segment: number, copy: CopyList): Promise<void> {
    const sbs = p.src.blockSize;
    const dbs = p.dst.blockSize;
    const unit = lcm(sbs, dbs);
    const overlap = p.src.store === p.dst.store && p.srcByte < p.dstByte + p.bytes && p.dstByte < p.srcByte + p.bytes;
    const kernelCopy = this.kernelCopy && !overlap && sbs === dbs ? p.src.store.copyRangeTo?.(p.dst.store) : undefined;
    const kernel = kernelCopy !== undefined;
    // Kernel copies need no pool buffer; bigger pieces cost fewer system calls and stay abortable.
    const piece = kernel ? 4 * this.pool.bufferBytes : this.pool.bufferBytes;
    const chunk = BigInt(Math.max(unit, Math.floor(piece / unit) * unit));
    const n = Number((p.bytes + chunk - 1n) / chunk);
    // memmove: with overlap, one chunk at a time, backwards when the destination is above the source.
    const backwards = overlap && p.dstByte > p.srcByte;
    // Kernel copies use the libuv thread pool host I/O also needs: two at a time leave it room.
    const lanes = overlap ? 1 : Math.min(kernel ? 2 : this.inFlight, n);
    const fua = p.dst.forceUnitAccess(false);
    let next = 0;
    let failed: unknown;
    const lane = async (): Promise<void> => {
      while (failed === undefined && next < n) {
        const k = backwards ? n - 1 - next : next;
        next++;
        this.checkStopped(ctx, copy, `in segment ${segment}`);
        const off = BigInt(k) * chunk;
        const len = p.bytes - off < chunk ? p.bytes - off : chunk;
        const srcLba = (p.srcByte + off) / BigInt(sbs);
        const dstLba = (p.dstByte + off) / BigInt(dbs);
        const dstBlocks = len / BigInt(dbs);
        // The destination may refuse the kernel copy now (a COW-filtered one while a snapshot
        // captures it); then the chunk takes the pool.
        let copied = false;
        if (kernelCopy) {
          try {
            copied = await p.dst.locks.with(dstLba, dstBlocks, () => kernelCopy(srcLba, dstLba, dstBlocks, { fua }));
          } catch (err) {
            throw ioAbort(err, sideOfKernelCopyError(err), segment);
          }
          if (copied) this.counters.kernelCopiedBytes += len;
        }
        if (!copied) {
          // Through the pool, one buffer at a time (a kernel-sized chunk is several buffers).
          const step = BigInt(Math.max(unit, Math.floor(this.pool.bufferBytes / unit) * unit));
          for (let o = 0n; o < len; o += step) {
            const n = len - o < step ? len - o : step;
            await this.copyThroughPool(p, srcLba + o / BigInt(sbs), dstLba + o / BigInt(dbs), n, fua, segment);
          }
        }
        copy.bytes += len;
        this.counters.bytes += len;
      }
    };
    await Promise.allSettled(
      Array.from({ length: lanes }, () =>
        lane().catch((err: unknown) => {
          failed ??= err;
        }),
      ),
    );
    if (failed !== undefined) throw failed;
  }

  /** One buffer's worth: read, then write (or deallocate, for zeros onto a destination that reads zeros). */
  private async copyThroughPool(p: SegmentPlan, srcLba: bigint, dstLba: bigint, len: bigint, fua: boolean, segment: number): Promise<void> {
    const dstBlocks = len / BigInt(p.dst.blockSize);
    const buf = await this.pool.acquire();
    try {
      let data: Buffer;
      try {
        data = await p.src.store.read(srcLba, Number(len / BigInt(p.src.blockSize)), buf);
      } catch (err) {
        throw ioAbort(err, 'source', segment);
      }
      try {
        if (this.zeroSkip && isAllZero(data) && p.dst.store.unmapReadsZero) {
          await p.dst.locks.with(dstLba, dstBlocks, () => this.zeroOnto(p.dst.store, dstLba, dstBlocks, fua));
          this.counters.zeroSkippedBytes += len;
        } else {
          await p.dst.locks.with(dstLba, dstBlocks, () => p.dst.store.write(dstLba, data, { fua }));
        }
      } catch (err) {
        throw ioAbort(err, 'destination', segment);
      }
    } finally {
      this.pool.release(buf);
    }
  }

  /**
   * Zeros onto a destination whose unmapped blocks read back zeros: nothing to do where it is
   * unmapped already (GET LBA STATUS / SEEK_HOLE says so); elsewhere deallocate, which keeps a
   * thin destination thin. Made durable when the copy asks for FUA.
   */
  private async zeroOnto(dst: Store, lba: bigint, count: bigint, fua: boolean): Promise<void> {
    const extents = await dst.extents(lba, count);
    const mapped = extents.filter((e) => e.mapped);
    for (const e of mapped) await dst.unmap(e.lba, e.blocks);
    if (fua && mapped.length > 0) await dst.flush();
  }

  // -------------------------------------------------------------------------------------------
  // RECEIVE COPY RESULTS: THIRD-PARTY COPY IN, SPC-4 r37 6.22, 6.23, 6.25 (SPC-3 r23 6.17)
  // -------------------------------------------------------------------------------------------

  async receiveCopyResults(ctx: CommandContext): Promise<CommandResult> {
    const { lu, cdb, nexus } = ctx;
    const { serviceAction: sa, listIdentifier: listId, allocationLength } = decodeReceiveCopyResultsCdb(cdb);
    let data: Buffer;
    switch (sa) {
      case 0x03:
        data = encodeOperatingParameters(this.operatingParameters());
        break;
      case 0x00: {
        // COPY STATUS (LID1): a list this I_T nexus used with LIST ID USAGE 00b or 10b.
        const { lists, l } = this.heldList(lu, nexus, listId);
        const tc = bytesToTransferCount(l.bytes);
        data = encodeCopyStatusLid1({
          hdd: false,
          copyManagerStatus: l.state === 'running' ? CopyManagerStatus.IN_PROGRESS : l.state === 'completed' ? CopyManagerStatus.COMPLETED_WITHOUT_ERRORS : CopyManagerStatus.COMPLETED_WITH_ERRORS,
          segmentsProcessed: Math.min(l.segmentsProcessed, 0xffff),
          transferCountUnits: tc.transferCountUnits,
          transferCount: tc.transferCount,
        });
        // The final status of a successful copy is reported once (as CTL); a failed one stays
        // for FAILED SEGMENT DETAILS.
        if (l.state === 'completed') lists.delete(listId);
        break;
      }
      case 0x04: {
        const { lists, l } = this.heldList(lu, nexus, listId);
        if (l.state === 'failed' && l.failure !== undefined) {
          data = encodeFailedSegmentDetails({ copyCommandStatus: l.failure.status, senseData: l.failure.sense });
          lists.delete(listId);
        } else {
          data = encodeFailedSegmentDetails();
        }
        break;
      }
      default:
        throw invalidCdbField(1, 4, `RECEIVE COPY RESULTS service action ${hex(sa)}h is not supported`);
    }
    return { data: data.subarray(0, Math.min(data.length, allocationLength)) };
  }
}

// ---------------------------------------------------------------------------------------------

function fieldError(paramByte: number, bit: number | undefined, message: string): SenseError {
  return new SenseError(Sense.INVALID_FIELD_IN_PARAMETER_LIST, { field: { paramByte, bit } }, message);
}

/** SPC-4 r37 6.4.5.6: the E4h fields we can act on. */
function checkCscdFields(c: DecodedCscd): void {
  const e = c.descriptor as IdentificationCscd;
  if (e.codeSet < 1 || e.codeSet > 3) throw fieldError(c.offset + 4, 3, `CODE SET ${e.codeSet} is reserved`);
  if (e.association !== Association.LOGICAL_UNIT) throw fieldError(c.offset + 5, 5, 'ASSOCIATION must be 00b (logical unit)');
  if (e.designatorLength === undefined || e.designatorLength === 0 || e.designatorLength > 20) {
    throw fieldError(c.offset + 7, 7, `DESIGNATOR LENGTH ${e.designatorLength ?? 0} is not 1..20`);
  }
}

function checkSegmentFields(s: DecodedSegment, maxSegmentLength: number): void {
  const d = s.descriptor;
  if (d.kind === 'raw') throw fieldError(s.offset + 2, 7, `DESCRIPTOR LENGTH ${s.descriptorLength} is wrong for segment type ${hex(s.typeCode)}h`);
  if (d.kind !== 'blockToBlock' && d.kind !== 'blockOffsetToBlockOffset') throw fieldError(s.offset, 7, 'unsupported segment');
  for (const [id, at] of [[d.sourceCscdDescriptorId, 4], [d.destinationCscdDescriptorId, 6]] as const) {
    if (id > CSCD_ID_INDEX_MAX && id !== CSCD_ID_RECEIVING_LU) throw fieldError(s.offset + at, 7, `CSCD DESCRIPTOR ID ${hex(id, 4)}h is not supported`);
  }
  if (d.kind === 'blockOffsetToBlockOffset' && d.numberOfBytes > maxSegmentLength) {
    throw fieldError(s.offset + 8, 7, `NUMBER OF BYTES ${d.numberOfBytes} exceeds MAXIMUM SEGMENT LENGTH ${maxSegmentLength}`);
  }
}

/** The block length a CSCD's addresses are in: its DISK BLOCK LENGTH, or the LU's when 0 (as CTL). */
function blockLengthOf(d: DecodedExtendedCopyLid1, id: number, lu: LogicalUnit): number {
  if (id === CSCD_ID_RECEIVING_LU) return lu.blockSize;
  const p = (d.cscdDescriptors[id].descriptor as IdentificationCscd).deviceTypeSpecific;
  return p.kind === 'block' && p.diskBlockLength !== 0 ? p.diskBlockLength : lu.blockSize;
}

/** Does the E4h designator name `lu`? Compared with its VPD 83h logical-unit designators. */
function matches(lu: LogicalUnit, nexus: ItNexus, e4: IdentificationCscd): boolean {
  return deviceDesignators(lu, nexus).some(
    (x) =>
      x.association === Association.LOGICAL_UNIT &&
      x.codeSet === e4.codeSet &&
      x.designatorType === e4.designatorType &&
      x.designator.length === e4.designatorLength &&
      x.designator.equals(e4.designator),
  );
}

/** An I/O failure → COPY ABORTED, THIRD PARTY DEVICE FAILURE, with the device's sense forwarded. */
function ioAbort(err: unknown, side: 'source' | 'destination', segment: number): unknown {
  if (!(err instanceof StoreError)) return err; // a bug: INTERNAL TARGET FAILURE
  const mapped = senseOfStoreError(err);
  const forwarded: ForwardedSense =
    mapped instanceof SenseError
      ? { source: side, status: ScsiStatus.CHECK_CONDITION, sense: buildSense(mapped.reason, mapped.details) }
      : { source: side, status: mapped.status, sense: mapped.sense };
  return new CopyAbortError({ reason: Sense.THIRD_PARTY_DEVICE_FAILURE, segment, forwarded, message: `${side} failed: ${err.message}` });
}

/** copy_file_range does not say which file failed: no space or read-only is the destination's. */
function sideOfKernelCopyError(err: unknown): 'source' | 'destination' {
  if (!(err instanceof StoreError)) return 'source';
  const k = err.failure.kind;
  return k === 'write-error' || k === 'no-space' || k === 'write-protected' ? 'destination' : 'source';
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}

function hex(n: number, width = 2): string {
  return n.toString(16).toUpperCase().padStart(width, '0');
}

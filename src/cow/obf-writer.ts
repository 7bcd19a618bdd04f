/**
 * Appends records to an OBF log (docs/obf-format.md) with group commit: records queued while a
 * commit is in flight go together in the next one — one FUA write of the contiguous records — so
 * many first writes share one durability wait (the first-write penalty that makes dm-snapshot
 * slow). A record is durable when its promise resolves.
 *
 * Positions are given out at commit time, in queue order, so the log has no holes. Space for a
 * MARKER and a SEAL (one block each) is always kept free, so a full OBF can still be sealed.
 */
import { AgentError } from '../errors';
import { newCaptureChain, takeCaptureTicket, type CaptureChain } from '../native/fileops';
import type { BackingFile, Store } from '../store/store';
import { CaptureReadError, commitCaptures, type HostWriteOutcome, type SourceHostWrite } from './capture-commit';
import { MAX_CAPTURE_RUN_BYTES } from './chunk-table';
import {
  encodeDataRecordHeader,
  encodeDataRecordHeaderWithoutCrc,
  encodeMarkerRecord,
  encodeSealRecord,
  encodeSuperblock,
  OBF_RECORD_CRC_OFFSET,
  type RollingHash,
  type ObfSuperblock,
} from '../obf/format';

export class ObfFullError extends AgentError {
  constructor(message: string) {
    super('ERR_OBF_FULL', message);
  }
}

/** The original of a chunk could not be read from the source. */
export class SourceReadError extends AgentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SOURCE_READ', message, options);
  }
}

export class ObfIoError extends AgentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_OBF_IO', message, options);
  }
}

/** Where a committed DATA record's data lies in the OBF. */
export interface CommittedRecord {
  sequence: bigint;
  /** First data block (the header is the block before). */
  dataLba: bigint;
  /** The host write the capture carried (appendCapture), once the commit is durable. */
  host?: HostWriteOutcome;
}

interface Pending {
  kind: 'data' | 'marker' | 'seal';
  /** The data is all zeros (an unmapped original): where the OBF reads zeros, it is not written. */
  zero?: boolean;
  /** The data's CRC32C when the reader computed it (then the data is not read again here). */
  dataCrc?: number;
  /** A capture whose original the commit itself reads (appendCapture): no `data` yet. */
  capture?: boolean;
  sourceLba?: bigint;
  sourceBlocks?: number;
  data?: Buffer;
  /** The change that needed this capture, made by the commit once durable (appendCapture). */
  host?: SourceHostWrite;
  resolve: (r: CommittedRecord) => void;
  reject: (err: unknown) => void;
}

export interface ObfAppenderState {
  endLba: bigint;
  nextSequence: bigint;
  dataRecords: bigint;
  dataBytes: bigint;
  rolling: RollingHash;
  markerSequence: bigint;
}

export class ObfAppender {
  readonly store: Store;
  sb: ObfSuperblock;
  /** What is durable: the log up to endLba, its counts and rolling hash. */
  private st: ObfAppenderState;
  /** Where the next prepared commit goes (ahead of `st` while commits are in flight). */
  private res: { endLba: bigint; nextSequence: bigint; dataRecords: bigint; dataBytes: bigint };
  private queue: Pending[] = [];
  /** Commits between prepare and their outcome; at most `depth`. */
  private inFlight = 0;
  /** Resolves with true when every commit started so far succeeded, in order. */
  private tail: Promise<boolean> = Promise.resolve(true);
  /** A commit failed: nothing new starts until those in flight settle, then positions reset. */
  private broken = false;
  /**
   * A commit that also zeros given-up blocks is in flight: nothing else starts until it ends, or
   * a later batch placed inside the zeroed range could be overwritten by them.
   */
  private scrubbing = false;
  /** The failure being handled is a source read: records of failed commits are retried, not failed. */
  private requeueAfterFailure = false;
  /** Records to queue again (in order) once the commits in flight have settled. */
  private retry: Pending[] = [];
  /**
   * After a failure, blocks [st.endLba, scrubTo) may hold records that were written but not kept:
   * the next commit zeros them (after its own records), so a scan never takes them for the log.
   */
  private scrubTo = 0n;
  private idleWaiters: Array<() => void> = [];
  /** Most bytes per commit. */
  private readonly maxBatchBytes: number;
  /**
   * Commits in flight at once (3): a batch's write overlaps the ones before it (first writes are
   * bound by commit latency, not by the disk's bandwidth: bench:cow), and one of libuv's 4 pool
   * threads stays free for the rest of the target's file I/O.
   */
  private readonly depth: number;
  /** Records queued before a commit may overlap another's flush. */
  private readonly minOverlapRecords: number;
  /** Commits done (for status and tests). */
  commits = 0;
  /**
   * appendCapture's source and this OBF's file, when commits read the originals themselves, and
   * the chain that orders those commits for the host writes they carry.
   */
  private captures?: { source: BackingFile; obf: BackingFile; spare: Buffer[]; chain: CaptureChain };
  /** Commits in flight that are not on the capture chain (their own writes from here). */
  private plainInFlight = 0;

  constructor(store: Store, sb: ObfSuperblock, state: ObfAppenderState, opts: { maxBatchBytes?: number; depth?: number; minOverlapRecords?: number } = {}) {
    this.store = store;
    this.sb = sb;
    this.st = state;
    this.res = { endLba: state.endLba, nextSequence: state.nextSequence, dataRecords: state.dataRecords, dataBytes: state.dataBytes };
    this.maxBatchBytes = opts.maxBatchBytes ?? 8 * 1024 * 1024;
    this.depth = opts.depth ?? 3;
    this.minOverlapRecords = opts.minOverlapRecords ?? 8;
  }

  get state(): Readonly<ObfAppenderState> {
    return this.st;
  }

  /** Blocks of the log in use, superblock included: [0, endLba) is the used OBF. */
  get usedBlocks(): bigint {
    return this.st.endLba;
  }

  /**
   * Appends the original `data` of `sourceBlocks` source blocks at `sourceLba`; resolves when
   * durable. `zero`: the data is all zeros; `dataCrc`: its CRC32C, when already computed.
   */
  appendData(sourceLba: bigint, sourceBlocks: number, data: Buffer, opts: { zero?: boolean; dataCrc?: number } = {}): Promise<CommittedRecord> {
    return this.enqueue({ kind: 'data', sourceLba, sourceBlocks, data, zero: opts.zero === true && this.zeroElision, dataCrc: opts.dataCrc });
  }

  /**
   * Lets commits read the originals themselves (appendCapture) when the source is a file itself
   * (the store below its COW filter, not a filter: the commits carry hosts' writes to it), this
   * OBF stands on a file (Store.backingFile) and zero data is written (no deallocated gaps): then
   * one thread-pool job per commit reads the originals, stores the record CRCs and writes the log
   * (capture-commit.ts), and a capture costs the event loop no read round trip of its own. True
   * when set up.
   */
  readOriginalsFrom(source: Store): boolean {
    const file = source.backingFile?.();
    const obf = this.store.backingFile?.();
    if (file === undefined || (file as object) !== source || obf === undefined || this.zeroElision) return false;
    this.captures = { source: file, obf, spare: [], chain: newCaptureChain() };
    return true;
  }

  /** Lets the pooled capture buffers go (capturing has ended). */
  releaseBuffers(): void {
    if (this.captures) this.captures.spare = [];
  }

  /**
   * Appends the original of `sourceBlocks` source blocks at `sourceLba` (at most
   * MAX_CAPTURE_RUN_BYTES, or a chunk where chunks are larger), read by the commit itself (see
   * readOriginalsFrom); resolves when durable. `host`: the change
   * that needs this capture, made on the source by the commit's job as soon as the record and
   * every one before it are durable (the result's `host` tells whether it was: 'not-written'
   * when the commit could not carry it, and the caller makes it).
   */
  appendCapture(sourceLba: bigint, sourceBlocks: number, host?: SourceHostWrite): Promise<CommittedRecord> {
    if (!this.captures) return Promise.reject(new Error('appendCapture needs readOriginalsFrom first'));
    const bytes = sourceBlocks * this.captures.source.blockSize;
    const most = Math.max(this.sb.chunkSize, MAX_CAPTURE_RUN_BYTES);
    if (!Number.isInteger(sourceBlocks) || sourceBlocks < 1 || bytes > most || bytes % this.sb.blockSize !== 0) {
      return Promise.reject(new RangeError(`a capture is 1 to ${most / this.captures.source.blockSize} source blocks filling whole OBF blocks, not ${sourceBlocks}`));
    }
    return this.enqueue({ kind: 'data', sourceLba, sourceBlocks, capture: true, host });
  }

  /** File and memory OBFs read zeros where unmapped: zero data is deallocated there, not written. */
  private get zeroElision(): boolean {
    return this.store.unmapReadsZero && (this.store.kind === 'file' || this.store.kind === 'memory');
  }

  appendMarker(): Promise<CommittedRecord> {
    return this.enqueue({ kind: 'marker' });
  }

  appendSeal(): Promise<CommittedRecord> {
    return this.enqueue({ kind: 'seal' });
  }

  /** Nothing queued, nothing in flight. */
  get idleNow(): boolean {
    return this.inFlight === 0 && this.queue.length === 0;
  }

  /** Resolves when everything queued so far is committed (or failed). */
  idle(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Rewrites the superblock (generation + 1) and flushes it. */
  async writeSuperblock(update: Partial<ObfSuperblock>): Promise<void> {
    const next: ObfSuperblock = { ...this.sb, ...update, generation: this.sb.generation + 1n, updatedTimeMs: Date.now() };
    try {
      await this.store.write(0n, encodeSuperblock(next), { fua: true });
    } catch (err) {
      throw new ObfIoError(`OBF superblock write failed: ${(err as Error).message}`, { cause: err });
    }
    this.sb = next;
  }

  private enqueue(p: Omit<Pending, 'resolve' | 'reject'>): Promise<CommittedRecord> {
    return new Promise<CommittedRecord>((resolve, reject) => {
      this.queue.push({ ...p, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    // A second commit overlaps the first's flush only with a batch worth a flush of its own;
    // otherwise the records wait and join a fuller batch (fewer flushes for big records).
    while (!this.broken && !this.scrubbing && this.inFlight < this.depth && this.queue.length > (this.inFlight === 0 ? 0 : this.minOverlapRecords)) {
      const batch = this.prepare();
      if (!batch) break;
      void this.commit(batch);
    }
    if (this.inFlight === 0 && this.queue.length === 0 && this.idleWaiters.length > 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  /**
   * Takes queued records into one batch at the reserved positions: header blocks encoded (CRC
   * over header and data), OBF-full records refused. A SEAL waits until nothing is in flight and
   * goes first in its batch, so its counts and rolling hash are those of the durable log.
   */
  private prepare(): Batch | undefined {
    const B = this.sb.blockSize;
    const startLba = this.res.endLba;
    const placed: Placed[] = [];
    const runs: Run[] = [];
    const gaps: Array<{ lba: bigint; blocks: bigint }> = [];
    const reads: CaptureRead[] = [];
    const hosts: SourceHostWrite[] = [];
    const push = (at: bigint, buf: Buffer) => {
      const last = runs[runs.length - 1];
      if (last && last.lba + BigInt(last.bytes / B) === at) {
        last.pieces.push(buf);
        last.bytes += buf.length;
      } else runs.push({ lba: at, pieces: [buf], bytes: buf.length });
    };
    let lba = startLba;
    let seq = this.res.nextSequence;
    let dataRecords = this.res.dataRecords;
    let dataBytes = this.res.dataBytes;
    let bytes = 0;
    const reserve = 2n; // MARKER + SEAL
    while (this.queue.length > 0 && (placed.length === 0 || bytes < this.maxBatchBytes)) {
      const p = this.queue[0];
      const common = { sequence: seq, snapshotId: this.sb.snapshotId, timeMs: Date.now() };
      if (p.kind === 'seal' && (placed.length > 0 || this.inFlight > 0)) break;
      this.queue.shift();
      if (p.kind === 'data') {
        const length = p.capture ? p.sourceBlocks! * this.captures!.source.blockSize : p.data!.length;
        const blocks = 1n + BigInt(length / B);
        if (lba + blocks + reserve > this.sb.capacityBlocks) {
          p.reject(new ObfFullError(`OBF full: a ${length}-byte record does not fit at block ${lba} of ${this.sb.capacityBlocks}`));
          continue;
        }
        const fields = { ...common, sourceLba: p.sourceLba!, sourceBlocks: p.sourceBlocks! };
        const rec = { sequence: seq, dataLba: lba + 1n };
        if (p.capture) {
          // The commit reads the original into `into` and stores the CRC in the header.
          const header = encodeDataRecordHeaderWithoutCrc(fields, length, this.sb);
          // Pooled buffers are a chunk each; a run of chunks gets one of its own.
          const buf = length > this.sb.chunkSize ? Buffer.allocUnsafe(length) : (this.captures!.spare.pop() ?? Buffer.allocUnsafe(this.sb.chunkSize));
          const into = buf.subarray(0, length);
          push(lba, header);
          push(lba + 1n, into);
          reads.push({ lba: p.sourceLba!, into, header });
          const x: Placed = { p, rec, bytes: BigInt(length), read: reads.length - 1, buf };
          // A host write goes with the commit only when every commit before it in flight is on
          // the chain (a plain one's outcome the job cannot wait for); else the caller makes it.
          if (p.host && this.plainInFlight === 0) {
            hosts.push(p.host);
            x.host = hosts.length - 1;
          }
          placed.push(x);
        } else {
          const header = encodeDataRecordHeader(fields, p.data!, this.sb, p.dataCrc);
          push(lba, header);
          if (p.zero) gaps.push({ lba: lba + 1n, blocks: blocks - 1n });
          else push(lba + 1n, p.data!);
          placed.push({ p, rec, crc: header.readUInt32BE(OBF_RECORD_CRC_OFFSET), bytes: BigInt(length) });
        }
        lba += blocks;
        bytes += B + length;
        dataRecords++;
        dataBytes += BigInt(length);
      } else {
        if (lba + 1n > this.sb.capacityBlocks) {
          p.reject(new ObfFullError(`OBF full: no room for the ${p.kind.toUpperCase()} record`));
          continue;
        }
        const block =
          p.kind === 'marker'
            ? encodeMarkerRecord({ ...common, dataRecordsBefore: dataRecords, dataBytesBefore: dataBytes }, this.sb)
            : encodeSealRecord(
                { ...common, dataRecordCount: this.st.dataRecords, dataBytes: this.st.dataBytes, rollingHash: this.st.rolling.digest(), markerSequence: this.st.markerSequence },
                this.sb,
              );
        push(lba, block);
        placed.push({ p, rec: { sequence: seq, dataLba: lba + 1n }, bytes: 0n });
        lba += 1n;
        bytes += B;
      }
      seq++;
      if (p.kind === 'seal') break; // nothing follows a SEAL
    }
    if (placed.length === 0) return undefined;
    this.res = { endLba: lba, nextSequence: seq, dataRecords, dataBytes };
    let scrubbed = false;
    if (this.scrubTo > lba) {
      const zeros = Buffer.alloc(Number(this.scrubTo - lba) * B);
      push(lba, zeros);
      bytes += zeros.length;
      scrubbed = true;
    }
    return { startLba, endLba: lba, endSeq: seq, placed, scrubbed, runs, gaps, reads, hosts };
  }

  /**
   * One batch: FUA writes (durable when they return; a file store uses one O_DSYNC write, a
   * remote LUN WRITE with FUA), a flush only for deallocated gaps — or, for captures whose
   * originals the commit reads (appendCapture), one thread-pool job that reads them, stores
   * their CRCs and writes the runs. Up to `depth` batches are in flight at once when enough
   * records wait; outcomes settle in commit order.
   */
  private async commit(b: Batch): Promise<void> {
    this.started(b);
    const previous = this.tail;
    let settle!: (ok: boolean) => void;
    this.tail = new Promise<boolean>((r) => (settle = r));
    const { error, unreadable } = await this.writeBatch(b);
    const earlierOk = await previous;
    const ok = earlierOk && error === undefined;
    settle(ok);
    if (ok) this.kept(b);
    else this.notKept(b, error, unreadable);
    this.finished(b);
    this.kick();
  }

  /** A batch is in flight. */
  private started(b: Batch): void {
    this.inFlight++;
    if (b.reads.length === 0) this.plainInFlight++;
    if (b.scrubbed) this.scrubbing = true;
  }

  /**
   * Makes the batch durable: the capture job (or the plain writes), the deallocated gaps and
   * their flush. Returns what failed (`error` undefined when nothing did) and, when the source
   * failed a capture's read, which capture; a failure marks the appender broken.
   */
  private async writeBatch(b: Batch): Promise<{ error: unknown; unreadable?: Placed }> {
    let error: unknown;
    let unreadable: Placed | undefined;
    try {
      if (b.reads.length > 0) await this.runCaptureJob(b);
      if (b.gaps.length > 0) await this.deallocateGaps(b);
      await this.writeRuns(b);
    } catch (err) {
      if (err instanceof CaptureReadError) {
        // The source failed, not the OBF: the capture whose read failed fails alone; the other
        // records of this batch and of those after it go back to the queue (nothing of theirs
        // reached the source yet).
        error = new SourceReadError(`reading originals for the OBF: ${err.message}`, { cause: err });
        unreadable = err.index === undefined ? undefined : b.placed.find((x) => x.read === err.index);
        if (unreadable && !this.broken) this.requeueAfterFailure = true;
      } else error = err;
    }
    if (error !== undefined) this.broken = true;
    // Deallocated gaps (zero records) are made durable by a flush; FUA covered the rest.
    if (error === undefined && b.gaps.length > 0) {
      try {
        await this.store.flush();
      } catch (err) {
        error = err;
        this.broken = true;
      }
    }
    return { error, unreadable };
  }

  /**
   * One job reads the originals, stores their records' CRCs and writes every run durably, then
   * (in chain order, when all before are durable) the host writes it carries.
   */
  private async runCaptureJob(b: Batch): Promise<void> {
    // The ticket is taken here, in commit order, before anything of this commit can fail.
    const c = this.captures!;
    const order = { chain: c.chain, ticket: takeCaptureTicket(c.chain) };
    // A batch with deallocated gaps (zero records) is durable only after the unmaps and the
    // flush below: its job must not make host writes (they stay the callers').
    const done = await commitCaptures(c.obf, c.source, b.reads, b.runs, { order, hosts: b.gaps.length === 0 ? b.hosts : [] });
    for (const x of b.placed) {
      if (x.read !== undefined) x.crc = done.crcs[x.read];
      if (x.host !== undefined) x.rec.host = done.hosts[x.host];
    }
  }

  /** Zero data of unmapped originals: deallocated where the OBF still holds something there. */
  private async deallocateGaps(b: Batch): Promise<void> {
    for (const g of b.gaps) {
      const ex = await this.store.extents(g.lba, g.blocks);
      for (const e of ex) if (e.mapped) await this.store.unmap(e.lba, e.blocks);
    }
  }

  /**
   * FUA writes of a plain batch's runs (a capture batch's job wrote its own): durable when they
   * return (file stores: one O_DSYNC write, no separate flush). Pieces go gathered (pwritev)
   * where the store can, without copying them together. Every write ends before the commit
   * settles, failed or not: a write still running after its commit failed could land a record
   * where the next commit reuses the blocks.
   */
  private async writeRuns(b: Batch): Promise<void> {
    const outcomes = await Promise.allSettled(
      (b.reads.length > 0 ? [] : b.runs).map((r) =>
        r.pieces.length > 1 && this.store.writev
          ? this.store.writev(r.lba, r.pieces, { fua: true })
          : this.store.write(r.lba, r.pieces.length === 1 ? r.pieces[0] : Buffer.concat(r.pieces, r.bytes), { fua: true }),
      ),
    );
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** The batch and every one before it are durable: the log grows by it, its records resolve. */
  private kept(b: Batch): void {
    this.commits++;
    for (const x of b.placed) {
      if (x.crc !== undefined) {
        this.st.rolling.update(x.crc);
        this.st.dataRecords++;
        this.st.dataBytes += x.bytes;
      }
      if (x.p.kind === 'marker') this.st.markerSequence = x.rec.sequence;
    }
    this.st.endLba = b.endLba;
    this.st.nextSequence = b.endSeq;
    if (b.scrubbed) this.scrubTo = 0n;
    for (const x of b.placed) {
      if (x.p.host && x.rec.host === undefined) x.rec.host = 'not-written';
      x.p.resolve(x.rec);
    }
  }

  /**
   * The batch, or one before it, failed (`error`: this batch's failure, if it had one): its
   * records fail — or, after a source read failure, only the unreadable capture fails and the
   * rest is queued again.
   */
  private notKept(b: Batch, error: unknown, unreadable: Placed | undefined): void {
    if (this.requeueAfterFailure && (unreadable !== undefined || error === undefined)) {
      for (const x of b.placed) {
        if (x === unreadable) x.p.reject(error);
        else this.retry.push(x.p);
      }
      return;
    }
    const e =
      error instanceof SourceReadError
        ? error
        : new ObfIoError(
            error !== undefined ? `OBF write at block ${b.startLba} failed: ${(error as Error).message}` : `an earlier OBF commit failed; records from block ${b.startLba} were not kept`,
            { cause: error },
          );
    for (const x of b.placed) x.p.reject(e);
  }

  /** The batch is out of flight: its capture buffers are free again (written, or given up). */
  private finished(b: Batch): void {
    if (this.captures) {
      for (const x of b.placed) if (x.buf?.length === this.sb.chunkSize && (this.captures.spare.length + 1) * this.sb.chunkSize <= SPARE_CAPTURE_BYTES) this.captures.spare.push(x.buf);
    }
    this.inFlight--;
    if (b.reads.length === 0) this.plainInFlight--;
    if (b.scrubbed) this.scrubbing = false;
    if (this.broken && this.inFlight === 0) this.restartAfterFailure();
  }

  /**
   * Everything after the durable log is given up: later batches start where it ends, and the
   * first of them zeros what the given-up batches may have left on the OBF.
   */
  private restartAfterFailure(): void {
    if (this.res.endLba > this.scrubTo) this.scrubTo = this.res.endLba;
    this.res = { endLba: this.st.endLba, nextSequence: this.st.nextSequence, dataRecords: this.st.dataRecords, dataBytes: this.st.dataBytes };
    this.tail = Promise.resolve(true);
    // A failed commit stops the chain's host writes for good: later commits start a new one.
    if (this.captures) this.captures.chain = newCaptureChain();
    this.broken = false;
    this.requeueAfterFailure = false;
    if (this.retry.length > 0) {
      this.queue.unshift(...this.retry);
      this.retry = [];
    }
  }
}

interface Placed {
  p: Pending;
  rec: CommittedRecord;
  /** The record CRC (of a capture: once its commit has read the original). */
  crc?: number;
  bytes: bigint;
  /** A capture: its index in the batch's reads, and the pooled buffer its original is read into. */
  read?: number;
  buf?: Buffer;
  /** Its host write's index in the batch's hosts, when the commit carries it. */
  host?: number;
}

/** A capture's original to read in its commit (commitCaptures). */
interface CaptureRead {
  lba: bigint;
  into: Buffer;
  header: Buffer;
}

/** Bytes of capture buffers (a chunk each) kept for reuse. */
const SPARE_CAPTURE_BYTES = 8 * 1024 * 1024;

interface Run {
  lba: bigint;
  pieces: Buffer[];
  bytes: number;
}

interface Batch {
  /** The batch's write also zeros blocks given up after a failure. */
  scrubbed: boolean;
  startLba: bigint;
  endLba: bigint;
  endSeq: bigint;
  placed: Placed[];
  /** Contiguous pieces to write (headers, data, zeros), one write each. */
  runs: Run[];
  /** Data blocks of zero records, to read back zeros (deallocated where mapped). */
  gaps: Array<{ lba: bigint; blocks: bigint }>;
  /** Originals the commit reads itself (appendCapture). */
  reads: CaptureRead[];
  /** Host writes the commit makes once durable (appendCapture). */
  hosts: SourceHostWrite[];
}

/**
 * Appends records to an OBF log (docs/obf-format.md) with group commit: records queued while a
 * commit is in flight go together in the next one — one write of the contiguous records, then
 * one flush — so many first writes share one durability wait (the first-write penalty that makes
 * dm-snapshot slow). A record is durable when its promise resolves.
 *
 * Positions are given out at commit time, in queue order, so the log has no holes. Space for a
 * MARKER and a SEAL (one block each) is always kept free, so a full OBF can still be sealed.
 */
import type { Store } from '../store/store';
import {
  encodeDataRecordHeader,
  encodeMarkerRecord,
  encodeSealRecord,
  encodeSuperblock,
  type RollingHash,
  type ObfSuperblock,
} from './obf-format';

export class ObfFullError extends Error {
  constructor(message: string) {
    super(message);
    Object.defineProperty(this, 'name', { value: 'ObfFullError', enumerable: false });
  }
}

export class ObfIoError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    Object.defineProperty(this, 'name', { value: 'ObfIoError', enumerable: false });
  }
}

/** Where a committed DATA record's data lies in the OBF. */
export interface CommittedRecord {
  sequence: bigint;
  /** First data block (the header is the block before). */
  dataLba: bigint;
}

interface Pending {
  kind: 'data' | 'marker' | 'seal';
  sourceLba?: bigint;
  sourceBlocks?: number;
  data?: Buffer;
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
  private st: ObfAppenderState;
  private queue: Pending[] = [];
  private committing: Promise<void> | undefined;
  /** Most bytes per commit. */
  private readonly maxBatchBytes: number;
  /** Commits done (for status and tests). */
  commits = 0;

  constructor(store: Store, sb: ObfSuperblock, state: ObfAppenderState, opts: { maxBatchBytes?: number } = {}) {
    this.store = store;
    this.sb = sb;
    this.st = state;
    this.maxBatchBytes = opts.maxBatchBytes ?? 8 * 1024 * 1024;
  }

  get state(): Readonly<ObfAppenderState> {
    return this.st;
  }

  /** Blocks of the log in use, superblock included: [0, endLba) is the used OBF. */
  get usedBlocks(): bigint {
    return this.st.endLba;
  }

  /** Appends the original `data` of `sourceBlocks` source blocks at `sourceLba`; resolves when durable. */
  appendData(sourceLba: bigint, sourceBlocks: number, data: Buffer): Promise<CommittedRecord> {
    return this.enqueue({ kind: 'data', sourceLba, sourceBlocks, data });
  }

  appendMarker(): Promise<CommittedRecord> {
    return this.enqueue({ kind: 'marker' });
  }

  appendSeal(): Promise<CommittedRecord> {
    return this.enqueue({ kind: 'seal' });
  }

  /** Resolves when everything queued so far is committed (or failed). */
  async idle(): Promise<void> {
    while (this.committing || this.queue.length > 0) {
      if (!this.committing) this.kick();
      await this.committing?.catch(() => undefined);
    }
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
    if (this.committing || this.queue.length === 0) return;
    this.committing = this.commit().finally(() => {
      this.committing = undefined;
      this.kick();
    });
  }

  /** One group commit: as many queued records as fit the batch, one write, one flush. */
  private async commit(): Promise<void> {
    const B = this.sb.blockSize;
    const batch: Pending[] = [];
    const pieces: Buffer[] = [];
    const placed: Array<{ p: Pending; rec: CommittedRecord; crc?: number; bytes: bigint }> = [];
    let lba = this.st.endLba;
    let seq = this.st.nextSequence;
    let bytes = 0;
    const reserve = 2n; // MARKER + SEAL
    while (this.queue.length > 0 && (batch.length === 0 || bytes < this.maxBatchBytes)) {
      const p = this.queue.shift()!;
      const headerFields = { sequence: seq, snapshotId: this.sb.snapshotId, timeMs: Date.now() };
      if (p.kind === 'data') {
        const blocks = 1n + BigInt(p.data!.length / B);
        if (lba + blocks + reserve > this.sb.capacityBlocks) {
          p.reject(new ObfFullError(`OBF full: a ${p.data!.length}-byte record does not fit at block ${lba} of ${this.sb.capacityBlocks}`));
          continue;
        }
        const header = encodeDataRecordHeader({ ...headerFields, sourceLba: p.sourceLba!, sourceBlocks: p.sourceBlocks! }, p.data!, this.sb);
        pieces.push(header, p.data!);
        placed.push({ p, rec: { sequence: seq, dataLba: lba + 1n }, crc: header.readUInt32BE(124), bytes: BigInt(p.data!.length) });
        lba += blocks;
        bytes += header.length + p.data!.length;
      } else if (p.kind === 'marker') {
        if (lba + 1n > this.sb.capacityBlocks) {
          p.reject(new ObfFullError('OBF full: no room for the MARKER record'));
          continue;
        }
        const dataBefore = this.st.dataRecords + BigInt(placed.filter((x) => x.crc !== undefined).length);
        const bytesBefore = this.st.dataBytes + placed.reduce((n, x) => n + x.bytes, 0n);
        pieces.push(encodeMarkerRecord({ ...headerFields, dataRecordsBefore: dataBefore, dataBytesBefore: bytesBefore }, this.sb));
        placed.push({ p, rec: { sequence: seq, dataLba: lba + 1n }, bytes: 0n });
        lba += 1n;
        bytes += B;
      } else {
        if (lba + 1n > this.sb.capacityBlocks) {
          p.reject(new ObfFullError('OBF full: no room for the SEAL record'));
          continue;
        }
        // The seal covers every DATA record before it: it goes in a commit of its own, after
        // the data records ahead of it are durable and in the rolling hash.
        if (placed.some((x) => x.crc !== undefined)) {
          this.queue.unshift(p);
          break;
        }
        const hash = this.st.rolling.digest();
        const dataCount = this.st.dataRecords;
        const dataBytes = this.st.dataBytes;
        const markerSeq = placed.find((x) => x.p.kind === 'marker')?.rec.sequence ?? this.st.markerSequence;
        pieces.push(encodeSealRecord({ ...headerFields, dataRecordCount: dataCount, dataBytes, rollingHash: hash, markerSequence: markerSeq }, this.sb));
        placed.push({ p, rec: { sequence: seq, dataLba: lba + 1n }, bytes: 0n });
        lba += 1n;
        bytes += B;
      }
      batch.push(p);
      seq++;
    }
    if (placed.length === 0) return;
    try {
      await this.store.write(this.st.endLba, pieces.length === 1 ? pieces[0] : Buffer.concat(pieces, bytes));
      await this.store.flush();
    } catch (err) {
      const e = new ObfIoError(`OBF write at block ${this.st.endLba} failed: ${(err as Error).message}`, { cause: err });
      for (const x of placed) x.p.reject(e);
      return;
    }
    this.commits++;
    for (const x of placed) {
      if (x.crc !== undefined) {
        this.st.rolling.update(x.crc);
        this.st.dataRecords++;
        this.st.dataBytes += x.bytes;
      }
      if (x.p.kind === 'marker') this.st.markerSequence = x.rec.sequence;
    }
    this.st.endLba = lba;
    this.st.nextSequence = seq;
    for (const x of placed) x.p.resolve(x.rec);
  }
}

/**
 * Reads the original image of chunks for a snapshot's captures (the read half of the
 * copy-on-write armed at docs/method.md 602; the capture path, src/cow/capture.ts, commits what
 * it returns to the OBF).
 *
 * A file source — the common case, and the one on the first-write hot path — is read without
 * costing the event loop more than one call per batch (Store.readChunks): the captures asked for
 * in one turn of the loop (the commands of one socket read) go to the thread pool together, where
 * each chunk is read, tested for all zeros and checksummed (CRC32C) by the native addon. The chunk buffers come
 * from a pool and go back to it when their record is committed, so a run of first writes does
 * not allocate 64 KiB per write for the garbage collector to chase. Other stores are read one
 * chunk at a time; a thin memory source's unmapped chunk is zeros without a read.
 */
import { ArgumentError } from '../errors';
import type { Store } from '../store/store';
import { crc32c } from '../native/crc32c';
import { MAX_CAPTURE_RUN_BYTES } from './chunk-table';

/** One chunk's original. `release()` once its record is committed (or given up). */
export interface Original {
  data: Buffer;
  /** All zeros: an OBF that reads zeros where unmapped need not write the data. */
  zero: boolean;
  /** CRC32C of `data` when already computed (then the record's CRC is not computed over it again). */
  crc?: number;
  release(): void;
}

/**
 * Chunks per thread-pool call: 32 first writes in flight make 4 calls, one per pool thread, so
 * the reads run side by side while each call costs the event loop once.
 */
const BATCH = 8;
/** Bytes of chunk buffers kept for reuse. */
const SPARE_BYTES = 8 * 1024 * 1024;

interface Wanted {
  lba: bigint;
  blocks: number;
  resolve: (o: Original) => void;
  reject: (err: unknown) => void;
}

const noop = () => undefined;

export class OriginalReader {
  private readonly source: Store;
  private readonly chunkBytes: number;
  private queue: Wanted[] = [];
  private scheduled = false;
  private spare: Buffer[] = [];
  private zeros = Buffer.alloc(0);
  private readonly zeroCrcs = new Map<number, number>();

  constructor(source: Store, chunkBytes: number) {
    this.source = source;
    this.chunkBytes = chunkBytes;
  }

  /** The original of `blocks` source blocks at `lba` (a chunk, or a run of chunks up to MAX_CAPTURE_RUN_BYTES). */
  read(lba: bigint, blocks: number): Promise<Original> {
    const most = Math.max(this.chunkBytes, MAX_CAPTURE_RUN_BYTES);
    if (!Number.isInteger(blocks) || blocks < 1 || blocks * this.source.blockSize > most) {
      return Promise.reject(new ArgumentError(`an original is 1 to ${most / this.source.blockSize} blocks, not ${blocks}`));
    }
    if (this.source.readChunks) {
      return new Promise((resolve, reject) => {
        this.queue.push({ lba, blocks, resolve, reject });
        if (!this.scheduled) {
          this.scheduled = true;
          setImmediate(() => this.flush());
        }
      });
    }
    return this.readOther(lba, blocks);
  }

  private async readOther(lba: bigint, blocks: number): Promise<Original> {
    const src = this.source;
    if (src.unmapReadsZero && src.kind === 'memory') {
      const ex = await src.extents(lba, BigInt(blocks));
      if (ex.length === 1 && !ex[0].mapped) return this.zeroOriginal(blocks * src.blockSize);
    }
    return { data: await src.read(lba, blocks), zero: false, release: noop };
  }

  /** Sends what was asked for in this turn of the event loop, BATCH chunks per call. */
  private flush(): void {
    this.scheduled = false;
    const all = this.queue;
    this.queue = [];
    for (let i = 0; i < all.length; i += BATCH) void this.readBatch(all.slice(i, i + BATCH));
  }

  private async readBatch(batch: Wanted[]): Promise<void> {
    const src = this.source;
    // Pooled buffers are a chunk each; a run of chunks gets one of its own.
    const bufs = batch.map((w) => (w.blocks * src.blockSize > this.chunkBytes ? Buffer.allocUnsafe(w.blocks * src.blockSize) : (this.spare.pop() ?? Buffer.allocUnsafe(this.chunkBytes))));
    const chunks = batch.map((w, i) => ({ lba: w.lba, into: bufs[i].subarray(0, w.blocks * src.blockSize) }));
    let crcs: Array<number | undefined>;
    try {
      crcs = await src.readChunks!(chunks, { zeros: true });
    } catch (err) {
      for (const b of bufs) this.giveBack(b);
      if (batch.length === 1) {
        batch[0].reject(err);
        return;
      }
      // One bad chunk must not fail the others read with it: each on its own again.
      for (const w of batch) void this.readBatch([w]);
      return;
    }
    batch.forEach((w, i) => {
      const crc = crcs[i];
      if (crc === undefined) {
        this.giveBack(bufs[i]);
        w.resolve(this.zeroOriginal(chunks[i].into.length));
        return;
      }
      let released = false;
      w.resolve({
        data: chunks[i].into,
        zero: false,
        crc,
        release: () => {
          if (released) return;
          released = true;
          this.giveBack(bufs[i]);
        },
      });
    });
  }

  private giveBack(buf: Buffer): void {
    if (buf.length === this.chunkBytes && (this.spare.length + 1) * this.chunkBytes <= SPARE_BYTES) this.spare.push(buf);
  }

  /** Lets the pooled buffers go (capturing has ended). */
  releaseBuffers(): void {
    this.spare = [];
  }

  /** `bytes` of zeros (shared, never written to) and their CRC32C (computed once per length). */
  private zeroOriginal(bytes: number): Original {
    if (this.zeros.length < bytes) {
      this.zeros = Buffer.alloc(bytes);
      this.zeroCrcs.clear();
    }
    const data = this.zeros.subarray(0, bytes);
    let crc = this.zeroCrcs.get(bytes);
    if (crc === undefined) this.zeroCrcs.set(bytes, (crc = crc32c(data)));
    return { data, zero: true, crc, release: noop };
  }
}

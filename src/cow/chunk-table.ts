/**
 * A snapshot's captured-chunk table: which chunks of the source have their original in the OBF,
 * and where; which are being captured now. The capture path (capture.ts) fills it, the view's
 * reads (image-reader.ts) go by it, and after a restart it is rebuilt from the OBF's valid log
 * prefix (docs/cow.md "COW").
 */
import type { DataRecordRef } from '../obf/log';

/**
 * Most bytes one capture takes: a change over adjacent chunks not captured yet captures them as
 * one record of up to this many bytes (one header, one 608 segment), whole chunks each.
 */
export const MAX_CAPTURE_RUN_BYTES = 1024 * 1024;

export class ChunkTable {
  /** Source blocks per chunk. */
  readonly chunkBlocks: bigint;
  /** OBF blocks per chunk (a record's data is whole chunks, back to back). */
  readonly chunkObfBlocks: number;
  /** Chunks one capture takes at most (MAX_CAPTURE_RUN_BYTES, and at least one). */
  readonly maxRunChunks: number;
  /**
   * Captured chunk → the OBF block where its original starts (a number: memory grows with what
   * was captured, ≈ 40 bytes a chunk, never with the source's size).
   */
  readonly where = new Map<number, number>();
  /** Chunks being captured: concurrent changes to one chunk share its capture. */
  readonly inProgress = new Map<number, Promise<void>>();

  constructor(chunkBytes: number, sourceBlockSize: number, obfBlockSize: number) {
    this.chunkBlocks = BigInt(chunkBytes / sourceBlockSize);
    this.chunkObfBlocks = chunkBytes / obfBlockSize;
    this.maxRunChunks = Math.max(1, Math.floor(MAX_CAPTURE_RUN_BYTES / chunkBytes));
  }

  /** Marks the chunks of a record captured: its data holds them one after the other from `dataLba`. */
  captured(firstChunk: number, chunks: number, dataLba: number): void {
    for (let i = 0; i < chunks; i++) this.where.set(firstChunk + i, dataLba + i * this.chunkObfBlocks);
  }

  /**
   * Marks the chunks of an OBF's DATA records captured (resume after a restart). A record holds
   * one chunk or a run of whole chunks (the last chunk of the source may be shorter).
   */
  rebuild(records: readonly Pick<DataRecordRef, 'sourceLba' | 'sourceBlocks' | 'dataLba'>[]): void {
    for (const r of records) {
      const first = r.sourceLba / this.chunkBlocks;
      const last = (r.sourceLba + BigInt(r.sourceBlocks) - 1n) / this.chunkBlocks;
      this.captured(Number(first), Number(last - first) + 1, Number(r.dataLba));
    }
  }

  /** Resolves once the captures running now have settled (succeeded or failed). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inProgress.values()]);
  }
}

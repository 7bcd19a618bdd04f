/**
 * A snapshot's captured-chunk table: which chunks of the source have their original in the OBF,
 * and where; which are being captured now. The capture path (capture.ts) fills it, the view's
 * reads (image-reader.ts) go by it, and after a restart it is rebuilt from the OBF's valid log
 * prefix (docs/cow.md "COW").
 */
import type { DataRecordRef } from '../obf/log';

export class ChunkTable {
  /** Source blocks per chunk. */
  readonly chunkBlocks: bigint;
  /**
   * Captured chunk → first OBF data block of its record (a number: memory grows with what was
   * captured, ≈ 40 bytes a chunk, never with the source's size).
   */
  readonly where = new Map<number, number>();
  /** Chunks being captured: concurrent changes to one chunk share its capture. */
  readonly inProgress = new Map<number, Promise<void>>();

  constructor(chunkBytes: number, sourceBlockSize: number) {
    this.chunkBlocks = BigInt(chunkBytes / sourceBlockSize);
  }

  /** Marks the chunks of an OBF's DATA records captured (resume after a restart). */
  rebuild(records: readonly Pick<DataRecordRef, 'sourceLba' | 'dataLba'>[]): void {
    for (const r of records) this.where.set(Number(r.sourceLba / this.chunkBlocks), Number(r.dataLba));
  }

  /** Resolves once the captures running now have settled (succeeded or failed). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inProgress.values()]);
  }
}

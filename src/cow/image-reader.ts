/**
 * Reads a snapshot's image as of institution — the snapshot view's reads (view-store.ts, the
 * logical snapshot copy, read for docs/method.md 603) — while hosts keep writing the source:
 * captured chunks from the OBF, the others from the source. Readable only while the snapshot
 * captures: once it stops (terminated, INVALID) changes reach the source uncaptured.
 */
import { StoreError, type Store } from '../store/store';
import type { ChunkTable } from './chunk-table';
import type { SnapshotState } from './session-record';

/** What the view's reads ask of their session. */
export interface ImageOwner {
  readonly id: string;
  readonly state: SnapshotState;
  /** The image can be read (captures are still armed). */
  readonly viewable: boolean;
}

export class ImageReader {
  /**
   * `source`: the source LUN's store (reads are never blocked there); `obf` and its block size
   * `obfBlockSize`: where the captured chunks' records are.
   */
  constructor(
    private readonly owner: ImageOwner,
    private readonly chunks: ChunkTable,
    private readonly source: Store,
    private readonly obf: Store,
    private readonly obfBlockSize: number,
  ) {}

  /**
   * Reads the image as of institution: captured chunks from the OBF, the rest from the source.
   * A chunk read from the source is read again from the OBF when a capture of it began meanwhile
   * (its change may have reached the source during the read); a change reaches the source only
   * after its chunk is marked captured, so a read that saw no capture before and after is exact.
   */
  async read(lba: bigint, count: number, into?: Buffer): Promise<Buffer> {
    const bs = this.source.blockSize;
    const chunkBlocks = this.chunks.chunkBlocks;
    const out = into && into.length >= count * bs ? into.subarray(0, count * bs) : Buffer.alloc(count * bs);
    let at = lba;
    const end = lba + BigInt(count);
    while (at < end) {
      const c = Number(at / chunkBlocks);
      const chunkEnd = BigInt(c + 1) * chunkBlocks;
      const n = Number((chunkEnd < end ? chunkEnd : end) - at);
      const dst = out.subarray(Number(at - lba) * bs, Number(at - lba + BigInt(n)) * bs);
      await this.readChunkPart(c, at, n, dst);
      at += BigInt(n);
    }
    return out;
  }

  /** `n` blocks at `lba`, all in chunk `c`, into `dst`. */
  private async readChunkPart(c: number, lba: bigint, n: number, dst: Buffer): Promise<void> {
    const bs = this.source.blockSize;
    const B = this.obfBlockSize;
    const { where, inProgress, chunkBlocks } = this.chunks;
    for (;;) {
      if (!this.owner.viewable) throw new StoreError({ kind: 'not-ready' }, `snapshot ${this.owner.id} is ${this.owner.state}: its view is no longer readable`);
      const pending = inProgress.get(c);
      if (pending) await pending.catch(() => undefined);
      const at = where.get(c);
      if (at !== undefined) {
        const offBytes = Number(lba - BigInt(c) * chunkBlocks) * bs;
        const first = BigInt(at + Math.floor(offBytes / B));
        const skip = offBytes % B;
        const blocks = Math.ceil((skip + n * bs) / B);
        const data = await this.obf.read(first, blocks);
        data.copy(dst, 0, skip, skip + n * bs);
        return;
      }
      await this.source.read(lba, n, dst);
      if (!where.has(c) && !inProgress.has(c) && this.owner.viewable) return;
    }
  }
}

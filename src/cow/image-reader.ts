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
   * Consecutive chunks not captured are read from the source in one request, and each is checked
   * after it the same way (a view read or a hash of the image is not cut into chunk-size reads).
   */
  async read(lba: bigint, count: number, into?: Buffer): Promise<Buffer> {
    const bs = this.source.blockSize;
    const chunkBlocks = this.chunks.chunkBlocks;
    const { where, inProgress } = this.chunks;
    const out = into && into.length >= count * bs ? into.subarray(0, count * bs) : Buffer.alloc(count * bs);
    const part = (from: bigint, to: bigint) => out.subarray(Number(from - lba) * bs, Number(to - lba) * bs);
    const chunkEnd = (c: number) => BigInt(c + 1) * chunkBlocks;
    const end = lba + BigInt(count);
    let at = lba;
    while (at < end) {
      const c = Number(at / chunkBlocks);
      if (where.has(c) || inProgress.has(c)) {
        const to = chunkEnd(c) < end ? chunkEnd(c) : end;
        await this.readChunkPart(c, at, Number(to - at), part(at, to));
        at = to;
        continue;
      }
      // A run of chunks neither captured nor being captured: one read from the source.
      let last = c;
      while (chunkEnd(last) < end && !where.has(last + 1) && !inProgress.has(last + 1)) last++;
      const to = chunkEnd(last) < end ? chunkEnd(last) : end;
      if (!this.owner.viewable) throw this.notViewable();
      await this.source.read(at, Number(to - at), part(at, to));
      for (let k = c; k <= last; k++) {
        if (!where.has(k) && !inProgress.has(k) && this.owner.viewable) continue;
        // captured meanwhile: this chunk's part again, from where its original now is
        const from = BigInt(k) * chunkBlocks > at ? BigInt(k) * chunkBlocks : at;
        const upTo = chunkEnd(k) < to ? chunkEnd(k) : to;
        await this.readChunkPart(k, from, Number(upTo - from), part(from, upTo));
      }
      at = to;
    }
    return out;
  }

  private notViewable(): StoreError {
    return new StoreError({ kind: 'not-ready' }, `snapshot ${this.owner.id} is ${this.owner.state}: its view is no longer readable`);
  }

  /** `n` blocks at `lba`, all in chunk `c`, into `dst`. */
  private async readChunkPart(c: number, lba: bigint, n: number, dst: Buffer): Promise<void> {
    const bs = this.source.blockSize;
    const B = this.obfBlockSize;
    const { where, inProgress, chunkBlocks } = this.chunks;
    for (;;) {
      if (!this.owner.viewable) throw this.notViewable();
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

/**
 * A fixed pool of copy buffers: the copy manager's memory is `count × bytes` however large the
 * copies are and however many run at once. Buffers are allocated on first use (a copy manager
 * that never copies costs nothing) and never freed; a copy that finds the pool empty waits (FIFO)
 * for a buffer to come back.
 */
import { ArgumentError } from '../errors';

export class BufferPool {
  readonly bufferBytes: number;
  readonly count: number;
  private readonly free: Buffer[] = [];
  private readonly waiters: Array<(b: Buffer) => void> = [];
  private allocated = 0;
  private inUse = 0;
  private peak = 0;

  constructor(count: number, bufferBytes: number) {
    if (!Number.isInteger(count) || count < 1 || count > 1024) throw new ArgumentError(`pool buffer count must be 1..1024, got ${String(count)}`);
    if (!Number.isInteger(bufferBytes) || bufferBytes < 4096 || bufferBytes > 256 * 1024 * 1024 || bufferBytes % 4096 !== 0) {
      throw new ArgumentError(`pool buffer size must be a multiple of 4096 from 4 KiB to 256 MiB, got ${String(bufferBytes)}`);
    }
    this.count = count;
    this.bufferBytes = bufferBytes;
  }

  /** Bytes allocated so far (at most count × bufferBytes). */
  get allocatedBytes(): number {
    return this.allocated * this.bufferBytes;
  }

  /** The most buffers ever lent at once. */
  get peakInUse(): number {
    return this.peak;
  }

  async acquire(): Promise<Buffer> {
    let b = this.free.pop();
    if (b === undefined && this.allocated < this.count) {
      this.allocated++;
      b = Buffer.allocUnsafe(this.bufferBytes);
    }
    if (b === undefined) b = await new Promise<Buffer>((resolve) => this.waiters.push(resolve));
    this.inUse++;
    if (this.inUse > this.peak) this.peak = this.inUse;
    return b;
  }

  release(b: Buffer): void {
    this.inUse--;
    const next = this.waiters.shift();
    if (next !== undefined) next(b);
    else this.free.push(b);
  }
}

/**
 * A sparse LUN in memory (tgt's bs_null with storage, LIO's rd_mcp): fixed-size chunks in a Map,
 * allocated on the first non-zero write, so a 1 TiB memory LUN costs nothing until written.
 * Absent chunks read back zeros; unmap drops whole chunks and zeroes the covered part of the
 * others; extents() is the chunk map. For tests, and for scratch LUNs that need no persistence.
 */
import crypto from 'node:crypto';
import { ArgumentError } from '../errors';
import {
  checkBigRange,
  checkBlockSize,
  checkRead,
  checkWrite,
  closedError,
  pushExtent,
  writeProtected,
} from './checks';
import { checkNaa, naaFromSeed, serialFromSeed } from './identity';
import type { Extent, Store, StoreIdentity } from './store';
import { isAllZero } from '../util/zero';

export const DEFAULT_MEMORY_CHUNK_BYTES = 1024 * 1024;

export interface MemoryStoreOptions {
  /** Capacity in blocks. */
  blocks: bigint;
  blockSize: 512 | 4096;
  /** identity.name (default: "memory:<random UUID>", new for every store). */
  name?: string;
  /** VPD 80h serial (default: hashed from the name). */
  serial?: string;
  /** 16-byte NAA 6h designator (default: hashed from the name). */
  naa?: Buffer;
  readOnly?: boolean;
  /** Allocation unit: a power of two, a multiple of the block size. Default 1 MiB. */
  chunkBytes?: number;
}


export class MemoryStore implements Store {
  readonly kind = 'memory';
  readonly blockSize: number;
  readonly blocks: bigint;
  readonly identity: StoreIdentity;
  readonly readOnly: boolean;
  readonly unmapReadsZero = true;
  readonly chunkBytes: number;
  private readonly capacityBytes: number;
  private readonly chunks = new Map<number, Buffer>();
  private closed = false;

  constructor(opts: MemoryStoreOptions) {
    this.blockSize = checkBlockSize(opts.blockSize);
    if (typeof opts.blocks !== 'bigint' || opts.blocks <= 0n) {
      throw new ArgumentError(`blocks must be a positive bigint, got ${String(opts.blocks)}`);
    }
    const capacity = opts.blocks * BigInt(this.blockSize);
    if (capacity > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new ArgumentError(`a memory store of ${capacity} bytes is too large (at most ${Number.MAX_SAFE_INTEGER})`);
    }
    const chunkBytes = opts.chunkBytes ?? DEFAULT_MEMORY_CHUNK_BYTES;
    if (!Number.isInteger(chunkBytes) || chunkBytes < this.blockSize || (chunkBytes & (chunkBytes - 1)) !== 0 || chunkBytes > 2 ** 30) {
      throw new ArgumentError(`chunkBytes must be a power of two from the block size (${this.blockSize}) to 1 GiB, got ${chunkBytes}`);
    }
    this.blocks = opts.blocks;
    this.capacityBytes = Number(capacity);
    this.chunkBytes = chunkBytes;
    this.readOnly = opts.readOnly ?? false;
    const name = opts.name ?? `memory:${crypto.randomUUID()}`;
    if (typeof name !== 'string' || name.length === 0) throw new ArgumentError('name must be a non-empty string');
    this.identity = {
      name,
      naa: opts.naa === undefined ? naaFromSeed(name) : checkNaa(opts.naa),
      serial: opts.serial ?? serialFromSeed(name),
    };
  }

  /** Bytes of memory the chunks hold (the cost of the store). */
  get allocatedBytes(): number {
    let n = 0;
    for (const c of this.chunks.values()) n += c.length;
    return n;
  }

  /** Walks [start, start+length) chunk by chunk: index, offset in the chunk, bytes, offset in the request. */
  private *pieces(start: number, length: number): Generator<[number, number, number, number]> {
    let pos = start;
    const end = start + length;
    while (pos < end) {
      const index = Math.floor(pos / this.chunkBytes);
      const inChunk = pos - index * this.chunkBytes;
      const n = Math.min(this.chunkBytes - inChunk, end - pos);
      yield [index, inChunk, n, pos - start];
      pos += n;
    }
  }

  private chunkLength(index: number): number {
    return Math.min(this.chunkBytes, this.capacityBytes - index * this.chunkBytes);
  }

  async read(lba: bigint, count: number, into?: Buffer): Promise<Buffer> {
    const bytes = checkRead(this, lba, count, into);
    if (this.closed) throw closedError(this.identity.name);
    const out = into ? into.subarray(0, bytes) : Buffer.allocUnsafe(bytes);
    for (const [index, inChunk, n, at] of this.pieces(Number(lba) * this.blockSize, bytes)) {
      const chunk = this.chunks.get(index);
      if (chunk) chunk.copy(out, at, inChunk, inChunk + n);
      else out.fill(0, at, at + n);
    }
    return out;
  }

  async write(lba: bigint, data: Buffer, _opts?: { fua?: boolean }): Promise<void> {
    checkWrite(this, lba, data);
    if (this.closed) throw closedError(this.identity.name);
    if (this.readOnly) throw writeProtected(this.identity.name);
    for (const [index, inChunk, n, at] of this.pieces(Number(lba) * this.blockSize, data.length)) {
      let chunk = this.chunks.get(index);
      const piece = data.subarray(at, at + n);
      if (!chunk) {
        if (isAllZero(piece)) continue; // zeros on a hole: nothing to allocate
        chunk = Buffer.alloc(this.chunkLength(index));
        this.chunks.set(index, chunk);
      }
      piece.copy(chunk, inChunk);
    }
  }

  async flush(): Promise<void> {
    if (this.closed) throw closedError(this.identity.name);
  }

  async unmap(lba: bigint, count: bigint): Promise<void> {
    checkBigRange(this, lba, count);
    if (this.closed) throw closedError(this.identity.name);
    if (this.readOnly) throw writeProtected(this.identity.name);
    for (const [index, inChunk, n] of this.pieces(Number(lba) * this.blockSize, Number(count) * this.blockSize)) {
      const chunk = this.chunks.get(index);
      if (!chunk) continue;
      if (n === chunk.length) this.chunks.delete(index);
      else chunk.fill(0, inChunk, inChunk + n);
    }
  }

  async extents(lba: bigint, count: bigint): Promise<Extent[]> {
    checkBigRange(this, lba, count);
    if (this.closed) throw closedError(this.identity.name);
    const bs = this.blockSize;
    const start = Number(lba) * bs;
    const end = start + Number(count) * bs;
    const first = Math.floor(start / this.chunkBytes);
    const last = Math.ceil(end / this.chunkBytes);
    const indices = [...this.chunks.keys()].filter((i) => i >= first && i < last).sort((a, b) => a - b);
    const out: Extent[] = [];
    let cursor = start;
    const push = (from: number, to: number, mapped: boolean) =>
      pushExtent(out, BigInt(from / bs), BigInt((to - from) / bs), mapped);
    for (const index of indices) {
      const s = Math.max(index * this.chunkBytes, start);
      const e = Math.min(index * this.chunkBytes + this.chunkLength(index), end);
      if (s > cursor) push(cursor, s, false);
      push(s, e, true);
      cursor = e;
    }
    if (cursor < end) push(cursor, end, false);
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.chunks.clear();
  }
}

/**
 * A LUN backed by a regular file (tgt's bs_rdwr, LIO's target_core_file): positional reads and
 * writes through one fs.promises FileHandle (pread/pwrite on the libuv thread pool, so requests
 * run concurrently and never share a file offset). FUA = a write through a second descriptor
 * opened O_DSYNC (durable when it returns); flush = fdatasync; unmap = hole punching (zeros
 * written where the file system cannot punch);
 * extents() from SEEK_DATA/SEEK_HOLE. The identity is hashed from the file's device and inode,
 * so a restarted target presents the same NAA designator and serial for the same file.
 */
import { constants as osConstants } from 'node:os';
import fs from 'node:fs';
import { ArgumentError } from '../errors';
import { copyFileRangeAsync, fadviseRandom, fileIoBatch, preadNoWait, punchHole, readChunks, seekData, seekHole } from '../native/fileops';
import { checkBigRange, checkBlockSize, checkRead, checkWrite, closedError, pushExtent, writeProtected } from './checks';
import { naaFromSeed, serialFromSeed } from './identity';
import { StoreError, type BackingFile, type Extent, type RangeCopy, type Store, type StoreFailure, type StoreIdentity } from './store';

export interface FileStoreOptions {
  path: string;
  /** Size in bytes: the file is created sparse with it when missing, and must have it when present. */
  size?: number;
  /** 512 (default) or 4096. */
  blockSize?: 512 | 4096;
  readOnly?: boolean;
}

/** Zeros written per request where punching is not supported. */
const ZERO_CHUNK = 1024 * 1024;

/**
 * Reads up to this size try the page cache on the event loop first (FileStore.read), and reads
 * and writes up to it go to the thread pool batched (FileIoBatch); larger ones go to the pool one
 * job each, where their copies run side by side and do not hold up the other connections.
 */
const SMALL_IO_MAX = 64 * 1024;

const ERRNO_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(osConstants.errno).map(([name, n]) => [n, name]),
);

/** The errno name of a Node fs error (`code`) or a native one (positive `errno`). */
export function errnoName(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; errno?: unknown };
  if (typeof e.code === 'string') return e.code;
  if (typeof e.errno === 'number') return ERRNO_NAMES[Math.abs(e.errno)];
  return undefined;
}

/**
 * A file system error as a store failure: EIO is a medium error of the operation, ENOSPC (and
 * EDQUOT) no space, EROFS write protection; anything else is an error of the operation too.
 */
function storeFailureOf(err: unknown, op: 'read' | 'write'): StoreFailure {
  switch (errnoName(err)) {
    case 'EIO':
      return { kind: op === 'read' ? 'read-error' : 'write-error' };
    case 'ENOSPC':
    case 'EDQUOT':
      return { kind: 'no-space' };
    case 'EROFS':
      return { kind: 'write-protected' };
    default:
      return { kind: op === 'read' ? 'read-error' : 'write-error' };
  }
}

/** "268435456 bytes (256 MiB)": exact, and readable. */
function formatBytes(n: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let unit = '';
  for (const u of units) {
    if (v < 1024) break;
    v /= 1024;
    unit = u;
  }
  return unit ? `${n} bytes (${Number.isInteger(v) ? v : v.toFixed(2)} ${unit})` : `${n} bytes`;
}

export class FileStore implements Store, BackingFile {
  readonly kind = 'file';
  readonly blockSize: number;
  readonly blocks: bigint;
  readonly identity: StoreIdentity;
  readonly readOnly: boolean;
  /** Holes of a file read back zeros. */
  readonly unmapReadsZero = true;
  readonly path: string;
  private fh: fs.promises.FileHandle | undefined;
  /** The descriptor of the FileHandle (BackingFile.fd). */
  readonly fd: number;
  private punchSupported = true;
  private dsync: number | undefined;
  private randomRead: number | undefined;
  /** Requests on the raw descriptors in flight (close() waits for them; FileHandle.close only knows its own). */
  private busy = 0;
  private idleWaiters: Array<() => void> = [];

  private constructor(fh: fs.promises.FileHandle, realPath: string, size: number, blockSize: number, readOnly: boolean, st: fs.BigIntStats) {
    this.fh = fh;
    this.fd = fh.fd;
    this.path = realPath;
    this.blockSize = blockSize;
    this.blocks = BigInt(size / blockSize);
    this.readOnly = readOnly;
    const seed = `file:dev=${st.dev}:ino=${st.ino}`;
    this.identity = { name: `file:${realPath}`, naa: naaFromSeed(seed), serial: serialFromSeed(seed) };
  }

  /**
   * Opens (or, given a size, creates sparse) a backing file. The size in bytes must be a positive
   * multiple of the block size; an existing file must already have the size asked for.
   */
  static async open(opts: FileStoreOptions): Promise<FileStore> {
    const { path: file, size } = opts;
    if (typeof file !== 'string' || file.length === 0) throw new ArgumentError('path must be a non-empty string');
    const blockSize = checkBlockSize(opts.blockSize ?? 512);
    const readOnly = opts.readOnly ?? false;
    if (size !== undefined && (!Number.isSafeInteger(size) || size <= 0 || size % blockSize !== 0)) {
      throw new ArgumentError(
        `size of ${file} must be a positive multiple of the block size ${blockSize}, got ${String(size)} (e.g. 64M, 1G)`,
      );
    }
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(file, readOnly ? 'r' : 'r+');
    } catch (err) {
      if (errnoName(err) !== 'ENOENT') throw FileStore.openError(file, err, readOnly);
      if (size === undefined) throw new ArgumentError(`backing file ${file} does not exist: give a size to create it (file:PATH:SIZE)`);
      if (readOnly) throw new ArgumentError(`backing file ${file} does not exist and a read-only store cannot create it`);
      try {
        fh = await fs.promises.open(file, 'wx+'); // O_EXCL: never truncate a file created meanwhile
        await fh.truncate(size); // sparse: no blocks allocated
      } catch (e) {
        throw FileStore.openError(file, e, readOnly);
      }
    }
    try {
      const st = await fh.stat({ bigint: true });
      if (!st.isFile()) throw new ArgumentError(`${file} is not a regular file (block devices are not supported as file stores)`);
      const actual = Number(st.size);
      if (size !== undefined && actual !== size) {
        throw new ArgumentError(
          `backing file ${file} has ${formatBytes(actual)}, but ${formatBytes(size)} were asked for (resize it with truncate -s, or leave the size out)`,
        );
      }
      if (actual === 0 || actual % blockSize !== 0) {
        throw new ArgumentError(`backing file ${file} has ${formatBytes(actual)}, not a positive multiple of the block size ${blockSize}`);
      }
      if (!Number.isSafeInteger(actual)) throw new ArgumentError(`backing file ${file} is too large (${st.size} bytes)`);
      const realPath = await fs.promises.realpath(file);
      return new FileStore(fh, realPath, actual, blockSize, readOnly, st);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  private static openError(file: string, err: unknown, readOnly: boolean): Error {
    const code = errnoName(err);
    if (code === 'EISDIR') return new ArgumentError(`${file} is a folder, not a regular file`);
    if (!readOnly && (code === 'EACCES' || code === 'EPERM' || code === 'EROFS')) {
      return new StoreError({ kind: 'write-protected' }, `cannot open ${file} for writing (${code}): open it read-only or fix its permissions`, { cause: err });
    }
    return new StoreError({ kind: 'not-ready' }, `cannot open backing file ${file}: ${(err as Error).message}`, { cause: err });
  }

  private handle(): fs.promises.FileHandle {
    if (!this.fh) throw closedError(this.identity.name);
    return this.fh;
  }

  /** An error of a request on the file as a StoreError (BackingFile.fail). */
  fail(err: unknown, op: 'read' | 'write', what: string): Error {
    if (err instanceof StoreError || err instanceof ArgumentError) return err;
    const failure = storeFailureOf(err, op);
    return new StoreError(failure, `${what} on ${this.identity.name} failed: ${(err as Error).message}`, { cause: err });
  }

  async read(lba: bigint, count: number, into?: Buffer): Promise<Buffer> {
    const bytes = checkRead(this, lba, count, into);
    const fh = this.handle();
    const out = into ? into.subarray(0, bytes) : Buffer.allocUnsafe(bytes);
    const position = Number(lba) * this.blockSize;
    this.busy++;
    try {
      let done = 0;
      // A small read the page cache holds is served here on the event loop (one preadv2 with
      // RWF_NOWAIT): a read on the thread pool costs a hand-off each way, which at 4 KiB is more
      // than the read (docs/target.md "Speed"). The rest, if any, goes to the pool.
      if (bytes <= SMALL_IO_MAX) {
        const n = preadNoWait(fh.fd, out, 0, bytes, position);
        if (n > 0) done = n;
      }
      while (done < bytes) {
        const bytesRead =
          bytes - done <= SMALL_IO_MAX
            ? await fileIoBatch.submit(fh.fd, false, done === 0 ? out : out.subarray(done), position + done)
            : await preadCb(fh.fd, out, done, bytes - done, position + done);
        if (bytesRead === 0) {
          throw new StoreError(
            { kind: 'read-error' },
            `${this.identity.name} ends at byte ${position + done}, before the ${this.blocks} blocks it had when opened (was it truncated?)`,
          );
        }
        done += bytesRead;
      }
    } catch (err) {
      throw this.fail(err, 'read', `read of ${count} blocks at LBA ${lba}`);
    } finally {
      this.settled();
    }
    return out;
  }

  /**
   * A snapshot's reads of original chunks: one call on the thread pool fills each `into` (whole
   * blocks) from its LBA and returns its CRC32C — or, with `zeros`, undefined for a chunk whose
   * bytes are all zero.
   */
  async readChunks(chunks: ReadonlyArray<{ lba: bigint; into: Buffer }>, opts: { zeros: boolean }): Promise<Array<number | undefined>> {
    for (const c of chunks) checkRead(this, c.lba, c.into.length / this.blockSize, c.into);
    this.handle();
    this.busy++;
    try {
      return await readChunks(
        this.randomReadFd(),
        chunks.map((c) => c.into),
        chunks.map((c) => Number(c.lba) * this.blockSize),
        opts.zeros,
      );
    } catch (err) {
      throw this.fail(err, 'read', `read of ${chunks.length} chunks from LBA ${chunks[0]?.lba}`);
    } finally {
      this.settled();
    }
  }

  async write(lba: bigint, data: Buffer, opts: { fua?: boolean } = {}): Promise<void> {
    checkWrite(this, lba, data);
    const fh = this.handle();
    if (this.readOnly) throw writeProtected(this.identity.name);
    const position = Number(lba) * this.blockSize;
    this.busy++;
    try {
      // SBC-3 r36 5.35: FUA = durable before GOOD status. Through a second descriptor opened
      // O_DSYNC the write returns durable (data and the metadata to find it), one system call
      // instead of pwrite + fdatasync, and without flushing the file's other dirty pages.
      const fd = opts.fua ? this.dsyncFd() : fh.fd;
      let done = 0;
      while (done < data.length) {
        // Small writes of one turn of the event loop go to the thread pool together (FileIoBatch);
        // FUA writes each in a job of their own, so their flushes overlap.
        const bytesWritten =
          !opts.fua && data.length - done <= SMALL_IO_MAX
            ? await fileIoBatch.submit(fd, true, done === 0 ? data : data.subarray(done), position + done)
            : await pwriteCb(fd, data, done, data.length - done, position + done);
        if (bytesWritten === 0) throw new Error(`pwrite wrote nothing at byte ${position + done}`);
        done += bytesWritten;
      }
    } catch (err) {
      throw this.fail(err, 'write', `write of ${data.length / this.blockSize} blocks at LBA ${lba}`);
    } finally {
      this.settled();
    }
  }

  async writev(lba: bigint, pieces: readonly Buffer[], opts: { fua?: boolean } = {}): Promise<void> {
    if (pieces.length === 1) return this.write(lba, pieces[0], opts);
    let total = 0;
    for (const p of pieces) total += p.length;
    if (total % this.blockSize !== 0) throw new ArgumentError(`a write of ${total} bytes is not a whole number of ${this.blockSize}-byte blocks`);
    checkBigRange(this, lba, BigInt(total / this.blockSize));
    this.handle();
    if (this.readOnly) throw writeProtected(this.identity.name);
    const position = Number(lba) * this.blockSize;
    this.busy++;
    try {
      // One pwritev; with fua, on the O_DSYNC descriptor (see write).
      const n = await pwritevCb(opts.fua ? this.dsyncFd() : this.fd, pieces, position);
      if (n < total) {
        // A short pwritev (rare): the rest, from the last whole block written, by write's loop.
        const doneBlocks = Math.floor(n / this.blockSize);
        await this.write(lba + BigInt(doneBlocks), Buffer.concat(pieces).subarray(doneBlocks * this.blockSize), opts);
      }
    } catch (err) {
      throw this.fail(err, 'write', `write of ${total / this.blockSize} blocks at LBA ${lba}`);
    } finally {
      this.settled();
    }
  }

  async flush(): Promise<void> {
    const fh = this.handle();
    try {
      await fh.datasync();
    } catch (err) {
      throw this.fail(err, 'write', 'fdatasync');
    }
  }

  /** Punches whole blocks out of the file; where the file system cannot, writes zeros instead. */
  async unmap(lba: bigint, count: bigint): Promise<void> {
    checkBigRange(this, lba, count);
    const fh = this.handle();
    if (this.readOnly) throw writeProtected(this.identity.name);
    if (count === 0n) return;
    const offset = Number(lba) * this.blockSize;
    const length = Number(count) * this.blockSize;
    try {
      if (this.punchSupported) {
        try {
          punchHole(this.fd, offset, length);
          return;
        } catch (err) {
          const code = errnoName(err);
          if (code !== 'EOPNOTSUPP' && code !== 'ENOTSUP' && code !== 'ENOSYS') throw err;
          this.punchSupported = false;
        }
      }
      const zeros = Buffer.alloc(Math.min(ZERO_CHUNK, length));
      for (let done = 0; done < length; ) {
        const n = Math.min(zeros.length, length - done);
        const { bytesWritten } = await fh.write(zeros, 0, n, offset + done);
        done += bytesWritten;
      }
    } catch (err) {
      throw this.fail(err, 'write', `unmap of ${count} blocks at LBA ${lba}`);
    }
  }

  /**
   * Data and holes over [lba, lba+count), from SEEK_DATA/SEEK_HOLE. A block that is partly data
   * counts as mapped (data starts round down, data ends round up to whole blocks).
   */
  async extents(lba: bigint, count: bigint): Promise<Extent[]> {
    checkBigRange(this, lba, count);
    this.handle();
    const bs = this.blockSize;
    const start = Number(lba) * bs;
    const end = start + Number(count) * bs;
    const out: Extent[] = [];
    const push = (from: number, to: number, mapped: boolean) => pushExtent(out, BigInt(from / bs), BigInt((to - from) / bs), mapped);
    try {
      // Past the end of a file cut short behind our back SEEK_DATA answers ENXIO, as for a
      // trailing hole: those blocks would pass for zeros (a copy of them, for a whole copy).
      // They are unreadable, as read() says.
      const size = fs.fstatSync(this.fd).size;
      if (size < end) throw new StoreError({ kind: 'read-error' }, `${this.identity.name} ends at byte ${size}, before the ${this.blocks} blocks it had when opened (was it truncated?)`);
      let pos = start; // always a block boundary
      while (pos < end) {
        const data = seekData(this.fd, pos);
        const dataStart = data < 0 ? end : Math.min(end, Math.floor(data / bs) * bs);
        if (dataStart > pos) push(pos, dataStart, false);
        if (dataStart >= end) break;
        const hole = seekHole(this.fd, Math.max(data, dataStart));
        const dataEnd = Math.min(end, Math.ceil(hole / bs) * bs);
        push(dataStart, dataEnd, true);
        pos = dataEnd;
      }
    } catch (err) {
      throw this.fail(err, 'read', `extents of ${count} blocks at LBA ${lba}`);
    }
    return out;
  }

  /** The file itself (Store.backingFile). */
  backingFile(): BackingFile {
    return this;
  }

  /** The kernel copy's source side (Store.copyRangeTo): whatever `dst` stands on says whether it takes it. */
  copyRangeTo(dst: Store): RangeCopy | undefined {
    return dst.copyRangeFrom?.(this);
  }

  /** The kernel copy's destination side (Store.copyRangeFrom): from another file, copy_file_range. */
  copyRangeFrom(src: Store): RangeCopy | undefined {
    if (!(src instanceof FileStore)) return undefined;
    return (lba, dstLba, count, opts) => src.copyFileRangeTo(this, lba, dstLba, count, opts).then(() => true);
  }

  /**
   * Copies `count` blocks at `lba` of this file to `dstLba` of `dst` in the kernel
   * (copy_file_range), keeping holes holes: data extents are copied, hole extents are punched in
   * the destination, so the destination reads back exactly the source range. Both stores must
   * have the same block size; the ranges must not overlap when `dst` is this store. `fua`: the
   * destination is made durable before resolving.
   */
  private async copyFileRangeTo(dst: FileStore, lba: bigint, dstLba: bigint, count: bigint, opts: { fua?: boolean } = {}): Promise<void> {
    checkBigRange(this, lba, count);
    checkBigRange(dst, dstLba, count);
    if (dst.blockSize !== this.blockSize) throw new ArgumentError(`block sizes differ (${this.blockSize}, ${dst.blockSize})`);
    if (dst.readOnly) throw writeProtected(dst.identity.name);
    if (count === 0n) return;
    this.handle();
    dst.handle();
    const bs = BigInt(this.blockSize);
    for (const e of await this.extents(lba, count)) {
      const to = dstLba + (e.lba - lba);
      if (!e.mapped) {
        await dst.unmap(to, e.blocks);
        continue;
      }
      this.busy++;
      dst.busy++;
      try {
        await copyFileRangeAsync(this.fd, Number(e.lba * bs), dst.fd, Number(to * bs), Number(e.blocks * bs));
      } catch (err) {
        // Which side failed is not told by copy_file_range; EIO/ENOSPC/EROFS name it well enough.
        const code = errnoName(err);
        const side = code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS' ? dst : this;
        throw side.fail(err, side === dst ? 'write' : 'read', `copy_file_range of ${e.blocks} blocks from LBA ${e.lba} to LBA ${to}`);
      } finally {
        this.settled();
        dst.settled();
      }
    }
    if (opts.fua) await dst.flush();
  }

  /**
   * Closes the file after the requests in flight complete: new ones are refused at once, and the
   * descriptors close only when no thread-pool request still uses them (a closed descriptor's
   * number may be reused by the next open, and a late request would then hit another file).
   */
  async close(): Promise<void> {
    const fh = this.fh;
    if (!fh) return;
    this.fh = undefined;
    if (this.busy > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    const extra = [this.dsync, this.randomRead].filter((fd): fd is number => fd !== undefined);
    this.dsync = undefined;
    this.randomRead = undefined;
    await fh.close();
    for (const fd of extra) await new Promise<void>((resolve) => fs.close(fd, () => resolve()));
  }

  /** Ends one request counted in `busy`; wakes close() when it was the last. */
  private settled(): void {
    if (--this.busy === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Throws not-ready once the store is closed or closing (BackingFile.checkOpen). */
  checkOpen(): void {
    this.handle();
  }

  /** Counts a request on the raw descriptors (BackingFile.beginRequest): close() waits for it. */
  beginRequest(): () => void {
    this.busy++;
    return () => this.settled();
  }

  /**
   * The descriptor a snapshot's capture reads go through (readChunks, and the COW filter's
   * capture commit), opened on first use, with no readahead (POSIX_FADV_RANDOM on it alone):
   * each reads one chunk at a random place, and readahead would read (or, over holes, zero-fill)
   * pages no capture asked for, while the hosts' reads keep theirs on the main descriptor.
   */
  randomReadFd(): number {
    if (this.randomRead === undefined) {
      const fd = this.reopen(fs.constants.O_RDONLY);
      try {
        fadviseRandom(fd);
      } catch {
        // advice only: without it, reads are still right
      }
      this.randomRead = fd;
    }
    return this.randomRead;
  }

  /**
   * A second descriptor of the file this store opened (through /proc/self/fd: the same inode
   * even if its path was renamed or replaced since), or of its path where /proc is missing.
   */
  private reopen(flags: number): number {
    try {
      return fs.openSync(`/proc/self/fd/${this.fd}`, flags);
    } catch (err) {
      if (errnoName(err) !== 'ENOENT') throw err;
      return fs.openSync(this.path, flags);
    }
  }

  /** The O_DSYNC descriptor for FUA writes (and OBF commits), opened on first use. */
  dsyncFd(): number {
    if (this.dsync === undefined) this.dsync = this.reopen(fs.constants.O_RDWR | fs.constants.O_DSYNC);
    return this.dsync;
  }
}

/**
 * pread on the libuv thread pool through fs.read's callback form: on the hot path it costs the
 * main thread noticeably less than FileHandle.read (no FSReqPromise per call; bench:target 4 KiB).
 */
function preadCb(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/** pwritev through fs.writev's callback form: the bytes written (short only on errors such as ENOSPC). */
function pwritevCb(fd: number, pieces: readonly Buffer[], position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.writev(fd, pieces as Buffer[], position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/** pwrite through fs.write's callback form (see preadCb). */
function pwriteCb(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.write(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/**
 * The TypeScript face of the native addon's block-file I/O (native/src/fileops.cc; docs/native.md):
 * what Node's fs lacks — holes of sparse files (SEEK_DATA/SEEK_HOLE), hole punching,
 * copy_file_range, readahead advice, reads from the page cache only — the file store's small
 * reads and writes batched per turn of the event loop, and a snapshot's batched reads of original
 * chunks and its OBF capture commits on the libuv thread pool. Every argument is validated here and the C++ only
 * converts and calls; system-call errors carry `errno` and `syscall` like Node's own.
 */
import { getSystemErrorName } from 'node:util';
import { ArgumentError } from '../errors';
import { loadNative } from './index';

const SEEK_DATA = 3;
const SEEK_HOLE = 4;

function checkOffset(v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new ArgumentError(`${what} must be a non-negative safe integer, got ${v}`);
}

/** The first data offset at or after `offset`, or -1 when only a hole (or EOF) follows. */
export function seekData(fd: number, offset: number): number {
  checkOffset(offset, 'offset');
  return loadNative().seek(fd, offset, SEEK_DATA);
}

/** The first hole offset at or after `offset` (the file size counts as a hole). */
export function seekHole(fd: number, offset: number): number {
  checkOffset(offset, 'offset');
  return loadNative().seek(fd, offset, SEEK_HOLE);
}

/** Deallocates [offset, offset+length) keeping the file size; the range reads back zeros. */
export function punchHole(fd: number, offset: number, length: number): void {
  checkOffset(offset, 'offset');
  checkOffset(length, 'length');
  if (length > 0) loadNative().punchHole(fd, offset, length);
}

/**
 * Reads into `buffer[offset, offset + length)` from `position` what the page cache holds, without
 * waiting for the disk (preadv2 with RWF_NOWAIT), synchronously: the bytes read (short, or 0 at
 * the end of the file), or -1 when nothing could be read without waiting.
 */
export function preadNoWait(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number {
  checkOffset(offset, 'offset');
  checkOffset(length, 'length');
  checkOffset(position, 'position');
  if (offset + length > buffer.length) throw new ArgumentError(`offset ${offset} + length ${length} is past the buffer's ${buffer.length} bytes`);
  return loadNative().preadNoWait(fd, buffer, offset, length, position);
}

/** Bytes of small reads and writes one pool job of FileIoBatch takes at most. */
const BATCH_BYTES = 256 * 1024;

interface BatchedOp {
  resolve: (bytes: number) => void;
  reject: (err: Error) => void;
  write: boolean;
}

/**
 * Small preads and pwrites gathered over one turn of the event loop and handed to the libuv
 * thread pool as one job (`fileIoBatchAsync`) per BATCH_BYTES, instead of one job each: on a
 * machine with few cores, each job costs the event loop a wake-up of a pool thread (which often
 * runs in its place) and each completion a wake-up of the loop. The ops of a job run one after
 * the other, in the order submitted. Each resolves with the bytes moved (a read is short only at
 * the end of the file) or rejects with an error carrying `errno` and `syscall`, as Node's do.
 */
export class FileIoBatch {
  private fds: number[] = [];
  private writes: number[] = [];
  private buffers: Uint8Array[] = [];
  private positions: number[] = [];
  private ops: BatchedOp[] = [];
  private bytes = 0;
  private scheduled = false;

  /** Queues one pread (write false) or pwrite of all of `buffer` at `position` on `fd`. */
  submit(fd: number, write: boolean, buffer: Uint8Array, position: number): Promise<number> {
    checkOffset(position, 'position');
    if (this.bytes + buffer.length > BATCH_BYTES && this.ops.length > 0) this.flush();
    return new Promise<number>((resolve, reject) => {
      this.fds.push(fd);
      this.writes.push(write ? 1 : 0);
      this.buffers.push(buffer);
      this.positions.push(position);
      this.ops.push({ resolve, reject, write });
      this.bytes += buffer.length;
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  /** Hands what is queued to the pool as one job. */
  private readonly flush = (): void => {
    this.scheduled = false;
    const ops = this.ops;
    if (ops.length === 0) return;
    const job = loadNative().fileIoBatchAsync(Int32Array.from(this.fds), Uint8Array.from(this.writes), this.buffers, Float64Array.from(this.positions));
    this.fds = [];
    this.writes = [];
    this.buffers = [];
    this.positions = [];
    this.ops = [];
    this.bytes = 0;
    job.then(
      (results) => {
        for (let i = 0; i < ops.length; i++) {
          const r = results[i];
          if (r >= 0) ops[i].resolve(r);
          else {
            const syscall = ops[i].write ? 'pwrite' : 'pread';
            const code = getSystemErrorName(r);
            ops[i].reject(Object.assign(new Error(`${syscall}: ${code}`), { errno: -r, code, syscall }));
          }
        }
      },
      (err: Error) => {
        for (const op of ops) op.reject(err);
      },
    );
  };
}

/** The batch every file store shares: ops of all LUNs in one turn go out together. */
export const fileIoBatch = new FileIoBatch();

/** Copies `length` bytes between files in the kernel (loops over short copies). */
export function copyFileRange(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): void {
  checkOffset(offIn, 'offIn');
  checkOffset(offOut, 'offOut');
  checkOffset(length, 'length');
  const native = loadNative();
  let done = 0;
  while (done < length) {
    const n = native.copyFileRange(fdIn, offIn + done, fdOut, offOut + done, length - done);
    if (n === 0) throw Object.assign(new Error('copy_file_range: unexpected end of source file'), { syscall: 'copy_file_range' });
    done += n;
  }
}

/**
 * copy_file_range on the libuv thread pool (the event loop keeps serving meanwhile); resolves
 * when all `length` bytes are copied. The kernel may share extents (reflink) where the file system
 * can; it does not keep holes, so callers walk SEEK_DATA/SEEK_HOLE themselves.
 */
export async function copyFileRangeAsync(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): Promise<void> {
  checkOffset(offIn, 'offIn');
  checkOffset(offOut, 'offOut');
  checkOffset(length, 'length');
  if (length === 0) return;
  await loadNative().copyFileRangeAsync(fdIn, offIn, fdOut, offOut, length);
}

/** No readahead for reads through `fd` (POSIX_FADV_RANDOM on its open file only). */
export function fadviseRandom(fd: number): void {
  loadNative().fadviseRandom(fd);
}

/**
 * Fills `buffers[i]` from `positions[i]`, all in one call on the libuv thread pool, and returns
 * the CRC32C of each (computed on the pool thread too). With `zeros`, a buffer whose bytes are all
 * zero gives undefined instead (a hole of a thin file, or zeros written). A snapshot's captures
 * of original chunks cost the event loop one call per batch this way (src/cow/original-reader.ts).
 */
export async function readChunks(fd: number, buffers: Uint8Array[], positions: number[], zeros: boolean): Promise<Array<number | undefined>> {
  if (buffers.length !== positions.length) throw new ArgumentError(`${buffers.length} buffers for ${positions.length} positions`);
  for (const p of positions) checkOffset(p, 'position');
  if (buffers.some((b) => b.length === 0)) throw new ArgumentError('readChunks needs non-empty buffers');
  if (buffers.length === 0) return [];
  const r = await loadNative().readChunksAsync(fd, buffers, positions, zeros);
  return r.map((x) => (x < 0 ? undefined : x));
}

/**
 * The order of one OBF log's capture commits (captureCommit's `order`): a commit's host writes
 * are made only once its records and those of every commit holding an earlier ticket on the
 * chain are durable. Opaque; a new chain starts a new order.
 */
export type CaptureChain = { readonly __captureChain: unique symbol };

export function newCaptureChain(): CaptureChain {
  return loadNative().captureChainNew() as CaptureChain;
}

/**
 * The next ticket of `chain`, for one commit, taken in commit order before anything of the commit
 * can fail. Its job finishes it; if no job gets it (captureCommit threw), abandon it.
 */
export function takeCaptureTicket(chain: CaptureChain): number {
  return loadNative().captureChainTake(chain);
}

/** Finishes a ticket no job got as failed: no host write of a later ticket passes it. */
export function abandonCaptureTicket(chain: CaptureChain, ticket: number): void {
  loadNative().captureChainAbandon(chain, ticket);
}

/**
 * Where a capture's record header takes its CRC: the OBF record layout (src/obf/format.ts
 * OBF_RECORD_HEADER_LENGTH, OBF_RECORD_CRC_OFFSET; docs/obf-format.md), handed to the native job
 * so the C++ copies no fact of the format.
 */
export interface CaptureRecordLayout {
  /** Defined bytes of a header: every `reads[i].header` has at least these. */
  headerLength: number;
  /** The CRC's 4 bytes (big-endian) start here; it covers the header bytes before them, then the data. */
  crcOffset: number;
}

/** The host writes a capture commit may carry: made on the source after the commit is durable. */
export interface CaptureHostWrite {
  position: number;
  pieces: Uint8Array[];
  /** pwritev2 with RWF_DSYNC (durable when done). */
  fua: boolean;
  /**
   * Shared with the pool thread: 0 pending; set it to 1 (Atomics.compareExchange from 0) to
   * cancel; 2 once the write has started (too late to cancel).
   */
  state: Int32Array;
}

export const HOST_WRITE_PENDING = 0;
export const HOST_WRITE_CANCELLED = 1;
export const HOST_WRITE_STARTED = 2;

/**
 * One OBF group commit of snapshot captures, on the libuv thread pool: each original read from
 * `srcFd` into `reads[i].into` and its record CRC (CRC32C over header bytes 0..crcOffset−1,
 * continued over the data) stored big-endian in `reads[i].header` at `record.crcOffset`, then
 * each run written with one pwritev on `obfFd` (open it O_DSYNC for a durable commit); then, with
 * an `order` (a chain and this commit's ticket on it), once the commits holding earlier tickets
 * succeeded too, each host write not cancelled made on `hosts.fd` (the source, opened for
 * writing). Resolves with the record CRCs and, per host write, 0 (written), an errno, or -1 (not
 * written: cancelled, or an earlier commit of the chain failed); rejects with `phase` 'read' (the
 * source) or 'write' (the OBF), no host write made. Throws (synchronously) when no job was
 * queued: then abandon the ticket. See src/cow/capture-commit.ts commitCaptures.
 */
export function captureCommit(
  srcFd: number,
  reads: Array<{ into: Uint8Array; position: number; header: Uint8Array }>,
  record: CaptureRecordLayout,
  obfFd: number,
  runs: Array<{ position: number; pieces: Uint8Array[] }>,
  order?: { chain: CaptureChain; ticket: number },
  hosts?: { fd: number; writes: CaptureHostWrite[] },
): Promise<{ crcs: number[]; hosts: number[] }> {
  const { headerLength, crcOffset } = record;
  if (!Number.isSafeInteger(crcOffset) || crcOffset < 0 || !Number.isSafeInteger(headerLength) || headerLength < crcOffset + 4) {
    throw new ArgumentError(`a record layout needs 0 <= crcOffset and crcOffset + 4 <= headerLength, got crcOffset ${crcOffset}, headerLength ${headerLength}`);
  }
  for (const r of reads) {
    checkOffset(r.position, 'read position');
    if (r.into.length === 0) throw new ArgumentError('a capture read needs a non-empty buffer');
    if (r.header.length < headerLength) throw new ArgumentError(`a record header is at least ${headerLength} bytes, got ${r.header.length}`);
  }
  for (const r of runs) checkOffset(r.position, 'run position');
  if (hosts && hosts.writes.length > 0) {
    if (!order) throw new ArgumentError('host writes need a capture chain and ticket (they wait for the commits before theirs)');
    if (!Number.isInteger(hosts.fd) || hosts.fd < 0) throw new ArgumentError(`host writes need the source's descriptor, got ${hosts.fd}`);
    for (const h of hosts.writes) {
      checkOffset(h.position, 'host write position');
      if (!(h.state instanceof Int32Array) || h.state.length !== 1) throw new ArgumentError('a host write state is an Int32Array of one element');
      if (!Array.isArray(h.pieces) || !h.pieces.every((b) => b instanceof Uint8Array)) throw new ArgumentError('host write pieces are Uint8Arrays');
    }
  }
  if (order && (!Number.isSafeInteger(order.ticket) || order.ticket < 1)) throw new ArgumentError(`a capture ticket is a positive integer, got ${order.ticket}`);
  return loadNative().captureCommitAsync(srcFd, reads, crcOffset, obfFd, runs, order?.chain, order?.ticket, hosts?.writes, hosts?.fd);
}

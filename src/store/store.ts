/**
 * The one interface of backing stores (tgt's bs_* / LIO's backends / gotgt's BackingStore): the
 * SCSI layer and the copy manager see only this. The COW filter is a store that wraps another.
 *
 * Addresses and lengths are in logical blocks of `blockSize` bytes. Offsets are `bigint` LBAs;
 * counts are numbers (a single request never exceeds 2^32 blocks). Implementations must:
 * - never half-apply a failed write as far as they can help it (validate first, then write);
 * - report failures as StoreError with a sense reason the SCSI layer can send back unchanged
 *   (a remote LUN's own sense is forwarded as is);
 * - be safe under concurrent requests (the SCSI layer issues many at once).
 */
import { AgentError } from '../errors';

export interface StoreIdentity {
  /** Stable identity of the backing object (e.g. "file:/path" or "iscsi://host/iqn/lun"). */
  name: string;
  /** 16-byte NAA IEEE Registered Extended (6h) designator seed, stable for this backing object. */
  naa?: Buffer;
  /** Unit serial number for VPD 0x80, stable for this backing object. */
  serial?: string;
}

export interface Extent {
  lba: bigint;
  blocks: bigint;
  /** True when the range is allocated (mapped); false for a hole (reads back zeros). */
  mapped: boolean;
}

export interface Store {
  readonly kind: 'file' | 'memory' | 'remote' | 'cow' | string;
  readonly blockSize: number;
  /** Capacity in blocks. */
  readonly blocks: bigint;
  readonly identity: StoreIdentity;
  readonly readOnly: boolean;
  /** Reads `count` blocks at `lba`; with `into`, the data lands there and a view is returned. */
  read(lba: bigint, count: number, into?: Buffer): Promise<Buffer>;
  /** Writes whole blocks at `lba`. `fua`: durable before resolving (write + flush). */
  write(lba: bigint, data: Buffer, opts?: { fua?: boolean }): Promise<void>;
  /**
   * Optional: writes `pieces` back to back from `lba` as one write (a gathered pwritev), so a
   * caller holding a record's header and data apart need not copy them together.
   */
  writev?(lba: bigint, pieces: readonly Buffer[], opts?: { fua?: boolean }): Promise<void>;
  /** Makes every completed write durable (fdatasync / SYNCHRONIZE CACHE). */
  flush(): Promise<void>;
  /** Deallocates (or zeroes) the range; afterwards it reads back zeros. */
  unmap(lba: bigint, count: bigint): Promise<void>;
  /** Mapped/unmapped extents covering [lba, lba+count) in order (GET LBA STATUS, zero skipping). */
  extents(lba: bigint, count: bigint): Promise<Extent[]>;
  /** True when unmapped ranges are known to read back zeros (LBPRZ). */
  readonly unmapReadsZero: boolean;
  /**
   * Optional: why the medium is not ready now (a StoreError carrying the sense), or undefined.
   * TEST UNIT READY answers it; the store refuses its own changes with it.
   */
  notReady?(): StoreError | undefined;
  close(): Promise<void>;

  // Optional capabilities. A filter (a store wrapping another, like the COW filter) forwards
  // those it can to its child, applying its own rules, as QEMU's filter drivers forward
  // bdrv_co_copy_range to theirs; callers ask the store, never its class.

  /**
   * Optional: fills each `into` (whole blocks) from its LBA in one request off the event loop and
   * returns each one's CRC32C — or, with `zeros`, undefined for one whose bytes are all zero (a
   * snapshot's reads of original chunks: src/cow/original-reader.ts).
   */
  readChunks?(chunks: ReadonlyArray<{ lba: bigint; into: Buffer }>, opts: { zeros: boolean }): Promise<Array<number | undefined>>;
  /**
   * Optional: the regular file this store is, or stands on behind its filters (for checks on its
   * path, and for native jobs on its raw descriptors: the COW filter's capture commit).
   */
  backingFile?(): BackingFile | undefined;
  /**
   * Optional, the kernel copy's source side (QEMU's bdrv_co_copy_range_from): how to copy blocks
   * of this store into `dst` with no data passing through user space, or undefined when these two
   * stores cannot. A filter forwards it to its child; the store at the bottom asks
   * `dst.copyRangeFrom(itself)`.
   */
  copyRangeTo?(dst: Store): RangeCopy | undefined;
  /**
   * Optional, the kernel copy's destination side (QEMU's bdrv_co_copy_range_to), asked by the
   * store at the bottom of the source: a filter forwards it to its child and applies its own
   * rules to each copy (the COW filter lets one through only while no snapshot captures).
   */
  copyRangeFrom?(src: Store): RangeCopy | undefined;
}

/**
 * One kernel copy (Store.copyRangeTo): `count` blocks at the source's `lba` to the destination's
 * `dstLba` (same block size, ranges not overlapping on one store), holes kept holes; `fua`: the
 * destination is durable before it resolves. Resolves false, having copied nothing, when the
 * destination refuses it now (the caller copies the range itself); rejects with a StoreError.
 */
export type RangeCopy = (lba: bigint, dstLba: bigint, count: bigint, opts?: { fua?: boolean }) => Promise<boolean>;

/**
 * The regular file under a store (Store.backingFile), for what works on the file itself: checks
 * on its path, and native jobs on the libuv thread pool that take its raw descriptors (the COW
 * filter's capture commit, src/cow/capture-commit.ts). Such a job is counted from
 * beginRequest() until the function it returned is called: close() waits for every one, so a
 * descriptor is never closed (and its number reused by the next open) under a running job.
 */
export interface BackingFile {
  /** The file's real path. */
  readonly path: string;
  readonly identity: StoreIdentity;
  readonly blockSize: number;
  readonly blocks: bigint;
  readonly readOnly: boolean;
  /** The descriptor the store reads and writes through. */
  readonly fd: number;
  /** Throws the store's not-ready error once it is closed or closing: check before a job starts. */
  checkOpen(): void;
  /** A descriptor opened O_DSYNC (a write through it is durable when it returns), opened on first use. */
  dsyncFd(): number;
  /** A read-only descriptor with no readahead (POSIX_FADV_RANDOM), opened on first use. */
  randomReadFd(): number;
  /** Counts one job on the descriptors as in flight; call the function returned, once, when it has ended. */
  beginRequest(): () => void;
  /** A failed request on the file (an errno error) as the store reports it: a StoreError. */
  fail(err: unknown, op: 'read' | 'write', what: string): Error;
}

/**
 * Why a store request failed, in the standard's words. The SCSI layer maps each kind to one
 * sense reason of the shared table (target/scsi/sense-errors.ts senseOfStoreError) and writes it
 * in the format the initiator's D_SENSE asks for; only `forwarded` carries sense bytes of its own.
 */
export type StoreFailure =
  | { kind: 'lba-out-of-range' }
  | { kind: 'read-error' }
  | { kind: 'write-error' }
  /** A write the device (not its medium) could not make: a COW capture failed (OBF or source I/O). */
  | { kind: 'hardware-write-error' }
  | { kind: 'write-protected' }
  | { kind: 'not-ready' }
  /** Not ready for a while, hosts retry: a snapshot's source resuming after a restart. */
  | { kind: 'not-ready-becoming-ready' }
  /** Not ready until someone acts: a snapshot's source whose session could not be resumed. */
  | { kind: 'not-ready-manual-intervention' }
  /** Out of space (ENOSPC), or the COW filter's OBF full under protect-snapshot. */
  | { kind: 'no-space' }
  /** The request took too long to process; hosts retry (a COW capture timed out). */
  | { kind: 'command-timeout' }
  /** The raw sense (and status) a remote LUN answered with, forwarded unchanged. */
  | { kind: 'forwarded'; status: number; sense?: Buffer };

/** A store request failed (code ERR_STORE); `failure` says why, for the SCSI layer's sense. */
export class StoreError extends AgentError {
  readonly failure: StoreFailure;
  constructor(failure: StoreFailure, message: string, options?: { cause?: unknown }) {
    super('ERR_STORE', message, options);
    this.failure = failure;
  }
}

/** Throws lba-out-of-range unless [lba, lba+count) lies within the store (SBC-3 r36 4.5). */
export function checkRange(store: Pick<Store, 'blocks'>, lba: bigint, count: bigint | number): void {
  const n = BigInt(count);
  if (lba < 0n || n < 0n || lba + n > store.blocks) {
    throw new StoreError({ kind: 'lba-out-of-range' }, `blocks ${lba}+${n} outside 0..${store.blocks}`);
  }
}

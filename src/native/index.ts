/**
 * The one loader and type declaration of the native addon, xcopy_native (native/, node-gyp;
 * docs/native.md). It holds libiscsi initiator sessions (NativeSession, used by
 * src/initiator/session.ts), block-file I/O (used through src/native/fileops.ts), CRC32C (used
 * through src/native/crc32c.ts), SHA-256 on the thread pool (src/native/digest.ts) and the walk
 * of an ext2/3/4 file system by libext2fs (src/native/ext2fs.ts). Only
 * this file knows where the .node file lives and requires it; every function the addon exports
 * is declared here, once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AgentError } from '../errors';

/** libiscsi's scsi_xfer_dir. */
export const enum XferDir {
  NONE = 0,
  READ = 1,
  WRITE = 2,
}

/** libiscsi's status values beyond the SCSI ones (iscsi.h enum scsi_status). */
export const LIBISCSI_STATUS_CANCELLED = 0x0f000000;
export const LIBISCSI_STATUS_ERROR = 0x0f000001;
export const LIBISCSI_STATUS_TIMEOUT = 0x0f000002;

/** libiscsi's enum scsi_residual. */
export const enum ResidualKind {
  NONE = 0,
  UNDERFLOW = 1,
  OVERFLOW = 2,
}

export interface NativeResult {
  status: number;
  error?: string;
  data?: Buffer;
  sense?: Buffer;
  residual?: number;
  residualKind?: ResidualKind;
  targets?: { name: string; portals: string[] }[];
}

export interface NativeSession {
  setTargetName(name: string): number;
  setSessionType(discovery: boolean): number;
  setHeaderDigest(mode: number): number;
  setInitiatorChap(user: string, password: string): number;
  setTargetChap(user: string, password: string): number;
  setTimeout(seconds: number): void;
  setAutoReconnect(on: boolean): void;
  connect(portal: string, lun: number): Promise<NativeResult>;
  execute(
    lun: number,
    cdb: Buffer,
    dir: XferDir,
    dataOut: Buffer | null,
    dataInLength: number,
    dataInBuffer?: Buffer,
  ): Promise<NativeResult>;
  discovery(): Promise<NativeResult>;
  logout(): Promise<NativeResult>;
  close(): void;
  queueLength(): number;
  lastError(): string;
}

/** Where ext2TocAsync reads: an image file (or block device), or a LUN by its own libiscsi session. */
export type Ext2TocSource =
  | { file: string; blockSize: number }
  | {
      initiator: string;
      portal: string;
      target: string;
      lun: number;
      user?: string;
      password?: string;
      targetUser?: string;
      targetPassword?: string;
      /** libiscsi's enum iscsi_header_digest (0 NONE, 1 NONE_CRC32C, 2 CRC32C_NONE, 3 CRC32C). */
      headerDigest?: number;
      timeoutSec: number;
    };

/**
 * The numbers of one inode reached from the root in Ext2RawToc.inodes, as libext2fs read it
 * (native/src/ext2toc.cc, kInodeStride): an inode's record starts at `i * INODE_STRIDE`. 32-bit
 * words, so that reading them makes small integers, not a heap number each (docs/toc.md, "Speed").
 */
export const enum Ext2InodeField {
  ino,
  mode,
  uid,
  gid,
  links,
  flags,
  sizeHigh,
  sizeLow,
  /** Seconds since the epoch (with the extra epoch bits of large inodes): high (signed) and low 32 bits; nanoseconds. */
  mtimeHigh,
  mtimeLow,
  mtimeNsec,
  /** Character and block devices (Ext2InodeBits.device): the device number as stored (old or new encoding). */
  rdev,
  /** Index and count of its runs in `extents` (4 numbers each), of its tree/indirect blocks in `meta`. */
  extStart,
  extCount,
  metaStart,
  metaCount,
  /** Its bytes in `blob`: a symlink's target, or the inline data of a file or directory. */
  blobStart,
  blobLength,
  /** Ext2InodeBits. */
  bits,
  INODE_STRIDE,
}

export const enum Ext2InodeBits {
  /** The data lives in the inode (EXT4_INLINE_DATA_FL). */
  inline = 1,
  /** A symlink whose target is in i_block. */
  fastSymlink = 2,
  /** `blob` holds its symlink target. */
  target = 4,
  /** `blob` holds its inline data (files and directories). */
  inlineData = 8,
  /** A character or block device: `rdev` holds its number. */
  device = 16,
  /** In a batch: a record not complete yet (it comes in the result). */
  pending = 128,
}

/** The numbers of one directory entry in Ext2RawToc.links (kLinkStride): entry `i` starts at `i * LINK_STRIDE`. */
export const enum Ext2LinkField {
  parent,
  ino,
  /** The entry's file type (EXT2_FT_*). */
  fileType,
  /** Its name's bytes in `names`. */
  nameStart,
  nameLength,
  /** The places of the parent and of the inode in `inodes` (the parent's + 1; 0 for the root's entry). */
  parentIndexPlus1,
  index,
  LINK_STRIDE,
}

/** The walk's raw result: src/toc/ makes the TOC of it. */
export interface Ext2RawToc {
  fs: {
    blockSize: number;
    blocksCount: number;
    firstDataBlock: number;
    inodesCount: number;
    inodeSize: number;
    featureCompat: number;
    featureIncompat: number;
    featureRoCompat: number;
    state: number;
    revLevel: number;
    label: Buffer;
    uuid: string;
    /** Feature names as e2fsprogs spells them (libe2p's e2p_feature2string). */
    features: string[];
  };
  deviceBytes: number;
  deviceBlockSize: number;
  /** Reads from the device, their bytes, and the reads the walk waited for outside its plan (misses). */
  reads: number;
  bytesRead: number;
  misses: number;
  /** Inodes in use found by the scan of the inode tables. */
  scanned: number;
  /** Milliseconds: opening, the inode tables, the directories, the maps read later, the tree. */
  phaseMs: Float64Array;
  /** CPU milliseconds of the job: the walk's thread (connect, walk, close), the I/O thread. */
  cpuMs: Float64Array;
  /** Every inode reached from the root, in the order first reached (Ext2InodeField). */
  inodes: Uint32Array;
  /** For each of them, its place among the records handed to onBatch complete, or 2^32-1. */
  sentAs: Uint32Array;
  /** Directory entries in the order of the walk (Ext2LinkField); the root's is first, with an empty name. */
  links: Uint32Array;
  /** The entries' names, joined by '/' (no name holds one). */
  names: Buffer;
  /** Symlink targets and inline data. */
  blob: Buffer;
  /** Mapped runs: logical block, physical block, blocks, uninit (0/1), in file-system blocks. */
  extents: Float64Array;
  /** Extent-tree and indirect blocks (file-system blocks). */
  meta: Float64Array;
}

/**
 * Inodes the walk's scan kept, handed over while the walk goes on: `inodes` as in Ext2RawToc
 * (Ext2InodeField, runs, map blocks and bytes at places in this batch's arrays), records that are
 * not complete yet marked Ext2InodeBits.pending; `first` is the place of the first among all the
 * records kept (Ext2RawToc.sentAs).
 */
export interface Ext2RawBatch {
  first: number;
  inodes: Uint32Array;
  extents: Float64Array;
  meta: Float64Array;
  blob: Buffer;
}

/** A failed walk: `kind` says which part failed; `ino`/`block` what it names. */
export interface Ext2TocError extends Error {
  kind: 'open' | 'connect' | 'fs' | 'unsupported' | 'io';
  errcode?: number;
  ino?: number;
  block?: number;
}

/** Everything the addon exports (native/src/addon.cc), each declared once. */
export interface NativeModule {
  NativeSession: new (initiatorName: string) => NativeSession;
  /** lseek with SEEK_DATA (3) or SEEK_HOLE (4); -1 when no data follows (ENXIO). */
  seek(fd: number, offset: number, whence: 3 | 4): number;
  /** fallocate(PUNCH_HOLE | KEEP_SIZE). */
  punchHole(fd: number, offset: number, length: number): void;
  /** preadv2 with RWF_NOWAIT into buffer[offset..offset+length): bytes read (may be short), -1 when it would wait for the disk. */
  preadNoWait(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  /** Op i: pread (writes[i] = 0) or pwrite of buffers[i] at positions[i] on fds[i], all in one thread-pool job; per op the bytes moved or -errno. */
  fileIoBatchAsync(fds: Int32Array, writes: Uint8Array, buffers: Uint8Array[], positions: Float64Array): Promise<Float64Array>;
  /** copy_file_range; returns the bytes copied (may be short). */
  copyFileRange(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): number;
  copyFileRangeAsync(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): Promise<number>;
  /** Fills buffers[i] from positions[i] on the thread pool; the CRC32C of each, or -1 when `zeros` and all its bytes are zero. */
  readChunksAsync(fd: number, buffers: Uint8Array[], positions: number[], zeros: boolean): Promise<number[]>;
  /**
   * Reads originals into `into`, stores record CRCs big-endian at `header[crcOffset..+3]`, writes
   * the runs (pwritev each), then (with a chain, in its order) the host writes not cancelled.
   * Rejects with `phase` 'read' | 'write'.
   */
  captureCommitAsync(
    srcFd: number,
    reads: Array<{ into: Uint8Array; position: number; header: Uint8Array }>,
    crcOffset: number,
    obfFd: number,
    runs: Array<{ position: number; pieces: Uint8Array[] }>,
    chain?: unknown,
    ticket?: number,
    hosts?: Array<{ position: number; pieces: Uint8Array[]; fua: boolean; state: Int32Array }>,
    hostFd?: number,
  ): Promise<{ crcs: number[]; hosts: number[] }>;
  /** POSIX_FADV_RANDOM on the open file of `fd` (no readahead for its reads). */
  fadviseRandom(fd: number): void;
  /** A new capture chain (see src/native/fileops.ts CaptureChain). */
  captureChainNew(): unknown;
  /** The next ticket of a chain. */
  captureChainTake(chain: unknown): number;
  /** Finishes a ticket no job got, as failed. */
  captureChainAbandon(chain: unknown, ticket: number): void;
  /** CRC32C of `data` continuing `previous` (0 to start): SSE4.2 where present, else the tables. */
  crc32c(data: Uint8Array, previous: number): number;
  /** The same by the portable tables on any CPU (the fallback, for tests). */
  crc32cPortable(data: Uint8Array, previous: number): number;
  /** True when crc32c takes the SSE4.2 path (chosen once, at load). */
  crc32cHardware: boolean;
  /** SHA-256 of each `pieceBytes` piece of `data` (0: of all of it) on the libuv thread pool, read in place; the digests concatenated (see src/native/digest.ts). */
  sha256Async(data: Buffer, pieceBytes: number): Promise<Buffer>;
  /** sd_notify(3): sends `state` ("READY=1", ...) to $NOTIFY_SOCKET; false when it is unset. */
  sdNotify(state: string): boolean;
  /**
   * Walks the ext2/3/4 file system starting at byte `offset` of the source with libext2fs, on
   * the thread pool (see src/native/ext2fs.ts); rejects with an Ext2TocError.
   */
  ext2TocAsync(
    source: Ext2TocSource,
    offset: number,
    options: { windowBytes: number; windows: number },
    onBatch?: (batch: Ext2RawBatch) => void,
  ): Promise<Ext2RawToc>;
}

/** The addon's target name in native/binding.gyp (and the Makefile's ADDON). */
const ADDON_NAME = 'xcopy_native';

let cached: NativeModule | undefined;

/** The addon, loaded once. Throws ERR_NATIVE_MISSING with what to do when it was not built. */
export function loadNative(): NativeModule {
  if (cached) return cached;
  const candidates: string[] = [];
  for (let dir = __dirname, i = 0; i < 5; i++, dir = path.dirname(dir)) {
    candidates.push(path.join(dir, 'native', 'build', 'Release', `${ADDON_NAME}.node`));
  }
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) {
    throw new AgentError(
      'ERR_NATIVE_MISSING',
      `the native addon is not built (native/build/Release/${ADDON_NAME}.node missing): run \`make setup\``,
    );
  }
  cached = require(found) as NativeModule; // eslint-disable-line @typescript-eslint/no-require-imports
  return cached;
}

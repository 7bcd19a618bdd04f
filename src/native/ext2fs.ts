/**
 * The walk of an ext2/3/4 file system by e2fsprogs' own library, libext2fs (native/src/ext2toc.cc,
 * docs/toc.md): on the libuv thread pool, through an io_manager that reads an image file or a
 * LUN over a libiscsi session of the job's own. Arguments are checked here; the C++ trusts them.
 * The raw result (inodes, directory entries, runs in file-system blocks) becomes a table of
 * contents in src/toc/.
 */
import { AgentError, ArgumentError, type ErrorCode } from '../errors';
import { loadNative, type Ext2RawBatch, type Ext2RawToc, type Ext2TocError, type Ext2TocSource } from './index';

export type { Ext2RawBatch, Ext2RawToc, Ext2TocSource } from './index';

/** A file system the walk could not read: `ino` and `block` say what it names, when it does. */
export class FileSystemError extends AgentError {
  readonly ino?: number;
  readonly block?: number;
  /** libext2fs's errcode_t (com_err), when the refusal was libext2fs's. */
  readonly errcode?: number;
  constructor(code: ErrorCode, message: string, what: { ino?: number; block?: number; errcode?: number } = {}) {
    super(code, message);
    this.ino = what.ino;
    this.block = what.block;
    this.errcode = what.errcode;
  }
}

export interface Ext2WalkOptions {
  /**
   * Bytes read around a read the walk did not plan (a miss; a power of two, 4 KiB .. 16 MiB).
   * Default 64 KiB.
   */
  windowBytes?: number;
  /**
   * The cache, in windows (1 .. 65536): windowBytes × windows bytes of what was read are kept,
   * half of it for reading ahead. Default 256 (16 MiB with the default window).
   */
  windows?: number;
  /**
   * Called on the event loop with the inodes the walk's scan kept, while the walk goes on (so
   * that their entries are made meanwhile: src/toc/toc.ts, TocBuilder). Must not throw.
   */
  onBatch?: (batch: Ext2RawBatch) => void;
}

const isPow2 = (n: number) => Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0;

function checkSource(source: Ext2TocSource): void {
  if ('file' in source) {
    if (typeof source.file !== 'string' || source.file === '' || source.file.includes('\0')) {
      throw new ArgumentError('the image file must be a non-empty path');
    }
    if (source.blockSize !== 512 && source.blockSize !== 4096) {
      throw new ArgumentError(`the image's block size must be 512 or 4096, got ${source.blockSize}`);
    }
    return;
  }
  for (const k of ['initiator', 'portal', 'target'] as const) {
    if (typeof source[k] !== 'string' || source[k] === '' || source[k].includes('\0')) {
      throw new ArgumentError(`the iSCSI ${k} must be a non-empty string`);
    }
  }
  if (!Number.isInteger(source.lun) || source.lun < 0 || source.lun > 16383) {
    throw new ArgumentError(`the LUN must be 0..16383, got ${source.lun}`);
  }
  if (!Number.isInteger(source.timeoutSec) || source.timeoutSec < 0 || source.timeoutSec > 3600) {
    throw new ArgumentError(`the timeout must be 0..3600 s, got ${source.timeoutSec}`);
  }
  if (source.headerDigest !== undefined && ![0, 1, 2, 3].includes(source.headerDigest)) {
    throw new ArgumentError(`header digest must be 0..3, got ${source.headerDigest}`);
  }
  if ((source.user === undefined) !== (source.password === undefined)) {
    throw new ArgumentError('CHAP needs both a user and a password');
  }
  if ((source.targetUser === undefined) !== (source.targetPassword === undefined)) {
    throw new ArgumentError('mutual CHAP needs both a target user and a target password');
  }
}

/** The native error as one of the registry's: which code depends on the part that failed. */
function mapError(thrown: unknown): unknown {
  // Not `instanceof Error`: the addon's errors come from the main realm, which a test's VM context does not share.
  if (typeof thrown !== 'object' || thrown === null || typeof (thrown as Partial<Ext2TocError>).kind !== 'string') return thrown;
  const e = thrown as Ext2TocError;
  const what = { ino: e.ino, block: e.block, errcode: e.errcode };
  switch (e.kind) {
    case 'open':
      return new ArgumentError(`${e.message} (check the image path)`);
    case 'connect':
      return new AgentError('ERR_ISCSI_TRANSPORT', `${e.message} (check the LUN URL and that the target is up)`);
    case 'io':
      return new FileSystemError('ERR_FS_READ', e.message, what);
    case 'unsupported':
      return new FileSystemError('ERR_FS_UNSUPPORTED', e.message, what);
    default:
      return new FileSystemError('ERR_FS_CORRUPT', e.message, what);
  }
}

/**
 * Walks the file system that starts at byte `offset` of `source` and returns what libext2fs
 * read: every inode reached from the root by the directory tree, every directory entry, every
 * inode's runs. Rejects with a FileSystemError (ERR_FS_CORRUPT, ERR_FS_UNSUPPORTED, ERR_FS_READ)
 * naming the inode or block, an ArgumentError for an image that cannot be opened, or
 * ERR_ISCSI_TRANSPORT when the walk's own session cannot log in.
 */
export async function walkExt2(source: Ext2TocSource, offset: number, opts: Ext2WalkOptions = {}): Promise<Ext2RawToc> {
  checkSource(source);
  if (!Number.isSafeInteger(offset) || offset < 0) throw new ArgumentError(`the file system's offset must be a byte count ≥ 0, got ${offset}`);
  const windowBytes = opts.windowBytes ?? 64 * 1024;
  const windows = opts.windows ?? 256;
  if (!isPow2(windowBytes) || windowBytes < 4096 || windowBytes > 16 * 1024 * 1024) {
    throw new ArgumentError(`the read window must be a power of two from 4 KiB to 16 MiB, got ${windowBytes}`);
  }
  if (!Number.isInteger(windows) || windows < 1 || windows > 65536) throw new ArgumentError(`windows must be 1..65536, got ${windows}`);
  if (opts.onBatch !== undefined && typeof opts.onBatch !== 'function') throw new ArgumentError('onBatch must be a function');
  try {
    return await loadNative().ext2TocAsync(source, offset, { windowBytes, windows }, opts.onBatch);
  } catch (e) {
    throw mapError(e);
  }
}

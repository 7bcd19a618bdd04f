/**
 * readToc: the table of contents of the ext2/3/4 file system on a LUN (or in an image file) —
 * where it starts (detect.ts: partition tables read through the project's initiator, or the
 * file), then the walk by libext2fs on the thread pool with a session of its own
 * (src/native/ext2fs.ts), then the TOC (toc.ts). docs/toc.md.
 */
import fsp from 'node:fs/promises';
import { ArgumentError } from '../errors';
import { defaultInitiatorName, IscsiSession, type SessionOptions } from '../initiator/session';
import { parseIscsiUrl } from '../initiator/url';
import { walkExt2, type Ext2TocSource, type Ext2WalkOptions } from '../native/ext2fs';
import { chooseFileSystem, detectLayout, type DeviceLayout, type Partition, type ReadAt } from './detect';
import { TocBuilder, type Toc } from './toc';

export interface ReadTocOptions {
  /** The LUN, as a libiscsi URL (CHAP from the URL or the LIBISCSI_CHAP_* variables). */
  url?: string;
  /** Or an image file (or block device). */
  file?: string;
  /** The image's block size (LBAs of partition tables and of the TOC's ranges). Default 512. */
  blockSize?: 512 | 4096;
  /** The byte where the file system starts; by default found from the partition table. */
  offset?: number;
  /** Which partition (1-based, as `sfdisk -l` numbers them) when several hold ext2/3/4. */
  partition?: number;
  session?: SessionOptions;
  walk?: Ext2WalkOptions;
}

export interface TocResult extends Toc {
  /** The partition table found (scheme 'none' when the offset was given). */
  layout: DeviceLayout;
  partition?: Partition;
  /** Device reads of the walk and their bytes. */
  reads: number;
  bytesRead: number;
  /** Where the time went (docs/toc.md, "Speed"). */
  timing?: TocTiming;
}

/** Milliseconds of one readToc, by part. */
export interface TocTiming {
  /** Finding the file system: the partition table read through a session of its own. */
  detect: number;
  /** The walk (its own session: connect, read, close), wall time, and its parts. */
  walk: number;
  open: number;
  inodeTables: number;
  directories: number;
  laterMaps: number;
  tree: number;
  /** CPU time of the walk's thread and of its I/O thread. */
  walkCpu: number;
  ioCpu: number;
  /** Reads the walk waited for that it had not planned. */
  misses: number;
  /** Making entries of what the walk handed over while it ran, and the TOC of its result (JS). */
  batches: number;
  build: number;
}

const WALK_TIMEOUT_SEC = 30;

/** Reads for detect.ts from an open session (whole blocks covering the range). */
function lunReader(s: IscsiSession, blockSize: number, deviceBytes: number): ReadAt {
  return async (offset, length) => {
    const end = Math.min(offset + length, deviceBytes);
    const first = Math.floor(offset / blockSize);
    const last = Math.ceil(end / blockSize);
    const data = await s.read16(BigInt(first), last - first);
    return data.subarray(offset - first * blockSize, end - first * blockSize);
  };
}

function fileReader(fh: fsp.FileHandle, deviceBytes: number): ReadAt {
  return async (offset, length) => {
    const n = Math.max(0, Math.min(length, deviceBytes - offset));
    const buf = Buffer.alloc(n);
    let done = 0;
    while (done < n) {
      const { bytesRead } = await fh.read(buf, done, n - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return buf.subarray(0, done);
  };
}

/**
 * Reads the TOC. Errors: ArgumentError (options), the initiator's IscsiError (connect, login,
 * READ), FileSystemError ERR_FS_UNSUPPORTED (no ext2/3/4 where asked: what was found is
 * named), ERR_FS_CORRUPT (libext2fs refused a structure: the inode or block is named),
 * ERR_FS_READ; a DecodeError for a damaged partition table.
 */
export async function readToc(opts: ReadTocOptions): Promise<TocResult> {
  const t0 = performance.now();
  if ((opts.url === undefined) === (opts.file === undefined)) throw new ArgumentError('give either a LUN URL or an image file');
  if (opts.offset !== undefined && (!Number.isSafeInteger(opts.offset) || opts.offset < 0)) {
    throw new ArgumentError(`--offset must be a byte count ≥ 0, got ${opts.offset}`);
  }
  if (opts.partition !== undefined && (!Number.isInteger(opts.partition) || opts.partition < 1)) {
    throw new ArgumentError(`--partition must be a partition number ≥ 1, got ${opts.partition}`);
  }
  if (opts.offset !== undefined && opts.partition !== undefined) throw new ArgumentError('give --offset or --partition, not both');

  let source: Ext2TocSource;
  let layout: DeviceLayout;
  let chosen: { offset: number; partition?: Partition };
  if (opts.file !== undefined) {
    const blockSize = opts.blockSize ?? 512;
    if (blockSize !== 512 && blockSize !== 4096) throw new ArgumentError(`--block-size must be 512 or 4096, got ${String(blockSize)}`);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(opts.file, 'r');
    } catch (e) {
      throw new ArgumentError(`cannot open image ${opts.file}: ${(e as Error).message}`);
    }
    try {
      const st = await fh.stat();
      // A block device's size is not in stat: its reads simply end at its end (the walk checks bounds).
      const bytes = st.isBlockDevice() ? Number.MAX_SAFE_INTEGER : st.size;
      layout = await layoutOf(fileReader(fh, bytes), bytes, blockSize, opts);
    } finally {
      await fh.close();
    }
    chosen = opts.offset !== undefined ? { offset: opts.offset } : chooseFileSystem(layout, opts.partition);
    source = { file: opts.file, blockSize };
  } else {
    const u = parseIscsiUrl(opts.url!, { requireLun: true, env: opts.session?.env });
    const s = await IscsiSession.connect(opts.url!, opts.session);
    try {
      const cap = await s.readCapacity16();
      const bs = cap.logicalBlockLength;
      const bytes = Number(cap.returnedLogicalBlockAddress + 1n) * bs;
      layout = await layoutOf(lunReader(s, bs, bytes), bytes, bs, opts);
    } finally {
      await s.close();
    }
    chosen = opts.offset !== undefined ? { offset: opts.offset } : chooseFileSystem(layout, opts.partition);
    const digest = { none: 0, 'none-crc32c': 1, 'crc32c-none': 2, crc32c: 3 } as const;
    source = {
      initiator: opts.session?.initiatorName ?? defaultInitiatorName(opts.session?.env),
      portal: u.portal,
      target: u.target!,
      lun: u.lun!,
      user: u.user,
      password: u.password,
      targetUser: u.targetUser,
      targetPassword: u.targetPassword,
      headerDigest: u.headerDigest ? digest[u.headerDigest] : undefined,
      timeoutSec: opts.session?.commandTimeoutMs !== undefined ? Math.ceil(opts.session.commandTimeoutMs / 1000) : WALK_TIMEOUT_SEC,
    };
  }
  const t1 = performance.now();
  // The entries of what the walk hands over are made while it goes on (TocBuilder).
  const builder = new TocBuilder();
  const raw = await walkExt2(source, chosen.offset, { ...opts.walk, onBatch: (b) => builder.add(b) });
  const t2 = performance.now();
  const toc = builder.finish(raw, chosen.offset);
  const [open, inodeTables, directories, laterMaps, tree] = raw.phaseMs;
  const timing: TocTiming = {
    detect: t1 - t0,
    walk: t2 - t1,
    open,
    inodeTables,
    directories,
    laterMaps,
    tree,
    walkCpu: raw.cpuMs[0],
    ioCpu: raw.cpuMs[1],
    misses: raw.misses,
    batches: builder.batchMs,
    build: performance.now() - t2,
  };
  return { ...toc, layout, partition: chosen.partition, reads: raw.reads, bytesRead: raw.bytesRead, timing };
}

/** The partition table, unless the offset was given (then nothing is read for it). */
function layoutOf(read: ReadAt, bytes: number, blockSize: number, opts: ReadTocOptions): Promise<DeviceLayout> | DeviceLayout {
  if (opts.offset !== undefined) return { scheme: 'none', blockSize, partitions: [] };
  return detectLayout(read, bytes, blockSize);
}

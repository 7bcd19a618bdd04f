/**
 * The table of contents (the method's step 603; docs/toc.md): every file reached from the root of
 * an ext2/3/4 file system, with its attributes and where its data lies, made from what libext2fs
 * read (src/native/ext2fs.ts). Pure: no I/O here.
 */
import { FileSystemError, type Ext2RawBatch, type Ext2RawToc } from '../native/ext2fs';
import { Ext2InodeBits as Bits, Ext2InodeField as F, Ext2LinkField as L } from '../native/index';

export type FileType = 'file' | 'dir' | 'symlink' | 'chardev' | 'blockdev' | 'fifo' | 'socket' | 'unknown';

/** i_mode's file type field (S_IFMT) → FileType (ext4 "Inode Table", i_mode). */
export function fileTypeOf(mode: number): FileType {
  switch (mode & 0o170000) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'dir';
    case 0o120000:
      return 'symlink';
    case 0o020000:
      return 'chardev';
    case 0o060000:
      return 'blockdev';
    case 0o010000:
      return 'fifo';
    case 0o140000:
      return 'socket';
    default:
      return 'unknown';
  }
}

/** One run of a file's blocks, in file-system blocks. */
export interface TocExtent {
  /** The file's block number (its byte offset / block size). */
  logical: number;
  /** The file system's block number (from the file system's start). */
  physical: number;
  blocks: number;
  /** An uninitialized (unwritten) extent: reads as zeros. */
  uninit: boolean;
}

export interface TocEntry {
  ino: number;
  /** Every path reaching the inode (several for hard links), '/'-separated from the root '/'. */
  paths: string[];
  /** The same as bytes, present only when some name is not UTF-8 (then `paths` shows \xNN for those bytes). */
  rawPaths?: Buffer[];
  type: FileType;
  /** i_mode: type and permission bits. */
  mode: number;
  uid: number;
  gid: number;
  links: number;
  /** i_flags (EXT4_EXTENTS_FL, EXT4_INLINE_DATA_FL, ...). */
  flags: number;
  size: number;
  /** Seconds since the epoch, and nanoseconds (0 on small inodes). */
  mtime: number;
  mtimeNsec: number;
  /** Symbolic links: the target. */
  target?: string;
  rawTarget?: Buffer;
  /** Character and block devices: the device number as stored. */
  rdev?: number;
  /** Files and directories whose data is in the inode (inline_data): the bytes. */
  inlineData?: Buffer;
  /** A symlink whose target is in the inode's block map (no blocks). */
  fastSymlink?: boolean;
  extents: TocExtent[];
  /** The blocks of its map itself: extent-tree index and leaf blocks, indirect blocks (file-system blocks). */
  mapBlocks: number[];
}

export interface TocFileSystem {
  /** ext2, ext3 or ext4, by features (as blkid names them). */
  type: 'ext2' | 'ext3' | 'ext4';
  blockSize: number;
  blocksCount: number;
  inodesCount: number;
  /** Feature names as e2fsprogs spells them (`needs_recovery` among them when set). */
  features: string[];
  /** The journal holds transactions not yet written to their places (EXT3_FEATURE_INCOMPAT_RECOVER). */
  needsRecovery: boolean;
  /** s_state: cleanly unmounted (bit 0), errors detected (bit 1). */
  state: number;
  uuid: string;
  label: string;
  /** The byte of the device where the file system starts, and the device's block size. */
  offset: number;
  deviceBlockSize: number;
}

export interface Toc {
  fs: TocFileSystem;
  entries: TocEntry[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes as text: UTF-8 when they are, else each byte that is not printable ASCII as \xNN. */
export function bytesToText(b: Buffer): { text: string; utf8: boolean } {
  try {
    return { text: utf8.decode(b), utf8: true };
  } catch {
    let s = '';
    for (const c of b) s += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
    return { text: s, utf8: false };
  }
}

const EXT4_ONLY = ['extent', '64bit', 'flex_bg', 'inline_data', 'huge_file', 'extra_isize', 'metadata_csum', 'dir_nlink', 'uninit_bg'];

/** ext2/ext3/ext4 by the features present, as blkid decides. */
export function fsTypeOf(features: readonly string[]): TocFileSystem['type'] {
  if (features.some((f) => EXT4_ONLY.includes(f))) return 'ext4';
  return features.includes('has_journal') ? 'ext3' : 'ext2';
}

/** The TOC of a walk: paths joined from the directory entries, sizes and runs checked. */
export function tocFromRaw(raw: Ext2RawToc, offset: number): Toc {
  return new TocBuilder().finish(raw, offset);
}

/** Paths of an entry made before its paths are known (always replaced by finish). */
const NO_PATHS: string[] = [];

/**
 * Makes a TOC while the walk runs and when it is done (docs/toc.md, "Speed"): the entries of
 * the inodes the walk hands over in batches (Ext2WalkOptions.onBatch) are made as they come, on
 * the event loop, while the walk goes on in its thread; `finish` makes the others from the
 * result, puts every entry in the walk's order and gives each its paths. Built for speed: one
 * pass over typed arrays of 32-bit words, one object of one shape per entry, every array made at
 * its size, every name decoded at once and paths joined as strings; bytes only for names that
 * are not UTF-8.
 */
export class TocBuilder {
  /** Entries made from batches, by their place among the records the walk kept. */
  private readonly made: TocEntry[] = [];
  private closed = false;
  /** Time spent on batches (ms). */
  batchMs = 0;

  /** The entries of one batch (a batch after `finish`, or one that does not decode, is ignored). */
  add(batch: Ext2RawBatch): void {
    if (this.closed) return;
    const t0 = performance.now();
    try {
      const I = batch.inodes;
      for (let k = 0, at = 0; at < I.length; k++, at += F.INODE_STRIDE) {
        if (I[at + F.bits] & Bits.pending) continue;
        this.made[batch.first + k] = entryOf(I, at, batch, NO_PATHS);
      }
    } catch {
      // A size that is no file size, say: finish makes that entry again, from the result, and says so.
      this.made.length = 0;
      this.closed = true;
    }
    this.batchMs += performance.now() - t0;
  }

  finish(raw: Ext2RawToc, offset: number): Toc {
    this.closed = true;
    const label = bytesToText(raw.fs.label).text;
    const fs: TocFileSystem = {
      type: fsTypeOf(raw.fs.features),
      blockSize: raw.fs.blockSize,
      blocksCount: raw.fs.blocksCount,
      inodesCount: raw.fs.inodesCount,
      features: raw.fs.features,
      needsRecovery: raw.fs.features.includes('needs_recovery'),
      state: raw.fs.state,
      uuid: raw.fs.uuid,
      label,
      offset,
      deviceBlockSize: raw.deviceBlockSize,
    };
    const I = raw.inodes;
    const n = I.length / F.INODE_STRIDE;
    const paths = joinPaths(raw, n);
    const entries = new Array<TocEntry>(n);
    for (let k = 0, at = 0; k < n; k++, at += F.INODE_STRIDE) {
      const first = paths.first[k];
      const list = first === undefined ? [] : paths.more?.get(k) ?? [first];
      const sent = raw.sentAs[k];
      let e = sent !== NONE ? this.made[sent] : undefined;
      if (e === undefined) e = entryOf(I, at, raw, list);
      else e.paths = list;
      const rawPaths = paths.raw?.get(k);
      if (rawPaths) e.rawPaths = rawPaths;
      entries[k] = e;
    }
    this.made.length = 0;
    return { fs, entries };
  }
}

/** Ext2RawToc.sentAs of an inode not handed over in a batch. */
const NONE = 0xffffffff;

/** The entry of the inode whose words start at `at` (its runs, map blocks, bytes in `arrays`). */
function entryOf(I: Uint32Array, at: number, arrays: Pick<Ext2RawToc, 'extents' | 'meta' | 'blob'>, paths: string[]): TocEntry {
  const ino = I[at + F.ino];
  const size = I[at + F.sizeHigh] * 2 ** 32 + I[at + F.sizeLow];
  if (!Number.isSafeInteger(size)) {
    throw new FileSystemError('ERR_FS_CORRUPT', `inode ${ino}: size ${BigInt(I[at + F.sizeHigh]) * 2n ** 32n + BigInt(I[at + F.sizeLow])} is not a file size`, { ino });
  }
  const X = arrays.extents;
  const xn = I[at + F.extCount];
  let extents: TocExtent[];
  if (xn === 1) {
    const j = 4 * I[at + F.extStart];
    extents = [{ logical: small(X[j]), physical: small(X[j + 1]), blocks: small(X[j + 2]), uninit: X[j + 3] === 1 }];
  } else {
    extents = new Array<TocExtent>(xn);
    for (let i = 0, j = 4 * I[at + F.extStart]; i < xn; i++, j += 4) extents[i] = { logical: small(X[j]), physical: small(X[j + 1]), blocks: small(X[j + 2]), uninit: X[j + 3] === 1 };
  }
  const mn = I[at + F.metaCount];
  let mapBlocks: number[];
  if (mn === 0) mapBlocks = [];
  else {
    mapBlocks = new Array<number>(mn);
    for (let i = 0, m0 = I[at + F.metaStart]; i < mn; i++) mapBlocks[i] = small(arrays.meta[m0 + i]);
  }
  const mode = I[at + F.mode];
  const e: TocEntry = {
    ino,
    paths,
    type: fileTypeOf(mode),
    mode,
    uid: I[at + F.uid],
    gid: I[at + F.gid],
    links: I[at + F.links],
    flags: I[at + F.flags],
    size,
    mtime: (I[at + F.mtimeHigh] | 0) * 2 ** 32 + I[at + F.mtimeLow],
    mtimeNsec: I[at + F.mtimeNsec],
    extents,
    mapBlocks,
  };
  const bits = I[at + F.bits];
  if (bits !== 0) {
    const blob = arrays.blob.subarray(I[at + F.blobStart], I[at + F.blobStart] + I[at + F.blobLength]);
    if (bits & Bits.target) {
      const t = bytesToText(blob);
      e.target = t.text;
      if (!t.utf8) e.rawTarget = Buffer.from(blob);
    }
    if (bits & Bits.device) e.rdev = I[at + F.rdev];
    if (bits & Bits.inlineData) e.inlineData = Buffer.from(blob);
    if (bits & Bits.fastSymlink) e.fastSymlink = true;
  }
  return e;
}

/** A block number read from a Float64Array as a small integer when it is one (no heap number). */
const small = (v: number): number => (v < 0x40000000 ? v | 0 : v);

interface Paths {
  /** Each entry's first path (the walk's order). */
  first: Array<string | undefined>;
  /** All paths of the entries with more than one (hard links). */
  more?: Map<number, string[]>;
  /** All paths as bytes, of the entries with a path that is not UTF-8. */
  raw?: Map<number, Buffer[]>;
}

/**
 * Every entry's paths from the directory entries (the walk lists a directory's entries after
 * the directory is reached, so a parent's path is known before its children's).
 */
function joinPaths(raw: Ext2RawToc, n: number): Paths {
  const I = raw.inodes;
  const Lk = raw.links;
  const count = Lk.length / L.LINK_STRIDE;
  // All names decoded at once: no name holds a '/', the separator.
  let names = raw.names.toString('utf8').split('/');
  if (names.length !== count) names = [];
  const first = new Array<string | undefined>(n);
  const dirPath = new Array<string | undefined>(n);
  let more: Map<number, string[]> | undefined;
  // Paths with a name that is not UTF-8 somewhere in them: their bytes, by entry.
  let dirRaw: Map<number, Buffer> | undefined;
  let rawOf: Map<number, Array<Buffer | undefined>> | undefined;
  for (let i = 0, at = 0; i < count; i++, at += L.LINK_STRIDE) {
    const k = Lk[at + L.index];
    if (k >= n) continue;
    const parentPlus1 = Lk[at + L.parentIndexPlus1];
    let path: string;
    let rawPath: Buffer | undefined;
    if (parentPlus1 === 0) path = '/';
    else {
      const pp = dirPath[parentPlus1 - 1];
      if (pp === undefined) continue; // unreachable: the walk lists a directory's entries after the directory
      let name: string | undefined = names.length ? names[i] : undefined;
      const parentRaw = dirRaw?.get(parentPlus1 - 1);
      if (name === undefined || name.includes('\ufffd') || parentRaw) {
        // Maybe not UTF-8 (U+FFFD stands for bytes that are not): decide on the bytes.
        const s = Lk[at + L.nameStart];
        const bytes = raw.names.subarray(s, s + Lk[at + L.nameLength]);
        const t = bytesToText(bytes);
        if (t.utf8 && !parentRaw) name = t.text;
        else {
          rawPath = Buffer.concat([parentRaw ?? Buffer.from(pp === '/' ? '' : pp), Buffer.from('/'), bytes]);
          name = undefined;
        }
      }
      path = rawPath ? bytesToText(rawPath).text : pp === '/' ? `/${name!}` : `${pp}/${name!}`;
    }
    if (dirPath[k] === undefined && (I[k * F.INODE_STRIDE + F.mode] & 0o170000) === 0o040000) {
      dirPath[k] = path;
      if (rawPath) (dirRaw ??= new Map()).set(k, rawPath);
    }
    const earlier = first[k];
    if (earlier === undefined) first[k] = path;
    else {
      more ??= new Map();
      const list = more.get(k);
      if (list) list.push(path);
      else more.set(k, [earlier, path]);
    }
    const rawList = rawOf?.get(k);
    if (rawPath || rawList) {
      rawOf ??= new Map();
      const l = rawList ?? new Array<Buffer | undefined>((more?.get(k)?.length ?? 1) - 1).fill(undefined);
      l.push(rawPath);
      rawOf.set(k, l);
    }
  }
  // An entry with a path that is not UTF-8 gets all its paths as bytes.
  let rawPaths: Map<number, Buffer[]> | undefined;
  for (const [k, list] of rawOf ?? []) {
    const texts = more?.get(k) ?? [first[k]!];
    (rawPaths ??= new Map()).set(k, list.map((b, i) => b ?? Buffer.from(texts[i])));
  }
  return { first, more, raw: rawPaths };
}

/** One piece of a file's data on the device, in the device's blocks. */
export interface LunRange {
  /** Where in the file the piece starts (bytes). */
  fileOffset: number;
  /** The first device block holding it, and how many blocks cover it. */
  lba: number;
  blocks: number;
  /** Bytes of the first block before the piece (0 unless the file system's blocks are smaller than the device's). */
  skip: number;
  /** The piece's length in bytes (the whole run; the file's size may end inside it). */
  length: number;
  uninit: boolean;
}

/** A file's runs as ranges of device blocks: the file system's offset and block size applied. */
export function lunRanges(fs: Pick<TocFileSystem, 'blockSize' | 'offset' | 'deviceBlockSize'>, extents: readonly TocExtent[]): LunRange[] {
  const B = fs.deviceBlockSize;
  return extents.map((x) => {
    const start = fs.offset + x.physical * fs.blockSize;
    const length = x.blocks * fs.blockSize;
    const lba = Math.floor(start / B);
    return {
      fileOffset: x.logical * fs.blockSize,
      lba,
      blocks: Math.ceil((start + length) / B) - lba,
      skip: start - lba * B,
      length,
      uninit: x.uninit,
    };
  });
}

/**
 * The table of contents (the method's step 603; docs/toc.md): every file reached from the root of
 * an ext2/3/4 file system, with its attributes and where its data lies, made from what libext2fs
 * read (src/native/ext2fs.ts). Pure: no I/O here.
 */
import { FileSystemError, type Ext2RawToc } from '../native/ext2fs';

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
  const byIno = new Map<number, TocEntry>();
  const dirPath = new Map<number, Buffer>();
  const entries: TocEntry[] = raw.inodes.map((r) => {
    const size = r.sizeHigh * 2 ** 32 + r.sizeLow;
    if (!Number.isSafeInteger(size)) throw new FileSystemError('ERR_FS_CORRUPT', `inode ${r.ino}: size ${BigInt(r.sizeHigh) * 2n ** 32n + BigInt(r.sizeLow)} is not a file size`, { ino: r.ino });
    const extents: TocExtent[] = [];
    for (let i = r.extStart; i < r.extStart + r.extCount; i++) {
      const a = raw.extents;
      extents.push({ logical: a[4 * i], physical: a[4 * i + 1], blocks: a[4 * i + 2], uninit: a[4 * i + 3] === 1 });
    }
    const e: TocEntry = {
      ino: r.ino,
      paths: [],
      type: fileTypeOf(r.mode),
      mode: r.mode,
      uid: r.uid,
      gid: r.gid,
      links: r.links,
      flags: r.flags,
      size,
      mtime: r.mtime,
      mtimeNsec: r.mtimeNsec,
      extents,
      mapBlocks: Array.from(raw.meta.subarray(r.metaStart, r.metaStart + r.metaCount)),
    };
    if (r.target) {
      const t = bytesToText(r.target);
      e.target = t.text;
      if (!t.utf8) e.rawTarget = r.target;
    }
    if (r.rdev !== undefined) e.rdev = r.rdev;
    if (r.inlineData) e.inlineData = r.inlineData;
    if (r.fastSymlink) e.fastSymlink = true;
    byIno.set(r.ino, e);
    return e;
  });
  const raws = new Map<TocEntry, Buffer[]>();
  for (const [parent, ino, , name] of raw.links) {
    const e = byIno.get(ino);
    if (!e) continue;
    let p: Buffer;
    if (parent === 0) p = Buffer.from('/');
    else {
      const pp = dirPath.get(parent);
      if (!pp) continue; // unreachable: the walk lists a directory's entries after the directory
      p = Buffer.concat([pp.length === 1 ? Buffer.alloc(0) : pp, Buffer.from('/'), name]);
    }
    if (e.type === 'dir' && !dirPath.has(ino)) dirPath.set(ino, p);
    const list = raws.get(e) ?? [];
    list.push(p);
    raws.set(e, list);
  }
  for (const [e, list] of raws) {
    const texts = list.map(bytesToText);
    e.paths = texts.map((t) => t.text);
    if (texts.some((t) => !t.utf8)) e.rawPaths = list;
  }
  return { fs, entries };
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

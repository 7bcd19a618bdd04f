/**
 * `restore --files` (docs/method.md 700 / 750 for named files; docs/restore.md, "Restoring
 * files"): single files of a copy, found through its table of contents (603, docs/toc.md).
 *
 *  to a directory  the files' bytes read from the secondary — the image as of 602, an appended
 *                  log laid over it where the copy is not integrated — each hash extent checked
 *                  against the copy's hash table before its bytes are used (checked-image.ts);
 *                  written with their size, holes, mode, owner (as root) and mtime, under DIR
 *                  at their paths; directories recursively, symbolic links as links, hard links
 *                  as links, FIFOs and (as root) devices with mknod.
 *  in place        only the files' data blocks written back to the LUN at their addresses, by
 *                  EXTENDED COPY (restore.ts with the files' block ranges), for an unmounted file
 *                  system whose layout has not changed since the copy: its superblock and the
 *                  files' inodes (size, flags, extents, map blocks) are compared first, through a
 *                  fresh table of contents of the LUN, and anything changed is refused.
 *
 * Nothing existing is overwritten without `overwrite`; each file is written under a temporary
 * name and renamed into place, so a run cut short leaves no file half written under its name.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { AgentError, ArgumentError } from '../errors';
import { IscsiSession, type SessionOptions } from '../initiator/session';
import { redactUrl } from '../initiator/url';
import type { ManagementClient } from '../mgmt';
import { readToc, type TocResult } from '../toc/read';
import { isUnder, normalizePaths, selectEntries } from '../toc/select';
import { lunRanges, type TocEntry, type TocExtent, type TocFileSystem } from '../toc/toc';
import { CheckedImage } from './checked-image';
import { mergeRanges, restore, type RestoreRange, type RestoreResult, type RestoreUnits } from './restore';
import { keptToc } from './secondary-toc';

const run = promisify(execFile);

export interface FileRestoreOptions {
  secondary: string;
  /** Paths from the file system's root: files, or directories (restored with what is below them). */
  paths: string[];
  /** Restore into this directory (created if missing), each file at its path below it. */
  toDir?: string;
  /** With toDir: replace files that exist there (default: refuse before writing anything). */
  overwrite?: boolean;
  /**
   * With toDir: continue a run cut short — what exists under its own name was written whole (each
   * file is renamed into place once written) and is left; leftovers under temporary names go.
   */
  skipExisting?: boolean;
  /** Restore the files' data in place on this LUN (default: the copy's source, as its metadata names it). */
  inPlace?: { to?: string; yes?: boolean; bridge?: string; fallback?: boolean; mgmt?: Pick<ManagementClient, 'call' | 'url'>; readyTimeoutMs?: number };
  session?: SessionOptions;
  signal?: AbortSignal;
  onWarning?: (message: string) => void;
  /** Bytes of file data written so far (to a directory), or the in-place restore's progress. */
  onProgress?: (phase: 'toc' | 'files' | 'copy' | 'log' | 'verify', done: bigint, total: bigint, blockSize: number, path?: 'xcopy' | 'host') => void;
  /** In place: resume units (restore.ts), and the callback recording them. */
  resume?: RestoreUnits & { backupId: string };
  onUnit?: (u: RestoreUnits) => Promise<void> | void;
}

export interface FileRestoreResult {
  backup_id: string;
  label?: string;
  method: 'to-dir' | 'in-place';
  /** The directory or the LUN restored onto. */
  to: string;
  /** Where the table of contents came from: the copy's (backup --toc), or read from its image now. */
  toc: 'kept' | 'image';
  files: number;
  directories: number;
  symlinks: number;
  hard_links: number;
  special: number;
  /** Bytes of file data written (to a directory) or block ranges' bytes (in place). */
  bytes: number;
  /** What was not restored, and why (sockets; devices when not root; in place: metadata). */
  skipped: Array<{ path: string; why: string }>;
  /** To a directory: hash extents read from the secondary and checked. */
  extents_checked?: number;
  log_records: number;
  /** In place: the block restore's own result. */
  blocks?: Pick<RestoreResult, 'ranges' | 'xcopy_bytes' | 'host_bytes' | 'verified'>;
  seconds: number;
}

/** The copy's table of contents: the one its backup kept, or (no --toc, an exact image) read from the image now. */
async function tocOfCopy(sec: IscsiSession, image: CheckedImage, name: string, o: FileRestoreOptions): Promise<{ toc: TocResult; from: 'kept' | 'image' }> {
  const r = image.record;
  if (r.toc && r.toc.usedBytes > 0n) return { toc: await keptToc((lba, n) => sec.read16(lba, n), r, name), from: 'kept' };
  if (r.state !== 'integrated') {
    throw new ArgumentError(
      `${name} holds backup ${r.backupId} without a table of contents, and its image is not exact until integrated: run \`xcopy-agent integrate --secondary URL\` first, or make the next backup with --toc`,
    );
  }
  o.onWarning?.(`backup ${r.backupId} was made without --toc: reading the file system from its image now`);
  o.onProgress?.('toc', 0n, 1n, 1);
  const toc = await readToc({ url: sec.url, session: o.session });
  return { toc, from: 'image' };
}

/** A path of the file system as bytes (its raw name when not UTF-8). */
function rawPathOf(e: TocEntry, k: number): Buffer {
  return e.rawPaths?.[k] ?? Buffer.from(e.paths[k]);
}

interface Item {
  entry: TocEntry;
  /** Its path in the file system, as text (for messages) and as bytes. */
  text: string;
  dest: Buffer;
}

/** Each selected entry at each of its paths that lies under a requested path, parents before children. */
function itemsOf(entries: readonly TocEntry[], wanted: readonly string[], dir: string): Item[] {
  const items: Item[] = [];
  const root = Buffer.from(path.resolve(dir));
  for (const e of entries) {
    e.paths.forEach((p, k) => {
      if (wanted.length > 0 && !wanted.some((w) => isUnder(p, w))) return;
      const raw = rawPathOf(e, k);
      items.push({ entry: e, text: p, dest: p === '/' ? root : Buffer.concat([root, raw]) });
    });
  }
  return items.sort((a, b) => Buffer.compare(a.dest, b.dest));
}

const toText = (b: Buffer) => b.toString('utf8');

/** What is at `p` (lstat), or undefined. */
async function existing(p: Buffer): Promise<fs.Stats | undefined> {
  try {
    return await fsp.lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Refuses, before anything is written, what would be lost or cannot be done. */
async function preflight(items: readonly Item[], overwrite: boolean, skipExisting: boolean): Promise<Set<Item>> {
  const clashes: string[] = [];
  const skip = new Set<Item>();
  for (const it of items) {
    const st = await existing(it.dest);
    if (!st) continue;
    const isDir = it.entry.type === 'dir';
    if (isDir && st.isDirectory()) continue; // restored into: its entries are checked one by one
    if (isDir !== st.isDirectory()) {
      throw new ArgumentError(`${toText(it.dest)} exists and is ${st.isDirectory() ? 'a directory' : 'not a directory'}, the copy's ${it.text} ${isDir ? 'is' : 'is not'} one: move it aside and restore again`);
    }
    if (skipExisting) skip.add(it);
    else if (!overwrite) clashes.push(toText(it.dest));
  }
  if (clashes.length > 0) {
    throw new ArgumentError(`${clashes[0]} exists${clashes.length > 1 ? ` (and ${clashes.length - 1} more)` : ''}: give --overwrite to replace them, or restore into another directory`);
  }
  return skip;
}

const TEMP_NAME = /^\.xcopy-agent-restore\.[0-9]+\./;

/** Removes what a run cut short left under temporary names in the directories of `items`. */
async function removeLeftovers(items: readonly Item[]): Promise<void> {
  const dirs = new Set(items.map((it) => toText(it.dest.subarray(0, Math.max(1, it.dest.lastIndexOf(0x2f))))));
  for (const d of dirs) {
    const names = await fsp.readdir(Buffer.from(d), { encoding: 'buffer' }).catch(() => [] as Buffer[]);
    for (const n of names) if (TEMP_NAME.test(n.toString('latin1'))) await fsp.unlink(Buffer.concat([Buffer.from(d), Buffer.from('/'), n])).catch(() => undefined);
  }
}

/** A name beside `dest` to write before renaming into place. */
function tempOf(dest: Buffer): Buffer {
  const slash = dest.lastIndexOf(0x2f);
  return Buffer.concat([dest.subarray(0, slash + 1), Buffer.from(`.xcopy-agent-restore.${process.pid}.`), dest.subarray(slash + 1)]);
}

/** Device numbers as ext2 keeps them: the new encoding (Linux new_encode_dev), which the old one is a part of. */
export function deviceNumbers(rdev: number): { major: number; minor: number } {
  return { major: (rdev & 0xfff00) >>> 8, minor: (rdev & 0xff) | ((rdev >>> 12) & 0xfff00) };
}

/** Reads (at most) this many bytes of a file at a time. */
const STEP_BYTES = 1024 * 1024;

/** The byte ranges of the image a file's data is in: runs clipped to its size, unwritten runs left out (they read as zeros). */
export function dataPieces(fsInfo: Pick<TocFileSystem, 'blockSize' | 'offset'>, extents: readonly TocExtent[], size: number): Array<{ fileOffset: number; imageOffset: number; length: number }> {
  const out: Array<{ fileOffset: number; imageOffset: number; length: number }> = [];
  for (const x of extents) {
    if (x.uninit) continue;
    const fileOffset = x.logical * fsInfo.blockSize;
    const length = Math.min(x.blocks * fsInfo.blockSize, size - fileOffset);
    if (length <= 0) continue;
    out.push({ fileOffset, imageOffset: fsInfo.offset + x.physical * fsInfo.blockSize, length });
  }
  return out;
}

/** One file's data into an open file: its pieces, then its size (holes stay holes). */
async function writeData(fh: fsp.FileHandle, e: TocEntry, fsInfo: TocFileSystem, image: CheckedImage, advance: (n: number) => void, signal?: AbortSignal): Promise<void> {
  if (e.inlineData) {
    const data = e.inlineData.subarray(0, e.size);
    await fh.write(data, 0, data.length, 0);
    advance(data.length);
  } else {
    for (const p of dataPieces(fsInfo, e.extents, e.size)) {
      for (let at = 0; at < p.length; at += STEP_BYTES) {
        if (signal?.aborted) throw new AgentError('ERR_INTERRUPTED', 'restore interrupted: the files written so far are in place, the one being written is not');
        const n = Math.min(STEP_BYTES, p.length - at);
        const data = await image.bytes(p.imageOffset + at, n);
        await fh.write(data, 0, n, p.fileOffset + at);
        advance(n);
      }
    }
  }
  await fh.truncate(e.size);
}

const seconds = (e: TocEntry) => e.mtime + e.mtimeNsec / 1e9;
const isRoot = () => process.getuid?.() === 0;

/** Mode, owner (as root) and mtime of an open file. */
async function setAttributes(fh: fsp.FileHandle, e: TocEntry): Promise<void> {
  if (isRoot()) await fh.chown(e.uid, e.gid);
  await fh.chmod(e.mode & 0o7777); // after chown, which clears setuid/setgid
  await fh.utimes(seconds(e), seconds(e));
}

/** The files of a copy into a directory (see the file's header). */
async function restoreToDir(o: FileRestoreOptions, toc: TocResult, image: CheckedImage, dir: string): Promise<Omit<FileRestoreResult, 'backup_id' | 'method' | 'toc' | 'log_records' | 'seconds'>> {
  const wanted = o.paths.length > 0 ? normalizePaths(o.paths) : [];
  const entries = selectEntries(toc.entries, wanted);
  const items = itemsOf(entries, wanted, dir);
  const st = await existing(Buffer.from(dir));
  if (st && !st.isDirectory()) throw new ArgumentError(`--to-dir ${dir} exists and is not a directory: name a directory (it is created if missing)`);
  const done0 = await preflight(items, o.overwrite === true, o.skipExisting === true);
  if (o.skipExisting) await removeLeftovers(items);
  if (toc.fs.needsRecovery) {
    o.onWarning?.('the file system needed journal recovery at the snapshot (it was mounted and not frozen): files written shortly before it may be restored as they were on the disk, not as the host saw them');
  }

  const total = items.reduce((n, it) => n + (it.entry.type === 'file' ? it.entry.size : 0), 0);
  let done = 0;
  const advance = (n: number) => {
    done += n;
    o.onProgress?.('files', BigInt(done), BigInt(total), 1, 'host');
  };
  const result = { to: path.resolve(dir), files: 0, directories: 0, symlinks: 0, hard_links: 0, special: 0, bytes: 0, skipped: [] as FileRestoreResult['skipped'] };
  await fsp.mkdir(dir, { recursive: true });
  const dirs: Item[] = [];
  const madeFor = new Map<number, Buffer>(); // inode → the path its data was written to (hard links)
  // Regular files in the order of their data on the LUN: the image is read forward.
  const firstBlock = (it: Item) => (it.entry.extents.length > 0 ? it.entry.extents[0].physical : 0);
  const ordered = [...items].sort((a, b) => (a.entry.type === 'dir' ? 0 : 1) - (b.entry.type === 'dir' ? 0 : 1) || firstBlock(a) - firstBlock(b));
  for (const it of ordered) {
    const e = it.entry;
    if (done0.has(it) && e.type !== 'dir') {
      // Written whole by the run cut short (renamed into place once written): counted, kept.
      if (e.links > 1) madeFor.set(e.ino, it.dest);
      if (e.type === 'file') {
        result.files++;
        result.bytes += e.size;
        advance(e.size);
      }
      continue;
    }
    const parent = it.dest.subarray(0, Math.max(1, it.dest.lastIndexOf(0x2f)));
    if (e.type === 'dir') {
      // Writable while it is filled; its own mode and times once everything below is in.
      await fsp.mkdir(it.dest, { recursive: true, mode: 0o700 });
      dirs.push(it);
      result.directories++;
      continue;
    }
    await fsp.mkdir(parent, { recursive: true });
    const linked = madeFor.get(e.ino);
    const tmp = tempOf(it.dest);
    if (linked) {
      await fsp.link(linked, tmp);
      await fsp.rename(tmp, it.dest);
      result.hard_links++;
      continue;
    }
    switch (e.type) {
      case 'file': {
        const fh = await fsp.open(tmp, 'wx', 0o600);
        try {
          await writeData(fh, e, toc.fs, image, advance, o.signal);
          await setAttributes(fh, e);
        } catch (err) {
          await fh.close().catch(() => undefined);
          await fsp.unlink(tmp).catch(() => undefined);
          throw err;
        }
        await fh.close();
        result.files++;
        result.bytes += e.size;
        break;
      }
      case 'symlink': {
        await fsp.symlink(e.rawTarget ?? Buffer.from(e.target ?? ''), tmp);
        if (isRoot()) await fsp.lchown(tmp, e.uid, e.gid);
        await fsp.lutimes(tmp, seconds(e), seconds(e));
        result.symlinks++;
        break;
      }
      case 'fifo':
      case 'chardev':
      case 'blockdev': {
        if (e.type !== 'fifo' && !isRoot()) {
          result.skipped.push({ path: e.paths[0], why: 'a device: only root can make one' });
          continue;
        }
        const { major, minor } = deviceNumbers(e.rdev ?? 0);
        const args = e.type === 'fifo' ? ['p'] : [e.type === 'chardev' ? 'c' : 'b', String(major), String(minor)];
        await run('mknod', ['-m', (e.mode & 0o777).toString(8), toText(tmp), ...args]);
        if (isRoot()) await fsp.lchown(tmp, e.uid, e.gid);
        await fsp.chmod(tmp, e.mode & 0o7777);
        await fsp.utimes(tmp, seconds(e), seconds(e));
        result.special++;
        break;
      }
      default:
        result.skipped.push({ path: e.paths[0], why: e.type === 'socket' ? 'a socket: it exists only while its program runs' : `of unknown type (mode ${e.mode.toString(8)})` });
        continue;
    }
    await fsp.rename(tmp, it.dest);
    if (e.links > 1) madeFor.set(e.ino, it.dest);
  }
  // Directories' own attributes, deepest first (setting one's mtime after its entries are in).
  for (const it of dirs.sort((a, b) => b.dest.length - a.dest.length)) {
    if (isRoot()) await fsp.chown(it.dest, it.entry.uid, it.entry.gid);
    await fsp.chmod(it.dest, it.entry.mode & 0o7777);
    await fsp.utimes(it.dest, seconds(it.entry), seconds(it.entry));
  }
  // Durable before the command says done: one syncfs of the file system written (coreutils sync -f).
  await run('sync', ['-f', path.resolve(dir)]);
  return result;
}

/** Why the file system on the LUN is not the one the copy's TOC describes, or undefined. */
function otherFileSystem(copy: TocFileSystem, now: TocFileSystem): string | undefined {
  if (copy.uuid !== now.uuid) return `its UUID is ${now.uuid}, the copy's ${copy.uuid}`;
  if (copy.blockSize !== now.blockSize || copy.blocksCount !== now.blocksCount) return `it has ${now.blocksCount} blocks of ${now.blockSize} bytes, the copy's ${copy.blocksCount} of ${copy.blockSize} (resized)`;
  return undefined;
}

/** Why a file's inode on the LUN no longer maps its data where the copy's did, or undefined. */
export function layoutChange(copy: TocEntry, now: TocEntry | undefined): string | undefined {
  if (!now) return 'its inode is no longer in use (deleted since the copy)';
  if (now.type !== copy.type) return `its inode is now a ${now.type}`;
  if (!now.paths.some((p) => copy.paths.includes(p))) return `its inode is now ${now.paths[0] ?? 'unnamed'} (deleted and reused since the copy)`;
  if (now.size !== copy.size) return `its size is ${now.size}, the copy's ${copy.size}`;
  if (now.flags !== copy.flags) return `its inode flags changed (0x${copy.flags.toString(16)} → 0x${now.flags.toString(16)})`;
  const same = (a: TocExtent, b: TocExtent) => a.logical === b.logical && a.physical === b.physical && a.blocks === b.blocks && a.uninit === b.uninit;
  if (now.extents.length !== copy.extents.length || now.extents.some((x, i) => !same(x, copy.extents[i]))) return 'its data moved (its extents changed)';
  if (now.mapBlocks.length !== copy.mapBlocks.length || now.mapBlocks.some((b, i) => b !== copy.mapBlocks[i])) return 'its block map moved';
  return undefined;
}

/** Device block ranges of the files' data, merged (restore.ts writes whole blocks only). */
function rangesOf(fsInfo: TocFileSystem, files: readonly TocEntry[]): RestoreRange[] {
  const all: RestoreRange[] = [];
  for (const e of files) {
    for (const r of lunRanges(fsInfo, e.extents)) {
      if (r.uninit) continue;
      if (r.skip !== 0 || r.length % fsInfo.deviceBlockSize !== 0) {
        throw new ArgumentError(
          `${e.paths[0]}: its blocks (${fsInfo.blockSize} bytes, at byte ${fsInfo.offset}) do not fill whole LUN blocks of ${fsInfo.deviceBlockSize} bytes, so they cannot be written in place without touching other files' data: restore it with --to-dir`,
        );
      }
      all.push({ lba: BigInt(r.lba), blocks: BigInt(r.blocks) });
    }
  }
  return mergeRanges(all);
}

/** The files' data back onto the LUN at its addresses (see the file's header). */
async function restoreInPlace(o: FileRestoreOptions, toc: TocResult, backupId: string): Promise<Omit<FileRestoreResult, 'backup_id' | 'method' | 'toc' | 'seconds'>> {
  const ip = o.inPlace!;
  const wanted = o.paths.length > 0 ? normalizePaths(o.paths) : [];
  const entries = selectEntries(toc.entries, wanted);
  const files = entries.filter((e) => e.type === 'file');
  const skipped = entries.filter((e) => e.type !== 'file').map((e) => ({ path: e.paths[0], why: `a ${e.type === 'dir' ? 'directory' : e.type}: its entries and attributes are in metadata blocks, not restored in place` }));
  const inline = files.filter((e) => e.inlineData);
  if (inline.length > 0) {
    throw new ArgumentError(`${inline[0].paths[0]}${inline.length > 1 ? ` (and ${inline.length - 1} more)` : ''} keeps its data in its inode (inline_data), which shares a block with other inodes: restore it with --to-dir`);
  }
  if (files.length === 0) throw new ArgumentError(`nothing to restore in place under ${wanted.join(', ')}: no regular file (directories and links are metadata); restore them with --to-dir`);

  // The LUN's file system now, where the copy's was: the same one, unmounted, each file's layout unchanged.
  const url = ip.to!;
  const to = redactUrl(url);
  o.onProgress?.('toc', 0n, 1n, 1);
  const now = await readToc({ url, offset: toc.fs.offset, session: o.session }).catch((err: unknown) => {
    throw new ArgumentError(`the file system on ${to} cannot be read where the copy's was (byte ${toc.fs.offset}): ${(err as Error).message}; restore the whole LUN, or the files with --to-dir`);
  });
  const other = otherFileSystem(toc.fs, now.fs);
  if (other) throw new ArgumentError(`the file system on ${to} is not the copy's: ${other}; restore the files with --to-dir`);
  if (now.fs.needsRecovery || (now.fs.state & 1) === 0) {
    throw new ArgumentError(`the file system on ${to} is mounted or was not cleanly unmounted (${now.fs.needsRecovery ? 'needs_recovery' : 'state not clean'}): unmount it on every host (or run e2fsck -p) and restore again`);
  }
  const byIno = new Map(now.entries.map((e) => [e.ino, e]));
  const changed = files.flatMap((e) => {
    const why = layoutChange(e, byIno.get(e.ino));
    return why ? [`${e.paths[0]}: ${why}`] : [];
  });
  if (changed.length > 0) {
    throw new ArgumentError(`${changed.length} of the ${files.length} files changed their layout since the copy, so their blocks are no longer theirs (${changed.slice(0, 3).join('; ')}${changed.length > 3 ? '; ...' : ''}): restore them with --to-dir`);
  }
  const ranges = rangesOf(toc.fs, files);
  const r = await restore({
    secondary: o.secondary,
    to: url,
    ranges,
    bridge: ip.bridge,
    yes: ip.yes,
    fallback: ip.fallback,
    mgmt: ip.mgmt,
    readyTimeoutMs: ip.readyTimeoutMs,
    session: o.session,
    signal: o.signal,
    onWarning: o.onWarning,
    onProgress: o.onProgress,
    resume: o.resume,
    onUnit: o.onUnit,
  });
  if (r.backup_id !== backupId) throw new AgentError('ERR_NOT_RESUMABLE', `the secondary now holds backup ${r.backup_id}, not ${backupId}`);
  return {
    to: r.to,
    files: files.length,
    directories: 0,
    symlinks: 0,
    hard_links: 0,
    special: 0,
    bytes: Number(r.restored_bytes),
    skipped,
    log_records: r.log_records,
    blocks: { ranges: r.ranges, xcopy_bytes: r.xcopy_bytes, host_bytes: r.host_bytes, verified: r.verified },
  };
}

export async function restoreFiles(o: FileRestoreOptions): Promise<FileRestoreResult> {
  const t0 = process.hrtime.bigint();
  if ((o.toDir === undefined) === (o.inPlace === undefined)) throw new ArgumentError('restore --files needs --to-dir DIR or --in-place (one of them)');
  if (o.inPlace && o.overwrite) throw new ArgumentError('--overwrite is for --to-dir: in place, --yes says the files are written over');
  const sec = await IscsiSession.connect(o.secondary, o.session);
  try {
    const name = redactUrl(sec.url);
    const image = await CheckedImage.open(sec, name);
    const { toc, from } = await tocOfCopy(sec, image, name, o);
    const r = image.record;
    const head = { backup_id: r.backupId, ...(r.label !== undefined ? { label: r.label } : {}), toc: from };
    if (o.inPlace) {
      const to = o.inPlace.to ?? r.source.url;
      if (!to) throw new ArgumentError(`backup ${r.backupId} does not name its source LUN: give --to URL`);
      if (!o.inPlace.yes) {
        // Checked before the LUN's file system is read: the refusal costs nothing.
        throw new ArgumentError(`restoring files in place overwrites their blocks on ${redactUrl(to)}: give --yes to proceed`);
      }
      const x = await restoreInPlace({ ...o, inPlace: { ...o.inPlace, to } }, toc, r.backupId);
      return { ...head, method: 'in-place', ...x, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
    }
    const x = await restoreToDir(o, toc, image, o.toDir!);
    return { ...head, method: 'to-dir', ...x, extents_checked: image.extentsRead, log_records: image.logRecords, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
  } finally {
    await sec.close().catch(() => undefined);
  }
}

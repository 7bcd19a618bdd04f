/**
 * `toc (--lun URL | --file IMAGE) [PATH...]`: the table of contents of the ext2/3/4 file system on
 * a LUN or in an image (docs/toc.md): each file's path, inode, type, mode, owner, size, mtime,
 * link target, and its data as ranges of the device's blocks.
 */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { ArgumentError } from '../../errors';
import { lunRanges, type TocEntry, type TocFileSystem } from '../../toc/toc';
import { readToc, type TocResult } from '../../toc/read';
import { keptTocAt, tocOfBytes } from '../../agent/secondary-toc';
import { selectEntries } from '../../toc/select';
import { catalogOptions, copyOfCatalog, type CatalogArgs } from '../catalog';
import { Output } from '../output';

export const command = 'toc [paths..]';
export const describe = 'List the files of the ext2/3/4 file system on a LUN (or image) and where their blocks are';

interface Args extends CatalogArgs {
  lun?: string;
  file?: string;
  secondary?: string;
  copy?: string;
  paths?: string[];
  partition?: number;
  offset?: number;
  blockSize: number;
  timeout: number;
  json: boolean;
}

export function builder(y: Argv): Argv<Args> {
  return catalogOptions(y)
    .positional('paths', { type: 'string', array: true, describe: 'list only these paths (and what is below a directory)' })
    .option('lun', { type: 'string', describe: 'the LUN: iscsi://host[:port]/<iqn>/<lun> (a snapshot view LUN for a consistent listing)' })
    .option('file', { type: 'string', describe: 'an image file (or block device) instead of a LUN' })
    .option('secondary', { type: 'string', describe: 'a backup\'s secondary LUN: the table of contents `backup --toc` kept there (the image as of its snapshot)' })
    .option('copy', { type: 'string', describe: 'a copy\'s id (`copies list`): the table of contents kept on its secondary' })
    .option('partition', { type: 'number', describe: 'the partition (1-based, as sfdisk numbers them) when several hold ext2/3/4' })
    .option('offset', { type: 'number', describe: 'the byte where the file system starts (skips the partition table)' })
    .option('block-size', { type: 'number', default: 512, describe: 'with --file: the image\'s block size, 512 or 4096 (the unit of LBAs)' })
    .option('timeout', { type: 'number', default: 30, describe: 'seconds allowed for connect, login and each command' })
    .conflicts('lun', ['file', 'secondary', 'copy'])
    .conflicts('file', ['secondary', 'copy'])
    .conflicts('secondary', 'copy')
    .conflicts('offset', 'partition')
    .example('$0 toc --lun iscsi://127.0.0.1:3260/iqn.2026-11.io.xcopy-agent:snap/1', 'every file of the view LUN')
    .example('$0 toc --file disk.img /etc/passwd --json', 'one file, NDJSON')
    .example('$0 toc --copy 3f2c9a1e /home', 'what a backup made with --toc holds under /home') as unknown as Argv<Args>;
}

const TYPE_CHAR: Record<TocEntry['type'], string> = { file: '-', dir: 'd', symlink: 'l', chardev: 'c', blockdev: 'b', fifo: 'p', socket: 's', unknown: '?' };

/** ls -l's mode string (setuid/setgid/sticky included). */
export function modeString(e: Pick<TocEntry, 'type' | 'mode'>): string {
  const m = e.mode;
  const rwx = (shift: number, special: boolean, ch: string) => {
    const r = m & (4 << shift) ? 'r' : '-';
    const w = m & (2 << shift) ? 'w' : '-';
    const x = m & (1 << shift);
    return r + w + (special ? (x ? ch : ch.toUpperCase()) : x ? 'x' : '-');
  };
  return TYPE_CHAR[e.type] + rwx(6, (m & 0o4000) !== 0, 's') + rwx(3, (m & 0o2000) !== 0, 's') + rwx(0, (m & 0o1000) !== 0, 't');
}

const mtimeIso = (e: TocEntry) => new Date(e.mtime * 1000 + Math.floor(e.mtimeNsec / 1e6)).toISOString();

function fileRecord(fs: TocFileSystem, e: TocEntry): Record<string, unknown> {
  return {
    path: e.paths[0],
    ...(e.paths.length > 1 ? { paths: e.paths } : {}),
    inode: e.ino,
    file_type: e.type,
    mode: `0${(e.mode & 0o7777).toString(8)}`,
    uid: e.uid,
    gid: e.gid,
    size: e.size,
    mtime: mtimeIso(e),
    mtime_ns: e.mtimeNsec,
    links: e.links,
    ...(e.target !== undefined ? { link_target: e.target } : {}),
    ...(e.rdev !== undefined ? { rdev: e.rdev } : {}),
    ...(e.inlineData ? { inline_data: true } : {}),
    extents: lunRanges(fs, e.extents).map((r) => ({
      file_offset: r.fileOffset,
      lba: r.lba,
      blocks: r.blocks,
      ...(r.skip ? { skip: r.skip } : {}),
      length: r.length,
      ...(r.uninit ? { uninit: true } : {}),
    })),
  };
}

function fsLine(r: TocResult): string {
  const where = r.partition ? `partition ${r.partition.index} (${r.partition.scheme.toUpperCase()}, ${r.partition.type})` : 'the whole device';
  return `${r.fs.type} on ${where} at byte ${r.fs.offset}: ${r.fs.blocksCount} blocks of ${r.fs.blockSize} bytes, ${r.entries.length} inodes reached; LBAs in blocks of ${r.fs.deviceBlockSize} bytes`;
}

function table(out: Output, r: TocResult, entries: TocEntry[]): void {
  out.line(fsLine(r));
  out.line(`features: ${r.fs.features.join(' ')}`);
  const rows = entries.map((e) => {
    const ranges = lunRanges(r.fs, e.extents).map((x) => `${x.lba}+${x.blocks}${x.skip ? `@${x.skip}` : ''}${x.uninit ? 'u' : ''}`);
    return [
      modeString(e),
      String(e.uid),
      String(e.gid),
      String(e.size),
      mtimeIso(e).replace('.000Z', 'Z'),
      String(e.ino),
      e.paths.join(' = ') + (e.target !== undefined ? ` -> ${e.target}` : ''),
      e.inlineData ? '(inline)' : ranges.join(' '),
    ];
  });
  const head = ['MODE', 'UID', 'GID', 'SIZE', 'MTIME', 'INODE', 'PATH', 'LBA+BLOCKS'];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (i < 6 ? row[i].length : 0))));
  const fmt = (row: string[]) => row.map((c, i) => (i < 6 ? (i >= 1 && i <= 5 && i !== 4 ? c.padStart(width[i]) : c.padEnd(width[i])) : c)).join('  ');
  out.line(fmt(head));
  for (const row of rows) out.line(fmt(row));
}

export async function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  const out = new Output(argv.json);
  try {
    if (argv.lun === undefined && argv.file === undefined && argv.secondary === undefined && argv.copy === undefined) {
      throw new ArgumentError('name the LUN with --lun URL (or an image with --file PATH, a backup with --secondary URL or --copy ID)');
    }
    if (argv.blockSize !== 512 && argv.blockSize !== 4096) throw new ArgumentError(`--block-size must be 512 or 4096, got ${argv.blockSize}`);
    const ms = Math.max(1, argv.timeout) * 1000;
    const session = { connectTimeoutMs: ms, commandTimeoutMs: ms };
    // --copy: the TOC the catalog recorded for it, else the one its secondary keeps.
    const cataloged = argv.copy !== undefined ? await copyOfCatalog(argv, argv.copy) : undefined;
    const secondaryUrl = cataloged?.copy.secondaryUrl ?? argv.secondary;
    const r = cataloged?.toc
      ? tocOfBytes(cataloged.toc, cataloged.copy.sourceBlockSize ?? 512)
      : secondaryUrl !== undefined
        ? await keptTocAt(secondaryUrl, session)
        : await readToc({
            url: argv.lun,
            file: argv.file,
            blockSize: argv.blockSize,
            offset: argv.offset,
            partition: argv.partition,
            session,
          });
    const entries = selectEntries(r.entries, (argv.paths ?? []).map(String));
    if (r.fs.needsRecovery) {
      process.stderr.write(
        'xcopy-agent: warning: the file system needs journal recovery (it was in use, not flushed): files written since its last commit may be listed wrong; freeze it (fsfreeze, the backup pre-hook) for a clean copy\n',
      );
    }
    if (out.json) {
      for (const e of entries) out.record('file', fileRecord(r.fs, e));
      out.record('summary', {
        command: 'toc',
        fs_type: r.fs.type,
        block_size: r.fs.blockSize,
        blocks: r.fs.blocksCount,
        offset: r.fs.offset,
        device_block_size: r.fs.deviceBlockSize,
        partition: r.partition ? { index: r.partition.index, scheme: r.partition.scheme, type: r.partition.type, start_lba: r.partition.startLba, blocks: r.partition.blocks } : null,
        features: r.fs.features,
        needs_recovery: r.fs.needsRecovery,
        uuid: r.fs.uuid,
        label: r.fs.label,
        inodes: r.entries.length,
        listed: entries.length,
      });
    } else {
      table(out, r, entries);
    }
  } catch (err) {
    process.exitCode = out.error(err);
  }
}

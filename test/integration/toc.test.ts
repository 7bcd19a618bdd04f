/**
 * The table of contents against e2fsprogs as the oracle (issue 15): images built without
 * mounting by mkfs.ext2/3/4 -d from generated trees (seed logged; TOC_SEED=n replays it), some
 * inside MBR and GPT partitions made by sfdisk, some fragmented with debugfs -w. For every file:
 * the TOC's blocks equal `debugfs -R "blocks <ino>"`, and its bytes read through the TOC's
 * extents hash as the generated file does. Variants: ext2/3/4, 1 and 4 KiB blocks, extents or
 * block maps (to triple indirect), 64bit, flex_bg or not, sparse_super2, inline_data, files over
 * 4 GiB (sparse), htree directories of thousands of entries (indexed by e2fsck -D), uninitialized
 * extents (debugfs fallocate). One image is also read through iSCSI from the project's target,
 * and with a cache small enough that every read path is taken; corrupt images (random bytes,
 * logged seed) give errors naming the inode, block or superblock, or a TOC whose every block is
 * debugfs's — never a crash or a wrong extent.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AgentError } from '../../src/errors';
import { readToc, type TocResult } from '../../src/toc/read';
import { lunRanges, type TocEntry } from '../../src/toc/toc';
import { decodeToc, encodeToc } from '../../src/toc/format';
import { xorshift } from '../helpers/rng';
import { startSnapshotTarget, type SnapshotTarget } from '../helpers/snapshot-target';
import { removeDir, tempDir } from '../helpers/tmp';

jest.setTimeout(300_000);

const SEED = Number(process.env.TOC_SEED ?? (Date.now() % 2 ** 31));
// eslint-disable-next-line no-console
console.log(`toc.test: TOC_SEED=${SEED}`);

let dir: string;
beforeAll(() => {
  dir = tempDir('toc');
});
afterAll(() => removeDir(dir));

interface Expected {
  kind: 'file' | 'dir' | 'symlink' | 'fifo';
  sha?: string;
  size?: number;
  /** A file too large to hash whole (sparse): where its data is, the rest being holes. */
  pieces?: Array<{ offset: number; data: Buffer }>;
  target?: string;
  mode: number;
  mtime: number;
}

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/** A random tree under `root`; returns what each path must be in the TOC (paths from the root). */
interface TreeOptions {
  files: number;
  /** A sparse file with data past 64 MiB (a triple-indirect block in 1 KiB blocks). */
  hugeSparse?: boolean;
  /** No sparse files (see the inline_data variant). */
  noSparse?: boolean;
  /** A sparse file of more than 4 GiB. */
  over4g?: boolean;
  /** A directory of this many entries (made an htree by e2fsck -D). */
  bigDir?: number;
  /** A sparse file whose hole gets uninitialized extents (debugfs fallocate). */
  uninit?: boolean;
}

/** The >4 GiB file: 4.5 GiB and a bit, data at its start and near its end. */
const OVER_4G = 4.5 * 2 ** 30 + 12_288;

function makeTree(root: string, seed: number, o: TreeOptions): Map<string, Expected> {
  const r = xorshift(seed);
  const exp = new Map<string, Expected>();
  const when = () => 1_600_000_000 + r.int(100_000_000);
  const dirs: string[] = [''];
  const mkdir = (rel: string) => {
    fs.mkdirSync(path.join(root, rel));
    dirs.push(rel);
  };
  fs.mkdirSync(root, { recursive: true });
  let deep = '';
  for (let i = 0; i < 14; i++) {
    deep += `/deep${i}`;
    mkdir(deep);
  }
  for (let i = 0; i < 12; i++) mkdir(`${dirs[r.int(dirs.length)]}/dir-${i}`);
  mkdir('/файлы-ü-日本語');
  const put = (rel: string, data: Buffer) => {
    fs.writeFileSync(path.join(root, rel), data);
  };
  const names = ['', `${'n'.repeat(251)}.txt`, 'über-🙂.bin', 'space name', 'a'];
  for (let i = 0; i < o.files; i++) {
    const d = i < 3 ? '/файлы-ü-日本語' : dirs[r.int(dirs.length)];
    const base = i < names.length && names[i] ? names[i] : `f${i}`;
    const rel = `${d}/${base}`;
    if (fs.existsSync(path.join(root, rel))) continue;
    const kind = r.int(10);
    if (kind === 0) put(rel, Buffer.alloc(0));
    else if (kind <= 5) put(rel, r.bytes(4 * (1 + r.int(1500))));
    else if (kind <= 7 || o.noSparse) put(rel, r.bytes(4 * (1 + r.int(60_000))));
    else {
      // Sparse: a size, and a few runs of data inside holes.
      const size = 64 * 1024 + r.int(3 * 1024 * 1024);
      const fd = fs.openSync(path.join(root, rel), 'w');
      fs.ftruncateSync(fd, size);
      for (let k = 0; k < 3; k++) fs.writeSync(fd, r.bytes(4 * (1 + r.int(3000))), 0, undefined, r.int(size - 12_004));
      fs.closeSync(fd);
    }
  }
  put('/deep0/deep1/large.bin', r.bytes(5 * 1024 * 1024 + 4 * r.int(1000)));
  if (o.hugeSparse) {
    // Data past 64 MiB: in 1 KiB blocks without extents, that is a triple-indirect block.
    const fd = fs.openSync(path.join(root, 'huge-sparse'), 'w');
    fs.writeSync(fd, r.bytes(8192), 0, undefined, 70 * 1024 * 1024);
    fs.writeSync(fd, r.bytes(4096), 0, undefined, 1024 * 1024);
    fs.closeSync(fd);
  }
  const over4g: Array<{ offset: number; data: Buffer }> = [];
  if (o.over4g) {
    over4g.push({ offset: 0, data: r.bytes(8192) }, { offset: OVER_4G - 12_288, data: r.bytes(12_288) });
    const fd = fs.openSync(path.join(root, 'over-4g'), 'w');
    for (const p of over4g) fs.writeSync(fd, p.data, 0, p.data.length, p.offset);
    fs.closeSync(fd);
  }
  if (o.bigDir) {
    mkdir('/htree');
    for (let i = 0; i < o.bigDir; i++) put(`/htree/entry-${i}-${'h'.repeat(r.int(30))}`, r.bytes(4 * r.int(3)));
  }
  if (o.uninit) {
    // Data in its first and last 4 KiB, a hole between that debugfs fallocates (buildImage).
    const fd = fs.openSync(path.join(root, 'uninit'), 'w');
    fs.writeSync(fd, r.bytes(4096), 0, 4096, 0);
    fs.writeSync(fd, r.bytes(4096), 0, 4096, 61_440);
    fs.closeSync(fd);
  }
  fs.symlinkSync('f1', path.join(root, 'fast-link'));
  fs.symlinkSync(`/${'long/'.repeat(40)}target-${r.int(1000)}`, path.join(root, 'slow-link'));
  fs.symlinkSync('../deep0', path.join(root, 'dir-1-link'));
  spawnSync('mkfifo', [path.join(root, 'fifo')]);
  // Record every path now (before hard links, which share an inode with their original).
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel))) {
      const p = `${rel}/${name}`;
      const full = path.join(root, p);
      const t = when();
      const st0 = fs.lstatSync(full);
      if (!st0.isSymbolicLink()) {
        fs.chmodSync(full, st0.isDirectory() ? 0o700 + r.int(0o100) : 0o600 + r.int(0o200));
      }
      fs.lutimesSync(full, t, t);
      const st = fs.lstatSync(full);
      if (st.isDirectory()) walk(p);
      const common = { mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000) };
      if (st.isFile() && p === '/over-4g') exp.set(p, { kind: 'file', pieces: over4g, size: st.size, ...common });
      else if (st.isFile()) exp.set(p, { kind: 'file', sha: sha(fs.readFileSync(full)), size: st.size, ...common });
      else if (st.isDirectory()) exp.set(p, { kind: 'dir', ...common });
      else if (st.isSymbolicLink()) exp.set(p, { kind: 'symlink', target: fs.readlinkSync(full), ...common });
      else if (st.isFIFO()) exp.set(p, { kind: 'fifo', ...common });
    }
  };
  walk('');
  // Hard links to a few files, in other directories.
  const files = [...exp.entries()].filter(([, e]) => e.kind === 'file');
  for (let i = 0; i < 4 && files.length > 0; i++) {
    const [p, e] = files[r.int(files.length)];
    const link = `${dirs[r.int(dirs.length)]}/hardlink-${i}`;
    if (fs.existsSync(path.join(root, link))) continue;
    fs.linkSync(path.join(root, p), path.join(root, link));
    exp.set(link, { ...e });
  }
  // The links changed their directories' mtimes: set them back to what is expected.
  for (const [p, e] of exp) if (e.kind === 'dir') fs.utimesSync(path.join(root, p), e.mtime, e.mtime);
  return exp;
}

interface Image {
  file: string;
  /** The file system's byte offset in `file`, and its own image (for debugfs). */
  offset: number;
  fsImage: string;
  exp: Map<string, Expected>;
}

/** mkfs from a tree, optionally fragmenting with debugfs -w, optionally inside a partition table. */
function buildImage(
  name: string,
  mkfs: string[],
  o: TreeOptions & { sizeMiB: number; table?: 'gpt' | 'mbr-logical' | 'mbr'; fragment?: boolean },
  seed: number,
): Image {
  const tree = path.join(dir, `${name}.tree`);
  const exp = makeTree(tree, seed, o);
  const fsImage = path.join(dir, `${name}.fs`);
  execFileSync(mkfs[0], [...mkfs.slice(1), '-q', '-F', '-d', tree, fsImage, `${o.sizeMiB}M`], { stdio: 'pipe', env: { ...process.env, E2FSPROGS_FAKE_TIME: '' } });
  if (o.fragment) {
    // Free every other small file, then write a file into the holes: many extents, an extent
    // tree with index blocks (or, without extents, indirect blocks).
    const r = xorshift(seed ^ 0x5a5a);
    const cmds = path.join(dir, `${name}.cmds`);
    const lines: string[] = [];
    const filler = path.join(dir, `${name}.filler`);
    fs.writeFileSync(filler, r.bytes(4096));
    for (let i = 0; i < 160; i++) lines.push(`write ${filler} /filler-${i}`);
    for (let i = 0; i < 160; i += 2) lines.push(`rm /filler-${i}`);
    const fragSrc = path.join(dir, `${name}.frag`);
    const data = r.bytes(700 * 1024);
    fs.writeFileSync(fragSrc, data);
    lines.push(`write ${fragSrc} /fragmented`);
    fs.writeFileSync(cmds, `${lines.join('\n')}\n`);
    execFileSync('debugfs', ['-w', '-f', cmds, fsImage], { stdio: 'pipe' });
    const st = fs.statSync(fragSrc);
    exp.set('/fragmented', { kind: 'file', sha: sha(data), size: st.size, mode: -1, mtime: -1 });
    for (let i = 1; i < 160; i += 2) exp.set(`/filler-${i}`, { kind: 'file', sha: sha(fs.readFileSync(filler)), size: 4096, mode: -1, mtime: -1 });
  }
  // Uninitialized extents in the hole: blocks 4..11 of the file, still reading as zeros.
  if (o.uninit) execFileSync('debugfs', ['-w', '-R', 'fallocate /uninit 4 11', fsImage], { stdio: 'pipe' });
  if (o.bigDir) {
    // e2fsck -D indexes every directory (htree): exit status 1, "file system modified".
    const fsck = spawnSync('e2fsck', ['-fyD', fsImage], { encoding: 'utf8' });
    expect([0, 1]).toContain(fsck.status);
  }
  if (!o.table) return { file: fsImage, offset: 0, fsImage, exp };
  const disk = path.join(dir, `${name}.disk`);
  const fsBytes = fs.statSync(fsImage).size;
  const fsSectors = fsBytes / 512;
  const start = o.table === 'mbr-logical' ? 8192 : 2048;
  fs.writeFileSync(disk, '');
  fs.truncateSync(disk, (start + fsSectors + 4096) * 512);
  const script =
    o.table === 'gpt'
      ? `label: gpt\nstart=2048, size=${fsSectors}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="data"\n`
      : o.table === 'mbr'
        ? `label: dos\nstart=2048, size=${fsSectors}, type=83\n`
        : `label: dos\nstart=2048, size=2048, type=8e\nstart=4096, size=${fsSectors + 8192}, type=5\nstart=${start}, size=${fsSectors}, type=83\n`;
  execFileSync('sfdisk', ['-q', disk], { input: script, stdio: ['pipe', 'pipe', 'pipe'] });
  const fd = fs.openSync(disk, 'r+');
  const buf = fs.readFileSync(fsImage);
  fs.writeSync(fd, buf, 0, buf.length, start * 512);
  fs.closeSync(fd);
  return { file: disk, offset: start * 512, fsImage, exp };
}

/**
 * debugfs's `blocks` of many inodes in one run: ino → blocks (data and map blocks). `-c`
 * (catastrophic mode) skips the bitmaps, which the TOC does not read: a damaged bitmap location
 * in a group descriptor does not keep debugfs from the maps then.
 */
function debugfsBlocks(fsImage: string, inos: number[]): Map<number, number[]> {
  const cmds = path.join(dir, 'blocks.cmds');
  fs.writeFileSync(cmds, inos.map((i) => `blocks <${i}>`).join('\n') + '\n');
  const out = execFileSync('debugfs', ['-c', '-f', cmds, fsImage], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 }).toString();
  const res = new Map<number, number[]>();
  let current = -1;
  for (const line of out.split('\n')) {
    const m = /^debugfs: blocks <(\d+)>/.exec(line);
    if (m) {
      current = Number(m[1]);
      res.set(current, []);
    } else if (current >= 0 && line.trim()) {
      res.get(current)!.push(...line.trim().split(/\s+/).map(Number));
    }
  }
  return res;
}

/** The file's bytes [from, from + length) read from the image through the TOC's extents (holes and uninit as zeros). */
function bytesThroughToc(img: Image, toc: TocResult, e: TocEntry, from = 0, length = e.size - from): Buffer {
  if (e.inlineData) return e.inlineData.subarray(from, from + length);
  const out = Buffer.alloc(length);
  const end = Math.min(from + length, e.size);
  const fd = fs.openSync(img.file, 'r');
  try {
    for (const r of lunRanges(toc.fs, e.extents)) {
      const a = Math.max(r.fileOffset, from);
      const b = Math.min(r.fileOffset + r.length, end);
      if (r.uninit || a >= b) continue;
      fs.readSync(fd, out, a - from, b - a, r.lba * toc.fs.deviceBlockSize + r.skip + (a - r.fileOffset));
    }
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

/** A sparse file's data pieces read through the TOC, and no run of it outside them. */
function piecesDiffer(img: Image, toc: TocResult, e: TocEntry, pieces: Array<{ offset: number; data: Buffer }>): string[] {
  const bad: string[] = [];
  for (const p of pieces) if (!bytesThroughToc(img, toc, e, p.offset, p.data.length).equals(p.data)) bad.push(`the piece at byte ${p.offset} differs`);
  const bs = toc.fs.blockSize;
  for (const x of e.extents) {
    const inside = pieces.some((p) => x.logical >= Math.floor(p.offset / bs) && x.logical + x.blocks <= Math.ceil((p.offset + p.data.length) / bs));
    if (!inside) bad.push(`a run at block ${x.logical} (${x.blocks} blocks) lies outside its data`);
  }
  return bad;
}

/** Every entry's data and map blocks against debugfs's `blocks` on the same file system image. */
function blocksDiffer(fsImage: string, entries: TocEntry[]): string[] {
  const withBlocks = entries.filter((e) => e.extents.length > 0 || e.mapBlocks.length > 0 || e.type === 'file');
  const oracle = debugfsBlocks(fsImage, withBlocks.map((e) => e.ino));
  const differ: string[] = [];
  for (const e of withBlocks) {
    const mine: number[] = [...e.mapBlocks];
    for (const x of e.extents) for (let i = 0; i < x.blocks; i++) mine.push(x.physical + i);
    const theirs = oracle.get(e.ino) ?? [];
    const a = [...mine].sort((p, q) => p - q);
    const b = [...theirs].sort((p, q) => p - q);
    if (a.join(' ') !== b.join(' ')) differ.push(`inode ${e.ino} ${e.paths[0]}: toc ${a.length} blocks, debugfs ${b.length}`);
  }
  return differ;
}

/** debugfs's uninitialized extents of an inode (`ex`: "Uninit" in the flags), as logical block ranges. */
function debugfsUninit(fsImage: string, ino: number): string[] {
  const out = execFileSync('debugfs', ['-R', `ex <${ino}>`, fsImage], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  return out
    .split('\n')
    .filter((l) => /Uninit\s*$/.test(l))
    .map((l) => {
      const m = /(\d+)\s*-\s*(\d+)\s+\d+\s*-\s*\d+\s+\d+\s+Uninit/.exec(l)!;
      return `${m[1]}-${m[2]}`;
    });
}

const TYPE: Record<Expected['kind'], TocEntry['type']> = { file: 'file', dir: 'dir', symlink: 'symlink', fifo: 'fifo' };

/** Every check of the oracle on one image. */
function checkAgainstOracle(img: Image, toc: TocResult): void {
  expect(toc.fs.offset).toBe(img.offset);
  const byPath = new Map<string, TocEntry>();
  for (const e of toc.entries) for (const p of e.paths) byPath.set(p, e);
  // Exactly the generated paths, plus the root and lost+found.
  const listed = [...byPath.keys()].filter((p) => p !== '/' && p !== '/lost+found').sort();
  expect(listed).toEqual([...img.exp.keys()].sort());
  const bad: string[] = [];
  for (const [p, x] of img.exp) {
    const e = byPath.get(p)!;
    if (e.type !== TYPE[x.kind]) bad.push(`${p}: type ${e.type}, expected ${x.kind}`);
    if (x.mode >= 0 && (e.mode & 0o7777) !== x.mode) bad.push(`${p}: mode ${e.mode.toString(8)}, expected ${x.mode.toString(8)}`);
    if (x.mtime >= 0 && e.mtime !== x.mtime) bad.push(`${p}: mtime ${e.mtime}, expected ${x.mtime}`);
    if (x.kind === 'symlink' && e.target !== x.target) bad.push(`${p}: target ${e.target}, expected ${x.target}`);
    if (x.kind === 'file') {
      if (e.size !== x.size) bad.push(`${p}: size ${e.size}, expected ${x.size}`);
      else if (x.pieces) bad.push(...piecesDiffer(img, toc, e, x.pieces).map((m) => `${p}: ${m}`));
      else if (sha(bytesThroughToc(img, toc, e)) !== x.sha) bad.push(`${p}: content through the TOC differs`);
    }
  }
  expect(bad).toEqual([]);
  // Blocks: the TOC's data and map blocks against debugfs's, inode by inode.
  expect(blocksDiffer(img.fsImage, toc.entries)).toEqual([]);
  // And the LUN ranges are those blocks, offset by the partition's start.
  for (const e of toc.entries.filter((x) => x.extents.length > 0).slice(0, 50)) {
    for (const [i, r] of lunRanges(toc.fs, e.extents).entries()) {
      expect(r.lba * toc.fs.deviceBlockSize + r.skip).toBe(img.offset + e.extents[i].physical * toc.fs.blockSize);
    }
  }
  // The stored form round-trips.
  const plain = { fs: toc.fs, entries: toc.entries };
  expect(decodeToc(encodeToc(plain))).toEqual(plain);
}

const VARIANTS: Array<{ name: string; mkfs: string[]; o: Parameters<typeof buildImage>[2] }> = [
  { name: 'ext4-4k-gpt', mkfs: ['mkfs.ext4', '-b', '4096'], o: { files: 400, sizeMiB: 64, table: 'gpt', fragment: true, over4g: true, uninit: true } },
  { name: 'ext4-4k-sparse_super2-htree', mkfs: ['mkfs.ext4', '-b', '4096', '-O', 'sparse_super2'], o: { files: 200, sizeMiB: 160, bigDir: 3000, uninit: true } },
  { name: 'ext4-1k-htree', mkfs: ['mkfs.ext4', '-b', '1024'], o: { files: 100, sizeMiB: 48, bigDir: 2000, uninit: true } },
  { name: 'ext4-1k-64bit-mbr-logical', mkfs: ['mkfs.ext4', '-b', '1024', '-O', '64bit'], o: { files: 300, sizeMiB: 48, table: 'mbr-logical', fragment: true } },
  { name: 'ext4-1k-noextent-noflexbg', mkfs: ['mkfs.ext4', '-b', '1024', '-O', '^extent,^flex_bg,^64bit'], o: { files: 200, sizeMiB: 48, fragment: true, hugeSparse: true } },
  { name: 'ext2-1k', mkfs: ['mkfs.ext2', '-b', '1024'], o: { files: 200, sizeMiB: 40 } },
  { name: 'ext3-4k-mbr', mkfs: ['mkfs.ext3', '-b', '4096'], o: { files: 200, sizeMiB: 48, table: 'mbr', over4g: true } },
  // No checksums: a damaged extent tree is found by its structure alone (the corruption test).
  { name: 'ext4-4k-nocsum', mkfs: ['mkfs.ext4', '-b', '4096', '-O', '^metadata_csum'], o: { files: 150, sizeMiB: 40, fragment: true } },
  // No sparse files here: mkfs.ext4 -d of e2fsprogs 1.47.0 with inline_data writes a sparse file
  // with a wrong size and a block at 0 (debugfs's stat shows it too); the image, not the TOC, is wrong.
  { name: 'ext4-4k-inline', mkfs: ['mkfs.ext4', '-b', '4096', '-O', 'inline_data'], o: { files: 300, sizeMiB: 48, noSparse: true } },
];

const images = new Map<string, Image>();

describe.each(VARIANTS)('$name', ({ name, mkfs, o }) => {
  test('every file: blocks equal debugfs, bytes through the TOC equal the tree', async () => {
    const img = buildImage(name, mkfs, o, SEED + name.length);
    images.set(name, img);
    const toc = await readToc({ file: img.file });
    expect(toc.fs.type).toBe(mkfs[0].slice(5));
    if (o.table === 'mbr-logical') expect(toc.partition?.index).toBe(5);
    if (o.table === 'gpt') expect(toc.partition).toMatchObject({ scheme: 'gpt', type: 'Linux filesystem', name: 'data' });
    checkAgainstOracle(img, toc);
    if (o.fragment) {
      const frag = toc.entries.find((e) => e.paths.includes('/fragmented'))!;
      expect(frag.extents.length).toBeGreaterThan(4);
      expect(frag.mapBlocks.length).toBeGreaterThan(0);
    }
    if (mkfs.includes('inline_data')) expect(toc.entries.some((e) => e.inlineData && e.type === 'file' && e.size > 0)).toBe(true);
    if (o.hugeSparse) expect(toc.entries.find((e) => e.paths.includes('/huge-sparse'))!.mapBlocks.length).toBeGreaterThanOrEqual(3);
    const find = (p: string) => toc.entries.find((e) => e.paths.includes(p))!;
    if (mkfs.join(' ').includes('sparse_super2')) expect(toc.fs.features).toContain('sparse_super2');
    if (o.over4g) {
      expect(find('/over-4g').size).toBe(OVER_4G);
      expect(find('/over-4g').extents.at(-1)!.logical * toc.fs.blockSize).toBeGreaterThan(2 ** 32);
    }
    // An htree: EXT2_INDEX_FL (0x1000) set on the directory of thousands of entries.
    if (o.bigDir) expect(find('/htree').flags & 0x1000).toBe(0x1000);
    if (o.uninit) {
      // Reported as uninit (debugfs's "Uninit" extents), read as zeros (the content check above).
      const e = find('/uninit');
      const mine = e.extents.filter((x) => x.uninit).map((x) => `${x.logical}-${x.logical + x.blocks - 1}`);
      expect(mine.length).toBeGreaterThan(0);
      expect(mine).toEqual(debugfsUninit(img.fsImage, e.ino));
    }
  });
});

describe('through iSCSI from the project target', () => {
  let t: SnapshotTarget | undefined;
  afterAll(async () => {
    await t?.server.stop();
  });
  test('the GPT image served as a file LUN gives the same TOC as the file', async () => {
    const img = images.get('ext4-4k-gpt')!;
    expect(img).toBeDefined();
    t = await startSnapshotTarget(dir, 'iqn.2026-11.io.xcopy-agent:toc', [`file:${img.file}`], { readOnly: [0] });
    const viaLun = await readToc({ url: t.url(0) });
    const viaFile = await readToc({ file: img.file });
    expect(viaLun.partition?.index).toBe(1);
    expect({ fs: viaLun.fs, entries: viaLun.entries }).toEqual({ fs: viaFile.fs, entries: viaFile.entries });
    expect(viaLun.reads).toBeGreaterThan(0);
  });

  test('a cache of a few 4 KiB windows (every read a miss, read ahead, evicted, read again) gives the same TOC', async () => {
    const img = images.get('ext4-4k-gpt')!;
    const small = { windowBytes: 4096, windows: 4 };
    const viaLun = await readToc({ url: t!.url(0), walk: small });
    const viaFile = await readToc({ file: img.file, walk: small });
    const plain = await readToc({ file: img.file });
    expect({ fs: viaLun.fs, entries: viaLun.entries }).toEqual({ fs: plain.fs, entries: plain.entries });
    expect({ fs: viaFile.fs, entries: viaFile.entries }).toEqual({ fs: plain.fs, entries: plain.entries });
    expect(viaLun.timing!.misses).toBeGreaterThan(plain.timing!.misses);
  });
});

describe('the command', () => {
  const BIN = path.resolve(__dirname, '../../bin/xcopy-agent');
  const run = (args: string[]) => spawnSync(BIN, ['toc', ...args], { encoding: 'utf8' });

  test('--json: one file record per inode listed, then the summary; paths select', () => {
    const img = images.get('ext3-4k-mbr')!;
    const r = run(['--file', img.file, '--json', '/deep0/deep1/large.bin', '/fast-link']);
    expect(r.status).toBe(0);
    const recs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(recs.map((x) => x.type)).toEqual(['file', 'file', 'summary']);
    const large = recs.find((x) => x.path === '/deep0/deep1/large.bin')!;
    expect(large).toMatchObject({ file_type: 'file', size: img.exp.get('/deep0/deep1/large.bin')!.size });
    expect((large.extents as Array<{ lba: number }>)[0].lba).toBeGreaterThanOrEqual(2048);
    expect(recs.find((x) => x.path === '/fast-link')).toMatchObject({ file_type: 'symlink', link_target: 'f1' });
    expect(recs[2]).toMatchObject({ command: 'toc', fs_type: 'ext3', partition: { index: 1, scheme: 'mbr' }, listed: 2 });
  });

  test('bad input: one line, the documented exit status, nothing on stdout', () => {
    const notFs = run(['--file', path.join(dir, 'ext2-1k.tree', 'deep0', 'deep1', 'large.bin')]);
    expect(notFs.status).toBe(54);
    expect(notFs.stderr.trim().split('\n')).toHaveLength(1);
    expect(notFs.stdout).toBe('');
    const missing = run(['--file', images.get('ext2-1k')!.file, '/no/such/file']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/no such path in the file system: \/no\/such\/file/);
    expect(run([]).status).toBe(1);
  });
});

describe('corrupt images give errors, not crashes', () => {
  const CODES = ['ERR_FS_CORRUPT', 'ERR_FS_UNSUPPORTED', 'ERR_FS_READ'];

  /** A fresh copy of the metadata_csum image with `bytes` written at `offset`. */
  function corrupt(src: string, tag: string, offset: number, bytes: Buffer): string {
    const f = path.join(dir, `corrupt-${tag}.img`);
    fs.copyFileSync(src, f);
    const fd = fs.openSync(f, 'r+');
    fs.writeSync(fd, bytes, 0, bytes.length, offset);
    fs.closeSync(fd);
    return f;
  }

  /** What dumpe2fs says of the image: block size, the inode size, the first group's inode table. */
  function geometry(img: string): { blockSize: number; inodeSize: number; inodeTable: number } {
    const out = execFileSync('dumpe2fs', [img], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    return {
      blockSize: Number(/Block size:\s+(\d+)/.exec(out)![1]),
      inodeSize: Number(/Inode size:\s+(\d+)/.exec(out)![1]),
      inodeTable: Number(/Inode table at (\d+)/.exec(out)![1]),
    };
  }

  test('a damaged inode (checksummed) fails naming that inode', async () => {
    const img = images.get('ext4-4k-inline')!;
    const toc = await readToc({ file: img.file });
    const victim = toc.entries.find((e) => e.type === 'file' && e.ino > 11 && e.ino < 100)!;
    const g = geometry(img.fsImage);
    const at = g.inodeTable * g.blockSize + (victim.ino - 1) * g.inodeSize + 40; // i_block
    const f = corrupt(img.fsImage, 'inode', at, Buffer.from('deadbeefdeadbeef', 'hex'));
    await expect(readToc({ file: f })).rejects.toMatchObject({ code: 'ERR_FS_CORRUPT', ino: victim.ino });
  });

  test('a damaged extent header (no checksums: ext4 ^metadata_csum) fails naming the inode', async () => {
    const tree = path.join(dir, 'nocsum.tree');
    fs.mkdirSync(tree);
    fs.writeFileSync(path.join(tree, 'x'), Buffer.alloc(100_000, 7));
    const f0 = path.join(dir, 'nocsum.fs');
    execFileSync('mkfs.ext4', ['-q', '-F', '-b', '4096', '-O', '^metadata_csum', '-d', tree, f0, '8M'], { stdio: 'pipe' });
    const toc = await readToc({ file: f0 });
    const x = toc.entries.find((e) => e.paths.includes('/x'))!;
    const g = geometry(f0);
    const f = corrupt(f0, 'exthdr', g.inodeTable * g.blockSize + (x.ino - 1) * g.inodeSize + 40, Buffer.from([0x00, 0x00]));
    await expect(readToc({ file: f })).rejects.toMatchObject({ code: 'ERR_FS_CORRUPT', ino: x.ino });
  });

  test('a superblock of random bytes: no ext2/3/4 file system', async () => {
    const img = images.get('ext2-1k')!;
    const f = corrupt(img.fsImage, 'sb', 1024, xorshift(SEED).bytes(1024));
    await expect(readToc({ file: f, offset: 0 })).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_FS_(UNSUPPORTED|CORRUPT)$/) });
  });

  /** Where debugfs says inode `ino` is (imap): its byte in the file system image. */
  function inodeAt(img: string, ino: number, blockSize: number): number {
    const out = execFileSync('debugfs', ['-R', `imap <${ino}>`, img], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    const m = /located at block (\d+), offset (0x[0-9a-f]+)/.exec(out)!;
    return Number(m[1]) * blockSize + Number(m[2]);
  }

  test('random bytes in superblock, group descriptors, inodes, extent headers and tree blocks, directory blocks: a TOC debugfs agrees with, or an error naming what was refused', async () => {
    const r = xorshift(SEED ^ 0x1234);
    const outcomes = { ok: 0, errors: 0 };
    for (const name of ['ext4-4k-inline', 'ext2-1k', 'ext4-1k-noextent-noflexbg', 'ext4-4k-gpt', 'ext4-4k-nocsum']) {
      const img = images.get(name)!;
      const g = geometry(img.fsImage);
      const clean = await readToc({ file: img.fsImage });
      const root = clean.entries[0];
      const places: Array<[string, number]> = [
        ['superblock', 1024 + r.int(1024 - 16)],
        ['group descriptors', g.blockSize * (g.blockSize === 1024 ? 2 : 1) + r.int(256)],
        ['the first inodes', g.inodeTable * g.blockSize + r.int(64 * g.inodeSize)],
        ['the root directory', (root.extents[0]?.physical ?? g.inodeTable) * g.blockSize + r.int(g.blockSize - 16)],
      ];
      const frag = clean.entries.find((e) => e.paths.includes('/fragmented'));
      if (frag && frag.flags & 0x80000) {
        // EXT4_EXTENTS_FL: the extent header and root entries in i_block, an index or leaf block.
        places.push(['the extent tree root in the inode', inodeAt(img.fsImage, frag.ino, g.blockSize) + 40 + r.int(24)]);
        places.push(['an extent tree block', frag.mapBlocks[r.int(frag.mapBlocks.length)] * g.blockSize + r.int(24)]);
      }
      for (const [what, at] of places) {
        for (let k = 0; k < 2; k++) {
          const f = corrupt(img.fsImage, `${name}-${what.replace(/ /g, '-')}-${k}`, at + 8 * k, r.bytes(16));
          try {
            const toc = await readToc({ file: f, offset: 0 });
            // A result: every block of it is one debugfs reads from the same bytes.
            for (const e of toc.entries) for (const x of e.extents) expect(x.physical + x.blocks).toBeLessThanOrEqual(toc.fs.blocksCount);
            expect([what, blocksDiffer(f, toc.entries)]).toEqual([what, []]);
            outcomes.ok++;
          } catch (e) {
            if (!(e instanceof AgentError)) throw e;
            expect(CODES).toContain(e.code);
            expect([what, e.message]).toEqual([what, expect.stringMatching(/inode \d+|block \d+|superblock|group descriptor/)]);
            outcomes.errors++;
          }
          fs.unlinkSync(f);
        }
      }
    }
    // eslint-disable-next-line no-console
    console.log(`toc.test: corrupt images: ${outcomes.ok} listed (debugfs agreeing), ${outcomes.errors} refused`);
    expect(outcomes.errors).toBeGreaterThan(0);
  });
});

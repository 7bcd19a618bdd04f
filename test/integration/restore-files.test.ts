/**
 * `restore --files` (docs/restore.md, "Restoring files"): an ext4 file system built by e2fsprogs
 * (`mkfs.ext4 -d`, no mount) from a generated tree, inside a GPT partition made by `sfdisk`, is
 * the source LUN; a backup with --toc runs while a host overwrites files through the target.
 * Restored files must be the generated tree (the content as of the snapshot): to a directory
 * (bytes, size, holes, mode, mtime, symbolic and hard links, a FIFO) from an overwrite-mode copy
 * and from an append-mode copy not integrated (its log laid over the image), and in place on the
 * source LUN, read back by `debugfs` (e2fsprogs, independent of the code under test). Refusals
 * (existing files, a changed layout, a file system not clean, a damaged copy) write nothing.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { backup, type BackupEvent } from '../../src/agent/backup';
import { restoreFiles } from '../../src/agent/restore-files';
import { SqliteCatalog } from '../../src/catalog';
import { IscsiSession } from '../../src/initiator/session';
import { freePort } from '../../src/peers/tgt';
import { xorshift } from '../helpers/rng';
import { startTargetProcess, type TargetProcess } from '../helpers/target-process';
import { removeDir, tempDir } from '../helpers/tmp';

const run = promisify(execFile);
const IQN = 'iqn.2026-12.io.xcopy-agent.test:restore-files';
const BS = 512;
/** The file system: 28 MiB in a GPT partition starting at 1 MiB of a 32 MiB LUN. */
const PART_OFFSET = 1024 * 1024;
const FS_BYTES = 28 * 1024 * 1024;
const SIZE = 32 * 1024 * 1024;
const BIN = path.resolve(__dirname, '../../bin/xcopy-agent');
const SEED = Number(process.env.RESTORE_FILES_SEED ?? crypto.randomInt(1, 2 ** 30));
console.info(`restore-files seed ${SEED} (replay with RESTORE_FILES_SEED=${SEED})`);

let dir: string;
let t: TargetProcess;
const file = (name: string) => path.join(dir, name);
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
/** Regular files of the generated tree: path from the file system's root → content. */
const tree = new Map<string, Buffer>();
/** A fixed mtime given to every file of the tree (mkfs -d keeps seconds); /docs/a.txt gets 250 ms more by debugfs. */
const MTIME = new Date('2026-03-04T05:06:07.000Z');
const MTIME_NS = new Date('2026-03-04T05:06:07.250Z');
const UNICODE = '/docs/ünïcødé – ファイル.txt';
const LONG_TARGET = `${'x'.repeat(90)}/target`;

/** LUNs: 0 source, 1 OBF, 2 secondary (overwrite), 3 secondary (append). */
beforeAll(async () => {
  dir = tempDir('restore-files');
  const rng = xorshift(SEED);
  const root = file('tree');
  const put = (rel: string, data: Buffer, mode = 0o644) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), data, { mode });
    fs.chmodSync(path.join(root, rel), mode);
    tree.set(rel, data);
  };
  put('/docs/a.txt', Buffer.from('the first file\n'), 0o640);
  put('/docs/sub/b.bin', rng.bytes(300_000), 0o600);
  put(UNICODE, rng.bytes(5000));
  put('/big.bin', rng.bytes(3 * 1024 * 1024), 0o755);
  put('/empty', Buffer.alloc(0));
  for (let i = 0; i < 20; i++) put(`/many/f${i}.bin`, rng.bytes(4096 + rng.int(40_000)));
  // Sparse: data at 0 and at 2 MiB, a hole between and after (mkfs -d keeps holes).
  const sparse = Buffer.alloc(3 * 1024 * 1024);
  rng.bytes(8192).copy(sparse, 0);
  rng.bytes(8192).copy(sparse, 2 * 1024 * 1024);
  fs.writeFileSync(path.join(root, 'sparse.bin'), Buffer.alloc(0));
  const fd = fs.openSync(path.join(root, 'sparse.bin'), 'r+');
  fs.writeSync(fd, sparse, 0, 8192, 0);
  fs.writeSync(fd, sparse, 2 * 1024 * 1024, 8192, 2 * 1024 * 1024);
  fs.ftruncateSync(fd, sparse.length);
  fs.closeSync(fd);
  tree.set('/sparse.bin', sparse);
  fs.linkSync(path.join(root, 'docs/a.txt'), path.join(root, 'docs/hard'));
  fs.symlinkSync('docs/a.txt', path.join(root, 'link'));
  fs.symlinkSync(LONG_TARGET, path.join(root, 'longlink'));
  await run('mkfifo', [path.join(root, 'fifo')]);
  fs.chmodSync(path.join(root, 'docs'), 0o750);
  for (const p of ['/docs/a.txt', '/docs/sub/b.bin', UNICODE, '/big.bin', '/empty', '/sparse.bin', '/fifo', '/docs/sub', '/docs']) fs.utimesSync(path.join(root, p), MTIME, MTIME);
  fs.lutimesSync(path.join(root, 'link'), MTIME, MTIME);

  // A GPT with one Linux partition at 1 MiB, then the file system written there.
  fs.writeFileSync(file('src.img'), Buffer.alloc(0));
  fs.truncateSync(file('src.img'), SIZE);
  await run('sh', ['-c', `echo 'label: gpt\nstart=2048, size=${FS_BYTES / BS}, type=L' | sfdisk -q ${file('src.img')}`]);
  await run('mkfs.ext4', ['-q', '-F', '-b', '4096', '-E', `offset=${PART_OFFSET}`, '-d', root, file('src.img'), `${FS_BYTES / 1024}k`]);
  // Nanoseconds in the inode's extra time field: bits 2..31 (ext4 "Inode Timestamps").
  await run('debugfs', ['-w', '-R', `sif /docs/a.txt mtime_extra ${250_000_000 * 4}`, `${file('src.img')}?offset=${PART_OFFSET}`]);
  fs.copyFileSync(file('src.img'), file('pristine.img'));
  t = await startTargetProcess({
    iqn: IQN,
    luns: [`file:${file('src.img')}`, `file:${file('obf.img')}:16M`, `file:${file('sec.img')}:40M`, `file:${file('sec-append.img')}:72M`],
    mgmt: { port: await freePort(), stateDir: file('state') },
  });
}, 120_000);

afterAll(async () => {
  await t?.kill('SIGTERM');
  if (dir) removeDir(dir);
});

interface FileRecord {
  type: string;
  path: string;
  file_type: string;
  extents: Array<{ lba: number; blocks: number }>;
}

/** The regular files' first LBA ranges on the source, from the CLI's own listing of it. */
async function listing(): Promise<FileRecord[]> {
  const r = await run(BIN, ['toc', '--file', file('src.img'), '--json'], { env: { ...process.env } });
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as FileRecord)
    .filter((x) => x.type === 'file' && x.file_type === 'file' && x.extents.length > 0);
}

/** A backup with --toc while a host overwrites the first blocks of every file. */
async function backupUnderWrites(lun: number, mode: 'overwrite' | 'append'): Promise<void> {
  const victims = await listing();
  const host = await IscsiSession.connect(t.url(0));
  let writing: Promise<unknown> | undefined;
  const onEvent = (e: BackupEvent) => {
    if (e.type === 'phase' && e.phase === 'copy' && !writing) {
      writing = Promise.all(victims.map((v) => host.write16(BigInt(v.extents[0].lba), crypto.randomBytes(Math.min(v.extents[0].blocks, 16) * BS))));
    }
  };
  try {
    const r = await backup({ source: t.url(0), secondary: t.url(lun), obf: t.url(1), mgmt: t.mgmt!, mode, toc: true, yes: true, log: pino({ level: 'silent' }), onEvent });
    await writing;
    expect(r.toc?.files).toBeGreaterThan(tree.size);
    expect(r.obf_records).toBeGreaterThan(0);
  } finally {
    await host.close();
  }
}

/** The CLI; resolves with its exit status and output (a failing run does not reject). */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(BIN, args, { env: { ...process.env }, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Every file of the tree under `out` as generated: bytes, size, mode; and the links, the FIFO, times. */
function expectTree(out: string, paths: Iterable<string> = tree.keys()): void {
  for (const p of paths) {
    const data = tree.get(p)!;
    const got = fs.readFileSync(path.join(out, p));
    expect({ p, sha: sha(got) }).toEqual({ p, sha: sha(data) });
    expect(fs.statSync(path.join(out, p)).mode & 0o7777).toBe(fs.statSync(path.join(dir, 'tree', p)).mode & 0o7777);
  }
}

describe('to a directory', () => {
  beforeAll(() => backupUnderWrites(2, 'overwrite'), 180_000);

  test('files, directories and links as of the snapshot, with their attributes', async () => {
    // The source differs from the tree now (the host's writes) ...
    const source = fs.readFileSync(file('src.img'));
    expect(source.length).toBe(SIZE);
    const out = file('out1');
    const r = await cli(['restore', '--secondary', t.url(2), '--files', '/docs', '/big.bin', '/sparse.bin', '/empty', '/link', '/longlink', '/fifo', '--to-dir', out, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(summary).toMatchObject({ type: 'summary', method: 'to-dir', toc: 'kept', symlinks: 2, special: 1, hard_links: 1 });
    // ... the restored files are the tree.
    expectTree(out, ['/docs/a.txt', '/docs/sub/b.bin', UNICODE, '/big.bin', '/sparse.bin', '/empty']);
    const st = (p: string) => fs.lstatSync(path.join(out, p));
    expect(st('/docs/a.txt').mtime.toISOString()).toBe(MTIME_NS.toISOString());
    expect(st('/big.bin').mtime.toISOString()).toBe(MTIME.toISOString());
    expect(st('/docs').mtime.toISOString()).toBe(MTIME.toISOString());
    expect(st('/docs').mode & 0o7777).toBe(0o750);
    expect(st('/docs/hard').ino).toBe(st('/docs/a.txt').ino);
    expect(fs.readlinkSync(path.join(out, 'link'))).toBe('docs/a.txt');
    expect(fs.readlinkSync(path.join(out, 'longlink'))).toBe(LONG_TARGET);
    expect(st('/fifo').isFIFO()).toBe(true);
    // Holes stay holes: far fewer blocks allocated than the size.
    expect(st('/sparse.bin').blocks * 512).toBeLessThan(1024 * 1024);
    expect(fs.readdirSync(out).filter((n) => n.startsWith('.xcopy-agent-restore'))).toEqual([]);
  }, 120_000);

  test('existing files are refused without --overwrite (nothing written), replaced with it', async () => {
    const out = file('out1');
    fs.writeFileSync(path.join(out, 'big.bin'), 'changed by hand');
    const refused = await cli(['restore', '--secondary', t.url(2), '--files', '/big.bin', '/many', '--to-dir', out]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/big\.bin exists.*--overwrite/);
    expect(fs.readFileSync(path.join(out, 'big.bin'), 'utf8')).toBe('changed by hand');
    expect(fs.existsSync(path.join(out, 'many'))).toBe(false);
    const replaced = await cli(['restore', '--secondary', t.url(2), '--files', '/big.bin', '/many', '--to-dir', out, '--overwrite']);
    expect(replaced.stderr).toBe('');
    expect(replaced.code).toBe(0);
    expect(replaced.stdout).toMatch(/: 21 files, 1 directory into /);
    expectTree(out, ['/big.bin', ...[...tree.keys()].filter((p) => p.startsWith('/many/'))]);
  }, 120_000);

  test('the whole file system (/) into an empty directory', async () => {
    const out = file('out-all');
    const r = await cli(['restore', '--secondary', t.url(2), '--files', '/', '--to-dir', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expectTree(out);
    expect(fs.statSync(path.join(out, 'lost+found')).isDirectory()).toBe(true);
  }, 120_000);

  test('a run continued (--resume): files already in place are kept, leftovers of the cut-short run removed, the rest written', async () => {
    const out = file('out-resume');
    const first = await cli(['restore', '--secondary', t.url(2), '--files', '/many/f1.bin', '/many/f2.bin', '--to-dir', out]);
    expect(first.code).toBe(0);
    // As a run killed midway leaves it: two files renamed into place, one under its temporary name.
    const kept = fs.statSync(path.join(out, 'many/f1.bin')).ino;
    const leftover = path.join(out, 'many', `.xcopy-agent-restore.999999.f3.bin`);
    fs.writeFileSync(leftover, 'half written');
    const r = await restoreFiles({ secondary: t.url(2), paths: ['/many'], toDir: out, skipExisting: true });
    expect(r.files).toBe(20);
    expect(fs.statSync(path.join(out, 'many/f1.bin')).ino).toBe(kept);
    expect(fs.existsSync(leftover)).toBe(false);
    expectTree(out, [...tree.keys()].filter((p) => p.startsWith('/many/')));
  }, 60_000);

  test('a damaged copy: the file whose extent does not match its hash is not written, exit 14', async () => {
    // Flip one byte of /docs/sub/b.bin's data on a copy of the secondary (the kept TOC says where).
    const listed = await cli(['toc', '--secondary', t.url(2), '--json', '/docs/sub/b.bin']);
    const rec = JSON.parse(listed.stdout.trim().split('\n')[0]) as FileRecord;
    expect(rec.path).toBe('/docs/sub/b.bin');
    const fd = fs.openSync(file('sec.img'), 'r+');
    const at = rec.extents[0].lba * BS + 100;
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    fs.writeSync(fd, Buffer.from([b[0] ^ 0xff]), 0, 1, at);
    try {
      const out = file('out-bad');
      const r = await cli(['restore', '--secondary', t.url(2), '--files', '/docs/sub/b.bin', '--to-dir', out]);
      expect(r.code).toBe(14);
      expect(r.stderr).toMatch(/not a good copy: extent \d+ .*differs from the hash table/);
      expect(fs.existsSync(path.join(out, 'docs/sub/b.bin'))).toBe(false);
      expect(fs.readdirSync(path.join(out, 'docs/sub'))).toEqual([]);
    } finally {
      fs.writeSync(fd, b, 0, 1, at);
      fs.closeSync(fd);
    }
  }, 60_000);

  test('bad input: one line, exit 1', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--files', '/docs'], /--to-dir DIR.*--in-place/],
      [['--files', '/nope', '--to-dir', file('x')], /no such path in the file system: \/nope/],
      [['--files', 'docs', '--to-dir', file('x')], /must start with '\/'/],
      [['--files', '/docs', '--to-dir', file('x'), '--in-place'], /choose one/],
      [['--to-dir', file('x')], /go with --files/],
      [['--files', '/docs', '--to-dir', path.join(dir, 'src.img')], /exists and is not a directory/],
    ];
    for (const [args, why] of cases) {
      const r = await cli(['restore', '--secondary', t.url(2), ...args]);
      expect({ args, code: r.code }).toEqual({ args, code: 1 });
      expect(r.stderr).toMatch(why);
    }
    expect(fs.existsSync(file('x'))).toBe(false);
  }, 60_000);
});

describe('from an append-mode copy not integrated', () => {
  beforeAll(async () => {
    // The tree again on the source (the first backup's host writes undone), written by a host.
    const host = await IscsiSession.connect(t.url(0));
    try {
      const pristine = fs.readFileSync(file('pristine.img'));
      for (let at = 0; at < SIZE; at += 1024 * 1024) await host.write16(BigInt(at / BS), pristine.subarray(at, at + 1024 * 1024));
      await host.synchronizeCache16();
    } finally {
      await host.close();
    }
    await backupUnderWrites(3, 'append');
  }, 180_000);

  test('the appended log is laid over the image: the files as of the snapshot', async () => {
    const out = file('out-append');
    const r = await cli(['restore', '--secondary', t.url(3), '--files', '/', '--to-dir', out, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as { log_records: number };
    expect(summary.log_records).toBeGreaterThan(0);
    expectTree(out);
  }, 120_000);
});

describe('in place', () => {
  /** A file of the source's file system as e2fsprogs reads it (the independent reader). */
  const debugfsCat = async (p: string) =>
    (await run('debugfs', ['-R', `cat "${p}"`, `${file('src.img')}?offset=${PART_OFFSET}`], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 })).stdout;

  test('only the named files\' blocks go back; the others keep the host\'s writes', async () => {
    // The host's writes of the backups are on the source: the tree's files differ there.
    expect(sha(await debugfsCat('/docs/sub/b.bin'))).not.toBe(sha(tree.get('/docs/sub/b.bin')!));
    expect(sha(await debugfsCat('/big.bin'))).not.toBe(sha(tree.get('/big.bin')!));
    const noYes = await cli(['restore', '--secondary', t.url(2), '--files', '/docs', '--in-place']);
    expect(noYes.code).toBe(1);
    expect(noYes.stderr).toMatch(/give --yes/);
    const r = await cli(['restore', '--secondary', t.url(2), '--files', '/docs', '/sparse.bin', '--in-place', '--yes', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(summary).toMatchObject({ method: 'in-place', files: 4 });
    for (const p of ['/docs/a.txt', '/docs/sub/b.bin', UNICODE, '/sparse.bin']) expect({ p, sha: sha(await debugfsCat(p)) }).toEqual({ p, sha: sha(tree.get(p)!) });
    expect(sha(await debugfsCat('/big.bin'))).not.toBe(sha(tree.get('/big.bin')!));
    // e2fsprogs finds the file system consistent.
    await run('e2fsck', ['-fn', `${file('src.img')}?offset=${PART_OFFSET}`]); // rejects on any finding (exit 4)
  }, 120_000);

  test('refused, nothing written: a file whose layout changed, a file system not clean', async () => {
    const image = () => sha(fs.readFileSync(file('src.img')));
    const dev = `${file('src.img')}?offset=${PART_OFFSET}`;
    // /many/f3.bin deleted since the copy (its inode freed).
    await run('debugfs', ['-w', '-R', 'rm /many/f3.bin', dev]);
    const before = image();
    const changed = await cli(['restore', '--secondary', t.url(2), '--files', '/many', '--in-place', '--yes']);
    expect(changed.code).toBe(1);
    expect(changed.stderr).toMatch(/1 of the 20 files changed their layout since the copy.*\/many\/f3\.bin: its inode is no longer in use.*--to-dir/);
    expect(image()).toBe(before);
    // Marked not clean (as a mounted ext2 is).
    await run('debugfs', ['-w', '-R', 'ssv state 0', dev]);
    const dirty = await cli(['restore', '--secondary', t.url(2), '--files', '/big.bin', '--in-place', '--yes']);
    expect(dirty.code).toBe(1);
    expect(dirty.stderr).toMatch(/mounted or was not cleanly unmounted.*unmount it/);
    await run('debugfs', ['-w', '-R', 'ssv state 1', dev]);
    const after = await cli(['restore', '--secondary', t.url(2), '--files', '/big.bin', '--in-place', '--yes']);
    expect(after.stderr).toBe('');
    expect(after.code).toBe(0);
    expect(sha(await debugfsCat('/big.bin'))).toBe(sha(tree.get('/big.bin')!));
  }, 120_000);
});

describe('through the catalog', () => {
  test('backup --toc records the TOC with the copy; toc --copy and restore --copy find it', async () => {
    const catalog = file('catalog.db');
    const dev = `${file('src.img')}?offset=${PART_OFFSET}`;
    const expected = (await run('debugfs', ['-R', 'cat /big.bin', dev], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 })).stdout;
    const b = await cli(['backup', '--source', t.url(0), '--secondary', t.url(2), '--obf', t.url(1), '--toc', '--yes', '--json', '--catalog', catalog, '--mgmt', t.mgmt!.url, '--token-file', path.join(file('state'), 'mgmt.token')]);
    expect(b.stderr).toBe('');
    expect(b.code).toBe(0);
    const id = (JSON.parse(b.stdout.trim().split('\n').pop()!) as { backup_id: string }).backup_id;
    const c = SqliteCatalog.open(catalog);
    try {
      expect((await c.getToc(id))?.subarray(0, 8).toString('latin1')).toBe('XCAGTOC1');
    } finally {
      await c.close();
    }
    const shown = await cli(['copies', 'show', id.slice(0, 8), '--catalog', catalog]);
    expect(shown.stdout).toMatch(/table of contents: \d+ inodes \(toc --copy /);
    const listed = await cli(['toc', '--copy', id.slice(0, 8), '--catalog', catalog, '/big.bin', '--json']);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout.trim().split('\n')[0])).toMatchObject({ path: '/big.bin', size: expected.length });
    const out = file('out-catalog');
    const r = await cli(['restore', '--copy', id.slice(0, 8), '--catalog', catalog, '--files', '/big.bin', '--to-dir', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(sha(fs.readFileSync(path.join(out, 'big.bin')))).toBe(sha(expected));
    const unknown = await cli(['restore', '--copy', 'ffffffff', '--catalog', catalog, '--files', '/big.bin', '--to-dir', out]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/has no copy ffffffff/);
  }, 180_000);
});

describe('a copy made without --toc', () => {
  test('an integrated copy is listed from its image, with a warning; the files are as of the backup', async () => {
    const dev = `${file('src.img')}?offset=${PART_OFFSET}`;
    const expected = (await run('debugfs', ['-R', 'cat /docs/sub/b.bin', dev], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 })).stdout;
    const r = await backup({ source: t.url(0), secondary: t.url(3), obf: t.url(1), mgmt: t.mgmt!, mode: 'overwrite', yes: true, log: pino({ level: 'silent' }) });
    expect(r.toc).toBeUndefined();
    const out = file('out-no-toc');
    const restored = await cli(['restore', '--secondary', t.url(3), '--files', '/docs/sub/b.bin', '--to-dir', out, '--json']);
    expect(restored.code).toBe(0);
    expect(restored.stdout).toMatch(/"event":"warning","message":"backup [0-9a-f-]+ was made without --toc: reading the file system from its image now"/);
    expect(JSON.parse(restored.stdout.trim().split('\n').pop()!)).toMatchObject({ toc: 'image', files: 1 });
    expect(sha(fs.readFileSync(path.join(out, 'docs/sub/b.bin')))).toBe(sha(expected));
  }, 120_000);
});

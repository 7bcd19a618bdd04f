/**
 * `backup --toc` (603; docs/backup.md, "The table of contents"): an ext4 file system built by
 * e2fsprogs (`mkfs.ext4 -d`, no mount) from a generated tree is the source LUN; while the backup
 * copies, a host overwrites files through the target. The TOC must come from the snapshot's view:
 * `toc --secondary URL --json` lists every file, and each file read from the secondary through
 * the TOC's block ranges hashes equal to the generated tree (the content as of the snapshot, not
 * the host's new data) — e2fsprogs and the generated tree are the references, independent of the
 * TOC, COW and copy code. A source without a file system gets a warning and a copy without TOC.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { backup, type BackupEvent } from '../../src/agent/backup';
import { IscsiSession } from '../../src/initiator/session';
import { xorshift } from '../helpers/rng';
import { freePort } from '../../src/peers/tgt';
import { startTargetProcess, type TargetProcess } from '../helpers/target-process';
import { removeDir, tempDir } from '../helpers/tmp';

const run = promisify(execFile);
const IQN = 'iqn.2026-12.io.xcopy-agent.test:backup-toc';
const BS = 512;
const SIZE = 32 * 1024 * 1024;
const BIN = path.resolve(__dirname, '../../bin/xcopy-agent');
/** Random per run, printed; replay with BACKUP_TOC_SEED=N. */
const SEED = Number(process.env.BACKUP_TOC_SEED ?? crypto.randomInt(1, 2 ** 30));
console.info(`backup-toc seed ${SEED} (replay with BACKUP_TOC_SEED=${SEED})`);

let dir: string;
/** The source's target, a process of its own (as in production: the walk's own iSCSI session then never waits on this test's event loop). */
let t: TargetProcess;
const file = (name: string) => path.join(dir, name);
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
/** The generated tree: path from the file system's root → content. */
const tree = new Map<string, Buffer>();

beforeAll(async () => {
  dir = tempDir('backup-toc');
  const rng = xorshift(SEED);
  const root = file('tree');
  for (let i = 0; i < 24; i++) {
    const rel = i % 3 === 0 ? `/dir${i % 4}/sub/f${i}.bin` : `/f${i}.bin`;
    // At least one 4 KiB file-system block each; every fifth file spans many.
    const data = rng.bytes(4096 + rng.int(i % 5 === 0 ? 300_000 : 20_000));
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), data);
    tree.set(rel, data);
  }
  fs.symlinkSync('f1.bin', path.join(root, 'link'));
  fs.writeFileSync(file('src.img'), Buffer.alloc(0));
  await run('mkfs.ext4', ['-q', '-F', '-b', '4096', '-d', root, file('src.img'), `${SIZE / 1024}k`]);
  t = await startTargetProcess({
    iqn: IQN,
    luns: [`file:${file('src.img')}`, `file:${file('obf.img')}:16M`, `file:${file('sec.img')}:48M`, `file:${file('blank.img')}:8M`, `file:${file('sec2.img')}:16M`],
    mgmt: { port: await freePort(), stateDir: file('state') },
  });
});

afterAll(async () => {
  await t?.kill('SIGTERM');
  if (dir) removeDir(dir);
});

interface FileRecord {
  type: string;
  path: string;
  file_type: string;
  size: number;
  link_target?: string;
  extents: Array<{ file_offset: number; lba: number; blocks: number; skip?: number; length: number }>;
}

/** A file's bytes read from an image file through the TOC's ranges (holes read as zeros). */
function readThrough(image: Buffer, f: FileRecord): Buffer {
  const out = Buffer.alloc(f.size);
  for (const r of f.extents) image.copy(out, r.file_offset, r.lba * BS + (r.skip ?? 0), r.lba * BS + (r.skip ?? 0) + r.length);
  return out;
}

test('the TOC of the snapshot view is kept on the secondary and gives each file as of the snapshot', async () => {
  // The host's writes: up to the first 8 KiB of every file, once the copy runs.
  const before = await run(BIN, ['toc', '--file', file('src.img'), '--json']);
  const victims = before.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as FileRecord)
    .filter((r) => r.type === 'file' && r.file_type === 'file');
  expect(victims.length).toBe(tree.size);
  const host = await IscsiSession.connect(t.url(0));
  let writing: Promise<unknown> | undefined;
  const onEvent = (e: BackupEvent) => {
    if (e.type === 'phase' && e.phase === 'copy' && !writing) {
      writing = Promise.all(victims.map((v) => host.write16(BigInt(v.extents[0].lba), crypto.randomBytes(Math.min(v.extents[0].blocks, 16) * BS))));
    }
  };
  let r;
  try {
    r = await backup({ source: t.url(0), secondary: t.url(2), obf: t.url(1), mgmt: t.mgmt!, toc: true, yes: true, log: pino({ level: 'silent' }), onEvent });
    await writing;
  } finally {
    await host.close();
  }
  expect(r.toc?.files).toBeGreaterThan(tree.size);
  expect(r.obf_records).toBeGreaterThan(0);
  // The source now differs from the tree where the host wrote ...
  const source = fs.readFileSync(file('src.img'));
  expect(victims.filter((v) => sha(readThrough(source, v)) !== sha(tree.get(v.path)!)).length).toBe(victims.length);

  // ... while the copy's TOC, read back by the CLI, gives every file as generated.
  const listed = await run(BIN, ['toc', '--secondary', t.url(2), '--json'], { env: { ...process.env } });
  const records = listed.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as FileRecord);
  const files = records.filter((x) => x.type === 'file');
  const image = fs.readFileSync(file('sec.img'));
  for (const [p, data] of tree) {
    const f = files.find((x) => x.path === p);
    expect(f).toBeDefined();
    expect({ p, sha: sha(readThrough(image, f!)) }).toEqual({ p, sha: sha(data) });
  }
  expect(files.find((x) => x.path === '/link')).toMatchObject({ file_type: 'symlink', link_target: 'f1.bin' });
  // A path filter, as for a LUN.
  const one = await run(BIN, ['toc', '--secondary', t.url(2), '--json', '/dir0']);
  expect(one.stdout.trim().split('\n').filter((l) => (JSON.parse(l) as FileRecord).type === 'file').every((l) => (JSON.parse(l) as FileRecord).path.startsWith('/dir0'))).toBe(true);
}, 180_000);

test('a source with no file system: a warning, the copy made without a TOC; toc --secondary then says so, exit 1', async () => {
  const warnings: string[] = [];
  const r = await backup({
    source: t.url(3),
    secondary: t.url(4),
    obf: t.url(1),
    mgmt: t.mgmt!,
    toc: true,
    yes: true,
    log: pino({ level: 'silent' }),
    onEvent: (e) => {
      if (e.type === 'warning') warnings.push(e.message);
    },
  });
  expect(r.state).toBe('integrated');
  expect(r.toc).toBeUndefined();
  expect(warnings.some((w) => w.startsWith('no table of contents:'))).toBe(true);
  const listed = await run(BIN, ['toc', '--secondary', t.url(4)]).catch((e: { code: number; stderr: string }) => e);
  expect((listed as { code: number }).code).toBe(1);
  expect((listed as { stderr: string }).stderr).toMatch(/without a table of contents/);
  // Nothing left behind: the view LUN the walk used is gone.
  expect(await t.mgmt!.call<unknown[]>('snapshot_list')).toEqual([]);
}, 120_000);

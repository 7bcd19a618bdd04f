/**
 * npm run bench:toc — the table of contents (docs/toc.md) of an ext4 file system with
 * BENCH_FILES (default 100 000) files, read through iSCSI from the project's target, against
 * e2fsprogs' own full metadata walk of the same image file, `e2fsck -fn` (issue 15: goal <= 1.0x).
 *
 * The tree is generated from a logged seed (BENCH_SEED replays it): a random directory tree with
 * a chain 40 levels deep and one directory of BENCH_FILES/20 entries (an htree), small files
 * mostly, some up to 64 KiB, sparse files, four large ones; `mkfs.ext4 -b 4096 -d` makes the
 * image without mounting, and `debugfs -w` then writes two files into freed single blocks
 * (thousands of extents each: extent trees with index blocks). The image is served as a file
 * LUN by `bin/xcopy-agent target` in its own process (bench/run-target.ts); nothing writes it.
 *
 * A round times, in alternating order, `readToc({url})` — the whole thing: the partition table
 * read, the walk by libext2fs on the thread pool over its own iSCSI session, the TOC built in
 * JS — and `e2fsck -fn IMAGE` (its process, start to exit), both from the page cache (one
 * round of each first, not counted). Printed: the medians, the ratio, every round's times, and
 * where readToc's time went, and both sides' CPU time. BENCH_ROUNDS (default 5) rounds.
 * BENCH_DIR keeps the image there (built once per seed and size) instead of a temporary
 * directory.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { readToc, type TocResult } from '../src/toc/read';
import { startTargetProcess, type TargetProcess } from './run-target';

const IQN = 'iqn.2026-12.io.xcopy-agent.bench:toc';
const FILES = Number(process.env.BENCH_FILES ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SEED = Number(process.env.BENCH_SEED ?? Date.now() % 2 ** 31);
const GOAL = 1.0;
const KiB = 1024;
const MiB = 1024 * KiB;

const run = promisify(execFile);
const nowMs = () => Number(process.hrtime.bigint() / 1000n) / 1000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** xorshift32 (the tests' generator, test/helpers/rng.ts): replayable from the logged seed. */
function rng(seed: number): { int(n: number): number } {
  let x = seed >>> 0 || 1;
  return {
    int(n: number) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      return x % n;
    },
  };
}

interface Tree {
  files: number;
  dirs: number;
  dataBytes: number;
}

/** The generated tree under `root`: what the seed decides is the layout; the bytes come from a seeded pool. */
function makeTree(root: string, seed: number, files: number): Tree {
  const r = rng(seed);
  const pool = Buffer.alloc(4 * MiB);
  for (let i = 0; i < pool.length; i += 4) pool.writeUInt32LE(r.int(2 ** 32 - 1), i);
  const piece = (n: number) => {
    const at = r.int(pool.length - n);
    return pool.subarray(at, at + n);
  };
  // The directories: a chain 40 deep, one large directory, then a random tree.
  const dirs: string[] = [''];
  for (let i = 0; i < 40; i++) dirs.push(`${dirs[dirs.length - 1]}/level-${i}`);
  dirs.push('/big-dir');
  for (let i = 0, n = Math.max(1, Math.floor(files / 100)); i < n; i++) dirs.push(`${dirs[r.int(dirs.length)]}/d${i}`);
  for (const d of dirs) fs.mkdirSync(path.join(root, d), { recursive: true });
  let dataBytes = 0;
  const bigDir = Math.floor(files / 20);
  for (let i = 0; i < files; i++) {
    const rel = i < bigDir ? `/big-dir/entry-${i}-${'x'.repeat(r.int(40))}` : `${dirs[r.int(dirs.length)]}/f${i}`;
    const full = path.join(root, rel);
    const k = r.int(100);
    if (k < 2) {
      // Sparse: a few pieces of data in a hole of up to 8 MiB.
      const size = 64 * KiB + r.int(8 * MiB);
      const fd = fs.openSync(full, 'w');
      fs.ftruncateSync(fd, size);
      for (let p = 0; p < 3; p++) {
        const n = 4 * KiB * (1 + r.int(8));
        fs.writeSync(fd, piece(n), 0, n, r.int(size - n));
        dataBytes += n;
      }
      fs.closeSync(fd);
      continue;
    }
    const n = k < 40 ? r.int(KiB) : k < 90 ? KiB + r.int(8 * KiB) : 8 * KiB + r.int(56 * KiB);
    fs.writeFileSync(full, piece(n));
    dataBytes += n;
  }
  for (let i = 0; i < 4; i++) {
    const n = 16 * MiB + r.int(16 * MiB);
    const fd = fs.openSync(path.join(root, `${dirs[r.int(dirs.length)]}/large-${i}`), 'w');
    for (let done = 0; done < n; done += MiB) fs.writeSync(fd, piece(Math.min(MiB, n - done)));
    fs.closeSync(fd);
    dataBytes += n;
  }
  return { files: files + 4, dirs: dirs.length, dataBytes };
}

/** The image: mkfs.ext4 -d, then two files of thousands of extents written by debugfs -w into freed blocks. */
async function makeImage(dir: string, seed: number, files: number): Promise<{ image: string; tree: Tree }> {
  const image = path.join(dir, `toc-${seed}-${files}.img`);
  const facts = `${image}.json`;
  if (fs.existsSync(facts)) return { image, tree: JSON.parse(fs.readFileSync(facts, 'utf8')) as Tree };
  const root = path.join(dir, `tree-${seed}-${files}`);
  fs.rmSync(root, { recursive: true, force: true });
  const tree = makeTree(root, seed, files);
  // Room for the data in 4 KiB blocks (most files round up a block), the inode tables, the fragmenting.
  const mib = Math.ceil((tree.dataBytes * 1.3 + files * 8 * KiB) / MiB) + 512;
  const inodes = Math.ceil((files * 1.25) / 8192) * 8192;
  await run('mkfs.ext4', ['-q', '-F', '-b', '4096', '-N', String(inodes), '-d', root, image, `${mib}M`], {
    env: { ...process.env, E2FSPROGS_FAKE_TIME: '' },
    maxBuffer: 1 << 24,
  });
  const filler = path.join(dir, 'filler');
  fs.writeFileSync(filler, Buffer.alloc(4 * KiB, 0x5a));
  const frag = path.join(dir, 'frag');
  fs.writeFileSync(frag, Buffer.alloc(8 * MiB, 0xa5));
  const lines: string[] = [];
  for (let f = 0; f < 2; f++) {
    for (let i = 0; i < 4096; i++) lines.push(`write ${filler} /filler-${f}-${i}`);
    for (let i = 0; i < 4096; i += 2) lines.push(`rm /filler-${f}-${i}`);
    lines.push(`write ${frag} /fragmented-${f}`);
  }
  const cmds = path.join(dir, 'frag.cmds');
  fs.writeFileSync(cmds, `${lines.join('\n')}\n`);
  await run('debugfs', ['-w', '-f', cmds, image], { maxBuffer: 1 << 26 });
  tree.files += 2 + 4096;
  fs.rmSync(root, { recursive: true, force: true });
  fs.writeFileSync(facts, JSON.stringify(tree));
  return { image, tree };
}

async function e2fsck(image: string): Promise<number> {
  const t0 = nowMs();
  await run('e2fsck', ['-fn', image], { maxBuffer: 1 << 24 }); // exit status 0: clean (anything else rejects)
  return nowMs() - t0;
}

/** e2fsck's CPU time (user + system, ms), from the shell's `times` after it ran. */
async function e2fsckCpu(image: string): Promise<number> {
  const { stdout } = await run('sh', ['-c', 'e2fsck -fn "$0" > /dev/null 2>&1; times', image]);
  const [user, sys] = [...stdout.trim().split('\n')[1].matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60_000 + Number(m[2]) * 1000);
  return user + sys;
}

/** A process's CPU time (user + system, ms), from /proc (clock ticks of 10 ms). */
function procCpu(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const [utime, stime] = f.slice(f.lastIndexOf(')') + 2).split(' ').slice(11, 13).map(Number);
  return (utime + stime) * 10;
}

interface TocRound {
  ms: number;
  /** CPU (ms) of this process and of the target's during it. */
  cpu: number;
  targetCpu: number;
  r: TocResult;
}

async function toc(url: string, targetPid: number): Promise<TocRound> {
  const c0 = process.cpuUsage();
  const tc0 = procCpu(targetPid);
  const t0 = nowMs();
  const r = await readToc({ url });
  const ms = nowMs() - t0;
  const c = process.cpuUsage(c0);
  return { ms, cpu: (c.user + c.system) / 1000, targetCpu: procCpu(targetPid) - tc0, r };
}

async function main(): Promise<void> {
  const started = Date.now();
  process.stderr.write(`bench:toc: BENCH_SEED=${SEED} BENCH_FILES=${FILES}\n`);
  const keep = process.env.BENCH_DIR;
  const dir = keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'xcopy-bench-toc-'));
  fs.mkdirSync(dir, { recursive: true });
  let target: TargetProcess | undefined;
  try {
    const t0 = Date.now();
    const { image, tree } = await makeImage(dir, SEED, FILES);
    const buildSecs = (Date.now() - t0) / 1000;
    target = await startTargetProcess(IQN, [`file:${image}`]);
    const url = target.url(0);
    const pid = target.proc.pid!;
    // Warm-up, not counted: the page cache, the target's first reads, JS compiled.
    const first = await toc(url, pid);
    await e2fsck(image);
    const ours: TocRound[] = [];
    const theirs: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const order = i % 2 === 0 ? ['toc', 'e2fsck'] : ['e2fsck', 'toc'];
      for (const what of order) {
        if (what === 'toc') ours.push(await toc(url, pid));
        else theirs.push(await e2fsck(image));
      }
    }
    const theirCpu: number[] = [];
    for (let i = 0; i < 3; i++) theirCpu.push(await e2fsckCpu(image));
    const r = first.r;
    const extents = r.entries.reduce((a, e) => a + e.extents.length, 0);
    const oursMs = ours.map((x) => x.ms);
    const ratio = median(oursMs) / median(theirs);
    const list = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ');
    const med = (f: (x: TocRound) => number) => median(ours.map(f)).toFixed(0);
    const part = (k: keyof NonNullable<TocResult['timing']>) => med((x) => x.r.timing![k]);
    const imageMiB = fs.statSync(image).size / MiB;
    const lines = [
      `bench:toc — ext4 (4 KiB blocks) of ${tree.files} files in ${tree.dirs} directories (${(tree.dataBytes / MiB).toFixed(0)} MiB of data, a ${imageMiB.toFixed(0)} MiB image), seed ${SEED}; served as a file LUN by the project's target (its own process, loopback); ${ROUNDS} alternating rounds, page cache warm`,
      '',
      '| test | ours | peer (e2fsck -fn, same image file) | ratio | goal |',
      '|---|---|---|---|---|',
      `| readToc through iSCSI (detect + walk + TOC), median | ${median(oursMs).toFixed(0)} ms | ${median(theirs).toFixed(0)} ms | ${ratio.toFixed(2)} | <= ${GOAL.toFixed(1)} — ${ratio <= GOAL ? 'met' : '**NOT MET**'} |`,
      `| CPU time: this process + the target's / e2fsck's (user + system), medians | ${med((x) => x.cpu)} + ${med((x) => x.targetCpu)} ms | ${median(theirCpu).toFixed(0)} ms | ${((median(ours.map((x) => x.cpu)) + median(ours.map((x) => x.targetCpu))) / median(theirCpu)).toFixed(2)} | |`,
      '',
      `where readToc's time went (medians, ms): detect ${part('detect')}; walk ${part('walk')} (open ${part('open')}, inode tables ${part('inodeTables')}, directories ${part('directories')}, later maps ${part('laterMaps')}, tree ${part('tree')}; CPU: walk thread ${part('walkCpu')}, I/O thread ${part('ioCpu')}); TOC: entries made while the walk ran ${part('batches')}, the rest after it ${part('build')}`,
      `TOC: ${r.entries.length} inodes, ${extents} extents; the walk read ${(r.bytesRead / MiB).toFixed(1)} MiB in ${r.reads} READs, ${r.timing!.misses} of them unplanned`,
      `times (ms) — readToc: ${list(oursMs)}; e2fsck -fn: ${list(theirs)}`,
      `image built in ${buildSecs.toFixed(0)} s${keep ? ` (kept in ${keep})` : ''}; total ${((Date.now() - started) / 1000).toFixed(0)} s`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await target?.stop();
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench:toc failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

/**
 * npm run bench:target — the gateway against tgt (issue 17): the same LUN files, filled with the
 * same data, exported by tgt and by the project's target (each in its own process, as tgtd runs,
 * never both at once), driven by the same clients in one run:
 *   - iscsi-perf (libiscsi): 1 MiB sequential reads, 4 KiB random reads from 1 initiator, and from
 *     4 initiators at once, each on a LUN of its own;
 *   - qemu-img bench: 1 MiB and 4 KiB sequential writes;
 *   - iscsi-load (bench/iscsi-load.c, libiscsi): 4 KiB random and sequential writes;
 * all at queue depth 32 per initiator. Prints each figure, the ratio ours/tgt and the goal.
 *
 *   BENCH_SECONDS (default 5) per measurement, BENCH_ROUNDS (default 2) rounds, tgt and ours
 *   alternating, the best of each kept. The machine's load average is printed before and after:
 *   on 2 shared cores the absolute figures move with it; the ratios are the result.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { iscsiLoad, iscsiPerf, qemuImgBenchWrite, type Rate } from '../src/peers/load';
import { Tgt } from '../src/peers/tgt';
import { startTargetProcess } from './run-target';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const LUN_BYTES = 1024 * MiB;
/** LUNs: the first for the one-initiator rows, all for the 4-initiator row. */
const LUNS = 4;
const QD = 32;
const BLOCK = 512;

interface Row {
  name: string;
  /** Figures in MiB/s (1 MiB rows) or IOPS. */
  mib: boolean;
  goal: string;
  measure: (url: (lun: number) => string) => Promise<Rate>;
}

/** 4 iscsi-perf at once, each an initiator of its own on a LUN of its own; the sum of their rates. */
async function fourInitiators(url: (lun: number) => string): Promise<Rate> {
  const rates = await Promise.all(
    Array.from({ length: LUNS }, (_, i) =>
      iscsiPerf(url(i), { blocks: 4096 / BLOCK, random: true, seconds: SECONDS, depth: QD, initiator: `iqn.2026-11.io.xcopy-agent.bench:host${i}` }),
    ),
  );
  return { iops: rates.reduce((a, r) => a + r.iops, 0), mibps: rates.reduce((a, r) => a + r.mibps, 0) };
}

const ROWS: Row[] = [
  { name: 'read 1 MiB seq (iscsi-perf)', mib: true, goal: '>= 1.0', measure: (u) => iscsiPerf(u(0), { blocks: MiB / BLOCK, random: false, seconds: SECONDS, depth: QD }) },
  { name: 'read 4 KiB rand, 1 initiator (iscsi-perf)', mib: false, goal: '>= 1.0', measure: (u) => iscsiPerf(u(0), { blocks: 4096 / BLOCK, random: true, seconds: SECONDS, depth: QD }) },
  { name: 'read 4 KiB rand, 4 initiators on 4 LUNs (iscsi-perf)', mib: false, goal: '>= 1.0', measure: fourInitiators },
  { name: 'write 1 MiB seq (qemu-img bench)', mib: true, goal: '>= 1.0', measure: (u) => qemuImgBenchWrite(u(0), { size: '1M', count: 2048, depth: QD }) },
  { name: 'write 4 KiB seq (qemu-img bench)', mib: false, goal: '>= 1.0', measure: (u) => qemuImgBenchWrite(u(0), { size: '4K', count: 100_000, depth: QD }) },
  { name: 'write 4 KiB seq (iscsi-load)', mib: false, goal: '>= 1.0', measure: (u) => iscsiLoad(u(0), { write: true, random: false, blocks: 4096 / BLOCK, depth: QD, seconds: SECONDS }) },
  { name: 'write 4 KiB rand (iscsi-load)', mib: false, goal: '>= 1.0', measure: (u) => iscsiLoad(u(0), { write: true, random: true, blocks: 4096 / BLOCK, depth: QD, seconds: SECONDS }) },
];

async function measureAll(url: (lun: number) => string, best: Map<string, Rate>): Promise<void> {
  for (const row of ROWS) {
    const r = await row.measure(url);
    const b = best.get(row.name);
    if (!b || r.iops > b.iops) best.set(row.name, r);
  }
}

function loadAverage(): string {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xcopy-bench-target-'));
  const files = Array.from({ length: LUNS }, (_, i) => path.join(dir, `lun${i}.img`));
  const tgtBest = new Map<string, Rate>();
  const oursBest = new Map<string, Rate>();
  const loadBefore = loadAverage();
  const t0 = Date.now();
  try {
    // The same data for both: random bytes, one file written and copied (blocks allocated, so
    // neither target reads unwritten extents), then synced.
    await run('dd', ['if=/dev/urandom', `of=${files[0]}`, 'bs=1M', `count=${LUN_BYTES / MiB}`, 'status=none']);
    for (const f of files.slice(1)) await run('cp', [files[0], f]);
    await run('sync');
    for (let r = 0; r < ROUNDS; r++) {
      const tgt = await Tgt.start({ dir, luns: files.map((f) => ({ size: LUN_BYTES, path: f })) });
      try {
        await measureAll((lun) => tgt.url(lun + 1), tgtBest); // tgt's LUN 0 is its controller
      } finally {
        await tgt.stop();
      }
      const ours = await startTargetProcess('iqn.2026-11.io.xcopy-agent.bench:target', files.map((f) => `file:${f}`));
      try {
        await measureAll((lun) => ours.url(lun), oursBest);
      } finally {
        await ours.stop();
      }
    }
    const fmt = (row: Row, x: Rate) => (row.mib ? `${x.mibps.toFixed(0)} MiB/s` : `${(x.iops / 1000).toFixed(1)}k IOPS`);
    const lines = [
      `bench:target — ${LUNS} LUN files of ${LUN_BYTES / MiB} MiB (random data) exported by tgt and by xcopy-agent target, loopback, QD ${QD} per initiator, ${SECONDS} s, best of ${ROUNDS}`,
      '',
      '| test | tgt | ours | ratio | goal | met |',
      '|---|---|---|---|---|---|',
    ];
    for (const row of ROWS) {
      const t = tgtBest.get(row.name)!;
      const o = oursBest.get(row.name)!;
      const ratio = o.iops / t.iops;
      lines.push(`| ${row.name} | ${fmt(row, t)} | ${fmt(row, o)} | ${ratio.toFixed(2)} | ${row.goal} | ${ratio >= Number(row.goal.slice(3)) ? 'yes' : 'no'} |`);
    }
    lines.push('', `load average (1/5/15 min): ${loadBefore} before, ${loadAverage()} after; ${os.cpus().length} cores; total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench:target failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

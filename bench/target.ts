/**
 * npm run bench:target — the same LUN file exported by tgt and by the project's target, driven
 * by the same clients in one run: iscsi-perf (1 MiB sequential reads, 4 KiB random reads, QD32),
 * qemu-img bench (1 MiB and 4 KiB writes, QD32) and the project's initiator (4 KiB random
 * writes, QD32). Prints each figure and the ratio ours/tgt. Goals: >= 1.0x on 1 MiB, >= 0.7x on
 * 4 KiB. The target runs in its own process (bin/xcopy-agent target), as tgtd does.
 *
 *   BENCH_SECONDS (default 5) per measurement, BENCH_ROUNDS (default 2), best round kept.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { IscsiSession } from '../src/initiator/session';
import { iscsiPerf, qemuImgBenchWrite, type Rate } from '../src/peers/load';
import { Tgt } from '../src/peers/tgt';
import { startTargetProcess } from './run-target';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const LUN_BYTES = 1024 * MiB;
const QD = 32;

async function oursRandomWrite(url: string): Promise<Rate> {
  const s = await IscsiSession.connect(url);
  try {
    const bs = await s.blockSize();
    const per = 4096 / bs;
    const slots = LUN_BYTES / 4096;
    const payload = Buffer.alloc(4096, 0x3c);
    let done = 0;
    const end = Date.now() + SECONDS * 1000;
    const t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: QD }, async () => {
        while (Date.now() < end) {
          await s.write16(BigInt(Math.floor(Math.random() * slots) * per), payload);
          done++;
        }
      }),
    );
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    return { iops: done / secs, mibps: (done * 4096) / MiB / secs };
  } finally {
    await s.close();
  }
}

async function measure(url: string): Promise<Record<string, Rate>> {
  return {
    'read 1 MiB seq (iscsi-perf)': await iscsiPerf(url, { blocks: 2048, random: false, seconds: SECONDS, depth: QD }),
    'read 4 KiB rand (iscsi-perf)': await iscsiPerf(url, { blocks: 8, random: true, seconds: SECONDS, depth: QD }),
    'write 1 MiB seq (qemu-img)': await qemuImgBenchWrite(url, { size: '1M', count: 2048, depth: QD }),
    'write 4 KiB seq (qemu-img)': await qemuImgBenchWrite(url, { size: '4K', count: 100_000, depth: QD }),
    'write 4 KiB rand (initiator)': await oursRandomWrite(url),
  };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xcopy-bench-target-'));
  const file = path.join(dir, 'lun.img');
  await run('fallocate', ['-l', String(LUN_BYTES), file]);
  const best = (a: Rate | undefined, b: Rate) => (!a || b.iops > a.iops ? b : a);
  const tgtBest: Record<string, Rate> = {};
  const oursBest: Record<string, Rate> = {};
  try {
    for (let r = 0; r < ROUNDS; r++) {
      // tgt and ours never run at the same time: each has the 2 cores while measured.
      const tgt = await Tgt.start({ dir, luns: [{ size: LUN_BYTES, path: file }] });
      try {
        for (const [k, v] of Object.entries(await measure(tgt.url(1)))) tgtBest[k] = best(tgtBest[k], v);
      } finally {
        await tgt.stop();
      }
      const ours = await startTargetProcess('iqn.2026-11.io.xcopy-agent.bench:target', [`file:${file}`]);
      try {
        for (const [k, v] of Object.entries(await measure(ours.url(0)))) oursBest[k] = best(oursBest[k], v);
      } finally {
        await ours.stop();
      }
    }
    const lines = [
      `bench:target — one 1 GiB file LUN exported by tgt and by xcopy-agent target, loopback, QD ${QD}, ${SECONDS} s, best of ${ROUNDS}`,
      '| test                          |        tgt |       ours | ratio | goal  |',
      '|-------------------------------|------------|------------|-------|-------|',
    ];
    for (const k of Object.keys(oursBest)) {
      const t = tgtBest[k];
      const o = oursBest[k];
      const oneMiB = k.includes('1 MiB');
      const fmt = (x: Rate) => (oneMiB ? `${x.mibps.toFixed(0)} MiB/s` : `${(x.iops / 1000).toFixed(1)}k IOPS`);
      lines.push(`| ${k.padEnd(29)} | ${fmt(t).padStart(10)} | ${fmt(o).padStart(10)} | ${(o.iops / t.iops).toFixed(2).padStart(5)} | ${oneMiB ? '>=1.0' : '>=0.7'} |`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench:target failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

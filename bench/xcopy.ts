/**
 * npm run bench:xcopy — the copy manager against peers measured in the same run:
 *  (a) a 1 GiB file-backed LUN copied by the project's copy manager (EXTENDED COPY through
 *      `xcopy-agent copy`, then SYNCHRONIZE CACHE) vs `cp` of the backing file + sync;
 *      goal >= 0.8x;
 *  (b) two 1 GiB LUNs on tgt, copied by EXTENDED COPY through the project's target acting as
 *      the bridge (both LUNs opened there as `remote` stores) vs `qemu-img convert` between the
 *      same two tgt LUNs; goal >= 1.5x.
 * Prints the ratios and the bridge's peak resident memory (VmHWM). BENCH_SIZE_MIB (default 1024).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { xcopyCopy } from '../src/agent/xcopy-copy';
import { Tgt } from '../src/peers/tgt';
import { startTargetProcess } from './run-target';

const IQN = 'iqn.2026-11.io.xcopy-agent.bench:xcopy';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_SIZE_MIB ?? 1024) * MiB;

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function peakRssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xcopy-bench-xcopy-'));
  try {
    const src = path.join(dir, 'src.img');
    await run('sh', ['-c', `head -c ${SIZE} /dev/urandom > ${src} && sync`]); // nothing dirty before timing
    // (a) file LUN -> file LUN inside our target, vs cp.
    const cpDst = path.join(dir, 'cp.img');
    // cp's first run on a fresh file system area is slow (block allocation, discard of earlier
    // deletes): best of three.
    const cpRuns: number[] = [];
    for (let i = 0; i < 3; i++) {
      cpRuns.push(await timed(() => run('sh', ['-c', `cp ${src} ${cpDst} && sync`])));
      fs.rmSync(cpDst);
      await run('sync');
    }
    const cpSecs = Math.min(...cpRuns);
    const dst = path.join(dir, 'dst.img');
    const ours = await startTargetProcess(IQN, [`file:${src}`, `file:${dst}:${SIZE / MiB}M`]);
    let aSecs = 0;
    const aRuns: number[] = [];
    let aPeak = 0;
    try {
      const url = ours.url;
      // Timed like cp: the copy, then sync (the copy already ends with SYNCHRONIZE CACHE).
      // Best of three; the first run also allocates the destination's blocks, later runs
      // overwrite them (cp writes a new file each time): both first and best are printed.
      for (let i = 0; i < 3; i++) {
        aRuns.push(
          await timed(async () => {
            const r = await xcopyCopy({ from: url(0), to: url(1), fallback: false });
            if (r.path !== 'xcopy') throw new Error(`expected EXTENDED COPY, got ${r.path}`);
            await run('sync');
          }),
        );
      }
      aSecs = Math.min(...aRuns);
      aPeak = peakRssMiB(ours.proc.pid!);
    } finally {
      await ours.stop();
    }
    // (b) two tgt LUNs: qemu-img convert vs EXTENDED COPY through our target as the bridge.
    const tgt = await Tgt.start({ dir, luns: [{ size: SIZE, path: src }, { size: SIZE }] });
    let qSecs = 0;
    let bSecs = 0;
    let bPeak = 0;
    try {
      qSecs = await timed(() => run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', '-n', tgt.url(1), tgt.url(2)], { timeout: 600_000 }));
      const bridge = await startTargetProcess(IQN, [tgt.url(1), tgt.url(2)]);
      try {
        const url = bridge.url;
        bSecs = await timed(async () => {
          const r = await xcopyCopy({ from: url(0), to: url(1), fallback: false });
          if (r.path !== 'xcopy') throw new Error(`expected EXTENDED COPY, got ${r.path}`);
        });
        bPeak = peakRssMiB(bridge.proc.pid!);
      } finally {
        await bridge.stop();
      }
    } finally {
      await tgt.stop();
    }
    const mibps = (s: number) => SIZE / MiB / s;
    const lines = [
      `bench:xcopy — ${SIZE / MiB} MiB of random data, loopback, one run`,
      '| copy | peer | peer MiB/s | ours MiB/s | ratio | goal | bridge peak RSS |',
      '|---|---|---|---|---|---|---|',
      `| (a) file LUN -> file LUN in our target, best of 3 | cp + sync | ${mibps(cpSecs).toFixed(0)} | ${mibps(aSecs).toFixed(0)} | ${(cpSecs / aSecs).toFixed(2)} | >= 0.8 | ${aPeak.toFixed(0)} MiB |`,
      `| (a) the same, first runs only | cp + sync | ${mibps(cpRuns[0]).toFixed(0)} | ${mibps(aRuns[0]).toFixed(0)} | ${(cpRuns[0] / aRuns[0]).toFixed(2)} | | |`,
      `| (b) tgt LUN -> tgt LUN via our bridge | qemu-img convert | ${mibps(qSecs).toFixed(0)} | ${mibps(bSecs).toFixed(0)} | ${(qSecs / bSecs).toFixed(2)} | >= 1.5 | ${bPeak.toFixed(0)} MiB |`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench:xcopy failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

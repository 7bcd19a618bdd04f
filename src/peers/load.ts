/**
 * Load generators run as peers in benchmarks: libiscsi's iscsi-perf (reads) and qemu-img bench
 * (writes), both talking iscsi:// directly. Each returns a rate measured in the same run as ours.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const MiB = 1024 * 1024;

export interface Rate {
  iops: number;
  /** MiB/s (iscsi-perf's "MB/s" is iops x request size in MiB). */
  mibps: number;
}

/** `iscsi-perf -m QD -b BLOCKS -t SECONDS [-r] URL` (512-byte blocks); its final average. */
export async function iscsiPerf(url: string, opts: { blocks: number; random: boolean; seconds: number; depth: number }): Promise<Rate> {
  const args = ['-m', String(opts.depth), '-b', String(opts.blocks), '-t', String(opts.seconds), ...(opts.random ? ['-r'] : []), url];
  const { stdout } = await run('iscsi-perf', args, { timeout: (opts.seconds + 30) * 1000, maxBuffer: 16 * MiB });
  const all = [...stdout.matchAll(/iops average (\d+) \((\d+) MB\/s\)/g)];
  if (all.length === 0) throw new Error(`iscsi-perf printed no result: ${stdout.slice(-300)}`);
  const iops = Number(all[all.length - 1][1]);
  return { iops, mibps: (iops * opts.blocks * 512) / MiB };
}

/** `qemu-img bench -w` of COUNT requests of SIZE at queue depth QD, timed from outside. */
export async function qemuImgBenchWrite(url: string, opts: { size: '1M' | '4K'; count: number; depth: number }): Promise<Rate> {
  const t0 = process.hrtime.bigint();
  await run('qemu-img', ['bench', '-f', 'raw', '-t', 'none', '-w', '-d', String(opts.depth), '-s', opts.size, '-c', String(opts.count), url], {
    timeout: 300_000,
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const bytes = opts.size === '1M' ? MiB : 4096;
  return { iops: opts.count / secs, mibps: (opts.count * bytes) / MiB / secs };
}

/**
 * Load generators run as peers in benchmarks: libiscsi's iscsi-perf (reads), qemu-img bench
 * (writes) and the project's bench/iscsi-load (reads or writes at a queue depth, random or
 * sequential with a step, over libiscsi), all talking iscsi:// directly. Each returns a rate
 * measured in the same run as ours.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const MiB = 1024 * 1024;

export interface Rate {
  iops: number;
  /** MiB/s (iscsi-perf's "MB/s" is iops x request size in MiB). */
  mibps: number;
}

/**
 * `iscsi-perf [-i INITIATOR] -m QD -b BLOCKS -t SECONDS [-r] URL` (512-byte blocks); its final
 * average. `initiator`: an initiator name of its own (several iscsi-perf at once, as several hosts).
 */
export async function iscsiPerf(url: string, opts: { blocks: number; random: boolean; seconds: number; depth: number; initiator?: string }): Promise<Rate> {
  const args = [...(opts.initiator ? ['-i', opts.initiator] : []), '-m', String(opts.depth), '-b', String(opts.blocks), '-t', String(opts.seconds), ...(opts.random ? ['-r'] : []), url];
  const { stdout } = await run('iscsi-perf', args, { timeout: (opts.seconds + 30) * 1000, maxBuffer: 16 * MiB });
  const all = [...stdout.matchAll(/iops average (\d+) \((\d+) MB\/s\)/g)];
  if (all.length === 0) throw new Error(`iscsi-perf printed no result: ${stdout.slice(-300)}`);
  const iops = Number(all[all.length - 1][1]);
  return { iops, mibps: (iops * opts.blocks * 512) / MiB };
}

/**
 * `qemu-img bench -w` of COUNT requests of SIZE at queue depth QD (with `step`, `-S STEP`: each
 * request STEP bytes after the one before), timed from outside.
 */
export async function qemuImgBenchWrite(url: string, opts: { size: '1M' | '4K'; count: number; depth: number; step?: number }): Promise<Rate> {
  const t0 = process.hrtime.bigint();
  const step = opts.step === undefined ? [] : ['-S', String(opts.step)];
  await run('qemu-img', ['bench', '-f', 'raw', '-t', 'none', '-w', '-d', String(opts.depth), '-s', opts.size, ...step, '-c', String(opts.count), url], {
    timeout: 300_000,
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const bytes = opts.size === '1M' ? MiB : 4096;
  return { iops: opts.count / secs, mibps: (opts.count * bytes) / MiB / secs };
}

/** What iscsi-load measured: the rate, the requests made and their latencies (µs). */
export interface LoadResult extends Rate {
  ios: number;
  seconds: number;
  p50us: number;
  p99us: number;
  maxUs: number;
}

/** bench/iscsi-load, built by `make setup` into native/build/bench/. */
function iscsiLoadPath(): string {
  for (let dir = __dirname, i = 0; i < 5; i++, dir = path.dirname(dir)) {
    const p = path.join(dir, 'native', 'build', 'bench', 'iscsi-load');
    if (fs.existsSync(p)) return p;
  }
  throw new Error('native/build/bench/iscsi-load is missing: run `make setup`');
}

/**
 * bench/iscsi-load: `blocks` per request at queue depth `depth`, WRITE(16) with `write` else
 * READ(16); random (within [offset, offset + limit) when given), or sequential from `offset` with
 * `step` blocks between requests (default `blocks`); for `seconds` (default 5), or at most
 * `count` requests (a sequential walk then stops at the end of the LUN). `initiator`: a name of
 * its own, for several at once.
 */
export async function iscsiLoad(
  url: string,
  opts: { write: boolean; random: boolean; blocks: number; depth: number; seconds?: number; count?: number; step?: number; offset?: number; limit?: number; initiator?: string },
): Promise<LoadResult> {
  const args = ['-m', String(opts.depth), '-b', String(opts.blocks), '-t', String(opts.seconds ?? 5)];
  if (opts.limit !== undefined) args.push('-l', String(opts.limit));
  if (opts.initiator !== undefined) args.push('-i', opts.initiator);
  if (opts.write) args.push('-w');
  if (opts.random) args.push('-r');
  if (opts.count !== undefined) args.push('-c', String(opts.count));
  if (opts.step !== undefined) args.push('-S', String(opts.step));
  if (opts.offset !== undefined) args.push('-o', String(opts.offset));
  const { stdout } = await run(iscsiLoadPath(), [...args, url], { timeout: ((opts.seconds ?? 5) + 60) * 1000 });
  const m = /ios (\d+) seconds ([\d.]+) iops (\d+) mibps ([\d.]+) lat_p50_us (\d+) lat_p99_us (\d+) lat_max_us (\d+)/.exec(stdout);
  if (!m) throw new Error(`iscsi-load printed no result: ${stdout.slice(-300)}`);
  const [ios, seconds, iops, mibps, p50us, p99us, maxUs] = m.slice(1).map(Number);
  return { ios, seconds, iops, mibps, p50us, p99us, maxUs };
}

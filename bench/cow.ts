/**
 * npm run bench:cow — what a copy-on-write snapshot costs the hosts (issue 17), against the same
 * target with no snapshot measured in the same run. One target process (bin/xcopy-agent target
 * with the management API) exports a 1 GiB file LUN filled with random data (LUN 0, the source:
 * every chunk mapped, so no capture takes the thin shortcut) and a 1.2 GiB file LUN written through
 * once before the target starts (LUN 1, the OBF: provisioned, as an OBF LUN on a SAN is). The load
 * is 4 KiB writes at QD 32 from bench/iscsi-load (libiscsi) unless said otherwise:
 *  0. warm-up (not counted): random writes, then first writes over the whole source in a
 *     snapshot — the first pass in a fresh target process, printed as a row of its own;
 *  1. BENCH_ROUNDS (default 2) rounds, the best of each figure kept:
 *     (a) first writes: 4 KiB at the start of each chunk in turn (-S chunk), so every write
 *         captures a chunk; peer: the same writes with no snapshot; goal >= 0.8;
 *     (b) rewrites: random 4 KiB writes inside the chunks (a) captured; peer: the same with no
 *         snapshot; goal >= 0.95;
 *     (c) first writes again with qemu-img bench (`-w -s 4096 -S CHUNK -d 32`, a load generator
 *         not ours), peer the same command with no snapshot;
 *  2. BENCH_INSTITUTES (default 20) institute + terminate cycles under 32 random writes in flight
 *     (the project's initiator, which times each write): the pause in the target (hold →
 *     release; goal p99 <= 5 ms) and the host write latency overlapping an institute;
 *  3. chunk sizes 4 KiB .. 1 MiB: first writes as 1(a), each a fresh snapshot, with the OBF
 *     written and the records (one EXTENDED COPY segment each in overwrite mode, docs/obf-format.md);
 *  4. restart: a snapshot of the default chunk with every chunk captured, the target killed
 *     (SIGKILL) and started again: the time until the snapshot has resumed from its OBF (the
 *     source answers NOT READY meanwhile: docs/cow.md "Crash and restart");
 *  5. memory: 4 initiators (iscsi-load, each a name of its own) × QD 32 on the source, random
 *     writes, with no snapshot and then with an active snapshot: the target's peak RSS;
 *  6. the ceiling (the OBF file alone taking O_DSYNC writes of a commit's worth of records, 3 at
 *     once), first writes on a thin source (every chunk unmapped) and on a sparse OBF.
 * Every snapshot instituted is terminated (and must end SEALED), then forgotten, so the next one
 * may take its OBF; each snapshot's log starts at the OBF's start again, as a reused OBF LUN does.
 *
 *   BENCH_SECONDS (default 4) per throughput phase.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { IscsiSession } from '../src/initiator/session';
import { ManagementClient } from '../src/mgmt/client';
import { DEFAULT_CHUNK_BYTES } from '../src/obf/format';
import { iscsiLoad, qemuImgBenchWrite, type LoadResult, type Rate } from '../src/peers/load';
import { encodeSynchronizeCache16Cdb } from '../src/scsi/cdb';
import { encodeUnmapCdb, encodeUnmapParameterList } from '../src/scsi/provisioning';
import { freePort } from '../src/peers/tgt';
import { startTargetProcess, type TargetProcess } from './run-target';

const run = promisify(execFile);
const IQN = 'iqn.2026-11.io.xcopy-agent.bench:cow';
const KiB = 1024;
const MiB = 1024 * KiB;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const INSTITUTES = Number(process.env.BENCH_INSTITUTES ?? 20);
const SRC_BYTES = 1024 * MiB;
/** Room for the largest capture here: every 1 MiB chunk of the source, with its headers. */
const OBF_BYTES = 1229 * MiB;
const QD = 32;
const IO = 4 * KiB;
const BS = 512;
/** The chunk of the goal rows: the target's default (BENCH_CHUNK to measure another). */
const DEFAULT_CHUNK = Number(process.env.BENCH_CHUNK ?? DEFAULT_CHUNK_BYTES);
const SWEEP = [4 * KiB, 8 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB];
/** Quiet time before, between and after the institutes of phase 2 (ms). */
const GAP_MS = 150;

interface Status {
  id: string;
  state: string;
  reason?: string;
  reason_detail?: string;
  chunk_bytes: number;
  institute_pause_ms: number;
  records: number;
  bytes: number;
  commits: number;
  obf_used_blocks?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Nearest-rank percentile of sorted values. */
function pct(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

function summary(values: number[]): { n: number; p50: number; p99: number; max: number } {
  const v = Float64Array.from(values).sort();
  return { n: v.length, p50: pct(v, 0.5), p99: pct(v, 0.99), max: v.length ? v[v.length - 1] : NaN };
}

function best<T extends Rate>(xs: T[]): T {
  return xs.reduce((a, x) => (x.iops > a.iops ? x : a));
}

/** The resident set of a process now, and its peak so far (VmRSS, VmHWM), in MiB. */
function rssOf(pid: number): { rss: number; hwm: number } {
  const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(st)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/**
 * Records a second the OBF file takes durably on its own: `inFlight` writers, each an O_DSYNC
 * write of `records` records (a 512-byte header and a chunk each) after the other, for `seconds`,
 * through the log area (the superblock's block is left alone).
 */
async function durableCeiling(file: string, records: number, chunkBytes: number, inFlight: number, seconds: number): Promise<number> {
  const fh = await fs.promises.open(file, fs.constants.O_RDWR | fs.constants.O_DSYNC);
  try {
    const bytes = records * (512 + chunkBytes);
    const buf = crypto.randomBytes(bytes);
    let at = 512;
    let commits = 0;
    const until = Date.now() + seconds * 1000;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (Date.now() < until) {
          if (at + bytes > OBF_BYTES) at = 512;
          const pos = at;
          at += bytes;
          await fh.write(buf, 0, bytes, pos);
          commits++;
        }
      }),
    );
    return (commits * records) / ((performance.now() - t0) / 1000);
  } finally {
    await fh.close();
  }
}

class Bench {
  target: TargetProcess;
  mgmt: ManagementClient;
  s: IscsiSession;

  constructor(
    readonly dir: string,
    readonly stateDir: string,
    readonly mport: number,
    target: TargetProcess,
    mgmt: ManagementClient,
    s: IscsiSession,
  ) {
    this.target = target;
    this.mgmt = mgmt;
    this.s = s;
  }

  static async start(dir: string, stateDir: string, mport: number, ready?: (mgmt: ManagementClient) => Promise<void>): Promise<Bench> {
    const target = await startTargetProcess(IQN, [`file:${path.join(dir, 'src.img')}`, `file:${path.join(dir, 'obf.img')}`], ['--state-dir', stateDir, '--mgmt', `127.0.0.1:${mport}`]);
    // The management API listens before the portal does, so its token file exists by now.
    const mgmt = new ManagementClient({ url: `http://127.0.0.1:${mport}`, token: fs.readFileSync(path.join(stateDir, 'mgmt.token'), 'utf8').trim() });
    await ready?.(mgmt);
    const s = await IscsiSession.connect(target.url(0));
    return new Bench(dir, stateDir, mport, target, mgmt, s);
  }

  get url(): string {
    return this.target.url(0);
  }

  /** Both LUNs' files to disk, so no phase pays for the dirty pages of the one before. */
  async settle(): Promise<void> {
    for (const lun of [0, 1]) {
      this.s.check(await this.s.execute(encodeSynchronizeCache16Cdb({ lba: 0n, numberOfBlocks: 0 }), { lun, timeoutMs: 120_000 }), `SYNCHRONIZE CACHE(16) LUN ${lun}`);
    }
  }

  /** UNMAP a whole LUN (hole punching in its file). */
  async punch(lun: number, bytes: number): Promise<void> {
    const list = encodeUnmapParameterList([{ lba: 0n, blocks: bytes / BS }]);
    this.s.check(await this.s.execute(encodeUnmapCdb({ parameterListLength: list.length }), { dataOut: list, lun, timeoutMs: 120_000 }), `UNMAP of LUN ${lun}`);
  }

  institute(chunkBytes: number): Promise<Status> {
    return this.mgmt.call<Status>('snapshot_institute', { source: `${IQN}/0`, obf: `${IQN}/1`, chunk_bytes: chunkBytes });
  }

  status(id: string): Promise<Status> {
    return this.mgmt.call<Status>('snapshot_status', { id });
  }

  /** Terminates (it must end SEALED) and forgets the snapshot, so the next may take the OBF. */
  async end(id: string): Promise<Status> {
    const st = await this.mgmt.call<Status>('snapshot_terminate', { id });
    if (st.state !== 'SEALED') throw new Error(`snapshot ${id} ended ${st.state} (${st.reason ?? ''}: ${st.reason_detail ?? ''}), not SEALED`);
    await this.mgmt.call('snapshot_forget', { id });
    return st;
  }

  /** Institutes a snapshot, runs f, ends it (also when f fails). */
  async withSnapshot<T>(chunkBytes: number, f: (st: Status) => Promise<T>): Promise<{ result: T; sealed: Status }> {
    const st = await this.institute(chunkBytes);
    let result: T;
    try {
      result = await f(st);
    } catch (err) {
      await this.end(st.id).catch(() => undefined);
      throw err;
    }
    return { result, sealed: await this.end(st.id) };
  }

  /** 4 KiB at the start of each chunk in turn, from LBA 0: every write is the first of its chunk. */
  firstWrites(chunkBytes: number, seconds = SECONDS): Promise<LoadResult> {
    return iscsiLoad(this.url, { write: true, random: false, blocks: IO / BS, step: chunkBytes / BS, count: SRC_BYTES / chunkBytes, depth: QD, seconds });
  }

  /** Random 4 KiB writes in the first `chunks` chunks. */
  rewrites(chunkBytes: number, chunks: number): Promise<LoadResult> {
    return iscsiLoad(this.url, { write: true, random: true, blocks: IO / BS, limit: (chunks * chunkBytes) / BS, depth: QD, seconds: SECONDS });
  }

  /** The same first-write pattern from qemu-img bench, over the whole source. */
  qemuFirstWrites(chunkBytes: number): Promise<Rate> {
    return qemuImgBenchWrite(this.url, { size: '4K', count: SRC_BYTES / chunkBytes, depth: QD, step: chunkBytes });
  }

  /** Asserts a snapshot captured exactly `expected` chunks (one record each). */
  async expectRecords(id: string, expected: number, what: string): Promise<Status> {
    const st = await this.status(id);
    if (st.records !== expected) throw new Error(`${what}: ${expected} first writes made ${st.records} captures (expected one each)`);
    return st;
  }

  /**
   * QD writers of 4 KiB through the project's initiator, each write timed, until `stop()`: the
   * host-seen latency around institutes (phase 2).
   */
  async timedRandomWrites(stop: () => boolean): Promise<{ start: number[]; end: number[] }> {
    const payload = Buffer.alloc(IO, 0x5a);
    const start: number[] = [];
    const end: number[] = [];
    const slots = SRC_BYTES / IO;
    await Promise.all(
      Array.from({ length: QD }, async () => {
        while (!stop()) {
          const a = performance.now();
          await this.s.write16(BigInt(Math.floor(Math.random() * slots) * (IO / BS)), payload);
          start.push(a);
          end.push(performance.now());
        }
      }),
    );
    return { start, end };
  }

  /** Kills the target (SIGKILL) and starts it again on the same state; the ms until `id` has resumed. */
  async restart(id: string): Promise<number> {
    await this.s.close().catch(() => undefined);
    this.target.proc.kill('SIGKILL');
    await new Promise((r) => this.target.proc.once('exit', r));
    const t0 = performance.now();
    let resumed = 0;
    // The source answers NOT READY until the snapshot has resumed: log in after that.
    const next = await Bench.start(this.dir, this.stateDir, this.mport, async (mgmt) => {
      for (;;) {
        const list = await mgmt.call<Array<{ id: string; resuming?: boolean; unresumable?: string }>>('snapshot_list');
        const me = list.find((x) => x.id === id);
        if (me?.unresumable) throw new Error(`snapshot ${id} could not be resumed: ${me.unresumable}`);
        if (me && !me.resuming) break;
        await sleep(10);
      }
      resumed = performance.now() - t0;
    });
    this.target = next.target;
    this.mgmt = next.mgmt;
    this.s = next.s;
    return resumed;
  }
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const loadBefore = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xcopy-bench-cow-'));
  let b: Bench | undefined;
  try {
    const stateDir = path.join(dir, 'state');
    fs.mkdirSync(stateDir, { mode: 0o700 });
    // The source: random data throughout (every chunk mapped: no capture takes the thin
    // shortcut). The OBF: written through once (zeros), so OBF commits overwrite allocated blocks.
    await run('dd', ['if=/dev/urandom', `of=${path.join(dir, 'src.img')}`, 'bs=1M', `count=${SRC_BYTES / MiB}`, 'conv=fsync', 'status=none']);
    await run('dd', ['if=/dev/zero', `of=${path.join(dir, 'obf.img')}`, 'bs=1M', `count=${OBF_BYTES / MiB}`, 'conv=fsync', 'status=none']);
    b = await Bench.start(dir, stateDir, await freePort());
    const chunks = SRC_BYTES / DEFAULT_CHUNK;

    // 0. Warm-up, not counted: random writes, then first writes over the whole source in a
    //    snapshot. The first pass in a fresh target process runs slower (page cache filled,
    //    and guest memory touched for the first time, which is dear on this VM).
    await b.settle();
    await iscsiLoad(b.url, { write: true, random: true, blocks: IO / BS, depth: QD, seconds: 2 });
    await b.settle();
    const cold = (await b.withSnapshot(DEFAULT_CHUNK, () => b!.firstWrites(DEFAULT_CHUNK, 60))).result;

    // 1. Rounds: first writes, rewrites, qemu-img first writes; each with its peer.
    const rounds: Array<{ baseFirst: LoadResult; baseRe: LoadResult; baseQemu: Rate; first: LoadResult; re: LoadResult; qemu: Rate; commits: number }> = [];
    for (let r = 0; r < ROUNDS; r++) {
      await b.settle();
      const baseFirst = await b.firstWrites(DEFAULT_CHUNK);
      const baseRe = await b.rewrites(DEFAULT_CHUNK, baseFirst.ios);
      await b.settle();
      const snap = await b.withSnapshot(DEFAULT_CHUNK, async (st) => {
        const first = await b!.firstWrites(DEFAULT_CHUNK);
        const afterFirst = await b!.expectRecords(st.id, first.ios, 'first writes');
        const re = await b!.rewrites(DEFAULT_CHUNK, first.ios);
        await b!.expectRecords(st.id, first.ios, 'rewrites of captured chunks (none may capture)');
        return { first, re, commits: afterFirst.commits };
      });
      await b.settle();
      const baseQemu = await b.qemuFirstWrites(DEFAULT_CHUNK);
      await b.settle();
      const qemu = await b.withSnapshot(DEFAULT_CHUNK, async (st) => {
        const q = await b!.qemuFirstWrites(DEFAULT_CHUNK);
        await b!.expectRecords(st.id, chunks, 'qemu-img bench first writes');
        return q;
      });
      rounds.push({ baseFirst, baseRe, baseQemu, ...snap.result, qemu: qemu.result });
    }

    // 2. Institute + terminate, again and again, under random writes.
    await b.settle();
    let stop = false;
    const events: Array<{ call: number; back: number; ended: number; pause: number }> = [];
    const under = b.timedRandomWrites(() => stop);
    try {
      await sleep(GAP_MS * 2);
      for (let i = 0; i < INSTITUTES; i++) {
        const call = performance.now();
        const st = await b.institute(DEFAULT_CHUNK);
        const back = performance.now();
        await b.end(st.id);
        events.push({ call, back, ended: performance.now(), pause: st.institute_pause_ms });
        await sleep(GAP_MS);
      }
    } finally {
      stop = true;
    }
    const lat = await under;
    const quiet: number[] = [];
    const during: number[] = [];
    const from = events[0].call - GAP_MS;
    for (let k = 0; k < lat.start.length; k++) {
      const a = lat.start[k];
      const e = lat.end[k];
      if (a < from) continue; // warm-up
      if (events.some((x) => a < x.back && e > x.call)) during.push(e - a);
      else if (!events.some((x) => a < x.ended && e > x.back)) quiet.push(e - a);
    }

    // 3. Chunk sizes: first writes, records, OBF written.
    const sweep: Array<{ chunk: number; base: LoadResult; load: LoadResult; st: Status }> = [];
    for (const chunk of SWEEP) {
      await b.settle();
      const base = await b.firstWrites(chunk);
      await b.settle();
      const r = await b.withSnapshot(chunk, async (st) => {
        const load = await b!.firstWrites(chunk);
        return { load, st: await b!.expectRecords(st.id, load.ios, `chunk ${chunk}`) };
      });
      sweep.push({ chunk, base, ...r.result });
    }

    // 4. Restart: every chunk captured, then kill -9 and start again.
    await b.settle();
    const full = await b.institute(DEFAULT_CHUNK);
    await b.firstWrites(DEFAULT_CHUNK, 120);
    const fullSt = await b.expectRecords(full.id, chunks, 'first writes over the whole source');
    const resumeMs = await b.restart(full.id);
    await b.end(full.id);

    // 5. Memory: 4 initiators × QD 32, no snapshot, then with one.
    const four = async (): Promise<{ peak: number; iops: number }> => {
      let peak = 0;
      const timer = setInterval(() => (peak = Math.max(peak, rssOf(b!.target.proc.pid!).rss)), 50);
      try {
        const rs = await Promise.all(
          Array.from({ length: 4 }, (_, i) =>
            iscsiLoad(b!.url, { write: true, random: true, blocks: IO / BS, depth: QD, seconds: SECONDS, initiator: `iqn.2026-11.io.xcopy-agent.bench:host${i}` }),
          ),
        );
        return { peak: Math.max(peak, rssOf(b!.target.proc.pid!).rss), iops: rs.reduce((a, x) => a + x.iops, 0) };
      } finally {
        clearInterval(timer);
      }
    };
    await b.settle();
    const idleRss = rssOf(b.target.proc.pid!).rss;
    const memBase = await four();
    const memSnap = (await b.withSnapshot(DEFAULT_CHUNK, four)).result;
    const hwm = rssOf(b.target.proc.pid!).hwm;

    // 6. The ceiling, a thin source, a sparse OBF.
    const perCommit = Math.max(1, Math.round(rounds[0].first.ios / rounds[0].commits));
    const ceiling = await durableCeiling(path.join(dir, 'obf.img'), perCommit, DEFAULT_CHUNK, 3, SECONDS);
    await b.punch(0, SRC_BYTES);
    await b.settle();
    const thin = (await b.withSnapshot(DEFAULT_CHUNK, () => b!.firstWrites(DEFAULT_CHUNK))).result;
    await b.punch(1, OBF_BYTES);
    await b.settle();
    const sparseObf = (await b.withSnapshot(DEFAULT_CHUNK, () => b!.firstWrites(DEFAULT_CHUNK))).result;

    // The table.
    const k = (x: number) => `${(x / 1000).toFixed(1)}k IOPS`;
    const r2 = (x: number) => x.toFixed(2);
    const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
    const size = (x: number) => (x >= MiB ? `${x / MiB} MiB` : `${x / KiB} KiB`);
    const met = (ok: boolean) => (ok ? 'yes' : 'no');
    const baseFirst = best(rounds.map((x) => x.baseFirst));
    const baseRe = best(rounds.map((x) => x.baseRe));
    const baseQemu = best(rounds.map((x) => x.baseQemu));
    const first = best(rounds.map((x) => x.first));
    const re = best(rounds.map((x) => x.re));
    const qemu = best(rounds.map((x) => x.qemu));
    const commits = rounds.find((x) => x.first === first)!.commits;
    const qLat = summary(quiet);
    const dLat = summary(during);
    const pauses = summary(events.map((e) => e.pause));
    const baseRand = best(rounds.map((x) => x.baseRe));
    const lines = [
      `bench:cow — COW snapshot of a ${SRC_BYTES / MiB} MiB file LUN (random data) with a ${OBF_BYTES / MiB} MiB provisioned file LUN as OBF, one target process, loopback, ${IO / KiB} KiB writes, QD ${QD}, ${SECONDS} s per phase, best of ${ROUNDS}`,
      '',
      `| test (chunk ${size(DEFAULT_CHUNK)}) | no snapshot | with snapshot | ratio | goal | met |`,
      '|---|---|---|---|---|---|',
      `| first writes, each the first of its chunk (iscsi-load) | ${k(baseFirst.iops)} | ${k(first.iops)} | ${r2(first.iops / baseFirst.iops)} | >= 0.8 | ${met(first.iops / baseFirst.iops >= 0.8)} |`,
      `| first writes (qemu-img bench -w -s 4096 -S ${DEFAULT_CHUNK} -d ${QD}) | ${k(baseQemu.iops)} | ${k(qemu.iops)} | ${r2(qemu.iops / baseQemu.iops)} | >= 0.8 | ${met(qemu.iops / baseQemu.iops >= 0.8)} |`,
      `| rewrites of captured chunks (iscsi-load, random) | ${k(baseRe.iops)} | ${k(re.iops)} | ${r2(re.iops / baseRe.iops)} | >= 0.95 | ${met(re.iops / baseRe.iops >= 0.95)} |`,
      `| institute pause in the target (hold → release), ${QD} writes in flight, p99 of ${pauses.n} | | ${ms(pauses.p99)} ms (p50 ${ms(pauses.p50)}, max ${ms(pauses.max)}) | | <= 5 ms | ${met(pauses.p99 <= 5)} |`,
      `| host write latency p99 overlapping an institute call (${dLat.n} writes) | ${ms(qLat.p99)} ms | ${ms(dLat.p99)} ms | ${r2(dLat.p99 / qLat.p99)} | | |`,
      `| target memory, 4 initiators × QD ${QD} random writes (peak RSS; idle ${idleRss.toFixed(0)} MiB) | ${memBase.peak.toFixed(0)} MiB (${k(memBase.iops)}) | ${memSnap.peak.toFixed(0)} MiB (${k(memSnap.iops)}) | ${r2(memSnap.peak / memBase.peak)} | bounded | peak of the run ${hwm.toFixed(0)} MiB |`,
      `| first writes, first pass in a fresh target (warm-up, not counted) | ${k(baseFirst.iops)} | ${k(cold.iops)} | ${r2(cold.iops / baseFirst.iops)} | | |`,
      `| first writes, thin source (every chunk unmapped: captured as zeros) | ${k(baseFirst.iops)} | ${k(thin.iops)} | ${r2(thin.iops / baseFirst.iops)} | | |`,
      `| first writes, sparse OBF (its blocks punched: every commit allocates) | ${k(baseFirst.iops)} | ${k(sparseObf.iops)} | ${r2(sparseObf.iops / baseFirst.iops)} | | |`,
      `| ceiling: the OBF file alone, O_DSYNC writes of ${perCommit} records, 3 at once (records/s) | ${k(baseFirst.iops)} | ${k(ceiling)} | ${r2(ceiling / baseFirst.iops)} | | |`,
      '',
      `| restart with every chunk of the ${SRC_BYTES / MiB} MiB source captured (chunk ${size(DEFAULT_CHUNK)}) | records (= 608 segments) | OBF used | resume (scan) time |`,
      '|---|---|---|---|',
      `| kill -9, start, until the snapshot has resumed | ${fullSt.records} | ${((fullSt.obf_used_blocks ?? 0) * BS / MiB).toFixed(0)} MiB | ${(resumeMs / 1000).toFixed(2)} s |`,
      '',
      '| chunk size | no snapshot | first writes | ratio | captures / OBF commit | OBF written per first write | records for the whole source |',
      '|---|---|---|---|---|---|---|',
      ...sweep.map(
        (x) =>
          `| ${size(x.chunk)} | ${k(x.base.iops)} | ${k(x.load.iops)} | ${r2(x.load.iops / x.base.iops)} | ${(x.load.ios / x.st.commits).toFixed(1)} | ${((x.st.bytes / x.load.ios + BS) / KiB).toFixed(1)} KiB | ${SRC_BYTES / x.chunk} |`,
      ),
      '',
      `random 4 KiB writes with no snapshot (for scale): ${k(baseRand.iops)}; captures per OBF commit (chunk ${size(DEFAULT_CHUNK)}): ${(first.ios / commits).toFixed(1)}`,
      `load average (1/5/15 min): ${loadBefore} before, ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} after; ${os.cpus().length} cores; total ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await b?.s.close().catch(() => undefined);
    await b?.target.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench:cow failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

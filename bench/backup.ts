/**
 * npm run bench:backup — what `backup` (docs/method.md 602–608) costs, against peers measured in
 * the same run. One target process (bin/xcopy-agent target with the management API) exports
 * LUN 0, the source (BENCH_SIZE_MIB, default 1024, a sparse file filled once with random data),
 * LUN 1, the OBF (a file written through once, as a provisioned OBF LUN is) and LUN 2, the
 * secondary (the image and its metadata area); the copy manager is the target's own (file to
 * file by copy_file_range). The host is a process of its own: 4 KiB random writes to the source
 * through the project's initiator at queue depth BENCH_QD (default 1), the same writer in every
 * phase that has one. After a warm-up (a copy and a backup, not counted), BENCH_ROUNDS (default
 * 3) rounds each run:
 *  a. the host writing alone for BENCH_SECONDS (default 3): its latency without a backup;
 *  b. the pure outboard copy — xcopyCopy of the whole source to the secondary (EXTENDED COPY,
 *     then SYNCHRONIZE CACHE), no snapshot — and the backup (overwrite mode) to the same
 *     secondary, the host writing, in alternating order;
 *  c. the naive consistent copy: the host held (it issues nothing more and its writes in flight
 *     complete), the same copy, the host released;
 *  d. the pure copy and the backup again with no host writing (the fixed costs alone); then, to
 *     see where the backup's time goes, the pure copy given a progress callback (as the backup's
 *     copy phase calls xcopyCopy) and the snapshot's view hashed alone in the target (the
 *     management API's snapshot_hash over the whole image, as the backup asks for it while the
 *     copy runs).
 * Printed: (1) backup wall time / pure copy (goal <= 1.15x); (2) the host's write latency
 * p50/p99 during the backup / without one; (3) backup wall time vs the naive copy, with the
 * host's stall in each (the longest time with no write completing). Wall times are the median
 * of the rounds; latencies pool every round's writes. Absolute times are noise on a shared
 * machine: read the ratios.
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { backup, type BackupEvent, type BackupResult } from '../src/agent/backup';
import { restore } from '../src/agent/restore';
import { verify } from '../src/agent/verify';
import { xcopyCopy, type XcopyCopyResult } from '../src/agent/xcopy-copy';
import { IscsiSession } from '../src/initiator/session';
import { ManagementClient } from '../src/mgmt';
import { freePort } from '../src/peers/tgt';
import { requiredBlocks } from '../src/secondary';
import { startTargetProcess, type TargetProcess } from './run-target';

const IQN = 'iqn.2026-12.io.xcopy-agent.bench:backup';
const KiB = 1024;
const MiB = 1024 * KiB;
const SIZE = Number(process.env.BENCH_SIZE_MIB ?? 1024) * MiB;
const QD = Number(process.env.BENCH_QD ?? 1);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
/** Room for the captures of a copy phase at this queue depth, many times over. */
const OBF_MIB = Math.max(256, SIZE / MiB / 2);
const IO = 4 * KiB;
/** Block size of the quick-form file LUNs (src/target/config.ts). */
const BS = 512;
/** Quiet time between phases, so that no write belongs to two (ms). */
const GAP_MS = 250;
const GOAL = 1.15;

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** CLOCK_MONOTONIC in ms: one clock for this process and the writer's. */
const nowMs = () => Number(process.hrtime.bigint() / 1000n) / 1000;

// ---- the host: a writer in a process of its own -------------------------------------------

type ToWriter = { cmd: 'start' | 'hold' | 'release' | 'stop' | 'exit' };
/** Each write's issue and completion time (nowMs). */
interface Samples {
  start: number[];
  end: number[];
}
type FromWriter = { type: 'ready' | 'held' } | ({ type: 'samples' } & Samples);

/** The child: QD loops of 4 KiB random writes, held and released on request. */
async function writerMain(url: string, qd: number): Promise<void> {
  const s = await IscsiSession.connect(url);
  const bs = await s.blockSize();
  const slots = Number((await s.readCapacity16()).returnedLogicalBlockAddress + 1n) / (IO / bs);
  const payload = crypto.randomBytes(IO);
  const send = (m: FromWriter) => process.send!(m);
  let running = false;
  let loops: Promise<void[]> | undefined;
  let samples: Samples = { start: [], end: [] };
  let gate: { opened: Promise<void>; open: () => void; waiting: number } | undefined;
  const loop = async () => {
    while (running) {
      if (gate) {
        const g = gate;
        if (++g.waiting === qd) send({ type: 'held' });
        await g.opened;
        continue;
      }
      const a = nowMs();
      await s.write16(BigInt(Math.floor(Math.random() * slots) * (IO / bs)), payload);
      samples.start.push(a);
      samples.end.push(nowMs());
    }
  };
  process.on('message', (m: ToWriter) => {
    void (async () => {
      if (m.cmd === 'start') {
        running = true;
        loops = Promise.all(Array.from({ length: qd }, loop));
      } else if (m.cmd === 'hold') {
        let open = () => undefined as void;
        const opened = new Promise<void>((r) => (open = r));
        gate = { opened, open, waiting: 0 };
      } else if (m.cmd === 'release') {
        gate?.open();
        gate = undefined;
      } else if (m.cmd === 'stop') {
        running = false;
        gate?.open();
        gate = undefined;
        await loops;
        send({ type: 'samples', ...samples });
        samples = { start: [], end: [] };
      } else {
        await s.close();
        process.disconnect();
      }
    })();
  });
  send({ type: 'ready' });
}

/** The parent's handle on the writer process. */
class HostWriter {
  private constructor(private readonly child: ChildProcess) {}

  static async spawn(url: string): Promise<HostWriter> {
    const child = fork(__filename, ['writer', url, String(QD)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: { ...process.env, XCOPY_AGENT_LOG_LEVEL: 'warn' } });
    const w = new HostWriter(child);
    await w.answer('ready');
    return w;
  }

  private answer<T extends FromWriter['type']>(type: T): Promise<Extract<FromWriter, { type: T }>> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the host writer exited (${code}) before answering ${type}`));
      const onMessage = (m: FromWriter) => {
        if (m.type !== type) return;
        this.child.off('message', onMessage).off('exit', onExit);
        resolve(m as Extract<FromWriter, { type: T }>);
      };
      this.child.on('message', onMessage).once('exit', onExit);
    });
  }

  private tell(cmd: ToWriter['cmd']): void {
    this.child.send({ cmd });
  }

  start(): void {
    this.tell('start');
  }

  /** Resolves once the writer issues nothing more and its writes in flight completed. */
  async hold(): Promise<void> {
    const held = this.answer('held');
    this.tell('hold');
    await held;
  }

  release(): void {
    this.tell('release');
  }

  async stop(): Promise<Samples> {
    const got = this.answer('samples');
    this.tell('stop');
    const { start, end } = await got;
    return { start, end };
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.tell('exit');
    await exited;
  }
}

// ---- what the host saw -----------------------------------------------------------------------

interface Window {
  t0: number;
  t1: number;
}

interface HostView {
  /** Latencies (ms) of the writes overlapping the window. */
  lat: number[];
  /** The longest time (ms) with no write completing, over gaps that overlap the window. */
  stall: number;
}

function hostView(s: Samples, w: Window): HostView {
  const lat: number[] = [];
  for (let i = 0; i < s.start.length; i++) if (s.start[i] < w.t1 && s.end[i] > w.t0) lat.push(s.end[i] - s.start[i]);
  const done = Float64Array.from(s.end).sort();
  let stall = 0;
  for (let i = 1; i < done.length; i++) if (done[i] > w.t0 && done[i - 1] < w.t1) stall = Math.max(stall, done[i] - done[i - 1]);
  return { lat, stall };
}

/** The host's slowest write during the backup: its latency, and where it began. */
interface Slowest {
  ms: number;
  phase: string;
  /** From the start of that phase. */
  afterMs: number;
  phaseMs: number;
}

/** `phases`: [name, start] in order, the last one the backup's end. */
function slowestWrite(s: Samples, w: Window, phases: Array<[string, number]>): Slowest {
  let k = -1;
  for (let i = 0; i < s.start.length; i++) if (s.start[i] < w.t1 && s.end[i] > w.t0 && (k < 0 || s.end[i] - s.start[i] > s.end[k] - s.start[k])) k = i;
  const at = s.start[k];
  let p = 0;
  while (p + 1 < phases.length && phases[p + 1][1] <= at) p++;
  const next = phases[Math.min(p + 1, phases.length - 1)][1];
  return { ms: s.end[k] - at, phase: phases[p][0], afterMs: at - phases[p][1], phaseMs: next - phases[p][1] };
}

/** The value at quantile q of `values` (nearest rank). */
function quantile(values: ArrayLike<number>, q: number): number {
  const v = Float64Array.from(values).sort();
  return v.length ? v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))] : NaN;
}

const median = (xs: number[]) => quantile(xs, 0.5);

// ---- one round -------------------------------------------------------------------------------

interface BackupRun {
  secs: number;
  r: BackupResult;
  /** When each phase began (nowMs). */
  at: Partial<Record<string, number>>;
}

interface Round {
  base: HostView;
  copy: number;
  copyHost: HostView;
  backup: BackupRun;
  backupHost: HostView;
  /** Each phase of the backup, in order (the copy phase: COW armed, first writes capture). */
  phaseHost: Array<[string, HostView]>;
  naive: number;
  naiveHost: HostView;
  idleCopy: number;
  idleBackup: BackupRun;
  /** The pure copy with a progress callback, as the backup's copy phase calls it. */
  idleCopyProgress: number;
  /** The snapshot's view hashed alone by the target, as the backup has it hashed (s). */
  viewHashSecs: number;
  slowest: Slowest;
}

class Bench {
  constructor(
    readonly target: TargetProcess,
    readonly mgmt: ManagementClient,
    readonly imageBlocks: bigint,
  ) {}

  /**
   * The pure outboard copy: the whole source to the secondary by EXTENDED COPY, no snapshot;
   * with `progress`, given a progress callback as the backup's copy phase gives it.
   */
  /** Seconds for the target to hash the whole image from a snapshot's view (snapshot_hash, 256 MiB a call). */
  private async viewHash(): Promise<number> {
    const st = await this.mgmt.call<{ id: string }>('snapshot_institute', { source: `${IQN}/0`, obf: `${IQN}/1`, overwrite_obf: true });
    try {
      const per = BigInt((256 * MiB) / BS);
      const t0 = nowMs();
      for (let lba = 0n; lba < this.imageBlocks; lba += per) {
        const blocks = this.imageBlocks - lba < per ? this.imageBlocks - lba : per;
        await this.mgmt.call('snapshot_hash', { id: st.id, lba: lba.toString(), blocks: blocks.toString(), piece_blocks: MiB / BS });
      }
      return (nowMs() - t0) / 1000;
    } finally {
      await this.mgmt.call('snapshot_terminate', { id: st.id });
      await this.mgmt.call('snapshot_forget', { id: st.id });
    }
  }

  async copy(progress = false): Promise<number> {
    const t0 = nowMs();
    const onProgress = progress ? () => undefined : undefined;
    const r: XcopyCopyResult = await xcopyCopy({ from: this.target.url(0), to: this.target.url(2), count: this.imageBlocks, fallback: false, onProgress });
    if (r.path !== 'xcopy') throw new Error(`pure copy: expected EXTENDED COPY, got ${r.path}`);
    return (nowMs() - t0) / 1000;
  }

  async backup(): Promise<BackupRun> {
    const at: BackupRun['at'] = {};
    const onEvent = (e: BackupEvent) => {
      if (e.type === 'phase') at[e.phase] ??= nowMs();
    };
    const t0 = nowMs();
    const r = await backup({ source: this.target.url(0), secondary: this.target.url(2), obf: this.target.url(1), mgmt: this.mgmt, yes: true, log: pino({ level: 'silent' }), onEvent });
    const secs = (nowMs() - t0) / 1000;
    at.end = nowMs();
    if (r.state !== 'integrated' || r.copy_path !== 'xcopy' || r.host_bytes !== 0n) throw new Error(`backup: ${r.state}, copy path ${r.copy_path}, ${r.host_bytes} bytes through the host`);
    return { secs, r, at };
  }

  async round(writer: HostWriter, copyFirst: boolean): Promise<Round> {
    writer.start();
    await sleep(GAP_MS);
    const baseW = { t0: nowMs(), t1: 0 };
    await sleep(SECONDS * 1000);
    baseW.t1 = nowMs();
    await sleep(GAP_MS);
    const windows: Record<'copy' | 'backup', Window> = { copy: { t0: 0, t1: 0 }, backup: { t0: 0, t1: 0 } };
    let copy = 0;
    let b: BackupRun | undefined;
    for (const what of copyFirst ? (['copy', 'backup'] as const) : (['backup', 'copy'] as const)) {
      windows[what].t0 = nowMs();
      if (what === 'copy') copy = await this.copy();
      else b = await this.backup();
      windows[what].t1 = nowMs();
      await sleep(GAP_MS);
    }
    // The naive consistent copy: writes held for the whole copy.
    const naiveW = { t0: nowMs(), t1: 0 };
    await writer.hold();
    await this.copy();
    writer.release();
    naiveW.t1 = nowMs();
    const naive = (naiveW.t1 - naiveW.t0) / 1000;
    await sleep(GAP_MS);
    const samples = await writer.stop();
    // No host writing: the fixed costs alone.
    let idleCopy = 0;
    let idleBackup: BackupRun | undefined;
    for (const what of copyFirst ? ['copy', 'backup'] : ['backup', 'copy']) {
      if (what === 'copy') idleCopy = await this.copy();
      else idleBackup = await this.backup();
    }
    const idleCopyProgress = await this.copy(true);
    const viewHashSecs = await this.viewHash();
    const phases = Object.entries(b!.at).filter(([k]) => k !== 'done').sort((x, y) => x[1]! - y[1]!) as Array<[string, number]>;
    const slowest = slowestWrite(samples, windows.backup, phases);
    return {
      base: hostView(samples, baseW),
      copy,
      copyHost: hostView(samples, windows.copy),
      backup: b!,
      backupHost: hostView(samples, windows.backup),
      phaseHost: phases.slice(0, -1).map(([name, t0], i) => [name, hostView(samples, { t0, t1: phases[i + 1][1] })]),
      naive,
      naiveHost: hostView(samples, naiveW),
      idleCopy,
      idleBackup: idleBackup!,
      idleCopyProgress,
      viewHashSecs,
      slowest,
    };
  }
}

/** SHA-256 MiB/s in this process (64 MiB in 1 MiB pieces, as the hash phase takes extents). */
function sha256Rate(): number {
  const piece = crypto.randomBytes(MiB);
  const t0 = nowMs();
  for (let i = 0; i < 64; i++) crypto.createHash('sha256').update(piece).digest();
  return 64 / ((nowMs() - t0) / 1000);
}

// ---- the report ------------------------------------------------------------------------------

interface Pooled {
  n: number;
  p50: number;
  p99: number;
  max: number;
  /** Median over the rounds of each round's longest stall. */
  stall: number;
}

function pooled(views: HostView[]): Pooled {
  const lat = views.flatMap((v) => v.lat);
  return { n: lat.length, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), max: quantile(lat, 1), stall: median(views.map((v) => v.stall)) };
}

/** The run of median wall time. */
const medianRun = (runs: BackupRun[]) => [...runs].sort((a, b) => a.secs - b.secs)[Math.floor(runs.length / 2)];

function report(rounds: Round[], shaMiBps: number, totalSecs: number): string {
  const f2 = (x: number) => x.toFixed(2);
  const s2 = (x: number) => `${x.toFixed(2)} s`;
  const ms = (x: number) => (x < 10 ? x.toFixed(2) : x < 1000 ? x.toFixed(1) : x.toFixed(0));
  const list = (xs: number[]) => xs.map(f2).join(', ');
  const perRound = (a: number[], b: number[]) => list(a.map((x, i) => x / b[i]));
  const met = (x: number) => (x <= GOAL ? 'met' : '**NOT MET**');
  const of = <T>(f: (r: Round) => T) => rounds.map(f);

  const backupSecs = of((r) => r.backup.secs);
  const copySecs = of((r) => r.copy);
  const naiveSecs = of((r) => r.naive);
  const idleB = of((r) => r.idleBackup.secs);
  const idleC = of((r) => r.idleCopy);
  const idleCP = of((r) => r.idleCopyProgress);
  const r1 = median(backupSecs) / median(copySecs);
  const r1idle = median(idleB) / median(idleC);
  const base = pooled(of((r) => r.base));
  const during = pooled(of((r) => r.backupHost));
  const naiveHost = pooled(of((r) => r.naiveHost));
  const busy = medianRun(of((r) => r.backup));
  const idle = medianRun(of((r) => r.idleBackup));
  const phaseNames = rounds[0].phaseHost.map(([name]) => name);

  const latRow = (name: string, x: Pooled) => `| ${name} | ${x.n} | ${ms(x.p50)} | ${ms(x.p99)} | ${ms(x.max)} | ${ms(x.stall)} | ${f2(x.p50 / base.p50)} | ${f2(x.p99 / base.p99)} |`;
  const phaseRow = (name: string) => `| ${name} | ${s2(busy.r.phases[name] ?? NaN)} | ${s2(idle.r.phases[name] ?? NaN)} |`;
  const shaSecs = SIZE / MiB / shaMiBps;
  const viewHashSecs = median(of((r) => r.viewHashSecs));
  const lines = [
    `bench:backup — a ${SIZE / MiB} MiB file LUN of random data backed up (overwrite mode) to a file LUN through the target's own copy manager; OBF a ${OBF_MIB} MiB file LUN written through once; one target process, loopback; the host: 4 KiB random writes to the source at QD ${QD} from a process of its own; ${rounds.length} rounds (wall times: median; latencies: every round's writes pooled)`,
    '',
    '| ratio | backup | peer | ratio (per round) | goal |',
    '|---|---|---|---|---|',
    `| 1. backup wall time / pure outboard copy (xcopyCopy of the whole source, no snapshot), host writing | ${s2(median(backupSecs))} | ${s2(median(copySecs))} | ${f2(r1)} (${perRound(backupSecs, copySecs)}) | <= ${GOAL} — ${met(r1)} |`,
    `| 1. the same, no host writing | ${s2(median(idleB))} | ${s2(median(idleC))} | ${f2(r1idle)} (${perRound(idleB, idleC)}) | <= ${GOAL} — ${met(r1idle)} |`,
    `| 2. host write latency p50, during the backup / without one | ${ms(during.p50)} ms | ${ms(base.p50)} ms | ${f2(during.p50 / base.p50)} | |`,
    `| 2. host write latency p99, during the backup / without one | ${ms(during.p99)} ms | ${ms(base.p99)} ms | ${f2(during.p99 / base.p99)} | |`,
    `| 3. backup wall time / naive consistent copy (the host held for the whole copy) | ${s2(median(backupSecs))} | ${s2(median(naiveSecs))} | ${f2(median(backupSecs) / median(naiveSecs))} (${perRound(backupSecs, naiveSecs)}) | |`,
    `| 3. the host's stall (longest time with no write completing), backup / naive | ${ms(during.stall)} ms | ${ms(naiveHost.stall)} ms | ${(during.stall / naiveHost.stall).toFixed(4)} | |`,
    '',
    '| host 4 KiB writes (ms) | writes | p50 | p99 | max | stall | p50 ratio | p99 ratio |',
    '|---|---|---|---|---|---|---|---|',
    latRow('no backup (peer)', base),
    latRow('during the pure copy', pooled(of((r) => r.copyHost))),
    latRow('during the backup, whole', during),
    ...phaseNames.map((name, i) => latRow(`during the backup: ${name}${name === 'copy' ? ' (COW armed: first writes capture)' : ''}`, pooled(of((r) => r.phaseHost[i][1])))),
    latRow('the naive copy (held for the whole copy)', naiveHost),
    '',
    '| where a backup\'s time goes (the median run) | host writing | no host writing |',
    '|---|---|---|',
    ...phaseNames.filter((n) => n !== 'end').map(phaseRow),
    `| backup, wall time | ${s2(busy.secs)} | ${s2(idle.secs)} |`,
    `| pure copy (peer), median | ${s2(median(copySecs))} | ${s2(median(idleC))} |`,
    `| pure copy given a progress callback, as the copy phase calls xcopyCopy, median | | ${s2(median(idleCP))} |`,
    `| the snapshot's view hashed alone by the target (snapshot_hash), median | | ${s2(viewHashSecs)} |`,
    `| SHA-256 of the image alone in this process, one core (${shaMiBps.toFixed(0)} MiB/s) | | ${s2(shaSecs)} |`,
    '',
    `institute pause in the target (writes held): ${of((r) => r.backup.r.institute_pause_ms ?? NaN).map(ms).join(', ')} ms; OBF records applied: ${of((r) => r.backup.r.obf_records).join(', ')}`,
    `the host's slowest write during each backup: ${of((r) => `${ms(r.slowest.ms)} ms, begun ${ms(r.slowest.afterMs)} ms into the ${r.slowest.phase} phase (of ${ms(r.slowest.phaseMs)} ms)`).join('; ')}`,
    `wall times (s) — backup: ${list(backupSecs)}; pure copy: ${list(copySecs)}; naive: ${list(naiveSecs)}; no host writing — backup: ${list(idleB)}, pure copy: ${list(idleC)}, pure copy with progress: ${list(idleCP)}`,
  ];
  if (r1 > GOAL || r1idle > GOAL) {
    const over = (run: typeof busy, copySecs: number) => {
      const ph = run.r.phases;
      const others = Object.entries(ph)
        .filter(([k]) => !['copy', 'hash', 'terminate', 'apply'].includes(k))
        .reduce((a, [, v]) => a + v, 0);
      return `copy phase ${s2(ph.copy)} (${s2(ph.copy - copySecs)} over the pure copy), hash phase ${s2(ph.hash ?? 0)} (the hashing that did not overlap the copy), terminate ${s2(ph.terminate ?? 0)} (ends capture, reads the OBF's log back for 608), apply ${s2(ph.apply ?? 0)}, the others ${s2(others)}`;
    };
    lines.push(
      `goal 1 NOT MET (${f2(r1)}x host writing, ${f2(r1idle)}x with none; goal <= ${GOAL}x). Beyond the pure copy — host writing: ${over(busy, median(copySecs))}; ` +
        `no host writing: ${over(idle, median(idleC))}. The view hashed alone takes ${s2(viewHashSecs)} (SHA-256 alone on one core ${s2(shaSecs)}); it runs beside the copy, on the same two cores.`,
    );
  }
  lines.push(`total ${totalSecs.toFixed(0)} s`);
  return lines.join('\n');
}

/**
 * Issue 14's rows, after the backup rounds (the secondary holds the last backup's copy): restore
 * (750, whole, onto LUN 3) checked against the hashes by the target serving LUN 3 (--mgmt:
 * lun_hash), and checked by reading LUN 3 back through iSCSI (no --mgmt), each against a plain
 * EXTENDED COPY of the same image onto the same LUN (goal <= 1.1x); the whole LUN hashed alone
 * by lun_hash; and `verify` against `sha256sum` of the source's backing file, a file of the
 * image's size (goal >= 0.8x); ROUNDS rounds, medians.
 */
async function restoreAndVerify(target: TargetProcess, mgmt: ManagementClient, srcFile: string): Promise<string> {
  const blocks = BigInt(SIZE / BS);
  const restoreS: number[] = [];
  const readBackS: number[] = [];
  const plainS: number[] = [];
  const lunHashS: number[] = [];
  const verifyS: number[] = [];
  const shaS: number[] = [];
  type Restored = Awaited<ReturnType<typeof restore>>;
  const byTarget: Restored[] = [];
  const byReadBack: Restored[] = [];
  const naa = (await mgmt.call<Array<{ lun: number; naa: string }>>('lun_list')).find((l) => l.lun === 3)!.naa;
  for (let i = 0; i < ROUNDS; i++) {
    for (const what of i % 2 === 0 ? ['plain', 'restore', 'read-back'] : ['read-back', 'restore', 'plain']) {
      const t0 = nowMs();
      if (what === 'plain') {
        await xcopyCopy({ from: target.url(2), to: target.url(3), skip: 0n, seek: 0n, count: blocks, fallback: false });
        plainS.push((nowMs() - t0) / 1000);
      } else if (what === 'restore') {
        byTarget.push(await restore({ secondary: target.url(2), to: target.url(3), yes: true, mgmt }));
        restoreS.push((nowMs() - t0) / 1000);
      } else {
        byReadBack.push(await restore({ secondary: target.url(2), to: target.url(3), yes: true }));
        readBackS.push((nowMs() - t0) / 1000);
      }
    }
    const th = nowMs();
    await mgmt.call('lun_hash', { naa, lba: '0', blocks: blocks.toString(), piece_blocks: MiB / BS });
    lunHashS.push((nowMs() - th) / 1000);
    const t1 = nowMs();
    await verify({ secondary: target.url(2) });
    verifyS.push((nowMs() - t1) / 1000);
    const t2 = nowMs();
    await run('sha256sum', [srcFile]);
    shaS.push((nowMs() - t2) / 1000);
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const mibps = (secs: number) => SIZE / MiB / secs;
  const r1 = med(restoreS) / med(plainS);
  const r1b = med(readBackS) / med(plainS);
  const r2 = mibps(med(verifyS)) / mibps(med(shaS));
  const phases = (rs: Restored[]) => {
    const m = (k: keyof Restored['phase_seconds']) => med(rs.map((x) => x.phase_seconds[k])).toFixed(2);
    return `prepare ${m('prepare')} s, copy ${m('copy')} s, check ${m('check')} s`;
  };
  return [
    '| restore and verify (issue 14) | ours | peer | ratio | goal |',
    '|---|---|---|---|---|',
    `| restore (750, whole, checked against the hashes by the LUN's target, --mgmt) / a plain EXTENDED COPY of the image, wall time | ${med(restoreS).toFixed(2)} s | ${med(plainS).toFixed(2)} s | ${r1.toFixed(2)} | <= 1.1 — ${r1 <= 1.1 ? 'met' : '**NOT MET**'} |`,
    `| the same restore checked by reading the LUN back through iSCSI (no --mgmt) / the plain copy | ${med(readBackS).toFixed(2)} s | ${med(plainS).toFixed(2)} s | ${r1b.toFixed(2)} | (the fallback) |`,
    `| verify throughput / sha256sum of a file of the image's size | ${mibps(med(verifyS)).toFixed(0)} MiB/s | ${mibps(med(shaS)).toFixed(0)} MiB/s | ${r2.toFixed(2)} | >= 0.8 — ${r2 >= 0.8 ? 'met' : '**NOT MET**'} |`,
    `restore by ${byTarget[0]?.method}, checked by ${byTarget[0]?.checked_by} (medians: ${phases(byTarget)}); by ${byReadBack[0]?.checked_by} (${phases(byReadBack)}); the LUN hashed alone by lun_hash: ${med(lunHashS).toFixed(2)} s`,
    `wall times (s) — restore: ${restoreS.map((x) => x.toFixed(2)).join(', ')}; read-back: ${readBackS.map((x) => x.toFixed(2)).join(', ')}; plain copy: ${plainS.map((x) => x.toFixed(2)).join(', ')}; lun_hash: ${lunHashS.map((x) => x.toFixed(2)).join(', ')}; verify: ${verifyS.map((x) => x.toFixed(2)).join(', ')}; sha256sum: ${shaS.map((x) => x.toFixed(2)).join(', ')}`,
  ].join('\n');
}

async function main(): Promise<void> {
  const started = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xcopy-bench-backup-'));
  const [src, obf, sec, dst] = ['src.img', 'obf.img', 'sec.img', 'dst.img'].map((f) => path.join(dir, f));
  let writer: HostWriter | undefined;
  let target: TargetProcess | undefined;
  try {
    // The source sparse, then filled once; the OBF thick; nothing dirty before timing.
    await run('sh', ['-c', `truncate -s ${SIZE} ${src} && head -c ${SIZE} /dev/urandom | dd of=${src} bs=1M conv=notrunc,fsync status=none`]);
    await run('dd', ['if=/dev/zero', `of=${obf}`, 'bs=1M', `count=${OBF_MIB}`, 'conv=fsync', 'status=none']);
    const imageBlocks = BigInt(SIZE / BS);
    const secBytes = Math.ceil((Number(requiredBlocks({ blockSize: BS, imageBlocks, mode: 'overwrite' })) * BS) / MiB) * MiB;
    const stateDir = path.join(dir, 'state');
    fs.mkdirSync(stateDir, { mode: 0o700 });
    const mport = await freePort();
    target = await startTargetProcess(IQN, [`file:${src}`, `file:${obf}`, `file:${sec}:${secBytes}`, `file:${dst}:${SIZE}`], ['--state-dir', stateDir, '--mgmt', `127.0.0.1:${mport}`]);
    // The management API listens before the portal does, so its token file exists by now.
    const mgmt = new ManagementClient({ url: `http://127.0.0.1:${mport}`, token: fs.readFileSync(path.join(stateDir, 'mgmt.token'), 'utf8').trim() });
    const b = new Bench(target, mgmt, imageBlocks);
    // Warm-up, not counted: allocates the secondary's blocks, starts the first snapshot.
    await b.copy();
    await b.backup();
    writer = await HostWriter.spawn(target.url(0));
    const rounds: Round[] = [];
    for (let i = 0; i < ROUNDS; i++) rounds.push(await b.round(writer, i % 2 === 0));
    await writer.close();
    writer = undefined;
    const rv = await restoreAndVerify(target, mgmt, src);
    process.stdout.write(`${report(rounds, sha256Rate(), (Date.now() - started) / 1000)}\n\n${rv}\n`);
  } finally {
    await writer?.close().catch(() => undefined);
    await target?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'writer') {
  writerMain(process.argv[3], Number(process.argv[4])).catch((err) => {
    process.stderr.write(`bench:backup writer failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
} else {
  main().catch((err) => {
    process.stderr.write(`bench:backup failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}

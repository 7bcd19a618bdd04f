/**
 * Resume after `kill -9` (issue 14; docs/backup.md, "Resume"). The agent runs as the real CLI
 * (bin/xcopy-agent backup --json, a child process) against the project's target in this process
 * (source, OBF and secondaries, with the management API), while a host writes to the source. When
 * the agent's NDJSON says a phase began, it is stopped at once (SIGSTOP, then SIGKILL after a
 * seeded random delay of its work in flight), in each phase; `backup --resume ID` must then
 * finish the copy from what the secondary and the snapshot say is done, and the image must equal
 * the source's file as copied while the snapshot's writes were held (independent of the COW, copy
 * and OBF code). The catalog must show the cut-short run failed ("cut short"), resumed by the new
 * one. A snapshot that is gone makes the resume end the copy as failed, exit 50. `integrate
 * --resume` continues an integrate killed while it lays records.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import Database from 'better-sqlite3';
import { readSecondaryMetadata } from '../../src/agent/secondary-lun';
import { SqliteCatalog } from '../../src/catalog';
import { onSnapshotHeld } from '../helpers/held';
import { hostWriter, startSnapshotTarget, type SnapshotTarget } from '../helpers/snapshot-target';
import { xorshift } from '../helpers/rng';
import { startTargetProcess } from '../helpers/target-process';
import { removeDir, tempDir } from '../helpers/tmp';

const IQN = 'iqn.2026-12.io.xcopy-agent.test:resume';
const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
const BS = 512;
/** Random per run, printed; replay with RESUME_SEED=N. */
const SEED = Number(process.env.RESUME_SEED ?? crypto.randomInt(1, 2 ** 30));
console.info(`resume seed ${SEED} (replay with RESUME_SEED=${SEED})`);
const rand = xorshift(SEED);
const BIN = path.resolve(__dirname, '../../bin/xcopy-agent');

let dir: string;
let t: SnapshotTarget;
const file = (name: string) => path.join(dir, name);
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/** LUNs: 0 source, 1 OBF, 2 secondary (overwrite), 3 secondary (append), 4 a LUN to restore onto. */
beforeAll(async () => {
  dir = tempDir('resume');
  fs.writeFileSync(file('src.img'), crypto.randomBytes(SIZE));
  t = await startSnapshotTarget(dir, IQN, [`file:${file('src.img')}`, `file:${file('obf.img')}:16M`, `file:${file('sec.img')}:20M`, `file:${file('sec-append.img')}:40M`, `file:${file('dst.img')}:16M`]);
});

afterAll(async () => {
  await t?.server.stop();
  if (dir) removeDir(dir);
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  records: Array<Record<string, unknown>>;
  stderr: string;
}

/** Runs the CLI; `stopAt(record)` true stops it there (SIGSTOP at once, SIGKILL after `killAfterMs`). */
function cli(args: string[], o: { stopAt?: (r: Record<string, unknown>) => boolean; stopWhen?: () => boolean; killAfterMs?: number; killAt?: number } = {}): Promise<Run> {
  const mgmt = args[0] === 'backup' ? ['--mgmt', t.server.management!.url, '--token-file', t.tokenFile] : [];
  const child: ChildProcess = spawn(BIN, [...args, '--json', ...mgmt], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } }); // jest's process.env is the test's own copy
  const records: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let stopped = false;
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    const r = JSON.parse(line) as Record<string, unknown>;
    // killAt: SIGKILL this long after the first record (the run is held elsewhere meanwhile).
    if (records.length === 0 && o.killAt !== undefined) setTimeout(() => child.kill('SIGKILL'), o.killAt);
    records.push(r);
    if (!stopped && o.stopAt?.(r)) {
      stopped = true;
      child.kill('SIGSTOP');
      setTimeout(() => child.kill('SIGKILL'), o.killAfterMs ?? 0);
    }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  // stopWhen: polled every 5 ms (e.g. the catalog says some units are done).
  const poll = o.stopWhen
    ? setInterval(() => {
        if (stopped || !o.stopWhen!()) return;
        stopped = true;
        child.kill('SIGSTOP');
        child.kill('SIGKILL');
      }, 5)
    : undefined;

  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearInterval(poll);
      resolve({ code, signal, records, stderr });
    }),
  );
}

const summaryOf = (r: Run) => r.records.find((x) => x.type === 'summary');
const phaseBegins = (phase: string) => (r: Record<string, unknown>) => r.type === 'progress' && r.phase === phase;

/**
 * A backup onto `lun` killed when `phase` begins, then resumed; both runs with a host writing.
 * Returns the resumed run's summary and the source as held at institution.
 */
async function killAndResume(lun: number, phase: string, extra: string[]): Promise<{ summary: Record<string, unknown>; reference: Buffer; id: string }> {
  const reference = file(`reference-${lun}-${phase}.img`);
  const off = onSnapshotHeld(() => fs.promises.copyFile(file('src.img'), reference));
  const writer = hostWriter(t.url(0), { seed: SEED + lun, blocks: SIZE / BS });
  try {
    const first = await cli(['backup', '--source', t.url(0), '--secondary', t.url(lun), '--obf', t.url(1), '--yes', ...extra], { stopAt: phaseBegins(phase), killAfterMs: rand.int(20) });
    expect(first.signal).toBe('SIGKILL');
    const begun = first.records.find((r) => r.type === 'progress' && r.phase === 'institute' && typeof r.snapshot_id === 'string');
    // The backup's id: from the catalog's copy on this secondary (the killed run printed no summary).
    const catalog = SqliteCatalog.open(process.env.XCOPY_AGENT_CATALOG!);
    const copy = (await catalog.listCopies()).find((c) => c.secondaryUrl === t.url(lun) && c.state === 'copying');
    await catalog.close();
    expect(copy).toBeDefined();
    const second = await cli(['backup', '--resume', copy!.id]);
    expect({ code: second.code, stderr: second.stderr }).toEqual({ code: 0, stderr: '' });
    const summary = summaryOf(second)!;
    expect(summary.backup_id).toBe(copy!.id);
    if (begun) expect(summary.snapshot_id).toBe(begun.snapshot_id);
    expect(await writer.stop()).toBeGreaterThan(0);
    return { summary, reference: fs.readFileSync(reference), id: copy!.id };
  } finally {
    off();
    await writer.stop();
  }
}

/** The secondary's image (the first SIZE bytes of its file) against the reference, by hash. */
function expectImage(lun: number, reference: Buffer): void {
  const f = ['', '', 'sec.img', 'sec-append.img'][lun];
  expect(sha(fs.readFileSync(file(f)).subarray(0, SIZE))).toBe(sha(reference));
}

async function expectCatalog(id: string, state: string): Promise<void> {
  const catalog = SqliteCatalog.open(process.env.XCOPY_AGENT_CATALOG!);
  try {
    const got = (await catalog.getCopy(id))!;
    expect(got.copy.state).toBe(state);
    const backups = got.operations.filter((o) => o.kind === 'backup');
    const last = backups[backups.length - 1];
    expect(last.state).toBe('ok');
    expect(last.params?.resumes).toBe(backups[backups.length - 2].id);
    expect(backups[backups.length - 2]).toMatchObject({ state: 'failed', detail: { code: 'ERR_INTERRUPTED' } });
    expect(String(backups[backups.length - 2].detail?.message)).toContain('cut short');
  } finally {
    await catalog.close();
  }
}

/** Where a kill in each phase may leave the secondary (the phase event comes before its work). */
const OVERWRITE: Array<[string, string[]]> = [
  ['institute', ['nothing', 'copying']],
  ['copy', ['copying']],
  ['terminate', ['copying', 'image-complete']],
  ['apply', ['image-complete']],
];

test.each(OVERWRITE)('overwrite mode, killed when %s begins: the resume completes an exact copy', async (phase, from) => {
  const { summary, reference, id } = await killAndResume(2, phase, []);
  expect(from).toContain(summary.resumed_from);
  expect(summary.state).toBe('integrated');
  expectImage(2, reference);
  await expectCatalog(id, 'integrated');
  // Nothing left armed.
  expect(await t.mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
}, 180_000);

test.each([
  ['copy', ['copying']],
  ['append', ['image-complete']],
])('append mode with the marker, killed when %s begins: resumed, then integrate killed and resumed', async (phase, from) => {
  const { summary, reference, id } = await killAndResume(3, phase, ['--mode', 'append', '--mark']);
  expect(from).toContain(summary.resumed_from);
  expect(summary.state).toBe('log-appended');
  // integrate through bridge C, killed while C holds its EXTENDED COPY (SIGSTOP), then resumed by
  // the copy's id once C runs again: the cut-short run left the copy not integrated.
  const c = await startTargetProcess({ iqn: `${IQN}-c`, luns: [t.url(3)] });
  try {
    const first = await cli(['integrate', '--secondary', t.url(3), '--bridge', c.url(0)], {
      stopAt: (r) => {
        if (r.type === 'progress' && r.phase === 'integrate') c.child.kill('SIGSTOP');
        return false;
      },
      killAfterMs: 0,
      killAt: 500,
    });
    expect(first.signal).toBe('SIGKILL');
    c.child.kill('SIGCONT');
    const cut = await readSecondaryMetadata(async (lba, n) => readBlocks('sec-append.img', lba, n), BigInt(fs.statSync(file('sec-append.img')).size / BS), 'sec-append');
    expect(cut.state).toBe('log-appended');
    const second = await cli(['integrate', '--resume', id]);
    expect({ code: second.code, stderr: second.stderr }).toEqual({ code: 0, stderr: '' });
    expect(summaryOf(second)).toMatchObject({ backup_id: id });
  } finally {
    c.child.kill('SIGCONT');
    await c.kill();
  }
  expectImage(3, reference);
  const meta = await readSecondaryMetadata(async (lba, n) => readBlocks('sec-append.img', lba, n), BigInt(fs.statSync(file('sec-append.img')).size / BS), 'sec-append');
  expect(meta.state).toBe('integrated');
  expect(await t.mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
}, 180_000);

test('a resume whose snapshot is gone ends the copy failed, exit 50, and says why', async () => {
  const first = await cli(['backup', '--source', t.url(0), '--secondary', t.url(2), '--obf', t.url(1), '--yes'], { stopAt: phaseBegins('copy') });
  expect(first.signal).toBe('SIGKILL');
  const snap = first.records.find((r) => r.type === 'progress' && typeof r.snapshot_id === 'string')!.snapshot_id as string;
  // Somebody ended the dead agent's snapshot by hand.
  await t.mgmt.call('snapshot_terminate', { id: snap });
  await t.mgmt.call('snapshot_forget', { id: snap });
  const catalog = SqliteCatalog.open(process.env.XCOPY_AGENT_CATALOG!);
  const copy = (await catalog.listCopies()).find((c) => c.secondaryUrl === t.url(2) && c.state === 'copying')!;
  await catalog.close();
  const second = await cli(['backup', '--resume', copy.id]);
  expect(second.code).toBe(50);
  const error = second.records.find((r) => r.type === 'error')!;
  expect(error).toMatchObject({ code: 'ERR_NOT_RESUMABLE' });
  expect(String(error.message)).toMatch(/no longer in the source's target/);
  const meta = await readSecondaryMetadata(async (lba, n) => readBlocks('sec.img', lba, n), BigInt(fs.statSync(file('sec.img')).size / BS), 'sec');
  expect(meta).toMatchObject({ backupId: copy.id, state: 'failed' });
  expect(meta.reason).toMatch(/no longer in the source's target/);
  const again = SqliteCatalog.open(process.env.XCOPY_AGENT_CATALOG!);
  expect((await again.getCopy(copy.id))!.copy.state).toBe('failed');
  await again.close();
}, 120_000);

test('bad --resume input: an unknown id, a finished backup, and --mode with --resume are one line each, exit 1 or 50', async () => {
  const unknown = await cli(['backup', '--resume', 'ffffffff-0000-0000-0000-000000000000']);
  expect(unknown.code).toBe(1);
  expect(unknown.records.find((r) => r.type === 'error')!.message).toMatch(/has no backup with that id/);
  const catalog = SqliteCatalog.open(process.env.XCOPY_AGENT_CATALOG!);
  const done = (await catalog.listCopies()).find((c) => c.state === 'integrated')!;
  await catalog.close();
  const finished = await cli(['backup', '--resume', done.id]);
  expect(finished.code).toBe(50);
  expect(finished.records.find((r) => r.type === 'error')!.message).toMatch(/finished already/);
  const mode = await cli(['backup', '--resume', done.id, '--mode', 'append']);
  expect(mode.code).toBe(1);
}, 60_000);

test('restore --resume: a restore of 40 ranges killed after some are written continues from them', async () => {
  // A complete copy (append mode, integrated by the test above, or this backup) on LUN 3.
  const backup = await cli(['backup', '--source', t.url(0), '--secondary', t.url(3), '--obf', t.url(1), '--yes', '--mode', 'append']);
  expect(backup.code).toBe(0);
  const image = fs.readFileSync(file('sec-append.img')).subarray(0, SIZE); // no host wrote: the image is the source
  expect(sha(image)).toBe(sha(fs.readFileSync(file('src.img'))));
  fs.writeFileSync(file('dst.img'), Buffer.alloc(SIZE));
  // 40 ranges of 64 KiB, 256 KiB apart: 40 pieces, each written, synchronized and recorded in turn.
  const ranges = Array.from({ length: 40 }, (_, i) => ['--range', `${i * 512}+128`]).flat();
  // Killed once the catalog says some pieces are written (read with SQLite itself, not our code).
  const db = new Database(process.env.XCOPY_AGENT_CATALOG!, { readonly: true });
  const running = db.prepare("SELECT id, progress FROM operations WHERE kind = 'restore' AND state = 'running'");
  const written = () => (running.all() as Array<{ progress: string | null }>).some((o) => o.progress !== null && Number(JSON.parse(o.progress).copiedBlocks) > 0);
  const first = await cli(['restore', '--secondary', t.url(3), '--to', t.url(4), '--yes', ...ranges], { stopWhen: written });
  const cut = running.all() as Array<{ id: string; progress: string }>;
  db.close();
  expect(first.signal).toBe('SIGKILL');
  expect(cut).toHaveLength(1);
  const done = BigInt(JSON.parse(cut[0].progress).copiedBlocks);
  expect(done).toBeGreaterThan(0n);
  const catalog = SqliteCatalog.open(process.env.XCOPY_AGENT_CATALOG!);
  const copyId = (await catalog.listCopies()).find((c) => c.secondaryUrl === t.url(3) && c.state === 'log-appended')!.id;
  await catalog.close();
  const second = await cli(['restore', '--resume', cut[0].id.slice(0, 8), '--yes']);
  expect({ code: second.code, stderr: second.stderr }).toEqual({ code: 0, stderr: '' });
  const summary = summaryOf(second)!;
  expect(summary).toMatchObject({ backup_id: copyId, verified: 'bytes', resumed_from: { copied_blocks: String(done) } });
  expect((summary.ranges as unknown[]).length).toBe(40);
  // Each range holds the image's bytes; between them the LUN is as it was (zeros).
  const dst = fs.readFileSync(file('dst.img'));
  for (let i = 0; i < 40; i++) {
    const at = i * 512 * BS;
    expect(sha(dst.subarray(at, at + 128 * BS))).toBe(sha(image.subarray(at, at + 128 * BS)));
    expect(dst.subarray(at + 128 * BS, at + 512 * BS).every((b) => b === 0)).toBe(true);
  }
  // Nothing is left to resume.
  const again = await cli(['restore', '--resume', copyId]);
  expect(again.code).toBe(50); // finished already
  expect(again.records.find((r) => r.type === 'error')!.message).toMatch(/finished already|nothing to resume/);
}, 120_000);

function readBlocks(name: string, lba: bigint, n: number): Buffer {
  const fd = fs.openSync(file(name), 'r');
  try {
    const b = Buffer.alloc(n * BS);
    fs.readSync(fd, b, 0, b.length, Number(lba) * BS);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

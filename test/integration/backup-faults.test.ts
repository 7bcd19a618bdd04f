/**
 * Faults DURING a backup (docs/backup.md, "Faults during a backup"): each must end it with one
 * clear error of a documented code and exit status, nothing left armed (snapshot_list empty), and
 * the secondary's metadata saying `failed` with the reason — never a half-copy that looks
 * complete. A restart of the source's target is waited out instead: the backup completes, and
 * its image equals the source's file copied while the snapshot's writes were held.
 *
 * Real peers only: the project's target in this process (A: the source's, with the management
 * API), and as child processes B (thin LUNs on a tmpfs of its own, filled through /proc/PID/root
 * to make writes fail with ENOSPC; stopped with SIGSTOP to hold a copy in flight), C (a bridge
 * reaching A's source and B's LUN, killed during a copy) and, per restart test, the source's
 * target itself (killed and started again with the same --state-dir). A fault is set off by the
 * backup's own events (a phase starting, the first progress of the copy, the agent's warning),
 * never by a sleep racing the copy.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { backup, type BackupEvent, type BackupOptions, type BackupPhase } from '../../src/agent/backup';
import { readSecondaryMetadata } from '../../src/agent/secondary-lun';
import { AgentError, exitStatusOf } from '../../src/errors';
import { IscsiSession } from '../../src/initiator/session';
import { ManagementClient, ManagementServer } from '../../src/mgmt';
import * as secondary from '../../src/secondary';
import { managementMethods } from '../../src/target/management';
import { freePort } from '../../src/peers/tgt';
import { hostWriter, startSnapshotTarget, type SnapshotTarget } from '../helpers/snapshot-target';
import { fillUpTo, startTargetProcess, type TargetProcess } from '../helpers/target-process';
import { removeDir, tempDir } from '../helpers/tmp';

const IQN = 'iqn.2026-12.io.xcopy-agent.test:backup-faults';
const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
const BS = 512;
const IMAGE_BLOCKS = BigInt(SIZE / BS);
/** Random per run, printed; replay with BACKUP_FAULTS_SEED=N. */
const SEED = Number(process.env.BACKUP_FAULTS_SEED ?? crypto.randomInt(1, 2 ** 30));
console.info(`backup-faults host writer seed ${SEED} (replay with BACKUP_FAULTS_SEED=${SEED})`);

let dir: string;
let a: SnapshotTarget;
let b: TargetProcess;
let c: TargetProcess;
const file = (name: string) => path.join(dir, name);
/** B's tmpfs (seen at this path inside B's mount namespace only). */
const thin = () => file('thin');
const quiet = pino({ level: 'silent' });
/** Copies the source's backing file while a snapshot's writes are held (the oracle of a target run as a child process). */
const HOLD_COPY = path.resolve(__dirname, '../helpers/hold-copy.js');

/**
 * A: 0 source, 1 OBF, 2 secondary, 3 B/0 (thin, 20 MiB), 4 B/1 (thin, 44 MiB, append mode),
 * 5 B/2 (the bridge test's secondary), 6 a source whose file is cut short, 7 a read-only LUN.
 * B: 0 and 1 on its tmpfs, 2 and 3 plain files. C (the bridge that goes away): 0 A's source, 1
 * B/2, 2 A's OBF (a bridge must reach every LUN of 604 and 608: preflight asks it).
 */
beforeAll(async () => {
  dir = tempDir('backup-faults');
  fs.mkdirSync(thin());
  fs.writeFileSync(file('src.img'), crypto.randomBytes(SIZE));
  fs.writeFileSync(file('src-cut.img'), crypto.randomBytes(SIZE));
  fs.writeFileSync(file('sec-ro.img'), '');
  fs.truncateSync(file('sec-ro.img'), 20 * MiB);
  b = await startTargetProcess({
    iqn: `${IQN}-b`,
    luns: [`file:${path.join(thin(), 'sec.img')}:20M`, `file:${path.join(thin(), 'sec-append.img')}:44M`, `file:${file('sec-bridge.img')}:20M`, `file:${file('sec-restart.img')}:20M`],
    tmpfs: { dir: thin(), bytes: 96 * MiB },
  });
  a = await startSnapshotTarget(
    dir,
    IQN,
    [`file:${file('src.img')}`, `file:${file('obf.img')}:24M`, `file:${file('sec.img')}:20M`, b.url(0), b.url(1), b.url(2), `file:${file('src-cut.img')}`, `file:${file('sec-ro.img')}`],
    { readOnly: [7] },
  );
  c = await startTargetProcess({ iqn: `${IQN}-c`, luns: [a.url(0), b.url(2), a.url(1)] });
});

afterAll(async () => {
  await c?.kill();
  await a?.server.stop();
  b?.child.kill('SIGCONT');
  await b?.kill();
  if (dir) removeDir(dir);
});

function run(opts: Partial<BackupOptions>): Promise<unknown> {
  return backup({ source: a.url(0), obf: a.url(1), secondary: a.url(2), mgmt: a.mgmt, log: quiet, ...opts }).then(
    () => new Error('the backup completed'),
    (e: unknown) => e,
  );
}

/** An onEvent that runs `fn` once, when `phase` starts. */
function at(phase: BackupPhase, fn: () => void): (e: BackupEvent) => void {
  let done = false;
  return (e) => {
    if (done || e.type !== 'phase' || e.phase !== phase) return;
    done = true;
    fn();
  };
}

/** The error a backup ended with: its code, its CLI exit status, one line naming `what`. */
function expectClearError(err: unknown, code: string, exit: number, what: RegExp): void {
  expect(err).toBeInstanceOf(AgentError);
  expect(err).toMatchObject({ code });
  expect(exitStatusOf(err)).toBe(exit);
  expect((err as Error).message).toMatch(what);
  expect((err as Error).message).not.toContain('\n');
}

/** Nothing armed, nothing listed, on the source's target. */
async function expectNothingArmed(mgmt: Pick<ManagementClient, 'call'> = a.mgmt): Promise<void> {
  expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
}

/** The secondary's metadata, read back through iSCSI from its last block alone. */
async function metadataOf(url: string): Promise<secondary.SecondaryRecord> {
  const s = await IscsiSession.connect(url);
  try {
    const blocks = (await s.readCapacity16()).returnedLogicalBlockAddress + 1n;
    return await readSecondaryMetadata((lba, n) => s.read16(lba, n), blocks, url);
  } finally {
    await s.close();
  }
}

/**
 * Writes zeros over the metadata area `layout` places on the LUN at `url` (to the end): on a
 * thin LUN they take their pages now, so a pool filled later still lets the header say `failed`.
 */
async function allocateMetadataArea(url: string, layout: Omit<secondary.SecondaryLayoutParams, 'capacityBlocks' | 'blockSize'>): Promise<void> {
  const s = await IscsiSession.connect(url);
  try {
    const capacityBlocks = (await s.readCapacity16()).returnedLogicalBlockAddress + 1n;
    const L = secondary.planLayout({ blockSize: BS, capacityBlocks, ...layout });
    for (let lba = L.metaLba; lba < capacityBlocks; lba += 2048n) {
      const n = capacityBlocks - lba < 2048n ? Number(capacityBlocks - lba) : 2048;
      await s.write16(lba, Buffer.alloc(n * BS));
    }
  } finally {
    await s.close();
  }
}

/** 4 KiB pages of `got` equal to the same page of `want` (random data: a page never matches by chance). */
function equalPages(got: Buffer, want: Buffer): number {
  let n = 0;
  for (let o = 0; o + 4096 <= want.length; o += 4096) if (got.subarray(o, o + 4096).equals(want.subarray(o, o + 4096))) n++;
  return n;
}

const COPY_ABORTED = /^EXTENDED COPY on iscsi:\S+: COPY ABORTED: THIRD PARTY DEVICE FAILURE \(0x0d\/0x01\)$/;

test('COPY ABORTED: the source\'s backing file cut short during 604 — exit 10, nothing armed, the secondary failed', async () => {
  const whole = fs.readFileSync(file('src-cut.img'));
  try {
    // The file loses its second half once the snapshot is armed and the header says copying.
    const err = await run({ source: a.url(6), onEvent: at('copy', () => fs.truncateSync(file('src-cut.img'), SIZE / 2)) });
    expectClearError(err, 'ERR_SCSI_CHECK_CONDITION', 10, COPY_ABORTED);
    expect(err).toMatchObject({ senseKey: 0x0a, asc: 0x0d, ascq: 0x01 });
    await expectNothingArmed();
    const m = await metadataOf(a.url(2));
    expect(m.state).toBe('failed');
    expect(m.reason).toMatch(COPY_ABORTED);
    expect(m.progress.copiedBlocks).toBe(0n); // no slice of the image counted as copied
  } finally {
    fs.writeFileSync(file('src-cut.img'), whole); // the same inode: the target's store reads it whole again
  }
});

describe('a secondary write error (a thin secondary whose pool fills)', () => {
  let filler: string | undefined;
  afterEach(() => {
    if (filler) fs.rmSync(filler);
    filler = undefined;
  });

  test('during 604: COPY ABORTED, a half-copy on the secondary that its header calls failed', async () => {
    await allocateMetadataArea(a.url(3), { imageBlocks: IMAGE_BLOCKS, mode: 'overwrite' });
    // Once the copy starts, 2 MiB of the pool are left: the copy writes that much, then ENOSPC.
    const err = await run({ secondary: a.url(3), onEvent: at('copy', () => (filler = fillUpTo(b.inside(thin()), 2 * MiB))) });
    expectClearError(err, 'ERR_SCSI_CHECK_CONDITION', 10, COPY_ABORTED);
    await expectNothingArmed();
    const m = await metadataOf(a.url(3));
    expect(m.state).toBe('failed');
    expect(m.reason).toMatch(COPY_ABORTED);
    expect(m.progress.copiedBlocks).toBe(0n);
    // Part of the image did reach the secondary (read from B's file, not through the code under test).
    const copied = equalPages(fs.readFileSync(b.inside(path.join(thin(), 'sec.img'))).subarray(0, SIZE), fs.readFileSync(file('src.img')));
    expect(copied).toBeGreaterThan(0);
    expect(copied).toBeLessThan(SIZE / 4096);
  });

  test('during 608 (append mode): the image is whole but the log is not, and the header says failed', async () => {
    const obfBlocks = BigInt((24 * MiB) / BS);
    await allocateMetadataArea(a.url(4), { imageBlocks: IMAGE_BLOCKS, mode: 'append', logBlocksMax: obfBlocks });
    // The pool fills up entirely once the log is about to be copied after the image.
    const err = await run({ secondary: a.url(4), mode: 'append', onEvent: at('append', () => (filler = fillUpTo(b.inside(thin()), 0))) });
    expectClearError(err, 'ERR_SCSI_CHECK_CONDITION', 10, COPY_ABORTED);
    await expectNothingArmed();
    const m = await metadataOf(a.url(4));
    expect(m.state).toBe('failed');
    expect(m.reason).toMatch(COPY_ABORTED);
    expect(m.progress.copiedBlocks).toBe(IMAGE_BLOCKS);
    expect(m.log).toBeUndefined(); // no appended log is recorded
  });
});

test('the bridge goes away during 604 (killed with the EXTENDED COPY in flight): one clear error within the timeout', async () => {
  let killed: Promise<void> | undefined;
  const t0 = Date.now();
  let err: unknown;
  try {
    err = await run({
      secondary: a.url(5),
      bridge: c.url(1),
      session: { commandTimeoutMs: 4000 },
      onEvent: (e) => {
        // The bridge's writes reach the secondary through B: with B stopped the command is
        // certainly in flight when the first progress comes (COPY STATUS from the bridge).
        if (e.type === 'phase' && e.phase === 'copy') b.child.kill('SIGSTOP');
        if (e.type === 'progress' && e.phase === 'copy' && !killed) killed = c.kill().finally(() => b.child.kill('SIGCONT'));
      },
    });
  } finally {
    b.child.kill('SIGCONT');
    await killed;
  }
  expect(killed).toBeDefined();
  expectClearError(err, 'ERR_ISCSI_CLOSED', 44, new RegExp(`^session to iscsi://127\\.0\\.0\\.1:${c.port}/\\S+ closed: command 0x84 got no answer within 4 s \\(the target stopped answering or went away\\)$`));
  expect(Date.now() - t0).toBeLessThan(30_000);
  await expectNothingArmed();
  const m = await metadataOf(a.url(5));
  expect(m.state).toBe('failed');
  expect(m.reason).toBe((err as Error).message);
});

test('a write-protected secondary is refused in preflight: one line, no snapshot, nothing written', async () => {
  const before = fs.readFileSync(file('sec-ro.img'));
  const events: BackupEvent[] = [];
  const err = await run({ secondary: a.url(7), onEvent: (e) => events.push(e) });
  expectClearError(err, 'ERR_INVALID_ARG', 1, /^the secondary iscsi:\S+\/7 is write protected \(MODE SENSE: WP=1\): give a LUN this host may write, or lift its write protection$/);
  expect(events.filter((e) => e.type === 'phase').map((e) => (e as { phase: string }).phase)).toEqual(['preflight']);
  await expectNothingArmed();
  expect(fs.readFileSync(file('sec-ro.img')).equals(before)).toBe(true);
});

test('the management API refuses the token during the backup (rotated): exit 41, the secondary failed, the snapshot left ACTIVE and said so', async () => {
  const original = fs.readFileSync(a.tokenFile, 'utf8').trim();
  const rotated = crypto.randomBytes(32).toString('base64url');
  const admin = new ManagementClient({ url: a.server.management!.url, token: rotated });
  const logged: string[] = [];
  const log = pino({ level: 'error' }, { write: (line: string) => logged.push(line) });
  let rotating: Promise<void> | undefined;
  try {
    const err = await run({ log, onEvent: at('copy', () => (rotating = serveManagementWith(rotated))) });
    await rotating;
    expectClearError(err, 'ERR_MGMT_UNAUTHORIZED', 41, /^management API at http:\S+ refused the token \(HTTP 401\): check the token or the token file$/);
    const m = await metadataOf(a.url(2));
    expect(m.state).toBe('failed');
    expect(m.reason).toMatch(/refused the token/);
    // Without the token the agent cannot end the snapshot: it stays ACTIVE, and the log says how to end it.
    const left = await admin.call<Array<{ id: string; state: string }>>('snapshot_list');
    expect(left).toHaveLength(1);
    expect(left[0].state).toBe('ACTIVE');
    expect(logged.join('')).toMatch(new RegExp(`"snapshot":"${left[0].id}".*could not end the snapshot after a failed backup: end it with \`xcopy-agent snapshot terminate\``));
    await admin.call('snapshot_terminate', { id: left[0].id });
    await admin.call('snapshot_forget', { id: left[0].id });
  } finally {
    await rotating?.catch(() => undefined);
    await serveManagementWith(original);
  }
  await expectNothingArmed();
});

/** Serves A's management API again on the same address with another token (an administrator rotating it). */
async function serveManagementWith(token: string): Promise<void> {
  const old = a.server.management!;
  await old.stop();
  a.server.management = await ManagementServer.start({ listen: old.url.replace(/^http:\/\//, ''), token, methods: managementMethods(a.server, a.server.snapshots!), log: quiet });
}

describe('the source\'s target restarts during the backup (a child process started again with the same --state-dir)', () => {
  /** The source's target for one test: source, OBF and (through B) the secondary; the oracle copied at institution. */
  async function sourceTarget(name: string): Promise<{ start: () => Promise<TargetProcess>; oracle: (id: string) => Buffer }> {
    fs.writeFileSync(file(`${name}-src.img`), crypto.randomBytes(SIZE));
    fs.mkdirSync(file(`${name}-oracle`));
    const [port, mgmtPort] = [await freePort(), await freePort()];
    return {
      start: () =>
        startTargetProcess({
          iqn: `${IQN}-${name}`,
          port,
          luns: [`file:${file(`${name}-src.img`)}`, `file:${file(`${name}-obf.img`)}:24M`, b.url(3)],
          mgmt: { port: mgmtPort, stateDir: file(`${name}-state`) },
          nodeArgs: ['--require', HOLD_COPY],
          env: { XCOPY_TEST_HOLD_COPY_DIR: file(`${name}-oracle`) },
        }),
      oracle: (id) => fs.readFileSync(file(`${name}-oracle/${id}.img`)),
    };
  }

  /**
   * Runs a backup of `t`'s source to B/3 with a host writing to the source throughout; `onEvent`
   * gets the backup's events and the running target, and may replace it (restart). Checks what
   * every run here must end with: the host kept writing through the restart (its writes held off
   * with NOT READY, becoming ready, 04h/01h while the snapshot resumed, waited out by the
   * initiator's retry), the backup integrated, the secondary (B's file) equal to the source as
   * it was copied while writes were held, nothing left armed.
   */
  async function backupThroughRestart(name: string, seed: number, onEvent: (e: BackupEvent, ctl: { restart(): Promise<void>; kill(): Promise<void> }) => void): Promise<BackupEvent[]> {
    const t = await sourceTarget(name);
    let s = await t.start();
    const writer = hostWriter(s.url(0), { seed, blocks: SIZE / BS });
    const events: BackupEvent[] = [];
    let writesAtKill: number | undefined;
    const pending: Promise<void>[] = [];
    const ctl = {
      kill: () => {
        writesAtKill ??= writer.writes;
        const p = s.kill();
        pending.push(p);
        return p;
      },
      restart: () => {
        const p = Promise.all(pending).then(t.start).then((n) => void (s = n));
        pending.push(p);
        return p;
      },
    };
    try {
      const r = await backup({ source: s.url(0), obf: s.url(1), secondary: s.url(2), mgmt: s.mgmt!, log: quiet, onEvent: (e) => (events.push(e), onEvent(e, ctl)) });
      await Promise.all(pending);
      expect(writesAtKill).toBeDefined();
      expect(await writer.stop()).toBeGreaterThan(writesAtKill!);
      expect(r).toMatchObject({ state: 'integrated', copy_path: 'xcopy', hashed_from: 'view' });
      expect(fs.readFileSync(file('sec-restart.img')).subarray(0, SIZE).equals(t.oracle(r.snapshot_id))).toBe(true);
      expect(await metadataOf(s.url(2))).toMatchObject({ state: 'integrated', backupId: r.backup_id });
      await expectNothingArmed(s.mgmt!);
      return events;
    } finally {
      b.child.kill('SIGCONT');
      await writer.stop().catch(() => 0);
      await Promise.allSettled(pending);
      await s.kill();
    }
  }

  test('while the copy runs: the EXTENDED COPY is sent again after the reconnect, and the backup completes exact', async () => {
    let killed = false;
    await backupThroughRestart('copying', SEED, (e, ctl) => {
      // The copy's writes reach the secondary through B: with B stopped the copy is certainly
      // in flight in the target when its first progress comes. Then the target is killed, B
      // let go, and the target started again.
      if (e.type === 'phase' && e.phase === 'copy') b.child.kill('SIGSTOP');
      if (e.type === 'progress' && e.phase === 'copy' && !killed) {
        killed = true;
        void ctl.kill().then(() => b.child.kill('SIGCONT')).then(ctl.restart);
      }
    });
    expect(killed).toBe(true);
  });

  test('at 606: the agent waits for the management API and the resumed snapshot, then terminates it and completes exact', async () => {
    let restarting = false;
    const events = await backupThroughRestart('terminating', SEED + 1, (e, ctl) => {
      // Down when the agent asks to terminate; started again once the agent says it waits.
      if (e.type === 'phase' && e.phase === 'terminate') void ctl.kill();
      if (e.type === 'warning' && !restarting) {
        restarting = true;
        void ctl.restart();
      }
    });
    expect(events.filter((e) => e.type === 'warning')).toEqual([
      { type: 'warning', message: expect.stringMatching(/^the source's target is restarting \(cannot reach the management API at http:\S+: (connection refused \(is the target running\?\)|read ECONNRESET)\): waiting for it, at most 60 s$/) },
    ]);
  });
});

/**
 * A restore onto a LUN whose target restarted with a snapshot active on it: until the snapshot
 * has resumed from its OBF the LUN answers NOT READY, LOGICAL UNIT IS IN PROCESS OF BECOMING
 * READY (04h/01h) (docs/cow.md). The restore says so in one warning and waits, bounded, before it
 * writes: it completes once the LUN is ready, or fails with one line and exit status 2 (NOT
 * READY) past --ready-timeout, the LUN untouched. The resume is held by the resuming event
 * (test/helpers/held.ts) and let go on a condition (the warning), not after a sleep. The oracle
 * is the source's backing file, not written during its backup.
 */
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { backup } from '../../src/agent/backup';
import { restore } from '../../src/agent/restore';
import { onSnapshotResuming } from '../helpers/held';
import { startSnapshotTarget, type SnapshotTarget } from '../helpers/snapshot-target';
import { removeDir, tempDir } from '../helpers/tmp';

const IQN = 'iqn.2026-12.io.xcopy-agent.test:restore-faults';
const SIZE = 8 * 1024 * 1024;
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

let dir: string;
let t: SnapshotTarget | undefined;
const file = (name: string) => path.join(dir, name);
/** LUNs: 0 source, 1 its OBF, 2 the secondary, 3 the LUN restored onto (a snapshot active on it, its OBF a file). */
const luns = () => [`file:${file('src.img')}`, `file:${file('obf.img')}:16M`, `file:${file('sec.img')}:12M`, `file:${file('dst.img')}:8M`];

/** What the latest target runs before a journalled snapshot resumes. */
let beforeResume: (() => Promise<void>) | undefined;
let offResuming: (() => void) | undefined;

beforeAll(async () => {
  dir = tempDir('restore-faults');
  fs.writeFileSync(file('src.img'), crypto.randomBytes(SIZE));
  offResuming = onSnapshotResuming(() => beforeResume?.());
  t = await startSnapshotTarget(dir, IQN, luns());
  await backup({ source: t.url(0), secondary: t.url(2), obf: t.url(1), mgmt: t.mgmt, log: pino({ level: 'silent' }), yes: true, mode: 'overwrite' });
  await t.mgmt.call('snapshot_institute', { source: `${IQN}/3`, obf: `file:${file('dst-obf.img')}:32M` });
}, 60_000);
afterAll(async () => {
  offResuming?.();
  await t?.server.stop();
  removeDir(dir);
});

/** Stops the target (the snapshot on LUN 3 stays armed in the journal) and starts it again, its resume held until `gate` settles. */
async function restart(gate: Promise<void>): Promise<SnapshotTarget> {
  await t!.server.stop();
  t = undefined;
  beforeResume = () => gate;
  t = await startSnapshotTarget(dir, IQN, luns());
  return t;
}

test('the LUN becoming ready after a restart: one warning, the restore waits, then completes and checks out', async () => {
  fs.writeFileSync(file('dst.img'), crypto.randomBytes(SIZE));
  let go!: () => void;
  const target = await restart(new Promise<void>((r) => (go = r)));
  try {
    const warnings: string[] = [];
    const r = await restore({
      secondary: target.url(2),
      to: target.url(3),
      yes: true,
      mgmt: target.mgmt,
      onWarning: (m) => {
        warnings.push(m);
        go(); // the resume goes on only once the restore waits for it
      },
    });
    expect(warnings).toEqual([expect.stringMatching(/\/3 is becoming ready \(NOT READY 04h\/01h: its target resumes a snapshot after a restart\): waiting for it, at most 60 s$/)]);
    expect(r).toMatchObject({ method: '750', verified: 'hashes', checked_by: 'target' });
    expect(sha(fs.readFileSync(file('dst.img')))).toBe(sha(fs.readFileSync(file('src.img'))));
    // the snapshot on the LUN resumed and captured every chunk the restore overwrote
    const [snap] = await target.mgmt.call<Array<{ source: string; state: string; captured_chunks: number; chunk_bytes: number }>>('snapshot_list');
    expect(snap).toMatchObject({ source: '/backstores/fileio/lun3', state: 'ACTIVE', captured_chunks: SIZE / snap.chunk_bytes });
  } finally {
    go();
  }
});

test('not ready within --ready-timeout: one warning, one error line, exit status 2, nothing written', async () => {
  fs.writeFileSync(file('dst.img'), crypto.randomBytes(SIZE));
  const before = sha(fs.readFileSync(file('dst.img')));
  let go!: () => void;
  const target = await restart(new Promise<void>((r) => (go = r)));
  try {
    const bin = path.resolve(__dirname, '../../bin/xcopy-agent');
    const res = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(bin, ['restore', '--secondary', target.url(2), '--to', target.url(3), '--yes', '--ready-timeout', '1.5'], { timeout: 60_000, env: { ...process.env, XCOPY_AGENT_CATALOG: file('catalog.db') } }, (e, stdout, stderr) =>
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr }),
      ),
    );
    expect(res.code).toBe(2);
    expect(res.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^xcopy-agent: warning: .*\/3 is becoming ready \(NOT READY 04h\/01h: .*\): waiting for it, at most 1\.5 s$/),
      expect.stringMatching(/^xcopy-agent: .*\/3 did not become ready within 1\.5 s \(NOT READY, LOGICAL UNIT IS IN PROCESS OF BECOMING READY\): nothing was written; restore again once its target has resumed its snapshot, or give a longer --ready-timeout$/),
    ]);
    expect(sha(fs.readFileSync(file('dst.img')))).toBe(before);
  } finally {
    go();
    await target.server.snapshots!.resumed;
  }
});

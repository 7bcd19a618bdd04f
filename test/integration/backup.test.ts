/**
 * `backup` end to end on the project's target (file LUNs, real iSCSI, its copy manager and
 * management API) while hosts write to the source: both modes, the marker, and the bad input
 * and faults a backup must refuse cleanly. The oracle is the source's backing file copied while
 * the snapshot's writes were held (the held event), independent of the COW, copy and OBF code:
 * the secondary's image (overwrite) and the per-extent SHA-256 recorded in its metadata (both
 * modes) must equal that copy's.
 */
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { backup, type BackupOptions } from '../../src/agent/backup';
import { integrate } from '../../src/agent/integrate';
import { AgentError } from '../../src/errors';
import { IscsiSession } from '../../src/initiator/session';
import { ManagementClient } from '../../src/mgmt';
import * as secondary from '../../src/secondary';
import { TargetServer } from '../../src/target/server';
import { freePort } from '../../src/peers/tgt';
import { quickConfig } from '../../src/target/config';
import { onSnapshotHeld } from '../helpers/held';
import { hostWriter, startSnapshotTarget } from '../helpers/snapshot-target';
import { removeDir, tempDir } from '../helpers/tmp';

const IQN = 'iqn.2026-12.io.xcopy-agent.test:backup';
const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
const BS = 512;
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

let dir: string;
let server: TargetServer;
let port: number;
let mgmt: ManagementClient;
let tokenFile: string;
const url = (lun: number) => `iscsi://127.0.0.1:${port}/${IQN}/${lun}`;
const file = (name: string) => path.join(dir, name);

/** LUNs: 0 source, 1 OBF, 2 secondary (overwrite), 3 secondary (append), 4 small secondary, 5 a LUN holding data, 6 small OBF, 7 source 2. */
beforeAll(async () => {
  dir = tempDir('backup');
  fs.writeFileSync(file('src.img'), crypto.randomBytes(SIZE));
  fs.writeFileSync(file('src2.img'), crypto.randomBytes(4 * MiB));
  fs.writeFileSync(file('used.img'), Buffer.concat([crypto.randomBytes(MiB), Buffer.alloc(19 * MiB)]));
  const t = await startSnapshotTarget(dir, IQN, [
    `file:${file('src.img')}`,
    `file:${file('obf.img')}:24M`,
    `file:${file('sec.img')}:20M`,
    `file:${file('sec-append.img')}:44M`,
    `file:${file('small.img')}:8M`,
    `file:${file('used.img')}`,
    `file:${file('obf-small.img')}:1M`,
    `file:${file('src2.img')}`,
  ]);
  ({ server, port, mgmt, tokenFile } = t);
});

afterAll(async () => {
  await server?.stop();
  if (dir) removeDir(dir);
});

/** Random writes of 1..128 blocks to the source until stopped. */
/** Random per run, printed; replay a run with BACKUP_SEED=N. */
const BASE_SEED = Number(process.env.BACKUP_SEED ?? crypto.randomInt(1, 2 ** 30));
console.info(`backup host writers seed ${BASE_SEED} (replay with BACKUP_SEED=${BASE_SEED})`);
const sourceWriter = (n: number) => hostWriter(url(0), { seed: BASE_SEED + n, blocks: SIZE / BS });

/** Runs a backup of LUN 0 with hosts writing, the held copy of the source taken as the reference. */
async function backupUnderWrites(opts: Partial<BackupOptions>, seed: number) {
  const reference = file(`reference-${seed}.img`);
  const off = onSnapshotHeld(() => fs.promises.copyFile(file('src.img'), reference));
  const writers = [sourceWriter(seed), sourceWriter(seed + 1)];
  try {
    const r = await backup({ source: url(0), secondary: url(2), obf: url(1), mgmt, log: pino({ level: 'silent' }), ...opts });
    const writes = (await Promise.all(writers.map((w) => w.stop()))).reduce((a, b) => a + b, 0);
    return { r, writes, reference: fs.readFileSync(reference) };
  } finally {
    off();
    await Promise.all(writers.map((w) => w.stop().catch(() => 0)));
  }
}

/** The secondary's metadata, read back through iSCSI from its last block alone. */
async function readMetadata(lun: number): Promise<{ record: secondary.SecondaryRecord; hashes: Buffer[]; image: Buffer; s: IscsiSession }> {
  const s = await IscsiSession.connect(url(lun));
  const blocks = (await s.readCapacity16()).returnedLogicalBlockAddress + 1n;
  const t = secondary.decodeTrailer(await s.read16(blocks - 1n, 1), blocks);
  const slot0 = await s.read16(t.metaLba, t.slotBlocks);
  const slot1 = await s.read16(t.metaLba + BigInt(t.slotBlocks), t.slotBlocks);
  const record = secondary.pickHeader(slot0, slot1);
  const L = record.layout;
  const hashes = secondary.decodeHashTable(await s.read16(L.hashLba, Number(L.hashBlocks)), record.progress.hashedExtents);
  const image = await s.read16(0n, Number(L.imageBlocks));
  return { record, hashes, image, s };
}

/** SHA-256 of each extent of `image`, computed here (independent of the agent). */
function extentHashes(image: Buffer, extentBytes: number): string[] {
  const out: string[] = [];
  for (let o = 0; o < image.length; o += extentBytes) out.push(sha(image.subarray(o, Math.min(o + extentBytes, image.length))));
  return out;
}

test('overwrite mode under host writes: the secondary is the image held at institution, hashes and metadata say so', async () => {
  const { r, writes, reference } = await backupUnderWrites({ mode: 'overwrite', label: 'nightly' }, 1301);
  expect(writes).toBeGreaterThan(0);
  expect(r).toMatchObject({ state: 'integrated', mode: 'overwrite', label: 'nightly', copy_path: 'xcopy', host_bytes: 0n, image_bytes: BigInt(SIZE), hashed_from: 'view', verified: false });
  expect(r.obf_records).toBeGreaterThan(0);
  const m = await readMetadata(2);
  try {
    expect(sha(m.image)).toBe(sha(reference));
    expect(m.record).toMatchObject({ state: 'integrated', mode: 'overwrite', label: 'nightly', backupId: r.backup_id });
    expect(m.record.snapshot.id).toBe(r.snapshot_id);
    expect(m.record.source.capacityBlocks).toBe(BigInt(SIZE / BS));
    expect(m.record.progress).toMatchObject({ copiedBlocks: BigInt(SIZE / BS), appliedRecords: r.obf_records, hashedExtents: m.record.layout.extents });
    expect(m.hashes.map((h) => h.toString('hex'))).toEqual(extentHashes(reference, m.record.layout.extentBytes));
  } finally {
    await m.s.close();
  }
  // nothing left armed or listed
  expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
});

test('append mode with --mark under host writes: image + log on the secondary, hashes of the image as of 602', async () => {
  const { r, reference } = await backupUnderWrites({ mode: 'append', mark: true, secondary: url(3), verify: true }, 1401);
  expect(r).toMatchObject({ state: 'log-appended', mode: 'append', hashed_from: 'view', verified: true });
  expect(r.phases.verify).toBeGreaterThan(0);
  expect(r.records_after_marker).toBeGreaterThanOrEqual(0);
  const m = await readMetadata(3);
  try {
    expect(m.record.state).toBe('log-appended');
    expect(m.record.snapshot.marked).toBe(true);
    expect(m.hashes.map((h) => h.toString('hex'))).toEqual(extentHashes(reference, m.record.layout.extentBytes));
    // The appended log is the OBF's used blocks, byte for byte.
    const used = m.record.log!.usedBlocks;
    const appended = await m.s.read16(m.record.layout.logLba, Number(used));
    expect(sha(appended)).toBe(sha(fs.readFileSync(file('obf.img')).subarray(0, Number(used) * BS)));
  } finally {
    await m.s.close();
  }
  expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);

  // 610: the log laid over the image inside the secondary; it is then the image held at 602.
  const i = await integrate({ secondary: url(3) });
  expect(i).toMatchObject({ backup_id: r.backup_id, already_integrated: false });
  expect(i.applied_now).toBe(i.records);
  const after = await readMetadata(3);
  try {
    expect(after.record.state).toBe('integrated');
    expect(after.record.progress.integratedRecords).toBe(i.records);
    expect(sha(after.image)).toBe(sha(reference));
  } finally {
    await after.s.close();
  }
  expect(await integrate({ secondary: url(3) })).toMatchObject({ already_integrated: true, applied_now: 0 });
  await expect(integrate({ secondary: url(2) })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
});

test('--verify: a secondary that does not read back as the image fails the backup (exit 14), marked failed', async () => {
  // The secondary's last image block is overwritten in its backing file once 608 is done,
  // synchronously, before the read-back starts: the view's hashes must catch it.
  const block = SIZE / BS - 1;
  const err = await backup({
    source: url(0),
    secondary: url(2),
    obf: url(1),
    mgmt,
    verify: true,
    log: pino({ level: 'silent' }),
    onEvent: (e) => {
      if (e.type !== 'phase' || e.phase !== 'verify') return;
      const fd = fs.openSync(file('sec.img'), 'r+');
      fs.writeSync(fd, crypto.randomBytes(BS), 0, BS, block * BS);
      fs.closeSync(fd);
    },
  }).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'ERR_BACKUP_VERIFY' });
  expect((err as Error).message).toMatch(/1 of 16 extents differ, the first extent 15 \(bytes 15728640\.\.16777216\); it is not a good backup/);
  const m = await readMetadata(2);
  try {
    expect(m.record.state).toBe('failed');
    expect(m.record.reason).toMatch(/does not read back/);
  } finally {
    await m.s.close();
  }
  expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
});

test('snapshot_hash: the image as of institution hashed in the target, however the source changes; refused once ended', async () => {
  const src = fs.readFileSync(file('src2.img'));
  const st = await mgmt.call<{ id: string }>('snapshot_institute', { source: `${IQN}/7`, obf: `${IQN}/1`, overwrite_obf: true });
  const s = await IscsiSession.connect(url(7));
  try {
    await s.write16(5n, crypto.randomBytes(3 * BS)); // changes after institution: the view keeps the old image
    const piece = 2048 + 5; // pieces not aligned to chunks; the last one shorter
    const blocks = src.length / BS;
    const r = await mgmt.call<{ block_size: number; hashes: string[] }>('snapshot_hash', { id: st.id, lba: 0, blocks: String(blocks), piece_blocks: piece });
    expect(r.block_size).toBe(BS);
    expect(r.hashes).toEqual(extentHashes(src, piece * BS));
    const part = await mgmt.call<{ hashes: string[] }>('snapshot_hash', { id: st.id, lba: '3', blocks: 10, piece_blocks: 4 });
    expect(part.hashes).toEqual(extentHashes(src.subarray(3 * BS, 13 * BS), 4 * BS));
    for (const [params, message] of [
      [{ id: st.id, lba: 0, blocks: blocks + 1, piece_blocks: 8 }, /not all in the image/],
      [{ id: st.id, lba: -1, blocks: 1, piece_blocks: 8 }, /lba must be a non-negative integer/],
      [{ id: st.id, lba: 0, blocks: 0, piece_blocks: 8 }, /at least 1/],
      [{ id: st.id, lba: 0, blocks: 8 }, /piece_blocks .* is required/],
      [{ id: st.id, lba: 0, blocks: 8, piece_blocks: 8, extra: 1 }, /unknown param "extra"/],
    ] as const) {
      await expect(mgmt.call('snapshot_hash', params)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(message) });
    }
    await mgmt.call('snapshot_terminate', { id: st.id });
    const ended = await mgmt.call('snapshot_hash', { id: st.id, lba: 0, blocks: 8, piece_blocks: 8 }).catch((e: unknown) => e);
    expect(ended).toMatchObject({ code: 'ERR_SNAPSHOT_STATE' });
    expect((ended as Error).message).toMatch(/is SEALED: its image can no longer be read/);
  } finally {
    await s.close();
    await mgmt.call('snapshot_terminate', { id: st.id }).catch(() => undefined);
    await mgmt.call('snapshot_forget', { id: st.id });
  }
  // the writes above reached the source (restore it for the tests after this one)
  fs.writeFileSync(file('src2.img'), src);
});

describe('refused before anything changes', () => {
  const usedBefore = () => sha(fs.readFileSync(file('used.img')));

  test.each<[string, () => Partial<BackupOptions>, string, RegExp]>([
    ['a secondary too small', () => ({ secondary: url(4) }), 'ERR_INVALID_ARG', /secondary LUN too small: \d+ blocks needed, 16384 present \(grow it/],
    ['a secondary holding other data', () => ({ secondary: url(5) }), 'ERR_SECONDARY_IN_USE', /holds data that is not a copy made by xcopy-agent: give a blank LUN, or --yes/],
    ['the source as the OBF', () => ({ obf: url(0) }), 'ERR_INVALID_ARG', /the OBF is the source LUN itself/],
    ['the source as the secondary', () => ({ secondary: url(0), yes: true }), 'ERR_INVALID_ARG', /the secondary is the source or the OBF/],
  ])('%s', async (_name, opts, code, message) => {
    const before = usedBefore();
    const err = await backup({ source: url(0), secondary: url(2), obf: url(1), mgmt, log: pino({ level: 'silent' }), ...opts() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect(err).toMatchObject({ code });
    expect((err as Error).message).toMatch(message);
    expect(usedBefore()).toBe(before);
    expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
  });

  test('a source the target does not serve: one line on how to put it behind the gateway', async () => {
    const otherPort = await freePort();
    const other = await TargetServer.start(quickConfig({ portal: `127.0.0.1:${otherPort}`, iqn: `${IQN}-other`, luns: ['memory:4M'] }), { log: pino({ level: 'silent' }) });
    try {
      const err = await backup({ source: `iscsi://127.0.0.1:${otherPort}/${IQN}-other/0`, secondary: url(2), obf: url(1), mgmt, log: pino({ level: 'silent' }) }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_NOT_SNAPSHOT_CAPABLE' });
      expect((err as Error).message).toMatch(/is not a LUN of the target at .*serve it through that target/);
    } finally {
      await other.stop();
    }
  });
});

test('a failing pre-hook: no snapshot, the secondary untouched', async () => {
  const before = sha(fs.readFileSync(file('sec.img')));
  const err = await backup({ source: url(7), secondary: url(2), obf: url(1), mgmt, preHook: 'echo flushing; exit 3', log: pino({ level: 'silent' }) }).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'ERR_HOOK_FAILED' });
  expect((err as Error).message).toMatch(/pre-hook "echo flushing; exit 3" exited with status 3/);
  expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
  expect(sha(fs.readFileSync(file('sec.img')))).toBe(before);
});

test('institute refused after the pre-hook ran: the post-hook still runs (nothing left frozen)', async () => {
  const thawed = file('thawed');
  // LUN 5 holds data: the target refuses it as an OBF
  const err = await backup({ source: url(7), secondary: url(2), obf: url(5), mgmt, preHook: 'true', postHook: `touch ${thawed}`, log: pino({ level: 'silent' }) }).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'ERR_INVALID_ARG' });
  expect((err as Error).message).toMatch(/holds data that is not an OBF/);
  expect(fs.existsSync(thawed)).toBe(true);
  expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
});

test('--keep-snapshot-on-abort: a failed backup leaves its snapshot ACTIVE for the administrator', async () => {
  const err = await backup({ source: url(7), secondary: url(2), obf: url(1), mgmt, postHook: 'exit 5', keepSnapshotOnAbort: true, log: pino({ level: 'silent' }) }).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'ERR_HOOK_FAILED' });
  const kept = await mgmt.call<Array<{ id: string; state: string }>>('snapshot_list');
  expect(kept).toHaveLength(1);
  expect(kept[0].state).toBe('ACTIVE');
  await mgmt.call('snapshot_terminate', { id: kept[0].id });
  await mgmt.call('snapshot_forget', { id: kept[0].id });
});

test('a failing post-hook ends and forgets the snapshot it followed', async () => {
  const before = sha(fs.readFileSync(file('sec.img')));
  const err = await backup({ source: url(7), secondary: url(2), obf: url(1), mgmt, postHook: 'test -n "$XCOPY_AGENT_SNAPSHOT_ID" && exit 4', log: pino({ level: 'silent' }) }).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'ERR_HOOK_FAILED' });
  expect((err as Error).message).toMatch(/exited with status 4/);
  expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
  expect(sha(fs.readFileSync(file('sec.img')))).toBe(before); // untouched: the hook failed before the copy
});

test('the OBF fills during the backup: INVALID, the backup fails with that reason, nothing left armed', async () => {
  const writers = [sourceWriter(1501), sourceWriter(1502), sourceWriter(1503)];
  let err: unknown;
  try {
    // 1 MiB of OBF for 16 MiB of source under three writers: it fills.
    err = await backup({ source: url(0), secondary: url(2), obf: url(6), mgmt, chunkBytes: 65536, log: pino({ level: 'silent' }) }).catch((e: unknown) => e);
  } finally {
    await Promise.all(writers.map((w) => w.stop()));
  }
  expect(err).toMatchObject({ code: 'ERR_SNAPSHOT_INVALID' });
  expect((err as Error).message).toMatch(/OBF_FULL/);
  expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
  const m = await readMetadata(2);
  try {
    expect(m.record.state).toBe('failed');
    expect(m.record.reason).toMatch(/INVALID .*OBF_FULL/);
  } finally {
    await m.s.close();
  }
});

test('the CLI: one summary record with --json; a bad flag value is one usage line', async () => {
  const bin = path.resolve(__dirname, '../../bin/xcopy-agent');
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(bin, args, { timeout: 120_000, env: { ...process.env, XCOPY_AGENT_MGMT: server.management!.url, XCOPY_AGENT_TOKEN_FILE: tokenFile } }, (e, stdout, stderr) =>
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr }),
      ),
    );
  const ok = await run(['backup', '--source', url(7), '--secondary', url(2), '--obf', url(1), '--label', 'cli', '--json']);
  expect(ok.code).toBe(0);
  const lines = ok.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(lines.at(-1)).toMatchObject({ type: 'summary', command: 'backup', state: 'integrated', label: 'cli', copy_path: 'xcopy' });
  expect(lines.some((l) => l.type === 'progress' && l.phase === 'copy')).toBe(true);
  const bad = await run(['backup', '--source', url(7), '--secondary', url(2), '--obf', url(1), '--mode', 'sideways']);
  expect(bad.code).toBe(1);
  expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  const small = await run(['backup', '--source', url(7), '--secondary', url(4), '--obf', url(1)]);
  expect(small.code).toBe(0); // 4 MiB source fits the 8 MiB secondary
  const hook = await run(['backup', '--source', url(7), '--secondary', url(2), '--obf', url(1), '--pre-hook', 'exit 9']);
  expect(hook.code).toBe(51);
  expect(hook.stderr.trim().split('\n')).toHaveLength(1);
});

describe('faults', () => {
  test('a second backup of a source with an active snapshot is refused with the first one\'s id', async () => {
    const first = await mgmt.call<{ id: string }>('snapshot_institute', { source: `${IQN}/7`, obf: `${IQN}/1` });
    try {
      const err = await backup({ source: url(7), secondary: url(2), obf: url(1), mgmt, log: pino({ level: 'silent' }) }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_SNAPSHOT_STATE' });
      expect((err as Error).message).toContain(first.id);
    } finally {
      await mgmt.call('snapshot_terminate', { id: first.id });
      await mgmt.call('snapshot_forget', { id: first.id });
    }
  });

  test('a refused management token: exit 41 before anything changes', async () => {
    const bad = new ManagementClient({ url: server.management!.url, token: 'x'.repeat(43) });
    const err = await backup({ source: url(7), secondary: url(2), obf: url(1), mgmt: bad, log: pino({ level: 'silent' }) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_MGMT_UNAUTHORIZED' });
    expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
  });

  test('an unreachable bridge: refused in preflight (exit 40)', async () => {
    const err = await backup({ source: url(7), secondary: url(2), obf: url(1), bridge: `iscsi://127.0.0.1:1/${IQN}/2`, mgmt, log: pino({ level: 'silent' }) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_ISCSI_UNREACHABLE' });
    expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
  });

  test('SIGINT during the pre-hook: the hook stopped, exit 130 at once, no snapshot, the secondary untouched', async () => {
    const before = sha(fs.readFileSync(file('sec.img')));
    const bin = path.resolve(__dirname, '../../bin/xcopy-agent');
    const { spawn } = await import('node:child_process');
    const child = spawn(bin, ['backup', '--source', url(7), '--secondary', url(2), '--obf', url(1), '--pre-hook', 'sleep 30', '--json', '--mgmt', server.management!.url, '--token-file', tokenFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no institute record: ${stdout}`)), 30_000);
      child.stdout!.on('data', (b: Buffer) => {
        stdout += b.toString();
        if (/"phase":"institute","event":"start"/.test(stdout)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const t0 = Date.now();
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const last = JSON.parse(stdout.trim().split('\n').at(-1)!) as { type: string; code: string };
    expect(last).toMatchObject({ type: 'error', code: 'ERR_INTERRUPTED' });
    expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
    expect(sha(fs.readFileSync(file('sec.img')))).toBe(before);
  });

  test('SIGINT once the snapshot is armed: exit 130, the snapshot ended and forgotten, the secondary marked failed (interrupted)', async () => {
    const bin = path.resolve(__dirname, '../../bin/xcopy-agent');
    const { spawn } = await import('node:child_process');
    const writer = sourceWriter(1601); // captures keep the copy phase busy
    const child = spawn(bin, ['backup', '--source', url(0), '--secondary', url(2), '--obf', url(1), '--json', '--mgmt', server.management!.url, '--token-file', tokenFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no snapshot record: ${stdout}`)), 30_000);
        child.stdout!.on('data', (b: Buffer) => {
          stdout += b.toString();
          if (/"snapshot_id":"[0-9a-f-]{36}"/.test(stdout)) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      child.kill('SIGINT');
      expect(await exited).toBe(130);
    } finally {
      await writer.stop();
    }
    const last = JSON.parse(stdout.trim().split('\n').at(-1)!) as { type: string; code: string };
    expect(last).toMatchObject({ type: 'error', code: 'ERR_INTERRUPTED' });
    expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
    const m = await readMetadata(2);
    try {
      expect(m.record.state).toBe('failed');
      expect(m.record.reason).toBe('interrupted');
    } finally {
      await m.s.close();
    }
  });
});

/**
 * kill -9 of the target while a snapshot is active and hosts write, then a restart with the same
 * command line: the session resumes from the OBF (captured-chunk map rebuilt from the log's valid
 * prefix) and the image — the source now with every OBF record laid over it, rebuilt here from
 * the files — still equals the source's backing file as the target copied it while writes were
 * held (test/helpers/hold-copy.js, preloaded into the target). An OBF that no longer belongs to the snapshot after a
 * crash makes it INVALID with reason TRACKING_GAP, never silently wrong.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { decodeSuperblock } from '../../src/obf/format';
import { scanLog } from '../../src/obf/log';
import { IscsiSession } from '../../src/initiator/session';
import { ManagementClient } from '../../src/mgmt';
import { freePort } from '../../src/peers/tgt';
import { removeDir, tempDir } from '../helpers/tmp';

const BIN = path.resolve(__dirname, '../../bin/xcopy-agent');
/** Copies the source's backing file while a snapshot's writes are held (the oracle). */
const HOLD_COPY = path.resolve(__dirname, '../helpers/hold-copy.js');
const IQN = 'iqn.2026-11.io.xcopy-agent.test:crash';
const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

let dir: string;
let port: number;
let mport: number;
const url = (lun: number) => `iscsi://127.0.0.1:${port}/${IQN}/${lun}`;

beforeAll(async () => {
  dir = tempDir('cow-crash');
  fs.writeFileSync(path.join(dir, 'src.img'), crypto.randomBytes(SIZE));
  fs.mkdirSync(path.join(dir, 'oracle'));
  port = await freePort();
  mport = await freePort();
});
afterAll(() => removeDir(dir));

/** Starts `xcopy-agent target` and resolves when it listens (portal and management API). */
async function startTarget(): Promise<{ child: ChildProcess; client: ManagementClient }> {
  const child = spawn(
    process.execPath,
    [
      '--require', HOLD_COPY, BIN,
      'target', '--json',
      '--portal', `127.0.0.1:${port}`, '--iqn', IQN,
      '--lun', `file:${path.join(dir, 'src.img')}`,
      '--lun', `file:${path.join(dir, 'obf.img')}:64M`,
      '--state-dir', path.join(dir, 'state'),
      '--mgmt', `127.0.0.1:${mport}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XCOPY_TEST_HOLD_COPY_DIR: path.join(dir, 'oracle'), XCOPY_AGENT_LOG_LEVEL: 'warn' } },
  );
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('"event":"management"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`target exited (${code}): ${err}`)));
  });
  const token = fs.readFileSync(path.join(dir, 'state', 'mgmt.token'), 'utf8').trim();
  return { child, client: new ManagementClient({ url: `http://127.0.0.1:${mport}`, token }) };
}

/**
 * The status of snapshot `id` once the restarted target has resumed it (in the background: until
 * then status says it is resuming, and its source answers NOT READY, becoming ready).
 */
async function statusWhenResumed<T>(client: ManagementClient, id: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await client.call<T>('snapshot_status', { id });
    } catch (err) {
      if (!/is resuming from its OBF after a restart/.test((err as Error).message) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

function kill9(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Writes random blocks until told to stop or the target dies; errors after the kill are expected. */
function hammer(s: IscsiSession) {
  let stopped = false;
  let ok = 0;
  const done = (async () => {
    while (!stopped) {
      const n = [1, 8, 128, 700][crypto.randomInt(4)];
      try {
        await s.write16(BigInt(crypto.randomInt(SIZE / 512 - n)), crypto.randomBytes(n * 512));
        ok++;
      } catch {
        return;
      }
    }
  })();
  return { stop: async () => { stopped = true; await done; return ok; } };
}

/**
 * The image as of institution, rebuilt from the files: source now + every valid OBF record over
 * it; the records, and the chunks of `chunkBlocks` blocks they cover (a record is one chunk or a
 * run of adjacent chunks).
 */
async function rebuilt(chunkBlocks = 64n): Promise<{ image: Buffer; records: number; chunks: number }> {
  const image = fs.readFileSync(path.join(dir, 'src.img'));
  const fd = fs.openSync(path.join(dir, 'obf.img'), 'r');
  try {
    const read = async (lba: bigint, n: number) => {
      const b = Buffer.alloc(n * 512);
      fs.readSync(fd, b, 0, b.length, Number(lba) * 512);
      return b;
    };
    const sb = decodeSuperblock(await read(0n, 1));
    const scan = await scanLog(read, sb);
    let chunks = 0;
    for (const r of scan.records) {
      (await read(r.dataLba, r.dataBlocks)).copy(image, Number(r.sourceLba) * 512);
      chunks += Number((r.sourceLba + BigInt(r.sourceBlocks) - 1n) / chunkBlocks - r.sourceLba / chunkBlocks) + 1;
    }
    return { image, records: scan.records.length, chunks };
  } finally {
    fs.closeSync(fd);
  }
}

test('kill -9 during writes, restart: the snapshot resumes from its OBF and the image is still exact', async () => {
  let t = await startTarget();
  let hosts = await Promise.all([0, 1].map(() => IscsiSession.connect(url(0))));
  let writers = hosts.map(hammer);
  let child = t.child;
  try {
    await new Promise((r) => setTimeout(r, 50));
    const st = await t.client.call<{ id: string }>('snapshot_institute', { source: `${IQN}/0`, obf: `${IQN}/1`, chunk_bytes: 32768 });
    const oracle = sha(fs.readFileSync(path.join(dir, 'oracle', `${st.id}.img`)));
    await new Promise((r) => setTimeout(r, 400));
    const before = await t.client.call<{ records: number }>('snapshot_status', { id: st.id });
    expect(before.records).toBeGreaterThan(0);
    await kill9(child);
    // close() settles the commands the dead target will never answer
    await Promise.all(hosts.map((h) => h.close().catch(() => undefined)));
    await Promise.all(writers.map((w) => w.stop()));
    // the image from the files right after the crash is already exact
    const atCrash = await rebuilt();
    expect(sha(atCrash.image)).toBe(oracle);

    t = await startTarget();
    child = t.child;
    const resumed = await statusWhenResumed<{ state: string; records: number; captured_chunks: number }>(t.client, st.id);
    expect(resumed.state).toBe('ACTIVE');
    expect(resumed.records).toBeGreaterThanOrEqual(before.records);
    // the chunk map rebuilt from the log: every chunk of every valid record, and nothing else
    expect(resumed.records).toBe(atCrash.records);
    expect(resumed.captured_chunks).toBe(atCrash.chunks);
    hosts = await Promise.all([0, 1].map(() => IscsiSession.connect(url(0))));
    writers = hosts.map(hammer);
    await new Promise((r) => setTimeout(r, 300));
    const ops = await Promise.all(writers.map((w) => w.stop()));
    expect(ops.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    const sealed = await t.client.call<{ state: string; records: number }>('snapshot_terminate', { id: st.id });
    expect(sealed.state).toBe('SEALED');
    await Promise.all(hosts.map((h) => h.close()));
    const r = await rebuilt();
    expect(r.records).toBe(sealed.records);
    expect(sha(r.image)).toBe(oracle);
  } finally {
    await Promise.all(writers.map((w) => w.stop().catch(() => 0)));
    if (child.exitCode === null) await kill9(child);
  }
});

test('after a crash, an OBF that no longer holds the snapshot makes it INVALID with reason TRACKING_GAP', async () => {
  let t = await startTarget();
  try {
    const st = await t.client.call<{ id: string }>('snapshot_institute', { source: `${IQN}/0`, obf: `${IQN}/1` });
    const h = await IscsiSession.connect(url(0));
    await h.write16(0n, crypto.randomBytes(4096));
    await kill9(t.child);
    await h.close().catch(() => undefined);
    // someone reused the OBF while the target was down
    const fd = fs.openSync(path.join(dir, 'obf.img'), 'r+');
    fs.writeSync(fd, Buffer.alloc(4096), 0, 4096, 0);
    fs.closeSync(fd);
    t = await startTarget();
    const s = await statusWhenResumed<{ state: string; reason: string }>(t.client, st.id);
    expect(s).toMatchObject({ state: 'INVALID', reason: 'TRACKING_GAP' });
    // and writes to the source go on
    const h2 = await IscsiSession.connect(url(0));
    await h2.write16(8n, crypto.randomBytes(512));
    await h2.close();
  } finally {
    if (t.child.exitCode === null) await kill9(t.child);
  }
});

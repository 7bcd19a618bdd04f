/**
 * `xcopy-agent copy`: through the project's copy manager (EXTENDED COPY proven by the target's
 * counters) and, against tgt (no copy manager, 3PC=0), through the documented fallback — or a
 * clear failure with --no-fallback. Results checked by hash against the backing files.
 */
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { Tgt, freePort } from '../../src/peers/tgt';
import { quickConfig } from '../../src/target/config';
import { TargetServer } from '../../src/target/server';
import { removeDir, tempDir, waitUntil } from '../helpers/tmp';
import { IscsiSession } from '../../src/initiator/session';
import { xcopyCopy } from '../../src/agent/xcopy-copy';
import { copyManagerOf } from '../../src/xcopy';

const BIN = path.resolve(__dirname, '../../bin/xcopy-agent');
const MiB = 1024 * 1024;

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
let dir: string;

beforeAll(() => {
  dir = tempDir('copy-tool');
});
afterAll(() => removeDir(dir));

test('copy through the project copy manager: EXTENDED COPY, byte for byte, ranges honoured', async () => {
  const src = path.join(dir, 'ours-src.img');
  const dst = path.join(dir, 'ours-dst.img');
  fs.writeFileSync(src, crypto.randomBytes(24 * MiB));
  const port = await freePort();
  const iqn = 'iqn.2026-11.io.xcopy-agent.test:copy';
  const server = await TargetServer.start(quickConfig({ portal: `127.0.0.1:${port}`, iqn, luns: [`file:${src}`, `file:${dst}:24M`] }), {
    log: pino({ level: 'silent' }),
  });
  try {
    const url = (n: number) => `iscsi://127.0.0.1:${port}/${iqn}/${n}`;
    const r = await cli(['copy', '--json', '--from', url(0), '--to', url(1)]);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(summary).toMatchObject({ type: 'summary', path: 'xcopy', host_bytes: '0', xcopy_bytes: String(24 * MiB) });
    expect(server.opcodeCounts.get(0x83) ?? 0).toBeGreaterThan(0);
    const part = await cli(['copy', '--from', url(0), '--to', url(1), '--skip', '100', '--seek', '7', '--count', '300']);
    expect(part.code).toBe(0);
    expect(part.stdout).toMatch(/300 blocks of 512 bytes .* by EXTENDED COPY/);
    await server.stop();
    const s = fs.readFileSync(src);
    const d = fs.readFileSync(dst);
    expect(sha(d.subarray(7 * 512, 307 * 512))).toBe(sha(s.subarray(100 * 512, 400 * 512)));
    expect(sha(d.subarray(307 * 512))).toBe(sha(s.subarray(307 * 512)));
  } finally {
    await server.stop();
  }
});

test('against tgt (no copy manager) the copy falls back to host I/O; --no-fallback fails clearly', async () => {
  const tgt = await Tgt.start({ dir, luns: [{ size: 8 * MiB }, { size: 8 * MiB }] });
  try {
    const data = crypto.randomBytes(8 * MiB);
    fs.writeFileSync(tgt.lunPaths[0], data);
    const refused = await cli(['copy', '--no-fallback', '--from', tgt.url(1), '--to', tgt.url(2)]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/EXTENDED COPY not possible: .*3PC=0.*drop --no-fallback/);
    expect(sha(fs.readFileSync(tgt.lunPaths[1]))).not.toBe(sha(data));
    const r = await cli(['copy', '--json', '--from', tgt.url(1), '--to', tgt.url(2)]);
    expect(r.code).toBe(0);
    // NDJSON: the copy's progress records (the phase's start first), then the summary.
    const records = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records[0]).toEqual({ type: 'progress', phase: 'copy', event: 'start' });
    expect(records.slice(1, -1).every((x) => x.type === 'progress' && x.path === 'host')).toBe(true);
    expect(records[records.length - 1]).toMatchObject({ type: 'summary', path: 'host', xcopy_bytes: '0', host_bytes: String(8 * MiB) });
    expect(sha(fs.readFileSync(tgt.lunPaths[1]))).toBe(sha(data));
  } finally {
    await tgt.stop();
  }
});

describe('tgt LUNs as copy endpoints behind the project target (remote stores)', () => {
  const iqn = 'iqn.2026-11.io.xcopy-agent.test:bridge';
  let tgt: Tgt;
  let server: TargetServer;
  let port: number;
  const url = (n: number) => `iscsi://127.0.0.1:${port}/${iqn}/${n}`;
  const size = 96 * MiB;

  beforeAll(async () => {
    tgt = await Tgt.start({ dir, luns: [{ size }, { size }, { size }, { size: 1024 * MiB }, { size: 1024 * MiB }] });
    port = await freePort();
    server = await TargetServer.start(quickConfig({ portal: `127.0.0.1:${port}`, iqn, luns: [tgt.url(1), tgt.url(2), tgt.url(3), tgt.url(4), tgt.url(5)] }), {
      log: pino({ level: 'silent' }),
    });
  });
  afterAll(async () => {
    await server?.stop();
    await tgt?.stop();
  });
  const cm = () => copyManagerOf(server.model.nodes.get(iqn)!.tpgs[0].luns.get(0)!)!;

  test('copy between two tgt LUNs through our copy manager: EXTENDED COPY, byte for byte against tgt backing files, host I/O served meanwhile', async () => {
    const data = crypto.randomBytes(size);
    fs.writeFileSync(tgt.lunPaths[0], data);
    const before = cm().counters.bytes;
    const host = await IscsiSession.connect(url(0));
    let hostReads = 0;
    let copying = true;
    const reader = (async () => {
      // a host reading the source while the bridge copies it: every answer is right
      while (copying) {
        const lba = BigInt(crypto.randomInt(0, size / 512 - 8));
        const got = await host.read16(lba, 8);
        expect(got.equals(data.subarray(Number(lba) * 512, Number(lba) * 512 + 4096))).toBe(true);
        hostReads++;
      }
    })();
    const progress: bigint[] = [];
    const r = await xcopyCopy({ from: url(0), to: url(1), progressIntervalMs: 20, onProgress: (d) => progress.push(d) }).finally(() => {
      copying = false;
    });
    await reader;
    await host.close();
    expect(r).toMatchObject({ path: 'xcopy', host_bytes: 0n, xcopy_bytes: BigInt(size) });
    expect(cm().counters.bytes - before).toBe(BigInt(size));
    expect(hostReads).toBeGreaterThan(0);
    expect(progress[progress.length - 1]).toBe(BigInt(size / 512));
    // one command covers the whole copy, so any value between 0 and the end came from COPY STATUS
    expect(progress.some((d) => d > 0n && d < BigInt(size / 512))).toBe(true);
    expect(sha(fs.readFileSync(tgt.lunPaths[1]))).toBe(sha(data));
  });

  test('an interrupted copy stops the copy manager too (COPY OPERATION ABORT on the wire) and reports ERR_INTERRUPTED', async () => {
    fs.writeFileSync(tgt.lunPaths[0], crypto.randomBytes(size));
    const abortedBefore = cm().counters.aborted;
    const stop = new AbortController();
    // Small segments and a slow poll: the abort lands while commands are in flight.
    const err = await xcopyCopy({
      from: url(0),
      to: url(2),
      progressIntervalMs: 10,
      signal: stop.signal,
      onProgress: (d) => {
        if (d > 0n) stop.abort();
      },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_INTERRUPTED' });
    expect((err as Error).message).toMatch(/interrupted after \d+ of \d+ blocks/);
    await waitUntil(() => cm().runningCopies === 0, 10_000, 'the copies to end');
    expect(cm().counters.aborted).toBeGreaterThan(abortedBefore);
  });

  test('Ctrl-C on `copy` exits 130 with one line, after stopping the copy manager', async () => {
    const abortedBefore = cm().counters.aborted;
    // 1 GiB (sparse): long enough to be interrupted after the first progress line
    const child = spawn(BIN, ['copy', '--progress', '--from', url(3), '--to', url(4)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve) =>
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/copy: \d/.test(stderr)) resolve();
      }),
    );
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/copy interrupted after \d+ of \d+ blocks/);
    await waitUntil(() => cm().runningCopies === 0, 10_000, 'the copies to end');
    expect(cm().counters.aborted).toBeGreaterThan(abortedBefore);
  });
});

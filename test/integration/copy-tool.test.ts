/**
 * `xcopy-agent copy`: through the project's copy manager (EXTENDED COPY proven by the target's
 * counters) and, against tgt (no copy manager, 3PC=0), through the documented fallback — or a
 * clear failure with --no-fallback. Results checked by hash against the backing files.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { Tgt, freePort } from '../../src/peers/tgt';
import { quickConfig } from '../../src/target/config';
import { TargetServer } from '../../src/target/server';
import { removeDir, tempDir } from '../helpers/tmp';

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
    expect(JSON.parse(r.stdout.trim())).toMatchObject({ path: 'host', xcopy_bytes: '0', host_bytes: String(8 * MiB) });
    expect(sha(fs.readFileSync(tgt.lunPaths[1]))).toBe(sha(data));
  } finally {
    await tgt.stop();
  }
});

/**
 * The built CLI (bin/xcopy-agent, as a user runs it) against a real tgt: output, --json records,
 * one-line errors and documented exit statuses. `make test` builds dist/ before running this.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ExitStatus } from '../../src/errors';
import { Tgt } from '../../src/peers/tgt';
import { removeDir, tempDir } from '../helpers/tmp';

const BIN = path.resolve(__dirname, '../../bin/xcopy-agent');
let dir: string;
let tgt: Tgt;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(BIN, args, { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

beforeAll(async () => {
  expect(fs.existsSync(path.resolve(__dirname, '../../dist/src/cli/main.js'))).toBe(true); // built by make setup
  dir = tempDir('cli');
  tgt = await Tgt.start({ dir, luns: [{ size: 32 * 1024 * 1024 }] });
});

afterAll(async () => {
  await tgt?.stop();
  if (dir) removeDir(dir);
});

describe('xcopy-agent inquire', () => {
  test('prints identity, designators and capacity', async () => {
    const r = await cli(['inquire', tgt.url(1)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Vendor\s+IET$/m);
    expect(r.stdout).toMatch(/^Capacity\s+65536 blocks x 512 bytes = 33554432 bytes/m);
    expect(r.stdout).toMatch(/^Designators\s+\S+/m);
    expect(r.stdout).toMatch(/naa\.[0-9a-f]+/);
    expect(r.stdout).toMatch(/^3PC\s+no$/m);
    expect(r.stderr).toBe('');
  });

  test('--json prints one summary record', async () => {
    const r = await cli(['inquire', '--json', tgt.url(1)]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0]);
    expect(rec).toMatchObject({ type: 'summary', command: 'inquire', vendor: 'IET', block_size: 512, capacity_blocks: '65536', three_pc: false });
    expect(rec.designators.some((d: { designator_type: number }) => d.designator_type === 3)).toBe(true);
  });

  test.each<[string, () => string, number, RegExp]>([
    ['no such LUN', () => tgt.url(7), ExitStatus.NO_SUCH_LUN, /no LUN 7 .*the target has LUN 0, 1/],
    ['unreachable portal', () => `iscsi://127.0.0.1:1/${tgt.iqn}/1`, ExitStatus.UNREACHABLE, /cannot reach iSCSI portal 127\.0\.0\.1:1: .*refused/],
    ['login refused', () => `iscsi://127.0.0.1:${tgt.port}/iqn.2026-11.io.example:none/1`, ExitStatus.LOGIN_REFUSED, /login to .* refused: Target not found/],
    ['malformed URL', () => 'iscsi://127.0.0.1/iqn.x', ExitStatus.USAGE, /invalid iSCSI URL .*no LUN/],
  ])('%s: one line on stderr and a documented exit status', async (_n, url, status, message) => {
    const r = await cli(['inquire', url()]);
    expect(r.code).toBe(status);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(r.ms).toBeLessThan(15_000);
  });

  test('--json error record carries code and exit status', async () => {
    const r = await cli(['inquire', '--json', tgt.url(7)]);
    expect(r.code).toBe(ExitStatus.NO_SUCH_LUN);
    expect(JSON.parse(r.stdout)).toMatchObject({ type: 'error', code: 'ERR_ISCSI_NO_SUCH_LUN', exit_status: ExitStatus.NO_SUCH_LUN });
  });

  test('a password in the URL is never printed', async () => {
    const r = await cli(['inquire', `iscsi://user%hunter2@127.0.0.1:1/${tgt.iqn}/1`]);
    expect(r.code).toBe(ExitStatus.UNREACHABLE);
    expect(r.stdout + r.stderr).not.toContain('hunter2');
  });

  test('usage errors exit 1', async () => {
    const r = await cli(['inquire']);
    expect(r.code).toBe(ExitStatus.USAGE);
    expect(r.stderr).toMatch(/Not enough non-option arguments/);
    const u = await cli(['frobnicate']);
    expect(u.code).toBe(ExitStatus.USAGE);
  });
});

describe('xcopy-agent discover', () => {
  test('lists the target and its portal', async () => {
    const r = await cli(['discover', `iscsi://127.0.0.1:${tgt.port}`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${tgt.iqn}  127.0.0.1:${tgt.port}`);
  });
});

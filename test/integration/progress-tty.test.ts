/**
 * `copy` on a terminal (README "Progress", src/cli/progress.ts): the command runs under a
 * pseudo-terminal made by util-linux `script` (Debian's bsdutils, an essential package), its
 * stdout and stderr the terminal as for a person at a shell; the terminal's output is read back raw:
 * - through the copy manager: the phase's label, bar lines rewritten in place (carriage return,
 *   erase line) with the percent, bytes done of the total, rate, ETA and path XCOPY, a last
 *   line with the time taken, then the summary; the destination equals the source (SHA-256);
 * - through this host (source and destination on two targets: the destination's copy manager
 *   cannot reach the source): path HOST; SIGUSR1 prints one status line between two bars and
 *   the bar is drawn again after it; Ctrl-C then stops the copy (exit 130).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { freePort } from '../../src/peers/tgt';
import { quickConfig } from '../../src/target/config';
import { TargetServer } from '../../src/target/server';
import { removeDir, tempDir, waitUntil } from '../helpers/tmp';

const BIN = path.resolve(__dirname, '../../bin/xcopy-agent');
const IQN = 'iqn.2026-12.io.xcopy-agent.test:tty';
const MiB = 1024 * 1024;
const quiet = pino({ level: 'silent' });
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

let dir: string;
beforeAll(() => {
  dir = tempDir('progress-tty');
});
afterAll(() => removeDir(dir));

/** `xcopy-agent ARGS` on a pseudo-terminal of `script`'s; `output()` is what the terminal got. */
function onTerminal(args: string[]): { child: ChildProcess; output(): string; exited: Promise<number | null> } {
  const cmd = ['exec', process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ').replace(/^'exec'/, 'exec');
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SHELL: '/bin/sh', COLUMNS: '200', LINES: '40' } });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** The pid of the command `script` runs (its only child: the shell exec'd it). */
function commandPid(scriptPid: number): number {
  const kids = fs.readFileSync(`/proc/${scriptPid}/task/${scriptPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  expect(kids).toHaveLength(1);
  return Number(kids[0]);
}

const BAR_LINE = String.raw`copy \[[#-]{20}\] +\d+\.\d%  \d+(\.\d)? (B|KiB|MiB|GiB) of (64\.0 MiB|4\.0 GiB)  \d+(\.\d)? (B|KiB|MiB|GiB)/s  (ETA|done in) \d\d:\d\d`;

test('copy on a terminal: a bar rewritten in place (percent, bytes of total, rate, ETA, XCOPY), a last line, the summary', async () => {
  const src = path.join(dir, 'src.img');
  const dst = path.join(dir, 'dst.img');
  fs.writeFileSync(src, crypto.randomBytes(64 * MiB));
  const port = await freePort();
  const server = await TargetServer.start(quickConfig({ portal: `127.0.0.1:${port}`, iqn: IQN, luns: [`file:${src}`, `file:${dst}:64M`] }), { log: quiet });
  try {
    const url = (n: number) => `iscsi://127.0.0.1:${port}/${IQN}/${n}`;
    const t = onTerminal(['copy', '--from', url(0), '--to', url(1)]);
    expect(await t.exited).toBe(0);
    const text = t.output();
    // The label, then bar lines each drawn over the one before (no newline between them).
    expect(text.startsWith(`copy ${url(0)} → ${url(1)}\r\n\r\x1b[K`)).toBe(true);
    const bars = text.split('\r\x1b[K').slice(1);
    expect(bars.length).toBeGreaterThanOrEqual(2);
    for (const b of bars.slice(0, -1)) expect(b).toMatch(new RegExp(`^${BAR_LINE}  XCOPY$`));
    // The last line stays: the whole copy, the time it took, then a newline and the summary.
    const last = bars[bars.length - 1];
    expect(last).toMatch(new RegExp(String.raw`^copy \[#{20}\] 100\.0%  64\.0 MiB of 64\.0 MiB  \d+(\.\d)? (MiB|GiB)/s  done in \d\d:\d\d  XCOPY\r\n`));
    expect(last).toMatch(/\r\ncopy: 131072 blocks of 512 bytes in [\d.]+ s — 64\.0 MiB by EXTENDED COPY \(\d+ commands\), 0\.0 MiB through this host\r\n$/);
  } finally {
    await server.stop();
  }
  expect(sha(fs.readFileSync(dst))).toBe(sha(fs.readFileSync(src)));
}, 120_000);

test('SIGUSR1 on a copy through this host: one status line between two bars, the bar drawn again; Ctrl-C stops it', async () => {
  const [pa, pb] = [await freePort(), await freePort()];
  // A sparse file (its NAA from its inode) to a memory LUN: zeros read, no space taken on either side.
  const a = await TargetServer.start(quickConfig({ portal: `127.0.0.1:${pa}`, iqn: `${IQN}a`, luns: [`file:${path.join(dir, 'big.img')}:4G`] }), { log: quiet });
  const b = await TargetServer.start(quickConfig({ portal: `127.0.0.1:${pb}`, iqn: `${IQN}b`, luns: ['memory:4G'] }), { log: quiet });
  let t: ReturnType<typeof onTerminal> | undefined;
  try {
    t = onTerminal(['copy', '--from', `iscsi://127.0.0.1:${pa}/${IQN}a/0`, '--to', `iscsi://127.0.0.1:${pb}/${IQN}b/0`]);
    const out = t.output;
    await waitUntil(() => new RegExp(`\\r\\x1b\\[K${BAR_LINE}  HOST`).test(out()), 30_000, 'a bar of the host copy');
    const pid = commandPid(t.child.pid!);
    const before = out().length;
    process.kill(pid, 'SIGUSR1');
    const status = /\r\x1b\[Kcopy: \d+\.\d%, \d+(\.\d)? (B|KiB|MiB|GiB) of 4\.0 GiB, \d+(\.\d)? (B|KiB|MiB|GiB)\/s, ETA \d\d:\d\d, HOST; \d\d:\d\d elapsed\r\n\r\x1b\[Kcopy \[/;
    await waitUntil(() => status.test(out().slice(before)), 10_000, 'the status line and the bar after it');
    expect(out()).not.toContain('Debugger listening');
    process.kill(pid, 'SIGINT');
    expect(await t.exited).toBe(130);
    expect(out()).toMatch(/copy interrupted after \d+ of 8388608 blocks/);
  } finally {
    if (t && t.child.exitCode === null) t.child.kill('SIGKILL');
    await a.stop();
    await b.stop();
  }
}, 120_000);

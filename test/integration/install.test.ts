/**
 * `make install` / `make uninstall` (README "Operating it"): into a scratch DESTDIR, the installed
 * command runs on its own (its version, `target --config` serving a LUN, `inquire` of it, both by
 * the installed program, not this checkout's); the systemd unit passes `systemd-analyze verify`
 * (installed under a scratch PREFIX, so that the paths it names exist); uninstall removes what
 * install put there.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { promisify } from 'node:util';
import { freePort } from '../../src/peers/tgt';
import { removeDir, tempDir } from '../helpers/tmp';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let dir: string;
beforeAll(() => {
  dir = tempDir('install');
});
afterAll(() => removeDir(dir));

test('make install into a DESTDIR: the installed program serves a LUN from a config and inquires it; uninstall removes it', async () => {
  const dest = path.join(dir, 'dest');
  await run('make', ['-s', 'install', `DESTDIR=${dest}`], { cwd: ROOT, timeout: 600_000 });
  const prefix = path.join(dest, 'usr/local');
  const bin = path.join(prefix, 'bin/xcopy-agent');
  expect(fs.readlinkSync(bin)).toBe('../lib/xcopy-agent/bin/xcopy-agent');
  expect(fs.existsSync(path.join(prefix, 'lib/xcopy-agent/native/build/Release/xcopy_native.node'))).toBe(true);
  expect(fs.existsSync(path.join(prefix, 'lib/xcopy-agent/node_modules/better-sqlite3'))).toBe(true);
  // Only production packages: no test runner in the install.
  expect(fs.existsSync(path.join(prefix, 'lib/xcopy-agent/node_modules/jest'))).toBe(false);
  const unit = fs.readFileSync(path.join(prefix, 'lib/systemd/system/xcopy-agent-target.service'), 'utf8');
  expect(unit).toContain('ExecStart=/usr/local/bin/xcopy-agent target --config /etc/xcopy-agent/target.json');
  expect((await run(bin, ['--version'], { cwd: dir })).stdout.trim()).toBe(VERSION);

  // The installed target, from a saveconfig.json, and the installed inquire of its LUN.
  const port = await freePort();
  const iqn = 'iqn.2026-12.io.xcopy-agent.test:install';
  const config = path.join(dir, 'target.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      storage_objects: [{ name: 'disk0', plugin: 'fileio', dev: path.join(dir, 'disk0.img'), size: '8M' }],
      targets: [{ wwn: iqn, tpgs: [{ tag: 1, portals: [{ ip_address: '127.0.0.1', port }], luns: [{ index: 0, storage_object: '/backstores/fileio/disk0' }] }] }],
    }),
  );
  const target = spawn(bin, ['target', '--config', config, '--json'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  try {
    await new Promise<void>((resolve, reject) => {
      readline.createInterface({ input: target.stdout! }).on('line', (l) => {
        if ((JSON.parse(l) as { event?: string }).event === 'listening') resolve();
      });
      target.on('exit', (code) => reject(new Error(`the installed target exited ${code}`)));
    });
    const inq = JSON.parse((await run(bin, ['inquire', `iscsi://127.0.0.1:${port}/${iqn}/0`, '--json'], { cwd: dir, env: { ...process.env } })).stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(inq).toMatchObject({ type: 'summary', capacity_bytes: String(8 * 1024 * 1024), block_size: 512 });
  } finally {
    target.kill('SIGTERM');
    await new Promise((r) => target.once('close', r));
  }
  expect(target.exitCode).toBe(0);

  await run('make', ['-s', 'uninstall', `DESTDIR=${dest}`], { cwd: ROOT });
  expect(fs.existsSync(bin)).toBe(false);
  expect(fs.existsSync(path.join(prefix, 'lib/xcopy-agent'))).toBe(false);
  expect(fs.existsSync(path.join(prefix, 'lib/systemd/system/xcopy-agent-target.service'))).toBe(false);
}, 600_000);

test('the systemd unit verifies (systemd-analyze verify), installed under a PREFIX whose paths exist', async () => {
  const prefix = path.join(dir, 'prefix/usr');
  await run('bash', [path.join(ROOT, 'scripts/install.sh'), 'install'], { cwd: ROOT, env: { ...process.env, PREFIX: prefix, DESTDIR: '' }, timeout: 600_000 });
  const unit = path.join(prefix, 'lib/systemd/system/xcopy-agent-target.service');
  const r = await run('systemd-analyze', ['verify', '--man=no', unit]).catch((e: { stdout: string; stderr: string; code: number }) => e);
  expect({ code: (r as { code?: number }).code ?? 0, stderr: r.stderr.trim() }).toEqual({ code: 0, stderr: '' });
  // Hardening a storage daemon needs, as the unit states it.
  const text = fs.readFileSync(unit, 'utf8');
  for (const line of ['Type=notify', 'ExecReload=/bin/kill -HUP $MAINPID', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'Restart=on-failure', 'StateDirectory=xcopy-agent']) expect(text).toContain(line);
}, 600_000);

test('under a service manager the target says READY=1 once it serves, survives SIGHUP without --config, says STOPPING=1 on SIGTERM (sd_notify)', async () => {
  // The service manager's end of $NOTIFY_SOCKET: netcat receiving unix datagrams (-d: stdin is not read).
  const socket = path.join(dir, 'notify.sock');
  const nc = spawn('nc', ['-dlkUu', socket], { stdio: ['ignore', 'pipe', 'pipe'] });
  let got = '';
  nc.stdout!.on('data', (d: Buffer) => (got += d.toString()));
  const until = async (what: string) => {
    for (let i = 0; i < 200 && !got.includes(what); i++) await new Promise((r) => setTimeout(r, 50));
    expect(got).toContain(what);
  };
  try {
    for (let i = 0; i < 100 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 20));
    const port = await freePort();
    const target = spawn(path.join(ROOT, 'bin/xcopy-agent'), ['target', '--portal', `127.0.0.1:${port}`, '--iqn', 'iqn.2026-12.io.xcopy-agent.test:notify', '--lun', 'memory:1M'], {
      stdio: 'ignore',
      env: { ...process.env, NOTIFY_SOCKET: socket },
    });
    await until('READY=1');
    expect(got).toContain(`MAINPID=${target.pid}`);
    expect(got).toMatch(/STATUS=serving 1 target\(s\) on 127\.0\.0\.1:\d+/);
    // SIGHUP without --config (nothing to reload) is logged, and the target keeps serving.
    target.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 500));
    expect(target.exitCode).toBeNull();
    const closed = new Promise((r) => target.once('close', r));
    target.kill('SIGTERM');
    await until('STOPPING=1');
    await closed;
    expect(target.exitCode).toBe(0);
  } finally {
    nc.kill();
  }
}, 60_000);

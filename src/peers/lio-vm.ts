/**
 * A real Linux LIO target for the tests and benches (docs/lio.md): Debian's own kernel booted under QEMU with
 * TCG (never KVM unless XCOPY_LIO_ACCEL=kvm: a /dev/kvm that opens can still hang a nested
 * guest), from the base initramfs of scripts/lio-vm-build.sh plus a second cpio archive holding
 * /etc/lio-config.sh — the files of targetcli-configs/ translated to configfs writes
 * (test/lio/configfs.ts). The backing files live in the guest's RAM (its initramfs root).
 *
 * Network: QEMU user networking with restrict=on (the guest reaches nothing outside) and two
 * forwards, 127.0.0.1:PORT → the guest's 3260 and 127.0.0.1:CONTROL → a shell per connection in
 * the guest (busybox `nc -ll -e`), through which a test copies and hashes the backing files
 * themselves — an oracle independent of every iSCSI path. Clients use direct iscsi://127.0.0.1:PORT/IQN/LUN URLs
 * only, never SendTargets: LIO advertises the guest's own 10.0.2.15, which nothing here may
 * connect to.
 *
 * Boot failure (a panic, an init that fails, a marker that never comes) rejects within
 * bootTimeoutMs with the console's tail; a machine without QEMU rejects saying so. The suite
 * fails then — it is never skipped.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { saveconfigToConfigfs } from './lio-configfs';
import { freePort } from './tgt';

const run = promisify(execFile);

/** The repository (this file runs from src/peers/ under ts-jest, from dist/src/peers/ when built). */
function repoRoot(): string {
  for (let dir = __dirname, i = 0; i < 5; i++, dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'scripts', 'lio-vm-build.sh'))) return dir;
  }
  throw new Error(`LIO VM: no scripts/lio-vm-build.sh above ${__dirname}`);
}

const REPO = repoRoot();
export const TARGETCLI_CONFIGS = path.join(REPO, 'targetcli-configs');
const QEMU = 'qemu-system-x86_64';
/** The guest port of the control shell (busybox nc, started after the configuration). */
const CONTROL_PORT = 2323;
/** The line the control shell ends each answer with (the command's exit status follows). */
const STATUS_MARK = '\nLIO-CTL-STATUS ';

export interface LioVmOptions {
  /** saveconfig.json files applied in order (names relative to targetcli-configs/ or absolute). */
  configs: string[];
  /** Where "env:NAME" secrets of the files come from. */
  env?: NodeJS.ProcessEnv;
  /** Guest memory (default 1024 MiB; the LUNs' written blocks live in it). */
  memoryMiB?: number;
  /** From QEMU's start to a working login (default 120 s). */
  bootTimeoutMs?: number;
  /** A LUN URL path (IQN/LUN) that needs no CHAP: logged in to prove the forward works. */
  probe: string;
}

export interface LioVm {
  /** The forwarded loopback port of the guest's portal. */
  port: number;
  url(iqn: string, lun: number): string;
  /**
   * Runs a busybox sh command line in the guest (as root, through the control port); its output
   * (stdout and stderr) and exit status. Rejects when the control shell does not answer.
   */
  exec(command: string, opts?: { timeoutMs?: number }): Promise<{ status: number; output: Buffer }>;
  /**
   * SHA-256 (hex) of the first `length` bytes of a LUN's backing file in the guest, zeros past its
   * end, by busybox's sha256sum there: an oracle that shares no code with this project.
   */
  sha256(file: string, length: number): Promise<string>;
  /** The serial console so far (the kernel's and init's messages). */
  console(): string;
  /** Attributes LIO refused while applying the configs (LIO-CONFIG-WARN lines). */
  warnings: string[];
  bootSeconds: number;
  stop(): Promise<void>;
}

function tail(text: string, lines = 40): string {
  return text.split('\n').slice(-lines).join('\n');
}

async function haveQemu(): Promise<void> {
  try {
    await run(QEMU, ['--version']);
  } catch (err) {
    throw new Error(`LIO VM: cannot run ${QEMU} (${(err as Error).message.split('\n')[0]}); install qemu-system-x86 ('make setup')`);
  }
}

/** The kernel and base initramfs, built (or taken from the cache) by scripts/lio-vm-build.sh. */
async function buildImages(): Promise<{ kernel: string; initramfs: string }> {
  let out: string;
  try {
    ({ stdout: out } = await run('bash', [path.join(REPO, 'scripts/lio-vm-build.sh')], { timeout: 300_000 }));
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`LIO VM: scripts/lio-vm-build.sh failed: ${(e.stderr ?? e.message).trim()}`);
  }
  const get = (k: string) => out.split('\n').find((l) => l.startsWith(`${k}=`))?.slice(k.length + 1);
  const kernel = get('kernel');
  const initramfs = get('initramfs');
  if (!kernel || !initramfs) throw new Error(`LIO VM: scripts/lio-vm-build.sh printed no kernel/initramfs: ${out}`);
  return { kernel, initramfs };
}

/**
 * base initramfs + a newc cpio archive of /etc/lio-config.sh: the kernel unpacks concatenated
 * archives in turn, skipping zero bytes between them (an uncompressed one must start 4-aligned).
 */
async function initrdWith(base: string, script: string, dir: string): Promise<string> {
  const root = path.join(dir, 'root');
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/lio-config.sh'), script, { mode: 0o600 });
  const extra = path.join(dir, 'config.cpio');
  await run('sh', ['-c', `cd "$1" && printf 'etc\\netc/lio-config.sh\\n' | cpio -o -H newc --quiet > "$2"`, 'sh', root, extra]);
  const initrd = path.join(dir, 'initrd');
  const first = fs.readFileSync(base);
  const pad = Buffer.alloc((512 - (first.length % 512)) % 512);
  fs.writeFileSync(initrd, Buffer.concat([first, pad, fs.readFileSync(extra)]), { mode: 0o600 });
  return initrd;
}

export async function startLioVm(o: LioVmOptions): Promise<LioVm> {
  const t0 = Date.now();
  const timeoutMs = o.bootTimeoutMs ?? 120_000;
  await haveQemu();
  const script = o.configs
    .map((c) => {
      const file = path.isAbsolute(c) ? c : path.join(TARGETCLI_CONFIGS, c);
      return `# ${path.basename(file)}\n${saveconfigToConfigfs(JSON.parse(fs.readFileSync(file, 'utf8')), o.env ?? process.env)}`;
    })
    .join('\n');
  const images = await buildImages();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xcopy-agent-lio-vm-'));
  const port = await freePort();
  const controlPort = await freePort();
  const initrd = await initrdWith(images.initramfs, `${script}\n${CONTROL_SCRIPT}`, dir);
  const accel = process.env.XCOPY_LIO_ACCEL === 'kvm' ? 'kvm' : 'tcg';
  const args = [
    '-accel', accel, '-smp', '1', '-m', String(o.memoryMiB ?? 1024),
    '-nodefaults', '-no-user-config', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
    '-kernel', images.kernel, '-initrd', initrd,
    '-append', 'console=ttyS0 panic=-1 quiet',
    '-netdev', `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${port}-:3260,hostfwd=tcp:127.0.0.1:${controlPort}-:${CONTROL_PORT}`,
    '-device', 'virtio-net-pci,netdev=n0',
  ];
  const child: ChildProcess = spawn(QEMU, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let consoleText = '';
  const append = (b: Buffer) => {
    consoleText += b.toString('latin1').replace(/\r/g, '');
    if (consoleText.length > 1 << 20) consoleText = consoleText.slice(-(1 << 19));
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`LIO VM: no LIO-VM-READY within ${timeoutMs / 1000} s (accel ${accel}); console tail:\n${tail(consoleText)}`)), timeoutMs);
      const check = () => {
        if (consoleText.includes('LIO-VM-READY')) {
          clearTimeout(timer);
          resolve();
        } else if (/LIO-VM-FAIL|Kernel panic/.test(consoleText)) {
          clearTimeout(timer);
          // Let the panic's lines arrive before quoting them.
          setTimeout(() => reject(new Error(`LIO VM: boot failed; console tail:\n${tail(consoleText)}`)), 300);
        }
      };
      child.stdout!.on('data', check);
      child.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`LIO VM: ${QEMU} exited (${sig ?? code}) before LIO was ready; console tail:\n${tail(consoleText)}`));
      });
    });
    // The forward accepts TCP before the guest listens: a real login proves the portal.
    const probeUrl = `iscsi://127.0.0.1:${port}/${o.probe}`;
    let lastErr = '';
    for (;;) {
      try {
        await run('iscsi-inq', [probeUrl], { timeout: 10_000 });
        break;
      } catch (err) {
        lastErr = ((err as { stderr?: string }).stderr ?? (err as Error).message).trim();
      }
      if (Date.now() - t0 > timeoutMs) throw new Error(`LIO VM: no login to ${probeUrl} within ${timeoutMs / 1000} s: ${lastErr}; console tail:\n${tail(consoleText)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const exec = (command: string, opts: { timeoutMs?: number } = {}) => controlExec(controlPort, command, opts.timeoutMs ?? 60_000);
  return {
    port,
    url: (iqn, lun) => `iscsi://127.0.0.1:${port}/${iqn}/${lun}`,
    exec,
    sha256: async (file, length) => {
      // busybox's sha256sum in the guest, on the file itself when it is `length` bytes long, else
      // on a copy cut (or zero-extended: LIO's fileio reads zeros past the end of a file shorter
      // than its LUN) to `length`. A pipe into sha256sum is several times slower under TCG.
      const f = shellWord(file);
      const n = Number(length);
      const r = await exec(
        `if [ "$(stat -c %s ${f})" = ${n} ]; then sha256sum ${f}; else t=$(mktemp) && dd if=${f} of="$t" bs=65536 count=${Math.ceil(n / 65536)} 2>/dev/null && truncate -s ${n} "$t" && sha256sum "$t"; s=$?; rm -f "$t"; [ $s = 0 ]; fi`,
        { timeoutMs: 300_000 },
      );
      const m = /^([0-9a-f]{64}) /.exec(r.output.toString('latin1'));
      if (r.status !== 0 || !m) throw new Error(`LIO VM: sha256sum of ${file} failed (status ${r.status}): ${r.output.toString('latin1').trim()}`);
      return m[1];
    },
    console: () => consoleText,
    warnings: consoleText.split('\n').filter((l) => l.startsWith('LIO-CONFIG-WARN')),
    bootSeconds: (Date.now() - t0) / 1000,
    stop,
  };
}

/**
 * Appended to the configuration script: the control shell, one busybox sh per connection on
 * CONTROL_PORT (reached only through QEMU's forward to 127.0.0.1; the VM is the tests' own and
 * its network is restricted). Started before LIO-VM-READY is printed.
 */
const CONTROL_SCRIPT = `# the control port (src/peers/lio-vm.ts)
nc -ll -p ${CONTROL_PORT} -e /bin/sh </dev/null >/dev/null 2>&1 &
`;

/** A shell word, quoted. */
function shellWord(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * One command through the control port: the command line, then a status line, sent before the
 * write side is closed (the shell runs them and exits at the end of its input). A connection
 * QEMU accepted while nothing listened yet closes with no answer: tried again, within the bound.
 */
async function controlExec(port: number, command: string, timeoutMs: number): Promise<{ status: number; output: Buffer }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const sock = net.connect(port, '127.0.0.1');
      const timer = setTimeout(() => sock.destroy(new Error(`LIO VM: no answer from the control shell within ${timeoutMs / 1000} s to: ${command}`)), Math.max(1, deadline - Date.now()));
      sock.on('data', (c: Buffer) => chunks.push(c));
      sock.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      sock.on('close', () => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks));
      });
      sock.end(`{ ${command}\n} 2>&1; printf '${STATUS_MARK.replace('\n', '\\n')}%d\\n' $?\n`);
    });
    const at = answer.lastIndexOf(STATUS_MARK);
    if (at >= 0) return { status: Number(answer.subarray(at + STATUS_MARK.length).toString('latin1').trim()), output: answer.subarray(0, at) };
    if (answer.length > 0 || Date.now() > deadline) throw new Error(`LIO VM: the control shell gave no status for: ${command} (${answer.length} bytes: ${answer.subarray(0, 200).toString('latin1')})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

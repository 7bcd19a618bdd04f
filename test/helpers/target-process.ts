/**
 * The project's target run as a child process (`xcopy-agent target`, quick form), as an
 * administrator runs it: a fault test can stop it (SIGSTOP: a peer that hangs), kill it (a
 * peer that goes away) or restart it with the same command line (the same --state-dir). With
 * `tmpfs`, the target runs in a mount namespace of its own (`unshare`) where a size-limited
 * tmpfs is mounted on that folder: its file LUNs there are thin, and the test fills the tmpfs
 * through /proc/PID/root to make their writes fail with ENOSPC (a thin pool out of space).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ManagementClient } from '../../src/mgmt';
import { freePort } from '../../src/peers/tgt';

const BIN = path.resolve(__dirname, '../../bin/xcopy-agent');

export interface TargetProcessOptions {
  iqn: string;
  /** Quick-form LUN specs (file:PATH[:SIZE], memory:SIZE, iscsi://...), numbered from 0. */
  luns: string[];
  /** The portal's port (default: a free one); a restart passes the previous one. */
  port?: number;
  /** The management API on this loopback port, its state and token under stateDir. */
  mgmt?: { port: number; stateDir: string };
  /** Mount a tmpfs of `bytes` on `dir` in a private mount namespace before the target starts. */
  tmpfs?: { dir: string; bytes: number };
  /** Extra arguments to node before the CLI (e.g. --require a test preload). */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
}

export interface TargetProcess {
  child: ChildProcess;
  port: number;
  url(lun: number): string;
  mgmt?: ManagementClient;
  /** A path inside the target's own view of the file system (its tmpfs, when it has one). */
  inside(p: string): string;
  /** Ends the process with `signal` (default SIGKILL) and waits for its exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts the target and resolves once its portal (and management API) listen. */
export async function startTargetProcess(o: TargetProcessOptions): Promise<TargetProcess> {
  const port = o.port ?? (await freePort());
  const cli = [
    ...(o.nodeArgs ?? []),
    BIN,
    'target',
    '--json',
    '--portal',
    `127.0.0.1:${port}`,
    '--iqn',
    o.iqn,
    ...o.luns.flatMap((l) => ['--lun', l]),
    ...(o.mgmt ? ['--state-dir', o.mgmt.stateDir, '--mgmt', `127.0.0.1:${o.mgmt.port}`] : []),
  ];
  // `exec` all the way: the child's pid is the target's, so /proc/PID/root is its mount namespace.
  const [cmd, args] = o.tmpfs
    ? ['unshare', ['-Urm', 'sh', '-c', 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"', 'sh', String(o.tmpfs.bytes), o.tmpfs.dir, process.execPath, ...cli]]
    : [process.execPath, cli];
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XCOPY_AGENT_LOG_LEVEL: 'warn', ...o.env } });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const ready = o.mgmt ? '"event":"management"' : '"event":"listening"';
    const timer = setTimeout(() => reject(new Error(`the target did not start within 20 s: ${err}`)), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(ready)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the target exited (${code}) before it listened: ${err}`));
    });
  });
  child.stdout!.resume();
  const mgmt = o.mgmt
    ? new ManagementClient({ url: `http://127.0.0.1:${o.mgmt.port}`, token: fs.readFileSync(path.join(o.mgmt.stateDir, 'mgmt.token'), 'utf8').trim() })
    : undefined;
  return {
    child,
    port,
    mgmt,
    url: (lun) => `iscsi://127.0.0.1:${port}/${o.iqn}/${lun}`,
    inside: (p) => (o.tmpfs ? `/proc/${child.pid}/root${path.resolve(p)}` : p),
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/**
 * Fills the file system holding `dir` (seen through `inside`) with a file `name` until `leave`
 * bytes stay free for others; returns the file's path (remove it to free the space again).
 */
export function fillUpTo(dir: string, leave: number, name = 'filler'): string {
  const st = fs.statfsSync(dir);
  const free = st.bavail * st.bsize;
  const file = path.join(dir, name);
  const fd = fs.openSync(file, 'w');
  try {
    const chunk = Buffer.alloc(1024 * 1024, 0xa5);
    for (let left = free - leave; left > 0; ) {
      const n = Math.min(chunk.length, left);
      left -= fs.writeSync(fd, chunk, 0, n);
    }
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

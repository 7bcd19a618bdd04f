/**
 * Starts `bin/xcopy-agent target` in its own process (as tgtd runs in its own) on a free
 * loopback port and waits until it listens. For benchmarks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { freePort } from '../src/peers/tgt';

export interface TargetProcess {
  proc: ChildProcess;
  port: number;
  iqn: string;
  url(lun: number): string;
  stop(): Promise<void>;
}

/** `extraArgs` go after the quick-form options (e.g. --state-dir DIR --mgmt 127.0.0.1:PORT). */
export async function startTargetProcess(iqn: string, lunSpecs: string[], extraArgs: readonly string[] = []): Promise<TargetProcess> {
  const port = await freePort();
  const bin = path.resolve(__dirname, '../../bin/xcopy-agent');
  const proc = spawn(bin, ['target', '--portal', `127.0.0.1:${port}`, '--iqn', iqn, ...lunSpecs.flatMap((l) => ['--lun', l]), ...extraArgs], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, XCOPY_AGENT_LOG_LEVEL: 'warn' },
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error('the project target did not start listening');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    proc,
    port,
    iqn,
    url: (lun) => `iscsi://127.0.0.1:${port}/${iqn}/${lun}`,
    stop: async () => {
      if (proc.exitCode !== null) return;
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    },
  };
}

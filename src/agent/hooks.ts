/**
 * The pre- and post-hooks of a backup (docs/method.md 602): commands the administrator gives to
 * quiesce the application around the instant the snapshot is instituted (an application's
 * flush, `fsfreeze -f` / `fsfreeze -u` on the host). Run with `sh -c`, their output goes to the
 * log line by line; a hook that exits non-zero, is killed, or outlives its timeout fails the
 * backup before anything is left armed.
 */
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { AgentError } from '../errors';
import type { Logger } from '../util/log';

export const DEFAULT_HOOK_TIMEOUT_MS = 120_000;

export interface HookRun {
  /** 'pre-hook' or 'post-hook', for logs and messages. */
  name: string;
  command: string;
  timeoutMs?: number;
  log: Logger;
  /** Extra environment for the command (e.g. XCOPY_AGENT_SNAPSHOT_ID for the post-hook). */
  env?: NodeJS.ProcessEnv;
}

/** Runs a hook; resolves when it exits 0, rejects with ERR_HOOK_FAILED otherwise. */
export function runHook(h: HookRun): Promise<void> {
  const timeoutMs = h.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', h.command], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...h.env } });
    let tail = '';
    const relay = (stream: NodeJS.ReadableStream, which: 'stdout' | 'stderr') =>
      readline.createInterface({ input: stream }).on('line', (line) => {
        h.log.info({ hook: h.name, stream: which }, line);
        if (which === 'stderr') tail = line;
      });
    relay(child.stdout!, 'stdout');
    relay(child.stderr!, 'stderr');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    let timedOut = false;
    timer.unref();
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new AgentError('ERR_HOOK_FAILED', `${h.name} could not be started: ${err.message}`, { cause: err }));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      timedOut = signal === 'SIGKILL' && code === null;
      if (code === 0) return resolve();
      const how = timedOut ? `did not finish within ${timeoutMs / 1000} s` : signal ? `was killed by ${signal}` : `exited with status ${String(code)}`;
      reject(new AgentError('ERR_HOOK_FAILED', `${h.name} ${JSON.stringify(h.command)} ${how}${tail ? ` (${tail})` : ''}; nothing was left armed: fix the hook or run without it`));
    });
  });
}

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
  /** Stops the hook (SIGTERM) when aborted; the run then rejects with ERR_INTERRUPTED. */
  signal?: AbortSignal;
}

/** Runs a hook; resolves when it exits 0, rejects with ERR_HOOK_FAILED otherwise. */
export function runHook(h: HookRun): Promise<void> {
  const timeoutMs = h.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    if (h.signal?.aborted) return reject(new AgentError('ERR_INTERRUPTED', `${h.name} not run: interrupted`));
    // Its own process group, so that stopping it stops what it started too (sh -c 'sleep 30'
    // leaves sleep holding our pipes otherwise).
    const child = spawn('sh', ['-c', h.command], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...h.env }, detached: true });
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, sig);
      } catch {
        child.kill(sig);
      }
    };
    let tail = '';
    const relay = (stream: NodeJS.ReadableStream, which: 'stdout' | 'stderr') =>
      readline.createInterface({ input: stream }).on('line', (line) => {
        h.log.info({ hook: h.name, stream: which }, line);
        if (which === 'stderr') tail = line;
      });
    relay(child.stdout!, 'stdout');
    relay(child.stderr!, 'stderr');
    const timer = setTimeout(() => killGroup('SIGKILL'), timeoutMs);
    let timedOut = false;
    timer.unref();
    const onAbort = () => killGroup('SIGTERM');
    h.signal?.addEventListener('abort', onAbort, { once: true });
    if (h.signal?.aborted) onAbort();
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new AgentError('ERR_HOOK_FAILED', `${h.name} could not be started: ${err.message}`, { cause: err }));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      h.signal?.removeEventListener('abort', onAbort);
      // What the hook left running must not hold our pipes (and the agent) open.
      if (code !== 0) killGroup('SIGKILL');
      child.stdout?.destroy();
      child.stderr?.destroy();
      timedOut = signal === 'SIGKILL' && code === null;
      if (h.signal?.aborted) return reject(new AgentError('ERR_INTERRUPTED', `${h.name} stopped: interrupted`));
      if (code === 0) return resolve();
      const how = timedOut ? `did not finish within ${timeoutMs / 1000} s` : signal ? `was killed by ${signal}` : `exited with status ${String(code)}`;
      reject(new AgentError('ERR_HOOK_FAILED', `${h.name} ${JSON.stringify(h.command)} ${how}${tail ? ` (${tail})` : ''}; nothing was left armed: fix the hook or run without it`));
    });
  });
}

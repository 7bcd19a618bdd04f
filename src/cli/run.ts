/**
 * What a long-running command does around its work: the output (--json or text) and the
 * progress display (SIGUSR1: its status line); an AbortSignal that SIGINT, SIGTERM and SIGHUP trip, so the work stops
 * cleanly and ends in ERR_INTERRUPTED (exit 130); then one summary (record and line), or the
 * one-line error with its exit status. The handlers stay installed until the work has ended: a
 * second signal while it cleans up (a backup ending its snapshot) must not kill it half-way.
 */
import { Output } from './output';
import { Progress } from './progress';

export interface RunContext {
  out: Output;
  progress: Progress;
  signal: AbortSignal;
}

/** What the work reports: the summary record's fields and the line a person reads. */
export interface RunSummary {
  summary: Record<string, unknown>;
  line: string;
}

export async function runCommand(
  json: boolean,
  command: string,
  work: (c: RunContext) => Promise<RunSummary>,
  opts: { progressLines?: boolean } = {},
): Promise<void> {
  const out = new Output(json);
  const progress = new Progress(out, { command, lines: opts.progressLines });
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) {
      process.stderr.write(`xcopy-agent: ${command} is stopping cleanly; wait (SIGKILL would leave its work half-done)\n`);
      return;
    }
    stop.abort();
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const sig of signals) process.on(sig, onSignal);
  try {
    const r = await work({ out, progress, signal: stop.signal });
    progress.finishLine();
    out.record('summary', { command, ...r.summary });
    out.line(r.line);
  } catch (err) {
    progress.finishLine();
    process.exitCode = out.error(err);
  } finally {
    for (const sig of signals) process.off(sig, onSignal);
  }
}

/**
 * What a long-running command does around its work: the output (--json or text) and the
 * progress display; an AbortSignal that SIGINT and SIGTERM trip, so the work stops cleanly and
 * ends in ERR_INTERRUPTED (exit 130); then one summary (record and line), or the one-line error
 * with its exit status.
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

export async function runCommand(json: boolean, command: string, work: (c: RunContext) => Promise<RunSummary>): Promise<void> {
  const out = new Output(json);
  const progress = new Progress(out);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const r = await work({ out, progress, signal: stop.signal });
    progress.finishLine();
    out.record('summary', { command, ...r.summary });
    out.line(r.line);
  } catch (err) {
    progress.finishLine();
    process.exitCode = out.error(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

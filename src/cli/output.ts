/**
 * What commands print. With --json: NDJSON records on stdout (`type`: progress | summary |
 * error, and copy | operation for `copies`; snake_case fields); without: text for people. Errors also go to stderr as one line
 * saying what is wrong and what to do. Logs (pino) are on stderr, never mixed with this.
 */
import { AgentError, ErrorCodes, exitStatusOf, type ExitStatusValue } from '../errors';

/** An error we raised on purpose: an AgentError, or one carrying a registry code (e.g. from the management API). */
function registryCode(err: unknown): string | undefined {
  if (err instanceof AgentError) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ErrorCodes, code) ? code : undefined;
}

export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      return Buffer.from((v as { data: number[] }).data).toString('hex');
    }
    return v;
  });
}

export class Output {
  constructor(
    readonly json: boolean,
    private readonly out: NodeJS.WritableStream = process.stdout,
    private readonly err: NodeJS.WritableStream = process.stderr,
  ) {}

  /** A human line (ignored in --json mode). */
  line(text = ''): void {
    if (!this.json) this.out.write(`${text}\n`);
  }

  /** `copy` and `operation`: one record per catalog row (`copies`); `file`: one per inode (`toc`). */
  record(type: 'progress' | 'summary' | 'copy' | 'operation' | 'file', fields: Record<string, unknown>): void {
    if (this.json) this.out.write(`${toJson({ type, ...fields })}\n`);
  }

  /** Reports a failure and returns the exit status to use. */
  error(err: unknown): ExitStatusValue {
    const status = exitStatusOf(err);
    const known = registryCode(err);
    const code = known ?? 'ERR_INTERNAL';
    const message = err instanceof Error ? err.message : String(err);
    if (this.json) this.out.write(`${toJson({ type: 'error', code, message, exit_status: status })}\n`);
    const text = known !== undefined ? message : `internal error (please report): ${err instanceof Error ? (err.stack ?? message) : message}`;
    this.err.write(`xcopy-agent: ${text}\n`);
    return status;
  }
}

/**
 * Logging through pino: NDJSON on stderr (stdout is for data and --json records), pretty only when
 * stderr is a terminal. Secrets are redacted by path; URLs are redacted before they are logged.
 */
import pino from 'pino';

export type Logger = pino.Logger;

const REDACT = [
  'password',
  'targetPassword',
  'secret',
  '*.password',
  '*.targetPassword',
  '*.secret',
  'chap.*',
];

let root: Logger | undefined;

export function createLogger(opts: { level?: string; pretty?: boolean } = {}): Logger {
  const level = opts.level ?? process.env.XCOPY_AGENT_LOG_LEVEL ?? 'warn';
  const pretty = opts.pretty ?? (process.stderr.isTTY === true);
  if (pretty) {
    return pino({
      level,
      redact: REDACT,
      transport: { target: 'pino-pretty', options: { destination: 2, colorize: true } },
    });
  }
  return pino({ level, redact: REDACT }, pino.destination({ fd: 2, sync: true }));
}

/** The process-wide logger (created on first use). */
export function logger(): Logger {
  if (!root) root = createLogger();
  return root;
}

export function setLogger(l: Logger): void {
  root = l;
}

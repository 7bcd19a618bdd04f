/**
 * The one progress display of the long commands (copy, backup, restore, verify, integrate,
 * export, erase-obf, drill):
 * - on a terminal (stderr a TTY, no --json): each phase's name on a line, then one line
 *   rewritten in place (carriage return, erase line): phase, a bar, percent, amount done of the
 *   total, rate, ETA and the path the data takes (XCOPY: the copy manager; HOST: this host's
 *   READ/WRITE); the phase's last line stays, with its elapsed time in place of the ETA;
 * - with --json: NDJSON `progress` records on stdout, at most once a second;
 * - elsewhere nothing, unless `lines` (copy --progress): the same text as plain lines on stderr,
 *   at most every `everyMs`;
 * - SIGUSR1: one status line on stderr — the same numbers in words — with the bar cleared first
 *   and drawn again after it (installStatusSignal, once per process).
 */
import type { Output } from './output';

const KiB = 1024;
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 → "1.5 KiB"; one decimal from KiB up. */
export function formatBytes(n: number): string {
  let i = 0;
  while (n >= KiB * 10 && i < UNITS.length - 1) {
    n /= KiB;
    i++;
  }
  // Below 10 of the next unit stay in this one: "9216.0 KiB" reads worse than "9.0 MiB".
  if (n >= KiB && i < UNITS.length - 1) {
    n /= KiB;
    i++;
  }
  return i === 0 ? `${Math.round(n)} B` : `${n.toFixed(1)} ${UNITS[i]}`;
}

/** Seconds as mm:ss, or h:mm:ss from an hour up; "--:--" when not known. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const two = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(s % 60)}` : `${two(m)}:${two(s % 60)}`;
}

export type DataPath = 'xcopy' | 'host';

export interface ProgressUpdate {
  /** Bytes per unit when the unit is blocks (default 1). */
  blockSize?: number;
  /** The path the data takes: the copy manager's EXTENDED COPY, or this host's READ/WRITE. */
  path?: DataPath;
  /** More for a person to read (e.g. the OBF's fill). */
  extra?: string;
  /** More fields for the --json record. */
  fields?: Record<string, unknown>;
}

export interface ProgressOptions {
  /** The command, for the status line (default "xcopy-agent"). */
  command?: string;
  /** Whether stderr is a terminal (default: process.stderr.isTTY). */
  tty?: boolean;
  err?: NodeJS.WritableStream & { columns?: number };
  /** Off a terminal, without --json: plain progress lines on stderr (copy --progress). */
  lines?: boolean;
  /** The least time between two lines drawn (default 200 ms on a terminal, 500 ms as lines). */
  everyMs?: number;
  /** The clock (ms), for tests of the text. */
  now?: () => number;
}

interface PhaseState {
  phase: string;
  label: string;
  t0: number;
  done: bigint;
  total: bigint;
  unit: 'blocks' | 'records';
  blockSize: number;
  path?: DataPath;
  extra: string;
  updated: boolean;
}

const BAR = 20;

/** The display SIGUSR1 reports on (the last one made in this process). */
let current: Progress | undefined;
let installed = false;

/** Makes SIGUSR1 print the status line of the progress display in use (nothing when there is none). */
export function installStatusSignal(): void {
  if (installed) return;
  installed = true;
  // A listener also keeps SIGUSR1 from opening Node's inspector.
  process.on('SIGUSR1', () => current?.printStatus());
}

export class Progress {
  private readonly command: string;
  private readonly tty: boolean;
  private readonly err: NodeJS.WritableStream & { columns?: number };
  private readonly lines: boolean;
  private readonly everyMs: number;
  private readonly now: () => number;
  private readonly started: number;
  private state: PhaseState | undefined;
  private lastDraw = -Infinity;
  private lastRecord = -Infinity;
  /** A bar line is on the screen, not ended by a newline. */
  private drawn = false;
  /** Numbers came in since the last line drawn. */
  private dirty = false;

  constructor(
    private readonly out: Output,
    opts: ProgressOptions = {},
  ) {
    this.command = opts.command ?? 'xcopy-agent';
    this.tty = opts.tty ?? process.stderr.isTTY === true;
    this.err = opts.err ?? process.stderr;
    this.lines = opts.lines === true;
    this.everyMs = opts.everyMs ?? (this.isTty ? 200 : 500);
    this.now = opts.now ?? Date.now;
    this.started = this.now();
    current = this;
  }

  /** The in-place bar is shown (a terminal, no --json). */
  get isTty(): boolean {
    return this.tty && !this.out.json;
  }

  /** Text goes to stderr as progress: the bar, or plain lines. */
  private get drawing(): boolean {
    return this.isTty || (this.lines && !this.out.json);
  }

  /** A new phase starts (`phase` its key in records and on the bar, `label` what a person reads): ends the previous phase's line. */
  start(phase: string, label = phase): void {
    this.finishLine();
    this.state = { phase, label, t0: this.now(), done: 0n, total: 0n, unit: 'blocks', blockSize: 1, extra: '', updated: false };
    this.out.record('progress', { phase, event: 'start' });
    if (this.isTty) this.err.write(`${label}\n`);
  }

  /** `done` of `total` units of the phase started last. */
  update(done: bigint, total: bigint, unit: 'blocks' | 'records', u: ProgressUpdate = {}): void {
    const s = (this.state ??= { phase: '', label: '', t0: this.now(), done: 0n, total: 0n, unit, blockSize: 1, extra: '', updated: false });
    Object.assign(s, { done, total, unit, blockSize: unit === 'blocks' ? (u.blockSize ?? 1) : 1, path: u.path ?? s.path, extra: u.extra ?? '', updated: true });
    this.dirty = true;
    const now = this.now();
    if (this.out.json && now - this.lastRecord >= 1000) {
      this.lastRecord = now;
      this.out.record('progress', { phase: s.phase, done, total, unit, ...(s.path ? { path: s.path } : {}), ...(u.fields ?? {}) });
    }
    if (this.drawing && now - this.lastDraw >= this.everyMs) this.draw(now);
  }

  /** Ends the phase's line, drawn one last time with the latest numbers. */
  finishLine(): void {
    if (this.drawing && this.state?.updated && (this.dirty || this.drawn)) this.draw(this.now(), true);
    if (this.drawn) this.err.write('\n');
    this.drawn = false;
  }

  /** SIGUSR1: one status line on stderr; the bar, if any, is cleared first and drawn again after. */
  printStatus(): void {
    const text = `${this.command}: ${this.statusText(this.now())}\n`;
    if (this.drawn) {
      this.err.write(`\r\x1b[K${text}`);
      this.drawn = false;
      this.draw(this.now(), true);
    } else {
      this.err.write(text);
    }
  }

  /** The numbers of the phase in progress, in words (the status line). */
  statusText(now: number): string {
    const s = this.state;
    const elapsed = `${formatDuration((now - this.started) / 1000)} elapsed`;
    const phase = s?.phase && s.phase !== this.command ? `${s.phase}: ` : '';
    if (!s?.updated) return `${phase}starting, ${elapsed}`;
    return `${phase}${this.fields(s, now).text.join(', ')}; ${elapsed}`;
  }

  private measure(s: PhaseState, now: number) {
    const secs = Math.max(0, (now - s.t0) / 1000);
    const frac = s.total > 0n ? Math.min(1, Number(s.done) / Number(s.total)) : 1;
    const complete = s.total > 0n && s.done >= s.total;
    const per = s.unit === 'blocks' ? s.blockSize : 1;
    const rateUnits = secs > 0 ? Number(s.done) / secs : 0;
    const left = rateUnits > 0 ? Number(s.total - s.done) / rateUnits : Number.NaN;
    const amount =
      s.unit === 'blocks' ? `${formatBytes(Number(s.done) * per)} of ${formatBytes(Number(s.total) * per)}` : `${s.done} of ${s.total} records`;
    const rate = s.unit === 'blocks' ? `${formatBytes(rateUnits * per)}/s` : `${rateUnits.toFixed(0)} records/s`;
    return { frac, complete, amount, rate, percent: `${(frac * 100).toFixed(1)}%`, time: formatDuration(complete ? secs : left) };
  }

  /** The fields of a line after the bar: percent, amount, rate, ETA (or time taken), path, extra. */
  private fields(s: PhaseState, now: number): { frac: number; text: string[] } {
    const m = this.measure(s, now);
    const text = [m.percent, m.amount, m.rate, m.complete ? `done in ${m.time}` : `ETA ${m.time}`];
    if (s.path) text.push(s.path.toUpperCase());
    if (s.extra) text.push(s.extra);
    return { frac: m.frac, text };
  }

  /** The bar line: `copy [########------------]  43.7%  448.0 MiB of 1.0 GiB  210.3 MiB/s  ETA 00:03  XCOPY`. */
  line(now: number): string {
    const s = this.state!;
    const f = this.fields(s, now);
    const fill = Math.round(f.frac * BAR);
    return `${s.phase ? `${s.phase} ` : ''}[${'#'.repeat(fill)}${'-'.repeat(BAR - fill)}] ${f.text[0].padStart(6)}  ${f.text.slice(1).join('  ')}`;
  }

  /** A plain line: `copy: 43.7%, 448.0 MiB of 1.0 GiB, 210.3 MiB/s, ETA 00:03, XCOPY` (the phase after the command unless the same). */
  plainLine(now: number): string {
    const s = this.state!;
    const phase = s.phase && s.phase !== this.command ? `${s.phase}: ` : '';
    return `${this.command}: ${phase}${this.fields(s, now).text.join(', ')}`;
  }

  private draw(now: number, force = false): void {
    if (!force && now - this.lastDraw < this.everyMs) return;
    this.lastDraw = now;
    this.dirty = false;
    if (this.isTty) {
      let text = this.line(now);
      // Never wider than the terminal: a wrapped line would not be rewritten in place.
      const cols = this.err.columns;
      if (cols !== undefined && cols > 1 && text.length >= cols) text = text.slice(0, cols - 1);
      this.err.write(`\r\x1b[K${text}`);
      this.drawn = true;
    } else {
      this.err.write(`${this.plainLine(now)}\n`);
    }
  }
}

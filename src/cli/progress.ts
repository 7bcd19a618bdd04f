/**
 * Progress a person can read: on a terminal, each phase's name, then one line rewritten in place
 * (amount done of the total, rate, ETA); elsewhere nothing (stdout keeps the summary, stderr the
 * one-line error), and with --json NDJSON `progress` records at most once a second.
 */
import type { Output } from './output';

const MiB = 1048576;

function eta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const two = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(s % 60)}` : `${two(m)}:${two(s % 60)}`;
}

export class Progress {
  private phase = '';
  private label = '';
  private t0 = Date.now();
  private lastDraw = 0;
  private lastRecord = 0;
  private drawn = false;

  constructor(
    private readonly out: Output,
    private readonly tty: boolean = process.stderr.isTTY === true,
    private readonly err: NodeJS.WritableStream = process.stderr,
  ) {}

  get isTty(): boolean {
    return this.tty && !this.out.json;
  }

  /** A new phase starts (`phase` its key in records, `label` what a person reads): ends the previous phase's line. */
  start(phase: string, label = phase): void {
    this.finishLine();
    this.phase = phase;
    this.label = label;
    this.t0 = Date.now();
    this.out.record('progress', { phase, event: 'start' });
    if (!this.out.json && this.tty) this.err.write(`${label}\n`);
  }

  /** `done` of `total` units; `bytesPerUnit` turns blocks into bytes (1 for records and bytes). */
  update(done: bigint, total: bigint, unit: 'blocks' | 'bytes' | 'records', bytesPerUnit = 1, extra = '', fields?: Record<string, unknown>): void {
    const now = Date.now();
    if (this.out.json && now - this.lastRecord >= 1000) {
      this.lastRecord = now;
      this.out.record('progress', { phase: this.phase, done, total, unit, ...(fields ?? {}) });
    }
    if (!this.tty || this.out.json || now - this.lastDraw < 200) return;
    this.lastDraw = now;
    const secs = (now - this.t0) / 1000;
    const frac = total > 0n ? Number(done) / Number(total) : 1;
    const amount =
      unit !== 'records'
        ? `${((Number(done) * bytesPerUnit) / MiB).toFixed(0)}/${((Number(total) * bytesPerUnit) / MiB).toFixed(0)} MiB, ${secs > 0 ? ((Number(done) * bytesPerUnit) / MiB / secs).toFixed(0) : '0'} MiB/s`
        : `${done}/${total} records`;
    const left = frac > 0 ? (secs / frac) * (1 - frac) : Number.NaN;
    this.err.write(`\r\x1b[K${this.label}: ${(frac * 100).toFixed(1)}% ${amount}, ETA ${eta(left)}${extra ? `, ${extra}` : ''}`);
    this.drawn = true;
  }

  finishLine(): void {
    if (this.drawn) this.err.write('\n');
    this.drawn = false;
  }
}

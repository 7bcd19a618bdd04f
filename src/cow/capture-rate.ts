/**
 * The capture rate a snapshot's status reports (docs/cow.md "Mark, terminate, status"): the
 * OBF's data bytes sampled after captures, one sample per 100 ms at most, 30 s kept.
 */

/** Samples closer together than this update the last one. */
const SAMPLE_MS = 100;
/** Samples older than this go (two are always kept). */
const WINDOW_MS = 30_000;

export class CaptureRate {
  private readonly samples: Array<{ t: number; bytes: bigint }> = [];
  /** Chunks captured, and the time their captures took in all (ms), for the latency metric. */
  captures = 0;
  captureMs = 0;

  /** `now`: the clock (milliseconds). */
  constructor(private readonly now: () => number = Date.now) {}

  /** Records that the OBF now holds `bytes` of captured data. */
  sample(bytes: bigint): void {
    const now = this.now();
    const last = this.samples[this.samples.length - 1];
    if (last && now - last.t < SAMPLE_MS) {
      last.bytes = bytes;
      return;
    }
    this.samples.push({ t: now, bytes });
    while (this.samples.length > 2 && now - this.samples[0].t > WINDOW_MS) this.samples.shift();
  }

  /** Records one chunk's capture, which took `ms` (its original read and its OBF record committed). */
  captured(ms: number): void {
    this.captures++;
    this.captureMs += ms;
  }

  /** Capture rate over the last 30 s (bytes/s); 0 before two samples. */
  perSecond(): number {
    if (this.samples.length < 2) return 0;
    const a = this.samples[0];
    const b = this.samples[this.samples.length - 1];
    const dt = (Math.max(b.t, this.now()) - a.t) / 1000;
    return dt > 0 ? Number(b.bytes - a.bytes) / dt : 0;
  }
}

/**
 * Exclusive locks on LBA ranges. Every command that modifies the medium through a logical unit
 * holds its range while it runs, so COMPARE AND WRITE (SBC-3 r36 5.2: the compare and the write are
 * one atomic operation with respect to other commands), ORWRITE (read–modify–write) and WRITE
 * ATOMIC never interleave with another write to the same blocks. Reads take no lock.
 *
 * Waiters are served in arrival order: a request waits while its range overlaps a held range or
 * the range of an earlier waiter, so a stream of small writes cannot starve a large one.
 */

/** A range of blocks as numbers: LBAs stay far below 2^53, and numbers compare without allocating. */
interface Range {
  start: number;
  end: number;
}

interface Waiter {
  range: Range;
  grant: () => void;
}

function overlaps(a: Range, b: Range): boolean {
  return a.start < b.end && b.start < a.end;
}

const NOTHING = () => undefined;

export class RangeLock {
  private readonly held = new Set<Range>();
  private readonly waiting: Waiter[] = [];

  /** Number of ranges held now (for tests and diagnostics). */
  get heldCount(): number {
    return this.held.size;
  }

  /**
   * Takes [lba, lba + count) at once if it is free — no held range and no earlier waiter
   * overlaps it — and returns the function that releases it (call it exactly once); undefined
   * when it would have to wait. An empty range is granted and locks nothing. Every write takes
   * its range this way first: no promise unless it waits.
   */
  tryAcquire(lba: bigint, count: bigint): (() => void) | undefined {
    if (count <= 0n) return NOTHING;
    const range: Range = { start: Number(lba), end: Number(lba + count) };
    if (this.overlapsHeld(range) || this.overlapsWaiting(range)) return undefined;
    this.held.add(range);
    return this.releaser(range);
  }

  /**
   * Waits for [lba, lba + count) to be free, takes it and returns the function that releases it
   * (call it exactly once). An empty range is granted at once and locks nothing.
   */
  async acquire(lba: bigint, count: bigint): Promise<() => void> {
    const now = this.tryAcquire(lba, count);
    if (now) return now;
    const range: Range = { start: Number(lba), end: Number(lba + count) };
    await new Promise<void>((resolve) => this.waiting.push({ range, grant: resolve })); // wake() adds it to held
    return this.releaser(range);
  }

  /** Runs `fn` holding [lba, lba + count). */
  async with<T>(lba: bigint, count: bigint, fn: () => Promise<T>): Promise<T> {
    const release = this.tryAcquire(lba, count) ?? (await this.acquire(lba, count));
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private releaser(range: Range): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held.delete(range);
      if (this.waiting.length > 0) this.wake();
    };
  }

  private overlapsHeld(range: Range): boolean {
    for (const h of this.held) if (overlaps(h, range)) return true;
    return false;
  }

  private overlapsWaiting(range: Range): boolean {
    for (const w of this.waiting) if (overlaps(w.range, range)) return true;
    return false;
  }

  /** Grants, in arrival order, every waiter that overlaps neither a held range nor an earlier waiter. */
  private wake(): void {
    const before: Range[] = [];
    for (let i = 0; i < this.waiting.length; ) {
      const w = this.waiting[i];
      if (this.overlapsHeld(w.range) || before.some((b) => overlaps(b, w.range))) {
        before.push(w.range);
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.held.add(w.range);
      w.grant();
    }
  }
}

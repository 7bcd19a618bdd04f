/**
 * Exclusive locks on LBA ranges. Every command that modifies the medium through a logical unit
 * holds its range while it runs, so COMPARE AND WRITE (SBC-3 r36 5.2: the compare and the write are
 * one atomic operation with respect to other commands), ORWRITE (read–modify–write) and WRITE
 * ATOMIC never interleave with another write to the same blocks. Reads take no lock.
 *
 * Waiters are served in arrival order: a request waits while its range overlaps a held range or
 * the range of an earlier waiter, so a stream of small writes cannot starve a large one.
 */

interface Range {
  start: bigint;
  end: bigint;
}

interface Waiter {
  range: Range;
  grant: () => void;
}

function overlaps(a: Range, b: Range): boolean {
  return a.start < b.end && b.start < a.end;
}

export class RangeLock {
  private readonly held = new Set<Range>();
  private readonly waiting: Waiter[] = [];

  /** Number of ranges held now (for tests and diagnostics). */
  get heldCount(): number {
    return this.held.size;
  }

  /**
   * Waits for [lba, lba + count) to be free, takes it and returns the function that releases it
   * (call it exactly once). An empty range is granted at once and locks nothing.
   */
  async acquire(lba: bigint, count: bigint): Promise<() => void> {
    if (count <= 0n) return () => undefined;
    const range: Range = { start: lba, end: lba + count };
    const free = !this.overlapsHeld(range) && !this.waiting.some((w) => overlaps(w.range, range));
    if (free) this.held.add(range);
    else await new Promise<void>((resolve) => this.waiting.push({ range, grant: resolve })); // wake() adds it to held
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held.delete(range);
      this.wake();
    };
  }

  /** Runs `fn` holding [lba, lba + count). */
  async with<T>(lba: bigint, count: bigint, fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire(lba, count);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private overlapsHeld(range: Range): boolean {
    for (const h of this.held) if (overlaps(h, range)) return true;
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

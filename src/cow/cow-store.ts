/**
 * The COW filter (the method's server-side filter, 302): a Store wrapping the source LUN's store,
 * as QEMU's copy-before-write filter node wraps its child. Every data-changing request — WRITE of
 * any size, WRITE SAME, UNMAP, COMPARE AND WRITE, WRITE AND VERIFY, ORWRITE and the copy
 * manager's writes — reaches the store as write() or unmap(); both pass through here.
 *
 * Idle (no snapshot armed) it only counts the changes in flight. `hold()` stops new changes at
 * the door and waits for those in flight to finish (the clean cut of step 602); while held, a
 * capture is armed; `release()` lets the waiting changes in, each now behind the capture's
 * beforeChange(), which saves the original chunk to the OBF durably before the change reaches
 * the source.
 *
 * Write-back of first writes: a write without FUA that needs a capture may complete before it
 * reaches the source, when the armed guard allows it (writeBack). The filter keeps a copy of its
 * data and makes it in the background, in the same order of steps (capture durable, then the
 * source); until then it is a *pending write*. This is the write cache the target reports
 * (caching mode page WCE = 1): a write without FUA is durable only after SYNCHRONIZE CACHE, which
 * waits for the pending writes here (flush) and reports a pending write that failed. Every other
 * request overlapping a pending write — read, write, UNMAP, GET LBA STATUS, a copy manager's
 * kernel copy — waits for it, so what completed is what every later request sees. FUA writes
 * (or any write while WCE = 0) never take this path. Reads wait for nothing else.
 */
import { ArgumentError } from '../errors';
import { StoreError, type Extent, type Store, type StoreIdentity } from '../store/store';

/** What a snapshot session puts in front of every change while it captures. */
export interface ChangeGuard {
  /**
   * Resolves when the change of `count` blocks at `lba` may reach the source: every chunk it
   * touches has its original saved (or the session gave up capturing, durably, under the
   * protect-application policy). Rejects (a StoreError) when the change must fail instead
   * (protect-snapshot).
   */
  beforeChange(lba: bigint, count: bigint): Promise<void>;
  /**
   * Optional: makes a write itself, together with the capture it needs, when it can do both in
   * one step. Resolves true when the write reached the source, false when the caller must make
   * it (beforeChange, then the write); rejects as beforeChange does, or with the write's error.
   */
  changeWith?(lba: bigint, pieces: readonly Buffer[], opts: { fua: boolean }): Promise<boolean>;
  /**
   * Optional: true when a write of `count` blocks at `lba` without FUA may complete before it
   * reaches the source (see the write-back note above): it needs a capture, and whatever becomes
   * of that capture the write will reach the source (protect-application).
   */
  writeBack?(lba: bigint, count: bigint): boolean;
}

/** A write completed to the host before it reached the source (write-back). */
interface PendingWrite {
  start: bigint;
  end: bigint;
  bytes: number;
  /** Settles (never rejects) once the write reached the source or failed. */
  done: Promise<void>;
}

/** Most writes, and bytes, pending at once; past either the writes wait for their captures. */
export const WRITE_BACK_MAX_WRITES = 128;
export const WRITE_BACK_MAX_BYTES = 32 * 1024 * 1024;

export class HoldTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    Object.defineProperty(this, 'name', { value: 'HoldTimeoutError', enumerable: false });
  }
}

export class CowStore implements Store {
  readonly kind = 'cow';
  readonly inner: Store;
  /** The capture armed now, if any. */
  private guard: ChangeGuard | undefined;
  /** The session that owns this source's snapshot, claimed before its first await. */
  private owner: object | undefined;
  private inFlight = 0;
  private readonly pending = new Set<PendingWrite>();
  private pendingBytes = 0;
  /** A pending write that failed, for the next flush to report (then forgotten, as fsync does). */
  private deferred: StoreError | undefined;
  /** Where a failed pending write is reported when it fails (the target's log). */
  onWriteBackError: ((err: StoreError, lba: bigint, blocks: bigint) => void) | undefined = undefined;
  private drained: Array<() => void> = [];
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;

  constructor(inner: Store) {
    this.inner = inner;
  }

  get blockSize(): number {
    return this.inner.blockSize;
  }
  get blocks(): bigint {
    return this.inner.blocks;
  }
  /** The source's own identity: hosts see the same LUN with or without the filter. */
  get identity(): StoreIdentity {
    return this.inner.identity;
  }
  /**
   * Read-only to hosts when the store is, or while it is an active snapshot's OBF (the session
   * writes it through this object directly; hosts and the copy manager get DATA PROTECT).
   */
  get readOnly(): boolean {
    return this.inner.readOnly || this.obfOf !== undefined;
  }
  /** The snapshot whose OBF this store is, while it is in use. */
  obfOf: string | undefined = undefined;
  get unmapReadsZero(): boolean {
    return this.inner.unmapReadsZero;
  }
  /** Thin provisioning follows the wrapped store (LogicalUnit's default). */
  get sparse(): boolean {
    const declared = (this.inner as { sparse?: unknown }).sparse;
    if (typeof declared === 'boolean') return declared;
    return this.inner.kind === 'memory' || this.inner.kind === 'file';
  }
  /** True while a capture is armed. */
  get capturing(): boolean {
    return this.guard !== undefined;
  }
  /** True while new changes are held at the door. */
  get held(): boolean {
    return this.gate !== undefined;
  }
  /** Changes between the door and the source now. */
  get changesInFlight(): number {
    return this.inFlight;
  }

  /** Writes pending now (write-back), and their bytes. */
  get pendingWrites(): { writes: number; bytes: number } {
    return { writes: this.pending.size, bytes: this.pendingBytes };
  }

  read(lba: bigint, count: number, into?: Buffer): Promise<Buffer> {
    if (this.pending.size === 0) return this.inner.read(lba, count, into);
    return this.afterPendingWrites(lba, BigInt(count)).then(() => this.inner.read(lba, count, into));
  }

  write(lba: bigint, data: Buffer, opts?: { fua?: boolean }): Promise<void> {
    return this.change(lba, [data], data.length, opts);
  }

  /** As write, with the pieces gathered (the inner store's writev, else one buffer). */
  async writev(lba: bigint, pieces: readonly Buffer[], opts?: { fua?: boolean }): Promise<void> {
    let bytes = 0;
    for (const p of pieces) bytes += p.length;
    if (bytes === 0 || bytes % this.inner.blockSize !== 0) {
      throw new ArgumentError(`a write of ${bytes} bytes is not a positive number of ${this.inner.blockSize}-byte blocks`);
    }
    return this.change(lba, pieces, bytes, opts);
  }

  private async change(lba: bigint, pieces: readonly Buffer[], bytes: number, opts?: { fua?: boolean }): Promise<void> {
    // (A write of a part block is the inner store's to refuse; its capture covers the block.)
    const count = BigInt(Math.ceil(bytes / this.inner.blockSize));
    // Every host write of every LUN passes here: no extra await unless a hold is on.
    if (this.gate) await this.enter();
    else this.inFlight++;
    let handedOver = false;
    try {
      if (this.pending.size > 0) await this.afterPendingWrites(lba, count);
      const g = this.guard;
      if (g) {
        const fua = opts?.fua === true;
        if (!fua && g.writeBack && this.pending.size < WRITE_BACK_MAX_WRITES && this.pendingBytes + bytes <= WRITE_BACK_MAX_BYTES && g.writeBack(lba, count)) {
          this.writeBack(g, lba, count, pieces, bytes);
          handedOver = true;
          return;
        }
        if (g.changeWith && (await g.changeWith(lba, pieces, { fua }))) return;
        await g.beforeChange(lba, count);
      }
      await this.writeInner(lba, pieces, bytes, opts);
    } finally {
      if (!handedOver) this.leave();
    }
  }

  private writeInner(lba: bigint, pieces: readonly Buffer[], bytes: number, opts?: { fua?: boolean }): Promise<void> {
    if (this.inner.writev) return this.inner.writev(lba, pieces, opts);
    return this.inner.write(lba, pieces.length === 1 ? pieces[0] : Buffer.concat(pieces, bytes), opts);
  }

  /**
   * Makes a write in the background, the ordinary way (its capture first), after it completed to
   * the host: it stays counted in flight (a hold drains it) and pending (overlapping requests and
   * flush wait for it) until it reached the source or failed. Its data is copied: the caller's
   * buffers may be reused once the write completes (the copy manager's pool).
   */
  private writeBack(g: ChangeGuard, lba: bigint, count: bigint, pieces: readonly Buffer[], bytes: number): void {
    const data = Buffer.allocUnsafe(bytes);
    let at = 0;
    for (const p of pieces) at += p.copy(data, at);
    const entry: PendingWrite = { start: lba, end: lba + count, bytes, done: Promise.resolve() };
    this.pending.add(entry);
    this.pendingBytes += bytes;
    entry.done = (async () => {
      try {
        if (g.changeWith && (await g.changeWith(lba, [data], { fua: false }))) return;
        await g.beforeChange(lba, count);
        await this.writeInner(lba, [data], bytes);
      } catch (err) {
        const e = err instanceof StoreError ? err : new StoreError({ kind: 'write-error' }, (err as Error)?.message ?? String(err));
        this.deferred ??= e;
        this.onWriteBackError?.(e, lba, count);
      } finally {
        this.pending.delete(entry);
        this.pendingBytes -= bytes;
        this.leave();
      }
    })();
  }

  /** Resolves when no pending write overlaps [lba, lba + count). */
  async afterPendingWrites(lba: bigint, count: bigint): Promise<void> {
    const end = lba + count;
    for (;;) {
      let wait: Promise<void> | undefined;
      for (const p of this.pending) {
        if (p.start < end && lba < p.end) {
          wait = p.done;
          break;
        }
      }
      if (!wait) return;
      await wait;
    }
  }

  async unmap(lba: bigint, count: bigint): Promise<void> {
    if (this.gate) await this.enter();
    else this.inFlight++;
    try {
      if (this.pending.size > 0 && count > 0n) await this.afterPendingWrites(lba, count);
      if (this.guard && count > 0n) await this.guard.beforeChange(lba, count);
      await this.inner.unmap(lba, count);
    } finally {
      this.leave();
    }
  }

  /**
   * Runs `fn` on the inner store as a change that needs no capture (the copy manager's kernel
   * copy into an idle source): counted for drains, refused (undefined) while a capture is armed,
   * a hold is on or writes are pending, so the caller takes the ordinary path.
   */
  async passThrough<T>(fn: (inner: Store) => Promise<T>): Promise<T | undefined> {
    if (this.guard || this.gate || this.pending.size > 0) return undefined;
    this.inFlight++;
    try {
      return await fn(this.inner);
    } finally {
      this.leave();
    }
  }

  /**
   * SYNCHRONIZE CACHE: the writes pending now reach the source, then the source's own flush. A
   * pending write that failed since the last flush fails this one (once: a later flush that has
   * nothing new to report succeeds, as fsync(2) reports a writeback error once).
   */
  async flush(): Promise<void> {
    if (this.pending.size > 0) await Promise.all([...this.pending].map((p) => p.done));
    await this.inner.flush();
    const failed = this.deferred;
    if (failed) {
      this.deferred = undefined;
      throw new StoreError(failed.failure, `a write completed earlier (write-back) did not reach the source: ${failed.message}`);
    }
  }
  async extents(lba: bigint, count: bigint): Promise<Extent[]> {
    if (this.pending.size > 0) await this.afterPendingWrites(lba, count);
    return this.inner.extents(lba, count);
  }
  async close(): Promise<void> {
    if (this.pending.size > 0) await Promise.all([...this.pending].map((p) => p.done));
    return this.inner.close();
  }

  /**
   * Step 602's hold: new changes wait at the door; resolves when none is in flight. Rejects with
   * HoldTimeoutError (and opens the door again) when they do not drain within `timeoutMs`.
   */
  async hold(timeoutMs: number): Promise<void> {
    if (this.gate) throw new Error('already held');
    this.gate = new Promise<void>((resolve) => (this.openGate = resolve));
    if (this.inFlight === 0) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve) => this.drained.push(resolve)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new HoldTimeoutError(`${this.inFlight} writes still in flight after ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
    } catch (err) {
      this.release();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Opens the door: held changes go on (behind the guard, when one was armed meanwhile). */
  release(): void {
    const open = this.openGate;
    this.gate = undefined;
    this.openGate = undefined;
    open?.();
  }

  /**
   * Claims the source for one snapshot session (synchronously, so two institutes racing on one
   * source cannot both proceed). Returns false when another owner holds it.
   */
  claim(owner: object): boolean {
    if (this.owner !== undefined && this.owner !== owner) return false;
    this.owner = owner;
    return true;
  }

  /** Gives the source up (only its owner can); disarms that owner's capture. */
  unclaim(owner: object): void {
    if (this.owner !== owner) return;
    this.owner = undefined;
    if (this.guard === owner) this.guard = undefined;
  }

  get claimed(): boolean {
    return this.owner !== undefined;
  }

  /** Arms the capture of the owner. Only while held, only by the source's owner. */
  arm(guard: ChangeGuard & object): void {
    if (!this.gate) throw new Error('a capture is armed only while changes are held');
    if (this.owner !== guard) throw new Error('only the session that claimed the source arms its capture');
    this.guard = guard;
  }

  /** Disarms `guard` if it is the one armed (a session never disarms another's). */
  disarm(guard: ChangeGuard): void {
    if (this.guard === guard) this.guard = undefined;
  }

  get currentGuard(): ChangeGuard | undefined {
    return this.guard;
  }

  private async enter(): Promise<void> {
    while (this.gate) await this.gate;
    this.inFlight++;
  }

  private leave(): void {
    this.inFlight--;
    if (this.inFlight === 0 && this.drained.length > 0) {
      const waiters = this.drained;
      this.drained = [];
      for (const w of waiters) w();
    }
  }
}

/** The COW filter under a store, if it is one. */
export function cowOf(store: Store): CowStore | undefined {
  return store instanceof CowStore ? store : undefined;
}

/** A StoreError carrying exact sense, for a change refused by the protect-snapshot policy. */
export function refusedChange(sense: Buffer, message: string): StoreError {
  return new StoreError({ kind: 'forwarded', status: 0x02, sense }, message);
}

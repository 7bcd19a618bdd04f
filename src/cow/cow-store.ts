/**
 * The COW filter (the method's server-side filter: docs/method.md): a Store wrapping the source
 * LUN's store, as QEMU's copy-before-write filter node wraps its child. Every data-changing
 * request — WRITE of any size, WRITE SAME, UNMAP, COMPARE AND WRITE, WRITE AND VERIFY, ORWRITE
 * and the copy manager's writes — reaches the store as write() or unmap(); both pass through here.
 *
 * Idle (no snapshot armed) it only counts the changes in flight. `hold()` stops new changes at
 * the door and waits for those in flight to finish (the clean cut of docs/method.md 602); while
 * held, a capture is armed; `release()` lets the waiting changes in, each now behind the
 * capture's beforeChange() (src/cow/capture.ts), which saves the original chunk to the OBF
 * durably before the change reaches the source. Reads are never blocked.
 *
 * Nothing outside this file reaches the store it wraps: the session that claims the source gets
 * it (claimedStore) to read originals from and to carry writes to; the store capabilities a
 * caller may use (Store.backingFile, copyRangeTo/copyRangeFrom) are forwarded with this filter's
 * rules applied.
 */
import { AgentError, ArgumentError } from '../errors';
import { StoreError, type BackingFile, type Extent, type RangeCopy, type Store, type StoreIdentity } from '../store/store';

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
   * Optional: true when the change needs nothing of the capture now (every chunk it touches is
   * captured already, or capturing has stopped): the filter then makes it at once. False: ask
   * changeWith / beforeChange.
   */
  needsNothing?(lba: bigint, count: bigint): boolean;
  /**
   * Optional: makes a write itself, together with the capture it needs, when it can do both in
   * one step. Resolves true when the write reached the source, false when the caller must make
   * it (beforeChange, then the write); rejects as beforeChange does, or with the write's error.
   */
  changeWith?(lba: bigint, pieces: readonly Buffer[], opts: { fua: boolean }): Promise<boolean>;
}

export class HoldTimeoutError extends AgentError {
  constructor(message: string) {
    super('ERR_HOLD_TIMEOUT', message);
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
  private drained: Array<() => void> = [];
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  /** Why changes are refused now (the source's snapshot is resuming after a restart). */
  private notReadyError: StoreError | undefined;

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

  read(lba: bigint, count: number, into?: Buffer): Promise<Buffer> {
    return this.inner.read(lba, count, into);
  }

  /**
   * While set, every change is refused with `why` (and TEST UNIT READY answers it); reads go on.
   * A source whose snapshot was capturing when the target stopped gets this until the session
   * has resumed from its OBF (SnapshotManager.open), so nothing reaches it uncaptured.
   */
  setNotReady(why: StoreError | undefined): void {
    this.notReadyError = why;
  }

  notReady(): StoreError | undefined {
    return this.notReadyError;
  }

  async write(lba: bigint, data: Buffer, opts?: { fua?: boolean }): Promise<void> {
    if (this.notReadyError) throw this.notReadyError;
    // Every host write of every LUN passes here: no extra await unless a hold is on.
    if (this.gate) await this.enter();
    else this.inFlight++;
    try {
      const g = this.guard;
      if (g) {
        const count = BigInt(data.length / this.inner.blockSize);
        if (!g.needsNothing?.(lba, count)) {
          if (g.changeWith && (await g.changeWith(lba, [data], { fua: opts?.fua === true }))) return;
          await g.beforeChange(lba, count);
        }
      }
      await this.inner.write(lba, data, opts);
    } finally {
      this.leave();
    }
  }

  /** As write, with the pieces gathered (the inner store's writev, else one buffer). */
  async writev(lba: bigint, pieces: readonly Buffer[], opts?: { fua?: boolean }): Promise<void> {
    let bytes = 0;
    for (const p of pieces) bytes += p.length;
    if (bytes === 0 || bytes % this.inner.blockSize !== 0) {
      throw new ArgumentError(`a write of ${bytes} bytes is not a positive number of ${this.inner.blockSize}-byte blocks`);
    }
    if (this.notReadyError) throw this.notReadyError;
    if (this.gate) await this.enter();
    else this.inFlight++;
    try {
      const g = this.guard;
      if (g) {
        const count = BigInt(bytes / this.inner.blockSize);
        if (!g.needsNothing?.(lba, count)) {
          if (g.changeWith && (await g.changeWith(lba, pieces, { fua: opts?.fua === true }))) return;
          await g.beforeChange(lba, count);
        }
      }
      if (this.inner.writev) await this.inner.writev(lba, pieces, opts);
      else await this.inner.write(lba, pieces.length === 1 ? pieces[0] : Buffer.concat(pieces, bytes), opts);
    } finally {
      this.leave();
    }
  }

  async unmap(lba: bigint, count: bigint): Promise<void> {
    if (this.notReadyError) throw this.notReadyError;
    if (this.gate) await this.enter();
    else this.inFlight++;
    try {
      if (this.guard && count > 0n) await this.guard.beforeChange(lba, count);
      await this.inner.unmap(lba, count);
    } finally {
      this.leave();
    }
  }

  /**
   * Runs `fn` (a change to the inner store) as a change that needs no capture: counted for
   * drains, refused (undefined) while a capture is armed, a hold is on or changes are refused
   * (not ready), so the caller takes the ordinary path.
   */
  private async passThrough<T>(fn: () => Promise<T>): Promise<T | undefined> {
    if (this.guard || this.gate || this.notReadyError) return undefined;
    this.inFlight++;
    try {
      return await fn();
    } finally {
      this.leave();
    }
  }

  /** The file the wrapped store stands on: the filter adds no data of its own. */
  backingFile(): BackingFile | undefined {
    return this.inner.backingFile?.();
  }

  /** As a kernel copy's source the filter is transparent: reads are never blocked. */
  copyRangeTo(dst: Store): RangeCopy | undefined {
    return this.inner.copyRangeTo?.(dst);
  }

  /**
   * As a kernel copy's destination (the copy manager's copy_file_range into this LUN), a copy
   * runs only while no snapshot captures the source and counts as a change in flight for a hold
   * (passThrough); otherwise it resolves false and the caller writes through this filter.
   */
  copyRangeFrom(src: Store): RangeCopy | undefined {
    const copy = this.inner.copyRangeFrom?.(src);
    if (!copy) return undefined;
    return async (lba, dstLba, count, opts) => (await this.passThrough(() => copy(lba, dstLba, count, opts))) === true;
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }
  extents(lba: bigint, count: bigint): Promise<Extent[]> {
    return this.inner.extents(lba, count);
  }
  close(): Promise<void> {
    return this.inner.close();
  }

  /**
   * The hold of docs/method.md 602: new changes wait at the door; resolves when none is in
   * flight. Rejects with HoldTimeoutError (and opens the door again) when they do not drain
   * within `timeoutMs`.
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

  /**
   * The store this filter wraps, for the session that claimed the source only: it reads the
   * originals there, and its capture commits carry hosts' writes there (capture-commit.ts).
   */
  claimedStore(owner: object): Store {
    if (this.owner === undefined || this.owner !== owner) throw new Error('only the session that claimed the source reaches the store below its filter');
    return this.inner;
  }

  /** True when `store` is the one this filter wraps (an OBF must not be its source's own store). */
  wraps(store: Store): boolean {
    return store === this.inner;
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

/**
 * True when `store` is a COW filter whose source a snapshot has claimed, arms or holds: it cannot
 * be an OBF now.
 */
export function isSnapshotSource(store: Store): boolean {
  return store instanceof CowStore && (store.claimed || store.capturing || store.held);
}

/** Why the COW filter refuses a change or says its source is not ready (the SCSI layer maps it to sense). */
export type RefusalKind = 'no-space' | 'command-timeout' | 'hardware-write-error' | 'not-ready-becoming-ready' | 'not-ready-manual-intervention';

/** A StoreError for a change refused by the protect-snapshot policy, or a source not ready. */
export function refusedChange(kind: RefusalKind, message: string): StoreError {
  return new StoreError({ kind }, message);
}

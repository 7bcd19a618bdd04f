/**
 * Argument checks shared by the stores: run before any byte is touched, so a bad request fails
 * whole (never half applied). A caller bug (wrong type, a length that is not whole blocks) is an
 * ArgumentError; an address outside the store is StoreError lba-out-of-range (SBC-3 r36 4.5), which
 * the SCSI layer turns into LOGICAL BLOCK ADDRESS OUT OF RANGE.
 */
import { ArgumentError } from '../errors';
import { StoreError, checkRange, type Store } from './store';

/** The largest count of one request (the interface promises a single request fits 32 bits). */
export const MAX_REQUEST_BLOCKS = 0xffff_ffff;

export function checkLba(lba: unknown): asserts lba is bigint {
  if (typeof lba !== 'bigint' || lba < 0n) throw new ArgumentError(`lba must be a non-negative bigint, got ${String(lba)}`);
}

export function checkBlockSize(blockSize: unknown, what = 'blockSize'): 512 | 4096 {
  if (blockSize !== 512 && blockSize !== 4096) throw new ArgumentError(`${what} must be 512 or 4096, got ${String(blockSize)}`);
  return blockSize;
}

/** Validates a read's arguments (not its range): returns the byte length. */
export function checkReadArgs(blockSize: number, lba: bigint, count: number, into?: Buffer): number {
  checkLba(lba);
  if (!Number.isInteger(count) || count < 0 || count > MAX_REQUEST_BLOCKS) {
    throw new ArgumentError(`count must be an integer from 0 to ${MAX_REQUEST_BLOCKS}, got ${String(count)}`);
  }
  const bytes = count * blockSize;
  if (bytes > 0x7fff_ffff) {
    throw new ArgumentError(`a read of ${count} blocks of ${blockSize} bytes does not fit one Buffer; split it`);
  }
  if (into !== undefined && (!Buffer.isBuffer(into) || into.length < bytes)) {
    throw new ArgumentError(`into must be a Buffer of at least ${bytes} bytes (${count} blocks of ${blockSize})`);
  }
  return bytes;
}

/** Validates a read: `count` whole blocks inside the store, `into` (if any) big enough. Returns the byte length. */
export function checkRead(store: Pick<Store, 'blocks' | 'blockSize'>, lba: bigint, count: number, into?: Buffer): number {
  const bytes = checkReadArgs(store.blockSize, lba, count, into);
  checkRange(store, lba, count);
  return bytes;
}

/** Validates a write's arguments (not its range): a Buffer of whole blocks. Returns the block count. */
export function checkWriteArgs(blockSize: number, lba: bigint, data: Buffer): number {
  checkLba(lba);
  if (!Buffer.isBuffer(data)) throw new ArgumentError('data must be a Buffer');
  if (data.length % blockSize !== 0) {
    throw new ArgumentError(`data length ${data.length} is not a multiple of the block size ${blockSize}`);
  }
  return data.length / blockSize;
}

/** Validates a write: a Buffer of whole blocks inside the store. Returns the block count. */
export function checkWrite(store: Pick<Store, 'blocks' | 'blockSize'>, lba: bigint, data: Buffer): number {
  const count = checkWriteArgs(store.blockSize, lba, data);
  checkRange(store, lba, count);
  return count;
}

/** Validates a range given as a bigint count (unmap, extents). */
export function checkBigRange(store: Pick<Store, 'blocks'>, lba: bigint, count: bigint): void {
  checkLba(lba);
  if (typeof count !== 'bigint' || count < 0n) throw new ArgumentError(`count must be a non-negative bigint, got ${String(count)}`);
  checkRange(store, lba, count);
}

export function writeProtected(name: string): StoreError {
  return new StoreError({ kind: 'write-protected' }, `${name} is read-only`);
}

export function closedError(name: string): StoreError {
  return new StoreError({ kind: 'not-ready' }, `${name} is closed`);
}

/** Appends an extent, merging it with the previous one when they touch and agree. */
export function pushExtent(out: { lba: bigint; blocks: bigint; mapped: boolean }[], lba: bigint, blocks: bigint, mapped: boolean): void {
  if (blocks <= 0n) return;
  const last = out[out.length - 1];
  if (last && last.mapped === mapped && last.lba + last.blocks === lba) last.blocks += blocks;
  else out.push({ lba, blocks, mapped });
}

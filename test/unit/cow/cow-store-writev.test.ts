/**
 * CowStore.writev: a gathered write is a change like write(): it waits at the door while a hold
 * is on, counts as in flight, and passes the armed guard's beforeChange (the capture of the
 * originals) before its bytes reach the inner store. Through an inner store's own writev where it
 * has one (FileStore), else as one buffer (MemoryStore has no writev).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CowStore, HoldTimeoutError, type ChangeGuard } from '../../../src/cow/cow-store';
import { FileStore } from '../../../src/store/file';
import { MemoryStore } from '../../../src/store/memory';
import { StoreError } from '../../../src/store/store';
import { removeDir, tempDir } from '../../helpers/tmp';

let dir: string;
let n = 0;
beforeAll(() => {
  dir = tempDir('cow-writev');
});
afterAll(() => removeDir(dir));
afterEach(() => jest.restoreAllMocks());

/** A guard that records each beforeChange and lets it through only when the test says so. */
class FakeGuard implements ChangeGuard {
  readonly calls: Array<{ lba: bigint; count: bigint }> = [];
  private gates: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  /** false: beforeChange resolves at once. */
  constructor(private readonly manual = false) {}
  beforeChange(lba: bigint, count: bigint): Promise<void> {
    this.calls.push({ lba, count });
    if (!this.manual) return Promise.resolve();
    return new Promise((resolve, reject) => this.gates.push({ resolve, reject }));
  }
  get waiting(): number {
    return this.gates.length;
  }
  pass(): void {
    this.gates.shift()!.resolve();
  }
  refuse(err: unknown): void {
    this.gates.shift()!.reject(err);
  }
}

/** Arms `guard` the way a snapshot session does: claim, hold, arm, release. */
async function armed(cow: CowStore, guard: FakeGuard): Promise<void> {
  expect(cow.claim(guard)).toBe(true);
  await cow.hold(1000);
  cow.arm(guard);
  cow.release();
  expect(cow.capturing).toBe(true);
}

/** Lets pending promise callbacks and immediates run. */
const turns = async (k = 5) => {
  for (let i = 0; i < k; i++) await new Promise((r) => setImmediate(r));
};

const memory = (blockSize: 512 | 4096 = 512) => new MemoryStore({ blocks: 1024n, blockSize, chunkBytes: 4096 });

describe('CowStore.writev, memory inner (no writev: one buffer)', () => {
  test('beforeChange(lba, blocks) runs, and completes, before the bytes land', async () => {
    const inner = memory();
    const cow = new CowStore(inner);
    const guard = new FakeGuard(true);
    await armed(cow, guard);
    const pieces = [crypto.randomBytes(700), crypto.randomBytes(1500), crypto.randomBytes(360)]; // 2560 bytes = 5 blocks
    const p = cow.writev(40n, pieces);
    await turns();
    expect(guard.calls).toEqual([{ lba: 40n, count: 5n }]);
    expect(cow.changesInFlight).toBe(1);
    expect((await inner.read(40n, 5)).equals(Buffer.alloc(2560))).toBe(true); // not yet
    guard.pass();
    await p;
    expect((await inner.read(40n, 5)).equals(Buffer.concat(pieces))).toBe(true);
    expect((await inner.read(39n, 1)).equals(Buffer.alloc(512))).toBe(true);
    expect((await inner.read(45n, 1)).equals(Buffer.alloc(512))).toBe(true);
    expect(cow.changesInFlight).toBe(0);
  });

  test('the inner store gets one write of the pieces concatenated, with the options', async () => {
    const inner = memory();
    const cow = new CowStore(inner);
    const guard = new FakeGuard();
    await armed(cow, guard);
    const write = jest.spyOn(inner, 'write');
    const pieces = [crypto.randomBytes(100), crypto.randomBytes(924)];
    await cow.writev(3n, pieces, { fua: true });
    expect(write).toHaveBeenCalledTimes(1);
    const [lba, data, opts] = write.mock.calls[0];
    expect(lba).toBe(3n);
    expect(data.equals(Buffer.concat(pieces))).toBe(true);
    expect(opts).toEqual({ fua: true });
    // One piece goes as it is, not copied.
    const one = crypto.randomBytes(512);
    await cow.writev(9n, [one]);
    expect(write.mock.calls[1][1]).toBe(one);
    expect(guard.calls).toEqual([
      { lba: 3n, count: 2n },
      { lba: 9n, count: 1n },
    ]);
  });

  test('the guard sees the same change for writev as for the equal write (4096-byte blocks)', async () => {
    const inner = memory(4096);
    const cow = new CowStore(inner);
    const guard = new FakeGuard();
    await armed(cow, guard);
    const data = crypto.randomBytes(3 * 4096);
    await cow.write(100n, data);
    await cow.writev(200n, [data.subarray(0, 5000), data.subarray(5000)]);
    expect(guard.calls).toEqual([
      { lba: 100n, count: 3n },
      { lba: 200n, count: 3n },
    ]);
    expect((await inner.read(200n, 3)).equals(data)).toBe(true);
  });

  test('a change the guard refuses fails and never reaches the store', async () => {
    const inner = memory();
    const cow = new CowStore(inner);
    const guard = new FakeGuard(true);
    await armed(cow, guard);
    const write = jest.spyOn(inner, 'write');
    const p = cow.writev(0n, [Buffer.alloc(512, 1), Buffer.alloc(512, 2)]);
    await turns();
    const refusal = new StoreError({ kind: 'write-protected' }, 'refused by the snapshot');
    guard.refuse(refusal);
    await expect(p).rejects.toBe(refusal);
    expect(write).not.toHaveBeenCalled();
    expect((await inner.read(0n, 2)).equals(Buffer.alloc(1024))).toBe(true);
    expect(cow.changesInFlight).toBe(0);
  });

  test('no capture armed: no guard, the bytes land; a disarmed guard is not asked', async () => {
    const inner = memory();
    const cow = new CowStore(inner);
    const pieces = [crypto.randomBytes(512), crypto.randomBytes(512)];
    await cow.writev(7n, pieces);
    expect((await inner.read(7n, 2)).equals(Buffer.concat(pieces))).toBe(true);
    const guard = new FakeGuard();
    await armed(cow, guard);
    cow.disarm(guard);
    await cow.writev(20n, pieces);
    expect(guard.calls).toEqual([]);
    expect((await inner.read(20n, 2)).equals(Buffer.concat(pieces))).toBe(true);
  });

  test('a change the guard says needs nothing (needsNothing) goes straight to the store: no beforeChange; others are asked', async () => {
    const inner = memory();
    const cow = new CowStore(inner);
    class Captured extends FakeGuard {
      readonly asked: Array<{ lba: bigint; count: bigint }> = [];
      needsNothing(lba: bigint, count: bigint): boolean {
        this.asked.push({ lba, count });
        return lba + count <= 16n; // blocks 0..15 "captured"
      }
    }
    const guard = new Captured();
    await armed(cow, guard);
    const a = crypto.randomBytes(1024);
    await cow.write(4n, a);
    await cow.writev(8n, [a.subarray(0, 512), a.subarray(512)]);
    expect(guard.calls).toEqual([]);
    await cow.write(15n, a); // reaches block 16
    expect(guard.asked).toEqual([
      { lba: 4n, count: 2n },
      { lba: 8n, count: 2n },
      { lba: 15n, count: 2n },
    ]);
    expect(guard.calls).toEqual([{ lba: 15n, count: 2n }]);
    expect((await inner.read(4n, 2)).equals(a)).toBe(true);
    expect((await inner.read(15n, 2)).equals(a)).toBe(true);
  });

  test('while held, a writev waits at the door and goes on at release (behind the guard armed meanwhile)', async () => {
    const inner = memory();
    const cow = new CowStore(inner);
    const guard = new FakeGuard();
    expect(cow.claim(guard)).toBe(true);
    await cow.hold(1000);
    const pieces = [crypto.randomBytes(256), crypto.randomBytes(256)];
    let done = false;
    const p = cow.writev(11n, pieces).then(() => (done = true));
    await turns();
    expect(done).toBe(false);
    expect(cow.changesInFlight).toBe(0);
    expect((await inner.read(11n, 1)).equals(Buffer.alloc(512))).toBe(true);
    cow.arm(guard);
    cow.release();
    await p;
    expect(guard.calls).toEqual([{ lba: 11n, count: 1n }]);
    expect((await inner.read(11n, 1)).equals(Buffer.concat(pieces))).toBe(true);
  });

  test('a writev in flight holds up a hold until it finishes (and times it out if it does not)', async () => {
    const inner = memory();
    const cow = new CowStore(inner);
    const guard = new FakeGuard(true);
    await armed(cow, guard);
    const p = cow.writev(0n, [Buffer.alloc(512, 3)]);
    await turns();
    expect(cow.changesInFlight).toBe(1);
    await expect(cow.hold(30)).rejects.toBeInstanceOf(HoldTimeoutError);
    expect(cow.held).toBe(false);
    let drained = false;
    const h = cow.hold(5000).then(() => (drained = true));
    await turns();
    expect(drained).toBe(false);
    guard.pass();
    await p;
    await h;
    expect(drained).toBe(true);
    expect(cow.changesInFlight).toBe(0);
    cow.release();
  });
});

describe('CowStore.writev, file inner (its own writev)', () => {
  test('beforeChange first, then the inner writev with the pieces as given; the file holds them back to back', async () => {
    const file = path.join(dir, `f-${++n}.img`);
    const inner = await FileStore.open({ path: file, size: 1024 * 1024 });
    try {
      const cow = new CowStore(inner);
      const guard = new FakeGuard(true);
      await armed(cow, guard);
      const writev = jest.spyOn(inner, 'writev');
      const write = jest.spyOn(inner, 'write');
      const pieces = [crypto.randomBytes(1000), crypto.randomBytes(3000), crypto.randomBytes(96)]; // 8 blocks
      const p = cow.writev(64n, pieces, { fua: true });
      await turns();
      expect(guard.calls).toEqual([{ lba: 64n, count: 8n }]);
      expect(writev).not.toHaveBeenCalled();
      expect(fs.readFileSync(file).subarray(64 * 512, 72 * 512).equals(Buffer.alloc(4096))).toBe(true);
      guard.pass();
      await p;
      expect(writev).toHaveBeenCalledTimes(1);
      expect(writev.mock.calls[0][0]).toBe(64n);
      expect(writev.mock.calls[0][1]).toBe(pieces);
      expect(writev.mock.calls[0][2]).toEqual({ fua: true });
      expect(write).not.toHaveBeenCalled();
      const expected = Buffer.alloc(1024 * 1024);
      Buffer.concat(pieces).copy(expected, 64 * 512);
      expect(fs.readFileSync(file).equals(expected)).toBe(true);
    } finally {
      await inner.close();
    }
  });

  test('the inner store\'s refusal (out of range) comes back, after the guard was asked', async () => {
    const file = path.join(dir, `f-${++n}.img`);
    const inner = await FileStore.open({ path: file, size: 64 * 512 });
    try {
      const cow = new CowStore(inner);
      const guard = new FakeGuard();
      await armed(cow, guard);
      await expect(cow.writev(63n, [Buffer.alloc(512, 1), Buffer.alloc(512, 2)])).rejects.toMatchObject({ failure: { kind: 'lba-out-of-range' } });
      expect(guard.calls).toEqual([{ lba: 63n, count: 2n }]);
      expect(cow.changesInFlight).toBe(0);
      expect(fs.readFileSync(file).equals(Buffer.alloc(64 * 512))).toBe(true);
    } finally {
      await inner.close();
    }
  });
});

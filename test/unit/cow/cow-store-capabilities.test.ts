/**
 * What the COW filter forwards of its child's store capabilities, and what it keeps: the backing
 * file (Store.backingFile), the kernel copy (copyRangeTo / copyRangeFrom: transparent as a source;
 * as a destination only while no snapshot captures, counted as a change in flight for a hold);
 * the store below it only to the session that claimed it (claimedStore); and the held event a
 * session publishes on node:diagnostics_channel while the source's writes are held.
 */
import crypto from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import fs from 'node:fs';
import pino from 'pino';
import { CowStore, type ChangeGuard } from '../../../src/cow/cow-store';
import { SNAPSHOT_HELD_CHANNEL, SnapshotSession, type SessionJournal, type SnapshotHeldMessage } from '../../../src/cow/session';
import { FileStore } from '../../../src/store/file';
import { MemoryStore } from '../../../src/store/memory';
import { onSnapshotHeld } from '../../helpers/held';
import { fileBytes, tempFiles } from '../../helpers/tmp';

const log = pino({ level: 'silent' });
const MiB = 1024 * 1024;
const BS = 512;
const files = tempFiles('cow-capabilities');

const journal: SessionJournal = { save: async () => undefined };
const guard: ChangeGuard = { beforeChange: async () => undefined };

/** A file store of `bytes`: random data in the first half, a hole in the second. */
async function halfWritten(bytes: number): Promise<{ path: string; store: FileStore }> {
  const path = files.fresh('f');
  fs.writeFileSync(path, crypto.randomBytes(bytes / 2));
  fs.truncateSync(path, bytes);
  return { path, store: await FileStore.open({ path }) };
}

type HalfWritten = Awaited<ReturnType<typeof halfWritten>>;

/** Two 1 MiB half-written file stores for one test; both closed after it. */
async function withTwoFiles(f: (a: HalfWritten, b: HalfWritten) => Promise<void>): Promise<void> {
  const a = await halfWritten(MiB);
  const b = await halfWritten(MiB);
  try {
    await f(a, b);
  } finally {
    await a.store.close();
    await b.store.close();
  }
}

describe('a COW filter over a file', () => {
  test('forwards the backing file; over memory there is none', async () => {
    const f = await halfWritten(MiB);
    try {
      expect(new CowStore(f.store).backingFile()?.path).toBe(fs.realpathSync(f.path));
      expect(new CowStore(new MemoryStore({ blocks: 64n, blockSize: BS })).backingFile()).toBeUndefined();
    } finally {
      await f.store.close();
    }
  });

  test('kernel copy: file → file through both filters, holes kept; none to or from memory', () =>
    withTwoFiles(async (a, b) => {
      const src = new CowStore(a.store);
      const dst = new CowStore(b.store);
      const mem = new CowStore(new MemoryStore({ blocks: 2048n, blockSize: BS }));
      expect(src.copyRangeTo(mem)).toBeUndefined();
      expect(mem.copyRangeTo(dst)).toBeUndefined();
      const copy = src.copyRangeTo(dst)!;
      expect(copy).toBeDefined();
      // the source's last 256 KiB of data and 256 KiB of hole onto the destination's start
      await expect(copy(512n, 0n, 1024n, { fua: true })).resolves.toBe(true);
      expect(fileBytes(b.path, 0, MiB / 2).equals(Buffer.concat([fileBytes(a.path, MiB / 4, MiB / 4), Buffer.alloc(MiB / 4)]))).toBe(true);
      expect((await b.store.extents(512n, 512n)).every((e) => !e.mapped)).toBe(true); // punched, not written
    }));

  test('kernel copy into the filter: refused (false, nothing copied) while held or capturing; counted as a change in flight for a hold', () =>
    withTwoFiles(async (a, b) => {
      const dst = new CowStore(b.store);
      const copy = new CowStore(a.store).copyRangeTo(dst)!;
      const before = fileBytes(b.path, 0, MiB);
      await dst.hold(1000);
      await expect(copy(0n, 0n, 256n)).resolves.toBe(false);
      expect(dst.claim(guard)).toBe(true);
      dst.arm(guard);
      dst.release();
      await expect(copy(0n, 0n, 256n)).resolves.toBe(false);
      expect(fileBytes(b.path, 0, MiB).equals(before)).toBe(true);
      dst.unclaim(guard);
      // idle again: the copy runs, and a hold waits for it
      const running = copy(0n, 0n, 1024n);
      expect(dst.changesInFlight).toBe(1);
      await dst.hold(5000);
      expect(fileBytes(b.path, 0, MiB / 2).equals(fileBytes(a.path, 0, MiB / 2))).toBe(true);
      dst.release();
      await expect(running).resolves.toBe(true);
    }));

  test('the store below the filter goes to the session that claimed it, and no one else', () => {
    const mem = new MemoryStore({ blocks: 64n, blockSize: BS });
    const cow = new CowStore(mem);
    expect(() => cow.claimedStore(guard)).toThrow(/claimed/);
    expect(cow.claim(guard)).toBe(true);
    expect(() => cow.claimedStore({})).toThrow(/claimed/);
    expect(cow.claimedStore(guard)).toBe(mem);
    expect(cow.wraps(mem)).toBe(true);
    expect(cow.wraps(cow)).toBe(false);
  });
});

describe('the held event', () => {
  const source = () => new CowStore(new MemoryStore({ blocks: 4096n, blockSize: BS }));
  const obf = () => new MemoryStore({ blocks: 16384n, blockSize: BS });

  test('writes stay held until the work of every subscriber settles; hold() after the event throws', async () => {
    const cow = source();
    const order: string[] = [];
    let late: SnapshotHeldMessage | undefined;
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    const offA = onSnapshotHeld(async (held) => {
      expect(held.source).toBe(cow);
      expect(cow.held).toBe(true);
      await slow;
      order.push('a done');
    }, cow);
    const offB = onSnapshotHeld((held) => {
      late = held;
      order.push('b');
    }, cow);
    try {
      const instituting = SnapshotSession.institute({ source: cow, sourceKey: 's', obf: obf(), obfSpec: 'm', journal, log });
      await new Promise((r) => setTimeout(r, 20));
      expect(cow.held).toBe(true);
      const write = cow.write(0n, Buffer.alloc(BS, 1)).then(() => order.push('write'));
      await new Promise((r) => setTimeout(r, 20));
      expect(order).toEqual(['b']);
      release();
      const session = await instituting;
      await write;
      expect(order).toEqual(['b', 'a done', 'write']);
      expect(session.status().records).toBe(1); // the held write was captured
      expect(late?.snapshotId).toBe(session.id);
      expect(() => late!.hold(Promise.resolve())).toThrow(/after the held event/);
      await session.terminate();
    } finally {
      offA();
      offB();
    }
  });

  test('with no subscriber nothing waits, and only the named channel is used', async () => {
    expect(diagnosticsChannel.hasSubscribers(SNAPSHOT_HELD_CHANNEL)).toBe(false);
    const session = await SnapshotSession.institute({ source: source(), sourceKey: 's', obf: obf(), obfSpec: 'm', journal, log });
    expect(session.state).toBe('ACTIVE');
    await session.terminate();
    expect(SNAPSHOT_HELD_CHANNEL).toBe('xcopy-agent:snapshot:held'); // documented in docs/cow.md
  });
});

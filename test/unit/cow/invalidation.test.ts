/**
 * Never silently wrong (src/cow/invalidation.ts): INVALID is recorded in the journal and the
 * superblock at once, each bounded (5 s, 2 s); the source is let go once either has it; if
 * neither can be written the invalidation fails, and with it the changes waiting for it.
 */
import pino from 'pino';
import { Invalidation } from '../../../src/cow/invalidation';
import type { SessionRecord } from '../../../src/cow/session-record';
import { SuperblockWriter } from '../../../src/cow/superblock-writer';
import { ObfReason, ObfState, type ObfSuperblock } from '../../../src/obf/format';
import { StoreError } from '../../../src/store/store';

const log = pino({ level: 'silent' });
const never = () => new Promise<void>(() => undefined);

function record(): SessionRecord {
  return { id: 's1', seriesId: 'x', source: '/backstores/ramdisk/src', obf: 'memory:1M', chunkBytes: 65536, policy: 'protect-application', cowTimeoutMs: 5000, state: 'INVALID', reason: 'OBF_FULL', reasonDetail: 'full', institutedAtMs: 0, institutePauseMs: 0 };
}

/** An invalidation whose journal and superblock behave as told. */
function fixture(journal: () => Promise<void>, superblock: (u: Partial<ObfSuperblock>) => Promise<void>) {
  const rec = record();
  const journalled: SessionRecord[] = [];
  const written: Array<Partial<ObfSuperblock>> = [];
  const sb = new SuperblockWriter({ writeSuperblock: (u) => (written.push(u), superblock(u)) }, rec);
  const inv = new Invalidation({ id: rec.id, record: rec, journal: { save: (r) => (journalled.push({ ...r }), journal()) }, superblock: sb, log });
  let letGo = 0;
  const begin = () => inv.begin('OBF_FULL', 'full', () => letGo++);
  return { rec, inv, sb, begin, journalled, written, letGone: () => letGo };
}

afterEach(() => jest.useRealTimers());

test('both recorded: the source is let go, the journal holds the record as it was, the superblock says INVALID with the reason', async () => {
  const f = fixture(async () => undefined, async () => undefined);
  expect(f.inv.pending).toBeUndefined();
  const p = f.begin();
  expect(f.inv.pending).toBe(p);
  expect(f.inv.running).toBe(true);
  await p;
  expect(f.inv.running).toBe(false);
  expect(f.letGone()).toBe(1);
  expect(f.journalled).toEqual([expect.objectContaining({ state: 'INVALID', reason: 'OBF_FULL' })]);
  expect(f.written).toEqual([{ state: ObfState.INVALID, reason: ObfReason.OBF_FULL }]);
});

test('one of the two is enough: the OBF failing, or the journal', async () => {
  for (const f of [
    fixture(async () => undefined, async () => Promise.reject(new Error('OBF EIO'))),
    fixture(async () => Promise.reject(new Error('journal disk gone')), async () => undefined),
  ]) {
    await f.begin();
    expect(f.letGone()).toBe(1);
  }
});

test('neither recorded: the invalidation fails with a write error and the source is not let go', async () => {
  const f = fixture(async () => Promise.reject(new Error('journal disk gone')), async () => Promise.reject(new Error('OBF EIO')));
  const p = f.begin();
  await expect(p).rejects.toBeInstanceOf(StoreError);
  await expect(p).rejects.toMatchObject({ failure: { kind: 'write-error' }, message: expect.stringMatching(/could not be recorded anywhere; writes are refused/) });
  expect(f.letGone()).toBe(0);
  expect(f.inv.running).toBe(false);
});

test('a hanging superblock write is given up after 2 s, a hanging journal after 5 s; the hanging write still counts for `writing`', async () => {
  jest.useFakeTimers();
  const f = fixture(async () => undefined, never);
  let done = false;
  const p = f.begin().then(() => (done = true));
  await jest.advanceTimersByTimeAsync(1_999);
  expect(done).toBe(false);
  await jest.advanceTimersByTimeAsync(1);
  await p;
  expect(f.letGone()).toBe(1);
  expect(f.sb.writing).toBe(true); // given up on, may still land: the snapshot has not ended

  const g = fixture(never, async () => Promise.reject(new Error('OBF EIO')));
  const q = g.begin();
  const outcome = q.then(
    () => 'recorded',
    (err: Error) => err.message,
  );
  await jest.advanceTimersByTimeAsync(4_999);
  expect(g.inv.running).toBe(true);
  await jest.advanceTimersByTimeAsync(1);
  expect(await outcome).toMatch(/could not be recorded anywhere/);
  expect(g.inv.running).toBe(false);
});

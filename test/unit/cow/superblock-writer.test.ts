/**
 * The superblock a session writes (src/cow/superblock-writer.ts): the first one, and the
 * rewrites, one at a time, never taking an INVALID snapshot back.
 */
import { decodeSuperblock, encodeSuperblock, ObfPolicy, ObfReason, ObfState, type ObfSuperblock } from '../../../src/obf/format';
import { initialSuperblock, sourceDesignator, SuperblockWriter } from '../../../src/cow/superblock-writer';
import type { SnapshotState } from '../../../src/cow/session-record';
import { MemoryStore } from '../../../src/store/memory';
import { DelegatingStore } from '../../helpers/store';

/** An appender stand-in whose rewrites wait for the test to let each one end. */
class Rewrites {
  readonly started: Array<Partial<ObfSuperblock>> = [];
  private readonly ends: Array<(err?: Error) => void> = [];
  writeSuperblock(update: Partial<ObfSuperblock>): Promise<void> {
    this.started.push(update);
    return new Promise<void>((resolve, reject) => this.ends.push((err) => (err ? reject(err) : resolve())));
  }
  /** Ends the oldest running rewrite (failed when `err` is given). */
  end(err?: Error): void {
    this.ends.shift()!(err);
  }
}

const settle = () => new Promise((r) => setImmediate(r));

test('rewrites run one at a time, in the order asked; writing until the last one ends', async () => {
  const a = new Rewrites();
  const w = new SuperblockWriter(a, { state: 'ACTIVE' });
  expect(w.writing).toBe(false);
  const first = w.rewrite({ institutionTimeMs: 1 });
  const second = w.rewrite({ state: ObfState.MARKED });
  await settle();
  expect(a.started).toEqual([{ institutionTimeMs: 1 }]); // the second waits for the first
  expect(w.writing).toBe(true);
  a.end();
  await first;
  await settle();
  expect(a.started).toEqual([{ institutionTimeMs: 1 }, { state: ObfState.MARKED }]);
  expect(w.writing).toBe(true);
  a.end();
  await second;
  expect(w.writing).toBe(false);
});

test('a failed rewrite fails its caller only: the next one still runs', async () => {
  const a = new Rewrites();
  const w = new SuperblockWriter(a, { state: 'ACTIVE' });
  const failed = w.rewrite({ state: ObfState.MARKED });
  const next = w.rewrite({ institutionTimeMs: 2 });
  await settle();
  a.end(new Error('EIO'));
  await expect(failed).rejects.toThrow('EIO');
  await settle();
  a.end();
  await next;
  expect(a.started).toHaveLength(2);
  expect(w.writing).toBe(false);
});

test('INVALID is final: once the snapshot is INVALID, only INVALID rewrites reach the OBF', async () => {
  const a = new Rewrites();
  const record: { state: SnapshotState } = { state: 'ACTIVE' };
  const w = new SuperblockWriter(a, record);
  const running = w.rewrite({ institutionTimeMs: 3 });
  const late = w.rewrite({ state: ObfState.SEALED }); // queued behind it
  await settle(); // the first is writing: the check is made when a rewrite starts
  record.state = 'INVALID';
  const invalid = w.rewrite({ state: ObfState.INVALID, reason: ObfReason.OBF_FULL });
  await settle();
  a.end();
  await running;
  await late; // dropped: resolves without a write
  await settle();
  expect(a.started).toEqual([{ institutionTimeMs: 3 }, { state: ObfState.INVALID, reason: ObfReason.OBF_FULL }]);
  a.end();
  await invalid;
});

test('the first superblock: ACTIVE, generation 1, the source named by its NAA or a hash of its name', () => {
  const obf = new MemoryStore({ blocks: 4096n, blockSize: 4096 });
  const withNaa = new MemoryStore({ blocks: 2048n, blockSize: 512 });
  const sb = initialSuperblock({ snapshotId: '6a0c1e2f-3b4d-4e5f-8a9b-0c1d2e3f4a5b', seriesId: '11111111-2222-4333-8444-555555555555', source: withNaa, obf, chunkBytes: 65536, policy: 'protect-snapshot', now: 1767225600000 });
  expect(sb).toMatchObject({ blockSize: 4096, sourceBlockSize: 512, sourceCapacity: 2048n, chunkSize: 65536, capacityBlocks: 4096n, state: ObfState.ACTIVE, policy: ObfPolicy.PROTECT_SNAPSHOT, reason: ObfReason.NONE, generation: 1n });
  expect(decodeSuperblock(encodeSuperblock(sb))).toMatchObject({ snapshotId: sb.snapshotId, sourceDesignator: sb.sourceDesignator });

  expect(withNaa.identity.naa).toBeDefined();
  expect(sourceDesignator(withNaa)).toEqual({ designatorType: 3, designator: Buffer.from(withNaa.identity.naa!) });
  const noNaa = new (class extends DelegatingStore {
    override get identity() {
      return { name: 'a-source', serial: 'x' };
    }
  })(withNaa);
  const hashed = sourceDesignator(noNaa);
  expect(hashed.designatorType).toBe(0);
  expect(hashed.designator).toHaveLength(16);
  expect(sourceDesignator(noNaa).designator.equals(hashed.designator)).toBe(true); // stable across restarts
});

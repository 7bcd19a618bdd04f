/**
 * The capture path alone (src/cow/capture.ts): a ChunkCapture over memory stores, with a session
 * stand-in as its owner. Capture before change, first capture wins, windows of chunks, and the
 * policies' ways when a capture fails — refused with the policy's store failure
 * (protect-snapshot), or the owner's invalidate (protect-application).
 */
import crypto from 'node:crypto';
import pino from 'pino';
import { ChunkCapture, type CaptureOwner } from '../../../src/cow/capture';
import { CaptureRate } from '../../../src/cow/capture-rate';
import { ChunkTable } from '../../../src/cow/chunk-table';
import { ObfAppender } from '../../../src/cow/obf-writer';
import type { SnapshotReason } from '../../../src/cow/session-record';
import { initialSuperblock } from '../../../src/cow/superblock-writer';
import { decodeSuperblock, encodeSuperblock, OBF_LOG_START_LBA, RollingHash } from '../../../src/obf/format';
import { scanLog } from '../../../src/obf/log';
import { MemoryStore } from '../../../src/store/memory';
import { StoreError } from '../../../src/store/store';
import { DelegatingStore } from '../../helpers/store';

const log = pino({ level: 'silent' });
const CHUNK = 16 * 1024; // 32 source blocks

/** A source whose reads wait while `stall` is set. */
class StallingSource extends DelegatingStore {
  stall?: Promise<void>;
  reads = 0;
  onRead?: () => void;
  override async read(lba: bigint, count: number, into?: Buffer): Promise<Buffer> {
    this.reads++;
    this.onRead?.();
    if (this.stall) await this.stall;
    return this.inner.read(lba, count, into);
  }
}

class Owner implements CaptureOwner {
  readonly id = 's1';
  capturing = true;
  invalidating: Promise<void> | undefined;
  readonly invalidated: Array<[SnapshotReason, string]> = [];
  constructor(readonly record: { policy: 'protect-application' | 'protect-snapshot'; cowTimeoutMs: number }) {}
  invalidate(reason: SnapshotReason, detail: string): Promise<void> {
    this.invalidated.push([reason, detail]);
    this.capturing = false;
    return Promise.resolve();
  }
}

async function fixture(o: { policy?: 'protect-application' | 'protect-snapshot'; obfBlocks?: bigint; cowTimeoutMs?: number; sourceBlocks?: bigint } = {}) {
  const blocks = o.sourceBlocks ?? 4096n;
  const mem = new MemoryStore({ blocks, blockSize: 512 });
  const t0 = crypto.randomBytes(Number(blocks) * 512);
  await mem.write(0n, t0);
  const below = new StallingSource(mem);
  const obf = new MemoryStore({ blocks: o.obfBlocks ?? 8192n, blockSize: 512 });
  const sb = initialSuperblock({ snapshotId: crypto.randomUUID(), seriesId: crypto.randomUUID(), source: below, obf, chunkBytes: CHUNK, policy: o.policy ?? 'protect-application', now: Date.now() });
  await obf.write(0n, encodeSuperblock(sb));
  const appender = new ObfAppender(obf, sb, { endLba: OBF_LOG_START_LBA, nextSequence: 1n, dataRecords: 0n, dataBytes: 0n, rolling: new RollingHash(), markerSequence: 0n });
  const owner = new Owner({ policy: o.policy ?? 'protect-application', cowTimeoutMs: o.cowTimeoutMs ?? 5000 });
  const chunks = new ChunkTable(CHUNK, 512, 512);
  const rate = new CaptureRate();
  const capture = new ChunkCapture(owner, below, chunks, appender, rate, log);
  capture.readFrom(below, CHUNK);
  /** The originals the OBF holds, by source LBA. */
  const records = async () => {
    const scan = await scanLog((lba, n) => obf.read(lba, n), decodeSuperblock(await obf.read(0n, 1)));
    return Promise.all(scan.records.map(async (r) => ({ lba: r.sourceLba, data: await obf.read(r.dataLba, r.dataBlocks) })));
  };
  return { mem, below, obf, appender, owner, chunks, rate, capture, t0, records };
}

test('capture before change: every chunk a change touches is in the OBF, with its original, when beforeChange resolves', async () => {
  const f = await fixture();
  await f.capture.beforeChange(20n, 50n); // chunks 0, 1, 2: not captured yet, so one record
  expect([...f.chunks.where.keys()].sort()).toEqual([0, 1, 2]);
  expect(f.chunks.inProgress.size).toBe(0);
  await f.capture.beforeChange(60n, 100n); // chunks 1 to 4: 3 and 4 are new, one record
  await f.capture.beforeChange(200n, 1n); // chunk 6 alone
  const recs = await f.records();
  expect(recs.map((r) => [r.lba, r.data.length / CHUNK]).sort((a, b) => Number(a[0]) - Number(b[0]))).toEqual([
    [0n, 3],
    [96n, 2],
    [192n, 1],
  ]);
  for (const r of recs) expect(r.data.equals(f.t0.subarray(Number(r.lba) * 512, Number(r.lba) * 512 + r.data.length))).toBe(true);
  // where each chunk's original starts in the OBF (a record's chunks back to back)
  const scan = await scanLog((lba, n) => f.obf.read(lba, n), decodeSuperblock(await f.obf.read(0n, 1)));
  const dataLba = (source: bigint) => Number(scan.records.find((r) => r.sourceLba === source)!.dataLba);
  expect([0, 1, 2, 3, 4, 6].map((c) => f.chunks.where.get(c))).toEqual([
    dataLba(0n),
    dataLba(0n) + 32,
    dataLba(0n) + 64,
    dataLba(96n),
    dataLba(96n) + 32,
    dataLba(192n),
  ]);
  expect(f.rate.perSecond()).toBeGreaterThanOrEqual(0);
});

test('first capture wins: concurrent changes to a chunk share one capture; a captured chunk costs nothing more', async () => {
  const f = await fixture();
  let go!: () => void;
  f.below.stall = new Promise<void>((r) => (go = r));
  const changes = [f.capture.beforeChange(0n, 1n), f.capture.beforeChange(5n, 3n), f.capture.beforeChange(31n, 1n)];
  await new Promise((r) => setImmediate(r));
  expect(f.chunks.inProgress.size).toBe(1);
  go();
  f.below.stall = undefined;
  await Promise.all(changes);
  await f.capture.beforeChange(10n, 2n);
  expect(f.below.reads).toBe(1);
  expect(f.appender.state.dataRecords).toBe(1n);
});

test('not capturing: changes pass with nothing captured, after an invalidation in progress is recorded', async () => {
  const f = await fixture();
  let recorded!: () => void;
  f.owner.invalidating = new Promise<void>((r) => (recorded = r));
  f.owner.capturing = false;
  let passed = false;
  const change = f.capture.beforeChange(0n, 1n).then(() => (passed = true));
  await new Promise((r) => setImmediate(r));
  expect(passed).toBe(false); // waits for the INVALID state to be durable
  recorded();
  await change;
  expect(f.chunks.where.size).toBe(0);
  expect(await f.capture.changeWith(0n, [Buffer.alloc(512)], { fua: false })).toBe(false);
});

test('OBF full: protect-snapshot refuses the change (no-space) and the snapshot stays as it was; protect-application invalidates', async () => {
  // room for the superblock, one record of a chunk and the MARKER + SEAL reserve
  const obfBlocks = 1n + 1n + BigInt(CHUNK / 512) + 2n;
  const snap = await fixture({ policy: 'protect-snapshot', obfBlocks });
  await snap.capture.beforeChange(0n, 1n);
  const refused = snap.capture.beforeChange(100n, 1n);
  await expect(refused).rejects.toBeInstanceOf(StoreError);
  await expect(refused).rejects.toMatchObject({ failure: { kind: 'no-space' } });
  expect(snap.owner.invalidated).toEqual([]);
  expect(snap.owner.capturing).toBe(true);

  const app = await fixture({ policy: 'protect-application', obfBlocks });
  await app.capture.beforeChange(0n, 1n);
  await app.capture.beforeChange(100n, 1n); // goes on: the owner made the snapshot INVALID first
  expect(app.owner.invalidated).toEqual([['OBF_FULL', expect.stringMatching(/OBF full/)]]);
});

test('a capture slower than cow_timeout_ms: command-timeout under protect-snapshot, COW_TIMEOUT under protect-application', async () => {
  for (const policy of ['protect-snapshot', 'protect-application'] as const) {
    const f = await fixture({ policy, cowTimeoutMs: 50 });
    let go!: () => void;
    f.below.stall = new Promise<void>((r) => (go = r));
    const change = f.capture.beforeChange(0n, 1n);
    if (policy === 'protect-snapshot') await expect(change).rejects.toMatchObject({ failure: { kind: 'command-timeout' } });
    else {
      await change;
      expect(f.owner.invalidated).toEqual([['COW_TIMEOUT', expect.stringMatching(/took longer than 50 ms/)]]);
    }
    go();
    await f.chunks.settled();
  }
});

test('a source that cannot be read: SOURCE_IO_ERROR, hardware-write-error under protect-snapshot', async () => {
  const f = await fixture({ policy: 'protect-snapshot' });
  f.below.stall = Promise.reject(new Error('EIO'));
  f.below.stall.catch(() => undefined);
  await expect(f.capture.beforeChange(0n, 1n)).rejects.toMatchObject({ failure: { kind: 'hardware-write-error' }, message: expect.stringMatching(/SOURCE_IO_ERROR/) });
});

test('needsNothing: true only when every chunk a change touches is captured, or capturing has stopped, and nothing is being invalidated', async () => {
  const f = await fixture();
  expect(f.capture.needsNothing(0n, 1n)).toBe(false);
  await f.capture.beforeChange(0n, 64n); // chunks 0 and 1
  expect(f.capture.needsNothing(0n, 64n)).toBe(true);
  expect(f.capture.needsNothing(31n, 2n)).toBe(true);
  expect(f.capture.needsNothing(60n, 8n)).toBe(false); // into chunk 2
  f.owner.invalidating = new Promise<void>(() => undefined);
  expect(f.capture.needsNothing(0n, 1n)).toBe(false);
  f.owner.invalidating = undefined;
  f.owner.capturing = false;
  expect(f.capture.needsNothing(1000n, 8n)).toBe(true);
});

test('a change over many chunks captures them in windows of 4 MiB, in records of 1 MiB, every chunk once', async () => {
  const f = await fixture({ sourceBlocks: 32768n, obfBlocks: 40000n });
  let most = 0;
  f.below.onRead = () => (most = Math.max(most, f.chunks.inProgress.size));
  await f.capture.beforeChange(0n, 32768n); // 1024 chunks of 16 KiB: 16 MiB
  expect(most).toBe(256); // a window: 4 MiB of chunks
  expect(f.chunks.where.size).toBe(1024);
  expect(f.appender.state.dataRecords).toBe(16n); // 1 MiB each
  const recs = await f.records();
  expect(Buffer.concat(recs.sort((a, b) => Number(a.lba - b.lba)).map((r) => r.data)).equals(f.t0)).toBe(true);
});

/**
 * Write-back of first writes (CowStore + SnapshotSession, protect-application): a write without
 * FUA that needs a capture completes before it reaches the source, and is made in the background
 * in the ordinary order (the original durable in the OBF first). Checked here: what waits for a
 * pending write (overlapping reads, writes, UNMAP, GET LBA STATUS, flush, terminate) and what does
 * not; that writes land in the order they completed (the source against a model of the writes,
 * the image against the bytes held at institution); what never takes the path (FUA,
 * protect-snapshot); the bound on pending writes; a pending write whose capture fails, and one
 * that cannot reach the source (reported once, by the next flush).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import pino from 'pino';
import { CowStore, WRITE_BACK_MAX_WRITES } from '../../../src/cow/cow-store';
import { SnapshotSession } from '../../../src/cow/session';
import { FileStore } from '../../../src/store/file';
import { MemoryStore } from '../../../src/store/memory';
import { StoreError, type Store } from '../../../src/store/store';
import { MemJournal, readAll, rebuild } from '../../helpers/obf';
import { xorshift } from '../../helpers/rng';
import { FaultyStore } from '../../helpers/store';
import { tempFiles } from '../../helpers/tmp';

const log = pino({ level: 'silent' });
const KiB = 1024;
const MiB = 1024 * KiB;
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const files = tempFiles('write-back');

/** A stall the test opens: OBF writes wait on it. */
function stallOf(obf: FaultyStore): () => void {
  let open!: () => void;
  obf.stall = new Promise<void>((r) => (open = r));
  return () => {
    obf.stall = undefined;
    open();
  };
}

/** Settled yet? (after letting the event loop turn a few times) */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
}

/**
 * A session on a memory source (8 MiB of random bytes) with a FaultyStore OBF, or on a file
 * source with a file OBF (the commit carries first writes: changeWith). Write-back is the default.
 */
async function setup(o: { kind?: 'memory' | 'file'; chunk?: number; policy?: 'protect-application' | 'protect-snapshot'; writeBack?: boolean } = {}) {
  const bytes = 8 * MiB;
  let inner: Store;
  let obfInner: Store;
  if (o.kind === 'file') {
    const src = files.fresh('src');
    fs.writeFileSync(src, crypto.randomBytes(bytes));
    inner = await FileStore.open({ path: src });
    obfInner = await FileStore.open({ path: files.fresh('obf'), size: 16 * MiB });
  } else {
    inner = new MemoryStore({ blocks: BigInt(bytes / 512), blockSize: 512 });
    await inner.write(0n, crypto.randomBytes(bytes));
    obfInner = new MemoryStore({ blocks: BigInt((16 * MiB) / 512), blockSize: 512 });
  }
  const cow = new CowStore(inner);
  // A file OBF is used as it is (the capture commit writes its file); a memory one can stall.
  const obf = o.kind === 'file' ? new CowStore(obfInner) : new FaultyStore(obfInner);
  const journal = new MemJournal();
  let oracle!: Buffer;
  const session = await SnapshotSession.institute({
    source: cow,
    sourceKey: '/backstores/x/src',
    obf,
    obfSpec: 'test',
    journal,
    chunkBytes: o.chunk ?? 64 * KiB,
    policy: o.policy,
    writeBack: o.writeBack,
    log,
    onHeld: async () => {
      oracle = await readAll(inner);
    },
  });
  const close = async () => {
    await inner.close();
    await obfInner.close();
  };
  return { inner, cow, obf, journal, session, oracle, close };
}

test('a first write completes before its capture; overlapping reads, writes, UNMAP, GET LBA STATUS and flush wait for it, other requests do not', async () => {
  const { inner, cow, obf, session, oracle } = await setup();
  expect(session.status().write_back).toBe(true);
  const open = stallOf(obf as FaultyStore);
  const a = Buffer.alloc(512, 0xa1);
  await cow.write(10n, a); // completes although its capture's OBF write is stalled
  expect(cow.pendingWrites).toEqual({ writes: 1, bytes: 512 });
  expect(session.status().records).toBe(0);
  expect(sha(await inner.read(10n, 1))).toBe(sha(oracle.subarray(10 * 512, 11 * 512)));
  // outside the pending write's blocks nothing waits, in its chunk or elsewhere
  expect(sha(await cow.read(11n, 1))).toBe(sha(oracle.subarray(11 * 512, 12 * 512)));
  expect((await cow.extents(200n, 8n)).length).toBeGreaterThan(0);
  const read = cow.read(8n, 4);
  const extents = cow.extents(10n, 1n);
  const flush = cow.flush();
  expect(await settled(read)).toBe(false);
  expect(await settled(extents)).toBe(false);
  expect(await settled(flush)).toBe(false);
  open();
  const got = await read;
  expect(sha(got.subarray(2 * 512, 3 * 512))).toBe(sha(a));
  await extents;
  await flush;
  expect(cow.pendingWrites.writes).toBe(0);
  expect(session.status().records).toBe(1);
  expect(sha(await inner.read(10n, 1))).toBe(sha(a));
  // a write and an UNMAP over a pending write land after it
  const reopen = stallOf(obf as FaultyStore);
  await cow.write(BigInt(5 * 128), Buffer.alloc(1024, 0xb1));
  const over = cow.write(BigInt(5 * 128), Buffer.alloc(512, 0xb2));
  const unmap = cow.unmap(BigInt(5 * 128 + 1), 1n);
  expect(await settled(over)).toBe(false);
  expect(await settled(unmap)).toBe(false);
  reopen();
  await over;
  await unmap;
  await cow.flush();
  const both = await inner.read(BigInt(5 * 128), 2);
  expect(both.subarray(0, 512).equals(Buffer.alloc(512, 0xb2))).toBe(true);
  expect(both.subarray(512).equals(Buffer.alloc(512))).toBe(true);
  await session.terminate();
  expect(sha(await rebuild(inner, obf))).toBe(sha(oracle));
});

test.each(['memory', 'file'] as const)('writes land in the order they completed: the source equals a model of the writes, the image the bytes held at institution (%s stores)', async (kind) => {
  const seed = Number(process.env.COW_SEED ?? crypto.randomInt(1, 2 ** 31));
  console.info(`write-back seed ${seed} (replay with COW_SEED=${seed})`);
  const { inner, cow, obf, session, oracle, close } = await setup({ kind });
  try {
    const model = Buffer.from(oracle);
    const blocks = Number(cow.blocks);
    const writers = 4;
    const span = blocks / writers; // each writer keeps to its quarter: the final bytes are defined
    let pendingSeen = 0;
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        const r = xorshift(seed + w);
        for (let i = 0; i < 150; i++) {
          const n = [1, 8, 64, 200][r.int(4)];
          // mostly into a few chunks, so rewrites hit writes still pending
          const lba = w * span + (r.int(4) === 0 ? r.int(span - n) : r.int(8) * 128 + r.int(120 - Math.min(n, 119)));
          const data = crypto.randomBytes(n * 512);
          await cow.write(BigInt(lba), data, { fua: r.int(10) === 0 });
          data.copy(model, lba * 512);
          data.fill(0); // the caller reuses its buffer: the pending copy must not see it
          pendingSeen = Math.max(pendingSeen, cow.pendingWrites.writes);
        }
      }),
    );
    expect(pendingSeen).toBeGreaterThan(0);
    await cow.flush();
    expect(sha(await readAll(inner))).toBe(sha(model));
    expect((await session.terminate()).state).toBe('SEALED');
    expect(sha(await rebuild(inner, kind === 'file' ? (obf as CowStore).inner : obf))).toBe(sha(oracle));
  } finally {
    await close();
  }
});

test('FUA writes, and every write of a protect-snapshot session, complete only after their capture', async () => {
  {
    const { cow, obf } = await setup();
    const open = stallOf(obf as FaultyStore);
    const fua = cow.write(0n, Buffer.alloc(512, 1), { fua: true });
    expect(await settled(fua)).toBe(false);
    open();
    await fua;
    expect(cow.pendingWrites.writes).toBe(0);
  }
  {
    const { cow, obf, session } = await setup({ policy: 'protect-snapshot' });
    expect(session.status().write_back).toBe(false);
    const open = stallOf(obf as FaultyStore);
    const w = cow.write(0n, Buffer.alloc(512, 1));
    expect(await settled(w)).toBe(false);
    open();
    await w;
  }
  {
    const { cow, obf, session } = await setup({ writeBack: false });
    expect(session.status().write_back).toBe(false);
    const open = stallOf(obf as FaultyStore);
    const w = cow.write(0n, Buffer.alloc(512, 1));
    expect(await settled(w)).toBe(false);
    open();
    await w;
  }
  const cow = new CowStore(new MemoryStore({ blocks: 2048n, blockSize: 512 }));
  await expect(
    SnapshotSession.institute({ source: cow, sourceKey: 's', obf: new MemoryStore({ blocks: 65536n, blockSize: 512 }), obfSpec: 'm', journal: new MemJournal(), log, policy: 'protect-snapshot', writeBack: true }),
  ).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/write_back needs the protect-application policy/) });
  expect(cow.claimed).toBe(false);
});

test(`at most ${WRITE_BACK_MAX_WRITES} writes are pending; later first writes wait for their captures`, async () => {
  const { cow, obf, session } = await setup({ chunk: 4 * KiB });
  const open = stallOf(obf as FaultyStore);
  const writes = Array.from({ length: WRITE_BACK_MAX_WRITES + 20 }, (_, i) => cow.write(BigInt(i * 8), Buffer.alloc(512, i & 0xff)));
  const done = await Promise.all(writes.map((w) => settled(w)));
  expect(done.filter(Boolean)).toHaveLength(WRITE_BACK_MAX_WRITES);
  expect(cow.pendingWrites.writes).toBe(WRITE_BACK_MAX_WRITES);
  open();
  await Promise.all(writes);
  await cow.flush();
  expect(session.status().records).toBe(WRITE_BACK_MAX_WRITES + 20);
});

test('a pending write whose capture fails still reaches the source (INVALID OBF_IO_ERROR); one that cannot reach it fails the next flush, once', async () => {
  {
    const { inner, cow, obf, session, journal } = await setup();
    (obf as FaultyStore).failWrites = true;
    await cow.write(0n, Buffer.alloc(512, 0x77));
    await cow.flush();
    expect((await inner.read(0n, 1))[0]).toBe(0x77);
    expect(session.status()).toMatchObject({ state: 'INVALID', reason: 'OBF_IO_ERROR' });
    expect(journal.last()).toMatchObject({ state: 'INVALID', reason: 'OBF_IO_ERROR' });
  }
  {
    // the OBF and the journal both failing: the snapshot cannot be given up durably, so the write
    // may not reach the source uncaptured; it completed already, so the next flush says so
    const { inner, cow, obf, journal, oracle } = await setup();
    (obf as FaultyStore).failWrites = true;
    journal.fail = true;
    await cow.write(0n, Buffer.alloc(512, 0x77));
    const err = await cow.flush().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).message).toMatch(/write-back.*did not reach the source/);
    expect(sha(await inner.read(0n, 1))).toBe(sha(oracle.subarray(0, 512)));
    await expect(cow.flush()).resolves.toBeUndefined();
  }
});

test('terminate waits for the captures of pending writes; a kernel copy into the source does not pass them', async () => {
  const { inner, cow, obf, session, oracle } = await setup();
  const open = stallOf(obf as FaultyStore);
  await cow.write(BigInt(3 * 128), Buffer.alloc(512, 0x33));
  await expect(cow.passThrough(async () => true)).resolves.toBeUndefined(); // the copy manager then writes through the filter
  const terminated = session.terminate();
  expect(await settled(terminated)).toBe(false);
  open();
  expect((await terminated).records).toBe(1);
  await cow.flush();
  expect(cow.pendingWrites.writes).toBe(0);
  expect((await inner.read(BigInt(3 * 128), 1))[0]).toBe(0x33);
  expect(sha(await rebuild(inner, obf))).toBe(sha(oracle));
});

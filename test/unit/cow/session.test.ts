/**
 * Snapshot sessions over memory stores: randomized concurrent writes checked against an oracle
 * taken while writes are held (a copy of the source's bytes, independent of the COW code), the
 * OBF read back by the format's own scanner and laid over the source, first-capture-once, group
 * commit, failure policies, COW timeout, hold timeout, crash and resume with a torn record.
 * Seeds are printed; COW_SEED=<n> replays.
 */
import crypto from 'node:crypto';
import { CowStore } from '../../../src/cow/cow-store';
import { decodeSuperblock, ObfState } from '../../../src/obf/format';
import { scanLog } from '../../../src/obf/log';
import { SnapshotSession, type SessionJournal, type SessionRecord } from '../../../src/cow/session';
import { SnapshotViewStore } from '../../../src/cow/view-store';
import { decodeSense } from '../../../src/scsi/sense';
import { MemoryStore } from '../../../src/store/memory';
import { StoreError, type Store } from '../../../src/store/store';
import { replyOfError } from '../../../src/target/scsi/sense-errors';
import pino from 'pino';
import { xorshift } from '../../helpers/rng';
import { DelegatingStore } from '../../helpers/store';
import { whileHeld } from '../../helpers/held';

const log = pino({ level: 'silent' });
const KiB = 1024;
const MiB = 1024 * KiB;

class MemJournal implements SessionJournal {
  readonly saved: SessionRecord[] = [];
  fail = false;
  async save(r: SessionRecord): Promise<void> {
    if (this.fail) throw new Error('journal disk gone');
    this.saved.push({ ...r });
  }
  last(): SessionRecord {
    return this.saved[this.saved.length - 1];
  }
}

/** A store that fails or stalls writes on demand. */
class FaultyStore extends DelegatingStore {
  failWrites = false;
  stall?: Promise<void>;
  writes = 0;
  flushes = 0;
  override async write(lba: bigint, data: Buffer, opts?: { fua?: boolean }) {
    this.writes++;
    if (this.stall) await this.stall;
    if (this.failWrites) throw new StoreError({ kind: 'write-error' }, 'injected OBF write error');
    return this.inner.write(lba, data, opts);
  }
  override async flush() {
    this.flushes++;
    if (this.failWrites) throw new StoreError({ kind: 'write-error' }, 'injected OBF flush error');
    return this.inner.flush();
  }
}


const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

async function readAll(s: Store): Promise<Buffer> {
  return Buffer.from(await s.read(0n, Number(s.blocks)));
}

/** The image as of T0 rebuilt independently of the session: source now + every OBF record over it. */
async function rebuild(source: Store, obf: Store): Promise<Buffer> {
  const img = await readAll(source);
  const sb = decodeSuperblock(await obf.read(0n, 1));
  const scan = await scanLog((lba, n) => obf.read(lba, n), sb);
  for (const r of scan.records) {
    const data = await obf.read(r.dataLba, r.dataBlocks);
    data.copy(img, Number(r.sourceLba) * source.blockSize);
  }
  return img;
}

async function setup(o: { sourceMiB?: number; obfBlocks?: bigint; chunk?: number; policy?: 'protect-application' | 'protect-snapshot'; cowTimeoutMs?: number } = {}) {
  const inner = new MemoryStore({ blocks: BigInt(((o.sourceMiB ?? 8) * MiB) / 512), blockSize: 512 });
  await inner.write(0n, crypto.randomBytes((o.sourceMiB ?? 8) * MiB));
  const cow = new CowStore(inner);
  const obfMem = new MemoryStore({ blocks: o.obfBlocks ?? BigInt((32 * MiB) / 512), blockSize: 512 });
  const obf = new FaultyStore(obfMem);
  const journal = new MemJournal();
  let oracle: Buffer | undefined;
  const heldCopy = async () => {
    oracle = await readAll(inner);
  };
  const session = await whileHeld(cow, heldCopy, () =>
    SnapshotSession.institute({
      source: cow,
      sourceKey: '/backstores/ramdisk/src',
      obf,
      obfSpec: 'memory:32M',
      journal,
      chunkBytes: o.chunk ?? 64 * KiB,
      policy: o.policy,
      cowTimeoutMs: o.cowTimeoutMs,
      log,
    }),
  );
  return { inner, cow, obf, obfMem, journal, session, oracle: oracle! };
}

/** Random writes, WRITE SAME-like fills and unmaps from several "initiators" at once. */
async function workload(cow: CowStore, seed: number, ops: number, writers = 4): Promise<void> {
  const r = xorshift(seed);
  const blocks = Number(cow.blocks);
  await Promise.all(
    Array.from({ length: writers }, async () => {
      for (let i = 0; i < ops / writers; i++) {
        const n = [1, 8, 128, 300, 2048][r.int(5)];
        const lba = BigInt(r.int(blocks - n));
        const kind = r.int(10);
        if (kind === 0) await cow.unmap(lba, BigInt(n));
        else if (kind === 1) await cow.write(lba, Buffer.alloc(n * 512, r.int(256)));
        else await cow.write(lba, crypto.randomBytes(n * 512));
      }
    }),
  );
}

test.each([1, 2, 3])('randomized concurrent writes: view and source+OBF equal the image held at institution (run %i)', async () => {
  const seed = Number(process.env.COW_SEED ?? crypto.randomInt(1, 2 ** 31));
  console.info(`cow session seed ${seed} (replay with COW_SEED=${seed})`);
  const { cow, obf, session, oracle, inner } = await setup();
  const view = new SnapshotViewStore(session);
  // views read while the writes go on must see the T0 image
  let viewChecks = 0;
  let writing = true;
  const viewer = (async () => {
    const r = xorshift(seed ^ 0x5a5a);
    while (writing) {
      const lba = r.int(Number(cow.blocks) - 256);
      const got = await view.read(BigInt(lba), 256);
      expect(sha(got)).toBe(sha(oracle.subarray(lba * 512, (lba + 256) * 512)));
      viewChecks++;
    }
  })();
  await workload(cow, seed, 400);
  writing = false;
  await viewer;
  expect(viewChecks).toBeGreaterThan(0);
  expect(sha(await view.read(0n, Number(cow.blocks)))).toBe(sha(oracle));
  const st = await session.terminate();
  expect(st.state).toBe('SEALED');
  expect(sha(await rebuild(inner, obf))).toBe(sha(oracle));
  // the source itself moved on
  expect(sha(await readAll(inner))).not.toBe(sha(oracle));
  // after terminate the view is gone (NOT READY)
  await expect(view.read(0n, 1)).rejects.toMatchObject({ failure: { kind: 'not-ready' } });
});

test('a chunk is captured once: concurrent writes to it share one capture, rewrites add nothing; commits are grouped', async () => {
  const { cow, session } = await setup();
  // 64 concurrent writes into 8 chunks
  await Promise.all(Array.from({ length: 64 }, (_, i) => cow.write(BigInt((i % 8) * 128 + (i % 5)), crypto.randomBytes(512))));
  let st = session.status();
  expect(st.records).toBe(8);
  expect(st.captured_chunks).toBe(8);
  expect(st.commits).toBeLessThan(8);
  await cow.write(0n, crypto.randomBytes(64 * KiB));
  st = session.status();
  expect(st.records).toBe(8);
  // a write across a chunk boundary captures both chunks, as one record
  await cow.write(BigInt(20 * 128 - 1), crypto.randomBytes(1024));
  expect(session.status()).toMatchObject({ records: 9, captured_chunks: 10 });
  // across a captured chunk and one that is not: only the latter
  await cow.write(BigInt(21 * 128 - 1), crypto.randomBytes(1024));
  expect(session.status()).toMatchObject({ records: 10, captured_chunks: 11 });
});

test('hold: writes in flight drain before arming, writes arriving meanwhile wait and are captured', async () => {
  const inner = new MemoryStore({ blocks: 16384n, blockSize: 512 });
  const slow = new FaultyStore(inner);
  let open!: () => void;
  slow.stall = new Promise<void>((r) => (open = r));
  const cow = new CowStore(slow);
  const inflight = cow.write(0n, Buffer.alloc(512, 1)); // stalls in the store
  const obf = new MemoryStore({ blocks: 65536n, blockSize: 512 });
  let heldSaw: number | undefined;
  const instituting = whileHeld(cow, () => { heldSaw = slow.writes; }, () =>
    SnapshotSession.institute({ source: cow, sourceKey: 's', obf, obfSpec: 'memory', journal: new MemJournal(), log }),
  );
  await new Promise((r) => setTimeout(r, 20));
  expect(cow.held).toBe(true);
  const late = cow.write(128n, Buffer.alloc(512, 2)); // waits at the door
  open();
  slow.stall = undefined;
  const session = await instituting;
  await Promise.all([inflight, late]);
  expect(heldSaw).toBe(1); // only the in-flight write had reached the store while held
  expect(session.status().records).toBe(1); // the late write's chunk was captured
  expect(session.status().institute_pause_ms).toBeGreaterThan(0);
});

test('hold timeout: institute fails, the session is recorded ABANDONED, writes go on uncaptured', async () => {
  const inner = new MemoryStore({ blocks: 16384n, blockSize: 512 });
  const slow = new FaultyStore(inner);
  let open!: () => void;
  slow.stall = new Promise<void>((r) => (open = r));
  const cow = new CowStore(slow);
  const inflight = cow.write(0n, Buffer.alloc(512, 1));
  const journal = new MemJournal();
  const obf = new MemoryStore({ blocks: 65536n, blockSize: 512 });
  await expect(SnapshotSession.institute({ source: cow, sourceKey: 's', obf, obfSpec: 'm', journal, log, drainTimeoutMs: 30 })).rejects.toThrow(/institute failed: 1 writes still in flight after 30 ms/);
  expect(cow.held).toBe(false);
  expect(cow.capturing).toBe(false);
  expect(journal.last()).toMatchObject({ state: 'INVALID', reason: 'ABANDONED' });
  open();
  slow.stall = undefined;
  await inflight;
  await cow.write(8n, Buffer.alloc(512, 3));
});

test('OBF full, protect-application: the write goes on, the snapshot is INVALID OBF_FULL in journal and superblock, capturing stops', async () => {
  // room for the superblock + 3 records of 1+128 blocks + MARKER/SEAL
  const { cow, obf, journal, session, inner } = await setup({ obfBlocks: 1n + 3n * 129n + 2n });
  for (let c = 0; c < 3; c++) await cow.write(BigInt(c * 128), Buffer.alloc(512, 7));
  expect(session.status().records).toBe(3);
  await cow.write(BigInt(10 * 128), Buffer.alloc(512, 9));
  expect((await inner.read(BigInt(10 * 128), 1))[0]).toBe(9);
  expect(session.state).toBe('INVALID');
  expect(journal.last()).toMatchObject({ state: 'INVALID', reason: 'OBF_FULL' });
  expect(decodeSuperblock(await obf.read(0n, 1)).state).toBe(ObfState.INVALID);
  await cow.write(BigInt(11 * 128), Buffer.alloc(512, 9));
  expect(session.status().records).toBe(3);
  expect(cow.capturing).toBe(false);
});

test('OBF full, protect-snapshot: the write fails with DATA PROTECT 27h/07h and changes nothing, the snapshot stays exact', async () => {
  const { cow, obf, session, inner, oracle } = await setup({ obfBlocks: 1n + 3n * 129n + 2n, policy: 'protect-snapshot' });
  for (let c = 0; c < 3; c++) await cow.write(BigInt(c * 128), Buffer.alloc(512, 7));
  const err = await cow.write(BigInt(10 * 128), Buffer.alloc(512, 9)).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(StoreError);
  expect((err as StoreError).failure).toEqual({ kind: 'no-space' });
  // The SCSI layer answers DATA PROTECT 27h/07h, in the format the initiator's D_SENSE asks for.
  for (const descriptor of [false, true]) {
    const s = decodeSense(replyOfError(err, descriptor).sense ?? Buffer.alloc(0));
    expect([s.format, s.senseKey, s.asc, s.ascq]).toEqual([descriptor ? 'descriptor' : 'fixed', 0x7, 0x27, 0x07]);
  }
  expect(sha(await inner.read(BigInt(10 * 128), 128))).toBe(sha(oracle.subarray(10 * 128 * 512, 11 * 128 * 512)));
  // captured chunks still take writes
  await cow.write(0n, Buffer.alloc(512, 1));
  expect(session.state).toBe('ACTIVE');
  await session.terminate();
  expect(sha(await rebuild(inner, obf))).toBe(sha(oracle));
});

test('OBF I/O error, protect-application: INVALID OBF_IO_ERROR recorded in the journal even though the superblock cannot be written', async () => {
  const { cow, obf, journal, session } = await setup();
  obf.failWrites = true;
  await cow.write(0n, Buffer.alloc(512, 1));
  expect(session.state).toBe('INVALID');
  expect(journal.last()).toMatchObject({ state: 'INVALID', reason: 'OBF_IO_ERROR' });
});

test('OBF and journal both failing: the write is refused rather than let through silently', async () => {
  const { cow, obf, journal } = await setup();
  obf.failWrites = true;
  journal.fail = true;
  await expect(cow.write(0n, Buffer.alloc(512, 1))).rejects.toBeInstanceOf(StoreError);
});

test('COW timeout: protect-application → INVALID COW_TIMEOUT; protect-snapshot → ABORTED COMMAND 2Eh/02h', async () => {
  {
    const { cow, obf, session } = await setup({ cowTimeoutMs: 50 });
    obf.stall = new Promise(() => undefined);
    await cow.write(0n, Buffer.alloc(512, 1));
    expect(session.status()).toMatchObject({ state: 'INVALID', reason: 'COW_TIMEOUT' });
  }
  {
    const { cow, obf, session } = await setup({ cowTimeoutMs: 50, policy: 'protect-snapshot' });
    let open!: () => void;
    obf.stall = new Promise<void>((r) => (open = r));
    const err = (await cow.write(0n, Buffer.alloc(512, 1)).catch((e: unknown) => e)) as StoreError;
    expect(err.failure).toEqual({ kind: 'command-timeout' });
    const s = decodeSense(replyOfError(err, false).sense ?? Buffer.alloc(0));
    expect([s.senseKey, s.asc, s.ascq]).toEqual([0xb, 0x2e, 0x02]);
    expect(session.state).toBe('ACTIVE');
    obf.stall = undefined;
    open();
  }
});

test('mark: a MARKER record, state MARKED, COW goes on; terminate seals with counts the scanner confirms', async () => {
  const { cow, obf, session, inner, oracle } = await setup();
  await cow.write(0n, crypto.randomBytes(4096));
  const m = await session.mark();
  expect(m.state).toBe('MARKED');
  await cow.write(BigInt(50 * 128), crypto.randomBytes(4096));
  const st = await session.terminate();
  expect(st).toMatchObject({ state: 'SEALED', records: 2 });
  const sb = decodeSuperblock(await obf.read(0n, 1));
  const scan = await scanLog((lba, n) => obf.read(lba, n), sb);
  expect(scan.marker?.dataRecordsBefore).toBe(1n);
  expect(scan.seal?.dataRecordCount).toBe(2n);
  expect(sb.state).toBe(ObfState.SEALED);
  expect(sha(await rebuild(inner, obf))).toBe(sha(oracle));
  // after terminate writes pass uncaptured
  await cow.write(BigInt(70 * 128), crypto.randomBytes(512));
  expect(session.status().records).toBe(2);
});

test('crash and resume: the bitmap is rebuilt from the OBF, a torn last record is dropped, the image stays exact', async () => {
  const { inner, obfMem, journal, cow, oracle } = await setup();
  for (const c of [3, 9, 27]) await cow.write(BigInt(c * 128), crypto.randomBytes(4096));
  // chunks 50, 51, 52 in one record (one write across them)
  await cow.write(BigInt(50 * 128 + 64), crypto.randomBytes(2 * 64 * KiB));
  // A fifth capture whose record is torn: the crash came before the source write.
  const sb = decodeSuperblock(await obfMem.read(0n, 1));
  const scan0 = await scanLog((lba, n) => obfMem.read(lba, n), sb);
  const tornAt = scan0.endLba;
  const fake = Buffer.alloc(129 * 512, 0xab);
  fake.write('OBFR', 0, 'latin1');
  await obfMem.write(tornAt, fake);
  // "restart": a new filter over the same stores, resumed from the journal record
  const cow2 = new CowStore(inner);
  const s2 = await SnapshotSession.resume({ source: cow2, obf: obfMem, record: journal.last(), journal, log });
  expect(s2.status()).toMatchObject({ state: 'ACTIVE', records: 4, captured_chunks: 6, obf_used_blocks: Number(tornAt) });
  expect(cow2.capturing).toBe(true);
  await cow2.write(BigInt(3 * 128), crypto.randomBytes(512)); // captured before the crash: no record
  await cow2.write(BigInt(52 * 128 + 5), crypto.randomBytes(512)); // the last chunk of the run: no record
  expect(s2.status().records).toBe(4);
  await cow2.write(BigInt(40 * 128), crypto.randomBytes(512)); // new chunk: captured over the torn record
  expect(s2.status().records).toBe(5);
  expect(sha(await new SnapshotViewStore(s2).read(0n, Number(inner.blocks)))).toBe(sha(oracle));
  await s2.terminate();
  expect(sha(await rebuild(inner, obfMem))).toBe(sha(oracle));
});

test('resume with an OBF of another snapshot (or none): INVALID TRACKING_GAP, writes pass', async () => {
  const { inner, journal } = await setup();
  const other = new MemoryStore({ blocks: 65536n, blockSize: 512 });
  const s = await SnapshotSession.resume({ source: new CowStore(inner), obf: other, record: journal.last(), journal, log });
  expect(s.status()).toMatchObject({ state: 'INVALID', reason: 'TRACKING_GAP' });
  const s2 = await SnapshotSession.resume({ source: new CowStore(inner), obf: undefined, obfError: 'ENOENT', record: { ...journal.saved[0], state: 'ACTIVE' }, journal, log });
  expect(s2.state).toBe('INVALID');
  expect(journal.last().reason).toBe('TRACKING_GAP');
});

test('UNMAP and WRITE SAME-like fills are captured like writes', async () => {
  const { cow, obf, inner, session, oracle } = await setup();
  await cow.unmap(0n, 1024n);
  // 8 adjacent chunks of 64 KiB, none captured: one record
  expect(session.status()).toMatchObject({ records: 1, captured_chunks: 8 });
  await session.terminate();
  expect(sha(await rebuild(inner, obf))).toBe(sha(oracle));
});

test('refuses: chunk not a multiple of the block sizes, OBF too small, OBF = source, a second snapshot of the same source', async () => {
  const inner = new MemoryStore({ blocks: 16384n, blockSize: 512 });
  const cow = new CowStore(inner);
  const obf = new MemoryStore({ blocks: 65536n, blockSize: 512 });
  const base = { source: cow, sourceKey: 's', obfSpec: 'm', journal: new MemJournal(), log };
  await expect(SnapshotSession.institute({ ...base, obf, chunkBytes: 1000 })).rejects.toThrow(/chunk size 1000/);
  await expect(SnapshotSession.institute({ ...base, obf: new MemoryStore({ blocks: 8n, blockSize: 512 }) })).rejects.toThrow(/at least/);
  await expect(SnapshotSession.institute({ ...base, obf: inner })).rejects.toThrow(/must not be the source/);
  await SnapshotSession.institute({ ...base, obf });
  await expect(SnapshotSession.institute({ ...base, obf })).rejects.toThrow(/already has an active snapshot/);
});

describe('races and failures found in review', () => {
  test('two institutes racing on one source: one wins, the other is refused before touching anything', async () => {
    const inner = new MemoryStore({ blocks: 16384n, blockSize: 512 });
    const cow = new CowStore(inner);
    const mk = () => ({ source: cow, sourceKey: 's', obf: new MemoryStore({ blocks: 65536n, blockSize: 512 }), obfSpec: 'm', journal: new MemJournal(), log });
    const results = await Promise.allSettled([SnapshotSession.institute(mk()), SnapshotSession.institute(mk())]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'ERR_SNAPSHOT_STATE' } });
    const s = (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<SnapshotSession>).value;
    await cow.write(0n, Buffer.alloc(512, 1));
    expect(s.status().records).toBe(1);
  });

  test('one failed OBF commit does not poison later ones; what it left behind is not taken for the log', async () => {
    const { cow, obf, obfMem, inner, oracle, session } = await setup({ policy: 'protect-snapshot' });
    await cow.write(0n, Buffer.alloc(512, 1));
    obf.failWrites = true;
    await expect(cow.write(BigInt(5 * 128), Buffer.alloc(512, 2))).rejects.toBeInstanceOf(StoreError);
    obf.failWrites = false;
    for (const c of [6, 7, 8]) await cow.write(BigInt(c * 128), Buffer.alloc(512, 3));
    await cow.write(BigInt(5 * 128), Buffer.alloc(512, 2)); // the refused one, again
    expect(session.status()).toMatchObject({ state: 'ACTIVE', records: 5 });
    const st = await session.terminate();
    expect(st.state).toBe('SEALED');
    const sb = decodeSuperblock(await obfMem.read(0n, 1));
    const scan = await scanLog((lba, n) => obfMem.read(lba, n), sb);
    expect(scan.records).toHaveLength(5);
    expect(scan.seal).toBeDefined();
    expect(sha(await rebuild(inner, obf))).toBe(sha(oracle));
  });

  test('a terminate that cannot seal leaves the snapshot INVALID, not ACTIVE-but-blind', async () => {
    const { cow, obf, session, journal } = await setup();
    await cow.write(0n, Buffer.alloc(512, 1));
    obf.failWrites = true;
    await expect(session.terminate()).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_STATE' });
    expect(session.state).toBe('INVALID');
    expect(journal.last()).toMatchObject({ state: 'INVALID', reason: 'OBF_IO_ERROR' });
    expect(cow.claimed).toBe(false);
  });

  test('marks are one at a time: a second mark is refused, one MARKER in the log', async () => {
    const { session, obfMem } = await setup();
    const r = await Promise.allSettled([session.mark(), session.mark()]);
    expect(r.map((x) => x.status).sort()).toEqual(['fulfilled', 'rejected']);
    await session.terminate();
    const scan = await scanLog((lba, n) => obfMem.read(lba, n), decodeSuperblock(await obfMem.read(0n, 1)));
    expect(scan.marker).toBeDefined();
    expect(scan.seal).toBeDefined();
  });

  test('an INVALID snapshot stays INVALID on the OBF: a later superblock rewrite does not take it back', async () => {
    const { cow, obf, obfMem, session } = await setup({ obfBlocks: 1n + 2n * 129n + 2n });
    for (const c of [0, 1, 2]) await cow.write(BigInt(c * 128), Buffer.alloc(512, 1));
    expect(session.state).toBe('INVALID');
    await expect(session.mark()).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_STATE' });
    await session.terminate();
    expect(decodeSuperblock(await obfMem.read(0n, 1)).state).toBe(ObfState.INVALID);
    void obf;
  });

  test('work held on at the held event failing: institute fails, the source is free again, the journal says ABANDONED', async () => {
    const inner = new MemoryStore({ blocks: 16384n, blockSize: 512 });
    const cow = new CowStore(inner);
    const journal = new MemJournal();
    const obf = new MemoryStore({ blocks: 65536n, blockSize: 512 });
    await expect(
      whileHeld(cow, () => { throw new Error('copy failed'); }, () => SnapshotSession.institute({ source: cow, sourceKey: 's', obf, obfSpec: 'm', journal, log })),
    ).rejects.toThrow(/while writes were held: copy failed/);
    expect(cow.claimed || cow.capturing || cow.held).toBe(false);
    expect(journal.last()).toMatchObject({ state: 'INVALID', reason: 'ABANDONED' });
    await cow.write(0n, Buffer.alloc(512));
    await SnapshotSession.institute({ source: cow, sourceKey: 's', obf, obfSpec: 'm', journal, log });
  });

  test('restart: a SEALED snapshot whose OBF lost its SEAL comes back INVALID TRACKING_GAP, never capturing', async () => {
    const { session, inner, obfMem, journal } = await setup();
    await session.terminate();
    // the log is wiped after the superblock (someone reused the OBF's space)
    await obfMem.write(1n, Buffer.alloc(512));
    const cow2 = new CowStore(inner);
    const s2 = await SnapshotSession.resume({ source: cow2, obf: obfMem, record: journal.last(), journal, log });
    expect(s2.status()).toMatchObject({ state: 'INVALID', reason: 'TRACKING_GAP' });
    expect(cow2.capturing).toBe(false);
  });

  test('a whole-LUN UNMAP captures every chunk in windows, within one short per-window timeout', async () => {
    const { cow, inner, obf, session, oracle } = await setup({ cowTimeoutMs: 2_000 });
    await cow.unmap(0n, cow.blocks);
    // every chunk, in records of 1 MiB (16 chunks of 64 KiB)
    expect(session.status()).toMatchObject({ state: 'ACTIVE', captured_chunks: Number(cow.blocks / 128n), records: Math.ceil(Number(cow.blocks / 128n) / 16) });
    await session.terminate();
    expect(sha(await rebuild(inner, obf))).toBe(sha(oracle));
  });
});

test('thin source: an unmapped chunk is captured as zeros without a read, its data deallocated on an OBF that held old data; the image is exact', async () => {
  const inner = new MemoryStore({ blocks: 16384n, blockSize: 512 }); // 8 MiB, only the first half written
  await inner.write(0n, crypto.randomBytes(4 * MiB));
  let reads = 0;
  const counting = new FaultyStore(inner);
  const origRead = counting.read.bind(counting);
  counting.read = (lba: bigint, count: number, into?: Buffer) => {
    reads++;
    return origRead(lba, count, into);
  };
  Object.defineProperty(counting, 'kind', { get: () => 'memory' });
  const cow = new CowStore(counting);
  const obfMem = new MemoryStore({ blocks: 65536n, blockSize: 512 });
  await obfMem.write(0n, Buffer.alloc(32 * MiB, 0xee)); // an OBF reused: old bytes everywhere
  let oracle!: Buffer;
  const session = await whileHeld(cow, async () => { oracle = await readAll(inner); }, () =>
    SnapshotSession.institute({ source: cow, sourceKey: 's', obf: obfMem, obfSpec: 'm', journal: new MemJournal(), log, overwriteObf: true }),
  );
  await cow.write(0n, crypto.randomBytes(512)); // mapped chunk: read
  await cow.write(BigInt(100 * 128), crypto.randomBytes(512)); // unmapped chunk: zeros, no read
  await cow.write(BigInt(127 * 128 + 5), crypto.randomBytes(512)); // far from it (the memory store maps in larger pieces)
  expect(reads).toBe(1);
  expect(sha(await new SnapshotViewStore(session).read(0n, 16384))).toBe(sha(oracle));
  await session.terminate();
  expect(sha(await rebuild(inner, obfMem))).toBe(sha(oracle));
  const scan = await scanLog((lba, n) => obfMem.read(lba, n), decodeSuperblock(await obfMem.read(0n, 1)));
  expect(scan.records).toHaveLength(3);
  expect(scan.seal).toBeDefined();
  for (const r of scan.records.slice(1)) expect((await obfMem.read(r.dataLba, r.dataBlocks)).equals(Buffer.alloc(r.dataBlocks * 512))).toBe(true);
});

test('an active OBF cannot become a source, nor an active source an OBF: refused before anything is written (no await between check and claim)', async () => {
  const a = new CowStore(new MemoryStore({ blocks: 16384n, blockSize: 512 }));
  const b = new CowStore(new MemoryStore({ blocks: 65536n, blockSize: 512 }));
  const c = new CowStore(new MemoryStore({ blocks: 65536n, blockSize: 512 }));
  const journal = new MemJournal();
  // a's snapshot uses b as its OBF
  const first = await SnapshotSession.institute({ source: a, sourceKey: 'a', obf: b, obfSpec: 'b', journal, log });
  expect(b.obfOf).toBe(first.id);
  const bBefore = sha(await readAll(b.inner));
  const cBefore = sha(await readAll(c.inner));
  await expect(SnapshotSession.institute({ source: b, sourceKey: 'b', obf: c, obfSpec: 'c', journal, log })).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_STATE', message: expect.stringMatching(/b is the OBF of active snapshot/) });
  await expect(SnapshotSession.institute({ source: c, sourceKey: 'c', obf: a, obfSpec: 'a', journal, log })).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_STATE', message: expect.stringMatching(/a is the source of an active snapshot/) });
  expect(b.claimed || c.claimed).toBe(false);
  expect(sha(await readAll(c.inner))).toBe(cBefore);
  expect(sha(await readAll(b.inner))).toBe(bBefore);
  await first.terminate();
  // once terminated, b may be a source
  const second = await SnapshotSession.institute({ source: b, sourceKey: 'b', obf: c, obfSpec: 'c', journal, log });
  expect(second.state).toBe('ACTIVE');
  await second.terminate();
});

test('an OBF holding other data, or a snapshot that may still capture elsewhere, is refused before a byte is written; a blank or sealed one is taken; overwrite_obf takes any', async () => {
  const src = () => new CowStore(new MemoryStore({ blocks: 4096n, blockSize: 512 }));
  const institute = (obf: MemoryStore, overwriteObf?: boolean) =>
    SnapshotSession.institute({ source: src(), sourceKey: 's', obf, obfSpec: 'the-obf', journal: new MemJournal(), log, overwriteObf });
  const obfWith = async (at: number, bytes: Buffer) => {
    const m = new MemoryStore({ blocks: 8192n, blockSize: 512 });
    await m.write(BigInt(at), bytes);
    return m;
  };
  // an ext4 file system's superblock sits at byte 1024 (block 2), its first kilobyte zeros
  const ext4 = await obfWith(2, Buffer.concat([Buffer.alloc(56), Buffer.from([0x53, 0xef]), Buffer.alloc(454)]));
  const before = sha(await readAll(ext4));
  await expect(institute(ext4)).rejects.toMatchObject({
    code: 'ERR_INVALID_ARG',
    message: 'the OBF the-obf holds data that is not an OBF (its first MiB is not zeros): give a blank LUN or a new file, or institute with overwrite_obf to overwrite it',
  });
  expect(sha(await readAll(ext4))).toBe(before);
  // btrfs keeps its superblock at 64 KiB, the 64 KiB before it zeros
  await expect(institute(await obfWith(128, Buffer.concat([Buffer.alloc(64), Buffer.from('_BHRfS_M'), Buffer.alloc(440)])))).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
  // data past the first MiB is not looked at: a blank head is a blank OBF
  expect((await institute(await obfWith(2048, Buffer.alloc(512, 1)))).state).toBe('ACTIVE');
  // a sealed OBF is reused; an ACTIVE one nobody here knows is refused, untouched
  const used = new MemoryStore({ blocks: 8192n, blockSize: 512 });
  const first = await institute(used);
  const activeSb = sha(await used.read(0n, 1));
  await expect(institute(used)).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_STATE', message: expect.stringMatching(new RegExp(`holds snapshot ${first.id}, ACTIVE and unknown to this target`)) });
  expect(sha(await used.read(0n, 1))).toBe(activeSb);
  await first.terminate();
  const second = await institute(used);
  expect(second.id).not.toBe(first.id);
  // overwrite_obf takes what it is given
  expect((await institute(ext4, true)).state).toBe('ACTIVE');
  expect(decodeSuperblock(await ext4.read(0n, 1)).state).toBe(ObfState.ACTIVE);
});

test('an OBF is free for another snapshot only once its snapshot has ended: not while its SEAL or last commits are still being written', async () => {
  const { cow, obf, session } = await setup();
  await cow.write(0n, Buffer.alloc(512, 1));
  let open!: () => void;
  obf.stall = new Promise<void>((r) => (open = r));
  const terminating = session.terminate();
  await new Promise((r) => setImmediate(r));
  expect(session.ended).toBe(false);
  const other = new CowStore(new MemoryStore({ blocks: 4096n, blockSize: 512 }));
  const second = () => SnapshotSession.institute({ source: other, sourceKey: 'other', obf, obfSpec: 'the-obf', journal: new MemJournal(), log, endedHere: (sid) => sid === session.id && session.ended });
  await expect(second()).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_STATE', message: expect.stringMatching(new RegExp(`holds snapshot ${session.id}, ACTIVE`)) });
  expect(other.claimed).toBe(false);
  obf.stall = undefined;
  open();
  expect((await terminating).state).toBe('SEALED');
  expect(session.ended).toBe(true);
  expect((await second()).state).toBe('ACTIVE');
});

test('a snapshot made INVALID while a capture still reads its original has not ended until that capture is done (its record still to land on the OBF)', async () => {
  const inner = new MemoryStore({ blocks: 4096n, blockSize: 512 });
  await inner.write(0n, crypto.randomBytes(4096 * 512));
  let open!: () => void;
  let stall: Promise<void> | undefined = new Promise<void>((r) => (open = r));
  class SlowReads extends DelegatingStore {
    override async read(lba: bigint, count: number, into?: Buffer) {
      if (stall) await stall;
      return this.inner.read(lba, count, into);
    }
  }
  const cow = new CowStore(new SlowReads(inner));
  const obf = new MemoryStore({ blocks: 65536n, blockSize: 512 });
  const session = await SnapshotSession.institute({ source: cow, sourceKey: 's', obf, obfSpec: 'm', journal: new MemJournal(), log, cowTimeoutMs: 50 });
  await cow.write(0n, Buffer.alloc(512, 1)); // the capture times out: INVALID, the write goes on
  expect(session.status()).toMatchObject({ state: 'INVALID', reason: 'COW_TIMEOUT' });
  expect(session.ended).toBe(false);
  expect(await session.waitEnded(50)).toBe(false);
  stall = undefined;
  open();
  expect(await session.waitEnded(5_000)).toBe(true);
});

/**
 * Unit attention conditions per I_T nexus (SAM-5 r21 5.14): which commands report them, which do
 * not, precedence of resets, capacity changes, and the range lock ordering used by writes.
 */
import { MemoryStore } from '../../../../src/store/memory';
import { LogicalUnit } from '../../../../src/target/scsi/logical-unit';
import { RangeLock } from '../../../../src/target/scsi/range-lock';
import { Sense } from '../../../../src/target/scsi/sense-errors';
import { UnitAttentions } from '../../../../src/target/scsi/unit-attention';
import {
  GOOD,
  I1,
  I2,
  RecordingStore,
  blockCdb,
  clearUa,
  expectSense,
  inquiryCdb,
  nexus,
  ready,
  run,
  ua,
  type Fixture,
} from './helpers';

describe('unit attentions', () => {
  test('a pending UA ends any command but INQUIRY, REPORT LUNS and REQUEST SENSE, and is cleared by reporting it', async () => {
    const f = await ready({}, {}, [I1]);
    for (const cdb of [blockCdb('read', 10, 0, 1), '25 00 00 00 00 00 00 00 00 00', 'ff 00 00 00 00 00', '5e 00 00 00 00 00 00 00 08 00']) {
      f.lu.unitAttention(Sense.MODE_PARAMETERS_CHANGED, I1);
      expect((await run(f, inquiryCdb(false, 0, 36))).status).toBe(GOOD);
      expect((await run(f, 'a0 00 00 00 00 00 00 00 10 00 00 00')).status).toBe(GOOD);
      expectSense(await run(f, cdb), ua(0x2a, 0x01));
      expect((await run(f, '00 00 00 00 00 00')).status).toBe(GOOD);
    }
  });

  test('queued in order of occurrence without duplicates; a reset supersedes everything before it', async () => {
    const f = await ready();
    f.lu.unitAttention(Sense.MODE_PARAMETERS_CHANGED, I1);
    f.lu.unitAttention(Sense.RESERVATIONS_RELEASED, I1);
    f.lu.unitAttention(Sense.MODE_PARAMETERS_CHANGED, I1);
    expectSense(await run(f, '00 00 00 00 00 00'), ua(0x2a, 0x01));
    expectSense(await run(f, '00 00 00 00 00 00'), ua(0x2a, 0x04));
    expect((await run(f, '00 00 00 00 00 00')).status).toBe(GOOD);
    f.lu.unitAttention(Sense.MODE_PARAMETERS_CHANGED, I1);
    f.lu.reset('lun-reset', I2);
    f.lu.unitAttention(Sense.CAPACITY_DATA_HAS_CHANGED, I1);
    expectSense(await run(f, '00 00 00 00 00 00'), ua(0x29, 0x03));
    expectSense(await run(f, '00 00 00 00 00 00'), ua(0x2a, 0x09));
    expect((await run(f, '00 00 00 00 00 00')).status).toBe(GOOD);
  });

  test('the queue is bounded; conditions for unknown nexuses are not kept', () => {
    const u = new UnitAttentions();
    u.establish('nobody', Sense.MODE_PARAMETERS_CHANGED);
    expect(u.pending('nobody')).toEqual([]);
    expect(u.touch(I1)).toBe(true);
    expect(u.touch(I1)).toBe(false);
    const reasons = Object.values(Sense).filter((r) => r.key === 6 && r.asc !== 0x29);
    for (const r of reasons) u.establish(I1.id, r);
    expect(u.pending(I1.id).length).toBeLessThanOrEqual(16);
    expect(u.pending(I1.id)[0]).toBe(Sense.POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED);
  });

  test('a capacity change is reported to every nexus as CAPACITY DATA HAS CHANGED (2Ah/09h)', async () => {
    class Growing extends RecordingStore {
      size = 100n;
      override get blocks() {
        return this.size;
      }
    }
    const store = new Growing(new MemoryStore({ blocks: 200n, blockSize: 512 }));
    const lu = new LogicalUnit({ store });
    const f: Fixture = { lu, store, mem: store.inner as MemoryStore, view: new Map([[0, lu]]) };
    await clearUa(f, I1);
    await clearUa(f, I2);
    store.size = 150n;
    expectSense(await run(f, '25 00 00 00 00 00 00 00 00 00'), ua(0x2a, 0x09));
    const r = await run(f, '25 00 00 00 00 00 00 00 00 00');
    expect(r.data?.readUInt32BE(0)).toBe(149);
    expectSense(await run(f, '00 00 00 00 00 00', { nexus: I2 }), ua(0x2a, 0x09));
    expectSense(await run(f, '00 00 00 00 00 00', { nexus: nexus(5) }), ua(0x29, 0x00));
  });

  test('an aborted request ends with TASK ABORTED without touching the store', async () => {
    const f = await ready();
    const ac = new AbortController();
    ac.abort();
    const { executeOnView } = await import('../../../../src/target/scsi/dispatch');
    const r = await executeOnView(f.view, { nexus: I1, lun: 0, cdb: blockCdb('write', 10, 0, 1), dataOut: Buffer.alloc(512), expectedDataTransferLength: 512, taskAttribute: 1, signal: ac.signal });
    expect(r).toEqual({ status: 0x40 });
    expect(f.store.writes).toBe(0);
  });

  test('the CONTROL byte: NACA and LINK are refused', async () => {
    const f = await ready();
    expectSense(await run(f, '00 00 00 00 00 04'), { key: 5, asc: 0x24, ascq: 0, cdbByte: 5, bit: 2 });
    expectSense(await run(f, '28 00 00 00 00 00 00 00 01 01'), { key: 5, asc: 0x24, ascq: 0, cdbByte: 9, bit: 0 });
  });

  test('an unknown opcode is INVALID COMMAND OPERATION CODE; a short CDB is INVALID FIELD IN CDB', async () => {
    const f = await ready();
    expectSense(await run(f, 'c0 00 00 00 00 00'), { key: 5, asc: 0x20, ascq: 0 });
    expectSense(await run(f, '28 00 00 00'), { key: 5, asc: 0x24, ascq: 0 });
    expectSense(await run(f, Buffer.alloc(0)), { key: 5, asc: 0x20, ascq: 0 });
    expectSense(await run(f, '9e 13 00 00 00 00 00 00 00 00 00 00 00 00 00 00'), { key: 5, asc: 0x24, ascq: 0, cdbByte: 1, bit: 4 });
  });

  test('internal errors become HARDWARE ERROR, INTERNAL TARGET FAILURE and are reported to the hook', async () => {
    const errors: unknown[] = [];
    const mem = new MemoryStore({ blocks: 64n, blockSize: 512 });
    const broken = Object.create(mem) as MemoryStore;
    broken.read = async () => {
      throw new TypeError('bug');
    };
    const lu = new LogicalUnit({ store: broken, onInternalError: (e) => errors.push(e) });
    const f = { lu, view: new Map([[0, lu]]) } as unknown as Fixture;
    await run(f, '00 00 00 00 00 00');
    expectSense(await run(f, blockCdb('read', 10, 0, 1)), { key: 4, asc: 0x44, ascq: 0 });
    expect(errors).toHaveLength(1);
  });
});

describe('RangeLock', () => {
  test('overlapping ranges wait, in arrival order; disjoint ranges run together', async () => {
    const lock = new RangeLock();
    const order: string[] = [];
    const a = await lock.acquire(0n, 10n);
    const b = lock.acquire(5n, 10n).then((rel) => {
      order.push('b');
      return rel;
    });
    const c = lock.acquire(12n, 2n).then((rel) => {
      order.push('c'); // overlaps b (an earlier waiter): must wait for it
      return rel;
    });
    const d = await lock.acquire(100n, 1n); // disjoint: granted at once
    order.push('d');
    await Promise.resolve();
    expect(order).toEqual(['d']);
    a();
    const relB = await b;
    expect(order).toEqual(['d', 'b']);
    relB();
    (await c)();
    d();
    expect(order).toEqual(['d', 'b', 'c']);
    expect(lock.heldCount).toBe(0);
    expect(await lock.with(0n, 0n, async () => 7)).toBe(7);
  });

  test('tryAcquire takes a free range at once, and refuses one that overlaps a held range or an earlier waiter', async () => {
    const lock = new RangeLock();
    const a = lock.tryAcquire(0n, 8n)!;
    expect(a).toBeDefined();
    expect(lock.tryAcquire(7n, 2n)).toBeUndefined(); // overlaps a
    const waiter = lock.acquire(4n, 8n); // waits for a
    expect(lock.tryAcquire(10n, 4n)).toBeUndefined(); // free of a, but the waiter came first
    const far = lock.tryAcquire(1n << 40n, 1n)!; // far away: at once
    expect(lock.heldCount).toBe(2);
    a();
    a(); // twice: once only
    const w = await waiter;
    expect(lock.heldCount).toBe(2);
    w();
    far();
    expect(lock.heldCount).toBe(0);
    expect(lock.tryAcquire(5n, 0n)!()).toBeUndefined(); // empty: granted, locks nothing
    expect(lock.heldCount).toBe(0);
  });
});

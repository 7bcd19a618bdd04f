/**
 * The model's half of a configuration reload (src/target/reload.ts planReload, TargetModel.swap)
 * over ramdisk storage objects: what stays the same object, what is new, what is retired, and
 * the refusals naming key paths. The sessions' half runs against a real target process in
 * test/integration/target-reload.test.ts.
 */
import pino from 'pino';
import { parseConfig, type Config } from '../../../src/target/config';
import { planReload, type ReloadPins } from '../../../src/target/reload';
import { openStorageObject, TargetModel, type OpenedStorageObject } from '../../../src/target/target';

const log = pino({ level: 'silent' });
const T1 = 'iqn.2026-12.io.example:t1';
const T2 = 'iqn.2026-12.io.example:t2';

function config(o: { ram: Record<string, string>; luns: Record<number, string>; t2?: boolean; enable?: boolean }): Config {
  const tpg = (luns: Record<number, string>, port: number, enable = true) => ({
    tag: 1,
    enable,
    portals: [{ ip_address: '127.0.0.1', port }],
    luns: Object.entries(luns).map(([i, so]) => ({ index: Number(i), storage_object: `/backstores/ramdisk/${so}` })),
  });
  return parseConfig({
    storage_objects: Object.entries(o.ram).map(([name, size]) => ({ name, plugin: 'ramdisk', size })),
    targets: [{ wwn: T1, tpgs: [tpg(o.luns, 3260, o.enable)] }, ...(o.t2 ? [{ wwn: T2, tpgs: [tpg({ 0: 'a' }, 3261)] }] : [])],
  });
}

/** planReload, the stores it asks for opened, then the swap. */
async function reload(model: TargetModel, next: Config, pins?: ReloadPins) {
  const plan = planReload(model, next, pins);
  const opened = new Map<string, OpenedStorageObject>();
  for (const o of plan.open) opened.set(o.key, await openStorageObject(o.so, log));
  return { plan, swap: model.swap(next, opened) };
}

test('an unchanged LUN keeps its LU; an added one is new, a changed storage object gets a new store and LU, a removed one is retired', async () => {
  const model = await TargetModel.open(config({ ram: { a: '1M', b: '1M', c: '1M' }, luns: { 0: 'a', 1: 'b', 2: 'c' }, t2: true }), log);
  try {
    const tpg = model.tpg(T1)!;
    const [lu0, lu2] = [tpg.luns.get(0)!, tpg.luns.get(2)!];
    const storeB = model.stores.get('/backstores/ramdisk/b')!;
    const storeC = model.stores.get('/backstores/ramdisk/c')!;
    const t2 = model.tpg(T2)!;
    const { plan, swap } = await reload(model, config({ ram: { a: '1M', c: '2M', d: '1M' }, luns: { 0: 'a', 2: 'c', 3: 'd' }, t2: true }));
    expect(plan).toMatchObject({ added: ['/backstores/ramdisk/d'], changed: ['/backstores/ramdisk/c'], removed: ['/backstores/ramdisk/b'] });
    expect(swap).toMatchObject({
      added: [{ target: T1, tpg: 1, lun: 3 }],
      replaced: [{ target: T1, tpg: 1, lun: 2 }],
      removed: [{ target: T1, tpg: 1, lun: 1 }],
      goneTpgs: [],
    });
    expect(new Set(swap.retired)).toEqual(new Set([storeB, storeC]));
    // The same TPG objects, the same LU for LUN 0; LUN 2 a new LU over the new 2 MiB store.
    expect(model.tpg(T1)).toBe(tpg);
    expect(model.tpg(T2)).toBe(t2);
    expect(tpg.luns.get(0)).toBe(lu0);
    expect(tpg.luns.get(2)).not.toBe(lu2);
    expect(tpg.luns.get(2)!.store.blocks).toBe(4096n);
    expect([...tpg.luns.keys()].sort()).toEqual([0, 2, 3]);
    expect(model.stores.has('/backstores/ramdisk/b')).toBe(false);
    await Promise.all(swap.retired.map((s) => s.close()));
  } finally {
    await model.close();
  }
});

test('a target removed or a TPG disabled is gone, its LUNs removed; a LUN no configuration names (a view) stays', async () => {
  const model = await TargetModel.open(config({ ram: { a: '1M' }, luns: { 0: 'a' }, t2: true }), log);
  try {
    const tpg = model.tpg(T1)!;
    const t2 = model.tpg(T2)!;
    const view = tpg.newLogicalUnit(model.stores.get('/backstores/ramdisk/a')!, 'memory');
    tpg.luns.set(7, view);
    const { swap } = await reload(model, config({ ram: { a: '1M' }, luns: { 0: 'a' } }));
    expect(swap.goneTpgs).toEqual([t2]);
    expect(swap.removed).toEqual([{ target: T2, tpg: 1, lun: 0 }]);
    expect(model.nodes.has(T2)).toBe(false);
    expect(tpg.luns.get(7)).toBe(view);
    const { swap: off } = await reload(model, config({ ram: { a: '1M' }, luns: { 0: 'a' }, enable: false }));
    expect(off.goneTpgs).toEqual([tpg]);
    expect(model.allTpgs()).toEqual([]);
  } finally {
    await model.close();
  }
});

test('refusals name the key path: a pinned storage object removed or changed, a view\'s LUN number taken, a TPG with views ended', async () => {
  const model = await TargetModel.open(config({ ram: { a: '1M', b: '1M' }, luns: { 0: 'a', 1: 'b' } }), log);
  try {
    const tpg = model.tpg(T1)!;
    const pins: ReloadPins = {
      pinnedBy: (key) => (key === '/backstores/ramdisk/a' ? 'snapshot S1 (ACTIVE) captures it' : undefined),
      viewLuns: (g) => (g === tpg ? [{ lun: 5, snapshot: 'S1' }] : []),
    };
    expect(() => planReload(model, config({ ram: { b: '1M' }, luns: { 1: 'b' } }), pins)).toThrow(
      'config storage_objects: /backstores/ramdisk/a would be removed, but snapshot S1 (ACTIVE) captures it; keep it until the snapshot has ended',
    );
    expect(() => planReload(model, config({ ram: { a: '2M', b: '1M' }, luns: { 0: 'a', 1: 'b' } }), pins)).toThrow(/^config storage_objects\[0\]: \/backstores\/ramdisk\/a would be replaced/);
    expect(() => planReload(model, config({ ram: { a: '1M', b: '1M' }, luns: { 0: 'a', 5: 'b' } }), pins)).toThrow(
      /^config targets\[0\]\.tpgs\[0\]\.luns\[1\]\.index: LUN 5 of iqn\.2026-12\.io\.example:t1 is the view of snapshot S1/,
    );
    expect(() => planReload(model, config({ ram: { a: '1M', b: '1M' }, luns: { 0: 'a' }, enable: false }), pins)).toThrow(/^config targets\[0\]\.tpgs: .* TPG 1 would end, but it holds the view of snapshot S1 at LUN 5/);
    // Nothing was touched by the refusals.
    expect([...tpg.luns.keys()]).toEqual([0, 1]);
    expect(model.stores.size).toBe(2);
  } finally {
    await model.close();
  }
});

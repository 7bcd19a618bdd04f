/**
 * A configuration reload, planned (docs/target.md "Reloading the configuration"): which storage
 * objects of the configuration in force stay, which are added, changed or removed, and whether
 * the new configuration may replace it at all. It may not when it would remove or replace a
 * storage object that a snapshot needs (the invariants of docs/design.md hold only while the
 * source and its OBF stay the stores they are), or take a LUN number a snapshot view holds, or
 * end a TPG that holds views. Each refusal names the key path of the new document, as
 * config.ts does for a document that does not validate.
 */
import { ArgumentError } from '../errors';
import type { Config, StorageObjectConfig } from './config';
import { storageObjectKey, type TargetModel, type TargetPortalGroup } from './target';

/** What the snapshots hold on to (SnapshotManager; nothing when the target takes no snapshots). */
export interface ReloadPins {
  /** Why the storage object `key` must keep its store, if it must. */
  pinnedBy(key: string): string | undefined;
  /** The LUN numbers of `tpg` that snapshot views hold. */
  viewLuns(tpg: TargetPortalGroup): Array<{ lun: number; snapshot: string }>;
}

export interface ReloadPlan {
  next: Config;
  /** Storage objects to open before the swap: the new ones and the changed ones. */
  open: Array<{ key: string; so: StorageObjectConfig; path: string }>;
  added: string[];
  changed: string[];
  removed: string[];
}

/** Whether two entries describe the same storage object (any difference replaces its store). */
function sameStorageObject(a: StorageObjectConfig, b: StorageObjectConfig): boolean {
  return a.plugin === b.plugin && a.dev === b.dev && a.size === b.size && a.wwn === b.wwn && a.blockSize === b.blockSize && a.readOnly === b.readOnly;
}

function refuse(path: string, why: string): never {
  throw new ArgumentError(`config ${path}: ${why}`);
}

/**
 * Compares `next` with the configuration in force and checks it against what the snapshots
 * hold. Throws an ArgumentError naming the key path when the reload must be refused; touches
 * nothing.
 */
export function planReload(model: TargetModel, next: Config, pins: ReloadPins | undefined): ReloadPlan {
  const plan: ReloadPlan = { next, open: [], added: [], changed: [], removed: [] };
  const now = new Map(model.config.storageObjects.map((so) => [storageObjectKey(so), so]));
  next.storageObjects.forEach((so, i) => {
    const key = storageObjectKey(so);
    const old = now.get(key);
    if (old !== undefined && sameStorageObject(old, so)) return;
    const path = `storage_objects[${i}]`;
    if (old !== undefined) {
      const why = pins?.pinnedBy(key);
      if (why !== undefined) refuse(path, `${key} would be replaced (its entry changed), but ${why}; change it after the snapshot has ended`);
      plan.changed.push(key);
    } else {
      plan.added.push(key);
    }
    plan.open.push({ key, so, path });
  });
  const nextKeys = new Set(next.storageObjects.map(storageObjectKey));
  for (const key of now.keys()) {
    if (nextKeys.has(key)) continue;
    const why = pins?.pinnedBy(key);
    if (why !== undefined) refuse('storage_objects', `${key} would be removed, but ${why}; keep it until the snapshot has ended`);
    plan.removed.push(key);
  }
  // Snapshot views: their TPG stays, and their LUN numbers stay theirs.
  for (const tpg of model.allTpgs()) {
    const views = pins?.viewLuns(tpg) ?? [];
    if (views.length === 0) continue;
    const ti = next.targets.findIndex((t) => t.wwn === tpg.node.name);
    const gi = ti < 0 ? -1 : next.targets[ti].tpgs.findIndex((g) => g.tag === tpg.tag && g.enable);
    if (gi < 0) {
      refuse(ti < 0 ? 'targets' : `targets[${ti}].tpgs`, `${tpg.node.name} TPG ${tpg.tag} would end, but it holds the view of snapshot ${views[0].snapshot} at LUN ${views[0].lun}; remove the view (view_remove) first`);
    }
    next.targets[ti].tpgs[gi].luns.forEach((l, li) => {
      const v = views.find((x) => x.lun === l.index);
      if (v) refuse(`targets[${ti}].tpgs[${gi}].luns[${li}].index`, `LUN ${l.index} of ${tpg.node.name} is the view of snapshot ${v.snapshot}; choose another LUN number or remove the view (view_remove) first`);
    });
  }
  return plan;
}

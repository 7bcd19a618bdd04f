/**
 * The target's object model, built from a validated Config (config.ts): storage objects opened as
 * stores, target nodes → target portal groups (TPGs) → LUNs, node ACLs with mapped LUNs, CHAP.
 * The transport asks it two questions: may this initiator log in (and with which credentials),
 * and which LUNs does it see (its view: mapped LUN number → LogicalUnit).
 */
import crypto from 'node:crypto';
import { AgentError } from '../errors';
import { FileStore } from '../store/file';
import { naaFromSeed, serialFromSeed } from '../store/identity';
import { MemoryStore } from '../store/memory';
import { RemoteStore } from '../store/remote';
import type { Store } from '../store/store';
import type { Logger } from '../util/log';
import type { ChapCredentials } from './iscsi/chap';
import type { LoginTarget } from './iscsi/login';
import type { ChapConfig, Config, StorageObjectConfig, TpgConfig } from './config';
import { LogicalUnit } from './scsi/logical-unit';
import { COPY_MANAGER_OPCODES, CopyManager, enableCopyManager } from '../xcopy';
import { CowStore } from '../cow/cow-store';

export type LunView = Map<number, LogicalUnit>;

function chapCredentials(c: ChapConfig | undefined): ChapCredentials | undefined {
  if (!c) return undefined;
  return {
    user: c.userid,
    secret: c.password,
    mutualUser: c.mutualUserid,
    mutualSecret: c.mutualPassword,
  };
}

/** A storage object's key, as LUNs name it: /backstores/PLUGIN/NAME. */
export function storageObjectKey(so: Pick<StorageObjectConfig, 'plugin' | 'name'>): string {
  return `/backstores/${so.plugin}/${so.name}`;
}

/** A storage object opened: its store behind the COW filter, and the kind of the store below. */
export interface OpenedStorageObject {
  store: CowStore;
  kind: string;
}

/** Opens one storage object (a backstore) as a store, behind a COW filter. */
export async function openStorageObject(so: StorageObjectConfig, log: Logger): Promise<OpenedStorageObject> {
  let store: Store;
  if (so.plugin === 'fileio') {
    store = await FileStore.open({ path: so.dev!, size: so.size, blockSize: so.blockSize, readOnly: so.readOnly });
  } else if (so.plugin === 'ramdisk') {
    // A RAM disk is a new device each time it is opened: its NAA must not repeat on another
    // target (or this one after a restart) that has a RAM disk of the same name, or a copy
    // manager resolving the designator would copy the wrong LUN. Stable only when the saved
    // configuration gives its unit serial (wwn), as LIO derives its NAA from that.
    const seed = so.wwn !== undefined ? `ramdisk:${so.wwn}` : `ramdisk:${so.name}:${crypto.randomUUID()}`;
    store = new MemoryStore({ blocks: BigInt(so.size! / so.blockSize), blockSize: so.blockSize, name: so.name, readOnly: so.readOnly, naa: naaFromSeed(seed), serial: serialFromSeed(seed) });
  } else {
    store = await RemoteStore.open(so.dev!, { readOnly: so.readOnly });
  }
  log.info({ storage_object: storageObjectKey(so), kind: store.kind, blocks: store.blocks.toString(), block_size: store.blockSize }, 'storage object opened');
  // Every store sits behind a COW filter, idle until a snapshot of it is instituted.
  return { store: new CowStore(store), kind: store.kind };
}

export class TargetPortalGroup {
  readonly tag: number;
  readonly node: TargetNode;
  /** Replaced by a configuration reload (TargetModel.swap); read it anew each time. */
  config: TpgConfig;
  /** TPG LUN number → logical unit. */
  readonly luns = new Map<number, LogicalUnit>();
  /**
   * The copy manager of this TPG: an initiator may name, as copy source or destination, only
   * the LUNs it could reach itself (no confused deputy, CVE-2020-28374).
   */
  readonly copyManager: CopyManager;

  constructor(node: TargetNode, config: TpgConfig, log: Logger) {
    this.node = node;
    this.tag = config.tag;
    this.config = config;
    this.copyManager = new CopyManager({
      reachable: (nexus) => {
        const a = this.accessFor(nexus.initiatorName);
        return a ? [...a.view].map(([n, lu]) => ({ lu, writeProtect: a.writeProtected.has(n) })) : [];
      },
      log,
    });
  }

  /** A new logical unit of this TPG over `store` (a storage object's, `kind` the store below its filter), served by its copy manager. */
  newLogicalUnit(store: CowStore, kind: string | undefined): LogicalUnit {
    const lu = new LogicalUnit({ store, targetName: this.node.name, targetPortGroup: this.tag, opcodes: COPY_MANAGER_OPCODES, atomicWrite: kind === 'memory' });
    enableCopyManager(lu, this.copyManager);
    return lu;
  }

  /**
   * The LUNs `initiatorName` sees (its mapped LUN number → LU), or undefined when it is not
   * allowed in at all. `writeProtected` holds the mapped numbers it may only read
   * (node_acls mapped_luns write_protect, or demo_mode_write_protect).
   */
  viewFor(initiatorName: string): LunView | undefined {
    return this.accessFor(initiatorName)?.view;
  }

  accessFor(initiatorName: string): { view: LunView; writeProtected: Set<number> } | undefined {
    const view: LunView = new Map();
    const writeProtected = new Set<number>();
    const acl = this.config.nodeAcls.find((a) => a.nodeWwn === initiatorName);
    if (acl) {
      for (const m of acl.mappedLuns) {
        const lu = this.luns.get(m.tpgLun);
        if (!lu) continue;
        view.set(m.index, lu);
        if (m.writeProtect) writeProtected.add(m.index);
      }
      return { view, writeProtected };
    }
    if (!this.config.generateNodeAcls) return undefined;
    for (const [n, lu] of this.luns) {
      view.set(n, lu);
      if (this.config.demoModeWriteProtect) writeProtected.add(n);
    }
    return { view, writeProtected };
  }

  /** What the login needs (LoginMachine's LoginTarget); the configuration as it is at login time. */
  loginTarget(): LoginTarget {
    const cfg = this.config;
    const needAuth = cfg.authentication || cfg.nodeAcls.some((a) => a.chap) || cfg.chap !== undefined;
    return {
      name: this.node.name,
      portalGroupTag: this.tag,
      allowInitiator: (name) => this.viewFor(name) !== undefined,
      auth: needAuth
        ? (initiatorName: string) => chapCredentials(cfg.nodeAcls.find((a) => a.nodeWwn === initiatorName)?.chap ?? cfg.chap)
        : undefined,
    };
  }
}

export class TargetNode {
  readonly name: string;
  readonly tpgs: TargetPortalGroup[] = [];
  constructor(name: string) {
    this.name = name;
  }
}

/** A LUN of a TPG, as a reload reports it. */
export interface LunName {
  target: string;
  tpg: number;
  lun: number;
}

/** What TargetModel.swap changed. */
export interface SwapResult {
  /** Stores no longer used (removed or changed storage objects): close them once the commands in flight on them are done. */
  retired: CowStore[];
  /** TPGs no longer served (removed, or disabled): their sessions end. */
  goneTpgs: TargetPortalGroup[];
  added: LunName[];
  replaced: LunName[];
  removed: LunName[];
}

/** Everything the configuration describes, opened. */
export class TargetModel {
  readonly nodes = new Map<string, TargetNode>();
  /**
   * Storage object key (/backstores/PLUGIN/NAME) → its store as the LUNs see it: the COW filter
   * this model put in front of the store it opened (the snapshot manager claims and arms it).
   */
  readonly stores = new Map<string, CowStore>();
  /** Storage object key → the kind of the store opened for it ('file', 'memory', 'remote'). */
  readonly backingKinds = new Map<string, string>();
  /** The configuration in force (replaced by a reload, TargetModel.swap). */
  config: Config;
  private readonly log: Logger;

  private constructor(config: Config, log: Logger) {
    this.config = config;
    this.log = log;
  }

  /** Opens every storage object and builds the LUNs. Stores are closed again on failure. */
  static async open(config: Config, log: Logger): Promise<TargetModel> {
    const model = new TargetModel(config, log);
    try {
      for (const so of config.storageObjects) {
        const o = await openStorageObject(so, log);
        model.stores.set(storageObjectKey(so), o.store);
        model.backingKinds.set(storageObjectKey(so), o.kind);
      }
      for (const t of config.targets) {
        const node = new TargetNode(t.wwn);
        model.nodes.set(t.wwn, node);
        for (const g of t.tpgs) {
          if (!g.enable) continue;
          const tpg = new TargetPortalGroup(node, g, log);
          node.tpgs.push(tpg);
          for (const l of g.luns) tpg.luns.set(l.index, model.logicalUnitFor(tpg, l.storageObject, t.wwn, l.index));
        }
      }
    } catch (err) {
      await model.close();
      throw err;
    }
    return model;
  }

  /** A new LU of `tpg` over the storage object `key` (which must be open). */
  private logicalUnitFor(tpg: TargetPortalGroup, key: string, wwn: string, index: number): LogicalUnit {
    const store = this.stores.get(key);
    if (!store) throw new AgentError('ERR_INVALID_ARG', `LUN ${index} of ${wwn} names ${key}, which is not open`);
    return tpg.newLogicalUnit(store, this.backingKinds.get(key));
  }

  /**
   * Puts `next` in place of the configuration in force (a reload; docs/target.md "Reloading the
   * configuration"). `opened` holds the stores of the storage objects added or changed, opened
   * beforehand; every other storage object keeps its store. A TPG (target name and tag) that
   * stays keeps its object and copy manager, and every LU whose LUN number still names the same
   * unchanged storage object (so its reservations and unit attentions); the other LUs are new.
   * LUNs no configuration names (snapshot views) stay where they are. Synchronous: no command
   * sees half of it. The caller has checked that nothing pinned is removed or replaced.
   */
  swap(next: Config, opened: Map<string, OpenedStorageObject>): SwapResult {
    const out: SwapResult = { retired: [], goneTpgs: [], added: [], replaced: [], removed: [] };
    const nextKeys = new Set(next.storageObjects.map(storageObjectKey));
    for (const [key, store] of this.stores) {
      if (!nextKeys.has(key) || opened.has(key)) {
        out.retired.push(store);
        this.stores.delete(key);
        this.backingKinds.delete(key);
      }
    }
    for (const [key, o] of opened) {
      this.stores.set(key, o.store);
      this.backingKinds.set(key, o.kind);
    }
    const retired = new Set<CowStore>(out.retired);
    const before = this.allTpgs();
    const served = new Set<TargetPortalGroup>();
    const nodes = new Map<string, TargetNode>();
    for (const t of next.targets) {
      const node = this.nodes.get(t.wwn) ?? new TargetNode(t.wwn);
      nodes.set(t.wwn, node);
      const tpgs: TargetPortalGroup[] = [];
      for (const g of t.tpgs) {
        if (!g.enable) continue;
        const old = node.tpgs.find((x) => x.tag === g.tag);
        const tpg = old ?? new TargetPortalGroup(node, g, this.log);
        const oldConfigLuns = new Map((old?.config.luns ?? []).map((l) => [l.index, l.storageObject]));
        tpg.config = g;
        const wanted = new Map(g.luns.map((l) => [l.index, l.storageObject]));
        // LUNs the old configuration named and the new one does not: gone.
        for (const [n] of oldConfigLuns) {
          if (!wanted.has(n)) {
            tpg.luns.delete(n);
            out.removed.push({ target: t.wwn, tpg: g.tag, lun: n });
          }
        }
        for (const [n, key] of wanted) {
          const lu = tpg.luns.get(n);
          const same = lu !== undefined && oldConfigLuns.get(n) === key && !retired.has(lu.store as CowStore);
          if (same) continue;
          tpg.luns.set(n, this.logicalUnitFor(tpg, key, t.wwn, n));
          (lu === undefined ? out.added : out.replaced).push({ target: t.wwn, tpg: g.tag, lun: n });
        }
        tpgs.push(tpg);
        served.add(tpg);
      }
      node.tpgs.splice(0, node.tpgs.length, ...tpgs);
    }
    out.goneTpgs = before.filter((tpg) => !served.has(tpg));
    for (const tpg of out.goneTpgs) for (const l of tpg.config.luns) out.removed.push({ target: tpg.node.name, tpg: tpg.tag, lun: l.index });
    this.nodes.clear();
    for (const [k, v] of nodes) this.nodes.set(k, v);
    this.config = next;
    return out;
  }

  /** The TPG of `targetName` served on a portal group tag (or its first TPG). */
  tpg(targetName: string, tag?: number): TargetPortalGroup | undefined {
    const node = this.nodes.get(targetName);
    if (!node) return undefined;
    return tag === undefined ? node.tpgs[0] : node.tpgs.find((g) => g.tag === tag);
  }

  /** Every enabled TPG (for listeners and SendTargets). */
  allTpgs(): TargetPortalGroup[] {
    return [...this.nodes.values()].flatMap((n) => n.tpgs);
  }

  async flush(): Promise<void> {
    await Promise.all([...this.stores.values()].map((s) => s.flush().catch(() => undefined)));
  }

  async close(): Promise<void> {
    await Promise.all([...this.stores.values()].map((s) => s.close().catch(() => undefined)));
  }
}

/**
 * The target's object model, built from a validated Config (config.ts): storage objects opened as
 * stores, target nodes → target portal groups (TPGs) → LUNs, node ACLs with mapped LUNs, CHAP.
 * The transport asks it two questions: may this initiator log in (and with which credentials),
 * and which LUNs does it see (its view: mapped LUN number → LogicalUnit).
 */
import { AgentError } from '../errors';
import { FileStore } from '../store/file';
import { MemoryStore } from '../store/memory';
import { RemoteStore } from '../store/remote';
import type { Store } from '../store/store';
import type { Logger } from '../util/log';
import type { ChapCredentials } from './iscsi/chap';
import type { LoginTarget } from './iscsi/login';
import type { ChapConfig, Config, TpgConfig } from './config';
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

export class TargetPortalGroup {
  readonly tag: number;
  readonly node: TargetNode;
  readonly config: TpgConfig;
  /** TPG LUN number → logical unit. */
  readonly luns = new Map<number, LogicalUnit>();

  constructor(node: TargetNode, config: TpgConfig) {
    this.node = node;
    this.tag = config.tag;
    this.config = config;
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

  /** What the login needs (LoginMachine's LoginTarget). */
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
  readonly config: Config;

  private constructor(config: Config) {
    this.config = config;
  }

  /** Opens every storage object and builds the LUNs. Stores are closed again on failure. */
  static async open(config: Config, log: Logger): Promise<TargetModel> {
    const model = new TargetModel(config);
    try {
      for (const so of config.storageObjects) {
        const key = `/backstores/${so.plugin}/${so.name}`;
        let store: Store;
        if (so.plugin === 'fileio') {
          store = await FileStore.open({ path: so.dev!, size: so.size, blockSize: so.blockSize, readOnly: so.readOnly });
        } else if (so.plugin === 'ramdisk') {
          store = new MemoryStore({ blocks: BigInt(so.size! / so.blockSize), blockSize: so.blockSize, name: so.name, readOnly: so.readOnly });
        } else {
          store = await RemoteStore.open(so.dev!, { readOnly: so.readOnly });
        }
        // Every store sits behind a COW filter, idle until a snapshot of it is instituted.
        model.stores.set(key, new CowStore(store));
        model.backingKinds.set(key, store.kind);
        log.info({ storage_object: key, kind: store.kind, blocks: store.blocks.toString(), block_size: store.blockSize }, 'storage object opened');
      }
      for (const t of config.targets) {
        const node = new TargetNode(t.wwn);
        model.nodes.set(t.wwn, node);
        for (const g of t.tpgs) {
          if (!g.enable) continue;
          const tpg = new TargetPortalGroup(node, g);
          node.tpgs.push(tpg);
          // The copy manager of this TPG: an initiator may name, as copy source or destination,
          // only the LUNs it could reach itself (no confused deputy, CVE-2020-28374).
          const cm = new CopyManager({
            reachable: (nexus) => {
              const a = tpg.accessFor(nexus.initiatorName);
              return a ? [...a.view].map(([n, lu]) => ({ lu, writeProtect: a.writeProtected.has(n) })) : [];
            },
            log,
          });
          for (const l of g.luns) {
            const store = model.stores.get(l.storageObject);
            if (!store) throw new AgentError('ERR_INVALID_ARG', `LUN ${l.index} of ${t.wwn} names ${l.storageObject}, which is not open`);
            const atomicWrite = model.backingKinds.get(l.storageObject) === 'memory';
            const lu = new LogicalUnit({ store, targetName: t.wwn, targetPortGroup: g.tag, opcodes: COPY_MANAGER_OPCODES, atomicWrite });
            enableCopyManager(lu, cm);
            tpg.luns.set(l.index, lu);
          }
        }
      }
    } catch (err) {
      await model.close();
      throw err;
    }
    return model;
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

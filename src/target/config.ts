/**
 * The target's configuration, in the shape of targetcli/rtslib's saveconfig.json
 * (rtslib-fb's saveconfig.json(5) manual page) so that admins read it at a glance:
 *
 *   { "storage_objects": [ { "name", "plugin": "fileio"|"ramdisk"|"remote", "dev", "size", "wwn",
 *                            "attributes": { "block_size" } } ],
 *     "targets": [ { "wwn": IQN, "fabric": "iscsi",
 *                    "tpgs": [ { "tag", "enable", "portals": [ { "ip_address", "port" } ],
 *                                "luns": [ { "index", "storage_object": "/backstores/<plugin>/<name>" } ],
 *                                "node_acls": [ { "node_wwn", "chap_userid", "chap_password",
 *                                                 "chap_mutual_userid", "chap_mutual_password",
 *                                                 "mapped_luns": [ { "index", "tpg_lun", "write_protect" } ] } ],
 *                                "attributes": { "authentication", "generate_node_acls",
 *                                                "demo_mode_write_protect" },
 *                                "chap_userid", "chap_password", ...   (tpg-wide CHAP for demo mode)
 *                                "parameters": { "MaxRecvDataSegmentLength", ... } } ] } ],
 *     "discovery_auth": { "enable", "userid", "password", "mutual_userid", "mutual_password" },
 *     "fabric_modules": [ { "name": "iscsi", "discovery_enable_auth", "discovery_userid", ... } ] }
 *
 * Files saved by targetcli (rtslib-fb's dump) load as they are: the keys it writes that have no
 * meaning here (alua_tpgs, aio, write_back, exclusive, nullio, LUN and mapped-LUN aliases,
 * alua_tg_pt_gp_name, a target's parameters, a node ACL's tag and attributes, LIO's storage and
 * tpg attributes other than the ones read) are accepted and ignored; discovery CHAP is read from
 * either `discovery_auth` (ours) or rtslib's `fabric_modules` entry named "iscsi", not both.
 * Validation names the offending key path (`targets[0].tpgs[0].luns[1].storage_object`).
 * Secrets may be given as "env:VARIABLE" to read them from the environment.
 */
import { ArgumentError } from '../errors';
import { parseSize } from '../util/size';

export interface StorageObjectConfig {
  name: string;
  plugin: 'fileio' | 'ramdisk' | 'remote';
  /** fileio: the file path; remote: the iscsi:// URL. */
  dev?: string;
  /** Bytes. fileio: creates a sparse file of this size when missing. */
  size?: number;
  /** Optional serial / designator seed (hex). */
  wwn?: string;
  blockSize: 512 | 4096;
  readOnly: boolean;
}

export interface ChapConfig {
  userid: string;
  password: string;
  mutualUserid?: string;
  mutualPassword?: string;
}

export interface MappedLunConfig {
  index: number;
  tpgLun: number;
  writeProtect: boolean;
}

export interface NodeAclConfig {
  nodeWwn: string;
  chap?: ChapConfig;
  mappedLuns: MappedLunConfig[];
}

export interface PortalConfig {
  ipAddress: string;
  port: number;
}

export interface TpgConfig {
  tag: number;
  enable: boolean;
  portals: PortalConfig[];
  luns: { index: number; storageObject: string }[];
  nodeAcls: NodeAclConfig[];
  /** attributes.authentication = 1: CHAP required. */
  authentication: boolean;
  /** attributes.generate_node_acls = 1: any initiator sees every LUN (demo mode). */
  generateNodeAcls: boolean;
  demoModeWriteProtect: boolean;
  /** tpg-wide CHAP (used in demo mode). */
  chap?: ChapConfig;
  parameters: Record<string, string>;
}

export interface TargetConfig {
  wwn: string;
  tpgs: TpgConfig[];
}

export interface Config {
  storageObjects: StorageObjectConfig[];
  targets: TargetConfig[];
  discoveryAuth?: ChapConfig;
}

const IQN = /^(iqn\.\d{4}-\d{2}\.[a-z0-9.-]+(:.+)?|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16,32})$/;

type Json = Record<string, unknown>;

class Checker {
  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly prefix = 'config ',
  ) {}

  fail(path: string, why: string): never {
    throw new ArgumentError(`${this.prefix}${path}: ${why}`);
  }

  obj(v: unknown, path: string): Json {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'must be an object');
    return v as Json;
  }

  arr(v: unknown, path: string, optional = true): unknown[] {
    if (v === undefined && optional) return [];
    if (!Array.isArray(v)) this.fail(path, 'must be an array');
    return v;
  }

  str(v: unknown, path: string): string {
    if (typeof v !== 'string' || v.length === 0) this.fail(path, 'must be a non-empty string');
    return v;
  }

  int(v: unknown, path: string, min: number, max: number): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(path, `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  bool(v: unknown, path: string, dflt: boolean): boolean {
    if (v === undefined) return dflt;
    if (v === true || v === 1) return true;
    if (v === false || v === 0) return false;
    this.fail(path, `must be true/false (or 1/0), got ${JSON.stringify(v)}`);
  }

  secret(v: unknown, path: string): string {
    const s = this.str(v, path);
    if (s.startsWith('env:')) {
      const name = s.slice(4);
      const val = this.env[name];
      if (!val) this.fail(path, `names the environment variable ${name}, which is not set`);
      return val;
    }
    return s;
  }

  only(o: Json, path: string, keys: string[]): void {
    for (const k of Object.keys(o)) {
      if (!keys.includes(k)) this.fail(`${path}.${k}`, `unknown key (expected one of: ${keys.join(', ')})`);
    }
  }

  /** An array (absent = empty unless required), each item read by `item` under its own path. */
  list<T>(v: unknown, path: string, item: (v: unknown, path: string) => T, optional = true): T[] {
    return this.arr(v, path, optional).map((x, i) => item(x, `${path}[${i}]`));
  }

  /** The items' keys, in order; a key seen before fails at the item's key path. */
  unique<T, K>(items: T[], key: (item: T) => K, keyPath: (i: number) => string, what: string): Set<K> {
    const seen = new Set<K>();
    items.forEach((item, i) => {
      const k = key(item);
      if (seen.has(k)) this.fail(keyPath(i), `duplicate ${what} ${String(k)}`);
      seen.add(k);
    });
    return seen;
  }

  chap(o: Json, path: string, prefix: string): ChapConfig | undefined {
    const u = o[`${prefix}userid`];
    const p = o[`${prefix}password`];
    const mu = o[`${prefix}mutual_userid`];
    const mp = o[`${prefix}mutual_password`];
    if (u === undefined && p === undefined && mu === undefined && mp === undefined) return undefined;
    const chap: ChapConfig = {
      userid: this.str(u, `${path}.${prefix}userid`),
      password: this.secret(p, `${path}.${prefix}password`),
    };
    if (mu !== undefined || mp !== undefined) {
      chap.mutualUserid = this.str(mu, `${path}.${prefix}mutual_userid`);
      chap.mutualPassword = this.secret(mp, `${path}.${prefix}mutual_password`);
      if (chap.mutualPassword === chap.password) {
        this.fail(`${path}.${prefix}mutual_password`, 'must differ from the initiator secret (RFC 7143 12.1.3)');
      }
    }
    return chap;
  }
}

/**
 * Validates a parsed saveconfig.json-like document, in document order (the first broken key is
 * the one named): the storage objects, then the targets that export them, then discovery CHAP.
 */
export function parseConfig(doc: unknown, env: NodeJS.ProcessEnv = process.env): Config {
  const c = new Checker(env);
  const root = c.obj(doc, '(root)');
  c.only(root, '(root)', ['storage_objects', 'targets', 'discovery_auth', 'fabric_modules']);
  const storageObjects = c.list(root.storage_objects, 'storage_objects', (v, path) => storageObject(c, v, path));
  const names = c.unique(storageObjects, (so) => `/backstores/${so.plugin}/${so.name}`, (i) => `storage_objects[${i}].name`, 'storage object');
  const targets = c.list(root.targets, 'targets', (v, path) => target(c, v, path, names));
  c.unique(targets, (t) => t.wwn, (i) => `targets[${i}].wwn`, 'target');
  if (root.discovery_auth !== undefined && fabricDiscoveryAuth(c, root.fabric_modules) !== undefined) {
    c.fail('discovery_auth', 'give discovery CHAP in discovery_auth or in fabric_modules, not both');
  }
  return { storageObjects, targets, discoveryAuth: discoveryAuth(c, root.discovery_auth) ?? fabricDiscoveryAuth(c, root.fabric_modules) };
}

/** One storage object (a backstore): its plugin, block size, size and where its data lives. */
function storageObject(c: Checker, v: unknown, path: string): StorageObjectConfig {
  const o = c.obj(v, path);
  c.only(o, path, ['name', 'plugin', 'dev', 'size', 'wwn', 'attributes', 'write_back', 'aio', 'readonly', 'alua_tpgs', 'exclusive', 'nullio']);
  const pluginName = c.str(o.plugin, `${path}.plugin`);
  if (pluginName !== 'fileio' && pluginName !== 'ramdisk' && pluginName !== 'remote') {
    c.fail(`${path}.plugin`, `unsupported plugin ${JSON.stringify(pluginName)} (fileio, ramdisk or remote)`);
  }
  const plugin = pluginName as StorageObjectConfig['plugin'];
  const attrs = o.attributes === undefined ? {} : c.obj(o.attributes, `${path}.attributes`);
  const blockSize = attrs.block_size === undefined ? 512 : c.int(attrs.block_size, `${path}.attributes.block_size`, 512, 4096);
  if (blockSize !== 512 && blockSize !== 4096) c.fail(`${path}.attributes.block_size`, 'must be 512 or 4096');
  let size: number | undefined;
  if (o.size !== undefined) {
    size = typeof o.size === 'string' ? parseSize(o.size, `${path}.size`) : c.int(o.size, `${path}.size`, 1, Number.MAX_SAFE_INTEGER);
    if (size % blockSize !== 0) c.fail(`${path}.size`, `${size} is not a multiple of the block size ${blockSize}`);
  }
  const so: StorageObjectConfig = {
    name: c.str(o.name, `${path}.name`),
    plugin,
    dev: o.dev === undefined ? undefined : c.str(o.dev, `${path}.dev`),
    size,
    wwn: o.wwn === undefined ? undefined : c.str(o.wwn, `${path}.wwn`),
    blockSize: blockSize as 512 | 4096,
    readOnly: c.bool(o.readonly, `${path}.readonly`, false),
  };
  if ((plugin === 'fileio' || plugin === 'remote') && !so.dev) c.fail(`${path}.dev`, `is required for plugin ${plugin}`);
  if (plugin === 'remote' && !so.dev!.startsWith('iscsi://')) c.fail(`${path}.dev`, 'must be an iscsi:// URL for plugin remote');
  if (plugin === 'ramdisk' && size === undefined) c.fail(`${path}.size`, 'is required for plugin ramdisk');
  return so;
}

/** One iSCSI target: its name and its tpgs; `names` are the storage objects' paths. */
function target(c: Checker, v: unknown, tpath: string, names: Set<string>): TargetConfig {
  const t = c.obj(v, tpath);
  c.only(t, tpath, ['wwn', 'fabric', 'tpgs', 'parameters']);
  const wwn = c.str(t.wwn, `${tpath}.wwn`);
  if (!IQN.test(wwn)) c.fail(`${tpath}.wwn`, `${JSON.stringify(wwn)} is not an iSCSI name (iqn.YYYY-MM.reversed.domain[:name])`);
  if (t.fabric !== undefined && t.fabric !== 'iscsi') c.fail(`${tpath}.fabric`, 'only "iscsi" is supported');
  const tpgs = c.list(t.tpgs, `${tpath}.tpgs`, (tv, gpath) => tpg(c, tv, gpath, names), false);
  return { wwn, tpgs };
}

/**
 * One target portal group: its LUNs (each a storage object), node ACLs (mapping those LUNs),
 * portals, login parameters, then its attributes (demo mode when it has no ACL) and CHAP.
 */
function tpg(c: Checker, tv: unknown, gpath: string, names: Set<string>): TpgConfig {
  const g = c.obj(tv, gpath);
  c.only(g, gpath, [
    'tag', 'enable', 'portals', 'luns', 'node_acls', 'attributes', 'parameters',
    'chap_userid', 'chap_password', 'chap_mutual_userid', 'chap_mutual_password',
  ]);
  const attrs = g.attributes === undefined ? {} : c.obj(g.attributes, `${gpath}.attributes`);
  const luns = c.list(g.luns, `${gpath}.luns`, (lv, lpath) => tpgLun(c, lv, lpath, names));
  const lunIdx = c.unique(luns, (l) => l.index, (li) => `${gpath}.luns[${li}].index`, 'LUN');
  const nodeAcls = c.list(g.node_acls, `${gpath}.node_acls`, (av, apath) => nodeAcl(c, av, apath, lunIdx));
  const portals = c.list(g.portals, `${gpath}.portals`, (pv, ppath) => portal(c, pv, ppath));
  const parameters = loginParameters(c, g.parameters, `${gpath}.parameters`);
  return {
    tag: g.tag === undefined ? 1 : c.int(g.tag, `${gpath}.tag`, 1, 65535),
    enable: c.bool(g.enable, `${gpath}.enable`, true),
    portals,
    luns,
    nodeAcls,
    authentication: c.bool(attrs.authentication, `${gpath}.attributes.authentication`, false),
    generateNodeAcls: c.bool(attrs.generate_node_acls, `${gpath}.attributes.generate_node_acls`, nodeAcls.length === 0),
    demoModeWriteProtect: c.bool(attrs.demo_mode_write_protect, `${gpath}.attributes.demo_mode_write_protect`, false),
    chap: c.chap(g, gpath, 'chap_'),
    parameters,
  };
}

/** One LUN of a tpg: its number and the storage object behind it (one of `names`). */
function tpgLun(c: Checker, lv: unknown, lpath: string, names: Set<string>): TpgConfig['luns'][number] {
  const l = c.obj(lv, lpath);
  c.only(l, lpath, ['index', 'storage_object', 'alias', 'alua_tg_pt_gp_name']);
  const so = c.str(l.storage_object, `${lpath}.storage_object`);
  if (!names.has(so)) c.fail(`${lpath}.storage_object`, `${so} is not among storage_objects (${[...names].join(', ') || 'none'})`);
  return { index: c.int(l.index, `${lpath}.index`, 0, 16383), storageObject: so };
}

/** One node ACL: the initiator's name, its mapped LUNs (each one of the tpg's `lunIdx`) and CHAP. */
function nodeAcl(c: Checker, av: unknown, apath: string, lunIdx: Set<number>): NodeAclConfig {
  const a = c.obj(av, apath);
  c.only(a, apath, ['node_wwn', 'tag', 'chap_userid', 'chap_password', 'chap_mutual_userid', 'chap_mutual_password', 'mapped_luns', 'attributes']);
  const nodeWwn = c.str(a.node_wwn, `${apath}.node_wwn`);
  if (!IQN.test(nodeWwn)) c.fail(`${apath}.node_wwn`, `${JSON.stringify(nodeWwn)} is not an iSCSI name`);
  const mapped = c.list(a.mapped_luns, `${apath}.mapped_luns`, (mv, mpath) => mappedLun(c, mv, mpath, lunIdx));
  return { nodeWwn, chap: c.chap(a, apath, 'chap_'), mappedLuns: mapped };
}

/** One mapped LUN of a node ACL: the number the initiator sees for one of the tpg's `lunIdx`. */
function mappedLun(c: Checker, mv: unknown, mpath: string, lunIdx: Set<number>): MappedLunConfig {
  const m = c.obj(mv, mpath);
  c.only(m, mpath, ['index', 'tpg_lun', 'write_protect', 'alias']);
  const tpgLun = c.int(m.tpg_lun, `${mpath}.tpg_lun`, 0, 16383);
  if (!lunIdx.has(tpgLun)) c.fail(`${mpath}.tpg_lun`, `LUN ${tpgLun} is not among the tpg's luns`);
  return { index: c.int(m.index, `${mpath}.index`, 0, 16383), tpgLun, writeProtect: c.bool(m.write_protect, `${mpath}.write_protect`, false) };
}

/** One portal: the address and port the tpg listens on. */
function portal(c: Checker, pv: unknown, ppath: string): PortalConfig {
  const p = c.obj(pv, ppath);
  c.only(p, ppath, ['ip_address', 'port', 'iser', 'offload']);
  return { ipAddress: c.str(p.ip_address, `${ppath}.ip_address`), port: c.int(p.port, `${ppath}.port`, 1, 65535) };
}

/** The tpg's login parameters (key=value as the iSCSI login negotiates them); numbers become text. */
function loginParameters(c: Checker, v: unknown, path: string): Record<string, string> {
  const params = v === undefined ? {} : c.obj(v, path);
  const parameters: Record<string, string> = {};
  for (const [k, pv] of Object.entries(params)) parameters[k] = typeof pv === 'number' ? String(pv) : c.str(pv, `${path}.${k}`);
  return parameters;
}

/** CHAP for discovery sessions, when the document has it and it is enabled (the default). */
function discoveryAuth(c: Checker, v: unknown): ChapConfig | undefined {
  if (v === undefined) return undefined;
  const d = c.obj(v, 'discovery_auth');
  c.only(d, 'discovery_auth', ['enable', 'userid', 'password', 'mutual_userid', 'mutual_password']);
  return c.bool(d.enable, 'discovery_auth.enable', true) ? c.chap(d, 'discovery_auth', '') : undefined;
}

/**
 * Discovery CHAP as targetcli saves it: the `fabric_modules` entry named "iscsi" with
 * discovery_userid/password (and the mutual pair), used when discovery_enable_auth is true (the
 * default when a user id is given). Entries of other fabrics are ignored (iSCSI is the only one).
 */
function fabricDiscoveryAuth(c: Checker, v: unknown): ChapConfig | undefined {
  const modules = c.list(v, 'fabric_modules', (mv, mpath) => ({ o: c.obj(mv, mpath), path: mpath }));
  const iscsi = modules.find((m) => c.str(m.o.name, `${m.path}.name`) === 'iscsi');
  if (!iscsi) return undefined;
  c.only(iscsi.o, iscsi.path, ['name', 'discovery_enable_auth', 'discovery_userid', 'discovery_password', 'discovery_mutual_userid', 'discovery_mutual_password']);
  const chap = c.chap(iscsi.o, iscsi.path, 'discovery_');
  return c.bool(iscsi.o.discovery_enable_auth, `${iscsi.path}.discovery_enable_auth`, chap !== undefined) ? chap : undefined;
}

/**
 * The quick form: `--portal 127.0.0.1:3260 --iqn IQN --lun file:PATH[:SIZE] --lun memory:SIZE ...`
 * — one target, one tpg, LUNs numbered from 0 in order, every initiator sees every LUN.
 */
export function quickConfig(opts: { portal: string; iqn: string; luns: string[] }): Config {
  const c = new Checker({}, '');
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d+)$/.exec(opts.portal) ?? c.fail('--portal', `${JSON.stringify(opts.portal)} must be HOST:PORT (e.g. 127.0.0.1:3260)`);
  const port = c.int(Number(m[2]), '--portal port', 1, 65535);
  if (!IQN.test(opts.iqn)) c.fail('--iqn', `${JSON.stringify(opts.iqn)} is not an iSCSI name (iqn.YYYY-MM.reversed.domain[:name])`);
  if (opts.luns.length === 0) c.fail('--lun', 'give at least one LUN (file:PATH[:SIZE], memory:SIZE or iscsi://...)');
  const storageObjects: StorageObjectConfig[] = opts.luns.map((spec, i) => {
    const path = `--lun ${spec}`;
    if (spec.startsWith('file:')) {
      const rest = spec.slice(5);
      const sm = /^(.*?)(?::(\d+(?:\.\d+)?[KMGTkmgt]?(?:i?B)?))?$/.exec(rest)!;
      if (!sm[1]) c.fail(path, 'needs a path: file:PATH[:SIZE]');
      return { name: `lun${i}`, plugin: 'fileio', dev: sm[1], size: sm[2] ? parseSize(sm[2], path) : undefined, blockSize: 512, readOnly: false };
    }
    if (spec.startsWith('memory:')) {
      return { name: `lun${i}`, plugin: 'ramdisk', size: parseSize(spec.slice(7), path), blockSize: 512, readOnly: false };
    }
    if (spec.startsWith('iscsi://')) return { name: `lun${i}`, plugin: 'remote', dev: spec, blockSize: 512, readOnly: false };
    return c.fail(path, 'must be file:PATH[:SIZE], memory:SIZE or an iscsi:// URL');
  });
  return {
    storageObjects,
    targets: [
      {
        wwn: opts.iqn,
        tpgs: [
          {
            tag: 1,
            enable: true,
            portals: [{ ipAddress: m[1].replace(/^\[|\]$/g, ''), port }],
            luns: storageObjects.map((so, i) => ({ index: i, storageObject: `/backstores/${so.plugin}/${so.name}` })),
            nodeAcls: [],
            authentication: false,
            generateNodeAcls: true,
            demoModeWriteProtect: false,
            parameters: {},
          },
        ],
      },
    ],
  };
}

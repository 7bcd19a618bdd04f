/**
 * The project's iSCSI target: listens on the configured portals (and only those), runs one
 * Connection per TCP connection, keeps the sessions (TSIH assignment, reinstatement of the same
 * initiator port, RFC 7143 6.3.5), answers SendTargets, performs LUN and target resets across
 * connections, counts commands per opcode, reloads its configuration without dropping the
 * sessions it need not drop (docs/target.md "Reloading the configuration"), and stops gracefully.
 */
import net from 'node:net';
import { AgentError, ArgumentError } from '../errors';
import { logger, type Logger } from '../util/log';
import type { Config } from './config';
import { Connection, type ConnectionHost } from './iscsi/connection';
import type { LoginConfig, LoginResult } from './iscsi/login';
import { DEFAULT_TARGET_PARAMS, type TargetParams } from './iscsi/negotiation';
import { TargetSession } from './iscsi/session';
import type { TextPair } from './iscsi/text';
import type { LogicalUnit } from './scsi/logical-unit';
import { reportedLunsChanged } from './scsi/dispatch';
import { openStorageObject, TargetModel, type LunName, type OpenedStorageObject, type TargetPortalGroup } from './target';
import { planReload } from './reload';
import { copyManagerOf } from '../xcopy';
import { SnapshotManager } from './snapshots/manager';
import { ManagementServer } from '../mgmt';
import { managementMethods } from './management';

/** The snapshot events (docs/cow.md "The held event", "The resuming event"). */
export { SNAPSHOT_HELD_CHANNEL, SNAPSHOT_RESUMING_CHANNEL, subscribeSnapshotEvent, type SnapshotHeldMessage, type SnapshotResumingMessage } from '../cow/events';

export interface ServerOptions {
  log?: Logger;
  /** Idle time before the target pings with NOP-In (ms; 0 = never). Default 30 000. */
  keepAliveIntervalMs?: number;
  /** Time allowed for the answer to a ping before the connection is dropped. Default 15 000. */
  keepAliveTimeoutMs?: number;
  /** Largest Data-Out accepted for one command. Default 64 MiB. */
  maxCommandBytes?: number;
  /**
   * Snapshot sessions: their journal lives here. After a restart they resume in the background;
   * until then their sources refuse changes (NOT READY, becoming ready) — see SnapshotManager.open.
   * Without it the target takes no snapshots.
   */
  stateDir?: string;
  /** The management API (needs stateDir): listen = HOST:PORT on loopback or unix:/path. */
  management?: { listen: string; token?: string; tokenFile?: string };
  /** Where reloadConfig() reads the configuration anew (the --config file); absent: it cannot. */
  configSource?: () => Config;
  /** Told as a reload begins and ends (the CLI tells the service manager, sd_notify). */
  onReload?: (event: { phase: 'begin' } | { phase: 'end'; result: ReloadResult } | { phase: 'refused'; error: Error }) => void;
}

/** A portal to listen on, from the configuration: its address, port and TPG tag. */
interface PortalSpec {
  host: string;
  port: number;
  tag: number;
}

/** The portals of the enabled TPGs of `config`, by `ip_address:port` as configured. */
function portalsOf(config: Config): Map<string, PortalSpec> {
  const portals = new Map<string, PortalSpec>();
  for (const t of config.targets) {
    for (const g of t.tpgs) {
      if (!g.enable) continue;
      for (const p of g.portals) portals.set(`${p.ipAddress}:${p.port}`, { host: p.ipAddress, port: p.port, tag: g.tag });
    }
  }
  return portals;
}

/** What a configuration reload did (TargetServer.reload; the management API's `reload` answers it). */
export interface ReloadResult {
  storage_objects: { added: string[]; changed: string[]; removed: string[] };
  luns: { added: LunName[]; replaced: LunName[]; removed: LunName[] };
  portals: { added: string[]; removed: string[] };
  /** Sessions left as they were, given a new LUN view (and REPORTED LUNS DATA HAS CHANGED), or ended. */
  sessions: { unchanged: number; remapped: number; ended: number };
}

const NO_PORTAL = 'no portal configured: add targets[].tpgs[].portals (ip_address, port)';

export class TargetServer implements ConnectionHost {
  readonly log: Logger;
  readonly model: TargetModel;
  readonly keepAliveIntervalMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxCommandBytes: number;
  /** Commands executed, by operation code (for tests and the management API). */
  readonly opcodeCounts = new Map<number, number>();
  /** The listening sockets, by portal as configured (ip_address:port). */
  private readonly portals = new Map<string, { server: net.Server; at: { host: string; port: number; tag: number } }>();
  /** Reloads run one at a time, in the order asked. */
  private reloads: Promise<unknown> = Promise.resolve();
  /** Stores a reload took out of service, closing once the commands that were in flight have ended. */
  private readonly retiring = new Set<Promise<void>>();
  private readonly connections = new Set<Connection>();
  private readonly sessions = new Map<string, TargetSession>();
  private readonly connectionsOf = new Map<TargetSession, Set<Connection>>();
  private nextTsih = 1;
  private nextConnId = 1;
  private readonly params: TargetParams;
  private stopping = false;
  private readonly configSource: ServerOptions['configSource'];
  private readonly onReload: ServerOptions['onReload'];
  /** Snapshot sessions (when started with a stateDir). */
  snapshots: SnapshotManager | undefined;
  /** The management API (when configured). */
  management: ManagementServer | undefined;
  /** Told of every command that ends (the metrics exporter, src/target/metrics.ts), if set. */
  commandObserver: ConnectionHost['commandDone'] | undefined;
  /** Addresses actually listened on, as host:port. */
  readonly listening: { host: string; port: number; tag: number }[] = [];

  private constructor(model: TargetModel, opts: ServerOptions) {
    this.model = model;
    this.log = opts.log ?? logger();
    this.keepAliveIntervalMs = opts.keepAliveIntervalMs ?? 30_000;
    this.keepAliveTimeoutMs = opts.keepAliveTimeoutMs ?? 15_000;
    this.maxCommandBytes = opts.maxCommandBytes ?? 64 * 1024 * 1024;
    this.params = { ...DEFAULT_TARGET_PARAMS };
    this.configSource = opts.configSource;
    this.onReload = opts.onReload;
  }

  /** Opens the stores, builds the LUNs and listens on every portal. */
  static async start(config: Config, opts: ServerOptions = {}): Promise<TargetServer> {
    const log = opts.log ?? logger();
    const model = await TargetModel.open(config, log);
    const server = new TargetServer(model, opts);
    try {
      if (opts.management && !opts.stateDir) throw new AgentError('ERR_INVALID_ARG', 'the management API needs a state directory (--state-dir)');
      // Sources of journalled sessions refuse changes from here until their session has resumed
      // (COW re-armed), which happens in the background while the target serves.
      if (opts.stateDir) {
        server.snapshots = await SnapshotManager.open(model, opts.stateDir, { log });
        // A view added or removed changes the LUNs of the sessions that see its source.
        server.snapshots.lunsChanged = () => server.refreshSessions();
      }
      if (opts.management && server.snapshots) {
        server.management = await ManagementServer.start({ ...opts.management, methods: managementMethods(server, server.snapshots), log });
        log.info({ url: server.management.url }, 'management API listening');
      }
      const portals = portalsOf(config);
      if (portals.size === 0) throw new AgentError('ERR_INVALID_ARG', NO_PORTAL);
      for (const [key, p] of portals) await server.listen(key, p);
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  /** Listens on one portal (`key` as configured); registered once it listens. */
  private listen(key: string, { host, port, tag }: PortalSpec): Promise<void> {
    return new Promise((resolve, reject) => {
      const srv = net.createServer((socket) => this.accept(socket));
      srv.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          new AgentError(
            'ERR_INVALID_ARG',
            err.code === 'EADDRINUSE'
              ? `portal ${host}:${port} is already in use: choose another port or stop what listens there`
              : `cannot listen on portal ${host}:${port}: ${err.message}`,
          ),
        );
      });
      srv.listen(port, host, () => {
        const a = srv.address() as net.AddressInfo;
        const at = { host: a.address, port: a.port, tag };
        this.listening.push(at);
        this.portals.set(key, { server: srv, at });
        this.log.info({ portal: `${a.address}:${a.port}`, tpgt: tag }, 'listening');
        resolve();
      });
    });
  }

  /** Stops listening on one portal (connections made through it go on). */
  private async unlisten(key: string): Promise<void> {
    const p = this.portals.get(key);
    if (!p) return;
    this.portals.delete(key);
    const i = this.listening.indexOf(p.at);
    if (i >= 0) this.listening.splice(i, 1);
    await new Promise<void>((r) => p.server.close(() => r()));
    this.log.info({ portal: `${p.at.host}:${p.at.port}` }, 'no longer listening');
  }

  private accept(socket: net.Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const conn = new Connection(socket, this.nextConnId++, this);
    this.connections.add(conn);
  }

  // ---- ConnectionHost ----

  loginConfig(conn: Connection): LoginConfig {
    const listened = this.listening.find((l) => l.port === conn.localPort);
    return {
      params: this.params,
      discoveryAuth: this.model.config.discoveryAuth
        ? {
            user: this.model.config.discoveryAuth.userid,
            secret: this.model.config.discoveryAuth.password,
            mutualUser: this.model.config.discoveryAuth.mutualUserid,
            mutualSecret: this.model.config.discoveryAuth.mutualPassword,
          }
        : undefined,
      targetLookup: (name) => this.model.tpg(name, listened?.tag)?.loginTarget() ?? this.model.tpg(name)?.loginTarget(),
      sessionExists: ({ isid, tsih, initiatorName, targetName }) => {
        const s = this.sessions.get(TargetSession.key(initiatorName, isid, targetName));
        return s !== undefined && s.tsih === tsih;
      },
      warn: (m) => this.log.warn(m),
    };
  }

  attachSession(conn: Connection, r: LoginResult): TargetSession {
    const key = TargetSession.key(r.initiatorName, r.isid, r.targetName);
    const old = this.sessions.get(key);
    if (old && r.tsih === 0) {
      // Session reinstatement (RFC 7143 6.3.5): the old session's connections are closed.
      this.log.info({ initiator: r.initiatorName, isid: r.isid.toString('hex'), tsih: old.tsih }, 'session reinstatement');
      this.closeSession(old);
    }
    if (r.tsih !== 0 && old && old.tsih === r.tsih) {
      throw new AgentError('ERR_INVALID_ARG', 'adding a connection to a session is not supported (MaxConnections=1)');
    }
    const tpg = r.targetName ? this.model.tpg(r.targetName, r.target?.portalGroupTag) : undefined;
    const access = tpg?.accessFor(r.initiatorName);
    let tsih = this.nextTsih++;
    if (this.nextTsih > 0xffff) this.nextTsih = 1;
    if (tsih === 0) tsih = this.nextTsih++;
    const session = new TargetSession({
      tsih,
      type: r.sessionType,
      initiatorName: r.initiatorName,
      isid: r.isid,
      tpg,
      view: access?.view ?? new Map(),
      writeProtected: access?.writeProtected,
      cmdSN: conn.loginCmdSN,
    });
    this.sessions.set(key, session);
    this.connectionsOf.set(session, new Set([conn]));
    return session;
  }

  detach(conn: Connection): void {
    this.connections.delete(conn);
    const s = conn.session;
    if (!s) return;
    const set = this.connectionsOf.get(s);
    set?.delete(conn);
    if (set && set.size === 0) {
      this.connectionsOf.delete(s);
      const key = TargetSession.key(s.initiatorName, s.isid, s.tpg?.node.name);
      if (this.sessions.get(key) === s) this.sessions.delete(key);
      s.closed = true;
      for (const lu of new Set(s.view.values())) {
        lu.nexusGone(s.nexus);
        copyManagerOf(lu)?.nexusGone(s.nexus, [lu]);
      }
      this.log.info({ initiator: s.initiatorName, tsih: s.tsih }, 'session closed');
    }
  }

  private closeSession(s: TargetSession): void {
    for (const c of this.connectionsOf.get(s) ?? []) c.close();
  }

  sendTargets(conn: Connection, which: string): TextPair[] {
    const s = conn.session!;
    const out: TextPair[] = [];
    for (const node of this.model.nodes.values()) {
      if (which !== 'All' && which !== node.name && !(which === '' && s.tpg?.node === node)) continue;
      if (s.type === 'Normal' && s.tpg?.node !== node) continue; // a normal session sees its own target
      const tpgs = node.tpgs.filter((g) => g.viewFor(s.initiatorName) !== undefined);
      if (tpgs.length === 0) continue;
      out.push(['TargetName', node.name]);
      for (const g of tpgs) {
        for (const p of g.config.portals) {
          // Advertise the address actually listened on: a wildcard portal answers with the
          // address this connection came in on.
          const wildcard = p.ipAddress === '0.0.0.0' || p.ipAddress === '::';
          const host = wildcard ? conn.localAddress : p.ipAddress;
          const port = this.listening.find((l) => l.port === p.port || p.port === 0)?.port ?? p.port;
          out.push(['TargetAddress', `${host.includes(':') ? `[${host}]` : host}:${port},${g.tag}`]);
        }
      }
    }
    return out;
  }

  async reset(fn: 'lun' | 'target', conn: Connection, lun: number): Promise<boolean> {
    const s = conn.session!;
    const lus = fn === 'lun' ? [s.view.get(lun)].filter((x) => x !== undefined) : [...new Set(s.view.values())];
    // Abort the tasks addressed to those LUs on every connection (SAM-5 r21 6.3).
    const waits: Promise<void>[] = [];
    for (const c of this.connections) {
      const cs = c.session;
      if (!cs) continue;
      for (const [n, lu] of cs.view) {
        if (lus.includes(lu)) waits.push(c.abortTasks(c.tasksFor(n)));
      }
    }
    await Promise.all(waits);
    for (const lu of lus) {
      lu.reset(fn === 'lun' ? 'lun-reset' : 'target-warm-reset', s.nexus);
      copyManagerOf(lu)?.reset(lu);
    }
    return true;
  }

  /**
   * Replaces the configuration in force with `next` (docs/target.md "Reloading the
   * configuration"), after the reloads asked before it. Refused, with nothing changed, when the
   * plan is (reload.ts: what snapshots hold), when a new or changed storage object cannot be
   * opened, or when a new portal cannot be listened on: an ArgumentError naming the key path.
   * Otherwise the swap is synchronous (TargetModel.swap), then each session is given its new LUN
   * view or ended (remapSessions), then portals no longer configured stop listening; stores no
   * longer used close once the commands in flight at the swap have ended.
   */
  reload(next: Config): Promise<ReloadResult> {
    return this.queueReload(() => next);
  }

  /**
   * Reads the configuration anew from its source (SIGHUP, the management API's `reload`) and
   * reloads it. A configuration that does not read or validate is refused as any other is.
   */
  reloadConfig(): Promise<ReloadResult> {
    const source = this.configSource;
    if (!source) {
      const err = new ArgumentError('this target was started without --config: there is no configuration file to reload (restart it with the new LUNs)');
      this.log.warn(err.message);
      return Promise.reject(err);
    }
    return this.queueReload(source);
  }

  private queueReload(next: () => Config): Promise<ReloadResult> {
    const run = this.reloads.then(async () => {
      this.onReload?.({ phase: 'begin' });
      try {
        const result = await this.reloadNow(next());
        this.onReload?.({ phase: 'end', result });
        return result;
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'configuration reload refused; the configuration in force stays');
        this.onReload?.({ phase: 'refused', error: err as Error });
        throw err;
      }
    });
    this.reloads = run.catch(() => undefined);
    return run;
  }

  private async reloadNow(next: Config): Promise<ReloadResult> {
    if (this.stopping) throw new AgentError('ERR_INVALID_ARG', 'the target is stopping; nothing reloaded');
    const plan = planReload(this.model, next, this.snapshots);
    const wanted = portalsOf(next);
    if (wanted.size === 0) throw new ArgumentError(`config targets: ${NO_PORTAL}`);
    const opened = new Map<string, OpenedStorageObject>();
    const listened: string[] = [];
    try {
      for (const o of plan.open) {
        try {
          opened.set(o.key, await openStorageObject(o.so, this.log));
        } catch (err) {
          throw new ArgumentError(`config ${o.path}: cannot open ${o.key}: ${(err as Error).message}`);
        }
      }
      for (const [key, p] of wanted) {
        if (this.portals.has(key)) continue;
        await this.listen(key, p);
        listened.push(key);
      }
      // Snapshots may have been instituted while the stores opened: the plan must still hold.
      planReload(this.model, next, this.snapshots);
    } catch (err) {
      await Promise.all([...opened.values()].map((o) => o.store.close().catch(() => undefined)));
      await Promise.all(listened.map((k) => this.unlisten(k)));
      throw err;
    }
    // From here on nothing fails: the new configuration is in force.
    const swap = this.model.swap(next, opened);
    for (const tpg of this.model.allTpgs()) this.snapshots?.remapViews(tpg);
    for (const [key, p] of wanted) {
      const at = this.portals.get(key)?.at;
      if (at) at.tag = p.tag;
    }
    const sessions = this.remapSessions(new Set(swap.goneTpgs));
    const unlistened = [...this.portals.keys()].filter((k) => !wanted.has(k));
    await Promise.all(unlistened.map((k) => this.unlisten(k)));
    if (swap.retired.length > 0) {
      // The commands in flight now may still use the retired stores; the ones after cannot.
      const inFlight = Promise.all([...this.connections].map((c) => c.drain()));
      const closing = inFlight.then(async () => {
        await Promise.all(swap.retired.map((st) => st.close().catch((err: Error) => this.log.warn({ err: err.message }, 'a store taken out of service failed to close'))));
      });
      this.retiring.add(closing);
      void closing.finally(() => this.retiring.delete(closing));
    }
    const result: ReloadResult = {
      storage_objects: { added: plan.added, changed: plan.changed, removed: plan.removed },
      luns: { added: swap.added, replaced: swap.replaced, removed: swap.removed },
      portals: { added: listened, removed: unlistened },
      sessions,
    };
    this.log.info(result, 'configuration reloaded');
    return result;
  }

  /** Each session given the LUN view its TPG gives it now (a snapshot view added or removed). */
  refreshSessions(): void {
    const r = this.remapSessions(new Set());
    if (r.remapped > 0) this.log.debug(r, 'LUN views of the sessions refreshed');
  }

  /**
   * After a swap, each normal session is given the LUN view its TPG's ACLs now give it. One
   * whose TPG is gone, or whose initiator the ACLs no longer let in, ends (as LIO ends the
   * sessions of a node ACL it deletes). One whose view changed — a LUN added, removed or
   * replaced, or its write protection — keeps its connection: every LU of its new view
   * establishes REPORTED LUNS DATA HAS CHANGED for it (SPC-4 r37 6.33), an LU new to it after
   * the POWER ON condition it reports first (SAM-5 r21 5.14: the LU is new), and the LUs it no
   * longer sees let go what it held there, as at nexus loss. The others are left alone.
   */
  private remapSessions(gone: Set<TargetPortalGroup>): ReloadResult['sessions'] {
    const out = { unchanged: 0, remapped: 0, ended: 0 };
    for (const s of this.sessions.values()) {
      if (s.type !== 'Normal' || !s.tpg) continue;
      const access = gone.has(s.tpg) ? undefined : s.tpg.accessFor(s.initiatorName);
      if (!access) {
        this.log.info({ initiator: s.initiatorName, tsih: s.tsih, target: s.tpg.node.name }, 'session ended by the reload: its target portal group or ACL is gone');
        this.closeSession(s);
        out.ended++;
        continue;
      }
      const same =
        access.view.size === s.view.size &&
        [...access.view].every(([n, lu]) => s.view.get(n) === lu) &&
        access.writeProtected.size === s.writeProtected.size &&
        [...access.writeProtected].every((n) => s.writeProtected.has(n));
      if (same) {
        out.unchanged++;
        continue;
      }
      const before = new Set(s.view.values());
      const after = new Set(access.view.values());
      for (const lu of before) {
        if (after.has(lu)) continue;
        lu.nexusGone(s.nexus);
        copyManagerOf(lu)?.nexusGone(s.nexus, [lu]);
      }
      for (const lu of after) if (!before.has(lu)) lu.unitAttentions.touch(s.nexus);
      s.view.clear();
      for (const [n, lu] of access.view) s.view.set(n, lu);
      s.writeProtected.clear();
      for (const n of access.writeProtected) s.writeProtected.add(n);
      reportedLunsChanged(s.view, [s.nexus]);
      out.remapped++;
    }
    return out;
  }

  countOpcode(op: number): void {
    this.opcodeCounts.set(op, (this.opcodeCounts.get(op) ?? 0) + 1);
  }

  commandDone(lu: LogicalUnit | undefined, opcode: number, status: number, dataInBytes: number, dataOutBytes: number, startedMs: number): void {
    this.commandObserver?.(lu, opcode, status, dataInBytes, dataOutBytes, startedMs);
  }

  /** What the target is doing, in a few numbers (SIGUSR1 logs it). */
  status(): Record<string, unknown> {
    const tpgs = this.model.allTpgs();
    return {
      targets: this.model.nodes.size,
      tpgs: tpgs.length,
      luns: tpgs.reduce((n, t) => n + t.luns.size, 0),
      portals: this.listening.map((l) => `${l.host}:${l.port}`),
      sessions: this.sessionCount,
      connections: this.connectionCount,
      commands: [...this.opcodeCounts.values()].reduce((a, b) => a + b, 0),
    };
  }

  /** Sessions now open (for status and tests). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** TCP connections now open, logged in or not (for metrics). */
  get connectionCount(): number {
    return this.connections.size;
  }

  /**
   * Graceful stop: stop accepting, let commands in flight finish (bounded), flush the stores,
   * close connections and stores.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.snapshots?.stopResuming();
    await Promise.all([...this.portals.keys()].map((k) => this.unlisten(k)));
    await this.management?.stop().catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      // Stores a reload took out of service close once their last commands have ended.
      Promise.all([...[...this.connections].map((c) => c.drain()), ...this.retiring]),
      new Promise<void>((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    await this.model.flush();
    for (const c of this.connections) c.close();
    // After the connections: a capture in flight finishes before its OBF is let go.
    await this.snapshots?.close();
    await this.model.close();
    this.log.info('target stopped');
  }
}

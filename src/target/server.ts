/**
 * The project's iSCSI target: listens on the configured portals (and only those), runs one
 * Connection per TCP connection, keeps the sessions (TSIH assignment, reinstatement of the same
 * initiator port, RFC 7143 6.3.5), answers SendTargets, performs LUN and target resets across
 * connections, counts commands per opcode, and stops gracefully.
 */
import net from 'node:net';
import { AgentError } from '../errors';
import { logger, type Logger } from '../util/log';
import type { Config } from './config';
import { Connection, type ConnectionHost } from './iscsi/connection';
import type { LoginConfig, LoginResult } from './iscsi/login';
import { DEFAULT_TARGET_PARAMS, type TargetParams } from './iscsi/negotiation';
import { TargetSession } from './iscsi/session';
import type { TextPair } from './iscsi/text';
import type { LogicalUnit } from './scsi/logical-unit';
import { TargetModel } from './target';
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
}

export class TargetServer implements ConnectionHost {
  readonly log: Logger;
  readonly model: TargetModel;
  readonly keepAliveIntervalMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxCommandBytes: number;
  /** Commands executed, by operation code (for tests and the management API). */
  readonly opcodeCounts = new Map<number, number>();
  private readonly servers: net.Server[] = [];
  private readonly connections = new Set<Connection>();
  private readonly sessions = new Map<string, TargetSession>();
  private readonly connectionsOf = new Map<TargetSession, Set<Connection>>();
  private nextTsih = 1;
  private nextConnId = 1;
  private readonly params: TargetParams;
  private stopping = false;
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
      if (opts.stateDir) server.snapshots = await SnapshotManager.open(model, opts.stateDir, { log });
      if (opts.management && server.snapshots) {
        server.management = await ManagementServer.start({ ...opts.management, methods: managementMethods(server, server.snapshots), log });
        log.info({ url: server.management.url }, 'management API listening');
      }
      const portals = new Map<string, { host: string; port: number; tag: number }>();
      for (const tpg of model.allTpgs()) {
        for (const p of tpg.config.portals) portals.set(`${p.ipAddress}:${p.port}`, { host: p.ipAddress, port: p.port, tag: tpg.tag });
      }
      if (portals.size === 0) throw new AgentError('ERR_INVALID_ARG', 'no portal configured: add targets[].tpgs[].portals (ip_address, port)');
      for (const p of portals.values()) await server.listen(p.host, p.port, p.tag);
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  private listen(host: string, port: number, tag: number): Promise<void> {
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
        this.listening.push({ host: a.address, port: a.port, tag });
        this.log.info({ portal: `${a.address}:${a.port}`, tpgt: tag }, 'listening');
        resolve();
      });
      this.servers.push(srv);
    });
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

  countOpcode(op: number): void {
    this.opcodeCounts.set(op, (this.opcodeCounts.get(op) ?? 0) + 1);
  }

  commandDone(lu: LogicalUnit | undefined, opcode: number, status: number, dataInBytes: number, dataOutBytes: number, startedMs: number): void {
    this.commandObserver?.(lu, opcode, status, dataInBytes, dataOutBytes, startedMs);
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
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    await this.management?.stop().catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.connections].map((c) => c.drain())),
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

/**
 * The target's Prometheus exporter (`target --metrics HOST:PORT`, docs/metrics.md): GET /metrics
 * answers in the Prometheus text format (prom-client renders it), every other path 404.
 *
 * Values are read when scraped (prom-client `collect()`), from what the target counts anyway:
 * sessions and connections (TargetServer), the copy managers' counters (src/xcopy), the
 * snapshots' status (SnapshotManager). The one per-command hook is TargetServer.commandObserver,
 * called by the connection as a command ends: it adds to a few numbers of the logical unit's
 * entry (a Map lookup by object, one by opcode and status) and makes one histogram observation.
 */
import http from 'node:http';
import net from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ArgumentError } from '../errors';
import { opcodeName, scsiStatusName } from '../scsi/constants';
import type { Logger } from '../util/log';
import { copyManagerOf, type CopyManager } from '../xcopy';
import type { LogicalUnit } from './scsi/logical-unit';
import type { TargetServer } from './server';
import type { TargetPortalGroup } from './target';

const GOOD = 0x00;

/** The labels naming a logical unit: its target, target portal group and LUN in that TPG. */
type LuLabels = { target: string; tpg: string; lun: string };

/** What the hook counts for one logical unit. */
interface LuStats {
  labels: LuLabels;
  /** Commands by (opcode << 8) | status. */
  commands: Map<number, number>;
  readBytes: number;
  writtenBytes: number;
}

/** Upper bounds of the command latency buckets (seconds): 50 µs to 10 s. */
const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The states a snapshot may be in (docs/cow.md), each a series of the state gauge. */
const SNAPSHOT_STATES = ['ACTIVE', 'MARKED', 'SEALED', 'INVALID'];

export interface MetricsAddress {
  host: string;
  port: number;
}

const loopback = new net.BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/**
 * `HOST:PORT` or `[IPv6]:PORT` (port 0: any free port; `localhost` is 127.0.0.1). A
 * non-loopback host only with `anyAddress`: the metrics name targets, initiators' LUNs and
 * snapshots, and the endpoint has no authentication.
 */
export function parseMetricsAddress(spec: string, anyAddress: boolean): MetricsAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(spec);
  if (!m || Number(m[3]) > 65535) throw new ArgumentError(`--metrics ${JSON.stringify(spec)}: must be HOST:PORT or [IPv6]:PORT with a port 0..65535, e.g. 127.0.0.1:9470`);
  let host = m[1] ?? m[2];
  if (host.toLowerCase() === 'localhost') host = '127.0.0.1';
  const family = net.isIP(host);
  if (family === 0 || (m[1] !== undefined && family !== 6)) throw new ArgumentError(`--metrics ${JSON.stringify(spec)}: ${host} is not an IP address (or localhost)`);
  if (!anyAddress && !loopback.check(host, family === 4 ? 'ipv4' : 'ipv6')) {
    throw new ArgumentError(`--metrics ${host} is not a loopback address: the metrics endpoint has no authentication; add --metrics-any-address to serve it there anyway`);
  }
  return { host, port: Number(m[3]) };
}

function statusLabel(status: number): string {
  return scsiStatusName(status).replace(/[ -]/g, '_');
}

/** Every LUN of the target (configured ones and snapshot views) with its labels. */
function lunsOf(server: TargetServer): Array<{ tpg: TargetPortalGroup; lu: LogicalUnit; labels: LuLabels }> {
  return server.model.allTpgs().flatMap((tpg) => [...tpg.luns].map(([n, lu]) => ({ tpg, lu, labels: { target: tpg.node.name, tpg: String(tpg.tag), lun: String(n) } })));
}

/** The copy managers, each with the first TPG it serves. */
function copyManagersOf(server: TargetServer): Map<CopyManager, TargetPortalGroup> {
  const out = new Map<CopyManager, TargetPortalGroup>();
  for (const { tpg, lu } of lunsOf(server)) {
    const cm = copyManagerOf(lu);
    if (cm && !out.has(cm)) out.set(cm, tpg);
  }
  return out;
}

export class TargetMetrics {
  readonly registry = new Registry();
  readonly url: string;
  private readonly stats = new Map<LogicalUnit, LuStats>();
  private readonly latency: Histogram<'target' | 'tpg' | 'lun'>;

  private constructor(
    private readonly server: TargetServer,
    private readonly http: http.Server,
    address: MetricsAddress,
  ) {
    this.url = `http://${net.isIPv6(address.host) ? `[${address.host}]` : address.host}:${address.port}/metrics`;
    this.latency = new Histogram({
      name: 'xcopy_agent_lun_command_duration_seconds',
      help: 'Time from a SCSI command PDU arriving to its status, Data-Out gathering included, per LUN',
      labelNames: ['target', 'tpg', 'lun'],
      buckets: LATENCY_BUCKETS,
      registers: [this.registry],
    });
    const lun: Array<'target' | 'tpg' | 'lun'> = ['target', 'tpg', 'lun'];
    this.scraped('counter', 'xcopy_agent_lun_commands_total', 'SCSI commands ended, by LUN, operation code and status', [...lun, 'opcode', 'command', 'status'], (inc) => {
      for (const s of this.stats.values()) {
        for (const [key, n] of s.commands) {
          const op = key >> 8;
          inc({ ...s.labels, opcode: `0x${op.toString(16).padStart(2, '0')}`, command: opcodeName(op), status: statusLabel(key & 0xff) }, n);
        }
      }
    });
    this.scraped('counter', 'xcopy_agent_lun_read_bytes_total', 'Data-In bytes sent for commands that ended GOOD, per LUN', lun, (inc) => {
      for (const s of this.stats.values()) inc(s.labels, s.readBytes);
    });
    this.scraped('counter', 'xcopy_agent_lun_written_bytes_total', 'Data-Out bytes received for commands that ended GOOD, per LUN', lun, (inc) => {
      for (const s of this.stats.values()) inc(s.labels, s.writtenBytes);
    });
    this.scraped('gauge', 'xcopy_agent_iscsi_sessions', 'iSCSI sessions open (normal and discovery)', [], (set) => set({}, server.sessionCount));
    this.scraped('gauge', 'xcopy_agent_iscsi_connections', 'TCP connections open to the portals (logged in or not)', [], (set) => set({}, server.connectionCount));
    this.copyManagerMetrics();
    this.snapshotMetrics();
  }

  /**
   * A gauge or a counter whose series `fill` gives at each scrape (the old ones dropped first),
   * from what the target counts anyway.
   */
  private scraped<L extends string>(type: 'gauge' | 'counter', name: string, help: string, labelNames: L[], fill: (put: (labels: Partial<Record<L, string>>, v: number) => void) => void): void {
    const config = { name, help, labelNames, registers: [this.registry] };
    if (type === 'gauge') {
      new Gauge<L>({
        ...config,
        collect() {
          this.reset();
          fill((labels, v) => this.set(labels, v));
        },
      });
    } else {
      new Counter<L>({
        ...config,
        collect() {
          this.reset();
          fill((labels, v) => this.inc(labels, v));
        },
      });
    }
  }

  private copyManagerMetrics(): void {
    const each = (f: (labels: { target: string; tpg: string }, c: CopyManager['counters']) => void) => {
      for (const [cm, tpg] of copyManagersOf(this.server)) f({ target: tpg.node.name, tpg: String(tpg.tag) }, cm.counters);
    };
    const labels: Array<'target' | 'tpg'> = ['target', 'tpg'];
    this.scraped('counter', 'xcopy_agent_xcopy_copies_total', 'EXTENDED COPY commands by result: completed, failed (aborted included) or rejected before they started', [...labels, 'result'], (inc) =>
      each((l, c) => {
        inc({ ...l, result: 'completed' }, c.completed);
        inc({ ...l, result: 'failed' }, c.failed);
        inc({ ...l, result: 'rejected' }, c.rejected);
      }),
    );
    this.scraped('counter', 'xcopy_agent_xcopy_aborts_total', 'EXTENDED COPY commands stopped by COPY OPERATION ABORT, ABORT TASK, a reset or a lost nexus', labels, (inc) => each((l, c) => inc(l, c.aborted)));
    this.scraped('counter', 'xcopy_agent_xcopy_segments_total', 'EXTENDED COPY segments processed', labels, (inc) => each((l, c) => inc(l, c.segments)));
    this.scraped('counter', 'xcopy_agent_xcopy_bytes_total', 'Bytes copied by the copy manager', labels, (inc) => each((l, c) => inc(l, Number(c.bytes))));
    this.scraped('counter', 'xcopy_agent_xcopy_kernel_copied_bytes_total', 'Bytes of those copied by copy_file_range (file to file)', labels, (inc) => each((l, c) => inc(l, Number(c.kernelCopiedBytes))));
    this.scraped('counter', 'xcopy_agent_xcopy_zero_skipped_bytes_total', 'Bytes of those not written because they were zeros', labels, (inc) => each((l, c) => inc(l, Number(c.zeroSkippedBytes))));
    this.scraped('counter', 'xcopy_agent_xcopy_unreachable_total', 'EXTENDED COPY commands that named a LUN the initiator cannot reach', labels, (inc) => each((l, c) => inc(l, c.unreachable)));
  }

  private snapshotMetrics(): void {
    const snapshots = () => (this.server.snapshots ? this.server.snapshots.list() : []);
    const labels: Array<'snapshot' | 'source'> = ['snapshot', 'source'];
    this.scraped('gauge', 'xcopy_agent_snapshot_state', 'Snapshot state: 1 for the state it is in, 0 for the others (a snapshot still resuming after a restart is in none)', [...labels, 'state'], (set) => {
      for (const s of snapshots()) for (const st of SNAPSHOT_STATES) set({ snapshot: s.id, source: s.source, state: st }, 'resuming' in s || 'unresumable' in s ? 0 : Number(s.state === st));
    });
    this.scraped('gauge', 'xcopy_agent_snapshot_resuming', 'Journalled snapshots not in service yet after a restart: 1 resuming, 0 could not be resumed', labels, (set) => {
      for (const s of snapshots()) if ('resuming' in s || 'unresumable' in s) set({ snapshot: s.id, source: s.source }, Number('resuming' in s && s.resuming === true));
    });
    const inService = () => snapshots().flatMap((s) => ('fill' in s ? [s] : []));
    type Status = ReturnType<typeof inService>[number];
    const perSnapshot = (name: string, help: string, pick: (s: Status) => number) =>
      this.scraped('gauge', name, help, labels, (set) => {
        for (const s of inService()) set({ snapshot: s.id, source: s.source }, pick(s));
      });
    perSnapshot('xcopy_agent_snapshot_obf_fill_ratio', 'Part of the OBF used (0..1)', (s) => s.fill);
    perSnapshot('xcopy_agent_snapshot_obf_used_bytes', 'OBF bytes used (superblock, records, their data)', (s) => s.obf_used_blocks * s.obf_block_size);
    perSnapshot('xcopy_agent_snapshot_obf_capacity_bytes', 'OBF capacity', (s) => s.obf_capacity_blocks * s.obf_block_size);
    perSnapshot('xcopy_agent_snapshot_obf_records', 'Data records in the OBF (chunks captured)', (s) => s.records);
    perSnapshot('xcopy_agent_snapshot_captured_bytes', 'Bytes of original data captured into the OBF', (s) => s.bytes);
    perSnapshot('xcopy_agent_snapshot_capture_rate_bytes_per_second', 'Capture rate over the last 30 s', (s) => s.rate_bytes_per_s);
    perSnapshot('xcopy_agent_snapshot_institute_pause_seconds', "How long the snapshot's institute held hosts' writes", (s) => s.institute_pause_ms / 1000);
    perSnapshot('xcopy_agent_snapshot_instituted_timestamp_seconds', 'When the snapshot was instituted (T0), Unix time', (s) => Date.parse(s.instituted_at) / 1000);
    this.scraped('gauge', 'xcopy_agent_snapshot_last_institute_pause_seconds', "How long the most recent institute held hosts' writes", [], (set) => {
      const last = inService().reduce<Status | undefined>((a, s) => (a === undefined || s.instituted_at > a.instituted_at ? s : a), undefined);
      if (last) set({}, last.institute_pause_ms / 1000);
    });
    const captureTime = (s: Status) => this.server.snapshots!.get(s.id).captureTime;
    this.scraped('counter', 'xcopy_agent_snapshot_captures_total', 'Chunk captures (original read, OBF record committed) since the snapshot was instituted or resumed', labels, (inc) => {
      for (const s of inService()) inc({ snapshot: s.id, source: s.source }, captureTime(s).captures);
    });
    this.scraped('counter', 'xcopy_agent_snapshot_capture_seconds_total', 'Time those captures took, in all (the first write to a chunk waits for its capture)', labels, (inc) => {
      for (const s of inService()) inc({ snapshot: s.id, source: s.source }, captureTime(s).seconds);
    });
  }

  /** The per-command hook (TargetServer.commandObserver). */
  private commandDone(lu: LogicalUnit | undefined, opcode: number, status: number, dataIn: number, dataOut: number, startedMs: number): void {
    if (lu === undefined) return;
    let s = this.stats.get(lu);
    if (s === undefined) {
      const labels = lunsOf(this.server).find((x) => x.lu === lu)?.labels;
      if (labels === undefined) return; // removed meanwhile (a snapshot view)
      s = { labels, commands: new Map(), readBytes: 0, writtenBytes: 0 };
      this.stats.set(lu, s);
    }
    const key = (opcode << 8) | status;
    s.commands.set(key, (s.commands.get(key) ?? 0) + 1);
    if (status === GOOD) {
      s.readBytes += dataIn;
      s.writtenBytes += dataOut;
    }
    this.latency.observe(s.labels, (performance.now() - startedMs) / 1000);
  }

  /** Forgets the LUNs removed since the last scrape (snapshot views), their histograms too. */
  private prune(): void {
    const live = new Set(lunsOf(this.server).map((x) => x.lu));
    for (const [lu, s] of this.stats) {
      if (live.has(lu)) continue;
      this.stats.delete(lu);
      this.latency.remove(s.labels);
    }
  }

  private async answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('use GET\n');
      return;
    }
    this.prune();
    const body = await this.registry.metrics();
    res.writeHead(200, { 'content-type': this.registry.contentType }).end(req.method === 'HEAD' ? undefined : body);
  }

  /** Listens on `address` and starts counting the server's commands. */
  static async start(server: TargetServer, address: MetricsAddress, log: Logger): Promise<TargetMetrics> {
    const srv = http.createServer();
    await new Promise<void>((resolve, reject) => {
      srv.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new ArgumentError(
            err.code === 'EADDRINUSE' ? `--metrics ${address.host}:${address.port} is already in use: choose another port` : `cannot listen on --metrics ${address.host}:${address.port}: ${err.message}`,
          ),
        ),
      );
      srv.listen(address.port, address.host, () => resolve());
    });
    const bound = srv.address() as net.AddressInfo;
    const m = new TargetMetrics(server, srv, { host: bound.address, port: bound.port });
    srv.on('request', (req, res) => {
      m.answer(req, res).catch((err: unknown) => {
        log.error({ err: (err as Error).stack }, 'metrics scrape failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('metrics could not be collected (see the target log)\n');
      });
    });
    server.commandObserver = (lu, op, st, din, dout, t0) => m.commandDone(lu, op, st, din, dout, t0);
    log.info({ url: m.url }, 'metrics listening');
    return m;
  }

  async stop(): Promise<void> {
    this.server.commandObserver = undefined;
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }
}

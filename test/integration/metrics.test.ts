/**
 * Metrics (docs/metrics.md): `target --metrics` run as a process, a known workload through the
 * project's initiator (a snapshot instituted over the management API, then N writes of K blocks
 * to LUN 0, each into a chunk of its own), /metrics scraped with an HTTP GET and its text parsed
 * here (a parser of the exposition format independent of prom-client): the write count, the
 * bytes written, the captures and the snapshot's state gauge are checked exactly. `metrics
 * --textfile` is checked line by line against a catalog with two copies.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SqliteCatalog } from '../../src/catalog';
import { IscsiSession } from '../../src/initiator/session';
import { ManagementClient } from '../../src/mgmt';
import { freePort } from '../../src/peers/tgt';
import { removeDir, tempDir } from '../helpers/tmp';

const BIN = path.resolve(__dirname, '../../bin/xcopy-agent');
const IQN = 'iqn.2026-12.io.xcopy-agent.test:metrics';
const N = 5; // writes
const K = 8; // blocks per write, one chunk (chunk_bytes 4096)
const BS = 512;

const run = (args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(BIN, args, { timeout: 30_000 }, (e, stdout, stderr) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr })),
  );

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (version 0.0.4): `name{l="v",...} value` lines. */
function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The one sample of `name` whose labels include `labels` (fails on none or several). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length !== 1) throw new Error(`${hits.length} samples of ${name} ${JSON.stringify(labels)}`);
  return hits[0].value;
}

async function scrape(url: string): Promise<{ status: number; type: string | null; samples: Sample[] }> {
  const res = await fetch(url);
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type'), samples: res.status === 200 ? parseExposition(text) : [] };
}

describe('target --metrics', () => {
  let dir: string;
  let child: ChildProcess;
  let metricsUrl: string;
  let mgmt: ManagementClient;
  let portal: number;

  beforeAll(async () => {
    dir = tempDir('metrics');
    portal = await freePort();
    const mgmtPort = await freePort();
    const metricsPort = await freePort();
    const state = path.join(dir, 'state');
    child = spawn(
      process.execPath,
      [BIN, 'target', '--json', '--portal', `127.0.0.1:${portal}`, '--iqn', IQN, '--lun', `file:${dir}/src.img:8M`, '--lun', `file:${dir}/obf.img:4M`,
        '--state-dir', state, '--mgmt', `127.0.0.1:${mgmtPort}`, '--metrics', `127.0.0.1:${metricsPort}`],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XCOPY_AGENT_LOG_LEVEL: 'warn' } },
    );
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const record = await new Promise<{ url: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the target did not start within 20 s: ${err}`)), 20_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.includes('"event":"metrics"'));
        if (line) {
          clearTimeout(timer);
          resolve(JSON.parse(line) as { url: string });
        }
      });
      child.once('exit', (code) => reject(new Error(`the target exited (${code}): ${err}`)));
    });
    metricsUrl = record.url;
    mgmt = new ManagementClient({ url: `http://127.0.0.1:${mgmtPort}`, token: fs.readFileSync(path.join(state, 'mgmt.token'), 'utf8').trim() });
  }, 30_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    removeDir(dir);
  });

  test('is served on the loopback port given, and only at /metrics', async () => {
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const ok = await scrape(metricsUrl);
    expect(ok.status).toBe(200);
    expect(ok.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect((await fetch(metricsUrl.replace(/\/metrics$/, '/'))).status).toBe(404);
    expect((await fetch(metricsUrl.replace(/\/metrics$/, '/metricsx'))).status).toBe(404);
    expect((await fetch(metricsUrl, { method: 'POST' })).status).toBe(405);
  });

  test('counts a known workload: writes, bytes, sessions, captures and the snapshot state', async () => {
    const st = await mgmt.call<{ id: string }>('snapshot_institute', { source: `${IQN}/0`, obf: `${IQN}/1`, chunk_bytes: K * BS });
    const s = await IscsiSession.connect(`iscsi://127.0.0.1:${portal}/${IQN}/0`);
    let during;
    try {
      // Each write fills one chunk of its own: N captures, N records.
      for (let i = 0; i < N; i++) await s.write16(BigInt(i * 2 * K), Buffer.alloc(K * BS, i + 1));
      during = await scrape(metricsUrl);
    } finally {
      await s.close();
    }
    const lun0 = { target: IQN, tpg: '1', lun: '0' };
    const m = during.samples;
    expect(value(m, 'xcopy_agent_lun_commands_total', { ...lun0, opcode: '0x8a', status: 'GOOD' })).toBe(N);
    expect(m.filter((x) => x.name === 'xcopy_agent_lun_commands_total' && x.labels.opcode === '0x8a' && x.labels.status !== 'GOOD')).toEqual([]);
    expect(value(m, 'xcopy_agent_lun_written_bytes_total', lun0)).toBe(N * K * BS);
    // The latency histogram saw every command that reached LUN 0, writes included.
    const commands = m.filter((x) => x.name === 'xcopy_agent_lun_commands_total' && x.labels.lun === '0').reduce((a, x) => a + x.value, 0);
    expect(value(m, 'xcopy_agent_lun_command_duration_seconds_count', lun0)).toBe(commands);
    expect(value(m, 'xcopy_agent_lun_command_duration_seconds_bucket', { ...lun0, le: '+Inf' })).toBe(commands);
    expect(value(m, 'xcopy_agent_iscsi_sessions')).toBe(1);
    expect(value(m, 'xcopy_agent_iscsi_connections')).toBe(1);
    const status = await mgmt.call<{ source: string; institute_pause_ms: number; fill: number }>('snapshot_status', { id: st.id });
    const snap = { snapshot: st.id, source: status.source };
    expect(value(m, 'xcopy_agent_snapshot_state', { snapshot: st.id, state: 'ACTIVE' })).toBe(1);
    expect(value(m, 'xcopy_agent_snapshot_state', { snapshot: st.id, state: 'SEALED' })).toBe(0);
    expect(value(m, 'xcopy_agent_snapshot_obf_records', snap)).toBe(N);
    expect(value(m, 'xcopy_agent_snapshot_captured_bytes', snap)).toBe(N * K * BS);
    expect(value(m, 'xcopy_agent_snapshot_captures_total', snap)).toBe(N);
    expect(value(m, 'xcopy_agent_snapshot_capture_seconds_total', snap)).toBeGreaterThan(0);
    expect(value(m, 'xcopy_agent_snapshot_institute_pause_seconds', snap)).toBeCloseTo(status.institute_pause_ms / 1000, 6);
    expect(value(m, 'xcopy_agent_snapshot_last_institute_pause_seconds')).toBeCloseTo(status.institute_pause_ms / 1000, 6);
    expect(value(m, 'xcopy_agent_snapshot_obf_fill_ratio', snap)).toBe(status.fill);

    await mgmt.call('snapshot_terminate', { id: st.id });
    const after = (await scrape(metricsUrl)).samples;
    expect(value(after, 'xcopy_agent_snapshot_state', { snapshot: st.id, state: 'SEALED' })).toBe(1);
    expect(value(after, 'xcopy_agent_snapshot_state', { snapshot: st.id, state: 'ACTIVE' })).toBe(0);
    expect(value(after, 'xcopy_agent_iscsi_sessions')).toBe(0);
    // Counters stay what they were once the session is gone.
    expect(value(after, 'xcopy_agent_lun_written_bytes_total', lun0)).toBe(N * K * BS);
  });
});

test('target --metrics refuses a non-loopback address without --metrics-any-address, and starts nothing', async () => {
  const port = await freePort();
  const r = await run(['target', '--portal', `127.0.0.1:${port}`, '--iqn', IQN, '--lun', 'memory:1M', '--metrics', '192.0.2.1:9470']);
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr).toBe('xcopy-agent: --metrics 192.0.2.1 is not a loopback address: the metrics endpoint has no authentication; add --metrics-any-address to serve it there anyway\n');
});

describe('metrics --textfile', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('metrics-textfile');
  });
  afterAll(() => removeDir(dir));

  test("writes the last backup of each source, line by line as documented, atomically", async () => {
    const db = path.join(dir, 'catalog.db');
    const catalog = SqliteCatalog.open(db);
    try {
      const base = { sourceBlockSize: 512, mode: 'overwrite' as const };
      // naa.600a: an older failed copy, then a newer integrated and verified one.
      await catalog.recordCopy({ ...base, id: 'c0', createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:10:00.000Z', finishedAt: '2026-01-01T00:10:00.000Z', sourceUrl: 'iscsi://h/iqn.x:a/0', sourceDesignator: 'naa.600a', secondaryUrl: 'iscsi://h/iqn.x:b/0', state: 'failed', bytes: 8388608 });
      await catalog.recordCopy({ ...base, id: 'c1', label: 'nightly', createdAt: '2026-01-02T00:00:00.000Z', updatedAt: '2026-01-02T00:20:00.000Z', finishedAt: '2026-01-02T00:20:00.000Z', sourceUrl: 'iscsi://h/iqn.x:a/0', sourceDesignator: 'naa.600a', secondaryUrl: 'iscsi://h/iqn.x:b/0', state: 'integrated', bytes: 8388608, verification: 'ok', verifiedAt: '2026-01-02T01:00:00.000Z' });
      // A second source whose only copy failed and was never verified.
      await catalog.recordCopy({ ...base, id: 'c2', createdAt: '2026-01-03T00:00:00.000Z', updatedAt: '2026-01-03T00:05:00.000Z', finishedAt: '2026-01-03T00:05:00.000Z', sourceUrl: 'iscsi://h/iqn.x:a/1', secondaryUrl: 'iscsi://h/iqn.x:b/1', state: 'failed' });
    } finally {
      await catalog.close();
    }
    const textfile = path.join(dir, 'prom', 'xcopy_agent.prom');
    fs.mkdirSync(path.dirname(textfile));
    fs.writeFileSync(textfile, 'old\n');
    const r = await run(['metrics', '--catalog', db, '--textfile', textfile, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ type: 'summary', command: 'metrics', catalog: db, textfile, sources: 2 });
    expect(fs.readdirSync(path.dirname(textfile))).toEqual(['xcopy_agent.prom']); // no temporary file left
    const t = (iso: string) => Date.parse(iso) / 1000;
    const a = 'source="iscsi://h/iqn.x:a/1"';
    const b = 'source="naa.600a"';
    const states = (src: string, st: string) => ['copying', 'image-complete', 'log-appended', 'integrated', 'failed', 'replaced'].map((s) => `xcopy_agent_backup_last_state{${src},state="${s}"} ${s === st ? 1 : 0}`);
    const verif = (src: string, v: string) => ['ok', 'failed', 'none'].map((x) => `xcopy_agent_backup_last_verification{${src},result="${x}"} ${x === v ? 1 : 0}`);
    const lines = fs.readFileSync(textfile, 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(lines).toEqual([
      `xcopy_agent_backup_last_info{${a},copy_id="c2",source_url="iscsi://h/iqn.x:a/1",secondary="iscsi://h/iqn.x:b/1",mode="overwrite",label=""} 1`,
      `xcopy_agent_backup_last_info{${b},copy_id="c1",source_url="iscsi://h/iqn.x:a/0",secondary="iscsi://h/iqn.x:b/0",mode="overwrite",label="nightly"} 1`,
      ...states(a, 'failed'),
      ...states(b, 'integrated'),
      `xcopy_agent_backup_last_success{${a}} 0`,
      `xcopy_agent_backup_last_success{${b}} 1`,
      `xcopy_agent_backup_last_start_timestamp_seconds{${a}} ${t('2026-01-03T00:00:00.000Z')}`,
      `xcopy_agent_backup_last_start_timestamp_seconds{${b}} ${t('2026-01-02T00:00:00.000Z')}`,
      `xcopy_agent_backup_last_finish_timestamp_seconds{${a}} ${t('2026-01-03T00:05:00.000Z')}`,
      `xcopy_agent_backup_last_finish_timestamp_seconds{${b}} ${t('2026-01-02T00:20:00.000Z')}`,
      `xcopy_agent_backup_last_bytes{${b}} 8388608`,
      ...verif(a, 'none'),
      ...verif(b, 'ok'),
      `xcopy_agent_backup_last_verify_timestamp_seconds{${b}} ${t('2026-01-02T01:00:00.000Z')}`,
      `xcopy_agent_backup_last_success_timestamp_seconds{${b}} ${t('2026-01-02T00:20:00.000Z')}`,
    ]);
    // Every metric has its HELP and TYPE (gauge).
    const text = fs.readFileSync(textfile, 'utf8');
    for (const name of new Set(lines.map((l) => l.split('{')[0]))) expect(text).toContain(`# TYPE ${name} gauge\n`);
  });

  test('a catalog that does not exist: one line, exit 53, nothing written', async () => {
    const textfile = path.join(dir, 'none.prom');
    const r = await run(['metrics', '--catalog', path.join(dir, 'missing.db'), '--textfile', textfile]);
    expect(r.code).toBe(53);
    expect(r.stderr).toBe(`xcopy-agent: no catalog at ${path.join(dir, 'missing.db')} (a backup creates it; name another with --catalog)\n`);
    expect(fs.existsSync(textfile)).toBe(false);
    expect(fs.existsSync(path.join(dir, 'missing.db'))).toBe(false);
  });
});

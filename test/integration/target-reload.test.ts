/**
 * Configuration reload (docs/target.md "Reloading the configuration"): `target --config` run as
 * a process under a stand-in service manager (netcat on $NOTIFY_SOCKET), the config file
 * rewritten and SIGHUP sent (or the management API's `reload` called), libiscsi sessions (the
 * project's initiator, no automatic reconnect: a dropped connection fails the next command)
 * watching from three initiators:
 * - an initiator whose LUNs did not change keeps its connection and its I/O, which runs through
 *   the reload; what it wrote is checked against the backing file by SHA-256;
 * - one whose view changed gets REPORTED LUNS DATA HAS CHANGED (3Fh/0Eh), sees the added LUN in
 *   REPORT LUNS and LOGICAL UNIT NOT SUPPORTED on the removed one;
 * - a new ACL lets a new login in; a removed ACL ends its sessions and refuses new logins;
 * - a changed storage object is a new LU: POWER ON (29h/00h), then 3Fh/0Eh, then the new file's data;
 * - a bad file, or one that would take away a snapshot's source, is refused with the key path,
 *   logged, and the configuration in force stays.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { IscsiSession } from '../../src/initiator/session';
import { NO_RETRY } from '../../src/initiator/retry';
import { ManagementClient } from '../../src/mgmt';
import { freePort } from '../../src/peers/tgt';
import { encodeRead16Cdb } from '../../src/scsi/cdb';
import { ScsiStatus, SenseKey } from '../../src/scsi/constants';
import { removeDir, tempDir, waitUntil } from '../helpers/tmp';

const BIN = path.resolve(__dirname, '../../bin/xcopy-agent');
const IQN = 'iqn.2026-12.io.xcopy-agent.test:reload';
const I1 = 'iqn.2026-12.io.xcopy-agent.test:host1';
const I2 = 'iqn.2026-12.io.xcopy-agent.test:host2';
const I3 = 'iqn.2026-12.io.xcopy-agent.test:host3';
const MiB = 1024 * 1024;
const BS = 512;
const TUR = Buffer.alloc(6);

let dir: string;
let port: number;
let child: ChildProcess;
let mgmt: ManagementClient;
let records: Array<Record<string, unknown>> = [];
let stderr = '';
let notified = '';
let nc: ChildProcess;
const sessions: IscsiSession[] = [];
/** The sessions of I1, I2 and I3 (logged in by the first test, used by the later ones). */
let s1: IscsiSession;
let s2: IscsiSession;

const file = (name: string) => path.join(dir, name);
const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

interface Lun {
  index: number;
  so: string;
}
interface Acl {
  node: string;
  luns: number[];
}

/** A saveconfig.json: storage objects by name → file, one target with `luns` and `acls`. */
function writeConfig(o: { objects: Record<string, string>; luns: Lun[]; acls: Acl[] }): void {
  const doc = {
    storage_objects: Object.entries(o.objects).map(([name, dev]) => ({ name, plugin: 'fileio', dev: file(dev) })),
    targets: [
      {
        wwn: IQN,
        tpgs: [
          {
            tag: 1,
            portals: [{ ip_address: '127.0.0.1', port }],
            luns: o.luns.map((l) => ({ index: l.index, storage_object: `/backstores/fileio/${l.so}` })),
            node_acls: o.acls.map((a) => ({ node_wwn: a.node, mapped_luns: a.luns.map((n) => ({ index: n, tpg_lun: n })) })),
          },
        ],
      },
    ],
  };
  fs.writeFileSync(file('target.json'), JSON.stringify(doc, null, 2));
}

const V1 = { objects: { a: 'a.img', b: 'b.img' }, luns: [{ index: 0, so: 'a' }, { index: 1, so: 'b' }], acls: [{ node: I1, luns: [0, 1] }, { node: I2, luns: [0] }] };
/** The files the target has open (its /proc/PID/fd). */
function openFiles(): string[] {
  const fdDir = `/proc/${child.pid}/fd`;
  return fs.readdirSync(fdDir).flatMap((fd) => {
    try {
      return [fs.readlinkSync(path.join(fdDir, fd))];
    } catch {
      return [];
    }
  });
}

/** LUN 2 (c) added, LUN 1 (b) removed, I3 let in; I2's view unchanged. */
const V2 = { objects: { a: 'a.img', c: 'c.img' }, luns: [{ index: 0, so: 'a' }, { index: 2, so: 'c' }], acls: [{ node: I1, luns: [0, 2] }, { node: I2, luns: [0] }, { node: I3, luns: [0] }] };

/** The next reload outcome the target reports on stdout (after `from` records). */
async function outcome(from: number): Promise<Record<string, unknown>> {
  const find = () => records.slice(from).find((r) => r.event === 'reloaded' || r.event === 'reload-refused');
  await waitUntil(() => find() !== undefined, 20_000, 'the reload to end');
  return find()!;
}

/** SIGHUP with the config file as it is now; resolves with the outcome record. */
async function hangUp(): Promise<Record<string, unknown>> {
  const from = records.length;
  child.kill('SIGHUP');
  return outcome(from);
}

/**
 * A session of `initiatorName` to LUN 0, never reconnecting. Commands time out after 3 s: with
 * automatic reconnection off, libiscsi notices a connection the target closed only when a
 * command times out, so a command to an ended session fails by its timeout.
 */
async function login(initiatorName: string): Promise<IscsiSession> {
  const s = await IscsiSession.connect(`iscsi://127.0.0.1:${port}/${IQN}/0`, { initiatorName, autoReconnect: false, retry: NO_RETRY, connectTimeoutMs: 5000, commandTimeoutMs: 3000 });
  sessions.push(s);
  return s;
}

/** Sense key / ASC / ASCQ of a CHECK CONDITION, or 'GOOD'. */
async function tur(s: IscsiSession, lun?: number): Promise<string> {
  const r = await s.execute(TUR, { lun });
  if (r.status === ScsiStatus.GOOD) return 'GOOD';
  expect(r.status).toBe(ScsiStatus.CHECK_CONDITION);
  const k = r.sense!;
  return `${k.senseKey.toString(16)}/${k.asc.toString(16).padStart(2, '0')}h/${k.ascq.toString(16).padStart(2, '0')}h`;
}
/** READ(16) of the first `blocks` blocks of another LUN of the session. */
async function readLun(s: IscsiSession, lun: number, blocks: number): Promise<Buffer> {
  const r = await s.execute(encodeRead16Cdb({ lba: 0n, transferLength: blocks }), { lun, dataInLength: blocks * BS });
  expect(r.status).toBe(ScsiStatus.GOOD);
  return r.data!;
}
const UA_REPORTED_LUNS_CHANGED = `${SenseKey.UNIT_ATTENTION.toString(16)}/3fh/0eh`;
const UA_POWER_ON = `${SenseKey.UNIT_ATTENTION.toString(16)}/29h/00h`;
const LUN_NOT_SUPPORTED = `${SenseKey.ILLEGAL_REQUEST.toString(16)}/25h/00h`;

beforeAll(async () => {
  dir = tempDir('reload');
  for (const [name, fill] of [['a.img', 0xaa], ['b.img', 0xbb], ['c.img', 0xcc], ['d.img', 0xdd]] as const) fs.writeFileSync(file(name), Buffer.alloc(4 * MiB, fill));
  port = await freePort();
  writeConfig(V1);
  // The service manager's end of $NOTIFY_SOCKET (-d: stdin is not read).
  const socket = file('notify.sock');
  nc = spawn('nc', ['-dlkUu', socket], { stdio: ['ignore', 'pipe', 'ignore'] });
  nc.stdout!.on('data', (d: Buffer) => (notified += d.toString()));
  await waitUntil(() => fs.existsSync(socket), 5000, 'netcat to listen');
  const mgmtPort = await freePort();
  const state = file('state');
  child = spawn(process.execPath, [BIN, 'target', '--json', '--config', file('target.json'), '--state-dir', state, '--mgmt', `127.0.0.1:${mgmtPort}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NOTIFY_SOCKET: socket, XCOPY_AGENT_LOG_LEVEL: 'info' },
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  readline.createInterface({ input: child.stdout! }).on('line', (l) => records.push(JSON.parse(l) as Record<string, unknown>));
  await waitUntil(() => records.some((r) => r.event === 'management') || child.exitCode !== null, 20_000, 'the target to start');
  expect(child.exitCode).toBeNull();
  mgmt = new ManagementClient({ url: `http://127.0.0.1:${mgmtPort}`, token: fs.readFileSync(path.join(state, 'mgmt.token'), 'utf8').trim() });
  await waitUntil(() => notified.includes('READY=1'), 5000, 'READY=1');
}, 60_000);

afterAll(async () => {
  await Promise.all(sessions.map((s) => s.close().catch(() => undefined)));
  if (child && child.exitCode === null) {
    const closed = new Promise((r) => child.once('close', r));
    child.kill('SIGTERM');
    await closed;
  }
  nc?.kill();
  removeDir(dir);
});

test('SIGHUP: LUN 2 added, LUN 1 removed, I3 let in; I2 (view unchanged) keeps its connection and its I/O through the reload', async () => {
  s1 = await login(I1);
  s2 = await login(I2);
  expect(await s1.reportLuns()).toEqual([0, 1]);
  await expect(login(I3)).rejects.toThrow(/login|authori|not allowed|refused/i);

  // I2 writes and reads LUN 0 while the target reloads: 64 KiB pieces, each read back at once.
  const written = Buffer.alloc(4 * MiB);
  let stop = false;
  let pieces = 0;
  const io = (async () => {
    // Until the reload has ended, then 8 pieces more.
    for (let i = 0, after = 0; !stop || after++ < 8; i++) {
      const at = (i * 128) % (4 * MiB / BS);
      const data = crypto.randomBytes(64 * 1024);
      await s2.write16(BigInt(at), data);
      data.copy(written, at * BS);
      expect(sha256(await s2.read16(BigInt(at), 128))).toBe(sha256(data));
      pieces++;
    }
  })();
  await waitUntil(() => pieces >= 4, 10_000, 'I/O to run');
  writeConfig(V2);
  const r = await hangUp();
  stop = true;
  await io;

  expect(r).toMatchObject({
    event: 'reloaded',
    storage_objects: { added: ['/backstores/fileio/c'], changed: [], removed: ['/backstores/fileio/b'] },
    luns: { added: [{ target: IQN, tpg: 1, lun: 2 }], replaced: [], removed: [{ target: IQN, tpg: 1, lun: 1 }] },
    sessions: { unchanged: 1, remapped: 1, ended: 0 },
  });
  // I2: not a single unit attention, the same connection.
  expect(await tur(s2)).toBe('GOOD');
  await s2.synchronizeCache16();
  const lba0 = fs.readFileSync(file('a.img'));
  const touched = Math.min(pieces, 64) * 64 * 1024;
  expect(sha256(lba0.subarray(0, touched))).toBe(sha256(written.subarray(0, touched)));

  // I1: REPORTED LUNS DATA HAS CHANGED once, then LUN 2 is there and LUN 1 is not.
  expect(await tur(s1)).toBe(UA_REPORTED_LUNS_CHANGED);
  expect(await s1.reportLuns()).toEqual([0, 2]);
  expect(await tur(s1)).toBe('GOOD');
  expect(await tur(s1, 1)).toBe(LUN_NOT_SUPPORTED);
  // LUN 2 is c.img, new to this nexus (power on first).
  expect(await tur(s1, 2)).toBe(UA_POWER_ON);
  expect(await tur(s1, 2)).toBe('GOOD');
  expect(sha256(await readLun(s1, 2, 64))).toBe(sha256(fs.readFileSync(file('c.img')).subarray(0, 64 * BS)));
  // The ACL takes effect for new logins: I3 is let in now.
  const s3 = await login(I3);
  expect(await s3.reportLuns()).toEqual([0]);
  // b.img, no longer configured, is closed once the commands in flight at the reload ended.
  await waitUntil(() => !openFiles().includes(file('b.img')), 5000, 'b.img to be closed');
  expect(openFiles()).toContain(file('c.img'));
  // The service manager heard of it: RELOADING=1 (with the monotonic time), then READY=1.
  await waitUntil(() => /RELOADING=1\nMONOTONIC_USEC=\d+[\s\S]*READY=1[\s\S]*configuration reloaded/.test(notified), 5000, 'RELOADING=1 … READY=1');
}, 60_000);

/** I2's ACL removed; storage object c now on d.img (its LU replaced). */
const V3 = { objects: { a: 'a.img', c: 'd.img' }, luns: [{ index: 0, so: 'a' }, { index: 2, so: 'c' }], acls: [{ node: I1, luns: [0, 2] }, { node: I3, luns: [0] }] };

test('the management API reload: a removed ACL ends its sessions and refuses new logins; a changed storage object is a new LU', async () => {
  const sessionsBefore = ((await mgmt.call('counters')) as { sessions: number }).sessions;
  writeConfig(V3);
  const r = (await mgmt.call('reload')) as Record<string, unknown>;
  expect(r).toMatchObject({
    storage_objects: { added: [], changed: ['/backstores/fileio/c'], removed: [] },
    luns: { added: [], replaced: [{ target: IQN, tpg: 1, lun: 2 }], removed: [] },
    sessions: { unchanged: 1, remapped: 1, ended: 1 },
  });
  // I2: its session ended (the target closed it), and it may not log in again.
  await waitUntil(async () => ((await mgmt.call('counters')) as { sessions: number }).sessions === sessionsBefore - 1, 5000, "I2's session to end");
  await expect(s2.execute(TUR)).rejects.toThrow(/ERR_ISCSI|timed out|closed/);
  await expect(login(I2)).rejects.toThrow(/login|authori|not allowed|refused/i);
  // I1: LUN 2 is a new LU (power on, then the inventory change), reading d.img.
  expect(await tur(s1, 2)).toBe(UA_POWER_ON);
  expect(await tur(s1, 2)).toBe(UA_REPORTED_LUNS_CHANGED);
  expect(await tur(s1)).toBe(UA_REPORTED_LUNS_CHANGED);
  expect(await tur(s1)).toBe('GOOD');
  expect(sha256(await readLun(s1, 2, 64))).toBe(sha256(fs.readFileSync(file('d.img')).subarray(0, 64 * BS)));
}, 60_000);

test('a bad configuration is refused with its key path and logged; the configuration in force stays', async () => {
  const before = stderr.length;
  const broken = JSON.parse(fs.readFileSync(file('target.json'), 'utf8')) as { targets: Array<{ tpgs: Array<{ luns: unknown[] }> }>; storage_objects: unknown[] };
  broken.targets[0].tpgs[0].luns.push({ index: 5, storage_object: '/backstores/fileio/nope' });
  fs.writeFileSync(file('target.json'), JSON.stringify(broken));
  const r = await hangUp();
  expect(r.event).toBe('reload-refused');
  expect(r.message).toMatch(/^config targets\[0\]\.tpgs\[0\]\.luns\[2\]\.storage_object: \/backstores\/fileio\/nope is not among storage_objects/);
  await waitUntil(() => stderr.slice(before).includes('configuration reload refused'), 5000, 'the refusal in the log');
  expect(stderr.slice(before)).toContain('luns[2].storage_object');
  await waitUntil(() => notified.includes('STATUS=reload refused, the previous configuration stays: config targets[0].tpgs[0].luns[2].storage_object'), 5000, 'the refusal in STATUS=');

  // A storage object that cannot be opened: refused with its path, nothing half-done.
  writeConfig({ ...V3, objects: { ...V3.objects, e: 'missing.img' }, luns: [...V3.luns, { index: 3, so: 'e' }] });
  const r2 = await hangUp();
  expect(r2.message).toMatch(/^config storage_objects\[2\]: cannot open \/backstores\/fileio\/e: backing file .*missing\.img does not exist/);
  // Not JSON at all, through the management API: the same refusal, as a JSON-RPC error.
  fs.writeFileSync(file('target.json'), '{ "storage_objects": [');
  await expect(mgmt.call('reload')).rejects.toThrow(/is not valid JSON/);

  // The configuration in force is V3's: no unit attention, the same LUNs, the same data.
  expect(await tur(s1)).toBe('GOOD');
  expect(await s1.reportLuns()).toEqual([0, 2]);
  expect(sha256(await readLun(s1, 2, 64))).toBe(sha256(fs.readFileSync(file('d.img')).subarray(0, 64 * BS)));
  expect(openFiles()).not.toContain(file('missing.img'));
}, 60_000);

test('a reload that would remove or change a snapshot\'s source, or take its view\'s LUN, is refused until the snapshot has ended', async () => {
  writeConfig(V3);
  expect((await hangUp()).event).toBe('reloaded');
  const snap = (await mgmt.call('snapshot_institute', { source: `${IQN}/0`, obf: `file:${file('obf.img')}:4M` })) as { id: string };
  const view = (await mgmt.call('view_add', { id: snap.id })) as { lun: number };
  try {
    writeConfig({ objects: { c: 'd.img' }, luns: [{ index: 2, so: 'c' }], acls: [{ node: I1, luns: [2] }] });
    expect((await hangUp()).message).toBe(
      `config storage_objects: /backstores/fileio/a would be removed, but snapshot ${snap.id} (ACTIVE) captures it; keep it until the snapshot has ended`,
    );
    writeConfig({ ...V3, objects: { a: 'b.img', c: 'd.img' } });
    expect((await hangUp()).message).toMatch(/^config storage_objects\[0\]: \/backstores\/fileio\/a would be replaced \(its entry changed\), but snapshot .* captures it/);
    writeConfig({ ...V3, objects: { ...V3.objects, b: 'b.img' }, luns: [...V3.luns, { index: view.lun, so: 'b' }] });
    expect((await hangUp()).message).toMatch(new RegExp(`^config targets\\[0\\]\\.tpgs\\[0\\]\\.luns\\[2\\]\\.index: LUN ${view.lun} of .* is the view of snapshot ${snap.id}`));
    // The view stays mapped to I1, who maps the source, across a reload that keeps both.
    writeConfig(V3);
    expect((await hangUp()).event).toBe('reloaded');
    const luns = await s1.reportLuns();
    expect(luns).toContain(view.lun);
  } finally {
    await mgmt.call('snapshot_terminate', { id: snap.id });
  }
  // Ended: the source may go.
  writeConfig({ ...V3, objects: { c: 'd.img' }, luns: [{ index: 2, so: 'c' }], acls: [{ node: I1, luns: [2] }] });
  expect(await hangUp()).toMatchObject({ event: 'reloaded', storage_objects: { removed: ['/backstores/fileio/a'] } });
}, 60_000);

test('view_add and view_remove change the inventory of the sessions logged in already: 3Fh/0Eh, the view in REPORT LUNS, then gone', async () => {
  writeConfig(V3);
  expect((await hangUp()).event).toBe('reloaded');
  expect(await s1.reportLuns()).toEqual([0, 2]);
  // LUN 0 came back (the test before removed it): a new LU, whose power-on report is taken here.
  expect(await tur(s1)).toBe(UA_POWER_ON);
  expect(await tur(s1)).toBe('GOOD');
  const snap = (await mgmt.call('snapshot_institute', { source: `${IQN}/0`, obf: `file:${file('obf2.img')}:4M` })) as { id: string };
  try {
    const view = (await mgmt.call('view_add', { id: snap.id })) as { lun: number };
    expect(await tur(s1)).toBe(UA_REPORTED_LUNS_CHANGED);
    expect(await s1.reportLuns()).toEqual([0, 2, view.lun].sort((x, y) => x - y));
    // The view is new to this nexus (power on), read-only, and reads the image as of institution.
    expect(await tur(s1, view.lun)).toBe(UA_POWER_ON);
    expect(sha256(await readLun(s1, view.lun, 64))).toBe(sha256(fs.readFileSync(file('a.img')).subarray(0, 64 * BS)));
    await mgmt.call('view_remove', { id: snap.id, lun: view.lun });
    expect(await tur(s1)).toBe(UA_REPORTED_LUNS_CHANGED);
    expect(await s1.reportLuns()).toEqual([0, 2]);
    expect(await tur(s1, view.lun)).toBe(LUN_NOT_SUPPORTED);
  } finally {
    await mgmt.call('snapshot_terminate', { id: snap.id });
  }
}, 60_000);

test('SIGUSR1: the target logs one status line (and opens no inspector)', async () => {
  const before = stderr.length;
  child.kill('SIGUSR1');
  await waitUntil(() => stderr.slice(before).includes('"msg":"status"'), 5000, 'the status line');
  const line = stderr.slice(before).split('\n').find((l) => l.includes('"msg":"status"'))!;
  expect(JSON.parse(line)).toMatchObject({ targets: 1, sessions: expect.any(Number), portals: [`127.0.0.1:${port}`] });
  expect(stderr).not.toContain('Debugger listening');
});

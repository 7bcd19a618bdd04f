/**
 * A restart with a snapshot active: the target listens at once and resumes the session from its
 * OBF in the background. Until the session has resumed, its source refuses changes with NOT
 * READY, LOGICAL UNIT IS IN PROCESS OF BECOMING READY (04h/01h) — TEST UNIT READY says so, reads
 * are served, other LUNs take writes — its OBF LUN is read-only to hosts, and the management API
 * says the snapshot is resuming. Afterwards the source takes writes again, captured, and the image
 * (source + OBF records, rebuilt from the files) still equals the source's file as the target
 * copied it while writes were held. A session that cannot be resumed leaves its source NOT READY,
 * MANUAL INTERVENTION REQUIRED (04h/03h). Real target (in this process), real libiscsi initiator.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { decodeSuperblock } from '../../src/obf/format';
import { scanLog } from '../../src/obf/log';
import { DEFAULT_RETRY } from '../../src/initiator/retry';
import { IscsiSession } from '../../src/initiator/session';
import { ManagementClient } from '../../src/mgmt';
import { freePort } from '../../src/peers/tgt';
import { encodeUnmapCdb, encodeUnmapParameterList, encodeWriteSame16Cdb } from '../../src/scsi/provisioning';
import { quickConfig } from '../../src/target/config';
import { TargetServer } from '../../src/target/server';
import { onSnapshotHeld, onSnapshotResuming } from '../helpers/held';
import { removeDir, tempDir } from '../helpers/tmp';

/** The hosts here observe the NOT READY window itself: no waiting it out (the initiator's default). */
const OBSERVE = { retry: { ...DEFAULT_RETRY, becomingReadyMs: 0 } };
const IQN = 'iqn.2026-11.io.xcopy-agent.test:resume';
const MiB = 1024 * 1024;
const SIZE = 8 * MiB;
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

let dir: string;
let port: number;
const url = (lun: number) => `iscsi://127.0.0.1:${port}/${IQN}/${lun}`;
const TUR = Buffer.alloc(6);

/** What the latest start() runs while a snapshot's writes are held (default: the oracle copy). */
let heldWork: ((held: { snapshotId: string; path?: string }) => Promise<void>) | undefined;
let offHeld: (() => void) | undefined;
/** What the latest start() runs before each journalled snapshot resumes (the resuming event). */
let resumeWork: ((snapshotId: string) => Promise<void>) | undefined;
let offResuming: (() => void) | undefined;

beforeAll(async () => {
  dir = tempDir('cow-resume');
  fs.writeFileSync(path.join(dir, 'src.img'), crypto.randomBytes(SIZE));
  fs.mkdirSync(path.join(dir, 'oracle'));
  port = await freePort();
  offHeld = onSnapshotHeld((held) => heldWork?.({ snapshotId: held.snapshotId, path: held.source.backingFile?.()?.path }));
  offResuming = onSnapshotResuming((resuming) => resumeWork?.(resuming.snapshotId));
});
afterAll(() => {
  offHeld?.();
  offResuming?.();
  removeDir(dir);
});

function start(beforeResume?: (id: string) => Promise<void>, onHeld?: (id: string) => Promise<void>): Promise<TargetServer> {
  heldWork = onHeld ? (held) => onHeld(held.snapshotId) : async (held) => fs.promises.copyFile(held.path!, path.join(dir, 'oracle', `${held.snapshotId}.img`));
  resumeWork = beforeResume;
  return TargetServer.start(
    quickConfig({ portal: `127.0.0.1:${port}`, iqn: IQN, luns: [`file:${path.join(dir, 'src.img')}`, `file:${path.join(dir, 'obf.img')}:32M`, 'memory:1M'] }),
    {
      log: pino({ level: 'silent' }),
      stateDir: path.join(dir, 'state'),
      management: { listen: '127.0.0.1:0', tokenFile: path.join(dir, 'state', 'mgmt.token') },
    },
  );
}

function clientOf(server: TargetServer): ManagementClient {
  return new ManagementClient({ url: server.management!.url, token: fs.readFileSync(path.join(dir, 'state', 'mgmt.token'), 'utf8').trim() });
}

/** Source file now + every valid OBF record over it. */
async function rebuilt(): Promise<Buffer> {
  const image = fs.readFileSync(path.join(dir, 'src.img'));
  const obf = fs.readFileSync(path.join(dir, 'obf.img'));
  const read = async (lba: bigint, n: number) => obf.subarray(Number(lba) * 512, (Number(lba) + n) * 512);
  const scan = await scanLog(read, decodeSuperblock(obf.subarray(0, 512)));
  for (const r of scan.records) (await read(r.dataLba, r.dataBlocks)).copy(image, Number(r.sourceLba) * 512);
  return image;
}

test('after a restart the target serves at once; the source answers NOT READY 04h/01h to changes until its snapshot has resumed, then the image is still exact', async () => {
  let server = await start();
  let id: string;
  let records: number;
  {
    const client = clientOf(server);
    id = (await client.call<{ id: string }>('snapshot_institute', { source: `${IQN}/0`, obf: `${IQN}/1`, chunk_bytes: 16384 })).id;
    const h = await IscsiSession.connect(url(0), OBSERVE);
    for (let i = 0; i < 40; i++) await h.write16(BigInt(crypto.randomInt(SIZE / 512 - 8)), crypto.randomBytes(4096));
    await h.close();
    records = (await client.call<{ records: number }>('snapshot_status', { id })).records;
    expect(records).toBeGreaterThan(0);
    await server.stop(); // a clean stop: the session stays armed in the journal
  }
  const oracle = sha(fs.readFileSync(path.join(dir, 'oracle', `${id}.img`)));
  let go!: () => void;
  const gate = new Promise<void>((r) => (go = r));
  const resuming: string[] = [];
  server = await start(async (sid) => {
    resuming.push(sid);
    await gate;
  });
  try {
    const client = clientOf(server);
    const h = await IscsiSession.connect(url(0), OBSERVE);
    const other = await IscsiSession.connect(url(2), OBSERVE);
    try {
      expect(resuming).toEqual([id]);
      const tur = await h.execute(TUR);
      expect(tur.status).toBe(0x02);
      expect([tur.sense?.senseKey, tur.sense?.asc, tur.sense?.ascq]).toEqual([0x2, 0x04, 0x01]);
      const before = fs.readFileSync(path.join(dir, 'src.img'));
      await expect(h.write16(0n, crypto.randomBytes(512))).rejects.toMatchObject({ senseKey: 0x2, asc: 0x04, ascq: 0x01 });
      const list = encodeUnmapParameterList([{ lba: 64n, blocks: 64 }]);
      for (const [cdb, dataOut] of [
        [encodeUnmapCdb({ parameterListLength: list.length }), list],
        [encodeWriteSame16Cdb({ lba: 200n, blocks: 32 }), Buffer.alloc(512, 0x77)],
      ] as const) {
        const r = await h.execute(cdb, { dataOut });
        expect([r.status, r.sense?.senseKey, r.sense?.asc, r.sense?.ascq]).toEqual([0x02, 0x2, 0x04, 0x01]);
      }
      expect(sha(Buffer.from(await h.read16(0n, 16)))).toBe(sha(before.subarray(0, 16 * 512))); // reads are served
      expect(sha(fs.readFileSync(path.join(dir, 'src.img')))).toBe(sha(before)); // nothing reached the source
      await other.write16(0n, crypto.randomBytes(512)); // other LUNs serve as usual
      // the OBF LUN is read-only to hosts while its snapshot resumes
      const obfHost = await IscsiSession.connect(url(1), OBSERVE);
      await expect(obfHost.write16(100n, Buffer.alloc(512))).rejects.toMatchObject({ senseKey: 0x7, asc: 0x27 });
      await obfHost.close();
      await expect(client.call('snapshot_status', { id })).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_STATE', message: expect.stringMatching(/is resuming from its OBF after a restart; retry shortly/) });
      await expect(client.call('snapshot_institute', { source: `${IQN}/0`, obf: 'memory:8M' })).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_STATE', message: expect.stringMatching(/is not ready: .* is resuming snapshot/) });
      await expect(client.call('snapshot_institute', { source: `${IQN}/2`, obf: `${IQN}/1` })).rejects.toMatchObject({
        code: 'ERR_SNAPSHOT_STATE',
        message: `that OBF is snapshot ${id}'s, which is resuming after a restart; retry shortly`,
      });
      expect(await client.call('snapshot_list')).toEqual([expect.objectContaining({ id, state: 'ACTIVE', resuming: true })]);

      go();
      await server.snapshots!.resumed;
      expect((await h.execute(TUR)).status).toBe(0);
      const st = await client.call<{ state: string; records: number }>('snapshot_status', { id });
      expect(st).toMatchObject({ state: 'ACTIVE', records });
      for (let i = 0; i < 20; i++) await h.write16(BigInt(crypto.randomInt(SIZE / 512 - 8)), crypto.randomBytes(4096));
      const sealed = await client.call<{ state: string; records: number }>('snapshot_terminate', { id });
      expect(sealed.state).toBe('SEALED');
      expect(sealed.records).toBeGreaterThan(records);
      expect(sha(await rebuilt())).toBe(oracle);
    } finally {
      await h.close();
      await other.close();
    }
  } finally {
    go();
    await server.stop();
  }
});

test('restarts with an ended and an active snapshot of one source: the source stays NOT READY until the active one resumed; an unreadable ended one fences nothing and can be forgotten; an unreadable active one leaves NOT READY 04h/03h', async () => {
  // the journal holds the first test's SEALED snapshot of LUN 0; an ACTIVE one joins it
  let server = await start();
  const ended = (await clientOf(server).call<Array<{ id: string; state: string }>>('snapshot_list')).find((x) => x.state === 'SEALED')!.id;
  const id = (await clientOf(server).call<{ id: string }>('snapshot_institute', { source: `${IQN}/0`, obf: `${IQN}/1` })).id;
  await server.stop();
  const before = sha(fs.readFileSync(path.join(dir, 'src.img')));

  // 1. the ended one cannot be read back; the active one waits: LUN 0 stays NOT READY meanwhile
  let go!: () => void;
  const gate = new Promise<void>((r) => (go = r));
  const seen: string[] = [];
  server = await start(async (sid) => {
    seen.push(sid);
    if (sid === ended) throw new Error('OBF read failed: EIO');
    await gate;
  });
  try {
    const h = await IscsiSession.connect(url(0), OBSERVE);
    try {
      expect(seen).toEqual([id]); // capturing sessions resume first
      const tur = await h.execute(TUR);
      expect([tur.sense?.senseKey, tur.sense?.asc, tur.sense?.ascq]).toEqual([0x2, 0x04, 0x01]);
      go();
      await server.snapshots!.resumed;
      expect(seen).toEqual([id, ended]);
      expect((await h.execute(TUR)).status).toBe(0); // the ended one's failure fences nothing
      await h.write16(BigInt(SIZE / 512 - 1), crypto.randomBytes(512));
    } finally {
      await h.close();
    }
    const client = clientOf(server);
    await expect(client.call('snapshot_status', { id: ended })).rejects.toMatchObject({ message: expect.stringMatching(/\(SEALED\) could not be read back after the restart \(OBF read failed: EIO\); snapshot_forget removes it/) });
    expect(await client.call('snapshot_list')).toEqual(expect.arrayContaining([expect.objectContaining({ id: ended, unresumable: 'OBF read failed: EIO' })]));
    const bin = path.resolve(__dirname, '../../bin/xcopy-agent');
    const listed = await new Promise<string>((resolve, reject) =>
      execFile(bin, ['snapshot', 'list', '--mgmt', server.management!.url, '--token-file', path.join(dir, 'state', 'mgmt.token')], (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
    expect(listed).toContain(`snapshot ${ended} SEALED, could not be resumed after the restart: OBF read failed: EIO`);
    expect(await client.call('snapshot_forget', { id: ended })).toEqual({ forgotten: ended });
  } finally {
    go();
    await server.stop();
  }

  // 2. the active one cannot be read back: its source refuses changes, manual intervention
  const now = sha(fs.readFileSync(path.join(dir, 'src.img')));
  expect(now).not.toBe(before);
  server = await start(async () => {
    throw new Error('OBF read failed: EIO');
  });
  try {
    await server.snapshots!.resumed;
    const h = await IscsiSession.connect(url(0), OBSERVE);
    try {
      const tur = await h.execute(TUR);
      expect([tur.sense?.senseKey, tur.sense?.asc, tur.sense?.ascq]).toEqual([0x2, 0x04, 0x03]);
      await expect(h.write16(0n, crypto.randomBytes(512))).rejects.toMatchObject({ senseKey: 0x2, asc: 0x04, ascq: 0x03 });
    } finally {
      await h.close();
    }
    expect(sha(fs.readFileSync(path.join(dir, 'src.img')))).toBe(now);
    await expect(clientOf(server).call('snapshot_status', { id })).rejects.toMatchObject({
      code: 'ERR_SNAPSHOT_STATE',
      message: expect.stringMatching(/could not be resumed after the restart \(OBF read failed: EIO\); its source refuses writes: fix the OBF and restart the target/),
    });
    await expect(clientOf(server).call('snapshot_forget', { id })).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_STATE' });
  } finally {
    await server.stop();
  }
  // restarted with the OBF readable again, it resumes and can be ended
  server = await start();
  try {
    await server.snapshots!.resumed;
    expect((await clientOf(server).call<{ state: string }>('snapshot_terminate', { id })).state).toBe('SEALED');
    await clientOf(server).call('snapshot_forget', { id }); // its OBF is free for the next test
  } finally {
    await server.stop();
  }
});

test('a stop while a snapshot resumes ends the resume at its next OBF read and changes nothing: the next start resumes it', async () => {
  let server = await start();
  const id = (await clientOf(server).call<{ id: string }>('snapshot_institute', { source: `${IQN}/0`, obf: `${IQN}/1` })).id;
  await server.stop();
  const journal = fs.readFileSync(path.join(dir, 'state', 'snapshots.json'), 'utf8');
  let go!: () => void;
  const gate = new Promise<void>((r) => (go = r));
  let entered!: () => void;
  const inHook = new Promise<void>((r) => (entered = r));
  server = await start(async () => {
    entered();
    await gate;
  });
  await inHook;
  const stopping = server;
  const stopped = server.stop();
  go();
  await stopped;
  expect(stopping.snapshots!.list().map((x) => x.id)).not.toContain(id); // the resume did not run to its end
  expect(fs.readFileSync(path.join(dir, 'state', 'snapshots.json'), 'utf8')).toBe(journal);
  server = await start();
  try {
    await server.snapshots!.resumed;
    expect((await clientOf(server).call<{ state: string }>('snapshot_status', { id })).state).toBe('ACTIVE');
    expect((await clientOf(server).call<{ state: string }>('snapshot_terminate', { id })).state).toBe('SEALED');
    await clientOf(server).call('snapshot_forget', { id }); // its OBF is free for the next test
  } finally {
    await server.stop();
  }
});

test('an institute that fails after its session was journalled shows it INVALID ABANDONED at once (as after a restart), forgettable, its source and OBF free', async () => {
  const server = await start(undefined, async () => {
    throw new Error('the oracle copy failed');
  });
  let abandonedId = '';
  try {
    await server.snapshots!.resumed;
    const client = clientOf(server);
    await expect(client.call('snapshot_institute', { source: `${IQN}/0`, obf: `${IQN}/1` })).rejects.toMatchObject({
      code: 'ERR_SNAPSHOT_STATE',
      message: 'institute failed: while writes were held: the oracle copy failed',
    });
    const listed = await client.call<Array<{ id: string; state: string; reason?: string }>>('snapshot_list');
    const abandoned = listed.find((x) => x.reason === 'ABANDONED');
    expect(abandoned).toMatchObject({ state: 'INVALID' });
    abandonedId = abandoned!.id;
    expect(await client.call('snapshot_status', { id: abandoned!.id })).toMatchObject({ state: 'INVALID', reason: 'ABANDONED' });
    expect(decodeSuperblock(fs.readFileSync(path.join(dir, 'obf.img')).subarray(0, 512)).snapshotId).toBe(abandoned!.id);
    const h = await IscsiSession.connect(url(0), OBSERVE);
    await h.write16(0n, crypto.randomBytes(512)); // the source takes writes
    await h.close();
    expect(await client.call('snapshot_forget', { id: abandoned!.id })).toEqual({ forgotten: abandoned!.id });
  } finally {
    await server.stop();
  }
  // the next start finds nothing of it to resume, and the OBF is taken again
  const again = await start();
  try {
    await again.snapshots!.resumed;
    const client = clientOf(again);
    expect((await client.call<Array<{ id: string }>>('snapshot_list')).map((x) => x.id)).not.toContain(abandonedId);
    const id = (await client.call<{ id: string }>('snapshot_institute', { source: `${IQN}/0`, obf: `${IQN}/1` })).id;
    expect((await client.call<{ state: string }>('snapshot_terminate', { id })).state).toBe('SEALED');
  } finally {
    await again.stop();
  }
});

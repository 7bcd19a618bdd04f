/**
 * Snapshots through the project's target and its management API, with real initiators:
 * several hosts write the source (mixed sizes, WRITE SAME, UNMAP) while a snapshot is instituted,
 * viewed, copied outboard by EXTENDED COPY, terminated, and its OBF applied to the secondary by
 * EXTENDED COPY (one 02h segment per record). The oracle is the source's backing file copied by
 * the target while writes were held (independent of the COW code); the snapshot view and the
 * secondary must equal it byte for byte. Seeds are printed; COW_SEED=<n> replays a run.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import pino from 'pino';
import { applyObf, cscdOfLun } from '../../src/agent/apply-obf';
import { xcopyCopy } from '../../src/agent/xcopy-copy';
import { decodeSuperblock } from '../../src/obf/format';
import { scanLog } from '../../src/obf/log';
import { IscsiError } from '../../src/errors';
import { IscsiSession } from '../../src/initiator/session';
import { ManagementClient } from '../../src/mgmt';
import { Tgt, freePort } from '../../src/peers/tgt';
import { encodeUnmapCdb, encodeUnmapParameterList, encodeWriteSame16Cdb } from '../../src/scsi/provisioning';
import { encodeExtendedCopyLid1 } from '../../src/scsi/xcopy';
import { quickConfig } from '../../src/target/config';
import { TargetServer } from '../../src/target/server';
import { onSnapshotHeld } from '../helpers/held';
import { xorshift } from '../helpers/rng';
import { removeDir, tempDir } from '../helpers/tmp';

const IQN = 'iqn.2026-11.io.xcopy-agent.test:cow';
const MiB = 1024 * 1024;
const SIZE = 32 * MiB;
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const shaFile = (p: string) => sha(fs.readFileSync(p));

let dir: string;
/** Set when a failure is diagnosed: its files stay for inspection. */
let keepDir = false;
let server: TargetServer;
let client: ManagementClient;
let port: number;
let srcPath: string;
let secPath: string;
let token: string;
let offHeld: (() => void) | undefined;
const url = (lun: number) => `iscsi://127.0.0.1:${port}/${IQN}/${lun}`;

beforeAll(async () => {
  dir = tempDir('cow-target');
  srcPath = path.join(dir, 'src.img');
  secPath = path.join(dir, 'secondary.img');
  fs.writeFileSync(srcPath, crypto.randomBytes(SIZE));
  fs.mkdirSync(path.join(dir, 'oracle'));
  port = await freePort();
  server = await TargetServer.start(
    quickConfig({
      portal: `127.0.0.1:${port}`,
      iqn: IQN,
      luns: [`file:${srcPath}`, `file:${path.join(dir, 'obf.img')}:96M`, `file:${secPath}:32M`, 'memory:1M', `file:${path.join(dir, 'src2.img')}:8M`],
    }),
    {
      log: pino({ level: 'silent' }),
      stateDir: path.join(dir, 'state'),
      management: { listen: '127.0.0.1:0', tokenFile: path.join(dir, 'state', 'mgmt.token') },
    },
  );
  // The oracle: a file source's backing file, copied while the snapshot's writes are held.
  offHeld = onSnapshotHeld(async (held) => {
    const p = held.source.backingFile?.()?.path;
    if (p) await fs.promises.copyFile(p, path.join(dir, 'oracle', `${held.snapshotId}.img`));
  });
  token = fs.readFileSync(path.join(dir, 'state', 'mgmt.token'), 'utf8').trim();
  client = new ManagementClient({ url: server.management!.url, token });
});

afterAll(async () => {
  offHeld?.();
  await server?.stop();
  if (!keepDir) removeDir(dir);
});


/** One host's writes until stop(): WRITE(16) of mixed sizes, WRITE SAME(16), UNMAP. */
function writer(s: IscsiSession, seed: number, blocks: number) {
  const r = xorshift(seed).int;
  let stopped = false;
  let ops = 0;
  const done = (async () => {
    while (!stopped) {
      const n = [1, 8, 64, 256, 2048][r(5)];
      const lba = BigInt(r(blocks - n));
      const k = r(10);
      if (k === 0) {
        const list = encodeUnmapParameterList([{ lba, blocks: n }]);
        const res = await s.execute(encodeUnmapCdb({ parameterListLength: list.length }), { dataOut: list });
        expect(res.status).toBe(0);
      } else if (k === 1) {
        const res = await s.execute(encodeWriteSame16Cdb({ lba, blocks: n }), { dataOut: Buffer.alloc(512, r(256)) });
        expect(res.status).toBe(0);
      } else {
        await s.write16(lba, crypto.randomBytes(n * 512));
      }
      ops++;
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await done;
      return ops;
    },
  };
}

/** Lays every OBF record over the secondary (the agent's step 608); returns the records applied. */
async function applyObfAt(obfUrl: string, secondaryUrl: string): Promise<number> {
  const obf = await IscsiSession.connect(obfUrl);
  const sec = await IscsiSession.connect(secondaryUrl);
  try {
    return (await applyObf(obf, sec)).records;
  } finally {
    await obf.close();
    await sec.close();
  }
}

/**
 * When the secondary does not equal the held image, what each differing 64 KiB chunk says (one
 * CI failure in ~100 runs, not reproduced since): its log records, and whether their data is the
 * held image's, the secondary zeros (a hole punched by the copy), or the source as it is now.
 */
async function diagnoseSecondary(oraclePath: string): Promise<string> {
  const C = 65536;
  const [held, sec, src, obf] = [fs.readFileSync(oraclePath), fs.readFileSync(secPath), fs.readFileSync(srcPath), fs.readFileSync(path.join(dir, 'obf.img'))];
  const sb = decodeSuperblock(obf.subarray(0, 512));
  const scan = await scanLog(async (lba, n) => obf.subarray(Number(lba) * sb.blockSize, (Number(lba) + n) * sb.blockSize), sb);
  const lines: string[] = [];
  for (let c = 0; c < SIZE / C; c++) {
    const want = held.subarray(c * C, (c + 1) * C);
    const got = sec.subarray(c * C, (c + 1) * C);
    if (want.equals(got) || lines.length >= 20) continue;
    const records = scan.records.filter((r) => Number(r.sourceLba) * 512 >= c * C && Number(r.sourceLba) * 512 < (c + 1) * C);
    const data = records.map((r) => obf.subarray(Number(r.dataLba) * 512, Number(r.dataLba) * 512 + C));
    lines.push(
      JSON.stringify({
        chunk: c,
        records: records.map((r) => ({ seq: String(r.sequence), lba: String(r.sourceLba), blocks: r.sourceBlocks })),
        record_is_held: data.map((d) => d.equals(want)),
        secondary_zeros: got.every((x) => x === 0),
        secondary_is_source_now: got.equals(src.subarray(c * C, (c + 1) * C)),
      }),
    );
  }
  return `${lines.join('\n')}\n(${scan.records.length} records, log stop: ${scan.stop}; files kept in ${dir})`;
}

test('several hosts write while a snapshot is instituted, viewed, copied by XCOPY and applied: view and secondary equal the held image', async () => {
  const seed = Number(process.env.COW_SEED ?? crypto.randomInt(1, 2 ** 31));
  console.info(`cow-target seed ${seed} (replay with COW_SEED=${seed})`);
  const hosts = await Promise.all([1, 2, 3].map((i) => IscsiSession.connect(url(0), { initiatorName: `iqn.2026-11.io.xcopy-agent.test:host${i}` })));
  const writers = hosts.map((h, i) => writer(h, seed + i, SIZE / 512));
  try {
    await new Promise((r) => setTimeout(r, 100));
    const st = await client.call<{ id: string; state: string; institute_pause_ms: number }>('snapshot_institute', { source: `${IQN}/0`, obf: `${IQN}/1` });
    expect(st.state).toBe('ACTIVE');
    const oracle = path.join(dir, 'oracle', `${st.id}.img`);
    const oracleHash = shaFile(oracle);
    // the view, read while the hosts write
    const v = await client.call<{ lun: number }>('view_add', { id: st.id });
    const view = await IscsiSession.connect(url(v.lun));
    const parts: Buffer[] = [];
    for (let at = 0; at < SIZE / 512; at += 8192) parts.push(Buffer.from(await view.read16(BigInt(at), 8192)));
    expect(sha(Buffer.concat(parts))).toBe(oracleHash);
    // writes to the view are refused: DATA PROTECT, WRITE PROTECTED
    const refused = await view.write16(0n, Buffer.alloc(512)).catch((e: unknown) => e);
    expect(refused).toMatchObject({ senseKey: 0x7, asc: 0x27, ascq: 0x00 });
    await view.close();
    // the outboard copy, ignoring the writes going on
    const copied = await xcopyCopy({ from: url(0), to: url(2) });
    expect(copied.path).toBe('xcopy');
    const mid = await client.call<{ records: number; state: string }>('snapshot_status', { id: st.id });
    expect(mid.records).toBeGreaterThan(0);
    const ended = await client.call<{ state: string; views_removed: unknown[]; records: number }>('snapshot_terminate', { id: st.id });
    expect(ended.state).toBe('SEALED');
    expect(ended.views_removed).toHaveLength(1);
    const ops = await Promise.all(writers.map((w) => w.stop()));
    expect(ops.reduce((a, b) => a + b, 0)).toBeGreaterThan(50);
    const applied = await applyObfAt(url(1), url(2));
    expect(applied).toBe(ended.records);
    if (shaFile(secPath) !== oracleHash) {
      keepDir = true;
      console.error(`the secondary differs from the held image:\n${await diagnoseSecondary(oracle)}`);
    }
    expect(shaFile(secPath)).toBe(oracleHash);
    expect(shaFile(srcPath)).not.toBe(oracleHash);
    await client.call('snapshot_forget', { id: st.id }); // its log is applied: the OBF is free
  } finally {
    await Promise.all(writers.map((w) => w.stop().catch(() => 0)));
    await Promise.all(hosts.map((h) => h.close()));
  }
});

test('OBF full over the wire: protect-snapshot refuses the write with DATA PROTECT 27h/07h; protect-application lets it through and marks INVALID OBF_FULL', async () => {
  const h = await IscsiSession.connect(url(4));
  try {
    // LUN 3 is a 1 MiB memory OBF: room for 15 chunks of 64 KiB
    const a = await client.call<{ id: string }>('snapshot_institute', { source: `${IQN}/4`, obf: `${IQN}/3`, policy: 'protect-snapshot', chunk_bytes: 64 * 1024 });
    // the OBF of an active snapshot cannot become a source (its snapshot writes it below the filter)
    await expect(client.call('snapshot_institute', { source: `${IQN}/3`, obf: 'memory:1M' })).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_STATE', message: expect.stringMatching(/is the OBF of/) });
    let refused: unknown;
    for (let c = 0; c < 32 && refused === undefined; c++) {
      refused = await h.write16(BigInt(c * 128), Buffer.alloc(512, 1)).then(() => undefined, (e: unknown) => e);
    }
    expect(refused).toBeInstanceOf(IscsiError);
    expect(refused).toMatchObject({ senseKey: 0x7, asc: 0x27, ascq: 0x07 });
    expect(await client.call('snapshot_status', { id: a.id })).toMatchObject({ state: 'ACTIVE' });
    await client.call('snapshot_terminate', { id: a.id });
    // a sealed snapshot retains its OBF (its log is for 608) until it is forgotten
    const retained = await client.call('snapshot_institute', { source: `${IQN}/4`, obf: `${IQN}/3` }).catch((e: unknown) => e);
    expect(retained).toMatchObject({ code: 'ERR_SNAPSHOT_STATE' });
    expect((retained as Error).message).toBe(
      `that OBF holds the log of snapshot ${a.id} (SEALED), retained until the snapshot is forgotten: snapshot_forget ${a.id} once its log is applied, or overwrite_obf to take it anyway`,
    );
    await client.call('snapshot_forget', { id: a.id });
    const b = await client.call<{ id: string }>('snapshot_institute', { source: `${IQN}/4`, obf: `${IQN}/3`, chunk_bytes: 64 * 1024 });
    for (let c = 0; c < 32; c++) await h.write16(BigInt(c * 128), Buffer.alloc(512, 2));
    expect(await client.call('snapshot_status', { id: b.id })).toMatchObject({ state: 'INVALID', reason: 'OBF_FULL' });
    // an INVALID snapshot cannot be viewed or marked
    await expect(client.call('view_add', { id: b.id })).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_STATE' });
    await expect(client.call('snapshot_mark', { id: b.id })).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_STATE' });
  } finally {
    await h.close();
  }
});

test('management API: no token or a wrong token is refused (401); bad params and unknown snapshots get registry codes; counters and lun_list answer', async () => {
  const raw = (headers: Record<string, string>) =>
    new Promise<number>((resolve, reject) => {
      const u = new URL(server.management!.url);
      const req = http.request({ host: u.hostname, port: u.port, path: '/rpc', method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'lun_list' }));
    });
  expect(await raw({})).toBe(401);
  expect(await raw({ authorization: 'Bearer not-the-token-at-all' })).toBe(401);
  await expect(new ManagementClient({ url: server.management!.url, token: 'x'.repeat(43) }).call('lun_list')).rejects.toMatchObject({ code: 'ERR_MGMT_UNAUTHORIZED' });
  expect(fs.statSync(path.join(dir, 'state', 'mgmt.token')).mode & 0o777).toBe(0o600);
  await expect(client.call('snapshot_status', { id: 'nope' })).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_NOT_FOUND' });
  await expect(client.call('snapshot_institute', { source: `${IQN}/9`, obf: 'memory:1M' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
  await expect(client.call('snapshot_institute', { source: `${IQN}/0`, obf: 'memory:1M', chunk_bytes: 1000 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
  await expect(client.call('snapshot_institute', { source: `${IQN}/0`, obf: 'memory:1M', colour: 'blue' })).rejects.toThrow(/unknown param "colour"/);
  await expect(client.call('snapshot_institute', { source: `${IQN}/0`, obf: 'memory:1M', overwrite_obf: 'yes' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: 'overwrite_obf must be true or false' });
  // a file: OBF naming a file that holds something else is refused, the file left as it was
  const precious = path.join(dir, 'precious.db');
  fs.writeFileSync(precious, crypto.randomBytes(2 * 1024 * 1024));
  const preciousHash = shaFile(precious);
  await expect(client.call('snapshot_institute', { source: `${IQN}/0`, obf: `file:${precious}` })).rejects.toMatchObject({
    code: 'ERR_INVALID_ARG',
    message: expect.stringMatching(/holds data that is not an OBF .* give a blank LUN or a new file, or institute with overwrite_obf/),
  });
  expect(shaFile(precious)).toBe(preciousHash);
  const again = await client.call<{ id: string }>('snapshot_institute', { source: `${IQN}/0`, obf: 'memory:1M' }); // the source is free again
  expect((await client.call<{ state: string }>('snapshot_terminate', { id: again.id })).state).toBe('SEALED');
  const luns = await client.call<Array<{ lun: number; kind: string }>>('lun_list');
  expect(luns.map((l) => l.lun)).toEqual(expect.arrayContaining([0, 1, 2, 3, 4]));
  expect(luns.find((l) => l.lun === 0)?.kind).toBe('file');
  const counters = await client.call<{ opcodes: Array<{ opcode: string; count: number }> }>('counters');
  expect(counters.opcodes.find((o) => o.opcode === '0x8a')?.count).toBeGreaterThan(0);
});

test('every data-changing command is captured: WRITE(6/10/12/16), WRITE SAME(10) with UNMAP, UNMAP, COMPARE AND WRITE, WRITE AND VERIFY, ORWRITE, EXTENDED COPY into the source', async () => {
  const h = await IscsiSession.connect(url(4));
  try {
    await h.write16(0n, crypto.randomBytes(8 * MiB)); // give the source content
    const st = await client.call<{ id: string }>('snapshot_institute', { source: `${IQN}/4`, obf: `${IQN}/1`, chunk_bytes: 64 * 1024 });
    const oracle = fs.readFileSync(path.join(dir, 'oracle', `${st.id}.img`));
    const chunk = (n: number) => n * 128; // 64 KiB chunks of 512-byte blocks
    const cdb = (bytes: number[]) => Buffer.from(bytes);
    const good = async (c: Buffer, dataOut?: Buffer) => expect((await h.execute(c, { dataOut })).status).toBe(0);
    const b = (n: number) => crypto.randomBytes(n * 512);
    await good(cdb([0x0a, 0, (chunk(1) >> 8) & 0xff, chunk(1) & 0xff, 1, 0]), b(1)); // WRITE(6)
    await good(cdb([0x2a, 0, 0, 0, (chunk(2) >> 8) & 0xff, chunk(2) & 0xff, 0, 0, 2, 0]), b(2)); // WRITE(10)
    await good(cdb([0xaa, 0, 0, 0, (chunk(3) >> 8) & 0xff, chunk(3) & 0xff, 0, 0, 0, 1, 0, 0]), b(1)); // WRITE(12)
    await good(cdb([0x41, 0x08, 0, 0, (chunk(4) >> 8) & 0xff, chunk(4) & 0xff, 0, 0, 16, 0]), Buffer.alloc(512)); // WRITE SAME(10) UNMAP
    const list = encodeUnmapParameterList([{ lba: BigInt(chunk(5)), blocks: 300 }]); // UNMAP across chunks 5–7
    await good(encodeUnmapCdb({ parameterListLength: list.length }), list);
    const cur = await h.read16(BigInt(chunk(8)), 1); // COMPARE AND WRITE: compare with what is there
    const caw = Buffer.alloc(16);
    caw[0] = 0x89;
    caw.writeBigUInt64BE(BigInt(chunk(8)), 2);
    caw[13] = 1;
    await good(caw, Buffer.concat([cur, b(1)]));
    const w16 = (op: number, lba: number, n: number) => {
      const c = Buffer.alloc(16);
      c[0] = op;
      c.writeBigUInt64BE(BigInt(lba), 2);
      c.writeUInt32BE(n, 10);
      return c;
    };
    await good(w16(0x8e, chunk(9) + 5, 4), b(4)); // WRITE AND VERIFY(16), BYTCHK 0
    await good(w16(0x8b, chunk(10) + 7, 2), b(2)); // ORWRITE(16)
    await h.write16(BigInt(chunk(13) + 100), b(64)); // WRITE(16) across chunks 13–14
    // EXTENDED COPY from the secondary (LUN 2) into the source, chunks 11–12
    const sec = await IscsiSession.connect(url(2));
    const cscds = [(await cscdOfLun(sec, 512))!, (await cscdOfLun(h, 512))!];
    await h.extendedCopy(
      encodeExtendedCopyLid1({
        listIdentifier: 7,
        listIdUsage: 2,
        cscdDescriptors: cscds,
        segmentDescriptors: [{ kind: 'blockToBlock', dc: false, cat: false, sourceCscdDescriptorId: 0, destinationCscdDescriptorId: 1, blockDeviceNumberOfBlocks: 200, sourceBlockDeviceLba: 0n, destinationBlockDeviceLba: BigInt(chunk(11)) }],
      }),
    );
    await sec.close();
    const ended = await client.call<{ state: string; records: number; captured_chunks: number }>('snapshot_terminate', { id: st.id });
    expect(ended.state).toBe('SEALED');
    // chunks 1–14: each captured once; 5–7 (the UNMAP), 11–12 (the copy) and 13–14 (the WRITE
    // across them) each in one record
    expect(ended).toMatchObject({ captured_chunks: 14, records: 10 });
    await h.synchronizeCache16();
    // rebuild from the files: source + every record of the OBF
    const image = fs.readFileSync(path.join(dir, 'src2.img'));
    expect(sha(image)).not.toBe(sha(oracle));
    const fd = fs.openSync(path.join(dir, 'obf.img'), 'r');
    const read = async (lba: bigint, n: number) => {
      const buf = Buffer.alloc(n * 512);
      fs.readSync(fd, buf, 0, buf.length, Number(lba) * 512);
      return buf;
    };
    const scan = await scanLog(read, decodeSuperblock(await read(0n, 1)));
    for (const r of scan.records) (await read(r.dataLba, r.dataBlocks)).copy(image, Number(r.sourceLba) * 512);
    fs.closeSync(fd);
    expect(sha(image)).toBe(sha(oracle));
    await client.call('snapshot_forget', { id: st.id });
  } finally {
    await h.close();
  }
});

test('the OBF may be a LUN of another target (tgt, through a remote store): captures land there and rebuild the held image', async () => {
  const tgt = await Tgt.start({ dir, luns: [{ size: 16 * MiB }] });
  const h = await IscsiSession.connect(url(4));
  try {
    const st = await client.call<{ id: string; obf: string }>('snapshot_institute', { source: `${IQN}/4`, obf: tgt.url(1), chunk_bytes: 16384 });
    const oracle = fs.readFileSync(path.join(dir, 'oracle', `${st.id}.img`));
    for (let i = 0; i < 40; i++) await h.write16(BigInt(crypto.randomInt(0, 8 * 2048 - 64)), crypto.randomBytes(64 * 512));
    const ended = await client.call<{ state: string; records: number }>('snapshot_terminate', { id: st.id });
    expect(ended.state).toBe('SEALED');
    expect(ended.records).toBeGreaterThan(0);
    await h.synchronizeCache16();
    const image = fs.readFileSync(path.join(dir, 'src2.img'));
    const obfFile = fs.readFileSync(tgt.lunPaths[0]);
    const read = async (lba: bigint, n: number) => obfFile.subarray(Number(lba) * 512, (Number(lba) + n) * 512);
    const scan = await scanLog(read, decodeSuperblock(await read(0n, 1)));
    expect(scan.records).toHaveLength(ended.records);
    for (const r of scan.records) (await read(r.dataLba, r.dataBlocks)).copy(image, Number(r.sourceLba) * 512);
    expect(sha(image)).toBe(sha(oracle));
  } finally {
    await h.close();
    await tgt.stop();
  }
});

test('an OBF LUN is read-only to hosts while its snapshot captures (DATA PROTECT), writable again after terminate', async () => {
  const obfHost = await IscsiSession.connect(url(3));
  try {
    const st = await client.call<{ id: string }>('snapshot_institute', { source: `${IQN}/4`, obf: `${IQN}/3` });
    const refused = await obfHost.write16(100n, Buffer.alloc(512, 9)).catch((e: unknown) => e);
    expect(refused).toMatchObject({ senseKey: 0x7, asc: 0x27, ascq: 0x00 });
    const luns = await client.call<Array<{ lun: number; read_only: boolean }>>('lun_list');
    expect(luns.find((l) => l.lun === 3)?.read_only).toBe(true);
    await expect(client.call('snapshot_forget', { id: st.id })).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_STATE' });
    await client.call('snapshot_terminate', { id: st.id });
    await obfHost.write16(100n, Buffer.alloc(512, 9));
    expect(await client.call('snapshot_forget', { id: st.id })).toEqual({ forgotten: st.id });
    await expect(client.call('snapshot_status', { id: st.id })).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_NOT_FOUND' });
    const journal = JSON.parse(fs.readFileSync(path.join(dir, 'state', 'snapshots.json'), 'utf8')) as { snapshots: Array<{ id: string }> };
    expect(journal.snapshots.map((x) => x.id)).not.toContain(st.id);
  } finally {
    await obfHost.close();
  }
});

test('`xcopy-agent snapshot` drives the API from the shell: institute, view-add, status, terminate, forget; errors are one line with the documented status', async () => {
  const { execFile } = await import('node:child_process');
  const bin = path.resolve(__dirname, '../../bin/xcopy-agent');
  const tokenFile = path.join(dir, 'state', 'mgmt.token');
  const cli = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(bin, ['snapshot', ...args, '--mgmt', server.management!.url, '--token-file', tokenFile], { timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
      ),
    );
  const inst = await cli(['institute', '--json', '--source', `${IQN}/4`, '--obf', `${IQN}/3`, '--chunk', '32768']);
  expect(inst.code).toBe(0);
  const id = (JSON.parse(inst.stdout.trim()) as { result: { id: string; state: string } }).result.id;
  const view = await cli(['view-add', id]);
  expect(view.code).toBe(0);
  expect(view.stdout).toMatch(new RegExp(`view of snapshot ${id} at ${IQN}/\\d+ \\(read-only`));
  const status = await cli(['status', id]);
  expect(status.stdout).toMatch(new RegExp(`snapshot ${id} ACTIVE, 0 records`));
  const luns = await cli(['luns']);
  expect(luns.stdout).toMatch(new RegExp(`${IQN}/4 file .* snapshot ${id}`));
  expect((await cli(['terminate', id])).stdout).toMatch(/SEALED/);
  expect((await cli(['forget', id])).code).toBe(0);
  // an OBF file holding other data: refused in one line (usage, exit 1) unless --overwrite-obf
  const other = path.join(dir, 'other.img');
  fs.writeFileSync(other, Buffer.alloc(1024 * 1024, 0x42));
  const refusedObf = await cli(['institute', '--source', `${IQN}/4`, '--obf', `file:${other}`]);
  expect(refusedObf.code).toBe(1);
  expect(refusedObf.stderr.trim().split('\n')).toHaveLength(1);
  expect(refusedObf.stderr).toMatch(/holds data that is not an OBF/);
  const taken = await cli(['institute', '--json', '--source', `${IQN}/4`, '--obf', `file:${other}`, '--overwrite-obf']);
  expect(taken.code).toBe(0);
  const takenId = (JSON.parse(taken.stdout.trim()) as { result: { id: string } }).result.id;
  expect((await cli(['terminate', takenId])).code).toBe(0);
  expect((await cli(['forget', takenId])).code).toBe(0);
  const missing = await cli(['status', id]);
  expect(missing.code).toBe(1);
  expect(missing.stderr.trim().split('\n')).toHaveLength(1);
  expect(missing.stderr).toMatch(/no snapshot .* on this target/);
  const badToken = path.join(dir, 'bad.token');
  fs.writeFileSync(badToken, 'y'.repeat(43), { mode: 0o600 });
  const refused = await new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile(bin, ['snapshot', 'list', '--mgmt', server.management!.url, '--token-file', badToken], (err, _o, stderr) => resolve({ code: err ? Number(err.code) : 0, stderr })),
  );
  expect(refused.code).toBe(41);
});

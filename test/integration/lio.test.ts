/**
 * Real Linux LIO (kernel 6.1, in a QEMU VM: test/helpers/lio-vm.ts, docs/lio.md) as a test target
 * and as the copy manager. One VM for this file, configured from every file of targetcli-configs/
 * (the project's reader accepts them too: test/unit/target/targetcli-configs.test.ts). Every
 * client connects to the forwarded loopback port with a direct LUN URL; SendTargets is never
 * followed. Copies are checked by hash of both LUNs read back through iSCSI against the bytes the
 * test generated and wrote before the copy.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { IscsiError } from '../../src/errors';
import { IscsiSession } from '../../src/initiator/session';
import { xcopyCopy } from '../../src/agent/xcopy-copy';
import { cscdOfLun } from '../../src/agent/apply-obf';
import { encodeWrite16Cdb } from '../../src/scsi/cdb';
import { encodeExtendedCopyLid1 } from '../../src/scsi/xcopy';
import { runIscsiTestCu } from '../../src/peers/iscsi-test-cu';
import { freePort } from '../../src/peers/tgt';
import { parseConfig, quickConfig } from '../../src/target/config';
import { TargetServer } from '../../src/target/server';
import pino from 'pino';
import { lioVmFixture, TARGETCLI_CONFIGS } from '../helpers/lio-vm';
import { xorshift } from '../helpers/rng';

const BIN = path.resolve(__dirname, '../../bin/xcopy-agent');
const IQN = 'iqn.2026-11.io.xcopy-agent';
const CONFIGS = ['fileio-512.json', 'fileio-4096.json', 'chap.json', 'two-targets.json', 'small.json'];
// Test-only secrets for chap.json (its file holds none: "env:NAME").
const SECRETS = {
  XCOPY_LIO_CHAP_SECRET: crypto.randomBytes(9).toString('hex'),
  XCOPY_LIO_CHAP_MUTUAL_SECRET: crypto.randomBytes(10).toString('hex'),
  XCOPY_LIO_DISCOVERY_SECRET: crypto.randomBytes(11).toString('hex'),
};
const CHAP_ENV = {
  LIBISCSI_CHAP_USERNAME: 'xcopy-host',
  LIBISCSI_CHAP_PASSWORD: SECRETS.XCOPY_LIO_CHAP_SECRET,
  LIBISCSI_CHAP_TARGET_USERNAME: 'xcopy-lio-target',
  LIBISCSI_CHAP_TARGET_PASSWORD: SECRETS.XCOPY_LIO_CHAP_MUTUAL_SECRET,
};

const vm = lioVmFixture({ configs: CONFIGS, env: SECRETS, probe: `${IQN}:fileio-512/0` });
const url = (target: string, lun: number) => vm().url(`${IQN}:${target}`, lun);
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: 120_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

async function withSession<T>(u: string, f: (s: IscsiSession) => Promise<T>, env?: NodeJS.ProcessEnv): Promise<T> {
  const s = await IscsiSession.connect(u, { initiatorName: `${IQN}:host`, env: { ...process.env, ...env } });
  try {
    return await f(s);
  } finally {
    await s.close();
  }
}

/** Writes `data` at `lba` in pieces well under LIO's maximum transfer length (VPD B0). */
async function writeAt(s: IscsiSession, lba: bigint, data: Buffer, blockSize: number): Promise<void> {
  const step = 2048 * blockSize > 4 << 20 ? (4 << 20) / blockSize : 2048;
  for (let off = 0; off < data.length; off += step * blockSize) {
    await s.write16(lba + BigInt(off / blockSize), data.subarray(off, off + step * blockSize));
  }
}

async function readAt(s: IscsiSession, lba: bigint, blocks: number, blockSize: number): Promise<Buffer> {
  const step = 2048 * blockSize > 4 << 20 ? (4 << 20) / blockSize : 2048;
  const parts: Buffer[] = [];
  for (let b = 0; b < blocks; b += step) parts.push(await s.read16(lba + BigInt(b), Math.min(step, blocks - b)));
  return Buffer.concat(parts);
}

test('LIO applied every targetcli-configs file: each LUN has the configured size, block size and serial', async () => {
  expect(vm().warnings).toEqual([]);
  for (const file of CONFIGS) {
    const config = parseConfig(JSON.parse(fs.readFileSync(path.join(TARGETCLI_CONFIGS, file), 'utf8')), SECRETS);
    const byPath = new Map(config.storageObjects.map((so) => [`/backstores/${so.plugin}/${so.name}`, so]));
    for (const t of config.targets) {
      for (const l of t.tpgs[0].luns) {
        const so = byPath.get(l.storageObject)!;
        const env = file === 'chap.json' ? CHAP_ENV : undefined;
        const seen = await withSession(vm().url(t.wwn, l.index), async (s) => ({ cap: await s.readCapacity16(), serial: await s.unitSerialNumber() }), env);
        expect([file, l.index, seen.cap.logicalBlockLength, (seen.cap.returnedLogicalBlockAddress + 1n) * BigInt(so.blockSize), seen.serial]).toEqual([
          file,
          l.index,
          so.blockSize,
          BigInt(so.size!),
          so.wwn,
        ]);
      }
    }
  }
  // chap.json's ACL: no login without CHAP, or with a wrong secret.
  await expect(withSession(url('chap', 0), async () => undefined)).rejects.toThrow();
  await expect(withSession(url('chap', 0), async () => undefined, { ...CHAP_ENV, LIBISCSI_CHAP_PASSWORD: 'wrong-secret-0000' })).rejects.toThrow();
}, 120_000);

test('inquire shows LIO and its copy manager limits (2 CSCDs, 1 segment, 1 concurrent copy)', async () => {
  const r = await cli(['inquire', '--json', url('fileio-512', 0)]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
  expect(summary).toMatchObject({ vendor: 'LIO-ORG', version: 6, three_pc: true, block_size: 512, unit_serial_number: '05120001-7c3e-4d2a-9f10-5e6b8a9d0c11' });
  expect(summary.operating_parameters).toMatchObject({
    maximumCscdDescriptorCount: 2,
    maximumSegmentDescriptorCount: 1,
    maximumDescriptorListLength: 1024,
    maximumSegmentLength: 256 << 20,
    maximumInlineDataLength: 0,
    heldDataLimit: 0,
    maximumConcurrentCopies: 1,
  });
  const text = await cli(['inquire', url('fileio-4096', 2)]);
  expect(text.code).toBe(0);
  expect(text.stdout).toMatch(/Vendor\s+LIO-ORG/);
  expect(text.stdout).toMatch(/16384 blocks x 4096 bytes/);
});

test('copy: LIO copies 70000 blocks in single-segment commands of at most 65535 blocks, byte for byte', async () => {
  const blocks = 70000;
  const bs = 512;
  const source = xorshift(0x11005).bytes(blocks * bs);
  const before = xorshift(0x11006).bytes((blocks + 16) * bs); // what the secondary held
  await withSession(url('fileio-512', 0), (s) => writeAt(s, 0n, source, bs));
  await withSession(url('fileio-512', 1), (s) => writeAt(s, 0n, before, bs));
  const r = await cli(['copy', '--json', '--no-fallback', '--from', url('fileio-512', 0), '--to', url('fileio-512', 1), '--count', String(blocks), '--seek', '8']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
  expect(summary).toMatchObject({ path: 'xcopy', host_bytes: '0', xcopy_bytes: String(blocks * bs), extended_copy_commands: 2 });
  const expected = Buffer.concat([before.subarray(0, 8 * bs), source, before.subarray((blocks + 8) * bs)]);
  expect(sha(await withSession(url('fileio-512', 1), (s) => readAt(s, 0n, blocks + 16, bs)))).toBe(sha(expected));
  expect(sha(await withSession(url('fileio-512', 0), (s) => readAt(s, 0n, blocks, bs)))).toBe(sha(source));
}, 120_000);

test('copy of 4096-byte blocks through the library, LIO as the copy manager named by --bridge', async () => {
  const blocks = 3000;
  const bs = 4096;
  const source = xorshift(0x11007).bytes(blocks * bs);
  await withSession(url('fileio-4096', 0), (s) => writeAt(s, 100n, source, bs));
  const r = await xcopyCopy({ from: url('fileio-4096', 0), to: url('fileio-4096', 2), bridge: url('fileio-4096', 0), skip: 100n, seek: 0n, count: BigInt(blocks), fallback: false });
  expect(r).toMatchObject({ path: 'xcopy', host_bytes: 0n, block_size: bs, extended_copy_commands: 1 });
  expect(sha(await withSession(url('fileio-4096', 2), (s) => readAt(s, 0n, blocks, bs)))).toBe(sha(source));
}, 120_000);

test("a LUN of another target: LIO's COPY ABORTED 0Dh/02h; --no-fallback fails with one line, else the host copies", async () => {
  const bs = 512;
  const source = xorshift(0x11008).bytes(1024 * bs);
  await withSession(url('site-a', 0), (s) => writeAt(s, 0n, source, bs));
  const refused = await cli(['copy', '--no-fallback', '--from', url('site-a', 0), '--to', url('site-b', 0), '--bridge', url('site-a', 0), '--count', '1024']);
  expect(refused.code).toBe(10); // ERR_XCOPY_UNAVAILABLE
  expect(refused.stderr.trim().split('\n')).toHaveLength(1);
  expect(refused.stderr).toMatch(/not reachable|0Dh\/02h|0x0d\/0x02/i);
  const r = await cli(['copy', '--json', '--from', url('site-a', 0), '--to', url('site-b', 0), '--bridge', url('site-a', 0), '--count', '1024']);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toMatchObject({ path: 'host', host_bytes: String(1024 * bs) });
  expect(sha(await withSession(url('site-b', 0), (s) => readAt(s, 0n, 1024, bs)))).toBe(sha(source));
}, 120_000);

test('FUA on a LUN without a write cache: LIO refuses the bit (INVALID FIELD IN CDB); the initiator writes, then synchronizes, instead', async () => {
  const data = xorshift(0x1100a).bytes(8 * 512);
  await withSession(url('fileio-512', 2), async (s) => {
    expect((await s.modeParameterHeader10()).dpofua).toBe(false); // emulate_write_cache 0: no DPOFUA
    const raw = await s.execute(encodeWrite16Cdb({ lba: 0n, transferLength: 8, fua: true }), { dataOut: data });
    expect(raw.sense).toMatchObject({ senseKey: 0x05, asc: 0x24, ascq: 0x00 });
    await s.write16(16n, data, { fua: true });
  });
  // The blocks as LIO's backing file holds them, hashed in the guest.
  const inFile = await vm().exec('dd if=/var/lib/xcopy-agent/luns/fileio-512/obf.img bs=512 skip=16 count=8 2>/dev/null | sha256sum');
  expect(inFile.output.toString().split(' ')[0]).toBe(sha(data));
});

test("bad requests get LIO's own sense: source past the end, a short OPERATING PARAMETERS allocation", async () => {
  await withSession(url('fileio-512', 1), async (dst) => {
    await withSession(url('fileio-512', 0), async (src) => {
      const cscds = [(await cscdOfLun(src, 512))!, (await cscdOfLun(dst, 512))!];
      const pastEnd = encodeExtendedCopyLid1({
        listIdentifier: 7,
        listIdUsage: 2,
        cscdDescriptors: cscds,
        segmentDescriptors: [
          { kind: 'blockToBlock', dc: false, cat: false, sourceCscdDescriptorId: 0, destinationCscdDescriptorId: 1, blockDeviceNumberOfBlocks: 16, sourceBlockDeviceLba: 131072n - 8n, destinationBlockDeviceLba: 0n },
        ],
      });
      const err = await dst.extendedCopy(pastEnd).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(IscsiError);
      expect(err).toMatchObject({ senseKey: 0x0a, asc: 0x0d, ascq: 0x02 }); // COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE
    });
    const short = await dst.receiveCopyResults(0x03, 0, 53).then(() => undefined, (e: unknown) => e);
    expect(short).toMatchObject({ senseKey: 0x05, asc: 0x24, ascq: 0x00 }); // ILLEGAL REQUEST, INVALID FIELD IN CDB
  });
});

test('conformance side by side: iscsi-test-cu ExtendedCopy and ReceiveCopyResults on LIO and on the project target', async () => {
  const families = ['SCSI.ExtendedCopy', 'SCSI.ReceiveCopyResults'];
  type Run = Awaited<ReturnType<typeof runIscsiTestCu>>;
  const onLio: Run[] = [];
  for (const family of families) onLio.push(await runIscsiTestCu(url('fileio-512', 2), { family, timeoutMs: 120_000 }));
  const port = await freePort();
  const iqn = 'iqn.2026-11.io.xcopy-agent.test:lio-side-by-side';
  const server = await TargetServer.start(quickConfig({ portal: `127.0.0.1:${port}`, iqn, luns: ['memory:64M'] }), { log: pino({ level: 'silent' }) });
  const ours: Run[] = [];
  try {
    for (const family of families) ours.push(await runIscsiTestCu(`iscsi://127.0.0.1:${port}/${iqn}/0`, { family, timeoutMs: 120_000 }));
  } finally {
    await server.stop();
  }
  const line = (who: string, r: Run, family: string) => `  ${who.padEnd(16)} ${family.padEnd(24)} ${r.pass} pass / ${r.fail} fail / ${r.skip} skip\n`;
  process.stdout.write(
    `iscsi-test-cu --dataloss, LIO 6.1 vs the project's target:\n${families.map((f, i) => line('LIO', onLio[i], f) + line('project target', ours[i], f)).join('')}` +
      `  LIO failures (expected: it has no COPY STATUS, RECEIVE COPY RESULTS SA 00h):\n${onLio.flatMap((r) => r.failures).map((f) => `    ${f}\n`).join('')}`,
  );
  expect(onLio[0].fail).toBe(0);
  expect(onLio[0].pass).toBeGreaterThanOrEqual(6);
  expect(onLio[1].tests.get('ReceiveCopyResults.OpParams')).toBe('pass');
  expect([...onLio[1].tests].filter(([, o]) => o === 'fail').map(([n]) => n)).toEqual(['ReceiveCopyResults.CopyStatus']);
  expect(ours.map((r) => r.fail)).toEqual([0, 0]);
  expect(ours[1].tests.get('ReceiveCopyResults.CopyStatus')).toBe('pass');
}, 300_000);

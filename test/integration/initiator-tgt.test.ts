/**
 * The libiscsi binding against a real tgt started by the test on a free loopback port.
 * Byte-exactness is checked against the LUN's backing file, read with fs (independent of the
 * code under test).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { IscsiError } from '../../src/errors';
import { IscsiSession } from '../../src/initiator/session';
import { Tgt } from '../../src/peers/tgt';
import { pickCscdDesignator } from '../../src/scsi/vpd';
import { removeDir, tempDir } from '../helpers/tmp';

const MiB = 1024 * 1024;
let dir: string;
let tgt: Tgt;

beforeAll(async () => {
  expect(Tgt.available()).toBe(true); // `make setup` installs tgt: this test never skips
  dir = tempDir('initiator');
  tgt = await Tgt.start({ dir, luns: [{ size: 128 * MiB }, { size: 16 * MiB, blockSize: 4096 }] });
});

afterAll(async () => {
  await tgt?.stop();
  if (dir) removeDir(dir);
});

function sha256(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

describe('IscsiSession against tgt', () => {
  test('connect, standard INQUIRY, VPD 0x83 designators, capacity', async () => {
    const s = await IscsiSession.connect(tgt.url(1));
    try {
      const inq = await s.inquiry();
      expect(inq.t10VendorIdentification).toBe('IET');
      expect(inq.peripheralDeviceType).toBe(0);
      expect(inq.threePc).toBe(false);
      const pages = await s.supportedVpdPages();
      expect(pages).toEqual(expect.arrayContaining([0x00, 0x80, 0x83]));
      const ids = await s.deviceIdentification();
      const naa = ids.designators.find((d) => d.designatorType === 3 && d.association === 0);
      expect(naa).toBeDefined();
      expect(pickCscdDesignator(ids.designators)).toBe(naa);
      const cap = await s.readCapacity16();
      expect(cap.logicalBlockLength).toBe(512);
      expect(cap.returnedLogicalBlockAddress).toBe(BigInt((128 * MiB) / 512 - 1));
      expect(await s.reportLuns()).toEqual(expect.arrayContaining([0, 1, 2]));
    } finally {
      await s.close();
    }
  });

  test('4096-byte blocks are reported and used', async () => {
    const s = await IscsiSession.connect(tgt.url(2));
    try {
      expect(await s.blockSize()).toBe(4096);
      const data = crypto.randomBytes(3 * 4096);
      await s.write16(5n, data, { fua: true });
      expect((await s.read16(5n, 3)).equals(data)).toBe(true);
    } finally {
      await s.close();
    }
  });

  test('write then read back 64 MiB, compared by hash with the backing file', async () => {
    const s = await IscsiSession.connect(tgt.url(1));
    try {
      const data = crypto.randomBytes(64 * MiB);
      const chunk = MiB;
      const startLba = 2048n; // 1 MiB in
      const writes: Promise<void>[] = [];
      for (let off = 0; off < data.length; off += chunk) {
        writes.push(s.write16(startLba + BigInt(off / 512), data.subarray(off, off + chunk)));
        if (writes.length >= 16) await writes.shift();
      }
      await Promise.all(writes);
      await s.synchronizeCache16();
      const parts: Promise<Buffer>[] = [];
      for (let off = 0; off < data.length; off += chunk) parts.push(s.read16(startLba + BigInt(off / 512), chunk / 512));
      const back = Buffer.concat(await Promise.all(parts));
      expect(sha256(back)).toBe(sha256(data));
      // Independent reference: the backing file itself.
      const fd = fs.openSync(tgt.lunPaths[0], 'r');
      const onDisk = Buffer.alloc(data.length);
      fs.readSync(fd, onDisk, 0, onDisk.length, Number(startLba) * 512);
      fs.closeSync(fd);
      expect(sha256(onDisk)).toBe(sha256(data));
    } finally {
      await s.close();
    }
  });

  test('256 commands in flight on one session', async () => {
    const s = await IscsiSession.connect(tgt.url(1));
    try {
      const bs = await s.blockSize();
      const stamp = Buffer.alloc(256 * 8 * bs);
      for (let i = 0; i < 256; i++) stamp.fill(i, i * 8 * bs, (i + 1) * 8 * bs);
      fs.writeSync(fs.openSync(tgt.lunPaths[0], 'r+'), stamp, 0, stamp.length, 0);
      const reads = Array.from({ length: 256 }, (_, i) => s.read16(BigInt(i * 8), 8));
      const queued = s.queueLength; // all 256 were handed to libiscsi before any completed
      const got = await Promise.all(reads);
      expect(queued).toBe(256);
      got.forEach((b, i) => expect(b.equals(Buffer.alloc(8 * bs, i))).toBe(true));
    } finally {
      await s.close();
    }
  });

  test('close() with commands in flight settles every promise', async () => {
    const s = await IscsiSession.connect(tgt.url(1));
    await s.blockSize();
    const pending = Array.from({ length: 64 }, (_, i) => s.read16(BigInt(i * 2048), 2048));
    expect(s.queueLength).toBe(64);
    const settled = Promise.allSettled(pending);
    await s.close();
    const outcomes = await settled;
    expect(outcomes).toHaveLength(64);
    for (const o of outcomes) {
      if (o.status === 'rejected') expect((o.reason as IscsiError).code).toBe('ERR_ISCSI_CLOSED');
    }
    expect(outcomes.some((o) => o.status === 'rejected')).toBe(true);
    await expect(s.testUnitReady()).rejects.toMatchObject({ code: 'ERR_ISCSI_CLOSED' });
  });

  test('a CHECK CONDITION becomes an IscsiError with the sense fields', async () => {
    const s = await IscsiSession.connect(tgt.url(1));
    try {
      const cap = await s.readCapacity16();
      const err = await s.read16(cap.returnedLogicalBlockAddress + 1n, 1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IscsiError);
      expect(err).toMatchObject({ code: 'ERR_SCSI_CHECK_CONDITION', scsiStatus: 2, senseKey: 0x5, asc: 0x21, ascq: 0x00 });
    } finally {
      await s.close();
    }
  });

  test('SendTargets discovery lists the target', async () => {
    const targets = await IscsiSession.discover(`iscsi://127.0.0.1:${tgt.port}`);
    expect(targets.map((t) => t.name)).toContain(tgt.iqn);
    expect(targets.find((t) => t.name === tgt.iqn)!.portals[0]).toMatch(/^127\.0\.0\.1:\d+/);
  });

  describe('bad addresses fail quickly with the right code', () => {
    test.each([
      ['wrong IQN', () => `iscsi://127.0.0.1:${tgt.port}/iqn.2026-11.io.nonexistent:x/1`, 'ERR_ISCSI_LOGIN', /Target not found/],
      ['wrong LUN', () => `iscsi://127.0.0.1:${tgt.port}/${tgt.iqn}/9`, 'ERR_ISCSI_NO_SUCH_LUN', /no LUN 9 .*has LUN 0, 1, 2/],
      ['wrong port', () => `iscsi://127.0.0.1:1/${tgt.iqn}/1`, 'ERR_ISCSI_UNREACHABLE', /cannot reach iSCSI portal 127\.0\.0\.1:1/],
    ])('%s', async (_name, url, code, message) => {
      const t0 = Date.now();
      const err = await IscsiSession.connect(url(), { connectTimeoutMs: 5000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IscsiError);
      expect(err).toMatchObject({ code });
      expect((err as Error).message).toMatch(message);
      expect(Date.now() - t0).toBeLessThan(5000);
    });
  });
});

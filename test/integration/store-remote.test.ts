/**
 * RemoteStore against a real tgt started on a free loopback port: the Store contract on a thick
 * LUN (zeroing by WRITE SAME), a thin-provisioned one (UNMAP, GET LBA STATUS, LBPRZ) and a
 * 4096-byte one; forwarded sense; identity from the remote's VPD pages. Data are checked against
 * the LUNs' backing files, read with fs (independent of the code under test).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { stampBlocks } from '../../src/agent/stamp';
import { IscsiError } from '../../src/errors';
import { IscsiSession } from '../../src/initiator/session';
import { Tgt } from '../../src/peers/tgt';
import { decodeSense } from '../../src/scsi/sense';
import { RemoteStore } from '../../src/store/remote';
import { seekData, seekHole } from '../../src/native/fileops';
import { StoreError } from '../../src/store/store';
import { removeDir, tempDir } from '../helpers/tmp';
import { storeContract } from '../unit/store/contract';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const THICK = 1;
const THIN = 2;
const BIG_BLOCKS = 3;

let dir: string;
let tgt: Tgt;

beforeAll(async () => {
  expect(Tgt.available()).toBe(true); // `make setup` installs tgt: this test never skips
  dir = tempDir('store-remote');
  tgt = await Tgt.start({ dir, luns: [{ size: 32 * MiB }, { size: 32 * MiB }, { size: 16 * MiB, blockSize: 4096 }] });
  // tgt advertises LBPME/LBPRZ, UNMAP and GET LBA STATUS on a LUN with thin provisioning on.
  await tgt.adm(['--op', 'update', '--mode', 'logicalunit', '--tid', '1', '--lun', String(THIN), '--params', 'thin_provisioning=1']);
});

afterAll(async () => {
  await tgt?.stop();
  if (dir) removeDir(dir);
});

function backing(lun: number, offset: number, length: number): Buffer {
  const fd = fs.openSync(tgt.lunPaths[lun - 1], 'r');
  try {
    const b = Buffer.alloc(length);
    fs.readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

storeContract('remote (tgt, thick LUN)', () => RemoteStore.open(tgt.url(THICK)), { numRuns: 25 });
storeContract('remote (tgt, thin-provisioned LUN)', () => RemoteStore.open(tgt.url(THIN)), { numRuns: 25 });
storeContract('remote (tgt, 4096-byte blocks)', () => RemoteStore.open(tgt.url(BIG_BLOCKS)), { numRuns: 25 });

describe('RemoteStore against tgt', () => {
  test('reading past the end forwards the remote sense unchanged: ILLEGAL REQUEST, LBA OUT OF RANGE', async () => {
    const s = await RemoteStore.open(tgt.url(THICK));
    const direct = await IscsiSession.connect(tgt.url(THICK));
    try {
      const err = await s.read(s.blocks, 1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      const failure = (err as StoreError).failure;
      if (failure.kind !== 'forwarded') throw new Error(`expected a forwarded failure, got ${failure.kind}`);
      expect(failure.status).toBe(0x02); // CHECK CONDITION
      expect(failure.sense).toBeDefined();
      expect(decodeSense(failure.sense!)).toMatchObject({ senseKey: 0x5, asc: 0x21, ascq: 0x00 });
      // Byte for byte what the remote sent to a plain initiator for the same command.
      const raw = (await direct.read16(s.blocks, 1).catch((e: unknown) => e)) as IscsiError;
      expect(raw).toBeInstanceOf(IscsiError);
      expect(failure.sense!.toString('hex')).toBe(raw.sense!.toString('hex'));
      // A write past the end too, and nothing was written.
      const lastBefore = backing(THICK, 32 * MiB - 512, 512);
      const werr = await s.write(s.blocks - 1n, Buffer.alloc(1024, lastBefore[0] ^ 0xff)).catch((e: unknown) => e);
      expect((werr as StoreError).failure).toMatchObject({ kind: 'forwarded', status: 0x02 });
      expect(decodeSense((werr as StoreError & { failure: { sense: Buffer } }).failure.sense)).toMatchObject({ senseKey: 0x5, asc: 0x21 });
      expect(backing(THICK, 32 * MiB - 512, 512).equals(lastBefore)).toBe(true);
    } finally {
      await Promise.all([s.close(), direct.close()]);
    }
  });

  test('identity is the remote LUN\'s NAA designator and serial; the name is the URL', async () => {
    const s = await RemoteStore.open(tgt.url(THIN));
    const direct = await IscsiSession.connect(tgt.url(THIN));
    try {
      const ids = await direct.deviceIdentification();
      const naa = ids.designators.find((d) => d.designatorType === 3 && d.association === 0 && d.designator.length === 16)!;
      expect(naa).toBeDefined();
      expect(s.identity.naa!.toString('hex')).toBe(naa.designator.toString('hex'));
      expect(s.identity.serial).toBe(await direct.unitSerialNumber());
      expect(s.identity.name).toBe(tgt.url(THIN));
      const other = await RemoteStore.open(tgt.url(THICK));
      expect(other.identity.naa!.equals(s.identity.naa!)).toBe(false);
      await other.close();
    } finally {
      await Promise.all([s.close(), direct.close()]);
    }
  });

  test('what the LUNs advertise decides unmap and extents', async () => {
    const thick = await RemoteStore.open(tgt.url(THICK));
    const thin = await RemoteStore.open(tgt.url(THIN));
    try {
      expect([thick.unmapReadsZero, thick.unmapMethod, thick.capabilities.lbpme]).toEqual([false, 'write-same', false]);
      expect([thin.unmapReadsZero, thin.unmapMethod, thin.capabilities.lbpme]).toEqual([true, 'unmap', true]);
      expect(thin.capabilities.provisioning).toMatchObject({ lbpu: true, lbpws: true });
    } finally {
      await Promise.all([thick.close(), thin.close()]);
    }
  });

  test('thin LUN: writes land in the backing file; UNMAP punches it; GET LBA STATUS shows the hole', async () => {
    const s = await RemoteStore.open(tgt.url(THIN));
    try {
      const lba = 8192n; // 4 MiB in
      const data = crypto.randomBytes(2 * MiB);
      await s.write(lba, data, { fua: true });
      expect(sha256(backing(THIN, 4 * MiB, 2 * MiB))).toBe(sha256(data));
      const mapped = await s.extents(lba, 4096n);
      expect(mapped).toEqual([{ lba, blocks: 4096n, mapped: true }]);
      await s.unmap(lba + 1024n, 2048n); // the middle MiB
      await s.flush();
      const expected = Buffer.from(data);
      expected.fill(0, 512 * 1024, 512 * 1024 + MiB);
      expect(sha256(await s.read(lba, 4096))).toBe(sha256(expected));
      expect(sha256(backing(THIN, 4 * MiB, 2 * MiB))).toBe(sha256(expected));
      // Deallocated in the backing file (a hole), not zeros written over it.
      const fd = fs.openSync(tgt.lunPaths[THIN - 1], 'r');
      try {
        expect(seekHole(fd, 4 * MiB + 512 * 1024)).toBe(4 * MiB + 512 * 1024);
        expect(seekData(fd, 4 * MiB + 512 * 1024)).toBe(5 * MiB + 512 * 1024);
      } finally {
        fs.closeSync(fd);
      }
      expect(await s.extents(lba, 4096n)).toEqual([
        { lba, blocks: 1024n, mapped: true },
        { lba: lba + 1024n, blocks: 2048n, mapped: false },
        { lba: lba + 3072n, blocks: 1024n, mapped: true },
      ]);
    } finally {
      await s.close();
    }
  });

  test('thick LUN: unmap zeroes by WRITE SAME; extents report everything mapped (no LBPME)', async () => {
    const s = await RemoteStore.open(tgt.url(THICK));
    try {
      const lba = 20000n;
      const data = stampBlocks(lba, 256, 512, 11n);
      await s.write(lba, data);
      await s.unmap(lba + 10n, 100n);
      await s.flush();
      const expected = Buffer.from(data);
      expected.fill(0, 10 * 512, 110 * 512);
      expect(sha256(backing(THICK, Number(lba) * 512, 256 * 512))).toBe(sha256(expected));
      expect(await s.extents(0n, s.blocks)).toEqual([{ lba: 0n, blocks: s.blocks, mapped: true }]);
    } finally {
      await s.close();
    }
  });

  test('a large transfer (16 MiB, concurrent pieces) round-trips byte-exact', async () => {
    const s = await RemoteStore.open(tgt.url(BIG_BLOCKS));
    try {
      const data = crypto.randomBytes(8 * MiB);
      await Promise.all([s.write(0n, data.subarray(0, 4 * MiB)), s.write(1024n, data.subarray(4 * MiB))]);
      const into = Buffer.alloc(8 * MiB);
      const got = await s.read(0n, 2048, into);
      expect(got.buffer).toBe(into.buffer);
      expect(sha256(into)).toBe(sha256(data));
      await s.flush();
      expect(sha256(backing(BIG_BLOCKS, 0, 8 * MiB))).toBe(sha256(data));
    } finally {
      await s.close();
    }
  });

  test('a lost target makes requests fail with not-ready, not hang', async () => {
    const own = await Tgt.start({ dir, luns: [{ size: 4 * MiB }] });
    let s: RemoteStore | undefined;
    try {
      s = await RemoteStore.open(own.url(1), { commandTimeoutMs: 2000, autoReconnect: false });
      await s.write(0n, Buffer.alloc(512, 1));
      await own.stop();
      const started = Date.now();
      const err = await s.read(0n, 1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).failure).toEqual({ kind: 'not-ready' });
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await s?.close();
      await own.stop();
    }
  });
});

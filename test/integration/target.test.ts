/**
 * The project's target, in process, against real initiators: libiscsi's tools, our binding,
 * CHAP (one-way and mutual) and ACLs. Data is checked by hash against the backing file read with
 * plain fs (independent of the target's code).
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { IscsiError } from '../../src/errors';
import { IscsiSession } from '../../src/initiator/session';
import { freePort } from '../../src/peers/tgt';
import { parseConfig, quickConfig } from '../../src/target/config';
import { TargetServer } from '../../src/target/server';
import { removeDir, tempDir } from '../helpers/tmp';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const quiet = pino({ level: 'silent' });
const IQN = 'iqn.2026-11.io.xcopy-agent.test:target';

let dir: string;
let server: TargetServer;
let port: number;

beforeAll(async () => {
  dir = tempDir('target');
  port = await freePort();
  server = await TargetServer.start(
    quickConfig({ portal: `127.0.0.1:${port}`, iqn: IQN, luns: [`file:${path.join(dir, 'lun0.img')}:64M`, 'memory:16M'] }),
    { log: quiet },
  );
});

afterAll(async () => {
  await server?.stop();
  if (dir) removeDir(dir);
});

const url = (lun: number) => `iscsi://127.0.0.1:${port}/${IQN}/${lun}`;

describe('the target serves real initiators', () => {
  test('libiscsi iscsi-inq and iscsi-ls see the LUNs', async () => {
    const inq = await run('iscsi-inq', [url(0)], { timeout: 10_000 });
    expect(inq.stdout).toMatch(/Vendor:XCOPYAGT/);
    expect(inq.stdout).toMatch(/CmdQue:1/);
    const ls = await run('iscsi-ls', ['-s', `iscsi://127.0.0.1:${port}`], { timeout: 10_000 });
    expect(ls.stdout).toContain(`Target:${IQN} Portal:127.0.0.1:${port},1`);
    expect(ls.stdout).toMatch(/Lun:0\s+Type:DIRECT_ACCESS \(Size:63M\)/);
    expect(ls.stdout).toMatch(/Lun:1\s+Type:DIRECT_ACCESS \(Size:15M\)/);
  });

  test('16 MiB written through our initiator equals the backing file, read back equal', async () => {
    const s = await IscsiSession.connect(url(0));
    try {
      const data = crypto.randomBytes(16 * MiB);
      const writes: Promise<void>[] = [];
      for (let off = 0; off < data.length; off += MiB) writes.push(s.write16(BigInt(off / 512 + 8), data.subarray(off, off + MiB)));
      await Promise.all(writes);
      await s.synchronizeCache16();
      const back = Buffer.concat(await Promise.all(Array.from({ length: 16 }, (_, i) => s.read16(BigInt(i * 2048 + 8), 2048))));
      const h = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
      expect(h(back)).toBe(h(data));
      const fd = fs.openSync(path.join(dir, 'lun0.img'), 'r');
      const disk = Buffer.alloc(data.length);
      fs.readSync(fd, disk, 0, disk.length, 8 * 512);
      fs.closeSync(fd);
      expect(h(disk)).toBe(h(data));
    } finally {
      await s.close();
    }
  });

  test('256 commands in flight on one session', async () => {
    const s = await IscsiSession.connect(url(1));
    try {
      await s.write16(0n, Buffer.alloc(256 * 4096, 7));
      const reads = Array.from({ length: 256 }, (_, i) => s.read16(BigInt(i * 8), 8));
      const got = await Promise.all(reads);
      expect(got.every((b) => b.length === 4096 && b.every((x) => x === 7))).toBe(true);
    } finally {
      await s.close();
    }
  });

  test('a missing LUN and a bad CDB get the standard sense', async () => {
    await expect(IscsiSession.connect(url(5))).rejects.toMatchObject({ code: 'ERR_ISCSI_NO_SUCH_LUN' });
    const s = await IscsiSession.connect(url(1));
    try {
      const r = await s.execute(Buffer.from([0xc5, 0, 0, 0, 0, 0]));
      expect(r.status).toBe(2);
      expect(r.sense).toMatchObject({ senseKey: 5, asc: 0x20, ascq: 0 });
      const err = await s.read16(32768n, 1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IscsiError);
      expect(err).toMatchObject({ senseKey: 5, asc: 0x21, ascq: 0 });
    } finally {
      await s.close();
    }
  });
});

describe('CHAP and ACLs', () => {
  let secured: TargetServer;
  let sport: number;
  const ALLOWED = 'iqn.2026-11.io.xcopy-agent.test:allowed';
  const OTHER = 'iqn.2026-11.io.xcopy-agent.test:other';
  const SIQN = 'iqn.2026-11.io.xcopy-agent.test:secured';

  beforeAll(async () => {
    sport = await freePort();
    secured = await TargetServer.start(
      parseConfig({
        storage_objects: [
          { name: 'a', plugin: 'ramdisk', size: '8M' },
          { name: 'b', plugin: 'ramdisk', size: '8M' },
        ],
        targets: [
          {
            wwn: SIQN,
            tpgs: [
              {
                tag: 1,
                portals: [{ ip_address: '127.0.0.1', port: sport }],
                luns: [
                  { index: 0, storage_object: '/backstores/ramdisk/a' },
                  { index: 1, storage_object: '/backstores/ramdisk/b' },
                ],
                node_acls: [
                  {
                    node_wwn: ALLOWED,
                    chap_userid: 'alice',
                    chap_password: 'alice-secret-12',
                    chap_mutual_userid: 'target',
                    chap_mutual_password: 'target-secret-34',
                    mapped_luns: [{ index: 0, tpg_lun: 1 }],
                  },
                ],
                attributes: { authentication: 1 },
              },
            ],
          },
        ],
      }),
      { log: quiet },
    );
  });

  afterAll(async () => {
    await secured?.stop();
  });

  const surl = (lun = 0) => `iscsi://127.0.0.1:${sport}/${SIQN}/${lun}`;

  test('the right CHAP secret logs in; the initiator sees only its mapped LUN', async () => {
    const s = await IscsiSession.connect(surl(0), {
      initiatorName: ALLOWED,
      env: { LIBISCSI_CHAP_USERNAME: 'alice', LIBISCSI_CHAP_PASSWORD: 'alice-secret-12' },
    });
    try {
      expect(await s.reportLuns()).toEqual([0]);
      expect(await s.blockSize()).toBe(512);
    } finally {
      await s.close();
    }
  });

  test('mutual CHAP: the target proves its secret too', async () => {
    const s = await IscsiSession.connect(surl(0), {
      initiatorName: ALLOWED,
      env: {
        LIBISCSI_CHAP_USERNAME: 'alice',
        LIBISCSI_CHAP_PASSWORD: 'alice-secret-12',
        LIBISCSI_CHAP_TARGET_USERNAME: 'target',
        LIBISCSI_CHAP_TARGET_PASSWORD: 'target-secret-34',
      },
    });
    await s.close();
    const bad = await IscsiSession.connect(surl(0), {
      initiatorName: ALLOWED,
      env: {
        LIBISCSI_CHAP_USERNAME: 'alice',
        LIBISCSI_CHAP_PASSWORD: 'alice-secret-12',
        LIBISCSI_CHAP_TARGET_USERNAME: 'target',
        LIBISCSI_CHAP_TARGET_PASSWORD: 'not-the-target-secret',
      },
    }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(IscsiError);
  });

  test.each([
    ['a wrong secret', ALLOWED, 'alice', 'wrong-secret-99', /refused: .*\(status 0x0201\)/],
    ['no credentials', ALLOWED, undefined, undefined, /refused/],
    ['an initiator not in the ACL', OTHER, 'alice', 'alice-secret-12', /refused/],
  ])('%s is refused', async (_n, initiatorName, user, pass, message) => {
    const env: NodeJS.ProcessEnv = user ? { LIBISCSI_CHAP_USERNAME: user, LIBISCSI_CHAP_PASSWORD: pass } : {};
    const err = await IscsiSession.connect(surl(0), { initiatorName, env }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_ISCSI_LOGIN' });
    expect((err as Error).message).toMatch(message);
  });

  test('discovery shows the target only to an allowed initiator', async () => {
    const seen = await IscsiSession.discover(`iscsi://127.0.0.1:${sport}`, { initiatorName: ALLOWED });
    expect(seen.map((t) => t.name)).toEqual([SIQN]);
    const hidden = await IscsiSession.discover(`iscsi://127.0.0.1:${sport}`, { initiatorName: OTHER });
    expect(hidden).toEqual([]);
  });
});

/**
 * The copy manager with real clients: qemu-img convert -C between two LUNs of the project's
 * target must go through EXTENDED COPY (qemu-img falls back to READ/WRITE silently, so the
 * target's opcode counters prove it), and an initiator may not name a LUN outside its own view
 * as a copy source or destination (no confused deputy, CVE-2020-28374).
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { IscsiSession } from '../../src/initiator/session';
import { freePort } from '../../src/peers/tgt';
import { cscdFromDesignator, encodeExtendedCopyLid1 } from '../../src/scsi/xcopy';
import { pickCscdDesignator } from '../../src/scsi/vpd';
import { parseConfig, quickConfig } from '../../src/target/config';
import { TargetServer } from '../../src/target/server';
import { removeDir, tempDir } from '../helpers/tmp';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const quiet = pino({ level: 'silent' });

function sha256(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

test('qemu-img convert -C copies through EXTENDED COPY, byte for byte', async () => {
  const dir = tempDir('qemu-xcopy');
  const port = await freePort();
  const iqn = 'iqn.2026-11.io.xcopy-agent.test:qemu';
  const src = path.join(dir, 'src.img');
  fs.writeFileSync(src, crypto.randomBytes(32 * MiB));
  const server = await TargetServer.start(
    quickConfig({ portal: `127.0.0.1:${port}`, iqn, luns: [`file:${src}`, `file:${path.join(dir, 'dst.img')}:32M`] }),
    { log: quiet },
  );
  try {
    const url = (n: number) => `iscsi://127.0.0.1:${port}/${iqn}/${n}`;
    await run('qemu-img', ['convert', '-C', '-f', 'raw', '-O', 'raw', '-n', url(0), url(1)], { timeout: 120_000 });
    expect(server.opcodeCounts.get(0x83) ?? 0).toBeGreaterThan(0); // EXTENDED COPY executed
    expect(server.opcodeCounts.get(0x2a) ?? 0).toBe(0); // no WRITE(10) fallback
    expect(server.opcodeCounts.get(0x8a) ?? 0).toBe(0); // nor WRITE(16)
    await server.stop();
    expect(sha256(fs.readFileSync(path.join(dir, 'dst.img')))).toBe(sha256(fs.readFileSync(src)));
  } finally {
    await server.stop();
    removeDir(dir);
  }
});

test('a LUN outside the initiator’s view cannot be named as a copy source: COPY ABORTED 0Dh/02h', async () => {
  const port = await freePort();
  const iqn = 'iqn.2026-11.io.xcopy-agent.test:deputy';
  const ALICE = 'iqn.2026-11.io.xcopy-agent.test:alice';
  const BOB = 'iqn.2026-11.io.xcopy-agent.test:bob';
  const server = await TargetServer.start(
    parseConfig({
      storage_objects: [
        { name: 'alice', plugin: 'ramdisk', size: '4M' },
        { name: 'bob', plugin: 'ramdisk', size: '4M' },
      ],
      targets: [
        {
          wwn: iqn,
          tpgs: [
            {
              portals: [{ ip_address: '127.0.0.1', port }],
              luns: [
                { index: 0, storage_object: '/backstores/ramdisk/alice' },
                { index: 1, storage_object: '/backstores/ramdisk/bob' },
              ],
              node_acls: [
                { node_wwn: ALICE, mapped_luns: [{ index: 0, tpg_lun: 0 }] },
                { node_wwn: BOB, mapped_luns: [{ index: 0, tpg_lun: 1 }] },
              ],
            },
          ],
        },
      ],
    }),
    { log: quiet },
  );
  try {
    const url = `iscsi://127.0.0.1:${port}/${iqn}/0`;
    const bob = await IscsiSession.connect(url, { initiatorName: BOB });
    const secret = crypto.randomBytes(64 * 512);
    await bob.write16(0n, secret);
    const bobLu = pickCscdDesignator((await bob.deviceIdentification()).designators)!;
    await bob.close();
    const alice = await IscsiSession.connect(url, { initiatorName: ALICE });
    try {
      const aliceLu = pickCscdDesignator((await alice.deviceIdentification()).designators)!;
      // Alice knows Bob's LUN designator and asks the copy manager to copy it onto her LUN.
      const list = encodeExtendedCopyLid1({
        listIdentifier: 1,
        listIdUsage: 2,
        cscdDescriptors: [cscdFromDesignator(bobLu, 512), cscdFromDesignator(aliceLu, 512)],
        segmentDescriptors: [
          {
            kind: 'blockToBlock',
            dc: false,
            cat: false,
            sourceCscdDescriptorId: 0,
            destinationCscdDescriptorId: 1,
            blockDeviceNumberOfBlocks: 64,
            sourceBlockDeviceLba: 0n,
            destinationBlockDeviceLba: 0n,
          },
        ],
      });
      await expect(alice.extendedCopy(list)).rejects.toMatchObject({ senseKey: 0x0a, asc: 0x0d, ascq: 0x02 });
      const mine = await alice.read16(0n, 64);
      expect(mine.equals(Buffer.alloc(64 * 512))).toBe(true); // nothing of Bob's arrived
    } finally {
      await alice.close();
    }
  } finally {
    await server.stop();
  }
});

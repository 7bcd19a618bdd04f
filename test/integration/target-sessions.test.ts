/**
 * Session-level behaviour of the project's target: reinstatement of the same initiator port,
 * the NOP-In keep-alive, write-protected ACL mappings, and a graceful stop on SIGTERM (exit 0,
 * data flushed).
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { ExitStatus } from '../../src/errors';
import { IscsiSession } from '../../src/initiator/session';
import { freePort } from '../../src/peers/tgt';
import { parseConfig, quickConfig } from '../../src/target/config';
import { TargetServer } from '../../src/target/server';
import { RawClient } from '../helpers/raw-iscsi';
import { removeDir, tempDir, waitUntil } from '../helpers/tmp';

const quiet = pino({ level: 'silent' });
const IQN = 'iqn.2026-11.io.xcopy-agent.test:sessions';
const INITIATOR = 'iqn.2026-11.io.xcopy-agent.test:raw';

test('a second login with the same ISID reinstates the session (RFC 7143 6.3.5)', async () => {
  const port = await freePort();
  const server = await TargetServer.start(quickConfig({ portal: `127.0.0.1:${port}`, iqn: IQN, luns: ['memory:1M'] }), { log: quiet });
  try {
    const first = await RawClient.connect(port);
    expect(await first.login(IQN, INITIATOR)).toBe(true);
    expect(server.sessionCount).toBe(1);
    const second = await RawClient.connect(port);
    expect(await second.login(IQN, INITIATOR)).toBe(true);
    await waitUntil(() => first.closed, 5000, 'the old connection to be closed');
    expect(second.closed).toBe(false);
    expect(server.sessionCount).toBe(1);
    // A different ISID is a different session.
    const third = await RawClient.connect(port);
    expect(await third.login(IQN, INITIATOR, { isid: Buffer.from([0x80, 0, 0, 0, 0x99, 0x99]) })).toBe(true);
    expect(server.sessionCount).toBe(2);
    second.close();
    third.close();
  } finally {
    await server.stop();
  }
});

test('an initiator that does not answer NOP-In pings is dropped after the keep-alive timeout', async () => {
  const port = await freePort();
  const server = await TargetServer.start(quickConfig({ portal: `127.0.0.1:${port}`, iqn: IQN, luns: ['memory:1M'] }), {
    log: quiet,
    keepAliveIntervalMs: 200,
    keepAliveTimeoutMs: 300,
  });
  try {
    const c = await RawClient.connect(port);
    expect(await c.login(IQN, INITIATOR)).toBe(true);
    const ping = await c.next(2000);
    expect(ping && ping.bhs[0] & 0x3f).toBe(0x20); // NOP-In
    expect(ping!.bhs.readUInt32BE(16)).toBe(0xffffffff); // ITT reserved: a target ping
    await waitUntil(() => c.closed, 3000, 'the silent connection to be dropped');
    // A live initiator (libiscsi answers pings) stays connected across several intervals.
    const s = await IscsiSession.connect(`iscsi://127.0.0.1:${port}/${IQN}/0`);
    await new Promise((r) => setTimeout(r, 1200));
    await s.testUnitReady();
    await s.close();
  } finally {
    await server.stop();
  }
});

test('a write-protected mapping reads but refuses writes with DATA PROTECT', async () => {
  const port = await freePort();
  const RO = 'iqn.2026-11.io.xcopy-agent.test:readonly';
  const RW = 'iqn.2026-11.io.xcopy-agent.test:readwrite';
  const server = await TargetServer.start(
    parseConfig({
      storage_objects: [{ name: 'm', plugin: 'ramdisk', size: '1M' }],
      targets: [
        {
          wwn: IQN,
          tpgs: [
            {
              portals: [{ ip_address: '127.0.0.1', port }],
              luns: [{ index: 0, storage_object: '/backstores/ramdisk/m' }],
              node_acls: [
                { node_wwn: RO, mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: true }] },
                { node_wwn: RW, mapped_luns: [{ index: 0, tpg_lun: 0 }] },
              ],
            },
          ],
        },
      ],
    }),
    { log: quiet },
  );
  try {
    const rw = await IscsiSession.connect(`iscsi://127.0.0.1:${port}/${IQN}/0`, { initiatorName: RW });
    await rw.write16(0n, Buffer.alloc(512, 0x42));
    const ro = await IscsiSession.connect(`iscsi://127.0.0.1:${port}/${IQN}/0`, { initiatorName: RO });
    expect((await ro.read16(0n, 1)).every((b) => b === 0x42)).toBe(true);
    await expect(ro.write16(0n, Buffer.alloc(512, 0x43))).rejects.toMatchObject({ senseKey: 0x7, asc: 0x27, ascq: 0x00 });
    expect((await rw.read16(0n, 1)).every((b) => b === 0x42)).toBe(true);
    await ro.close();
    await rw.close();
  } finally {
    await server.stop();
  }
});

test('SIGTERM: the target CLI stops accepting, finishes, flushes and exits 0', async () => {
  const dir = tempDir('sigterm');
  const port = await freePort();
  const file = path.join(dir, 'lun0.img');
  const bin = path.resolve(__dirname, '../../bin/xcopy-agent');
  const proc = spawn(bin, ['target', '--portal', `127.0.0.1:${port}`, '--iqn', IQN, '--lun', `file:${file}:8M`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, XCOPY_AGENT_LOG_LEVEL: 'silent' },
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  try {
    await waitUntil(
      () =>
        new Promise<boolean>((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => {
            s.destroy();
            resolve(true);
          });
          s.once('error', () => resolve(false));
        }),
      15_000,
      'the target to listen',
    );
    const data = crypto.randomBytes(1024 * 1024);
    const s = await IscsiSession.connect(`iscsi://127.0.0.1:${port}/${IQN}/0`);
    await s.write16(0n, data);
    await s.close();
    proc.kill('SIGTERM');
    expect(await exited).toBe(ExitStatus.OK);
    expect(fs.readFileSync(file).subarray(0, data.length).equals(data)).toBe(true);
    // Nothing listens any more.
    const refused = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(false);
      });
      c.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  } finally {
    proc.kill('SIGKILL');
    removeDir(dir);
  }
});

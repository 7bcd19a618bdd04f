/**
 * `backup` with every LUN on tgt and the project's target in front of them as the gateway (the
 * COW filter over `remote` stores) and as the bridge (its copy manager reaching tgt's LUNs): the
 * way a SAN's LUNs are backed up. Hosts write through the gateway. The oracle is tgt's backing
 * file of the source, copied while the gateway holds the writes; the secondary is checked in
 * tgt's backing file, independent of the code under test.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { backup } from '../../src/agent/backup';
import { integrate } from '../../src/agent/integrate';
import { IscsiSession } from '../../src/initiator/session';
import { ManagementClient } from '../../src/mgmt';
import { Tgt, freePort } from '../../src/peers/tgt';
import { quickConfig } from '../../src/target/config';
import { TargetServer } from '../../src/target/server';
import { onSnapshotHeld } from '../helpers/held';
import { xorshift } from '../helpers/rng';
import { removeDir, tempDir } from '../helpers/tmp';

const IQN = 'iqn.2026-12.io.xcopy-agent.test:gateway';
const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

let dir: string;
let tgt: Tgt;
let gateway: TargetServer;
let port: number;
let mgmt: ManagementClient;
const url = (lun: number) => `iscsi://127.0.0.1:${port}/${IQN}/${lun}`;

beforeAll(async () => {
  dir = tempDir('backup-gw');
  const source = path.join(dir, 'source.img');
  fs.writeFileSync(source, crypto.randomBytes(SIZE));
  tgt = await Tgt.start({ dir, luns: [{ size: SIZE, path: source }, { size: 24 * MiB }, { size: 20 * MiB }, { size: 44 * MiB }] });
  port = await freePort();
  gateway = await TargetServer.start(quickConfig({ portal: `127.0.0.1:${port}`, iqn: IQN, luns: [tgt.url(1), tgt.url(2), tgt.url(3), tgt.url(4)] }), {
    log: pino({ level: 'silent' }),
    stateDir: path.join(dir, 'state'),
    management: { listen: '127.0.0.1:0', tokenFile: path.join(dir, 'state', 'mgmt.token') },
  });
  mgmt = new ManagementClient({ url: gateway.management!.url, token: fs.readFileSync(path.join(dir, 'state', 'mgmt.token'), 'utf8').trim() });
});

afterAll(async () => {
  await gateway?.stop();
  await tgt?.stop();
  if (dir) removeDir(dir);
});

async function underWrites<T>(seed: number, run: () => Promise<T>): Promise<{ result: T; writes: number }> {
  const r = xorshift(seed).int;
  let stopped = false;
  let writes = 0;
  const host = await IscsiSession.connect(url(0));
  const loop = (async () => {
    while (!stopped) {
      const n = 1 + r(128);
      await host.write16(BigInt(r(SIZE / 512 - n)), crypto.randomBytes(n * 512));
      writes++;
    }
  })();
  try {
    return { result: await run(), writes };
  } finally {
    stopped = true;
    await loop;
    await host.close();
  }
}

test.each([
  ['overwrite', 3, 2601],
  ['append', 4, 2701],
] as const)('%s mode through the gateway onto tgt: the secondary on tgt is the image held at institution', async (mode, secondaryLun, seed) => {
  const reference = path.join(dir, `reference-${mode}.img`);
  const off = onSnapshotHeld(() => fs.promises.copyFile(tgt.lunPaths[0], reference));
  try {
    const { result, writes } = await underWrites(seed, () => backup({ source: url(0), obf: url(1), secondary: url(secondaryLun - 1), mgmt, mode, log: pino({ level: 'silent' }) }));
    expect(writes).toBeGreaterThan(0);
    expect(result).toMatchObject({ copy_path: 'xcopy', host_bytes: 0n, state: mode === 'overwrite' ? 'integrated' : 'log-appended' });
    if (mode === 'append') expect(await integrate({ secondary: url(secondaryLun - 1) })).toMatchObject({ already_integrated: false });
  } finally {
    off();
  }
  const image = fs.readFileSync(tgt.lunPaths[secondaryLun - 1]).subarray(0, SIZE);
  expect(sha(image)).toBe(sha(fs.readFileSync(reference)));
  expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
});

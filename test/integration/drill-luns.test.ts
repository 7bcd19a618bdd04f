/**
 * The drill on real LUNs (LUN URLs, not files it owns): the project's target with its management
 * API serves them here; the drill's reference is the host's own sequenced writes.
 */
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { runLunDrill } from '../../src/agent/drill-luns';
import { ManagementClient } from '../../src/mgmt';
import { freePort } from '../../src/peers/tgt';
import * as secondary from '../../src/secondary';
import { quickConfig } from '../../src/target/config';
import { TargetServer } from '../../src/target/server';
import { removeDir, tempDir } from '../helpers/tmp';

const IQN = 'iqn.2026-12.io.xcopy-agent.test:drill-luns';
const MiB = 1024 * 1024;

test('both backups and integrate on LUN URLs pass; a second run refuses the LUNs that now hold data', async () => {
  const dir = tempDir('drill-luns');
  const port = await freePort();
  const obfBlocks = (12 * MiB) / 512;
  const secBytes = Number(secondary.requiredBlocks({ blockSize: 512, imageBlocks: BigInt((8 * MiB) / 512), mode: 'append', logBlocksMax: BigInt(obfBlocks) })) * 512;
  const server = await TargetServer.start(
    quickConfig({ portal: `127.0.0.1:${port}`, iqn: IQN, luns: [`file:${path.join(dir, 's.img')}:8M`, `file:${path.join(dir, 'o.img')}:12M`, `file:${path.join(dir, 'd.img')}:${secBytes}`] }),
    { log: pino({ level: 'silent' }), stateDir: path.join(dir, 'state'), management: { listen: '127.0.0.1:0', tokenFile: path.join(dir, 'state', 'mgmt.token') } },
  );
  const url = (lun: number) => `iscsi://127.0.0.1:${port}/${IQN}/${lun}`;
  const mgmt = new ManagementClient({ url: server.management!.url, token: fs.readFileSync(path.join(dir, 'state', 'mgmt.token'), 'utf8').trim() });
  try {
    const steps: string[] = [];
    const r = await runLunDrill({ source: url(0), obf: url(1), secondary: url(2), mgmt, onStep: (s) => steps.push(s) });
    expect(r.ok).toBe(true);
    expect(steps).toEqual(['write-source', 'backup', 'verify', 'backup', 'integrate', 'verify']);
    expect(r.backups.map((b) => b.mode)).toEqual(['overwrite', 'append']);
    for (const b of r.backups) {
      expect(b.blocks_checked).toBe((8 * MiB) / 512);
      expect(b.host_writes).toBeGreaterThan(0);
    }
    await expect(runLunDrill({ source: url(0), obf: url(1), secondary: url(2), mgmt })).rejects.toMatchObject({
      code: 'ERR_SECONDARY_IN_USE',
      message: expect.stringMatching(/the source .* holds data, and the drill overwrites it: give a blank LUN, or --yes/),
    });
    expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
  } finally {
    await server.stop();
    removeDir(dir);
  }
});

/**
 * The drill on real LUNs (LUN URLs, not files it owns): the project's target with its management
 * API serves them here; the drill's reference is the host's own sequenced writes, for the copies
 * and for the source restored from them. Its operations are recorded in a catalog of the test's
 * own, read back here independently of the drill's own listing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { runLunDrill } from '../../src/agent/drill-luns';
import { SqliteCatalog } from '../../src/catalog';
import { drillCatalog } from '../../src/cli/commands/drill';
import { Output } from '../../src/cli/output';
import { ManagementClient } from '../../src/mgmt';
import { freePort } from '../../src/peers/tgt';
import * as secondary from '../../src/secondary';
import { quickConfig } from '../../src/target/config';
import { TargetServer } from '../../src/target/server';
import { removeDir, tempDir } from '../helpers/tmp';

const IQN = 'iqn.2026-12.io.xcopy-agent.test:drill-luns';
const MiB = 1024 * 1024;

/** An Output whose NDJSON records are kept (the drill's catalog warnings). */
function recordingOutput(): { out: Output; records: () => Array<Record<string, unknown>> } {
  const sink = new PassThrough();
  let text = '';
  sink.on('data', (c: Buffer) => (text += c.toString()));
  return { out: new Output(true, sink, sink), records: () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

test('both backups, verify, the source lost and restored (750, then 700), integrate on LUN URLs pass, recorded in the catalog; a second run refuses the LUNs that now hold data', async () => {
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
    const catalogFile = path.join(dir, 'catalog.db');
    const good = recordingOutput();
    const r = await runLunDrill({ source: url(0), obf: url(1), secondary: url(2), mgmt, onStep: (s) => steps.push(s), catalog: drillCatalog({ catalog: catalogFile }, good.out) });
    expect(good.records()).toEqual([]);
    expect(r.ok).toBe(true);
    expect(steps).toEqual([
      'write-source',
      ...['institute', 'backup', 'verify', 'verify-copy', 'source-lost', 'restore', 'restore-check'],
      ...['institute', 'backup', 'verify-copy', 'source-lost', 'restore', 'integrate', 'verify', 'verify-copy', 'restore-check'],
      'copies',
    ]);
    expect(r.backups.map((b) => b.mode)).toEqual(['overwrite', 'append']);
    for (const b of r.backups) {
      expect(b.blocks_checked).toBe((8 * MiB) / 512);
      expect(b.host_writes).toBeGreaterThan(0);
      expect(b.extent_hashes_match).toBe(true);
    }
    // Each restore: every block of the restored source by the stamp rule, and equal to its copy.
    expect(r.restores.map((x) => [x.method, x.backup_id])).toEqual([
      ['750', r.backups[0].backup_id],
      ['700', r.backups[1].backup_id],
    ]);
    for (const [i, x] of r.restores.entries()) {
      expect(x.blocks_checked).toBe((8 * MiB) / 512);
      expect(x.sha256).toBe(r.backups[i].sha256);
    }
    expect(r.restores[1].log_records).toBeGreaterThan(0);
    // The two copies the drill made, as the catalog has them, with what was done to each.
    expect(r.copies).toEqual([
      { id: r.backups[0].backup_id, label: 'drill overwrite', mode: 'overwrite', state: 'replaced', verification: 'ok', secondary_url: url(2) },
      { id: r.backups[1].backup_id, label: 'drill append', mode: 'append', state: 'integrated', verification: 'ok', secondary_url: url(2) },
    ]);
    const catalog = SqliteCatalog.open(catalogFile);
    try {
      const kinds = async (id: string) => (await catalog.getCopy(id))!.operations.map((o) => `${o.kind} ${o.state}`);
      expect(await kinds(r.backups[0].backup_id)).toEqual(['backup ok', 'verify ok', 'restore ok']);
      expect(await kinds(r.backups[1].backup_id)).toEqual(['backup ok', 'verify ok', 'restore ok', 'integrate ok', 'verify ok']);
    } finally {
      await catalog.close();
    }
    // A catalog that cannot be opened: one warning, and the drill goes on (here to its refusal).
    const bad = recordingOutput();
    const unusable = path.join(dir, 'not-a-folder', 'catalog.db');
    fs.writeFileSync(path.join(dir, 'not-a-folder'), '');
    await expect(runLunDrill({ source: url(0), obf: url(1), secondary: url(2), mgmt, catalog: drillCatalog({ catalog: unusable }, bad.out) })).rejects.toMatchObject({
      code: 'ERR_SECONDARY_IN_USE',
      message: expect.stringMatching(/the source .* holds data, and the drill overwrites it: give a blank LUN, or --yes/),
    });
    expect(bad.records()).toEqual([{ type: 'progress', event: 'warning', code: 'ERR_CATALOG', message: expect.stringMatching(/this drill is not recorded in it$/) }]);
    expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
  } finally {
    await server.stop();
    removeDir(dir);
  }
});

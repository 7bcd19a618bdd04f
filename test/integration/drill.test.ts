/** The drill end to end on small LUNs (make drill runs the same code at its default size). */
import path from 'node:path';
import { runDrill } from '../../src/agent/drill';
import { SqliteCatalog } from '../../src/catalog';
import { drillCatalog } from '../../src/cli/commands/drill';
import { Output } from '../../src/cli/output';
import { removeDir, tempDir } from '../helpers/tmp';

test('drill: snapshot under writes, EXTENDED COPY, OBF applied; the secondary equals the held image by hash and stamps; the source lost and restored (700, 750); both copies listed from the catalog', async () => {
  const dir = tempDir('drill');
  const steps: string[] = [];
  try {
    const catalogFile = path.join(dir, 'catalog.db');
    const r = await runDrill({ workDir: dir, sizeBytes: 16 * 1024 * 1024, onStep: (s) => steps.push(s), catalog: drillCatalog({ catalog: catalogFile }, new Output(true)) });
    expect(steps).toEqual([
      'start-target',
      'inquire',
      'write-source',
      'institute',
      'backup',
      'verify',
      'institute',
      'backup',
      'verify-copy',
      'verify-copy',
      'source-lost',
      'restore',
      'integrate',
      'verify',
      'source-lost',
      'restore',
      'restore-check',
      'institute',
      'backup',
      'restore-files',
      'restore-in-place',
      'copies',
    ]);
    expect(r.ok).toBe(true);
    expect(r.secondary_sha256).toBe(r.reference_sha256);
    expect(r.stamped_blocks_checked).toBe((16 * 1024 * 1024) / 512);
    expect(r.host_writes_during_backup).toBeGreaterThan(0);
    expect(r.obf_records).toBeGreaterThan(0);
    expect(r.source.block_size).toBe(512);
    expect(r.secondary.three_pc).toBe(true);
    // the second backup: append mode with the marker, integrated
    expect(r.append.secondary_sha256).toBe(r.append.reference_sha256);
    expect(r.append.stamped_blocks_checked).toBe((16 * 1024 * 1024) / 512);
    expect(r.append.integrated_records).toBeGreaterThan(0);
    // the source lost and restored: 700 from the append copy, 750 from the overwrite copy
    expect(r.restores.from_append).toMatchObject({ method: '700', sha256: r.append.reference_sha256 });
    expect(r.restores.from_append.log_records).toBeGreaterThan(0);
    expect(r.restores.from_overwrite).toMatchObject({ method: '750', sha256: r.reference_sha256 });
    // the copies it made, from the catalog, with the operations recorded against each
    expect(r.copies.map((c) => [c.label, c.mode, c.state, c.verification])).toEqual([
      ['drill overwrite', 'overwrite', 'integrated', 'ok'],
      ['drill append', 'append', 'integrated', 'ok'],
      ['drill files', 'overwrite', 'integrated', undefined],
    ]);
    // single files: the ext4 source backed up with --toc under writes, restored to a directory and in place
    expect(r.files).toMatchObject({ ok: true, to_dir: { matching: r.files.to_dir.paths }, in_place: { matching: r.files.in_place.paths, untouched_elsewhere: true } });
    expect(r.files.to_dir.files).toBeGreaterThan(100);
    expect(r.files.in_place.matching).toBeGreaterThan(30);
    expect(r.files.host_writes_during_backup).toBeGreaterThan(100);
    const catalog = SqliteCatalog.open(catalogFile);
    try {
      const kinds = async (id: string) => (await catalog.getCopy(id))!.operations.map((o) => `${o.kind} ${o.state}`);
      expect(await kinds(r.copies[0].id)).toEqual(['backup ok', 'verify ok', 'restore ok']);
      expect(await kinds(r.copies[1].id)).toEqual(['backup ok', 'verify ok', 'restore ok', 'integrate ok']);
      expect(await kinds(r.copies[2].id)).toEqual(['backup ok', 'restore ok', 'restore ok']);
      expect((await catalog.getToc(r.copies[2].id))?.length).toBeGreaterThan(1000);
    } finally {
      await catalog.close();
    }
  } finally {
    removeDir(dir);
  }
});

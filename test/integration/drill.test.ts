/** The drill end to end on small LUNs (make drill runs the same code at its default size). */
import { runDrill } from '../../src/agent/drill';
import { removeDir, tempDir } from '../helpers/tmp';

test('drill: source copied to the secondary and verified by hash and stamps', async () => {
  const dir = tempDir('drill');
  const steps: string[] = [];
  try {
    const r = await runDrill({ workDir: dir, sizeBytes: 8 * 1024 * 1024, onStep: (s) => steps.push(s) });
    expect(steps).toEqual(['start-target', 'inquire', 'write-source', 'copy', 'verify']);
    expect(r.ok).toBe(true);
    expect(r.secondary_sha256).toBe(r.source_sha256);
    expect(r.stamped_blocks_checked).toBe((8 * 1024 * 1024) / 512);
    expect(r.source.block_size).toBe(512);
  } finally {
    removeDir(dir);
  }
});

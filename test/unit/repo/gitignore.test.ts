/**
 * Folders named like build output (src/target/, bin/) stay visible to contributors whose global
 * git ignore rules hide `target` and `bin` (.gitignore un-ignores them).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { removeDir, tempDir } from '../../helpers/tmp';

const ROOT = path.resolve(__dirname, '../../..');

function ignored(excludesFile: string, paths: string[]): string[] {
  const r = spawnSync('git', ['-c', `core.excludesFile=${excludesFile}`, 'check-ignore', '--', ...paths], { cwd: ROOT, encoding: 'utf8' });
  expect([0, 1]).toContain(r.status); // 0: some ignored, 1: none; 128 would be an error
  return r.stdout.split('\n').filter((l) => l !== '');
}

test('a global rule ignoring target/ and bin/ hides no file of ours; dist/ stays ignored', () => {
  const dir = tempDir('gitignore');
  try {
    const rules = path.join(dir, 'global-ignore');
    fs.writeFileSync(rules, 'target\nbin\ntarget/\nbin/\n');
    const ours = ['src/target/server.ts', 'src/target/new-module.ts', 'src/target/scsi/commands/new-command.ts', 'bin/xcopy-agent', 'test/unit/target/new.test.ts'];
    expect(ignored(rules, ours)).toEqual([]);
    expect(ignored(rules, ['dist/src/index.js', 'node_modules/x/index.js'])).toEqual(['dist/src/index.js', 'node_modules/x/index.js']);
  } finally {
    removeDir(dir);
  }
});

/**
 * The catalog of copies end to end (docs/catalog.md): the CLI's backup, verify and restore on the
 * project's target, each recorded in a SQLite file given with --catalog (or XCOPY_AGENT_CATALOG),
 * then `copies list` and `copies show` read back what the secondary itself says (its metadata,
 * read here independently of the catalog); `catalog rebuild` finds the copy again on a fresh
 * file; a corrupt file fails `copies` with one line and exit 53 while a backup still completes
 * and warns that it was not recorded.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { readSecondaryAt } from '../../src/agent/secondary-lun';
import { copiesTargetSuite } from '../helpers/copies-target';
import { flipByte } from '../helpers/tmp';

const IQN = 'iqn.2026-12.io.xcopy-agent.test:catalog';
const SIZE = 8 * 1024 * 1024;

/** LUNs (test/helpers/copies-target.ts): 0 source, 1 OBF, 2 secondary (overwrite), 3 secondary (append), 4 another LUN. */
const t = copiesTargetSuite(IQN, 'catalog-cli');
const url = (lun: number) => t.url(lun);
const file = (name: string) => t.file(name);

const bin = path.resolve(__dirname, '../../bin/xcopy-agent');
const run = (args: string[], env: Record<string, string> = {}) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(bin, args, { timeout: 60_000, env: { ...process.env, XCOPY_AGENT_MGMT: t.server.management!.url, XCOPY_AGENT_TOKEN_FILE: t.tokenFile, ...env } }, (e, stdout, stderr) =>
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr }),
    ),
  );
const records = (stdout: string) => stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

test('backup, verify and restore are recorded; copies list and show reflect them as the secondary says', async () => {
  const catalog = file('catalog/one.db');
  const backup = await run(['backup', '--source', url(0), '--secondary', url(2), '--obf', url(1), '--label', 'nightly', '--catalog', catalog, '--json']);
  expect(backup.stderr).toBe('');
  expect(backup.code).toBe(0);
  const id = records(backup.stdout).at(-1)!.backup_id as string;
  // The catalog from the environment (XCOPY_AGENT_CATALOG) is the same as --catalog.
  expect((await run(['verify', '--secondary', url(2)], { XCOPY_AGENT_CATALOG: catalog })).code).toBe(0);
  expect((await run(['restore', '--secondary', url(2), '--to', url(4), '--yes', '--catalog', catalog])).code).toBe(0);

  const meta = await readSecondaryAt(url(2));
  expect(meta.backupId).toBe(id);
  const list = await run(['copies', 'list', '--json', '--catalog', catalog]);
  expect(list.code).toBe(0);
  const copies = records(list.stdout).filter((r) => r.type === 'copy');
  expect(copies).toHaveLength(1);
  expect(copies[0]).toMatchObject({
    id,
    label: 'nightly',
    mode: meta.mode,
    state: meta.state,
    bytes: SIZE,
    source_url: url(0),
    source_capacity_blocks: Number(meta.source.capacityBlocks),
    source_block_size: meta.source.blockSize,
    secondary_url: url(2),
    obf_url: url(1),
    verification: 'ok',
    created_at: meta.times.startedAt,
  });
  expect(copies[0].source_designator).toMatch(/^[a-z0-9]+\.[0-9a-f]+$/);

  const show = await run(['copies', 'show', id.slice(0, 8), '--json', '--catalog', catalog]);
  expect(show.code).toBe(0);
  const ops = records(show.stdout).filter((r) => r.type === 'operation');
  expect(ops.map((o) => [o.kind, o.state, o.copy_id])).toEqual([
    ['backup', 'ok', id],
    ['verify', 'ok', id],
    ['restore', 'ok', id],
  ]);
  expect(ops.every((o) => typeof o.finished_at === 'string' && (o.detail as { backup_id?: string }).backup_id === id)).toBe(true);

  const table = await run(['copies', 'list', '--catalog', catalog]);
  expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+CREATED\s+LABEL\s+MODE\s+STATE/);
  expect(table.stdout).toContain(id);
}, 60_000);

test('a verify that finds a bad copy is recorded as failed, on the operation and the copy', async () => {
  const catalog = file('catalog/one.db');
  const id = (await readSecondaryAt(url(2))).backupId;
  flipByte(file('sec.img'), 3 * 1024 * 1024 + 7);
  try {
    expect((await run(['verify', '--secondary', url(2), '--catalog', catalog])).code).toBe(14);
  } finally {
    flipByte(file('sec.img'), 3 * 1024 * 1024 + 7);
  }
  const shown = records((await run(['copies', 'show', id, '--json', '--catalog', catalog])).stdout);
  expect(shown.find((r) => r.type === 'copy')).toMatchObject({ id, verification: 'failed' });
  expect(shown.filter((r) => r.type === 'operation').at(-1)).toMatchObject({ kind: 'verify', state: 'failed', copy_id: id, detail: { code: 'ERR_VERIFY_MISMATCH' } });
}, 60_000);

test('catalog rebuild on a fresh file finds the copy on its secondary', async () => {
  const meta = await readSecondaryAt(url(2));
  const catalog = file('catalog/rebuilt.db');
  const rebuilt = await run(['catalog', 'rebuild', '--secondary', url(2), '--catalog', catalog]);
  expect(rebuilt.code).toBe(0);
  expect(rebuilt.stdout).toContain(meta.backupId);
  const copies = records((await run(['copies', 'list', '--json', '--catalog', catalog])).stdout).filter((r) => r.type === 'copy');
  expect(copies).toEqual([expect.objectContaining({ id: meta.backupId, state: meta.state, secondary_url: url(2), bytes: SIZE })]);
  // A LUN that holds no copy: one warning, exit 1, the others still recorded.
  const partial = await run(['catalog', 'rebuild', '--secondary', url(2), '--secondary', url(4), '--catalog', catalog]);
  expect(partial.code).toBe(1);
  expect(partial.stderr).toMatch(/1 of 2 secondaries could not be read/);
}, 60_000);

test('a corrupt catalog: copies list is one line and exit 53; a backup still completes and warns; rebuild recovers', async () => {
  const catalog = file('catalog/corrupt.db');
  fs.mkdirSync(path.dirname(catalog), { recursive: true });
  fs.writeFileSync(catalog, Buffer.alloc(4096, 'this is no SQLite file '));
  const list = await run(['copies', 'list', '--catalog', catalog]);
  expect(list.code).toBe(53);
  expect(list.stderr.trim().split('\n')).toHaveLength(1);
  expect(list.stderr).toMatch(/catalog .* is corrupt .*catalog rebuild/);

  const backup = await run(['backup', '--source', url(0), '--secondary', url(3), '--obf', url(1), '--mode', 'append', '--catalog', catalog]);
  expect(backup.code).toBe(0);
  expect(backup.stdout).toMatch(/^backup [0-9a-f-]+: log-appended/);
  expect(backup.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^xcopy-agent: warning: catalog .* is corrupt .*; this backup is not recorded in it$/)]);
  const appended = await readSecondaryAt(url(3));
  expect(appended.state).toBe('log-appended');

  const rebuilt = await run(['catalog', 'rebuild', '--secondary', url(2), '--secondary', url(3), '--catalog', catalog, '--json']);
  expect(rebuilt.code).toBe(0);
  const summary = records(rebuilt.stdout).at(-1)!;
  expect(summary.copies).toEqual([(await readSecondaryAt(url(2))).backupId, appended.backupId]);
  expect(fs.existsSync(String(summary.moved_aside))).toBe(true);
  const list2 = await run(['copies', 'list', '--json', '--catalog', catalog]);
  expect(list2.code).toBe(0);
  expect(records(list2.stdout).filter((r) => r.type === 'copy').map((r) => r.id).sort()).toEqual([(await readSecondaryAt(url(2))).backupId, appended.backupId].sort());
}, 60_000);

/**
 * The embedded catalog (docs/catalog.md) on real SQLite files in a temp dir: the schema and its
 * version, upserts that keep what they are not given, the list order, a copy with its
 * operations, and the faults — a file that is not a database, a database another connection
 * holds locked past the busy timeout, a newer schema — each an ERR_CATALOG with its fault.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { CATALOG_SCHEMA_VERSION, CatalogError, copyOfSecondary, defaultCatalogPath, designatorName, SqliteCatalog } from '../../../src/catalog';
import { exitStatusOf, ExitStatus } from '../../../src/errors';
import { removeDir, tempDir } from '../../helpers/tmp';

let dir: string;
let n = 0;
const fresh = () => path.join(dir, `c${++n}`, 'catalog.db');

beforeAll(() => {
  dir = tempDir('catalog');
});
afterAll(() => removeDir(dir));

const copy = (id: string, createdAt: string) => ({ id, createdAt, secondaryUrl: `iscsi://127.0.0.1/iqn.2026-12.t:x/${id}`, state: 'copying', mode: 'overwrite' });

test('a new file: its directory 0700, WAL, the tables and the current schema version', async () => {
  const file = fresh();
  const c = SqliteCatalog.open(file);
  await c.close();
  expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
  expect(fs.statSync(file).mode & 0o077).toBe(0);
  const db = new Database(file, { readonly: true });
  try {
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.prepare('SELECT version FROM schema_version').all()).toEqual([{ version: CATALOG_SCHEMA_VERSION }]);
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map((t) => t.name);
    expect(tables).toEqual(['copies', 'operations', 'schema_version', 'tocs']);
  } finally {
    db.close();
  }
  // Opened again: the same schema, not a second version row.
  await SqliteCatalog.open(file).close();
  const db2 = new Database(file, { readonly: true });
  expect(db2.prepare('SELECT count(*) AS n FROM schema_version').get()).toEqual({ n: 1 });
  db2.close();
});

test('upsert: a copy is created, then updated in the fields given, the others kept', async () => {
  const c = SqliteCatalog.open(fresh());
  try {
    await c.recordCopy({ ...copy('a1', '2026-12-01T00:00:00.000Z'), label: 'nightly', obfUrl: 'iscsi://h/iqn.2026-12.t:x/1' });
    await c.recordCopy({ id: 'a1', state: 'integrated', bytes: 8388608, sourceCapacityBlocks: 16384, sourceBlockSize: 512 });
    const got = await c.getCopy('a1');
    expect(got?.copy).toMatchObject({ id: 'a1', label: 'nightly', state: 'integrated', mode: 'overwrite', bytes: 8388608, obfUrl: 'iscsi://h/iqn.2026-12.t:x/1', sourceBlockSize: 512 });
    await expect(c.recordCopy({ id: 'new-without-secondary', state: 'copying' })).rejects.toMatchObject({ code: 'ERR_CATALOG' });
  } finally {
    await c.close();
  }
});

test('list: newest first; show: the copy by id or unique prefix, its operations oldest first', async () => {
  const c = SqliteCatalog.open(fresh());
  try {
    await c.recordCopy(copy('b-old', '2026-12-01T00:00:00.000Z'));
    await c.recordCopy(copy('c-new', '2026-12-03T00:00:00.000Z'));
    await c.recordCopy(copy('b-mid', '2026-12-02T00:00:00.000Z'));
    expect((await c.listCopies()).map((x) => x.id)).toEqual(['c-new', 'b-mid', 'b-old']);
    await c.recordOperation({ id: 'o2', kind: 'verify', copyId: 'b-mid', startedAt: '2026-12-04T00:00:00.000Z', state: 'running' });
    await c.recordOperation({ id: 'o1', kind: 'backup', copyId: 'b-mid', startedAt: '2026-12-02T00:00:00.000Z', state: 'running' });
    await c.recordOperation({ id: 'o2', finishedAt: '2026-12-04T00:01:00.000Z', state: 'failed', detail: { code: 'ERR_VERIFY_MISMATCH', message: 'x' } });
    await c.recordOperation({ id: 'o3', kind: 'restore', copyId: 'c-new', startedAt: '2026-12-05T00:00:00.000Z', state: 'ok' });
    const shown = await c.getCopy('b-m');
    expect(shown?.copy.id).toBe('b-mid');
    expect(shown?.operations).toEqual([
      { id: 'o1', kind: 'backup', copyId: 'b-mid', startedAt: '2026-12-02T00:00:00.000Z', state: 'running' },
      { id: 'o2', kind: 'verify', copyId: 'b-mid', startedAt: '2026-12-04T00:00:00.000Z', finishedAt: '2026-12-04T00:01:00.000Z', state: 'failed', detail: { code: 'ERR_VERIFY_MISMATCH', message: 'x' } },
    ]);
    expect(await c.getCopy('b-')).toBeUndefined(); // two copies begin so
    expect(await c.getCopy('zzz')).toBeUndefined();
    expect((await c.copyOnSecondary('iscsi://127.0.0.1/iqn.2026-12.t:x/c-new'))?.id).toBe('c-new');
    await expect(c.recordOperation({ id: 'o4', kind: 'copy' as never, startedAt: 'x', state: 'ok' })).rejects.toBeInstanceOf(CatalogError);
  } finally {
    await c.close();
  }
});

test('a file that is not a SQLite database: ERR_CATALOG (corrupt, exit 53), saying to rebuild', () => {
  const file = fresh();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.alloc(8192, 'not a database '));
  let err: unknown;
  try {
    SqliteCatalog.open(file);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(CatalogError);
  expect(err).toMatchObject({ code: 'ERR_CATALOG', fault: 'corrupt' });
  expect((err as Error).message).toContain('catalog rebuild');
  expect(exitStatusOf(err)).toBe(ExitStatus.CATALOG);
  expect(ExitStatus.CATALOG).toBe(53);
});

test('a database another connection holds locked: ERR_CATALOG (locked) after the busy timeout, not before', async () => {
  const file = fresh();
  await SqliteCatalog.open(file).close();
  const holder = new Database(file);
  holder.exec('BEGIN IMMEDIATE');
  try {
    const t0 = Date.now();
    expect(() => SqliteCatalog.open(file, { busyTimeoutMs: 300 })).toThrow(expect.objectContaining({ code: 'ERR_CATALOG', fault: 'locked' }));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  } finally {
    holder.exec('ROLLBACK');
    holder.close();
  }
  await SqliteCatalog.open(file, { busyTimeoutMs: 300 }).close(); // released: opens again
});

test('a catalog of a newer schema is refused (ERR_CATALOG, newer)', () => {
  const file = fresh();
  SqliteCatalog.open(file).close();
  const db = new Database(file);
  db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(CATALOG_SCHEMA_VERSION + 1);
  db.close();
  expect(() => SqliteCatalog.open(file)).toThrow(expect.objectContaining({ code: 'ERR_CATALOG', fault: 'newer' }));
});

test('the default path: root under /var/lib, others under XDG_STATE_HOME or ~/.local/state', () => {
  expect(defaultCatalogPath({}, 0)).toBe('/var/lib/xcopy-agent/catalog.db');
  expect(defaultCatalogPath({ XDG_STATE_HOME: '/srv/state' }, 1000)).toBe('/srv/state/xcopy-agent/catalog.db');
  expect(defaultCatalogPath({}, 1000)).toMatch(/\/\.local\/state\/xcopy-agent\/catalog\.db$/);
});

test("a secondary's record becomes its copy: NAA designator preferred, bytes of the image", () => {
  const designators = [
    { codeSet: 2, designatorType: 1, association: 0, designator: '4c494f' },
    { codeSet: 1, designatorType: 3, association: 0, designator: '6001405abcdef' },
  ];
  expect(designatorName(designators)).toBe('naa.6001405abcdef');
  const c = copyOfSecondary(
    {
      backupId: 'id1',
      state: 'integrated',
      mode: 'append',
      label: 'l',
      source: { designators, capacityBlocks: 16384n, blockSize: 512, url: 'iscsi://h/iqn.2026-12.t:x/0' },
      layout: { imageBlocks: 16384n, blockSize: 512 },
      times: { startedAt: 's', updatedAt: 'u', finishedAt: 'f' },
    } as never,
    'iscsi://h/iqn.2026-12.t:x/2',
  );
  expect(c).toEqual({ id: 'id1', label: 'l', createdAt: 's', updatedAt: 'u', finishedAt: 'f', sourceUrl: 'iscsi://h/iqn.2026-12.t:x/0', sourceDesignator: 'naa.6001405abcdef', sourceCapacityBlocks: 16384, sourceBlockSize: 512, secondaryUrl: 'iscsi://h/iqn.2026-12.t:x/2', mode: 'append', state: 'integrated', bytes: 8388608 });
});

test('a version 1 file is migrated to the current version in place: its rows kept, params, progress and tocs added', async () => {
  const file = fresh();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // A file as version 1 of this code made it (docs/catalog.md): the tables without params/progress.
  const v1 = new Database(file);
  v1.exec(`CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);
    CREATE TABLE copies (id TEXT PRIMARY KEY, label TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, finished_at TEXT,
      source_url TEXT, source_designator TEXT, source_capacity_blocks INTEGER, source_block_size INTEGER, secondary_url TEXT NOT NULL,
      obf_url TEXT, mode TEXT, state TEXT NOT NULL, bytes INTEGER, verification TEXT, verified_at TEXT);
    CREATE TABLE operations (id TEXT PRIMARY KEY, kind TEXT NOT NULL, copy_id TEXT, started_at TEXT NOT NULL, finished_at TEXT, state TEXT NOT NULL, detail TEXT);
    INSERT INTO copies (id, created_at, updated_at, secondary_url, state) VALUES ('old', '2026-11-01T00:00:00.000Z', '2026-11-01T00:00:00.000Z', 'iscsi://h/iqn.2026-12.t:x/2', 'integrated');
    INSERT INTO operations (id, kind, copy_id, started_at, state, detail) VALUES ('op-old', 'backup', 'old', '2026-11-01T00:00:00.000Z', 'ok', '{"x":1}');`);
  v1.close();
  const c = SqliteCatalog.open(file);
  try {
    expect(await c.getOperation('op-old')).toMatchObject({ id: 'op-old', kind: 'backup', state: 'ok', detail: { x: 1 } });
    await c.recordOperation({ id: 'op-new', kind: 'backup', copyId: 'old', startedAt: '2026-12-01T00:00:00.000Z', state: 'running', params: { source: 'iscsi://h/t/0', sourceRedacted: false }, progress: { copied: 10n } });
    expect(await c.getOperation('op-n')).toMatchObject({ params: { source: 'iscsi://h/t/0', sourceRedacted: false }, progress: { copied: '10' } });
    // A prefix that names two operations names none.
    expect(await c.getOperation('op-')).toBeUndefined();
    expect((await c.getCopy('old'))!.operations.map((o) => o.id)).toEqual(['op-old', 'op-new']);
    await c.recordCopy({ id: 'old', toc: { bytes: Buffer.from('toc'), files: 3 } });
    expect(await c.getToc('old')).toEqual(Buffer.from('toc'));
  } finally {
    await c.close();
  }
  const db = new Database(file, { readonly: true });
  expect(db.prepare('SELECT version FROM schema_version').all()).toEqual([{ version: CATALOG_SCHEMA_VERSION }]);
  expect(CATALOG_SCHEMA_VERSION).toBe(3);
  db.close();
});

test('a new copy on a secondary marks the copies recorded there before replaced, no other', async () => {
  const c = SqliteCatalog.open(fresh());
  try {
    const on = (id: string, url: string, createdAt: string) => c.recordCopy({ ...copy(id, createdAt), secondaryUrl: url, state: 'integrated' });
    await on('old', 'iscsi://h/t/2', '2026-12-01T00:00:00.000Z');
    await on('elsewhere', 'iscsi://h/t/3', '2026-12-02T00:00:00.000Z');
    await on('new', 'iscsi://h/t/2', '2026-12-03T00:00:00.000Z');
    await c.replaceCopiesOn('iscsi://h/t/2', 'new');
    expect((await c.listCopies()).map((x) => [x.id, x.state])).toEqual([
      ['new', 'integrated'],
      ['elsewhere', 'integrated'],
      ['old', 'replaced'],
    ]);
  } finally {
    await c.close();
  }
});

test('a copy\'s table of contents: recorded with it, kept by updates without one, replaced by a newer one', async () => {
  const c = SqliteCatalog.open(fresh());
  try {
    expect(await c.getToc('a')).toBeUndefined();
    await c.recordCopy({ ...copy('a', '2026-12-01T00:00:00.000Z'), toc: { bytes: Buffer.from([1, 2, 3]), files: 7 } });
    expect(await c.getToc('a')).toEqual(Buffer.from([1, 2, 3]));
    await c.recordCopy({ id: 'a', state: 'integrated' }); // an update without a TOC keeps it
    expect(await c.getToc('a')).toEqual(Buffer.from([1, 2, 3]));
    await c.recordCopy({ id: 'a', toc: { bytes: Buffer.from([9]), files: 1 } });
    expect(await c.getToc('a')).toEqual(Buffer.from([9]));
    // A prefix is not an id here: the copy's own id (from getCopy) is asked for.
    expect(await c.getToc('')).toBeUndefined();
  } finally {
    await c.close();
  }
});

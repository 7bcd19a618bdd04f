/**
 * The embedded catalog: one SQLite file through better-sqlite3 (docs/catalog.md). WAL, so that
 * readers (`copies list`) never wait for a writer; a busy timeout, so that two agents writing at
 * once wait for each other instead of failing; a schema version table, so that a newer agent can
 * migrate a file and an older one refuses a file it does not understand. Every failure to open or
 * write is a CatalogError (ERR_CATALOG) saying what is wrong and what to do.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  CatalogError,
  type Catalog,
  type CatalogFault,
  type CopyRecord,
  type CopyUpdate,
  type OperationRecord,
  type OperationUpdate,
} from './catalog';

/** The schema this code writes (table schema_version); docs/catalog.md lists each version. */
export const CATALOG_SCHEMA_VERSION = 3;
/** How long a writer waits for another one before ERR_CATALOG (milliseconds). */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

const SCHEMA_V1 = `
CREATE TABLE copies (
  id TEXT PRIMARY KEY,
  label TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  finished_at TEXT,
  source_url TEXT,
  source_designator TEXT,
  source_capacity_blocks INTEGER,
  source_block_size INTEGER,
  secondary_url TEXT NOT NULL,
  obf_url TEXT,
  mode TEXT,
  state TEXT NOT NULL,
  bytes INTEGER,
  verification TEXT CHECK (verification IN ('ok', 'failed')),
  verified_at TEXT
);
CREATE INDEX copies_created ON copies (created_at);
CREATE INDEX copies_secondary ON copies (secondary_url);
CREATE TABLE operations (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('backup', 'integrate', 'export', 'restore', 'verify')),
  copy_id TEXT,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  state TEXT NOT NULL CHECK (state IN ('running', 'ok', 'failed')),
  detail TEXT
);
CREATE INDEX operations_copy ON operations (copy_id, started_at);
`;

/** Version 2: what a resume needs — the options an operation ran with, and its resume units. */
const SCHEMA_V2 = `
ALTER TABLE operations ADD COLUMN params TEXT;
ALTER TABLE operations ADD COLUMN progress TEXT;
`;
/** Version 3: each copy's table of contents (603), as kept on its secondary (docs/toc-format.md). */
const SCHEMA_V3 = `
CREATE TABLE tocs (
  copy_id TEXT PRIMARY KEY REFERENCES copies (id) ON DELETE CASCADE,
  files INTEGER NOT NULL,
  toc BLOB NOT NULL
);
`;
/** The migrations, in order: MIGRATIONS[v - 1] makes version v from version v - 1. */
const MIGRATIONS = [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3];

/** CopyRecord field → column, in the order of the table. */
const COPY_COLUMNS: Array<[keyof CopyRecord, string]> = [
  ['id', 'id'],
  ['label', 'label'],
  ['createdAt', 'created_at'],
  ['updatedAt', 'updated_at'],
  ['finishedAt', 'finished_at'],
  ['sourceUrl', 'source_url'],
  ['sourceDesignator', 'source_designator'],
  ['sourceCapacityBlocks', 'source_capacity_blocks'],
  ['sourceBlockSize', 'source_block_size'],
  ['secondaryUrl', 'secondary_url'],
  ['obfUrl', 'obf_url'],
  ['mode', 'mode'],
  ['state', 'state'],
  ['bytes', 'bytes'],
  ['verification', 'verification'],
  ['verifiedAt', 'verified_at'],
];
const OPERATION_COLUMNS: Array<[keyof OperationRecord, string]> = [
  ['id', 'id'],
  ['kind', 'kind'],
  ['copyId', 'copy_id'],
  ['startedAt', 'started_at'],
  ['finishedAt', 'finished_at'],
  ['state', 'state'],
  ['detail', 'detail'],
  ['params', 'params'],
  ['progress', 'progress'],
];
/** The operation columns that hold JSON objects. */
const JSON_COLUMNS = ['detail', 'params', 'progress'] as const;
const toJson = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));

/** An operations row, its JSON columns parsed. */
function operationOf(row: Record<string, unknown>): OperationRecord {
  const op = fromRow<Record<string, unknown>>(row, OPERATION_COLUMNS as Array<[string, string]>);
  for (const k of JSON_COLUMNS) if (typeof op[k] === 'string') op[k] = JSON.parse(op[k]) as unknown;
  return op as unknown as OperationRecord;
}

function fromRow<T>(row: Record<string, unknown>, columns: Array<[keyof T, string]>): T {
  const out: Record<string, unknown> = {};
  for (const [field, column] of columns) if (row[column] !== null && row[column] !== undefined) out[field as string] = row[column];
  return out as T;
}

/** What a SQLite failure means for the administrator (SQLite result codes, sqlite.org/rescode.html). */
function faultOf(err: unknown): CatalogFault {
  const code = String((err as { code?: unknown })?.code ?? '');
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'locked';
  if (code.startsWith('SQLITE_NOTADB') || code.startsWith('SQLITE_CORRUPT')) return 'corrupt';
  return 'unwritable';
}

function catalogError(file: string, err: unknown): CatalogError {
  if (err instanceof CatalogError) return err;
  const fault = faultOf(err);
  const why = (err as Error)?.message ?? String(err);
  const advice = {
    locked: `another xcopy-agent holds it past the busy timeout: run the command again when it is done`,
    corrupt: `run 'xcopy-agent catalog rebuild --catalog ${file} --secondary URL...' to recreate it from the secondaries`,
    unwritable: `check the path and its permissions, or choose another with --catalog; 'xcopy-agent catalog rebuild' recreates it from the secondaries`,
    newer: '',
  }[fault];
  return new CatalogError(fault, `catalog ${file} ${fault === 'locked' ? 'is locked' : fault === 'corrupt' ? 'is corrupt' : 'cannot be opened or written'} (${why}): ${advice}`, { cause: err });
}

export interface SqliteCatalogOptions {
  busyTimeoutMs?: number;
}

export class SqliteCatalog implements Catalog {
  private constructor(
    readonly location: string,
    private readonly db: Database.Database,
  ) {}

  /**
   * Opens (creating it and its directory, 0700) the catalog file, and takes the write lock once
   * to create or check the schema: a file another writer holds past the busy timeout, a file
   * that is not a SQLite database, or one a newer agent made fail here, with ERR_CATALOG.
   */
  static open(file: string, o: SqliteCatalogOptions = {}): SqliteCatalog {
    let db: Database.Database | undefined;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      const fresh = !fs.existsSync(file);
      db = new Database(file, { timeout: o.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS });
      if (fresh) fs.chmodSync(file, 0o600);
      db.pragma('journal_mode = WAL');
      db.pragma('foreign_keys = ON');
      const conn = db;
      conn.transaction(() => {
        conn.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
        const row = conn.prepare('SELECT max(version) AS v FROM schema_version').get() as { v: number | null };
        if (row.v !== null && row.v > CATALOG_SCHEMA_VERSION) {
          throw new CatalogError('newer', `catalog ${file} has schema version ${row.v}, made by a newer xcopy-agent (this one knows version ${CATALOG_SCHEMA_VERSION}): upgrade, or choose another file with --catalog`);
        }
        // A new file gets every version in turn; an older one the versions it lacks.
        const from = row.v ?? 0;
        for (let v = from + 1; v <= CATALOG_SCHEMA_VERSION; v++) conn.exec(MIGRATIONS[v - 1]);
        if (from < CATALOG_SCHEMA_VERSION) {
          conn.exec('DELETE FROM schema_version');
          conn.prepare('INSERT INTO schema_version (version) VALUES (?)').run(CATALOG_SCHEMA_VERSION);
        }
      }).immediate();
      return new SqliteCatalog(file, db);
    } catch (err) {
      db?.close();
      throw catalogError(file, err);
    }
  }

  private run<T>(what: () => T): Promise<T> {
    try {
      return Promise.resolve(what());
    } catch (err) {
      return Promise.reject(catalogError(this.location, err));
    }
  }

  /**
   * INSERT of a new row, or UPDATE of the columns given (not null) of an existing one, in one
   * transaction; a new row must give every NOT NULL column (`required`).
   */
  private upsert(table: string, params: Record<string, unknown>, required: string[]): void {
    this.db
      .transaction(() => {
        const given = Object.keys(params).filter((k) => params[k] !== null && params[k] !== undefined);
        if (this.db.prepare(`SELECT 1 FROM ${table} WHERE id = ?`).get(params.id) !== undefined) {
          const sets = given.filter((k) => k !== 'id').map((k) => `${k} = @${k}`);
          if (sets.length) this.db.prepare(`UPDATE ${table} SET ${sets.join(', ')} WHERE id = @id`).run(Object.fromEntries(given.map((k) => [k, params[k]])));
          return;
        }
        const missing = required.filter((k) => !given.includes(k));
        if (missing.length) throw new Error(`${table} ${String(params.id)} is new: ${missing.join(', ')} needed`);
        this.db.prepare(`INSERT INTO ${table} (${given.join(', ')}) VALUES (${given.map((k) => `@${k}`).join(', ')})`).run(Object.fromEntries(given.map((k) => [k, params[k]])));
      })
      .immediate();
  }

  recordCopy(c: CopyUpdate): Promise<void> {
    return this.run(() => {
      const params: Record<string, unknown> = {};
      for (const [field, column] of COPY_COLUMNS) params[column] = c[field];
      const now = new Date().toISOString();
      params.updated_at ??= now;
      const exists = this.db.prepare('SELECT 1 FROM copies WHERE id = ?').get(c.id) !== undefined;
      if (!exists) params.created_at ??= now;
      this.upsert('copies', params, ['id', 'created_at', 'updated_at', 'secondary_url', 'state']);
      if (c.toc) this.db.prepare('INSERT OR REPLACE INTO tocs (copy_id, files, toc) VALUES (?, ?, ?)').run(c.id, c.toc.files, c.toc.bytes);
    });
  }

  getToc(copyId: string): Promise<Buffer | undefined> {
    return this.run(() => (this.db.prepare('SELECT toc FROM tocs WHERE copy_id = ?').get(copyId) as { toc: Buffer } | undefined)?.toc);
  }

  recordOperation(o: OperationUpdate): Promise<void> {
    return this.run(() => {
      const params: Record<string, unknown> = {};
      for (const [field, column] of OPERATION_COLUMNS) params[column] = o[field];
      for (const k of JSON_COLUMNS) if (o[k] !== undefined) params[k] = toJson(o[k]);
      this.upsert('operations', params, ['id', 'kind', 'started_at', 'state']);
    });
  }

  listCopies(): Promise<CopyRecord[]> {
    return this.run(() =>
      (this.db.prepare('SELECT * FROM copies ORDER BY created_at DESC, id').all() as Array<Record<string, unknown>>).map((r) => fromRow<CopyRecord>(r, COPY_COLUMNS)),
    );
  }

  getCopy(id: string): Promise<{ copy: CopyRecord; operations: OperationRecord[] } | undefined> {
    return this.run(() => {
      let row = this.db.prepare('SELECT * FROM copies WHERE id = ?').get(id) as Record<string, unknown> | undefined;
      if (!row) {
        const rows = this.db.prepare("SELECT * FROM copies WHERE substr(id, 1, length(?)) = ? LIMIT 2").all(id, id) as Array<Record<string, unknown>>;
        if (rows.length === 1) row = rows[0];
      }
      if (!row) return undefined;
      const copy = fromRow<CopyRecord>(row, COPY_COLUMNS);
      const operations = (this.db.prepare('SELECT * FROM operations WHERE copy_id = ? ORDER BY started_at, id').all(copy.id) as Array<Record<string, unknown>>).map(operationOf);
      return { copy, operations };
    });
  }

  getOperation(id: string): Promise<OperationRecord | undefined> {
    return this.run(() => {
      const rows = this.db.prepare('SELECT * FROM operations WHERE id = ? OR substr(id, 1, length(?)) = ? ORDER BY id = ? DESC LIMIT 2').all(id, id, id, id) as Array<Record<string, unknown>>;
      const row = rows.length === 1 || rows[0]?.id === id ? rows[0] : undefined;
      return row ? operationOf(row) : undefined;
    });
  }

  replaceCopiesOn(secondaryUrl: string, byId: string): Promise<void> {
    return this.run(() => {
      this.db.prepare("UPDATE copies SET state = 'replaced', updated_at = ? WHERE secondary_url = ? AND id <> ? AND state <> 'replaced'").run(new Date().toISOString(), secondaryUrl, byId);
    });
  }

  copyOnSecondary(secondaryUrl: string): Promise<CopyRecord | undefined> {
    return this.run(() => {
      const row = this.db.prepare('SELECT * FROM copies WHERE secondary_url = ? ORDER BY created_at DESC LIMIT 1').get(secondaryUrl) as Record<string, unknown> | undefined;
      return row ? fromRow<CopyRecord>(row, COPY_COLUMNS) : undefined;
    });
  }

  close(): Promise<void> {
    return this.run(() => {
      if (this.db.open) this.db.close();
    });
  }
}

/**
 * The catalog as commands use it (docs/catalog.md): the --catalog option (XCOPY_AGENT_CATALOG
 * through ./env.ts), and the Recorder that records each run of backup, integrate, export,
 * restore and verify. Those commands run without a catalog: one that cannot be opened or written
 * gets one warning line (what is wrong, what to do) and the command goes on; only `copies` and
 * `catalog rebuild` fail with ERR_CATALOG.
 */
import crypto from 'node:crypto';
import type { Argv } from 'yargs';
import { defaultCatalogPath, SqliteCatalog, type Catalog, type CopyRecord, type CopyUpdate, type OperationKind, type OperationRecord } from '../catalog';
import { AgentError, ArgumentError } from '../errors';
import { redactUrl } from '../initiator/url';
import type { Output } from './output';

export interface CatalogArgs {
  catalog?: string;
}

export function catalogOptions<T>(y: Argv<T>): Argv<T & CatalogArgs> {
  return y.option('catalog', {
    type: 'string',
    describe: `the catalog of copies, a SQLite file (default ${defaultCatalogPath()}; README "Catalog")`,
  }) as unknown as Argv<T & CatalogArgs>;
}

export function catalogPath(a: CatalogArgs): string {
  return a.catalog ?? defaultCatalogPath();
}

/** Opens the catalog, or fails with ERR_CATALOG (the `copies` and `catalog` commands). */
export function openCatalog(a: CatalogArgs): Catalog {
  return SqliteCatalog.open(catalogPath(a));
}

/** The copy the catalog records under `id` (`--copy ID`): its secondary, and the table of contents recorded for it. */
export async function copyOfCatalog(a: CatalogArgs, id: string): Promise<{ copy: CopyRecord; toc?: Buffer }> {
  const catalog = openCatalog(a);
  try {
    const found = await catalog.getCopy(id);
    if (!found) throw new ArgumentError(`the catalog ${catalog.location} has no copy ${id}: see \`xcopy-agent copies list\`, or give --secondary URL`);
    return { copy: found.copy, toc: await catalog.getToc(found.copy.id) };
  } finally {
    await catalog.close();
  }
}

/** The secondary the catalog records for a copy (`--copy ID`). */
export async function secondaryOfCopy(a: CatalogArgs, id: string): Promise<string> {
  return (await copyOfCatalog(a, id)).copy.secondaryUrl;
}

/** What an operation records, beside its summary or error. */
export interface Recording<T> {
  /** The copy the operation is about, when known before it runs (a backup's own id). */
  copyId?: string;
  /** Else the secondary it reads: its newest copy in the catalog. */
  secondary?: string;
  /** The copy as known before the run (a backup creates it). */
  before?: CopyUpdate;
  /** The copy's new fields after success (its backup_id gives the id by default). */
  after?: (r: T) => Promise<CopyUpdate | undefined> | CopyUpdate | undefined;
  /** The copy's new fields after failure. */
  failed?: (err: unknown, copyId: string) => CopyUpdate | undefined;
  /** The options the run was given (URLs redacted), recorded for `--resume`. */
  params?: Record<string, unknown>;
  /** The operation this run resumes: recorded as cut short, resumed by this one. */
  resumes?: OperationRecord;
  /**
   * After the run, ok or failed: the secondary (URL as recorded) this copy now lies on, if it
   * wrote there — the copies recorded there before are then marked `replaced`.
   */
  replacedOn?: () => Promise<string | undefined>;
}

/** What a run may record while it works. */
export interface OperationContext {
  /** This operation's id in the catalog. */
  id: string;
  /** Records the resume units done so far (a failure to write warns once and is otherwise ignored). */
  progress(p: Record<string, unknown>): Promise<void>;
}

/** A URL as the catalog keeps it, and whether it lost a secret on the way (a CHAP password). */
function recordedUrl(url: string): { url: string; redacted: boolean } {
  const r = redactUrl(url);
  return { url: r, redacted: r !== url };
}

/**
 * The options a run records for `--resume` (docs/catalog.md, `params`): its LUN URLs, redacted,
 * each with `<flag>Redacted: true` where a secret was cut, and its other options as given.
 */
export function runParams(urls: Record<string, string | undefined>, options: Record<string, unknown> = {}): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const [flag, u] of Object.entries(urls)) {
    if (u === undefined) continue;
    const r = recordedUrl(u);
    Object.assign(params, { [flag]: r.url, [`${flag}Redacted`]: r.redacted });
  }
  for (const [k, v] of Object.entries(options)) if (v !== undefined) params[k] = v;
  return params;
}

/** The options given now, the cut-short run's recorded ones (`params`) filling those left out. */
export function withRecorded<T extends object>(given: T, params: Record<string, unknown>, keys: readonly (keyof T & string)[]): T {
  const a = { ...given };
  for (const k of keys) if (a[k] === undefined && params[k] !== undefined) Object.assign(a, { [k]: params[k] });
  return a;
}

/**
 * What `--resume ID` continues: the catalog's operation of `kind` with this id, or the newest
 * one of the copy with this id. One line saying what to do when the catalog has neither.
 */
export async function findResumable(a: CatalogArgs, kind: OperationKind, id: string): Promise<{ operation: OperationRecord; copy?: CopyRecord }> {
  const catalog = openCatalog(a);
  try {
    let op = await catalog.getOperation(id);
    const found = op?.kind === kind ? undefined : await catalog.getCopy(id);
    if (found) op = [...found.operations].reverse().find((o) => o.kind === kind);
    if (!op || op.kind !== kind) {
      throw new ArgumentError(`--resume ${id}: the catalog ${catalog.location} has no ${kind} with that id (nor a copy with one): give the id \`xcopy-agent copies list\` or the ${kind}'s summary shows`);
    }
    if (op.state === 'ok') throw new AgentError('ERR_NOT_RESUMABLE', `--resume ${id}: that ${kind} (${op.id}) finished already (${op.finishedAt ?? 'ok'}); nothing to resume`);
    const copy = op.copyId ? (await catalog.getCopy(op.copyId))?.copy : undefined;
    return { operation: op, copy };
  } finally {
    await catalog.close();
  }
}

/**
 * A LUN URL for a resumed run: the one given now wins; else the one recorded in `params` under
 * `flag` (or `fallback`, e.g. the copy's), unless the catalog holds it without its secret (then
 * it must be given again).
 */
export function resumedUrl(given: string | undefined, params: Record<string, unknown>, flag: string, fallback?: string): string | undefined {
  if (given !== undefined) return given;
  const recorded = params[flag] ?? fallback;
  if (typeof recorded !== 'string') return undefined;
  if (params[`${flag}Redacted`] === true) throw new ArgumentError(`the catalog keeps --${flag} without its CHAP secret: give --${flag} URL again with --resume`);
  return recorded;
}

export class Recorder {
  private constructor(
    private catalog: Catalog | undefined,
    private readonly out: Output,
    private readonly command: string,
  ) {}

  /** Opens the catalog for a command that runs without one: a warning line when it cannot. */
  static open(a: CatalogArgs, out: Output, command: string): Recorder {
    const r = new Recorder(undefined, out, command);
    try {
      r.catalog = openCatalog(a);
    } catch (err) {
      r.warn(err);
    }
    return r;
  }

  private warn(err: unknown): void {
    const message = `${err instanceof AgentError ? err.message : `catalog: ${(err as Error)?.message ?? String(err)}`}; this ${this.command} is not recorded in it`;
    this.out.record('progress', { event: 'warning', code: 'ERR_CATALOG', message });
    if (!this.out.json) process.stderr.write(`xcopy-agent: warning: ${message}\n`);
  }

  /** Runs `f` against the catalog; a failure warns once and leaves the catalog out of the rest of the run. */
  private async use(f: (c: Catalog) => Promise<unknown>): Promise<void> {
    if (!this.catalog) return;
    try {
      await f(this.catalog);
    } catch (err) {
      const c = this.catalog;
      this.catalog = undefined;
      await c.close().catch(() => undefined);
      this.warn(err);
    }
  }

  private async replaceOlder<T>(c: Catalog, o: Recording<T>, copyId: string | undefined): Promise<void> {
    const on = copyId !== undefined && o.replacedOn ? await o.replacedOn().catch(() => undefined) : undefined;
    if (on !== undefined) await c.replaceCopiesOn(on, copyId!);
  }

  /** Runs the operation `work`, recording it (running, then ok or failed) and its copy; the catalog is closed after. */
  async operation<T extends { backup_id?: string }>(kind: OperationKind, o: Recording<T>, work: (c: OperationContext) => Promise<T>): Promise<T> {
    const id = crypto.randomUUID();
    let copyId = o.copyId ?? o.resumes?.copyId;
    await this.use(async (c) => {
      if (o.before) await c.recordCopy(o.before);
      if (copyId === undefined && o.secondary !== undefined) copyId = (await c.copyOnSecondary(o.secondary))?.id;
      await c.recordOperation({ id, kind, copyId, startedAt: new Date().toISOString(), state: 'running', params: { ...o.params, ...(o.resumes ? { resumes: o.resumes.id } : {}) }, progress: o.resumes?.progress });
      // The run cut short (its agent died, or it failed) is closed: this one continues it.
      if (o.resumes && o.resumes.state === 'running') {
        await c.recordOperation({ id: o.resumes.id, state: 'failed', finishedAt: new Date().toISOString(), detail: { code: 'ERR_INTERRUPTED', message: `cut short (the agent stopped); resumed by ${id}` } });
      }
    });
    const context: OperationContext = { id, progress: (p) => this.use((c) => c.recordOperation({ id, progress: p })) };
    try {
      const r = await work(context);
      copyId = r.backup_id ?? copyId;
      await this.use(async (c) => {
        await c.recordOperation({ id, copyId, finishedAt: new Date().toISOString(), state: 'ok', detail: { ...r } });
        const update = o.after ? await o.after(r) : undefined;
        if (update) await c.recordCopy({ ...update, updatedAt: new Date().toISOString() });
        await this.replaceOlder(c, o, copyId);
      });
      return r;
    } catch (err) {
      await this.use(async (c) => {
        const detail = { code: (err as { code?: unknown })?.code ?? 'ERR_INTERNAL', message: (err as Error)?.message ?? String(err) };
        await c.recordOperation({ id, copyId, finishedAt: new Date().toISOString(), state: 'failed', detail });
        const update = copyId !== undefined ? o.failed?.(err, copyId) : undefined;
        if (update && (await c.getCopy(update.id))) await c.recordCopy({ ...update, updatedAt: new Date().toISOString() });
        await this.replaceOlder(c, o, copyId);
      });
      throw err;
    } finally {
      await this.catalog?.close().catch(() => undefined);
    }
  }
}

/**
 * `metrics [--catalog PATH] [--textfile FILE]`: the last backup of each source, from the catalog
 * of copies (docs/catalog.md), in the Prometheus text format for node_exporter's textfile
 * collector (docs/metrics.md "The agent's backups"). To stdout, or to FILE atomically: a
 * temporary file in the same directory, then a rename, so the collector never reads half a file.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { Gauge, Registry } from 'prom-client';
import type { CopyRecord } from '../../catalog';
import { AgentError, ArgumentError } from '../../errors';
import { catalogOptions, catalogPath, openCatalog, type CatalogArgs } from '../catalog';
import { runCommand } from '../run';

export const command = 'metrics';
export const describe = "The last backup of each source from the catalog, as Prometheus metrics (node_exporter's textfile collector)";

interface Args extends CatalogArgs {
  json: boolean;
  textfile?: string;
}

/** A copy's states (docs/secondary-format.md "States", docs/catalog.md), each a series of the state gauge. */
const COPY_STATES = ['copying', 'image-complete', 'log-appended', 'integrated', 'failed', 'replaced'];
/** The states in which a copy is a backup that restores (docs/secondary-format.md "States"). */
const GOOD_STATES = new Set(['log-appended', 'integrated']);

export function builder(y: Argv): Argv<Args> {
  return catalogOptions(y)
    .option('textfile', { type: 'string', describe: "write here (atomically) instead of stdout, e.g. /var/lib/node_exporter/textfile_collector/xcopy_agent.prom" })
    .example('$0 metrics', 'print the metrics')
    .example('$0 metrics --textfile /var/lib/node_exporter/textfile_collector/xcopy_agent.prom', 'for node_exporter --collector.textfile.directory') as unknown as Argv<Args>;
}

/** The key a source is known by: its designator (naa.…), else its URL as recorded. */
function sourceOf(c: CopyRecord): string {
  return c.sourceDesignator ?? c.sourceUrl ?? 'unknown';
}

const seconds = (iso: string) => Date.parse(iso) / 1000;

/** The metrics of the newest copy of each source (`copies`: newest first, as listCopies gives them). */
export async function backupMetrics(copies: CopyRecord[]): Promise<{ text: string; sources: number }> {
  const latest = new Map<string, CopyRecord>();
  const lastGood = new Map<string, CopyRecord>();
  for (const c of copies) {
    const src = sourceOf(c);
    if (!latest.has(src)) latest.set(src, c);
    if (GOOD_STATES.has(c.state) && c.finishedAt && !lastGood.has(src)) lastGood.set(src, c);
  }
  const registry = new Registry();
  const gauge = <L extends string>(name: string, help: string, labelNames: L[]) => new Gauge<L | 'source'>({ name, help, labelNames: ['source', ...labelNames], registers: [registry] });
  const info = gauge('xcopy_agent_backup_last_info', 'The newest copy of a source in the catalog (always 1; the labels say which)', ['copy_id', 'source_url', 'secondary', 'mode', 'label']);
  const state = gauge('xcopy_agent_backup_last_state', 'State of the newest copy of a source: 1 for its state, 0 for the others', ['state']);
  const success = gauge('xcopy_agent_backup_last_success', 'Whether the newest copy of a source is a backup that restores (log-appended or integrated): 1 or 0', []);
  const started = gauge('xcopy_agent_backup_last_start_timestamp_seconds', 'When the newest copy of a source was started, Unix time', []);
  const finished = gauge('xcopy_agent_backup_last_finish_timestamp_seconds', 'When the newest copy of a source ended (integrated, log-appended or failed), Unix time', []);
  const bytes = gauge('xcopy_agent_backup_last_bytes', "The newest copy's image size (the source's capacity), bytes", []);
  const verification = gauge('xcopy_agent_backup_last_verification', 'The last verify of the newest copy: 1 for its result (ok, failed, or none: never verified), 0 for the others', ['result']);
  const verified = gauge('xcopy_agent_backup_last_verify_timestamp_seconds', 'When the newest copy was last verified, Unix time', []);
  const lastSuccess = gauge('xcopy_agent_backup_last_success_timestamp_seconds', 'When the newest copy of a source that restores (log-appended or integrated) ended, Unix time', []);
  const sources = [...latest.keys()].sort();
  for (const source of sources) {
    const c = latest.get(source)!;
    info.set({ source, copy_id: c.id, source_url: c.sourceUrl ?? '', secondary: c.secondaryUrl, mode: c.mode ?? '', label: c.label ?? '' }, 1);
    for (const s of COPY_STATES.includes(c.state) ? COPY_STATES : [...COPY_STATES, c.state]) state.set({ source, state: s }, Number(c.state === s));
    success.set({ source }, Number(GOOD_STATES.has(c.state)));
    started.set({ source }, seconds(c.createdAt));
    if (c.finishedAt) finished.set({ source }, seconds(c.finishedAt));
    if (c.bytes !== undefined) bytes.set({ source }, c.bytes);
    for (const r of ['ok', 'failed', 'none']) verification.set({ source, result: r }, Number((c.verification ?? 'none') === r));
    if (c.verifiedAt) verified.set({ source }, seconds(c.verifiedAt));
    const good = lastGood.get(source);
    if (good) lastSuccess.set({ source }, seconds(good.finishedAt!));
  }
  return { text: await registry.metrics(), sources: sources.length };
}

/** Writes `text` to `file` through a temporary file in its directory and a rename. */
function writeAtomically(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, text, { mode: 0o644 });
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new ArgumentError(`cannot write --textfile ${file}: ${(err as Error).message} (choose a writable directory)`);
  }
}

export function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  return runCommand(argv.json, 'metrics', async ({ out }) => {
    const where = catalogPath(argv);
    // Opening would create an empty catalog: a wrong path must not read as "no backups".
    if (!fs.existsSync(where)) throw new AgentError('ERR_CATALOG', `no catalog at ${where} (a backup creates it; name another with --catalog)`);
    if (argv.textfile !== undefined && !fs.existsSync(path.dirname(path.resolve(argv.textfile)))) {
      throw new ArgumentError(`--textfile ${argv.textfile}: its directory does not exist (create it, or choose node_exporter's --collector.textfile.directory)`);
    }
    const catalog = openCatalog(argv);
    let copies: CopyRecord[];
    try {
      copies = await catalog.listCopies();
    } finally {
      await catalog.close();
    }
    const { text, sources } = await backupMetrics(copies);
    if (argv.textfile !== undefined) {
      writeAtomically(argv.textfile, text);
      return { summary: { catalog: where, textfile: argv.textfile, sources }, line: `metrics: ${sources} source(s) written to ${argv.textfile}` };
    }
    return { summary: { catalog: where, sources }, line: text.replace(/\n$/, '') };
  });
}

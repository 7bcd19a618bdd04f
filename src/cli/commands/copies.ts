/** `copies list|show ID`: the copies in the catalog (docs/catalog.md), and one copy with its operations. */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { decodeTocHeader } from '../../toc/format';
import type { CopyRecord, OperationRecord } from '../../catalog';
import { ArgumentError } from '../../errors';
import { catalogOptions, catalogPath, openCatalog, type CatalogArgs } from '../catalog';
import { runCommand } from '../run';

export const command = 'copies <action> [id]';
export const describe = 'The copies in the catalog: list them, or show one with its operations (backup, integrate, export, restore, verify)';

interface Args extends CatalogArgs {
  json: boolean;
  action: 'list' | 'show';
  id?: string;
}

export function builder(y: Argv): Argv<Args> {
  return catalogOptions(y)
    .positional('action', { choices: ['list', 'show'] as const, describe: 'list: every copy, newest first; show: one copy and its operations' })
    .positional('id', { type: 'string', describe: 'show: the copy (its backup id, or the start of it)' })
    .example('$0 copies list', '')
    .example('$0 copies list --json', 'one NDJSON record per copy')
    .example('$0 copies show 9b2f', '') as unknown as Argv<Args>;
}

/** camelCase fields → the snake_case of --json records. */
function snake(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]));
}

const mib = (b?: number) => (b === undefined ? '-' : `${(b / 1048576).toFixed(1)} MiB`);

/** Columns padded to their widest cell. */
function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}

function copiesTable(copies: CopyRecord[]): string {
  const head = ['ID', 'CREATED', 'LABEL', 'MODE', 'STATE', 'SIZE', 'VERIFIED', 'SECONDARY'];
  const verified = (c: CopyRecord) => (c.verification ? `${c.verification} ${c.verifiedAt?.slice(0, 19) ?? ''}` : '-');
  return table([head, ...copies.map((c) => [c.id, c.createdAt.slice(0, 19), c.label ?? '-', c.mode ?? '-', c.state, mib(c.bytes), verified(c), c.secondaryUrl])]);
}

function operationsTable(ops: OperationRecord[]): string {
  const head = ['STARTED', 'KIND', 'STATE', 'FINISHED', 'ERROR'];
  return table([head, ...ops.map((o) => [o.startedAt.slice(0, 19), o.kind, o.state, o.finishedAt?.slice(0, 19) ?? '-', o.state === 'failed' ? String(o.detail?.message ?? '') : ''])]);
}

export function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  return runCommand(argv.json, `copies ${argv.action}`, async ({ out }) => {
    if (argv.action === 'show' && !argv.id) throw new ArgumentError("copies show needs the copy's id ('copies list' shows them)");
    const catalog = openCatalog(argv);
    try {
      if (argv.action === 'list') {
        const copies = await catalog.listCopies();
        for (const c of copies) out.record('copy', snake(c));
        return {
          summary: { catalog: catalog.location, copies: copies.length },
          line: copies.length ? copiesTable(copies) : `no copies in the catalog ${catalog.location} (a backup records one; 'catalog rebuild' finds them on secondaries)`,
        };
      }
      const found = await catalog.getCopy(argv.id!);
      if (!found) throw new ArgumentError(`no copy ${argv.id} (or more than one beginning so) in the catalog ${catalogPath(argv)}: 'copies list' shows them`);
      out.record('copy', snake(found.copy));
      for (const o of found.operations) out.record('operation', snake(o));
      const c = found.copy;
      const toc = await catalog.getToc(c.id);
      const tocFiles = toc ? tocEntries(toc) : undefined;
      const lines = [
        `copy ${c.id}${c.label ? ` (${c.label})` : ''}: ${c.mode ?? '?'} mode, ${c.state}, ${mib(c.bytes)}`,
        `  created ${c.createdAt}, updated ${c.updatedAt}${c.finishedAt ? `, finished ${c.finishedAt}` : ''}`,
        `  source ${c.sourceUrl ?? '-'}${c.sourceDesignator ? ` (${c.sourceDesignator})` : ''}${c.sourceCapacityBlocks !== undefined ? `, ${c.sourceCapacityBlocks} blocks of ${c.sourceBlockSize} bytes` : ''}`,
        `  secondary ${c.secondaryUrl}${c.obfUrl ? `, OBF ${c.obfUrl}` : ''}`,
        `  verified: ${c.verification ? `${c.verification} at ${c.verifiedAt}` : 'never'}`,
        `  table of contents: ${tocFiles !== undefined ? `${tocFiles} inodes (toc --copy ${c.id.slice(0, 8)}; restore --copy ${c.id.slice(0, 8)} --files PATH...)` : 'none recorded (backup --toc makes one)'}`,
        found.operations.length ? operationsTable(found.operations) : '  no operations recorded',
      ];
      return { summary: { catalog: catalog.location, id: c.id, operations: found.operations.length, toc_files: tocFiles ?? null }, line: lines.join('\n') };
    } finally {
      await catalog.close();
    }
  });
}

/** The inodes a recorded TOC lists (its header's count), or undefined when its header does not check out. */
function tocEntries(toc: Buffer): number | undefined {
  try {
    return decodeTocHeader(toc).entries;
  } catch {
    return undefined;
  }
}

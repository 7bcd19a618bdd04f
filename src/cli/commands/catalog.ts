/**
 * `catalog rebuild --secondary URL...`: the catalog from the secondaries themselves (docs/catalog.md):
 * each secondary's metadata (docs/secondary-format.md) gives its copy, created or updated. A
 * corrupt catalog file is moved aside first (kept as PATH.corrupt-TIME) and a new one made.
 */
import fs from 'node:fs';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { secondaryWithToc } from '../../agent/secondary-toc';
import { CatalogError, copyOfSecondary, type Catalog } from '../../catalog';
import { AgentError } from '../../errors';
import { redactUrl } from '../../initiator/url';
import { catalogOptions, catalogPath, openCatalog, type CatalogArgs } from '../catalog';
import { runCommand } from '../run';

export const command = 'catalog <action>';
export const describe = "Rebuild the catalog of copies from secondaries' metadata (a lost or corrupt catalog)";

interface Args extends CatalogArgs {
  json: boolean;
  action: 'rebuild';
  secondary: string[];
}

export function builder(y: Argv): Argv<Args> {
  return catalogOptions(y)
    .positional('action', { choices: ['rebuild'] as const, describe: 'rebuild: record the copy each --secondary holds' })
    .option('secondary', { type: 'string', array: true, demandOption: true, describe: 'a secondary LUN holding a copy (iscsi://...); repeatable' })
    .example('$0 catalog rebuild --secondary iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/2 --secondary iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/3', '') as unknown as Argv<Args>;
}

/** Opens the catalog; a corrupt file is moved aside and a new one made (the secondaries are the truth). */
function openForRebuild(a: CatalogArgs, moved: (to: string) => void): Catalog {
  try {
    return openCatalog(a);
  } catch (err) {
    if (!(err instanceof CatalogError && err.fault === 'corrupt')) throw err;
    const file = catalogPath(a);
    const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    fs.renameSync(file, aside);
    for (const ext of ['-wal', '-shm']) fs.rmSync(file + ext, { force: true });
    moved(aside);
    return openCatalog(a);
  }
}

export function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  return runCommand(argv.json, 'catalog rebuild', async ({ out }) => {
    let aside: string | undefined;
    const catalog = openForRebuild(argv, (to) => {
      aside = to;
      out.record('progress', { event: 'warning', message: `the corrupt catalog was moved to ${to}` });
      if (!argv.json) process.stderr.write(`xcopy-agent: warning: the corrupt catalog was moved to ${to}\n`);
    });
    const found: string[] = [];
    const failed: Array<{ secondary: string; error: unknown }> = [];
    try {
      for (const url of argv.secondary) {
        const name = redactUrl(url);
        try {
          const { record, toc } = await secondaryWithToc(url);
          const copy = copyOfSecondary(record, name);
          await catalog.recordCopy({ ...copy, toc });
          found.push(copy.id);
          out.record('progress', { secondary: name, copy_id: copy.id, state: copy.state });
        } catch (err) {
          if (err instanceof CatalogError) throw err;
          failed.push({ secondary: name, error: err });
          out.record('progress', { event: 'warning', secondary: name, message: (err as Error).message });
          if (!argv.json) process.stderr.write(`xcopy-agent: warning: ${name}: ${(err as Error).message}\n`);
        }
      }
    } finally {
      await catalog.close();
    }
    if (failed.length) {
      const first = failed[0].error;
      const code = first instanceof AgentError ? first.code : 'ERR_INTERNAL';
      throw new AgentError(code, `catalog rebuild: ${failed.length} of ${argv.secondary.length} secondaries could not be read (first, ${failed[0].secondary}: ${(first as Error).message}); ${found.length} copies recorded in ${catalog.location}`, { cause: first });
    }
    return {
      summary: { catalog: catalog.location, copies: found, moved_aside: aside },
      line: `catalog rebuild: ${found.length} ${found.length === 1 ? 'copy' : 'copies'} recorded in ${catalog.location}${found.length ? ` (${found.join(', ')})` : ''}`,
    };
  });
}

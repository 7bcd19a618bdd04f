/**
 * The command line: yargs command modules, one file per command in src/cli/commands/.
 * Every flag can also come from the environment as XCOPY_AGENT_<FLAG>, for the commands that
 * have that flag only (./env.ts); a flag a command does not have fails only on the command line.
 */
import fs from 'node:fs';
import path from 'node:path';
import yargs from 'yargs';
import { ArgumentError, ExitStatus } from '../errors';
import { createLogger, setLogger } from '../util/log';
import * as backup from './commands/backup';
import * as catalog from './commands/catalog';
import * as copies from './commands/copies';
import * as copy from './commands/copy';
import * as discover from './commands/discover';
import * as drill from './commands/drill';
import * as eraseObf from './commands/erase-obf';
import * as exportCommand from './commands/export';
import * as inquire from './commands/inquire';
import * as metrics from './commands/metrics';
import * as integrate from './commands/integrate';
import * as verify from './commands/verify';
import * as restore from './commands/restore';
import * as snapshot from './commands/snapshot';
import * as target from './commands/target';
import * as toc from './commands/toc';
import { withEnv } from './env';
import { installStatusSignal } from './progress';

/** The version of the package this code is part of (its package.json, found upwards from here). */
export function packageVersion(): string {
  for (let dir = __dirname, i = 0; i < 5; i++, dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'xcopy-agent' && pkg.version) return pkg.version;
    } catch {
      // not here
    }
  }
  return 'unknown';
}

export function buildCli(argv: string[]) {
  return yargs(argv)
    .scriptName('xcopy-agent')
    .usage('$0 <command> [options]\n\nConsistent point-in-time copies of iSCSI LUNs (COW + SCSI EXTENDED COPY).')
    .option('json', { type: 'boolean', default: false, describe: 'NDJSON records on stdout (type: progress|summary|error)' })
    .option('log-level', { type: 'string', default: 'warn', describe: 'pino log level on stderr (trace..fatal, silent)' })
    .middleware((args) => {
      setLogger(createLogger({ level: String(args['log-level']) }));
    })
    .command(withEnv(inquire))
    .command(withEnv(copy))
    .command(withEnv(discover))
    .command(withEnv(drill))
    .command(withEnv(target))
    .command(withEnv(snapshot))
    .command(withEnv(backup))
    .command(withEnv(integrate))
    .command(withEnv(verify))
    .command(withEnv(restore))
    .command(withEnv(eraseObf))
    .command(withEnv(exportCommand))
    .command(withEnv(copies))
    .command(withEnv(catalog))
    .command(withEnv(toc))
    .command(withEnv(metrics))
    .demandCommand(1, 'name a command (see --help)')
    .strict()
    .epilogue(
      'LUNs are named by libiscsi URLs: iscsi://[user[%password]@]host[:port]/<iqn>/<lun>\n' +
        'CHAP: LIBISCSI_CHAP_USERNAME/PASSWORD, LIBISCSI_CHAP_TARGET_USERNAME/PASSWORD.\n' +
        'Exit status: see README "Exit status".',
    )
    .fail((msg, err) => {
      if (err && !(err instanceof ArgumentError)) throw err;
      // One line, whatever yargs wrote (its "Invalid values:" message spans two).
      const text = (err ? err.message : msg).replace(/:?\s*\n\s*/g, ': ');
      process.stderr.write(`xcopy-agent: ${text} (see 'xcopy-agent --help')\n`);
      process.exit(ExitStatus.USAGE);
    })
    // `xcopy-agent completion >> ~/.bashrc` (or ~/.zshrc): yargs' own completion script.
    .completion('completion', 'print a bash/zsh completion script (append it to ~/.bashrc or ~/.zshrc)')
    .help()
    .version(packageVersion());
}

export async function main(argv: string[]): Promise<void> {
  // A command whose work is left waiting on nothing would let Node exit 0 with no result: say
  // so and fail instead (a backup must never end silently as if it had succeeded).
  let finished = false;
  const stranded = () => {
    if (finished) return;
    process.stderr.write('xcopy-agent: internal error (please report): the command stopped without finishing\n');
    process.exitCode = ExitStatus.INTERNAL;
  };
  process.once('beforeExit', stranded);
  // SIGUSR1: the status line of a long command (and never Node's inspector).
  installStatusSignal();
  try {
    await buildCli(argv).parseAsync();
  } finally {
    finished = true;
    process.off('beforeExit', stranded);
  }
}

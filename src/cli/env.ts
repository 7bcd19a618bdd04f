/**
 * Options from the environment, per command: `XCOPY_AGENT_<FLAG>` gives `--flag` to a command
 * that has that option and is ignored by every other command. A shell profile or a DR script sets
 * one environment for all the commands it runs (XCOPY_AGENT_MGMT, XCOPY_AGENT_TOKEN_FILE,
 * XCOPY_AGENT_JSON, ...), so a variable meant for one command must not fail the others — while a
 * mistyped flag on the command line still fails (yargs' strict mode).
 *
 * yargs' own `.env(prefix)` applies every variable with the prefix to every command, and strict
 * mode then rejects those the command does not have; so instead each command's builder ends by
 * handing yargs the variables it knows as a config object. yargs treats a config object as it
 * treats environment variables (typed like the option, below the command line, above defaults).
 */
import type { Argv, CommandModule } from 'yargs';
import { ArgumentError } from '../errors';

export const ENV_PREFIX = 'XCOPY_AGENT_';

/** yargs keeps the options it was given on the instance; its type declarations do not list this. */
interface OptionTable {
  key: Record<string, unknown>;
  alias: Record<string, string[]>;
  boolean: string[];
}

/** `TOKEN_FILE` → `token-file`. */
function flagOf(variable: string): string {
  return variable.slice(ENV_PREFIX.length).toLowerCase().replace(/_/g, '-');
}

/** The positional names in a yargs command string (`snapshot <action> [id]` → action, id). */
export function positionalsOf(command: string | readonly string[] | undefined): Set<string> {
  const text = Array.isArray(command) ? command.join(' ') : String(command ?? '');
  return new Set([...text.matchAll(/[<[]([^\]>.|]+)(?:\.\.)?[\]>]/g)].map((m) => m[1]));
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off', '']);

/**
 * The environment's values for the options `names` holds (not positionals, not --help), keyed by
 * flag. Booleans take true/false, 1/0, yes/no, on/off; anything else is a usage error naming the
 * variable.
 */
export function optionsFromEnv(env: NodeJS.ProcessEnv, names: ReadonlySet<string>, booleans: ReadonlySet<string>): Record<string, string | boolean> {
  const values: Record<string, string | boolean> = {};
  for (const [variable, value] of Object.entries(env)) {
    if (!variable.startsWith(ENV_PREFIX) || value === undefined) continue;
    const flag = flagOf(variable);
    if (!names.has(flag)) continue;
    if (booleans.has(flag)) {
      const v = value.trim().toLowerCase();
      if (!TRUE.has(v) && !FALSE.has(v)) throw new ArgumentError(`${variable}=${value}: --${flag} takes true or false (1/0, yes/no)`);
      values[flag] = TRUE.has(v);
    } else {
      values[flag] = value;
    }
  }
  return values;
}

const NOT_FROM_ENV = new Set(['help', 'version', '$0', '_']);

function applyEnv(y: Argv, positionals: ReadonlySet<string>): Argv {
  const table = (y as unknown as { getOptions(): OptionTable }).getOptions();
  const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const names = new Set<string>();
  const add = (k: string) => {
    if (!positionals.has(k) && !NOT_FROM_ENV.has(k)) names.add(kebab(k));
  };
  for (const k of Object.keys(table.key)) add(k);
  for (const [k, aliases] of Object.entries(table.alias)) if (names.has(kebab(k))) aliases.forEach(add);
  let values: Record<string, string | boolean>;
  try {
    values = optionsFromEnv(process.env, names, new Set(table.boolean.map(kebab)));
  } catch (err) {
    // Reported as a usage error, like a bad flag (a builder must not throw past yargs).
    return y.check(() => {
      throw err;
    });
  }
  return Object.keys(values).length > 0 ? y.config(values) : y;
}

/** The command module with a builder that ends by taking its options from the environment. */
export function withEnv<T, U>(mod: CommandModule<T, U>): CommandModule<T, U> {
  const positionals = positionalsOf(mod.command);
  const builder = mod.builder;
  return {
    ...mod,
    builder: (y: Argv<T>) => {
      const built = typeof builder === 'function' ? builder(y) : builder ? y.options(builder) : y;
      return applyEnv(built as Argv, positionals) as Argv<U>;
    },
  };
}

/**
 * The options that name a target's management API (`--mgmt`, `--token-file`), shared by every
 * command that calls it (snapshot, backup, ...), and the client they give.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Argv } from 'yargs';
import { ArgumentError } from '../errors';
import { ManagementClient } from '../mgmt';

export const DEFAULT_MGMT_URL = 'http://127.0.0.1:3261';
export const DEFAULT_TOKEN_FILE = '/var/lib/xcopy-agent/mgmt.token';

export interface ManagementArgs {
  mgmt?: string;
  tokenFile?: string;
}

export function managementOptions<T>(y: Argv<T>): Argv<T & ManagementArgs> {
  return y
    // No yargs defaults: a command resumed from the catalog takes the recorded ones unless given.
    .option('mgmt', { type: 'string', describe: `the target management API (http://HOST:PORT or unix:/path) [default: ${DEFAULT_MGMT_URL}]` })
    .option('token-file', { type: 'string', describe: `bearer token file of the target [default: ${DEFAULT_TOKEN_FILE}]` }) as unknown as Argv<T & ManagementArgs>;
}

function readToken(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ArgumentError(`cannot read the management token ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): give --token-file, or run as a user that can read it`);
  }
  if (text === '') throw new ArgumentError(`the management token file ${file} is empty`);
  return text;
}

/** The client for `--mgmt` with the token of `--token-file`. */
export function managementClient(a: ManagementArgs): ManagementClient {
  return new ManagementClient({ url: a.mgmt ?? DEFAULT_MGMT_URL, token: readToken(path.resolve(a.tokenFile ?? DEFAULT_TOKEN_FILE)) });
}

/** `--cow-timeout-ms` as institute takes it (cow_timeout_ms: 1 to 120000), refused under the flag's own name. */
export function cowTimeoutMs(ms: number | undefined): number | undefined {
  if (ms !== undefined && !(Number.isInteger(ms) && ms >= 1 && ms <= 120_000)) {
    throw new ArgumentError(`--cow-timeout-ms ${ms} must be a whole number of milliseconds from 1 to 120000`);
  }
  return ms;
}

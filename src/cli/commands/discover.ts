/** `discover PORTAL_URL`: the targets a portal offers (iSCSI SendTargets). */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { IscsiSession } from '../../initiator/session';
import { Output } from '../output';

export const command = 'discover <portal>';
export const describe = 'List the targets and portals a portal offers (SendTargets discovery)';

interface Args {
  portal: string;
  json: boolean;
  timeout: number;
}

export function builder(y: Argv): Argv<Args> {
  return y
    .positional('portal', { type: 'string', demandOption: true, describe: 'iscsi://host[:port]' })
    .option('timeout', { type: 'number', default: 10, describe: 'seconds allowed for connect and login' })
    .example('$0 discover iscsi://127.0.0.1:3260', '') as unknown as Argv<Args>;
}

export async function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  const out = new Output(argv.json);
  try {
    const targets = await IscsiSession.discover(argv.portal, { connectTimeoutMs: Math.max(1, argv.timeout) * 1000 });
    if (out.json) out.record('summary', { command: 'discover', targets });
    else if (targets.length === 0) out.line('(no targets)');
    else for (const t of targets) out.line(`${t.name}  ${t.portals.join(' ')}`);
  } catch (err) {
    process.exitCode = out.error(err);
  }
}

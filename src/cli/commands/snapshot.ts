/**
 * `snapshot`: drive the target's snapshot sessions through its management API (the same
 * JSON-RPC methods the agent uses; see README "Snapshots in the target"). One subcommand per
 * method: luns, institute, status, list, mark, terminate, view-add, view-remove, forget.
 */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { ArgumentError } from '../../errors';
import { DEFAULT_CHUNK_BYTES } from '../../obf/format';
import { managementClient, managementOptions } from '../management';
import { Output } from '../output';

export const command = 'snapshot <action> [id]';
export const describe = "Take and manage snapshots through a target's management API (institute, status, terminate, views)";

const ACTIONS = ['luns', 'institute', 'status', 'list', 'mark', 'terminate', 'view-add', 'view-remove', 'forget'] as const;
type Action = (typeof ACTIONS)[number];

interface Args {
  json: boolean;
  action: Action;
  id?: string;
  mgmt: string;
  tokenFile: string;
  source?: string;
  obf?: string;
  chunk?: number;
  policy?: string;
  cowTimeoutMs?: number;
  drainTimeoutMs?: number;
  overwriteObf?: boolean;
  lun?: number;
  target?: string;
}

export function builder(y: Argv): Argv<Args> {
  return managementOptions(y)
    .positional('action', { choices: ACTIONS, describe: 'what to do' })
    .positional('id', { type: 'string', describe: 'the snapshot id (status, mark, terminate, view-add, view-remove, forget)' })
    .option('source', { type: 'string', describe: 'institute: the LUN to snapshot, IQN/LUN' })
    .option('obf', { type: 'string', describe: 'institute: the OBF, IQN/LUN or file:PATH[:SIZE] | memory:SIZE | iscsi://URL' })
    .option('chunk', { type: 'number', describe: `institute: chunk size in bytes (default ${DEFAULT_CHUNK_BYTES})` })
    .option('policy', { type: 'string', choices: ['protect-application', 'protect-snapshot'], describe: 'institute: what to sacrifice when a chunk cannot be captured' })
    .option('cow-timeout-ms', { type: 'number', describe: 'institute: longest a capture may take (default 5000)' })
    .option('drain-timeout-ms', { type: 'number', describe: 'institute: longest writes may be held (default 2000)' })
    .option('overwrite-obf', { type: 'boolean', describe: 'institute: take an OBF that holds other data or another target\'s active snapshot (refused otherwise)' })
    .option('lun', { type: 'number', describe: 'view-add: LUN number for the view (default: first free); view-remove: the view LUN' })
    .option('target', { type: 'string', describe: 'view-add: target IQN for the view (default: the source\'s)' })
    .example('$0 snapshot institute --source iqn.2026-11.io.example:t1/0 --obf iqn.2026-11.io.example:t1/1', '')
    .example('$0 snapshot status 6f0c9d7e-…', '')
    .example('$0 snapshot view-add 6f0c9d7e-… && $0 snapshot terminate 6f0c9d7e-…', '') as unknown as Argv<Args>;
}

function needId(a: Args): string {
  if (!a.id) throw new ArgumentError(`snapshot ${a.action} needs the snapshot id (snapshot list shows them)`);
  return a.id;
}

/** One line per result, for people. */
function describeStatus(st: Record<string, unknown>): string {
  const parts = [`snapshot ${String(st.id)} ${String(st.state)}`];
  if (st.resuming) return `${parts[0]}, resuming after a restart (its source refuses writes until then)`;
  if (st.unresumable !== undefined) return `${parts[0]}, could not be resumed after the restart: ${String(st.unresumable)}`;
  if (st.reason) parts.push(`reason ${String(st.reason)}`);
  parts.push(`${String(st.records)} records, ${String(st.bytes)} bytes, OBF ${((Number(st.fill) || 0) * 100).toFixed(1)}% full`);
  if (st.institute_pause_ms !== undefined) parts.push(`pause ${String(st.institute_pause_ms)} ms`);
  return parts.join(', ');
}

export async function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  const out = new Output(argv.json);
  try {
    const client = managementClient(argv);
    let result: unknown;
    let line: string;
    switch (argv.action) {
      case 'luns': {
        const luns = await client.call<Array<Record<string, unknown>>>('lun_list');
        result = luns;
        line = luns.map((l) => `${String(l.target)}/${String(l.lun)} ${String(l.kind)} ${String(l.blocks)}×${String(l.block_size)}${l.snapshot ? ` snapshot ${String(l.snapshot)}` : ''}${l.view_of ? ` view of ${String(l.view_of)}` : ''}`).join('\n');
        break;
      }
      case 'institute': {
        if (!argv.source || !argv.obf) throw new ArgumentError('snapshot institute needs --source IQN/LUN and --obf (IQN/LUN or file:PATH[:SIZE])');
        const st = await client.call<Record<string, unknown>>('snapshot_institute', {
          source: argv.source,
          obf: argv.obf,
          ...(argv.chunk !== undefined ? { chunk_bytes: argv.chunk } : {}),
          ...(argv.policy !== undefined ? { policy: argv.policy } : {}),
          ...(argv.cowTimeoutMs !== undefined ? { cow_timeout_ms: argv.cowTimeoutMs } : {}),
          ...(argv.drainTimeoutMs !== undefined ? { drain_timeout_ms: argv.drainTimeoutMs } : {}),
          ...(argv.overwriteObf ? { overwrite_obf: true } : {}),
        });
        result = st;
        line = describeStatus(st);
        break;
      }
      case 'status':
      case 'mark':
      case 'terminate': {
        const method = { status: 'snapshot_status', mark: 'snapshot_mark', terminate: 'snapshot_terminate' }[argv.action];
        const st = await client.call<Record<string, unknown>>(method, { id: needId(argv) });
        result = st;
        line = describeStatus(st);
        break;
      }
      case 'list': {
        const all = await client.call<Array<Record<string, unknown>>>('snapshot_list');
        result = all;
        line = all.length === 0 ? 'no snapshots' : all.map(describeStatus).join('\n');
        break;
      }
      case 'view-add': {
        const v = await client.call<Record<string, unknown>>('view_add', { id: needId(argv), ...(argv.target ? { target: argv.target } : {}), ...(argv.lun !== undefined ? { lun: argv.lun } : {}) });
        result = v;
        line = `view of snapshot ${String(v.snapshot)} at ${String(v.target)}/${String(v.lun)} (read-only, NAA ${String(v.naa)})`;
        break;
      }
      case 'view-remove': {
        if (argv.lun === undefined) throw new ArgumentError('snapshot view-remove needs --lun (the view LUN)');
        const v = await client.call<Record<string, unknown>>('view_remove', { id: needId(argv), lun: argv.lun });
        result = v;
        line = `view ${String(v.target)}/${String(v.lun)} removed`;
        break;
      }
      case 'forget': {
        result = await client.call('snapshot_forget', { id: needId(argv) });
        line = `snapshot ${needId(argv)} forgotten (its OBF is left as it is)`;
        break;
      }
    }
    out.record('summary', { command: `snapshot ${argv.action}`, result });
    out.line(line);
  } catch (err) {
    process.exitCode = out.error(err);
  }
}

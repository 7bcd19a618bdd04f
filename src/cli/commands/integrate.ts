/** `integrate`: lay a secondary's appended OBF log over its image (docs/method.md 610). */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { integrate } from '../../agent/integrate';
import { redactUrl } from '../../initiator/url';
import { catalogOptions, Recorder, type CatalogArgs } from '../catalog';
import { Output } from '../output';
import { Progress } from '../progress';

export const command = 'integrate';
export const describe = "Integrate an append-mode copy: lay the secondary's appended OBF log over its image (resumable)";

interface Args extends CatalogArgs {
  json: boolean;
  secondary: string;
  bridge?: string;
}

export function builder(y: Argv): Argv<Args> {
  return catalogOptions(y)
    .option('secondary', { type: 'string', demandOption: true, describe: 'the secondary LUN of an append-mode backup (iscsi://...)' })
    .option('bridge', { type: 'string', describe: "the copy manager to send EXTENDED COPY to (default: the secondary's)" })
    .example('$0 integrate --secondary iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/2', '') as unknown as Argv<Args>;
}

export async function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  // Not runCommand: integrate takes no AbortSignal, and Ctrl-C must still stop it (it resumes).
  const out = new Output(argv.json);
  const progress = new Progress(out);
  try {
    progress.start('integrate', '610 integrate: laying the appended log over the image');
    const r = await Recorder.open(argv, out, 'integrate').operation(
      'integrate',
      { secondary: redactUrl(argv.secondary), after: (x) => ({ id: x.backup_id, state: 'integrated' }) },
      () => integrate({ secondary: argv.secondary, bridge: argv.bridge, onProgress: (done, total) => progress.update(BigInt(done), BigInt(total), 'records') }),
    );
    progress.finishLine();
    out.record('summary', { command: 'integrate', ...r });
    out.line(
      r.already_integrated
        ? `integrate: backup ${r.backup_id} was already integrated (${r.records} records)`
        : `integrate: backup ${r.backup_id}: ${r.applied_now} of ${r.records} records laid over the image in ${r.seconds.toFixed(2)} s; the secondary is the image as of its snapshot`,
    );
  } catch (err) {
    progress.finishLine();
    process.exitCode = out.error(err);
  }
}

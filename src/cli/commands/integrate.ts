/** `integrate`: lay a secondary's appended OBF log over its image (docs/method.md 610). */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { integrate } from '../../agent/integrate';
import { redactUrl } from '../../initiator/url';
import { ArgumentError } from '../../errors';
import { catalogOptions, findResumable, Recorder, resumedUrl, runParams, type CatalogArgs } from '../catalog';
import { Output } from '../output';
import { Progress } from '../progress';

export const command = 'integrate';
export const describe = "Integrate an append-mode copy: lay the secondary's appended OBF log over its image (resumable)";

interface Args extends CatalogArgs {
  json: boolean;
  secondary?: string;
  bridge?: string;
  resume?: string;
}

export function builder(y: Argv): Argv<Args> {
  return catalogOptions(y)
    .option('secondary', { type: 'string', describe: 'the secondary LUN of an append-mode backup (iscsi://...) (required unless --resume)' })
    .option('bridge', { type: 'string', describe: "the copy manager to send EXTENDED COPY to (default: the secondary's)" })
    .option('resume', { type: 'string', describe: 'continue the integrate (its id, or the copy\'s) that an agent left unfinished, on the secondary the catalog names' })
    .example('$0 integrate --secondary iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/2', '')
    .example('$0 integrate --resume 3f2c9a1e', 'continue an integrate whose agent was killed') as unknown as Argv<Args>;
}

export async function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  // Not runCommand: integrate takes no AbortSignal, and Ctrl-C must still stop it (it resumes).
  const out = new Output(argv.json);
  const progress = new Progress(out, { command: 'integrate' });
  try {
    // --resume: the secondary the cut-short run named (integrate itself resumes from the secondary's progress).
    const resumed = argv.resume !== undefined ? await findResumable(argv, 'integrate', argv.resume) : undefined;
    const p = resumed?.operation.params ?? {};
    const secondary = resumedUrl(argv.secondary, p, 'secondary', resumed?.copy?.secondaryUrl);
    if (secondary === undefined) throw new ArgumentError('--secondary is required (or --resume ID of an unfinished integrate)');
    const bridge = resumedUrl(argv.bridge, p, 'bridge');
    progress.start('integrate', '610 integrate: laying the appended log over the image');
    const r = await Recorder.open(argv, out, 'integrate').operation(
      'integrate',
      {
        secondary: redactUrl(secondary),
        after: (x) => ({ id: x.backup_id, state: 'integrated' }),
        params: runParams({ secondary, bridge }),
        resumes: resumed?.operation,
      },
      () => integrate({ secondary, bridge, onProgress: (done, total) => progress.update(BigInt(done), BigInt(total), 'records') }),
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

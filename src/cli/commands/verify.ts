/** `verify`: prove a copy good from the secondary alone, or a LUN it was restored onto (src/agent/verify.ts). */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { verify } from '../../agent/verify';
import { redactUrl } from '../../initiator/url';
import { catalogOptions, Recorder, type CatalogArgs } from '../catalog';
import { runCommand } from '../run';

export const command = 'verify';
export const describe = "Verify a copy: every extent of the secondary's image (or of a restored LUN, --against) against the SHA-256 recorded at backup";

interface Args extends CatalogArgs {
  json: boolean;
  secondary: string;
  against?: string;
}

export function builder(y: Argv): Argv<Args> {
  return catalogOptions(y)
    .option('secondary', { type: 'string', demandOption: true, describe: 'the secondary LUN of a backup (iscsi://...)' })
    .option('against', { type: 'string', describe: "a LUN the copy was restored onto: check its image against the secondary's hashes instead (iscsi://...)" })
    .example('$0 verify --secondary iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/2', '')
    .example('$0 verify --secondary iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/2 --against iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/0', '') as unknown as Argv<Args>;
}

export function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  return runCommand(argv.json, 'verify', async ({ out, progress, signal }) => {
    let started = false;
    // A copy's verification is the check of the secondary itself; --against checks a LUN restored from it.
    const own = argv.against === undefined;
    const r = await Recorder.open(argv, out, 'verify').operation(
      'verify',
      {
        secondary: redactUrl(argv.secondary),
        after: (x) => (own ? { id: x.backup_id, state: x.state, verification: 'ok', verifiedAt: new Date().toISOString() } : undefined),
        failed: (err, id) => (own && (err as { code?: unknown }).code === 'ERR_VERIFY_MISMATCH' ? { id, verification: 'failed', verifiedAt: new Date().toISOString() } : undefined),
      },
      () => verify({
      secondary: argv.secondary,
      against: argv.against,
      signal,
      onProgress: (done, total, blockSize) => {
        if (!started) progress.start('verify', 'verify: reading the image back against its hashes');
        started = true;
        progress.update(done, total, 'blocks', { blockSize });
      },
    }));
    const mib = (Number(r.image_bytes) / 1048576).toFixed(1);
    const log = r.log_records !== undefined ? `, with the ${r.log_records} records of its appended log laid over it` : '';
    return {
      summary: { ...r },
      line: `verify: ${r.checked} is a good copy of backup ${r.backup_id}${r.label ? ` (${r.label})` : ''}: ${r.extents} extents (${mib} MiB${log}) match their SHA-256 (${r.mode} mode, ${r.state}) in ${r.seconds.toFixed(2)} s`,
    };
  });
}

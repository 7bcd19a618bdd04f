/** `export`: copy a secondary to backup media, another LUN or a sparse file (docs/method.md 610). */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { exportSecondary, type ExportPhase } from '../../agent/export';
import { redactUrl } from '../../initiator/url';
import { catalogOptions, Recorder, type CatalogArgs } from '../catalog';
import { runCommand } from '../run';

export const command = 'export';
export const describe = 'Copy a secondary to backup media: another LUN by EXTENDED COPY, or a sparse file; verified after copying';

interface Args extends CatalogArgs {
  json: boolean;
  secondary: string;
  to: string;
  bridge?: string;
  fallback: boolean;
  yes: boolean;
  force: boolean;
}

export function builder(y: Argv): Argv<Args> {
  return catalogOptions(y)
    .option('secondary', { type: 'string', demandOption: true, describe: 'the secondary LUN of a backup (iscsi://...)' })
    .option('to', { type: 'string', demandOption: true, describe: 'another LUN (iscsi://..., at least as large) or a file path' })
    .option('bridge', { type: 'string', describe: "the copy manager to send EXTENDED COPY to (default: the destination's)" })
    .option('fallback', { type: 'boolean', default: false, describe: 'copy LUN to LUN through this host when no copy manager can (off: fail instead)' })
    .option('yes', { type: 'boolean', default: false, describe: 'overwrite a LUN that holds other data, or an existing file' })
    .option('force', { type: 'boolean', default: false, describe: 'export a secondary that is not integrated or log-appended (not a backup)' })
    .example('$0 export --secondary iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/2 --to iscsi://10.0.0.9:3260/iqn.2026-11.io.example:vault/0', '')
    .example('$0 export --secondary iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/2 --to /backup/nightly.secondary --json', '') as unknown as Argv<Args>;
}

const LABELS: Record<ExportPhase, string> = {
  copy: 'copying the secondary',
  verify: 'verifying the copy (metadata, per-extent SHA-256)',
};

export function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  return runCommand(argv.json, 'export', async ({ out, progress, signal }) => {
    const r = await Recorder.open(argv, out, 'export').operation('export', { secondary: redactUrl(argv.secondary) }, () => exportSecondary({
      secondary: argv.secondary,
      to: argv.to,
      bridge: argv.bridge,
      fallback: argv.fallback,
      yes: argv.yes,
      force: argv.force,
      signal,
      onPhase: (phase) => progress.start(phase, LABELS[phase]),
      onProgress: (_phase, done, total, blockSize, path) => progress.update(done, total, 'blocks', { blockSize, path }),
    }));
    const mib = (b: bigint) => (Number(b) / 1048576).toFixed(1);
    const how =
      r.path === 'file'
        ? `to a file (${mib(r.sparse_bytes_skipped)} MiB of zeros left as holes)`
        : `${mib(r.xcopy_bytes)} MiB by EXTENDED COPY, ${mib(r.host_bytes)} MiB through this host${r.fallback_reason ? ` (${r.fallback_reason})` : ''}` +
          (r.relocated ? '; metadata area moved to the end of the larger LUN' : '');
    return {
      summary: { ...r },
      line: `export: backup ${r.backup_id} (${r.state}) to ${r.to}: ${mib(r.bytes)} MiB ${how}; verified, ${r.verified_extents} extents' SHA-256 match, in ${r.seconds.toFixed(2)} s`,
    };
  });
}

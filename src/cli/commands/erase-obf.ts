/** `erase-obf`: make an OBF LUN blank for reuse (docs/method.md 610). */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { eraseObf } from '../../agent/erase-obf';
import { runCommand } from '../run';

export const command = 'erase-obf';
export const describe = 'Erase an OBF LUN for reuse: zero its superblock and used log (UNMAP where that reads back zeros)';

interface Args {
  json: boolean;
  obf: string;
  yes: boolean;
  force: boolean;
  all: boolean;
}

export function builder(y: Argv): Argv<Args> {
  return y
    .option('obf', { type: 'string', demandOption: true, describe: 'the OBF LUN (iscsi://...)' })
    .option('yes', { type: 'boolean', default: false, describe: "required: the OBF's superblock and log are destroyed" })
    .option('force', { type: 'boolean', default: false, describe: 'erase a LUN that is not an OBF, or an OBF whose snapshot is still ACTIVE or MARKED' })
    .option('all', { type: 'boolean', default: false, describe: 'zero the whole LUN, not only its used part' })
    .example('$0 erase-obf --obf iscsi://127.0.0.1:3260/iqn.2026-11.io.example:t1/1 --yes', '') as unknown as Argv<Args>;
}

export function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  return runCommand(argv.json, 'erase-obf', async ({ progress, signal }) => {
    let started = false;
    const r = await eraseObf({
      obf: argv.obf,
      yes: argv.yes,
      force: argv.force,
      all: argv.all,
      signal,
      onProgress: (done, total, blockSize) => {
        if (!started) progress.start('erase', 'erasing the OBF');
        started = true;
        progress.update(done, total, 'blocks', { blockSize });
      },
    });
    const held = r.snapshot_id ? `snapshot ${r.snapshot_id} (${r.obf_state}, ${r.records} records in ${r.used_blocks} blocks)` : 'no OBF (--force)';
    const mib = (Number(r.erased_bytes) / 1048576).toFixed(1);
    return {
      summary: { ...r },
      line: `erase-obf: ${r.obf} held ${held}; blocks 0..${r.erased_blocks - 1n} (${mib} MiB) zeroed by ${r.method} in ${r.seconds.toFixed(2)} s; the LUN is blank for a new snapshot`,
    };
  });
}

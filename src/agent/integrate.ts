/**
 * `integrate` (docs/method.md 610): a secondary made in append mode holds the image as copied
 * (604) and, after it, the OBF's log; integrating lays the log's records over the image inside
 * the secondary, by EXTENDED COPY from the secondary to itself, so that it becomes the exact
 * image as of 602. Resumable: the records done so far (a prefix of the log) are recorded in the
 * secondary's metadata after each command, and a second run skips them (laying a record again
 * is harmless; skipping one never laid would not be, so only a completed prefix is recorded).
 */
import { AgentError } from '../errors';
import { IscsiSession, type SessionOptions } from '../initiator/session';
import { applyObf, readAppendedLog } from './apply-obf';
import { SecondaryLun } from './secondary-lun';

export interface IntegrateOptions {
  secondary: string;
  /** The copy manager (default: the secondary's). */
  bridge?: string;
  session?: SessionOptions;
  onProgress?: (records: number, total: number) => void;
}

export interface IntegrateResult {
  backup_id: string;
  records: number;
  /** Records laid by this run (fewer than `records` when resumed, 0 when already integrated). */
  applied_now: number;
  already_integrated: boolean;
  /** The EXTENDED COPY commands this run sent (one per record where the copy manager takes one segment per command, as LIO). */
  extended_copy_commands: number;
  seconds: number;
}

export async function integrate(opts: IntegrateOptions): Promise<IntegrateResult> {
  const t0 = process.hrtime.bigint();
  const sec = await IscsiSession.connect(opts.secondary, opts.session);
  const bridge = opts.bridge ? await IscsiSession.connect(opts.bridge, opts.session) : sec;
  try {
    const lun = await SecondaryLun.open(sec);
    const r = lun.record;
    const seconds = () => Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.mode !== 'append') throw new AgentError('ERR_INVALID_ARG', `${sec.url} holds an overwrite-mode copy: its image is already exact, there is nothing to integrate`);
    if (r.state === 'integrated') return { backup_id: r.backupId, records: r.progress.integratedRecords, applied_now: 0, already_integrated: true, extended_copy_commands: 0, seconds: seconds() };
    if (r.state !== 'log-appended') throw new AgentError('ERR_SNAPSHOT_STATE', `${sec.url} holds a copy in state ${r.state}${r.reason ? ` (${r.reason})` : ''}: only a copy whose log was appended can be integrated`);
    const log = await readAppendedLog(sec, r);
    const from = Math.min(r.progress.integratedRecords, log.records.length);
    const applied = await applyObf(sec, sec, {
      bridge,
      log,
      obfOffset: r.layout.logLba,
      from,
      onProgress: async (done, total) => {
        await lun.save({ progress: { ...lun.record.progress, integratedRecords: done } });
        opts.onProgress?.(done, total);
      },
    });
    await lun.save({ state: 'integrated', progress: { ...lun.record.progress, integratedRecords: log.records.length } });
    return { backup_id: r.backupId, records: log.records.length, applied_now: log.records.length - from, already_integrated: false, extended_copy_commands: applied.extendedCopyCommands, seconds: seconds() };
  } finally {
    if (bridge !== sec) await bridge.close().catch(() => undefined);
    await sec.close().catch(() => undefined);
  }
}

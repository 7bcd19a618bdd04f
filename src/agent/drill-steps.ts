/**
 * What the two drills share — the file-backed one (./drill.ts) and the one on real LUNs
 * (./drill-luns.ts): the product's operations (`backup` while a host writes, `verify`, the loss
 * of the source and `restore`, `integrate`), each run through the drill's catalog so that it is
 * recorded as the commands record theirs (docs/catalog.md), and the list of the copies the drill
 * made, read back from the catalog at the end.
 *
 * The catalog is given by the caller (the CLI, src/cli/commands/drill.ts): the agent does not
 * open it itself, so the drill runs the same without one (NO_CATALOG).
 */
import crypto from 'node:crypto';
import { AgentError } from '../errors';
import type { IscsiSession, SessionOptions } from '../initiator/session';
import { logger } from '../util/log';
import { backup, type BackupOptions, type BackupResult } from './backup';
import { integrate, type IntegrateResult } from './integrate';
import { restore, type RestoreResult } from './restore';
import { verify, type VerifyResult } from './verify';

/** A LUN's block length and size in blocks. */
export interface LunBlocks {
  blockSize: number;
  blocks: number;
}

/** The LUN in pieces of 1 MiB (the last one shorter): first LBA and blocks of each. */
export function* mebibytes(lun: LunBlocks): Generator<{ lba: number; n: number }> {
  const per = (1024 * 1024) / lun.blockSize;
  for (let lba = 0; lba < lun.blocks; lba += per) yield { lba, n: Math.min(per, lun.blocks - lba) };
}

/** How a drill reports a step: its name and fields (snake_case, as in --json). */
export type DrillStep = (step: string, fields: Record<string, unknown>) => void;

/** A copy the drill made, as the catalog lists it (`copies list`). */
export interface DrillCopy {
  id: string;
  label?: string;
  mode?: string;
  state: string;
  /** The last `verify` of the copy: ok, failed, or none recorded. */
  verification?: 'ok' | 'failed';
  secondary_url: string;
}

/** A backup as the catalog records it (the copy before the run, from the secondary after it). */
export interface DrillBackupRecord {
  backupId: string;
  source: string;
  secondary: string;
  obf: string;
  mode: 'overwrite' | 'append';
  label?: string;
}

/**
 * Where the drill records each operation it runs and finds the copies it made: the catalog of
 * copies, recorded as the `backup`, `verify`, `restore` and `integrate` commands record theirs.
 * Each method runs `work` and returns what it returns (or throws what it throws).
 */
export interface DrillCatalog {
  backup(b: DrillBackupRecord, work: () => Promise<BackupResult>): Promise<BackupResult>;
  /** A verify of the copy on `secondary` (its verification recorded). */
  verify(secondary: string, work: () => Promise<VerifyResult>): Promise<VerifyResult>;
  /** A restore (whole, ranges, or files) of the copy on `secondary`. */
  restore<T extends { backup_id?: string }>(secondary: string, work: () => Promise<T>): Promise<T>;
  integrate(secondary: string, work: () => Promise<IntegrateResult>): Promise<IntegrateResult>;
  /** The copies with these ids, as the catalog has them now (none when it cannot be read). */
  copies(ids: readonly string[]): Promise<DrillCopy[]>;
}

/** No catalog: every operation just runs, and no copy is listed. */
export const NO_CATALOG: DrillCatalog = {
  backup: (_b, work) => work(),
  verify: (_s, work) => work(),
  restore: (_s, work) => work(),
  integrate: (_s, work) => work(),
  copies: async () => [],
};

/**
 * Where a drill shows how far the operation running has got (the CLI's progress display): a
 * phase begins, then its numbers; `path` is how a copy's data goes, when known.
 */
export interface DrillProgress {
  start(phase: string, label: string): void;
  update(done: bigint, total: bigint, unit: 'blocks' | 'records', blockSize: number, path?: 'xcopy' | 'host'): void;
}

/** A host writing the source through a backup; told when the institute call begins and returns. */
export interface HostWriter {
  instituteBegins(): void;
  instituteReturned(): void;
  /** Stops after the write in flight; the number of writes made. */
  stop(): Promise<number>;
}

/** The product operations of a drill, each reported as a step and recorded in the catalog. */
export class DrillOperations {
  /** The ids of the backups run, in order. */
  readonly backupIds: string[] = [];

  constructor(
    private readonly catalog: DrillCatalog,
    private readonly step: DrillStep,
    private readonly session?: SessionOptions,
    private readonly progress?: DrillProgress,
  ) {}

  /**
   * One `backup` while `writer` writes the source; the writes stop on any failure too. A copy
   * that went through this host instead of the copy manager fails the drill.
   */
  async backUpUnderWrites(
    o: Pick<BackupOptions, 'source' | 'secondary' | 'obf' | 'bridge' | 'mgmt' | 'mark' | 'yes' | 'toc' | 'label' | 'cowTimeoutMs'> & { mode: 'overwrite' | 'append' },
    writer: HostWriter,
  ): Promise<{ r: BackupResult; hostWrites: number }> {
    const backupId = crypto.randomUUID();
    const label = o.label ?? `drill ${o.mode}`;
    this.backupIds.push(backupId);
    let stopped: Promise<number> | undefined;
    let blockSize = 512;
    try {
      const r = await this.catalog.backup({ backupId, source: o.source, secondary: o.secondary, obf: o.obf, mode: o.mode, label }, () =>
        backup({
          ...o,
          backupId,
          label,
          session: this.session,
          log: logger(),
          onEvent: (e) => {
            if (e.type === 'progress') return this.progress?.update(e.done, e.total, e.unit, blockSize, e.path);
            if (e.type !== 'phase') return;
            if (typeof e.block_size === 'number') blockSize = e.block_size;
            else if (e.phase !== 'institute' && e.phase !== 'done') this.progress?.start(e.phase, `backup (${o.mode}): ${e.phase}`);
            if (e.phase !== 'institute') return;
            if (e.snapshot_id === undefined) return writer.instituteBegins();
            writer.instituteReturned();
            this.step('institute', { mode: o.mode, snapshot: e.snapshot_id, pause_ms: e.institute_pause_ms });
          },
        }),
      );
      if (r.copy_path !== 'xcopy') throw new AgentError('ERR_INTERNAL', `the outboard copy went through the host (${r.fallback_reason ?? 'unknown'})`);
      stopped = writer.stop();
      const hostWrites = await stopped;
      this.step('backup', { mode: o.mode, backup_id: r.backup_id, state: r.state, bytes: Number(r.xcopy_bytes), obf_records: r.obf_records, records_after_marker: r.records_after_marker, host_writes: hostWrites, seconds: r.seconds });
      return { r, hostWrites };
    } finally {
      if (!stopped) await writer.stop().catch(() => 0);
    }
  }

  /** The product's own check of the copy on `secondary` (`verify`), recorded as its verification. */
  async verifyCopy(secondary: string): Promise<VerifyResult> {
    this.progress?.start('verify', `verify ${secondary}`);
    const v = await this.catalog.verify(secondary, () => verify({ secondary, session: this.session, onProgress: (d, t, bs) => this.progress?.update(d, t, 'blocks', bs) }));
    this.step('verify-copy', { mode: v.mode, state: v.state, extents: v.extents, ...(v.log_records !== undefined ? { log_records: v.log_records } : {}), seconds: v.seconds });
    return v;
  }

  /**
   * The source lost — every block zeroed through `s`, a session on it — then `restore` from the
   * copy on `secondary` onto it (750, or 700 from an append copy not integrated). `check` adds
   * fields to the step from the restored source.
   */
  async loseAndRestore(
    s: IscsiSession,
    lun: LunBlocks,
    p: { secondary: string; to: string; bridge?: string; check?: () => Promise<Record<string, unknown>> },
  ): Promise<RestoreResult> {
    const zeros = Buffer.alloc(1024 * 1024);
    for (const { lba, n } of mebibytes(lun)) await s.write16(BigInt(lba), zeros.subarray(0, n * lun.blockSize));
    await s.synchronizeCache16();
    this.step('source-lost', { zeroed_blocks: lun.blocks });
    let phase = '';
    const r = await this.catalog.restore(p.secondary, () =>
      restore({
        secondary: p.secondary,
        to: p.to,
        bridge: p.bridge,
        yes: true,
        session: this.session,
        onProgress: (ph, d, t, bs, path) => {
          if (ph !== phase) this.progress?.start(ph, `restore: ${ph}`);
          phase = ph;
          this.progress?.update(d, t, ph === 'log' ? 'records' : 'blocks', bs, path);
        },
      }),
    );
    this.step('restore', { method: r.method, backup_id: r.backup_id, from: p.secondary, log_records: r.log_records, verified: r.verified, seconds: r.seconds, ...(p.check ? await p.check() : {}) });
    return r;
  }

  /** `restore --files` from the copy on `secondary` (its step is the caller's). */
  restoreFiles<T extends { backup_id?: string }>(secondary: string, work: () => Promise<T>): Promise<T> {
    return this.catalog.restore(secondary, work);
  }

  /** 610: the append copy on `secondary` integrated. */
  async integrate(secondary: string, bridge?: string): Promise<IntegrateResult> {
    this.progress?.start('integrate', `integrate ${secondary}`);
    const r = await this.catalog.integrate(secondary, () =>
      integrate({ secondary, bridge, session: this.session, onProgress: (d, t) => this.progress?.update(BigInt(d), BigInt(t), 'records', 1) }),
    );
    this.step('integrate', { records: r.records, seconds: r.seconds });
    return r;
  }

  /** The copies this drill made, from the catalog (`copies list`), oldest first. */
  async copies(): Promise<DrillCopy[]> {
    const found = await this.catalog.copies(this.backupIds);
    this.step('copies', { copies: found.length, ...Object.fromEntries(found.map((c) => [c.id, `${c.mode ?? '?'} ${c.state} verified=${c.verification ?? 'never'}`])) });
    return found;
  }
}

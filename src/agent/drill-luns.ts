/**
 * The DR drill against real LUNs (`drill --source URL --secondary URL --obf URL`): the same
 * commands as the file-backed drill (`backup` in overwrite mode, then `backup --mode append
 * --mark` and `integrate` onto the same secondary), on LUNs served by a target with snapshots
 * (e.g. tgt or a SAN array's LUNs behind the project's gateway). The source is overwritten with
 * test blocks, so LUNs holding data are refused without `--yes`.
 *
 * No backing file is at hand here, so the reference is taken another way, from the host's own
 * writes: every write carries a sequence number in each block's stamp (docs/method.md 602, "the
 * hold is a clean cut"). For each block, the image must hold a write at least as new as the
 * newest one acknowledged before the institute call began, and none issued after it returned;
 * writes in flight across the call may be either. The per-extent hashes the backup recorded are
 * checked against the secondary's bytes too.
 */
import crypto from 'node:crypto';
import { AgentError } from '../errors';
import { IscsiSession, type SessionOptions } from '../initiator/session';
import { redactUrl } from '../initiator/url';
import type { ManagementClient } from '../mgmt';
import { logger } from '../util/log';
import { backup, type BackupResult } from './backup';
import { integrate } from './integrate';
import { imageExtentHashes } from './image-hashes';
import { blankOrSecondary, isBlank, SecondaryLun } from './secondary-lun';
import { checkBlock, stampBlocks } from './stamp';

export interface LunDrillOptions {
  source: string;
  secondary: string;
  obf: string;
  bridge?: string;
  mgmt: ManagementClient;
  /** Take LUNs that hold data (the source is overwritten). */
  yes?: boolean;
  session?: SessionOptions;
  onStep?: (step: string, fields: Record<string, unknown>) => void;
}

export interface LunDrillResult {
  ok: boolean;
  backups: Array<{ mode: string; snapshot_id: string; host_writes: number; obf_records: number; blocks_checked: number; extent_hashes_match: boolean }>;
  seconds: number;
}

const MiB = 1024 * 1024;

/** Refuses a LUN that holds data, unless --yes; a secondary of ours (its trailer) is taken where `secondaryOk`. */
async function checkBlank(s: IscsiSession, name: string, opts: { secondaryOk?: boolean }): Promise<void> {
  const read = (lba: bigint, n: number) => s.read16(lba, n);
  const blocks = (await s.readCapacity16()).returnedLogicalBlockAddress + 1n;
  const bs = await s.blockSize();
  if (await (opts.secondaryOk ? blankOrSecondary : isBlank)(read, blocks, bs)) return;
  throw new AgentError('ERR_SECONDARY_IN_USE', `the ${name} ${redactUrl(s.url)} holds data, and the drill overwrites it: give a blank LUN, or --yes`);
}

/**
 * A host writing stamped blocks with increasing sequence numbers, tracking per block the newest
 * write acknowledged before the institute call began, and the first sequence issued after it
 * returned.
 */
class SequencedHost {
  private next: bigint;
  private stopped = false;
  /** Sequence issued first after the institute call returned. */
  firstAfter = 0n;
  /** Per block: the newest sequence acknowledged before the institute call began. */
  ackedBefore?: BigUint64Array;
  writes = 0;
  private readonly done: Promise<void>;

  constructor(
    private readonly host: IscsiSession,
    private readonly blockSize: number,
    private readonly blocks: number,
    /** Per block: the newest sequence acknowledged so far (kept across backups). */
    private readonly latest: BigUint64Array,
    firstSequence: bigint,
  ) {
    this.next = firstSequence;
    this.done = this.loop();
  }

  instituteBegins(): void {
    this.ackedBefore = this.latest.slice();
  }

  instituteReturned(): void {
    this.firstAfter = this.next;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const n = [1, 8, 64][crypto.randomInt(3)];
      const lba = crypto.randomInt(0, this.blocks - n);
      const seq = this.next++;
      await this.host.write16(BigInt(lba), stampBlocks(BigInt(lba), n, this.blockSize, seq));
      for (let i = 0; i < n; i++) if (this.latest[lba + i] < seq) this.latest[lba + i] = seq;
      this.writes++;
    }
  }

  async stop(): Promise<bigint> {
    this.stopped = true;
    await this.done;
    return this.next;
  }
}

/** Every block of the image: its LBA's stamp, no older than acknowledged before T0, not issued after. */
async function verifyImage(d: IscsiSession, blockSize: number, blocks: number, ackedBefore: BigUint64Array, firstAfter: bigint): Promise<number> {
  const per = MiB / blockSize;
  let checked = 0;
  for (let lba = 0; lba < blocks; lba += per) {
    const n = Math.min(per, blocks - lba);
    const data = await d.read16(BigInt(lba), n);
    for (let i = 0; i < n; i++) {
      const c = checkBlock(data.subarray(i * blockSize, (i + 1) * blockSize), BigInt(lba + i));
      const s = c.sequence;
      if (!c.ok || s === undefined) throw new AgentError('ERR_INTERNAL', `drill verification failed at LBA ${lba + i}: ${c.why ?? 'not a stamp'}`);
      if (s < ackedBefore[lba + i]) throw new AgentError('ERR_INTERNAL', `drill verification failed at LBA ${lba + i}: write ${s} is in the image, but write ${ackedBefore[lba + i]} was acknowledged before the snapshot`);
      if (s >= firstAfter) throw new AgentError('ERR_INTERNAL', `drill verification failed at LBA ${lba + i}: write ${s}, issued after the snapshot, is in the image`);
      checked++;
    }
  }
  return checked;
}

/** The per-extent hashes recorded in the secondary's metadata, against its bytes. */
async function hashesMatch(d: IscsiSession): Promise<boolean> {
  const meta = await SecondaryLun.open(d);
  const recorded = await meta.readHashes();
  const actual = await imageExtentHashes({ layout: meta.layout, read: (lba, n) => d.read16(lba, n) });
  return recorded.length === actual.length && recorded.every((h, i) => h.equals(actual[i]));
}

export async function runLunDrill(opts: LunDrillOptions): Promise<LunDrillResult> {
  const t0 = Date.now();
  const step = opts.onStep ?? (() => undefined);
  const src = await IscsiSession.connect(opts.source, opts.session);
  const sessions = [src];
  try {
    const sec = await IscsiSession.connect(opts.secondary, opts.session);
    sessions.push(sec);
    const obf = await IscsiSession.connect(opts.obf, opts.session);
    sessions.push(obf);
    if (!opts.yes) {
      await checkBlank(src, 'source', {});
      await checkBlank(sec, 'secondary', { secondaryOk: true });
      await checkBlank(obf, 'OBF', {});
    }
    const blockSize = await src.blockSize();
    const blocks = Number((await src.readCapacity16()).returnedLogicalBlockAddress + 1n);
    for (let lba = 0; lba < blocks; lba += MiB / blockSize) {
      const n = Math.min(MiB / blockSize, blocks - lba);
      await src.write16(BigInt(lba), stampBlocks(BigInt(lba), n, blockSize, 1n));
    }
    await src.synchronizeCache16();
    step('write-source', { blocks, sequence: 1 });
    const latest = new BigUint64Array(blocks).fill(1n);
    const host = await IscsiSession.connect(opts.source, opts.session);
    sessions.push(host);
    let next = 2n;
    const results: LunDrillResult['backups'] = [];
    for (const mode of ['overwrite', 'append'] as const) {
      const writer = new SequencedHost(host, blockSize, blocks, latest, next);
      let r: BackupResult;
      try {
        r = await backup({
          source: opts.source,
          secondary: opts.secondary,
          obf: opts.obf,
          bridge: opts.bridge,
          mgmt: opts.mgmt,
          mode,
          mark: mode === 'append',
          yes: true,
          session: opts.session,
          log: logger(),
          onEvent: (e) => {
            if (e.type !== 'phase' || e.phase !== 'institute') return;
            if (e.snapshot_id === undefined) writer.instituteBegins();
            else writer.instituteReturned();
          },
        });
      } finally {
        next = await writer.stop();
      }
      step('backup', { mode, state: r.state, snapshot: r.snapshot_id, obf_records: r.obf_records, host_writes: writer.writes });
      if (mode === 'append') step('integrate', { records: (await integrate({ secondary: opts.secondary, bridge: opts.bridge, session: opts.session })).records });
      if (!writer.ackedBefore) throw new AgentError('ERR_INTERNAL', 'the backup reported no institute');
      const checked = await verifyImage(sec, blockSize, blocks, writer.ackedBefore, writer.firstAfter);
      const match = await hashesMatch(sec);
      step('verify', { mode, stamped_blocks_checked: checked, extent_hashes_match: match });
      results.push({ mode, snapshot_id: r.snapshot_id, host_writes: writer.writes, obf_records: r.obf_records, blocks_checked: checked, extent_hashes_match: match });
    }
    return { ok: results.every((x) => x.extent_hashes_match), backups: results, seconds: (Date.now() - t0) / 1000 };
  } finally {
    for (const s of sessions.reverse()) await s.close().catch(() => undefined);
  }
}

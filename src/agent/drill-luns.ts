/**
 * The DR drill against real LUNs (`drill --source URL --secondary URL --obf URL`): the same
 * commands as the file-backed drill (./drill.ts), on LUNs served by a target with snapshots
 * (e.g. tgt or a SAN array's LUNs behind the project's gateway), with one secondary for both
 * modes in turn. The source is overwritten with test blocks, so LUNs holding data are refused
 * without `--yes`. The drill
 *  1. stamps every block of the source (sequence 1);
 *  2. runs `backup` in overwrite mode while a host writes; checks the secondary's image (the
 *     rule below, and the extent hashes it recorded); runs `verify` on the copy;
 *  3. loses the source (every block zeroed) and runs `restore` (750) from that copy onto it;
 *     checks the restored source by the same rule, and that it equals the secondary's image;
 *  4. runs `backup --mode append --mark` onto the same secondary while the host writes, from the
 *     restored source; runs `verify` on the copy (its appended log laid over the image);
 *  5. loses the source again and runs `restore` (700) from the copy not integrated yet; checks
 *     the restored source by the rule;
 *  6. runs `integrate` (610); checks the secondary as in 2, runs `verify` again, and checks that
 *     the source restored in 5 equals the integrated image;
 *  7. lists the two copies from the catalog (`copies list`), when one is given.
 * Each restore comes right after the copy it restores is on the secondary: the append backup
 * replaces the overwrite copy there.
 *
 * No backing file is at hand here, so the reference is taken another way, from the host's own
 * writes: every write carries a sequence number in each block's stamp (docs/method.md 602, "the
 * hold is a clean cut"). For each block, the image must hold a write at least as new as the
 * newest one acknowledged before the institute call began, and none issued after it returned;
 * writes in flight across the call may be either. That rule is the reference for the secondary
 * and for the source restored from it alike: it is made by the drill's host alone, independent
 * of the backup, restore and hash code under test. The restored source must also equal the
 * secondary's image byte for byte (SHA-256 of both, read by the drill), so a restore cannot pass
 * with another image the rule allows. After a restore, the source holds that image: the next
 * backup's rule starts from its blocks' sequences.
 */
import crypto from 'node:crypto';
import { AgentError } from '../errors';
import { IscsiSession, type SessionOptions } from '../initiator/session';
import { redactUrl } from '../initiator/url';
import type { ManagementClient } from '../mgmt';
import { DrillOperations, mebibytes, NO_CATALOG, type DrillCatalog, type DrillCopy, type DrillProgress, type DrillStep, type HostWriter, type LunBlocks } from './drill-steps';
import { imageExtentHashes } from './image-hashes';
import { blankOrSecondary, isBlank, SecondaryLun } from './secondary-lun';
import { checkBlock, stampBlocks } from './stamp';

export interface LunDrillOptions {
  source: string;
  secondary: string;
  obf: string;
  bridge?: string;
  mgmt: ManagementClient;
  /** The backups' capture timeout (`backup --cow-timeout-ms`; default the target's). */
  cowTimeoutMs?: number;
  /** Take LUNs that hold data (the source is overwritten). */
  yes?: boolean;
  session?: SessionOptions;
  onStep?: DrillStep;
  /** Where the progress of each backup, verify, restore and integrate is shown (default: nowhere). */
  progress?: DrillProgress;
  /** Where the operations are recorded and the copies listed from (default: none). */
  catalog?: DrillCatalog;
}

export interface LunDrillResult {
  ok: boolean;
  backups: Array<{ mode: string; backup_id: string; snapshot_id: string; host_writes: number; obf_records: number; blocks_checked: number; extent_hashes_match: boolean; sha256: string }>;
  /** The source lost and restored from each copy: 750 from the overwrite copy, 700 from the append copy before 610. */
  restores: Array<{ method: string; backup_id: string; log_records: number; blocks_checked: number; sha256: string; secondary_sha256: string; match: boolean }>;
  /** The copies the drill made, as the catalog lists them at the end (`copies list`; none without a catalog). */
  copies: DrillCopy[];
  seconds: number;
}

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
class SequencedHost implements HostWriter {
  private next: bigint;
  private stopped = false;
  /** Sequence issued first after the institute call returned. */
  firstAfter = 0n;
  /** Per block: the newest sequence acknowledged before the institute call began. */
  ackedBefore?: BigUint64Array;
  private writes = 0;
  private readonly done: Promise<void>;

  constructor(
    private readonly host: IscsiSession,
    private readonly lun: LunBlocks,
    /** Per block: the newest sequence the source holds (kept across backups and restores). */
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

  /** The rule each block of this backup's image obeys (see checkImage). */
  rule(): ImageRule {
    if (!this.ackedBefore) throw new AgentError('ERR_INTERNAL', 'the backup reported no institute');
    return { ackedBefore: this.ackedBefore, firstAfter: this.firstAfter };
  }

  /** The sequence the next write would carry. */
  get nextSequence(): bigint {
    return this.next;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const n = [1, 8, 64][crypto.randomInt(3)];
      const lba = crypto.randomInt(0, this.lun.blocks - n);
      const seq = this.next++;
      await this.host.write16(BigInt(lba), stampBlocks(BigInt(lba), n, this.lun.blockSize, seq));
      for (let i = 0; i < n; i++) if (this.latest[lba + i] < seq) this.latest[lba + i] = seq;
      this.writes++;
    }
  }

  async stop(): Promise<number> {
    this.stopped = true;
    await this.done;
    return this.writes;
  }
}

/** Per block, the newest write acknowledged before the institute call began; the first sequence issued after it returned. */
interface ImageRule {
  ackedBefore: BigUint64Array;
  firstAfter: bigint;
}

/**
 * Every block of the image on `d` (a secondary, or a source restored from it): its LBA's stamp,
 * no older than acknowledged before T0, not issued after. The blocks checked, the image's SHA-256
 * and each block's sequence.
 */
async function checkImage(d: IscsiSession, lun: LunBlocks, rule: ImageRule, what: string): Promise<{ checked: number; sha256: string; sequences: BigUint64Array }> {
  const { blockSize } = lun;
  const h = crypto.createHash('sha256');
  const sequences = new BigUint64Array(lun.blocks);
  const fail = (lba: number, why: string) => new AgentError('ERR_INTERNAL', `drill verification failed at LBA ${lba} of the ${what}: ${why}`);
  for (const { lba, n } of mebibytes(lun)) {
    const data = await d.read16(BigInt(lba), n);
    h.update(data);
    for (let i = 0; i < n; i++) {
      const c = checkBlock(data.subarray(i * blockSize, (i + 1) * blockSize), BigInt(lba + i));
      const s = c.sequence;
      if (!c.ok || s === undefined) throw fail(lba + i, c.why ?? 'not a stamp');
      if (s < rule.ackedBefore[lba + i]) throw fail(lba + i, `write ${s} is in the image, but write ${rule.ackedBefore[lba + i]} was acknowledged before the snapshot`);
      if (s >= rule.firstAfter) throw fail(lba + i, `write ${s}, issued after the snapshot, is in the image`);
      sequences[lba + i] = s;
    }
  }
  return { checked: lun.blocks, sha256: h.digest('hex'), sequences };
}

/** The per-extent hashes recorded in the secondary's metadata, against its bytes. */
async function hashesMatch(d: IscsiSession): Promise<boolean> {
  const meta = await SecondaryLun.open(d);
  const recorded = await meta.readHashes();
  const actual = await imageExtentHashes({ layout: meta.layout, read: (lba, n) => d.read16(lba, n) });
  return recorded.length === actual.length && recorded.every((h, i) => h.equals(actual[i]));
}

/** Runs the drill (the steps in this file's header), reporting each step through `onStep`. */
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
    const lun: LunBlocks = { blockSize: await src.blockSize(), blocks: Number((await src.readCapacity16()).returnedLogicalBlockAddress + 1n) };
    for (const { lba, n } of mebibytes(lun)) await src.write16(BigInt(lba), stampBlocks(BigInt(lba), n, lun.blockSize, 1n));
    await src.synchronizeCache16();
    step('write-source', { blocks: lun.blocks, sequence: 1 });
    const latest = new BigUint64Array(lun.blocks).fill(1n);
    const host = await IscsiSession.connect(opts.source, opts.session);
    sessions.push(host);
    const ops = new DrillOperations(opts.catalog ?? NO_CATALOG, step, opts.session, opts.progress);
    let next = 2n;
    const backups: LunDrillResult['backups'] = [];
    const restores: LunDrillResult['restores'] = [];

    /** One backup while the host writes; its image checked by stamp and by the hashes it recorded. */
    const backUp = async (mode: 'overwrite' | 'append') => {
      const writer = new SequencedHost(host, lun, latest, next);
      const { r, hostWrites } = await ops.backUpUnderWrites({ source: opts.source, secondary: opts.secondary, obf: opts.obf, bridge: opts.bridge, mgmt: opts.mgmt, cowTimeoutMs: opts.cowTimeoutMs, mode, mark: mode === 'append', yes: true }, writer);
      next = writer.nextSequence;
      return { r, hostWrites, rule: writer.rule() };
    };
    /** The secondary's image (integrated) against the backup's rule and its recorded hashes. */
    const checkSecondary = async (b: Awaited<ReturnType<typeof backUp>>) => {
      const image = await checkImage(sec, lun, b.rule, 'secondary');
      const match = await hashesMatch(sec);
      step('verify', { mode: b.r.mode, stamped_blocks_checked: image.checked, extent_hashes_match: match, sha256: image.sha256 });
      backups.push({ mode: b.r.mode, backup_id: b.r.backup_id, snapshot_id: b.r.snapshot_id, host_writes: b.hostWrites, obf_records: b.r.obf_records, blocks_checked: image.checked, extent_hashes_match: match, sha256: image.sha256 });
      return image;
    };
    /** The source lost and restored from the secondary; its image checked against the backup's rule. */
    const loseAndRestore = async (b: Awaited<ReturnType<typeof backUp>>) => {
      const r = await ops.loseAndRestore(src, lun, { secondary: opts.secondary, to: opts.source, bridge: opts.bridge });
      const image = await checkImage(src, lun, b.rule, 'restored source');
      // The source holds the restored image now: the next backup's writes count from it.
      latest.set(image.sequences);
      return { r, image };
    };
    const restoreCheck = (x: Awaited<ReturnType<typeof loseAndRestore>>, secondarySha256: string) => {
      const match = x.image.sha256 === secondarySha256;
      step('restore-check', { method: x.r.method, stamped_blocks_checked: x.image.checked, sha256: x.image.sha256, secondary_sha256: secondarySha256, match });
      restores.push({ method: x.r.method, backup_id: x.r.backup_id, log_records: x.r.log_records, blocks_checked: x.image.checked, sha256: x.image.sha256, secondary_sha256: secondarySha256, match });
    };

    // 602–608 in overwrite mode; then the source lost and restored from that copy (750).
    const first = await backUp('overwrite');
    const firstImage = await checkSecondary(first);
    await ops.verifyCopy(opts.secondary);
    restoreCheck(await loseAndRestore(first), firstImage.sha256);

    // 602–608 in append mode with the marker, onto the same secondary, from the restored source;
    // the source lost again and restored from the copy not integrated (700); then 610.
    const second = await backUp('append');
    await ops.verifyCopy(opts.secondary);
    const restored = await loseAndRestore(second);
    await ops.integrate(opts.secondary, opts.bridge);
    const secondImage = await checkSecondary(second);
    await ops.verifyCopy(opts.secondary);
    restoreCheck(restored, secondImage.sha256);

    const copies = await ops.copies();
    const ok = backups.every((x) => x.extent_hashes_match) && restores.every((x) => x.match);
    return { ok, backups, restores, copies, seconds: (Date.now() - t0) / 1000 };
  } finally {
    for (const s of sessions.reverse()) await s.close().catch(() => undefined);
  }
}

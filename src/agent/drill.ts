/**
 * The DR drill on file-backed LUNs (no SAN needed): the product's own commands, end to end, on
 * loopback, checked against references made without the code under test.
 *
 * The project's target serves a source, an OBF and two secondaries (sparse files in the work
 * folder), with its management API on loopback. The drill
 *  1. writes self-describing blocks (generation 1) to the source through the initiator;
 *  2. runs `backup` in overwrite mode (docs/method.md 602–608) while a host keeps overwriting the
 *     source: generation-2 blocks until the snapshot is instituted, generation 3 afterwards; the
 *     drill copies the source's backing file while the target holds the writes (the held event):
 *     the reference for this backup;
 *  3. runs `backup --mode append --mark` the same way (generations 4, then 5) onto the second
 *     secondary, then `integrate` (610);
 *  4. runs `verify` on both copies (the append one before 610: its log laid over the image);
 *  5. zeroes the source (its loss) and runs `restore` (700) from the append copy onto it, then
 *     `integrate`; zeroes it again and runs `restore` (750) from the overwrite copy; each time
 *     the restored source must hash as that backup's reference;
 *  6. checks each secondary against its reference by SHA-256 of the image, by the per-extent
 *     hashes the backup recorded in the secondary's metadata, and block by block by stamp: every
 *     block is its own LBA's stamp, of a generation written before its snapshot's institution
 *     (a write racing the institute call may carry the earlier generation and land after T0: it
 *     was captured, so its block shows what it overwrote);
 *  7. restores files: an ext4 file system made from a generated tree is backed up with --toc
 *     while a host overwrites its files, then restored file by file to a directory and, for one
 *     directory, in place (./drill-files.ts), against the tree and e2fsprogs' debugfs;
 *  8. lists the three copies from the catalog (`copies list`), when one is given: each operation
 *     above is recorded in it as the commands record theirs (./drill-steps.ts).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AgentError } from '../errors';
import { IscsiSession } from '../initiator/session';
import { ManagementClient } from '../mgmt';
import { freePort } from '../peers/tgt';
import { quickConfig } from '../target/config';
import { SNAPSHOT_HELD_CHANNEL, subscribeSnapshotEvent, TargetServer, type SnapshotHeldMessage } from '../target/server';
import { logger } from '../util/log';
import * as secondaryFormat from '../secondary';
import { DRILL_FS_BYTES, fileDrill, makeDrillFileSystem, type FileDrillResult } from './drill-files';
import { DrillOperations, mebibytes, NO_CATALOG, type DrillCatalog, type DrillCopy, type DrillProgress, type DrillStep, type HostWriter, type LunBlocks } from './drill-steps';
import { inquire, type InquireReport } from './inquire';
import type { RestoreResult } from './restore';
import { SecondaryLun } from './secondary-lun';
import { checkBlock, stampBlocks } from './stamp';

const IQN = 'iqn.2026-11.io.xcopy-agent:drill';

export interface DrillOptions {
  workDir: string;
  sizeBytes: number;
  keep?: boolean;
  onStep?: DrillStep;
  /** Where the progress of each backup, verify, restore and integrate is shown (default: nowhere). */
  progress?: DrillProgress;
  /** Where the operations are recorded and the copies listed from (default: none). */
  catalog?: DrillCatalog;
}

export interface DrillResult {
  ok: boolean;
  source: InquireReport;
  secondary: InquireReport;
  bytes: number;
  snapshot_id: string;
  institute_pause_ms: number;
  host_writes_during_backup: number;
  copy_seconds: number;
  copy_mib_per_s: number;
  obf_records: number;
  obf_bytes: number;
  reference_sha256: string;
  secondary_sha256: string;
  stamped_blocks_checked: number;
  /** The second backup: append mode with the marker, then integrated. */
  append: {
    snapshot_id: string;
    host_writes_during_backup: number;
    obf_records: number;
    records_after_marker: number;
    integrated_records: number;
    reference_sha256: string;
    secondary_sha256: string;
    stamped_blocks_checked: number;
  };
  /** The source zeroed, then restored: 700 from the append copy (before 610), 750 from the overwrite copy. */
  restores: {
    from_append: { method: string; log_records: number; seconds: number; sha256: string; reference_sha256: string };
    from_overwrite: { method: string; seconds: number; sha256: string; reference_sha256: string };
  };
  /** Single files: an ext4 file system backed up with --toc, restored to a directory and in place. */
  files: FileDrillResult;
  /** The three copies, as the catalog lists them at the end (`copies list`; none without a catalog). */
  copies: DrillCopy[];
}

async function fileSha256(file: string, length: number): Promise<string> {
  const h = crypto.createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    fs.createReadStream(file, { start: 0, end: length - 1, highWaterMark: 4 * 1024 * 1024 })
      .on('data', (c) => h.update(c))
      .on('end', resolve)
      .on('error', reject);
  });
  return h.digest('hex');
}

/**
 * Runs the drill (the steps in this file's header), reporting each step through `onStep`; the
 * result says whether the secondary equals the image held at institution.
 */
export async function runDrill(opts: DrillOptions): Promise<DrillResult> {
  const step = opts.onStep ?? (() => undefined);
  const { files, stateDir } = prepareWorkDir(opts.workDir);
  const size = opts.sizeBytes;
  const BS = 512;
  // The OBF holds at most every chunk once, plus a header block per 64 KiB record.
  const obfSize = Math.ceil((size * 1.01 + 1024 * 1024) / 1048576) * 1048576;
  const imageBlocks = BigInt(size / BS);
  const overwriteSize = Number(secondaryFormat.requiredBlocks({ blockSize: BS, imageBlocks, mode: 'overwrite' })) * BS;
  const appendSize = Number(secondaryFormat.requiredBlocks({ blockSize: BS, imageBlocks, mode: 'append', logBlocksMax: BigInt(obfSize / BS) })) * BS;
  const fsSecondarySize = Number(secondaryFormat.requiredBlocks({ blockSize: BS, imageBlocks: BigInt(DRILL_FS_BYTES / BS), mode: 'overwrite' })) * BS;
  const tree = await makeDrillFileSystem(opts.workDir);
  const port = await freePort();
  step('start-target', { target: IQN, portal: `127.0.0.1:${port}`, work_dir: opts.workDir });
  const server = await TargetServer.start(
    quickConfig({
      portal: `127.0.0.1:${port}`,
      iqn: IQN,
      luns: [
        `file:${files.source}:${size}`,
        `file:${files.obf}:${obfSize}`,
        `file:${files.secondary}:${overwriteSize}`,
        `file:${files.secondaryAppend}:${appendSize}`,
        `file:${tree.image}:${DRILL_FS_BYTES}`,
        `file:${files.fsSecondary}:${fsSecondarySize}`,
      ],
    }),
    {
      log: logger(),
      stateDir,
      management: { listen: '127.0.0.1:0', tokenFile: path.join(stateDir, 'mgmt.token') },
    },
  );
  const url = (lun: number) => `iscsi://127.0.0.1:${port}/${IQN}/${lun}`;
  const mgmt = new ManagementClient({ url: server.management!.url, token: fs.readFileSync(path.join(stateDir, 'mgmt.token'), 'utf8').trim() });
  const sessions: IscsiSession[] = [];
  const open = async (lun: number) => {
    const s = await IscsiSession.connect(url(lun));
    sessions.push(s);
    return s;
  };
  // The reference of each backup: the source's bytes while writes are held at institution (the
  // held event of this target's snapshots, docs/cow.md).
  let reference = files.reference;
  const onHeld = (m: unknown) => {
    const held = m as SnapshotHeldMessage;
    // LUN 0's store only (the quick form names it lun0): the file-level backup keeps its own reference, the tree.
    if (server.model.stores.get('/backstores/fileio/lun0') === held.source) held.hold(fs.promises.copyFile(files.source, reference));
  };
  const unsubscribe = subscribeSnapshotEvent(SNAPSHOT_HELD_CHANNEL, onHeld);
  try {
    const s = await open(0);
    const d = await open(2);
    const source = await inquire(s);
    const secondary = await inquire(d);
    step('inquire', { source: source.url, secondary: secondary.url, capacity_bytes: source.capacity_bytes, three_pc: secondary.three_pc });
    const lun = { blockSize: source.block_size, blocks: size / source.block_size };
    await writeSource(s, lun);
    step('write-source', { blocks: lun.blocks, generation: 1 });

    // 602–608, overwrite mode.
    const ops = new DrillOperations(opts.catalog ?? NO_CATALOG, step, undefined, opts.progress);
    const host = await open(0);
    const backUp = (secondaryLun: number, mode: 'overwrite' | 'append', generation: bigint) =>
      ops.backUpUnderWrites({ source: url(0), obf: url(1), secondary: url(secondaryLun), mgmt, mode, mark: mode === 'append' }, HostWorkload.start(host, lun, generation));
    const first = await backUp(2, 'overwrite', 2n);
    const checkedOverwrite = await verifySecondary(d, lun, 2n, files.reference, step, 'overwrite');

    // 602–608 in append mode with the marker.
    reference = files.referenceAppend;
    const second = await backUp(3, 'append', 4n);
    const referenceAppendSha256 = await fileSha256(files.referenceAppend, size);

    // The product's own check of both copies (the append one not integrated: its log laid over).
    for (const l of [2, 3]) await ops.verifyCopy(url(l));
    // The source lost, then 700: restored from the append copy (image, then its log over it).
    const restoredAppend = await loseAndRestore(ops, s, lun, url, 3, files.source);
    // 610, then the append copy checked as the overwrite one.
    const integrated = await ops.integrate(url(3));
    const checkedAppend = await verifySecondary(await open(3), lun, 4n, files.referenceAppend, step, 'append');
    // The source lost again, then 750: restored from the overwrite copy.
    const restoredOverwrite = await loseAndRestore(ops, s, lun, url, 2, files.source);

    const reference_sha256 = await fileSha256(files.reference, size);
    const secondary_sha256 = await fileSha256(files.secondary, size);
    const restoresOk = restoredAppend.sha256 === referenceAppendSha256 && restoredOverwrite.sha256 === reference_sha256;
    step('restore-check', { restored_700_sha256: restoredAppend.sha256, reference_append_sha256: referenceAppendSha256, restored_750_sha256: restoredOverwrite.sha256, reference_sha256, match: restoresOk });
    // Single files (603 and the restore of named files).
    const fileLevel = await fileDrill(ops, step, { tree, source: url(4), secondary: url(5), obf: url(1), mgmt, workDir: opts.workDir });
    const ok = reference_sha256 === secondary_sha256 && checkedOverwrite.ok && checkedAppend.ok && restoresOk && fileLevel.ok;
    return {
      ok,
      source,
      secondary,
      bytes: size,
      snapshot_id: first.r.snapshot_id,
      institute_pause_ms: first.r.institute_pause_ms ?? 0,
      host_writes_during_backup: first.hostWrites,
      copy_seconds: first.r.phases.copy ?? 0,
      copy_mib_per_s: size / 1048576 / (first.r.phases.copy ?? Number.NaN),
      obf_records: first.r.obf_records,
      obf_bytes: Number(first.r.obf_bytes),
      reference_sha256,
      secondary_sha256,
      stamped_blocks_checked: checkedOverwrite.blocks,
      append: {
        snapshot_id: second.r.snapshot_id,
        host_writes_during_backup: second.hostWrites,
        obf_records: second.r.obf_records,
        records_after_marker: second.r.records_after_marker ?? 0,
        integrated_records: integrated.records,
        reference_sha256: checkedAppend.referenceSha256,
        secondary_sha256: checkedAppend.secondarySha256,
        stamped_blocks_checked: checkedAppend.blocks,
      },
      restores: {
        from_append: { method: restoredAppend.r.method, log_records: restoredAppend.r.log_records, seconds: restoredAppend.r.seconds, sha256: restoredAppend.sha256, reference_sha256: referenceAppendSha256 },
        from_overwrite: { method: restoredOverwrite.r.method, seconds: restoredOverwrite.r.seconds, sha256: restoredOverwrite.sha256, reference_sha256 },
      },
      files: fileLevel,
      copies: await ops.copies(),
    };
  } finally {
    unsubscribe();
    for (const s of sessions) await s.close().catch(() => undefined);
    await server.stop();
    if (!opts.keep) removeWorkFiles({ ...files, fsImage: tree.image }, stateDir);
  }
}

/**
 * The source lost, then `restore` from the copy on `secondaryLun` onto it (./drill-steps.ts);
 * the SHA-256 of the source's backing file after it.
 */
async function loseAndRestore(
  ops: DrillOperations,
  s: IscsiSession,
  lun: LunBlocks,
  url: (lun: number) => string,
  secondaryLun: number,
  sourceFile: string,
): Promise<{ r: RestoreResult; sha256: string }> {
  let sha256 = '';
  const r = await ops.loseAndRestore(s, lun, {
    secondary: url(secondaryLun),
    to: url(0),
    check: async () => ({ source_sha256: (sha256 = await fileSha256(sourceFile, lun.blocks * lun.blockSize)) }),
  });
  return { r, sha256 };
}

/** The drill's files in the work folder: the three LUNs, the reference image, the target's state. */
interface WorkFiles {
  files: { source: string; obf: string; secondary: string; secondaryAppend: string; reference: string; referenceAppend: string; fsSecondary: string };
  stateDir: string;
}

/** Creates the work folder and clears what an earlier drill left in it. */
function prepareWorkDir(workDir: string): WorkFiles {
  fs.mkdirSync(workDir, { recursive: true });
  const files = {
    source: path.join(workDir, 'source.img'),
    obf: path.join(workDir, 'obf.img'),
    secondary: path.join(workDir, 'secondary.img'),
    secondaryAppend: path.join(workDir, 'secondary-append.img'),
    reference: path.join(workDir, 'reference.img'),
    referenceAppend: path.join(workDir, 'reference-append.img'),
    fsSecondary: path.join(workDir, 'fs-secondary.img'),
  };
  const stateDir = path.join(workDir, 'state');
  removeWorkFiles(files, stateDir);
  return { files, stateDir };
}

function removeWorkFiles(files: Record<string, string>, stateDir: string): void {
  for (const f of Object.values(files)) fs.rmSync(f, { force: true });
  fs.rmSync(stateDir, { recursive: true, force: true });
}

/** Drill step 1: every block of the source stamped with its LBA, generation 1, made durable. */
async function writeSource(s: IscsiSession, lun: LunBlocks): Promise<void> {
  for (const { lba, n } of mebibytes(lun)) await s.write16(BigInt(lba), stampBlocks(BigInt(lba), n, lun.blockSize, 1n));
  await s.synchronizeCache16();
}

/**
 * A host that keeps writing stamped blocks (1, 8 or 64 at random LBAs) through a backup, of
 * `generation` until the drill raises it once the snapshot is instituted.
 */
class HostWorkload implements HostWriter {
  private stopped = false;
  private writes = 0;
  private readonly done: Promise<void>;

  private constructor(
    private readonly host: IscsiSession,
    private readonly lun: LunBlocks,
    public generation: bigint,
  ) {
    this.done = this.loop();
  }

  /** Starts writing at once. */
  static start(host: IscsiSession, lun: LunBlocks, generation: bigint): HostWorkload {
    return new HostWorkload(host, lun, generation);
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const n = [1, 8, 64][crypto.randomInt(3)];
      const lba = crypto.randomInt(0, this.lun.blocks - n);
      await this.host.write16(BigInt(lba), stampBlocks(BigInt(lba), n, this.lun.blockSize, this.generation));
      this.writes++;
    }
  }

  instituteBegins(): void {}

  /** Writes from now on are of the next generation. */
  instituteReturned(): void {
    this.generation++;
  }

  async stop(): Promise<number> {
    this.stopped = true;
    await this.done;
    return this.writes;
  }
}

/**
 * Checks a secondary against the reference held at its snapshot's institution: the image's
 * SHA-256, the per-extent hashes its metadata records, and every block's stamp (of a generation
 * up to `maxGeneration`).
 */
async function verifySecondary(
  d: IscsiSession,
  lun: LunBlocks,
  maxGeneration: bigint,
  referenceFile: string,
  step: DrillStep,
  mode: string,
): Promise<{ ok: boolean; blocks: number; referenceSha256: string; secondarySha256: string }> {
  const blocks = await verifyStamps(d, lun, maxGeneration);
  const reference = await fs.promises.readFile(referenceFile);
  const meta = await SecondaryLun.open(d);
  const recorded = (await meta.readHashes()).map((h) => h.toString('hex'));
  const expected: string[] = [];
  for (let i = 0; i < meta.layout.extents; i++) {
    const { offset, bytes } = secondaryFormat.extentRange(meta.layout, i);
    expected.push(crypto.createHash('sha256').update(reference.subarray(Number(offset), Number(offset) + bytes)).digest('hex'));
  }
  const h = crypto.createHash('sha256');
  for (const { lba, n } of mebibytes(lun)) h.update(await d.read16(BigInt(lba), n));
  const secondarySha256 = h.digest('hex');
  const referenceSha256 = crypto.createHash('sha256').update(reference.subarray(0, lun.blocks * lun.blockSize)).digest('hex');
  const hashesOk = recorded.length === expected.length && recorded.every((x, i) => x === expected[i]);
  step('verify', { mode, state: meta.record.state, reference_sha256: referenceSha256, secondary_sha256: secondarySha256, extent_hashes_match: hashesOk, stamped_blocks_checked: blocks });
  return { ok: secondarySha256 === referenceSha256 && hashesOk && meta.record.state === 'integrated', blocks, referenceSha256, secondarySha256 };
}

/**
 * By stamp: every block of the secondary is its own LBA's stamp of a generation up to
 * `maxGeneration` (none written after the institution); the number of blocks checked.
 */
export async function verifyStamps(d: Pick<IscsiSession, 'read16'>, lun: LunBlocks, maxGeneration = 2n): Promise<number> {
  const bs = lun.blockSize;
  let checked = 0;
  for (const { lba, n } of mebibytes(lun)) {
    const data = await d.read16(BigInt(lba), n);
    for (let i = 0; i < n; i++) {
      const c = checkBlock(data.subarray(i * bs, (i + 1) * bs), BigInt(lba + i));
      if (!c.ok || c.sequence === undefined || c.sequence > maxGeneration) {
        throw new AgentError('ERR_INTERNAL', `drill verification failed at LBA ${lba + i}: ${c.why ?? `generation ${c.sequence}, written after the institution, is in the image`}`);
      }
      checked++;
    }
  }
  return checked;
}

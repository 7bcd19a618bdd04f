/**
 * The DR drill on file-backed LUNs (no SAN needed): the whole method, end to end, on loopback.
 *
 * The project's target serves a source, an OBF and a secondary LUN (sparse files in the work
 * folder), with its management API on loopback. The drill
 *  1. writes self-describing blocks (generation 1) to the source through the initiator;
 *  2. starts a host workload that keeps overwriting the source: generation-2 blocks until the
 *     institute call returns, generation 3 afterwards;
 *  3. institutes a snapshot (602) through the management API — the drill copies the source's
 *     backing file while the target holds its writes (the held event): the drill's reference,
 *     made without the COW code;
 *  4. copies the whole source to the secondary with EXTENDED COPY through the copy manager
 *     (604), ignoring the writes going on;
 *  5. terminates the snapshot (606): the OBF is sealed;
 *  6. reads the OBF's log through the initiator and lays every record over the secondary with
 *     EXTENDED COPY, one block→block segment per record (608, overwrite mode);
 *  7. verifies the secondary against the reference by hash, and block by block by stamp: every
 *     block is its own LBA's stamp, of generation 1 or 2 — none of generation 3, which only
 *     writes after the institution made (a write racing the call may be 2 and after T0: captured,
 *     so its block shows the earlier generation).
 */
import crypto from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import fs from 'node:fs';
import path from 'node:path';
import { AgentError } from '../errors';
import { IscsiSession } from '../initiator/session';
import { ManagementClient } from '../mgmt';
import { freePort } from '../peers/tgt';
import { quickConfig } from '../target/config';
import { SNAPSHOT_HELD_CHANNEL, TargetServer, type SnapshotHeldMessage } from '../target/server';
import { logger } from '../util/log';
import { applyObf } from './apply-obf';
import { inquire, type InquireReport } from './inquire';
import { checkBlock, stampBlocks } from './stamp';
import { xcopyCopy, type XcopyCopyResult } from './xcopy-copy';

const IQN = 'iqn.2026-11.io.xcopy-agent:drill';

export interface DrillOptions {
  workDir: string;
  sizeBytes: number;
  keep?: boolean;
  onStep?: (step: string, fields: Record<string, unknown>) => void;
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
  // The OBF holds at most every chunk once, plus a header block per 64 KiB record.
  const obfSize = Math.ceil((size * 1.01 + 1024 * 1024) / 1048576) * 1048576;
  const port = await freePort();
  step('start-target', { target: IQN, portal: `127.0.0.1:${port}`, work_dir: opts.workDir });
  const server = await TargetServer.start(
    quickConfig({ portal: `127.0.0.1:${port}`, iqn: IQN, luns: [`file:${files.source}:${size}`, `file:${files.obf}:${obfSize}`, `file:${files.secondary}:${size}`] }),
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
  // The reference: the source's bytes while writes are held at institution (the held event of
  // this target's snapshots, docs/cow.md).
  const onHeld = (m: unknown) => {
    const held = m as SnapshotHeldMessage;
    if ([...server.model.stores.values()].some((st) => st === held.source)) held.hold(fs.promises.copyFile(files.source, files.reference));
  };
  diagnosticsChannel.subscribe(SNAPSHOT_HELD_CHANNEL, onHeld);
  try {
    const s = await open(0);
    const d = await open(2);
    const source = await inquire(s);
    const secondary = await inquire(d);
    step('inquire', { source: source.url, secondary: secondary.url, capacity_bytes: source.capacity_bytes, three_pc: secondary.three_pc });
    const lun = { blockSize: source.block_size, blocks: size / source.block_size };
    await writeSource(s, lun);
    step('write-source', { blocks: lun.blocks, generation: 1 });

    const { snap, copy, hostWrites } = await backUpUnderWrites(mgmt, await open(0), lun, url, step);

    // 608: lay the OBF's records over the secondary, one 02h segment each, through the bridge.
    const applied = await applyObf(await open(1), d);
    step('apply-obf', { records: applied.records, mode: 'overwrite' });

    const checked = await verifyStamps(d, lun);
    const reference_sha256 = await fileSha256(files.reference, size);
    const secondary_sha256 = await fileSha256(files.secondary, size);
    step('verify', { reference_sha256, secondary_sha256, stamped_blocks_checked: checked });
    return {
      ok: reference_sha256 === secondary_sha256,
      source,
      secondary,
      bytes: size,
      snapshot_id: snap.id,
      institute_pause_ms: snap.institute_pause_ms,
      host_writes_during_backup: hostWrites,
      copy_seconds: copy.seconds,
      copy_mib_per_s: size / 1048576 / copy.seconds,
      obf_records: applied.records,
      obf_bytes: Number(applied.dataBytes),
      reference_sha256,
      secondary_sha256,
      stamped_blocks_checked: checked,
    };
  } finally {
    diagnosticsChannel.unsubscribe(SNAPSHOT_HELD_CHANNEL, onHeld);
    for (const s of sessions) await s.close().catch(() => undefined);
    await server.stop();
    if (!opts.keep) removeWorkFiles(files, stateDir);
  }
}

/** The drill's files in the work folder: the three LUNs, the reference image, the target's state. */
interface WorkFiles {
  files: { source: string; obf: string; secondary: string; reference: string };
  stateDir: string;
}

/** Creates the work folder and clears what an earlier drill left in it. */
function prepareWorkDir(workDir: string): WorkFiles {
  fs.mkdirSync(workDir, { recursive: true });
  const files = {
    source: path.join(workDir, 'source.img'),
    obf: path.join(workDir, 'obf.img'),
    secondary: path.join(workDir, 'secondary.img'),
    reference: path.join(workDir, 'reference.img'),
  };
  const stateDir = path.join(workDir, 'state');
  removeWorkFiles(files, stateDir);
  return { files, stateDir };
}

function removeWorkFiles(files: WorkFiles['files'], stateDir: string): void {
  for (const f of Object.values(files)) fs.rmSync(f, { force: true });
  fs.rmSync(stateDir, { recursive: true, force: true });
}

/** A LUN's block length and size in blocks. */
export interface LunBlocks {
  blockSize: number;
  blocks: number;
}

/** The LUN in pieces of 1 MiB (the last one shorter): first LBA and blocks of each. */
function* mebibytes(lun: LunBlocks): Generator<{ lba: number; n: number }> {
  const per = (1024 * 1024) / lun.blockSize;
  for (let lba = 0; lba < lun.blocks; lba += per) yield { lba, n: Math.min(per, lun.blocks - lba) };
}

/** Drill step 1: every block of the source stamped with its LBA, generation 1, made durable. */
async function writeSource(s: IscsiSession, lun: LunBlocks): Promise<void> {
  for (const { lba, n } of mebibytes(lun)) await s.write16(BigInt(lba), stampBlocks(BigInt(lba), n, lun.blockSize, 1n));
  await s.synchronizeCache16();
}

/**
 * Drill step 2: a host that keeps writing stamped blocks (1, 8 or 64 at random LBAs) through the
 * whole backup, of `generation` 2 until the drill sets it to 3 once the snapshot is instituted.
 */
class HostWorkload {
  generation = 2n;
  private stopped = false;
  private writes = 0;
  private readonly done: Promise<void>;

  private constructor(
    private readonly host: IscsiSession,
    private readonly lun: LunBlocks,
  ) {
    this.done = this.loop();
  }

  /** Starts writing at once. */
  static start(host: IscsiSession, lun: LunBlocks): HostWorkload {
    return new HostWorkload(host, lun);
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const n = [1, 8, 64][crypto.randomInt(3)];
      const lba = crypto.randomInt(0, this.lun.blocks - n);
      await this.host.write16(BigInt(lba), stampBlocks(BigInt(lba), n, this.lun.blockSize, this.generation));
      this.writes++;
    }
  }

  /** Stops after the write in flight; the number of writes made. */
  async stop(): Promise<number> {
    this.stopped = true;
    await this.done;
    return this.writes;
  }
}

/** What the backup under writes gives the later steps. */
interface Backup {
  snap: { id: string; institute_pause_ms: number };
  copy: XcopyCopyResult;
  hostWrites: number;
}

/**
 * Drill steps 2–5, the backup while `host` writes (a HostWorkload): institute the snapshot (602),
 * copy the source to the secondary (604), terminate the snapshot (606), then stop the writes. The
 * writes stop on any failure too, before the caller closes the sessions.
 */
async function backUpUnderWrites(
  mgmt: ManagementClient,
  host: IscsiSession,
  lun: LunBlocks,
  url: (lun: number) => string,
  step: NonNullable<DrillOptions['onStep']>,
): Promise<Backup> {
  let workload: HostWorkload | undefined = HostWorkload.start(host, lun);
  try {
    await new Promise((r) => setTimeout(r, 50));
    const snap = await mgmt.call<{ id: string; institute_pause_ms: number }>('snapshot_institute', { source: `${IQN}/0`, obf: `${IQN}/1` });
    workload.generation = 3n;
    step('institute', { snapshot: snap.id, pause_ms: snap.institute_pause_ms });
    const copy = await outboardCopy(url(0), url(2));
    step('copy', { path: 'xcopy', bytes: Number(copy.xcopy_bytes), seconds: copy.seconds, extended_copy_commands: copy.extended_copy_commands });
    const sealed = await terminate(mgmt, snap.id);
    const hostWrites = await workload.stop();
    workload = undefined;
    step('terminate', { state: sealed.state, obf_records: sealed.records, obf_bytes: sealed.bytes, host_writes: hostWrites });
    return { snap, copy, hostWrites };
  } finally {
    await workload?.stop().catch(() => 0);
  }
}

/**
 * Drill step 4 (604): the whole source to the secondary by EXTENDED COPY through the copy
 * manager, ignoring the writes going on; a copy through the host fails the drill.
 */
async function outboardCopy(from: string, to: string): Promise<XcopyCopyResult> {
  const copy = await xcopyCopy({ from, to });
  if (copy.path !== 'xcopy') throw new AgentError('ERR_INTERNAL', `the outboard copy went through the host (${copy.fallback_reason ?? 'unknown'})`);
  return copy;
}

/** Drill step 5 (606): terminates the snapshot, which must end SEALED (its OBF complete). */
async function terminate(mgmt: ManagementClient, id: string): Promise<{ state: string; records: number; bytes: number }> {
  const sealed = await mgmt.call<{ state: string; records: number; bytes: number }>('snapshot_terminate', { id });
  if (sealed.state !== 'SEALED') throw new AgentError('ERR_INTERNAL', `snapshot ${id} ended ${sealed.state}`);
  return sealed;
}

/**
 * Drill step 7, by stamp: every block of the secondary is its own LBA's stamp of generation 1
 * or 2 (none written after the institution); the number of blocks checked.
 */
export async function verifyStamps(d: Pick<IscsiSession, 'read16'>, lun: LunBlocks): Promise<number> {
  const bs = lun.blockSize;
  let checked = 0;
  for (const { lba, n } of mebibytes(lun)) {
    const data = await d.read16(BigInt(lba), n);
    for (let i = 0; i < n; i++) {
      const c = checkBlock(data.subarray(i * bs, (i + 1) * bs), BigInt(lba + i));
      if (!c.ok || c.sequence === undefined || c.sequence > 2n) {
        throw new AgentError('ERR_INTERNAL', `drill verification failed at LBA ${lba + i}: ${c.why ?? `generation ${c.sequence}, written after the institution, is in the image`}`);
      }
      checked++;
    }
  }
  return checked;
}

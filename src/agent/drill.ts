/**
 * The DR drill on file-backed LUNs (no SAN needed). Foundation stage: tgt serves a source and a
 * secondary LUN on loopback; the drill writes self-describing blocks to the source through the
 * initiator, inquires both LUNs, copies source -> secondary (host path: the copy manager and the
 * COW snapshot arrive with later issues), and verifies the secondary against the source's backing
 * file by hash (independent of the copy code) and block by block by stamp.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AgentError } from '../errors';
import { IscsiSession } from '../initiator/session';
import { Tgt } from '../peers/tgt';
import { hostCopy } from './host-copy';
import { inquire, type InquireReport } from './inquire';
import { checkBlock, stampBlocks } from './stamp';

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
  copy_seconds: number;
  copy_mib_per_s: number;
  source_sha256: string;
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

export async function runDrill(opts: DrillOptions): Promise<DrillResult> {
  const step = opts.onStep ?? (() => undefined);
  fs.mkdirSync(opts.workDir, { recursive: true });
  const src = path.join(opts.workDir, 'source.img');
  const sec = path.join(opts.workDir, 'secondary.img');
  for (const f of [src, sec]) fs.rmSync(f, { force: true });
  step('start-target', { target: 'tgt', work_dir: opts.workDir });
  const tgt = await Tgt.start({ dir: opts.workDir, luns: [{ size: opts.sizeBytes, path: src }, { size: opts.sizeBytes, path: sec }] });
  let s: IscsiSession | undefined;
  let d: IscsiSession | undefined;
  try {
    s = await IscsiSession.connect(tgt.url(1));
    d = await IscsiSession.connect(tgt.url(2));
    const source = await inquire(s);
    const secondary = await inquire(d);
    step('inquire', { source: source.url, secondary: secondary.url, capacity_bytes: source.capacity_bytes });
    const bs = source.block_size;
    const blocks = opts.sizeBytes / bs;
    const per = (1024 * 1024) / bs;
    for (let lba = 0; lba < blocks; lba += per) {
      await s.write16(BigInt(lba), stampBlocks(BigInt(lba), Math.min(per, blocks - lba), bs, 1n));
    }
    await s.synchronizeCache16();
    step('write-source', { blocks, sequence: 1 });
    const copy = await hostCopy(s, d, { depth: 8 });
    step('copy', { path: 'host', bytes: Number(copy.bytes), seconds: copy.seconds });
    let checked = 0;
    for (let lba = 0; lba < blocks; lba += per) {
      const n = Math.min(per, blocks - lba);
      const data = await d.read16(BigInt(lba), n);
      for (let i = 0; i < n; i++) {
        const c = checkBlock(data.subarray(i * bs, (i + 1) * bs), BigInt(lba + i), 1n);
        if (!c.ok) throw new AgentError('ERR_INTERNAL', `drill verification failed at LBA ${lba + i}: ${c.why}`);
        checked++;
      }
    }
    const source_sha256 = await fileSha256(src, opts.sizeBytes);
    const secondary_sha256 = await fileSha256(sec, opts.sizeBytes);
    step('verify', { source_sha256, secondary_sha256, stamped_blocks_checked: checked });
    return {
      ok: source_sha256 === secondary_sha256,
      source,
      secondary,
      bytes: opts.sizeBytes,
      copy_seconds: copy.seconds,
      copy_mib_per_s: opts.sizeBytes / 1048576 / copy.seconds,
      source_sha256,
      secondary_sha256,
      stamped_blocks_checked: checked,
    };
  } finally {
    await s?.close();
    await d?.close();
    await tgt.stop();
    if (!opts.keep) for (const f of [src, sec]) fs.rmSync(f, { force: true });
  }
}

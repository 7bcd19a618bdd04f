import crypto from 'node:crypto';
import { decodeSuperblock, ObfPolicy, ObfReason, ObfState, OBF_LOG_START_LBA, type ObfSuperblock } from '../../src/cow/obf-format';
import { scanLog } from '../../src/cow/obf-log';
import type { SessionJournal, SessionRecord } from '../../src/cow/session';
import type { Store } from '../../src/store/store';

/** A fresh ACTIVE superblock for an OBF of `capacityBlocks` blocks capturing `source`. */
export function activeSuperblock(source: Store, capacityBlocks: bigint, opts: { blockSize?: number; chunkSize?: number } = {}): ObfSuperblock {
  const now = Date.now();
  return {
    blockSize: opts.blockSize ?? 512,
    snapshotId: crypto.randomUUID(),
    seriesId: crypto.randomUUID(),
    sourceDesignator: { designatorType: 3, designator: Buffer.from(source.identity.naa ?? Buffer.alloc(16, 1)) },
    sourceBlockSize: source.blockSize,
    sourceCapacity: source.blocks,
    chunkSize: opts.chunkSize ?? 64 * 1024,
    institutionTimeMs: now,
    state: ObfState.ACTIVE,
    policy: ObfPolicy.PROTECT_APPLICATION,
    reason: ObfReason.NONE,
    logStartLba: OBF_LOG_START_LBA,
    capacityBlocks,
    generation: 1n,
    updatedTimeMs: now,
    markerSequence: 0n,
    sealedRecordCount: 0n,
  };
}

/** A session journal in memory; `fail` makes saves fail (the journal's disk gone). */
export class MemJournal implements SessionJournal {
  readonly saved: SessionRecord[] = [];
  fail = false;
  async save(r: SessionRecord): Promise<void> {
    if (this.fail) throw new Error('journal disk gone');
    this.saved.push({ ...r });
  }
  last(): SessionRecord {
    return this.saved[this.saved.length - 1];
  }
}

export async function readAll(s: Store): Promise<Buffer> {
  return Buffer.from(await s.read(0n, Number(s.blocks)));
}

/** The image as of T0 rebuilt independently of the session: source now + every OBF record over it. */
export async function rebuild(source: Store, obf: Store): Promise<Buffer> {
  const img = await readAll(source);
  const sb = decodeSuperblock(await obf.read(0n, 1));
  const scan = await scanLog((lba, n) => obf.read(lba, n), sb);
  for (const r of scan.records) {
    const data = await obf.read(r.dataLba, r.dataBlocks);
    data.copy(img, Number(r.sourceLba) * source.blockSize);
  }
  return img;
}

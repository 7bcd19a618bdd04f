import crypto from 'node:crypto';
import { ObfPolicy, ObfReason, ObfState, OBF_LOG_START_LBA, type ObfSuperblock } from '../../src/obf/format';
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

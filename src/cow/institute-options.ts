/**
 * What institute (docs/method.md 602) is given, its defaults, and the checks made before a
 * snapshot is set up: the arguments against the source and the OBF, and whether the OBF may be
 * overwritten (docs/cow.md "Institute (602)", step 0).
 */
import { AgentError } from '../errors';
import type { Store } from '../store/store';
import { DEFAULT_CHUNK_BYTES, decodeSuperblock, ObfState, obfStateName, OBF_MAGIC, type ObfSuperblock } from '../obf/format';
import type { Logger } from '../util/log';
import { isAllZero } from '../util/zero';
import { isSnapshotSource, type CowStore } from './cow-store';
import type { SessionJournal, SnapshotPolicy } from './session-record';

export { DEFAULT_CHUNK_BYTES } from '../obf/format';
export const DEFAULT_COW_TIMEOUT_MS = 5_000;
export const DEFAULT_DRAIN_TIMEOUT_MS = 2_000;
/** The largest chunk (its original is read into one buffer). */
const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

export interface InstituteOptions {
  source: CowStore;
  sourceKey: string;
  obf: Store;
  obfSpec: string;
  journal: SessionJournal;
  chunkBytes?: number;
  policy?: SnapshotPolicy;
  cowTimeoutMs?: number;
  drainTimeoutMs?: number;
  seriesId?: string;
  /**
   * Institute on an OBF that holds something else (data, or the superblock of a snapshot that
   * may still be capturing elsewhere): refused unless this is set (see checkObfIsFree).
   */
  overwriteObf?: boolean;
  /** Snapshots this target knows have ended: an ACTIVE superblock of one is no longer in use. */
  endedHere?: (snapshotId: string) => boolean;
  log: Logger;
}

/** The settings of a new snapshot: the options with their defaults. */
export interface InstituteSettings {
  chunkBytes: number;
  policy: SnapshotPolicy;
  cowTimeoutMs: number;
}

/**
 * The options' settings, checked against the source and the OBF: the source has no snapshot,
 * a chunk is a whole number of both block sizes (at most 64 MiB), the source is a whole number
 * of OBF blocks, the OBF is writable, is not the source, and holds at least one chunk's record.
 */
export function instituteSettings(o: InstituteOptions): InstituteSettings {
  const src = o.source;
  const chunkBytes = o.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const policy = o.policy ?? 'protect-application';
  const cowTimeoutMs = o.cowTimeoutMs ?? DEFAULT_COW_TIMEOUT_MS;
  const B = o.obf.blockSize;
  const sbs = src.blockSize;
  if (src.claimed || src.capturing || src.held) throw new AgentError('ERR_SNAPSHOT_STATE', `${o.sourceKey} already has an active snapshot; terminate it first`);
  if (!Number.isInteger(chunkBytes) || chunkBytes < Math.max(B, sbs) || chunkBytes % B !== 0 || chunkBytes % sbs !== 0 || chunkBytes > MAX_CHUNK_BYTES) {
    throw new AgentError('ERR_INVALID_ARG', `chunk size ${chunkBytes} must be a multiple of the source block size ${sbs} and the OBF block size ${B}, at most 64 MiB (default 64 KiB)`);
  }
  if ((src.blocks * BigInt(sbs)) % BigInt(B) !== 0n) {
    throw new AgentError('ERR_INVALID_ARG', `the source (${src.blocks} blocks of ${sbs}) is not a whole number of the OBF's ${B}-byte blocks: use an OBF with ${sbs}-byte blocks`);
  }
  if (o.obf.readOnly) throw new AgentError('ERR_INVALID_ARG', `the OBF ${o.obfSpec} is read-only`);
  if (o.obf === src || src.wraps(o.obf)) throw new AgentError('ERR_INVALID_ARG', 'the OBF must not be the source LUN');
  // The superblock, one record's header and chunk, a MARKER and a SEAL.
  const minBlocks = 1n + 1n + BigInt(chunkBytes / B) + 2n;
  if (o.obf.blocks < minBlocks) throw new AgentError('ERR_INVALID_ARG', `the OBF ${o.obfSpec} has ${o.obf.blocks} blocks; at least ${minBlocks} are needed for one chunk`);
  return { chunkBytes, policy, cowTimeoutMs };
}

/**
 * An active snapshot's OBF is written below its filter (the capture commit), so it cannot be a
 * source, and a source cannot become an OBF. Synchronous: the caller claims the source right
 * after it, with no await between.
 */
export function checkNoClash(o: InstituteOptions): void {
  if (o.source.obfOf !== undefined) throw new AgentError('ERR_SNAPSHOT_STATE', `${o.sourceKey} is the OBF of active snapshot ${o.source.obfOf}; it cannot be a source now`);
  if (isSnapshotSource(o.obf)) {
    throw new AgentError('ERR_SNAPSHOT_STATE', `${o.obfSpec} is the source of an active snapshot; it cannot be an OBF now`);
  }
}

/** What institute reads of an OBF before it writes one there (checkObfIsFree). */
const OBF_CHECK_BYTES = 1024 * 1024;

/**
 * An OBF is free for a new snapshot when its first MiB is zeros (a blank LUN or file) or it
 * begins with an OBF superblock (a reused OBF; one torn or of another version too) of a snapshot
 * that no longer captures: SEALED, INVALID, or ACTIVE/MARKED on the OBF but ended here
 * (`endedHere`: the journal, not the superblock, records INVALID when the OBF failed). Anything
 * else is refused before a byte is written, with what to do:
 *  - other data: a partition table, a file system's superblock (ext4's at byte 1024, LVM's label
 *    in block 1, btrfs's at 64 KiB — hence a MiB, not block 0), a file's contents;
 *  - the superblock of an ACTIVE or MARKED snapshot this target does not know: it may still be
 *    capturing, from another target sharing the LUN. (Sessions of this target are checked by
 *    the manager before this.)
 * overwrite_obf takes the OBF whatever it holds.
 */
export async function checkObfIsFree(obf: Store, spec: string, endedHere?: (snapshotId: string) => boolean): Promise<void> {
  const blocks = Math.min(Number(obf.blocks), Math.ceil(OBF_CHECK_BYTES / obf.blockSize));
  const head = await obf.read(0n, blocks);
  if (head.subarray(0, OBF_MAGIC.length).equals(OBF_MAGIC)) {
    let sb: ObfSuperblock | undefined;
    try {
      sb = decodeSuperblock(head);
    } catch {
      return; // an OBF of another version, or a torn superblock: an OBF all the same
    }
    if ((sb.state === ObfState.ACTIVE || sb.state === ObfState.MARKED) && endedHere?.(sb.snapshotId) !== true) {
      throw new AgentError(
        'ERR_SNAPSHOT_STATE',
        `the OBF ${spec} holds snapshot ${sb.snapshotId}, ${obfStateName(sb.state)} and unknown to this target (it may be capturing from another target): give another OBF, or institute with overwrite_obf if that snapshot is gone`,
      );
    }
    return;
  }
  if (!isAllZero(head)) {
    throw new AgentError(
      'ERR_INVALID_ARG',
      `the OBF ${spec} holds data that is not an OBF (its first ${head.length >= OBF_CHECK_BYTES ? 'MiB is' : `${head.length} bytes are`} not zeros): give a blank LUN or a new file, or institute with overwrite_obf to overwrite it`,
    );
  }
}

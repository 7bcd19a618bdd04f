/**
 * `erase-obf` (docs/method.md 610): makes an OBF LUN blank for reuse (docs/obf-format.md,
 * "Erasing an OBF"). What is zeroed: block 0 (the superblock) to the end of the log as the
 * recovery scan finds it, and at least the first MiB — what institute reads to tell a blank LUN
 * from one holding data, where an older, longer log may have left records past this one's end —
 * or, with `all`, the whole LUN. Zeroing is by zeroBlocks: UNMAP or WRITE SAME with UNMAP where
 * deallocated blocks read back zeros, else written zeros.
 *
 * Refused before anything is written: without `yes`; a LUN whose block 0 is not an OBF
 * superblock of the LUN's block size, unless `force`; an OBF whose superblock says ACTIVE or
 * MARKED (a snapshot may still be capturing into it: terminate it first), unless `force`.
 */
import { AgentError, ArgumentError, DecodeError } from '../errors';
import { IscsiSession, type SessionOptions } from '../initiator/session';
import { redactUrl } from '../initiator/url';
import { decodeSuperblock, ObfState, obfStateName, type ObfSuperblock } from '../obf/format';
import { scanLog } from '../obf/log';
import { zeroBlocks, type ZeroMethod } from './zero-blocks';

export interface EraseObfOptions {
  /** The OBF LUN (iscsi://...). */
  obf: string;
  /** Must be true: erasing destroys the OBF's content. */
  yes?: boolean;
  /** Erase a LUN whose block 0 is not an OBF superblock, or an OBF still ACTIVE or MARKED. */
  force?: boolean;
  /** Zero the whole LUN, not only its used part. */
  all?: boolean;
  session?: SessionOptions;
  signal?: AbortSignal;
  onProgress?: (doneBlocks: bigint, totalBlocks: bigint, blockSize: number) => void;
}

export interface EraseObfResult {
  obf: string;
  /** The snapshot the superblock named, and its state; absent when block 0 was not an OBF (--force). */
  snapshot_id?: string;
  obf_state?: string;
  /** Valid DATA records in the log that was erased. */
  records?: number;
  /** The log's end as the scan found it: blocks [0, used_blocks) were the used OBF. */
  used_blocks?: bigint;
  /** Blocks [0, erased_blocks) were zeroed. */
  erased_blocks: bigint;
  erased_bytes: bigint;
  block_size: number;
  method: ZeroMethod;
  seconds: number;
}

/** What institute reads of an OBF to tell blank from data (src/cow/institute-options.ts). */
const INSTITUTE_CHECK_BYTES = 1048576;

/** What block 0 and the log say: the superblock and the used blocks, or nothing (not an OBF, --force). */
interface Found {
  sb?: ObfSuperblock;
  records?: number;
  usedBlocks?: bigint;
}

export async function eraseObf(o: EraseObfOptions): Promise<EraseObfResult> {
  const t0 = process.hrtime.bigint();
  if (!o.yes) throw new ArgumentError(`erase-obf destroys the OBF's superblock and log on ${redactUrl(o.obf)}: add --yes`);
  const s = await IscsiSession.connect(o.obf, o.session);
  try {
    const cap = await s.readCapacity16();
    const blocks = cap.returnedLogicalBlockAddress + 1n;
    const B = cap.logicalBlockLength;
    const found = await inspect(s, blocks, B, o.force === true);
    const head = BigInt(Math.ceil(INSTITUTE_CHECK_BYTES / B));
    let end = o.all ? blocks : found.usedBlocks !== undefined && found.usedBlocks > head ? found.usedBlocks : head;
    if (end > blocks) end = blocks;
    const method = await zeroBlocks(s, 0n, end, { signal: o.signal, onProgress: (done, total) => o.onProgress?.(done, total, B) });
    await s.synchronizeCache16();
    return {
      obf: redactUrl(s.url),
      snapshot_id: found.sb?.snapshotId,
      obf_state: found.sb ? obfStateName(found.sb.state) : undefined,
      records: found.records,
      used_blocks: found.usedBlocks,
      erased_blocks: end,
      erased_bytes: end * BigInt(B),
      block_size: B,
      method,
      seconds: Number(process.hrtime.bigint() - t0) / 1e9,
    };
  } finally {
    await s.close().catch(() => undefined);
  }
}

/** Reads block 0 and the log; refuses (see the file's header) unless `force`. */
async function inspect(s: IscsiSession, blocks: bigint, blockSize: number, force: boolean): Promise<Found> {
  const name = redactUrl(s.url);
  let sb: ObfSuperblock;
  try {
    sb = decodeSuperblock(await s.read16(0n, 1));
    if (sb.blockSize !== blockSize) throw new DecodeError('OBF superblock', 12, `block size ${sb.blockSize} is not the LUN's ${blockSize}`);
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
    if (force) return {};
    throw new AgentError('ERR_NOT_AN_OBF', `${name} is not an OBF (block 0 is not an OBF superblock: ${err.message}): check the URL, or add --force to erase it all the same`, { cause: err });
  }
  if ((sb.state === ObfState.ACTIVE || sb.state === ObfState.MARKED) && !force) {
    throw new AgentError(
      'ERR_SNAPSHOT_STATE',
      `${name} holds snapshot ${sb.snapshotId}, ${obfStateName(sb.state)}: it may still be capturing into this OBF; terminate it first (xcopy-agent snapshot terminate ${sb.snapshotId}), or add --force if that snapshot is gone`,
    );
  }
  const scan = await scanLog((lba, n) => s.read16(lba, n), sb, { capacityBlocks: sb.capacityBlocks < blocks ? sb.capacityBlocks : blocks });
  return { sb, records: scan.records.length, usedBlocks: scan.endLba };
}

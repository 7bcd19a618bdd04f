/**
 * The per-extent SHA-256 of the image as of 602 (docs/secondary-format.md, "Extent hash table"),
 * computed by the target that holds the snapshot, from its view (the management API's
 * snapshot_hash), while the outboard copy runs: no read of the image back through iSCSI, and a
 * hash that is independent of the copy it later checks (docs/backup.md, "Hashes from the view").
 * The same for a LUN of the target as it reads now (lun_hash), for `restore`'s check.
 */
import { AgentError } from '../errors';
import { ManagementError, RpcErrorCode, type ManagementClient } from '../mgmt';
import * as secondary from '../secondary';

/** Bytes of image per call: long enough to keep the target busy, short enough to stop promptly. */
const CALL_BYTES = 256 * 1024 * 1024;

export interface ViewHashOptions {
  mgmt: Pick<ManagementClient, 'call'>;
  snapshotId: string;
  layout: secondary.SecondaryLayout;
  signal?: AbortSignal;
  /** Called after each call with the image blocks hashed so far. */
  onProgress?: (doneBlocks: bigint) => void;
}

/** True when the error says the target has no such hashing method (a target older than this agent). */
export function noViewHashing(err: unknown): boolean {
  return err instanceof ManagementError && err.rpcCode === RpcErrorCode.METHOD_NOT_FOUND;
}

/** The extents' digests, in extent order, from the snapshot's view. */
export function viewExtentHashes(o: ViewHashOptions): Promise<Buffer[]> {
  return targetExtentHashes(o, 'snapshot_hash', { id: o.snapshotId }, { first: 0, count: o.layout.extents });
}

export interface LunHashOptions extends Omit<ViewHashOptions, 'snapshotId'> {
  /** The LUN's NAA designator (VPD 83h, hex), as lun_list gives it. */
  naa: string;
  /** The extents hashed (default: all of them). */
  extents?: { first: number; count: number };
}

/**
 * The digests of extents of a LUN of the target as it reads now (lun_hash), in extent order: a
 * LUN a copy was restored onto, checked against the copy's hash table where its data is.
 */
export function lunExtentHashes(o: LunHashOptions): Promise<Buffer[]> {
  return targetExtentHashes(o, 'lun_hash', { naa: o.naa }, o.extents ?? { first: 0, count: o.layout.extents });
}

async function targetExtentHashes(o: Omit<ViewHashOptions, 'snapshotId'>, method: string, which: object, extents: { first: number; count: number }): Promise<Buffer[]> {
  const L = o.layout;
  const B = BigInt(L.blockSize);
  const extentBlocks = L.extentBytes / L.blockSize;
  const perCall = Math.max(1, Math.floor(CALL_BYTES / L.extentBytes));
  const hashes: Buffer[] = [];
  const end = extents.first + extents.count;
  for (let i = extents.first; i < end; i += perCall) {
    if (o.signal?.aborted) throw new AgentError('ERR_INTERRUPTED', 'hashing interrupted');
    const n = Math.min(perCall, end - i);
    const first = secondary.extentRange(L, i);
    const last = secondary.extentRange(L, i + n - 1);
    const lba = first.offset / B;
    const blocks = (last.offset + BigInt(last.bytes)) / B - lba;
    const r = await o.mgmt.call<{ block_size: number; hashes: string[] }>(method, { ...which, lba: lba.toString(), blocks: blocks.toString(), piece_blocks: extentBlocks });
    if (r.block_size !== L.blockSize || r.hashes.length !== n || r.hashes.some((h) => !/^[0-9a-f]{64}$/.test(h))) {
      throw new AgentError('ERR_MGMT_PROTOCOL', `${method} answered ${r.hashes?.length} digests of ${r.block_size}-byte blocks for ${n} extents of ${L.blockSize}-byte blocks`);
    }
    for (const h of r.hashes) hashes.push(Buffer.from(h, 'hex'));
    o.onProgress?.(lba + blocks);
  }
  return hashes;
}

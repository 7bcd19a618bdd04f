/**
 * The per-extent SHA-256 of the image as of 602 (docs/secondary-format.md, "Extent hash table"),
 * computed by the target that holds the snapshot, from its view (the management API's
 * snapshot_hash), while the outboard copy runs: no read of the image back through iSCSI, and a
 * hash that is independent of the copy it later checks (docs/backup.md, "Hashes from the view").
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

/** True when the error says the target has no snapshot_hash (a target older than this agent). */
export function noViewHashing(err: unknown): boolean {
  return err instanceof ManagementError && err.rpcCode === RpcErrorCode.METHOD_NOT_FOUND;
}

/** The extents' digests, in extent order, from the snapshot's view. */
export async function viewExtentHashes(o: ViewHashOptions): Promise<Buffer[]> {
  const L = o.layout;
  const B = BigInt(L.blockSize);
  const extentBlocks = L.extentBytes / L.blockSize;
  const perCall = Math.max(1, Math.floor(CALL_BYTES / L.extentBytes));
  const hashes: Buffer[] = [];
  for (let i = 0; i < L.extents; i += perCall) {
    if (o.signal?.aborted) throw new AgentError('ERR_INTERRUPTED', 'hashing interrupted');
    const n = Math.min(perCall, L.extents - i);
    const first = secondary.extentRange(L, i);
    const last = secondary.extentRange(L, i + n - 1);
    const lba = first.offset / B;
    const blocks = (last.offset + BigInt(last.bytes)) / B - lba;
    const r = await o.mgmt.call<{ block_size: number; hashes: string[] }>('snapshot_hash', { id: o.snapshotId, lba: lba.toString(), blocks: blocks.toString(), piece_blocks: extentBlocks });
    if (r.block_size !== L.blockSize || r.hashes.length !== n || r.hashes.some((h) => !/^[0-9a-f]{64}$/.test(h))) {
      throw new AgentError('ERR_MGMT_PROTOCOL', `snapshot_hash answered ${r.hashes?.length} digests of ${r.block_size}-byte blocks for ${n} extents of ${L.blockSize}-byte blocks`);
    }
    for (const h of r.hashes) hashes.push(Buffer.from(h, 'hex'));
    o.onProgress?.(lba + blocks);
  }
  return hashes;
}

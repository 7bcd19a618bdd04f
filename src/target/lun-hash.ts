/**
 * SHA-256 of consecutive pieces of a LUN's current content, read from its store in the target
 * (the management API's lun_hash): what `restore` checks a restored LUN with, against the extent
 * hash table of the copy (docs/secondary-format.md, "Extent hash table"), instead of reading the
 * whole LUN back through iSCSI (docs/restore.md, "The check"). The same hashing as a snapshot's
 * image (snapshots/image-hash.ts: lanes, batches, digests on the thread pool), over the LU's
 * store: what a READ of the LUN returns now.
 */
import { AgentError } from '../errors';
import type { LogicalUnit } from './scsi';
import type { TargetModel, TargetPortalGroup } from './target';
import { checkHashRange, hashImagePieces, type ImageSource } from './snapshots/image-hash';

export interface LunOfTarget {
  tpg: TargetPortalGroup;
  lun: number;
  lu: LogicalUnit;
}

/** The LUN whose NAA designator (VPD 83h, hex) is `naa`, in any TPG of the model. */
export function lunByNaa(model: TargetModel, naa: string): LunOfTarget {
  if (!/^(?:[0-9a-f]{2}){8,16}$/i.test(naa)) throw new AgentError('ERR_INVALID_ARG', `naa ${JSON.stringify(naa)} is not an NAA designator in hex (lun_list shows the LUNs' naa)`);
  const want = naa.toLowerCase();
  for (const tpg of model.allTpgs()) {
    for (const [lun, lu] of tpg.luns) if (lu.naa.toString('hex') === want) return { tpg, lun, lu };
  }
  throw new AgentError('ERR_INVALID_ARG', `no LUN with NAA designator ${want} here (lun_list shows the LUNs)`);
}

/** The digests of pieces of blocks [lba, lba + blocks) of the LUN as it reads now; ERR_INVALID_ARG for a range outside it. */
export async function hashLun(at: LunOfTarget, range: { lba: bigint; blocks: bigint; pieceBlocks: number }): Promise<{ target: string; tpg: number; lun: number; naa: string; block_size: number; hashes: string[] }> {
  const store = at.lu.store;
  const r = { ...range, blockSize: at.lu.blockSize };
  checkHashRange(r, store.blocks, `LUN ${at.lun} of ${at.tpg.node.name}`);
  const src: ImageSource = { readImage: (lba, count, into) => store.read(lba, count, into) };
  const hashes = await hashImagePieces(src, r);
  return { target: at.tpg.node.name, tpg: at.tpg.tag, lun: at.lun, naa: at.lu.naa.toString('hex'), block_size: r.blockSize, hashes: hashes.map((h) => h.toString('hex')) };
}

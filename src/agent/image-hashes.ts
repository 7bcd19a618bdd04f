/**
 * The SHA-256 of each extent of a secondary's image as of 602 (docs/secondary-format.md,
 * "Extent hash table"), read from a secondary — a LUN, or a file it was exported to. Where the
 * image there is not yet exact (append mode before 610), the records of the OBF log are laid over
 * each extent in memory first, so the hashes are those of the image as of 602 all the same.
 */
import type { DataRecordRef } from '../obf/log';
import * as secondary from '../secondary';
import type { ReadBlocks } from './secondary-lun';

/** Extents read ahead while hashing. */
const READ_AHEAD = 4;

export interface ImageHashOptions {
  layout: secondary.SecondaryLayout;
  /** Reads the image (blocks of layout.blockSize). */
  read: ReadBlocks;
  /**
   * Records to lay over the image before hashing, and how to read their data (OBF blocks, of
   * the image's block size: append mode requires it).
   */
  overlay?: { records: readonly DataRecordRef[]; read: ReadBlocks };
  /** Extents to hash, from extent 0 (default: all of the layout's). */
  extents?: number;
  /** Called before each extent is read (e.g. to stop on an interruption by throwing). */
  beforeExtent?: (index: number) => void;
  /** Called after each extent with the extents hashed so far. */
  onExtent?: (done: number, total: number) => void;
}

/** The extents' SHA-256 digests, in extent order (see the file's header). */
export async function imageExtentHashes(o: ImageHashOptions): Promise<Buffer[]> {
  const L = o.layout;
  const B = BigInt(L.blockSize);
  const total = o.extents ?? L.extents;
  const overlay = [...(o.overlay?.records ?? [])].sort((a, b) => (a.sourceLba < b.sourceLba ? -1 : a.sourceLba > b.sourceLba ? 1 : 0));
  const hashes: Buffer[] = [];
  const read = (i: number) => {
    const { offset, bytes } = secondary.extentRange(L, i);
    const p = o.read(offset / B, bytes / L.blockSize);
    p.catch(() => undefined); // awaited in order below; a failure ahead must not be unhandled meanwhile
    return p;
  };
  // READ_AHEAD extents in flight: the reads (through iSCSI), not SHA-256, bound this.
  const ahead: Array<Promise<Buffer>> = [];
  let k = 0;
  for (let i = 0; i < total; i++) {
    o.beforeExtent?.(i);
    while (ahead.length < READ_AHEAD && i + ahead.length < total) ahead.push(read(i + ahead.length));
    const { offset, bytes } = secondary.extentRange(L, i);
    const lba = offset / B;
    const data = await ahead.shift()!;
    const end = lba + BigInt(bytes / L.blockSize);
    while (k < overlay.length && overlay[k].sourceLba + BigInt(overlay[k].sourceBlocks) <= lba) k++;
    for (let j = k; j < overlay.length && overlay[j].sourceLba < end; j++) await layOver(o.overlay!.read, overlay[j], data, lba, end, L.blockSize);
    hashes.push(secondary.extentHash(data));
    o.onExtent?.(i + 1, total);
  }
  return hashes;
}

/** Copies the part of record `r` that falls in [lba, end) over `data` (which starts at `lba`); `read` reads the record's OBF blocks. */
export async function layOver(read: ReadBlocks, r: DataRecordRef, data: Buffer, lba: bigint, end: bigint, blockSize: number): Promise<void> {
  const from = r.sourceLba > lba ? r.sourceLba : lba;
  const to = r.sourceLba + BigInt(r.sourceBlocks) < end ? r.sourceLba + BigInt(r.sourceBlocks) : end;
  if (to <= from) return;
  const rec = await read(r.dataLba + (from - r.sourceLba), Number(to - from));
  rec.copy(data, Number(from - lba) * blockSize);
}

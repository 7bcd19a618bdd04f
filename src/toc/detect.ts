/**
 * Where the file system starts on a LUN (docs/toc.md, "Where the file system starts"): the whole
 * LUN, or a partition of an MBR (primary and logical, through the EBR chain) or a GPT; each
 * partition's content is identified by its signature (content.ts). The reads go through a
 * callback, so the same code serves a LUN, an image file and a test's buffer.
 */
import { DecodeError } from '../errors';
import { FileSystemError } from '../native/ext2fs';
import { identify, IDENTIFY_BYTES, type Content } from './content';
import {
  decodeGptEntries,
  decodeGptHeader,
  decodeMbr,
  gptEntryArrayBytes,
  gptTypeName,
  hasMbrSignature,
  isExtendedType,
  MbrType,
  mbrTypeName,
} from './partitions';

/** Reads `length` bytes at byte `offset` of the device (short only at its end). */
export type ReadAt = (offset: number, length: number) => Promise<Buffer>;

export interface Partition {
  /** 1-based, as Linux numbers them: MBR 1–4 primary, 5.. logical in chain order; GPT the entry's index. */
  index: number;
  scheme: 'mbr' | 'gpt';
  /** The table's type (MBR OS type or GPT type GUID), by name where known. */
  type: string;
  startLba: number;
  blocks: number;
  /** The partition's content by its signature. */
  content: Content;
  /** GPT: the partition's name. */
  name?: string;
}

export interface DeviceLayout {
  scheme: 'none' | 'mbr' | 'gpt';
  blockSize: number;
  partitions: Partition[];
  /** scheme 'none': what the whole device holds. */
  whole?: Content;
}

const MAX_LOGICAL = 128;

function lba(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DecodeError('partition table', 0, `${what} ${v} is too large`);
  return Number(v);
}

/** The partition table of the device and what each partition holds. */
export async function detectLayout(read: ReadAt, deviceBytes: number, blockSize: number): Promise<DeviceLayout> {
  const head = await read(0, Math.min(IDENTIFY_BYTES, deviceBytes));
  const whole = identify(head);
  // A file system's own boot sector may carry 55h AAh (FAT, NTFS): a known file system at byte 0 wins.
  if (whole.name !== 'unknown' || !hasMbrSignature(head)) return { scheme: 'none', blockSize, partitions: [], whole };
  let records;
  try {
    records = decodeMbr(head);
  } catch (e) {
    if (e instanceof DecodeError) return { scheme: 'none', blockSize, partitions: [], whole };
    throw e;
  }
  const deviceBlocks = Math.floor(deviceBytes / blockSize);
  const inside = (start: number, blocks: number) => start > 0 && blocks > 0 && start + blocks <= deviceBlocks;
  const content = async (startLba: number) => identify(await read(startLba * blockSize, Math.min(IDENTIFY_BYTES, deviceBytes - startLba * blockSize)));

  if (records.some((r) => r.osType === MbrType.GPT_PROTECTIVE)) {
    const header = decodeGptHeader(await read(blockSize, blockSize));
    const entryLba = lba(header.partitionEntryLba, 'PartitionEntryLBA');
    const array = await read(entryLba * blockSize, gptEntryArrayBytes(header));
    const partitions: Partition[] = [];
    for (const e of decodeGptEntries(array, header)) {
      const start = lba(e.startingLba, 'StartingLBA');
      const blocks = lba(e.endingLba - e.startingLba + 1n, 'partition size');
      if (!inside(start, blocks)) throw new DecodeError('GPT partition entry array', 0, `entry ${e.index} lies outside the device`);
      partitions.push({ index: e.index, scheme: 'gpt', type: gptTypeName(e.typeGuid), startLba: start, blocks, content: await content(start), name: e.name });
    }
    return { scheme: 'gpt', blockSize, partitions };
  }

  const partitions: Partition[] = [];
  for (const r of records) {
    if (!inside(r.startLba, r.sizeLba)) throw new DecodeError('MBR', 446 + 16 * r.slot, `partition ${r.slot + 1} lies outside the device`);
    if (isExtendedType(r.osType)) {
      partitions.push({ index: r.slot + 1, scheme: 'mbr', type: mbrTypeName(r.osType), startLba: r.startLba, blocks: r.sizeLba, content: { name: 'extended partition', supported: false } });
      // The EBR chain (UEFI 2.10 5.2.1; the logical partitions' records are relative to their EBR,
      // the link to the next EBR relative to the extended partition's start).
      const seen = new Set<number>();
      let ebr = r.startLba;
      let index = 5;
      while (ebr !== 0) {
        if (seen.has(ebr) || seen.size >= MAX_LOGICAL) throw new DecodeError('EBR', 0, `the chain of logical partitions loops or exceeds ${MAX_LOGICAL} (at LBA ${ebr})`);
        seen.add(ebr);
        if (ebr < r.startLba || ebr >= r.startLba + r.sizeLba) throw new DecodeError('EBR', 0, `LBA ${ebr} is outside the extended partition`);
        const recs = decodeMbr(await read(ebr * blockSize, 512), `EBR at LBA ${ebr}`);
        const logical = recs.find((x) => !isExtendedType(x.osType));
        const next = recs.find((x) => isExtendedType(x.osType));
        if (logical) {
          const start = ebr + logical.startLba;
          if (!inside(start, logical.sizeLba) || start + logical.sizeLba > r.startLba + r.sizeLba) {
            throw new DecodeError(`EBR at LBA ${ebr}`, 446, 'its logical partition lies outside the extended partition');
          }
          partitions.push({ index: index++, scheme: 'mbr', type: mbrTypeName(logical.osType), startLba: start, blocks: logical.sizeLba, content: await content(start) });
        }
        ebr = next ? r.startLba + next.startLba : 0;
      }
    } else {
      partitions.push({ index: r.slot + 1, scheme: 'mbr', type: mbrTypeName(r.osType), startLba: r.startLba, blocks: r.sizeLba, content: await content(r.startLba) });
    }
  }
  partitions.sort((a, b) => a.index - b.index);
  return { scheme: 'mbr', blockSize, partitions };
}

const describe = (p: Partition) => `partition ${p.index} (${p.type}, ${p.content.name})`;

/**
 * The byte where the file system to read starts: the partition asked for, else the whole device
 * when it holds ext2/3/4, else the one partition that does. Otherwise a FileSystemError
 * (ERR_FS_UNSUPPORTED) that names what was found and what to do.
 */
export function chooseFileSystem(layout: DeviceLayout, partition?: number): { offset: number; partition?: Partition } {
  if (partition !== undefined) {
    const p = layout.partitions.find((x) => x.index === partition);
    if (!p) {
      const have = layout.partitions.map((x) => x.index).join(', ') || 'none';
      throw new FileSystemError('ERR_FS_UNSUPPORTED', `no partition ${partition} on this LUN (partitions: ${have})`);
    }
    if (!p.content.supported) {
      throw new FileSystemError('ERR_FS_UNSUPPORTED', `${describe(p)} does not hold an ext2/3/4 file system; the table of contents reads ext2, ext3 and ext4 only`);
    }
    return { offset: p.startLba * layout.blockSize, partition: p };
  }
  if (layout.scheme === 'none') {
    if (layout.whole?.supported) return { offset: 0 };
    const found = layout.whole?.name === 'unknown' ? 'neither a partition table nor a known file system' : `${layout.whole?.name}, which is not supported`;
    throw new FileSystemError('ERR_FS_UNSUPPORTED', `the LUN holds ${found}; the table of contents reads ext2, ext3 and ext4, on the whole LUN or in an MBR or GPT partition`);
  }
  const ext = layout.partitions.filter((p) => p.content.supported);
  if (ext.length === 1) return { offset: ext[0].startLba * layout.blockSize, partition: ext[0] };
  const list = layout.partitions.map(describe).join('; ') || 'no partitions';
  if (ext.length === 0) {
    throw new FileSystemError('ERR_FS_UNSUPPORTED', `no ext2/3/4 file system in the ${layout.scheme.toUpperCase()} partitions: ${list}`);
  }
  throw new FileSystemError('ERR_FS_UNSUPPORTED', `${ext.length} partitions hold ext2/3/4 file systems (${list}): choose one with --partition N`);
}

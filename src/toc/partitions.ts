/**
 * Partition tables, pure codecs (no I/O): the legacy MBR with its extended partitions (EBR
 * chain) and the GUID Partition Table, as UEFI 2.10 defines them (5.2.1 "Legacy Master Boot
 * Record", 5.2.3 "Protective MBR", 5.3.2 "GPT Header", 5.3.3 "GPT Partition Entry Array").
 * Where a file system starts on a LUN (docs/toc.md, "Where the file system starts").
 */
import zlib from 'node:zlib';
import { DecodeError } from '../errors';

/** MBR partition types this module names (the OS type byte of a partition record). */
export const MbrType = {
  EMPTY: 0x00,
  EXTENDED_CHS: 0x05,
  NTFS_EXFAT: 0x07,
  FAT32_CHS: 0x0b,
  FAT32_LBA: 0x0c,
  EXTENDED_LBA: 0x0f,
  LINUX_SWAP: 0x82,
  LINUX: 0x83,
  LINUX_EXTENDED: 0x85,
  LINUX_LVM: 0x8e,
  GPT_PROTECTIVE: 0xee,
  EFI_SYSTEM: 0xef,
  LINUX_RAID: 0xfd,
} as const;

const MBR_TYPE_NAMES: Record<number, string> = {
  [MbrType.EXTENDED_CHS]: 'extended',
  [MbrType.NTFS_EXFAT]: 'NTFS/exFAT',
  [MbrType.FAT32_CHS]: 'FAT32',
  [MbrType.FAT32_LBA]: 'FAT32 (LBA)',
  [MbrType.EXTENDED_LBA]: 'extended (LBA)',
  [MbrType.LINUX_SWAP]: 'Linux swap',
  [MbrType.LINUX]: 'Linux',
  [MbrType.LINUX_EXTENDED]: 'Linux extended',
  [MbrType.LINUX_LVM]: 'Linux LVM',
  [MbrType.GPT_PROTECTIVE]: 'GPT protective',
  [MbrType.EFI_SYSTEM]: 'EFI System',
  [MbrType.LINUX_RAID]: 'Linux RAID autodetect',
};

export const mbrTypeName = (t: number): string => MBR_TYPE_NAMES[t] ?? `type 0x${t.toString(16).padStart(2, '0')}`;
export const isExtendedType = (t: number): boolean =>
  t === MbrType.EXTENDED_CHS || t === MbrType.EXTENDED_LBA || t === MbrType.LINUX_EXTENDED;

/** One of the four 16-byte partition records of an MBR or EBR (UEFI 2.10 Table 5-2). */
export interface MbrRecord {
  /** 0..3, the record's place in the table. */
  slot: number;
  bootIndicator: number;
  osType: number;
  /** STARTING LBA and SIZE IN LBA, in blocks of the device (relative as the table says). */
  startLba: number;
  sizeLba: number;
}

export const MBR_SIGNATURE_OFFSET = 510;
const MBR_RECORDS_OFFSET = 446;

/** True when the block holds the 55h AAh signature of an MBR (or an EBR, or any boot sector). */
export function hasMbrSignature(block: Buffer): boolean {
  return block.length >= 512 && block[MBR_SIGNATURE_OFFSET] === 0x55 && block[MBR_SIGNATURE_OFFSET + 1] === 0xaa;
}

/**
 * The non-empty partition records of an MBR or an EBR (its first 512 bytes). Throws a
 * DecodeError without the signature, or for a boot indicator other than 00h/80h (which tells a
 * boot sector of a file system from a partition table).
 */
export function decodeMbr(block: Buffer, structure = 'MBR'): MbrRecord[] {
  if (block.length < 512) throw new DecodeError(structure, block.length, `${block.length} bytes, 512 needed`);
  if (!hasMbrSignature(block)) throw new DecodeError(structure, MBR_SIGNATURE_OFFSET, 'no 55h AAh signature');
  const out: MbrRecord[] = [];
  for (let slot = 0; slot < 4; slot++) {
    const at = MBR_RECORDS_OFFSET + 16 * slot;
    const boot = block[at];
    if (boot !== 0x00 && boot !== 0x80) {
      throw new DecodeError(structure, at, `partition record ${slot} has boot indicator 0x${boot.toString(16)} (00h or 80h)`);
    }
    const osType = block[at + 4];
    const startLba = block.readUInt32LE(at + 8);
    const sizeLba = block.readUInt32LE(at + 12);
    if (osType === MbrType.EMPTY || sizeLba === 0) continue;
    out.push({ slot, bootIndicator: boot, osType, startLba, sizeLba });
  }
  return out;
}

/** Encodes an MBR (or EBR) of up to four records: for tests and for tools; zero elsewhere. */
export function encodeMbr(records: Array<Omit<MbrRecord, 'slot'> & { slot?: number }>): Buffer {
  const b = Buffer.alloc(512);
  records.forEach((r, i) => {
    const at = MBR_RECORDS_OFFSET + 16 * (r.slot ?? i);
    b[at] = r.bootIndicator;
    b[at + 4] = r.osType;
    b.writeUInt32LE(r.startLba, at + 8);
    b.writeUInt32LE(r.sizeLba, at + 12);
  });
  b[MBR_SIGNATURE_OFFSET] = 0x55;
  b[MBR_SIGNATURE_OFFSET + 1] = 0xaa;
  return b;
}

/** The GPT header (UEFI 2.10 Table 5-5). LBAs are bigints (they are 64-bit fields). */
export interface GptHeader {
  revision: number;
  headerSize: number;
  myLba: bigint;
  alternateLba: bigint;
  firstUsableLba: bigint;
  lastUsableLba: bigint;
  diskGuid: string;
  partitionEntryLba: bigint;
  numberOfPartitionEntries: number;
  sizeOfPartitionEntry: number;
  partitionEntryArrayCrc32: number;
}

export const GPT_SIGNATURE = Buffer.from('EFI PART', 'latin1');
const GPT_HEADER_MIN = 92;

/** A GUID's text form (the first three fields are little-endian on disk, UEFI 2.10 Appendix A). */
export function guidToString(b: Buffer, at = 0): string {
  const h = (s: number, e: number, le: boolean) => {
    const part = Buffer.from(b.subarray(at + s, at + e));
    return (le ? part.reverse() : part).toString('hex');
  };
  return `${h(0, 4, true)}-${h(4, 6, true)}-${h(6, 8, true)}-${h(8, 10, false)}-${h(10, 16, false)}`.toUpperCase();
}

export function guidToBytes(guid: string): Buffer {
  const hex = guid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new RangeError(`not a GUID: ${guid}`);
  const b = Buffer.from(hex, 'hex');
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return b;
}

/**
 * Decodes the GPT header in `block` (the device's LBA 1, a whole block). Checks the signature,
 * the header size and its CRC32 (computed with the CRC field zero, 5.3.2).
 */
export function decodeGptHeader(block: Buffer): GptHeader {
  const S = 'GPT header';
  if (block.length < 512) throw new DecodeError(S, block.length, `${block.length} bytes, 512 needed`);
  if (!block.subarray(0, 8).equals(GPT_SIGNATURE)) throw new DecodeError(S, 0, 'no "EFI PART" signature');
  const headerSize = block.readUInt32LE(12);
  if (headerSize < GPT_HEADER_MIN || headerSize > block.length) {
    throw new DecodeError(S, 12, `header size ${headerSize} (92 up to the block size, ${block.length})`);
  }
  const copy = Buffer.from(block.subarray(0, headerSize));
  copy.writeUInt32LE(0, 16);
  const crc = block.readUInt32LE(16);
  if (zlib.crc32(copy) !== crc) throw new DecodeError(S, 16, 'header CRC32 does not match');
  const h: GptHeader = {
    revision: block.readUInt32LE(8),
    headerSize,
    myLba: block.readBigUInt64LE(24),
    alternateLba: block.readBigUInt64LE(32),
    firstUsableLba: block.readBigUInt64LE(40),
    lastUsableLba: block.readBigUInt64LE(48),
    diskGuid: guidToString(block, 56),
    partitionEntryLba: block.readBigUInt64LE(72),
    numberOfPartitionEntries: block.readUInt32LE(80),
    sizeOfPartitionEntry: block.readUInt32LE(84),
    partitionEntryArrayCrc32: block.readUInt32LE(88),
  };
  if (h.myLba !== 1n) throw new DecodeError(S, 24, `MyLBA is ${h.myLba}, 1 expected for the primary header`);
  if (h.sizeOfPartitionEntry < 128 || h.sizeOfPartitionEntry % 8 !== 0 || h.sizeOfPartitionEntry > 4096) {
    throw new DecodeError(S, 84, `SizeOfPartitionEntry ${h.sizeOfPartitionEntry} (128 × 2^n)`);
  }
  if (h.numberOfPartitionEntries === 0 || h.numberOfPartitionEntries > 16384) {
    throw new DecodeError(S, 80, `NumberOfPartitionEntries ${h.numberOfPartitionEntries} (1..16384)`);
  }
  if (h.firstUsableLba > h.lastUsableLba) throw new DecodeError(S, 40, 'FirstUsableLBA is after LastUsableLBA');
  if (h.partitionEntryLba < 2n) throw new DecodeError(S, 72, `PartitionEntryLBA ${h.partitionEntryLba} (≥ 2)`);
  return h;
}

/** Bytes of the partition entry array the header describes. */
export const gptEntryArrayBytes = (h: GptHeader): number => h.numberOfPartitionEntries * h.sizeOfPartitionEntry;

/** One used GPT partition entry (UEFI 2.10 Table 5-6); `index` counts from 1, as tools do. */
export interface GptEntry {
  index: number;
  typeGuid: string;
  uniqueGuid: string;
  startingLba: bigint;
  endingLba: bigint;
  attributes: bigint;
  name: string;
}

/** The used entries of the array (type GUID not zero), after checking the array's CRC32. */
export function decodeGptEntries(array: Buffer, h: GptHeader): GptEntry[] {
  const S = 'GPT partition entry array';
  const bytes = gptEntryArrayBytes(h);
  if (array.length < bytes) throw new DecodeError(S, array.length, `${array.length} bytes, ${bytes} needed`);
  if (zlib.crc32(array.subarray(0, bytes)) !== h.partitionEntryArrayCrc32) throw new DecodeError(S, 0, 'CRC32 does not match the header');
  const out: GptEntry[] = [];
  for (let i = 0; i < h.numberOfPartitionEntries; i++) {
    const at = i * h.sizeOfPartitionEntry;
    const type = array.subarray(at, at + 16);
    if (type.every((x) => x === 0)) continue;
    const startingLba = array.readBigUInt64LE(at + 32);
    const endingLba = array.readBigUInt64LE(at + 40);
    if (endingLba < startingLba) throw new DecodeError(S, at + 40, `entry ${i + 1}: EndingLBA before StartingLBA`);
    if (startingLba < h.firstUsableLba || endingLba > h.lastUsableLba) {
      throw new DecodeError(S, at + 32, `entry ${i + 1}: LBAs ${startingLba}..${endingLba} outside the usable ${h.firstUsableLba}..${h.lastUsableLba}`);
    }
    const nameRaw = array.subarray(at + 56, at + 128).toString('utf16le');
    const nul = nameRaw.indexOf('\0');
    out.push({
      index: i + 1,
      typeGuid: guidToString(array, at),
      uniqueGuid: guidToString(array, at + 16),
      startingLba,
      endingLba,
      attributes: array.readBigUInt64LE(at + 48),
      name: nul >= 0 ? nameRaw.slice(0, nul) : nameRaw,
    });
  }
  return out;
}

/** Partition type GUIDs this module names (UEFI 2.10 Table 5-7, and the Discoverable Partitions Specification). */
export const GptType: Record<string, string> = {
  'C12A7328-F81F-11D2-BA4B-00A0C93EC93B': 'EFI System',
  '21686148-6449-6E6F-744E-656564454649': 'BIOS boot',
  '0FC63DAF-8483-4772-8E79-3D69D8477DE4': 'Linux filesystem',
  '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709': 'Linux root (x86-64)',
  '933AC7E1-2EB4-4F13-B844-0E14E2AEF915': 'Linux home',
  'E6D6D379-F507-44C2-A23C-238F2A3DF928': 'Linux LVM',
  '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F': 'Linux swap',
  'A19D880F-05FC-4D3B-A006-743F0F84911E': 'Linux RAID',
  'CA7D7CCB-63ED-4C53-861C-1742536059CC': 'Linux LUKS',
  'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7': 'Microsoft basic data',
  'E3C9E316-0B5C-4DB8-817D-F92DF00215AE': 'Microsoft reserved',
};
export const gptTypeName = (guid: string): string => GptType[guid] ?? guid;

/** Encodes a primary GPT (header block and entry array) for tests: `entries` at indexes 1.. */
export function encodeGpt(
  blockSize: number,
  capacityBlocks: bigint,
  entries: Array<{ typeGuid: string; uniqueGuid: string; startingLba: bigint; endingLba: bigint; name?: string }>,
  diskGuid = '00000000-0000-0000-0000-000000000001',
): { header: Buffer; array: Buffer } {
  const count = 128;
  const array = Buffer.alloc(count * 128);
  entries.forEach((e, i) => {
    const at = i * 128;
    guidToBytes(e.typeGuid).copy(array, at);
    guidToBytes(e.uniqueGuid).copy(array, at + 16);
    array.writeBigUInt64LE(e.startingLba, at + 32);
    array.writeBigUInt64LE(e.endingLba, at + 40);
    array.write((e.name ?? '').slice(0, 36), at + 56, 'utf16le');
  });
  const arrayBlocks = BigInt(Math.ceil(array.length / blockSize));
  const header = Buffer.alloc(blockSize);
  GPT_SIGNATURE.copy(header, 0);
  header.writeUInt32LE(0x00010000, 8);
  header.writeUInt32LE(92, 12);
  header.writeBigUInt64LE(1n, 24);
  header.writeBigUInt64LE(capacityBlocks - 1n, 32);
  header.writeBigUInt64LE(2n + arrayBlocks, 40);
  header.writeBigUInt64LE(capacityBlocks - 2n - arrayBlocks, 48);
  guidToBytes(diskGuid).copy(header, 56);
  header.writeBigUInt64LE(2n, 72);
  header.writeUInt32LE(count, 80);
  header.writeUInt32LE(128, 84);
  header.writeUInt32LE(zlib.crc32(array), 88);
  header.writeUInt32LE(zlib.crc32(header.subarray(0, 92)), 16);
  return { header, array };
}

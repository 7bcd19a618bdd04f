/**
 * What a partition (or a whole LUN) holds, by the signatures of the on-disk formats, so that the
 * user is told what was found when it is not an ext2/3/4 file system (issue 15: "what is not
 * supported named, e.g. LVM, XFS, NTFS"). Pure: takes the first bytes of the partition.
 * Each entry names where its format defines the signature.
 */

/** Bytes to read from a partition's start for identify(): up to btrfs's superblock magic. */
export const IDENTIFY_BYTES = 0x10048;

export interface Content {
  /** A short name: ext2, ext3, ext4, xfs, btrfs, LVM2 PV, LUKS, NTFS, ... or 'unknown'. */
  name: string;
  /** True for what the table of contents reads (ext2/3/4). */
  supported: boolean;
}

const at = (b: Buffer, off: number, s: string) =>
  b.length >= off + s.length && b.subarray(off, off + s.length).equals(Buffer.from(s, 'latin1'));

/** The ext2/3/4 superblock's fields read here (ext4 "Super Block" layout, at byte 1024). */
const EXT_SUPERBLOCK = 1024;
const EXT_MAGIC = 0xef53;
const EXT3_FEATURE_COMPAT_HAS_JOURNAL = 0x0004;
const EXT4_INCOMPAT_EXT4_ONLY = 0x0040 /* extents */ | 0x0080 /* 64bit */ | 0x0200 /* flex_bg */ | 0x8000; /* inline_data */

/** Which of ext2, ext3, ext4 the superblock looks like (as blkid names them), or undefined. */
function ext(b: Buffer): string | undefined {
  if (b.length < EXT_SUPERBLOCK + 0x68 || b.readUInt16LE(EXT_SUPERBLOCK + 0x38) !== EXT_MAGIC) return undefined;
  const compat = b.readUInt32LE(EXT_SUPERBLOCK + 0x5c);
  const incompat = b.readUInt32LE(EXT_SUPERBLOCK + 0x60);
  if (incompat & EXT4_INCOMPAT_EXT4_ONLY) return 'ext4';
  return compat & EXT3_FEATURE_COMPAT_HAS_JOURNAL ? 'ext3' : 'ext2';
}

/** Signatures of formats the TOC does not read, each with where its specification puts it. */
const OTHERS: Array<{ name: string; test: (b: Buffer) => boolean }> = [
  { name: 'xfs', test: (b) => at(b, 0, 'XFSB') }, // XFS Algorithms & Data Structures, "Superblocks": sb_magicnum at 0
  { name: 'btrfs', test: (b) => at(b, 0x10040, '_BHRfS_M') }, // btrfs on-disk format: superblock at 64 KiB, magic at 0x40
  {
    name: 'LVM2 PV',
    // LVM2 label: "LABELONE" in one of the first four sectors, type "LVM2 001" at +24.
    test: (b) => [0, 1, 2, 3].some((s) => at(b, s * 512, 'LABELONE') && at(b, s * 512 + 24, 'LVM2 001')),
  },
  { name: 'LUKS', test: (b) => at(b, 0, 'LUKS\xba\xbe') }, // LUKS1/LUKS2 on-disk format: magic at 0
  { name: 'NTFS', test: (b) => at(b, 3, 'NTFS    ') }, // NTFS boot sector OEM ID
  { name: 'exFAT', test: (b) => at(b, 3, 'EXFAT   ') }, // exFAT specification 3.1.2 FileSystemName
  { name: 'FAT32', test: (b) => at(b, 82, 'FAT32   ') }, // FAT specification, BS_FilSysType (FAT32) at 82
  { name: 'FAT', test: (b) => at(b, 54, 'FAT12   ') || at(b, 54, 'FAT16   ') || at(b, 54, 'FAT     ') }, // BS_FilSysType at 54
  { name: 'Linux swap', test: (b) => [4096, 8192, 16384, 65536].some((p) => at(b, p - 10, 'SWAPSPACE2') || at(b, p - 10, 'SWAP-SPACE')) },
  {
    name: 'Linux RAID (md)',
    // md superblock 1.1 at 0, 1.2 at 4 KiB: magic a92b4efch, little-endian.
    test: (b) => (b.length >= 4 && b.readUInt32LE(0) === 0xa92b4efc) || (b.length >= 4100 && b.readUInt32LE(4096) === 0xa92b4efc),
  },
  { name: 'squashfs', test: (b) => at(b, 0, 'hsqs') }, // squashfs superblock magic
  { name: 'ISO 9660', test: (b) => at(b, 0x8001, 'CD001') }, // ECMA-119 8.1: volume descriptor at 16 × 2048
];

/** What the bytes at a partition's start are. */
export function identify(first: Buffer): Content {
  const e = ext(first);
  if (e) return { name: e, supported: true };
  for (const o of OTHERS) if (o.test(first)) return { name: o.name, supported: false };
  return { name: 'unknown', supported: false };
}

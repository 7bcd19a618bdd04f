/**
 * Partition tables (UEFI 2.10 5.2, 5.3), signatures of what partitions hold, and the choice of
 * the file system to read: golden bytes, every cut, random inputs, and detection on devices held
 * in memory.
 */
import zlib from 'node:zlib';
import { FileSystemError } from '../../../src/native/ext2fs';
import { identify, IDENTIFY_BYTES } from '../../../src/toc/content';
import { chooseFileSystem, detectLayout, type ReadAt } from '../../../src/toc/detect';
import {
  decodeGptEntries,
  decodeGptHeader,
  decodeMbr,
  encodeGpt,
  encodeMbr,
  guidToBytes,
  guidToString,
} from '../../../src/toc/partitions';
import { assertTotalDecoder, decodeErrorOf, hex } from '../../helpers/codec';

const LINUX_FS = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
const LVM = 'E6D6D379-F507-44C2-A23C-238F2A3DF928';

// One MBR: partition 1 bootable Linux at 2048 (4096 blocks), partition 2 extended at 8192.
const MBR_RECORDS = hex(`
  80 00 00 00  83 00 00 00  00 08 00 00  00 10 00 00   # 80h boot, type 83h, LBA 2048, 4096 blocks
  00 00 00 00  05 00 00 00  00 20 00 00  00 40 00 00   # type 05h extended, LBA 8192, 16384 blocks
`);

function mbrGolden(): Buffer {
  const b = Buffer.alloc(512);
  MBR_RECORDS.copy(b, 446);
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

describe('MBR', () => {
  test('decode, encode, round trip', () => {
    const recs = decodeMbr(mbrGolden());
    expect(recs).toEqual([
      { slot: 0, bootIndicator: 0x80, osType: 0x83, startLba: 2048, sizeLba: 4096 },
      { slot: 1, bootIndicator: 0, osType: 0x05, startLba: 8192, sizeLba: 16384 },
    ]);
    expect(encodeMbr(recs).toString('hex')).toBe(mbrGolden().toString('hex'));
  });
  test('no signature, a bad boot indicator, every cut', () => {
    const b = mbrGolden();
    b[511] = 0;
    expect(decodeErrorOf(() => decodeMbr(b)).offset).toBe(510);
    const c = mbrGolden();
    c[446 + 16] = 0x12;
    expect(decodeErrorOf(() => decodeMbr(c)).offset).toBe(462);
    for (let cut = 0; cut < 512; cut += 7) decodeErrorOf(() => decodeMbr(mbrGolden().subarray(0, cut)));
  });
  test('random and mutated inputs', () => assertTotalDecoder((b) => decodeMbr(b), mbrGolden(), 500));
});

describe('GPT', () => {
  test('GUIDs: the first three fields little-endian on disk (UEFI 2.10 Appendix A)', () => {
    const onDisk = hex('AF 3D C6 0F  83 84  72 47  8E 79  3D 69 D8 47 7D E4');
    expect(guidToString(onDisk)).toBe(LINUX_FS);
    expect(guidToBytes(LINUX_FS).equals(onDisk)).toBe(true);
  });
  test('header and entries decode, with their CRC32s', () => {
    const { header, array } = encodeGpt(512, 100_000n, [
      { typeGuid: LINUX_FS, uniqueGuid: '11111111-2222-3333-4444-555555555555', startingLba: 2048n, endingLba: 4095n, name: 'data' },
      { typeGuid: LVM, uniqueGuid: '11111111-2222-3333-4444-666666666666', startingLba: 4096n, endingLba: 9999n },
    ]);
    // The header's own CRC (bytes 16..19) over its 92 bytes with the field zero, by zlib's CRC-32.
    const z = Buffer.from(header.subarray(0, 92));
    z.writeUInt32LE(0, 16);
    expect(header.readUInt32LE(16)).toBe(zlib.crc32(z));
    const h = decodeGptHeader(header);
    expect(h).toMatchObject({ myLba: 1n, partitionEntryLba: 2n, numberOfPartitionEntries: 128, sizeOfPartitionEntry: 128 });
    expect(decodeGptEntries(array, h)).toEqual([
      { index: 1, typeGuid: LINUX_FS, uniqueGuid: '11111111-2222-3333-4444-555555555555', startingLba: 2048n, endingLba: 4095n, attributes: 0n, name: 'data' },
      { index: 2, typeGuid: LVM, uniqueGuid: '11111111-2222-3333-4444-666666666666', startingLba: 4096n, endingLba: 9999n, attributes: 0n, name: '' },
    ]);
    const bad = Buffer.from(array);
    bad[40] ^= 1;
    expect(decodeErrorOf(() => decodeGptEntries(bad, h)).message).toMatch(/CRC32/);
    const badHeader = Buffer.from(header);
    badHeader[40] ^= 1;
    expect(decodeErrorOf(() => decodeGptHeader(badHeader)).offset).toBe(16);
    assertTotalDecoder((b) => decodeGptHeader(b), header, 500);
  });
});

describe('what a partition holds, by signature', () => {
  const at = (off: number, s: string, size = IDENTIFY_BYTES) => {
    const b = Buffer.alloc(size);
    b.write(s, off, 'latin1');
    return b;
  };
  test.each([
    ['xfs', at(0, 'XFSB')],
    ['btrfs', at(0x10040, '_BHRfS_M')],
    ['LVM2 PV', (() => { const b = at(512, 'LABELONE'); b.write('LVM2 001', 536, 'latin1'); return b; })()],
    ['LUKS', at(0, 'LUKS\xba\xbe')],
    ['NTFS', at(3, 'NTFS    ')],
    ['exFAT', at(3, 'EXFAT   ')],
    ['FAT32', at(82, 'FAT32   ')],
    ['Linux swap', at(4086, 'SWAPSPACE2')],
    ['ISO 9660', at(0x8001, 'CD001')],
    ['unknown', Buffer.alloc(IDENTIFY_BYTES)],
  ])('%s', (name, bytes) => {
    expect(identify(bytes)).toEqual({ name, supported: false });
  });
  test('ext2, ext3, ext4 by the superblock at 1024 (magic EF53h, features)', () => {
    const sb = (compat: number, incompat: number) => {
      const b = Buffer.alloc(4096);
      b.writeUInt16LE(0xef53, 1024 + 0x38);
      b.writeUInt32LE(compat, 1024 + 0x5c);
      b.writeUInt32LE(incompat, 1024 + 0x60);
      return b;
    };
    expect(identify(sb(0, 0x2))).toEqual({ name: 'ext2', supported: true });
    expect(identify(sb(0x4, 0x2))).toEqual({ name: 'ext3', supported: true });
    expect(identify(sb(0x4, 0x2 | 0x40))).toEqual({ name: 'ext4', supported: true });
  });
});

/** A device in memory: sparse blocks by byte offset. */
function device(bytes: number, parts: Array<[number, Buffer]>): ReadAt {
  const mem = Buffer.alloc(bytes);
  for (const [off, b] of parts) b.copy(mem, off);
  return async (offset, length) => Buffer.from(mem.subarray(offset, Math.min(offset + length, bytes)));
}

const extSuperblock = () => {
  const b = Buffer.alloc(2048);
  b.writeUInt16LE(0xef53, 1024 + 0x38);
  b.writeUInt32LE(0x40, 1024 + 0x60);
  return b;
};

describe('detectLayout and chooseFileSystem', () => {
  test('MBR with an extended partition: logical partitions numbered from 5 through the EBR chain', async () => {
    const mbr = encodeMbr([
      { bootIndicator: 0, osType: 0x8e, startLba: 64, sizeLba: 64 },
      { bootIndicator: 0, osType: 0x05, startLba: 256, sizeLba: 1024 },
    ]);
    // EBR 1 at 256: logical at +32 (LBA 288), next EBR at extended + 256 (LBA 512).
    const ebr1 = encodeMbr([
      { bootIndicator: 0, osType: 0x83, startLba: 32, sizeLba: 100 },
      { bootIndicator: 0, osType: 0x05, startLba: 256, sizeLba: 200 },
    ]);
    const ebr2 = encodeMbr([{ bootIndicator: 0, osType: 0x83, startLba: 32, sizeLba: 100 }]);
    const read = device(2048 * 512, [
      [0, mbr],
      [256 * 512, ebr1],
      [512 * 512, ebr2],
      [544 * 512, extSuperblock()],
    ]);
    const layout = await detectLayout(read, 2048 * 512, 512);
    expect(layout.scheme).toBe('mbr');
    expect(layout.partitions.map((p) => [p.index, p.type, p.startLba, p.content.name])).toEqual([
      [1, 'Linux LVM', 64, 'unknown'],
      [2, 'extended', 256, 'extended partition'],
      [5, 'Linux', 288, 'unknown'],
      [6, 'Linux', 544, 'ext4'],
    ]);
    expect(chooseFileSystem(layout)).toMatchObject({ offset: 544 * 512, partition: { index: 6 } });
    expect(() => chooseFileSystem(layout, 1)).toThrow(/partition 1 \(Linux LVM, unknown\) does not hold an ext2\/3\/4 file system/);
    expect(() => chooseFileSystem(layout, 9)).toThrow(/no partition 9 on this LUN \(partitions: 1, 2, 5, 6\)/);
  });

  test('an EBR chain that loops is a DecodeError, not a hang', async () => {
    const mbr = encodeMbr([{ bootIndicator: 0, osType: 0x0f, startLba: 256, sizeLba: 1024 }]);
    const ebr = encodeMbr([{ bootIndicator: 0, osType: 0x05, startLba: 0, sizeLba: 10, slot: 1 }]);
    const read = device(2048 * 512, [[0, mbr], [256 * 512, ebr]]);
    await expect(detectLayout(read, 2048 * 512, 512)).rejects.toThrow(/loops/);
  });

  test('GPT on a 4096-byte-block device; two ext partitions need --partition', async () => {
    const { header, array } = encodeGpt(4096, 1000n, [
      { typeGuid: LINUX_FS, uniqueGuid: '11111111-2222-3333-4444-555555555555', startingLba: 10n, endingLba: 99n },
      { typeGuid: LINUX_FS, uniqueGuid: '11111111-2222-3333-4444-666666666666', startingLba: 100n, endingLba: 199n },
    ]);
    const pmbr = encodeMbr([{ bootIndicator: 0, osType: 0xee, startLba: 1, sizeLba: 999 }]);
    const read = device(1000 * 4096, [[0, pmbr], [4096, header], [2 * 4096, array], [10 * 4096, extSuperblock()], [100 * 4096, extSuperblock()]]);
    const layout = await detectLayout(read, 1000 * 4096, 4096);
    expect(layout.partitions.map((p) => [p.index, p.type, p.startLba, p.blocks, p.content.name])).toEqual([
      [1, 'Linux filesystem', 10, 90, 'ext4'],
      [2, 'Linux filesystem', 100, 100, 'ext4'],
    ]);
    const e = (() => {
      try {
        chooseFileSystem(layout);
      } catch (err) {
        return err as FileSystemError;
      }
      throw new Error('no error');
    })();
    expect(e.code).toBe('ERR_FS_UNSUPPORTED');
    expect(e.message).toMatch(/choose one with --partition N/);
    expect(chooseFileSystem(layout, 2).offset).toBe(100 * 4096);
  });

  test('a whole-device file system, and one that is not supported, named', async () => {
    expect(chooseFileSystem(await detectLayout(device(1 << 20, [[0, extSuperblock()]]), 1 << 20, 512))).toEqual({ offset: 0 });
    const xfs = Buffer.from('XFSB');
    expect(() => chooseFileSystem({ scheme: 'none', blockSize: 512, partitions: [], whole: identify(Buffer.concat([xfs, Buffer.alloc(IDENTIFY_BYTES)])) })).toThrow(
      /the LUN holds xfs, which is not supported/,
    );
  });
});

import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  checkRecordGeometry,
  chunkRecordBlocks,
  chunkRecordsFit,
  decodeRecordHeader,
  decodeSuperblock,
  encodeDataRecord,
  encodeDataRecordHeader,
  encodeMarkerRecord,
  encodeRecordHeader,
  encodeSealRecord,
  encodeSuperblock,
  isZeroRecordHeader,
  obfBlocksForChunks,
  obfPolicyName,
  obfReasonName,
  obfRecordTypeName,
  ObfPolicy,
  ObfReason,
  ObfRecordType,
  ObfState,
  obfStateName,
  obfStateTransitionAllowed,
  ObfVersionError,
  recordBlocks,
  recordCrc,
  recordDataBytes,
  recordFits,
  RollingHash,
  verifyRecord,
  type ObfRecordGeometry,
  type ObfRecordHeader,
  type ObfSuperblock,
} from '../../../src/obf/format';
import { DecodeError, EncodeError } from '../../../src/errors';
import { crc32c } from '../../../src/native/crc32c';
import { assertTotalDecoder, decodeErrorOf, decodesOrRejects, hex, offsetOf } from '../../helpers/codec';

const zeros = (n: number): string => '00 '.repeat(n);

/** Recomputes the superblock CRC (bytes 508–511 over 0–507) after a test edited a field. */
function withSuperblockCrc(b: Buffer): Buffer {
  b.writeUInt32BE(crc32c(b.subarray(0, 508)), 508);
  return b;
}

const SNAPSHOT = '0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f1';
const SNAPSHOT_HEX = '0f 1e 2d 3c 4b 5a 49 78 86 95 a4 b3 c2 d1 e0 f1';
const T_RECORD = 1767225723456; // 2026-01-01T00:02:03.456Z = 0x19b76dc8a40

// --------------------------------------------------------------------------------------------
// Superblock: a 512-byte OBF, 1 GiB source of 512-byte blocks, 64 KiB chunks, MARKED.
// Written from the layout in docs/obf-format.md; only the CRC literal was computed.
// --------------------------------------------------------------------------------------------
const SUPERBLOCK_512 = hex(`
  58 43 50 59 4f 42 46 00    # 0–7     magic "XCPYOBF\\0"
  00 01                      # 8–9     version 1
  02 00                      # 10–11   superblock length 512
  00 00 02 00                # 12–15   OBF block size 512
  ${SNAPSHOT_HEX}            # 16–31   snapshot id
  11 11 11 11 22 22 43 33 84 44 55 55 55 55 55 55   # 32–47 series id
  03                         # 48      designator type 3 (NAA)
  10                         # 49      designator length 16
  60 01 40 5e 4f 5a 6b 71 c2 d4 e3 f8 a9 b0 c1 d2   # 50–65 designator
  ${zeros(16)}               # 66–81   designator padding
  00 00                      # 82–83   reserved
  00 00 02 00                # 84–87   source block size 512
  00 00 00 00 00 20 00 00    # 88–95   source capacity 2097152 blocks (1 GiB)
  00 01 00 00                # 96–99   chunk size 65536
  00 00 01 9b 76 da a8 00    # 100–107 institution time 1767225600000 (2026-01-01T00:00:00Z)
  02                         # 108     state MARKED
  02                         # 109     policy protect-snapshot
  00 00                      # 110–111 reason NONE
  00 00 00 00 00 00 00 01    # 112–119 log start LBA 1
  00 00 00 00 00 04 00 00    # 120–127 capacity 262144 blocks
  00 00 00 00 00 00 00 03    # 128–135 generation 3
  00 00 01 9b 76 db 92 60    # 136–143 updated time 1767225660000
  00 00 00 00 00 00 00 2a    # 144–151 marker sequence 42
  00 00 00 00 00 00 00 00    # 152–159 sealed record count 0
  ${zeros(348)}              # 160–507 reserved
  52 53 b0 40                # 508–511 CRC32C over 0–507
`);

const SB: ObfSuperblock = {
  blockSize: 512,
  snapshotId: SNAPSHOT,
  seriesId: '11111111-2222-4333-8444-555555555555',
  sourceDesignator: { designatorType: 3, designator: hex('60 01 40 5e 4f 5a 6b 71 c2 d4 e3 f8 a9 b0 c1 d2') },
  sourceBlockSize: 512,
  sourceCapacity: 2097152n,
  chunkSize: 65536,
  institutionTimeMs: 1767225600000,
  state: ObfState.MARKED,
  policy: ObfPolicy.PROTECT_SNAPSHOT,
  reason: ObfReason.NONE,
  logStartLba: 1n,
  capacityBlocks: 262144n,
  generation: 3n,
  updatedTimeMs: 1767225660000,
  markerSequence: 42n,
  sealedRecordCount: 0n,
};

/** The golden superblock with field bytes replaced and the CRC recomputed. */
function sbWith(offset: number, bytes: string): Buffer {
  const b = Buffer.from(SUPERBLOCK_512);
  hex(bytes).copy(b, offset);
  return withSuperblockCrc(b);
}

describe('OBF superblock', () => {
  test('the golden CRC is CRC32C over bytes 0–507', () => {
    expect(SUPERBLOCK_512.length).toBe(512);
    expect(SUPERBLOCK_512.readUInt32BE(508)).toBe(crc32c(SUPERBLOCK_512.subarray(0, 508)));
  });
  test('decode', () => {
    expect(decodeSuperblock(SUPERBLOCK_512)).toEqual(SB);
  });
  test('encode', () => {
    expect(encodeSuperblock(SB).toString('hex')).toBe(SUPERBLOCK_512.toString('hex'));
  });
  test('round trip', () => {
    expect(encodeSuperblock(decodeSuperblock(SUPERBLOCK_512)).equals(SUPERBLOCK_512)).toBe(true);
  });
  test('a 4096-byte OBF gets a whole 4096-byte block: the 512 defined bytes, then zeros', () => {
    const sb4k = { ...SB, blockSize: 4096, state: ObfState.ACTIVE, markerSequence: 0n };
    const b = encodeSuperblock(sb4k);
    expect(b.length).toBe(4096);
    expect(b.readUInt32BE(12)).toBe(4096);
    expect(b.subarray(512).equals(Buffer.alloc(4096 - 512))).toBe(true);
    expect(decodeSuperblock(b)).toEqual(sb4k);
  });
  test('an INVALID superblock keeps its reason; unknown reason codes pass through', () => {
    const invalid = { ...SB, state: ObfState.INVALID, reason: ObfReason.OBF_FULL };
    expect(decodeSuperblock(encodeSuperblock(invalid))).toEqual(invalid);
    expect(decodeSuperblock(sbWith(110, '00 63')).reason).toBe(99);
  });
  test('reserved bytes and the rest of the block are ignored (forward compatibility within version 1)', () => {
    const b = Buffer.concat([SUPERBLOCK_512, Buffer.alloc(512, 0x5a)]);
    hex('01 02').copy(b, 82); // 82–83 reserved
    hex('ff ee dd').copy(b, 160); // 160–507 reserved
    b[507] = 0x77;
    withSuperblockCrc(b);
    expect(decodeSuperblock(b)).toEqual(SB);
  });
  test('an empty designator', () => {
    const sb = { ...SB, sourceDesignator: { designatorType: 0, designator: Buffer.alloc(0) } };
    expect(decodeSuperblock(encodeSuperblock(sb))).toEqual(sb);
  });

  describe('decode errors are DecodeErrors naming the byte', () => {
    test('cut short at every length', () => {
      for (let cut = 0; cut < 512; cut++) {
        expect(offsetOf(() => decodeSuperblock(SUPERBLOCK_512.subarray(0, cut)))).toBe(cut);
      }
    });
    test('bad magic', () => {
      for (let i = 0; i < 8; i++) {
        const b = Buffer.from(SUPERBLOCK_512);
        b[i] ^= 0x20;
        expect(offsetOf(() => decodeSuperblock(b))).toBe(i);
      }
      expect(decodeErrorOf(() => decodeSuperblock(Buffer.alloc(512))).message).toMatch(/bad magic/);
    });
    test('version 2 is an ObfVersionError saying so (checked before the CRC)', () => {
      const b = Buffer.from(SUPERBLOCK_512);
      b.writeUInt16BE(2, 8);
      const err = decodeErrorOf(() => decodeSuperblock(b));
      expect(err).toBeInstanceOf(ObfVersionError);
      expect((err as ObfVersionError).version).toBe(2);
      expect(err.offset).toBe(8);
      expect(err.message).toMatch(/version 2 is not supported/);
      expect(err.code).toBe('ERR_SCSI_DECODE');
    });
    test('superblock length other than 512', () => {
      expect(offsetOf(() => decodeSuperblock(sbWith(10, '01 00')))).toBe(10);
    });
    test('bad CRC, in a defined field and in the reserved area', () => {
      for (const i of [20, 100, 300, 508, 511]) {
        const b = Buffer.from(SUPERBLOCK_512);
        b[i] ^= 0x01;
        const err = decodeErrorOf(() => decodeSuperblock(b));
        expect(err.offset).toBe(508);
        expect(err.message).toMatch(/CRC32C/);
      }
    });
    test('OBF block size not 512 or 4096', () => {
      for (const size of ['00 00 04 00', '00 00 00 00', '00 00 10 01']) {
        expect(offsetOf(() => decodeSuperblock(sbWith(12, size)))).toBe(12);
      }
    });
    test('source block size not 512 or 4096', () => {
      expect(offsetOf(() => decodeSuperblock(sbWith(84, '00 00 02 08')))).toBe(84);
    });
    test('chunk size rules: positive, a multiple of both block sizes', () => {
      expect(offsetOf(() => decodeSuperblock(sbWith(96, '00 00 00 00')))).toBe(96); // zero
      expect(offsetOf(() => decodeSuperblock(sbWith(96, '00 01 01 00')))).toBe(96); // 65792, not ×512
      // 512-byte OBF, 4096-byte source: a 2048-byte chunk is less than a source block.
      const b = sbWith(84, '00 00 10 00');
      b.writeUInt32BE(2048, 96);
      expect(decodeErrorOf(() => decodeSuperblock(withSuperblockCrc(b))).message).toMatch(/source block size 4096/);
      // 4096-byte OBF, 512-byte source: 1536 is a multiple of 512 only.
      const c = sbWith(12, '00 00 10 00');
      c.writeUInt32BE(1536, 96);
      expect(offsetOf(() => decodeSuperblock(withSuperblockCrc(c)))).toBe(96);
    });
    test('designator type and length', () => {
      expect(offsetOf(() => decodeSuperblock(sbWith(48, '10')))).toBe(48);
      expect(offsetOf(() => decodeSuperblock(sbWith(49, '21')))).toBe(49);
    });
    test('state and policy out of range', () => {
      for (const state of ['00', '05', 'ff']) expect(offsetOf(() => decodeSuperblock(sbWith(108, state)))).toBe(108);
      for (const policy of ['00', '03']) expect(offsetOf(() => decodeSuperblock(sbWith(109, policy)))).toBe(109);
    });
    test('log start LBA 0 or past the capacity', () => {
      expect(offsetOf(() => decodeSuperblock(sbWith(112, zeros(8))))).toBe(112);
      expect(offsetOf(() => decodeSuperblock(sbWith(112, '00 00 00 00 00 04 00 01')))).toBe(112);
    });
    test('a time beyond 2^53 − 1 ms', () => {
      expect(offsetOf(() => decodeSuperblock(sbWith(100, '00 20 00 00 00 00 00 00')))).toBe(100);
      expect(offsetOf(() => decodeSuperblock(sbWith(136, 'ff ff ff ff ff ff ff ff')))).toBe(136);
    });
  });

  describe('encode errors are EncodeErrors', () => {
    const bad: Array<[string, Partial<ObfSuperblock>]> = [
      ['block size', { blockSize: 1024 }],
      ['source block size', { sourceBlockSize: 520 }],
      ['chunk size not a multiple', { chunkSize: 65536 + 512, blockSize: 4096 }],
      ['chunk size 0', { chunkSize: 0 }],
      ['snapshot id', { snapshotId: 'not-a-uuid' }],
      ['series id', { seriesId: '1111111122224333844455555555555' }],
      ['designator too long', { sourceDesignator: { designatorType: 3, designator: Buffer.alloc(33) } }],
      ['designator type', { sourceDesignator: { designatorType: 16, designator: Buffer.alloc(0) } }],
      ['state', { state: 5 as ObfState }],
      ['policy', { policy: 0 as ObfPolicy }],
      ['reason', { reason: 0x10000 as ObfReason }],
      ['log start 0', { logStartLba: 0n }],
      ['capacity', { capacityBlocks: -1n }],
      ['time', { institutionTimeMs: 1.5 }],
      ['generation', { generation: 1n << 64n }],
    ];
    test.each(bad)('%s', (_name, change) => {
      expect(() => encodeSuperblock({ ...SB, ...change })).toThrow(EncodeError);
    });
  });

  test('total decoder (random and mutated bytes)', () => assertTotalDecoder(decodeSuperblock, SUPERBLOCK_512));
  test('total decoder past the CRC: mutated fields with the CRC made right again', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(507), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        (flips) => {
          const b = Buffer.from(SUPERBLOCK_512);
          for (const [i, v] of flips) b[i] = v;
          decodesOrRejects(decodeSuperblock, withSuperblockCrc(b));
        },
      ),
      { numRuns: 3000 },
    );
  });
});

// --------------------------------------------------------------------------------------------
// Records. DATA on a 4096-byte OBF for a 512-byte source: 8 source blocks = 1 OBF block.
// --------------------------------------------------------------------------------------------
const GEO_4K: ObfRecordGeometry = { blockSize: 4096, sourceBlockSize: 512, sourceCapacity: 2097152n };
const GEO_512: ObfRecordGeometry = { blockSize: 512, sourceBlockSize: 512, sourceCapacity: 2097152n };
const DATA_4K = Buffer.alloc(4096);
for (let i = 0; i < DATA_4K.length; i++) DATA_4K[i] = i & 0xff;

const DATA_HEADER = hex(`
  4f 42 46 52                # 0–3     magic "OBFR"
  01                         # 4       type DATA
  00                         # 5       reserved
  00 80                      # 6–7     header length 128
  00 00 00 00 00 00 00 01    # 8–15    sequence 1
  ${SNAPSHOT_HEX}            # 16–31   snapshot id
  00 00 00 00 00 00 01 00    # 32–39   source LBA 256
  00 00 00 08                # 40–43   source block count 8
  00 00 00 01                # 44–47   data blocks 1
  00 00 01 9b 76 dc 8a 40    # 48–55   time 1767225723456
  ${zeros(8)}                # 56–63   reserved
  ${zeros(56)}               # 64–119  (no payload for DATA)
  00 00 00 00                # 120–123 reserved
  6a d9 fa a4                # 124–127 CRC32C over 0–123 and the data block
`);
const DATA_HEADER_BLOCK = Buffer.concat([DATA_HEADER, Buffer.alloc(4096 - 128)]);

const MARKER_HEADER = hex(`
  4f 42 46 52                # 0–3     magic
  02 00 00 80                # 4–7     type MARKER, reserved, header length 128
  00 00 00 00 00 00 00 03    # 8–15    sequence 3
  ${SNAPSHOT_HEX}            # 16–31   snapshot id
  ${zeros(16)}               # 32–47   source LBA, count, data blocks: 0
  00 00 01 9b 76 dc 8a 40    # 48–55   time
  ${zeros(8)}                # 56–63   reserved
  00 00 00 00 00 00 00 02    # 64–71   data records before 2
  00 00 00 00 00 00 20 00    # 72–79   data bytes before 8192
  ${zeros(40)}               # 80–119  (no more payload)
  00 00 00 00                # 120–123 reserved
  1a e7 82 79                # 124–127 CRC32C over 0–123
`);

const ROLLING = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const SEAL_HEADER = hex(`
  4f 42 46 52                # 0–3     magic
  03 00 00 80                # 4–7     type SEAL, reserved, header length 128
  00 00 00 00 00 00 00 05    # 8–15    sequence 5
  ${SNAPSHOT_HEX}            # 16–31   snapshot id
  ${zeros(16)}               # 32–47   source LBA, count, data blocks: 0
  00 00 01 9b 76 dc 8a 40    # 48–55   time
  ${zeros(8)}                # 56–63   reserved
  00 00 00 00 00 00 00 03    # 64–71   data record count 3
  00 00 00 00 00 00 30 00    # 72–79   data bytes 12288
  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f   # 80–111 rolling hash
  10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f
  00 00 00 00 00 00 00 03    # 112–119 marker sequence 3
  00 00 00 00                # 120–123 reserved
  ab 30 36 b2                # 124–127 CRC32C over 0–123
`);

const block512 = (header: Buffer): Buffer => Buffer.concat([header, Buffer.alloc(512 - header.length)]);

describe('OBF record headers', () => {
  test('golden CRCs are CRC32C over bytes 0–123, continued over the data', () => {
    expect(DATA_HEADER.readUInt32BE(124)).toBe(crc32c(DATA_4K, crc32c(DATA_HEADER.subarray(0, 124))));
    expect(MARKER_HEADER.readUInt32BE(124)).toBe(crc32c(MARKER_HEADER.subarray(0, 124)));
    expect(SEAL_HEADER.readUInt32BE(124)).toBe(crc32c(SEAL_HEADER.subarray(0, 124)));
  });

  describe('DATA', () => {
    const fields = { sequence: 1n, snapshotId: SNAPSHOT, sourceLba: 256n, sourceBlocks: 8, timeMs: T_RECORD };
    test('decode', () => {
      expect(decodeRecordHeader(DATA_HEADER_BLOCK, GEO_4K)).toEqual({
        type: ObfRecordType.DATA,
        ...fields,
        dataBlocks: 1,
        crc: 0x6ad9faa4,
      });
    });
    test('encode: header block then data, one buffer', () => {
      const rec = encodeDataRecord(fields, DATA_4K, GEO_4K);
      expect(rec.length).toBe(8192);
      expect(rec.toString('hex')).toBe(Buffer.concat([DATA_HEADER_BLOCK, DATA_4K]).toString('hex'));
    });
    test('encode the header alone from data in pieces (for a vectored write)', () => {
      const pieces = [DATA_4K.subarray(0, 100), DATA_4K.subarray(100, 3000), DATA_4K.subarray(3000)];
      expect(encodeDataRecordHeader(fields, pieces, GEO_4K).equals(DATA_HEADER_BLOCK)).toBe(true);
      expect(recordCrc(DATA_HEADER_BLOCK, pieces)).toBe(0x6ad9faa4);
    });
    test('round trip', () => {
      const { crc: _crc, ...h } = decodeRecordHeader(DATA_HEADER_BLOCK, GEO_4K);
      expect(encodeRecordHeader(h, GEO_4K, DATA_4K).equals(DATA_HEADER_BLOCK)).toBe(true);
    });
    test('verifyRecord: the CRC covers header and data, not the header block padding', () => {
      expect(verifyRecord(DATA_HEADER_BLOCK, DATA_4K)).toBe(true);
      expect(verifyRecord(DATA_HEADER_BLOCK, [DATA_4K.subarray(0, 1), DATA_4K.subarray(1)])).toBe(true);
      const data = Buffer.from(DATA_4K);
      data[4095] ^= 1;
      expect(verifyRecord(DATA_HEADER_BLOCK, data)).toBe(false);
      expect(verifyRecord(DATA_HEADER_BLOCK, DATA_4K.subarray(0, 2048))).toBe(false);
      const header = Buffer.from(DATA_HEADER_BLOCK);
      header[33] ^= 1;
      expect(verifyRecord(header, DATA_4K)).toBe(false);
      const padded = Buffer.from(DATA_HEADER_BLOCK);
      padded[200] = 0xff;
      expect(verifyRecord(padded, DATA_4K)).toBe(true);
      expect(verifyRecord(DATA_HEADER_BLOCK.subarray(0, 100), DATA_4K)).toBe(false);
    });
    test('a 512-byte OBF for a 4096-byte source: 1 source block = 8 data blocks', () => {
      const geo = { blockSize: 512, sourceBlockSize: 4096, sourceCapacity: 10n };
      const rec = encodeDataRecord({ ...fields, sourceLba: 9n, sourceBlocks: 1 }, DATA_4K, geo);
      const h = decodeRecordHeader(rec, geo);
      expect(h).toMatchObject({ type: ObfRecordType.DATA, sourceLba: 9n, sourceBlocks: 1, dataBlocks: 8 });
      expect(recordBlocks(h)).toBe(9);
      expect(recordDataBytes(h, 512)).toBe(4096n);
      expect(verifyRecord(rec.subarray(0, 512), rec.subarray(512))).toBe(true);
    });
  });

  describe('MARKER', () => {
    const fields = {
      sequence: 3n,
      snapshotId: SNAPSHOT,
      timeMs: T_RECORD,
      dataRecordsBefore: 2n,
      dataBytesBefore: 8192n,
    };
    test('decode', () => {
      expect(decodeRecordHeader(block512(MARKER_HEADER))).toEqual({
        type: ObfRecordType.MARKER,
        ...fields,
        crc: 0x1ae78279,
      });
    });
    test('encode', () => {
      expect(encodeMarkerRecord(fields, GEO_512).toString('hex')).toBe(block512(MARKER_HEADER).toString('hex'));
    });
    test('round trip', () => {
      const { crc: _crc, ...h } = decodeRecordHeader(MARKER_HEADER);
      expect(encodeRecordHeader(h, GEO_512).equals(block512(MARKER_HEADER))).toBe(true);
      expect(recordBlocks(h)).toBe(1);
      expect(recordDataBytes(h, 512)).toBe(0n);
      expect(verifyRecord(MARKER_HEADER)).toBe(true);
    });
  });

  describe('SEAL', () => {
    const fields = {
      sequence: 5n,
      snapshotId: SNAPSHOT,
      timeMs: T_RECORD,
      dataRecordCount: 3n,
      dataBytes: 12288n,
      rollingHash: ROLLING,
      markerSequence: 3n,
    };
    test('decode', () => {
      expect(decodeRecordHeader(block512(SEAL_HEADER))).toEqual({
        type: ObfRecordType.SEAL,
        ...fields,
        crc: 0xab3036b2,
      });
    });
    test('encode (4096-byte block)', () => {
      const b = encodeSealRecord(fields, GEO_4K);
      expect(b.length).toBe(4096);
      expect(b.subarray(0, 128).toString('hex')).toBe(SEAL_HEADER.toString('hex'));
      expect(b.subarray(128).equals(Buffer.alloc(4096 - 128))).toBe(true);
    });
    test('round trip', () => {
      const { crc: _crc, ...h } = decodeRecordHeader(SEAL_HEADER);
      expect(encodeRecordHeader(h, GEO_512).equals(block512(SEAL_HEADER))).toBe(true);
    });
  });

  describe('decode errors are DecodeErrors naming the byte', () => {
    /** A golden header with bytes replaced (the CRC is not checked by decodeRecordHeader). */
    const edit = (golden: Buffer, offset: number, bytes: string): Buffer => {
      const b = Buffer.from(golden);
      hex(bytes).copy(b, offset);
      return b;
    };
    test('cut short at every length', () => {
      for (let cut = 0; cut < 128; cut++) {
        expect(offsetOf(() => decodeRecordHeader(DATA_HEADER.subarray(0, cut)))).toBe(cut);
      }
    });
    test('bad magic', () => {
      for (let i = 0; i < 4; i++) expect(offsetOf(() => decodeRecordHeader(edit(DATA_HEADER, i, '00')))).toBe(i);
    });
    test('unknown type', () => {
      for (const t of ['00', '04', 'ff']) expect(offsetOf(() => decodeRecordHeader(edit(SEAL_HEADER, 4, t)))).toBe(4);
    });
    test('header length other than 128', () => {
      expect(offsetOf(() => decodeRecordHeader(edit(MARKER_HEADER, 6, '01 00')))).toBe(6);
    });
    test('sequence 0', () => {
      expect(offsetOf(() => decodeRecordHeader(edit(DATA_HEADER, 8, zeros(8))))).toBe(8);
    });
    test('DATA with no source blocks or no data blocks', () => {
      expect(offsetOf(() => decodeRecordHeader(edit(DATA_HEADER, 40, zeros(4))))).toBe(40);
      expect(offsetOf(() => decodeRecordHeader(edit(DATA_HEADER, 44, zeros(4))))).toBe(44);
    });
    test('MARKER and SEAL with a source range or data blocks', () => {
      expect(offsetOf(() => decodeRecordHeader(edit(MARKER_HEADER, 39, '01')))).toBe(32);
      expect(offsetOf(() => decodeRecordHeader(edit(SEAL_HEADER, 43, '01')))).toBe(40);
      expect(offsetOf(() => decodeRecordHeader(edit(SEAL_HEADER, 47, '01')))).toBe(44);
    });
    test('time beyond 2^53 − 1 ms', () => {
      expect(offsetOf(() => decodeRecordHeader(edit(MARKER_HEADER, 48, 'ff')))).toBe(48);
    });
    test('geometry: data blocks × B must equal source blocks × source block size', () => {
      // 8 source blocks of 512 = 4096 bytes ≠ 1 block of 512.
      const err = decodeErrorOf(() => decodeRecordHeader(DATA_HEADER, GEO_512));
      expect(err.offset).toBe(44);
      expect(err.message).toMatch(/data blocks 1 × 512 bytes ≠ source block count 8 × 512 bytes/);
      expect(() => decodeRecordHeader(DATA_HEADER)).not.toThrow();
    });
    test('geometry: the source range must lie inside the source capacity', () => {
      expect(offsetOf(() => decodeRecordHeader(DATA_HEADER, { ...GEO_4K, sourceCapacity: 263n }))).toBe(32);
      expect(() => decodeRecordHeader(DATA_HEADER, { ...GEO_4K, sourceCapacity: 264n })).not.toThrow();
      const h = decodeRecordHeader(DATA_HEADER);
      expect(() => checkRecordGeometry(h, { ...GEO_4K, sourceCapacity: 100n })).toThrow(DecodeError);
      const seal = decodeRecordHeader(SEAL_HEADER);
      expect(() => checkRecordGeometry(seal, { ...GEO_4K, sourceCapacity: 0n })).not.toThrow();
    });
  });

  describe('encode errors are EncodeErrors', () => {
    const fields = { sequence: 1n, snapshotId: SNAPSHOT, sourceLba: 256n, sourceBlocks: 8, timeMs: T_RECORD };
    test.each<[string, () => unknown]>([
      ['data not whole blocks', () => encodeDataRecord(fields, Buffer.alloc(1000), GEO_4K)],
      ['no data', () => encodeDataRecord(fields, Buffer.alloc(0), GEO_4K)],
      ['data size ≠ source size', () => encodeDataRecord({ ...fields, sourceBlocks: 7 }, DATA_4K, GEO_4K)],
      ['past the source capacity', () => encodeDataRecord(fields, DATA_4K, { ...GEO_4K, sourceCapacity: 263n })],
      ['bad block size', () => encodeDataRecord(fields, DATA_4K, { ...GEO_4K, blockSize: 1024 })],
      ['sequence 0', () => encodeDataRecord({ ...fields, sequence: 0n }, DATA_4K, GEO_4K)],
      ['bad snapshot id', () => encodeDataRecord({ ...fields, snapshotId: 'x' }, DATA_4K, GEO_4K)],
      ['negative time', () => encodeDataRecord({ ...fields, timeMs: -1 }, DATA_4K, GEO_4K)],
      [
        'header dataBlocks disagrees with the data',
        () => encodeRecordHeader({ ...fields, type: ObfRecordType.DATA, dataBlocks: 1 }, GEO_4K, Buffer.alloc(0)),
      ],
      [
        'data given to a MARKER',
        () =>
          encodeRecordHeader(
            {
              type: ObfRecordType.MARKER,
              sequence: 1n,
              snapshotId: SNAPSHOT,
              timeMs: 0,
              dataRecordsBefore: 0n,
              dataBytesBefore: 0n,
            },
            GEO_512,
            Buffer.alloc(512),
          ),
      ],
      [
        'rolling hash not 32 bytes',
        () =>
          encodeSealRecord(
            {
              sequence: 1n,
              snapshotId: SNAPSHOT,
              timeMs: 0,
              dataRecordCount: 0n,
              dataBytes: 0n,
              rollingHash: Buffer.alloc(31),
              markerSequence: 0n,
            },
            GEO_512,
          ),
      ],
      [
        'unknown type',
        () =>
          encodeRecordHeader(
            { type: 9, sequence: 1n, snapshotId: SNAPSHOT, timeMs: 0 } as unknown as ObfRecordHeader,
            GEO_512,
          ),
      ],
    ])('%s', (_name, fn) => {
      expect(fn).toThrow(EncodeError);
    });
  });

  test('property: DATA records round-trip, and the header from pieces equals the one-buffer record', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(512, 4096),
        fc.constantFrom(512, 4096),
        fc.integer({ min: 1, max: 4 }),
        fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }),
        fc.bigInt({ min: 0n, max: 1n << 40n }),
        fc.nat({ max: 2 ** 48 }),
        fc.uuid(),
        fc.array(fc.nat(), { maxLength: 4 }),
        (B, S, units, sequence, sourceLba, timeMs, snapshotId, cuts) => {
          const bytes = units * Math.max(B, S);
          const data = Buffer.alloc(bytes);
          for (let i = 0; i < bytes; i++) data[i] = (i * 31 + units) & 0xff;
          const geo = { blockSize: B, sourceBlockSize: S, sourceCapacity: sourceLba + BigInt(bytes / S) };
          const fields = { sequence, snapshotId, sourceLba, sourceBlocks: bytes / S, timeMs };
          const rec = encodeDataRecord(fields, data, geo);
          const points = [...new Set(cuts.map((c) => c % bytes))].sort((a, b) => a - b);
          const pieces = [0, ...points].map((p, i, all) => data.subarray(p, all[i + 1] ?? bytes));
          expect(encodeDataRecordHeader(fields, pieces, geo).equals(rec.subarray(0, B))).toBe(true);
          const h = decodeRecordHeader(rec, geo);
          expect(h).toEqual({
            type: ObfRecordType.DATA,
            ...fields,
            snapshotId: snapshotId.toLowerCase(),
            dataBlocks: bytes / B,
            crc: h.crc,
          });
          expect(verifyRecord(rec.subarray(0, B), rec.subarray(B))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('total decoder: DATA, MARKER, SEAL (with and without geometry)', () => {
    assertTotalDecoder((b) => decodeRecordHeader(b), DATA_HEADER);
    assertTotalDecoder((b) => decodeRecordHeader(b, GEO_4K), DATA_HEADER);
    assertTotalDecoder((b) => decodeRecordHeader(b), MARKER_HEADER, 1000);
    assertTotalDecoder((b) => decodeRecordHeader(b, GEO_512), SEAL_HEADER, 1000);
  });

  test('isZeroRecordHeader looks at the 128 header bytes only', () => {
    const b = Buffer.alloc(512);
    expect(isZeroRecordHeader(b)).toBe(true);
    b[300] = 1;
    expect(isZeroRecordHeader(b)).toBe(true);
    b[127] = 1;
    expect(isZeroRecordHeader(b)).toBe(false);
  });
});

describe('DATA record headers from a data CRC computed elsewhere (dataCrc)', () => {
  const fields = { sequence: 1n, snapshotId: SNAPSHOT, sourceLba: 256n, sourceBlocks: 8, timeMs: T_RECORD };

  test('the golden DATA header: the same bytes with the data\'s CRC given', () => {
    expect(encodeDataRecordHeader(fields, DATA_4K, GEO_4K, crc32c(DATA_4K)).equals(DATA_HEADER_BLOCK)).toBe(true);
    expect(recordCrc(DATA_HEADER_BLOCK, DATA_4K, crc32c(DATA_4K))).toBe(0x6ad9faa4);
  });

  test.each([
    ['512-byte OBF, 512-byte source, 64 KiB chunk', { blockSize: 512, sourceBlockSize: 512, sourceCapacity: 1n << 30n }, 65536],
    ['512-byte OBF, one block', GEO_512, 512],
    ['4096-byte OBF, 512-byte source, 64 KiB chunk', GEO_4K, 65536],
    ['4096-byte OBF, 4096-byte source, one block', { blockSize: 4096, sourceBlockSize: 4096, sourceCapacity: 100n }, 4096],
    ['512-byte OBF, 4096-byte source, 12 KiB', { blockSize: 512, sourceBlockSize: 4096, sourceCapacity: 100n }, 12288],
  ] as Array<[string, ObfRecordGeometry, number]>)('%s: byte-identical to the header computed from the data', (_name, geo, bytes) => {
    for (const fill of ['random', 'zeros', 'last byte'] as const) {
      const seed = createHash('sha512').update(`${bytes}`).digest();
      const buf = Buffer.alloc(bytes);
      if (fill === 'random') for (let i = 0; i < bytes; i++) buf[i] = seed[i % seed.length] ^ (i >>> 6);
      if (fill === 'last byte') buf[bytes - 1] = 1;
      const f = { ...fields, sourceLba: 7n, sourceBlocks: bytes / geo.sourceBlockSize };
      const plain = encodeDataRecordHeader(f, buf, geo);
      expect(plain.length).toBe(geo.blockSize);
      const withCrc = encodeDataRecordHeader(f, buf, geo, crc32c(buf));
      expect([fill, withCrc.toString('hex')]).toEqual([fill, plain.toString('hex')]);
      // From pieces too, as the writer holds them.
      const pieces = [buf.subarray(0, 1), buf.subarray(1, bytes >> 1), buf.subarray(bytes >> 1)];
      expect(encodeDataRecordHeader(f, pieces, geo, crc32c(buf)).equals(plain)).toBe(true);
      expect(recordCrc(plain, buf, crc32c(buf))).toBe(recordCrc(plain, buf));
      expect(recordCrc(plain, pieces, crc32c(buf))).toBe(plain.readUInt32BE(124));
      expect(verifyRecord(withCrc, buf)).toBe(true);
      expect(decodeRecordHeader(withCrc, geo)).toMatchObject({ type: ObfRecordType.DATA, sourceLba: 7n, dataBlocks: bytes / geo.blockSize });
    }
  });

  test('the dataCrc given is the one used: a wrong one gives a header that does not verify', () => {
    const right = encodeDataRecordHeader(fields, DATA_4K, GEO_4K, crc32c(DATA_4K));
    const wrong = encodeDataRecordHeader(fields, DATA_4K, GEO_4K, crc32c(DATA_4K) ^ 1);
    expect(wrong.equals(right)).toBe(false);
    expect(wrong.subarray(0, 124).equals(right.subarray(0, 124))).toBe(true); // only the CRC differs
    expect(verifyRecord(wrong, DATA_4K)).toBe(false);
    expect(recordCrc(DATA_HEADER_BLOCK, DATA_4K, 0)).not.toBe(0x6ad9faa4);
  });

  test('property: with the data\'s CRC, the header equals the one computed from the data (both geometries)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(512, 4096),
        fc.constantFrom(512, 4096),
        fc.integer({ min: 1, max: 16 }),
        fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }),
        fc.nat({ max: 2 ** 40 }),
        fc.uuid(),
        fc.integer(),
        (B, S, units, sequence, timeMs, snapshotId, seed) => {
          const bytes = units * Math.max(B, S);
          const data = Buffer.alloc(bytes);
          for (let i = 0; i < bytes; i++) data[i] = (i * 131 + seed) & 0xff;
          const geo = { blockSize: B, sourceBlockSize: S, sourceCapacity: BigInt(bytes / S) + 5n };
          const f = { sequence, snapshotId, sourceLba: 5n, sourceBlocks: bytes / S, timeMs };
          expect(encodeDataRecordHeader(f, data, geo, crc32c(data)).equals(encodeDataRecordHeader(f, data, geo))).toBe(true);
        },
      ),
      { numRuns: 200, seed: 4096 },
    );
  });
});

describe('RollingHash', () => {
  test('SHA-256 over the big-endian CRCs, in order', () => {
    const h = new RollingHash().update(0x11223344).update(1).update(0xdeadbeef);
    expect(h.digest().toString('hex')).toBe('fd528a538377c582f44b5fd9c4024474dd584a83a37d783a929d918cf6566c6e');
    expect(h.count).toBe(3n);
  });
  test('empty: SHA-256 of nothing', () => {
    expect(new RollingHash().digest().toString('hex')).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });
  test('digest() can be called midway and the hash goes on', () => {
    const h = new RollingHash().update(7);
    const mid = h.digest();
    h.update(8);
    expect(mid.equals(createHash('sha256').update(hex('00000007')).digest())).toBe(true);
    expect(h.digest().equals(createHash('sha256').update(hex('00000007 00000008')).digest())).toBe(true);
  });
});

describe('state machine and names', () => {
  test('ACTIVE → MARKED → SEALED, ACTIVE → SEALED, any → INVALID; INVALID is final', () => {
    const states = [ObfState.ACTIVE, ObfState.MARKED, ObfState.SEALED, ObfState.INVALID];
    const allowed = states.map((from) => states.map((to) => (obfStateTransitionAllowed(from, to) ? 1 : 0)));
    expect(allowed).toEqual([
      [0, 1, 1, 1],
      [0, 0, 1, 1],
      [0, 0, 0, 1],
      [0, 0, 0, 0],
    ]);
  });
  test('names for logs', () => {
    expect([1, 2, 3, 4, 9].map(obfStateName)).toEqual(['ACTIVE', 'MARKED', 'SEALED', 'INVALID', 'state 9']);
    expect([1, 2, 0].map(obfPolicyName)).toEqual(['protect-application', 'protect-snapshot', 'policy 0']);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(obfReasonName)).toEqual([
      'NONE',
      'OBF_FULL',
      'OBF_IO_ERROR',
      'COW_TIMEOUT',
      'TRACKING_GAP',
      'SOURCE_IO_ERROR',
      'ABANDONED',
      'reason 7',
    ]);
    expect([1, 2, 3, 0].map(obfRecordTypeName)).toEqual(['DATA', 'MARKER', 'SEAL', 'record type 0']);
  });
});

describe('sizes', () => {
  test('a 64 KiB chunk record is 1 + 128 blocks at 512 B, 1 + 16 at 4096 B', () => {
    expect(chunkRecordBlocks({ blockSize: 512, chunkSize: 65536 })).toBe(129);
    expect(chunkRecordBlocks({ blockSize: 4096, chunkSize: 65536 })).toBe(17);
  });
  test('OBF size for n chunks: log start + n records + MARKER + SEAL', () => {
    expect(obfBlocksForChunks({ blockSize: 512, chunkSize: 65536 }, 10n)).toBe(1n + 1290n + 2n);
    expect(obfBlocksForChunks({ blockSize: 4096, chunkSize: 65536, logStartLba: 8n }, 0n)).toBe(10n);
  });
  test('records that still fit', () => {
    expect(recordFits(1n, 129, 130n)).toBe(true);
    expect(recordFits(2n, 129, 130n)).toBe(false);
    const sb = { blockSize: 512, chunkSize: 65536, capacityBlocks: 1n + 2n * 129n + 2n };
    expect(chunkRecordsFit(sb, 1n)).toBe(2n);
    expect(chunkRecordsFit(sb, 2n)).toBe(1n);
    expect(chunkRecordsFit(sb, sb.capacityBlocks)).toBe(0n);
  });
});

import fc from 'fast-check';
import { EncodeError } from '../../../src/errors';
import {
  decodeReadCapacity16,
  encodeReadCapacity10,
  encodeReadCapacity16,
  readCapacity10Lba,
  type ReadCapacity16Data,
} from '../../../src/scsi/read-capacity';
import { assertTotalDecoder, decodeErrorOf, hex } from '../../helpers/codec';

// A 1 GiB thin-provisioned LUN: 512-byte logical blocks on 4096-byte physical blocks, unmapped
// blocks read as zeros (what LIO reports with emulate_tpu and unmap_zeroes_data set).
const RC16_THIN = hex(`
  00 00 00 00 00 1f ff ff  # RETURNED LOGICAL BLOCK ADDRESS (2097152 blocks − 1)
  00 00 02 00              # LOGICAL BLOCK LENGTH IN BYTES 512
  00                       # byte 12: P_TYPE 0, PROT_EN 0
  03                       # byte 13: P_I_EXPONENT 0, LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT 3
  c0 00                    # bytes 14-15: LBPME 1, LBPRZ 1, LOWEST ALIGNED LOGICAL BLOCK ADDRESS 0
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  # bytes 16-31: reserved
`);

const RC16_THIN_VALUE: ReadCapacity16Data = {
  returnedLogicalBlockAddress: 0x1fffffn,
  logicalBlockLength: 512,
  pType: 0,
  protEn: false,
  piExponent: 0,
  logicalBlocksPerPhysicalBlockExponent: 3,
  lbpme: true,
  lbprz: true,
  lowestAlignedLogicalBlockAddress: 0,
};

// Protection information type 2 (P_TYPE 001b), 8 protection intervals per block, first aligned
// LBA 7: every bit-field away from zero.
const RC16_PROTECTED = hex(`
  00 00 00 01 00 00 00 00  # RETURNED LOGICAL BLOCK ADDRESS
  00 00 10 00              # LOGICAL BLOCK LENGTH IN BYTES 4096
  03                       # byte 12: P_TYPE 001b, PROT_EN 1
  31                       # byte 13: P_I_EXPONENT 3, LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT 1
  00 07                    # bytes 14-15: LBPME 0, LBPRZ 0, LOWEST ALIGNED LOGICAL BLOCK ADDRESS 7
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  # bytes 16-31: reserved
`);

const RC16_PROTECTED_VALUE: ReadCapacity16Data = {
  returnedLogicalBlockAddress: 0x1_0000_0000n,
  logicalBlockLength: 4096,
  pType: 1,
  protEn: true,
  piExponent: 3,
  logicalBlocksPerPhysicalBlockExponent: 1,
  lbpme: false,
  lbprz: false,
  lowestAlignedLogicalBlockAddress: 7,
};

const RC10 = hex(`
  00 1f ff ff  # RETURNED LOGICAL BLOCK ADDRESS
  00 00 02 00  # LOGICAL BLOCK LENGTH IN BYTES 512
`);

describe('READ CAPACITY(16) parameter data (SBC-3 r36 5.16.2)', () => {
  it('decodes the golden bytes', () => {
    expect(decodeReadCapacity16(RC16_THIN)).toEqual(RC16_THIN_VALUE);
    expect(decodeReadCapacity16(RC16_PROTECTED)).toEqual(RC16_PROTECTED_VALUE);
  });

  it('encodes the golden bytes', () => {
    expect(encodeReadCapacity16(RC16_THIN_VALUE).toString('hex')).toBe(RC16_THIN.toString('hex'));
    expect(encodeReadCapacity16(RC16_PROTECTED_VALUE).toString('hex')).toBe(RC16_PROTECTED.toString('hex'));
  });

  it('defaults omitted fields to zero', () => {
    const b = encodeReadCapacity16({ returnedLogicalBlockAddress: 0x1fffffn, logicalBlockLength: 512 });
    expect(b).toHaveLength(32);
    expect(decodeReadCapacity16(b)).toEqual({
      ...RC16_THIN_VALUE,
      logicalBlocksPerPhysicalBlockExponent: 0,
      lbpme: false,
      lbprz: false,
    });
  });

  it('round-trips the golden bytes', () => {
    expect(encodeReadCapacity16(decodeReadCapacity16(RC16_PROTECTED)).equals(RC16_PROTECTED)).toBe(true);
  });

  it('ignores the reserved bits', () => {
    const b = Buffer.from(RC16_THIN);
    b[12] |= 0xf0;
    b.fill(0xee, 16);
    expect(decodeReadCapacity16(b)).toEqual(RC16_THIN_VALUE);
  });

  it('accepts 16 to 32 bytes (bytes 16-31 are reserved) and rejects less, at the first missing byte', () => {
    for (let cut = 0; cut <= 32; cut++) {
      const part = RC16_PROTECTED.subarray(0, cut);
      if (cut >= 16) expect(decodeReadCapacity16(part)).toEqual(RC16_PROTECTED_VALUE);
      else expect(decodeErrorOf(() => decodeReadCapacity16(part)).offset).toBe(cut);
    }
  });

  it('rejects values that do not fit', () => {
    const bad: Array<Partial<ReadCapacity16Data>> = [
      { returnedLogicalBlockAddress: -1n },
      { returnedLogicalBlockAddress: 1n << 64n },
      { logicalBlockLength: 2 ** 32 },
      { logicalBlockLength: undefined },
      { pType: 8 },
      { piExponent: 16 },
      { logicalBlocksPerPhysicalBlockExponent: 16 },
      { lowestAlignedLogicalBlockAddress: 0x4000 },
      { lowestAlignedLogicalBlockAddress: 1.5 },
    ];
    for (const b of bad) {
      expect(() => encodeReadCapacity16({ ...RC16_THIN_VALUE, ...b } as ReadCapacity16Data)).toThrow(EncodeError);
    }
  });

  it('is a total decoder', () => {
    assertTotalDecoder(decodeReadCapacity16, RC16_PROTECTED);
  });

  it('round-trips random values', () => {
    const arb = fc.record({
      returnedLogicalBlockAddress: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      logicalBlockLength: fc.integer({ min: 0, max: 0xffff_ffff }),
      pType: fc.integer({ min: 0, max: 7 }),
      protEn: fc.boolean(),
      piExponent: fc.integer({ min: 0, max: 15 }),
      logicalBlocksPerPhysicalBlockExponent: fc.integer({ min: 0, max: 15 }),
      lbpme: fc.boolean(),
      lbprz: fc.boolean(),
      lowestAlignedLogicalBlockAddress: fc.integer({ min: 0, max: 0x3fff }),
    });
    fc.assert(fc.property(arb, (v) => expect(decodeReadCapacity16(encodeReadCapacity16(v))).toEqual(v)));
  });
});

describe('READ CAPACITY(10) parameter data (SBC-3 r36 5.15.2)', () => {
  // Only the target encodes it (the agent reads capacity with READ CAPACITY(16)).
  it('encodes the golden bytes', () => {
    expect(encodeReadCapacity10({ returnedLogicalBlockAddress: 0x1fffffn, logicalBlockLength: 512 }).toString('hex')).toBe(RC10.toString('hex'));
  });

  it('rejects an LBA that needs READ CAPACITY(16), and clamps with readCapacity10Lba', () => {
    expect(() => encodeReadCapacity10({ returnedLogicalBlockAddress: 0x1_0000_0000n, logicalBlockLength: 512 })).toThrow(
      EncodeError,
    );
    expect(readCapacity10Lba(0x1_0000_0000n)).toBe(0xffff_ffffn);
    expect(readCapacity10Lba(0xffff_fffen)).toBe(0xffff_fffen);
    expect(readCapacity10Lba(0x1fffffn)).toBe(0x1fffffn);
  });

  it('writes any LBA and block length big-endian in bytes 0-3 and 4-7', () => {
    const arb = fc.record({
      returnedLogicalBlockAddress: fc.bigInt({ min: 0n, max: 0xffff_ffffn }),
      logicalBlockLength: fc.integer({ min: 0, max: 0xffff_ffff }),
    });
    fc.assert(
      fc.property(arb, (v) => {
        const b = encodeReadCapacity10(v);
        expect([BigInt(b.readUInt32BE(0)), b.readUInt32BE(4)]).toEqual([v.returnedLogicalBlockAddress, v.logicalBlockLength]);
      }),
    );
  });
});

import fc from 'fast-check';
import { EncodeError } from '../../../src/errors';
import {
  cdbLengthOfOpcode,
  decodeBlockCdb,
  decodeExtendedCopyCdb,
  decodeInquiryCdb,
  decodeModeSense10Cdb,
  decodeReadCapacity16Cdb,
  decodeReceiveCopyResultsCdb,
  decodeReportLunsCdb,
  encodeExtendedCopyCdb,
  encodeInquiryCdb,
  encodeModeSense10Cdb,
  encodeRead16Cdb,
  encodeReadCapacity16Cdb,
  encodeReceiveCopyResultsCdb,
  encodeCopyOperationAbortCdb,
  encodeReportLunsCdb,
  encodeSynchronizeCache16Cdb,
  encodeTestUnitReadyCdb,
  encodeWrite16Cdb,
} from '../../../src/scsi/cdb';
import { assertTotalDecoder, decodeErrorOf, hex } from '../../helpers/codec';

/** One golden CDB per command: bytes, the decoded value, and an encoder call giving the bytes. */
interface Case<T> {
  name: string;
  golden: Buffer;
  value: T;
  encode: () => Buffer;
  decode: (b: Buffer) => T;
}

const cases: Array<Case<unknown>> = [
  {
    // sg_inq's standard INQUIRY: allocation length 36.
    name: 'INQUIRY standard',
    golden: hex(`
      12          # OPERATION CODE (INQUIRY)
      00          # CMDDT 0 (obsolete), EVPD 0
      00          # PAGE CODE
      00 24       # ALLOCATION LENGTH 36
      00          # CONTROL
    `),
    value: { evpd: false, pageCode: 0, allocationLength: 36, control: 0 },
    encode: () => encodeInquiryCdb({ allocationLength: 36 }),
    decode: decodeInquiryCdb,
  },
  {
    name: 'INQUIRY VPD 83h (Device Identification)',
    golden: hex(`
      12          # OPERATION CODE (INQUIRY)
      01          # EVPD 1
      83          # PAGE CODE 83h
      01 00       # ALLOCATION LENGTH 256
      00          # CONTROL
    `),
    value: { evpd: true, pageCode: 0x83, allocationLength: 256, control: 0 },
    encode: () => encodeInquiryCdb({ evpd: true, pageCode: 0x83, allocationLength: 256 }),
    decode: decodeInquiryCdb,
  },
  {
    // Linux sd_read_capacity_16: SERVICE ACTION IN(16)/READ CAPACITY(16), allocation length 32.
    name: 'READ CAPACITY(16)',
    golden: hex(`
      9e          # OPERATION CODE (SERVICE ACTION IN(16))
      10          # SERVICE ACTION (READ CAPACITY(16))
      00 00 00 00 00 00 00 00  # LOGICAL BLOCK ADDRESS (obsolete)
      00 00 00 20 # ALLOCATION LENGTH 32
      00          # PMI 0 (obsolete)
      00          # CONTROL
    `),
    value: { allocationLength: 32, lba: 0n, pmi: false, control: 0 },
    encode: () => encodeReadCapacity16Cdb({ allocationLength: 32 }),
    decode: decodeReadCapacity16Cdb,
  },
  {
    name: 'REPORT LUNS',
    golden: hex(`
      a0          # OPERATION CODE (REPORT LUNS)
      00          # reserved
      00          # SELECT REPORT 00h
      00 00 00    # reserved
      00 00 10 10 # ALLOCATION LENGTH 4112 (header + 512 LUNs + 8)
      00          # reserved
      00          # CONTROL
    `),
    value: { selectReport: 0, allocationLength: 4112, control: 0 },
    encode: () => encodeReportLunsCdb({ selectReport: 0, allocationLength: 4112 }),
    decode: decodeReportLunsCdb,
  },
  {
    // QEMU block/iscsi.c: one XCOPY with 16 + 2×32 + 28 = 108 bytes of parameter list.
    name: 'EXTENDED COPY(LID1)',
    golden: hex(`
      83          # OPERATION CODE (EXTENDED COPY)
      00          # SERVICE ACTION 00h (LID1)
      00 00 00 00 00 00 00 00  # reserved
      00 00 00 6c # PARAMETER LIST LENGTH 108
      00          # reserved
      00          # CONTROL
    `),
    value: { parameterListLength: 108, control: 0 },
    encode: () => encodeExtendedCopyCdb({ parameterListLength: 108 }),
    decode: decodeExtendedCopyCdb,
  },
  {
    // libiscsi's test helper: OPERATING PARAMETERS, list id 0, allocation length 1024.
    name: 'RECEIVE COPY RESULTS OPERATING PARAMETERS',
    golden: hex(`
      84          # OPERATION CODE (RECEIVE COPY RESULTS)
      03          # SERVICE ACTION 03h (OPERATING PARAMETERS)
      00          # LIST IDENTIFIER
      00 00 00 00 00 00 00  # reserved
      00 00 04 00 # ALLOCATION LENGTH 1024
      00          # reserved
      00          # CONTROL
    `),
    value: { serviceAction: 3, listIdentifier: 0, allocationLength: 1024, control: 0 },
    encode: () => encodeReceiveCopyResultsCdb({ serviceAction: 3, listIdentifier: 0, allocationLength: 1024 }),
    decode: decodeReceiveCopyResultsCdb,
  },
  {
    // The agent's write-protection probe: DBD, all pages, current values, the 8-byte header only.
    name: 'MODE SENSE(10)',
    golden: hex(`
      5a          # OPERATION CODE (MODE SENSE(10))
      08          # LLBAA 0, DBD 1
      3f          # PC 00b (current), PAGE CODE 3Fh (all pages)
      00          # SUBPAGE CODE
      00 00 00    # reserved
      00 08       # ALLOCATION LENGTH 8
      00          # CONTROL
    `),
    value: { llbaa: false, dbd: true, pageControl: 0, pageCode: 0x3f, subpageCode: 0, allocationLength: 8, control: 0 },
    encode: () => encodeModeSense10Cdb({ dbd: true, pageCode: 0x3f, allocationLength: 8 }),
    decode: decodeModeSense10Cdb,
  },
  {
    // Every field away from zero: LLBAA, changeable values (PC 01b), page 0Ah subpage FFh.
    name: 'MODE SENSE(10) with every field set',
    golden: hex(`
      5a 18       # OPERATION CODE; LLBAA 1, DBD 1
      4a          # PC 01b (changeable), PAGE CODE 0Ah
      ff          # SUBPAGE CODE FFh
      00 00 00    # reserved
      ff fe       # ALLOCATION LENGTH 65534
      04          # CONTROL (NACA)
    `),
    value: { llbaa: true, dbd: true, pageControl: 1, pageCode: 0x0a, subpageCode: 0xff, allocationLength: 0xfffe, control: 4 },
    encode: () => encodeModeSense10Cdb({ llbaa: true, dbd: true, pageControl: 1, pageCode: 0x0a, subpageCode: 0xff, allocationLength: 0xfffe, control: 4 }),
    decode: decodeModeSense10Cdb,
  },
  {
    name: 'RECEIVE COPY RESULTS COPY STATUS',
    golden: hex(`
      84          # OPERATION CODE (RECEIVE COPY RESULTS)
      00          # SERVICE ACTION 00h (COPY STATUS)
      07          # LIST IDENTIFIER 7
      00 00 00 00 00 00 00  # reserved
      00 00 00 0c # ALLOCATION LENGTH 12
      00          # reserved
      00          # CONTROL
    `),
    value: { serviceAction: 0, listIdentifier: 7, allocationLength: 12, control: 0 },
    encode: () => encodeReceiveCopyResultsCdb({ serviceAction: 0, listIdentifier: 7, allocationLength: 12 }),
    decode: decodeReceiveCopyResultsCdb,
  },
];

describe.each(cases.map((c) => [c.name, c] as const))('%s CDB', (_name, c) => {
  it('decodes the golden bytes', () => {
    expect(c.decode(c.golden)).toEqual(c.value);
  });

  it('encodes the golden bytes', () => {
    expect(c.encode().toString('hex')).toBe(c.golden.toString('hex'));
  });

  it('round-trips decode → encode-from-value → decode', () => {
    expect(c.decode(c.encode())).toEqual(c.decode(c.golden));
  });

  it('rejects every cut with the first missing byte as offset', () => {
    for (let cut = 0; cut < c.golden.length; cut++) {
      const err = decodeErrorOf(() => c.decode(c.golden.subarray(0, cut)));
      expect(err.offset).toBe(cut);
    }
  });

  it('accepts a CDB padded to 16 or more bytes (iSCSI CDB field)', () => {
    const padded = Buffer.concat([c.golden, Buffer.alloc(16)]);
    expect(c.decode(padded)).toEqual(c.value);
  });

  it('rejects another opcode at byte 0', () => {
    const b = Buffer.from(c.golden);
    b[0] ^= 0x40;
    expect(decodeErrorOf(() => c.decode(b)).offset).toBe(0);
  });

  it('is a total decoder', () => {
    assertTotalDecoder(c.decode, c.golden, 500);
  });
});

// ---------------------------------------------------------------------------------------------
// Block-addressed CDBs the agent builds (READ(16), WRITE(16), SYNCHRONIZE CACHE(16)); the target
// decodes every READ/WRITE/... form with decodeBlockCdb, by length (SBC-3 r36 5.1).
// ---------------------------------------------------------------------------------------------

const blockCases: Array<{ name: string; golden: Buffer; value: ReturnType<typeof decodeBlockCdb>; encode: () => Buffer }> = [
  {
    name: 'READ(16)',
    golden: hex(`
      88          # OPERATION CODE (READ(16))
      18          # RDPROTECT 0, DPO 1, FUA 1
      00 00 00 12 34 56 78 9a  # LOGICAL BLOCK ADDRESS
      00 00 08 00 # TRANSFER LENGTH 2048
      05          # GROUP NUMBER 5
      00          # CONTROL
    `),
    value: { lba: 0x123456789an, count: 2048, flags: 0x18, group: 5, lbaByte: 2, countByte: 10 },
    encode: () => encodeRead16Cdb({ lba: 0x123456789an, transferLength: 2048, fua: true, dpo: true, groupNumber: 5 }),
  },
  {
    name: 'WRITE(16)',
    golden: hex(`
      8a          # OPERATION CODE (WRITE(16))
      28          # WRPROTECT 1, DPO 0, FUA 1
      ff ff ff ff ff ff ff fe  # LOGICAL BLOCK ADDRESS
      ff ff ff ff # TRANSFER LENGTH (largest)
      1f          # GROUP NUMBER 31
      04          # CONTROL (NACA)
    `),
    value: { lba: 0xffff_ffff_ffff_fffen, count: 0xffff_ffff, flags: 0x28, group: 31, lbaByte: 2, countByte: 10 },
    encode: () =>
      encodeWrite16Cdb({
        lba: 0xffff_ffff_ffff_fffen,
        transferLength: 0xffff_ffff,
        fua: true,
        wrprotect: 1,
        groupNumber: 31,
        control: 0x04,
      }),
  },
  {
    name: 'SYNCHRONIZE CACHE(16)',
    golden: hex(`
      91          # OPERATION CODE (SYNCHRONIZE CACHE(16))
      02          # IMMED 1
      00 00 00 00 00 01 00 00  # LOGICAL BLOCK ADDRESS
      00 00 10 00 # NUMBER OF LOGICAL BLOCKS
      00          # GROUP NUMBER
      00          # CONTROL
    `),
    value: { lba: 0x10000n, count: 0x1000, flags: 0x02, group: 0, lbaByte: 2, countByte: 10 },
    encode: () => encodeSynchronizeCache16Cdb({ immed: true, lba: 0x10000n, numberOfBlocks: 0x1000 }),
  },
];

describe.each(blockCases.map((c) => [c.name, c] as const))('%s CDB', (_name, c) => {
  it('encodes the golden bytes', () => {
    expect(c.encode().toString('hex')).toBe(c.golden.toString('hex'));
  });

  it('decodes the golden bytes as a 16-byte block CDB', () => {
    expect(decodeBlockCdb(c.golden, 16)).toEqual(c.value);
  });

  it('rejects every cut with the first missing byte as offset', () => {
    for (let cut = 0; cut < c.golden.length; cut++) {
      expect(decodeErrorOf(() => decodeBlockCdb(c.golden.subarray(0, cut), 16)).offset).toBe(cut);
    }
  });
});

describe('decodeBlockCdb: the 6-, 10- and 12-byte layouts (SBC-3 r36 5.1)', () => {
  it('READ(6): LBA in byte 1 bits 4:0 and bytes 2-3; TRANSFER LENGTH 0 means 256 only when asked', () => {
    const read6 = hex('08 e1 23 45 00 00'); // bits 7:5 of byte 1 are not the LBA
    expect(decodeBlockCdb(read6, 6, true)).toEqual({ lba: 0x12345n, count: 256, flags: 0, group: 0, lbaByte: 1, countByte: 4 });
    expect(decodeBlockCdb(read6, 6).count).toBe(0);
  });

  it('READ(10) and READ(12)', () => {
    expect(decodeBlockCdb(hex('28 08 01 02 03 04 1e 00 10 00'), 10)).toEqual({ lba: 0x01020304n, count: 16, flags: 0x08, group: 0x1e, lbaByte: 2, countByte: 7 });
    expect(decodeBlockCdb(hex('a8 00 00 00 00 09 00 01 00 00 03 00'), 12)).toEqual({ lba: 9n, count: 0x10000, flags: 0, group: 3, lbaByte: 2, countByte: 6 });
  });

  it('is a total decoder for each length', () => {
    assertTotalDecoder((b) => decodeBlockCdb(b, 6), hex('08 00 00 01 01 00'), 200);
    assertTotalDecoder((b) => decodeBlockCdb(b, 10), hex('28 00 00 00 00 01 00 00 01 00'), 200);
    assertTotalDecoder((b) => decodeBlockCdb(b, 12), hex('a8 00 00 00 00 01 00 00 00 01 00 00'), 200);
    assertTotalDecoder((b) => decodeBlockCdb(b, 16), blockCases[0].golden, 200);
  });
});

describe('TEST UNIT READY CDB', () => {
  it('encodes the golden bytes', () => {
    expect(encodeTestUnitReadyCdb().toString('hex')).toBe('000000000000');
  });
});

describe('service action checks', () => {
  it('READ CAPACITY(16) decoder rejects another SERVICE ACTION IN(16) action at byte 1', () => {
    const getLbaStatus = encodeReadCapacity16Cdb({ allocationLength: 32 });
    getLbaStatus[1] = 0x12;
    const err = decodeErrorOf(() => decodeReadCapacity16Cdb(getLbaStatus));
    expect(err.offset).toBe(1);
    expect(err.message).toContain('READ CAPACITY(16)');
  });

  it('EXTENDED COPY decoder accepts only LID1 (SA 00h)', () => {
    const lid4 = encodeExtendedCopyCdb({ parameterListLength: 64 });
    lid4[1] = 0x01;
    expect(decodeErrorOf(() => decodeExtendedCopyCdb(lid4)).offset).toBe(1);
    // Bits 7:5 of byte 1 are reserved, not part of the service action.
    lid4[1] = 0xe0;
    expect(decodeExtendedCopyCdb(lid4).parameterListLength).toBe(64);
  });

  it.each([0x02, 0x05, 0x06, 0x07, 0x08, 0x1f])('RECEIVE COPY RESULTS rejects service action %p', (sa) => {
    const b = encodeReceiveCopyResultsCdb({ serviceAction: 0, allocationLength: 12 });
    b[1] = sa;
    expect(decodeErrorOf(() => decodeReceiveCopyResultsCdb(b)).offset).toBe(1);
    expect(() => encodeReceiveCopyResultsCdb({ serviceAction: sa, allocationLength: 12 })).toThrow(EncodeError);
  });

  it.each([0x00, 0x01, 0x03, 0x04])('RECEIVE COPY RESULTS accepts LID1 service action %p', (sa) => {
    const b = encodeReceiveCopyResultsCdb({ serviceAction: sa, listIdentifier: 9, allocationLength: 60 });
    expect(decodeReceiveCopyResultsCdb(b)).toEqual({
      serviceAction: sa,
      listIdentifier: 9,
      allocationLength: 60,
      control: 0,
    });
  });
});

describe('encoders reject values that do not fit', () => {
  it.each<[string, () => Buffer]>([
    ['READ(16) lba < 0', () => encodeRead16Cdb({ lba: -1n, transferLength: 1 })],
    ['READ(16) lba ≥ 2^64', () => encodeRead16Cdb({ lba: 1n << 64n, transferLength: 1 })],
    ['READ(16) lba not a bigint', () => encodeRead16Cdb({ lba: 5 as unknown as bigint, transferLength: 1 })],
    ['READ(16) transfer length ≥ 2^32', () => encodeRead16Cdb({ lba: 0n, transferLength: 2 ** 32 })],
    ['READ(16) transfer length fractional', () => encodeRead16Cdb({ lba: 0n, transferLength: 1.5 })],
    ['READ(16) transfer length missing', () => encodeRead16Cdb({ lba: 0n } as never)],
    ['READ(16) group number 32', () => encodeRead16Cdb({ lba: 0n, transferLength: 1, groupNumber: 32 })],
    ['READ(16) rdprotect 8', () => encodeRead16Cdb({ lba: 0n, transferLength: 1, rdprotect: 8 })],
    ['WRITE(16) lba missing', () => encodeWrite16Cdb({ transferLength: 1 } as never)],
    ['WRITE(16) control 256', () => encodeWrite16Cdb({ lba: 0n, transferLength: 1, control: 256 })],
    ['INQUIRY allocation length 65536', () => encodeInquiryCdb({ allocationLength: 0x10000 })],
    ['INQUIRY page code 256', () => encodeInquiryCdb({ evpd: true, pageCode: 256, allocationLength: 4 })],
    ['READ CAPACITY(16) allocation length -1', () => encodeReadCapacity16Cdb({ allocationLength: -1 })],
    ['SYNCHRONIZE CACHE(16) blocks ≥ 2^32', () => encodeSynchronizeCache16Cdb({ numberOfBlocks: 2 ** 32 })],
    ['REPORT LUNS select report 256', () => encodeReportLunsCdb({ selectReport: 256, allocationLength: 16 })],
    ['EXTENDED COPY length ≥ 2^32', () => encodeExtendedCopyCdb({ parameterListLength: 2 ** 32 })],
    ['MODE SENSE(10) page code 40h', () => encodeModeSense10Cdb({ pageCode: 0x40, allocationLength: 8 })],
    ['MODE SENSE(10) page control 4', () => encodeModeSense10Cdb({ pageControl: 4, pageCode: 0x3f, allocationLength: 8 })],
    [
      'RECEIVE COPY RESULTS list id 256',
      () => encodeReceiveCopyResultsCdb({ serviceAction: 0, listIdentifier: 256, allocationLength: 12 }),
    ],
    ['TEST UNIT READY control -1', () => encodeTestUnitReadyCdb({ control: -1 })],
  ])('%s', (_name, f) => {
    expect(f).toThrow(EncodeError);
  });
});

describe('cdbLengthOfOpcode (SPC-4 r37 4.2.5.1 GROUP CODE)', () => {
  it.each([
    [0x00, 6],
    [0x12, 6],
    [0x28, 10],
    [0x5a, 10],
    [0x88, 16],
    [0x9e, 16],
    [0xa0, 12],
    [0xa8, 12],
    [0x7f, undefined],
    [0xc0, undefined],
    [0xe0, undefined],
  ])('opcode %p → %p', (op, len) => {
    expect(cdbLengthOfOpcode(op)).toBe(len);
  });

  it('agrees with every encoder', () => {
    for (const c of [...cases, ...blockCases]) expect(cdbLengthOfOpcode(c.golden[0])).toBe(c.golden.length);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties: random valid values → encode → decode gives them back.
// ---------------------------------------------------------------------------------------------

const u8 = fc.integer({ min: 0, max: 0xff });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const lba = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const group = fc.integer({ min: 0, max: 31 });
const protect = fc.integer({ min: 0, max: 7 });

describe('round-trip properties', () => {
  it('INQUIRY', () => {
    const arb = fc.record({
      evpd: fc.boolean(),
      pageCode: u8,
      allocationLength: fc.integer({ min: 0, max: 0xffff }),
      control: u8,
    });
    fc.assert(fc.property(arb, (v) => expect(decodeInquiryCdb(encodeInquiryCdb(v))).toEqual(v)));
  });

  it('READ CAPACITY(16)', () => {
    const arb = fc.record({ allocationLength: u32, lba, pmi: fc.boolean(), control: u8 });
    fc.assert(fc.property(arb, (v) => expect(decodeReadCapacity16Cdb(encodeReadCapacity16Cdb(v))).toEqual(v)));
  });

  it('READ(16), WRITE(16), SYNCHRONIZE CACHE(16) → decodeBlockCdb', () => {
    const arb = fc.record({ lba, transferLength: u32, dpo: fc.boolean(), fua: fc.boolean(), protect, groupNumber: group, control: u8 });
    fc.assert(
      fc.property(arb, (v) => {
        const want = { lba: v.lba, count: v.transferLength, group: v.groupNumber, lbaByte: 2, countByte: 10 };
        const flags = (v.protect << 5) | (v.dpo ? 0x10 : 0) | (v.fua ? 0x08 : 0);
        expect(decodeBlockCdb(encodeRead16Cdb({ ...v, rdprotect: v.protect }), 16)).toEqual({ ...want, flags });
        expect(decodeBlockCdb(encodeWrite16Cdb({ ...v, wrprotect: v.protect }), 16)).toEqual({ ...want, flags });
        const sync = encodeSynchronizeCache16Cdb({ immed: v.fua, lba: v.lba, numberOfBlocks: v.transferLength, groupNumber: v.groupNumber });
        expect(decodeBlockCdb(sync, 16)).toEqual({ ...want, flags: v.fua ? 0x02 : 0 });
      }),
    );
  });

  it('REPORT LUNS', () => {
    const arb = fc.record({ selectReport: u8, allocationLength: u32, control: u8 });
    fc.assert(fc.property(arb, (v) => expect(decodeReportLunsCdb(encodeReportLunsCdb(v))).toEqual(v)));
  });

  it('EXTENDED COPY(LID1)', () => {
    const arb = fc.record({ parameterListLength: u32, control: u8 });
    fc.assert(fc.property(arb, (v) => expect(decodeExtendedCopyCdb(encodeExtendedCopyCdb(v))).toEqual(v)));
  });

  it('RECEIVE COPY RESULTS', () => {
    const arb = fc.record({
      serviceAction: fc.constantFrom(0, 1, 3, 4),
      listIdentifier: u8,
      allocationLength: u32,
      control: u8,
    });
    fc.assert(fc.property(arb, (v) => expect(decodeReceiveCopyResultsCdb(encodeReceiveCopyResultsCdb(v))).toEqual(v)));
  });
});

describe('COPY OPERATION ABORT CDB (SPC-4 r37 6.3)', () => {
  it('encodes the golden bytes', () => {
    expect(encodeCopyOperationAbortCdb({ listIdentifier: 0x0102_0304 })).toEqual(
      hex(`
        83          # OPERATION CODE (THIRD-PARTY COPY OUT)
        1c          # SERVICE ACTION 1Ch (COPY OPERATION ABORT)
        01 02 03 04 # LIST IDENTIFIER
        00 00 00 00 00 00 00 00 00  # reserved
        00          # CONTROL
      `),
    );
  });
  it('refuses a list identifier beyond 32 bits', () => {
    expect(() => encodeCopyOperationAbortCdb({ listIdentifier: 2 ** 32 })).toThrow(EncodeError);
  });
});

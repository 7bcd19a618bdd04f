import fc from 'fast-check';
import { EncodeError } from '../../../src/errors';
import {
  Association,
  CodeSet,
  decodeBlockLimits,
  decodeDeviceIdentification,
  decodeLogicalBlockProvisioning,
  decodeSupportedVpdPages,
  decodeUnitSerialNumber,
  splitVpdPage,
  DesignatorType,
  encodeBlockDeviceCharacteristics,
  encodeBlockLimits,
  encodeDeviceIdentification,
  encodeLogicalBlockProvisioning,
  encodeSupportedVpdPages,
  encodeUnitSerialNumber,
  formatDesignator,
  pickCscdDesignator,
  type BlockDeviceCharacteristics,
  type BlockLimits,
  type DesignationDescriptor,
  type LogicalBlockProvisioning,
} from '../../../src/scsi/vpd';
import { assertTotalDecoder, hex, offsetOf } from '../../helpers/codec';

describe('VPD page header', () => {
  test('decodes peripheral, page code and page length', () => {
    expect(splitVpdPage(hex('3f 83 01 02'), 0x83, 'VPD page').header).toEqual({
      peripheralQualifier: 1,
      peripheralDeviceType: 0x1f,
      pageCode: 0x83,
      pageLength: 0x0102,
    });
  });
  test('short header and wrong page code are DecodeErrors with offsets', () => {
    expect(offsetOf(() => splitVpdPage(hex('00 83 00'), 0x83, 'VPD page'))).toBe(3);
    expect(offsetOf(() => splitVpdPage(hex('00 80 00 00'), 0x83, 'VPD page'))).toBe(1);
    expect(offsetOf(() => decodeSupportedVpdPages(hex('00 83 00 00')))).toBe(1);
  });
});

// --------------------------------------------------------------------------------------------
// 00h Supported VPD Pages: LIO 6.1's list (as observed).
// --------------------------------------------------------------------------------------------
const LIO_SUPPORTED = hex(`
  00                        # PERIPHERAL QUALIFIER 0, PERIPHERAL DEVICE TYPE 00h
  00                        # PAGE CODE 00h
  00 08                     # PAGE LENGTH 8
  00 80 83 86 b0 b1 b2 b3   # supported page list
`);

describe('Supported VPD Pages (00h)', () => {
  const pages = [0x00, 0x80, 0x83, 0x86, 0xb0, 0xb1, 0xb2, 0xb3];
  test('decode', () => {
    expect(decodeSupportedVpdPages(LIO_SUPPORTED)).toEqual({
      peripheralQualifier: 0,
      peripheralDeviceType: 0,
      pages,
      truncated: false,
    });
  });
  test('encode', () => {
    expect(encodeSupportedVpdPages(pages).toString('hex')).toBe(LIO_SUPPORTED.toString('hex'));
  });
  test('round trip', () => {
    expect(encodeSupportedVpdPages(decodeSupportedVpdPages(LIO_SUPPORTED).pages).equals(LIO_SUPPORTED)).toBe(true);
  });
  test('cut by the allocation length', () => {
    expect(decodeSupportedVpdPages(LIO_SUPPORTED.subarray(0, 8))).toMatchObject({
      pages: [0x00, 0x80, 0x83, 0x86],
      truncated: true,
    });
  });
  test('PAGE LENGTH is honoured', () => {
    const b = Buffer.concat([LIO_SUPPORTED, hex('8f')]);
    expect(decodeSupportedVpdPages(b).pages).not.toContain(0x8f);
  });
  test('encoder rejects a page code above FFh', () => {
    expect(() => encodeSupportedVpdPages([0x100])).toThrow(EncodeError);
  });
  test('total decoder', () => assertTotalDecoder(decodeSupportedVpdPages, LIO_SUPPORTED));
});

// --------------------------------------------------------------------------------------------
// 80h Unit Serial Number
// --------------------------------------------------------------------------------------------
const SERIAL = 'e4f5a6b7-1c2d-4e3f-8a9b-0c1d2e3f4a5b';
// LIO (spc_emulate_evpd_80) counts and sends the NUL terminator.
const LIO_SERIAL = hex(`
  00 80 00 25                                      # PDT 0, PAGE CODE 80h, PAGE LENGTH 37
  65 34 66 35 61 36 62 37 2d 31 63 32 64 2d 34 65  # PRODUCT SERIAL NUMBER "e4f5a6b7-1c2d-4e"
  33 66 2d 38 61 39 62 2d 30 63 31 64 32 65 33 66  #   "3f-8a9b-0c1d2e3f"
  34 61 35 62                                      #   "4a5b"
  00                                               #   NUL terminator (LIO)
`);
// What our encoder writes: no terminator.
const OUR_SERIAL = Buffer.from(LIO_SERIAL.subarray(0, 40));
OUR_SERIAL[3] = 0x24;

describe('Unit Serial Number (80h)', () => {
  test('decodes LIO’s page, dropping the NUL', () => {
    expect(decodeUnitSerialNumber(LIO_SERIAL)).toEqual({
      peripheralQualifier: 0,
      peripheralDeviceType: 0,
      productSerialNumber: SERIAL,
      truncated: false,
    });
  });
  test('encode', () => {
    expect(encodeUnitSerialNumber(SERIAL).toString('hex')).toBe(OUR_SERIAL.toString('hex'));
  });
  test('round trip', () => {
    expect(encodeUnitSerialNumber(decodeUnitSerialNumber(OUR_SERIAL).productSerialNumber).equals(OUR_SERIAL)).toBe(
      true,
    );
  });
  test('right-aligned serial (leading spaces) is trimmed', () => {
    expect(decodeUnitSerialNumber(hex('00 80 00 06 20 20 41 42 43 44')).productSerialNumber).toBe('ABCD');
  });
  test('cut by the allocation length', () => {
    expect(decodeUnitSerialNumber(LIO_SERIAL.subarray(0, 12))).toMatchObject({
      productSerialNumber: 'e4f5a6b7',
      truncated: true,
    });
  });
  test('encoder wants printable ASCII', () => {
    expect(() => encodeUnitSerialNumber('séria')).toThrow(EncodeError);
  });
  test('total decoder', () => assertTotalDecoder(decodeUnitSerialNumber, LIO_SERIAL));
});

// --------------------------------------------------------------------------------------------
// 83h Device Identification: the layout LIO's spc_emulate_evpd_83 builds for an iSCSI fileio LUN
// with vpd_unit_serial = e4f5a6b7-1c2d-4e3f-8a9b-0c1d2e3f4a5b, model FILEIO, target
// iqn.2026-11.test:lio, TPGT 1, RTPI 1, default ALUA groups (ids 0).
// --------------------------------------------------------------------------------------------
const LIO_DEVICE_ID = hex(`
  00 83 00 a4          # PDT 0, PAGE CODE 83h, PAGE LENGTH 164
  # [1] NAA, logical unit (offset 4)
  01                   # PROTOCOL IDENTIFIER 0, CODE SET 1 (binary)
  03                   # PIV 0, ASSOCIATION 00b (LU), DESIGNATOR TYPE 3 (NAA)
  00                   # reserved
  10                   # DESIGNATOR LENGTH 16
  60 01 40 5e 4f 5a 6b 71 c2 d4 e3 f8 a9 b0 c1 d2   # NAA 6h, IEEE company id 001405h, serial hex digits
  # [2] T10 vendor ID, logical unit (offset 24)
  02                   # CODE SET 2 (ASCII)
  01                   # ASSOCIATION 00b, DESIGNATOR TYPE 1 (T10 vendor ID)
  00                   # reserved
  34                   # DESIGNATOR LENGTH 52
  4c 49 4f 2d 4f 52 47 20                           # T10 VENDOR IDENTIFICATION "LIO-ORG "
  46 49 4c 45 49 4f 3a                              # "FILEIO:"
  65 34 66 35 61 36 62 37 2d 31 63 32 64 2d 34 65   # "e4f5a6b7-1c2d-4e"
  33 66 2d 38 61 39 62 2d 30 63 31 64 32 65 33 66   # "3f-8a9b-0c1d2e3f"
  34 61 35 62 00                                    # "4a5b" NUL
  # [3] relative target port identifier, target port (offset 80)
  51                   # PROTOCOL IDENTIFIER 5 (iSCSI), CODE SET 1
  94                   # PIV 1, ASSOCIATION 01b, DESIGNATOR TYPE 4
  00 04                # reserved, DESIGNATOR LENGTH 4
  00 00 00 01          # obsolete, RELATIVE TARGET PORT IDENTIFIER 1
  # [4] target port group, target port (offset 88)
  51 95 00 04          # iSCSI, binary; PIV 1, ASSOCIATION 01b, DESIGNATOR TYPE 5; length 4
  00 00 00 00          # reserved, TARGET PORT GROUP 0
  # [5] logical unit group (offset 96)
  01 06 00 04          # binary; ASSOCIATION 00b, DESIGNATOR TYPE 6; length 4
  00 00 00 00          # reserved, LOGICAL UNIT GROUP 0
  # [6] SCSI name string, target port (offset 104)
  53 98 00 20          # iSCSI, UTF-8; PIV 1, ASSOCIATION 01b, DESIGNATOR TYPE 8; length 32
  69 71 6e 2e 32 30 32 36 2d 31 31 2e 74 65 73 74   # "iqn.2026-11.test"
  3a 6c 69 6f 2c 74 2c 30 78 30 30 30 31 00 00 00   # ":lio,t,0x0001" NUL + pad
  # [7] SCSI name string, target device (offset 140)
  53 a8 00 18          # iSCSI, UTF-8; PIV 1, ASSOCIATION 10b, DESIGNATOR TYPE 8; length 24
  69 71 6e 2e 32 30 32 36 2d 31 31 2e 74 65 73 74   # "iqn.2026-11.test"
  3a 6c 69 6f 00 00 00 00                           # ":lio" NUL + pad
`);

const d = (
  protocolIdentifier: number,
  codeSet: number,
  piv: boolean,
  association: number,
  designatorType: number,
  designator: Buffer,
): DesignationDescriptor => ({ protocolIdentifier, codeSet, piv, association, designatorType, designator });

const NAA = d(0, 1, false, 0, 3, hex('60 01 40 5e 4f 5a 6b 71 c2 d4 e3 f8 a9 b0 c1 d2'));
const LIO_DESIGNATORS: DesignationDescriptor[] = [
  NAA,
  d(0, 2, false, 0, 1, Buffer.from(`LIO-ORG FILEIO:${SERIAL}\0`, 'latin1')),
  d(5, 1, true, 1, 4, hex('00 00 00 01')),
  d(5, 1, true, 1, 5, hex('00 00 00 00')),
  d(0, 1, false, 0, 6, hex('00 00 00 00')),
  d(5, 3, true, 1, 8, Buffer.from('iqn.2026-11.test:lio,t,0x0001\0\0\0', 'latin1')),
  d(5, 3, true, 2, 8, Buffer.from('iqn.2026-11.test:lio\0\0\0\0', 'latin1')),
];

describe('Device Identification (83h)', () => {
  test('decodes LIO’s page into its seven designators', () => {
    expect(decodeDeviceIdentification(LIO_DEVICE_ID)).toEqual({
      peripheralQualifier: 0,
      peripheralDeviceType: 0,
      designators: LIO_DESIGNATORS,
      truncated: false,
    });
  });
  test('encode', () => {
    expect(encodeDeviceIdentification(LIO_DESIGNATORS).toString('hex')).toBe(LIO_DEVICE_ID.toString('hex'));
  });
  test('round trip', () => {
    expect(encodeDeviceIdentification(decodeDeviceIdentification(LIO_DEVICE_ID).designators).equals(LIO_DEVICE_ID)).toBe(
      true,
    );
  });
  test('cut by the allocation length inside a descriptor: the whole ones only', () => {
    expect(decodeDeviceIdentification(LIO_DEVICE_ID.subarray(0, 30))).toEqual({
      peripheralQualifier: 0,
      peripheralDeviceType: 0,
      designators: [NAA],
      truncated: true,
    });
    expect(decodeDeviceIdentification(LIO_DEVICE_ID.subarray(0, 26)).designators).toEqual([NAA]);
  });
  test('a DESIGNATOR LENGTH running past the page is a DecodeError at that length byte', () => {
    const bad = Buffer.from(LIO_DEVICE_ID);
    bad[7] = 0xff;
    expect(offsetOf(() => decodeDeviceIdentification(bad))).toBe(7);
    const last = Buffer.from(LIO_DEVICE_ID);
    last[143] = 0x19; // target device designator one byte longer than the page
    expect(offsetOf(() => decodeDeviceIdentification(last))).toBe(143);
  });
  test('a descriptor header running past the page is a DecodeError at its start', () => {
    const b = Buffer.concat([LIO_DEVICE_ID.subarray(0, 24), hex('01 03')]);
    b.writeUInt16BE(22, 2); // NAA (20) + 2 stray bytes
    expect(offsetOf(() => decodeDeviceIdentification(b))).toBe(24);
  });
  test('total decoder', () => assertTotalDecoder(decodeDeviceIdentification, LIO_DEVICE_ID));
  test('encoder rejects fields that do not fit', () => {
    expect(() => encodeDeviceIdentification([{ ...NAA, association: 4 }])).toThrow(EncodeError);
    expect(() => encodeDeviceIdentification([{ ...NAA, designator: Buffer.alloc(256) }])).toThrow(EncodeError);
  });
  test('property: encode then decode gives the designators back', () => {
    const designator = fc.record({
      protocolIdentifier: fc.integer({ min: 0, max: 15 }),
      codeSet: fc.integer({ min: 0, max: 15 }),
      piv: fc.boolean(),
      association: fc.integer({ min: 0, max: 3 }),
      designatorType: fc.integer({ min: 0, max: 15 }),
      designator: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
    });
    fc.assert(
      fc.property(fc.array(designator, { maxLength: 8 }), (ds) => {
        expect(decodeDeviceIdentification(encodeDeviceIdentification(ds)).designators).toEqual(ds);
      }),
      { numRuns: 300 },
    );
  });
});

describe('pickCscdDesignator (docs/xcopy.md, The identification CSCD)', () => {
  const eui = d(0, 1, false, 0, 2, hex('00 11 22 33 44 55 66 77'));
  const t10 = d(0, 2, false, 0, 1, Buffer.from('VENDOR  PRODUCT 123'));
  test('picks LIO’s NAA designator', () => {
    expect(pickCscdDesignator(LIO_DESIGNATORS)).toBe(LIO_DESIGNATORS[0]);
  });
  test('NAA before EUI-64 before T10, whatever the order in the page', () => {
    expect(pickCscdDesignator([t10, eui, NAA])).toBe(NAA);
    expect(pickCscdDesignator([t10, eui])).toBe(eui);
    expect(pickCscdDesignator([t10])).toBe(t10);
  });
  test('only association logical unit and at most 20 bytes', () => {
    const portNaa = { ...NAA, association: Association.TARGET_PORT };
    const longNaa = { ...NAA, designator: Buffer.alloc(21, 0x60) };
    expect(pickCscdDesignator([portNaa, longNaa, t10])).toBe(t10);
    expect(pickCscdDesignator([portNaa, longNaa])).toBeUndefined();
    expect(pickCscdDesignator(LIO_DESIGNATORS.slice(2))).toBeUndefined();
  });
  test('the first of the best type wins', () => {
    const other = { ...NAA, designator: hex('60 01 40 50 00 00 00 00 00 00 00 00 00 00 00 01') };
    expect(pickCscdDesignator([eui, other, NAA])).toBe(other);
  });
});

describe('formatDesignator', () => {
  test('LIO’s designators as text', () => {
    expect(LIO_DESIGNATORS.map(formatDesignator)).toEqual([
      'naa.6001405e4f5a6b71c2d4e3f8a9b0c1d2',
      `t10.LIO-ORG FILEIO:${SERIAL}`,
      'rtpi.00000001',
      'tpg.00000000',
      'lug.00000000',
      'iqn.2026-11.test:lio,t,0x0001',
      'iqn.2026-11.test:lio',
    ]);
  });
  test('EUI-64 and vendor specific', () => {
    expect(formatDesignator(d(0, CodeSet.BINARY, false, 0, DesignatorType.EUI64, hex('00 11 22 33 44 55 66 77')))).toBe(
      'eui.0011223344556677',
    );
    expect(formatDesignator(d(0, CodeSet.ASCII, false, 0, DesignatorType.VENDOR_SPECIFIC, Buffer.from('abc  ')))).toBe(
      'vendor.abc',
    );
  });
});

// --------------------------------------------------------------------------------------------
// B0h Block Limits: the layout LIO's spc_emulate_evpd_b0 writes with emulate_tpu=1 (PAGE LENGTH
// 3Ch); the attribute values are illustrative.
// --------------------------------------------------------------------------------------------
const BLOCK_LIMITS = hex(`
  00 b0 00 3c          # PDT 0, PAGE CODE B0h, PAGE LENGTH 60
  01                   # WSNZ 1
  01                   # MAXIMUM COMPARE AND WRITE LENGTH 1
  00 01                # OPTIMAL TRANSFER LENGTH GRANULARITY 1
  00 00 40 00          # MAXIMUM TRANSFER LENGTH 16384
  00 00 40 00          # OPTIMAL TRANSFER LENGTH 16384
  00 00 00 00          # MAXIMUM PREFETCH LENGTH 0
  00 40 00 00          # MAXIMUM UNMAP LBA COUNT 4194304
  00 00 00 01          # MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT 1
  00 00 00 08          # OPTIMAL UNMAP GRANULARITY 8
  80 00 00 08          # UGAVALID 1, UNMAP GRANULARITY ALIGNMENT 8
  00 00 00 00 00 00 10 00   # MAXIMUM WRITE SAME LENGTH 4096
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   # bytes 44-63 (SBC-4 atomic fields, not decoded)
`);
const BLOCK_LIMITS_FIELDS: BlockLimits = {
  wsnz: true,
  maximumCompareAndWriteLength: 1,
  optimalTransferLengthGranularity: 1,
  maximumTransferLength: 16384,
  optimalTransferLength: 16384,
  maximumPrefetchLength: 0,
  maximumUnmapLbaCount: 0x400000,
  maximumUnmapBlockDescriptorCount: 1,
  optimalUnmapGranularity: 8,
  ugavalid: true,
  unmapGranularityAlignment: 8,
  maximumWriteSameLength: 4096n,
};
// LIO without thin provisioning: PAGE LENGTH 10h, yet it still writes MAXIMUM WRITE SAME LENGTH
// at bytes 36-43 (beyond the page): a decoder that honours PAGE LENGTH must not report it.
const LIO_BLOCK_LIMITS_NO_TP = hex(`
  00 b0 00 10          # PDT 0, PAGE CODE B0h, PAGE LENGTH 16
  01 00 00 01          # WSNZ 1, MAXIMUM COMPARE AND WRITE LENGTH 0, OTLG 1
  00 00 04 00          # MAXIMUM TRANSFER LENGTH 1024
  00 00 04 00          # OPTIMAL TRANSFER LENGTH 1024
  00 00 00 00          # MAXIMUM PREFETCH LENGTH
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   # bytes 20-35, beyond the page
  00 00 00 00 ff ff ff ff                           # bytes 36-43 written by LIO beyond the page
`);

describe('Block Limits (B0h)', () => {
  test('decode', () => {
    expect(decodeBlockLimits(BLOCK_LIMITS)).toEqual({
      peripheralQualifier: 0,
      peripheralDeviceType: 0,
      pageLength: 0x3c,
      truncated: false,
      ...BLOCK_LIMITS_FIELDS,
    });
  });
  test('encode', () => {
    expect(encodeBlockLimits(BLOCK_LIMITS_FIELDS).toString('hex')).toBe(BLOCK_LIMITS.toString('hex'));
  });
  test('round trip', () => {
    expect(encodeBlockLimits(decodeBlockLimits(BLOCK_LIMITS)).equals(BLOCK_LIMITS)).toBe(true);
  });
  test('a 0010h page: fields beyond PAGE LENGTH read as 0 (not reported)', () => {
    expect(decodeBlockLimits(LIO_BLOCK_LIMITS_NO_TP)).toMatchObject({
      pageLength: 0x10,
      wsnz: true,
      maximumTransferLength: 1024,
      optimalTransferLength: 1024,
      maximumUnmapLbaCount: 0,
      maximumWriteSameLength: 0n,
      truncated: false,
    });
  });
  test('cut by the allocation length: whole fields only', () => {
    expect(decodeBlockLimits(BLOCK_LIMITS.subarray(0, 22))).toMatchObject({
      maximumPrefetchLength: 0,
      optimalTransferLength: 16384,
      maximumUnmapLbaCount: 0,
      ugavalid: false,
      truncated: true,
    });
  });
  test('encoder rejects values that do not fit', () => {
    expect(() => encodeBlockLimits({ ...BLOCK_LIMITS_FIELDS, unmapGranularityAlignment: 0x80000000 })).toThrow(
      EncodeError,
    );
    expect(() => encodeBlockLimits({ ...BLOCK_LIMITS_FIELDS, maximumWriteSameLength: 1n << 64n })).toThrow(EncodeError);
    expect(() => encodeBlockLimits({ ...BLOCK_LIMITS_FIELDS, maximumCompareAndWriteLength: 256 })).toThrow(EncodeError);
  });
  test('total decoder', () => assertTotalDecoder(decodeBlockLimits, BLOCK_LIMITS));
  test('property: encode then decode', () => {
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const fields = fc.record({
      wsnz: fc.boolean(),
      maximumCompareAndWriteLength: fc.integer({ min: 0, max: 255 }),
      optimalTransferLengthGranularity: fc.integer({ min: 0, max: 0xffff }),
      maximumTransferLength: u32,
      optimalTransferLength: u32,
      maximumPrefetchLength: u32,
      maximumUnmapLbaCount: u32,
      maximumUnmapBlockDescriptorCount: u32,
      optimalUnmapGranularity: u32,
      ugavalid: fc.boolean(),
      unmapGranularityAlignment: fc.integer({ min: 0, max: 0x7fffffff }),
      maximumWriteSameLength: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    });
    fc.assert(
      fc.property(fields, (f) => {
        expect(decodeBlockLimits(encodeBlockLimits(f))).toEqual({
          peripheralQualifier: 0,
          peripheralDeviceType: 0,
          pageLength: 0x3c,
          truncated: false,
          ...f,
        });
      }),
      { numRuns: 300 },
    );
  });
});

// --------------------------------------------------------------------------------------------
// B1h Block Device Characteristics: LIO (spc_emulate_evpd_b1) for a non-rotational LUN.
// --------------------------------------------------------------------------------------------
const LIO_BDC = Buffer.concat([
  hex(`
    00 b1 00 3c        # PDT 0, PAGE CODE B1h, PAGE LENGTH 60
    00 01              # MEDIUM ROTATION RATE 1 (non-rotating medium)
    00                 # PRODUCT TYPE 0
    00                 # WABEREQ 0, WACEREQ 0, NOMINAL FORM FACTOR 0
    00                 # FUAB 0, VBULS 0
  `),
  Buffer.alloc(55), // bytes 9-63 reserved
]);
const LIO_BDC_FIELDS: BlockDeviceCharacteristics = {
  mediumRotationRate: 1,
  productType: 0,
  wabereq: 0,
  wacereq: 0,
  nominalFormFactor: 0,
  fuab: false,
  vbuls: false,
};

describe('Block Device Characteristics (B1h)', () => {
  // Only the target encodes it (the agent does not read B1h).
  test('encode', () => {
    expect(encodeBlockDeviceCharacteristics(LIO_BDC_FIELDS).toString('hex')).toBe(LIO_BDC.toString('hex'));
  });
  test('bit fields of bytes 7 and 8', () => {
    const b = Buffer.from(LIO_BDC);
    b.writeUInt16BE(7200, 4);
    b[6] = 0x02; // PRODUCT TYPE
    b[7] = 0x63; // WABEREQ 01b, WACEREQ 10b, NOMINAL FORM FACTOR 3h (2.5 inch)
    b[8] = 0x03; // FUAB, VBULS
    const fields = { mediumRotationRate: 7200, productType: 2, wabereq: 1, wacereq: 2, nominalFormFactor: 3, fuab: true, vbuls: true };
    expect(encodeBlockDeviceCharacteristics(fields)).toEqual(b);
  });
  test('encoder rejects values that do not fit', () => {
    expect(() => encodeBlockDeviceCharacteristics({ ...LIO_BDC_FIELDS, nominalFormFactor: 16 })).toThrow(EncodeError);
  });
});

// --------------------------------------------------------------------------------------------
// B2h Logical Block Provisioning: LIO (spc_emulate_evpd_b2) with emulate_tpu=1, emulate_tpws=1.
// --------------------------------------------------------------------------------------------
const LIO_LBP = hex(`
  00 b2 00 04          # PDT 0, PAGE CODE B2h, PAGE LENGTH 4 (DP 0)
  00                   # THRESHOLD EXPONENT 0
  c0                   # LBPU 1, LBPWS 1, LBPWS10 0, LBPRZ 0, ANC_SUP 0, DP 0
  00                   # PROVISIONING TYPE 0
  00                   # reserved
`);
const LIO_LBP_FIELDS: LogicalBlockProvisioning = {
  thresholdExponent: 0,
  lbpu: true,
  lbpws: true,
  lbpws10: false,
  lbprz: 0,
  ancSup: false,
  dp: false,
  provisioningType: 0,
};
// A thin-provisioned LU with a provisioning group descriptor (DP 1).
const LBP_WITH_GROUP = hex(`
  00 b2 00 10          # PDT 0, PAGE CODE B2h, PAGE LENGTH 16
  0c                   # THRESHOLD EXPONENT 12
  e7                   # LBPU 1, LBPWS 1, LBPWS10 1, LBPRZ 001b, ANC_SUP 1, DP 1
  02                   # PROVISIONING TYPE 2 (thin)
  00                   # reserved
  01 03 00 08          # provisioning group descriptor: binary, LU, NAA, length 8
  50 01 40 50 00 00 00 07                           # NAA 5h designator
`);

describe('Logical Block Provisioning (B2h)', () => {
  test('decode', () => {
    expect(decodeLogicalBlockProvisioning(LIO_LBP)).toEqual({
      peripheralQualifier: 0,
      peripheralDeviceType: 0,
      pageLength: 4,
      truncated: false,
      ...LIO_LBP_FIELDS,
    });
  });
  test('encode', () => {
    expect(encodeLogicalBlockProvisioning(LIO_LBP_FIELDS).toString('hex')).toBe(LIO_LBP.toString('hex'));
  });
  test('round trip, with a provisioning group descriptor too', () => {
    expect(encodeLogicalBlockProvisioning(decodeLogicalBlockProvisioning(LIO_LBP)).equals(LIO_LBP)).toBe(true);
    const decoded = decodeLogicalBlockProvisioning(LBP_WITH_GROUP);
    expect(decoded).toMatchObject({
      thresholdExponent: 12,
      lbpu: true,
      lbpws: true,
      lbpws10: true,
      lbprz: 1,
      ancSup: true,
      dp: true,
      provisioningType: 2,
      provisioningGroupDescriptor: d(0, 1, false, 0, 3, hex('50 01 40 50 00 00 00 07')),
    });
    expect(encodeLogicalBlockProvisioning(decoded).equals(LBP_WITH_GROUP)).toBe(true);
  });
  test('a provisioning group descriptor running past the page is a DecodeError', () => {
    const bad = Buffer.from(LBP_WITH_GROUP);
    bad[11] = 9;
    expect(offsetOf(() => decodeLogicalBlockProvisioning(bad))).toBe(11);
  });
  test('encoder: a group descriptor needs DP', () => {
    expect(() =>
      encodeLogicalBlockProvisioning({ ...LIO_LBP_FIELDS, provisioningGroupDescriptor: NAA }),
    ).toThrow(EncodeError);
  });
  test('total decoder', () => {
    assertTotalDecoder(decodeLogicalBlockProvisioning, LIO_LBP);
    assertTotalDecoder(decodeLogicalBlockProvisioning, LBP_WITH_GROUP);
  });
});

describe('peripheral byte', () => {
  test('encoders write the qualifier and device type given', () => {
    expect(encodeSupportedVpdPages([0], { peripheralQualifier: 1, peripheralDeviceType: 0x1f })[0]).toBe(0x3f);
    expect(() => encodeSupportedVpdPages([0], { peripheralDeviceType: 0x20 })).toThrow(EncodeError);
  });
});

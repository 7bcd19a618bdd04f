import fc from 'fast-check';
import { DecodeError, EncodeError } from '../../../src/errors';
import {
  decodeStandardInquiry,
  encodeStandardInquiry,
  spcVersionName,
  type StandardInquiryData,
} from '../../../src/scsi/inquiry';
import { assertTotalDecoder, hex } from '../../helpers/codec';

// Standard INQUIRY data as LIO 6.1 returns it for a fileio LUN (target_core_spc.c
// spc_emulate_inquiry_std; VERSION 6 and 3PC as observed from LIO in a VM): SCCS set, TPGS from the
// default ALUA group (implicit + explicit), 3PC from emulate_3pc, CMDQUE, ADDITIONAL LENGTH 31.
const LIO_INQUIRY = hex(`
  00                                               # PERIPHERAL QUALIFIER 0, PERIPHERAL DEVICE TYPE 00h
  00                                               # RMB 0
  06                                               # VERSION 6 (SPC-4)
  02                                               # NORMACA 0, HISUP 0, RESPONSE DATA FORMAT 2
  1f                                               # ADDITIONAL LENGTH 31
  b8                                               # SCCS 1, ACC 0, TPGS 11b, 3PC 1, PROTECT 0
  00                                               # ENCSERV 0, MULTIP 0
  02                                               # CMDQUE 1
  4c 49 4f 2d 4f 52 47 20                          # T10 VENDOR IDENTIFICATION "LIO-ORG "
  46 49 4c 45 49 4f 20 20 20 20 20 20 20 20 20 20  # PRODUCT IDENTIFICATION "FILEIO"
  34 2e 30 20                                      # PRODUCT REVISION LEVEL "4.0 "
`);

const LIO_FIELDS: StandardInquiryData = {
  peripheralQualifier: 0,
  peripheralDeviceType: 0,
  rmb: false,
  version: 6,
  normaca: false,
  hisup: false,
  responseDataFormat: 2,
  sccs: true,
  acc: false,
  tpgs: 3,
  threePc: true,
  protect: false,
  encserv: false,
  multip: false,
  cmdque: true,
  t10VendorIdentification: 'LIO-ORG',
  productIdentification: 'FILEIO',
  productRevisionLevel: '4.0',
  versionDescriptors: [],
};

// The same with three version descriptors, as our target will answer (74 bytes).
const WITH_VERSION_DESCRIPTORS = hex(`
  00 00 06 12                                      # PDT 0; RMB 0; VERSION 6; HISUP 1, RESPONSE DATA FORMAT 2
  45                                               # ADDITIONAL LENGTH 69 (74 bytes)
  08 10 02                                         # 3PC 1; MULTIP 1; CMDQUE 1
  58 43 4f 50 59 20 20 20                          # T10 VENDOR IDENTIFICATION "XCOPY"
  61 67 65 6e 74 20 20 20 20 20 20 20 20 20 20 20  # PRODUCT IDENTIFICATION "agent"
  30 2e 31 20                                      # PRODUCT REVISION LEVEL "0.1"
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  # bytes 36-51 vendor specific
  00 00 00 00 00 00                                # bytes 52-55 vendor specific, 56-57 reserved
  04 60                                            # VERSION DESCRIPTOR 1: SPC-4
  04 c0                                            # VERSION DESCRIPTOR 2: SBC-3
  09 60                                            # VERSION DESCRIPTOR 3: iSCSI
  00 00 00 00 00 00 00 00 00 00                    # VERSION DESCRIPTORs 4-8 unused
`);

const WITH_VD_FIELDS: StandardInquiryData = {
  ...LIO_FIELDS,
  hisup: true,
  sccs: false,
  tpgs: 0,
  multip: true,
  t10VendorIdentification: 'XCOPY',
  productIdentification: 'agent',
  productRevisionLevel: '0.1',
  versionDescriptors: [0x0460, 0x04c0, 0x0960],
};

describe('standard INQUIRY data', () => {
  test('decodes LIO’s response field by field', () => {
    expect(decodeStandardInquiry(LIO_INQUIRY)).toEqual({ ...LIO_FIELDS, additionalLength: 31, truncated: false });
  });

  test('encodes the same bytes', () => {
    expect(encodeStandardInquiry(LIO_FIELDS).toString('hex')).toBe(LIO_INQUIRY.toString('hex'));
  });

  test('round trip', () => {
    expect(encodeStandardInquiry(decodeStandardInquiry(LIO_INQUIRY)).equals(LIO_INQUIRY)).toBe(true);
    expect(encodeStandardInquiry(decodeStandardInquiry(WITH_VERSION_DESCRIPTORS)).equals(WITH_VERSION_DESCRIPTORS)).toBe(true);
  });

  test('version descriptors: decode and encode 74 bytes', () => {
    expect(decodeStandardInquiry(WITH_VERSION_DESCRIPTORS)).toEqual({
      ...WITH_VD_FIELDS,
      additionalLength: 69,
      truncated: false,
    });
    expect(encodeStandardInquiry(WITH_VD_FIELDS).toString('hex')).toBe(WITH_VERSION_DESCRIPTORS.toString('hex'));
  });

  test('data cut by the allocation length keeps the whole version descriptors only', () => {
    const cut = decodeStandardInquiry(WITH_VERSION_DESCRIPTORS.subarray(0, 63));
    expect(cut.versionDescriptors).toEqual([0x0460, 0x04c0]);
    expect(cut.truncated).toBe(true);
    expect(cut.productIdentification).toBe('agent');
  });

  test('ADDITIONAL LENGTH is honoured: bytes beyond it are ignored', () => {
    const padded = Buffer.concat([LIO_INQUIRY, Buffer.alloc(60)]);
    padded.writeUInt16BE(0x0460, 58); // beyond ADDITIONAL LENGTH 31: must not be read
    expect(decodeStandardInquiry(padded).versionDescriptors).toEqual([]);
  });

  test('fewer than 36 bytes is a DecodeError naming the first missing byte', () => {
    expect(() => decodeStandardInquiry(LIO_INQUIRY.subarray(0, 35))).toThrow(
      expect.objectContaining({ name: 'DecodeError', offset: 35 }),
    );
    expect(() => decodeStandardInquiry(Buffer.alloc(0))).toThrow(DecodeError);
  });

  test('ADDITIONAL LENGTH below 31 is a DecodeError at byte 4', () => {
    const bad = Buffer.from(LIO_INQUIRY);
    bad[4] = 30;
    expect(() => decodeStandardInquiry(bad)).toThrow(expect.objectContaining({ offset: 4 }));
  });

  test('total decoder', () => {
    assertTotalDecoder(decodeStandardInquiry, LIO_INQUIRY);
    assertTotalDecoder(decodeStandardInquiry, WITH_VERSION_DESCRIPTORS);
  });

  test('encoder rejects values that do not fit', () => {
    expect(() => encodeStandardInquiry({ ...LIO_FIELDS, t10VendorIdentification: 'TOO-LONG-X' })).toThrow(EncodeError);
    expect(() => encodeStandardInquiry({ ...LIO_FIELDS, productIdentification: 'naïve' })).toThrow(EncodeError);
    expect(() => encodeStandardInquiry({ ...LIO_FIELDS, peripheralDeviceType: 0x20 })).toThrow(EncodeError);
    expect(() => encodeStandardInquiry({ ...LIO_FIELDS, tpgs: 4 })).toThrow(EncodeError);
    expect(() => encodeStandardInquiry({ ...LIO_FIELDS, versionDescriptors: [1, 2, 3, 4, 5, 6, 7, 8, 9] })).toThrow(
      EncodeError,
    );
    expect(() => encodeStandardInquiry({ ...LIO_FIELDS, versionDescriptors: [0] })).toThrow(EncodeError);
  });

  test('encoder defaults: VERSION 6, RESPONSE DATA FORMAT 2, everything else clear', () => {
    const b = encodeStandardInquiry({
      peripheralDeviceType: 0,
      t10VendorIdentification: 'V',
      productIdentification: 'P',
      productRevisionLevel: 'R',
    });
    expect(b.length).toBe(36);
    expect([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]).toEqual([0, 0, 6, 2, 31, 0, 0, 0]);
  });

  test('property: encode then decode gives the fields back', () => {
    const ascii = (max: number) =>
      fc
        .array(fc.integer({ min: 0x20, max: 0x7e }), { maxLength: max })
        .map((codes) => String.fromCharCode(...codes).trimEnd());
    const fields = fc.record({
      peripheralQualifier: fc.integer({ min: 0, max: 7 }),
      peripheralDeviceType: fc.integer({ min: 0, max: 31 }),
      rmb: fc.boolean(),
      version: fc.integer({ min: 0, max: 255 }),
      normaca: fc.boolean(),
      hisup: fc.boolean(),
      responseDataFormat: fc.integer({ min: 0, max: 15 }),
      sccs: fc.boolean(),
      acc: fc.boolean(),
      tpgs: fc.integer({ min: 0, max: 3 }),
      threePc: fc.boolean(),
      protect: fc.boolean(),
      encserv: fc.boolean(),
      multip: fc.boolean(),
      cmdque: fc.boolean(),
      t10VendorIdentification: ascii(8),
      productIdentification: ascii(16),
      productRevisionLevel: ascii(4),
      versionDescriptors: fc.array(fc.integer({ min: 1, max: 0xffff }), { maxLength: 8 }),
    });
    fc.assert(
      fc.property(fields, (f) => {
        const decoded = decodeStandardInquiry(encodeStandardInquiry(f));
        expect(decoded).toEqual({ ...f, additionalLength: f.versionDescriptors.length ? 69 : 31, truncated: false });
      }),
      { numRuns: 500 },
    );
  });
});

describe('spcVersionName', () => {
  test('names the SPC generations', () => {
    expect(spcVersionName(6)).toBe('SPC-4');
    expect(spcVersionName(5)).toBe('SPC-3');
    expect(spcVersionName(4)).toBe('SPC-2');
    expect(spcVersionName(3)).toBe('SPC');
    expect(spcVersionName(7)).toBe('SPC-5');
    expect(spcVersionName(0)).toBe('none');
    expect(spcVersionName(0x42)).toBe('reserved (42h)');
  });
});

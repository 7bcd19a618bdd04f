import fc from 'fast-check';
import { EncodeError } from '../../../src/errors';
import type { DesignationDescriptor } from '../../../src/scsi/vpd';
import {
  cscdFromDesignator,
  decodeExtendedCopyLid1,
  decodeExtendedCopyLid1Header,
  encodeExtendedCopyLid1,
  type CscdDescriptor,
  type ExtendedCopyLid1ParameterList,
  type IdentificationCscd,
  type SegmentDescriptor,
} from '../../../src/scsi/xcopy';
import { assertTotalDecoder, hex, offsetOf } from '../../helpers/codec';

// The 108-byte parameter list QEMU's block/iscsi.c sends for a copy_range between two LIO LUNs
// (QEMU block/iscsi.c): list id 1, usage 10b, CSCD 0 = source, CSCD 1 = destination (E4h, designator
// copied from each LUN's VPD 83h NAA), one 02h segment.
const QEMU_LIST = hex(`
  01                   # LIST IDENTIFIER 1
  10                   # STR 0, LIST ID USAGE 10b, PRIORITY 0
  00 40                # CSCD DESCRIPTOR LIST LENGTH 64
  00 00 00 00          # reserved
  00 00 00 1c          # SEGMENT DESCRIPTOR LIST LENGTH 28
  00 00 00 00          # INLINE DATA LENGTH 0
  # CSCD 0 (offset 16): the source LUN
  e4                   # DESCRIPTOR TYPE CODE E4h (identification)
  00                   # LU ID TYPE 00b, NUL 0, PERIPHERAL DEVICE TYPE 00h
  00 00                # RELATIVE INITIATOR PORT IDENTIFIER 0
  01                   # CODE SET 1 (binary)
  03                   # ASSOCIATION 00b, DESIGNATOR TYPE 3 (NAA)
  00                   # reserved
  10                   # DESIGNATOR LENGTH 16
  60 01 40 5e 4f 5a 6b 71 c2 d4 e3 f8 a9 b0 c1 d2   # DESIGNATOR (NAA 6h)
  00 00 00 00          #   zero padding to 20 bytes
  00                   # PAD 0
  00 02 00             # DISK BLOCK LENGTH 512
  # CSCD 1 (offset 48): the destination LUN
  e4 00 00 00          # E4h; PDT 00h; RELATIVE INITIATOR PORT IDENTIFIER 0
  01 03 00 10          # binary; LU, NAA; reserved; DESIGNATOR LENGTH 16
  60 01 40 55 a4 b3 c2 d1 e0 f4 a9 b8 c7 d6 e5 f4   # DESIGNATOR (NAA 6h)
  00 00 00 00          #   zero padding
  00 00 02 00          # PAD 0, DISK BLOCK LENGTH 512
  # segment 0 (offset 80): block to block
  02                   # DESCRIPTOR TYPE CODE 02h
  00                   # DC 0, CAT 0
  00 18                # DESCRIPTOR LENGTH 24
  00 00                # SOURCE CSCD DESCRIPTOR ID 0
  00 01                # DESTINATION CSCD DESCRIPTOR ID 1
  00 00                # reserved
  08 00                # BLOCK DEVICE NUMBER OF BLOCKS 2048
  00 00 00 00 00 00 00 00   # SOURCE BLOCK DEVICE LOGICAL BLOCK ADDRESS 0
  00 00 00 00 00 00 10 00   # DESTINATION BLOCK DEVICE LOGICAL BLOCK ADDRESS 4096
`);

const SRC_NAA = hex('60 01 40 5e 4f 5a 6b 71 c2 d4 e3 f8 a9 b0 c1 d2');
const DST_NAA = hex('60 01 40 55 a4 b3 c2 d1 e0 f4 a9 b8 c7 d6 e5 f4');

const e4 = (designator: Buffer, extra: Partial<IdentificationCscd> = {}): IdentificationCscd => ({
  kind: 'identification',
  luIdType: 0,
  nul: false,
  peripheralDeviceType: 0,
  relativeInitiatorPortIdentifier: 0,
  codeSet: 1,
  association: 0,
  designatorType: 3,
  designatorLength: designator.length,
  designator,
  deviceTypeSpecific: { kind: 'block', pad: false, diskBlockLength: 512 },
  ...extra,
});

const QEMU_SEGMENT: SegmentDescriptor = {
  kind: 'blockToBlock',
  dc: false,
  cat: false,
  sourceCscdDescriptorId: 0,
  destinationCscdDescriptorId: 1,
  blockDeviceNumberOfBlocks: 2048,
  sourceBlockDeviceLba: 0n,
  destinationBlockDeviceLba: 4096n,
};

const QEMU_PARAMS: ExtendedCopyLid1ParameterList = {
  listIdentifier: 1,
  str: false,
  listIdUsage: 2,
  priority: 0,
  cscdDescriptors: [e4(SRC_NAA), e4(DST_NAA)],
  segmentDescriptors: [QEMU_SEGMENT],
};

describe('EXTENDED COPY (LID1) parameter list', () => {
  test('decodes QEMU’s list with the offset of every descriptor', () => {
    const list = decodeExtendedCopyLid1(QEMU_LIST);
    expect(list.header).toEqual({
      listIdentifier: 1,
      str: false,
      listIdUsage: 2,
      priority: 0,
      cscdDescriptorListLength: 64,
      segmentDescriptorListLength: 28,
      inlineDataLength: 0,
    });
    expect(list.cscdDescriptors.map((c) => [c.offset, c.length, c.typeCode])).toEqual([
      [16, 32, 0xe4],
      [48, 32, 0xe4],
    ]);
    expect(list.cscdDescriptors.map((c) => c.descriptor)).toEqual([e4(SRC_NAA), e4(DST_NAA)]);
    expect(list.cscdDescriptors[1].bytes.equals(QEMU_LIST.subarray(48, 80))).toBe(true);
    expect(list.segmentDescriptors).toHaveLength(1);
    expect(list.segmentDescriptors[0]).toMatchObject({ offset: 80, length: 28, typeCode: 2, descriptorLength: 24 });
    expect(list.segmentDescriptors[0].descriptor).toEqual(QEMU_SEGMENT);
    expect(list.inlineDataOffset).toBe(108);
    expect(list.inlineData.length).toBe(0);
  });

  test('encodes the same 108 bytes', () => {
    const b = encodeExtendedCopyLid1(QEMU_PARAMS);
    expect(b.length).toBe(108);
    expect(b.toString('hex')).toBe(QEMU_LIST.toString('hex'));
  });

  test('round trip', () => {
    const d = decodeExtendedCopyLid1(QEMU_LIST);
    const again = encodeExtendedCopyLid1({
      ...d.header,
      cscdDescriptors: d.cscdDescriptors.map((c) => c.descriptor),
      segmentDescriptors: d.segmentDescriptors.map((s) => s.descriptor),
      inlineData: d.inlineData,
    });
    expect(again.equals(QEMU_LIST)).toBe(true);
  });

  test('the agent builds QEMU’s list from VPD 83h designators', () => {
    // As read from LIO's VPD 83h (PIV 0, protocol 0); cscdFromDesignator would clear them anyway.
    const naa = (designator: Buffer): DesignationDescriptor => ({
      protocolIdentifier: 0,
      codeSet: 1,
      piv: false,
      association: 0,
      designatorType: 3,
      designator,
    });
    const list = encodeExtendedCopyLid1({
      listIdentifier: 1,
      listIdUsage: 2,
      cscdDescriptors: [cscdFromDesignator(naa(SRC_NAA), 512), cscdFromDesignator(naa(DST_NAA), 512)],
      segmentDescriptors: [QEMU_SEGMENT],
    });
    expect(list.toString('hex')).toBe(QEMU_LIST.toString('hex'));
  });

  test('header decodes alone even when the buffer is shorter than the lengths claim (libiscsi ParamHdr)', () => {
    // ParamHdr: header claims CSCD 32 + segment 28, PARAMETER LIST LENGTH 47 (cuts the CSCD) then 75.
    const paramHdr = encodeExtendedCopyLid1({
      listIdentifier: 1,
      listIdUsage: 0,
      cscdDescriptors: [e4(SRC_NAA)],
      segmentDescriptors: [{ ...QEMU_SEGMENT, destinationCscdDescriptorId: 0 }],
    });
    expect(decodeExtendedCopyLid1Header(paramHdr.subarray(0, 47))).toMatchObject({
      cscdDescriptorListLength: 32,
      segmentDescriptorListLength: 28,
      inlineDataLength: 0,
    });
    expect(offsetOf(() => decodeExtendedCopyLid1(paramHdr.subarray(0, 47)))).toBe(2);
    expect(offsetOf(() => decodeExtendedCopyLid1(paramHdr.subarray(0, 75)))).toBe(8);
    expect(decodeExtendedCopyLid1(paramHdr).segmentDescriptors[0].offset).toBe(48);
  });

  test('a header shorter than 16 bytes is a DecodeError at the first missing byte', () => {
    expect(offsetOf(() => decodeExtendedCopyLid1Header(QEMU_LIST.subarray(0, 15)))).toBe(15);
    expect(offsetOf(() => decodeExtendedCopyLid1(Buffer.alloc(0)))).toBe(0);
  });

  test('inline data: decoded from after the segments, overrun names INLINE DATA LENGTH', () => {
    const withInline = encodeExtendedCopyLid1({ ...QEMU_PARAMS, inlineData: hex('de ad be ef') });
    expect(withInline.readUInt32BE(12)).toBe(4);
    const d = decodeExtendedCopyLid1(withInline);
    expect(d.inlineDataOffset).toBe(108);
    expect(d.inlineData.toString('hex')).toBe('deadbeef');
    expect(offsetOf(() => decodeExtendedCopyLid1(withInline.subarray(0, 110)))).toBe(12);
    // Bytes beyond the inline data (PARAMETER LIST LENGTH larger than needed) are ignored.
    expect(decodeExtendedCopyLid1(Buffer.concat([withInline, Buffer.alloc(8, 0xff)])).inlineData.length).toBe(4);
  });

  test('other CSCD types come back raw at their offset (libiscsi DescrType: E0h)', () => {
    const b = Buffer.from(QEMU_LIST);
    b[16] = 0xe0;
    const d = decodeExtendedCopyLid1(b);
    expect(d.cscdDescriptors[0]).toMatchObject({ offset: 16, length: 32, typeCode: 0xe0 });
    expect(d.cscdDescriptors[0].descriptor).toEqual({ kind: 'raw', typeCode: 0xe0, bytes: b.subarray(16, 48) });
    expect(d.cscdDescriptors[1].descriptor.kind).toBe('identification');
  });

  test('EAh/EBh CSCD descriptors are 64 bytes', () => {
    const ipv6: CscdDescriptor = { kind: 'raw', typeCode: 0xea, bytes: Buffer.concat([hex('ea'), Buffer.alloc(63)]) };
    const b = encodeExtendedCopyLid1({ ...QEMU_PARAMS, cscdDescriptors: [ipv6, e4(DST_NAA)] });
    const d = decodeExtendedCopyLid1(b);
    expect(d.cscdDescriptors.map((c) => c.offset)).toEqual([16, 80]);
    expect(d.segmentDescriptors[0].offset).toBe(112);
  });

  test('a CSCD descriptor running past the CSCD list is a DecodeError at the descriptor', () => {
    const b = Buffer.from(QEMU_LIST);
    b.writeUInt16BE(40, 2); // 32 + 8: the second descriptor is cut; the segment list moves up
    b.writeUInt32BE(52, 8); // 16 + 40 + 52 = 108: the lengths still fit the buffer
    expect(offsetOf(() => decodeExtendedCopyLid1(b))).toBe(48);
  });

  test('other segment types come back raw with their declared length (libiscsi DescrType: 03h)', () => {
    const streamToStream: SegmentDescriptor = {
      kind: 'raw',
      typeCode: 0x03,
      bytes: hex('03 00 00 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00'),
    };
    const b = encodeExtendedCopyLid1({ ...QEMU_PARAMS, segmentDescriptors: [QEMU_SEGMENT, streamToStream] });
    const d = decodeExtendedCopyLid1(b);
    expect(d.segmentDescriptors[1]).toMatchObject({ offset: 108, length: 20, typeCode: 3, descriptorLength: 16 });
    expect(d.segmentDescriptors[1].descriptor).toEqual(streamToStream);
  });

  test('a known segment type with the wrong DESCRIPTOR LENGTH comes back raw (the copy manager answers 26h/00h)', () => {
    const short = hex('02 00 00 14 00 00 00 01 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00');
    const b = encodeExtendedCopyLid1({ ...QEMU_PARAMS, segmentDescriptors: [{ kind: 'raw', typeCode: 2, bytes: short }] });
    const seg = decodeExtendedCopyLid1(b).segmentDescriptors[0];
    expect(seg).toMatchObject({ offset: 80, typeCode: 2, descriptorLength: 0x14 });
    expect(seg.descriptor.kind).toBe('raw');
  });

  test('segment descriptors running past the segment list are DecodeErrors', () => {
    const lengthOverrun = Buffer.from(QEMU_LIST);
    lengthOverrun.writeUInt16BE(0x19, 82);
    expect(offsetOf(() => decodeExtendedCopyLid1(lengthOverrun))).toBe(82);
    const headerOverrun = Buffer.concat([QEMU_LIST.subarray(0, 80), hex('02 00')]);
    headerOverrun.writeUInt32BE(2, 8);
    expect(offsetOf(() => decodeExtendedCopyLid1(headerOverrun))).toBe(80);
  });

  test('an identification descriptor with DESIGNATOR LENGTH over 20 is reported, not refused', () => {
    const b = Buffer.from(QEMU_LIST);
    b[23] = 32;
    const c = decodeExtendedCopyLid1(b).cscdDescriptors[0].descriptor as IdentificationCscd;
    expect(c.designatorLength).toBe(32);
    expect(c.designator.length).toBe(20);
  });

  test('E4h fields: LU ID TYPE, NUL, relative port, association, reserved bits ignored', () => {
    const b = Buffer.from(QEMU_LIST);
    b[17] = 0xa0; // LU ID TYPE 10b, NUL 1, PDT 00h
    b.writeUInt16BE(0x1234, 18);
    b[20] = 0x52; // protocol id nibble (reserved here) 5, CODE SET 2
    b[21] = 0x91; // PIV (reserved here) 1, ASSOCIATION 01b, DESIGNATOR TYPE 1
    b[44] = 0x04; // PAD 1
    expect(decodeExtendedCopyLid1(b).cscdDescriptors[0].descriptor).toEqual(
      e4(SRC_NAA, {
        luIdType: 2,
        nul: true,
        relativeInitiatorPortIdentifier: 0x1234,
        codeSet: 2,
        association: 1,
        designatorType: 1,
        deviceTypeSpecific: { kind: 'block', pad: true, diskBlockLength: 512 },
      }),
    );
  });

  test('device type specific parameters by peripheral device type', () => {
    const tape = e4(SRC_NAA, {
      peripheralDeviceType: 1,
      deviceTypeSpecific: { kind: 'stream', pad: true, fixed: true, streamBlockLength: 0x10000 },
    });
    const processor = e4(SRC_NAA, { peripheralDeviceType: 3, deviceTypeSpecific: { kind: 'raw', bytes: hex('01 02 03 04') } });
    const b = encodeExtendedCopyLid1({ ...QEMU_PARAMS, cscdDescriptors: [tape, processor] });
    expect(b.subarray(44, 48).toString('hex')).toBe('05010000');
    expect(b.subarray(76, 80).toString('hex')).toBe('01020304');
    expect(decodeExtendedCopyLid1(b).cscdDescriptors.map((c) => c.descriptor)).toEqual([tape, processor]);
    expect(() =>
      encodeExtendedCopyLid1({ ...QEMU_PARAMS, cscdDescriptors: [e4(SRC_NAA, { peripheralDeviceType: 1 })] }),
    ).toThrow(EncodeError);
  });

  test('0Ah block<o>→block<o> segment (libiscsi ExtendedCopy.Large)', () => {
    const golden = hex(`
      0a                   # DESCRIPTOR TYPE CODE 0Ah
      00                   # CAT 0
      00 1c                # DESCRIPTOR LENGTH 28
      00 00 00 00          # SOURCE / DESTINATION CSCD DESCRIPTOR ID 0
      10 00 00 00          # NUMBER OF BYTES 256 MiB
      00 00 00 00 00 00 00 00   # SOURCE BLOCK DEVICE LOGICAL BLOCK ADDRESS 0
      00 00 00 00 00 08 00 00   # DESTINATION BLOCK DEVICE LOGICAL BLOCK ADDRESS 524288
      00 00                # SOURCE BLOCK DEVICE BYTE OFFSET 0
      01 00                # DESTINATION BLOCK DEVICE BYTE OFFSET 256
    `);
    const seg: SegmentDescriptor = {
      kind: 'blockOffsetToBlockOffset',
      cat: false,
      sourceCscdDescriptorId: 0,
      destinationCscdDescriptorId: 0,
      numberOfBytes: 256 * 1024 * 1024,
      sourceBlockDeviceLba: 0n,
      destinationBlockDeviceLba: 524288n,
      sourceBlockDeviceByteOffset: 0,
      destinationBlockDeviceByteOffset: 256,
    };
    const b = encodeExtendedCopyLid1({ ...QEMU_PARAMS, cscdDescriptors: [e4(SRC_NAA)], segmentDescriptors: [seg] });
    expect(b.subarray(48).toString('hex')).toBe(golden.toString('hex'));
    expect(decodeExtendedCopyLid1(b).segmentDescriptors[0].descriptor).toEqual(seg);
  });

  test('00h block→stream and 01h stream→block segments (SPC-4 r37 Tables 149/150)', () => {
    const golden = hex(`
      00                   # DESCRIPTOR TYPE CODE 00h
      01                   # CAT 1
      00 14                # DESCRIPTOR LENGTH 20
      00 00 00 01          # SOURCE CSCD DESCRIPTOR ID 0, DESTINATION CSCD DESCRIPTOR ID 1
      00                   # reserved
      00 80 00             # STREAM DEVICE TRANSFER LENGTH 32768
      00 00                # reserved
      00 40                # BLOCK DEVICE NUMBER OF BLOCKS 64
      00 00 00 00 00 00 01 00   # BLOCK DEVICE LOGICAL BLOCK ADDRESS 256
      01 00 00 14 00 01 00 00 00 00 80 00 00 00 00 40 00 00 00 00 00 00 01 00   # 01h, the same fields, ids 1 → 0
    `);
    const common = { streamDeviceTransferLength: 0x8000, blockDeviceNumberOfBlocks: 64, blockDeviceLba: 256n };
    const segs: SegmentDescriptor[] = [
      { kind: 'blockToStream', cat: true, sourceCscdDescriptorId: 0, destinationCscdDescriptorId: 1, ...common },
      { kind: 'streamToBlock', cat: false, sourceCscdDescriptorId: 1, destinationCscdDescriptorId: 0, ...common },
    ];
    const b = encodeExtendedCopyLid1({ ...QEMU_PARAMS, segmentDescriptors: segs });
    expect(b.subarray(80).toString('hex')).toBe(golden.toString('hex'));
    expect(decodeExtendedCopyLid1(b).segmentDescriptors.map((s) => s.descriptor)).toEqual(segs);
  });

  test('encoder rejects values that do not fit', () => {
    const bad = (p: Partial<ExtendedCopyLid1ParameterList>) => () => encodeExtendedCopyLid1({ ...QEMU_PARAMS, ...p });
    expect(bad({ listIdentifier: 256 })).toThrow(EncodeError);
    expect(bad({ listIdUsage: 4 })).toThrow(EncodeError);
    expect(bad({ priority: 8 })).toThrow(EncodeError);
    expect(bad({ cscdDescriptors: [e4(Buffer.alloc(21))] })).toThrow(EncodeError);
    expect(bad({ cscdDescriptors: [e4(SRC_NAA, { deviceTypeSpecific: { kind: 'block', pad: false, diskBlockLength: 1 << 24 } })] })).toThrow(
      EncodeError,
    );
    expect(bad({ cscdDescriptors: [{ kind: 'raw', typeCode: 0xe0, bytes: Buffer.alloc(31) }] })).toThrow(EncodeError);
    expect(bad({ segmentDescriptors: [{ ...QEMU_SEGMENT, blockDeviceNumberOfBlocks: 65536 }] })).toThrow(EncodeError);
    expect(bad({ segmentDescriptors: [{ ...QEMU_SEGMENT, sourceBlockDeviceLba: 1n << 64n }] })).toThrow(EncodeError);
    expect(bad({ segmentDescriptors: [{ ...QEMU_SEGMENT, destinationBlockDeviceLba: -1n }] })).toThrow(EncodeError);
    expect(bad({ segmentDescriptors: [{ kind: 'raw', typeCode: 3, bytes: hex('03 00 00 09 00') }] })).toThrow(EncodeError);
  });

  test('an explicit DESIGNATOR LENGTH is written as given (negative tests of a copy manager)', () => {
    const b = encodeExtendedCopyLid1({ ...QEMU_PARAMS, cscdDescriptors: [e4(SRC_NAA, { designatorLength: 21 })] });
    expect(b[23]).toBe(21);
  });

  test('total decoder', () => {
    assertTotalDecoder(decodeExtendedCopyLid1, QEMU_LIST);
    assertTotalDecoder(decodeExtendedCopyLid1Header, QEMU_LIST);
    const mixed = encodeExtendedCopyLid1({
      ...QEMU_PARAMS,
      cscdDescriptors: [e4(SRC_NAA), { kind: 'raw', typeCode: 0xea, bytes: Buffer.concat([hex('ea'), Buffer.alloc(63)]) }],
      segmentDescriptors: [
        QEMU_SEGMENT,
        { kind: 'raw', typeCode: 0x07, bytes: hex('07 00 00 08 00 00 00 00 01 00 00 00') },
      ],
      inlineData: hex('01 02 03 04'),
    });
    assertTotalDecoder(decodeExtendedCopyLid1, mixed);
  });

  test('property: encode then decode gives the list back, offsets contiguous', () => {
    const u16 = fc.integer({ min: 0, max: 0xffff });
    const lba = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    const buf = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
    const identification: fc.Arbitrary<CscdDescriptor> = fc
      .record({
        luIdType: fc.integer({ min: 0, max: 3 }),
        nul: fc.boolean(),
        peripheralDeviceType: fc.constantFrom(0x00, 0x04, 0x05, 0x07, 0x0e),
        relativeInitiatorPortIdentifier: u16,
        codeSet: fc.integer({ min: 0, max: 15 }),
        association: fc.integer({ min: 0, max: 3 }),
        designatorType: fc.integer({ min: 0, max: 15 }),
        designator: buf(20),
        pad: fc.boolean(),
        diskBlockLength: fc.integer({ min: 0, max: 0xffffff }),
      })
      .map(({ pad, diskBlockLength, ...r }) => ({
        kind: 'identification' as const,
        ...r,
        designatorLength: r.designator.length,
        deviceTypeSpecific: { kind: 'block' as const, pad, diskBlockLength },
      }));
    const rawCscd: fc.Arbitrary<CscdDescriptor> = fc
      .tuple(fc.constantFrom(0xe0, 0xe1, 0xe5, 0xe9, 0xea, 0xeb, 0xfe, 0xff, 0x10), fc.uint8Array({ minLength: 63, maxLength: 63 }))
      .map(([typeCode, rest]) => ({
        kind: 'raw' as const,
        typeCode,
        bytes: Buffer.concat([Buffer.from([typeCode]), Buffer.from(rest).subarray(0, (typeCode === 0xea || typeCode === 0xeb ? 64 : 32) - 1)]),
      }));
    const ids = { sourceCscdDescriptorId: u16, destinationCscdDescriptorId: u16 };
    const segment: fc.Arbitrary<SegmentDescriptor> = fc.oneof(
      fc.record({
        kind: fc.constant('blockToBlock' as const),
        dc: fc.boolean(),
        cat: fc.boolean(),
        ...ids,
        blockDeviceNumberOfBlocks: u16,
        sourceBlockDeviceLba: lba,
        destinationBlockDeviceLba: lba,
      }),
      fc.record({
        kind: fc.constant('blockOffsetToBlockOffset' as const),
        cat: fc.boolean(),
        ...ids,
        numberOfBytes: fc.integer({ min: 0, max: 0xffffffff }),
        sourceBlockDeviceLba: lba,
        destinationBlockDeviceLba: lba,
        sourceBlockDeviceByteOffset: u16,
        destinationBlockDeviceByteOffset: u16,
      }),
      fc.record({
        kind: fc.constantFrom('blockToStream' as const, 'streamToBlock' as const),
        cat: fc.boolean(),
        ...ids,
        streamDeviceTransferLength: fc.integer({ min: 0, max: 0xffffff }),
        blockDeviceNumberOfBlocks: u16,
        blockDeviceLba: lba,
      }),
      fc.tuple(fc.constantFrom(0x03, 0x06, 0x07, 0x0b, 0x14, 0xbe, 0xc0), buf(40)).map(([typeCode, body]) => {
        const bytes = Buffer.concat([Buffer.from([typeCode, 0, 0, 0]), body]);
        bytes.writeUInt16BE(body.length, 2);
        return { kind: 'raw' as const, typeCode, bytes };
      }),
    );
    const list = fc.record({
      listIdentifier: fc.integer({ min: 0, max: 255 }),
      str: fc.boolean(),
      listIdUsage: fc.integer({ min: 0, max: 3 }),
      priority: fc.integer({ min: 0, max: 7 }),
      cscdDescriptors: fc.array(fc.oneof(identification, rawCscd), { maxLength: 4 }),
      segmentDescriptors: fc.array(segment, { maxLength: 4 }),
      inlineData: buf(16),
    });
    fc.assert(
      fc.property(list, (l) => {
        const b = encodeExtendedCopyLid1(l);
        const d = decodeExtendedCopyLid1(b);
        expect(d.cscdDescriptors.map((c) => c.descriptor)).toEqual(l.cscdDescriptors);
        expect(d.segmentDescriptors.map((s) => s.descriptor)).toEqual(l.segmentDescriptors);
        expect(d.inlineData.equals(l.inlineData)).toBe(true);
        let off = 16;
        for (const c of [...d.cscdDescriptors, ...d.segmentDescriptors]) {
          expect(c.offset).toBe(off);
          expect(c.bytes.equals(b.subarray(off, off + c.length))).toBe(true);
          off += c.length;
        }
        expect(d.inlineDataOffset).toBe(off);
        expect(d.header).toMatchObject({ listIdentifier: l.listIdentifier, str: l.str, listIdUsage: l.listIdUsage, priority: l.priority });
      }),
      { numRuns: 300 },
    );
  });
});

describe('cscdFromDesignator', () => {
  const designation: DesignationDescriptor = {
    protocolIdentifier: 5,
    codeSet: 1,
    piv: true,
    association: 0,
    designatorType: 3,
    designator: SRC_NAA,
  };
  test('copies code set, association, type and designator; clears PIV and protocol identifier', () => {
    const c = cscdFromDesignator(designation, 4096);
    expect(c).toEqual({
      kind: 'identification',
      luIdType: 0,
      nul: false,
      peripheralDeviceType: 0,
      relativeInitiatorPortIdentifier: 0,
      codeSet: 1,
      association: 0,
      designatorType: 3,
      designator: SRC_NAA,
      deviceTypeSpecific: { kind: 'block', pad: false, diskBlockLength: 4096 },
    });
    const b = encodeExtendedCopyLid1({ listIdentifier: 1, listIdUsage: 2, cscdDescriptors: [c], segmentDescriptors: [] });
    expect(b[20]).toBe(0x01); // no protocol identifier in the high nibble
    expect(b[21]).toBe(0x03); // no PIV
    expect(b.readUIntBE(45, 3)).toBe(4096);
  });
  test('refuses a designator longer than 20 bytes and a block length over 24 bits', () => {
    expect(() => cscdFromDesignator({ ...designation, designator: Buffer.alloc(21) }, 512)).toThrow(EncodeError);
    expect(() => cscdFromDesignator(designation, 1 << 24)).toThrow(EncodeError);
  });
});

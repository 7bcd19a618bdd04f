import fc from 'fast-check';
import { EncodeError } from '../../../src/errors';
import {
  decodeThirdPartyCopy,
  encodeThirdPartyCopy,
  type ThirdPartyCopyDescriptor,
} from '../../../src/scsi/vpd-third-party-copy';
import { assertTotalDecoder, hex, offsetOf } from '../../helpers/codec';
import { thirdPartyCopySupports } from '../xcopy/helpers';

// The page a LID1-only copy manager provides (SPC-4 r37 7.8.17: 0001h, 0004h, 0008h,
// 000Ch, 8001h), with the limits LIO reports in OPERATING PARAMETERS.
const PAGE = hex(`
  00 8f 00 64          # PDT 0, PAGE CODE 8Fh, PAGE LENGTH 100
  # Supported Commands (offset 4)
  00 01                # THIRD-PARTY COPY DESCRIPTOR TYPE 0001h
  00 0c                # THIRD-PARTY COPY DESCRIPTOR LENGTH 12
  08                   # COMMANDS SUPPORTED LIST LENGTH 8
  83 01 00             # EXTENDED COPY: 1 service action: 00h (LID1)
  84 03 00 03 04       # RECEIVE COPY RESULTS: 3 service actions: 00h, 03h, 04h
  00 00 00             # DESCRIPTOR PAD
  # Parameter Data (offset 20)
  00 04 00 1c          # type 0004h, length 28
  00 00 00 00          # reserved
  00 02                # MAXIMUM CSCD DESCRIPTOR COUNT 2
  00 01                # MAXIMUM SEGMENT DESCRIPTOR COUNT 1
  00 00 04 00          # MAXIMUM DESCRIPTOR LIST LENGTH 1024
  00 00 00 00          # MAXIMUM INLINE DATA LENGTH 0
  00 00 00 00 00 00 00 00 00 00 00 00   # reserved
  # Supported Descriptors (offset 52)
  00 08 00 04          # type 0008h, length 4
  02                   # SUPPORTED DESCRIPTOR LIST LENGTH 2
  02 e4                # block→block segment, identification CSCD
  00                   # DESCRIPTOR PAD
  # Supported CSCD Descriptor IDs (offset 60)
  00 0c 00 04          # type 000Ch, length 4
  00 02                # SUPPORTED CSCD IDS LIST LENGTH 2
  ff ff                # FFFFh: the LU that received the command
  # General Copy Operations (offset 68)
  80 01 00 20          # type 8001h, length 32
  00 00 00 01          # TOTAL CONCURRENT COPIES 1
  00 00 00 01          # MAXIMUM IDENTIFIED CONCURRENT COPIES 1
  10 00 00 00          # MAXIMUM SEGMENT LENGTH 256 MiB
  09                   # DATA SEGMENT GRANULARITY 2^9
  09                   # INLINE DATA GRANULARITY 2^9
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   # reserved
`);

const DESCRIPTORS: ThirdPartyCopyDescriptor[] = [
  {
    kind: 'supportedCommands',
    commands: [
      { opcode: 0x83, serviceActions: [0x00] },
      { opcode: 0x84, serviceActions: [0x00, 0x03, 0x04] },
    ],
  },
  {
    kind: 'parameterData',
    maximumCscdDescriptorCount: 2,
    maximumSegmentDescriptorCount: 1,
    maximumDescriptorListLength: 1024,
    maximumInlineDataLength: 0,
  },
  { kind: 'supportedDescriptors', descriptorTypeCodes: [0x02, 0xe4] },
  { kind: 'supportedCscdDescriptorIds', cscdDescriptorIds: [0xffff] },
  {
    kind: 'generalCopyOperations',
    totalConcurrentCopies: 1,
    maximumIdentifiedConcurrentCopies: 1,
    maximumSegmentLength: 256 * 1024 * 1024,
    dataSegmentGranularity: 9,
    inlineDataGranularity: 9,
  },
];

// The Supported Commands descriptor of the 2021 target-devel patch for LIO ("Add 8Fh VPD page"):
// 83h/00h and 84h/03h only, list length 6, one pad byte.
const YADRO_SUPPORTED_COMMANDS = hex(`
  00 8f 00 0c          # PDT 0, PAGE CODE 8Fh, PAGE LENGTH 12
  00 01 00 08          # type 0001h, length 8
  06                   # COMMANDS SUPPORTED LIST LENGTH 6
  83 01 00             # EXTENDED COPY(LID1)
  84 01 03             # RECEIVE COPY OPERATING PARAMETERS
  00                   # DESCRIPTOR PAD
`);

describe('Third-party Copy VPD page (8Fh)', () => {
  test('decode', () => {
    expect(decodeThirdPartyCopy(PAGE)).toEqual({
      peripheralQualifier: 0,
      peripheralDeviceType: 0,
      descriptors: DESCRIPTORS,
      truncated: false,
    });
  });
  test('encode', () => {
    expect(encodeThirdPartyCopy(DESCRIPTORS).toString('hex')).toBe(PAGE.toString('hex'));
  });
  test('round trip', () => {
    expect(encodeThirdPartyCopy(decodeThirdPartyCopy(PAGE).descriptors).equals(PAGE)).toBe(true);
    expect(
      encodeThirdPartyCopy(decodeThirdPartyCopy(YADRO_SUPPORTED_COMMANDS).descriptors).equals(YADRO_SUPPORTED_COMMANDS),
    ).toBe(true);
  });
  test('libiscsi’s CopyStatus precondition: 84h with service action 00h is listed', () => {
    const page = decodeThirdPartyCopy(PAGE);
    expect(thirdPartyCopySupports(page, 0x84, 0x00)).toBe(true);
    expect(thirdPartyCopySupports(page, 0x84, 0x01)).toBe(false);
    const yadro = decodeThirdPartyCopy(YADRO_SUPPORTED_COMMANDS);
    expect(thirdPartyCopySupports(yadro, 0x84, 0x03)).toBe(true);
    expect(thirdPartyCopySupports(yadro, 0x84, 0x00)).toBe(false);
  });
  test('unknown descriptor types are kept raw', () => {
    const page = hex(`
      00 8f 00 0c          # PAGE LENGTH 12
      c0 01 00 08          # type C001h (Held Data), length 8
      00 00 10 00 0c 00 00 00   # HELD DATA LIMIT 4096, granularity 2^12, reserved
    `);
    const decoded = decodeThirdPartyCopy(page);
    expect(decoded.descriptors).toEqual([
      { kind: 'raw', descriptorType: 0xc001, parameters: hex('00 00 10 00 0c 00 00 00') },
    ]);
    expect(encodeThirdPartyCopy(decoded.descriptors).equals(page)).toBe(true);
  });
  test('encoder pads every descriptor to a multiple of 4', () => {
    const b = encodeThirdPartyCopy([
      { kind: 'supportedDescriptors', descriptorTypeCodes: [0x02] },
      { kind: 'raw', descriptorType: 0x9101, parameters: hex('01') },
    ]);
    expect(b.toString('hex')).toBe('008f0010' + '00080004' + '01020000' + '91010004' + '01000000');
  });
  test('cut by the allocation length: whole descriptors only', () => {
    expect(decodeThirdPartyCopy(PAGE.subarray(0, 40))).toEqual({
      peripheralQualifier: 0,
      peripheralDeviceType: 0,
      descriptors: DESCRIPTORS.slice(0, 1),
      truncated: true,
    });
    expect(decodeThirdPartyCopy(PAGE.subarray(0, 22)).descriptors).toHaveLength(1);
  });
  test('a descriptor running past the page is a DecodeError at its length', () => {
    const b = Buffer.from(PAGE);
    b.writeUInt16BE(0x0100, 70); // General Copy Operations length
    expect(offsetOf(() => decodeThirdPartyCopy(b))).toBe(70);
    const stray = Buffer.concat([PAGE.subarray(0, 20), hex('00 04')]);
    stray.writeUInt16BE(18, 2);
    expect(offsetOf(() => decodeThirdPartyCopy(stray))).toBe(20);
  });
  test('inner lists that run past their descriptor are DecodeErrors naming the offending byte', () => {
    const listLength = Buffer.from(PAGE);
    listLength[8] = 12; // COMMANDS SUPPORTED LIST LENGTH beyond the descriptor
    expect(offsetOf(() => decodeThirdPartyCopy(listLength))).toBe(8);
    const saCount = Buffer.from(PAGE);
    saCount[13] = 5; // 84h claims 5 service actions: past the 8-byte list
    expect(offsetOf(() => decodeThirdPartyCopy(saCount))).toBe(13);
    const ids = Buffer.from(PAGE);
    ids[65] = 3; // odd SUPPORTED CSCD IDS LIST LENGTH
    expect(offsetOf(() => decodeThirdPartyCopy(ids))).toBe(64);
    const short = hex('00 8f 00 08 00 04 00 04 00 00 00 00'); // Parameter Data of length 4
    expect(offsetOf(() => decodeThirdPartyCopy(short))).toBe(6);
  });
  test('total decoder', () => {
    assertTotalDecoder(decodeThirdPartyCopy, PAGE);
    assertTotalDecoder(decodeThirdPartyCopy, YADRO_SUPPORTED_COMMANDS);
  });
  test('encoder rejects values that do not fit', () => {
    expect(() => encodeThirdPartyCopy([{ kind: 'supportedDescriptors', descriptorTypeCodes: [0x100] }])).toThrow(
      EncodeError,
    );
    expect(() =>
      encodeThirdPartyCopy([{ kind: 'supportedCommands', commands: [{ opcode: 0x83, serviceActions: new Array(256).fill(0) }] }]),
    ).toThrow(EncodeError);
    expect(() =>
      encodeThirdPartyCopy([
        {
          kind: 'parameterData',
          maximumCscdDescriptorCount: 0x10000,
          maximumSegmentDescriptorCount: 1,
          maximumDescriptorListLength: 1024,
          maximumInlineDataLength: 0,
        },
      ]),
    ).toThrow(EncodeError);
  });
  test('property: encode then decode gives the descriptors back', () => {
    const byte = fc.integer({ min: 0, max: 255 });
    const u16 = fc.integer({ min: 0, max: 0xffff });
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const descriptor: fc.Arbitrary<ThirdPartyCopyDescriptor> = fc.oneof(
      fc.record({
        kind: fc.constant('supportedCommands' as const),
        commands: fc.array(fc.record({ opcode: byte, serviceActions: fc.array(byte, { maxLength: 6 }) }), {
          maxLength: 6,
        }),
      }),
      fc.record({
        kind: fc.constant('parameterData' as const),
        maximumCscdDescriptorCount: u16,
        maximumSegmentDescriptorCount: u16,
        maximumDescriptorListLength: u32,
        maximumInlineDataLength: u32,
      }),
      fc.record({ kind: fc.constant('supportedDescriptors' as const), descriptorTypeCodes: fc.array(byte, { maxLength: 20 }) }),
      fc.record({ kind: fc.constant('supportedCscdDescriptorIds' as const), cscdDescriptorIds: fc.array(u16, { maxLength: 10 }) }),
      fc.record({
        kind: fc.constant('generalCopyOperations' as const),
        totalConcurrentCopies: u32,
        maximumIdentifiedConcurrentCopies: u32,
        maximumSegmentLength: u32,
        dataSegmentGranularity: byte,
        inlineDataGranularity: byte,
      }),
      fc.record({
        kind: fc.constant('raw' as const),
        descriptorType: fc.constantFrom(0x0000, 0x0106, 0x0108, 0x9101, 0xc001, 0xe000),
        parameters: fc
          .uint8Array({ maxLength: 24 })
          .map((a) => Buffer.concat([Buffer.from(a), Buffer.alloc((4 - (a.length % 4)) % 4)])),
      }),
    );
    fc.assert(
      fc.property(fc.array(descriptor, { maxLength: 6 }), (ds) => {
        const page = encodeThirdPartyCopy(ds);
        expect(decodeThirdPartyCopy(page).descriptors).toEqual(ds);
        expect((page.length - 4) % 4).toBe(0);
      }),
      { numRuns: 300 },
    );
  });
});

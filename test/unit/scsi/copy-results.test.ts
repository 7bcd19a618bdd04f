import fc from 'fast-check';
import { ArgumentError, EncodeError } from '../../../src/errors';
import {
  bytesToTransferCount,
  decodeCopyStatusLid1,
  decodeFailedSegmentDetails,
  decodeOperatingParameters,
  encodeCopyStatusLid1,
  encodeFailedSegmentDetails,
  encodeOperatingParameters,
  transferCountToBytes,
  type CopyStatusLid1,
  type OperatingParameters,
} from '../../../src/scsi/copy-results';
import { assertTotalDecoder, hex, offsetOf } from '../../helpers/codec';

// --------------------------------------------------------------------------------------------
// COPY STATUS (SA 00h): a completed one-segment copy of 2048 × 512 bytes.
// --------------------------------------------------------------------------------------------
const COPY_STATUS = hex(`
  00 00 00 08          # AVAILABLE DATA 8
  01                   # HDD 0, COPY MANAGER STATUS 01h (completed without errors)
  00 01                # SEGMENTS PROCESSED 1
  00                   # TRANSFER COUNT UNITS 00h (bytes)
  00 10 00 00          # TRANSFER COUNT 1048576
`);
const COPY_STATUS_FIELDS: CopyStatusLid1 = {
  hdd: false,
  copyManagerStatus: 1,
  segmentsProcessed: 1,
  transferCountUnits: 0,
  transferCount: 0x100000,
};

describe('COPY STATUS (LID1)', () => {
  test('decode', () => {
    expect(decodeCopyStatusLid1(COPY_STATUS)).toEqual({ availableData: 8, ...COPY_STATUS_FIELDS });
  });
  test('encode', () => {
    expect(encodeCopyStatusLid1(COPY_STATUS_FIELDS).toString('hex')).toBe(COPY_STATUS.toString('hex'));
  });
  test('round trip', () => {
    expect(encodeCopyStatusLid1(decodeCopyStatusLid1(COPY_STATUS)).equals(COPY_STATUS)).toBe(true);
  });
  test('HDD and an in-progress status in MiB', () => {
    const b = hex('00 00 00 08 80 00 00 02 00 00 10 00');
    expect(decodeCopyStatusLid1(b)).toMatchObject({
      hdd: true,
      copyManagerStatus: 0,
      transferCountUnits: 2,
      transferCount: 4096,
    });
  });
  test('bytes beyond AVAILABLE DATA (a larger allocation length) are ignored', () => {
    expect(decodeCopyStatusLid1(Buffer.concat([COPY_STATUS, Buffer.alloc(1012, 0xff)]))).toEqual({
      availableData: 8,
      ...COPY_STATUS_FIELDS,
    });
  });
  test('malformed responses are DecodeErrors with offsets', () => {
    expect(offsetOf(() => decodeCopyStatusLid1(COPY_STATUS.subarray(0, 11)))).toBe(11);
    expect(offsetOf(() => decodeCopyStatusLid1(COPY_STATUS.subarray(0, 2)))).toBe(2);
    expect(offsetOf(() => decodeCopyStatusLid1(hex('00 00 00 04 01 00 01 00')))).toBe(0);
    const units = Buffer.from(COPY_STATUS);
    units[7] = 0x07;
    expect(offsetOf(() => decodeCopyStatusLid1(units))).toBe(7);
  });
  test('encoder rejects values that do not fit', () => {
    expect(() => encodeCopyStatusLid1({ ...COPY_STATUS_FIELDS, copyManagerStatus: 0x80 })).toThrow(EncodeError);
    expect(() => encodeCopyStatusLid1({ ...COPY_STATUS_FIELDS, transferCountUnits: 0x07 })).toThrow(EncodeError);
    expect(() => encodeCopyStatusLid1({ ...COPY_STATUS_FIELDS, segmentsProcessed: 0x10000 })).toThrow(EncodeError);
  });
  test('total decoder', () => assertTotalDecoder(decodeCopyStatusLid1, COPY_STATUS));
  test('property: encode then decode', () => {
    const fields = fc.record({
      hdd: fc.boolean(),
      copyManagerStatus: fc.integer({ min: 0, max: 0x7f }),
      segmentsProcessed: fc.integer({ min: 0, max: 0xffff }),
      transferCountUnits: fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 0xf1),
      transferCount: fc.integer({ min: 0, max: 0xffffffff }),
    });
    fc.assert(
      fc.property(fields, (f) => {
        expect(decodeCopyStatusLid1(encodeCopyStatusLid1(f))).toEqual({ availableData: 8, ...f });
      }),
      { numRuns: 300 },
    );
  });
});

describe('transfer count units', () => {
  test('transferCountToBytes', () => {
    expect(transferCountToBytes(0x00, 1048576)).toBe(1048576n);
    expect(transferCountToBytes(0x01, 3)).toBe(3072n);
    expect(transferCountToBytes(0x02, 5)).toBe(5n << 20n);
    expect(transferCountToBytes(0x06, 0xffffffff)).toBe(0xffffffffn << 60n);
    expect(transferCountToBytes(0xf1, 2048, 512)).toBe(1048576n);
    expect(() => transferCountToBytes(0xf1, 2048)).toThrow(ArgumentError);
    expect(() => transferCountToBytes(0x07, 1)).toThrow(ArgumentError);
  });
  test('bytesToTransferCount picks the smallest unit that fits 32 bits, rounding down', () => {
    expect(bytesToTransferCount(0)).toEqual({ transferCountUnits: 0, transferCount: 0 });
    expect(bytesToTransferCount(0xffffffff)).toEqual({ transferCountUnits: 0, transferCount: 0xffffffff });
    expect(bytesToTransferCount(0x100000000)).toEqual({ transferCountUnits: 1, transferCount: 0x400000 });
    expect(bytesToTransferCount((1n << 42n) + 1023n)).toEqual({ transferCountUnits: 2, transferCount: 1 << 22 });
    expect(() => bytesToTransferCount(-1)).toThrow(EncodeError);
    expect(() => bytesToTransferCount(1n << 92n)).toThrow(EncodeError);
  });
  test('property: the chosen unit is minimal and the count is the floor', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 92n) - 1n }), (bytes) => {
        const { transferCountUnits: u, transferCount: c } = bytesToTransferCount(bytes);
        const shift = BigInt(10 * u);
        expect(c).toBeLessThanOrEqual(0xffffffff);
        expect(BigInt(c)).toBe(bytes >> shift);
        if (u > 0) expect(bytes >> BigInt(10 * (u - 1))).toBeGreaterThan(0xffffffffn);
        expect(transferCountToBytes(u, c) <= bytes).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

// --------------------------------------------------------------------------------------------
// OPERATING PARAMETERS (SA 03h): exactly what LIO's target_rcr_operating_parameters writes.
// --------------------------------------------------------------------------------------------
const LIO_OP_PARAMS = hex(`
  00 00 00 2a          # AVAILABLE DATA 42
  01                   # SNLID 1
  00 00 00             # reserved
  00 02                # MAXIMUM CSCD DESCRIPTOR COUNT 2
  00 01                # MAXIMUM SEGMENT DESCRIPTOR COUNT 1
  00 00 04 00          # MAXIMUM DESCRIPTOR LIST LENGTH 1024
  10 00 00 00          # MAXIMUM SEGMENT LENGTH 268435456
  00 00 00 00          # MAXIMUM INLINE DATA LENGTH 0
  00 00 00 00          # HELD DATA LIMIT 0
  00 00 00 00          # MAXIMUM STREAM DEVICE TRANSFER SIZE 0
  00 00                # reserved
  00 01                # TOTAL CONCURRENT COPIES 1
  01                   # MAXIMUM CONCURRENT COPIES 1
  09                   # DATA SEGMENT GRANULARITY 2^9
  09                   # INLINE DATA GRANULARITY 2^9
  09                   # HELD DATA GRANULARITY 2^9
  00 00 00             # reserved
  02                   # IMPLEMENTED DESCRIPTOR LIST LENGTH 2
  02 e4                # block→block segment, identification CSCD
`);
const LIO_OP_FIELDS: OperatingParameters = {
  snlid: true,
  maximumCscdDescriptorCount: 2,
  maximumSegmentDescriptorCount: 1,
  maximumDescriptorListLength: 1024,
  maximumSegmentLength: 268435456,
  maximumInlineDataLength: 0,
  heldDataLimit: 0,
  maximumStreamDeviceTransferSize: 0,
  totalConcurrentCopies: 1,
  maximumConcurrentCopies: 1,
  dataSegmentGranularity: 9,
  inlineDataGranularity: 9,
  heldDataGranularity: 9,
  implementedDescriptorTypeCodes: [0x02, 0xe4],
};

// FreeBSD CTL's answer: AVAILABLE DATA 44, four codes.
const CTL_OP_PARAMS = hex(`
  00 00 00 2c 01 00 00 00   # AVAILABLE DATA 44; SNLID 1
  00 40 00 40               # MAXIMUM CSCD / SEGMENT DESCRIPTOR COUNT 64 / 64
  00 00 20 00               # MAXIMUM DESCRIPTOR LIST LENGTH 8192
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   # MAXIMUM SEGMENT LENGTH 0 ... STREAM SIZE 0
  00 00 00 ff ff 00 00 00   # reserved; TOTAL CONCURRENT COPIES 255; MAXIMUM 255; granularities 0
  00 00 00 04               # reserved; IMPLEMENTED DESCRIPTOR LIST LENGTH 4
  02 07 14 e4               # 02h, 07h, 14h segments; E4h CSCD
`);

describe('OPERATING PARAMETERS', () => {
  test('decodes LIO’s response', () => {
    expect(decodeOperatingParameters(LIO_OP_PARAMS)).toEqual({
      availableData: 42,
      implementedDescriptorListLength: 2,
      truncated: false,
      ...LIO_OP_FIELDS,
    });
  });
  test('encode', () => {
    expect(encodeOperatingParameters(LIO_OP_FIELDS).toString('hex')).toBe(LIO_OP_PARAMS.toString('hex'));
  });
  test('round trip', () => {
    expect(encodeOperatingParameters(decodeOperatingParameters(LIO_OP_PARAMS)).equals(LIO_OP_PARAMS)).toBe(true);
    expect(encodeOperatingParameters(decodeOperatingParameters(CTL_OP_PARAMS)).equals(CTL_OP_PARAMS)).toBe(true);
  });
  test('decodes CTL’s response', () => {
    expect(decodeOperatingParameters(CTL_OP_PARAMS)).toMatchObject({
      availableData: 44,
      maximumCscdDescriptorCount: 64,
      maximumSegmentDescriptorCount: 64,
      maximumDescriptorListLength: 8192,
      maximumSegmentLength: 0,
      totalConcurrentCopies: 255,
      maximumConcurrentCopies: 255,
      implementedDescriptorTypeCodes: [0x02, 0x07, 0x14, 0xe4],
    });
  });
  test('LIO pads its answer to the allocation length: AVAILABLE DATA is honoured', () => {
    const padded = Buffer.concat([LIO_OP_PARAMS, Buffer.alloc(1024 - LIO_OP_PARAMS.length, 0xee)]);
    expect(decodeOperatingParameters(padded).implementedDescriptorTypeCodes).toEqual([0x02, 0xe4]);
  });
  test('cut inside the implemented list: the whole codes, truncated', () => {
    expect(decodeOperatingParameters(LIO_OP_PARAMS.subarray(0, 45))).toMatchObject({
      implementedDescriptorTypeCodes: [0x02],
      truncated: true,
    });
  });
  test('malformed responses are DecodeErrors with offsets', () => {
    expect(offsetOf(() => decodeOperatingParameters(LIO_OP_PARAMS.subarray(0, 43)))).toBe(43);
    const avail = Buffer.from(LIO_OP_PARAMS);
    avail.writeUInt32BE(39, 0);
    expect(offsetOf(() => decodeOperatingParameters(avail))).toBe(0);
    const list = Buffer.from(LIO_OP_PARAMS);
    list[43] = 3; // runs past AVAILABLE DATA 42
    expect(offsetOf(() => decodeOperatingParameters(list))).toBe(43);
  });
  test('encoder rejects values that do not fit', () => {
    expect(() => encodeOperatingParameters({ ...LIO_OP_FIELDS, maximumConcurrentCopies: 256 })).toThrow(EncodeError);
    expect(() =>
      encodeOperatingParameters({ ...LIO_OP_FIELDS, implementedDescriptorTypeCodes: new Array(256).fill(2) }),
    ).toThrow(EncodeError);
  });
  test('total decoder', () => {
    assertTotalDecoder(decodeOperatingParameters, LIO_OP_PARAMS);
    assertTotalDecoder(decodeOperatingParameters, CTL_OP_PARAMS);
  });
  test('property: encode then decode', () => {
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const u16 = fc.integer({ min: 0, max: 0xffff });
    const u8 = fc.integer({ min: 0, max: 0xff });
    const fields = fc.record({
      snlid: fc.boolean(),
      maximumCscdDescriptorCount: u16,
      maximumSegmentDescriptorCount: u16,
      maximumDescriptorListLength: u32,
      maximumSegmentLength: u32,
      maximumInlineDataLength: u32,
      heldDataLimit: u32,
      maximumStreamDeviceTransferSize: u32,
      totalConcurrentCopies: u16,
      maximumConcurrentCopies: u8,
      dataSegmentGranularity: u8,
      inlineDataGranularity: u8,
      heldDataGranularity: u8,
      implementedDescriptorTypeCodes: fc.array(u8, { maxLength: 30 }),
    });
    fc.assert(
      fc.property(fields, (f) => {
        expect(decodeOperatingParameters(encodeOperatingParameters(f))).toEqual({
          availableData: 40 + f.implementedDescriptorTypeCodes.length,
          implementedDescriptorListLength: f.implementedDescriptorTypeCodes.length,
          truncated: false,
          ...f,
        });
      }),
      { numRuns: 300 },
    );
  });
});

// --------------------------------------------------------------------------------------------
// FAILED SEGMENT DETAILS (SA 04h): an EXTENDED COPY that ended in CHECK CONDITION with
// COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE (0Dh/02h) in segment 0.
// --------------------------------------------------------------------------------------------
const FAILED_SEGMENT = Buffer.concat([
  hex('00 00 00 4a'), // AVAILABLE DATA 74 (56 + 18)
  Buffer.alloc(52), // bytes 4-55 reserved
  hex(`
    02                 # COPY COMMAND STATUS 02h (CHECK CONDITION)
    00                 # reserved
    00 12              # SENSE DATA LENGTH 18
    70 00 0a 00        # SENSE DATA: fixed format, current; sense key 0Ah COPY ABORTED
    00 00 00 0a        #   INFORMATION 0; ADDITIONAL SENSE LENGTH 10
    00 00 00 00        #   COMMAND-SPECIFIC INFORMATION: segment 0
    0d 02 00 00 00 00  #   ASC/ASCQ 0Dh/02h COPY TARGET DEVICE NOT REACHABLE; FRU; sense key specific
  `),
]);
const SENSE = FAILED_SEGMENT.subarray(60);

describe('FAILED SEGMENT DETAILS', () => {
  test('decode', () => {
    expect(decodeFailedSegmentDetails(FAILED_SEGMENT)).toEqual({
      held: true,
      availableData: 74,
      copyCommandStatus: 0x02,
      senseDataLength: 18,
      senseData: SENSE,
      truncated: false,
    });
  });
  test('encode', () => {
    expect(encodeFailedSegmentDetails({ copyCommandStatus: 2, senseData: SENSE }).toString('hex')).toBe(
      FAILED_SEGMENT.toString('hex'),
    );
  });
  test('round trip', () => {
    const d = decodeFailedSegmentDetails(FAILED_SEGMENT);
    if (!d.held) throw new Error('expected held details');
    expect(encodeFailedSegmentDetails(d).equals(FAILED_SEGMENT)).toBe(true);
  });
  test('AVAILABLE DATA 0: nothing held', () => {
    expect(encodeFailedSegmentDetails().toString('hex')).toBe('00000000');
    expect(decodeFailedSegmentDetails(hex('00 00 00 00'))).toEqual({ held: false, availableData: 0 });
    expect(decodeFailedSegmentDetails(Buffer.alloc(1024))).toEqual({ held: false, availableData: 0 });
  });
  test('cut inside the sense data: what is there, truncated', () => {
    expect(decodeFailedSegmentDetails(FAILED_SEGMENT.subarray(0, 70))).toMatchObject({
      held: true,
      senseDataLength: 18,
      senseData: SENSE.subarray(0, 10),
      truncated: true,
    });
  });
  test('malformed responses are DecodeErrors with offsets', () => {
    expect(offsetOf(() => decodeFailedSegmentDetails(FAILED_SEGMENT.subarray(0, 3)))).toBe(3);
    expect(offsetOf(() => decodeFailedSegmentDetails(FAILED_SEGMENT.subarray(0, 40)))).toBe(40);
    expect(offsetOf(() => decodeFailedSegmentDetails(hex('00 00 00 0a 00 00')))).toBe(0);
    const over = Buffer.from(FAILED_SEGMENT);
    over.writeUInt16BE(19, 58);
    expect(offsetOf(() => decodeFailedSegmentDetails(over))).toBe(58);
  });
  test('encoder rejects values that do not fit', () => {
    expect(() => encodeFailedSegmentDetails({ copyCommandStatus: 256, senseData: SENSE })).toThrow(EncodeError);
    expect(() => encodeFailedSegmentDetails({ copyCommandStatus: 2, senseData: Buffer.alloc(0x10000) })).toThrow(
      EncodeError,
    );
  });
  test('total decoder', () => assertTotalDecoder(decodeFailedSegmentDetails, FAILED_SEGMENT));
  test('property: encode then decode', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 96 }), (status, sense) => {
        const senseData = Buffer.from(sense);
        expect(decodeFailedSegmentDetails(encodeFailedSegmentDetails({ copyCommandStatus: status, senseData }))).toEqual({
          held: true,
          availableData: 56 + senseData.length,
          copyCommandStatus: status,
          senseDataLength: senseData.length,
          senseData,
          truncated: false,
        });
      }),
      { numRuns: 300 },
    );
  });
});

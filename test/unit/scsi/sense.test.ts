import fc from 'fast-check';
import { DecodeError, EncodeError } from '../../../src/errors';
import { SenseKey } from '../../../src/scsi/constants';
import {
  decodeSense,
  describeSense,
  encodeDescriptorSense,
  encodeFixedSense,
  type SenseData,
  type SenseDescriptor,
  type SenseInput,
  type SenseKeySpecific,
} from '../../../src/scsi/sense';
import { assertTotalDecoder, decodeErrorOf, hex } from '../../helpers/codec';

// tgt (usr/scsi.c sense_data_build, fixed format): ILLEGAL REQUEST, INVALID FIELD IN CDB, no
// sense-key-specific data. 18 bytes.
const TGT_INVALID_FIELD = hex(`
  70          # byte 0: VALID 0, RESPONSE CODE 70h (current error, fixed format)
  00          # byte 1: obsolete
  05          # byte 2: FILEMARK 0, EOM 0, ILI 0, SENSE KEY 5h ILLEGAL REQUEST
  00 00 00 00 # bytes 3-6: INFORMATION
  0a          # byte 7: ADDITIONAL SENSE LENGTH (18 - 8)
  00 00 00 00 # bytes 8-11: COMMAND-SPECIFIC INFORMATION
  24          # byte 12: ADDITIONAL SENSE CODE (INVALID FIELD IN CDB)
  00          # byte 13: ADDITIONAL SENSE CODE QUALIFIER
  00          # byte 14: FIELD REPLACEABLE UNIT CODE
  00 00 00    # bytes 15-17: SKSV 0, SENSE KEY SPECIFIC
`);

// The same with a field pointer (SPC-4 r37 4.5.2.4.2), as FreeBSD CTL answers RECEIVE COPY
// RESULTS for an unknown list identifier: the field in error is CDB byte 2 (LIST IDENTIFIER).
const FIELD_POINTER_CDB_BYTE_2 = hex(`
  70          # byte 0: VALID 0, RESPONSE CODE 70h
  00          # byte 1: obsolete
  05          # byte 2: SENSE KEY ILLEGAL REQUEST
  00 00 00 00 # bytes 3-6: INFORMATION
  0a          # byte 7: ADDITIONAL SENSE LENGTH
  00 00 00 00 # bytes 8-11: COMMAND-SPECIFIC INFORMATION
  24          # byte 12: ASC INVALID FIELD IN CDB
  00          # byte 13: ASCQ
  00          # byte 14: FIELD REPLACEABLE UNIT CODE
  c0          # byte 15: SKSV 1, C/D 1 (CDB), BPV 0, BIT POINTER 0
  00 02       # bytes 16-17: FIELD POINTER = CDB byte 2
`);

// LIO (target_core_transport.c) answers a failed EXTENDED COPY with COPY ABORTED, COPY TARGET
// DEVICE NOT REACHABLE, and sends the whole 96-byte TRANSPORT_SENSE_BUFFER: 18 bytes of fixed
// sense then zero padding that ADDITIONAL SENSE LENGTH excludes.
const LIO_COPY_ABORTED = Buffer.concat([
  hex(`
    70          # byte 0: VALID 0, RESPONSE CODE 70h
    00          # byte 1: obsolete
    0a          # byte 2: SENSE KEY Ah COPY ABORTED
    00 00 00 00 # bytes 3-6: INFORMATION
    0a          # byte 7: ADDITIONAL SENSE LENGTH
    00 00 00 00 # bytes 8-11: COMMAND-SPECIFIC INFORMATION
    0d          # byte 12: ASC (COPY TARGET DEVICE NOT REACHABLE)
    02          # byte 13: ASCQ
    00          # byte 14: FIELD REPLACEABLE UNIT CODE
    00 00 00    # bytes 15-17: SKSV 0
  `),
  Buffer.alloc(96 - 18, 0x00), // padding up to TRANSPORT_SENSE_BUFFER
]);

// A copy manager reporting a failed segment in descriptor format (SPC-4 r37 4.5.2), in the manner
// of FreeBSD CTL's tpc_set_io_error_sense: COPY ABORTED, segment number in COMMAND-SPECIFIC
// INFORMATION, a segment pointer, and the source's own sense forwarded (descriptor 0Ch).
const DESCRIPTOR_COPY_ABORTED = hex(`
  72          # byte 0: RESPONSE CODE 72h (current error, descriptor format)
  0a          # byte 1: SENSE KEY COPY ABORTED
  0d          # byte 2: ASC (THIRD PARTY DEVICE FAILURE)
  01          # byte 3: ASCQ
  00 00 00    # bytes 4-6: reserved
  36          # byte 7: ADDITIONAL SENSE LENGTH = 12 + 12 + 8 + 22
  # information sense data descriptor (SPC-4 r37 4.5.2.2)
  00          # DESCRIPTOR TYPE 00h
  0a          # ADDITIONAL LENGTH
  80          # VALID 1
  00          # reserved
  00 00 00 01 00 00 00 00  # INFORMATION (an LBA past 2^32: why descriptor format exists)
  # command-specific information sense data descriptor (SPC-4 r37 4.5.2.3)
  01          # DESCRIPTOR TYPE 01h
  0a          # ADDITIONAL LENGTH
  00 00       # reserved
  00 00 00 00 00 00 00 03  # COMMAND-SPECIFIC INFORMATION: segment descriptor 3
  # sense key specific sense data descriptor (SPC-4 r37 4.5.2.4), segment pointer format
  02          # DESCRIPTOR TYPE 02h
  06          # ADDITIONAL LENGTH
  00 00       # reserved
  a0          # SKSV 1, SD 1 (relative to the segment descriptor), BPV 0, BIT POINTER 0
  00 0c       # FIELD POINTER: segment byte 12 (SOURCE BLOCK DEVICE LBA)
  00          # reserved
  # forwarded sense data descriptor
  0c          # DESCRIPTOR TYPE 0Ch
  14          # ADDITIONAL LENGTH = 2 + 18
  01          # FSDT 0, SENSE DATA SOURCE 1h (EXTENDED COPY source device)
  02          # FORWARDED STATUS: CHECK CONDITION
  f0 00 03 00 00 10 00 0a 00 00 00 00 11 00 00 00 00 00  # SENSE DATA: MEDIUM ERROR at LBA 1000h
`);

const DESCRIPTOR_COPY_ABORTED_VALUE: SenseData = {
  responseCode: 0x72,
  format: 'descriptor',
  current: true,
  valid: true,
  senseKey: SenseKey.COPY_ABORTED,
  asc: 0x0d,
  ascq: 0x01,
  information: 0x1_0000_0000n,
  commandSpecificInformation: 3n,
  senseKeySpecific: { kind: 'segmentPointer', sd: true, bpv: false, bitPointer: 0, fieldPointer: 12 },
  descriptors: [
    { kind: 'information', valid: true, information: 0x1_0000_0000n },
    { kind: 'commandSpecificInformation', commandSpecificInformation: 3n },
    {
      kind: 'senseKeySpecific',
      senseKeySpecific: { kind: 'segmentPointer', sd: true, bpv: false, bitPointer: 0, fieldPointer: 12 },
    },
    {
      kind: 'forwardedSenseData',
      fsdt: false,
      senseDataSource: 1,
      forwardedStatus: 0x02,
      senseData: hex('f0 00 03 00 00 10 00 0a 00 00 00 00 11 00 00 00 00 00'),
    },
  ],
};

// tgt with the descriptor-format attribute set: the 8-byte header alone.
const TGT_DESCRIPTOR = hex(`
  72          # byte 0: RESPONSE CODE 72h
  05          # byte 1: SENSE KEY ILLEGAL REQUEST
  24          # byte 2: ASC INVALID FIELD IN CDB
  00          # byte 3: ASCQ
  00 00 00    # bytes 4-6: reserved
  00          # byte 7: ADDITIONAL SENSE LENGTH (no descriptors)
`);

describe('decodeSense: fixed format (SPC-4 r37 4.5.3)', () => {
  it('decodes tgt INVALID FIELD IN CDB', () => {
    expect(decodeSense(TGT_INVALID_FIELD)).toEqual({
      responseCode: 0x70,
      format: 'fixed',
      current: true,
      valid: false,
      senseKey: SenseKey.ILLEGAL_REQUEST,
      asc: 0x24,
      ascq: 0x00,
      filemark: false,
      eom: false,
      ili: false,
      commandSpecificInformation: 0n,
    });
  });

  it('decodes a field pointer into CDB byte 2', () => {
    const s = decodeSense(FIELD_POINTER_CDB_BYTE_2);
    expect(s.senseKeySpecific).toEqual({ kind: 'fieldPointer', cd: true, bpv: false, bitPointer: 0, fieldPointer: 2 });
    expect(describeSense(s)).toBe('ILLEGAL REQUEST: INVALID FIELD IN CDB (0x24/0x00), field pointer: CDB byte 2');
  });

  it('honours ADDITIONAL SENSE LENGTH in LIO 96-byte sense', () => {
    const s = decodeSense(LIO_COPY_ABORTED);
    expect(s).toMatchObject({ senseKey: SenseKey.COPY_ABORTED, asc: 0x0d, ascq: 0x02, valid: false });
    expect(s.senseKeySpecific).toBeUndefined();
    expect(describeSense(s)).toBe('COPY ABORTED: COPY TARGET DEVICE NOT REACHABLE (0x0d/0x02)');
    // Bytes after 8 + ADDITIONAL SENSE LENGTH are not read: garbage there changes nothing.
    const dirty = Buffer.from(LIO_COPY_ABORTED);
    dirty.fill(0xff, 18);
    expect(decodeSense(dirty)).toEqual(s);
  });

  it('decodes VALID + INFORMATION, FILEMARK/EOM/ILI, FRU, deferred', () => {
    const b = hex(`
      f1          # VALID 1, RESPONSE CODE 71h (deferred)
      00          # obsolete
      e3          # FILEMARK 1, EOM 1, ILI 1, SENSE KEY 3h MEDIUM ERROR
      00 12 34 56 # INFORMATION
      0a          # ADDITIONAL SENSE LENGTH
      de ad be ef # COMMAND-SPECIFIC INFORMATION
      11          # ASC UNRECOVERED READ ERROR
      00          # ASCQ
      07          # FIELD REPLACEABLE UNIT CODE
      80          # SKSV 1 (actual retry count format for MEDIUM ERROR)
      00 05       # ACTUAL RETRY COUNT
    `);
    const s = decodeSense(b);
    expect(s).toEqual({
      responseCode: 0x71,
      format: 'fixed',
      current: false,
      valid: true,
      senseKey: SenseKey.MEDIUM_ERROR,
      asc: 0x11,
      ascq: 0x00,
      filemark: true,
      eom: true,
      ili: true,
      information: 0x123456n,
      commandSpecificInformation: 0xdeadbeefn,
      fieldReplaceableUnitCode: 7,
      senseKeySpecific: { kind: 'actualRetryCount', actualRetryCount: 5 },
    });
    expect(describeSense(s)).toBe(
      'deferred MEDIUM ERROR: UNRECOVERED READ ERROR (0x11/0x00), actual retry count 5, information 0x123456, ' +
        'command-specific information 0xdeadbeef',
    );
  });

  it('decodes each sense-key-specific format by sense key (SPC-4 r37 4.5.2.4)', () => {
    const withSks = (key: number, sks: string): SenseData => {
      const b = Buffer.from(TGT_INVALID_FIELD);
      b[2] = key;
      hex(sks).copy(b, 15);
      return decodeSense(b);
    };
    expect(withSks(SenseKey.NOT_READY, '80 80 00').senseKeySpecific).toEqual({
      kind: 'progressIndication',
      progressIndication: 0x8000,
    });
    expect(describeSense(withSks(SenseKey.NOT_READY, '80 80 00'))).toContain('progress 50.0%');
    expect(withSks(SenseKey.COPY_ABORTED, 'ab 01 00').senseKeySpecific).toEqual({
      kind: 'segmentPointer',
      sd: true,
      bpv: true,
      bitPointer: 3,
      fieldPointer: 0x100,
    });
    expect(withSks(SenseKey.ILLEGAL_REQUEST, '0f 00 04').senseKeySpecific).toBeUndefined(); // SKSV 0
    expect(withSks(SenseKey.ILLEGAL_REQUEST, '8d 00 04').senseKeySpecific).toEqual({
      kind: 'fieldPointer',
      cd: false,
      bpv: true,
      bitPointer: 5,
      fieldPointer: 4,
    });
    expect(withSks(SenseKey.UNIT_ATTENTION, '81 00 00').senseKeySpecific).toEqual({
      kind: 'unitAttentionConditionQueueOverflow',
      overflow: true,
    });
    expect(withSks(SenseKey.DATA_PROTECT, '81 02 03').senseKeySpecific).toEqual({ kind: 'raw', bytes: hex('81 02 03') });
  });

  it('tolerates sense cut short by the allocation length, down to 8 bytes', () => {
    // Every cut of an 18-byte sense from 8 bytes up decodes; fields not received are absent.
    for (let cut = 8; cut <= 18; cut++) {
      const s = decodeSense(FIELD_POINTER_CDB_BYTE_2.subarray(0, cut));
      expect(s.senseKey).toBe(SenseKey.ILLEGAL_REQUEST);
      expect(s.asc).toBe(cut >= 13 ? 0x24 : 0);
      expect(s.commandSpecificInformation).toBe(cut >= 12 ? 0n : undefined);
      expect(s.senseKeySpecific === undefined).toBe(cut < 18);
    }
    // What initiators often hold: 14 bytes (through ASCQ) of UNIT ATTENTION, POWER ON.
    const s14 = decodeSense(hex('70 00 06 00 00 00 00 0a 00 00 00 00 29 00'));
    expect(describeSense(s14)).toBe('UNIT ATTENTION: POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (0x29/0x00)');
  });

  it('takes ADDITIONAL SENSE LENGTH smaller than 10 at its word', () => {
    // ADDITIONAL SENSE LENGTH 4: ASC/ASCQ are not part of the sense even though bytes follow.
    const b = Buffer.from(TGT_INVALID_FIELD);
    b[7] = 4;
    const s = decodeSense(b);
    expect(s.asc).toBe(0);
    expect(s.commandSpecificInformation).toBe(0n);
  });

  it('tolerates Linux scsi_set_sense_field_pointer sense (ADDITIONAL SENSE LENGTH 18, 18 bytes sent)', () => {
    // Linux drivers/scsi/scsi_common.c sets byte 7 to 18 (not 10) when it adds a field pointer;
    // an initiator receiving 18 bytes sees a length claiming 26.
    const b = Buffer.from(FIELD_POINTER_CDB_BYTE_2);
    b[7] = 0x12;
    expect(decodeSense(b).senseKeySpecific).toEqual({
      kind: 'fieldPointer',
      cd: true,
      bpv: false,
      bitPointer: 0,
      fieldPointer: 2,
    });
  });
});

describe('decodeSense: descriptor format (SPC-4 r37 4.5.2)', () => {
  it('decodes information, command-specific, segment pointer and forwarded sense descriptors', () => {
    const s = decodeSense(DESCRIPTOR_COPY_ABORTED);
    expect(s).toEqual(DESCRIPTOR_COPY_ABORTED_VALUE);
    // The forwarded sense is itself sense data.
    const fwd = s.descriptors?.[3];
    expect(fwd?.kind).toBe('forwardedSenseData');
    if (fwd?.kind === 'forwardedSenseData') {
      expect(describeSense(decodeSense(fwd.senseData))).toBe(
        'MEDIUM ERROR: UNRECOVERED READ ERROR (0x11/0x00), information 0x1000',
      );
    }
    expect(describeSense(s)).toBe(
      'COPY ABORTED: THIRD PARTY DEVICE FAILURE (0x0d/0x01), segment pointer: segment descriptor byte 12, ' +
        'information 0x100000000, command-specific information 0x3',
    );
  });

  it('decodes tgt header-only descriptor sense', () => {
    expect(decodeSense(TGT_DESCRIPTOR)).toEqual({
      responseCode: 0x72,
      format: 'descriptor',
      current: true,
      senseKey: SenseKey.ILLEGAL_REQUEST,
      asc: 0x24,
      ascq: 0x00,
      descriptors: [],
    });
  });

  it('keeps unknown descriptor types raw and a SKSV-0 descriptor raw', () => {
    const b = hex(`
      73          # RESPONSE CODE 73h (deferred, descriptor)
      05 24 00    # SENSE KEY, ASC, ASCQ
      00 00 00    # reserved
      0c          # ADDITIONAL SENSE LENGTH
      05 02 00 20 # block commands descriptor (05h): ILI set
      02 06 00 00 00 00 07 00  # sense key specific descriptor with SKSV 0
    `);
    const s = decodeSense(b);
    expect(s.current).toBe(false);
    expect(s.descriptors).toEqual([
      { kind: 'raw', descriptorType: 0x05, data: hex('00 20') },
      { kind: 'senseKeySpecific', senseKeySpecific: { kind: 'raw', bytes: hex('00 00 07') } },
    ]);
    expect(s.senseKeySpecific).toEqual({ kind: 'raw', bytes: hex('00 00 07') });
  });

  it('keeps the whole descriptors of a cut buffer', () => {
    const ends = [8, 20, 32, 40, 62]; // where each descriptor of DESCRIPTOR_COPY_ABORTED ends
    for (let cut = 8; cut <= DESCRIPTOR_COPY_ABORTED.length; cut++) {
      const s = decodeSense(DESCRIPTOR_COPY_ABORTED.subarray(0, cut));
      const whole = ends.filter((e) => e > 8 && e <= cut).length;
      expect(s.descriptors).toHaveLength(whole);
      expect(s.asc).toBe(0x0d);
    }
  });

  it('rejects a descriptor running past ADDITIONAL SENSE LENGTH, at its length byte', () => {
    const b = hex(`
      72 05 24 00 00 00 00
      04          # ADDITIONAL SENSE LENGTH 4
      02 06 00 00 # sense key specific descriptor claims 6 more bytes
      c0 00 02 00
    `);
    expect(decodeErrorOf(() => decodeSense(b)).offset).toBe(9);
  });

  it('rejects a lone byte left inside ADDITIONAL SENSE LENGTH', () => {
    const b = hex('72 05 24 00 00 00 00 01 00');
    expect(decodeErrorOf(() => decodeSense(b)).offset).toBe(8);
  });

  it('rejects typed descriptors too short to hold their fields', () => {
    const info = hex('72 03 11 00 00 00 00 04  00 02 80 00');
    expect(decodeErrorOf(() => decodeSense(info)).offset).toBe(9);
    const sks = hex('72 05 24 00 00 00 00 04  02 02 00 00');
    expect(decodeErrorOf(() => decodeSense(sks)).offset).toBe(9);
    const fwd = hex('72 0a 0d 01 00 00 00 02  0c 00');
    expect(decodeErrorOf(() => decodeSense(fwd)).offset).toBe(9);
  });
});

describe('decodeSense: rejects', () => {
  it('fewer than 8 bytes, naming the first missing byte', () => {
    for (let cut = 0; cut < 8; cut++) {
      const err = decodeErrorOf(() => decodeSense(TGT_INVALID_FIELD.subarray(0, cut)));
      expect(err.offset).toBe(cut);
      expect(err.code).toBe('ERR_SCSI_DECODE');
    }
  });

  it.each(['00', '01', '6f', '74', '7f'])('response code %sh at byte 0', (rc) => {
    const b = Buffer.from(TGT_INVALID_FIELD);
    b[0] = parseInt(rc, 16);
    expect(decodeErrorOf(() => decodeSense(b)).offset).toBe(0);
  });

  it('random and mutated input with a value or a DecodeError only', () => {
    assertTotalDecoder(decodeSense, TGT_INVALID_FIELD);
    assertTotalDecoder(decodeSense, FIELD_POINTER_CDB_BYTE_2);
    assertTotalDecoder(decodeSense, DESCRIPTOR_COPY_ABORTED);
  });
});

describe('encodeFixedSense', () => {
  it('encodes tgt INVALID FIELD IN CDB byte for byte', () => {
    const bytes = encodeFixedSense({ senseKey: SenseKey.ILLEGAL_REQUEST, asc: 0x24, ascq: 0x00 });
    expect(bytes.toString('hex')).toBe(TGT_INVALID_FIELD.toString('hex'));
  });

  it('encodes the field pointer fixture', () => {
    const bytes = encodeFixedSense({
      senseKey: SenseKey.ILLEGAL_REQUEST,
      asc: 0x24,
      ascq: 0x00,
      senseKeySpecific: { kind: 'fieldPointer', cd: true, bpv: false, bitPointer: 0, fieldPointer: 2 },
    });
    expect(bytes.toString('hex')).toBe(FIELD_POINTER_CDB_BYTE_2.toString('hex'));
  });

  it('encodes the first 18 bytes LIO sends', () => {
    const bytes = encodeFixedSense({ senseKey: SenseKey.COPY_ABORTED, asc: 0x0d, ascq: 0x02 });
    expect(bytes.toString('hex')).toBe(LIO_COPY_ABORTED.subarray(0, 18).toString('hex'));
  });

  it('round-trips the decoded fixtures', () => {
    for (const golden of [TGT_INVALID_FIELD, FIELD_POINTER_CDB_BYTE_2]) {
      expect(encodeFixedSense(decodeSense(golden)).toString('hex')).toBe(golden.toString('hex'));
    }
  });

  it('rejects values that do not fit', () => {
    const base: SenseInput = { senseKey: SenseKey.ILLEGAL_REQUEST, asc: 0x24, ascq: 0 };
    const bad: SenseInput[] = [
      { ...base, senseKey: 16 },
      { ...base, asc: 256 },
      { ...base, ascq: -1 },
      { ...base, information: 1n << 32n }, // fixed INFORMATION is 4 bytes
      { ...base, commandSpecificInformation: -1n },
      { ...base, fieldReplaceableUnitCode: 256 },
      { ...base, senseKeySpecific: { kind: 'fieldPointer', cd: true, bpv: false, bitPointer: 0, fieldPointer: 0x10000 } },
      { ...base, senseKeySpecific: { kind: 'fieldPointer', cd: true, bpv: true, bitPointer: 8, fieldPointer: 0 } },
      // A segment pointer belongs to COPY ABORTED, not ILLEGAL REQUEST.
      { ...base, senseKeySpecific: { kind: 'segmentPointer', sd: false, bpv: false, bitPointer: 0, fieldPointer: 0 } },
      { ...base, senseKeySpecific: { kind: 'raw', bytes: Buffer.alloc(2) } },
    ];
    for (const s of bad) expect(() => encodeFixedSense(s)).toThrow(EncodeError);
  });
});

describe('encodeDescriptorSense', () => {
  it('encodes the copy manager fixture from top-level fields plus the forwarded descriptor', () => {
    const fwd = DESCRIPTOR_COPY_ABORTED_VALUE.descriptors![3];
    const bytes = encodeDescriptorSense({
      senseKey: SenseKey.COPY_ABORTED,
      asc: 0x0d,
      ascq: 0x01,
      information: 0x1_0000_0000n,
      commandSpecificInformation: 3n,
      senseKeySpecific: { kind: 'segmentPointer', sd: true, bpv: false, bitPointer: 0, fieldPointer: 12 },
      descriptors: [fwd],
    });
    expect(bytes.toString('hex')).toBe(DESCRIPTOR_COPY_ABORTED.toString('hex'));
  });

  it('round-trips the decoded fixtures without duplicating descriptors', () => {
    for (const golden of [DESCRIPTOR_COPY_ABORTED, TGT_DESCRIPTOR]) {
      expect(encodeDescriptorSense(decodeSense(golden)).toString('hex')).toBe(golden.toString('hex'));
    }
  });

  it('converts fixed to descriptor format and back', () => {
    const fixed = decodeSense(FIELD_POINTER_CDB_BYTE_2);
    const desc = decodeSense(encodeDescriptorSense(fixed));
    expect(desc.format).toBe('descriptor');
    expect(desc).toMatchObject({ senseKey: fixed.senseKey, asc: fixed.asc, ascq: fixed.ascq });
    expect(desc.senseKeySpecific).toEqual(fixed.senseKeySpecific);
    expect(encodeFixedSense(desc).toString('hex')).toBe(FIELD_POINTER_CDB_BYTE_2.toString('hex'));
  });

  it('rejects a top-level field that disagrees with a descriptor', () => {
    const decoded = decodeSense(DESCRIPTOR_COPY_ABORTED);
    expect(() => encodeDescriptorSense({ ...decoded, commandSpecificInformation: 4n })).toThrow(EncodeError);
    expect(() => encodeDescriptorSense({ ...decoded, information: 5n })).toThrow(EncodeError);
    expect(() =>
      encodeDescriptorSense({
        ...decoded,
        senseKeySpecific: { kind: 'segmentPointer', sd: false, bpv: false, bitPointer: 0, fieldPointer: 12 },
      }),
    ).toThrow(EncodeError);
  });

  it('rejects descriptors that do not fit', () => {
    const base: SenseInput = { senseKey: SenseKey.COPY_ABORTED, asc: 0x0d, ascq: 0x01 };
    const fwd = (senseData: Buffer, senseDataSource = 1): SenseDescriptor => ({
      kind: 'forwardedSenseData',
      fsdt: false,
      senseDataSource,
      forwardedStatus: 2,
      senseData,
    });
    expect(() => encodeDescriptorSense({ ...base, descriptors: [fwd(Buffer.alloc(254))] })).toThrow(EncodeError);
    expect(() => encodeDescriptorSense({ ...base, descriptors: [fwd(Buffer.alloc(4), 16)] })).toThrow(EncodeError);
    expect(() =>
      encodeDescriptorSense({ ...base, descriptors: [fwd(Buffer.alloc(200)), fwd(Buffer.alloc(200))] }),
    ).toThrow(EncodeError); // ADDITIONAL SENSE LENGTH is one byte
    expect(() => encodeDescriptorSense({ ...base, information: 1n << 64n })).toThrow(EncodeError);
    expect(() =>
      encodeDescriptorSense({ ...base, descriptors: [{ kind: 'raw', descriptorType: 256, data: Buffer.alloc(0) }] }),
    ).toThrow(EncodeError);
  });
});

describe('describeSense', () => {
  it('says key, ASC/ASCQ name and code, with the fallback for unknown pairs', () => {
    expect(describeSense(decodeSense(TGT_INVALID_FIELD))).toBe('ILLEGAL REQUEST: INVALID FIELD IN CDB (0x24/0x00)');
    expect(describeSense({ senseKey: SenseKey.ILLEGAL_REQUEST, asc: 0x24, ascq: 0x00 })).toBe(
      'ILLEGAL REQUEST: INVALID FIELD IN CDB (0x24/0x00)',
    );
    expect(describeSense({ senseKey: SenseKey.ABORTED_COMMAND, asc: 0x7a, ascq: 0x33 })).toBe(
      'ABORTED COMMAND: ASC 0x7a ASCQ 0x33 (0x7a/0x33)',
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Properties: random valid values → encode → decode gives them back.
// ---------------------------------------------------------------------------------------------

const u16 = fc.integer({ min: 0, max: 0xffff });
const bit = fc.integer({ min: 0, max: 7 });

/** A SENSE KEY SPECIFIC value of the format the sense key uses (raw for the others). */
function sksFor(senseKey: number, sksvRaw: boolean): fc.Arbitrary<SenseKeySpecific> {
  switch (senseKey) {
    case SenseKey.ILLEGAL_REQUEST:
      return fc.record({
        kind: fc.constant('fieldPointer' as const),
        cd: fc.boolean(),
        bpv: fc.boolean(),
        bitPointer: bit,
        fieldPointer: u16,
      });
    case SenseKey.RECOVERED_ERROR:
    case SenseKey.MEDIUM_ERROR:
    case SenseKey.HARDWARE_ERROR:
      return fc.record({ kind: fc.constant('actualRetryCount' as const), actualRetryCount: u16 });
    case SenseKey.NO_SENSE:
    case SenseKey.NOT_READY:
      return fc.record({ kind: fc.constant('progressIndication' as const), progressIndication: u16 });
    case SenseKey.COPY_ABORTED:
      return fc.record({
        kind: fc.constant('segmentPointer' as const),
        sd: fc.boolean(),
        bpv: fc.boolean(),
        bitPointer: bit,
        fieldPointer: u16,
      });
    case SenseKey.UNIT_ATTENTION:
      return fc.record({ kind: fc.constant('unitAttentionConditionQueueOverflow' as const), overflow: fc.boolean() });
    default:
      // Fixed format only reports SKS when SKSV is set, so raw bytes there carry SKSV = 1.
      return fc
        .uint8Array({ minLength: 3, maxLength: 3 })
        .map((b) => ({ kind: 'raw' as const, bytes: Buffer.from(sksvRaw ? [b[0] | 0x80, b[1], b[2]] : b) }));
  }
}

const header = fc.record({
  current: fc.boolean(),
  senseKey: fc.integer({ min: 0, max: 15 }),
  asc: fc.integer({ min: 0, max: 255 }),
  ascq: fc.integer({ min: 0, max: 255 }),
});

describe('round-trip properties', () => {
  it('fixed format: value → encode → decode', () => {
    const arb = header.chain((h) =>
      fc.record({
        h: fc.constant(h),
        filemark: fc.boolean(),
        eom: fc.boolean(),
        ili: fc.boolean(),
        information: fc.option(fc.bigInt({ min: 0n, max: 0xffff_ffffn }), { nil: undefined }),
        csi: fc.option(fc.bigInt({ min: 0n, max: 0xffff_ffffn }), { nil: undefined }),
        fru: fc.option(fc.integer({ min: 1, max: 255 }), { nil: undefined }),
        sks: fc.option(sksFor(h.senseKey, true), { nil: undefined }),
      }),
    );
    fc.assert(
      fc.property(arb, ({ h, filemark, eom, ili, information, csi, fru, sks }) => {
        const input: SenseInput = {
          ...h,
          filemark,
          eom,
          ili,
          information,
          commandSpecificInformation: csi,
          fieldReplaceableUnitCode: fru,
          senseKeySpecific: sks,
        };
        const bytes = encodeFixedSense(input);
        expect(bytes).toHaveLength(18);
        expect(decodeSense(bytes)).toEqual({
          ...input,
          responseCode: h.current ? 0x70 : 0x71,
          format: 'fixed',
          valid: information !== undefined,
          commandSpecificInformation: csi ?? 0n,
        });
      }),
      { numRuns: 1000 },
    );
  });

  it('descriptor format: value → encode → decode', () => {
    const extra: fc.Arbitrary<SenseDescriptor> = fc.oneof(
      fc.record({
        kind: fc.constant('forwardedSenseData' as const),
        fsdt: fc.boolean(),
        senseDataSource: fc.integer({ min: 0, max: 15 }),
        forwardedStatus: fc.integer({ min: 0, max: 255 }),
        senseData: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
      }),
      fc.record({
        kind: fc.constant('raw' as const),
        descriptorType: fc.integer({ min: 0x03, max: 0xff }).filter((t) => t !== 0x0c),
        data: fc.uint8Array({ maxLength: 20 }).map((b) => Buffer.from(b)),
      }),
    );
    const arb = header.chain((h) =>
      fc.record({
        h: fc.constant(h),
        information: fc.option(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { nil: undefined }),
        csi: fc.option(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { nil: undefined }),
        sks: fc.option(sksFor(h.senseKey, false), { nil: undefined }),
        extras: fc.array(extra, { maxLength: 4 }),
      }),
    );
    fc.assert(
      fc.property(arb, ({ h, information, csi, sks, extras }) => {
        const input: SenseInput = {
          ...h,
          information,
          commandSpecificInformation: csi,
          senseKeySpecific: sks,
          descriptors: extras,
        };
        const bytes = encodeDescriptorSense(input);
        const expected: SenseDescriptor[] = [];
        if (information !== undefined) expected.push({ kind: 'information', valid: true, information });
        if (csi !== undefined) expected.push({ kind: 'commandSpecificInformation', commandSpecificInformation: csi });
        if (sks !== undefined) expected.push({ kind: 'senseKeySpecific', senseKeySpecific: sks });
        expected.push(...extras);
        expect(decodeSense(bytes)).toEqual({
          ...input,
          responseCode: h.current ? 0x72 : 0x73,
          format: 'descriptor',
          valid: information !== undefined ? true : undefined,
          descriptors: expected,
        });
      }),
      { numRuns: 1000 },
    );
  });

  it('descriptor format: decode → encode → decode is stable on mutated input', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(DESCRIPTOR_COPY_ABORTED.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        (flips) => {
          const b = Buffer.from(DESCRIPTOR_COPY_ABORTED);
          for (const [i, v] of flips) if (i > 0) b[i] = v; // keep the descriptor response code
          let first: SenseData;
          try {
            first = decodeSense(b);
          } catch (err) {
            expect(err).toBeInstanceOf(DecodeError);
            return;
          }
          expect(decodeSense(encodeDescriptorSense(first))).toEqual(first);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

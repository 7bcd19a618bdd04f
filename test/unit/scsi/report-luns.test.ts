import fc from 'fast-check';
import { EncodeError } from '../../../src/errors';
import { decodeReportLuns, encodeLun, encodeReportLuns, lunNumberAt } from '../../../src/scsi/report-luns';
import { assertTotalDecoder, decodeErrorOf, hex } from '../../helpers/codec';

// tgt with one backing-store LUN: LUN 0 is its controller, LUN 1 the disk (peripheral device
// addressing, SAM-5 r21 4.7).
const TGT_TWO_LUNS = hex(`
  00 00 00 10              # LUN LIST LENGTH 16 (two LUNs)
  00 00 00 00              # reserved
  00 00 00 00 00 00 00 00  # LUN 0: ADDRESS METHOD 00b, BUS IDENTIFIER 0, LUN 0
  00 01 00 00 00 00 00 00  # LUN 1
`);

// Every form the decoder distinguishes: single-level LUNs first, then the others verbatim.
const MIXED = hex(`
  00 00 00 28              # LUN LIST LENGTH 40 (five LUNs)
  00 00 00 00              # reserved
  00 00 00 00 00 00 00 00  # LUN 0 (peripheral device addressing)
  00 ff 00 00 00 00 00 00  # LUN 255 (peripheral device addressing)
  41 2c 00 00 00 00 00 00  # LUN 300 (flat space addressing: 01b, 0x12c)
  80 01 02 03 00 00 00 00  # logical unit addressing (10b): kept raw
  00 05 00 07 00 00 00 00  # two levels (LUN 5, then LUN 7): kept raw
`);

describe('REPORT LUNS parameter data (SPC-4 r37 6.33.2)', () => {
  it('decodes the golden bytes', () => {
    expect(decodeReportLuns(TGT_TWO_LUNS)).toEqual({ listLength: 16, luns: [0, 1], otherLuns: [] });
    expect(decodeReportLuns(MIXED)).toEqual({
      listLength: 40,
      luns: [0, 255, 300],
      otherLuns: [hex('80 01 02 03 00 00 00 00'), hex('00 05 00 07 00 00 00 00')],
    });
  });

  it('encodes the golden bytes', () => {
    expect(encodeReportLuns({ luns: [0, 1] }).toString('hex')).toBe(TGT_TWO_LUNS.toString('hex'));
    const other = [hex('80 01 02 03 00 00 00 00'), hex('00 05 00 07 00 00 00 00')];
    expect(encodeReportLuns({ luns: [0, 255, 300], otherLuns: other }).toString('hex')).toBe(MIXED.toString('hex'));
  });

  it('round-trips the golden bytes', () => {
    for (const golden of [TGT_TWO_LUNS, MIXED]) {
      expect(encodeReportLuns(decodeReportLuns(golden)).equals(golden)).toBe(true);
    }
  });

  it('encodes an empty list as the 8-byte header', () => {
    expect(encodeReportLuns({ luns: [] }).toString('hex')).toBe('0000000000000000');
    expect(decodeReportLuns(Buffer.alloc(8))).toEqual({ listLength: 0, luns: [], otherLuns: [] });
  });

  it('decodes what is whole of a list cut by the allocation length', () => {
    for (let cut = 8; cut <= MIXED.length; cut++) {
      const d = decodeReportLuns(MIXED.subarray(0, cut));
      expect(d.listLength).toBe(40);
      expect(d.luns.length + d.otherLuns.length).toBe(Math.floor((cut - 8) / 8));
    }
    // 16 + 8 × 1: LUN 0 only, and listLength says there are more.
    expect(decodeReportLuns(MIXED.subarray(0, 16))).toEqual({ listLength: 40, luns: [0], otherLuns: [] });
  });

  it('reads no further than LUN LIST LENGTH', () => {
    const b = Buffer.concat([TGT_TWO_LUNS, hex('00 07 00 00 00 00 00 00')]);
    expect(decodeReportLuns(b).luns).toEqual([0, 1]);
  });

  it('rejects fewer than 8 bytes at the first missing byte', () => {
    for (let cut = 0; cut < 8; cut++) {
      expect(decodeErrorOf(() => decodeReportLuns(TGT_TWO_LUNS.subarray(0, cut))).offset).toBe(cut);
    }
  });

  it('rejects a LUN LIST LENGTH that is not a multiple of 8, at byte 0', () => {
    const b = Buffer.from(TGT_TWO_LUNS);
    b.writeUInt32BE(12, 0);
    expect(decodeErrorOf(() => decodeReportLuns(b)).offset).toBe(0);
  });

  it('is a total decoder', () => {
    assertTotalDecoder(decodeReportLuns, MIXED);
  });

  it('round-trips random lists', () => {
    const single = fc.integer({ min: 0, max: 0x3fff });
    // Entries that are not single-level: ADDRESS METHOD 10b or 11b in byte 0.
    const other = fc
      .tuple(fc.integer({ min: 0x80, max: 0xff }), fc.uint8Array({ minLength: 7, maxLength: 7 }))
      .map(([b0, rest]) => Buffer.from([b0, ...rest]));
    fc.assert(
      fc.property(fc.array(single, { maxLength: 40 }), fc.array(other, { maxLength: 10 }), (luns, otherLuns) => {
        const bytes = encodeReportLuns({ luns, otherLuns });
        expect(bytes).toHaveLength(8 + 8 * (luns.length + otherLuns.length));
        expect(decodeReportLuns(bytes)).toEqual({ listLength: 8 * (luns.length + otherLuns.length), luns, otherLuns });
      }),
    );
  });
});

/** REPORT LUNS parameter data holding just these 8-byte LUN fields. */
function listOf(...entries: Buffer[]): Buffer {
  return encodeReportLuns({ luns: [], otherLuns: entries });
}

describe('LUN field (SAM-5 r21 4.7)', () => {
  it('encodes peripheral device addressing below 256 and flat space up to 16383', () => {
    expect(encodeLun(0).toString('hex')).toBe('0000000000000000');
    expect(encodeLun(255).toString('hex')).toBe('00ff000000000000');
    expect(encodeLun(256).toString('hex')).toBe('4100000000000000');
    expect(encodeLun(16383).toString('hex')).toBe('7fff000000000000');
  });

  it('decodes a flat-space LUN below 256 to the same number', () => {
    expect(lunNumberAt(hex('40 05 00 00 00 00 00 00'))).toBe(5);
    expect(decodeReportLuns(listOf(hex('40 05 00 00 00 00 00 00'))).luns).toEqual([5]);
  });

  it('keeps a non-zero BUS IDENTIFIER raw', () => {
    // Peripheral device addressing with bus 1 is not "LUN 300" (Linux's int_to_scsilun form).
    expect(lunNumberAt(hex('01 2c 00 00 00 00 00 00'))).toBeUndefined();
    expect(decodeReportLuns(listOf(hex('01 2c 00 00 00 00 00 00'))).otherLuns).toEqual([hex('01 2c 00 00 00 00 00 00')]);
  });

  it('reads at an offset and rejects a short field', () => {
    const b = hex('ff ff 00 09 00 00 00 00 00 00');
    expect(lunNumberAt(b, 2)).toBe(9);
    expect(decodeErrorOf(() => lunNumberAt(b, 3)).offset).toBe(b.length);
  });

  it('rejects LUNs that do not fit', () => {
    for (const bad of [-1, 16384, 1.5, NaN]) expect(() => encodeLun(bad)).toThrow(EncodeError);
    expect(() => encodeLun(Buffer.alloc(7))).toThrow(EncodeError);
    expect(() => encodeReportLuns({ luns: [0, 70000] })).toThrow(EncodeError);
  });

  it('is a total decoder', () => {
    assertTotalDecoder((b) => lunNumberAt(b), hex('41 2c 00 00 00 00 00 00'));
  });

  it('round-trips every single-level LUN', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 0x3fff }), (n) => expect(lunNumberAt(encodeLun(n))).toBe(n)));
  });
});

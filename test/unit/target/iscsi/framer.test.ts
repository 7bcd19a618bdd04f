import fc from 'fast-check';
import { ArgumentError, DecodeError } from '../../../../src/errors';
import { crc32c } from '../../../../src/native/crc32c';
import {
  FramingError,
  LOGIN_MAX_DATA_SEGMENT_LENGTH,
  PduFramer,
  encodeFrame,
  type FramedPdu,
} from '../../../../src/target/iscsi/framer';
import {
  IscsiOpcode,
  decodeInitiatorPdu,
  decodeTargetPdu,
  encodeDataOut,
  encodeInitiatorPdu,
  encodeLoginRequest,
  encodeTextRequest,
  encodeTargetPdu,
  isInitiatorOpcode,
  pduOpcode,
  splitPdu,
  type RawPdu,
} from '../../../../src/target/iscsi/pdu';
import { DIGEST_SESSION_INITIATOR_CHUNKS, DIGEST_SESSION_TARGET_CHUNKS } from './framer-captures';
import { INITIATOR_PDUS, TARGET_PDUS } from './pdu-arbitraries';
import * as F from './pdu-fixtures';

type Digests = { headerDigest: boolean; dataDigest: boolean };
const DIGEST_MODES: Array<[string, Digests]> = [
  ['no digests', { headerDigest: false, dataDigest: false }],
  ['header digest', { headerDigest: true, dataDigest: false }],
  ['data digest', { headerDigest: false, dataDigest: true }],
  ['both digests', { headerDigest: true, dataDigest: true }],
];

/** A comparable form of framed PDUs. */
function shape(pdus: ReadonlyArray<RawPdu & Partial<FramedPdu>>): string[] {
  return pdus.map(
    (p) =>
      `${p.bhs.toString('hex')}|${p.ahs.toString('hex')}|${p.data.toString('hex')}|` +
      `${String(p.headerDigestOk ?? true)}|${String(p.dataDigestOk ?? true)}`,
  );
}

function framer(d: Digests, maxRecvDataSegmentLength = 8192): PduFramer {
  return new PduFramer({ maxRecvDataSegmentLength, ...d });
}

function wire(pdus: readonly RawPdu[], d: Digests): Buffer {
  return Buffer.concat(pdus.flatMap((p) => encodeFrame(p, d)));
}

/** Feeds `stream` cut at `cuts` (sorted offsets) and returns every PDU framed. */
function feed(f: PduFramer, stream: Buffer, cuts: readonly number[]): FramedPdu[] {
  const out: FramedPdu[] = [];
  let at = 0;
  for (const cut of [...cuts, stream.length]) {
    out.push(...f.push(stream.subarray(at, cut)));
    at = cut;
  }
  return out;
}

/**
 * Eight PDUs in a row: the libiscsi Login Request (447 bytes of text: 1 byte of padding), a
 * SCSI Command with two AHS, a Data-Out (512 bytes), the NOP pair (no data), a SCSI Response
 * with sense (20 bytes), a Text Response (79 bytes: 1 byte of padding), Data-In (66 bytes:
 * 2 bytes of padding).
 */
const STREAM_PDUS: RawPdu[] = [
  F.LOGIN_REQUEST_LIBISCSI,
  F.SCSI_COMMAND_AHS_XDWRITEREAD32,
  F.DATA_OUT_LIBISCSI,
  F.NOP_IN_TGT_PING,
  F.NOP_OUT_LIBISCSI_ANSWER,
  F.SCSI_RESPONSE_TGT_UNIT_ATTENTION,
  F.TEXT_RESPONSE_TGT_SENDTARGETS,
  F.DATA_IN_TGT_INQUIRY,
].map(splitPdu);

describe('PduFramer (RFC 7143 11.1)', () => {
  describe.each(DIGEST_MODES)('with %s', (_name, digests) => {
    const stream = wire(STREAM_PDUS, digests);
    const expected = shape(STREAM_PDUS);

    it('lays the stream out as RFC 7143 11.1 says', () => {
      const hd = digests.headerDigest ? 4 : 0;
      const size = (p: RawPdu): number =>
        48 + p.ahs.length + hd + ((p.data.length + 3) & ~3) + (digests.dataDigest && p.data.length > 0 ? 4 : 0);
      expect(stream).toHaveLength(STREAM_PDUS.reduce((n, p) => n + size(p), 0));
    });

    it('frames the stream in one chunk', () => {
      const f = framer(digests);
      expect(shape(f.push(stream))).toEqual(expected);
      expect(f.bufferedBytes).toBe(0);
    });

    it('frames the stream cut at every byte boundary', () => {
      for (let cut = 0; cut <= stream.length; cut++) {
        const f = framer(digests);
        const got = feed(f, stream, [cut]);
        if (shape(got).join() !== expected.join()) expect({ cut, got: shape(got) }).toEqual({ cut, got: expected });
        expect(f.bufferedBytes).toBe(0);
      }
    });

    it('frames the stream one byte at a time', () => {
      const f = framer(digests);
      const ends: number[] = [];
      for (const p of STREAM_PDUS) ends.push((ends.at(-1) ?? 0) + wire([p], digests).length);
      const out: FramedPdu[] = [];
      for (let i = 0; i < stream.length; i++) {
        out.push(...f.push(stream.subarray(i, i + 1)));
        // A PDU comes out exactly when its last byte arrives, not before.
        expect(out.length).toBe(ends.filter((end) => end <= i + 1).length);
        expect(f.bufferedBytes).toBe(i + 1 - (ends.filter((end) => end <= i + 1).at(-1) ?? 0));
      }
      expect(shape(out)).toEqual(expected);
    });

    it('frames the stream in random chunks', () => {
      fc.assert(
        fc.property(fc.uniqueArray(fc.integer({ min: 0, max: stream.length }), { maxLength: 40 }), (cuts) => {
          const f = framer(digests);
          expect(shape(feed(f, stream, cuts.sort((a, b) => a - b)))).toEqual(expected);
          expect(f.bufferedBytes).toBe(0);
        }),
        { numRuns: 300 },
      );
    });

    it('frames random PDUs of every type in random chunks', () => {
      const anyPdu = fc.oneof(
        ...INITIATOR_PDUS.map(([, a]) => a.map((p) => encodeInitiatorPdu(p))),
        ...TARGET_PDUS.map(([, a]) => a.map((p) => encodeTargetPdu(p))),
      );
      fc.assert(
        fc.property(fc.array(anyPdu, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), (pdus, rawCuts) => {
          const s = wire(pdus, digests);
          const cuts = [...new Set(rawCuts.map((c) => c % (s.length + 1)))].sort((a, b) => a - b);
          const got = feed(framer(digests, 0xffffff), s, cuts);
          expect(shape(got)).toEqual(shape(pdus));
          for (const p of got) {
            if (isInitiatorOpcode(pduOpcode(p.bhs))) decodeInitiatorPdu(p);
            else decodeTargetPdu(p);
          }
        }),
        { numRuns: 200 },
      );
    });
  });

  describe('a real session with header digests (libiscsi and tgt, framer-captures.ts)', () => {
    const initiator = DIGEST_SESSION_INITIATOR_CHUNKS.map((h) => Buffer.from(h, 'hex'));
    const target = DIGEST_SESSION_TARGET_CHUNKS.map((h) => Buffer.from(h, 'hex'));

    /**
     * Frames the way a connection does: digests switch on after the last login PDU
     * (RFC 7143 13.1), PDU by PDU with `next`, so a chunk holding the end of the login and
     * the first Full Feature Phase PDU is framed right.
     */
    function frameSession(chunks: Buffer[], loginOpcode: number): FramedPdu[] {
      const f = new PduFramer({ maxRecvDataSegmentLength: 262144, headerDigest: false, dataDigest: false });
      const out: FramedPdu[] = [];
      for (const chunk of chunks) {
        f.append(chunk);
        for (let p = f.next(); p !== undefined; p = f.next()) {
          out.push(p);
          if (pduOpcode(p.bhs) === loginOpcode && (p.bhs[1] & 0x83) === 0x83) f.setDigests(true, false);
        }
      }
      expect(f.bufferedBytes).toBe(0);
      return out;
    }

    it('checks every header digest libiscsi sent', () => {
      const pdus = frameSession(initiator, IscsiOpcode.LOGIN_REQUEST);
      expect(pdus.map((p) => decodeInitiatorPdu(p).opcode)).toEqual([
        IscsiOpcode.LOGIN_REQUEST,
        IscsiOpcode.SCSI_COMMAND,
        IscsiOpcode.SCSI_COMMAND,
        IscsiOpcode.SCSI_COMMAND,
        IscsiOpcode.SCSI_COMMAND,
        IscsiOpcode.LOGOUT_REQUEST,
      ]);
      expect(pdus.every((p) => p.headerDigestOk && p.dataDigestOk)).toBe(true);
    });

    it('checks every header digest tgt sent, padding included', () => {
      const pdus = frameSession(target, IscsiOpcode.LOGIN_RESPONSE);
      expect(pdus.map((p) => decodeTargetPdu(p).opcode)).toEqual([
        IscsiOpcode.LOGIN_RESPONSE,
        IscsiOpcode.SCSI_RESPONSE,
        IscsiOpcode.SCSI_RESPONSE,
        IscsiOpcode.SCSI_DATA_IN,
        IscsiOpcode.SCSI_DATA_IN,
        IscsiOpcode.LOGOUT_RESPONSE,
      ]);
      expect(pdus.map((p) => p.data.length)).toEqual([302, 20, 0, 64, 66, 0]);
      expect(pdus.every((p) => p.headerDigestOk && p.dataDigestOk)).toBe(true);
    });

    it('re-encodes both directions to the bytes libiscsi and tgt sent', () => {
      for (const [chunks, login] of [
        [initiator, IscsiOpcode.LOGIN_REQUEST],
        [target, IscsiOpcode.LOGIN_RESPONSE],
      ] as const) {
        const pdus = frameSession(chunks, login);
        const again = pdus.map((p, i) => Buffer.concat(encodeFrame(p, { headerDigest: i > 0, dataDigest: false })));
        expect(Buffer.concat(again).toString('hex')).toBe(Buffer.concat(chunks).toString('hex'));
      }
    });

    it('frames the captured streams cut at every byte boundary', () => {
      for (const [chunks, login] of [
        [initiator, IscsiOpcode.LOGIN_REQUEST],
        [target, IscsiOpcode.LOGIN_RESPONSE],
      ] as const) {
        const stream = Buffer.concat(chunks);
        const expected = shape(frameSession(chunks, login));
        for (let cut = 0; cut <= stream.length; cut++) {
          const got = shape(frameSession([stream.subarray(0, cut), stream.subarray(cut)], login));
          if (got.join() !== expected.join()) expect({ cut, got }).toEqual({ cut, got: expected });
        }
      }
    });
  });

  describe('digest mismatches', () => {
    const both = { headerDigest: true, dataDigest: true };
    const pdu = splitPdu(F.TEXT_RESPONSE_TGT_SENDTARGETS); // 79 bytes of data, 1 of padding
    const stream = wire([pdu, splitPdu(F.NOP_IN_TGT_PING)], both);
    // Offsets in the first frame: BHS 0-47, header digest 48-51, data 52-130, padding 131,
    // data digest 132-135; the second frame starts at 136.
    const frameWith = (i: number): FramedPdu[] => {
      const bad = Buffer.from(stream);
      bad[i] ^= 0x01;
      return framer(both).push(bad);
    };

    it('reports a damaged BHS or header digest as headerDigestOk=false', () => {
      for (const i of [0, 1, 20, 47, 48, 51]) {
        const [first] = frameWith(i);
        expect(first.headerDigestOk).toBe(false);
      }
    });

    it('reports damaged data, padding or data digest as dataDigestOk=false, header good', () => {
      for (const i of [52, 100, 130, 131, 132, 135]) {
        const got = frameWith(i);
        expect(got).toHaveLength(2);
        expect([got[0].headerDigestOk, got[0].dataDigestOk]).toEqual([true, false]);
        expect([got[1].headerDigestOk, got[1].dataDigestOk]).toEqual([true, true]);
      }
    });

    it('checks a digest sent least significant byte first (RFC 3720 B.4)', () => {
      const read = splitPdu(F.SCSI_COMMAND_RFC_READ10);
      const [header] = encodeFrame(read, { headerDigest: true, dataDigest: false });
      expect(header.subarray(48).toString('hex')).toBe('563a96d9');
      const [framed] = framer({ headerDigest: true, dataDigest: false }).push(header);
      expect(framed.headerDigestOk).toBe(true);
    });
  });

  describe('DataSegmentLength limits (RFC 7143 13.12)', () => {
    const dataOut = (n: number): Buffer =>
      Buffer.concat(
        encodeFrame(
          encodeDataOut({ initiatorTaskTag: 1, expStatSN: 1, dataSN: 0, bufferOffset: 0, data: Buffer.alloc(n) }),
          { headerDigest: false, dataDigest: false },
        ),
      );

    function framingError(f: () => unknown): FramingError {
      try {
        f();
      } catch (err) {
        if (err instanceof FramingError) return err;
        throw err;
      }
      throw new Error('expected a FramingError');
    }

    it('accepts a data segment of exactly MaxRecvDataSegmentLength', () => {
      expect(framer({ headerDigest: false, dataDigest: false }, 8192).push(dataOut(8192))).toHaveLength(1);
    });

    it('rejects a longer one as soon as DataSegmentLength has arrived, at byte 5', () => {
      const f = framer({ headerDigest: false, dataDigest: false }, 8192);
      expect(f.push(dataOut(8193).subarray(0, 7))).toEqual([]);
      const err = framingError(() => f.push(dataOut(8193).subarray(7, 8)));
      expect(err).toBeInstanceOf(DecodeError);
      expect(err.code).toBe('ERR_SCSI_DECODE');
      expect(err.structure).toBe('iSCSI PDU');
      expect(err.offset).toBe(5);
      expect(err.message).toMatch(/8193.*8192/);
      // The stream cannot be resynchronised: the framer stays failed.
      expect(() => f.push(Buffer.alloc(1))).toThrow(FramingError);
      expect(() => f.next()).toThrow(FramingError);
    });

    it('holds Login Requests to 8192 bytes whatever was negotiated', () => {
      const login = (n: number): Buffer =>
        Buffer.concat(
          encodeFrame(
            encodeLoginRequest({ csg: 1, nsg: 3, transit: true, isid: Buffer.alloc(6), initiatorTaskTag: 1, cmdSN: 1, data: Buffer.alloc(n, 0x41) }),
            { headerDigest: false, dataDigest: false },
          ),
        );
      expect(LOGIN_MAX_DATA_SEGMENT_LENGTH).toBe(8192);
      expect(framer({ headerDigest: false, dataDigest: false }, 512).push(login(8192))).toHaveLength(1);
      expect(framingError(() => framer({ headerDigest: false, dataDigest: false }, 262144).push(login(8193))).offset).toBe(5);
    });

    it('holds Text Requests to the negotiated limit, and follows a new one', () => {
      const textRequest = Buffer.concat(
        encodeFrame(encodeTextRequest({ initiatorTaskTag: 1, cmdSN: 1, expStatSN: 1, data: Buffer.alloc(4096, 0x41) }), {
          headerDigest: false,
          dataDigest: false,
        }),
      );
      const f = framer({ headerDigest: false, dataDigest: false }, 8192);
      f.setMaxRecvDataSegmentLength(4095);
      expect(() => f.push(textRequest)).toThrow(FramingError);
      const g = framer({ headerDigest: false, dataDigest: false }, 4095);
      g.setMaxRecvDataSegmentLength(4096);
      expect(g.push(textRequest)).toHaveLength(1);
    });

    it('takes only limits RFC 7143 allows (512 to 2^24 - 1)', () => {
      for (const bad of [511, 0x1000000, 1.5, NaN]) {
        expect(() => new PduFramer({ maxRecvDataSegmentLength: bad, headerDigest: false, dataDigest: false })).toThrow(ArgumentError);
        expect(() => framer({ headerDigest: false, dataDigest: false }).setMaxRecvDataSegmentLength(bad)).toThrow(ArgumentError);
      }
    });
  });

  describe('settings and copies', () => {
    it('applies new digest settings from the next PDU boundary', () => {
      const login = splitPdu(F.LOGIN_REQUEST_LIBISCSI);
      const cmd = splitPdu(F.SCSI_COMMAND_LIBISCSI_INQUIRY);
      const loginBytes = wire([login], { headerDigest: false, dataDigest: false });
      const cmdBytes = wire([cmd], { headerDigest: true, dataDigest: true });
      const f = framer({ headerDigest: false, dataDigest: false });
      // Half the login arrives, then the rest with the first bytes of the next PDU.
      expect(f.push(loginBytes.subarray(0, 100))).toEqual([]);
      f.append(Buffer.concat([loginBytes.subarray(100), cmdBytes.subarray(0, 30)]));
      expect(shape([f.next()!])).toEqual(shape([login]));
      f.setDigests(true, true); // the command's header is not whole yet: it gets the new settings
      expect(f.next()).toBeUndefined();
      expect(shape(f.push(cmdBytes.subarray(30)))).toEqual(shape([cmd]));
    });

    it('hands out views of the chunk when a PDU lies inside it, and copies only across chunks', () => {
      const d = { headerDigest: false, dataDigest: false };
      // A chunk with an ArrayBuffer of its own, as a socket gives (not one from Buffer's pool).
      const chunk = Buffer.from(new Uint8Array(wire([splitPdu(F.DATA_OUT_LIBISCSI), splitPdu(F.NOP_OUT_LIBISCSI_ANSWER)], d)));
      const isViewOf = (part: Buffer, of: Buffer): boolean =>
        part.buffer === of.buffer && part.byteOffset >= of.byteOffset && part.byteOffset + part.length <= of.byteOffset + of.length;
      const [a, b] = framer(d).push(chunk);
      for (const p of [a, b]) expect([isViewOf(p.bhs, chunk), isViewOf(p.data, chunk)]).toEqual([true, true]);
      expect(a.data.byteOffset).toBe(chunk.byteOffset + 48);
      const first = chunk.subarray(0, 100);
      const second = chunk.subarray(100);
      const f = framer(d);
      expect(f.push(first)).toEqual([]);
      const [spanning, whole] = f.push(second);
      expect(isViewOf(spanning.data, first) || isViewOf(spanning.data, second)).toBe(false);
      expect(spanning.data.equals(F.DATA_OUT_LIBISCSI.subarray(48))).toBe(true);
      expect(isViewOf(whole.bhs, second)).toBe(true); // the NOP-Out lies in the second chunk
    });

    it('ignores empty chunks', () => {
      const f = framer({ headerDigest: false, dataDigest: false });
      expect(f.push(Buffer.alloc(0))).toEqual([]);
      expect(f.bufferedBytes).toBe(0);
    });
  });
});

describe('encodeFrame', () => {
  it('writes a PDU without data as its BHS alone, not copied', () => {
    const nop = splitPdu(F.NOP_IN_TGT_PING);
    const pieces = encodeFrame(nop, { headerDigest: false, dataDigest: true });
    expect(pieces).toHaveLength(1);
    expect(pieces[0]).toBe(nop.bhs);
  });

  it('writes header, data (the same buffer) and padding', () => {
    const text = splitPdu(F.TEXT_RESPONSE_TGT_SENDTARGETS);
    const pieces = encodeFrame(text, { headerDigest: false, dataDigest: false });
    expect(pieces.map((p) => p.length)).toEqual([48, 79, 1]);
    expect(pieces[1]).toBe(text.data);
    expect(pieces[2].toString('hex')).toBe('00');
    const aligned = splitPdu(F.DATA_OUT_LIBISCSI);
    expect(encodeFrame(aligned, { headerDigest: false, dataDigest: false }).map((p) => p.length)).toEqual([48, 512]);
  });

  it('appends the header digest over BHS and AHS, and the data digest over data and padding', () => {
    const cmd = splitPdu(F.SCSI_COMMAND_AHS_XDWRITEREAD32);
    const [header] = encodeFrame(cmd, { headerDigest: true, dataDigest: true });
    expect(header).toHaveLength(48 + 28 + 4);
    expect(header.readUInt32LE(76)).toBe(crc32c(Buffer.concat([cmd.bhs, cmd.ahs])));
    const din = splitPdu(F.DATA_IN_TGT_INQUIRY);
    const pieces = encodeFrame(din, { headerDigest: true, dataDigest: true });
    expect(pieces.map((p) => p.length)).toEqual([52, 66, 2 + 4]);
    expect(pieces[2].subarray(0, 2).toString('hex')).toBe('0000');
    expect(pieces[2].readUInt32LE(2)).toBe(crc32c(Buffer.concat([din.data, Buffer.alloc(2)])));
  });
});

import fc from 'fast-check';
import { DecodeError, EncodeError } from '../../../../src/errors';
import {
  MAX_KEY_LENGTH,
  MAX_LARGE_VALUE_LENGTH,
  MAX_VALUE_LENGTH,
  TextAccumulator,
  encodeTextData,
  isValidKey,
  parseTextData,
  parseTextPairs,
  splitTextData,
} from '../../../../src/target/iscsi/text';
import { assertTotalDecoder, decodeErrorOf } from '../../../helpers/codec';
import { LIBISCSI_1_19_LEADING_LOGIN, nulText } from './fixtures';

describe('iSCSI text data (RFC 7143 6.1)', () => {
  it('decodes libiscsi 1.19 leading login text, in order', () => {
    const pairs = parseTextPairs(LIBISCSI_1_19_LEADING_LOGIN);
    expect(pairs).toHaveLength(19);
    expect(pairs[0]).toEqual(['InitiatorName', 'iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-inq']);
    expect(pairs[3]).toEqual(['HeaderDigest', 'None,CRC32C']);
    expect(pairs[18]).toEqual(['DataSequenceInOrder', 'Yes']);
    const map = parseTextData(LIBISCSI_1_19_LEADING_LOGIN);
    expect(map.get('MaxRecvDataSegmentLength')).toBe('262144');
    expect(map.get('IFMarker')).toBe('No');
  });

  it('encodes to the same bytes and round-trips', () => {
    const pairs = parseTextPairs(LIBISCSI_1_19_LEADING_LOGIN);
    expect(encodeTextData(pairs).equals(LIBISCSI_1_19_LEADING_LOGIN)).toBe(true);
    expect(encodeTextData(parseTextData(LIBISCSI_1_19_LEADING_LOGIN)).equals(LIBISCSI_1_19_LEADING_LOGIN)).toBe(true);
  });

  it('encodes a target response byte for byte', () => {
    const bytes = encodeTextData([
      ['AuthMethod', 'CHAP'],
      ['TargetPortalGroupTag', '1'],
    ]);
    expect(bytes.toString('hex')).toBe(Buffer.from('AuthMethod=CHAP\0TargetPortalGroupTag=1\0', 'latin1').toString('hex'));
  });

  it('splits at the first "=": base64 values keep their padding', () => {
    expect(parseTextPairs(nulText('CHAP_R=0bAAECAw=='))).toEqual([['CHAP_R', '0bAAECAw==']]);
  });

  it('accepts an empty value, UTF-8 aliases and extension keys', () => {
    expect(
      parseTextPairs(nulText('InitiatorAlias=', 'TargetAlias=dépôt ✓', 'X-com.example.Foo=1', 'X#NodeArchitecture=x', 'iSCSIProtocolLevel=2')),
    ).toEqual([
      ['InitiatorAlias', ''],
      ['TargetAlias', 'dépôt ✓'],
      ['X-com.example.Foo', '1'],
      ['X#NodeArchitecture', 'x'],
      ['iSCSIProtocolLevel', '2'], // RFC 7144: the one standard key with a lowercase first letter
    ]);
  });

  it('takes empty data as no pairs and tolerates zero padding after the last pair', () => {
    expect(parseTextPairs(Buffer.alloc(0))).toEqual([]);
    expect(parseTextPairs(Buffer.from('A=1\0\0\0\0', 'latin1'))).toEqual([['A', '1']]);
    expect(parseTextPairs(Buffer.alloc(4))).toEqual([]);
  });

  it('rejects malformed text with the offset of the pair', () => {
    expect(decodeErrorOf(() => parseTextPairs(Buffer.from('A=1\0B=2', 'latin1'))).offset).toBe(4); // no final NUL
    expect(decodeErrorOf(() => parseTextPairs(Buffer.from('A=1\0\0B=2\0', 'latin1'))).offset).toBe(4); // empty pair
    expect(decodeErrorOf(() => parseTextPairs(Buffer.from('A=1\0Bee\0', 'latin1'))).offset).toBe(4); // no "="
    expect(decodeErrorOf(() => parseTextPairs(Buffer.from('=1\0', 'latin1'))).offset).toBe(0); // empty key
    expect(decodeErrorOf(() => parseTextPairs(Buffer.from('lower=1\0', 'latin1'))).message).toMatch(/standard-label/);
    expect(decodeErrorOf(() => parseTextPairs(Buffer.from('Sp ace=1\0', 'latin1'))).message).toMatch(/standard-label/);
  });

  it('rejects a key given twice unless duplicates are allowed (SendTargets responses)', () => {
    const text = nulText('TargetName=iqn.2026-11.a:x', 'TargetAddress=10.0.0.1:3260,1', 'TargetName=iqn.2026-11.a:y');
    expect(decodeErrorOf(() => parseTextPairs(text)).message).toMatch(/given twice/);
    expect(decodeErrorOf(() => parseTextData(text)).offset).toBe('TargetName=iqn.2026-11.a:x\0TargetAddress=10.0.0.1:3260,1\0'.length);
    expect(parseTextPairs(text, { allowDuplicateKeys: true }).map(([k]) => k)).toEqual(['TargetName', 'TargetAddress', 'TargetName']);
  });

  it('bounds key names at 63 characters', () => {
    const k63 = `K${'e'.repeat(MAX_KEY_LENGTH - 1)}`;
    expect(parseTextPairs(nulText(`${k63}=v`))[0][0]).toBe(k63);
    expect(decodeErrorOf(() => parseTextPairs(nulText(`${k63}e=v`))).message).toMatch(/64 characters/);
    expect(isValidKey(k63)).toBe(true);
    expect(isValidKey(`${k63}e`)).toBe(false);
  });

  it('bounds values at 255 bytes, and large binary values (CHAP_C, CHAP_R) at 8192', () => {
    const v255 = 'a'.repeat(MAX_VALUE_LENGTH);
    expect(parseTextPairs(nulText(`TargetAlias=${v255}`))[0][1]).toBe(v255);
    const e = decodeErrorOf(() => parseTextPairs(nulText(`TargetAlias=${v255}a`)));
    expect(e.offset).toBe('TargetAlias='.length);
    // 255 bytes means bytes: 128 two-byte characters are 256 bytes.
    expect(() => parseTextPairs(nulText(`TargetAlias=${'é'.repeat(128)}`))).toThrow(DecodeError);
    // A 1024-byte CHAP challenge in hex (RFC 7143 12.1.3's limit) is 2050 characters.
    const c1024 = `0x${'ab'.repeat(1024)}`;
    expect(parseTextPairs(nulText(`CHAP_C=${c1024}`))[0][1]).toBe(c1024);
    expect(() => parseTextPairs(nulText(`CHAP_R=0x${'a'.repeat(MAX_LARGE_VALUE_LENGTH)}`))).toThrow(DecodeError);
  });

  it('rejects values that are not UTF-8', () => {
    const bad = Buffer.concat([Buffer.from('TargetAlias=', 'latin1'), Buffer.from([0xc3, 0x28]), Buffer.alloc(1)]);
    const e = decodeErrorOf(() => parseTextPairs(bad));
    expect(e.message).toMatch(/UTF-8/);
    expect(e.offset).toBe('TargetAlias='.length);
    expect(() => parseTextPairs(Buffer.from([0x41, 0x3d, 0xff, 0x00]))).toThrow(DecodeError);
  });

  it('refuses to encode what it could not decode', () => {
    expect(() => encodeTextData([['bad key', 'v']])).toThrow(EncodeError);
    expect(() => encodeTextData([['Key', 'a\0b']])).toThrow(EncodeError);
    expect(() => encodeTextData([['TargetAlias', 'x'.repeat(256)]])).toThrow(EncodeError);
    expect(() => encodeTextData([['CHAP_C', `0x${'00'.repeat(1024)}`]])).not.toThrow();
  });

  it('is a total decoder: random and mutated bytes give pairs or a DecodeError', () => {
    assertTotalDecoder((b) => parseTextPairs(b), LIBISCSI_1_19_LEADING_LOGIN, 1000);
  });

  it('round-trips random valid pairs', () => {
    const key = fc.oneof(
      fc.stringMatching(/^[A-Z][A-Za-z0-9.\-+@_]{0,62}$/),
      fc.stringMatching(/^X-[a-z.]{1,20}$/),
      fc.stringMatching(/^X#[A-Za-z]{1,20}$/),
    );
    const value = fc.string({ maxLength: 60, unit: 'grapheme' }).filter((s) => !s.includes('\0') && Buffer.byteLength(s) <= 255);
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(key, value), { selector: ([k]) => k, maxLength: 20 }), (pairs) => {
        const bytes = encodeTextData(pairs);
        expect(parseTextPairs(bytes)).toEqual(pairs);
      }),
      { numRuns: 300 },
    );
  });
});

describe('TextAccumulator (C bit, RFC 7143 11.12.2)', () => {
  it('gathers a pair cut across PDUs and hands the whole text back on C=0', () => {
    const acc = new TextAccumulator();
    const whole = LIBISCSI_1_19_LEADING_LOGIN;
    const [a, b, c] = [whole.subarray(0, 10), whole.subarray(10, 100), whole.subarray(100)];
    expect(acc.push(a, true)).toBeUndefined();
    expect(acc.inProgress).toBe(true);
    expect(acc.push(b, true)).toBeUndefined();
    expect(acc.pending).toBe(100);
    const got = acc.push(c, false)!;
    expect(got.equals(whole)).toBe(true);
    expect(acc.inProgress).toBe(false);
    expect(parseTextPairs(got)).toHaveLength(19);
  });

  it('passes a single PDU through', () => {
    const acc = new TextAccumulator();
    expect(acc.push(LIBISCSI_1_19_LEADING_LOGIN, false)!.equals(LIBISCSI_1_19_LEADING_LOGIN)).toBe(true);
  });

  it('refuses text beyond its bound, then starts afresh', () => {
    const acc = new TextAccumulator(16);
    acc.push(Buffer.alloc(10, 0x41), true);
    const e = decodeErrorOf(() => acc.push(Buffer.alloc(7, 0x41), true));
    expect(e.offset).toBe(10);
    expect(acc.pending).toBe(0);
    expect(acc.push(Buffer.from('A=1\0'), false)!.toString()).toBe('A=1\0');
  });

  it('splits for C-bit sequences and gathers back, at every segment size', () => {
    const whole = LIBISCSI_1_19_LEADING_LOGIN;
    for (let size = 1; size <= whole.length + 1; size += 7) {
      const pieces = splitTextData(whole, size);
      expect(pieces.every((p) => p.length <= size)).toBe(true);
      const acc = new TextAccumulator();
      let out: Buffer | undefined;
      pieces.forEach((p, i) => {
        out = acc.push(p, i < pieces.length - 1);
      });
      expect(out!.equals(whole)).toBe(true);
    }
    expect(splitTextData(Buffer.alloc(0), 8192)).toEqual([Buffer.alloc(0)]);
    expect(() => splitTextData(whole, 0)).toThrow(EncodeError);
  });
});

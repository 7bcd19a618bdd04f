import { createHash, getHashes } from 'node:crypto';
import fc from 'fast-check';
import {
  CHAP_ALGORITHMS,
  ChapAlgorithm,
  ChapAuthenticator,
  chapResponse,
  decodeChapBinary,
  encodeChapBinary,
  parseChapIdentifier,
  responsesEqual,
  selectChapAlgorithm,
  validateChapCredentials,
  type ChapCredentials,
} from '../../../../src/target/iscsi/chap';

// RFC 1994 4.1: Response = H(Identifier || secret || Challenge). Identifier 0x01, secret
// "chap-secret-1", challenge 00 01 .. 0f. Digests computed outside this code base:
//   printf '\x01chap-secret-1\x00\x01...\x0f' | md5sum / openssl dgst -sha1 / -sha256 / -sha3-256
const CHALLENGE = Buffer.from([...Array(16).keys()]);
const VECTORS: Array<[number, string]> = [
  [ChapAlgorithm.MD5, 'fbb0204307f411bf58ec219709260efa'],
  [ChapAlgorithm.SHA1, '2d71bea52fb3b85c1dda5d7415a1adc2333b87d1'],
  [ChapAlgorithm.SHA256, 'fcc0a97efe000b95b37710a0059108d1644a65f5e031a3e108e5d69afc202c4d'],
  [ChapAlgorithm.SHA3_256, '31d90cb3733b3d4c7e2cb93709ef9715873fd5e0a4a9e90a2d3c79254032833d'],
];

/** A deterministic random source: bytes counting up from `start`. */
function counter(start: number): (n: number) => Buffer {
  let next = start;
  return (n) => Buffer.from(Array.from({ length: n }, () => next++ & 0xff));
}

/** The initiator's side of RFC 1994, computed independently of chap.ts. */
function initiatorResponse(hash: string, id: number, secret: string, challenge: Buffer): Buffer {
  return createHash(hash).update(Buffer.of(id)).update(secret).update(challenge).digest();
}

const CRED: ChapCredentials = { user: 'alice', secret: 'initiator-secret-1', mutualUser: 'iqn.2026-11.test:disk', mutualSecret: 'target-secret-22' };

describe('CHAP responses (RFC 1994, RFC 7143 12.1.3)', () => {
  it('offers each of MD5, SHA-1, SHA-256 and SHA3-256 exactly when Node has the hash', () => {
    const have = new Set(getHashes());
    const expected = [[5, 'md5'], [6, 'sha1'], [7, 'sha256'], [8, 'sha3-256']].filter(([, h]) => have.has(h as string)).map(([n]) => n);
    expect([...CHAP_ALGORITHMS.keys()]).toEqual(expected);
    expect(CHAP_ALGORITHMS.has(ChapAlgorithm.MD5)).toBe(true); // every iSCSI target must do MD5 (RFC 7143 12.1.3)
  });

  it.each(VECTORS)('algorithm %i matches the hand-computed vector', (alg, digest) => {
    expect(chapResponse(alg, 1, 'chap-secret-1', CHALLENGE).toString('hex')).toBe(digest);
    expect(chapResponse(alg, 1, Buffer.from('chap-secret-1'), CHALLENGE).toString('hex')).toBe(digest);
  });

  it('refuses identifiers that are not octets and unknown algorithms', () => {
    expect(() => chapResponse(5, 256, 's', CHALLENGE)).toThrow(RangeError);
    expect(() => chapResponse(99, 1, 's', CHALLENGE)).toThrow(RangeError);
  });

  it('encodes 0x-hex and decodes 0x/0X hex and 0b/0B base64', () => {
    expect(encodeChapBinary(Buffer.from([0xde, 0xad]))).toBe('0xdead');
    expect(decodeChapBinary('0xDEad')).toEqual(Buffer.from([0xde, 0xad]));
    expect(decodeChapBinary('0XDEAD')).toEqual(Buffer.from([0xde, 0xad]));
    expect(decodeChapBinary('0b3q0=')).toEqual(Buffer.from([0xde, 0xad]));
    expect(decodeChapBinary('0B3q0=')).toEqual(Buffer.from([0xde, 0xad]));
    for (const bad of ['dead', '0x', '0xabc', '0xzz', '0b', '0b3q0', '0b3q1=', '0b3q0=x', '12345']) {
      expect(decodeChapBinary(bad)).toBeUndefined();
    }
    expect(decodeChapBinary(`0x${'00'.repeat(1024)}`)).toHaveLength(1024);
    expect(decodeChapBinary(`0x${'00'.repeat(1025)}`)).toBeUndefined(); // RFC 7143 12.1.3: at most 1024 bytes
  });

  it('round-trips binary values through hex and base64', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
        const b = Buffer.from(bytes);
        expect(decodeChapBinary(encodeChapBinary(b))).toEqual(b);
        expect(decodeChapBinary(`0b${b.toString('base64')}`)).toEqual(b);
      }),
    );
  });

  it('parses CHAP_I as a decimal or hex octet', () => {
    expect(parseChapIdentifier('0')).toBe(0);
    expect(parseChapIdentifier('255')).toBe(255);
    expect(parseChapIdentifier('0xff')).toBe(255);
    for (const bad of ['256', '-1', '01', '', 'x', '0x100', '1.0']) expect(parseChapIdentifier(bad)).toBeUndefined();
  });

  it('picks the first algorithm of the initiator list that we support', () => {
    expect(selectChapAlgorithm('5', [5, 6, 7, 8])).toBe(5);
    expect(selectChapAlgorithm('7,6,5', [5, 6, 7, 8])).toBe(7);
    expect(selectChapAlgorithm('5,6,7,8', [5, 6, 7, 8])).toBe(5); // libiscsi iSCSICHAP.Simple
    expect(selectChapAlgorithm('8,5', [5])).toBe(5);
    expect(selectChapAlgorithm('56', [5, 6, 7, 8])).toBeUndefined(); // libiscsi iSCSICHAP.Invalid
    expect(selectChapAlgorithm('', [5, 6, 7, 8])).toBeUndefined(); // likewise, CHAP_A=
    expect(selectChapAlgorithm('05,1', [5])).toBeUndefined();
  });

  it('compares responses only when lengths match', () => {
    expect(responsesEqual(Buffer.from('ab'), Buffer.from('ab'))).toBe(true);
    expect(responsesEqual(Buffer.from('ab'), Buffer.from('abc'))).toBe(false);
    expect(responsesEqual(Buffer.from('ab'), Buffer.from('ac'))).toBe(false);
  });
});

describe('CHAP credentials checks', () => {
  it('accepts good credentials silently', () => {
    expect(validateChapCredentials(CRED)).toEqual({ errors: [], warnings: [] });
  });

  it('warns about secrets under 12 bytes, without refusing them', () => {
    const r = validateChapCredentials({ user: 'ronnie', secret: 'password', mutualUser: 't', mutualSecret: 'short' });
    expect(r.errors).toEqual([]);
    expect(r.warnings).toHaveLength(2);
    expect(r.warnings[0]).toMatch(/8 bytes.*12/);
  });

  it('refuses the same secret in both directions (RFC 7143 9.2.1) and half-configured mutual CHAP', () => {
    expect(validateChapCredentials({ user: 'u', secret: 'same-secret-123', mutualUser: 't', mutualSecret: 'same-secret-123' }).errors).toHaveLength(1);
    expect(validateChapCredentials({ user: 'u', secret: 'some-secret-123', mutualUser: 't' }).errors).toHaveLength(1);
    expect(validateChapCredentials({ user: '', secret: '' }).errors).toHaveLength(2);
  });
});

describe('ChapAuthenticator (target side)', () => {
  function challenged(cred = CRED, chapA = '5', random = counter(0x10)): { auth: ChapAuthenticator; id: number; c: Buffer } {
    const auth = new ChapAuthenticator(cred, { random });
    const r = auth.challenge(chapA);
    if (!r.ok) throw new Error(r.reason);
    const keys = new Map(r.keys);
    return { auth, id: Number(keys.get('CHAP_I')), c: decodeChapBinary(keys.get('CHAP_C')!)! };
  }

  it('issues CHAP_A, CHAP_I and a random 16-byte challenge for MD5', () => {
    const auth = new ChapAuthenticator(CRED, { random: counter(0x10) });
    const r = auth.challenge('5');
    expect(r).toEqual({
      ok: true,
      keys: [
        ['CHAP_A', '5'],
        ['CHAP_I', '16'],
        ['CHAP_C', '0x1112131415161718191a1b1c1d1e1f20'],
      ],
    });
    expect(auth.selectedAlgorithm).toBe(5);
  });

  it('makes the challenge at least as long as the digest for SHA-256 and SHA3-256', () => {
    expect(challenged(CRED, '7').c).toHaveLength(32);
    expect(challenged(CRED, '8').c).toHaveLength(32);
    expect(challenged(CRED, '6').c).toHaveLength(20);
  });

  it('draws a new challenge from the real random source each time', () => {
    const a = new ChapAuthenticator(CRED).challenge('5');
    const b = new ChapAuthenticator(CRED).challenge('5');
    expect(a.ok && b.ok && a.keys[2][1] !== b.keys[2][1]).toBe(true);
  });

  it('refuses CHAP_A with no algorithm we support, and CHAP_A twice', () => {
    expect(new ChapAuthenticator(CRED).challenge('56').ok).toBe(false);
    expect(new ChapAuthenticator(CRED, { algorithms: [5] }).challenge('7').ok).toBe(false);
    const { auth } = challenged();
    expect(auth.challenge('5').ok).toBe(false);
  });

  it.each([
    ['MD5', '5', 'md5'],
    ['SHA-1', '6', 'sha1'],
    ['SHA-256', '7', 'sha256'],
    ['SHA3-256', '8', 'sha3-256'],
  ])('accepts a correct one-way %s response, hex or base64', (_name, chapA, hash) => {
    for (const encode of [(b: Buffer) => `0x${b.toString('hex')}`, (b: Buffer) => `0b${b.toString('base64')}`]) {
      const { auth, id, c } = challenged(CRED, chapA);
      const r = initiatorResponse(hash, id, 'initiator-secret-1', c);
      expect(auth.verify(new Map([['CHAP_N', 'alice'], ['CHAP_R', encode(r)]]))).toEqual({ ok: true, keys: [] });
      expect(auth.mutual).toBe(false);
    }
  });

  it('refuses a wrong secret, a wrong name, a missing or malformed response, an oversized one', () => {
    const cases: Array<(id: number, c: Buffer) => Map<string, string>> = [
      (id, c) => new Map([['CHAP_N', 'alice'], ['CHAP_R', encodeChapBinary(initiatorResponse('md5', id, 'wrong-secret-xx', c))]]),
      (id, c) => new Map([['CHAP_N', 'mallory'], ['CHAP_R', encodeChapBinary(initiatorResponse('md5', id, 'initiator-secret-1', c))]]),
      () => new Map([['CHAP_N', 'alice']]),
      () => new Map([['CHAP_N', 'alice'], ['CHAP_R', 'not-hex']]),
      // libiscsi iSCSICHAP.Base64Oversize: extra base64 bytes before the real response
      (id, c) => new Map([['CHAP_N', 'alice'], ['CHAP_R', `0bb3ZlcnNpemUK${initiatorResponse('md5', id, 'initiator-secret-1', c).toString('base64')}`]]),
    ];
    for (const keys of cases) {
      const { auth, id, c } = challenged();
      expect(auth.verify(keys(id, c)).ok).toBe(false);
      // A failed exchange stays failed.
      expect(auth.verify(keys(id, c)).ok).toBe(false);
    }
  });

  it('compares CHAP_N as text: a 0x prefix is not decoded (libiscsi iSCSICHAP.HexName)', () => {
    const cred = { user: '0x616c696365', secret: 'initiator-secret-1' };
    const { auth, id, c } = challenged(cred);
    const r = encodeChapBinary(initiatorResponse('md5', id, 'initiator-secret-1', c));
    expect(auth.verify(new Map([['CHAP_N', '0x616c696365'], ['CHAP_R', r]])).ok).toBe(true);
    const again = challenged(cred);
    const r2 = encodeChapBinary(initiatorResponse('md5', again.id, 'initiator-secret-1', again.c));
    expect(again.auth.verify(new Map([['CHAP_N', 'alice'], ['CHAP_R', r2]])).ok).toBe(false);
  });

  it('refuses a response before the challenge', () => {
    expect(new ChapAuthenticator(CRED).verify(new Map([['CHAP_N', 'alice'], ['CHAP_R', '0x00']])).ok).toBe(false);
  });

  it('answers the initiator challenge with the mutual credentials', () => {
    const { auth, id, c } = challenged();
    const c2 = Buffer.alloc(32, 0x5a);
    const r = auth.verify(
      new Map([
        ['CHAP_N', 'alice'],
        ['CHAP_R', encodeChapBinary(initiatorResponse('md5', id, 'initiator-secret-1', c))],
        ['CHAP_I', '7'],
        ['CHAP_C', encodeChapBinary(c2)],
      ]),
    );
    const expected = initiatorResponse('md5', 7, 'target-secret-22', c2);
    expect(r).toEqual({ ok: true, keys: [['CHAP_N', 'iqn.2026-11.test:disk'], ['CHAP_R', `0x${expected.toString('hex')}`]] });
    expect(auth.mutual).toBe(true);
  });

  it('refuses mutual CHAP without target credentials, half a challenge, a bad identifier', () => {
    const noMutual = { user: 'alice', secret: 'initiator-secret-1' };
    const tries: Array<[ChapCredentials, Array<[string, string]>]> = [
      [noMutual, [['CHAP_I', '1'], ['CHAP_C', '0x0102']]],
      [CRED, [['CHAP_I', '1']]],
      [CRED, [['CHAP_C', '0x0102']]],
      [CRED, [['CHAP_I', '256'], ['CHAP_C', '0x0102']]],
      [CRED, [['CHAP_I', '1'], ['CHAP_C', 'zz']]],
    ];
    for (const [cred, extra] of tries) {
      const { auth, id, c } = challenged(cred);
      const keys = new Map([['CHAP_N', 'alice'], ['CHAP_R', encodeChapBinary(initiatorResponse('md5', id, 'initiator-secret-1', c))], ...extra]);
      expect(auth.verify(keys).ok).toBe(false);
    }
  });

  it('refuses our own challenge reflected back (RFC 7143 9.2.1)', () => {
    const { auth, id, c } = challenged();
    const r = auth.verify(
      new Map([
        ['CHAP_N', 'alice'],
        ['CHAP_R', encodeChapBinary(initiatorResponse('md5', id, 'initiator-secret-1', c))],
        ['CHAP_I', String(id)],
        ['CHAP_C', encodeChapBinary(c)],
      ]),
    );
    expect(r).toEqual({ ok: false, reason: 'the initiator reflected our CHAP_C' });
  });

  it('refuses a response made with the target secret: one secret for both directions (RFC 7143 9.2.1)', () => {
    // Misconfigured on purpose (validateChapCredentials would refuse it): both secrets equal.
    const same = { user: 'alice', secret: 'shared-secret-1', mutualUser: 't', mutualSecret: 'shared-secret-1' };
    const { auth, id, c } = challenged(same);
    const r = auth.verify(new Map([['CHAP_N', 'alice'], ['CHAP_R', encodeChapBinary(initiatorResponse('md5', id, 'shared-secret-1', c))]]));
    expect(r).toEqual({ ok: false, reason: 'the initiator and target CHAP secrets are the same' });
  });
});

/**
 * CHAP for the target's security negotiation stage (RFC 7143 12.1.3, RFC 1994): the target is the
 * authenticator, and with mutual CHAP also answers the initiator's challenge.
 *
 *   I->T  AuthMethod=CHAP,None            (the login machine picks CHAP)
 *   I->T  CHAP_A=<A1,A2,...>              T->I  CHAP_A=<A> CHAP_I=<I> CHAP_C=<C>
 *   I->T  CHAP_N=<N> CHAP_R=<R>           (one-way: T checks R = H(I || secret || C))
 *         [CHAP_I=<I2> CHAP_C=<C2>]       T->I  CHAP_N=<target name> CHAP_R=H(I2 || mutual secret || C2)
 *
 * Pure logic: no sockets; the random source is injectable for tests. Algorithms are the CHAP
 * algorithm numbers libiscsi and LIO use (5 MD5, 6 SHA-1, 7 SHA-256, 8 SHA3-256), offered only
 * when Node's crypto has the hash.
 */
import { createHash, getHashes, randomBytes, timingSafeEqual } from 'node:crypto';

/** CHAP algorithm numbers (CHAP_A), as libiscsi's `enum iscsi_chap_auth` and LIO use them. */
export const enum ChapAlgorithm {
  MD5 = 5,
  SHA1 = 6,
  SHA256 = 7,
  SHA3_256 = 8,
}

export interface ChapAlgorithmInfo {
  readonly name: string;
  /** Node crypto hash name. */
  readonly hash: string;
  /** Response (digest) length in bytes. */
  readonly digestLength: number;
}

const ALL_ALGORITHMS: ReadonlyArray<[number, ChapAlgorithmInfo]> = [
  [ChapAlgorithm.MD5, { name: 'MD5', hash: 'md5', digestLength: 16 }],
  [ChapAlgorithm.SHA1, { name: 'SHA-1', hash: 'sha1', digestLength: 20 }],
  [ChapAlgorithm.SHA256, { name: 'SHA-256', hash: 'sha256', digestLength: 32 }],
  [ChapAlgorithm.SHA3_256, { name: 'SHA3-256', hash: 'sha3-256', digestLength: 32 }],
];

/** The CHAP algorithms this Node build can compute, by number. */
export const CHAP_ALGORITHMS: ReadonlyMap<number, ChapAlgorithmInfo> = (() => {
  const have = new Set(getHashes());
  return new Map(ALL_ALGORITHMS.filter(([, a]) => have.has(a.hash)));
})();

/**
 * RFC 7143 12.1.3: CHAP_C and CHAP_R are large-binary-values whose binary length MUST NOT exceed
 * 1024 bytes.
 */
export const MAX_CHAP_BINARY_LENGTH = 1024;

/** RFC 1994 4.1: the Identifier is one octet. */
export const MAX_CHAP_IDENTIFIER = 255;

/**
 * RFC 7143 9.2.1 asks for CHAP secrets of at least 96 bits (12 bytes) of randomness when the
 * connection is not protected by IPsec; shorter secrets are open to offline dictionary attacks on
 * a captured exchange. We warn rather than refuse: libiscsi documents
 * `LIBISCSI_CHAP_PASSWORD=password` (8 bytes) and test rigs use such secrets.
 */
export const RECOMMENDED_MIN_SECRET_LENGTH = 12;

/** A target's CHAP credentials. `user`/`secret` authenticate the initiator; the mutual pair is
 *  what the target answers with when the initiator authenticates it. */
export interface ChapCredentials {
  user: string;
  secret: string | Buffer;
  mutualUser?: string;
  mutualSecret?: string | Buffer;
}

function secretBytes(s: string | Buffer): Buffer {
  return typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
}

function shortBy(secret: Buffer): string {
  return `${secret.length} bytes; RFC 7143 9.2.1 asks for at least ${RECOMMENDED_MIN_SECRET_LENGTH} random bytes (use a longer secret)`;
}

/**
 * Configuration checks. `errors` make the credentials unusable: RFC 7143 9.2.1 forbids the same
 * secret in both directions (the target would answer its own challenge reflected back with the
 * initiator's response). `warnings` are for logs (short secrets).
 */
export function validateChapCredentials(cred: ChapCredentials): { errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  if (cred.user.length === 0) errors.push('CHAP user name is empty');
  const secret = secretBytes(cred.secret);
  if (secret.length === 0) errors.push('CHAP secret is empty');
  else if (secret.length < RECOMMENDED_MIN_SECRET_LENGTH) {
    warnings.push(`CHAP secret of ${cred.user} is ${shortBy(secret)}`);
  }
  const hasMutualUser = cred.mutualUser !== undefined;
  const hasMutualSecret = cred.mutualSecret !== undefined;
  if (hasMutualUser !== hasMutualSecret) errors.push('mutual CHAP needs both a user name and a secret');
  if (cred.mutualSecret !== undefined && cred.mutualUser !== undefined) {
    const mutual = secretBytes(cred.mutualSecret);
    if (cred.mutualUser.length === 0) errors.push('mutual CHAP user name is empty');
    if (mutual.length === 0) errors.push('mutual CHAP secret is empty');
    else if (mutual.length < RECOMMENDED_MIN_SECRET_LENGTH) {
      warnings.push(`mutual CHAP secret of ${cred.mutualUser} is ${shortBy(mutual)}`);
    }
    if (mutual.length > 0 && mutual.equals(secret)) {
      errors.push('the mutual CHAP secret equals the initiator secret (RFC 7143 9.2.1: each direction needs its own)');
    }
  }
  return { errors, warnings };
}

/** RFC 1994 4.1: Response = H(Identifier || secret || Challenge). */
export function chapResponse(algorithm: number, identifier: number, secret: string | Buffer, challenge: Buffer): Buffer {
  const info = CHAP_ALGORITHMS.get(algorithm);
  if (!info) throw new RangeError(`CHAP algorithm ${algorithm} is not supported`);
  if (!Number.isInteger(identifier) || identifier < 0 || identifier > MAX_CHAP_IDENTIFIER) {
    throw new RangeError(`CHAP identifier ${identifier} is not an octet`);
  }
  return createHash(info.hash).update(Buffer.of(identifier)).update(secretBytes(secret)).update(challenge).digest();
}

/** Encodes a binary CHAP value as a hex-constant ("0x..."), the form libiscsi parses. */
export function encodeChapBinary(value: Buffer): string {
  return `0x${value.toString('hex')}`;
}

const HEX = /^0[xX]((?:[0-9a-fA-F]{2})+)$/;
const BASE64 = /^0[bB]([A-Za-z0-9+/]+={0,2})$/;

/**
 * Decodes a large-binary-value (RFC 7143 6.1): a hex-constant "0x..." or a base64-constant
 * "0b...". Returns undefined for anything else, for non-canonical base64, and for values longer
 * than `maxBytes` once decoded.
 */
export function decodeChapBinary(value: string, maxBytes = MAX_CHAP_BINARY_LENGTH): Buffer | undefined {
  let bytes: Buffer;
  const h = HEX.exec(value);
  if (h) {
    bytes = Buffer.from(h[1], 'hex');
  } else {
    const b = BASE64.exec(value);
    if (!b || b[1].length % 4 !== 0) return undefined;
    bytes = Buffer.from(b[1], 'base64');
    // Node's decoder skips what it does not understand: insist that the text round-trips.
    if (bytes.toString('base64') !== b[1]) return undefined;
  }
  if (bytes.length === 0 || bytes.length > maxBytes) return undefined;
  return bytes;
}

/** Parses CHAP_I: a decimal or hex numerical value (RFC 7143 6.1) from 0 to 255. */
export function parseChapIdentifier(value: string): number | undefined {
  let n: number;
  if (/^(?:0|[1-9][0-9]{0,2})$/.test(value)) n = Number(value);
  else if (/^0[xX][0-9a-fA-F]{1,2}$/.test(value)) n = parseInt(value.slice(2), 16);
  else return undefined;
  return n <= MAX_CHAP_IDENTIFIER ? n : undefined;
}

/**
 * List negotiation of CHAP_A (RFC 7143 6.2.1, 12.1.3): the first algorithm of the initiator's list
 * that we support. Values that are not plain decimal numbers are ignored (so "56" never reads as
 * 5, the case libiscsi's iSCSICHAP.Invalid test sends).
 */
export function selectChapAlgorithm(offer: string, supported: readonly number[]): number | undefined {
  for (const v of offer.split(',')) {
    if (!/^[1-9][0-9]{0,4}$/.test(v)) continue;
    const n = Number(v);
    if (supported.includes(n) && CHAP_ALGORITHMS.has(n)) return n;
  }
  return undefined;
}

/** Compares two responses in constant time for equal lengths. */
export function responsesEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export type ChapStepResult =
  | { ok: true; keys: Array<[string, string]> }
  | { ok: false; reason: string };

export interface ChapAuthenticatorOptions {
  /** Algorithms we accept, any order (the initiator's order decides). Default: all available. */
  algorithms?: readonly number[];
  /** Random bytes (challenge and identifier); tests inject a fixed source. */
  random?: (n: number) => Buffer;
}

/**
 * The target side of one CHAP exchange on one connection. Call {@link challenge} with the
 * initiator's CHAP_A, then {@link verify} with its CHAP_N/CHAP_R (and CHAP_I/CHAP_C for mutual).
 */
export class ChapAuthenticator {
  private readonly algorithms: readonly number[];
  private readonly random: (n: number) => Buffer;
  private algorithm?: number;
  private identifier?: number;
  private ourChallenge?: Buffer;
  private finished = false;
  private mutualRequested = false;

  constructor(
    private readonly cred: ChapCredentials,
    opts: ChapAuthenticatorOptions = {},
  ) {
    this.algorithms = opts.algorithms ?? [...CHAP_ALGORITHMS.keys()];
    this.random = opts.random ?? randomBytes;
  }

  /** The chosen algorithm, once {@link challenge} succeeded. */
  get selectedAlgorithm(): number | undefined {
    return this.algorithm;
  }

  /** Whether the initiator asked to authenticate the target (known after {@link verify}). */
  get mutual(): boolean {
    return this.mutualRequested;
  }

  /**
   * Step 2: picks the algorithm from the initiator's CHAP_A list and issues CHAP_A, CHAP_I and a
   * fresh random CHAP_C (16 bytes for MD5, the digest length for the others).
   */
  challenge(chapA: string): ChapStepResult {
    if (this.algorithm !== undefined) return { ok: false, reason: 'CHAP_A sent twice' };
    const algorithm = selectChapAlgorithm(chapA, this.algorithms);
    if (algorithm === undefined) {
      return { ok: false, reason: `no supported CHAP algorithm in CHAP_A=${chapA} (we accept ${this.algorithms.join(',')})` };
    }
    const info = CHAP_ALGORITHMS.get(algorithm)!;
    this.algorithm = algorithm;
    this.identifier = this.random(1)[0];
    this.ourChallenge = Buffer.from(this.random(Math.max(16, info.digestLength)));
    return {
      ok: true,
      keys: [
        ['CHAP_A', String(algorithm)],
        ['CHAP_I', String(this.identifier)],
        ['CHAP_C', encodeChapBinary(this.ourChallenge)],
      ],
    };
  }

  /**
   * Step 3: checks CHAP_N and CHAP_R; with CHAP_I and CHAP_C present, answers the initiator's
   * challenge with the mutual credentials. Any failure is final.
   */
  verify(keys: ReadonlyMap<string, string>): ChapStepResult {
    const fail = (reason: string): ChapStepResult => {
      this.finished = true;
      return { ok: false, reason };
    };
    if (this.finished) return fail('CHAP exchange already finished');
    if (this.algorithm === undefined || this.identifier === undefined || this.ourChallenge === undefined) {
      return fail('CHAP_N/CHAP_R before CHAP_A');
    }
    this.finished = true;
    const name = keys.get('CHAP_N');
    const r = keys.get('CHAP_R');
    if (name === undefined || r === undefined) return fail('CHAP_N and CHAP_R are both required');
    const received = decodeChapBinary(r);
    if (received === undefined) return fail('CHAP_R is not a hex or base64 constant');
    // CHAP_N is a text string (RFC 7143 12.1.3): compared as sent, never decoded.
    const nameOk = name === this.cred.user;
    const expected = chapResponse(this.algorithm, this.identifier, this.cred.secret, this.ourChallenge);
    const responseOk = responsesEqual(expected, received);
    if (!nameOk || !responseOk) return fail(nameOk ? 'CHAP_R does not match' : `unknown CHAP_N ${JSON.stringify(name)}`);

    // RFC 7143 9.2.1: a response equal to the one we would compute with our own (mutual) secret
    // means both directions share a secret: authentication failure.
    if (this.cred.mutualSecret !== undefined) {
      const ownAnswer = chapResponse(this.algorithm, this.identifier, this.cred.mutualSecret, this.ourChallenge);
      if (responsesEqual(ownAnswer, received)) return fail('the initiator and target CHAP secrets are the same');
    }

    const i2 = keys.get('CHAP_I');
    const c2 = keys.get('CHAP_C');
    if (i2 === undefined && c2 === undefined) return { ok: true, keys: [] };
    if (i2 === undefined || c2 === undefined) return fail('mutual CHAP needs both CHAP_I and CHAP_C');
    this.mutualRequested = true;
    if (this.cred.mutualUser === undefined || this.cred.mutualSecret === undefined) {
      return fail('the initiator asks to authenticate the target, but no mutual CHAP credentials are configured');
    }
    const id2 = parseChapIdentifier(i2);
    if (id2 === undefined) return fail(`CHAP_I=${i2} is not an octet`);
    const challenge2 = decodeChapBinary(c2);
    if (challenge2 === undefined) return fail('CHAP_C is not a hex or base64 constant');
    // RFC 7143 9.2.1: the originator MUST NOT reuse the responder's challenge for the other
    // direction, and the responder MUST check for it (a reflection attack).
    if (challenge2.equals(this.ourChallenge)) return fail('the initiator reflected our CHAP_C');
    const answer = chapResponse(this.algorithm, id2, this.cred.mutualSecret, challenge2);
    return {
      ok: true,
      keys: [
        ['CHAP_N', this.cred.mutualUser],
        ['CHAP_R', encodeChapBinary(answer)],
      ],
    };
  }
}

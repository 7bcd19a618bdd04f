/**
 * iSCSI text data (RFC 7143 6.1): the `key=value` pairs carried in the data segment of Login and
 * Text PDUs, each pair followed by one NUL byte.
 *
 * Pure codec, no I/O. Decoders return a value or throw DecodeError (with the byte offset of the
 * pair found wrong); encoders throw EncodeError. Text split over several PDUs with the C
 * (continue) bit is gathered by the caller with {@link TextAccumulator} before it is parsed, since
 * a pair may straddle two PDUs (RFC 7143 11.10.2, 11.12.2).
 */
import { DecodeError, EncodeError } from '../../errors';

const STRUCTURE = 'iSCSI text data';

/** RFC 7143 6.1: a key name is a standard-label of at most 63 characters. */
export const MAX_KEY_LENGTH = 63;

/**
 * RFC 7143 6.1: "The maximum length of an individual value (not its encoded representation) is 255
 * bytes, not including the delimiter". Measured here on the UTF-8 bytes of the value as sent.
 */
export const MAX_VALUE_LENGTH = 255;

/**
 * Bound for the values of the keys in {@link LARGE_VALUE_KEYS}: the large-binary-values of the
 * authentication methods (RFC 7143 6.1, 12.1). CHAP_C and CHAP_R may be up to 1024 bytes of binary
 * (RFC 7143 12.1.3), i.e. "0x" + 2048 hex digits; 8192 leaves room for the other methods' items.
 */
export const MAX_LARGE_VALUE_LENGTH = 8192;

/**
 * Keys whose value is a large-binary-value and so may exceed {@link MAX_VALUE_LENGTH} (RFC 7143
 * 12.1.2 SRP, 12.1.3 CHAP, and the KRB5/SPKM items of 12.1.1).
 */
export const LARGE_VALUE_KEYS: ReadonlySet<string> = new Set([
  'CHAP_C',
  'CHAP_R',
  'SRP_s',
  'SRP_A',
  'SRP_B',
  'SRP_M',
  'SRP_HM',
  'KRB_AP_REQ',
  'KRB_AP_REP',
  'SPKM_REQ',
  'SPKM_ERROR',
  'SPKM_REP_TI',
  'SPKM_REP_IT',
]);

/**
 * Default bound of one negotiation's gathered text (all PDUs of one C-bit sequence). RFC 7143 6.1:
 * implementations MUST accept at least 8192 bytes of key=value data, and 64 KiB when the
 * authentication method carries long items.
 */
export const DEFAULT_MAX_TEXT_BYTES = 65536;

/**
 * RFC 7143 6.1 key syntax: a standard-label (a capital letter, then letters, digits, '.', '-', '+',
 * '@', '_'), which covers the private extension keys "X-reversed.domain.Key" (13.22); the public
 * extension keys, "X#" followed by an IANA-registered name (RFC 4850's X#NodeArchitecture); and, as
 * an exception to the capital letter, "iSCSI..." keys such as RFC 7144's iSCSIProtocolLevel.
 */
const KEY_SYNTAX = /^(?:[A-Z][A-Za-z0-9.\-+@_]*|iSCSI[A-Za-z0-9.\-+@_]*|X#[A-Za-z0-9.\-+@_]+)$/;

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** One key=value pair. */
export type TextPair = [key: string, value: string];

/** Whether `key` is a syntactically valid key name (RFC 7143 6.1). */
export function isValidKey(key: string): boolean {
  return key.length <= MAX_KEY_LENGTH && KEY_SYNTAX.test(key);
}

/** The largest value length (UTF-8 bytes) allowed for `key`. */
export function maxValueLength(key: string): number {
  return LARGE_VALUE_KEYS.has(key) ? MAX_LARGE_VALUE_LENGTH : MAX_VALUE_LENGTH;
}

export interface ParseTextOptions {
  /**
   * Accept a key more than once. Only responses may repeat keys, and only those that say so (a
   * SendTargets response repeats TargetName and TargetAddress, RFC 7143 13.3); a request that
   * repeats a key is a protocol error (RFC 7143 6.3).
   */
  allowDuplicateKeys?: boolean;
}

/**
 * Decodes text data into its pairs, in order. Every pair, the last included, must end with a NUL
 * (RFC 7143 6.1); zero bytes after the last pair are tolerated (a data segment passed in with its
 * padding), an empty pair between two others is not.
 */
export function parseTextPairs(data: Buffer, opts: ParseTextOptions = {}): TextPair[] {
  const pairs: TextPair[] = [];
  const seen = new Set<string>();
  let end = data.length;
  while (end > 0 && data[end - 1] === 0 && (end < 2 || data[end - 2] === 0)) end--;
  let pos = 0;
  while (pos < end) {
    const nul = data.indexOf(0, pos);
    if (nul < 0 || nul >= end) {
      throw new DecodeError(STRUCTURE, pos, 'the last key=value pair is not terminated by a NUL byte');
    }
    if (nul === pos) throw new DecodeError(STRUCTURE, pos, 'empty key=value pair (two NUL bytes in a row)');
    const eq = data.indexOf(0x3d, pos);
    if (eq < 0 || eq > nul) throw new DecodeError(STRUCTURE, pos, 'key=value pair without "="');
    const key = data.toString('latin1', pos, eq);
    if (key.length === 0) throw new DecodeError(STRUCTURE, pos, 'empty key name');
    if (key.length > MAX_KEY_LENGTH) {
      throw new DecodeError(STRUCTURE, pos, `key name of ${key.length} characters (at most ${MAX_KEY_LENGTH}, RFC 7143 6.1)`);
    }
    if (!KEY_SYNTAX.test(key)) {
      throw new DecodeError(STRUCTURE, pos, `key name ${JSON.stringify(key)} is not a standard-label (RFC 7143 6.1)`);
    }
    const valueLength = nul - eq - 1;
    const max = maxValueLength(key);
    if (valueLength > max) {
      throw new DecodeError(STRUCTURE, eq + 1, `value of ${key} is ${valueLength} bytes (at most ${max}, RFC 7143 6.1)`);
    }
    let value: string;
    try {
      value = UTF8.decode(data.subarray(eq + 1, nul));
    } catch {
      throw new DecodeError(STRUCTURE, eq + 1, `value of ${key} is not valid UTF-8`);
    }
    if (seen.has(key) && !opts.allowDuplicateKeys) {
      throw new DecodeError(STRUCTURE, pos, `key ${key} given twice (RFC 7143 6.3)`);
    }
    seen.add(key);
    pairs.push([key, value]);
    pos = nul + 1;
  }
  return pairs;
}

/** Decodes text data into a map (a key given twice is a DecodeError). */
export function parseTextData(data: Buffer): Map<string, string> {
  return new Map(parseTextPairs(data));
}

/**
 * Encodes pairs as text data: `key=value` NUL, in the order given. Values may contain '=' (base64
 * constants end with it) but not NUL.
 */
export function encodeTextData(pairs: Iterable<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of pairs) {
    if (!isValidKey(key)) throw new EncodeError(STRUCTURE, 'key', `${JSON.stringify(key)} is not a valid key name (RFC 7143 6.1)`);
    if (value.includes('\0')) throw new EncodeError(STRUCTURE, key, 'value contains a NUL character');
    const v = Buffer.from(value, 'utf8');
    const max = maxValueLength(key);
    if (v.length > max) throw new EncodeError(STRUCTURE, key, `value is ${v.length} bytes (at most ${max})`);
    parts.push(Buffer.from(`${key}=`, 'latin1'), v, Buffer.alloc(1));
  }
  return Buffer.concat(parts);
}

/**
 * Gathers the data segments of a sequence of Login or Text PDUs joined by the C (continue) bit
 * (RFC 7143 11.10.2, 11.12.2): push each PDU's data; the whole text comes back with the PDU whose
 * C bit is 0. One accumulator per direction and connection.
 */
export class TextAccumulator {
  private parts: Buffer[] = [];
  private total = 0;

  constructor(readonly maxBytes = DEFAULT_MAX_TEXT_BYTES) {}

  /**
   * Adds one PDU's data segment. Returns the gathered text when `continues` is false (C = 0), and
   * undefined while more is to come. Throws DecodeError when the text outgrows `maxBytes` (the
   * accumulator is then empty again).
   */
  push(data: Buffer, continues: boolean): Buffer | undefined {
    if (this.total + data.length > this.maxBytes) {
      const at = this.total;
      this.reset();
      throw new DecodeError(STRUCTURE, at, `text continued over several PDUs exceeds ${this.maxBytes} bytes`);
    }
    this.parts.push(data);
    this.total += data.length;
    if (continues) return undefined;
    const whole = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.total);
    this.reset();
    return whole;
  }

  /** Bytes gathered so far of an unfinished sequence. */
  get pending(): number {
    return this.total;
  }

  /** Whether a sequence is under way (a PDU with C = 1 was pushed and the last one not yet). */
  get inProgress(): boolean {
    return this.parts.length > 0;
  }

  reset(): void {
    this.parts = [];
    this.total = 0;
  }
}

/**
 * Cuts text data into data segments of at most `maxSegmentLength` bytes for a sequence of PDUs
 * joined by the C bit: every piece but the last goes out with C = 1. During login the peer's
 * MaxRecvDataSegmentLength is still the default, 8192 (RFC 7143 13.12). Empty text gives one
 * empty piece.
 */
export function splitTextData(data: Buffer, maxSegmentLength: number): Buffer[] {
  if (!Number.isSafeInteger(maxSegmentLength) || maxSegmentLength < 1) {
    throw new EncodeError(STRUCTURE, 'maxSegmentLength', `must be a positive integer, got ${maxSegmentLength}`);
  }
  if (data.length === 0) return [data];
  const pieces: Buffer[] = [];
  for (let pos = 0; pos < data.length; pos += maxSegmentLength) {
    pieces.push(data.subarray(pos, Math.min(pos + maxSegmentLength, data.length)));
  }
  return pieces;
}

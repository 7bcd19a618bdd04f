/**
 * Helpers for codec tests: golden bytes written as commented hex, and the "total decoder"
 * property (random and mutated inputs give a value or a DecodeError, never anything else).
 */
import fc from 'fast-check';
import { DecodeError } from '../../src/errors';

/**
 * Golden bytes from commented hex: `#` starts a comment to the end of the line, whitespace is
 * ignored. Write one field per line with the standard's name beside it.
 */
export function hex(text: string): Buffer {
  const digits = text
    .split('\n')
    .map((line) => line.replace(/#.*$/, ''))
    .join('')
    .replace(/\s+/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`bad golden hex: ${digits}`);
  return Buffer.from(digits, 'hex');
}

/** The DecodeError `fn` throws; rethrows any other error, and fails if `fn` returns. */
export function decodeErrorOf(fn: () => unknown): DecodeError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DecodeError) return err;
    throw err;
  }
  throw new Error('expected a DecodeError');
}

/** The byte offset of the DecodeError `fn` throws (see {@link decodeErrorOf}). */
export function offsetOf(fn: () => unknown): number {
  return decodeErrorOf(fn).offset;
}

/** Calls `decode`; passes if it returns or throws a DecodeError, rethrows anything else. */
export function decodesOrRejects<T>(decode: (b: Buffer) => T, input: Buffer): void {
  try {
    decode(input);
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
    if (!(err.offset >= 0)) throw new Error(`DecodeError without a byte offset: ${err.message}`);
  }
}

/**
 * Property: for random buffers and for mutations of a valid `sample` (bytes flipped, cut short,
 * extended), `decode` returns a value or throws a typed DecodeError naming a byte offset.
 */
export function assertTotalDecoder<T>(decode: (b: Buffer) => T, sample: Buffer, numRuns = 2000): void {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: Math.max(64, sample.length * 2) }), (bytes) => {
      decodesOrRejects(decode, Buffer.from(bytes));
    }),
    { numRuns },
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(sample.length > 0 ? sample.length - 1 : 0), fc.integer({ min: 0, max: 255 })), {
        maxLength: 8,
      }),
      fc.integer({ min: 0, max: sample.length + 8 }),
      (flips, cut) => {
        const b = Buffer.alloc(Math.max(cut, 0));
        sample.copy(b, 0, 0, Math.min(cut, sample.length));
        for (const [i, v] of flips) if (i < b.length) b[i] = v;
        decodesOrRejects(decode, b);
      },
    ),
    { numRuns },
  );
}

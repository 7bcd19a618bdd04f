/**
 * Field checks and ASCII text helpers shared by the SCSI codecs of this folder.
 *
 * Two families of range checks, each keeping the EncodeError message its codecs have always
 * given: `checkUint` / `checkBigUint` take a field width in bits ("… does not fit N bits");
 * `uintUpTo` / `bigUintUpTo` take the largest value and return the value checked ("must be an
 * integer in 0..max, got …").
 */
import { EncodeError } from '../errors';

/** Largest values of 32- and 64-bit fields, as bigints (for `bigUintUpTo`). */
export const UINT32_MAX = 0xffff_ffffn;
export const UINT64_MAX = 0xffff_ffff_ffff_ffffn;

/** True when `value` is an integer in 0..max. */
export function isUintUpTo(value: number, max: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= max;
}

/** EncodeError unless `value` is an integer in [0, 2^bits). */
export function checkUint(structure: string, field: string, value: number, bits: number): void {
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** bits) {
    throw new EncodeError(structure, field, `${value} does not fit ${bits} bits`);
  }
}

/** EncodeError unless `value` is a bigint in [0, 2^bits). */
export function checkBigUint(structure: string, field: string, value: bigint, bits: number): void {
  if (typeof value !== 'bigint' || value < 0n || value >= 1n << BigInt(bits)) {
    throw new EncodeError(structure, field, `${String(value)} does not fit ${bits} bits`);
  }
}

/**
 * `value` if it is an integer in 0..max, else EncodeError. An omitted value (undefined or null)
 * is 0, unless `required`.
 */
export function uintUpTo(
  structure: string,
  field: string,
  value: number | undefined,
  max: number,
  required = false,
): number {
  const v = value ?? (required ? NaN : 0);
  if (!isUintUpTo(v, max)) {
    throw new EncodeError(structure, field, `must be an integer in 0..${max}, got ${String(value)}`);
  }
  return v;
}

/** `value` if it is a bigint in 0..max, else EncodeError; `maxText` is how the message writes max. */
export function bigUintUpTo(
  structure: string,
  field: string,
  value: bigint,
  max: bigint,
  maxText = String(max),
): bigint {
  if (typeof value !== 'bigint' || value < 0n || value > max) {
    throw new EncodeError(structure, field, `must be a bigint in 0..${maxText}, got ${String(value)}`);
  }
  return value;
}

/** Printable ASCII (20h–7Eh) bytes of `text`, or EncodeError. */
export function asciiBytes(structure: string, field: string, text: string): Buffer {
  if (!/^[\x20-\x7e]*$/.test(text)) throw new EncodeError(structure, field, 'must be printable ASCII');
  return Buffer.from(text, 'latin1');
}

/** Text of an ASCII field with trailing (and, if `both`, leading) spaces and NULs removed. */
export function trimAscii(bytes: Buffer, both: boolean, encoding: 'latin1' | 'utf8' = 'latin1'): string {
  const text = bytes.toString(encoding);
  const end = text.replace(/[\s\0]+$/, '');
  return both ? end.replace(/^[\s\0]+/, '') : end;
}

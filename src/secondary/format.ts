/**
 * The on-disk layout of a secondary LUN (docs/secondary-format.md is the reference; the byte
 * offsets cited below are those of its tables): the image at LBA 0, in append mode the copied
 * OBF log after it, then the metadata area (two header slots, the extent hash table, the
 * table-of-contents reserve), and a trailer in the LUN's last block that locates the metadata
 * area. A restore, a verify or a catalog rebuild needs nothing but the secondary LUN.
 *
 * Pure codecs and arithmetic, no I/O. Binary integers are big-endian, including the CRCs;
 * CRC32C is the iSCSI/Castagnoli CRC of src/native/crc32c.ts. A header slot's record is UTF-8
 * JSON behind a binary header; its bigints are decimal strings.
 *
 * Decoders throw only DecodeError (an unknown version: SecondaryVersionError; no valid slot:
 * NoValidHeaderError); encoders only EncodeError; planLayout and the other arithmetic throw
 * ArgumentError for bad parameters.
 */
import { createHash } from 'node:crypto';
import { ArgumentError, DecodeError, EncodeError } from '../errors';
import { crc32c } from '../native/crc32c';

const SLOT = 'secondary header slot';
const TRAILER = 'secondary trailer';
const HASHES = 'secondary hash table';

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

/** The one format version this code reads and writes (header slot and trailer bytes 8–9). */
export const SECONDARY_FORMAT_VERSION = 1;
/** Extent size of the hash table unless a backup chooses another (a multiple of the block size). */
export const DEFAULT_HASH_EXTENT_BYTES = 1024 * 1024; // 1 MiB
/** Largest extent size (one extent is hashed from one buffer). */
export const MAX_HASH_EXTENT_BYTES = 1024 * 1024 * 1024; // 1 GiB
/** Most extents a layout may have (the hash table of 2^32 − 1 extents is 128 GiB). */
export const MAX_HASH_EXTENTS = 0xffff_ffff;
/** Header slot magic, bytes 0–7: ASCII "XCAGSEC1" (xcopy-agent secondary). */
export const SECONDARY_SLOT_MAGIC: Buffer = Buffer.from('XCAGSEC1', 'latin1');
/** Trailer magic, bytes 0–7: ASCII "XCAGTRL1" (xcopy-agent trailer). */
export const SECONDARY_TRAILER_MAGIC: Buffer = Buffer.from('XCAGTRL1', 'latin1');
/** Bytes of one header slot before rounding up to whole blocks. */
export const SECONDARY_SLOT_BYTES = 4096;
/** The binary part of a header slot (bytes 10–11); the JSON body follows it. */
export const SECONDARY_SLOT_HEADER_LENGTH = 32;
/** Byte offset of the header slot CRC (over bytes 0–27, continued over the body). */
export const SECONDARY_SLOT_CRC_OFFSET = 28;
/** Defined bytes of the trailer (bytes 10–11); the rest of its block is zero. */
export const SECONDARY_TRAILER_LENGTH = 64;
/** Byte offset of the trailer CRC (over bytes 0–59). */
export const SECONDARY_TRAILER_CRC_OFFSET = 60;
/** Bytes per extent in the hash table (a SHA-256 digest). */
export const SECONDARY_HASH_BYTES = 32;
/** Block sizes a secondary may have (and the source, which must have the same). */
export const SECONDARY_BLOCK_SIZES: readonly number[] = [512, 4096];
/** Longest label, in UTF-8 bytes. */
export const SECONDARY_LABEL_MAX_BYTES = 256;
/** Longest failure reason, in UTF-8 bytes ({@link clipText} shortens one). */
export const SECONDARY_REASON_MAX_BYTES = 1024;

export type SecondaryMode = 'overwrite' | 'append';
export type SecondaryState = 'copying' | 'image-complete' | 'log-appended' | 'integrated' | 'failed';
export const SECONDARY_MODES: readonly SecondaryMode[] = ['overwrite', 'append'];
export const SECONDARY_STATES: readonly SecondaryState[] = ['copying', 'image-complete', 'log-appended', 'integrated', 'failed'];

// ---------------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------------

/** Where everything lies on a secondary LUN, in blocks of its block size. */
export interface SecondaryLayout {
  /** The secondary's block size B (= the source's): 512 or 4096. */
  blockSize: number;
  /** The secondary LUN's capacity in blocks. */
  capacityBlocks: bigint;
  /** The image at LBA 0: the source's capacity in blocks. */
  imageBlocks: bigint;
  /** Append mode: the log area, right after the image (logLba = imageBlocks); 0n/0n in overwrite mode. */
  logLba: bigint;
  logBlocksMax: bigint;
  /** The whole metadata area, right before the trailer. */
  metaLba: bigint;
  metaBlocks: bigint;
  /** Blocks per header slot (4096 bytes rounded up to whole blocks); slot 0 at metaLba, slot 1 at metaLba + slotBlocks. */
  slotBlocks: number;
  /** The extent hash table, after the two slots: `extents` SHA-256 digests of `extentBytes` each, padded to whole blocks. */
  hashLba: bigint;
  hashBlocks: bigint;
  extentBytes: number;
  extents: number;
  /** The table-of-contents reserve, after the hash table. */
  tocLba: bigint;
  tocBlocks: bigint;
  /** The trailer: the LUN's last block (capacityBlocks − 1). */
  trailerLba: bigint;
}

/** The parameters of {@link planLayout}. */
export interface SecondaryLayoutParams {
  blockSize: number;
  capacityBlocks: bigint;
  imageBlocks: bigint;
  mode: SecondaryMode;
  /**
   * Append mode: blocks kept for the copied log; omitted, the log area is every block between
   * the image and the metadata area. Ignored in overwrite mode.
   */
  logBlocksMax?: bigint;
  /** Extent size of the hash table, a multiple of blockSize; {@link DEFAULT_HASH_EXTENT_BYTES} when omitted. */
  extentBytes?: number;
  /** Table-of-contents reserve in bytes, rounded up to blocks; {@link defaultTocBytes} of the image when omitted. */
  tocBytes?: bigint;
}

/** The sizes of a layout that do not depend on where it lies. */
interface Sizes {
  blockSize: number;
  imageBlocks: bigint;
  mode: SecondaryMode;
  logBlocks: bigint | undefined;
  slotBlocks: number;
  extentBytes: number;
  extents: number;
  hashBlocks: bigint;
  tocBlocks: bigint;
  metaBlocks: bigint;
  /** Blocks needed: image, log (0 when left to the remainder), metadata area, trailer. */
  required: bigint;
}

const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;

/** Blocks per header slot for block size B: 4096 bytes rounded up to whole blocks. */
export function slotBlocksFor(blockSize: number): number {
  return Math.ceil(SECONDARY_SLOT_BYTES / blockSize);
}

/** Why `extentBytes` is not a valid extent size for block size B, or undefined. */
function extentProblem(extentBytes: number, blockSize: number): string | undefined {
  if (!Number.isInteger(extentBytes) || extentBytes <= 0 || extentBytes > MAX_HASH_EXTENT_BYTES) {
    return `extent size ${String(extentBytes)} must be an integer in 1..${MAX_HASH_EXTENT_BYTES} bytes`;
  }
  if (extentBytes % blockSize !== 0) return `extent size ${extentBytes} is not a multiple of the block size ${blockSize}`;
  return undefined;
}

/** The sizes for these parameters, or a string saying which one is wrong. */
function sizesOf(p: {
  blockSize: number;
  imageBlocks: bigint;
  mode: SecondaryMode;
  logBlocks: bigint | undefined;
  extentBytes: number;
  tocBlocks: bigint;
}): Sizes | string {
  const B = p.blockSize;
  if (!SECONDARY_BLOCK_SIZES.includes(B)) return `block size ${String(B)} is not 512 or 4096`;
  if (typeof p.imageBlocks !== 'bigint' || p.imageBlocks < 1n) return `image blocks ${String(p.imageBlocks)} must be a bigint ≥ 1`;
  if (!SECONDARY_MODES.includes(p.mode)) return `mode ${String(p.mode)} is not overwrite or append`;
  const logBlocks = p.mode === 'append' ? p.logBlocks : 0n;
  if (logBlocks !== undefined && (typeof logBlocks !== 'bigint' || logBlocks < 0n)) {
    return `log blocks ${String(logBlocks)} must be a bigint ≥ 0`;
  }
  const extentProblemText = extentProblem(p.extentBytes, B);
  if (extentProblemText) return extentProblemText;
  if (typeof p.tocBlocks !== 'bigint' || p.tocBlocks < 0n) return `TOC reserve ${String(p.tocBlocks)} must be a bigint ≥ 0`;
  const extentsBig = ceilDiv(p.imageBlocks * BigInt(B), BigInt(p.extentBytes));
  if (extentsBig > BigInt(MAX_HASH_EXTENTS)) {
    return `${extentsBig} extents of ${p.extentBytes} bytes are more than ${MAX_HASH_EXTENTS} (choose a larger extent size)`;
  }
  const extents = Number(extentsBig);
  const slotBlocks = slotBlocksFor(B);
  const hashBlocks = ceilDiv(extentsBig * BigInt(SECONDARY_HASH_BYTES), BigInt(B));
  const metaBlocks = 2n * BigInt(slotBlocks) + hashBlocks + p.tocBlocks;
  return {
    blockSize: B,
    imageBlocks: p.imageBlocks,
    mode: p.mode,
    logBlocks,
    slotBlocks,
    extentBytes: p.extentBytes,
    extents,
    hashBlocks,
    tocBlocks: p.tocBlocks,
    metaBlocks,
    required: p.imageBlocks + (logBlocks ?? 0n) + metaBlocks + 1n,
  };
}

/** The layout of `s` on a LUN of `capacityBlocks` (≥ s.required): the metadata area right before the trailer. */
function place(s: Sizes, capacityBlocks: bigint): SecondaryLayout {
  const trailerLba = capacityBlocks - 1n;
  const metaLba = trailerLba - s.metaBlocks;
  const append = s.mode === 'append';
  const hashLba = metaLba + 2n * BigInt(s.slotBlocks);
  return {
    blockSize: s.blockSize,
    capacityBlocks,
    imageBlocks: s.imageBlocks,
    logLba: append ? s.imageBlocks : 0n,
    logBlocksMax: append ? (s.logBlocks ?? metaLba - s.imageBlocks) : 0n,
    metaLba,
    metaBlocks: s.metaBlocks,
    slotBlocks: s.slotBlocks,
    hashLba,
    hashBlocks: s.hashBlocks,
    extentBytes: s.extentBytes,
    extents: s.extents,
    tocLba: hashLba + s.hashBlocks,
    tocBlocks: s.tocBlocks,
    trailerLba,
  };
}

/** The sizes of the parameters of planLayout / requiredBlocks, or ArgumentError. */
function sizesOfParams(p: Omit<SecondaryLayoutParams, 'capacityBlocks'>): Sizes {
  const B = p.blockSize;
  const tocBytes = p.tocBytes ?? (typeof p.imageBlocks === 'bigint' ? defaultTocBytes(p.imageBlocks * BigInt(B)) : 0n);
  if (typeof tocBytes !== 'bigint' || tocBytes < 0n) {
    throw new ArgumentError(`TOC reserve ${String(tocBytes)} must be a bigint ≥ 0 bytes`);
  }
  const s = sizesOf({
    blockSize: B,
    imageBlocks: p.imageBlocks,
    mode: p.mode,
    logBlocks: p.logBlocksMax,
    extentBytes: p.extentBytes ?? DEFAULT_HASH_EXTENT_BYTES,
    tocBlocks: SECONDARY_BLOCK_SIZES.includes(B) ? ceilDiv(tocBytes, BigInt(B)) : 0n,
  });
  if (typeof s === 'string') throw new ArgumentError(`secondary layout: ${s}`);
  return s;
}

/**
 * Places the image, the log area (append mode), the metadata area and the trailer on a
 * secondary LUN of `capacityBlocks`. The metadata area lies right before the trailer, so blocks
 * the layout does not need lie between the image (or log area) and the metadata area. Throws
 * ArgumentError (ERR_INVALID_ARG) for bad parameters and when the LUN is too small.
 */
export function planLayout(p: SecondaryLayoutParams): SecondaryLayout {
  const s = sizesOfParams(p);
  if (typeof p.capacityBlocks !== 'bigint' || p.capacityBlocks < 0n) {
    throw new ArgumentError(`secondary layout: capacity ${String(p.capacityBlocks)} must be a bigint ≥ 0`);
  }
  if (p.capacityBlocks < s.required) {
    const what = s.mode === 'append' ? 'grow it or choose --mode overwrite' : 'grow it';
    throw new ArgumentError(`secondary LUN too small: ${s.required} blocks needed, ${p.capacityBlocks} present (${what})`);
  }
  return place(s, p.capacityBlocks);
}

/**
 * Blocks a secondary needs for these parameters: image, log area (append mode; 0 when
 * logBlocksMax is omitted), metadata area and trailer. For preflight messages.
 */
export function requiredBlocks(p: Omit<SecondaryLayoutParams, 'capacityBlocks'>): bigint {
  return sizesOfParams(p).required;
}

/** Default TOC reserve: 0.1 % of the image, at least 1 MiB, at most 256 MiB, rounded up to 4096 bytes (whole blocks of either size). */
export function defaultTocBytes(imageBytes: bigint): bigint {
  if (typeof imageBytes !== 'bigint' || imageBytes < 0n) {
    throw new ArgumentError(`image bytes ${String(imageBytes)} must be a bigint ≥ 0`);
  }
  const MiB = 1024n * 1024n;
  let bytes = ceilDiv(imageBytes, 1000n);
  if (bytes < MiB) bytes = MiB;
  if (bytes > 256n * MiB) bytes = 256n * MiB;
  return ceilDiv(bytes, 4096n) * 4096n;
}

/** Why `layout` is not the layout version 1 places for its own parameters (and `mode`), or undefined. */
function layoutProblem(layout: SecondaryLayout, mode: SecondaryMode): { field: string; message: string } | undefined {
  const s = sizesOf({
    blockSize: layout.blockSize,
    imageBlocks: layout.imageBlocks,
    mode,
    logBlocks: mode === 'append' ? layout.logBlocksMax : undefined,
    extentBytes: layout.extentBytes,
    tocBlocks: layout.tocBlocks,
  });
  if (typeof s === 'string') return { field: 'layout', message: s };
  if (layout.capacityBlocks < s.required) {
    return { field: 'layout.capacityBlocks', message: `${layout.capacityBlocks} is less than the ${s.required} blocks the layout needs` };
  }
  const expected = place(s, layout.capacityBlocks);
  for (const key of Object.keys(expected) as Array<keyof SecondaryLayout>) {
    if (layout[key] !== expected[key]) {
      const message = `is ${String(layout[key])}; the ${mode} layout of these sizes has ${String(expected[key])}`;
      return { field: `layout.${key}`, message };
    }
  }
  return undefined;
}

/** Extent i's byte range within the image: [i × extentBytes, min((i + 1) × extentBytes, image bytes)). */
export function extentRange(layout: SecondaryLayout, i: number): { offset: bigint; bytes: number } {
  if (!Number.isInteger(i) || i < 0 || i >= layout.extents) {
    throw new ArgumentError(`extent ${String(i)} is not in 0..${layout.extents - 1}`);
  }
  const offset = BigInt(i) * BigInt(layout.extentBytes);
  const rest = layout.imageBlocks * BigInt(layout.blockSize) - offset;
  return { offset, bytes: rest < BigInt(layout.extentBytes) ? Number(rest) : layout.extentBytes };
}

/** The hash of one extent: SHA-256 of its bytes as of T0 (the last extent is shorter, not padded). */
export function extentHash(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

// ---------------------------------------------------------------------------------------------
// Header slots
// ---------------------------------------------------------------------------------------------

/** One VPD 83h designator of the source (SPC-4 r37 7.8.6.1), its bytes as hex. */
export interface SecondaryDesignator {
  codeSet: number;
  designatorType: number;
  association: number;
  /** The DESIGNATOR bytes as hex (at most 255 bytes). */
  designator: string;
}

export interface SourceIdentity {
  designators: SecondaryDesignator[];
  capacityBlocks: bigint;
  blockSize: number;
  vendor?: string;
  product?: string;
  /** The source's URL, redacted: no CHAP secret. */
  url?: string;
}

/** Everything a reader needs about one backup on a secondary LUN (the JSON body of a header slot, plus version and generation). */
export interface SecondaryRecord {
  /** SECONDARY_FORMAT_VERSION (slot bytes 8–9). */
  version: number;
  /** Slot bytes 16–23: +1 at every header write; the valid slot with the highest generation is current. */
  generation: bigint;
  /** The agent's id for this backup (a UUID). */
  backupId: string;
  state: SecondaryState;
  /** Why the backup failed (state failed). */
  reason?: string;
  mode: SecondaryMode;
  label?: string;
  source: SourceIdentity;
  snapshot: { id: string; institutedAt: string; pauseMs?: number; marked?: boolean };
  /** The layout, so that a reader needs nothing else. */
  layout: SecondaryLayout;
  /** Append mode: the copied OBF log at layout.logLba (usedBlocks in secondary blocks, dataBlocks in the OBF's blocks). */
  log?: { records: number; dataBlocks: bigint; usedBlocks: bigint };
  /**
   * The resume units, each a count from the start: image blocks [0, copiedBlocks) copied (604);
   * DATA records 1..appliedRecords laid over the image (608, overwrite mode); log blocks
   * [0, appendedBlocks) copied after the image (608, append mode); DATA records
   * 1..integratedRecords laid inside the secondary (610); extents [0, hashedExtents) hashed.
   */
  progress: { copiedBlocks: bigint; appliedRecords: number; integratedRecords: number; hashedExtents: number; appendedBlocks?: bigint };
  /** ISO-8601 times; phases: seconds per phase. */
  times: { startedAt: string; updatedAt: string; finishedAt?: string; phases?: Record<string, number> };
  /** The table of contents in the TOC reserve: bytes used from layout.tocLba, and its format. */
  toc?: { usedBytes: bigint; format?: string };
}

/** Raised for a header slot or trailer of a version this code does not know (bytes 8–9). */
export class SecondaryVersionError extends DecodeError {
  readonly version: number;
  constructor(structure: string, version: number) {
    super(structure, 8, `version ${version} is not supported (this reader knows version ${SECONDARY_FORMAT_VERSION})`);
    this.version = version;
  }
}

/** Neither header slot holds a valid record; `slotErrors` says why for each. */
export class NoValidHeaderError extends DecodeError {
  readonly slotErrors: readonly [DecodeError, DecodeError];
  constructor(slot0: DecodeError, slot1: DecodeError) {
    super(SLOT, slot0.offset, `neither slot holds a valid header (slot 0: ${slot0.message}; slot 1: ${slot1.message})`);
    this.slotErrors = [slot0, slot1];
  }
}

/** A field of the JSON body that breaks a rule: `path` names it (e.g. "layout.metaLba"). */
class BodyProblem extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path} ${problem}`);
  }
}

function bad(path: string, problem: string): never {
  throw new BodyProblem(path, problem);
}

type Json = Record<string, unknown>;

/** Reads the fields of one JSON object, each checked; `path` prefixes the field names in problems. */
class Fields {
  private readonly o: Json;
  constructor(
    value: unknown,
    private readonly path: string,
  ) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) bad(path || 'body', 'must be an object');
    this.o = value as Json;
  }

  private at(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  has(key: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.o, key) && this.o[key] !== undefined;
  }

  /** A string; not empty unless `empty`; at most `maxBytes` UTF-8 bytes. */
  str(key: string, o: { empty?: boolean; maxBytes?: number } = {}): string {
    const v = this.o[key];
    if (typeof v !== 'string') bad(this.at(key), 'must be a string');
    if (v.length === 0 && !o.empty) bad(this.at(key), 'must not be empty');
    if (o.maxBytes !== undefined && Buffer.byteLength(v, 'utf8') > o.maxBytes) bad(this.at(key), `is longer than ${o.maxBytes} bytes`);
    return v;
  }

  /** One of `values`. */
  oneOf<T extends string>(key: string, values: readonly T[]): T {
    const v = this.o[key];
    if (!values.includes(v as T)) bad(this.at(key), `must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
    return v as T;
  }

  /** An integer in 0..max. */
  int(key: string, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.o[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) bad(this.at(key), `must be an integer in 0..${max}`);
    return v;
  }

  /** A finite number ≥ 0. */
  nonNegative(key: string): number {
    const v = this.o[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) bad(this.at(key), 'must be a finite number ≥ 0');
    return v;
  }

  /** A u64, written as a decimal string. */
  u64(key: string): bigint {
    const v = this.o[key];
    if (typeof v !== 'string' || !/^(0|[1-9][0-9]{0,19})$/.test(v) || BigInt(v) > 0xffff_ffff_ffff_ffffn) {
      bad(this.at(key), 'must be a bigint in 0..2^64 − 1 (a decimal string in the body)');
    }
    return BigInt(v);
  }

  bool(key: string): boolean {
    const v = this.o[key];
    if (typeof v !== 'boolean') bad(this.at(key), 'must be true or false');
    return v;
  }

  /** An ISO-8601 date and time with a zone (as Date.toISOString writes it). */
  time(key: string): string {
    const v = this.o[key];
    if (typeof v !== 'string' || !ISO_TIME.test(v) || Number.isNaN(Date.parse(v))) {
      bad(this.at(key), 'must be an ISO-8601 date and time (e.g. 2026-01-01T00:00:00.000Z)');
    }
    return v;
  }

  obj(key: string): Fields {
    return new Fields(this.o[key], this.at(key));
  }

  array(key: string, max: number): unknown[] {
    const v = this.o[key];
    if (!Array.isArray(v) || v.length > max) bad(this.at(key), `must be an array of at most ${max} entries`);
    return v;
  }

  /** The object's own entries (for maps such as times.phases). */
  entries(): Array<[string, unknown]> {
    return Object.entries(this.o);
  }

  /** `read(key)` when the field is present, else undefined (then the result has no such key). */
  optional<T>(key: string, read: (key: string) => T): T | undefined {
    return this.has(key) ? read(key) : undefined;
  }
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** A URL carrying a CHAP secret (libiscsi's user%password@, or target_password=) that is not redacted to "***". */
const SECRET_IN_URL = /^[a-z][a-z0-9+.-]*:\/\/[^/@]*%(?!\*\*\*@)[^/@]*@|[?&]target_password=(?!\*\*\*(?:&|$))/i;

/** `o` without the keys whose value is undefined (the optional fields a body leaves out). */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function readDesignator(value: unknown, path: string): SecondaryDesignator {
  const f = new Fields(value, path);
  const designator = f.str('designator');
  if (!/^([0-9a-fA-F]{2}){1,255}$/.test(designator)) bad(`${path}.designator`, 'must be 1..255 bytes as hex');
  return {
    codeSet: f.int('codeSet', 0x0f),
    designatorType: f.int('designatorType', 0x0f),
    association: f.int('association', 0x03),
    designator,
  };
}

function readSource(f: Fields): SourceIdentity {
  const designators = f.array('designators', 32).map((d, i) => readDesignator(d, `source.designators[${i}]`));
  const url = f.optional('url', (k) => f.str(k));
  if (url !== undefined && SECRET_IN_URL.test(url)) bad('source.url', 'carries a CHAP secret; store it redacted (password as ***)');
  return defined({
    designators,
    capacityBlocks: f.u64('capacityBlocks'),
    blockSize: f.int('blockSize'),
    vendor: f.optional('vendor', (k) => f.str(k, { empty: true })),
    product: f.optional('product', (k) => f.str(k, { empty: true })),
    url,
  });
}

function readLayout(f: Fields): SecondaryLayout {
  return {
    blockSize: f.int('blockSize'),
    capacityBlocks: f.u64('capacityBlocks'),
    imageBlocks: f.u64('imageBlocks'),
    logLba: f.u64('logLba'),
    logBlocksMax: f.u64('logBlocksMax'),
    metaLba: f.u64('metaLba'),
    metaBlocks: f.u64('metaBlocks'),
    slotBlocks: f.int('slotBlocks'),
    hashLba: f.u64('hashLba'),
    hashBlocks: f.u64('hashBlocks'),
    extentBytes: f.int('extentBytes'),
    extents: f.int('extents'),
    tocLba: f.u64('tocLba'),
    tocBlocks: f.u64('tocBlocks'),
    trailerLba: f.u64('trailerLba'),
  };
}

function readPhases(f: Fields): Record<string, number> {
  const entries = f.entries();
  if (entries.length > 64) bad('times.phases', 'has more than 64 phases');
  return Object.fromEntries(entries.map(([name]) => [name, f.nonNegative(name)]));
}

type RecordBody = Omit<SecondaryRecord, 'version' | 'generation'>;

/**
 * The record of a JSON body, every field checked and the rules between fields too (the layout
 * is what planLayout places for its own sizes; source and image agree; progress within the
 * layout). Unknown fields are dropped. The result's keys are in the order the body is written.
 */
function readBody(value: unknown): RecordBody {
  const f = new Fields(value, '');
  const mode = f.oneOf('mode', SECONDARY_MODES);
  const state = f.oneOf('state', SECONDARY_STATES);
  const layout = readLayout(f.obj('layout'));
  const problem = layoutProblem(layout, mode);
  if (problem) bad(problem.field, problem.message);
  const source = readSource(f.obj('source'));
  if (source.blockSize !== layout.blockSize) {
    bad('source.blockSize', `${source.blockSize} is not the layout's block size ${layout.blockSize}`);
  }
  if (source.capacityBlocks !== layout.imageBlocks) {
    bad('source.capacityBlocks', `${source.capacityBlocks} is not the layout's image blocks ${layout.imageBlocks}`);
  }
  if (state === 'log-appended' && mode !== 'append') bad('state', 'log-appended is a state of append mode only');

  const snap = f.obj('snapshot');
  const snapshot = defined({
    id: snap.str('id'),
    institutedAt: snap.time('institutedAt'),
    pauseMs: snap.optional('pauseMs', (k) => snap.nonNegative(k)),
    marked: snap.optional('marked', (k) => snap.bool(k)),
  });

  const log = f.optional('log', (k) => {
    const l = f.obj(k);
    return { records: l.int('records'), dataBlocks: l.u64('dataBlocks'), usedBlocks: l.u64('usedBlocks') };
  });
  if (log && mode === 'append' && log.usedBlocks > layout.logBlocksMax) {
    bad('log.usedBlocks', `${log.usedBlocks} is more than the log area's ${layout.logBlocksMax} blocks`);
  }

  const p = f.obj('progress');
  const progress = defined({
    copiedBlocks: p.u64('copiedBlocks'),
    appliedRecords: p.int('appliedRecords'),
    integratedRecords: p.int('integratedRecords'),
    hashedExtents: p.int('hashedExtents'),
    appendedBlocks: p.optional('appendedBlocks', (k) => p.u64(k)),
  });
  if (progress.copiedBlocks > layout.imageBlocks) {
    bad('progress.copiedBlocks', `${progress.copiedBlocks} is more than the image's ${layout.imageBlocks} blocks`);
  }
  if (progress.hashedExtents > layout.extents) {
    bad('progress.hashedExtents', `${progress.hashedExtents} is more than the layout's ${layout.extents} extents`);
  }
  if (progress.appendedBlocks !== undefined && progress.appendedBlocks > layout.logBlocksMax) {
    bad('progress.appendedBlocks', `${progress.appendedBlocks} is more than the log area's ${layout.logBlocksMax} blocks`);
  }

  const t = f.obj('times');
  const times = defined({
    startedAt: t.time('startedAt'),
    updatedAt: t.time('updatedAt'),
    finishedAt: t.optional('finishedAt', (k) => t.time(k)),
    phases: t.optional('phases', (k) => readPhases(t.obj(k))),
  });

  const toc = f.optional('toc', (k) => {
    const c = f.obj(k);
    return defined({ usedBytes: c.u64('usedBytes'), format: c.optional('format', (fk) => c.str(fk, { empty: true })) });
  });
  if (toc && toc.usedBytes > layout.tocBlocks * BigInt(layout.blockSize)) {
    bad('toc.usedBytes', `${toc.usedBytes} is more than the TOC reserve of ${layout.tocBlocks} blocks`);
  }

  // The order of the body as written (docs/secondary-format.md "Body").
  return defined({
    backupId: f.str('backupId'),
    state,
    reason: f.optional('reason', (k) => f.str(k, { empty: true, maxBytes: SECONDARY_REASON_MAX_BYTES })),
    mode,
    label: f.optional('label', (k) => f.str(k, { empty: true, maxBytes: SECONDARY_LABEL_MAX_BYTES })),
    source,
    snapshot,
    layout,
    log,
    progress,
    times,
    toc,
  });
}

/** JSON text of a body: bigints as decimal strings. */
function bodyJson(body: RecordBody): string {
  return JSON.stringify(body, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** Why a slot of `slotBytes` is not the layout's slotBlocks × blockSize, or undefined. */
function slotSizeAgainstLayout(slotBytes: number, layout: SecondaryLayout): string | undefined {
  if (slotBytes === layout.slotBlocks * layout.blockSize) return undefined;
  return `slot size ${slotBytes} is not the layout's ${layout.slotBlocks} blocks of ${layout.blockSize} bytes`;
}

/** Slot bytes (bytes 12–15) a version 1 reader accepts: whole 512-byte units, 512 B .. 1 MiB. */
function slotBytesProblem(slotBytes: number): string | undefined {
  if (!Number.isInteger(slotBytes) || slotBytes < 512 || slotBytes > 1024 * 1024 || slotBytes % 512 !== 0) {
    return `slot size ${String(slotBytes)} is not a multiple of 512 in 512..1048576 bytes`;
  }
  return undefined;
}

/**
 * One header slot (slotBytes = layout.slotBlocks × blockSize bytes): the 32-byte binary
 * header (magic, version, header length, slot size, generation, body length, CRC32C), then
 * the record as UTF-8 JSON, then zeros. The record is checked as a reader checks it (field
 * types, the layout against planLayout's rules, progress within the layout); unknown fields
 * are not written. Throws EncodeError when a field breaks a rule or the body does not fit.
 */
export function encodeHeaderSlot(record: SecondaryRecord, slotBytes: number): Buffer {
  const s = SLOT;
  if (record.version !== SECONDARY_FORMAT_VERSION) {
    throw new EncodeError(s, 'version', `${String(record.version)} is not ${SECONDARY_FORMAT_VERSION}`);
  }
  const generation = record.generation;
  if (typeof generation !== 'bigint' || generation < 1n || generation > 0xffff_ffff_ffff_ffffn) {
    throw new EncodeError(s, 'generation', `must be a bigint in 1..2^64 − 1, got ${String(generation)}`);
  }
  const sizeProblem = slotBytesProblem(slotBytes);
  if (sizeProblem) throw new EncodeError(s, 'slot size', sizeProblem);
  const rest: Partial<SecondaryRecord> = { ...record };
  delete rest.version;
  delete rest.generation;
  let body: RecordBody;
  try {
    body = readBody(JSON.parse(bodyJson(rest as RecordBody)));
  } catch (err) {
    if (err instanceof BodyProblem) throw new EncodeError(s, err.path, err.problem);
    throw err;
  }
  const slotProblem = slotSizeAgainstLayout(slotBytes, body.layout);
  if (slotProblem) throw new EncodeError(s, 'slot size', slotProblem);
  const json = Buffer.from(bodyJson(body), 'utf8');
  const room = slotBytes - SECONDARY_SLOT_HEADER_LENGTH;
  if (json.length > room) {
    throw new EncodeError(s, 'body', `is ${json.length} bytes; the slot has room for ${room} (shorten the label or the reason)`);
  }

  const out = Buffer.alloc(slotBytes);
  SECONDARY_SLOT_MAGIC.copy(out, 0); // 0–7 magic
  out.writeUInt16BE(SECONDARY_FORMAT_VERSION, 8); // 8–9 version
  out.writeUInt16BE(SECONDARY_SLOT_HEADER_LENGTH, 10); // 10–11 header length
  out.writeUInt32BE(slotBytes, 12); // 12–15 slot size
  out.writeBigUInt64BE(generation, 16); // 16–23 generation
  out.writeUInt32BE(json.length, 24); // 24–27 body length
  json.copy(out, SECONDARY_SLOT_HEADER_LENGTH); // 32.. body, then zeros
  out.writeUInt32BE(slotCrc(out, json.length), SECONDARY_SLOT_CRC_OFFSET); // 28–31 CRC
  return out;
}

/** CRC32C over slot bytes 0–27, continued over the body (bytes 32 .. 32 + bodyLength − 1). */
function slotCrc(slot: Buffer, bodyLength: number): number {
  const crc = crc32c(slot.subarray(0, SECONDARY_SLOT_CRC_OFFSET));
  return crc32c(slot.subarray(SECONDARY_SLOT_HEADER_LENGTH, SECONDARY_SLOT_HEADER_LENGTH + bodyLength), crc);
}

/** Checks the 8-byte magic at 0 and the version at 8 of a slot or the trailer. */
function checkMagicAndVersion(structure: string, buf: Buffer, magic: Buffer): void {
  for (let i = 0; i < magic.length; i++) {
    if (buf[i] !== magic[i]) throw new DecodeError(structure, i, `bad magic (expected "${magic.toString('latin1')}")`);
  }
  const version = buf.readUInt16BE(8);
  if (version !== SECONDARY_FORMAT_VERSION) throw new SecondaryVersionError(structure, version);
}

const hex8 = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

/**
 * Decodes one header slot: exactly the slot's bytes (slotBlocks × blockSize). Checks, in
 * order: length ≥ 32, magic, version (SecondaryVersionError), header length, slot size and
 * the buffer's length, generation ≥ 1, body length, CRC, then the body (UTF-8, JSON, every
 * field; these DecodeErrors name byte 32, the body's start, and the field's path). Bytes
 * after the body are ignored.
 */
export function decodeHeaderSlot(buf: Buffer): SecondaryRecord {
  const s = SLOT;
  const H = SECONDARY_SLOT_HEADER_LENGTH;
  if (buf.length < H) throw new DecodeError(s, buf.length, `needs at least ${H} bytes, got ${buf.length}`);
  checkMagicAndVersion(s, buf, SECONDARY_SLOT_MAGIC);
  const headerLength = buf.readUInt16BE(10);
  if (headerLength !== H) throw new DecodeError(s, 10, `header length ${headerLength} is not ${H}`);
  const slotBytes = buf.readUInt32BE(12);
  const sizeProblem = slotBytesProblem(slotBytes);
  if (sizeProblem) throw new DecodeError(s, 12, sizeProblem);
  if (buf.length < slotBytes) throw new DecodeError(s, buf.length, `the slot is ${slotBytes} bytes, got ${buf.length}`);
  if (buf.length > slotBytes) throw new DecodeError(s, slotBytes, `the slot is ${slotBytes} bytes, got ${buf.length}`);
  const generation = buf.readBigUInt64BE(16);
  if (generation < 1n) throw new DecodeError(s, 16, 'generation 0 (the first is 1)');
  const bodyLength = buf.readUInt32BE(24);
  if (bodyLength < 2 || bodyLength > slotBytes - H) {
    throw new DecodeError(s, 24, `body length ${bodyLength} is not in 2..${slotBytes - H}`);
  }
  const stored = buf.readUInt32BE(SECONDARY_SLOT_CRC_OFFSET);
  const computed = slotCrc(buf, bodyLength);
  if (stored !== computed) {
    throw new DecodeError(s, SECONDARY_SLOT_CRC_OFFSET, `CRC32C ${hex8(stored)} does not match the content (${hex8(computed)})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(H, H + bodyLength)));
  } catch {
    throw new DecodeError(s, H, 'the body is not UTF-8 JSON');
  }
  let body: RecordBody;
  try {
    body = readBody(value);
  } catch (err) {
    if (err instanceof BodyProblem) throw new DecodeError(s, H, `body: ${err.message}`);
    throw err;
  }
  const slotProblem = slotSizeAgainstLayout(slotBytes, body.layout);
  if (slotProblem) throw new DecodeError(s, 12, slotProblem);
  return { version: SECONDARY_FORMAT_VERSION, generation, ...body };
}

/** The slot (0 or 1) the header write of `generation` goes to: generation mod 2. */
export function slotOf(generation: bigint): 0 | 1 {
  return generation % 2n === 0n ? 0 : 1;
}

/**
 * The current record from both slots' bytes (either may be garbage, torn or of another
 * backup): the valid one with the highest generation; of two valid ones with the same
 * generation, the one in the slot that generation is written to. NoValidHeaderError (a
 * DecodeError) when neither is valid, with both reasons.
 */
export function pickHeader(slot0: Buffer, slot1: Buffer): SecondaryRecord {
  const tries = [slot0, slot1].map((b) => {
    try {
      return { record: decodeHeaderSlot(b) };
    } catch (err) {
      if (err instanceof DecodeError) return { error: err };
      throw err;
    }
  });
  const [a, b] = tries;
  if (a.record && b.record) {
    if (a.record.generation !== b.record.generation) return a.record.generation > b.record.generation ? a.record : b.record;
    return slotOf(a.record.generation) === 0 ? a.record : b.record;
  }
  const one = a.record ?? b.record;
  if (one) return one;
  throw new NoValidHeaderError(a.error as DecodeError, b.error as DecodeError);
}

/**
 * `text` cut to at most `maxBytes` UTF-8 bytes at a character boundary, ending in "…" when
 * cut (e.g. a failure reason for {@link SECONDARY_REASON_MAX_BYTES}).
 */
export function clipText(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  const ellipsis = maxBytes >= 3 ? '…' : '';
  let out = '';
  let bytes = Buffer.byteLength(ellipsis, 'utf8');
  for (const ch of text) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > maxBytes) break;
    out += ch;
    bytes += n;
  }
  return out + ellipsis;
}

// ---------------------------------------------------------------------------------------------
// Trailer (the LUN's last block)
// ---------------------------------------------------------------------------------------------

/** What the trailer says: enough to find the header slots. */
export interface SecondaryTrailer {
  blockSize: number;
  metaLba: bigint;
  metaBlocks: bigint;
  slotBlocks: number;
}

/**
 * The trailer block (blockSize bytes): magic, version, trailer length, block size, capacity,
 * metaLba, metaBlocks, slotBlocks, CRC32C at 60 over bytes 0–59; the rest zero.
 */
export function encodeTrailer(layout: SecondaryLayout): Buffer {
  const s = TRAILER;
  const problem = trailerProblem(layout.blockSize, layout.capacityBlocks, layout.metaLba, layout.metaBlocks, layout.slotBlocks);
  if (problem) throw new EncodeError(s, problem.field, problem.message);
  const out = Buffer.alloc(layout.blockSize);
  SECONDARY_TRAILER_MAGIC.copy(out, 0); // 0–7 magic
  out.writeUInt16BE(SECONDARY_FORMAT_VERSION, 8); // 8–9 version
  out.writeUInt16BE(SECONDARY_TRAILER_LENGTH, 10); // 10–11 trailer length
  out.writeUInt32BE(layout.blockSize, 12); // 12–15 block size
  out.writeBigUInt64BE(layout.capacityBlocks, 16); // 16–23 capacity
  out.writeBigUInt64BE(layout.metaLba, 24); // 24–31 metadata area LBA
  out.writeBigUInt64BE(layout.metaBlocks, 32); // 32–39 metadata area blocks
  out.writeUInt32BE(layout.slotBlocks, 40); // 40–43 slot blocks; 44–59 reserved
  out.writeUInt32BE(crc32c(out.subarray(0, SECONDARY_TRAILER_CRC_OFFSET)), SECONDARY_TRAILER_CRC_OFFSET); // 60–63 CRC
  return out;
}

/** The trailer's rules (its field names and byte offsets for errors), or undefined when they hold. */
function trailerProblem(
  blockSize: number,
  capacityBlocks: bigint,
  metaLba: bigint,
  metaBlocks: bigint,
  slotBlocks: number,
): { field: string; offset: number; message: string } | undefined {
  if (!SECONDARY_BLOCK_SIZES.includes(blockSize)) {
    return { field: 'block size', offset: 12, message: `${String(blockSize)} is not 512 or 4096` };
  }
  if (typeof capacityBlocks !== 'bigint' || capacityBlocks < 1n || capacityBlocks > 0xffff_ffff_ffff_ffffn) {
    return { field: 'capacity', offset: 16, message: `${String(capacityBlocks)} is not a u64 ≥ 1` };
  }
  if (slotBlocks !== slotBlocksFor(blockSize)) {
    const message = `${String(slotBlocks)} is not ${slotBlocksFor(blockSize)} (4096 bytes in ${blockSize}-byte blocks)`;
    return { field: 'slot blocks', offset: 40, message };
  }
  if (typeof metaBlocks !== 'bigint' || metaBlocks <= 2n * BigInt(slotBlocks)) {
    const message = `${String(metaBlocks)} leaves no room for a hash table after two ${slotBlocks}-block slots`;
    return { field: 'metadata blocks', offset: 32, message };
  }
  if (typeof metaLba !== 'bigint' || metaLba < 1n || metaLba + metaBlocks !== capacityBlocks - 1n) {
    return {
      field: 'metadata LBA',
      offset: 24,
      message:
        `${String(metaLba)} + ${metaBlocks} blocks does not end right before the last block ` +
        `(${capacityBlocks - 1n}), after an image of ≥ 1 block`,
    };
  }
  return undefined;
}

/**
 * Decodes the trailer from the LUN's last block, read from a LUN of `capacityBlocks`. Checks,
 * in order: length ≥ 64, magic, version (SecondaryVersionError), trailer length, CRC, block
 * size (512 or 4096, and the buffer's length), capacity (the trailer is of this LUN: a copy
 * to a LUN of another size has no trailer in its last block), slot blocks, then that the
 * metadata area ends right before the last block.
 */
export function decodeTrailer(buf: Buffer, capacityBlocks: bigint): SecondaryTrailer {
  const s = TRAILER;
  if (typeof capacityBlocks !== 'bigint' || capacityBlocks < 1n) {
    throw new ArgumentError(`decodeTrailer: capacity ${String(capacityBlocks)} must be a bigint ≥ 1`);
  }
  const L = SECONDARY_TRAILER_LENGTH;
  if (buf.length < L) throw new DecodeError(s, buf.length, `needs at least ${L} bytes, got ${buf.length}`);
  checkMagicAndVersion(s, buf, SECONDARY_TRAILER_MAGIC);
  const length = buf.readUInt16BE(10);
  if (length !== L) throw new DecodeError(s, 10, `trailer length ${length} is not ${L}`);
  const stored = buf.readUInt32BE(SECONDARY_TRAILER_CRC_OFFSET);
  const computed = crc32c(buf.subarray(0, SECONDARY_TRAILER_CRC_OFFSET));
  if (stored !== computed) {
    throw new DecodeError(s, SECONDARY_TRAILER_CRC_OFFSET, `CRC32C ${hex8(stored)} does not match the content (${hex8(computed)})`);
  }
  const blockSize = buf.readUInt32BE(12);
  if (SECONDARY_BLOCK_SIZES.includes(blockSize) && buf.length !== blockSize) {
    throw new DecodeError(s, 12, `block size ${blockSize}, but the block read is ${buf.length} bytes`);
  }
  const written = buf.readBigUInt64BE(16);
  if (SECONDARY_BLOCK_SIZES.includes(blockSize) && written !== capacityBlocks) {
    throw new DecodeError(s, 16, `written for a LUN of ${written} blocks; this one has ${capacityBlocks}`);
  }
  const t = { blockSize, metaLba: buf.readBigUInt64BE(24), metaBlocks: buf.readBigUInt64BE(32), slotBlocks: buf.readUInt32BE(40) };
  const problem = trailerProblem(t.blockSize, written, t.metaLba, t.metaBlocks, t.slotBlocks);
  if (problem) throw new DecodeError(s, problem.offset, `${problem.field} ${problem.message}`);
  return t;
}

/**
 * DecodeError unless a record's layout lies where the trailer says (metadata area and slots):
 * a record found through a trailer must agree with it.
 */
export function checkLayoutAgainstTrailer(layout: SecondaryLayout, trailer: SecondaryTrailer): void {
  const fields = ['blockSize', 'metaLba', 'metaBlocks', 'slotBlocks'] as const;
  for (const key of fields) {
    if (layout[key] !== trailer[key]) {
      const message = `body: layout.${key} ${String(layout[key])} is not the trailer's ${String(trailer[key])}`;
      throw new DecodeError(SLOT, SECONDARY_SLOT_HEADER_LENGTH, message);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Extent hash table
// ---------------------------------------------------------------------------------------------

/** The hash table's bytes: the 32-byte digests in extent order, zero padded to whole blocks. */
export function encodeHashTable(hashes: readonly Buffer[], blockSize: number): Buffer {
  if (!SECONDARY_BLOCK_SIZES.includes(blockSize)) throw new EncodeError(HASHES, 'block size', `${String(blockSize)} is not 512 or 4096`);
  const bytes = hashes.length * SECONDARY_HASH_BYTES;
  const out = Buffer.alloc(Math.ceil(bytes / blockSize) * blockSize);
  hashes.forEach((h, i) => {
    if (!(h instanceof Uint8Array) || h.length !== SECONDARY_HASH_BYTES) {
      throw new EncodeError(HASHES, `hash ${i}`, `must be a ${SECONDARY_HASH_BYTES}-byte SHA-256 digest`);
    }
    out.set(h, i * SECONDARY_HASH_BYTES);
  });
  return out;
}

/** The first `extents` digests of a hash table (each a copy). Bytes after them (padding) are ignored. */
export function decodeHashTable(buf: Buffer, extents: number): Buffer[] {
  if (!Number.isInteger(extents) || extents < 0 || extents > MAX_HASH_EXTENTS) {
    throw new ArgumentError(`decodeHashTable: extents ${String(extents)} must be an integer in 0..${MAX_HASH_EXTENTS}`);
  }
  const need = extents * SECONDARY_HASH_BYTES;
  if (buf.length < need) throw new DecodeError(HASHES, buf.length, `${extents} extents need ${need} bytes, got ${buf.length}`);
  const out: Buffer[] = [];
  for (let i = 0; i < extents; i++) {
    out.push(Buffer.from(buf.subarray(i * SECONDARY_HASH_BYTES, (i + 1) * SECONDARY_HASH_BYTES)));
  }
  return out;
}

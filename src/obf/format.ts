/**
 * The on-disk format of the OBF ("old block file", the original image cache) of a copy-on-write
 * snapshot: a superblock at LBA 0, then a log of records, each one header block followed by
 * `dataBlocks` whole OBF blocks of chunk data. docs/obf-format.md is the reference; the byte
 * offsets cited in comments below are those of its tables.
 *
 * Pure codecs, no I/O (the recovery scanner is log.ts). All integers are big-endian,
 * including the CRCs (unlike iSCSI digests, which go least significant byte first). CRC32C is
 * the iSCSI/Castagnoli CRC of src/native/crc32c.ts.
 *
 * Decoders throw only DecodeError (an unknown version: ObfVersionError, a DecodeError);
 * encoders throw only EncodeError. Reserved bytes are written as zero and ignored on decode, so
 * a later revision of version 1 may use them.
 */
import { createHash, type Hash } from 'node:crypto';
import { DecodeError, EncodeError } from '../errors';
import { crc32c, crc32cCombine } from '../native/crc32c';
import { bigUintUpTo, UINT32_MAX, UINT64_MAX, uintUpTo } from '../scsi/fields';
import { isAllZero } from '../util/zero';

const SUPERBLOCK = 'OBF superblock';
const RECORD = 'OBF record header';

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

/** Superblock magic, bytes 0–7: ASCII "XCPYOBF" and a NUL. */
export const OBF_MAGIC: Buffer = Buffer.from('XCPYOBF\0', 'latin1');
/** The one format version this code reads and writes (superblock bytes 8–9). */
export const OBF_VERSION = 1;
/** Defined bytes of the superblock (bytes 10–11); the rest of block 0 is zero. */
export const OBF_SUPERBLOCK_LENGTH = 512;
/** LBA of the superblock. */
export const OBF_SUPERBLOCK_LBA = 0n;
/** The log start LBA writers put in the superblock (bytes 112–119). */
export const OBF_LOG_START_LBA = 1n;
/** Record magic, header bytes 0–3: ASCII "OBFR". */
export const OBF_RECORD_MAGIC: Buffer = Buffer.from('OBFR', 'latin1');
/** Defined bytes of a record header block (header bytes 6–7); the rest of the block is zero. */
export const OBF_RECORD_HEADER_LENGTH = 128;
/** Byte offset of the record CRC in the header; the CRC starts over bytes 0..this−1. */
export const OBF_RECORD_CRC_OFFSET = 124;
/** Byte offset of the superblock CRC; it covers bytes 0..this−1. */
export const OBF_SUPERBLOCK_CRC_OFFSET = 508;
/** Block sizes allowed for the OBF and for the source LUN. */
export const OBF_BLOCK_SIZES: readonly number[] = [512, 4096];
/**
 * The chunk of a snapshot when its institute names none (the superblock records the one taken).
 * A first write of 4 KiB reads and logs a chunk, so the chunk sets what a first write costs
 * (bench:cow's chunk sizes); 16 KiB is within the noise of 4 KiB there with a quarter of the
 * records, and a large change still makes one record of up to 1 MiB (src/cow/capture.ts).
 * docs/cow.md "Speed".
 */
export const DEFAULT_CHUNK_BYTES = 16 * 1024;
/** Longest source designator (bytes 50–81). */
export const OBF_DESIGNATOR_MAX_LENGTH = 32;

// ---------------------------------------------------------------------------------------------
// Enumerations and their names for logs
// ---------------------------------------------------------------------------------------------

/**
 * Snapshot state (superblock byte 108). ACTIVE → MARKED → SEALED, ACTIVE → SEALED, and any
 * state → INVALID (with a reason); INVALID is final. See {@link obfStateTransitionAllowed}.
 */
export const enum ObfState {
  /** COW armed, records being appended. */
  ACTIVE = 1,
  /** A MARKER record was written (the outboard copy finished); COW may still append. */
  MARKED = 2,
  /** A SEAL record closes the log; nothing follows it. */
  SEALED = 3,
  /** The snapshot must not be used; `reason` says why. */
  INVALID = 4,
}

/** Failure policy (superblock byte 109): what the COW filter sacrifices when it cannot capture. */
export const enum ObfPolicy {
  /** Let the application's write through and mark the snapshot INVALID. */
  PROTECT_APPLICATION = 1,
  /** Fail the application's write so the snapshot stays exact. */
  PROTECT_SNAPSHOT = 2,
}

/** Reason code (superblock bytes 110–111), NONE unless the state is INVALID. */
export const enum ObfReason {
  NONE = 0,
  OBF_FULL = 1,
  OBF_IO_ERROR = 2,
  COW_TIMEOUT = 3,
  TRACKING_GAP = 4,
  SOURCE_IO_ERROR = 5,
  ABANDONED = 6,
}

/** Record type (header byte 4). */
export const enum ObfRecordType {
  DATA = 1,
  MARKER = 2,
  SEAL = 3,
}

const STATE_NAMES: ReadonlyMap<number, string> = new Map([
  [ObfState.ACTIVE, 'ACTIVE'],
  [ObfState.MARKED, 'MARKED'],
  [ObfState.SEALED, 'SEALED'],
  [ObfState.INVALID, 'INVALID'],
]);
const POLICY_NAMES: ReadonlyMap<number, string> = new Map([
  [ObfPolicy.PROTECT_APPLICATION, 'protect-application'],
  [ObfPolicy.PROTECT_SNAPSHOT, 'protect-snapshot'],
]);
const REASON_NAMES: ReadonlyMap<number, string> = new Map([
  [ObfReason.NONE, 'NONE'],
  [ObfReason.OBF_FULL, 'OBF_FULL'],
  [ObfReason.OBF_IO_ERROR, 'OBF_IO_ERROR'],
  [ObfReason.COW_TIMEOUT, 'COW_TIMEOUT'],
  [ObfReason.TRACKING_GAP, 'TRACKING_GAP'],
  [ObfReason.SOURCE_IO_ERROR, 'SOURCE_IO_ERROR'],
  [ObfReason.ABANDONED, 'ABANDONED'],
]);
const RECORD_TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [ObfRecordType.DATA, 'DATA'],
  [ObfRecordType.MARKER, 'MARKER'],
  [ObfRecordType.SEAL, 'SEAL'],
]);

export function obfStateName(state: number): string {
  return STATE_NAMES.get(state) ?? `state ${state}`;
}
export function obfPolicyName(policy: number): string {
  return POLICY_NAMES.get(policy) ?? `policy ${policy}`;
}
export function obfReasonName(reason: number): string {
  return REASON_NAMES.get(reason) ?? `reason ${reason}`;
}
export function obfRecordTypeName(type: number): string {
  return RECORD_TYPE_NAMES.get(type) ?? `record type ${type}`;
}

/** True when a superblock may go from `from` to `to` (the state machine of docs/obf-format.md). */
export function obfStateTransitionAllowed(from: ObfState, to: ObfState): boolean {
  switch (from) {
    case ObfState.ACTIVE:
      return to === ObfState.MARKED || to === ObfState.SEALED || to === ObfState.INVALID;
    case ObfState.MARKED:
      return to === ObfState.SEALED || to === ObfState.INVALID;
    case ObfState.SEALED:
      return to === ObfState.INVALID;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Shared field helpers
// ---------------------------------------------------------------------------------------------

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The 16 bytes of a UUID written 8-4-4-4-12 (any case), or EncodeError. */
function uuidBytes(structure: string, field: string, uuid: string): Buffer {
  if (typeof uuid !== 'string' || !UUID_RE.test(uuid)) {
    throw new EncodeError(structure, field, `must be a UUID (8-4-4-4-12 hex digits), got ${String(uuid)}`);
  }
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

/** Lowercase 8-4-4-4-12 text of 16 bytes at `offset`. */
function uuidText(buf: Buffer, offset: number): string {
  const h = buf.toString('hex', offset, offset + 16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function isBlockSize(n: number): boolean {
  return OBF_BLOCK_SIZES.includes(n);
}

/** A u64 time field read as a number of milliseconds; DecodeError beyond 2^53 − 1. */
function readTimeMs(structure: string, buf: Buffer, offset: number, field: string): number {
  const v = buf.readBigUInt64BE(offset);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new DecodeError(structure, offset, `${field} ${v} ms is beyond 2^53 − 1`);
  }
  return Number(v);
}

function timeMsField(structure: string, field: string, value: number): number {
  return uintUpTo(structure, field, value, Number.MAX_SAFE_INTEGER, true);
}

function u64(structure: string, field: string, value: bigint): bigint {
  return bigUintUpTo(structure, field, value, UINT64_MAX, '2^64 − 1');
}

// ---------------------------------------------------------------------------------------------
// Superblock (LBA 0; the first 512 bytes defined, the rest of the block zero)
// ---------------------------------------------------------------------------------------------

/**
 * The source LUN's designator, as in its Device Identification VPD page (83h, SPC-4 r37 7.8.6):
 * superblock bytes 48–81.
 */
export interface ObfSourceDesignator {
  /** DESIGNATOR TYPE (byte 48), 0..15 (e.g. 3 = NAA). */
  designatorType: number;
  /** DESIGNATOR (bytes 50–81, its length at byte 49), 0..32 bytes. */
  designator: Buffer;
}

export interface ObfSuperblock {
  /** OBF block size B (bytes 12–15): 512 or 4096. */
  blockSize: number;
  /** Snapshot id (bytes 16–31), a UUID; every record repeats it. */
  snapshotId: string;
  /** Series id (bytes 32–47), the UUID of a series of snapshots of one source. */
  seriesId: string;
  /** The source LUN (bytes 48–81). */
  sourceDesignator: ObfSourceDesignator;
  /** Source block size (bytes 84–87): 512 or 4096. */
  sourceBlockSize: number;
  /** Source capacity in source blocks (bytes 88–95). */
  sourceCapacity: bigint;
  /** Chunk size in bytes (bytes 96–99): a non-zero multiple of both block sizes. */
  chunkSize: number;
  /** Institution time T0, ms since the Unix epoch (bytes 100–107). */
  institutionTimeMs: number;
  /** State (byte 108). */
  state: ObfState;
  /** Failure policy (byte 109). */
  policy: ObfPolicy;
  /** Reason code (bytes 110–111); unknown codes are kept as numbers. */
  reason: ObfReason;
  /** Log start LBA (bytes 112–119); writers write 1, readers use what they find (≥ 1). */
  logStartLba: bigint;
  /** OBF capacity in blocks at institution (bytes 120–127); the log never extends past it. */
  capacityBlocks: bigint;
  /** Generation (bytes 128–135), +1 at each superblock rewrite. */
  generation: bigint;
  /** Time of this rewrite, ms since the Unix epoch (bytes 136–143). */
  updatedTimeMs: number;
  /** Sequence of the MARKER record, 0 = none (bytes 144–151); informational, the log decides. */
  markerSequence: bigint;
  /** DATA record count at sealing (bytes 152–159); informational, the log decides. */
  sealedRecordCount: bigint;
}

/** Raised for a superblock of a version this code does not know (bytes 8–9). */
export class ObfVersionError extends DecodeError {
  readonly version: number;
  constructor(version: number) {
    super(SUPERBLOCK, 8, `version ${version} is not supported (this reader knows version ${OBF_VERSION})`);
    this.version = version;
  }
}

/** Why a chunk size breaks the rules (a positive multiple of both block sizes), or undefined. */
function chunkSizeProblem(chunkSize: number, blockSize: number, sourceBlockSize: number): string | undefined {
  if (!Number.isInteger(chunkSize) || chunkSize <= 0 || chunkSize > 0xffffffff) {
    return `chunk size ${chunkSize} must be a positive 32-bit integer`;
  }
  if (chunkSize % blockSize !== 0) {
    return `chunk size ${chunkSize} is not a multiple of the OBF block size ${blockSize}`;
  }
  if (chunkSize % sourceBlockSize !== 0) {
    return `chunk size ${chunkSize} is not a multiple of the source block size ${sourceBlockSize}`;
  }
  return undefined;
}

/** One whole superblock block (`sb.blockSize` bytes): the 512 defined bytes, zeros, CRC at 508. */
export function encodeSuperblock(sb: ObfSuperblock): Buffer {
  const s = SUPERBLOCK;
  if (!isBlockSize(sb.blockSize)) throw new EncodeError(s, 'block size', `${sb.blockSize} is not 512 or 4096`);
  if (!isBlockSize(sb.sourceBlockSize)) {
    throw new EncodeError(s, 'source block size', `${sb.sourceBlockSize} is not 512 or 4096`);
  }
  const chunkProblem = chunkSizeProblem(sb.chunkSize, sb.blockSize, sb.sourceBlockSize);
  if (chunkProblem) throw new EncodeError(s, 'chunk size', chunkProblem);
  const snapshotId = uuidBytes(s, 'snapshot id', sb.snapshotId);
  const seriesId = uuidBytes(s, 'series id', sb.seriesId);
  const designatorType = uintUpTo(s, 'designator type', sb.sourceDesignator.designatorType, 0x0f, true);
  const designator = sb.sourceDesignator.designator;
  if (!Buffer.isBuffer(designator) || designator.length > OBF_DESIGNATOR_MAX_LENGTH) {
    throw new EncodeError(s, 'designator', `must be a Buffer of at most ${OBF_DESIGNATOR_MAX_LENGTH} bytes`);
  }
  if (!STATE_NAMES.has(sb.state)) throw new EncodeError(s, 'state', `${sb.state} is not 1..4`);
  if (!POLICY_NAMES.has(sb.policy)) throw new EncodeError(s, 'policy', `${sb.policy} is not 1..2`);
  const reason = uintUpTo(s, 'reason', sb.reason, 0xffff, true);
  const sourceCapacity = u64(s, 'source capacity', sb.sourceCapacity);
  const capacityBlocks = u64(s, 'capacity', sb.capacityBlocks);
  const logStartLba = u64(s, 'log start LBA', sb.logStartLba);
  if (logStartLba < 1n || logStartLba > capacityBlocks) {
    throw new EncodeError(s, 'log start LBA', `${logStartLba} must be in 1..capacity (${capacityBlocks})`);
  }

  const out = Buffer.alloc(sb.blockSize);
  OBF_MAGIC.copy(out, 0); // 0–7 magic
  out.writeUInt16BE(OBF_VERSION, 8); // 8–9 version
  out.writeUInt16BE(OBF_SUPERBLOCK_LENGTH, 10); // 10–11 superblock length
  out.writeUInt32BE(sb.blockSize, 12); // 12–15 OBF block size
  snapshotId.copy(out, 16); // 16–31 snapshot id
  seriesId.copy(out, 32); // 32–47 series id
  out[48] = designatorType; // 48 designator type
  out[49] = designator.length; // 49 designator length
  designator.copy(out, 50); // 50–81 designator, zero padded; 82–83 reserved
  out.writeUInt32BE(sb.sourceBlockSize, 84); // 84–87 source block size
  out.writeBigUInt64BE(sourceCapacity, 88); // 88–95 source capacity
  out.writeUInt32BE(sb.chunkSize, 96); // 96–99 chunk size
  out.writeBigUInt64BE(BigInt(timeMsField(s, 'institution time', sb.institutionTimeMs)), 100); // 100–107
  out[108] = sb.state; // 108 state
  out[109] = sb.policy; // 109 failure policy
  out.writeUInt16BE(reason, 110); // 110–111 reason code
  out.writeBigUInt64BE(logStartLba, 112); // 112–119 log start LBA
  out.writeBigUInt64BE(capacityBlocks, 120); // 120–127 OBF capacity
  out.writeBigUInt64BE(u64(s, 'generation', sb.generation), 128); // 128–135 generation
  out.writeBigUInt64BE(BigInt(timeMsField(s, 'updated time', sb.updatedTimeMs)), 136); // 136–143
  out.writeBigUInt64BE(u64(s, 'marker sequence', sb.markerSequence), 144); // 144–151
  out.writeBigUInt64BE(u64(s, 'sealed record count', sb.sealedRecordCount), 152); // 152–159
  // 160–507 reserved (zero)
  out.writeUInt32BE(crc32c(out.subarray(0, OBF_SUPERBLOCK_CRC_OFFSET)), OBF_SUPERBLOCK_CRC_OFFSET); // 508–511
  return out;
}

/**
 * Decode the superblock from the first 512 bytes of `buf` (more, e.g. the whole block, is
 * fine and ignored). Checks, in order: length, magic, version (ObfVersionError), superblock
 * length, CRC, then the fields (block sizes, designator length, chunk size, state, policy, log
 * start). Reserved bytes and the reason code are not checked.
 */
export function decodeSuperblock(buf: Buffer): ObfSuperblock {
  const s = SUPERBLOCK;
  if (buf.length < OBF_SUPERBLOCK_LENGTH) {
    throw new DecodeError(s, buf.length, `needs ${OBF_SUPERBLOCK_LENGTH} bytes, got ${buf.length}`);
  }
  for (let i = 0; i < OBF_MAGIC.length; i++) {
    if (buf[i] !== OBF_MAGIC[i]) throw new DecodeError(s, i, 'bad magic (not an OBF: expected "XCPYOBF\\0")');
  }
  const version = buf.readUInt16BE(8);
  if (version !== OBF_VERSION) throw new ObfVersionError(version);
  const length = buf.readUInt16BE(10);
  if (length !== OBF_SUPERBLOCK_LENGTH) {
    throw new DecodeError(s, 10, `superblock length ${length} is not ${OBF_SUPERBLOCK_LENGTH}`);
  }
  const stored = buf.readUInt32BE(OBF_SUPERBLOCK_CRC_OFFSET);
  const computed = crc32c(buf.subarray(0, OBF_SUPERBLOCK_CRC_OFFSET));
  if (stored !== computed) {
    throw new DecodeError(
      s,
      OBF_SUPERBLOCK_CRC_OFFSET,
      `CRC32C ${hex8(stored)} does not match the content (${hex8(computed)})`,
    );
  }
  const blockSize = buf.readUInt32BE(12);
  if (!isBlockSize(blockSize)) throw new DecodeError(s, 12, `OBF block size ${blockSize} is not 512 or 4096`);
  const designatorType = buf[48];
  if (designatorType > 0x0f) throw new DecodeError(s, 48, `designator type ${designatorType} is not 0..15`);
  const designatorLength = buf[49];
  if (designatorLength > OBF_DESIGNATOR_MAX_LENGTH) {
    throw new DecodeError(s, 49, `designator length ${designatorLength} is more than ${OBF_DESIGNATOR_MAX_LENGTH}`);
  }
  const sourceBlockSize = buf.readUInt32BE(84);
  if (!isBlockSize(sourceBlockSize)) {
    throw new DecodeError(s, 84, `source block size ${sourceBlockSize} is not 512 or 4096`);
  }
  const chunkSize = buf.readUInt32BE(96);
  const chunkProblem = chunkSizeProblem(chunkSize, blockSize, sourceBlockSize);
  if (chunkProblem) throw new DecodeError(s, 96, chunkProblem);
  const state = buf[108];
  if (!STATE_NAMES.has(state)) throw new DecodeError(s, 108, `state ${state} is not 1..4`);
  const policy = buf[109];
  if (!POLICY_NAMES.has(policy)) throw new DecodeError(s, 109, `failure policy ${policy} is not 1..2`);
  const logStartLba = buf.readBigUInt64BE(112);
  const capacityBlocks = buf.readBigUInt64BE(120);
  if (logStartLba < 1n || logStartLba > capacityBlocks) {
    throw new DecodeError(s, 112, `log start LBA ${logStartLba} is not in 1..capacity (${capacityBlocks})`);
  }
  return {
    blockSize,
    snapshotId: uuidText(buf, 16),
    seriesId: uuidText(buf, 32),
    sourceDesignator: { designatorType, designator: Buffer.from(buf.subarray(50, 50 + designatorLength)) },
    sourceBlockSize,
    sourceCapacity: buf.readBigUInt64BE(88),
    chunkSize,
    institutionTimeMs: readTimeMs(s, buf, 100, 'institution time'),
    state,
    policy,
    reason: buf.readUInt16BE(110),
    logStartLba,
    capacityBlocks,
    generation: buf.readBigUInt64BE(128),
    updatedTimeMs: readTimeMs(s, buf, 136, 'updated time'),
    markerSequence: buf.readBigUInt64BE(144),
    sealedRecordCount: buf.readBigUInt64BE(152),
  };
}

// ---------------------------------------------------------------------------------------------
// Records (from the log start LBA: one header block, then `dataBlocks` data blocks)
// ---------------------------------------------------------------------------------------------

interface RecordCommon {
  /** Sequence (bytes 8–15): the first record is 1, +1 per record of any type. */
  sequence: bigint;
  /** Snapshot id (bytes 16–31); equal to the superblock's. */
  snapshotId: string;
  /** Time the record was written, ms since the Unix epoch (bytes 48–55). */
  timeMs: number;
}

/** A DATA record: the original content of `sourceBlocks` source blocks at `sourceLba`. */
export interface ObfDataRecordHeader extends RecordCommon {
  type: ObfRecordType.DATA;
  /** Source LBA in source blocks (bytes 32–39). */
  sourceLba: bigint;
  /** Source block count (bytes 40–43), ≥ 1. */
  sourceBlocks: number;
  /** Data blocks in OBF blocks (bytes 44–47), ≥ 1; dataBlocks × B = sourceBlocks × source block size. */
  dataBlocks: number;
}

/** A MARKER record: "every record needed is before me" (written when the outboard copy ended). */
export interface ObfMarkerRecordHeader extends RecordCommon {
  type: ObfRecordType.MARKER;
  /** DATA records before it (bytes 64–71). */
  dataRecordsBefore: bigint;
  /** Data bytes of those records (bytes 72–79). */
  dataBytesBefore: bigint;
}

/** A SEAL record: the end of the log, with totals a reader checks its scan against. */
export interface ObfSealRecordHeader extends RecordCommon {
  type: ObfRecordType.SEAL;
  /** DATA records in the log (bytes 64–71). */
  dataRecordCount: bigint;
  /** Data bytes of those records (bytes 72–79). */
  dataBytes: bigint;
  /** SHA-256 over the 4-byte big-endian CRC of every DATA record, in sequence order (bytes 80–111). */
  rollingHash: Buffer;
  /** Sequence of the MARKER record, 0 = none (bytes 112–119). */
  markerSequence: bigint;
}

export type ObfRecordHeader = ObfDataRecordHeader | ObfMarkerRecordHeader | ObfSealRecordHeader;

/** A decoded header with the CRC it carries (bytes 124–127; covers header and data). */
export type DecodedObfRecordHeader = ObfRecordHeader & { crc: number };

/** What a record's size is checked against: an {@link ObfSuperblock} is one. */
export interface ObfRecordGeometry {
  /** OBF block size B. */
  blockSize: number;
  /** Source block size. */
  sourceBlockSize: number;
  /** Source capacity in source blocks; a DATA record must lie inside it. */
  sourceCapacity: bigint;
}

/** The record fields of a DATA record an encoder takes; `dataBlocks` follows from the data. */
export type ObfDataRecordFields = Omit<ObfDataRecordHeader, 'type' | 'dataBlocks'>;
export type ObfMarkerRecordFields = Omit<ObfMarkerRecordHeader, 'type'>;
export type ObfSealRecordFields = Omit<ObfSealRecordHeader, 'type'>;

/** Blocks a record occupies in the OBF: the header block plus its data blocks. */
export function recordBlocks(header: ObfRecordHeader): number {
  return 1 + (header.type === ObfRecordType.DATA ? header.dataBlocks : 0);
}

/** Data bytes a record carries (dataBlocks × B; 0 for MARKER and SEAL). */
export function recordDataBytes(header: ObfRecordHeader, blockSize: number): bigint {
  return header.type === ObfRecordType.DATA ? BigInt(header.dataBlocks) * BigInt(blockSize) : 0n;
}

/** True when a record of `blocks` blocks written at `lba` ends at or before `capacityBlocks`. */
export function recordFits(lba: bigint, blocks: number, capacityBlocks: bigint): boolean {
  return lba + BigInt(blocks) <= capacityBlocks;
}

/** Blocks of the DATA record of one whole chunk: 1 + chunkSize / B. */
export function chunkRecordBlocks(sb: Pick<ObfSuperblock, 'blockSize' | 'chunkSize'>): number {
  return 1 + sb.chunkSize / sb.blockSize;
}

/**
 * OBF blocks needed to capture `chunks` whole chunks: the log start, one record per chunk, and
 * one block each for a MARKER and a SEAL. With chunks = every chunk of the source this is the
 * size at which the OBF cannot fill up.
 */
export function obfBlocksForChunks(
  sb: Pick<ObfSuperblock, 'blockSize' | 'chunkSize'> & { logStartLba?: bigint },
  chunks: bigint,
): bigint {
  return (sb.logStartLba ?? OBF_LOG_START_LBA) + chunks * BigInt(chunkRecordBlocks(sb)) + 2n;
}

/** How many more whole-chunk records fit between `endLba` and the capacity, keeping 2 blocks for MARKER and SEAL. */
export function chunkRecordsFit(
  sb: Pick<ObfSuperblock, 'blockSize' | 'chunkSize' | 'capacityBlocks'>,
  endLba: bigint,
): bigint {
  const free = sb.capacityBlocks - endLba - 2n;
  return free > 0n ? free / BigInt(chunkRecordBlocks(sb)) : 0n;
}

/**
 * The record CRC: CRC32C over header bytes 0–123, continued over the data blocks in order.
 * `data` may be one buffer or the pieces of it (as a writer holds them), never copied. With
 * `dataCrc` (the data's own CRC32C, computed where it was read) the data is not read again:
 * the header's CRC is carried past it (crc32cCombine).
 */
export function recordCrc(headerBlock: Uint8Array, data: Uint8Array | readonly Uint8Array[] = [], dataCrc?: number): number {
  let crc = crc32c(headerBlock.subarray(0, OBF_RECORD_CRC_OFFSET));
  if (dataCrc !== undefined) return crc32cCombine(crc, dataCrc, dataLength(data));
  if (data instanceof Uint8Array) return crc32c(data, crc);
  for (const piece of data) crc = crc32c(piece, crc);
  return crc;
}

function dataLength(data: Uint8Array | readonly Uint8Array[]): number {
  if (data instanceof Uint8Array) return data.length;
  let n = 0;
  for (const piece of data) n += piece.length;
  return n;
}

/**
 * The header block of a record (B bytes: 128 defined, the rest zero), its CRC computed over
 * the header and `data`. `data` (one buffer or pieces) must be exactly the record's
 * dataBlocks × B bytes (none for MARKER and SEAL). A writer appends the header block and the
 * data with one vectored write; nothing is copied. `dataCrc`: see {@link recordCrc}.
 */
export function encodeRecordHeader(
  header: ObfRecordHeader,
  geometry: ObfRecordGeometry,
  data: Uint8Array | readonly Uint8Array[] = [],
  dataCrc?: number,
): Buffer {
  const out = recordHeaderFields(header, geometry);
  const B = geometry.blockSize;
  const expected = header.type === ObfRecordType.DATA ? header.dataBlocks * B : 0;
  const got = dataLength(data);
  if (got !== expected) {
    throw new EncodeError(RECORD, 'data', `is ${got} bytes; the record needs ${expected} (${expected / B} blocks of ${B})`);
  }
  // 120–123 reserved; 124–127 CRC over header bytes 0–123 and the data.
  out.writeUInt32BE(recordCrc(out, data, dataCrc), OBF_RECORD_CRC_OFFSET);
  return out;
}

/**
 * The header block of a DATA record of `dataBytes` whose data is not read yet: every field but
 * the CRC (bytes 124–127, left zero). Whoever fills the data stores the CRC — CRC32C over header
 * bytes 0–123 continued over the data — before the record is written (the native capture commit
 * does, src/cow/capture-commit.ts commitCaptures).
 */
export function encodeDataRecordHeaderWithoutCrc(fields: ObfDataRecordFields, dataBytes: number, geometry: ObfRecordGeometry): Buffer {
  if (!Number.isInteger(dataBytes) || dataBytes <= 0 || dataBytes % geometry.blockSize !== 0) {
    throw new EncodeError(RECORD, 'data', `${dataBytes} bytes is not a positive number of ${geometry.blockSize}-byte blocks`);
  }
  return recordHeaderFields({ ...fields, type: ObfRecordType.DATA, dataBlocks: dataBytes / geometry.blockSize }, geometry);
}

/** A record's header block with every field but the CRC. */
function recordHeaderFields(header: ObfRecordHeader, geometry: ObfRecordGeometry): Buffer {
  const s = RECORD;
  const B = geometry.blockSize;
  if (!isBlockSize(B)) throw new EncodeError(s, 'block size', `${B} is not 512 or 4096`);
  const out = Buffer.alloc(B);
  OBF_RECORD_MAGIC.copy(out, 0); // 0–3 magic
  out[4] = header.type; // 4 type; 5 reserved
  out.writeUInt16BE(OBF_RECORD_HEADER_LENGTH, 6); // 6–7 header length
  if (u64(s, 'sequence', header.sequence) < 1n) throw new EncodeError(s, 'sequence', 'must be at least 1');
  out.writeBigUInt64BE(header.sequence, 8); // 8–15 sequence
  uuidBytes(s, 'snapshot id', header.snapshotId).copy(out, 16); // 16–31 snapshot id
  out.writeBigUInt64BE(BigInt(timeMsField(s, 'time', header.timeMs)), 48); // 48–55 time; 56–63 reserved
  switch (header.type) {
    case ObfRecordType.DATA: {
      const problem = dataGeometryProblem(header, geometry);
      if (problem) throw new EncodeError(s, problem.field, problem.message);
      out.writeBigUInt64BE(header.sourceLba, 32); // 32–39 source LBA
      out.writeUInt32BE(header.sourceBlocks, 40); // 40–43 source block count
      out.writeUInt32BE(header.dataBlocks, 44); // 44–47 data blocks
      break;
    }
    case ObfRecordType.MARKER:
      out.writeBigUInt64BE(u64(s, 'data records before', header.dataRecordsBefore), 64); // 64–71
      out.writeBigUInt64BE(u64(s, 'data bytes before', header.dataBytesBefore), 72); // 72–79
      break;
    case ObfRecordType.SEAL:
      out.writeBigUInt64BE(u64(s, 'data record count', header.dataRecordCount), 64); // 64–71
      out.writeBigUInt64BE(u64(s, 'data bytes', header.dataBytes), 72); // 72–79
      if (!Buffer.isBuffer(header.rollingHash) || header.rollingHash.length !== 32) {
        throw new EncodeError(s, 'rolling hash', 'must be a 32-byte SHA-256 digest');
      }
      header.rollingHash.copy(out, 80); // 80–111 rolling hash
      out.writeBigUInt64BE(u64(s, 'marker sequence', header.markerSequence), 112); // 112–119
      break;
    default:
      throw new EncodeError(s, 'type', `${(header as { type: unknown }).type} is not DATA, MARKER or SEAL`);
  }
  return out;
}

/** The header block of a DATA record over `data` (dataBlocks = data.length / B); see {@link encodeRecordHeader}. */
export function encodeDataRecordHeader(
  fields: ObfDataRecordFields,
  data: Uint8Array | readonly Uint8Array[],
  geometry: ObfRecordGeometry,
  dataCrc?: number,
): Buffer {
  const n = dataLength(data);
  if (n === 0 || n % geometry.blockSize !== 0) {
    throw new EncodeError(RECORD, 'data', `${n} bytes is not a positive number of ${geometry.blockSize}-byte blocks`);
  }
  return encodeRecordHeader(
    { ...fields, type: ObfRecordType.DATA, dataBlocks: n / geometry.blockSize },
    geometry,
    data,
    dataCrc,
  );
}

/** A whole DATA record, header block then data, as one buffer ready for one write. */
export function encodeDataRecord(fields: ObfDataRecordFields, data: Uint8Array, geometry: ObfRecordGeometry): Buffer {
  return Buffer.concat([encodeDataRecordHeader(fields, data, geometry), data]);
}

/** A MARKER record (one block). */
export function encodeMarkerRecord(fields: ObfMarkerRecordFields, geometry: ObfRecordGeometry): Buffer {
  return encodeRecordHeader({ ...fields, type: ObfRecordType.MARKER }, geometry);
}

/** A SEAL record (one block). */
export function encodeSealRecord(fields: ObfSealRecordFields, geometry: ObfRecordGeometry): Buffer {
  return encodeRecordHeader({ ...fields, type: ObfRecordType.SEAL }, geometry);
}

/** The size rules of a DATA record against the geometry, or undefined when it obeys them. */
function dataGeometryProblem(
  h: Pick<ObfDataRecordHeader, 'sourceLba' | 'sourceBlocks' | 'dataBlocks'>,
  geometry: ObfRecordGeometry,
): { field: string; offset: number; message: string } | undefined {
  if (typeof h.sourceLba !== 'bigint' || h.sourceLba < 0n || h.sourceLba > UINT64_MAX) {
    return { field: 'source LBA', offset: 32, message: `${String(h.sourceLba)} is not a u64` };
  }
  if (!Number.isInteger(h.sourceBlocks) || h.sourceBlocks < 1 || h.sourceBlocks > Number(UINT32_MAX)) {
    return { field: 'source block count', offset: 40, message: `${h.sourceBlocks} is not in 1..2^32 − 1` };
  }
  if (!Number.isInteger(h.dataBlocks) || h.dataBlocks < 1 || h.dataBlocks > Number(UINT32_MAX)) {
    return { field: 'data blocks', offset: 44, message: `${h.dataBlocks} is not in 1..2^32 − 1` };
  }
  const dataBytes = h.dataBlocks * geometry.blockSize;
  const sourceBytes = h.sourceBlocks * geometry.sourceBlockSize;
  if (dataBytes !== sourceBytes) {
    return {
      field: 'data blocks',
      offset: 44,
      message:
        `${h.dataBlocks} × ${geometry.blockSize} bytes ≠ source block count ${h.sourceBlocks} × ` +
        `${geometry.sourceBlockSize} bytes`,
    };
  }
  if (h.sourceLba + BigInt(h.sourceBlocks) > geometry.sourceCapacity) {
    return {
      field: 'source LBA',
      offset: 32,
      message:
        `${h.sourceLba} + ${h.sourceBlocks} blocks is past the source capacity ` +
        `(${geometry.sourceCapacity} blocks)`,
    };
  }
  return undefined;
}

/**
 * DecodeError unless a decoded DATA header obeys the size rules of `geometry`
 * (dataBlocks × B = sourceBlocks × source block size; inside the source capacity).
 * MARKER and SEAL records always pass.
 */
export function checkRecordGeometry(header: ObfRecordHeader, geometry: ObfRecordGeometry): void {
  if (header.type !== ObfRecordType.DATA) return;
  const problem = dataGeometryProblem(header, geometry);
  if (problem) throw new DecodeError(RECORD, problem.offset, `${problem.field} ${problem.message}`);
}

/** True when the first 128 bytes of a header block are all zero (the end of a log). */
export function isZeroRecordHeader(block: Buffer): boolean {
  return isAllZero(block, 0, Math.min(block.length, OBF_RECORD_HEADER_LENGTH));
}

/**
 * Decode a record header from the first 128 bytes of `buf` (a header block). Checks magic,
 * type, header length, the fields a type leaves zero (a MARKER or SEAL has no source range and
 * no data blocks), DATA counts ≥ 1 and, with `geometry`, {@link checkRecordGeometry}. The CRC
 * covers the data too, so it is checked separately: {@link verifyRecord}.
 */
export function decodeRecordHeader(buf: Buffer, geometry?: ObfRecordGeometry): DecodedObfRecordHeader {
  const s = RECORD;
  if (buf.length < OBF_RECORD_HEADER_LENGTH) {
    throw new DecodeError(s, buf.length, `needs ${OBF_RECORD_HEADER_LENGTH} bytes, got ${buf.length}`);
  }
  for (let i = 0; i < OBF_RECORD_MAGIC.length; i++) {
    if (buf[i] !== OBF_RECORD_MAGIC[i]) throw new DecodeError(s, i, 'bad magic (expected "OBFR")');
  }
  const type = buf[4];
  if (!RECORD_TYPE_NAMES.has(type)) throw new DecodeError(s, 4, `type ${type} is not DATA, MARKER or SEAL`);
  const length = buf.readUInt16BE(6);
  if (length !== OBF_RECORD_HEADER_LENGTH) {
    throw new DecodeError(s, 6, `header length ${length} is not ${OBF_RECORD_HEADER_LENGTH}`);
  }
  const sequence = buf.readBigUInt64BE(8);
  if (sequence < 1n) throw new DecodeError(s, 8, 'sequence 0 (the first record is 1)');
  const common = {
    sequence,
    snapshotId: uuidText(buf, 16),
    timeMs: readTimeMs(s, buf, 48, 'time'),
    crc: buf.readUInt32BE(OBF_RECORD_CRC_OFFSET),
  };
  const sourceLba = buf.readBigUInt64BE(32);
  const sourceBlocks = buf.readUInt32BE(40);
  const dataBlocks = buf.readUInt32BE(44);
  if (type === ObfRecordType.DATA) {
    if (sourceBlocks === 0) throw new DecodeError(s, 40, 'DATA record with source block count 0');
    if (dataBlocks === 0) throw new DecodeError(s, 44, 'DATA record with data blocks 0');
    const h: DecodedObfRecordHeader = { ...common, type, sourceLba, sourceBlocks, dataBlocks };
    if (geometry) checkRecordGeometry(h, geometry);
    return h;
  }
  const name = obfRecordTypeName(type);
  if (sourceLba !== 0n) throw new DecodeError(s, 32, `${name} record with a source LBA`);
  if (sourceBlocks !== 0) throw new DecodeError(s, 40, `${name} record with a source block count`);
  if (dataBlocks !== 0) throw new DecodeError(s, 44, `${name} record with data blocks`);
  if (type === ObfRecordType.MARKER) {
    return {
      ...common,
      type,
      dataRecordsBefore: buf.readBigUInt64BE(64),
      dataBytesBefore: buf.readBigUInt64BE(72),
    };
  }
  return {
    ...common,
    type: ObfRecordType.SEAL,
    dataRecordCount: buf.readBigUInt64BE(64),
    dataBytes: buf.readBigUInt64BE(72),
    rollingHash: Buffer.from(buf.subarray(80, 112)),
    markerSequence: buf.readBigUInt64BE(112),
  };
}

/**
 * True when the CRC in a header block (bytes 124–127) matches the header and `data`, which must
 * be exactly the record's data blocks (one buffer or pieces; none for MARKER and SEAL).
 */
export function verifyRecord(headerBlock: Buffer, data: Uint8Array | readonly Uint8Array[] = []): boolean {
  if (headerBlock.length < OBF_RECORD_HEADER_LENGTH) return false;
  return recordCrc(headerBlock, data) === headerBlock.readUInt32BE(OBF_RECORD_CRC_OFFSET);
}

// ---------------------------------------------------------------------------------------------
// Rolling hash (SEAL bytes 80–111)
// ---------------------------------------------------------------------------------------------

/**
 * SHA-256 over the 4-byte big-endian CRC of every DATA record, in sequence order. A writer
 * and a reader feed it the same CRCs; `digest()` may be called at any time and does not end it.
 */
export class RollingHash {
  private readonly hash: Hash = createHash('sha256');
  private readonly word = Buffer.alloc(4);
  private n = 0n;

  /** Adds the CRC of the next DATA record. */
  update(crc: number): this {
    this.word.writeUInt32BE(crc >>> 0, 0);
    this.hash.update(this.word);
    this.n++;
    return this;
  }

  /** CRCs added so far. */
  get count(): bigint {
    return this.n;
  }

  /** The 32-byte digest of the CRCs added so far. */
  digest(): Buffer {
    return this.hash.copy().digest();
  }
}

function hex8(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

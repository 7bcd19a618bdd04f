/**
 * Recovery of an OBF log (docs/obf-format.md, "Recovery"): walk the records from the log start
 * and keep the longest prefix of valid ones. The first record that is not valid ends the log;
 * why is reported in `stop`. Bad on-disk content never throws; only errors of the `read`
 * function (I/O) propagate.
 *
 * The scanner reads ahead: one call fetches up to `maxBatchBlocks` blocks (by default 1 MiB, and
 * at least one whole-chunk record), records that lie wholly in the window are verified in place,
 * and a record cut by the window's end is completed by the next read (the part already read is
 * kept, not read again). A record longer than `maxBatchBlocks` is verified piece by piece.
 */
import { ArgumentError, DecodeError } from '../errors';
import { crc32c } from '../native/crc32c';
import {
  checkRecordGeometry,
  decodeRecordHeader,
  isZeroRecordHeader,
  OBF_RECORD_CRC_OFFSET,
  OBF_RECORD_MAGIC,
  ObfRecordType,
  RollingHash,
  type DecodedObfRecordHeader,
  type ObfSuperblock,
} from './format';

/** Reads `blocks` OBF blocks at `lba` (e.g. `(lba, n) => store.read(lba, n)`). */
export type ObfReadFn = (lba: bigint, blocks: number) => Promise<Buffer>;

/** A valid DATA record: where its data is in the OBF and where it belongs on the source. */
export interface DataRecordRef {
  sequence: bigint;
  /** LBA of the header block in the OBF. */
  obfLba: bigint;
  /** LBA of the first data block in the OBF (obfLba + 1). */
  dataLba: bigint;
  /** Source LBA, in source blocks. */
  sourceLba: bigint;
  /** Length in source blocks. */
  sourceBlocks: number;
  /** Length in OBF blocks. */
  dataBlocks: number;
  /** The record CRC (header and data), as fed to the rolling hash. */
  crc: number;
  timeMs: number;
}

export interface MarkerRef {
  sequence: bigint;
  obfLba: bigint;
  timeMs: number;
  /** As the MARKER records them (checked by {@link checkMarker}). */
  dataRecordsBefore: bigint;
  dataBytesBefore: bigint;
}

export interface SealRef {
  sequence: bigint;
  obfLba: bigint;
  timeMs: number;
  /** As the SEAL records them (checked by {@link checkSeal}). */
  dataRecordCount: bigint;
  dataBytes: bigint;
  rollingHash: Buffer;
  markerSequence: bigint;
}

/**
 * Why the scan ended:
 * - `clean-end`: an all-zero header (the writer's terminator, or never-written space);
 * - `bad-magic`: a block that is not a record header (stale data);
 * - `bad-record`: "OBFR" but an undecodable header (type, lengths, sizes against the
 *   superblock, a second MARKER);
 * - `foreign-snapshot`: a record of another snapshot (a reused LUN);
 * - `sequence-gap`: a record whose sequence is not the next one;
 * - `bad-crc`: header or data do not match the CRC (a torn append);
 * - `past-capacity`: the log reached the OBF capacity, or a record would cross it;
 * - `after-seal`: a SEAL was read; nothing after it is part of the log.
 */
export type ObfScanStop =
  | 'clean-end'
  | 'bad-magic'
  | 'bad-record'
  | 'foreign-snapshot'
  | 'sequence-gap'
  | 'bad-crc'
  | 'past-capacity'
  | 'after-seal';

export interface ObfScan {
  /** The valid DATA records, in sequence order. */
  records: DataRecordRef[];
  /** The MARKER record, when the valid prefix has one. */
  marker?: MarkerRef;
  /** The SEAL record, when the valid prefix ends with one. */
  seal?: SealRef;
  /** The LBA after the last valid record: where the next record goes; [0, endLba) is the used OBF. */
  endLba: bigint;
  /** The sequence the next record takes. */
  nextSequence: bigint;
  stop: ObfScanStop;
  /** What was found where the scan stopped, for logs. */
  stopDetail: string;
  /** Data bytes of the valid DATA records. */
  dataBytes: bigint;
  /** Rolling hash over the valid DATA records (see RollingHash). */
  rollingHash: Buffer;
}

export interface ObfScanOptions {
  /** Most blocks per `read` call (default: 1 MiB worth, and at least one whole-chunk record). */
  maxBatchBlocks?: number;
  /** End of the log area in blocks (default: the superblock's capacity at institution). */
  capacityBlocks?: bigint;
}

/** Read-ahead window over the OBF: serves block ranges, keeping what it already read. */
class BlockWindow {
  private start = 0n;
  private buf: Buffer = Buffer.alloc(0);

  constructor(
    private readonly read: ObfReadFn,
    private readonly blockSize: number,
    private readonly maxBatch: number,
    private readonly limit: bigint,
  ) {}

  /** Blocks [lba, lba + count); count ≤ maxBatch and lba + count ≤ limit. */
  async get(lba: bigint, count: number): Promise<Buffer> {
    const B = this.blockSize;
    const have = BigInt(this.buf.length / B);
    const end = this.start + have;
    if (lba >= this.start && lba + BigInt(count) <= end) {
      const off = Number(lba - this.start) * B;
      return this.buf.subarray(off, off + count * B);
    }
    const kept = lba >= this.start && lba < end ? this.buf.subarray(Number(lba - this.start) * B) : Buffer.alloc(0);
    const keptBlocks = kept.length / B;
    const from = lba + BigInt(keptBlocks);
    const want = Math.min(Math.max(count, this.maxBatch) - keptBlocks, Number(this.limit - from));
    const got = await this.read(from, want);
    if (!Buffer.isBuffer(got) || got.length < want * B) {
      throw new ArgumentError(
        `OBF read of ${want} blocks at LBA ${from} returned ${Buffer.isBuffer(got) ? got.length : typeof got} bytes`,
      );
    }
    const fresh = got.length === want * B ? got : got.subarray(0, want * B);
    this.buf = keptBlocks > 0 ? Buffer.concat([kept, fresh]) : fresh;
    this.start = lba;
    return this.buf.subarray(0, count * B);
  }
}

/** Default read size: 1 MiB of blocks, and at least one whole-chunk record. */
function defaultBatch(sb: ObfSuperblock): number {
  return Math.max((1 << 20) / sb.blockSize, 1 + Math.ceil(sb.chunkSize / sb.blockSize));
}

/** The read size and the end of the log area of a scan, checked. */
function scanLimits(sb: ObfSuperblock, opts: ObfScanOptions): { maxBatch: number; capacity: bigint } {
  const maxBatch = opts.maxBatchBlocks ?? defaultBatch(sb);
  if (!Number.isInteger(maxBatch) || maxBatch < 1) {
    throw new ArgumentError(`maxBatchBlocks must be a positive integer, got ${maxBatch}`);
  }
  const capacity = opts.capacityBlocks ?? sb.capacityBlocks;
  if (typeof capacity !== 'bigint' || capacity < 0n) {
    throw new ArgumentError(`capacityBlocks must be a non-negative bigint, got ${String(capacity)}`);
  }
  return { maxBatch, capacity };
}

/** Where a scan stops, and what was found there. */
interface Stop {
  stop: ObfScanStop;
  detail: string;
}

/** The valid prefix found so far: its records, where the next one begins and which it must be. */
class ValidPrefix {
  readonly records: DataRecordRef[] = [];
  marker: MarkerRef | undefined;
  seal: SealRef | undefined;
  lba: bigint;
  sequence = 1n;
  private dataBytes = 0n;
  private readonly hash = new RollingHash();

  constructor(private readonly sb: ObfSuperblock) {
    this.lba = sb.logStartLba;
  }

  /** Takes the valid record `h`, which begins where the prefix ends, into it. */
  add(h: DecodedObfRecordHeader): void {
    const lba = this.lba;
    switch (h.type) {
      case ObfRecordType.DATA:
        this.records.push({
          sequence: h.sequence,
          obfLba: lba,
          dataLba: lba + 1n,
          sourceLba: h.sourceLba,
          sourceBlocks: h.sourceBlocks,
          dataBlocks: h.dataBlocks,
          crc: h.crc,
          timeMs: h.timeMs,
        });
        this.hash.update(h.crc);
        this.dataBytes += BigInt(h.dataBlocks) * BigInt(this.sb.blockSize);
        break;
      case ObfRecordType.MARKER:
        this.marker = {
          sequence: h.sequence,
          obfLba: lba,
          timeMs: h.timeMs,
          dataRecordsBefore: h.dataRecordsBefore,
          dataBytesBefore: h.dataBytesBefore,
        };
        break;
      case ObfRecordType.SEAL:
        this.seal = {
          sequence: h.sequence,
          obfLba: lba,
          timeMs: h.timeMs,
          dataRecordCount: h.dataRecordCount,
          dataBytes: h.dataBytes,
          rollingHash: h.rollingHash,
          markerSequence: h.markerSequence,
        };
        break;
    }
    this.lba += BigInt(recordBlocks(h));
    this.sequence++;
  }

  /** The scan's result: the prefix, ended where and why. */
  end({ stop, detail }: Stop): ObfScan {
    return {
      records: this.records,
      ...(this.marker ? { marker: this.marker } : {}),
      ...(this.seal ? { seal: this.seal } : {}),
      endLba: this.lba,
      nextSequence: this.sequence,
      stop,
      stopDetail: detail,
      dataBytes: this.dataBytes,
      rollingHash: this.hash.digest(),
    };
  }
}

/**
 * The header block at the end of the prefix, decoded, when it can continue the log (all but its
 * CRC checked: not an all-zero header, magic, a decodable header, this snapshot's id, the next
 * sequence, sizes against the superblock, at most one MARKER, inside the capacity); else where
 * and why the log ends.
 */
function nextHeader(block: Buffer, prefix: ValidPrefix, sb: ObfSuperblock, capacity: bigint): DecodedObfRecordHeader | Stop {
  const lba = prefix.lba;
  if (isZeroRecordHeader(block)) return { stop: 'clean-end', detail: `all-zero header at LBA ${lba}` };
  if (!block.subarray(0, OBF_RECORD_MAGIC.length).equals(OBF_RECORD_MAGIC)) {
    return { stop: 'bad-magic', detail: `no record magic at LBA ${lba}` };
  }
  let h: DecodedObfRecordHeader;
  try {
    h = decodeRecordHeader(block);
  } catch (err) {
    if (err instanceof DecodeError) return { stop: 'bad-record', detail: `LBA ${lba}: ${err.message}` };
    throw err;
  }
  if (h.snapshotId !== sb.snapshotId) {
    return { stop: 'foreign-snapshot', detail: `LBA ${lba}: record of snapshot ${h.snapshotId}, not ${sb.snapshotId}` };
  }
  if (h.sequence !== prefix.sequence) {
    return { stop: 'sequence-gap', detail: `LBA ${lba}: sequence ${h.sequence}, expected ${prefix.sequence}` };
  }
  try {
    checkRecordGeometry(h, sb);
  } catch (err) {
    if (err instanceof DecodeError) return { stop: 'bad-record', detail: `LBA ${lba}: ${err.message}` };
    throw err;
  }
  if (h.type === ObfRecordType.MARKER && prefix.marker) {
    return {
      stop: 'bad-record',
      detail: `LBA ${lba}: a second MARKER (sequence ${h.sequence}; the first is ${prefix.marker.sequence})`,
    };
  }
  const blocks = recordBlocks(h);
  if (lba + BigInt(blocks) > capacity) {
    return {
      stop: 'past-capacity',
      detail: `LBA ${lba}: a record of ${blocks} blocks would cross the OBF capacity (${capacity} blocks)`,
    };
  }
  return h;
}

/** Blocks of a record: its header block and its data blocks. */
function recordBlocks(h: DecodedObfRecordHeader): number {
  return 1 + (h.type === ObfRecordType.DATA ? h.dataBlocks : 0);
}

/**
 * The CRC32C of the record whose header `block` is at `lba`: over header bytes 0–123, then the
 * data blocks (docs/obf-format.md) — read in one window when the record fits in `maxBatch`
 * blocks, else piece by piece.
 */
async function recordCrc(win: BlockWindow, block: Buffer, lba: bigint, blocks: number, maxBatch: number): Promise<number> {
  if (blocks <= maxBatch) {
    const whole = await win.get(lba, blocks);
    return crc32c(whole.subarray(block.length), crc32c(whole.subarray(0, OBF_RECORD_CRC_OFFSET))); // data: after the header block
  }
  let crc = crc32c(block.subarray(0, OBF_RECORD_CRC_OFFSET));
  const dataBlocks = blocks - 1;
  for (let verified = 0; verified < dataBlocks; ) {
    const n = Math.min(maxBatch, dataBlocks - verified);
    crc = crc32c(await win.get(lba + 1n + BigInt(verified), n), crc);
    verified += n;
  }
  return crc;
}

/**
 * Walk the log of `sb` and return its valid prefix. Validity of a record, checked in this
 * order: not an all-zero header, magic, a decodable header, this snapshot's id, the next
 * sequence, sizes against the superblock, at most one MARKER, inside the capacity, CRC over
 * header and data. A SEAL ends the log.
 */
export async function scanLog(read: ObfReadFn, sb: ObfSuperblock, opts: ObfScanOptions = {}): Promise<ObfScan> {
  return scanFrom(read, sb, new ValidPrefix(sb), opts);
}

/**
 * Reads a log while its snapshot still writes it (docs/obf-format.md, "Reading a live log"):
 * records are only ever appended, and one that is valid stays valid, so each poll() takes the
 * prefix on from where the last one ended; whatever ended it (a header not written yet, a record
 * half written, a later record that landed first) is read again by the next poll. Once the log
 * is sealed (or marked), a last poll() gives the same result as scanLog over the whole log, for
 * the price of reading only what was added since. The result's `records` is the tail's own
 * array, extended by later polls.
 */
export class LogTail {
  private readonly prefix: ValidPrefix;

  constructor(
    private readonly read: ObfReadFn,
    readonly superblock: ObfSuperblock,
    private readonly opts: ObfScanOptions = {},
  ) {
    this.prefix = new ValidPrefix(superblock);
  }

  /** The valid prefix as of now, and where and why it ends this time. */
  poll(): Promise<ObfScan> {
    return scanFrom(this.read, this.superblock, this.prefix, this.opts);
  }
}

/** Extends `prefix` over the valid records that follow it (a fresh window: nothing stale is kept). */
async function scanFrom(read: ObfReadFn, sb: ObfSuperblock, prefix: ValidPrefix, opts: ObfScanOptions): Promise<ObfScan> {
  const { maxBatch, capacity } = scanLimits(sb, opts);
  const win = new BlockWindow(read, sb.blockSize, maxBatch, capacity);
  for (;;) {
    const lba = prefix.lba;
    if (prefix.seal) return prefix.end({ stop: 'after-seal', detail: `SEAL at LBA ${prefix.seal.obfLba} ends the log` });
    if (lba >= capacity) return prefix.end({ stop: 'past-capacity', detail: `the log reaches the OBF capacity (${capacity} blocks)` });
    const block = await win.get(lba, 1);
    const h = nextHeader(block, prefix, sb, capacity);
    if ('stop' in h) return prefix.end(h);
    const crc = await recordCrc(win, block, lba, recordBlocks(h), maxBatch);
    if (crc !== h.crc) {
      return prefix.end({ stop: 'bad-crc', detail: `LBA ${lba}: record ${h.sequence} CRC32C ${hex8(h.crc)} does not match ${hex8(crc)}` });
    }
    prefix.add(h);
  }
}

export interface ObfCheck {
  ok: boolean;
  mismatches: string[];
}

/**
 * Checks the MARKER's counts against the scan: the DATA records before it and their bytes.
 * A scan without a MARKER is not ok ("no MARKER").
 */
export function checkMarker(scan: ObfScan, blockSize: number): ObfCheck {
  const m = scan.marker;
  if (!m) return { ok: false, mismatches: ['no MARKER record in the log'] };
  const before = scan.records.filter((r) => r.sequence < m.sequence);
  const bytes = before.reduce((sum, r) => sum + BigInt(r.dataBlocks) * BigInt(blockSize), 0n);
  const mismatches: string[] = [];
  if (m.dataRecordsBefore !== BigInt(before.length)) {
    mismatches.push(`MARKER counts ${m.dataRecordsBefore} DATA records before it, the log has ${before.length}`);
  }
  if (m.dataBytesBefore !== bytes) {
    mismatches.push(`MARKER counts ${m.dataBytesBefore} data bytes before it, the log has ${bytes}`);
  }
  return { ok: mismatches.length === 0, mismatches };
}

/**
 * Checks the SEAL against the scan: DATA record count, data bytes, rolling hash and marker
 * sequence must equal what the scan recomputed. A scan without a SEAL is not ok ("no SEAL").
 */
export function checkSeal(scan: ObfScan): ObfCheck {
  const s = scan.seal;
  if (!s) return { ok: false, mismatches: [`no SEAL record (the scan stopped: ${scan.stop}, ${scan.stopDetail})`] };
  const mismatches: string[] = [];
  if (s.dataRecordCount !== BigInt(scan.records.length)) {
    mismatches.push(`SEAL counts ${s.dataRecordCount} DATA records, the log has ${scan.records.length}`);
  }
  if (s.dataBytes !== scan.dataBytes) {
    mismatches.push(`SEAL counts ${s.dataBytes} data bytes, the log has ${scan.dataBytes}`);
  }
  if (!s.rollingHash.equals(scan.rollingHash)) {
    mismatches.push(
      `SEAL rolling hash ${s.rollingHash.toString('hex')} differs from the log's ${scan.rollingHash.toString('hex')}`,
    );
  }
  const markerSequence = scan.marker?.sequence ?? 0n;
  if (s.markerSequence !== markerSequence) {
    mismatches.push(`SEAL names MARKER sequence ${s.markerSequence}, the log has ${markerSequence || 'none'}`);
  }
  return { ok: mismatches.length === 0, mismatches };
}

function hex8(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

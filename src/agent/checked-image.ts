/**
 * The image a copy stands for (the source as of 602), read from its secondary a piece at a time,
 * every byte checked against the copy's extent hash table before it is handed out
 * (docs/restore.md, "Restoring files"). An append-mode copy not yet integrated is the image with
 * its appended log laid over it: the log is read and checked against its SEAL or MARKER first,
 * as `verify` does (docs/secondary-format.md, "Verifying a secondary").
 *
 * Reads come in whole hash extents (1 MiB by default): the extent is the unit the hashes check.
 * A few extents are kept, so the files of one directory, placed together by the file system, cost
 * one read each.
 */
import { AgentError } from '../errors';
import type { IscsiSession } from '../initiator/session';
import type { DataRecordRef } from '../obf/log';
import * as secondary from '../secondary';
import { layOver } from './image-hashes';
import { readHashTable, readSecondaryMetadata, type ReadBlocks } from './secondary-lun';
import { checkedAppendedLog } from './verify';

/** Extents kept in memory (LRU). */
const KEPT_EXTENTS = 16;

export class CheckedImage {
  private readonly kept = new Map<number, Buffer>();
  /** Extents read and checked, and their bytes. */
  extentsRead = 0;
  bytesRead = 0;

  private constructor(
    readonly record: secondary.SecondaryRecord,
    private readonly read: ReadBlocks,
    private readonly hashes: readonly Buffer[],
    private readonly records: readonly DataRecordRef[],
    private readonly name: string,
  ) {}

  get layout(): secondary.SecondaryLayout {
    return this.record.layout;
  }

  /** Records of the appended log laid over the image (0 unless append mode, not integrated). */
  get logRecords(): number {
    return this.records.length;
  }

  /**
   * The image of the copy on `sec` (named `name` in messages): its metadata, hash table and (append
   * mode, not integrated) appended log, each checked. A copy not complete or not checkable is
   * refused: ERR_SNAPSHOT_STATE for one that failed or did not finish, ERR_VERIFY_MISMATCH for
   * missing hashes or a log that does not check out.
   */
  static async open(sec: Pick<IscsiSession, 'read16' | 'readCapacity16'>, name: string): Promise<CheckedImage> {
    const read: ReadBlocks = (lba, n) => sec.read16(lba, n);
    const capacity = (await sec.readCapacity16()).returnedLogicalBlockAddress + 1n;
    const r = await readSecondaryMetadata(read, capacity, name);
    if (r.state !== 'integrated' && r.state !== 'log-appended') {
      throw new AgentError('ERR_SNAPSHOT_STATE', `${name} holds a copy in state ${r.state}${r.reason ? ` (${r.reason})` : ''}: only a complete copy (integrated, or log-appended) can be restored from`);
    }
    const L = r.layout;
    if (r.progress.hashedExtents < L.extents) {
      throw new AgentError('ERR_VERIFY_MISMATCH', `${name} is not a good copy: only ${r.progress.hashedExtents} of its ${L.extents} extents have a hash, so what is read from it cannot be checked`);
    }
    const hashes = await readHashTable(read, r);
    let records: DataRecordRef[] = [];
    if (r.state === 'log-appended') {
      const log = await checkedAppendedLog(sec, r, name);
      records = [...log.records].sort((a, b) => (a.sourceLba < b.sourceLba ? -1 : a.sourceLba > b.sourceLba ? 1 : 0));
    }
    return new CheckedImage(r, read, hashes, records, name);
  }

  /** `length` bytes of the image from byte `offset` (within the image). */
  async bytes(offset: number, length: number): Promise<Buffer> {
    const E = this.layout.extentBytes;
    const imageBytes = Number(this.layout.imageBlocks) * this.layout.blockSize;
    if (offset < 0 || length < 0 || offset + length > imageBytes) {
      throw new AgentError('ERR_FS_CORRUPT', `bytes ${offset}..${offset + length - 1} lie outside the image of ${imageBytes} bytes: the table of contents does not fit this copy`);
    }
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const at = offset + done;
      const i = Math.floor(at / E);
      const extent = await this.extent(i);
      const from = at - i * E;
      const n = Math.min(length - done, extent.length - from);
      extent.copy(out, done, from, from + n);
      done += n;
    }
    return out;
  }

  /** Extent `i`, read, the log laid over it, and checked against its hash. */
  private async extent(i: number): Promise<Buffer> {
    const hit = this.kept.get(i);
    if (hit) {
      this.kept.delete(i);
      this.kept.set(i, hit);
      return hit;
    }
    const L = this.layout;
    const B = BigInt(L.blockSize);
    const { offset, bytes } = secondary.extentRange(L, i);
    const lba = offset / B;
    const end = lba + BigInt(bytes / L.blockSize);
    const data = await this.read(lba, bytes / L.blockSize);
    const readLog: ReadBlocks = (x, n) => this.read(L.logLba + x, n);
    for (const r of this.overlapping(lba, end)) await layOver(readLog, r, data, lba, end, L.blockSize);
    if (!secondary.extentHash(data).equals(this.hashes[i])) {
      throw new AgentError(
        'ERR_VERIFY_MISMATCH',
        `${this.name} is not a good copy: extent ${i} (bytes ${offset}..${offset + BigInt(bytes) - 1n}) differs from the hash table of backup ${this.record.backupId}; no file was written from those bytes (run \`xcopy-agent verify\` to check the whole copy)`,
      );
    }
    this.extentsRead++;
    this.bytesRead += bytes;
    this.kept.set(i, data);
    if (this.kept.size > KEPT_EXTENTS) this.kept.delete(this.kept.keys().next().value!);
    return data;
  }

  /** The records (sorted by source LBA) that touch blocks [lba, end). */
  private overlapping(lba: bigint, end: bigint): DataRecordRef[] {
    const rs = this.records;
    let lo = 0;
    let hi = rs.length;
    // The first record whose end lies past lba; records do not overlap each other (one per chunk).
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (rs[mid].sourceLba + BigInt(rs[mid].sourceBlocks) <= lba) lo = mid + 1;
      else hi = mid;
    }
    const out: DataRecordRef[] = [];
    for (let j = lo; j < rs.length && rs[j].sourceLba < end; j++) out.push(rs[j]);
    return out;
  }
}

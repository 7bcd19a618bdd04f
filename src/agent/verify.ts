/**
 * `verify`: proves a copy good from the secondary alone (docs/secondary-format.md, "Verifying a
 * secondary"). Every extent of the image is read back and its SHA-256 compared with the hash
 * table the backup wrote — hashes the source's target computed from the snapshot's view, so they
 * are independent of the copy they check (docs/backup.md). An append-mode copy not integrated
 * yet is checked as the image it stands for: the appended log is read and checked against its
 * SEAL (or MARKER), and its records are laid over each extent before hashing. With `against`, a
 * LUN a copy was restored onto is checked against the same hash table instead.
 *
 * Every extent is checked (not only up to the first bad one): the error says how many differ
 * and which is first. A copy that is not complete (a backup that failed or did not finish, hashes
 * missing) is not a good copy either: ERR_VERIFY_MISMATCH (exit 14) for all of these.
 */
import { AgentError, ArgumentError, DecodeError } from '../errors';
import { IscsiSession, type SessionOptions } from '../initiator/session';
import { redactUrl } from '../initiator/url';
import * as secondary from '../secondary';
import { readAppendedLog, type ObfLog } from './apply-obf';
import { imageExtentHashes, type ImageHashOptions } from './image-hashes';
import { readHashTable, readSecondaryMetadata, type ReadBlocks } from './secondary-lun';

export interface VerifyOptions {
  secondary: string;
  /** A LUN the copy was restored onto: its first image blocks are checked instead of the secondary's image. */
  against?: string;
  session?: SessionOptions;
  signal?: AbortSignal;
  /** Called as extents are checked, with image blocks done and in all. */
  onProgress?: (done: bigint, total: bigint, blockSize: number) => void;
}

export interface VerifyResult {
  backup_id: string;
  label?: string;
  mode: secondary.SecondaryMode;
  state: secondary.SecondaryState;
  /** What was read and hashed: the secondary (its image, with the appended log laid over it when not integrated), or the LUN named by `against`. */
  checked: string;
  image_bytes: bigint;
  extents: number;
  /** Records of the appended log laid over the image (append mode, not integrated). */
  log_records?: number;
  seconds: number;
}

/** ERR_VERIFY_MISMATCH: what was checked is not a good copy (`what` says why). */
function notGood(name: string, what: string, cause?: unknown): AgentError {
  return new AgentError('ERR_VERIFY_MISMATCH', `${name} is not a good copy: ${what}`, cause === undefined ? undefined : { cause });
}

/** ERR_VERIFY_MISMATCH unless each digest of `got` is the hash table's for its extent (how many differ, and the first). */
export function checkExtentHashes(checked: string, backupId: string, L: secondary.SecondaryLayout, got: readonly Buffer[], hashes: readonly Buffer[]): void {
  const bad = got.flatMap((h, i) => (h.equals(hashes[i]) ? [] : [i]));
  if (bad.length > 0) {
    const e = secondary.extentRange(L, bad[0]);
    throw notGood(checked, `${bad.length} of ${got.length} extents differ from the hash table of backup ${backupId}, the first extent ${bad[0]} (bytes ${e.offset}..${e.offset + BigInt(e.bytes) - 1n})`);
  }
}

/**
 * The appended log of a copy not integrated, read and checked against its SEAL or MARKER and
 * against the record count its metadata gives (the records the image needs: those before the
 * MARKER of a --mark copy); ERR_VERIFY_MISMATCH when it does not check out.
 */
export async function checkedAppendedLog(sec: Pick<IscsiSession, 'read16'>, r: secondary.SecondaryRecord, name: string): Promise<ObfLog> {
  const log = await readAppendedLog(sec, r).catch((err: unknown) => {
    throw notGood(name, `its appended log does not check out (${(err as Error).message})`, err);
  });
  if (r.log && log.records.length !== r.log.records) {
    throw notGood(name, `its appended log holds ${log.records.length} records for the image, its metadata says ${r.log.records}`);
  }
  return log;
}

export async function verify(o: VerifyOptions): Promise<VerifyResult> {
  const t0 = process.hrtime.bigint();
  const sec = await IscsiSession.connect(o.secondary, o.session);
  let other: IscsiSession | undefined;
  try {
    const name = redactUrl(sec.url);
    const capacity = (await sec.readCapacity16()).returnedLogicalBlockAddress + 1n;
    const readSec: ReadBlocks = (lba, n) => sec.read16(lba, n);
    const r = await readSecondaryMetadata(readSec, capacity, name).catch((err: unknown) => {
      // Our trailer, but neither header slot valid (a damaged metadata area): not a usable copy.
      if (err instanceof DecodeError) throw notGood(name, `its metadata does not decode (${err.message})`, err);
      throw err;
    });
    if (r.state === 'failed') throw notGood(name, `its backup failed (${r.reason ?? 'no reason recorded'})`);
    if (r.state !== 'integrated' && r.state !== 'log-appended') throw notGood(name, `its backup did not finish (state ${r.state})`);
    const L = r.layout;
    if (r.progress.hashedExtents < L.extents) throw notGood(name, `only ${r.progress.hashedExtents} of its ${L.extents} extents have a hash`);
    const hashes = await readHashTable(readSec, r);

    let read = readSec;
    let checked = name;
    let overlay: ImageHashOptions['overlay'];
    let logRecords: number | undefined;
    if (o.against !== undefined) {
      other = await IscsiSession.connect(o.against, o.session);
      checked = redactUrl(other.url);
      const cap = await other.readCapacity16();
      if (cap.logicalBlockLength !== L.blockSize) {
        throw new ArgumentError(`${checked} has ${cap.logicalBlockLength}-byte blocks, the copy ${L.blockSize}-byte ones: it cannot hold this copy's image`);
      }
      if (cap.returnedLogicalBlockAddress + 1n < L.imageBlocks) {
        throw new ArgumentError(`${checked} has ${cap.returnedLogicalBlockAddress + 1n} blocks, fewer than the copy's image (${L.imageBlocks}): it cannot hold it`);
      }
      const s = other;
      read = (lba, n) => s.read16(lba, n);
    } else if (r.state === 'log-appended') {
      // The image is exact only with the appended log laid over it: read and check the log first.
      const log = await checkedAppendedLog(sec, r, name);
      overlay = { records: log.records, read: (lba, n) => sec.read16(L.logLba + lba, n) };
      logRecords = log.records.length;
    }

    const got = await imageExtentHashes({
      layout: L,
      read,
      overlay,
      beforeExtent: () => {
        if (o.signal?.aborted === true) throw new AgentError('ERR_INTERRUPTED', 'verify interrupted');
      },
      onExtent: (done, total) => {
        if (done % 16 !== 0 && done !== total) return;
        const e = secondary.extentRange(L, done - 1);
        o.onProgress?.((e.offset + BigInt(e.bytes)) / BigInt(L.blockSize), L.imageBlocks, L.blockSize);
      },
    });
    checkExtentHashes(checked, r.backupId, L, got, hashes);
    return {
      backup_id: r.backupId,
      ...(r.label !== undefined ? { label: r.label } : {}),
      mode: r.mode,
      state: r.state,
      checked,
      image_bytes: L.imageBlocks * BigInt(L.blockSize),
      extents: got.length,
      ...(logRecords !== undefined ? { log_records: logRecords } : {}),
      seconds: Number(process.hrtime.bigint() - t0) / 1e9,
    };
  } finally {
    await other?.close().catch(() => undefined);
    await sec.close().catch(() => undefined);
  }
}

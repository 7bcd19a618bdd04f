/**
 * `export` (docs/method.md 610): copies a secondary — image, log area, metadata area and
 * trailer: the whole LUN — to backup media, so that the copy is itself a self-describing
 * secondary (docs/secondary-format.md, "Copies of a secondary"):
 *  - to another LUN, by EXTENDED COPY through a copy manager (the destination's, or `bridge`;
 *    through this host only with `fallback`). The destination has the secondary's block size and
 *    at least its capacity. One of the same size receives the LUN block for block; on a larger
 *    one the metadata area goes right before its last block, where a reader looks for it, and
 *    the header is rewritten for that layout ("relocated"). The destination's old trailer is
 *    zeroed first and the new one written last, so no reader follows a trailer to a copy in
 *    progress. A destination holding data that is not a secondary is refused unless `yes`.
 *  - to a file, through this host: read in large chunks, all-zero 4 KiB granules left as holes
 *    (the file is truncated to its full size first, so they read back zeros). An existing
 *    non-empty file is refused unless `yes`.
 * Only a secondary in state `integrated` or `log-appended` is a backup; another is exported only
 * with `force`. Then the copy is verified from the destination: its metadata reads back
 * (trailer, header, layout) as the same backup, its hash table is the secondary's, and the
 * SHA-256 of each extent of the exported image — with the appended log's records laid over it
 * before 610 — is the one its hash table records.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AgentError, ArgumentError, DecodeError } from '../errors';
import { IscsiSession, type SessionOptions } from '../initiator/session';
import { redactUrl } from '../initiator/url';
import * as secondary from '../secondary';
import { isAllZero } from '../util/zero';
import { readAppendedLog } from './apply-obf';
import { imageExtentHashes, type ImageHashOptions } from './image-hashes';
import { inPieces } from './pieces';
import { blankOrSecondary, readHashTable, readSecondaryMetadata, SecondaryLun, type ReadBlocks } from './secondary-lun';
import { xcopyCopy, type XcopyCopyResult } from './xcopy-copy';

export type ExportPhase = 'copy' | 'verify';

export interface ExportOptions {
  /** The secondary LUN (iscsi://...). */
  secondary: string;
  /** Another LUN (iscsi://...) or a file path. */
  to: string;
  /** The copy manager for a LUN destination (default: the destination's). */
  bridge?: string;
  /** Copy to a LUN through this host when no copy manager can. */
  fallback?: boolean;
  /** Overwrite a destination that holds other data (a LUN) or an existing file. */
  yes?: boolean;
  /** Export a secondary that is not integrated or log-appended. */
  force?: boolean;
  session?: SessionOptions;
  signal?: AbortSignal;
  onPhase?: (phase: ExportPhase) => void;
  /** Blocks done of the secondary's capacity (copy) or of its image (verify). */
  /** `path`: how a copy's data goes (the copy manager's EXTENDED COPY, or this host), when known. */
  onProgress?: (phase: ExportPhase, doneBlocks: bigint, totalBlocks: bigint, blockSize: number, path?: 'xcopy' | 'host') => void;
}

export interface ExportResult {
  backup_id: string;
  state: secondary.SecondaryState;
  to: string;
  /** The whole secondary: its capacity in bytes. */
  bytes: bigint;
  block_size: number;
  /** How the bytes moved: by EXTENDED COPY, through this host (LUN to LUN), or to a file. */
  path: XcopyCopyResult['path'] | 'file';
  xcopy_bytes: bigint;
  host_bytes: bigint;
  fallback_reason?: string;
  /** A file: bytes left as holes because they were zeros (0 for a LUN). */
  sparse_bytes_skipped: bigint;
  /** A LUN larger than the secondary: the metadata area was moved to its end. */
  relocated: boolean;
  verified: true;
  /** Extents whose SHA-256 was recomputed from the destination. */
  verified_extents: number;
  seconds: number;
}

/** The secondary being exported: its session, its record, and the hashes its table records. */
interface Source {
  session: IscsiSession;
  record: secondary.SecondaryRecord;
  hashes: Buffer[];
}

/** What one kind of destination reports. */
type Copied = Pick<ExportResult, 'to' | 'path' | 'xcopy_bytes' | 'host_bytes' | 'fallback_reason' | 'sparse_bytes_skipped' | 'relocated' | 'verified_extents'>;

/** The states whose secondary is a backup (docs/secondary-format.md, "States"). */
const EXPORTABLE: readonly secondary.SecondaryState[] = ['integrated', 'log-appended'];
/** Bytes per READ when exporting to a file (at most the LUN's MAXIMUM TRANSFER LENGTH). */
const FILE_CHUNK_BYTES = 8 * 1048576;
/** READs in flight when exporting to a file. */
const FILE_DEPTH = 4;
/** The unit of holes in the file: a file system block. */
const HOLE_GRANULE_BYTES = 4096;

export async function exportSecondary(o: ExportOptions): Promise<ExportResult> {
  const t0 = process.hrtime.bigint();
  const src = await IscsiSession.connect(o.secondary, o.session);
  try {
    const lun = await SecondaryLun.open(src);
    const record = lun.record;
    if (!EXPORTABLE.includes(record.state) && o.force !== true) {
      throw new AgentError(
        'ERR_SNAPSHOT_STATE',
        `${redactUrl(src.url)} holds a copy in state ${record.state}${record.reason ? ` (${record.reason})` : ''}, which is not a backup: export an integrated or log-appended one, or add --force to copy it all the same`,
      );
    }
    const source: Source = { session: src, record, hashes: await readHashTable((lba, n) => src.read16(lba, n), record) };
    const copied = o.to.startsWith('iscsi://') ? await toLun(source, o) : await toFile(source, o);
    const L = record.layout;
    return {
      backup_id: record.backupId,
      state: record.state,
      ...copied,
      bytes: L.capacityBlocks * BigInt(L.blockSize),
      block_size: L.blockSize,
      verified: true,
      seconds: Number(process.hrtime.bigint() - t0) / 1e9,
    };
  } finally {
    await src.close().catch(() => undefined);
  }
}

// ---- to a LUN ----------------------------------------------------------------------------------

async function toLun(source: Source, o: ExportOptions): Promise<Copied> {
  const L = source.record.layout;
  const B = L.blockSize;
  const dst = await IscsiSession.connect(o.to, o.session);
  try {
    const name = redactUrl(dst.url);
    const cap = await dst.readCapacity16();
    const blocks = cap.returnedLogicalBlockAddress + 1n;
    if (cap.logicalBlockLength !== B) {
      throw new ArgumentError(`the destination ${name} has ${cap.logicalBlockLength}-byte blocks, the secondary ${B}-byte ones: choose a destination with ${B}-byte blocks`);
    }
    if (blocks < L.capacityBlocks) throw new ArgumentError(`destination too small: ${L.capacityBlocks} blocks needed, ${blocks} present (grow it, or export to a file)`);
    if (await sameLun(source.session, dst)) throw new ArgumentError(`the destination ${name} is the secondary itself: give another LUN`);
    if (o.yes !== true && !(await blankOrSecondary((lba, n) => dst.read16(lba, n), blocks, B))) {
      throw new AgentError('ERR_DESTINATION_IN_USE', `the destination ${name} holds data that is not a secondary: give a blank LUN, or --yes to overwrite it`);
    }
    const relocated = blocks !== L.capacityBlocks;
    const layout = relocated ? relocatedLayout(source.record, blocks) : L;
    o.onPhase?.('copy');
    // The old trailer goes first: no reader follows it to headers this copy is overwriting.
    await dst.write16(blocks - 1n, Buffer.alloc(B), { fua: true });
    const copy = (skip: bigint, seek: bigint, count: bigint) =>
      xcopyCopy({
        from: o.secondary,
        to: o.to,
        bridge: o.bridge,
        skip,
        seek,
        count,
        fallback: o.fallback === true,
        fallbackHint: 'add --fallback',
        session: o.session,
        signal: o.signal,
        onProgress: (done, _total, path) => o.onProgress?.('copy', skip + done, L.capacityBlocks, B, path),
      });
    // Everything before the trailer, the metadata area where the destination's layout puts it.
    const copies = relocated ? [await copy(0n, 0n, L.metaLba), await copy(L.metaLba, layout.metaLba, L.metaBlocks)] : [await copy(0n, 0n, L.capacityBlocks - 1n)];
    if (relocated) {
      // SecondaryLun.create writes the trailer, then a header past both copied slots; the
      // second save leaves no slot describing the secondary's own layout.
      const meta = await SecondaryLun.create(dst, { ...source.record, layout });
      await meta.save({});
    } else {
      await dst.write16(L.trailerLba, await source.session.read16(L.trailerLba, 1), { fua: true });
    }
    await dst.synchronizeCache16();
    const verifiedExtents = await verifyCopy(source, (lba, n) => dst.read16(lba, n), blocks, name, o);
    const paths = new Set(copies.map((c) => c.path));
    const fallback = copies.find((c) => c.fallback_reason)?.fallback_reason;
    return {
      to: name,
      path: paths.size === 1 ? copies[0].path : 'mixed',
      xcopy_bytes: copies.reduce((n, c) => n + c.xcopy_bytes, 0n),
      host_bytes: copies.reduce((n, c) => n + c.host_bytes, 0n),
      ...(fallback ? { fallback_reason: fallback } : {}),
      sparse_bytes_skipped: 0n,
      relocated,
      verified_extents: verifiedExtents,
    };
  } finally {
    await dst.close().catch(() => undefined);
  }
}

/** The secondary's layout on a larger LUN: the same sizes, the metadata area before its last block. */
function relocatedLayout(r: secondary.SecondaryRecord, capacityBlocks: bigint): secondary.SecondaryLayout {
  const L = r.layout;
  return secondary.planLayout({
    blockSize: L.blockSize,
    capacityBlocks,
    imageBlocks: L.imageBlocks,
    mode: r.mode,
    logBlocksMax: r.mode === 'append' ? L.logBlocksMax : undefined,
    extentBytes: L.extentBytes,
    tocBytes: L.tocBlocks * BigInt(L.blockSize),
  });
}

/**
 * True when two sessions reach one logical unit: they share a VPD 83h designator of the LU
 * (association 0) other than a LOGICAL UNIT GROUP (type 6h, SPC-4 r37 7.8.6.9), which LUs share
 * by design (LIO gives all its LUNs group 0).
 */
async function sameLun(a: IscsiSession, b: IscsiSession): Promise<boolean> {
  const ids = async (s: IscsiSession) =>
    (await s.deviceIdentification().catch(() => ({ designators: [] }))).designators
      .filter((d) => d.association === 0 && d.designatorType !== 6)
      .map((d) => `${d.designatorType}:${d.designator.toString('hex')}`);
  const mine = new Set(await ids(a));
  return (await ids(b)).some((d) => mine.has(d));
}

// ---- to a file ---------------------------------------------------------------------------------

async function toFile(source: Source, o: ExportOptions): Promise<Copied> {
  const L = source.record.layout;
  const file = path.resolve(o.to);
  const st = await fs.promises.stat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new ArgumentError(`cannot export to ${file}: ${err.message}`);
  });
  if (st && !st.isFile()) throw new ArgumentError(`${file} is not a regular file: export writes a sparse file (give a file path, or an iscsi:// URL for a LUN)`);
  if (st && st.size > 0 && o.yes !== true) throw new AgentError('ERR_DESTINATION_IN_USE', `${file} exists and is not empty: give a new file, or --yes to overwrite it`);
  const total = L.capacityBlocks * BigInt(L.blockSize);
  o.onPhase?.('copy');
  // O_TRUNC, then the full size: every block the copy does not write is a hole and reads zeros.
  const fh = await fs.promises.open(file, 'w').catch((err: Error) => {
    throw new ArgumentError(`cannot export to ${file}: ${err.message}`);
  });
  let skipped: bigint;
  try {
    await fh.truncate(Number(total));
    skipped = await copyToFile(source.session, fh, L, o);
    await fh.datasync();
  } catch (err) {
    throw err instanceof AgentError ? err : new AgentError('ERR_STORE', `writing ${file} failed: ${(err as Error).message}`, { cause: err });
  } finally {
    await fh.close();
  }
  const rh = await fs.promises.open(file, 'r');
  try {
    const verifiedExtents = await verifyCopy(source, fileReader(rh, L.blockSize, file), L.capacityBlocks, file, o);
    return { to: file, path: 'file', xcopy_bytes: 0n, host_bytes: total, sparse_bytes_skipped: skipped, relocated: false, verified_extents: verifiedExtents };
  } finally {
    await rh.close();
  }
}

/** Reads the whole secondary into `fh`, FILE_DEPTH READs in flight; returns the bytes left as holes. */
async function copyToFile(src: IscsiSession, fh: fs.promises.FileHandle, L: secondary.SecondaryLayout, o: ExportOptions): Promise<bigint> {
  const B = L.blockSize;
  const limits = await src.blockLimits().catch(() => undefined);
  const perGranule = Math.max(1, HOLE_GRANULE_BYTES / B);
  let chunk = Math.floor(FILE_CHUNK_BYTES / B);
  if (limits && limits.maximumTransferLength > 0 && limits.maximumTransferLength < chunk) chunk = limits.maximumTransferLength;
  if (chunk >= perGranule) chunk -= chunk % perGranule; // holes then line up with file system blocks
  let skipped = 0n;
  const count = L.capacityBlocks;
  await inPieces(
    count,
    BigInt(chunk),
    async (at, n) => {
      const holes = await writeNonZero(fh, await src.read16(at, Number(n)), Number(at) * B, perGranule * B);
      skipped += BigInt(holes); // after the await: pieces in flight add in turn
    },
    {
      depth: FILE_DEPTH,
      signal: o.signal,
      onProgress: (done, total) => o.onProgress?.('copy', done, total, B, 'host'),
      interrupted: (done) => `export interrupted after ${done} of ${count} blocks; the file is incomplete (export again)`,
    },
  );
  return skipped;
}

/** Writes the runs of `data` that are not all-zero granules at `position`; returns the bytes skipped. */
async function writeNonZero(fh: fs.promises.FileHandle, data: Buffer, position: number, granule: number): Promise<number> {
  let skipped = 0;
  let run = -1;
  const flush = async (end: number) => {
    for (let off = run; off < end; ) off += (await fh.write(data, off, end - off, position + off)).bytesWritten;
    run = -1;
  };
  for (let off = 0; off < data.length; off += granule) {
    const end = Math.min(off + granule, data.length);
    if (!isAllZero(data, off, end)) {
      if (run < 0) run = off;
      continue;
    }
    if (run >= 0) await flush(off);
    skipped += end - off;
  }
  if (run >= 0) await flush(data.length);
  return skipped;
}

/** Blocks of an exported file, as a secondary LUN would return them. */
function fileReader(fh: fs.promises.FileHandle, blockSize: number, file: string): ReadBlocks {
  return async (lba, blocks) => {
    const buf = Buffer.alloc(blocks * blockSize);
    const { bytesRead } = await fh.read(buf, 0, buf.length, Number(lba) * blockSize);
    if (bytesRead !== buf.length) throw new AgentError('ERR_EXPORT_VERIFY', `${file} ends before block ${lba + BigInt(blocks)}: the export is incomplete (export again)`);
    return buf;
  };
}

// ---- verification ------------------------------------------------------------------------------

/** ERR_EXPORT_VERIFY: the copy at `name` is not the secondary (`what` says where). */
function mismatch(name: string, what: string, cause?: unknown): AgentError {
  return new AgentError('ERR_EXPORT_VERIFY', `the copy at ${name} does not read back as the secondary: ${what}; it is not a good backup (export again)`, { cause });
}

/**
 * Verifies the copy read through `read` (see the file's header); returns the extents whose
 * SHA-256 was recomputed from it.
 */
async function verifyCopy(source: Source, read: ReadBlocks, capacityBlocks: bigint, name: string, o: ExportOptions): Promise<number> {
  o.onPhase?.('verify');
  const s = source.record;
  const r = await readSecondaryMetadata(read, capacityBlocks, name).catch((err: unknown) => {
    const undecodable = err instanceof DecodeError || (err instanceof AgentError && err.code === 'ERR_INVALID_ARG');
    throw undecodable ? mismatch(name, `its metadata does not decode (${(err as Error).message})`, err) : err;
  });
  const fields: Array<[string, unknown, unknown]> = [
    ['backup id', r.backupId, s.backupId],
    ['state', r.state, s.state],
    ['mode', r.mode, s.mode],
    ['image blocks', r.layout.imageBlocks, s.layout.imageBlocks],
    ['hashed extents', r.progress.hashedExtents, s.progress.hashedExtents],
  ];
  const differ = fields.find(([, a, b]) => a !== b);
  if (differ) throw mismatch(name, `its ${differ[0]} is ${String(differ[1])}, the secondary's ${String(differ[2])}`);
  const hashes = await readHashTable(read, r);
  const other = hashes.findIndex((h, i) => !h.equals(source.hashes[i]));
  if (other >= 0) throw mismatch(name, `its hash table differs from the secondary's at extent ${other}`);
  const L = r.layout;
  const extentBlocks = BigInt(L.extentBytes / L.blockSize);
  const computed = await imageExtentHashes({
    layout: L,
    read,
    overlay: r.mode === 'append' && r.state !== 'integrated' && hashes.length > 0 ? await logOverlay(read, r) : undefined,
    extents: hashes.length,
    beforeExtent: () => {
      if (o.signal?.aborted === true) throw new AgentError('ERR_INTERRUPTED', 'export interrupted while verifying the copy (export again)');
    },
    onExtent: (done) => o.onProgress?.('verify', BigInt(done) * extentBlocks < L.imageBlocks ? BigInt(done) * extentBlocks : L.imageBlocks, L.imageBlocks, L.blockSize),
  });
  const bad = computed.findIndex((h, i) => !h.equals(hashes[i]));
  if (bad >= 0) {
    const { offset, bytes } = secondary.extentRange(L, bad);
    throw mismatch(name, `extent ${bad} (bytes ${offset}..${offset + BigInt(bytes) - 1n}) has SHA-256 ${computed[bad].toString('hex')}, its hash table ${hashes[bad].toString('hex')}`);
  }
  return computed.length;
}

/** The appended log's records (before the marker for a --mark copy) and where their data is. */
async function logOverlay(read: ReadBlocks, r: secondary.SecondaryRecord): Promise<ImageHashOptions['overlay']> {
  const at = r.layout.logLba;
  const log = await readAppendedLog({ read16: read }, r);
  return { records: log.records, read: (lba, n) => read(at + lba, n) };
}

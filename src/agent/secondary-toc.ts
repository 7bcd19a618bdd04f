/**
 * The table of contents `backup --toc` kept in a secondary's TOC reserve (docs/secondary-format.md,
 * "Layout"; docs/toc-format.md): its header says how many bytes, the TOC's own CRC checks them.
 */
import { ArgumentError } from '../errors';
import { IscsiSession, type SessionOptions } from '../initiator/session';
import { redactUrl } from '../initiator/url';
import type * as secondary from '../secondary';
import { decodeToc, decodeTocHeader } from '../toc/format';
import type { TocResult } from '../toc/read';
import type { ReadBlocks } from './secondary-lun';
import { readSecondaryMetadata, SecondaryLun } from './secondary-lun';

/** Reads at most this many bytes per READ of the TOC reserve. */
const TOC_READ_BYTES = 1024 * 1024;

/** The TOC's encoded bytes (docs/toc-format.md) from the reserve of the secondary `r` describes; undefined when it keeps none. */
export async function keptTocBytes(read: ReadBlocks, r: secondary.SecondaryRecord): Promise<Buffer | undefined> {
  if (!r.toc || r.toc.usedBytes === 0n) return undefined;
  const L = r.layout;
  const bytes = Number(r.toc.usedBytes);
  const parts: Buffer[] = [];
  const per = Math.max(1, Math.floor(TOC_READ_BYTES / L.blockSize));
  const blocks = Math.ceil(bytes / L.blockSize);
  for (let at = 0; at < blocks; at += per) parts.push(await read(L.tocLba + BigInt(at), Math.min(per, blocks - at)));
  return Buffer.concat(parts).subarray(0, bytes);
}

/** A TOC decoded from its stored bytes, as a listing of the image of a copy. */
export function tocOfBytes(bytes: Buffer, blockSize: number): TocResult {
  return { ...decodeToc(bytes), layout: { scheme: 'none', blockSize, partitions: [] }, reads: 0, bytesRead: bytes.length };
}

/** The TOC a secondary keeps; ERR_INVALID_ARG (what to do instead) when it keeps none. */
export async function keptToc(read: ReadBlocks, r: secondary.SecondaryRecord, name: string): Promise<TocResult> {
  const bytes = await keptTocBytes(read, r);
  if (!bytes) {
    throw new ArgumentError(`${name} holds backup ${r.backupId} without a table of contents (made without --toc, or none could be made): list the image with --lun on a LUN holding it`);
  }
  return tocOfBytes(bytes, r.layout.blockSize);
}

/** keptToc of the secondary at `url`, over a session of its own. */
export async function keptTocAt(url: string, session?: SessionOptions): Promise<TocResult> {
  const s = await IscsiSession.connect(url, session);
  try {
    const { record } = await SecondaryLun.open(s);
    return await keptToc((lba, n) => s.read16(lba, n), record, redactUrl(url));
  } finally {
    await s.close().catch(() => undefined);
  }
}

/**
 * The metadata of the secondary at `url` and the TOC it keeps (its bytes and inode count, the
 * header checked), as the catalog records a copy: one session for both.
 */
export async function secondaryWithToc(url: string, session?: SessionOptions): Promise<{ record: secondary.SecondaryRecord; toc?: { bytes: Buffer; files: number } }> {
  const s = await IscsiSession.connect(url, session);
  try {
    const read: ReadBlocks = (lba, n) => s.read16(lba, n);
    const record = await readSecondaryMetadata(read, (await s.readCapacity16()).returnedLogicalBlockAddress + 1n, redactUrl(url));
    const bytes = await keptTocBytes(read, record).catch(() => undefined);
    if (!bytes) return { record };
    try {
      return { record, toc: { bytes, files: decodeTocHeader(bytes).entries } };
    } catch {
      return { record }; // a damaged TOC is not recorded; `toc --secondary` says what is wrong with it
    }
  } finally {
    await s.close().catch(() => undefined);
  }
}

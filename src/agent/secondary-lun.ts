/**
 * A secondary LUN as the agent reads and writes it: the metadata area after the image
 * (docs/secondary-format.md), found from the LUN's last block alone, through the initiator.
 * Every header update goes to the slot the current generation does not use, FUA, so a crash
 * mid-write leaves the previous header readable.
 */
import { AgentError } from '../errors';
import { IscsiSession, type SessionOptions } from '../initiator/session';
import * as secondary from '../secondary';
import { isAllZero } from '../util/zero';

/** Reads `blocks` blocks at `lba`: a LUN through the initiator, or a file holding a copy of one. */
export type ReadBlocks = (lba: bigint, blocks: number) => Promise<Buffer>;

/**
 * The metadata of a secondary on a device of `capacityBlocks` (docs/secondary-format.md,
 * "Reading a secondary"): the trailer in the last block, the current header of the two slots it
 * locates, that header's layout checked against the trailer. ERR_INVALID_ARG when the last block
 * is not a trailer (`name` says what was read); a DecodeError when the slots are not valid.
 */
export async function readSecondaryMetadata(read: ReadBlocks, capacityBlocks: bigint, name: string): Promise<secondary.SecondaryRecord> {
  let t: secondary.SecondaryTrailer;
  try {
    t = secondary.decodeTrailer(await read(capacityBlocks - 1n, 1), capacityBlocks);
  } catch (err) {
    throw new AgentError('ERR_INVALID_ARG', `${name} holds no copy made by xcopy-agent backup (its last block is not a secondary's trailer: ${(err as Error).message})`, { cause: err });
  }
  const record = secondary.pickHeader(await read(t.metaLba, t.slotBlocks), await read(t.metaLba + BigInt(t.slotBlocks), t.slotBlocks));
  secondary.checkLayoutAgainstTrailer(record.layout, t);
  return record;
}

/** The metadata of the secondary at `url`, through a session of its own (the catalog's rebuild). */
export async function readSecondaryAt(url: string, session?: SessionOptions): Promise<secondary.SecondaryRecord> {
  const s = await IscsiSession.connect(url, session);
  try {
    return (await SecondaryLun.open(s)).record;
  } finally {
    await s.close().catch(() => undefined);
  }
}

/** The hashes a record counts (progress.hashedExtents), from its hash table. */
export async function readHashTable(read: ReadBlocks, record: secondary.SecondaryRecord): Promise<Buffer[]> {
  const L = record.layout;
  return secondary.decodeHashTable(await read(L.hashLba, Number(L.hashBlocks)), record.progress.hashedExtents);
}

/** What a writer reads of a device before taking it for a secondary (a file system's superblocks lie within it). */
const FREE_CHECK_BYTES = 1048576;

/** Whether a device's first MiB and last block are zeros (a file system's superblocks lie within the MiB). */
export async function isBlank(read: ReadBlocks, capacityBlocks: bigint, blockSize: number): Promise<boolean> {
  const head = await read(0n, Math.min(Number(capacityBlocks), Math.ceil(FREE_CHECK_BYTES / blockSize)));
  return isAllZero(head) && isAllZero(await read(capacityBlocks - 1n, 1));
}

/**
 * Whether a device may receive a secondary without --yes: its last block is a secondary's
 * trailer (an earlier copy of ours), or it is blank (isBlank). Anything else may be a file
 * system that a mistyped URL would destroy.
 */
export async function blankOrSecondary(read: ReadBlocks, capacityBlocks: bigint, blockSize: number): Promise<boolean> {
  try {
    secondary.decodeTrailer(await read(capacityBlocks - 1n, 1), capacityBlocks);
    return true;
  } catch {
    return isBlank(read, capacityBlocks, blockSize); // not ours; blank?
  }
}

export class SecondaryLun {
  private constructor(
    readonly session: IscsiSession,
    private current: secondary.SecondaryRecord,
  ) {}

  get record(): secondary.SecondaryRecord {
    return this.current;
  }

  get layout(): secondary.SecondaryLayout {
    return this.current.layout;
  }

  /** Reads the metadata of a secondary made by `backup` (ERR_INVALID_ARG when it is not one). */
  static async open(s: IscsiSession): Promise<SecondaryLun> {
    const blocks = (await s.readCapacity16()).returnedLogicalBlockAddress + 1n;
    return new SecondaryLun(s, await readSecondaryMetadata((lba, n) => s.read16(lba, n), blocks, s.url));
  }

  /**
   * Begins a backup on the LUN (docs/secondary-format.md, "Writer rules"): the trailer first —
   * from then on no reader follows an earlier backup's trailer to headers describing an image
   * this backup overwrites — then the first header, one generation past anything in either slot
   * where the new layout puts them, so it wins at once.
   */
  static async create(s: IscsiSession, record: secondary.SecondaryRecord): Promise<SecondaryLun> {
    const L = record.layout;
    let g = 0n;
    try {
      g = secondary.pickHeader(await s.read16(L.metaLba, L.slotBlocks), await s.read16(L.metaLba + BigInt(L.slotBlocks), L.slotBlocks)).generation;
    } catch (err) {
      // Nothing valid there: start at 1. Any other failure (a read error) must not let the new
      // first header lose to an old one it cannot see.
      if (!(err instanceof secondary.NoValidHeaderError)) throw err;
    }
    await s.write16(L.trailerLba, secondary.encodeTrailer(L), { fua: true });
    const lun = new SecondaryLun(s, { ...record, generation: g });
    await lun.save({});
    return lun;
  }

  /** The header writes, one at a time (two at once could share a generation and its slot). */
  private saving: Promise<void> = Promise.resolve();

  /** Writes the next header (generation + 1) with `update` applied; durable when it resolves. */
  save(update: Partial<secondary.SecondaryRecord>): Promise<void> {
    const run = this.saving.then(() => this.write(update));
    this.saving = run.catch(() => undefined);
    return run;
  }

  private async write(update: Partial<secondary.SecondaryRecord>): Promise<void> {
    const r: secondary.SecondaryRecord = { ...this.current, ...update, generation: this.current.generation + 1n };
    r.times = { ...r.times, updatedAt: new Date().toISOString() };
    const L = r.layout;
    const lba = L.metaLba + BigInt(secondary.slotOf(r.generation) * L.slotBlocks);
    await this.session.write16(lba, secondary.encodeHeaderSlot(r, L.slotBlocks * L.blockSize), { fua: true });
    this.current = r;
  }

  /** The hashes the current header counts (readHashTable). */
  readHashes(): Promise<Buffer[]> {
    return readHashTable((lba, n) => this.session.read16(lba, n), this.current);
  }

  async writeHashes(hashes: readonly Buffer[]): Promise<void> {
    const L = this.layout;
    await this.session.write16(L.hashLba, secondary.encodeHashTable(hashes, L.blockSize), { fua: true });
  }
}

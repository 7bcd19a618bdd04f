/**
 * A secondary LUN as the agent reads and writes it: the metadata area after the image
 * (docs/secondary-format.md), found from the LUN's last block alone, through the initiator.
 * Every header update goes to the slot the current generation does not use, FUA, so a crash
 * mid-write leaves the previous header readable.
 */
import { AgentError } from '../errors';
import type { IscsiSession } from '../initiator/session';
import * as secondary from '../secondary';

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
    let t: ReturnType<typeof secondary.decodeTrailer>;
    try {
      t = secondary.decodeTrailer(await s.read16(blocks - 1n, 1), blocks);
    } catch (err) {
      throw new AgentError('ERR_INVALID_ARG', `${s.url} holds no copy made by xcopy-agent backup (its last block is not a secondary's trailer: ${(err as Error).message})`, { cause: err });
    }
    const slot0 = await s.read16(t.metaLba, t.slotBlocks);
    const slot1 = await s.read16(t.metaLba + BigInt(t.slotBlocks), t.slotBlocks);
    return new SecondaryLun(s, secondary.pickHeader(slot0, slot1));
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

  async readHashes(): Promise<Buffer[]> {
    const L = this.layout;
    return secondary.decodeHashTable(await this.session.read16(L.hashLba, Number(L.hashBlocks)), L.extents);
  }

  async writeHashes(hashes: readonly Buffer[]): Promise<void> {
    const L = this.layout;
    await this.session.write16(L.hashLba, secondary.encodeHashTable(hashes, L.blockSize), { fua: true });
  }
}

/**
 * The snapshot view (the method's logical snapshot copy, read for docs/method.md 603): a
 * read-only store exporting the image of the source as of institution — captured chunks from
 * the OBF, the others from the source (SnapshotSession.readImage, image-reader.ts) — consistent
 * while hosts keep writing the source. Writes are refused (a read-only store: DATA PROTECT,
 * WRITE PROTECTED). Once the session stops capturing (terminated or INVALID) the image can no
 * longer be assembled, and reads fail with NOT READY.
 */
import { checkRead, checkBigRange } from '../store/checks';
import { naaFromSeed, serialFromSeed } from '../store/identity';
import { StoreError, type Extent, type Store, type StoreIdentity } from '../store/store';
import type { SnapshotSession } from './session';

export class SnapshotViewStore implements Store {
  readonly kind = 'snapshot-view';
  readonly readOnly = true;
  readonly unmapReadsZero = false;
  readonly sparse = false;
  readonly identity: StoreIdentity;
  readonly session: SnapshotSession;

  constructor(session: SnapshotSession) {
    this.session = session;
    const seed = `snapshot-view:${session.id}`;
    this.identity = { name: `snapshot:${session.id}`, naa: naaFromSeed(seed), serial: serialFromSeed(seed) };
  }

  get blockSize(): number {
    return this.session.source.blockSize;
  }
  get blocks(): bigint {
    return this.session.source.blocks;
  }

  async read(lba: bigint, count: number, into?: Buffer): Promise<Buffer> {
    checkRead(this, lba, count);
    return this.session.readImage(lba, count, into);
  }

  async write(): Promise<void> {
    throw new StoreError({ kind: 'write-protected' }, `the view of snapshot ${this.session.id} is read-only`);
  }

  async unmap(): Promise<void> {
    throw new StoreError({ kind: 'write-protected' }, `the view of snapshot ${this.session.id} is read-only`);
  }

  async flush(): Promise<void> {}

  async extents(lba: bigint, count: bigint): Promise<Extent[]> {
    checkBigRange(this, lba, count);
    return count === 0n ? [] : [{ lba, blocks: count, mapped: true }];
  }

  async close(): Promise<void> {}
}

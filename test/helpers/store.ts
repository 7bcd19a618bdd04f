/**
 * A Store that passes everything to another one: the base of the test stores that fail, stall
 * or count requests on demand (override what the test needs).
 */
import type { Extent, Store } from '../../src/store/store';

export class DelegatingStore implements Store {
  constructor(readonly inner: Store) {}
  get kind() { return this.inner.kind; }
  get blockSize() { return this.inner.blockSize; }
  get blocks() { return this.inner.blocks; }
  get identity() { return this.inner.identity; }
  get readOnly() { return this.inner.readOnly; }
  get unmapReadsZero() { return this.inner.unmapReadsZero; }
  read(lba: bigint, count: number, into?: Buffer): Promise<Buffer> { return this.inner.read(lba, count, into); }
  write(lba: bigint, data: Buffer, opts?: { fua?: boolean }): Promise<void> { return this.inner.write(lba, data, opts); }
  flush(): Promise<void> { return this.inner.flush(); }
  unmap(lba: bigint, count: bigint): Promise<void> { return this.inner.unmap(lba, count); }
  extents(lba: bigint, count: bigint): Promise<Extent[]> { return this.inner.extents(lba, count); }
  close(): Promise<void> { return this.inner.close(); }
}

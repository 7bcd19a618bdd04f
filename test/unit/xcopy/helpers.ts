/**
 * Helpers for the copy manager tests: logical units on memory stores that serve EXTENDED COPY,
 * a runner, parameter-list and CDB builders (through the project's codec, plus hand-built bytes
 * where a test needs a malformed list), and stores that fail or wait on demand.
 */
import crypto from 'node:crypto';
import { decodeSense, type SenseData } from '../../../src/scsi/sense';
import { cscdFromDesignator, encodeExtendedCopyLid1, type CscdDescriptor, type SegmentDescriptor } from '../../../src/scsi/xcopy';
import { pickCscdDesignator } from '../../../src/scsi/vpd';
import type { ThirdPartyCopyPage } from '../../../src/scsi/vpd-third-party-copy';
import { MemoryStore } from '../../../src/store/memory';
import { StoreError } from '../../../src/store/store';
import { DelegatingStore } from '../../helpers/store';
import { LogicalUnit, deviceDesignators, executeOnView, type ItNexus, type ScsiReply } from '../../../src/target/scsi';
import { COPY_MANAGER_OPCODES, CopyManager, enableCopyManager, type CopyManagerOptions } from '../../../src/xcopy';

export const GOOD = 0x00;
export const CHECK_CONDITION = 0x02;
export const ILLEGAL_REQUEST = 0x5;
export const COPY_ABORTED = 0xa;

/**
 * Does the Third-party Copy page's Supported Commands descriptor list `opcode` with
 * `serviceAction`? (libiscsi's precondition for its EXTENDED COPY tests; the agent does not ask.)
 */
export function thirdPartyCopySupports(page: ThirdPartyCopyPage, opcode: number, serviceAction: number): boolean {
  return page.descriptors.some((d) => d.kind === 'supportedCommands' && d.commands.some((c) => c.opcode === opcode && c.serviceActions.includes(serviceAction)));
}

export const sha256 = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

export function nexus(n: number): ItNexus {
  const initiatorName = `iqn.2026-11.test:xcopy${n}`;
  const isid = `40000137${n.toString(16).padStart(4, '0')}`;
  return { initiatorName, isid, targetPortalGroupTag: 1, id: `${initiatorName},i,0x${isid},t,1` };
}
export const I1 = nexus(1);

/** A Store wrapper: `failRead`/`failWrite` make requests touching an LBA fail; `gate` holds reads. */
export class TestStore extends DelegatingStore {
  failReadAt?: bigint;
  failWriteAt?: bigint;
  gate?: Promise<void>;
  onGate?: () => void;
  reads = 0;
  writes = 0;
  unmaps = 0;
  override async read(lba: bigint, count: number, into?: Buffer): Promise<Buffer> {
    this.reads++;
    if (this.gate) {
      this.onGate?.();
      await this.gate;
    }
    if (this.failReadAt !== undefined && lba <= this.failReadAt && this.failReadAt < lba + BigInt(count)) {
      throw new StoreError({ kind: 'read-error' }, `injected read error at ${this.failReadAt}`);
    }
    return this.inner.read(lba, count, into);
  }
  override async write(lba: bigint, data: Buffer, opts?: { fua?: boolean }): Promise<void> {
    this.writes++;
    const count = BigInt(data.length / this.blockSize);
    if (this.failWriteAt !== undefined && lba <= this.failWriteAt && this.failWriteAt < lba + count) {
      throw new StoreError({ kind: 'write-error' }, `injected write error at ${this.failWriteAt}`);
    }
    return this.inner.write(lba, data, opts);
  }
  override unmap(lba: bigint, count: bigint): Promise<void> {
    this.unmaps++;
    return this.inner.unmap(lba, count);
  }
}

export interface Lun {
  lu: LogicalUnit;
  store: TestStore;
}

let serial = 0;
export function makeLun(blocks: bigint, blockSize: 512 | 4096 = 512, chunkBytes?: number): Lun {
  const mem = new MemoryStore({ blocks, blockSize, name: `memory:xcopy-${process.pid}-${++serial}`, chunkBytes });
  const store = new TestStore(mem);
  const lu = new LogicalUnit({ store, targetName: 'iqn.2026-11.test:xcopy', opcodes: COPY_MANAGER_OPCODES });
  return { lu, store };
}

export interface Bridge {
  cm: CopyManager;
  luns: Lun[];
  view: Map<number, LogicalUnit>;
  /** Which LUs the copy manager lets I1 reach (default: the view). */
  reachable: Set<LogicalUnit>;
}

/** LUNs 0..n-1 in one view, all served by one CopyManager. Power-on unit attentions are cleared. */
export async function bridge(luns: Lun[], opts: Partial<CopyManagerOptions> = {}): Promise<Bridge> {
  const view = new Map(luns.map((l, i) => [i, l.lu] as [number, LogicalUnit]));
  const reachable = new Set(view.values());
  const cm = new CopyManager({ reachable: () => reachable, ...opts });
  for (const l of luns) enableCopyManager(l.lu, cm);
  const b = { cm, luns, view, reachable };
  for (let lun = 0; lun < luns.length; lun++) {
    for (let i = 0; i < 5 && (await run(b, Buffer.from('000000000000', 'hex'), { lun })).status !== GOOD; i++);
  }
  return b;
}

export function run(b: Bridge, cdb: Buffer, o: { lun?: number; dataOut?: Buffer; nexus?: ItNexus; signal?: AbortSignal } = {}): Promise<ScsiReply> {
  return executeOnView(b.view, {
    signal: o.signal,
    nexus: o.nexus ?? I1,
    lun: o.lun ?? 0,
    cdb,
    dataOut: o.dataOut,
    expectedDataTransferLength: o.dataOut?.length ?? 0,
    taskAttribute: 1,
  });
}

export function xcopyCdb(parameterListLength: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x83;
  c.writeUInt32BE(parameterListLength, 10);
  return c;
}

export function rcrCdb(sa: number, listId: number, alloc = 1024): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x84;
  c[1] = sa;
  c[2] = listId;
  c.writeUInt32BE(alloc, 10);
  return c;
}

/** Sends EXTENDED COPY with this parameter list to `lun`. */
export function xcopy(b: Bridge, list: Buffer, o: { lun?: number; nexus?: ItNexus; length?: number; signal?: AbortSignal } = {}): Promise<ScsiReply> {
  return run(b, xcopyCdb(o.length ?? list.length), { lun: o.lun, nexus: o.nexus, dataOut: list, signal: o.signal });
}

/** The E4h CSCD a client builds from the LU's VPD 83h (docs/xcopy.md "The identification CSCD"). */
export function cscdOf(lu: LogicalUnit, n: ItNexus = I1): CscdDescriptor {
  const d = pickCscdDesignator(deviceDesignators(lu, n));
  if (!d) throw new Error('no designator');
  return cscdFromDesignator(d, lu.blockSize);
}

export function b2b(src: number, dst: number, blocks: number, srcLba: bigint | number, dstLba: bigint | number, dc = false): SegmentDescriptor {
  return { kind: 'blockToBlock', dc, cat: false, sourceCscdDescriptorId: src, destinationCscdDescriptorId: dst, blockDeviceNumberOfBlocks: blocks, sourceBlockDeviceLba: BigInt(srcLba), destinationBlockDeviceLba: BigInt(dstLba) };
}

export function list(cscds: CscdDescriptor[], segments: SegmentDescriptor[], listId = 1, usage = 2): Buffer {
  return encodeExtendedCopyLid1({ listIdentifier: listId, listIdUsage: usage, cscdDescriptors: cscds, segmentDescriptors: segments });
}

export function senseOf(r: ScsiReply): SenseData {
  if (r.status !== CHECK_CONDITION || r.sense === undefined) throw new Error(`expected CHECK CONDITION, got status ${r.status}`);
  return decodeSense(r.sense);
}

export function expectSense(r: ScsiReply, key: number, asc: number, ascq: number): SenseData {
  const s = senseOf(r);
  expect({ key: s.senseKey, asc: s.asc, ascq: s.ascq }).toEqual({ key, asc, ascq });
  return s;
}

/** COPY OPERATION ABORT (SPC-4 r37 6.3): 83h SA 1Ch, LIST IDENTIFIER in bytes 2–5. */
export function copyOperationAbortCdb(listId: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x83;
  c[1] = 0x1c;
  c.writeUInt32BE(listId, 2);
  return c;
}

export function readCdb(lba: bigint | number, blocks: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x88;
  c.writeBigUInt64BE(BigInt(lba), 2);
  c.writeUInt32BE(blocks, 10);
  return c;
}

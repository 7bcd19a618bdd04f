/**
 * Helpers for the SCSI command layer tests: nexuses, CDB builders, a command runner that clears
 * the power-on unit attention, sense assertions, and a Store wrapper that records what was
 * written (to prove that failed or non-write commands never touch the medium).
 */
import crypto from 'node:crypto';
import { decodeSense, type SenseData } from '../../../../src/scsi/sense';
import { MemoryStore, type MemoryStoreOptions } from '../../../../src/store/memory';
import type { Extent, Store } from '../../../../src/store/store';
import { LogicalUnit, type LogicalUnitOptions } from '../../../../src/target/scsi/logical-unit';
import { executeOnView } from '../../../../src/target/scsi/dispatch';
import type { ItNexus, ScsiReply } from '../../../../src/target/scsi/types';

export const GOOD = 0x00;
export const CHECK_CONDITION = 0x02;
export const RESERVATION_CONFLICT = 0x18;

export const sha256 = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

export function nexus(n: number, tpgt = 1): ItNexus {
  const initiatorName = `iqn.2026-11.test:initiator${n}`;
  const isid = `40000137${n.toString(16).padStart(4, '0')}`;
  return { initiatorName, isid, targetPortalGroupTag: tpgt, id: `${initiatorName},i,0x${isid},t,${tpgt}` };
}

export const I1 = nexus(1);
export const I2 = nexus(2);

/** Bytes from spaced hex. */
export function hexb(hex: string): Buffer {
  return Buffer.from(hex.replace(/\s+/g, ''), 'hex');
}

/** A Store that counts the calls that change the medium (write, unmap) and the FUA writes. */
export class RecordingStore implements Store {
  writes = 0;
  fuaWrites = 0;
  unmaps = 0;
  flushes = 0;
  constructor(readonly inner: Store) {}
  get kind() {
    return this.inner.kind;
  }
  get blockSize() {
    return this.inner.blockSize;
  }
  get blocks() {
    return this.inner.blocks;
  }
  get identity() {
    return this.inner.identity;
  }
  get readOnly() {
    return this.inner.readOnly;
  }
  get unmapReadsZero() {
    return this.inner.unmapReadsZero;
  }
  get mutations(): number {
    return this.writes + this.unmaps;
  }
  read(lba: bigint, count: number, into?: Buffer): Promise<Buffer> {
    return this.inner.read(lba, count, into);
  }
  async write(lba: bigint, data: Buffer, opts?: { fua?: boolean }): Promise<void> {
    this.writes++;
    if (opts?.fua) this.fuaWrites++;
    await this.inner.write(lba, data, opts);
  }
  async flush(): Promise<void> {
    this.flushes++;
    await this.inner.flush();
  }
  async unmap(lba: bigint, count: bigint): Promise<void> {
    this.unmaps++;
    await this.inner.unmap(lba, count);
  }
  extents(lba: bigint, count: bigint): Promise<Extent[]> {
    return this.inner.extents(lba, count);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

export interface Fixture {
  lu: LogicalUnit;
  store: RecordingStore;
  mem: MemoryStore;
  view: Map<number, LogicalUnit>;
}

/** A logical unit on a memory store (512-byte blocks, block-granular extents by default). */
export function fixture(
  storeOpts: Partial<MemoryStoreOptions> = {},
  luOpts: Partial<Omit<LogicalUnitOptions, 'store'>> = {},
): Fixture {
  const blockSize = storeOpts.blockSize ?? 512;
  const mem = new MemoryStore({ blocks: 2048n, blockSize, chunkBytes: blockSize, name: 'memory:test', ...storeOpts });
  const store = new RecordingStore(mem);
  const lu = new LogicalUnit({ store, targetName: 'iqn.2026-11.test:target', ...luOpts });
  return { lu, store, mem, view: new Map([[0, lu]]) };
}

export interface RunOptions {
  nexus?: ItNexus;
  dataOut?: Buffer;
  lun?: number;
  view?: Map<number, LogicalUnit>;
  edtl?: number;
  writeProtect?: boolean;
}

/** Sends one CDB (Buffer or spaced hex) through the dispatcher. */
export function run(f: Fixture, cdb: Buffer | string, o: RunOptions = {}): Promise<ScsiReply> {
  const c = typeof cdb === 'string' ? hexb(cdb) : cdb;
  return executeOnView(o.view ?? f.view, {
    nexus: o.nexus ?? I1,
    lun: o.lun ?? 0,
    cdb: c,
    dataOut: o.dataOut,
    expectedDataTransferLength: o.edtl ?? o.dataOut?.length ?? 0,
    taskAttribute: 1,
    writeProtect: o.writeProtect,
  });
}

/** TEST UNIT READY until GOOD (consumes unit attentions); fails after 20 tries. */
export async function clearUa(f: Fixture, n: ItNexus = I1): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const r = await run(f, '00 00 00 00 00 00', { nexus: n });
    if (r.status === GOOD) return i;
    if (r.status !== CHECK_CONDITION || decodeSense(r.sense as Buffer).senseKey !== 6) {
      throw new Error(`TEST UNIT READY: status ${r.status}`);
    }
  }
  throw new Error('unit attentions do not clear');
}

/** A fixture whose nexuses have seen their power-on unit attention already. */
export async function ready(storeOpts: Partial<MemoryStoreOptions> = {}, luOpts: Partial<Omit<LogicalUnitOptions, 'store'>> = {}, nexuses: ItNexus[] = [I1]): Promise<Fixture> {
  const f = fixture(storeOpts, luOpts);
  for (const n of nexuses) await clearUa(f, n);
  return f;
}

export function senseOf(r: ScsiReply): SenseData {
  if (r.status !== CHECK_CONDITION || r.sense === undefined) {
    throw new Error(`expected CHECK CONDITION with sense, got status ${r.status}`);
  }
  return decodeSense(r.sense);
}

export interface SenseExpectation {
  key: number;
  asc: number;
  ascq: number;
  /** Field pointer: CDB byte (cd true) or parameter byte (cd false), with an optional bit. */
  cdbByte?: number;
  paramByte?: number;
  bit?: number;
  information?: bigint;
}

/** Asserts CHECK CONDITION with this sense (and field pointer / information when given). */
export function expectSense(r: ScsiReply, e: SenseExpectation): SenseData {
  const s = senseOf(r);
  expect({ key: s.senseKey, asc: s.asc, ascq: s.ascq }).toEqual({ key: e.key, asc: e.asc, ascq: e.ascq });
  if (e.cdbByte !== undefined || e.paramByte !== undefined) {
    const sks = s.senseKeySpecific;
    expect(sks?.kind).toBe('fieldPointer');
    if (sks?.kind === 'fieldPointer') {
      expect(sks.cd).toBe(e.cdbByte !== undefined);
      expect(sks.fieldPointer).toBe(e.cdbByte ?? e.paramByte);
      if (e.bit !== undefined) {
        expect(sks.bpv).toBe(true);
        expect(sks.bitPointer).toBe(e.bit);
      }
    }
  }
  if (e.information !== undefined) {
    expect(s.valid).toBe(true);
    expect(s.information).toBe(e.information);
  }
  return s;
}

export const ILLEGAL_REQUEST = 0x5;
export const INVALID_FIELD_IN_CDB = { key: ILLEGAL_REQUEST, asc: 0x24, ascq: 0x00 };
export const INVALID_FIELD_IN_PARAMETER_LIST = { key: ILLEGAL_REQUEST, asc: 0x26, ascq: 0x00 };
export const LBA_OUT_OF_RANGE = { key: ILLEGAL_REQUEST, asc: 0x21, ascq: 0x00 };
export const INVALID_OPCODE = { key: ILLEGAL_REQUEST, asc: 0x20, ascq: 0x00 };
export const PARAMETER_LIST_LENGTH_ERROR = { key: ILLEGAL_REQUEST, asc: 0x1a, ascq: 0x00 };
export const LUN_NOT_SUPPORTED = { key: ILLEGAL_REQUEST, asc: 0x25, ascq: 0x00 };
export const MISCOMPARE = { key: 0xe, asc: 0x1d, ascq: 0x00 };
export const WRITE_PROTECTED = { key: 0x7, asc: 0x27, ascq: 0x00 };

/** Unit attention sense. */
export function ua(asc: number, ascq: number): SenseExpectation {
  return { key: 0x6, asc, ascq };
}

// ---- CDB builders ----------------------------------------------------------------------------

export type RwOp = 'read' | 'write' | 'verify' | 'writeverify' | 'orwrite' | 'prefetch' | 'sync' | 'writesame';

const OPCODES: Record<RwOp, Partial<Record<6 | 10 | 12 | 16, number>>> = {
  read: { 6: 0x08, 10: 0x28, 12: 0xa8, 16: 0x88 },
  write: { 6: 0x0a, 10: 0x2a, 12: 0xaa, 16: 0x8a },
  verify: { 10: 0x2f, 12: 0xaf, 16: 0x8f },
  writeverify: { 10: 0x2e, 12: 0xae, 16: 0x8e },
  orwrite: { 16: 0x8b },
  prefetch: { 10: 0x34, 16: 0x90 },
  sync: { 10: 0x35, 16: 0x91 },
  writesame: { 10: 0x41, 16: 0x93 },
};

/**
 * A block CDB: `len` 6/10/12/16, LBA and count in their fields, `flags` in byte 1 (ignored for
 * 6-byte CDBs), `group` in the GROUP NUMBER field.
 */
export function blockCdb(op: RwOp, len: 6 | 10 | 12 | 16, lba: bigint | number, count: number, flags = 0, group = 0): Buffer {
  const opcode = OPCODES[op][len];
  if (opcode === undefined) throw new Error(`${op} has no ${len}-byte form`);
  const c = Buffer.alloc(len);
  c[0] = opcode;
  const l = BigInt(lba);
  switch (len) {
    case 6:
      c[1] = Number((l >> 16n) & 0x1fn);
      c.writeUInt16BE(Number(l & 0xffffn), 2);
      c[4] = count & 0xff;
      break;
    case 10:
      c[1] = flags;
      c.writeUInt32BE(Number(l & 0xffff_ffffn), 2);
      c[6] = group;
      c.writeUInt16BE(count & 0xffff, 7);
      break;
    case 12:
      c[1] = flags;
      c.writeUInt32BE(Number(l & 0xffff_ffffn), 2);
      c.writeUInt32BE(count >>> 0, 6);
      c[10] = group;
      break;
    case 16:
      c[1] = flags;
      c.writeBigUInt64BE(BigInt.asUintN(64, l), 2);
      c.writeUInt32BE(count >>> 0, 10);
      c[14] = group;
      break;
  }
  return c;
}

export function inquiryCdb(evpd: boolean, page: number, alloc: number): Buffer {
  const c = Buffer.alloc(6);
  c[0] = 0x12;
  c[1] = evpd ? 1 : 0;
  c[2] = page;
  c.writeUInt16BE(alloc, 3);
  return c;
}

export function compareAndWriteCdb(lba: bigint | number, nlb: number, flags = 0): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x89;
  c[1] = flags;
  c.writeBigUInt64BE(BigInt(lba), 2);
  c[13] = nlb;
  return c;
}

export function serviceActionIn16(sa: number, lba: bigint | number, alloc: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x9e;
  c[1] = sa;
  c.writeBigUInt64BE(BigInt.asUintN(64, BigInt(lba)), 2);
  c.writeUInt32BE(alloc, 10);
  return c;
}

export function unmapCdb(parameterListLength: number, anchor = false): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x42;
  c[1] = anchor ? 1 : 0;
  c.writeUInt16BE(parameterListLength, 7);
  return c;
}

/** An UNMAP parameter list (SBC-3) for [lba, count] pairs. */
export function unmapList(ranges: Array<[bigint | number, number]>): Buffer {
  const b = Buffer.alloc(8 + 16 * ranges.length);
  b.writeUInt16BE(b.length - 2, 0);
  b.writeUInt16BE(16 * ranges.length, 2);
  ranges.forEach(([lba, n], i) => {
    b.writeBigUInt64BE(BigInt(lba), 8 + 16 * i);
    b.writeUInt32BE(n, 16 + 16 * i);
  });
  return b;
}

export function prInCdb(sa: number, alloc: number): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x5e;
  c[1] = sa;
  c.writeUInt16BE(alloc, 7);
  return c;
}

export function prOutCdb(sa: number, type = 0, scope = 0, parameterListLength = 24): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x5f;
  c[1] = sa;
  c[2] = (scope << 4) | type;
  c.writeUInt32BE(parameterListLength, 5);
  return c;
}

export function prOutParams(key: bigint, sark = 0n, flags = 0): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64BE(key, 0);
  b.writeBigUInt64BE(sark, 8);
  b[20] = flags;
  return b;
}

export function rsocCdb(options: number, opcode = 0, sa = 0, alloc = 65535, rctd = false): Buffer {
  const c = Buffer.alloc(12);
  c[0] = 0xa3;
  c[1] = 0x0c;
  c[2] = (rctd ? 0x80 : 0) | options;
  c[3] = opcode;
  c.writeUInt16BE(sa, 4);
  c.writeUInt32BE(alloc, 6);
  return c;
}

export function modeSense6Cdb(page: number, opts: { pc?: number; dbd?: boolean; subpage?: number; alloc?: number } = {}): Buffer {
  return Buffer.from([0x1a, opts.dbd ? 0x08 : 0, ((opts.pc ?? 0) << 6) | page, opts.subpage ?? 0, opts.alloc ?? 255, 0]);
}

export function modeSense10Cdb(page: number, opts: { pc?: number; dbd?: boolean; llbaa?: boolean; subpage?: number; alloc?: number } = {}): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x5a;
  c[1] = (opts.dbd ? 0x08 : 0) | (opts.llbaa ? 0x10 : 0);
  c[2] = ((opts.pc ?? 0) << 6) | page;
  c[3] = opts.subpage ?? 0;
  c.writeUInt16BE(opts.alloc ?? 4096, 7);
  return c;
}

export function modeSelect6Cdb(length: number, pf = true, sp = false): Buffer {
  return Buffer.from([0x15, (pf ? 0x10 : 0) | (sp ? 0x01 : 0), 0, 0, length, 0]);
}

export function modeSelect10Cdb(length: number, pf = true, sp = false): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x55;
  c[1] = (pf ? 0x10 : 0) | (sp ? 0x01 : 0);
  c.writeUInt16BE(length, 7);
  return c;
}

/** A 4-byte MODE SELECT(6) header followed by pages (no block descriptor). */
export function modeSelect6List(...pages: Buffer[]): Buffer {
  return Buffer.concat([Buffer.alloc(4), ...pages]);
}

/**
 * The pages of a MODE SENSE(6) reply (header of 4 bytes + block descriptors skipped), by code.
 */
export function pagesOf6(data: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 4 + data[3];
  const end = data[0] + 1;
  while (off + 2 <= end) {
    const len = 2 + data[off + 1];
    out.set(data[off] & 0x3f, data.subarray(off, off + len));
    off += len;
  }
  return out;
}

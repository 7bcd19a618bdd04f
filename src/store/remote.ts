/**
 * A LUN on another iSCSI target as a store (QEMU's block/iscsi.c; LIO's pscsi in spirit):
 * READ(16)/WRITE(16) with FUA, SYNCHRONIZE CACHE(16), and deallocation and extents by what the
 * LUN advertises (READ CAPACITY(16) LBPME/LBPRZ, VPD B0h Block Limits, B2h Logical Block
 * Provisioning). The identity is the remote's own (VPD 83h NAA, VPD 80h serial).
 *
 * Errors: a CHECK CONDITION (or another non-GOOD status) from the remote becomes StoreError
 * `forwarded` with the remote's status and raw sense bytes unchanged, so our target answers
 * exactly what the remote answered. Reads and writes are not range-checked here, for that
 * reason: the remote's LOGICAL BLOCK ADDRESS OUT OF RANGE is forwarded. Requests this store
 * splits into several commands (unmap, and transfers above the remote's MAXIMUM TRANSFER
 * LENGTH) are range-checked first, so a refused request is refused whole. Transport failures
 * (timeout, closed session, connection lost) become `not-ready`.
 *
 * The CDBs it builds for UNMAP, WRITE SAME(16) and GET LBA STATUS are in src/scsi/provisioning.ts.
 */
import { ArgumentError, IscsiError } from '../errors';
import { IscsiSession, type SessionOptions } from '../initiator/session';
import { ScsiStatus } from '../scsi/constants';
import { Sense, senseIs } from '../scsi/sense-reasons';
import type { ReadCapacity16Data } from '../scsi/read-capacity';
import { decodeBlockLimits, decodeLogicalBlockProvisioning, type DecodedBlockLimits, type DecodedLogicalBlockProvisioning } from '../scsi/vpd';
import { checkBigRange, checkReadArgs, checkWriteArgs, closedError, MAX_REQUEST_BLOCKS, pushExtent, writeProtected } from './checks';
import { naaFromSeed, serialFromSeed } from './identity';
import { StoreError, checkRange, type Extent, type Store, type StoreIdentity } from './store';
import {
  decodeLbaStatus,
  encodeGetLbaStatusCdb,
  encodeUnmapCdb,
  encodeUnmapParameterList,
  encodeWriteSame16Cdb,
  ProvisioningStatus,
  UNMAP_MAX_DESCRIPTORS,
} from '../scsi/provisioning';

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/**
 * An initiator error as a store failure: a SCSI status from the remote is forwarded with its raw
 * sense; no status at all (timeout, closed, transport) is not-ready. Other errors pass through.
 */
export function storeErrorOf(err: unknown, what: string): unknown {
  if (!(err instanceof IscsiError)) return err;
  switch (err.code) {
    case 'ERR_SCSI_CHECK_CONDITION':
    case 'ERR_SCSI_STATUS': {
      const status = err.scsiStatus ?? ScsiStatus.CHECK_CONDITION;
      const failure = err.sense ? { kind: 'forwarded' as const, status, sense: err.sense } : { kind: 'forwarded' as const, status };
      return new StoreError(failure, `${what}: ${err.message}`, { cause: err });
    }
    default:
      return new StoreError({ kind: 'not-ready' }, `${what}: ${err.message}`, { cause: err });
  }
}

/** ILLEGAL REQUEST with INVALID COMMAND OPERATION CODE (20h/00h) or INVALID FIELD IN CDB (24h/00h). */
function isUnsupported(err: unknown): boolean {
  return err instanceof IscsiError && (senseIs(err, Sense.INVALID_COMMAND_OPERATION_CODE) || senseIs(err, Sense.INVALID_FIELD_IN_CDB));
}

// ---------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------

export interface RemoteStoreOptions extends SessionOptions {
  /** Refuse writes and unmaps here (the remote's own write protection is forwarded anyway). */
  readOnly?: boolean;
}

/** How this store deallocates or zeroes a range, best first. */
type ZeroMethod = 'unmap' | 'write-same-unmap' | 'write-same' | 'write';

/** Blocks of zeros per WRITE SAME without UNMAP (each command stays short) and per plain WRITE. */
const WRITE_SAME_ZERO_BYTES = 32 * 1024 * 1024;
const WRITE_ZERO_BYTES = 1024 * 1024;
/** GET LBA STATUS descriptors asked for per command. */
const LBA_STATUS_DESCRIPTORS = 256;
/** Commands of one unmap/zeroing request in flight at once. */
const ZERO_CONCURRENCY = 4;

export class RemoteStore implements Store {
  readonly kind = 'remote';
  readonly blockSize: number;
  readonly blocks: bigint;
  readonly identity: StoreIdentity;
  readonly readOnly: boolean;
  readonly unmapReadsZero: boolean;
  /** What the remote advertised, for logs and tests. */
  readonly capabilities: {
    lbpme: boolean;
    lbprz: boolean;
    blockLimits?: DecodedBlockLimits;
    provisioning?: DecodedLogicalBlockProvisioning;
  };
  private readonly session: IscsiSession;
  /** MAXIMUM TRANSFER LENGTH in blocks (B0h), or the most one Buffer holds. */
  private readonly maxTransferBlocks: number;
  private zeroMethod: ZeroMethod;
  private getLbaStatus: boolean;
  private closed = false;

  private constructor(
    session: IscsiSession,
    cap: ReadCapacity16Data,
    identity: StoreIdentity,
    limits: DecodedBlockLimits | undefined,
    lbp: DecodedLogicalBlockProvisioning | undefined,
    readOnly: boolean,
  ) {
    this.session = session;
    this.blockSize = cap.logicalBlockLength;
    this.blocks = cap.returnedLogicalBlockAddress + 1n;
    this.identity = identity;
    this.readOnly = readOnly;
    this.unmapReadsZero = cap.lbprz;
    this.capabilities = { lbpme: cap.lbpme, lbprz: cap.lbprz, blockLimits: limits, provisioning: lbp };
    const bufferBlocks = Math.floor(0x7fff_ffff / this.blockSize);
    this.maxTransferBlocks = limits && limits.maximumTransferLength > 0 ? Math.min(limits.maximumTransferLength, bufferBlocks) : bufferBlocks;
    // SBC-3 r36 6.6.4: a MAXIMUM UNMAP LBA COUNT or BLOCK DESCRIPTOR COUNT of 0 means no UNMAP.
    const unmapOk = !!lbp?.lbpu && (!limits || (limits.maximumUnmapLbaCount > 0 && limits.maximumUnmapBlockDescriptorCount > 0));
    // Deallocation alone only reads back zeros when LBPRZ is set; otherwise zeros are written.
    this.zeroMethod = cap.lbprz && unmapOk ? 'unmap' : cap.lbprz && lbp?.lbpws ? 'write-same-unmap' : 'write-same';
    // SBC-3 r36 5.4: GET LBA STATUS is supported when LBPME is set.
    this.getLbaStatus = cap.lbpme;
  }

  /**
   * Logs in to the LUN named by `url` (libiscsi syntax) and reads what it advertises. Connection
   * failures are the initiator's IscsiError (ERR_ISCSI_UNREACHABLE, ERR_ISCSI_LOGIN, ...).
   */
  static async open(url: string, opts: RemoteStoreOptions = {}): Promise<RemoteStore> {
    const session = await IscsiSession.connect(url, opts);
    try {
      const cap = await session.readCapacity16();
      if (cap.logicalBlockLength <= 0 || cap.logicalBlockLength % 512 !== 0) {
        throw new ArgumentError(`${session.url} reports a block length of ${cap.logicalBlockLength} bytes: only multiples of 512 are supported`);
      }
      const pages = await session.supportedVpdPages().catch(() => [] as number[]);
      const optional = async <T>(page: number, decode: (b: Buffer) => T): Promise<T | undefined> =>
        pages.includes(page) ? session.inquiryVpd(page).then(decode, () => undefined) : undefined;
      const limits = await optional(0xb0, decodeBlockLimits);
      const lbp = await optional(0xb2, decodeLogicalBlockProvisioning);
      const ids = pages.includes(0x83) ? await session.deviceIdentification().catch(() => undefined) : undefined;
      const serial = pages.includes(0x80) ? await session.unitSerialNumber().catch(() => undefined) : undefined;
      // The logical unit's NAA IEEE Registered Extended designator, used as is; a LUN without one
      // gets a designator hashed from its URL and whatever designators it has.
      const naa = ids?.designators.find(
        (d) => d.association === 0 && d.designatorType === 3 && d.designator.length === 16 && d.designator[0] >> 4 === 6,
      )?.designator;
      const seed = `remote:${session.url}:${(ids?.designators ?? []).map((d) => d.designator.toString('hex')).join(',')}`;
      const identity: StoreIdentity = {
        name: session.url,
        naa: naa ? Buffer.from(naa) : naaFromSeed(seed),
        serial: serial && serial.length > 0 ? serial : serialFromSeed(seed),
      };
      return new RemoteStore(session, cap, identity, limits, lbp, opts.readOnly ?? false);
    } catch (err) {
      await session.close();
      throw err; // the initiator's IscsiError, with its exit status for the CLI
    }
  }

  /** How unmap() deallocates or zeroes (it moves down the list when the remote refuses a method). */
  get unmapMethod(): ZeroMethod {
    return this.zeroMethod;
  }

  private live(): void {
    if (this.closed) throw closedError(this.identity.name);
  }

  private async run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw storeErrorOf(err, what);
    }
  }

  /** Splits [lba, lba+count) into pieces of at most `max` blocks. */
  private static pieces(lba: bigint, count: number, max: number): { lba: bigint; at: number; count: number }[] {
    const out = [];
    for (let at = 0; at < count; at += max) out.push({ lba: lba + BigInt(at), at, count: Math.min(max, count - at) });
    return out;
  }

  async read(lba: bigint, count: number, into?: Buffer): Promise<Buffer> {
    // Argument checks only; the remote judges the range (its sense is forwarded), unless the
    // read is split, or empty.
    const bytes = checkReadArgs(this.blockSize, lba, count, into);
    this.live();
    if (count === 0 || count > this.maxTransferBlocks) checkRange(this, lba, count);
    const out = into ? into.subarray(0, bytes) : Buffer.allocUnsafe(bytes);
    if (count === 0) return out;
    const bs = this.blockSize;
    await this.run(`read of ${count} blocks at LBA ${lba}`, () =>
      Promise.all(
        RemoteStore.pieces(lba, count, this.maxTransferBlocks).map(async (p) => {
          const target = out.subarray(p.at * bs, (p.at + p.count) * bs);
          const got = await this.session.read16(p.lba, p.count, { into: target });
          if (got.length !== target.length) {
            throw new StoreError({ kind: 'read-error' }, `${this.identity.name} returned ${got.length} bytes for ${p.count} blocks at LBA ${p.lba}`);
          }
          if (got.buffer !== target.buffer || got.byteOffset !== target.byteOffset) got.copy(target);
        }),
      ),
    );
    return out;
  }

  async write(lba: bigint, data: Buffer, opts: { fua?: boolean } = {}): Promise<void> {
    const count = checkWriteArgs(this.blockSize, lba, data);
    this.live();
    if (this.readOnly) throw writeProtected(this.identity.name);
    if (count === 0 || count > this.maxTransferBlocks) checkRange(this, lba, count);
    if (count === 0) return;
    const bs = this.blockSize;
    await this.run(`write of ${count} blocks at LBA ${lba}`, () =>
      Promise.all(
        RemoteStore.pieces(lba, count, this.maxTransferBlocks).map((p) =>
          this.session.write16(p.lba, data.subarray(p.at * bs, (p.at + p.count) * bs), { fua: opts.fua }),
        ),
      ),
    );
  }

  async flush(): Promise<void> {
    this.live();
    await this.run('SYNCHRONIZE CACHE', () => this.session.synchronizeCache16());
  }

  /**
   * Deallocates or zeroes the range so that it reads back zeros: UNMAP when the LUN supports it
   * and unmapped blocks read zeros (LBPRZ), else WRITE SAME(16) of a zero block with UNMAP set,
   * else WRITE SAME(16) of zeros, else WRITE(16) of zeros. A method the remote refuses (INVALID
   * COMMAND OPERATION CODE / INVALID FIELD IN CDB) is dropped and the next one is used.
   */
  async unmap(lba: bigint, count: bigint): Promise<void> {
    checkBigRange(this, lba, count);
    this.live();
    if (this.readOnly) throw writeProtected(this.identity.name);
    if (count === 0n) return;
    for (;;) {
      const method = this.zeroMethod;
      try {
        await this.zeroWith(method, lba, count);
        return;
      } catch (err) {
        if (method === 'write' || !isUnsupported(err)) throw storeErrorOf(err, `unmap of ${count} blocks at LBA ${lba}`);
        this.zeroMethod = method === 'unmap' ? 'write-same-unmap' : method === 'write-same-unmap' ? 'write-same' : 'write';
      }
    }
  }

  private async zeroWith(method: ZeroMethod, lba: bigint, count: bigint): Promise<void> {
    const bs = this.blockSize;
    const limits = this.capabilities.blockLimits;
    const commands: (() => Promise<unknown>)[] = [];
    const split = (max: number, make: (lba: bigint, n: number) => () => Promise<unknown>) => {
      for (let at = 0n; at < count; ) {
        const n = Number(count - at < BigInt(max) ? count - at : BigInt(max));
        commands.push(make(lba + at, n));
        at += BigInt(n);
      }
    };
    if (method === 'unmap') {
      // One contiguous range: descriptors of at most MAXIMUM UNMAP LBA COUNT blocks (and 2^32-1),
      // as many per list as MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT allows.
      const perDescriptor = Math.min(limits?.maximumUnmapLbaCount || MAX_REQUEST_BLOCKS, MAX_REQUEST_BLOCKS);
      const perList = Math.min(limits?.maximumUnmapBlockDescriptorCount || UNMAP_MAX_DESCRIPTORS, UNMAP_MAX_DESCRIPTORS);
      const maxLbaPerCommand = limits?.maximumUnmapLbaCount || MAX_REQUEST_BLOCKS;
      let ranges: { lba: bigint; blocks: number }[] = [];
      let inList = 0;
      const flushList = () => {
        if (ranges.length === 0) return;
        const list = encodeUnmapParameterList(ranges);
        commands.push(() => this.checked(encodeUnmapCdb({ parameterListLength: list.length }), 'UNMAP', list));
        ranges = [];
        inList = 0;
      };
      for (let at = 0n; at < count; ) {
        const room = Math.min(perDescriptor, maxLbaPerCommand - inList);
        const n = Number(count - at < BigInt(room) ? count - at : BigInt(room));
        ranges.push({ lba: lba + at, blocks: n });
        inList += n;
        at += BigInt(n);
        if (ranges.length >= perList || inList >= maxLbaPerCommand) flushList();
      }
      flushList();
    } else if (method === 'write-same-unmap' || method === 'write-same') {
      const unmap = method === 'write-same-unmap';
      const cap = unmap ? MAX_REQUEST_BLOCKS : Math.floor(WRITE_SAME_ZERO_BYTES / bs);
      const maxWs = limits && limits.maximumWriteSameLength > 0n ? Number(limits.maximumWriteSameLength < BigInt(cap) ? limits.maximumWriteSameLength : BigInt(cap)) : cap;
      const zero = Buffer.alloc(bs);
      split(maxWs, (l, n) => () => this.checked(encodeWriteSame16Cdb({ lba: l, blocks: n, unmap }), 'WRITE SAME(16)', zero));
    } else {
      const per = Math.min(Math.floor(WRITE_ZERO_BYTES / bs), this.maxTransferBlocks);
      const zeros = Buffer.alloc(per * bs);
      split(per, (l, n) => () => this.session.write16(l, zeros.subarray(0, n * bs)));
    }
    // A bounded number in flight; the first failure stops issuing more.
    let next = 0;
    const worker = async () => {
      while (next < commands.length) await commands[next++]();
    };
    await Promise.all(Array.from({ length: Math.min(ZERO_CONCURRENCY, commands.length) }, worker));
  }

  private async checked(cdb: Buffer, what: string, dataOut: Buffer): Promise<void> {
    this.session.check(await this.session.execute(cdb, { dataOut }), what);
  }

  /**
   * Mapped and unmapped extents by GET LBA STATUS. Deallocated and anchored blocks count as
   * holes only when they read back zeros (LBPRZ); a LUN without LBPME, or one that refuses
   * GET LBA STATUS, is reported mapped throughout.
   */
  async extents(lba: bigint, count: bigint): Promise<Extent[]> {
    checkBigRange(this, lba, count);
    this.live();
    const out: Extent[] = [];
    const end = lba + count;
    let cursor = lba;
    if (this.getLbaStatus) {
      const alloc = 8 + 16 * LBA_STATUS_DESCRIPTORS;
      try {
        while (cursor < end) {
          const r = this.session.check(
            await this.session.execute(encodeGetLbaStatusCdb({ lba: cursor, allocationLength: alloc }), { dataInLength: alloc }),
            `GET LBA STATUS at LBA ${cursor}`,
          );
          const before = cursor;
          for (const d of decodeLbaStatus(r.data ?? Buffer.alloc(0))) {
            const dEnd = d.lba + BigInt(d.blocks);
            if (dEnd <= cursor) continue;
            if (d.lba > cursor) pushExtent(out, cursor, (d.lba < end ? d.lba : end) - cursor, true); // a gap: assume data
            const s = d.lba > cursor ? d.lba : cursor;
            if (s >= end) {
              cursor = end;
              break;
            }
            const e = dEnd < end ? dEnd : end;
            pushExtent(out, s, e - s, d.provisioningStatus === ProvisioningStatus.MAPPED || !this.unmapReadsZero);
            cursor = e;
            if (cursor >= end) break;
          }
          if (cursor === before) break; // no progress: report the rest mapped
        }
      } catch (err) {
        if (!isUnsupported(err)) throw storeErrorOf(err, `extents of ${count} blocks at LBA ${lba}`);
        this.getLbaStatus = false;
      }
    }
    if (cursor < end) pushExtent(out, cursor, end - cursor, true);
    return out;
  }

  /** Logs out (requests still in flight settle with not-ready). */
  async close(): Promise<void> {
    this.closed = true;
    await this.session.close();
  }
}

/**
 * One SCSI disk logical unit (SBC-3 direct-access block device) in front of a Store: the device
 * server of SAM-5. It owns the per-LU state — mode parameters, SPC-2 and persistent
 * reservations, unit attention conditions per I_T nexus, range locks — and runs each command
 * through the same steps:
 *
 *  1. look the CDB up in the opcode table (INVALID COMMAND OPERATION CODE if absent);
 *  2. report a pending unit attention unless the command is exempt (SAM-5 r21 5.14: INQUIRY, REPORT
 *     LUNS, REQUEST SENSE);
 *  3. check reservations: an SPC-2 reservation of another nexus (SPC-2 RESERVE) and a persistent
 *     reservation (the tables of commands allowed in the presence of
 *     reservations, SPC-4 r37 5.13 and SBC-3) → RESERVATION CONFLICT;
 *  4. refuse CDB bits the command does not use (its CDB USAGE DATA) and the CONTROL byte bits
 *     NACA and LINK (not supported: NORMACA = 0);
 *  5. run the handler, which parses its fields, checks them and executes against the store.
 *
 * Errors become CHECK CONDITION with sense in the format the control mode page selects.
 */
import { ScsiStatus } from '../../scsi/constants';
import { checkNaa, naaFromSeed, serialFromSeed } from '../../store/identity';
import type { Store } from '../../store/store';
import { ArgumentError } from '../../errors';
import { logger } from '../../util/log';
import {
  checkCdbUsage,
  prAccessOf,
  resolveCommand,
  type CommandContext,
  type CommandSpec,
  type OpcodeTable,
} from './command';
import { ModePages } from './mode-pages';
import { DEFAULT_OPCODES } from './opcodes';
import { RangeLock } from './range-lock';
import { Reservations } from './reservations';
import { Sense, SenseError, StatusError, replyOfError, invalidCdbField, type SenseReason } from './sense-errors';
import { requestAborted, type ItNexus, type ScsiReply, type ScsiRequest } from './types';
import { UnitAttentions } from './unit-attention';
import { DEFAULT_VPD_PAGES, type VpdBuilder } from './vpd-pages';

export interface LogicalUnitIdentity {
  /** 16-byte NAA 6h designator (VPD 83h). Default: the store's, else hashed from its name. */
  naa?: Buffer;
  /** PRODUCT SERIAL NUMBER (VPD 80h), printable ASCII. Default: the store's, else hashed. */
  serial?: string;
  /** T10 VENDOR IDENTIFICATION, at most 8 characters (default `XCOPYAGT`). */
  vendor?: string;
  /** PRODUCT IDENTIFICATION, at most 16 characters (default `xcopy-agent LUN`). */
  product?: string;
  /** PRODUCT REVISION LEVEL, at most 4 characters (default `0001`). */
  revision?: string;
}

/** The limits this logical unit reports in the Block Limits VPD page (SBC-3 r36 6.6.4) and enforces. */
export interface LogicalUnitLimits {
  /** MAXIMUM TRANSFER LENGTH, blocks (default 32 MiB worth, at most 1 GiB worth). */
  maxTransferBlocks: number;
  /** OPTIMAL TRANSFER LENGTH, blocks (default 1 MiB worth). */
  optimalTransferBlocks: number;
  /** MAXIMUM WRITE SAME LENGTH, blocks (default 256 MiB worth). */
  maxWriteSameBlocks: number;
  /** MAXIMUM COMPARE AND WRITE LENGTH, blocks, 1..255 (default 255, or less if the transfer limit is lower). */
  maxCompareAndWriteBlocks: number;
  /** MAXIMUM UNMAP LBA COUNT (default FFFFFFFFh: no limit). */
  maxUnmapLbaCount: number;
  /**
   * MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT (default 4095: the most a 16-bit PARAMETER LIST LENGTH
   * can carry).
   */
  maxUnmapDescriptors: number;
  /** MAXIMUM ATOMIC TRANSFER LENGTH, blocks (default: the maximum transfer length). */
  maxAtomicTransferBlocks: number;
}

export interface LogicalUnitOptions {
  store: Store;
  identity?: LogicalUnitIdentity;
  /** iSCSI name of the target, for the SCSI name string designators of VPD 83h. */
  targetName?: string;
  /** TARGET PORT GROUP for VPD 83h (default 1). */
  targetPortGroup?: number;
  /**
   * RELATIVE TARGET PORT IDENTIFIER for VPD 83h and READ FULL STATUS (default: the nexus' target
   * portal group tag, or 1 if that is 0).
   */
  relativeTargetPortId?: number;
  /** Refuse every write (DATA PROTECT, WRITE PROTECTED); also implied by a read-only store. */
  readOnly?: boolean;
  /**
   * Thin provisioning (LBPME = 1, UNMAP, WRITE SAME with UNMAP, provisioning type thin).
   * Default: on for sparse stores (memory and file stores, or a store that says `sparse: true`).
   */
  thinProvisioning?: boolean;
  /**
   * WRITE ATOMIC(16) (SBC-4): only where a single store write cannot be torn. Default: on for
   * memory stores (a write is applied in one synchronous step), off otherwise.
   */
  atomicWrite?: boolean;
  /** LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT (READ CAPACITY(16)), 0..4 (default 0). */
  physicalBlockExponent?: number;
  limits?: Partial<LogicalUnitLimits>;
  /** The opcode table (default: DEFAULT_OPCODES); extend it with withOpcodes(). */
  opcodes?: OpcodeTable;
  /** VPD pages (default: DEFAULT_VPD_PAGES); extend with addVpdPage(). */
  vpdPages?: ReadonlyMap<number, VpdBuilder>;
  /** The 3PC bit of standard INQUIRY data (the copy manager sets it; default false). */
  thirdPartyCopy?: boolean;
  /** Called for errors that are bugs (reported as INTERNAL TARGET FAILURE). Default: log them. */
  onInternalError?: (err: unknown, req: ScsiRequest) => void;
}

const MiB = 1024 * 1024;

function asciiOption(value: string | undefined, fallback: string, max: number, what: string): string {
  const v = value ?? fallback;
  if (typeof v !== 'string' || v.length > max || !/^[\x20-\x7e]*$/.test(v)) {
    throw new ArgumentError(`${what} must be printable ASCII of at most ${max} characters, got ${JSON.stringify(value)}`);
  }
  return v;
}

function intOption(value: number | undefined, fallback: number, min: number, max: number, what: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min || v > max) throw new ArgumentError(`${what} must be an integer in ${min}..${max}, got ${String(value)}`);
  return v;
}

function isSparseStore(store: Store): boolean {
  const declared = (store as { sparse?: unknown }).sparse;
  if (typeof declared === 'boolean') return declared;
  return store.kind === 'memory' || store.kind === 'file';
}

export class LogicalUnit {
  readonly store: Store;
  readonly blockSize: number;
  readonly vendor: string;
  readonly product: string;
  readonly revision: string;
  readonly naa: Buffer;
  readonly serial: string;
  readonly targetName?: string;
  readonly targetPortGroup: number;
  readonly limits: Readonly<LogicalUnitLimits>;
  readonly thin: boolean;
  readonly atomicWrite: boolean;
  readonly physicalBlockExponent: number;
  readonly opcodes: OpcodeTable;
  /** 3PC in standard INQUIRY data (SPC-4 r37 6.6.2); set by the copy manager. */
  thirdPartyCopy: boolean;

  readonly modes = new ModePages();
  readonly reservations = new Reservations();
  readonly unitAttentions = new UnitAttentions();
  readonly locks = new RangeLock();

  private readonly configuredReadOnly: boolean;
  private readonly relativeTargetPortIdOption?: number;
  private readonly vpd: Map<number, VpdBuilder>;
  private readonly onInternalError: (err: unknown, req: ScsiRequest) => void;
  private lastBlocks: bigint;

  constructor(opts: LogicalUnitOptions) {
    const store = opts.store;
    if (store === null || typeof store !== 'object' || typeof store.read !== 'function') {
      throw new ArgumentError('store must be a Store');
    }
    this.store = store;
    this.blockSize = store.blockSize;
    const id = opts.identity ?? {};
    this.vendor = asciiOption(id.vendor, 'XCOPYAGT', 8, 'identity.vendor');
    this.product = asciiOption(id.product, 'xcopy-agent LUN', 16, 'identity.product');
    this.revision = asciiOption(id.revision, '0001', 4, 'identity.revision');
    this.naa = Buffer.from(checkNaa(id.naa ?? store.identity.naa ?? naaFromSeed(store.identity.name), 'identity.naa'));
    this.serial = asciiOption(id.serial ?? store.identity.serial ?? serialFromSeed(store.identity.name), '', 252, 'identity.serial');
    if (this.serial.length === 0) throw new ArgumentError('identity.serial must not be empty');
    if (opts.targetName !== undefined && (typeof opts.targetName !== 'string' || opts.targetName.length === 0 || opts.targetName.length > 223)) {
      throw new ArgumentError('targetName must be an iSCSI name of 1..223 characters');
    }
    this.targetName = opts.targetName;
    this.targetPortGroup = intOption(opts.targetPortGroup, 1, 0, 0xffff, 'targetPortGroup');
    if (opts.relativeTargetPortId !== undefined) {
      this.relativeTargetPortIdOption = intOption(opts.relativeTargetPortId, 1, 1, 0xffff, 'relativeTargetPortId');
    }
    this.configuredReadOnly = opts.readOnly ?? false;
    this.thin = opts.thinProvisioning ?? isSparseStore(store);
    this.atomicWrite = opts.atomicWrite ?? store.kind === 'memory';
    this.physicalBlockExponent = intOption(opts.physicalBlockExponent, 0, 0, 4, 'physicalBlockExponent');
    const bs = this.blockSize;
    const l = opts.limits ?? {};
    // At most 1 GiB per command: a transfer is one Buffer (Data-In) and one store request.
    const maxTransferBlocks = intOption(l.maxTransferBlocks, Math.floor((32 * MiB) / bs), 1, Math.floor((1024 * MiB) / bs), 'limits.maxTransferBlocks');
    this.limits = Object.freeze({
      maxTransferBlocks,
      optimalTransferBlocks: intOption(l.optimalTransferBlocks, Math.min(maxTransferBlocks, Math.floor(MiB / bs)), 0, 0xffff_ffff, 'limits.optimalTransferBlocks'),
      maxWriteSameBlocks: intOption(l.maxWriteSameBlocks, Math.floor((256 * MiB) / bs), 1, 0xffff_ffff, 'limits.maxWriteSameBlocks'),
      maxCompareAndWriteBlocks: intOption(l.maxCompareAndWriteBlocks, Math.min(255, maxTransferBlocks), 1, 255, 'limits.maxCompareAndWriteBlocks'),
      maxUnmapLbaCount: intOption(l.maxUnmapLbaCount, 0xffff_ffff, 1, 0xffff_ffff, 'limits.maxUnmapLbaCount'),
      maxUnmapDescriptors: intOption(l.maxUnmapDescriptors, 4095, 1, 4095, 'limits.maxUnmapDescriptors'),
      maxAtomicTransferBlocks: intOption(l.maxAtomicTransferBlocks, Math.min(maxTransferBlocks, 0xffff), 1, Math.min(maxTransferBlocks, 0xffff), 'limits.maxAtomicTransferBlocks'),
    });
    this.opcodes = opts.opcodes ?? DEFAULT_OPCODES;
    this.vpd = new Map(opts.vpdPages ?? DEFAULT_VPD_PAGES);
    this.thirdPartyCopy = opts.thirdPartyCopy ?? false;
    this.onInternalError =
      opts.onInternalError ??
      ((err, req) => logger().error({ err, cdb: req.cdb.toString('hex'), lun: req.lun }, 'SCSI command failed with an internal error'));
    this.lastBlocks = store.blocks;
  }

  // -------------------------------------------------------------------------------------------
  // The transport's interface
  // -------------------------------------------------------------------------------------------

  /**
   * Executes one command and resolves with its status (never rejects). `view` is the LUN map of
   * the initiator, for REPORT LUNS; the dispatcher passes it.
   */
  async execute(req: ScsiRequest, view?: ReadonlyMap<number, LogicalUnit>): Promise<ScsiReply> {
    const nexus = req.nexus;
    try {
      this.unitAttentions.touch(nexus);
      this.noticeCapacityChange();
      if (requestAborted(req)) throw new StatusError(ScsiStatus.TASK_ABORTED, 'aborted before it started');
      const cdb = req.cdb;
      const spec = resolveCommand(this.opcodes, this, cdb);
      // SAM-5 r21 5.14: a pending unit attention ends any command but INQUIRY, REPORT LUNS and
      // REQUEST SENSE (an unknown opcode included).
      if (spec instanceof SenseError || spec.unitAttention !== 'exempt') {
        const ua = this.unitAttentions.take(nexus.id);
        if (ua !== undefined) throw new SenseError(ua);
      }
      if (spec instanceof SenseError) throw spec;
      if (cdb.length < spec.cdbLength) {
        throw invalidCdbField(0, 7, `${spec.name} needs a ${spec.cdbLength}-byte CDB, got ${cdb.length} bytes`);
      }
      this.checkReservations(spec, cdb, nexus);
      checkCdbUsage(spec, this, cdb);
      // SAM-5 r21 5.2: CONTROL byte bit 2 NACA and bit 0 LINK (obsolete) are not supported.
      const control = cdb[spec.cdbLength - 1];
      if ((control & 0x05) !== 0) throw invalidCdbField(spec.cdbLength - 1, (control & 0x04) !== 0 ? 2 : 0, 'NACA and LINK are not supported');
      const ctx: CommandContext = { lu: this, req, cdb, nexus, spec, view };
      const result = await spec.handler(ctx);
      const reply: ScsiReply = { status: result.status ?? ScsiStatus.GOOD };
      if (result.data !== undefined) reply.data = result.data;
      if (result.dataOutLength !== undefined) reply.dataOutLength = result.dataOutLength;
      return reply;
    } catch (err) {
      return replyOfError(err, this.modes.descriptorSense, (e) => this.onInternalError(e, req));
    }
  }

  /**
   * A LOGICAL UNIT RESET (SAM-5 r21 6.3.3) or a hard reset of the target (iSCSI TARGET WARM RESET,
   * RFC 7143 11.5.1): SPC-2 reservations are released, mode parameters return to their defaults,
   * persistent reservations stay (SPC-4 r37 5.13), and every I_T nexus gets a unit attention:
   * BUS DEVICE RESET FUNCTION OCCURRED (29h/03h) after a LUN reset, POWER ON, RESET, OR BUS
   * DEVICE RESET OCCURRED (29h/00h) after a target reset. The transport aborts the tasks.
   */
  reset(kind: 'lun-reset' | 'target-warm-reset', _by: ItNexus): void {
    this.reservations.spc2Holder = undefined;
    this.modes.reset();
    this.unitAttentions.establishAll(
      kind === 'lun-reset' ? Sense.BUS_DEVICE_RESET_FUNCTION_OCCURRED : Sense.POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED,
    );
  }

  /**
   * The I_T nexus is gone (logout, or a session that was not reinstated in time): its SPC-2
   * reservation is released (SPC-2) and its unit attention queue dropped — the next
   * time it appears it is a new nexus. Persistent reservations and registrations stay
   * (SPC-4 r37 5.13: they survive I_T nexus loss).
   */
  nexusGone(nexus: ItNexus): void {
    if (this.reservations.spc2Holder === nexus.id) this.reservations.spc2Holder = undefined;
    this.unitAttentions.forget(nexus.id);
  }

  /** Establishes a unit attention for one nexus, or for every nexus (but `except`) when `nexus` is undefined. */
  unitAttention(reason: SenseReason, nexus?: ItNexus, except?: ItNexus): void {
    if (nexus !== undefined) this.unitAttentions.establish(nexus.id, reason);
    else this.unitAttentions.establishAll(reason, except?.id);
  }

  // -------------------------------------------------------------------------------------------
  // Services for handlers
  // -------------------------------------------------------------------------------------------

  /** The VPD page builders, by page code. */
  get vpdPages(): ReadonlyMap<number, VpdBuilder> {
    return this.vpd;
  }

  /** Adds (or replaces) a VPD page; page 00h lists it from then on. */
  addVpdPage(pageCode: number, builder: VpdBuilder): void {
    if (!Number.isInteger(pageCode) || pageCode < 0 || pageCode > 0xff || pageCode === 0) {
      throw new ArgumentError(`VPD page code must be 01h..FFh, got ${String(pageCode)}`);
    }
    this.vpd.set(pageCode, builder);
  }

  /** RELATIVE TARGET PORT IDENTIFIER of the port a nexus came through. */
  relativeTargetPortId(nexus: ItNexus): number {
    if (this.relativeTargetPortIdOption !== undefined) return this.relativeTargetPortIdOption;
    const tag = nexus.targetPortalGroupTag;
    return Number.isInteger(tag) && tag > 0 && tag <= 0xffff ? tag : 1;
  }

  /**
   * Why writes are refused now, if they are: configured or store read-only, a write-protected
   * mapping of the requesting initiator, or SWP set.
   */
  writeProtection(req?: ScsiRequest): SenseReason | undefined {
    if (this.configuredReadOnly || this.store.readOnly || req?.writeProtect === true) return Sense.WRITE_PROTECTED;
    if (this.modes.softwareWriteProtect) return Sense.LOGICAL_UNIT_SOFTWARE_WRITE_PROTECTED;
    return undefined;
  }

  /** Throws DATA PROTECT if the medium may not be written (SBC-3 write protection). */
  assertWritable(req?: ScsiRequest): void {
    const why = this.writeProtection(req);
    if (why !== undefined) throw new SenseError(why);
  }

  /** FUA for a store write: asked by the CDB, or implied by a disabled write cache (WCE = 0). */
  forceUnitAccess(cdbFua: boolean): boolean {
    return cdbFua || !this.modes.writeCacheEnabled;
  }

  /** Writes whole blocks under the range lock (see RangeLock). */
  async writeBlocks(lba: bigint, data: Buffer, cdbFua: boolean): Promise<void> {
    const blocks = BigInt(data.length / this.blockSize);
    if (blocks === 0n) return;
    const fua = this.forceUnitAccess(cdbFua);
    const release = this.locks.tryAcquire(lba, blocks) ?? (await this.locks.acquire(lba, blocks));
    try {
      await this.store.write(lba, data, { fua });
    } finally {
      release();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Internals
  // -------------------------------------------------------------------------------------------

  /** SBC-3: a capacity change is reported to every nexus as CAPACITY DATA HAS CHANGED. */
  private noticeCapacityChange(): void {
    const blocks = this.store.blocks;
    if (blocks !== this.lastBlocks) {
      this.lastBlocks = blocks;
      this.unitAttentions.establishAll(Sense.CAPACITY_DATA_HAS_CHANGED);
    }
  }

  private checkReservations(spec: CommandSpec, cdb: Buffer, nexus: ItNexus): void {
    const r = this.reservations;
    // SPC-2 RESERVE: while another I_T nexus holds the reservation, every command but the allowed
    // ones (INQUIRY, REPORT LUNS, REQUEST SENSE, RELEASE) ends in RESERVATION CONFLICT.
    if (r.spc2Conflict(nexus.id) && spec.spc2 !== 'allowed') {
      throw new StatusError(ScsiStatus.RESERVATION_CONFLICT, `${spec.name}: reserved (SPC-2) by another I_T nexus`);
    }
    if (r.prConflict(prAccessOf(spec, cdb), nexus.id)) {
      throw new StatusError(ScsiStatus.RESERVATION_CONFLICT, `${spec.name}: conflicts with the persistent reservation`);
    }
  }
}

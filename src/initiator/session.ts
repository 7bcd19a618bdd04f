/**
 * The TypeScript face of the libiscsi binding: thick TypeScript over thin C++. Arguments are
 * validated here; the addon converts and calls. One session = one libiscsi context = one iSCSI
 * session (one TCP connection) to one target, addressing one LUN by default.
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { ArgumentError, IscsiError } from '../errors';
import {
  encodeCopyOperationAbortCdb,
  encodeExtendedCopyCdb,
  encodeInquiryCdb,
  encodeModeSense10Cdb,
  encodeRead16Cdb,
  encodeReadCapacity16Cdb,
  encodeReceiveCopyResultsCdb,
  encodeReportLunsCdb,
  encodeSynchronizeCache16Cdb,
  encodeTestUnitReadyCdb,
  encodeWrite16Cdb,
} from '../scsi/cdb';
import { ReceiveCopyResultsSa, ScsiStatus, scsiStatusName } from '../scsi/constants';
import {
  decodeCopyStatusLid1,
  decodeFailedSegmentDetails,
  decodeOperatingParameters,
  type DecodedCopyStatusLid1,
  type DecodedFailedSegmentDetails,
  type DecodedOperatingParameters,
} from '../scsi/copy-results';
import { decodeStandardInquiry, type DecodedStandardInquiry } from '../scsi/inquiry';
import { decodeModeParameterHeader10, MODE_PARAMETER_HEADER_10_LENGTH, type ModeParameterHeader10 } from '../scsi/mode-parameters';
import { decodeReadCapacity16, type ReadCapacity16Data } from '../scsi/read-capacity';
import { decodeReportLuns } from '../scsi/report-luns';
import { decodeSense, describeSense, type SenseData } from '../scsi/sense';
import { Sense, senseIs } from '../scsi/sense-reasons';
import {
  decodeBlockLimits,
  decodeDeviceIdentification,
  decodeSupportedVpdPages,
  decodeUnitSerialNumber,
  type DecodedBlockLimits,
  type DeviceIdentification,
} from '../scsi/vpd';
import { decodeThirdPartyCopy, type ThirdPartyCopyPage } from '../scsi/vpd-third-party-copy';
import { logger, type Logger } from '../util/log';
import {
  LIBISCSI_STATUS_CANCELLED,
  LIBISCSI_STATUS_TIMEOUT,
  ResidualKind,
  XferDir,
  loadNative,
  type NativeResult,
  type NativeSession,
} from '../native/index';
import { DEFAULT_RETRY, retryDelay, type RetryPolicy } from './retry';
import { formatIscsiUrl, parseIscsiUrl, type HeaderDigest, type IscsiUrl } from './url';

export interface SessionOptions {
  /** Our iSCSI initiator name. Default: $XCOPY_AGENT_INITIATOR or iqn.2026-11.io.xcopy-agent:<host>. */
  initiatorName?: string;
  /** Bound on TCP connect + login + LUN probe (ms). Default 10 000. */
  connectTimeoutMs?: number;
  /** Default per-command timeout (ms, rounded up to whole seconds; 0 = none). Default 30 000. */
  commandTimeoutMs?: number;
  retry?: RetryPolicy;
  /** libiscsi's automatic reconnect (commands are reissued after a reconnect). Default true. */
  autoReconnect?: boolean;
  log?: Logger;
  env?: NodeJS.ProcessEnv;
}

export interface ExecuteOptions {
  dataOut?: Buffer;
  dataInLength?: number;
  /** Where Data-In lands (at least dataInLength bytes; default: a new Buffer per command). */
  dataInBuffer?: Buffer;
  timeoutMs?: number;
  retry?: RetryPolicy;
  /** Address another LUN of the same target (default: the session's LUN). */
  lun?: number;
}

export interface ScsiResult {
  status: number;
  /** Decoded sense data, when the status was CHECK CONDITION and the sense could be decoded. */
  sense?: SenseData;
  senseBytes?: Buffer;
  /** Data-In actually received (the allocation trimmed by an underflow residual). */
  data?: Buffer;
  /** Residual count: positive for an underflow, negative for an overflow, 0 for none. */
  residual?: number;
  attempts: number;
}

const DIGEST_MODE: Record<HeaderDigest, number> = { none: 0, 'none-crc32c': 1, 'crc32c-none': 2, crc32c: 3 };

export function defaultInitiatorName(env: NodeJS.ProcessEnv = process.env): string {
  if (env.XCOPY_AGENT_INITIATOR) return env.XCOPY_AGENT_INITIATOR;
  const host = os.hostname().toLowerCase().replace(/[^a-z0-9.-]/g, '-') || 'host';
  return `iqn.2026-11.io.xcopy-agent:${host}`;
}

function validateLun(lun: unknown, what = 'lun'): number {
  if (!Number.isInteger(lun) || (lun as number) < 0 || (lun as number) > 16383) {
    throw new ArgumentError(`${what} must be an integer from 0 to 16383, got ${String(lun)}`);
  }
  return lun as number;
}

function validateLength(n: unknown, what: string, max = 0x7fffffff): number {
  if (!Number.isInteger(n) || (n as number) < 0 || (n as number) > max) {
    throw new ArgumentError(`${what} must be an integer from 0 to ${max}, got ${String(n)}`);
  }
  return n as number;
}

/** How long after a command's timeout its deadline here ends the session (libiscsi's own check runs on a 1 s tick). */
const DEADLINE_GRACE_MS = 2000;

function secondsOf(ms: number): number {
  return ms <= 0 ? 0 : Math.max(1, Math.ceil(ms / 1000));
}

/** Turns libiscsi's connect/login error text into a stable code (the only place that reads it). */
function connectError(u: IscsiUrl, text: string): IscsiError {
  const where = `${u.portal}${u.target ? ` (${u.target})` : ''}`;
  const login = /Failed to log in to target\. Status: ([^(]*)\((\d+)\)/.exec(text);
  if (login) {
    const status = Number(login[2]);
    const hint =
      status === 0x0201
        ? 'check the CHAP user and password (URL, LIBISCSI_CHAP_* variables)'
        : status === 0x0203
          ? "check the target IQN: 'xcopy-agent discover iscsi://HOST:PORT' lists the targets"
          : status === 0x0202
            ? "this initiator is not allowed: add its IQN to the target's ACL"
            : 'check the target configuration';
    return new IscsiError(
      'ERR_ISCSI_LOGIN',
      `login to ${where} refused: ${login[1].trim()} (status 0x${status.toString(16).padStart(4, '0')}); ${hint}`,
    );
  }
  if (/authentic|CHAP/i.test(text)) {
    return new IscsiError('ERR_ISCSI_LOGIN', `login to ${where} refused: ${text}; check the CHAP credentials`);
  }
  if (/connect|resolv|Invalid target|socket|refused|unreachable/i.test(text)) {
    return new IscsiError(
      'ERR_ISCSI_UNREACHABLE',
      `cannot reach iSCSI portal ${u.portal}: ${text.replace(/^Failed to connect to iSCSI socket\.\s*/, '').replace(/^iscsi_service: /, '').replace(/\.\s*$/, '') || 'connection failed'}; check the address and that the target is running`,
    );
  }
  return new IscsiError('ERR_ISCSI_TRANSPORT', `connecting to ${where} failed: ${text || 'unknown error'}`);
}

export class IscsiSession {
  /** The LUN's URL, without secrets. */
  readonly url: string;
  readonly lun: number;
  readonly target: string;
  readonly portal: string;
  private native: NativeSession | undefined;
  private readonly retry: RetryPolicy;
  private readonly commandTimeoutMs: number;
  private readonly log: Logger;
  private cachedBlockSize: number | undefined;
  private closing: Promise<void> | undefined;
  /** Why the session was closed under its pending commands (a command's deadline passed). */
  private closedBy: string | undefined;

  private constructor(native: NativeSession, u: IscsiUrl, opts: SessionOptions) {
    this.native = native;
    this.lun = u.lun ?? 0;
    this.target = u.target ?? '';
    this.portal = u.portal;
    this.url = formatIscsiUrl(u);
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 30_000;
    this.log = (opts.log ?? logger()).child({ lun_url: this.url });
  }

  /**
   * Connects and logs in to the LUN named by a libiscsi URL, then checks that the LUN exists
   * (TEST UNIT READY consuming the unit attentions of a fresh login, then INQUIRY).
   * Errors: ERR_INVALID_URL, ERR_ISCSI_UNREACHABLE, ERR_ISCSI_LOGIN, ERR_ISCSI_NO_SUCH_LUN,
   * ERR_ISCSI_TIMEOUT (connect bound exceeded).
   */
  static async connect(url: string, opts: SessionOptions = {}): Promise<IscsiSession> {
    const u = parseIscsiUrl(url, { requireLun: true, env: opts.env });
    const log = opts.log ?? logger();
    if (u.secretInUrl) log.warn({ url: formatIscsiUrl(u) }, 'a CHAP secret is in the URL: prefer LIBISCSI_CHAP_* variables');
    const native = await IscsiSession.login(u, false, opts);
    const session = new IscsiSession(native, u, opts);
    try {
      await session.probeLun(opts.connectTimeoutMs ?? 10_000);
    } catch (err) {
      await session.close();
      throw err;
    }
    session.log.debug('connected');
    return session;
  }

  /** TCP connect + login on a new libiscsi context, bounded in time. */
  private static async login(u: IscsiUrl, discovery: boolean, opts: SessionOptions): Promise<NativeSession> {
    const { NativeSession } = loadNative();
    const native = new NativeSession(opts.initiatorName ?? defaultInitiatorName(opts.env));
    if (!discovery) native.setTargetName(u.target ?? '');
    native.setSessionType(discovery);
    if (u.headerDigest) native.setHeaderDigest(DIGEST_MODE[u.headerDigest]);
    if (u.user !== undefined && u.password !== undefined) native.setInitiatorChap(u.user, u.password);
    if (u.targetUser !== undefined && u.targetPassword !== undefined) {
      native.setTargetChap(u.targetUser, u.targetPassword);
    }
    native.setAutoReconnect(opts.autoReconnect ?? true);
    const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      native.close(); // settles the connect with CANCELLED
    }, connectTimeoutMs);
    let r: NativeResult;
    try {
      r = await native.connect(u.portal, -1);
    } finally {
      clearTimeout(timer);
    }
    if (timedOut) {
      throw new IscsiError(
        'ERR_ISCSI_UNREACHABLE',
        `cannot reach iSCSI portal ${u.portal}: no login within ${connectTimeoutMs} ms; check the address and that the target is running`,
      );
    }
    if (r.status !== ScsiStatus.GOOD) {
      native.close();
      throw connectError(u, r.error ?? native.lastError());
    }
    return native;
  }

  /** TEST UNIT READY (unit attentions consumed by the retry policy), then INQUIRY's qualifier. */
  private async probeLun(timeoutMs: number): Promise<void> {
    const tur = await this.execute(encodeTestUnitReadyCdb(), {
      timeoutMs,
      retry: { ...this.retry, maxAttempts: Math.max(this.retry.maxAttempts, 11) },
    });
    if (tur.status === ScsiStatus.CHECK_CONDITION && senseIs(tur.sense, Sense.LOGICAL_UNIT_NOT_SUPPORTED)) {
      throw await this.noSuchLun('LOGICAL UNIT NOT SUPPORTED');
    }
    const inq = await this.inquiry({ timeoutMs }).catch(async (err: unknown) => {
      if (senseIs(err, Sense.LOGICAL_UNIT_NOT_SUPPORTED)) throw await this.noSuchLun('LOGICAL UNIT NOT SUPPORTED');
      throw err;
    });
    // SPC-4 r37 6.6.2: PERIPHERAL QUALIFIER 011b = no logical unit at this LUN.
    if (inq.peripheralQualifier === 0b011) throw await this.noSuchLun('peripheral qualifier 011b');
  }

  private async noSuchLun(why: string): Promise<IscsiError> {
    let present = '';
    try {
      const luns = await this.reportLuns(0); // LUN 0 answers REPORT LUNS even when LUN n is absent (SPC-4 r37 6.33)
      present = luns.length > 0 ? `; the target has LUN ${luns.join(', ')}` : '; the target reports no LUNs';
    } catch {
      // REPORT LUNS is only a hint here.
    }
    return new IscsiError(
      'ERR_ISCSI_NO_SUCH_LUN',
      `no LUN ${this.lun} on ${this.target} at ${this.portal} (${why})${present}`,
    );
  }

  /** SendTargets=All on a discovery session (RFC 7143 appendix C). */
  static async discover(portalUrl: string, opts: SessionOptions = {}): Promise<{ name: string; portals: string[] }[]> {
    const u = parseIscsiUrl(portalUrl, { requireLun: false, env: opts.env });
    const native = await IscsiSession.login(u, true, opts);
    try {
      const r = await native.discovery();
      if (r.status !== ScsiStatus.GOOD) {
        throw new IscsiError('ERR_ISCSI_TRANSPORT', `SendTargets on ${u.portal} failed: ${r.error ?? native.lastError()}`);
      }
      await boundedLogout(native);
      return r.targets ?? [];
    } finally {
      native.close();
    }
  }

  get closed(): boolean {
    return this.native === undefined;
  }

  /** Commands queued or in flight on the session. */
  get queueLength(): number {
    return this.native?.queueLength() ?? 0;
  }

  /**
   * Sends one CDB. Resolves with whatever SCSI status came back (CHECK CONDITION included, after
   * the retry policy); rejects only when no status came back: ERR_ISCSI_TIMEOUT,
   * ERR_ISCSI_CLOSED, ERR_ISCSI_TRANSPORT.
   */
  async execute(cdb: Buffer, opts: ExecuteOptions = {}): Promise<ScsiResult> {
    if (!Buffer.isBuffer(cdb) || cdb.length < 6 || cdb.length > 16) {
      throw new ArgumentError(`cdb must be a Buffer of 6 to 16 bytes, got ${Buffer.isBuffer(cdb) ? cdb.length : typeof cdb}`);
    }
    const { dataOut } = opts;
    if (dataOut !== undefined && !Buffer.isBuffer(dataOut)) throw new ArgumentError('dataOut must be a Buffer');
    const dataInLength = validateLength(opts.dataInLength ?? 0, 'dataInLength');
    const { dataInBuffer } = opts;
    if (dataInBuffer !== undefined && (!Buffer.isBuffer(dataInBuffer) || dataInBuffer.length < dataInLength)) {
      throw new ArgumentError(`dataInBuffer must be a Buffer of at least dataInLength (${dataInLength}) bytes`);
    }
    if (dataOut !== undefined && dataInLength > 0) {
      throw new ArgumentError('a command has Data-Out or Data-In, not both (bidirectional commands are not supported)');
    }
    const lun = opts.lun === undefined ? this.lun : validateLun(opts.lun);
    const timeoutMs = validateLength(opts.timeoutMs ?? this.commandTimeoutMs, 'timeoutMs');
    const policy = opts.retry ?? this.retry;
    const dir = dataOut !== undefined && dataOut.length > 0 ? XferDir.WRITE : dataInLength > 0 ? XferDir.READ : XferDir.NONE;
    const t0 = Date.now();
    for (let attempt = 1; ; attempt++) {
      const native = this.native;
      if (!native || this.closing) throw new IscsiError('ERR_ISCSI_CLOSED', this.closedBy ?? `session to ${this.url} is closed`);
      native.setTimeout(secondsOf(timeoutMs));
      const r = await this.withDeadline(native.execute(lun, cdb, dir, dir === XferDir.WRITE ? dataOut! : null, dataInLength, dataInBuffer), timeoutMs, cdb[0]);
      if (r.status === LIBISCSI_STATUS_CANCELLED) {
        throw new IscsiError('ERR_ISCSI_CLOSED', this.closedBy ?? `session to ${this.url} closed with the command pending`);
      }
      if (r.status === LIBISCSI_STATUS_TIMEOUT) {
        throw new IscsiError('ERR_ISCSI_TIMEOUT', `command 0x${cdb[0].toString(16).padStart(2, '0')} to ${this.url} timed out after ${secondsOf(timeoutMs)} s`);
      }
      if (r.status < 0 || r.status > 0xff) {
        throw new IscsiError('ERR_ISCSI_TRANSPORT', `command 0x${cdb[0].toString(16).padStart(2, '0')} to ${this.url} failed: ${r.error ?? 'transport error'}`);
      }
      const result = this.toResult(r, dataInLength, attempt);
      const delay = retryDelay(policy, attempt, r.status, result.sense?.senseKey, Math.random, {
        asc: result.sense?.asc,
        ascq: result.sense?.ascq,
        elapsedMs: Date.now() - t0,
      });
      if (delay === undefined) return result;
      this.log.debug({ attempt, status: scsiStatusName(r.status), delay_ms: delay }, 'retrying command');
      if (delay > 0) await sleep(delay);
    }
  }

  /**
   * libiscsi runs command timeouts only while it is logged in. When the target goes away it
   * reconnects, again and again (without bound), and meanwhile the commands it will reissue
   * sit in the context being replaced, where no timeout scan reaches them: they would wait
   * forever. So the timeout is kept here as well, a little after libiscsi's own (checked on its
   * 1 s tick): past it the session is closed, which settles every pending command — this one
   * with ERR_ISCSI_TIMEOUT, the others with ERR_ISCSI_CLOSED saying why.
   */
  private async withDeadline(pending: Promise<NativeResult>, timeoutMs: number, opcode: number): Promise<NativeResult> {
    if (timeoutMs === 0) return pending;
    const seconds = secondsOf(timeoutMs);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), seconds * 1000 + DEADLINE_GRACE_MS);
    });
    try {
      const r = await Promise.race([pending, deadline]);
      if (r !== undefined) return r;
    } finally {
      clearTimeout(timer);
    }
    const op = `command 0x${opcode.toString(16).padStart(2, '0')}`;
    const why = `got no answer within ${seconds} s (the target stopped answering or went away)`;
    this.closedBy ??= `session to ${this.url} closed: ${op} ${why}`;
    this.closing ??= this.doClose(false);
    await this.closing;
    await pending; // settled (CANCELLED) by the close
    throw new IscsiError('ERR_ISCSI_TIMEOUT', `${op} to ${this.url} ${why}; the session is closed`);
  }

  private toResult(r: NativeResult, dataInLength: number, attempts: number): ScsiResult {
    const result: ScsiResult = { status: r.status, attempts };
    const residual = r.residual ?? 0;
    result.residual =
      r.residualKind === ResidualKind.UNDERFLOW ? residual : r.residualKind === ResidualKind.OVERFLOW ? -residual : 0;
    if (r.data) {
      const got = r.residualKind === ResidualKind.UNDERFLOW ? Math.max(0, dataInLength - residual) : dataInLength;
      result.data = got === r.data.length ? r.data : r.data.subarray(0, got);
    }
    if (r.sense && r.sense.length > 0) {
      result.senseBytes = r.sense;
      try {
        result.sense = decodeSense(r.sense);
      } catch {
        // keep the raw bytes; the caller's error names them
      }
    }
    return result;
  }

  /** Throws the one error class for a non-GOOD status; returns the result otherwise. */
  check(result: ScsiResult, what: string): ScsiResult {
    if (result.status === ScsiStatus.GOOD || result.status === ScsiStatus.CONDITION_MET) return result;
    if (result.status === ScsiStatus.CHECK_CONDITION) {
      const s = result.sense;
      const text = s ? describeSense(s) : `undecodable sense ${result.senseBytes?.toString('hex') ?? '(none)'}`;
      return throwError(
        new IscsiError('ERR_SCSI_CHECK_CONDITION', `${what} on ${this.url}: ${text}`, {
          scsiStatus: result.status,
          senseKey: s?.senseKey,
          asc: s?.asc,
          ascq: s?.ascq,
          sense: result.senseBytes,
        }),
      );
    }
    return throwError(
      new IscsiError('ERR_SCSI_STATUS', `${what} on ${this.url}: status ${scsiStatusName(result.status)}`, {
        scsiStatus: result.status,
      }),
    );
  }

  // ---- typed helpers ----

  async testUnitReady(): Promise<void> {
    this.check(await this.execute(encodeTestUnitReadyCdb()), 'TEST UNIT READY');
  }

  /** Standard INQUIRY data (SPC-4 r37 6.6.2). */
  async inquiry(opts: { timeoutMs?: number } = {}): Promise<DecodedStandardInquiry> {
    const r = this.check(
      await this.execute(encodeInquiryCdb({ evpd: false, pageCode: 0, allocationLength: 255 }), {
        dataInLength: 255,
        timeoutMs: opts.timeoutMs,
      }),
      'INQUIRY',
    );
    return decodeStandardInquiry(r.data ?? Buffer.alloc(0));
  }

  /** A VPD page's raw bytes, re-read with a larger allocation when the first read was short. */
  async inquiryVpd(pageCode: number): Promise<Buffer> {
    validateLength(pageCode, 'pageCode', 0xff);
    let alloc = 1024;
    for (;;) {
      const r = this.check(
        await this.execute(encodeInquiryCdb({ evpd: true, pageCode, allocationLength: alloc }), { dataInLength: alloc }),
        `INQUIRY VPD 0x${pageCode.toString(16).padStart(2, '0')}`,
      );
      const data = r.data ?? Buffer.alloc(0);
      const full = data.length >= 4 ? data.readUInt16BE(2) + 4 : 0;
      if (full <= data.length || alloc >= 0xffff) return data;
      alloc = Math.min(0xffff, full);
    }
  }

  async supportedVpdPages(): Promise<number[]> {
    return decodeSupportedVpdPages(await this.inquiryVpd(0x00)).pages;
  }

  async unitSerialNumber(): Promise<string> {
    return decodeUnitSerialNumber(await this.inquiryVpd(0x80)).productSerialNumber;
  }

  async deviceIdentification(): Promise<DeviceIdentification> {
    return decodeDeviceIdentification(await this.inquiryVpd(0x83));
  }

  async blockLimits(): Promise<DecodedBlockLimits> {
    return decodeBlockLimits(await this.inquiryVpd(0xb0));
  }

  async thirdPartyCopyVpd(): Promise<ThirdPartyCopyPage> {
    return decodeThirdPartyCopy(await this.inquiryVpd(0x8f));
  }

  /** READ CAPACITY(16) (SBC-3 r36 5.16); remembers the block size for read16/write16. */
  async readCapacity16(): Promise<ReadCapacity16Data> {
    const r = this.check(
      await this.execute(encodeReadCapacity16Cdb({ allocationLength: 32 }), { dataInLength: 32 }),
      'READ CAPACITY(16)',
    );
    const cap = decodeReadCapacity16(r.data ?? Buffer.alloc(0));
    this.cachedBlockSize = cap.logicalBlockLength;
    return cap;
  }

  /**
   * The mode parameter header of MODE SENSE(10) (DBD = 1, all pages, current values, cut to the
   * header): WP says whether this I_T nexus may write the medium (SBC-3 r36 6.4.1).
   */
  async modeParameterHeader10(): Promise<ModeParameterHeader10> {
    const r = this.check(
      await this.execute(encodeModeSense10Cdb({ dbd: true, pageCode: 0x3f, allocationLength: MODE_PARAMETER_HEADER_10_LENGTH }), { dataInLength: MODE_PARAMETER_HEADER_10_LENGTH }),
      'MODE SENSE(10)',
    );
    return decodeModeParameterHeader10(r.data ?? Buffer.alloc(0));
  }

  /** The LUN's logical block length (READ CAPACITY(16) once, then cached). */
  async blockSize(): Promise<number> {
    if (this.cachedBlockSize === undefined) await this.readCapacity16();
    return this.cachedBlockSize!;
  }

  /**
   * READ(16) of `blocks` blocks at `lba` (SBC-3 r36 5.13). With `into`, the data lands in that
   * buffer (at least blocks x block size bytes) and a view of it is returned.
   */
  async read16(
    lba: bigint,
    blocks: number,
    opts: { fua?: boolean; dpo?: boolean; timeoutMs?: number; into?: Buffer } = {},
  ): Promise<Buffer> {
    if (typeof lba !== 'bigint' || lba < 0n || lba > 0xffffffffffffffffn) throw new ArgumentError('lba must be a bigint from 0 to 2^64-1');
    validateLength(blocks, 'blocks', 0xffffffff);
    // No await before the command is queued when the block size is known: callers that issue
    // many reads in a row get them all in flight at once.
    const bs = this.cachedBlockSize ?? (await this.blockSize());
    const r = this.check(
      await this.execute(encodeRead16Cdb({ lba, transferLength: blocks, fua: opts.fua, dpo: opts.dpo }), {
        dataInLength: blocks * bs,
        dataInBuffer: opts.into,
        timeoutMs: opts.timeoutMs,
      }),
      `READ(16) at LBA ${lba}`,
    );
    return r.data ?? Buffer.alloc(0);
  }

  /**
   * WRITE(16) of `data` (a whole number of blocks) at `lba` (SBC-3 r36 5.35). FUA and DPO are
   * sent only to a LUN whose MODE SENSE says it takes them (DPOFUA, SBC-3 r36 6.4.1; asked once):
   * LIO refuses them with INVALID FIELD IN CDB where its device advertises no write cache. To
   * another LUN a FUA write is the WRITE, then SYNCHRONIZE CACHE(16) of its blocks (5.27): the
   * data is on the medium when this resolves, either way. DPO, a cache hint, is dropped there.
   */
  async write16(lba: bigint, data: Buffer, opts: { fua?: boolean; dpo?: boolean; timeoutMs?: number } = {}): Promise<void> {
    if (typeof lba !== 'bigint' || lba < 0n || lba > 0xffffffffffffffffn) throw new ArgumentError('lba must be a bigint from 0 to 2^64-1');
    if (!Buffer.isBuffer(data)) throw new ArgumentError('data must be a Buffer');
    const bs = this.cachedBlockSize ?? (await this.blockSize());
    if (data.length % bs !== 0) throw new ArgumentError(`data length ${data.length} is not a multiple of the block size ${bs}`);
    const flags = opts.fua || opts.dpo ? await this.takesDpoFua() : true;
    this.check(
      await this.execute(encodeWrite16Cdb({ lba, transferLength: data.length / bs, fua: flags && opts.fua, dpo: flags && opts.dpo }), {
        dataOut: data,
        timeoutMs: opts.timeoutMs,
      }),
      `WRITE(16) at LBA ${lba}`,
    );
    if (opts.fua && !flags) await this.synchronizeCache16(lba, data.length / bs);
  }

  /** Whether the LUN takes DPO and FUA (the DPOFUA bit of MODE SENSE(10)); no answer counts as no. */
  private dpofua: Promise<boolean> | undefined;
  private takesDpoFua(): Promise<boolean> {
    this.dpofua ??= this.modeParameterHeader10().then(
      (h) => h.dpofua,
      () => false,
    );
    return this.dpofua;
  }

  /** SYNCHRONIZE CACHE(16) (SBC-3 r36 5.27); the defaults flush the whole LUN. */
  async synchronizeCache16(lba = 0n, blocks = 0, immed = false): Promise<void> {
    this.check(
      await this.execute(encodeSynchronizeCache16Cdb({ lba, numberOfBlocks: blocks, immed })),
      'SYNCHRONIZE CACHE(16)',
    );
  }

  /** REPORT LUNS (SPC-4 r37 6.33), SELECT REPORT 00h, sent to `lun` (default the session's). */
  async reportLuns(lun = this.lun): Promise<number[]> {
    const alloc = 16 + 8 * 512;
    const r = this.check(
      await this.execute(encodeReportLunsCdb({ selectReport: 0, allocationLength: alloc }), { dataInLength: alloc, lun }),
      'REPORT LUNS',
    );
    return decodeReportLuns(r.data ?? Buffer.alloc(0)).luns;
  }

  /** EXTENDED COPY (LID1) with a prepared parameter list (SPC-4 r37 6.5). */
  async extendedCopy(parameterList: Buffer, opts: { timeoutMs?: number } = {}): Promise<void> {
    if (!Buffer.isBuffer(parameterList)) throw new ArgumentError('parameterList must be a Buffer');
    this.check(
      await this.execute(encodeExtendedCopyCdb({ parameterListLength: parameterList.length }), {
        dataOut: parameterList,
        timeoutMs: opts.timeoutMs ?? Math.max(this.commandTimeoutMs, 300_000),
      }),
      'EXTENDED COPY',
    );
  }

  /** COPY OPERATION ABORT (SPC-4 r37 6.3): stops the copy with this list id sent on this session. */
  async copyOperationAbort(listIdentifier: number): Promise<void> {
    validateLength(listIdentifier, 'listIdentifier', 0xffffffff);
    this.check(await this.execute(encodeCopyOperationAbortCdb({ listIdentifier })), 'COPY OPERATION ABORT');
  }

  /** RECEIVE COPY RESULTS, i.e. THIRD-PARTY COPY IN (SPC-4 r37 6.22, 6.23, 6.25), raw parameter data. */
  async receiveCopyResults(serviceAction: number, listIdentifier: number, allocationLength = 1024): Promise<Buffer> {
    validateLength(serviceAction, 'serviceAction', 0x1f);
    validateLength(listIdentifier, 'listIdentifier', 0xff);
    validateLength(allocationLength, 'allocationLength', 0xffffffff);
    const r = this.check(
      await this.execute(encodeReceiveCopyResultsCdb({ serviceAction, listIdentifier, allocationLength }), {
        dataInLength: allocationLength,
      }),
      `RECEIVE COPY RESULTS (SA 0x${serviceAction.toString(16).padStart(2, '0')})`,
    );
    return r.data ?? Buffer.alloc(0);
  }

  async operatingParameters(): Promise<DecodedOperatingParameters> {
    return decodeOperatingParameters(await this.receiveCopyResults(ReceiveCopyResultsSa.OPERATING_PARAMETERS, 0));
  }

  async copyStatus(listIdentifier: number): Promise<DecodedCopyStatusLid1> {
    return decodeCopyStatusLid1(await this.receiveCopyResults(ReceiveCopyResultsSa.COPY_STATUS, listIdentifier));
  }

  async failedSegmentDetails(listIdentifier: number): Promise<DecodedFailedSegmentDetails> {
    return decodeFailedSegmentDetails(
      await this.receiveCopyResults(ReceiveCopyResultsSa.FAILED_SEGMENT_DETAILS, listIdentifier),
    );
  }

  /**
   * Closes the session. Commands still pending settle at once (rejected with ERR_ISCSI_CLOSED);
   * an idle session logs out politely first (bounded to 2 s).
   */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.doClose();
    return this.closing;
  }

  /** `polite`: log out first when no command is pending (not after a command's deadline: the target is gone). */
  private async doClose(polite = true): Promise<void> {
    const native = this.native;
    if (!native) return;
    if (polite && native.queueLength() === 0) await boundedLogout(native);
    native.close();
    this.native = undefined;
  }
}

/** A polite Logout (RFC 7143 11.14), waiting at most `ms`; the timer never holds the process. */
async function boundedLogout(native: NativeSession, ms = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    native.logout().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

function throwError(err: Error): never {
  throw err;
}


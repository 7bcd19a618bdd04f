/**
 * One iSCSI connection on the target side (RFC 7143): the login phase (LoginMachine), then the
 * full feature phase — SCSI commands with their Data-Out (immediate, unsolicited, R2T-solicited)
 * and Data-In (phase-collapsed status), NOP-Out/NOP-In both ways, task management, Text
 * (SendTargets), Logout, and Reject for bad PDUs. Bytes go through the framer; PDUs through the
 * codecs in pdu.ts; commands through the SCSI layer (src/target/scsi/).
 */
import type net from 'node:net';
import { DecodeError } from '../../errors';
import type { Logger } from '../../util/log';
import { ScsiStatus } from '../../scsi/constants';
import { Sense, buildSense } from '../../scsi/sense-reasons';
import { executeOnView } from '../scsi/dispatch';
import type { LogicalUnit } from '../scsi/logical-unit';
import type { ScsiReply } from '../scsi/types';
import { LOGIN_MAX_DATA_SEGMENT_LENGTH, PduFramer, encodeFrame, type FramedPdu } from './framer';
import { LoginMachine, LoginStatus, type LoginResult } from './login';
import {
  IscsiOpcode,
  LogoutResponseCode,
  RESERVED_TAG,
  RejectReason,
  TmfFunction,
  TmfResponse,
  decodeInitiatorPdu,
  encodeDataIn,
  encodeLoginResponse,
  encodeLogoutResponse,
  encodeNopIn,
  encodeR2T,
  encodeReject,
  encodeScsiResponse,
  encodeTaskManagementResponse,
  encodeTextResponse,
  iscsiOpcodeName,
  isInitiatorOpcode,
  pduOpcode,
  type DataOutPdu,
  type InitiatorPdu,
  type LoginRequestPdu,
  type LogoutRequestPdu,
  type NopOutPdu,
  type RawPdu,
  type ScsiCommandPdu,
  type TaskManagementRequestPdu,
  type TextRequestPdu,
} from './pdu';
import { TargetSession, snLess } from './session';
import { Task } from './task';
import { TextAccumulator, encodeTextData, parseTextPairs, type TextPair } from './text';
import type { NegotiatedParams } from './negotiation';

/** What a connection needs from the server that accepted it. */
export interface ConnectionHost {
  readonly log: Logger;
  loginConfig(conn: Connection): ConstructorParameters<typeof LoginMachine>[0];
  /** Binds a completed login to a (new or reinstated) session. */
  attachSession(conn: Connection, result: LoginResult): TargetSession;
  detach(conn: Connection): void;
  /** SendTargets answer for this connection's session (RFC 7143 appendix C). */
  sendTargets(conn: Connection, which: string): TextPair[];
  /** LUN RESET / TARGET WARM RESET: aborts tasks on every connection, then resets the LUs. */
  reset(fn: 'lun' | 'target', conn: Connection, lun: number): Promise<boolean>;
  countOpcode(cdb0: number): void;
  /**
   * A command has ended (its status is about to be sent, or it was aborted): for metrics. `lu` is
   * the logical unit it addressed (undefined for an unmapped LUN); the byte counts are the Data-In
   * sent and the Data-Out gathered; `startedMs` is performance.now() when the command arrived.
   */
  commandDone(lu: LogicalUnit | undefined, opcode: number, status: number, dataInBytes: number, dataOutBytes: number, startedMs: number): void;
  readonly keepAliveIntervalMs: number;
  readonly keepAliveTimeoutMs: number;
  /** Largest Data-Out gathered for one command (bytes). */
  readonly maxCommandBytes: number;
}

let nextTtt = 1;

/** The sense of a response that has none (shared: never written to). */
const NO_SENSE = Buffer.alloc(0);

function newTtt(): number {
  nextTtt = (nextTtt + 1) >>> 0;
  if (nextTtt === RESERVED_TAG || nextTtt === 0) nextTtt = 1;
  return nextTtt;
}

export class Connection {
  readonly socket: net.Socket;
  readonly id: number;
  readonly log: Logger;
  session?: TargetSession;
  /** CmdSN of the last Login Request: the session's first ExpCmdSN (login PDUs are immediate). */
  loginCmdSN = 0;
  private readonly host: ConnectionHost;
  private readonly framer = new PduFramer({
    maxRecvDataSegmentLength: LOGIN_MAX_DATA_SEGMENT_LENGTH,
    headerDigest: false,
    dataDigest: false,
  });
  private login?: LoginMachine;
  private loginText = new TextAccumulator();
  private textIn = new TextAccumulator();
  private pendingText?: { itt: number; ttt: number; pieces: Buffer[] };
  private params?: NegotiatedParams;
  private headerDigest = false;
  private dataDigest = false;
  private statSN = 0;
  private phase: 'login' | 'full-feature' | 'logout' | 'closed' = 'login';
  private readonly tasks = new Map<number, Task>();
  /** Non-immediate commands that arrived ahead of ExpCmdSN, by CmdSN. */
  private readonly held = new Map<number, ScsiCommandPdu>();
  private keepAlive?: NodeJS.Timeout;
  private pingTtt?: number;
  private pingDeadline?: NodeJS.Timeout;
  private lastRx = Date.now();

  constructor(socket: net.Socket, id: number, host: ConnectionHost) {
    this.socket = socket;
    this.id = id;
    this.host = host;
    this.log = host.log.child({ conn: id, peer: `${socket.remoteAddress}:${socket.remotePort}` });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    socket.on('close', () => this.closed());
  }

  get localAddress(): string {
    return this.socket.localAddress ?? '127.0.0.1';
  }

  get localPort(): number {
    return this.socket.localPort ?? 3260;
  }

  /** Tasks in flight, for resets and graceful stop. */
  get inflight(): number {
    return this.tasks.size;
  }

  // ---- bytes in ----

  private onData(chunk: Buffer): void {
    this.lastRx = Date.now();
    let pdus: FramedPdu[];
    try {
      pdus = this.framer.push(chunk);
    } catch (err) {
      // An absurd DataSegmentLength and the like: the stream cannot be resynchronised.
      this.log.warn({ err: (err as Error).message }, 'framing error: closing the connection');
      this.close();
      return;
    }
    for (const pdu of pdus) {
      if (this.phase === 'closed') return;
      if (!pdu.headerDigestOk) {
        this.log.warn('header digest error: closing the connection (RFC 7143 7.8)');
        this.close();
        return;
      }
      try {
        this.onPdu(pdu);
      } catch (err) {
        this.log.error({ err: (err as Error).stack }, 'unexpected error handling a PDU: closing the connection');
        this.close();
        return;
      }
    }
  }

  private onPdu(raw: FramedPdu): void {
    const op = pduOpcode(raw.bhs);
    if (this.phase === 'login') {
      if (op !== IscsiOpcode.LOGIN_REQUEST) {
        // RFC 7143 6.2: only Login Requests before the full feature phase; nothing to reject with.
        this.log.warn({ opcode: iscsiOpcodeName(op) }, 'PDU before login completed: closing the connection');
        this.close();
        return;
      }
      let req: LoginRequestPdu;
      try {
        req = decodeInitiatorPdu(raw) as LoginRequestPdu;
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'malformed Login Request: closing the connection');
        this.close();
        return;
      }
      this.onLogin(req);
      return;
    }
    if (!raw.dataDigestOk) {
      this.reject(raw, RejectReason.DATA_DIGEST_ERROR);
      return;
    }
    if (!isInitiatorOpcode(op)) {
      this.reject(raw, RejectReason.COMMAND_NOT_SUPPORTED);
      return;
    }
    let pdu: InitiatorPdu;
    try {
      pdu = decodeInitiatorPdu(raw);
    } catch (err) {
      if (err instanceof DecodeError) {
        this.reject(raw, RejectReason.INVALID_PDU_FIELD);
        return;
      }
      throw err;
    }
    this.dispatch(pdu, raw);
  }

  private dispatch(pdu: InitiatorPdu, raw: RawPdu): void {
    const session = this.session!;
    if (session.type === 'Discovery' && pdu.opcode !== IscsiOpcode.TEXT_REQUEST && pdu.opcode !== IscsiOpcode.LOGOUT_REQUEST && pdu.opcode !== IscsiOpcode.NOP_OUT) {
      this.reject(raw, RejectReason.PROTOCOL_ERROR);
      return;
    }
    switch (pdu.opcode) {
      case IscsiOpcode.SCSI_COMMAND:
        this.onScsiCommand(pdu);
        break;
      case IscsiOpcode.SCSI_DATA_OUT:
        this.onDataOut(pdu, raw);
        break;
      case IscsiOpcode.NOP_OUT:
        this.onNopOut(pdu);
        break;
      case IscsiOpcode.TASK_MANAGEMENT_REQUEST:
        this.guard(this.onTaskManagement(pdu));
        break;
      case IscsiOpcode.TEXT_REQUEST:
        this.onText(pdu, raw);
        break;
      case IscsiOpcode.LOGOUT_REQUEST:
        this.guard(this.onLogout(pdu));
        break;
      case IscsiOpcode.SNACK_REQUEST:
        // ErrorRecoveryLevel 0: no SNACK support (RFC 7143 11.16).
        this.reject(raw, RejectReason.SNACK_REJECT);
        break;
      default:
        this.reject(raw, RejectReason.PROTOCOL_ERROR);
    }
  }

  // ---- bytes out ----

  private send(pdu: RawPdu): void {
    if (this.phase === 'closed' || this.socket.destroyed) return;
    const pieces = encodeFrame(pdu, { headerDigest: this.headerDigest, dataDigest: this.dataDigest });
    // Responses finished in the same turn of the event loop leave in one writev: the socket
    // stays corked until the check phase (setImmediate), after every completion of this poll.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(this.uncork);
    }
    for (const p of pieces) this.socket.write(p);
  }

  private corked = false;

  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  private nextStatSN(): number {
    const sn = this.statSN;
    this.statSN = (this.statSN + 1) >>> 0;
    return sn;
  }

  private get expCmdSN(): number {
    return this.session?.expCmdSN ?? 0;
  }

  private get maxCmdSN(): number {
    return this.session?.maxCmdSN ?? 0;
  }

  private reject(raw: RawPdu, reason: number): void {
    this.log.debug({ reason, opcode: iscsiOpcodeName(pduOpcode(raw.bhs)) }, 'Reject');
    // RFC 7143 11.17: StatSN carries the next value but is not advanced.
    this.send(
      encodeReject({
        reason,
        statSN: this.statSN,
        expCmdSN: this.expCmdSN,
        maxCmdSN: this.maxCmdSN,
        header: Buffer.from(raw.bhs),
      }),
    );
  }

  // ---- login (RFC 7143 6) ----

  private onLogin(req: LoginRequestPdu): void {
    if (!this.login) {
      this.login = new LoginMachine(this.host.loginConfig(this));
      this.statSN = req.expStatSN >>> 0;
    }
    this.loginCmdSN = req.cmdSN >>> 0;
    let text: Buffer | undefined;
    let bad: string | undefined;
    try {
      text = this.loginText.push(req.data, req.continue);
    } catch (err) {
      bad = (err as Error).message;
    }
    let pairs: TextPair[] = [];
    if (text !== undefined) {
      try {
        pairs = parseTextPairs(text);
      } catch (err) {
        bad = (err as Error).message;
      }
    } else if (req.continue && bad === undefined) {
      // More text follows: an empty response asks for it (RFC 7143 11.13, C bit).
      this.send(
        encodeLoginResponse({
          transit: false,
          continue: false,
          csg: req.csg,
          nsg: 0,
          versionMax: 0,
          versionActive: 0,
          isid: req.isid,
          tsih: 0,
          initiatorTaskTag: req.initiatorTaskTag,
          statSN: this.nextStatSN(),
          expCmdSN: req.cmdSN,
          maxCmdSN: req.cmdSN,
          statusClass: 0,
          statusDetail: 0,
          data: Buffer.alloc(0),
        }),
      );
      return;
    }
    // Malformed login text (or text beyond the accumulator's bound): the login fails with
    // INITIATOR ERROR rather than going on without the keys.
    if (bad !== undefined) this.login.refuse(`malformed login text: ${bad}`);
    const res = this.login.step({
      csg: req.csg,
      nsg: req.nsg,
      transit: req.transit,
      continue: false,
      isid: req.isid,
      tsih: req.tsih,
      cid: req.cid,
      cmdSN: req.cmdSN,
      expStatSN: req.expStatSN,
      itt: req.initiatorTaskTag,
      versionMax: req.versionMax,
      versionMin: req.versionMin,
      text: pairs,
    });
    let tsih = 0;
    if (res.done) {
      try {
        this.session = this.host.attachSession(this, res.done);
        tsih = this.session.tsih;
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'session could not be created');
        res.status = LoginStatus.OUT_OF_RESOURCES;
        res.done = undefined;
      }
    }
    const failed = res.status.class !== 0;
    this.send(
      encodeLoginResponse({
        transit: failed ? false : res.transit,
        continue: false,
        csg: res.csg,
        nsg: failed ? 0 : res.nsg,
        versionMax: res.versionMax,
        versionActive: res.versionActive,
        isid: req.isid,
        tsih,
        initiatorTaskTag: req.initiatorTaskTag,
        statSN: this.nextStatSN(),
        expCmdSN: this.session?.expCmdSN ?? req.cmdSN,
        maxCmdSN: this.session?.maxCmdSN ?? req.cmdSN,
        statusClass: res.status.class,
        statusDetail: res.status.detail,
        data: encodeTextData(res.text),
      }),
    );
    if (failed) {
      this.log.info({ status: res.status, reason: res.reason }, 'login rejected');
      // RFC 7143 11.13.5: after a Login reject the target closes the connection.
      this.socket.end();
      this.phase = 'closed';
      return;
    }
    if (res.done) this.enterFullFeature(res.done);
  }

  private enterFullFeature(result: LoginResult): void {
    this.params = result.negotiated;
    this.phase = 'full-feature';
    this.headerDigest = result.negotiated.headerDigest === 'CRC32C';
    this.dataDigest = result.negotiated.dataDigest === 'CRC32C';
    this.framer.setDigests(this.headerDigest, this.dataDigest);
    this.framer.setMaxRecvDataSegmentLength(result.negotiated.targetMaxRecvDataSegmentLength);
    this.log.info(
      {
        initiator: result.initiatorName,
        target: result.targetName,
        type: result.sessionType,
        tsih: this.session?.tsih,
        header_digest: result.negotiated.headerDigest,
        data_digest: result.negotiated.dataDigest,
      },
      'login complete',
    );
    this.armKeepAlive();
  }

  // ---- keep-alive (RFC 7143 11.18/11.19: target-initiated NOP-In pings) ----

  private armKeepAlive(): void {
    const every = this.host.keepAliveIntervalMs;
    if (every <= 0) return;
    this.keepAlive = setInterval(() => {
      if (this.phase !== 'full-feature' || this.pingTtt !== undefined) return;
      if (Date.now() - this.lastRx < every) return;
      this.pingTtt = newTtt();
      this.send(
        encodeNopIn({
          initiatorTaskTag: RESERVED_TAG,
          targetTransferTag: this.pingTtt,
          statSN: this.statSN, // not advanced (ITT is reserved)
          expCmdSN: this.expCmdSN,
          maxCmdSN: this.maxCmdSN,
          data: Buffer.alloc(0),
        }),
      );
      this.pingDeadline = setTimeout(() => {
        this.log.warn('no answer to NOP-In within the keep-alive timeout: closing the connection');
        this.close();
      }, this.host.keepAliveTimeoutMs);
      this.pingDeadline.unref();
    }, Math.max(100, Math.floor(every / 2)));
    this.keepAlive.unref();
  }

  private onNopOut(pdu: NopOutPdu): void {
    if (pdu.targetTransferTag !== RESERVED_TAG) {
      // The answer to our ping.
      if (pdu.targetTransferTag === this.pingTtt) {
        this.pingTtt = undefined;
        clearTimeout(this.pingDeadline);
      }
      return;
    }
    if (!pdu.immediate && this.session) {
      if (!this.session.inWindow(pdu.cmdSN)) return; // outside the window: ignored (3.2.2.1)
      if (pdu.cmdSN === this.session.expCmdSN) this.advanceCmdSN();
    }
    if (pdu.initiatorTaskTag === RESERVED_TAG) return; // a ping that wants no answer
    this.send(
      encodeNopIn({
        lun: pdu.lun,
        lunRaw: pdu.lunRaw,
        initiatorTaskTag: pdu.initiatorTaskTag,
        targetTransferTag: RESERVED_TAG,
        statSN: this.nextStatSN(),
        expCmdSN: this.expCmdSN,
        maxCmdSN: this.maxCmdSN,
        data: pdu.data.length > 0 ? Buffer.from(pdu.data) : Buffer.alloc(0),
      }),
    );
  }

  private advanceCmdSN(): void {
    const s = this.session!;
    s.expCmdSN = (s.expCmdSN + 1) >>> 0;
    // Deliver commands that were held waiting for this gap to close.
    for (let next = this.held.get(s.expCmdSN); next; next = this.held.get(s.expCmdSN)) {
      this.held.delete(next.cmdSN);
      s.expCmdSN = (s.expCmdSN + 1) >>> 0;
      this.startCommand(next);
    }
  }

  // ---- SCSI commands (RFC 7143 11.3/11.4/11.7/11.8) ----

  private onScsiCommand(pdu: ScsiCommandPdu): void {
    const s = this.session!;
    if (this.tasks.has(pdu.initiatorTaskTag)) {
      this.log.warn({ itt: pdu.initiatorTaskTag }, 'Initiator Task Tag already in use: rejected');
      this.send(
        encodeReject({ reason: RejectReason.TASK_IN_PROGRESS, statSN: this.statSN, expCmdSN: this.expCmdSN, maxCmdSN: this.maxCmdSN, header: Buffer.alloc(48) }),
      );
      return;
    }
    if (pdu.immediate) {
      this.startCommand(pdu);
      return;
    }
    if (!s.inWindow(pdu.cmdSN)) {
      // RFC 7143 3.2.2.1: outside [ExpCmdSN, MaxCmdSN] → silently ignored.
      this.log.debug({ cmd_sn: pdu.cmdSN, exp_cmd_sn: s.expCmdSN }, 'CmdSN outside the window: ignored');
      return;
    }
    if (pdu.cmdSN !== s.expCmdSN) {
      this.held.set(pdu.cmdSN, pdu);
      return;
    }
    s.expCmdSN = (s.expCmdSN + 1) >>> 0;
    this.startCommand(pdu);
    if (this.held.size > 0) {
      s.expCmdSN = (s.expCmdSN - 1) >>> 0;
      this.advanceCmdSN();
    }
  }

  private startCommand(pdu: ScsiCommandPdu): void {
    const task = new Task(pdu, this.session!.nexus);
    this.host.countOpcode(task.cdb[0]);
    this.tasks.set(task.itt, task);
    const p = this.params!;
    const edtl = task.expectedDataTransferLength;
    if (task.write && edtl > 0) {
      if (edtl > this.host.maxCommandBytes) {
        // Too much data for one command: refuse before asking for it (SPC-4 INSUFFICIENT RESOURCES).
        this.completeWith(task, { status: ScsiStatus.CHECK_CONDITION, sense: buildSense(Sense.INSUFFICIENT_RESOURCES) });
        // Unsolicited data may still arrive for this ITT; it is dropped as unknown.
        return;
      }
      task.dataOut = Buffer.allocUnsafe(edtl);
      const immediate = Math.min(pdu.data.length, edtl);
      pdu.data.copy(task.dataOut, 0, 0, immediate);
      task.received = immediate;
      // Unsolicited Data-Out follows unless F is set (RFC 7143 11.3.1, 13.10).
      if (!pdu.final && !p.initialR2T) {
        task.unsolicitedLeft = Math.max(0, Math.min(p.firstBurstLength, edtl) - immediate);
      }
      if (task.unsolicitedLeft === 0) this.solicitOrRun(task);
      return;
    }
    this.guard(this.execute(task));
  }

  /** An async handler's failure is a bug: it closes this connection, never the target. */
  private guard(p: Promise<void>): void {
    p.catch((err: unknown) => {
      this.log.error({ err: (err as Error)?.stack ?? String(err) }, 'unexpected error in a handler: closing the connection');
      this.close();
    });
  }

  private solicitOrRun(task: Task): void {
    if (task.aborted) return;
    if (task.received >= task.expectedDataTransferLength) {
      this.guard(this.execute(task));
      return;
    }
    const p = this.params!;
    const length = Math.min(p.maxBurstLength, task.expectedDataTransferLength - task.received);
    task.r2t = { ttt: newTtt(), offset: task.received, length, received: 0 };
    task.dataSN = 0; // each solicited sequence numbers its Data-Out PDUs from 0
    this.send(
      encodeR2T({
        lunRaw: task.lunRaw,
        initiatorTaskTag: task.itt,
        targetTransferTag: task.r2t.ttt,
        statSN: this.statSN,
        expCmdSN: this.expCmdSN,
        maxCmdSN: this.maxCmdSN,
        r2tSN: task.r2tSN++,
        bufferOffset: task.r2t.offset,
        desiredDataTransferLength: length,
      }),
    );
  }

  private onDataOut(pdu: DataOutPdu, raw: RawPdu): void {
    const task = this.tasks.get(pdu.initiatorTaskTag);
    if (!task || !task.dataOut || task.executing) {
      // Data for a task we refused or no longer have: dropped (ERL 0).
      if (!task) this.log.debug({ itt: pdu.initiatorTaskTag }, 'Data-Out for an unknown task: ignored');
      return;
    }
    const end = pdu.bufferOffset + pdu.data.length;
    if (end > task.expectedDataTransferLength || pdu.dataSN !== task.dataSN) {
      // A Data-Out beyond the EDTL or out of DataSN order: with ErrorRecoveryLevel 0 the PDU is
      // rejected and the command ends with ABORTED COMMAND, DATA PHASE ERROR (SAM-5; SPC-4
      // 4Bh/00h) — never a write of data that arrived out of order.
      this.log.debug({ itt: task.itt, data_sn: pdu.dataSN, expected: task.dataSN, end, edtl: task.expectedDataTransferLength }, 'bad Data-Out sequence');
      this.reject(raw, RejectReason.PROTOCOL_ERROR);
      task.dataOut = undefined;
      this.completeWith(task, { status: ScsiStatus.CHECK_CONDITION, sense: buildSense(Sense.DATA_PHASE_ERROR) });
      return;
    }
    task.dataSN++;
    if (pdu.targetTransferTag === RESERVED_TAG) {
      // Unsolicited (RFC 7143 11.7.4).
      if (task.unsolicitedLeft <= 0) {
        this.reject(raw, RejectReason.PROTOCOL_ERROR);
        return;
      }
      pdu.data.copy(task.dataOut, pdu.bufferOffset);
      task.received = Math.max(task.received, end);
      task.unsolicitedLeft -= pdu.data.length;
      if (pdu.final || task.unsolicitedLeft <= 0) {
        task.unsolicitedLeft = 0;
        this.solicitOrRun(task);
      }
      return;
    }
    const r2t = task.r2t;
    if (!r2t || r2t.ttt !== pdu.targetTransferTag || pdu.bufferOffset < r2t.offset || end > r2t.offset + r2t.length) {
      this.reject(raw, RejectReason.PROTOCOL_ERROR);
      return;
    }
    pdu.data.copy(task.dataOut, pdu.bufferOffset);
    r2t.received += pdu.data.length;
    task.received = Math.max(task.received, end);
    if (pdu.final || r2t.received >= r2t.length) {
      task.r2t = undefined;
      this.solicitOrRun(task);
    }
  }

  private async execute(task: Task): Promise<void> {
    task.executing = true;
    const s = this.session!;
    if (s.writeProtected.has(task.lun)) task.writeProtect = true;
    let reply: ScsiReply;
    try {
      // The task is the request (src/target/iscsi/task.ts).
      reply = await executeOnView(s.view, task);
    } catch (err) {
      this.log.error({ err: (err as Error).stack, cdb: task.cdb.toString('hex') }, 'SCSI layer threw: answering HARDWARE ERROR');
      reply = { status: ScsiStatus.CHECK_CONDITION, sense: buildSense(Sense.INTERNAL_TARGET_FAILURE) };
    }
    this.completeWith(task, reply);
  }

  /** Sends the outcome (RFC 7143 11.4, 11.7) unless the task was aborted meanwhile. */
  private completeWith(task: Task, reply: ScsiReply): void {
    this.tasks.delete(task.itt);
    task.finish();
    const edtl = task.expectedDataTransferLength;
    const data = reply.data && task.read ? reply.data : undefined;
    this.host.commandDone(
      this.session?.view.get(task.lun),
      task.cdb[0],
      task.aborted ? ScsiStatus.TASK_ABORTED : reply.status,
      data ? Math.min(data.length, edtl) : 0,
      task.write ? task.received : 0,
      task.startedMs,
    );
    if (task.aborted || this.phase === 'closed') return;
    const p = this.params!;
    // RFC 7143 11.4.5: residuals compare what the command moved (or wanted to) with the EDTL.
    const moved = data ? data.length : task.write ? reply.dataOutLength : reply.status === ScsiStatus.GOOD && edtl > 0 ? 0 : undefined;
    const sendLen = data ? Math.min(data.length, edtl) : 0;
    const overflow = moved !== undefined && moved > edtl;
    const underflow = moved !== undefined && moved < edtl;
    const residual = moved === undefined ? 0 : Math.abs(moved - edtl);
    const good = reply.status === ScsiStatus.GOOD && !reply.sense;
    if (data && sendLen > 0) {
      const seg = p.initiatorMaxRecvDataSegmentLength;
      let dataSN = 0;
      for (let off = 0; off < sendLen; off += seg) {
        const len = Math.min(seg, sendLen - off);
        const last = off + len >= sendLen;
        // F closes each MaxBurstLength sequence and the last PDU (RFC 7143 11.7.1, 13.13).
        const endOfBurst = last || Math.floor((off + len) / p.maxBurstLength) !== Math.floor(off / p.maxBurstLength) || (off + len) % p.maxBurstLength === 0;
        const collapse = last && good;
        this.send(
          encodeDataIn({
            final: endOfBurst,
            status: collapse ? reply.status : undefined,
            residualOverflow: collapse && overflow,
            residualUnderflow: collapse && underflow,
            residualCount: collapse ? residual : 0,
            lunRaw: task.lunRaw,
            initiatorTaskTag: task.itt,
            statSN: collapse ? this.nextStatSN() : 0,
            expCmdSN: this.expCmdSN,
            maxCmdSN: this.maxCmdSN,
            dataSN: dataSN++,
            bufferOffset: off,
            data: data.subarray(off, off + len),
          }),
        );
      }
      if (good) return;
    }
    this.send(
      encodeScsiResponse({
        status: reply.status,
        residualOverflow: overflow,
        residualUnderflow: underflow,
        residualCount: residual,
        initiatorTaskTag: task.itt,
        statSN: this.nextStatSN(),
        expCmdSN: this.expCmdSN,
        maxCmdSN: this.maxCmdSN,
        sense: reply.sense ?? NO_SENSE,
      }),
    );
  }

  // ---- task management (RFC 7143 11.5/11.6) ----

  private async onTaskManagement(pdu: TaskManagementRequestPdu): Promise<void> {
    const s = this.session!;
    if (!pdu.immediate && s.inWindow(pdu.cmdSN) && pdu.cmdSN === s.expCmdSN) this.advanceCmdSN();
    let response: number = TmfResponse.FUNCTION_COMPLETE;
    const lun = pdu.lun ?? 0xffff;
    switch (pdu.function) {
      case TmfFunction.ABORT_TASK: {
        const t = this.tasks.get(pdu.referencedTaskTag);
        if (t) {
          await this.abortTasks([t]);
        } else if (!snLess(pdu.refCmdSN, s.expCmdSN)) {
          // Not received yet: it must not be executed when it arrives (RFC 7143 11.5.1).
          response = TmfResponse.TASK_DOES_NOT_EXIST;
        }
        break;
      }
      case TmfFunction.ABORT_TASK_SET:
      case TmfFunction.CLEAR_TASK_SET:
        if (!s.view.has(lun)) response = TmfResponse.LUN_DOES_NOT_EXIST;
        else await this.abortTasks([...this.tasks.values()].filter((t) => t.lun === lun));
        break;
      case TmfFunction.LOGICAL_UNIT_RESET:
        if (!s.view.has(lun)) response = TmfResponse.LUN_DOES_NOT_EXIST;
        else if (!(await this.host.reset('lun', this, lun))) response = TmfResponse.FUNCTION_REJECTED;
        break;
      case TmfFunction.TARGET_WARM_RESET:
        if (!(await this.host.reset('target', this, lun))) response = TmfResponse.FUNCTION_REJECTED;
        break;
      default:
        response = TmfResponse.TMF_NOT_SUPPORTED;
    }
    this.log.info({ function: pdu.function, lun, response }, 'task management');
    this.send(
      encodeTaskManagementResponse({
        response,
        initiatorTaskTag: pdu.initiatorTaskTag,
        statSN: this.nextStatSN(),
        expCmdSN: this.expCmdSN,
        maxCmdSN: this.maxCmdSN,
      }),
    );
  }

  /** Aborts tasks: no response is sent for them; resolves when none is still executing. */
  async abortTasks(tasks: Iterable<{ itt: number } | Task>): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const ref of tasks) {
      const t = this.tasks.get(ref.itt);
      if (!t) continue;
      t.abort();
      if (t.executing) waits.push(t.whenDone());
      else {
        this.tasks.delete(t.itt);
        t.finish();
      }
    }
    await Promise.all(waits);
  }

  /** Tasks of this connection addressing `lun` (all when undefined). */
  tasksFor(lun?: number): { itt: number }[] {
    return [...this.tasks.values()].filter((t) => lun === undefined || t.lun === lun).map((t) => ({ itt: t.itt }));
  }

  // ---- Text (RFC 7143 11.10/11.11; SendTargets, appendix C) ----

  private onText(pdu: TextRequestPdu, raw: RawPdu): void {
    const s = this.session!;
    if (!pdu.immediate && s.inWindow(pdu.cmdSN) && pdu.cmdSN === s.expCmdSN) this.advanceCmdSN();
    const seg = this.params!.initiatorMaxRecvDataSegmentLength;
    // Continuing a long response the initiator asks the rest of (empty request with our TTT).
    if (pdu.targetTransferTag !== RESERVED_TAG) {
      const pend = this.pendingText;
      if (!pend || pend.ttt !== pdu.targetTransferTag) {
        this.reject(raw, RejectReason.PROTOCOL_ERROR);
        return;
      }
      this.sendTextPiece(pdu.initiatorTaskTag);
      return;
    }
    let text: Buffer | undefined;
    try {
      text = this.textIn.push(pdu.data, pdu.continue);
    } catch {
      this.reject(raw, RejectReason.PROTOCOL_ERROR);
      return;
    }
    if (text === undefined) {
      // More request text follows: answer empty, same ITT (RFC 7143 11.10.2).
      this.send(
        encodeTextResponse({ final: false, initiatorTaskTag: pdu.initiatorTaskTag, targetTransferTag: newTtt(), statSN: this.nextStatSN(), expCmdSN: this.expCmdSN, maxCmdSN: this.maxCmdSN, data: Buffer.alloc(0) }),
      );
      return;
    }
    let pairs: TextPair[];
    try {
      pairs = parseTextPairs(text);
    } catch {
      this.reject(raw, RejectReason.PROTOCOL_ERROR);
      return;
    }
    const out: TextPair[] = [];
    for (const [k, v] of pairs) {
      if (k === 'SendTargets') out.push(...this.host.sendTargets(this, v));
      else out.push([k, 'NotUnderstood']);
    }
    const body = encodeTextData(out);
    const pieces: Buffer[] = [];
    for (let off = 0; off < body.length; off += seg) pieces.push(body.subarray(off, off + seg));
    if (pieces.length === 0) pieces.push(Buffer.alloc(0));
    this.pendingText = { itt: pdu.initiatorTaskTag, ttt: newTtt(), pieces };
    this.sendTextPiece(pdu.initiatorTaskTag);
  }

  private sendTextPiece(itt: number): void {
    const pend = this.pendingText!;
    const piece = pend.pieces.shift()!;
    const more = pend.pieces.length > 0;
    if (!more) this.pendingText = undefined;
    this.send(
      encodeTextResponse({
        final: !more,
        continue: more,
        initiatorTaskTag: itt,
        targetTransferTag: more ? pend.ttt : RESERVED_TAG,
        statSN: this.nextStatSN(),
        expCmdSN: this.expCmdSN,
        maxCmdSN: this.maxCmdSN,
        data: piece,
      }),
    );
  }

  // ---- Logout (RFC 7143 11.14/11.15) ----

  private async onLogout(pdu: LogoutRequestPdu): Promise<void> {
    const s = this.session!;
    if (!pdu.immediate && s.inWindow(pdu.cmdSN) && pdu.cmdSN === s.expCmdSN) this.advanceCmdSN();
    this.phase = 'logout';
    // Outstanding commands complete or are aborted before the response (RFC 7143 11.14).
    await Promise.all([...this.tasks.values()].map((t) => t.whenDone()));
    this.phase = 'full-feature';
    this.send(
      encodeLogoutResponse({
        response: LogoutResponseCode.CLOSED_SUCCESSFULLY,
        initiatorTaskTag: pdu.initiatorTaskTag,
        statSN: this.nextStatSN(),
        expCmdSN: this.expCmdSN,
        maxCmdSN: this.maxCmdSN,
        time2Wait: 0,
        time2Retain: 0,
      }),
    );
    this.phase = 'logout';
    this.socket.end();
  }

  // ---- teardown ----

  /** Closes the connection at once; tasks are aborted (their stores see the abort signal). */
  close(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.socket.destroy();
  }

  /** Waits for commands in flight to finish (graceful stop). */
  async drain(): Promise<void> {
    await Promise.all([...this.tasks.values()].map((t) => t.whenDone()));
  }

  private closed(): void {
    this.phase = 'closed';
    clearInterval(this.keepAlive);
    clearTimeout(this.pingDeadline);
    for (const t of this.tasks.values()) t.abort();
    this.held.clear();
    this.host.detach(this);
  }
}

import fc from 'fast-check';
import { DecodeError, EncodeError } from '../../../../src/errors';
import {
  BHS_LENGTH,
  IscsiOpcode,
  MAX_DATA_SEGMENT_LENGTH,
  RESERVED_TAG,
  decodeAsyncMessage,
  decodeDataIn,
  decodeDataOut,
  decodeInitiatorPdu,
  decodeLoginRequest,
  decodeLoginResponse,
  decodeLogoutRequest,
  decodeLogoutResponse,
  decodeNopIn,
  decodeNopOut,
  decodeR2T,
  decodeReject,
  decodeScsiCommand,
  decodeScsiResponse,
  decodeSnackRequest,
  decodeTargetPdu,
  decodeTaskManagementRequest,
  decodeTaskManagementResponse,
  decodeTextRequest,
  decodeTextResponse,
  encodeAsyncMessage,
  encodeDataIn,
  encodeDataOut,
  encodeInitiatorPdu,
  encodeLoginRequest,
  encodeLoginResponse,
  encodeLogoutRequest,
  encodeLogoutResponse,
  encodeNopIn,
  encodeNopOut,
  encodeR2T,
  encodeReject,
  encodeScsiCommand,
  encodeScsiResponse,
  encodeSnackRequest,
  encodeTargetPdu,
  encodeTaskManagementRequest,
  encodeTaskManagementResponse,
  encodeTextRequest,
  encodeTextResponse,
  iscsiOpcodeName,
  isInitiatorOpcode,
  isTargetOpcode,
  joinPdu,
  pduOpcode,
  splitPdu,
  type AsyncMessagePdu,
  type DataInPdu,
  type DataOutPdu,
  type LoginRequestPdu,
  type LoginResponsePdu,
  type LogoutRequestPdu,
  type LogoutResponsePdu,
  type NopInPdu,
  type NopOutPdu,
  type R2TPdu,
  type RawPdu,
  type RejectPdu,
  type ScsiCommandPdu,
  type ScsiResponsePdu,
  type SnackRequestPdu,
  type TaskManagementRequestPdu,
  type TaskManagementResponsePdu,
  type TextRequestPdu,
  type TextResponsePdu,
} from '../../../../src/target/iscsi/pdu';
import { assertTotalDecoder, decodesOrRejects, hex } from '../../../helpers/codec';
import { INITIATOR_PDUS, TARGET_PDUS } from './pdu-arbitraries';
import * as F from './pdu-fixtures';

const EMPTY = Buffer.alloc(0);
const LUN0 = Buffer.alloc(8);
const LUN1 = hex('00 01 00 00 00 00 00 00');

/** A frame as one buffer without padding (the form the fixtures are written in). */
function bytesOf(raw: RawPdu): Buffer {
  return Buffer.concat([raw.bhs, raw.ahs, raw.data]);
}

function decodeError(f: () => unknown): DecodeError {
  try {
    f();
  } catch (err) {
    if (err instanceof DecodeError) return err;
    throw err;
  }
  throw new Error('expected a DecodeError');
}

/** The golden bytes with some bytes replaced: `patch(F.X, { 1: 0xc7 })`. */
function patch(golden: Buffer, bytes: Record<number, number>): Buffer {
  const b = Buffer.from(golden);
  for (const [i, v] of Object.entries(bytes)) b[Number(i)] = v;
  return b;
}

// ---------------------------------------------------------------------------------------------
// One fixture per PDU type (more for the SCSI Command and Data-In), and what it decodes to.

interface GoldenCase<T> {
  name: string;
  golden: Buffer;
  decode: (raw: RawPdu) => T;
  encode: (value: T) => RawPdu;
  expected: T;
}
function golden<T>(c: GoldenCase<T>): GoldenCase<unknown> {
  return c as unknown as GoldenCase<unknown>;
}

const CASES: GoldenCase<unknown>[] = [
  golden<ScsiCommandPdu>({
    name: 'SCSI Command: RFC 3720 B.4 READ(10)',
    golden: F.SCSI_COMMAND_RFC_READ10,
    decode: decodeScsiCommand,
    encode: encodeScsiCommand,
    expected: {
      opcode: IscsiOpcode.SCSI_COMMAND,
      immediate: false,
      final: true,
      read: true,
      write: false,
      attr: 0,
      lun: 0,
      lunRaw: LUN0,
      initiatorTaskTag: 0x14000000,
      expectedDataTransferLength: 1024,
      cmdSN: 20,
      expStatSN: 24,
      cdb: hex('28 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00'),
      bidirectionalReadExpectedDataTransferLength: undefined,
      data: EMPTY,
    },
  }),
  golden<ScsiCommandPdu>({
    name: 'SCSI Command: libiscsi INQUIRY',
    golden: F.SCSI_COMMAND_LIBISCSI_INQUIRY,
    decode: decodeScsiCommand,
    encode: encodeScsiCommand,
    expected: {
      opcode: IscsiOpcode.SCSI_COMMAND,
      immediate: false,
      final: true,
      read: true,
      write: false,
      attr: 1,
      lun: 1,
      lunRaw: LUN1,
      initiatorTaskTag: 0x053def65,
      expectedDataTransferLength: 64,
      cmdSN: 0x7009fcea,
      expStatSN: 3,
      cdb: hex('12 00 00 00 40 00 00 00 00 00 00 00 00 00 00 00'),
      bidirectionalReadExpectedDataTransferLength: undefined,
      data: EMPTY,
    },
  }),
  golden<ScsiCommandPdu>({
    name: 'SCSI Command: libiscsi WRITE(10) with immediate data',
    golden: F.SCSI_COMMAND_LIBISCSI_WRITE10,
    decode: decodeScsiCommand,
    encode: encodeScsiCommand,
    expected: {
      opcode: IscsiOpcode.SCSI_COMMAND,
      immediate: false,
      final: true,
      read: false,
      write: true,
      attr: 1,
      lun: 1,
      lunRaw: LUN1,
      initiatorTaskTag: 0x65168e86,
      expectedDataTransferLength: 8704,
      cmdSN: 0x66e684ba,
      expStatSN: 0x13,
      cdb: hex('2a 00 00 00 00 00 00 00 11 00 00 00 00 00 00 00'),
      bidirectionalReadExpectedDataTransferLength: undefined,
      data: Buffer.alloc(8192, 0xa6),
    },
  }),
  golden<ScsiCommandPdu>({
    name: 'SCSI Command: XDWRITEREAD(32) with Extended CDB and bidirectional AHS',
    golden: F.SCSI_COMMAND_AHS_XDWRITEREAD32,
    decode: decodeScsiCommand,
    encode: encodeScsiCommand,
    expected: {
      opcode: IscsiOpcode.SCSI_COMMAND,
      immediate: false,
      final: true,
      read: true,
      write: true,
      attr: 2,
      lun: 2,
      lunRaw: hex('00 02 00 00 00 00 00 00'),
      initiatorTaskTag: 42,
      expectedDataTransferLength: 4096,
      cmdSN: 256,
      expStatSN: 128,
      cdb: hex(`7f 00 00 00 00 00 00 18 00 07 00 00 00 00 00 00
                00 00 10 00 00 00 00 00 00 00 00 00 00 00 00 08`),
      bidirectionalReadExpectedDataTransferLength: 4096,
      data: EMPTY,
    },
  }),
  golden<ScsiResponsePdu>({
    name: 'SCSI Response: tgt CHECK CONDITION with sense',
    golden: F.SCSI_RESPONSE_TGT_UNIT_ATTENTION,
    decode: decodeScsiResponse,
    encode: encodeScsiResponse,
    expected: {
      opcode: IscsiOpcode.SCSI_RESPONSE,
      bidiReadResidualOverflow: false,
      bidiReadResidualUnderflow: false,
      residualOverflow: false,
      residualUnderflow: false,
      response: 0,
      status: 2,
      initiatorTaskTag: 0x053def63,
      snackTag: 0,
      statSN: 1,
      expCmdSN: 0x7009fce9,
      maxCmdSN: 0x7009fd69,
      expDataSN: 0,
      bidiReadResidualCount: 0,
      residualCount: 0,
      sense: hex('70 00 06 00 00 00 00 0a 00 00 00 00 29 00 00 00 00 00'),
      responseData: EMPTY,
    },
  }),
  golden<TaskManagementRequestPdu>({
    name: 'Task Management Function Request: libiscsi ABORT TASK',
    golden: F.TMF_REQUEST_LIBISCSI_ABORT_TASK,
    decode: decodeTaskManagementRequest,
    encode: encodeTaskManagementRequest,
    expected: {
      opcode: IscsiOpcode.TASK_MANAGEMENT_REQUEST,
      immediate: true,
      function: 1,
      lun: 1,
      lunRaw: LUN1,
      initiatorTaskTag: 0x0c49b041,
      referencedTaskTag: 0x0c49b040,
      cmdSN: 0x4732e76d,
      expStatSN: 3,
      refCmdSN: 0x4732e76c,
      expDataSN: 0,
    },
  }),
  golden<TaskManagementResponsePdu>({
    name: 'Task Management Function Response: tgt, task does not exist',
    golden: F.TMF_RESPONSE_TGT_TASK_DOES_NOT_EXIST,
    decode: decodeTaskManagementResponse,
    encode: encodeTaskManagementResponse,
    expected: {
      opcode: IscsiOpcode.TASK_MANAGEMENT_RESPONSE,
      response: 1,
      initiatorTaskTag: 0x0c49b041,
      statSN: 4,
      expCmdSN: 0x4732e76d,
      maxCmdSN: 0x4732e7ed,
    },
  }),
  golden<DataOutPdu>({
    name: 'SCSI Data-Out: libiscsi, solicited',
    golden: F.DATA_OUT_LIBISCSI,
    decode: decodeDataOut,
    encode: encodeDataOut,
    expected: {
      opcode: IscsiOpcode.SCSI_DATA_OUT,
      final: true,
      lun: 1,
      lunRaw: LUN1,
      initiatorTaskTag: 0x65168e86,
      targetTransferTag: 0x1004ec9a,
      expStatSN: 0x14,
      dataSN: 0,
      bufferOffset: 8192,
      data: Buffer.alloc(512, 0xa6),
    },
  }),
  golden<DataInPdu>({
    name: 'SCSI Data-In: tgt INQUIRY data with status',
    golden: F.DATA_IN_TGT_INQUIRY,
    decode: decodeDataIn,
    encode: encodeDataIn,
    expected: {
      opcode: IscsiOpcode.SCSI_DATA_IN,
      final: true,
      acknowledge: false,
      residualOverflow: false,
      residualUnderflow: false,
      status: 0,
      lun: 0,
      lunRaw: LUN0,
      initiatorTaskTag: 0x053def66,
      targetTransferTag: RESERVED_TAG,
      statSN: 4,
      expCmdSN: 0x7009fcec,
      maxCmdSN: 0x7009fd6c,
      dataSN: 0,
      bufferOffset: 0,
      residualCount: 0,
      data: F.DATA_IN_TGT_INQUIRY.subarray(48),
    },
  }),
  golden<DataInPdu>({
    name: 'SCSI Data-In: tgt residual underflow with status',
    golden: F.DATA_IN_TGT_UNDERFLOW,
    decode: decodeDataIn,
    encode: encodeDataIn,
    expected: {
      opcode: IscsiOpcode.SCSI_DATA_IN,
      final: true,
      acknowledge: false,
      residualOverflow: false,
      residualUnderflow: true,
      status: 0,
      lun: 0,
      lunRaw: LUN0,
      initiatorTaskTag: 0x4a8e483b,
      targetTransferTag: RESERVED_TAG,
      statSN: 3,
      expCmdSN: 0x5c644020,
      maxCmdSN: 0x5c6440a0,
      dataSN: 0,
      bufferOffset: 0,
      residualCount: 16376,
      data: Buffer.alloc(8),
    },
  }),
  golden<R2TPdu>({
    name: 'R2T: tgt',
    golden: F.R2T_TGT,
    decode: decodeR2T,
    encode: encodeR2T,
    expected: {
      opcode: IscsiOpcode.R2T,
      lun: 1,
      lunRaw: LUN1,
      initiatorTaskTag: 0x65168e86,
      targetTransferTag: 0x1004ec9a,
      statSN: 0x13,
      expCmdSN: 0x66e684bb,
      maxCmdSN: 0x66e6853b,
      r2tSN: 0,
      bufferOffset: 8192,
      desiredDataTransferLength: 512,
    },
  }),
  golden<AsyncMessagePdu>({
    name: 'Asynchronous Message: SCSI asynchronous event with sense',
    golden: F.ASYNC_MESSAGE_SCSI_EVENT,
    decode: decodeAsyncMessage,
    encode: encodeAsyncMessage,
    expected: {
      opcode: IscsiOpcode.ASYNC_MESSAGE,
      lun: 1,
      lunRaw: LUN1,
      statSN: 33,
      expCmdSN: 64,
      maxCmdSN: 192,
      asyncEvent: 0,
      asyncVCode: 0,
      parameter1: 0,
      parameter2: 0,
      parameter3: 0,
      sense: hex('70 00 06 00 00 00 00 0a 00 00 00 00 3f 0e 00 00 00 00'),
      eventData: EMPTY,
    },
  }),
  golden<TextRequestPdu>({
    name: 'Text Request: libiscsi SendTargets=All',
    golden: F.TEXT_REQUEST_LIBISCSI_SENDTARGETS,
    decode: decodeTextRequest,
    encode: encodeTextRequest,
    expected: {
      opcode: IscsiOpcode.TEXT_REQUEST,
      immediate: true,
      final: true,
      continue: false,
      lun: 0,
      lunRaw: LUN0,
      initiatorTaskTag: 0x428d1964,
      targetTransferTag: RESERVED_TAG,
      cmdSN: 0x2fcd7154,
      expStatSN: 1,
      data: F.text('SendTargets=All'),
    },
  }),
  golden<TextResponsePdu>({
    name: 'Text Response: tgt SendTargets answer',
    golden: F.TEXT_RESPONSE_TGT_SENDTARGETS,
    decode: decodeTextResponse,
    encode: encodeTextResponse,
    expected: {
      opcode: IscsiOpcode.TEXT_RESPONSE,
      final: true,
      continue: false,
      lun: 0,
      lunRaw: LUN0,
      initiatorTaskTag: 0x428d1964,
      targetTransferTag: RESERVED_TAG,
      statSN: 1,
      expCmdSN: 0x2fcd7154,
      maxCmdSN: 0x2fcd7155,
      data: F.text('TargetName=iqn.2026-11.io.xcopy-agent.peer:tgt', 'TargetAddress=127.0.0.1:13260,1'),
    },
  }),
  golden<LoginRequestPdu>({
    name: 'Login Request: libiscsi',
    golden: F.LOGIN_REQUEST_LIBISCSI,
    decode: decodeLoginRequest,
    encode: encodeLoginRequest,
    expected: {
      opcode: IscsiOpcode.LOGIN_REQUEST,
      transit: true,
      continue: false,
      csg: 1,
      nsg: 3,
      versionMax: 0,
      versionMin: 0,
      isid: hex('80 cb 49 da 00 00'),
      tsih: 0,
      initiatorTaskTag: 0x053def62,
      cid: 0,
      cmdSN: 0x7009fce8,
      expStatSN: 1,
      data: F.text(...F.LIBISCSI_LOGIN_KEYS),
    },
  }),
  golden<LoginResponsePdu>({
    name: 'Login Response: tgt',
    golden: F.LOGIN_RESPONSE_TGT,
    decode: decodeLoginResponse,
    encode: encodeLoginResponse,
    expected: {
      opcode: IscsiOpcode.LOGIN_RESPONSE,
      transit: true,
      continue: false,
      csg: 1,
      nsg: 3,
      versionMax: 0,
      versionActive: 0,
      isid: hex('80 cb 49 da 00 00'),
      tsih: 0x0100,
      initiatorTaskTag: 0x053def62,
      statSN: 0,
      expCmdSN: 0x7009fce8,
      maxCmdSN: 0x7009fce9,
      statusClass: 0,
      statusDetail: 0,
      data: F.LOGIN_RESPONSE_TGT.subarray(48),
    },
  }),
  golden<LogoutRequestPdu>({
    name: 'Logout Request: libiscsi',
    golden: F.LOGOUT_REQUEST_LIBISCSI,
    decode: decodeLogoutRequest,
    encode: encodeLogoutRequest,
    expected: {
      opcode: IscsiOpcode.LOGOUT_REQUEST,
      immediate: true,
      reasonCode: 0,
      initiatorTaskTag: 0x053def67,
      cid: 0,
      cmdSN: 0x7009fcec,
      expStatSN: 5,
    },
  }),
  golden<LogoutResponsePdu>({
    name: 'Logout Response: tgt',
    golden: F.LOGOUT_RESPONSE_TGT,
    decode: decodeLogoutResponse,
    encode: encodeLogoutResponse,
    expected: {
      opcode: IscsiOpcode.LOGOUT_RESPONSE,
      response: 0,
      initiatorTaskTag: 0x053def67,
      statSN: 5,
      expCmdSN: 0x7009fcec,
      maxCmdSN: 0x7009fd6c,
      time2Wait: 0,
      time2Retain: 0,
    },
  }),
  golden<SnackRequestPdu>({
    name: 'SNACK Request: Data/R2T',
    golden: F.SNACK_REQUEST_DATA,
    decode: decodeSnackRequest,
    encode: encodeSnackRequest,
    expected: {
      opcode: IscsiOpcode.SNACK_REQUEST,
      type: 0,
      lun: 1,
      lunRaw: LUN1,
      initiatorTaskTag: 0x1234,
      targetTransferTag: RESERVED_TAG,
      expStatSN: 7,
      begRun: 3,
      runLength: 2,
    },
  }),
  golden<RejectPdu>({
    name: 'Reject: invalid PDU field',
    golden: F.REJECT_INVALID_PDU_FIELD,
    decode: decodeReject,
    encode: encodeReject,
    expected: {
      opcode: IscsiOpcode.REJECT,
      reason: 0x09,
      statSN: 24,
      expCmdSN: 21,
      maxCmdSN: 148,
      dataSN: 0,
      header: F.SCSI_COMMAND_RFC_READ10,
    },
  }),
  golden<NopInPdu>({
    name: 'NOP-In: tgt ping',
    golden: F.NOP_IN_TGT_PING,
    decode: decodeNopIn,
    encode: encodeNopIn,
    expected: {
      opcode: IscsiOpcode.NOP_IN,
      lun: 0,
      lunRaw: LUN0,
      initiatorTaskTag: RESERVED_TAG,
      targetTransferTag: 1,
      statSN: 0x4f1,
      expCmdSN: 0x57073147,
      maxCmdSN: 0x570731c7,
      data: EMPTY,
    },
  }),
  golden<NopOutPdu>({
    name: "NOP-Out: libiscsi's answer",
    golden: F.NOP_OUT_LIBISCSI_ANSWER,
    decode: decodeNopOut,
    encode: encodeNopOut,
    expected: {
      opcode: IscsiOpcode.NOP_OUT,
      immediate: true,
      lun: 0,
      lunRaw: LUN0,
      initiatorTaskTag: RESERVED_TAG,
      targetTransferTag: 1,
      cmdSN: 0x57073147,
      expStatSN: 0x4f1,
      data: EMPTY,
    },
  }),
];

describe.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
  it('decodes the golden bytes', () => {
    expect(c.decode(splitPdu(c.golden))).toEqual(c.expected);
  });

  it('encodes the golden bytes', () => {
    const raw = c.encode(c.expected);
    expect(raw.bhs).toHaveLength(BHS_LENGTH);
    expect(bytesOf(raw).toString('hex')).toBe(c.golden.toString('hex'));
  });

  it('round-trips', () => {
    expect(bytesOf(c.encode(c.decode(splitPdu(c.golden)))).equals(c.golden)).toBe(true);
    expect(c.decode(c.encode(c.expected))).toEqual(c.expected);
  });

  it('decodes and encodes the same through the opcode dispatch', () => {
    const raw = splitPdu(c.golden);
    if (isInitiatorOpcode(pduOpcode(raw.bhs))) {
      const pdu = decodeInitiatorPdu(raw);
      expect(pdu).toEqual(c.expected);
      expect(bytesOf(encodeInitiatorPdu(pdu)).equals(c.golden)).toBe(true);
      expect(() => decodeTargetPdu(raw)).toThrow(DecodeError);
    } else {
      const pdu = decodeTargetPdu(raw);
      expect(pdu).toEqual(c.expected);
      expect(bytesOf(encodeTargetPdu(pdu)).equals(c.golden)).toBe(true);
      expect(() => decodeInitiatorPdu(raw)).toThrow(DecodeError);
    }
  });

  it('is a total decoder', () => {
    // Big fixtures get fewer runs: the random-bytes half draws up to twice their length.
    assertTotalDecoder((b) => c.decode(splitPdu(b)), c.golden, c.golden.length > 1024 ? 200 : 1000);
  });
});

describe('golden fixtures against RFC 7143', () => {
  it('the libiscsi Login Request carries its keys as NUL-terminated key=value text (RFC 7143 6.1)', () => {
    const login = decodeLoginRequest(splitPdu(F.LOGIN_REQUEST_LIBISCSI));
    expect(login.data).toHaveLength(447);
    const text = login.data.toString('utf8');
    expect(text.endsWith('\0')).toBe(true);
    expect(text.slice(0, -1).split('\0')).toEqual(F.LIBISCSI_LOGIN_KEYS);
    // RFC 7143 11.12.5: ISID T field 10b = random, so A+B+C are a random 22-bit number.
    expect(login.isid[0] >> 6).toBe(0b10);
    // RFC 7143 11.12: a Login Request is always immediate.
    expect(F.LOGIN_REQUEST_LIBISCSI[0] & 0x40).toBe(0x40);
  });

  it('tgt echoes the ISID and assigns a TSIH (RFC 7143 11.13)', () => {
    const req = decodeLoginRequest(splitPdu(F.LOGIN_REQUEST_LIBISCSI));
    const rsp = decodeLoginResponse(splitPdu(F.LOGIN_RESPONSE_TGT));
    expect(rsp.isid).toEqual(req.isid);
    expect(rsp.initiatorTaskTag).toBe(req.initiatorTaskTag);
    expect(req.tsih).toBe(0);
    expect(rsp.tsih).not.toBe(0);
    expect(rsp.expCmdSN).toBe(req.cmdSN); // the immediate Login Request does not advance CmdSN
  });

  it('the R2T asks for what the immediate data of the WRITE(10) left out', () => {
    const cmd = decodeScsiCommand(splitPdu(F.SCSI_COMMAND_LIBISCSI_WRITE10));
    const r2t = decodeR2T(splitPdu(F.R2T_TGT));
    const out = decodeDataOut(splitPdu(F.DATA_OUT_LIBISCSI));
    expect(r2t.initiatorTaskTag).toBe(cmd.initiatorTaskTag);
    expect(r2t.bufferOffset).toBe(cmd.data.length);
    expect(r2t.bufferOffset + r2t.desiredDataTransferLength).toBe(cmd.expectedDataTransferLength);
    expect(out.targetTransferTag).toBe(r2t.targetTransferTag);
    expect(out.bufferOffset).toBe(r2t.bufferOffset);
    expect(out.data).toHaveLength(r2t.desiredDataTransferLength);
  });

  it('the NOP-Out answers the NOP-In ping with its Target Transfer Tag (RFC 7143 11.18.2)', () => {
    const ping = decodeNopIn(splitPdu(F.NOP_IN_TGT_PING));
    const answer = decodeNopOut(splitPdu(F.NOP_OUT_LIBISCSI_ANSWER));
    expect(answer.targetTransferTag).toBe(ping.targetTransferTag);
    expect(answer.initiatorTaskTag).toBe(RESERVED_TAG);
    expect(answer.immediate).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Malformed input: which byte a DecodeError names.

describe('decoders reject malformed PDUs at the offending byte', () => {
  const withBhs = (golden: Buffer, bytes: Record<number, number>): RawPdu => splitPdu(patch(golden, bytes));

  it('a wrong opcode, at byte 0', () => {
    const raw = splitPdu(F.SCSI_COMMAND_RFC_READ10);
    const err = decodeError(() => decodeDataOut(raw));
    expect(err.offset).toBe(0);
    expect(err.structure).toBe('SCSI Data-Out PDU');
    expect(err.message).toMatch(/SCSI Command/);
  });

  it('a BHS that is not 48 bytes, at its end', () => {
    const raw = splitPdu(F.NOP_IN_TGT_PING);
    expect(decodeError(() => decodeNopIn({ ...raw, bhs: raw.bhs.subarray(0, 47) })).offset).toBe(47);
    expect(decodeError(() => decodeNopIn({ ...raw, bhs: Buffer.concat([raw.bhs, Buffer.alloc(1)]) })).offset).toBe(48);
    expect(decodeError(() => decodeNopIn({ ...raw, bhs: 'x' as unknown as Buffer })).offset).toBe(0);
  });

  it('TotalAHSLength or DataSegmentLength that disagree with the segments, at byte 4 or 5', () => {
    const raw = splitPdu(F.SCSI_COMMAND_AHS_XDWRITEREAD32);
    expect(decodeError(() => decodeScsiCommand({ ...raw, ahs: raw.ahs.subarray(0, 20) })).offset).toBe(4);
    expect(decodeError(() => decodeScsiCommand({ ...raw, data: Buffer.alloc(1) })).offset).toBe(5);
  });

  it('an AHS on a PDU other than a SCSI Command, at byte 4 (RFC 7143 11.2.1)', () => {
    const raw = splitPdu(F.NOP_OUT_LIBISCSI_ANSWER);
    const bhs = patch(raw.bhs, { 4: 1 });
    expect(decodeError(() => decodeNopOut({ bhs, ahs: Buffer.alloc(4), data: EMPTY })).offset).toBe(4);
  });

  it('a data segment on a PDU that carries none, at byte 5', () => {
    for (const [golden, decode] of [
      [F.TMF_REQUEST_LIBISCSI_ABORT_TASK, decodeTaskManagementRequest],
      [F.LOGOUT_REQUEST_LIBISCSI, decodeLogoutRequest],
      [F.SNACK_REQUEST_DATA, decodeSnackRequest],
      [F.R2T_TGT, decodeR2T],
      [F.LOGOUT_RESPONSE_TGT, decodeLogoutResponse],
      [F.TMF_RESPONSE_TGT_TASK_DOES_NOT_EXIST, decodeTaskManagementResponse],
    ] as const) {
      const bytes = Buffer.concat([patch(golden, { 7: 4 }), Buffer.alloc(4)]);
      expect(decodeError(() => decode(splitPdu(bytes))).offset).toBe(5);
    }
  });

  it('SCSI Command flags the RFC forbids, at byte 1 (RFC 7143 11.3.1)', () => {
    // W=0 and F=0: "Setting both the W and the F bit to 0 is an error."
    expect(decodeError(() => decodeScsiCommand(withBhs(F.SCSI_COMMAND_RFC_READ10, { 1: 0x40 }))).offset).toBe(1);
    // R=0 and W=0 with an Expected Data Transfer Length of 1024.
    expect(decodeError(() => decodeScsiCommand(withBhs(F.SCSI_COMMAND_RFC_READ10, { 1: 0x80 }))).offset).toBe(1);
    // ... which is fine when nothing is to be transferred (TEST UNIT READY).
    const tur = decodeScsiCommand(withBhs(F.SCSI_COMMAND_RFC_READ10, { 1: 0x81, 22: 0, 32: 0x00, 40: 0 }));
    expect([tur.read, tur.write, tur.expectedDataTransferLength]).toEqual([false, false, 0]);
  });

  it('malformed AHS in a SCSI Command, at the AHS field', () => {
    const raw = splitPdu(F.SCSI_COMMAND_AHS_XDWRITEREAD32);
    const withAhs = (ahs: Buffer): RawPdu => ({ bhs: patch(raw.bhs, { 4: ahs.length / 4 }), ahs, data: EMPTY });
    // AHSType 3 is reserved (RFC 7143 11.2.2.1): the type byte of the first AHS.
    expect(decodeError(() => decodeScsiCommand(withAhs(patch(raw.ahs, { 2: 3 })))).offset).toBe(50);
    // The second AHS's AHSLength runs past the end.
    expect(decodeError(() => decodeScsiCommand(withAhs(patch(raw.ahs, { 21: 9 })))).offset).toBe(68);
    // A Bidirectional Read AHS of the wrong length.
    expect(decodeError(() => decodeScsiCommand(withAhs(patch(raw.ahs, { 21: 4 })))).offset).toBe(68);
    // An Extended CDB AHS holding no CDB byte.
    expect(decodeError(() => decodeScsiCommand(withAhs(hex('00 01 01 00'))))).toMatchObject({ offset: 48 });
    // Two of a kind.
    const twice = Buffer.concat([raw.ahs.subarray(0, 20), raw.ahs.subarray(0, 20)]);
    expect(decodeError(() => decodeScsiCommand(withAhs(twice))).offset).toBe(70);
    const bidiTwice = Buffer.concat([raw.ahs.subarray(20), raw.ahs.subarray(20)]);
    expect(decodeError(() => decodeScsiCommand(withAhs(bidiTwice))).offset).toBe(58);
  });

  it('SenseLength past the data segment, at the SenseLength field', () => {
    const sr = Buffer.from(F.SCSI_RESPONSE_TGT_UNIT_ATTENTION);
    sr.writeUInt16BE(19, 48);
    expect(decodeError(() => decodeScsiResponse(splitPdu(sr))).offset).toBe(48);
    const one = Buffer.concat([patch(F.SCSI_RESPONSE_TGT_UNIT_ATTENTION.subarray(0, 48), { 7: 1 }), Buffer.alloc(1)]);
    expect(decodeError(() => decodeScsiResponse(splitPdu(one))).offset).toBe(49);
    const am = Buffer.from(F.ASYNC_MESSAGE_SCSI_EVENT);
    am.writeUInt16BE(0xffff, 48);
    expect(decodeError(() => decodeAsyncMessage(splitPdu(am))).offset).toBe(48);
  });

  it('residual and status flags the RFC forbids, at byte 1', () => {
    expect(decodeError(() => decodeScsiResponse(withBhs(F.SCSI_RESPONSE_TGT_UNIT_ATTENTION, { 1: 0x86 }))).offset).toBe(1);
    expect(decodeError(() => decodeScsiResponse(withBhs(F.SCSI_RESPONSE_TGT_UNIT_ATTENTION, { 1: 0x98 }))).offset).toBe(1);
    // S without F (RFC 7143 11.7.3), O with U.
    expect(decodeError(() => decodeDataIn(withBhs(F.DATA_IN_TGT_UNDERFLOW, { 1: 0x01 }))).offset).toBe(1);
    expect(decodeError(() => decodeDataIn(withBhs(F.DATA_IN_TGT_UNDERFLOW, { 1: 0x87 }))).offset).toBe(1);
  });

  it('T and C both set in Login PDUs, C and F both set in Text PDUs, at byte 1', () => {
    expect(decodeError(() => decodeLoginRequest(withBhs(F.LOGIN_REQUEST_LIBISCSI, { 1: 0xc7 }))).offset).toBe(1);
    expect(decodeError(() => decodeLoginResponse(withBhs(F.LOGIN_RESPONSE_TGT, { 1: 0xc7 }))).offset).toBe(1);
    expect(decodeError(() => decodeTextRequest(withBhs(F.TEXT_REQUEST_LIBISCSI_SENDTARGETS, { 1: 0xc0 }))).offset).toBe(1);
    expect(decodeError(() => decodeTextResponse(withBhs(F.TEXT_RESPONSE_TGT_SENDTARGETS, { 1: 0xc0 }))).offset).toBe(1);
  });

  it('a NOP-Out with the reserved tag must be immediate, at byte 0 (RFC 7143 11.18)', () => {
    expect(decodeError(() => decodeNopOut(withBhs(F.NOP_OUT_LIBISCSI_ANSWER, { 0: 0x00 }))).offset).toBe(0);
  });

  it('the Initiator Task Tag of an Asynchronous Message or Reject must be 0xffffffff, at byte 16', () => {
    expect(decodeError(() => decodeAsyncMessage(withBhs(F.ASYNC_MESSAGE_SCSI_EVENT, { 16: 0 }))).offset).toBe(16);
    expect(decodeError(() => decodeReject(withBhs(F.REJECT_INVALID_PDU_FIELD, { 19: 0 }))).offset).toBe(16);
  });

  it("a Reject too short for the rejected PDU's BHS, at byte 5", () => {
    const short = Buffer.concat([patch(F.REJECT_INVALID_PDU_FIELD.subarray(0, 48), { 7: 47 }), Buffer.alloc(47)]);
    expect(decodeError(() => decodeReject(splitPdu(short))).offset).toBe(5);
  });

  it('passes enumerated values it does not know through for the session layer to answer', () => {
    // TMF function 0x7f, logout reason 0x7f, SNACK type 15, CSG/NSG 2, task attribute 7.
    expect(decodeTaskManagementRequest(withBhs(F.TMF_REQUEST_LIBISCSI_ABORT_TASK, { 1: 0xff })).function).toBe(0x7f);
    expect(decodeLogoutRequest(withBhs(F.LOGOUT_REQUEST_LIBISCSI, { 1: 0xff })).reasonCode).toBe(0x7f);
    expect(decodeSnackRequest(withBhs(F.SNACK_REQUEST_DATA, { 1: 0x8f })).type).toBe(15);
    expect(decodeLoginRequest(withBhs(F.LOGIN_REQUEST_LIBISCSI, { 1: 0x8a }))).toMatchObject({ csg: 2, nsg: 2 });
    expect(decodeScsiCommand(withBhs(F.SCSI_COMMAND_RFC_READ10, { 1: 0xc7 })).attr).toBe(7);
  });

  it('ignores reserved bits (RFC 7143 11: ignored on receipt)', () => {
    // SCSI Command byte 1 bits 4-3, NOP-In byte 0 bit 6, Logout Response reserved bytes 36-39.
    expect(decodeScsiCommand(withBhs(F.SCSI_COMMAND_RFC_READ10, { 1: 0xd8 }))).toMatchObject({ attr: 0, read: true });
    expect(decodeNopIn(withBhs(F.NOP_IN_TGT_PING, { 0: 0x60 })).targetTransferTag).toBe(1);
    expect(decodeLogoutResponse(withBhs(F.LOGOUT_RESPONSE_TGT, { 36: 0xff })).time2Wait).toBe(0);
  });
});

describe('dispatch and raw frames', () => {
  it('names every opcode and only those', () => {
    expect(iscsiOpcodeName(IscsiOpcode.SCSI_DATA_IN)).toBe('SCSI Data-In');
    expect(iscsiOpcodeName(0x02)).toBe('Task Management Function Request');
    expect(iscsiOpcodeName(0x1c)).toBe('opcode 0x1c');
    const initiator = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10];
    const target = [0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x31, 0x32, 0x3f];
    for (let op = 0; op < 64; op++) {
      expect(isInitiatorOpcode(op)).toBe(initiator.includes(op));
      expect(isTargetOpcode(op)).toBe(target.includes(op));
    }
  });

  it('refuses an opcode of the wrong side or none, at byte 0', () => {
    const bhs = Buffer.alloc(48);
    for (const op of [0x07, 0x1c, 0x20, 0x3e]) {
      bhs[0] = op;
      expect(decodeError(() => decodeInitiatorPdu({ bhs, ahs: EMPTY, data: EMPTY })).offset).toBe(0);
    }
    for (const op of [0x00, 0x05, 0x27, 0x3e]) {
      bhs[0] = op;
      expect(decodeError(() => decodeTargetPdu({ bhs, ahs: EMPTY, data: EMPTY })).offset).toBe(0);
    }
    expect(decodeError(() => decodeInitiatorPdu({ bhs: EMPTY, ahs: EMPTY, data: EMPTY })).offset).toBe(0);
  });

  it('splitPdu reads a frame with or without its padding and rejects a short one', () => {
    const joined = joinPdu(splitPdu(F.TEXT_RESPONSE_TGT_SENDTARGETS));
    expect(joined).toHaveLength(48 + 80); // 79 bytes of text + 1 byte of padding (RFC 7143 11.1)
    expect(joined[joined.length - 1]).toBe(0);
    expect(bytesOf(splitPdu(joined)).equals(F.TEXT_RESPONSE_TGT_SENDTARGETS)).toBe(true);
    for (const cut of [0, 47, 48, 100, 126]) {
      expect(decodeError(() => splitPdu(joined.subarray(0, cut))).offset).toBe(cut);
    }
  });

  it('is total on random frames of every opcode', () => {
    const raw = fc
      .record({
        op: fc.integer({ min: 0, max: 0x3f }),
        bhs: fc.uint8Array({ minLength: 48, maxLength: 48 }),
        ahsWords: fc.integer({ min: 0, max: 8 }),
        data: fc.uint8Array({ maxLength: 80 }),
        consistent: fc.boolean(),
      })
      .map(({ op, bhs, ahsWords, data, consistent }) => {
        const b = Buffer.from(bhs);
        b[0] = (b[0] & 0xc0) | op;
        const ahs = Buffer.alloc(ahsWords * 4, 0x01);
        if (consistent) {
          b[4] = ahsWords;
          b.writeUIntBE(data.length, 5, 3);
        }
        return { bhs: b, ahs, data: Buffer.from(data) };
      });
    fc.assert(
      fc.property(raw, (r) => {
        decodesOrRejects(() => decodeInitiatorPdu(r), EMPTY);
        decodesOrRejects(() => decodeTargetPdu(r), EMPTY);
      }),
      { numRuns: 3000 },
    );
    assertTotalDecoder((b) => decodeInitiatorPdu(splitPdu(b)), F.SCSI_COMMAND_AHS_XDWRITEREAD32);
    assertTotalDecoder((b) => decodeTargetPdu(splitPdu(b)), F.SCSI_RESPONSE_TGT_UNIT_ATTENTION);
  });
});

// ---------------------------------------------------------------------------------------------
// Encoders: defaults, checks and the LUN field.

describe('encoders', () => {
  it('fill the defaults the RFC gives', () => {
    // Unsolicited Data-Out: Target Transfer Tag 0xffffffff (RFC 7143 11.7.4), F set.
    const out = encodeDataOut({ initiatorTaskTag: 7, expStatSN: 1, dataSN: 0, bufferOffset: 0, data: Buffer.alloc(4) });
    expect(out.bhs.subarray(0, 8).toString('hex')).toBe('0580000000000004');
    expect(out.bhs.readUInt32BE(20)).toBe(RESERVED_TAG);
    // A NOP-In that is neither an answer nor asks for one.
    const nop = encodeNopIn({ statSN: 1, expCmdSN: 2, maxCmdSN: 3 });
    expect([nop.bhs.readUInt32BE(16), nop.bhs.readUInt32BE(20)]).toEqual([RESERVED_TAG, RESERVED_TAG]);
    // Data-In without status: no S, status byte and StatSN zero.
    const din = encodeDataIn({ initiatorTaskTag: 1, expCmdSN: 1, maxCmdSN: 1, dataSN: 2, bufferOffset: 512, final: false, data: Buffer.alloc(3) });
    expect(din.bhs.subarray(0, 4).toString('hex')).toBe('25000000');
    expect(decodeDataIn(din)).toMatchObject({ status: undefined, final: false, statSN: 0, dataSN: 2 });
    // The Login Request is always immediate (RFC 7143 11.12).
    expect(encodeLoginRequest({ csg: 0, nsg: 1, isid: Buffer.alloc(6), initiatorTaskTag: 1, cmdSN: 1 }).bhs[0]).toBe(0x43);
    // An Asynchronous Message and a Reject carry the reserved tag.
    expect(encodeAsyncMessage({ statSN: 1, expCmdSN: 1, maxCmdSN: 1, asyncEvent: 1, parameter3: 5 }).bhs.readUInt32BE(16)).toBe(RESERVED_TAG);
  });

  it('pad a short CDB to 16 bytes and put a long one in an Extended CDB AHS', () => {
    const tur = encodeScsiCommand({ initiatorTaskTag: 1, expectedDataTransferLength: 0, cmdSN: 1, expStatSN: 1, cdb: Buffer.alloc(6) });
    expect(tur.ahs).toHaveLength(0);
    expect(decodeScsiCommand(tur).cdb).toEqual(Buffer.alloc(16));
    for (const length of [17, 18, 19, 20, 21, 32, 260]) {
      const cdb = Buffer.from(Array.from({ length }, (_, i) => i + 1));
      const raw = encodeScsiCommand({ initiatorTaskTag: 1, expectedDataTransferLength: 0, cmdSN: 1, expStatSN: 1, cdb });
      expect(raw.ahs.length % 4).toBe(0);
      expect(raw.bhs[4] * 4).toBe(raw.ahs.length);
      expect(raw.ahs.readUInt16BE(0)).toBe(length - 15); // RFC 7143 11.2.2.3
      expect(decodeScsiCommand(raw).cdb).toEqual(cdb);
    }
  });

  it('keep single-level LUNs as numbers and any other LUN field raw (SAM-5 r21 4.7)', () => {
    const base = { statSN: 1, expCmdSN: 1, maxCmdSN: 1, initiatorTaskTag: 1, targetTransferTag: 2, r2tSN: 0, bufferOffset: 0, desiredDataTransferLength: 1 };
    const flat = decodeR2T(encodeR2T({ ...base, lun: 300 }));
    expect(flat.lun).toBe(300);
    expect(flat.lunRaw.toString('hex')).toBe('412c000000000000');
    const twoLevel = hex('00 05 00 07 00 00 00 00');
    const raw = decodeR2T(encodeR2T({ ...base, lun: 5, lunRaw: twoLevel }));
    expect(raw.lun).toBeUndefined();
    expect(raw.lunRaw).toEqual(twoLevel);
  });

  it('refuse values that do not fit, naming the field', () => {
    const cmd = { initiatorTaskTag: 1, expectedDataTransferLength: 0, cmdSN: 1, expStatSN: 1, cdb: Buffer.alloc(6) };
    const field = (f: () => unknown): string => {
      try {
        f();
      } catch (err) {
        if (err instanceof EncodeError) return err.field;
        throw err;
      }
      throw new Error('expected an EncodeError');
    };
    expect(field(() => encodeScsiCommand({ ...cmd, cmdSN: 2 ** 32 }))).toBe('cmdSN');
    expect(field(() => encodeScsiCommand({ ...cmd, initiatorTaskTag: -1 }))).toBe('initiatorTaskTag');
    expect(field(() => encodeScsiCommand({ ...cmd, attr: 8 }))).toBe('attr');
    expect(field(() => encodeScsiCommand({ ...cmd, cdb: EMPTY }))).toBe('cdb');
    expect(field(() => encodeScsiCommand({ ...cmd, cdb: Buffer.alloc(2000) }))).toBe('cdb');
    expect(field(() => encodeScsiCommand({ ...cmd, write: false, final: false }))).toBe('final');
    expect(field(() => encodeScsiCommand({ ...cmd, expectedDataTransferLength: 512 }))).toBe('read');
    expect(field(() => encodeScsiCommand({ ...cmd, lunRaw: Buffer.alloc(7) }))).toBe('lunRaw');
    expect(() => encodeScsiCommand({ ...cmd, lun: 16384 })).toThrow(EncodeError);
    expect(field(() => encodeScsiCommand({ ...cmd, data: Buffer.alloc(MAX_DATA_SEGMENT_LENGTH + 1) }))).toBe('data');
    expect(field(() => encodeLoginRequest({ csg: 1, nsg: 3, isid: Buffer.alloc(5), initiatorTaskTag: 1, cmdSN: 1 }))).toBe('isid');
    expect(field(() => encodeLoginRequest({ csg: 4, nsg: 3, isid: Buffer.alloc(6), initiatorTaskTag: 1, cmdSN: 1 }))).toBe('csg');
    expect(field(() => encodeLoginResponse({ transit: true, continue: true, csg: 1, nsg: 3, isid: Buffer.alloc(6), initiatorTaskTag: 1, statSN: 1, expCmdSN: 1, maxCmdSN: 1 }))).toBe('continue');
    expect(field(() => encodeTextRequest({ continue: true, initiatorTaskTag: 1, cmdSN: 1, expStatSN: 1 }))).toBe('continue');
    expect(field(() => encodeTextResponse({ continue: true, initiatorTaskTag: 1, statSN: 1, expCmdSN: 1, maxCmdSN: 1 }))).toBe('continue');
    const din = { initiatorTaskTag: 1, expCmdSN: 1, maxCmdSN: 1, dataSN: 0, bufferOffset: 0, data: EMPTY };
    expect(field(() => encodeDataIn({ ...din, status: 0, final: false }))).toBe('final');
    expect(field(() => encodeDataIn({ ...din, residualUnderflow: true }))).toBe('residualOverflow');
    expect(field(() => encodeDataIn({ ...din, status: 0, residualOverflow: true, residualUnderflow: true }))).toBe('residualOverflow');
    expect(field(() => encodeDataIn({ ...din, status: 256 }))).toBe('status');
    const rsp = { initiatorTaskTag: 1, status: 0, statSN: 1, expCmdSN: 1, maxCmdSN: 1 };
    expect(field(() => encodeScsiResponse({ ...rsp, residualOverflow: true, residualUnderflow: true }))).toBe('residualOverflow');
    expect(field(() => encodeScsiResponse({ ...rsp, bidiReadResidualOverflow: true, bidiReadResidualUnderflow: true }))).toBe('bidiReadResidualOverflow');
    expect(field(() => encodeScsiResponse({ ...rsp, sense: Buffer.alloc(0x10000) }))).toBe('sense');
    expect(field(() => encodeScsiResponse({ ...rsp, statSN: undefined as unknown as number }))).toBe('statSN');
    expect(field(() => encodeReject({ reason: 4, statSN: 1, expCmdSN: 1, maxCmdSN: 1, header: Buffer.alloc(47) }))).toBe('header');
    expect(field(() => encodeTaskManagementRequest({ function: 128, initiatorTaskTag: 1, cmdSN: 1, expStatSN: 1 }))).toBe('function');
    expect(field(() => encodeLogoutRequest({ reasonCode: 128, initiatorTaskTag: 1, cmdSN: 1, expStatSN: 1 }))).toBe('reasonCode');
    expect(field(() => encodeSnackRequest({ type: 16, initiatorTaskTag: 1, expStatSN: 1, begRun: 0, runLength: 0 }))).toBe('type');
    expect(field(() => encodeNopOut({ immediate: false, initiatorTaskTag: RESERVED_TAG, cmdSN: 1, expStatSN: 1 }))).toBe('immediate');
    expect(field(() => encodeLogoutResponse({ initiatorTaskTag: 1, statSN: 1, expCmdSN: 1, maxCmdSN: 1, time2Wait: 65536 }))).toBe('time2Wait');
    expect(field(() => encodeAsyncMessage({ statSN: 1, expCmdSN: 1, maxCmdSN: 1, asyncEvent: 0, parameter1: 1.5 }))).toBe('parameter1');
  });
});

// ---------------------------------------------------------------------------------------------
// Round trips of random PDUs of every type (arbitraries in pdu-arbitraries.ts).

describe('round trips of random PDUs', () => {
  it.each(INITIATOR_PDUS)('%s: decode(encode(x)) is x', (_name, arb) => {
    fc.assert(
      fc.property(arb, (pdu) => {
        const raw = encodeInitiatorPdu(pdu);
        expect(raw.bhs[0] & 0x3f).toBe(pdu.opcode);
        expect(decodeInitiatorPdu(raw)).toEqual(pdu);
        expect(decodeInitiatorPdu(splitPdu(joinPdu(raw)))).toEqual(pdu);
      }),
      { numRuns: 300 },
    );
  });

  it.each(TARGET_PDUS)('%s: decode(encode(x)) is x', (_name, arb) => {
    fc.assert(
      fc.property(arb, (pdu) => {
        const raw = encodeTargetPdu(pdu);
        expect(raw.bhs[0] & 0x3f).toBe(pdu.opcode);
        expect(decodeTargetPdu(raw)).toEqual(pdu);
        expect(decodeTargetPdu(splitPdu(joinPdu(raw)))).toEqual(pdu);
      }),
      { numRuns: 300 },
    );
  });
});

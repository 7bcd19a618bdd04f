/**
 * fast-check arbitraries of every iSCSI PDU type, as decoded: each value satisfies the RFC 7143
 * rules the encoders and decoders enforce (so decode(encode(x)) is x). Shared by the codec and
 * framer tests.
 */
import fc from 'fast-check';
import { encodeLun, lunNumberAt } from '../../../../src/scsi/report-luns';
import {
  IscsiOpcode,
  RESERVED_TAG,
  type AsyncMessagePdu,
  type DataInPdu,
  type DataOutPdu,
  type InitiatorPdu,
  type LoginRequestPdu,
  type LoginResponsePdu,
  type LogoutRequestPdu,
  type LogoutResponsePdu,
  type NopInPdu,
  type NopOutPdu,
  type R2TPdu,
  type RejectPdu,
  type ScsiCommandPdu,
  type ScsiResponsePdu,
  type SnackRequestPdu,
  type TargetPdu,
  type TaskManagementRequestPdu,
  type TaskManagementResponsePdu,
  type TextRequestPdu,
  type TextResponsePdu,
} from '../../../../src/target/iscsi/pdu';


const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u8 = fc.integer({ min: 0, max: 0xff });
const bytes = (maxLength = 64): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((b) => Buffer.from(b));
const exactly = (n: number): fc.Arbitrary<Buffer> => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => Buffer.from(b));
const lunField = fc
  .oneof(fc.integer({ min: 0, max: 0x3fff }).map((n) => encodeLun(n)), exactly(8))
  .map((lunRaw) => ({ lun: lunNumberAt(lunRaw), lunRaw }));
/** Two flags that must not both be set: none, the first, or the second. */
const oneOf2 = fc.constantFrom<[boolean, boolean]>([false, false], [true, false], [false, true]);

const scsiCommand: fc.Arbitrary<ScsiCommandPdu> = fc
  .record({
    immediate: fc.boolean(),
    final: fc.boolean(),
    read: fc.boolean(),
    write: fc.boolean(),
    attr: fc.integer({ min: 0, max: 7 }),
    l: lunField,
    initiatorTaskTag: u32,
    expectedDataTransferLength: u32,
    cmdSN: u32,
    expStatSN: u32,
    cdb: fc.integer({ min: 16, max: 80 }).chain(exactly),
    bidi: fc.option(u32, { nil: undefined }),
    data: bytes(),
  })
  .map(({ l, bidi, ...r }) => ({
    opcode: IscsiOpcode.SCSI_COMMAND,
    ...r,
    ...l,
    final: r.final || !r.write, // RFC 7143 11.3.1: W=0 needs F=1
    read: r.read || !r.write, // and a transfer length needs R or W
    bidirectionalReadExpectedDataTransferLength: bidi,
  }));

const scsiResponse: fc.Arbitrary<ScsiResponsePdu> = fc
  .record({
    ou: oneOf2,
    bidiOu: oneOf2,
    response: u8,
    status: u8,
    initiatorTaskTag: u32,
    snackTag: u32,
    statSN: u32,
    expCmdSN: u32,
    maxCmdSN: u32,
    expDataSN: u32,
    bidiReadResidualCount: u32,
    residualCount: u32,
    sense: bytes(40),
    responseData: bytes(12),
  })
  .map(({ ou, bidiOu, ...r }) => ({
    opcode: IscsiOpcode.SCSI_RESPONSE,
    ...r,
    residualOverflow: ou[0],
    residualUnderflow: ou[1],
    bidiReadResidualOverflow: bidiOu[0],
    bidiReadResidualUnderflow: bidiOu[1],
  }));

const tmfRequest: fc.Arbitrary<TaskManagementRequestPdu> = fc
  .record({
    immediate: fc.boolean(),
    function: fc.integer({ min: 0, max: 0x7f }),
    l: lunField,
    initiatorTaskTag: u32,
    referencedTaskTag: u32,
    cmdSN: u32,
    expStatSN: u32,
    refCmdSN: u32,
    expDataSN: u32,
  })
  .map(({ l, ...r }) => ({ opcode: IscsiOpcode.TASK_MANAGEMENT_REQUEST, ...r, ...l }));

const tmfResponse: fc.Arbitrary<TaskManagementResponsePdu> = fc
  .record({ response: u8, initiatorTaskTag: u32, statSN: u32, expCmdSN: u32, maxCmdSN: u32 })
  .map((r) => ({ opcode: IscsiOpcode.TASK_MANAGEMENT_RESPONSE, ...r }));

const dataOut: fc.Arbitrary<DataOutPdu> = fc
  .record({ final: fc.boolean(), l: lunField, initiatorTaskTag: u32, targetTransferTag: u32, expStatSN: u32, dataSN: u32, bufferOffset: u32, data: bytes() })
  .map(({ l, ...r }) => ({ opcode: IscsiOpcode.SCSI_DATA_OUT, ...r, ...l }));

const dataIn: fc.Arbitrary<DataInPdu> = fc
  .record({
    final: fc.boolean(),
    acknowledge: fc.boolean(),
    ou: oneOf2,
    status: fc.option(u8, { nil: undefined }),
    l: lunField,
    initiatorTaskTag: u32,
    targetTransferTag: u32,
    statSN: u32,
    expCmdSN: u32,
    maxCmdSN: u32,
    dataSN: u32,
    bufferOffset: u32,
    residualCount: u32,
    data: bytes(),
  })
  .map(({ l, ou, ...r }) => {
    const withStatus = r.status !== undefined;
    return {
      opcode: IscsiOpcode.SCSI_DATA_IN,
      ...r,
      ...l,
      final: r.final || withStatus, // S needs F (RFC 7143 11.7.3)
      residualOverflow: withStatus && ou[0], // O and U go with status only
      residualUnderflow: withStatus && ou[1],
    };
  });

const r2t: fc.Arbitrary<R2TPdu> = fc
  .record({ l: lunField, initiatorTaskTag: u32, targetTransferTag: u32, statSN: u32, expCmdSN: u32, maxCmdSN: u32, r2tSN: u32, bufferOffset: u32, desiredDataTransferLength: u32 })
  .map(({ l, ...r }) => ({ opcode: IscsiOpcode.R2T, ...r, ...l }));

const asyncMessage: fc.Arbitrary<AsyncMessagePdu> = fc
  .record({ l: lunField, statSN: u32, expCmdSN: u32, maxCmdSN: u32, asyncEvent: u8, asyncVCode: u8, parameter1: u16, parameter2: u16, parameter3: u16, sense: bytes(40), eventData: bytes(12) })
  .map(({ l, ...r }) => ({ opcode: IscsiOpcode.ASYNC_MESSAGE, ...r, ...l }));

const textRequest: fc.Arbitrary<TextRequestPdu> = fc
  .record({ immediate: fc.boolean(), fc: oneOf2, l: lunField, initiatorTaskTag: u32, targetTransferTag: u32, cmdSN: u32, expStatSN: u32, data: bytes() })
  .map(({ l, fc: [final, cont], ...r }) => ({ opcode: IscsiOpcode.TEXT_REQUEST, ...r, ...l, final, continue: cont }));

const textResponse: fc.Arbitrary<TextResponsePdu> = fc
  .record({ fc: oneOf2, l: lunField, initiatorTaskTag: u32, targetTransferTag: u32, statSN: u32, expCmdSN: u32, maxCmdSN: u32, data: bytes() })
  .map(({ l, fc: [final, cont], ...r }) => ({ opcode: IscsiOpcode.TEXT_RESPONSE, ...r, ...l, final, continue: cont }));

const stage = fc.integer({ min: 0, max: 3 });
const loginRequest: fc.Arbitrary<LoginRequestPdu> = fc
  .record({ tc: oneOf2, csg: stage, nsg: stage, versionMax: u8, versionMin: u8, isid: exactly(6), tsih: u16, initiatorTaskTag: u32, cid: u16, cmdSN: u32, expStatSN: u32, data: bytes() })
  .map(({ tc: [transit, cont], ...r }) => ({ opcode: IscsiOpcode.LOGIN_REQUEST, ...r, transit, continue: cont }));

const loginResponse: fc.Arbitrary<LoginResponsePdu> = fc
  .record({
    tc: oneOf2,
    csg: stage,
    nsg: stage,
    versionMax: u8,
    versionActive: u8,
    isid: exactly(6),
    tsih: u16,
    initiatorTaskTag: u32,
    statSN: u32,
    expCmdSN: u32,
    maxCmdSN: u32,
    statusClass: u8,
    statusDetail: u8,
    data: bytes(),
  })
  .map(({ tc: [transit, cont], ...r }) => ({ opcode: IscsiOpcode.LOGIN_RESPONSE, ...r, transit, continue: cont }));

const logoutRequest: fc.Arbitrary<LogoutRequestPdu> = fc
  .record({ immediate: fc.boolean(), reasonCode: fc.integer({ min: 0, max: 0x7f }), initiatorTaskTag: u32, cid: u16, cmdSN: u32, expStatSN: u32 })
  .map((r) => ({ opcode: IscsiOpcode.LOGOUT_REQUEST, ...r }));

const logoutResponse: fc.Arbitrary<LogoutResponsePdu> = fc
  .record({ response: u8, initiatorTaskTag: u32, statSN: u32, expCmdSN: u32, maxCmdSN: u32, time2Wait: u16, time2Retain: u16 })
  .map((r) => ({ opcode: IscsiOpcode.LOGOUT_RESPONSE, ...r }));

const snackRequest: fc.Arbitrary<SnackRequestPdu> = fc
  .record({ type: fc.integer({ min: 0, max: 15 }), l: lunField, initiatorTaskTag: u32, targetTransferTag: u32, expStatSN: u32, begRun: u32, runLength: u32 })
  .map(({ l, ...r }) => ({ opcode: IscsiOpcode.SNACK_REQUEST, ...r, ...l }));

const reject: fc.Arbitrary<RejectPdu> = fc
  .record({ reason: u8, statSN: u32, expCmdSN: u32, maxCmdSN: u32, dataSN: u32, header: fc.integer({ min: 48, max: 100 }).chain(exactly) })
  .map((r) => ({ opcode: IscsiOpcode.REJECT, ...r }));

const nopOut: fc.Arbitrary<NopOutPdu> = fc
  .record({ immediate: fc.boolean(), l: lunField, initiatorTaskTag: fc.oneof(u32, fc.constant(RESERVED_TAG)), targetTransferTag: u32, cmdSN: u32, expStatSN: u32, data: bytes() })
  .map(({ l, ...r }) => ({ opcode: IscsiOpcode.NOP_OUT, ...r, ...l, immediate: r.immediate || r.initiatorTaskTag === RESERVED_TAG }));

const nopIn: fc.Arbitrary<NopInPdu> = fc
  .record({ l: lunField, initiatorTaskTag: u32, targetTransferTag: u32, statSN: u32, expCmdSN: u32, maxCmdSN: u32, data: bytes() })
  .map(({ l, ...r }) => ({ opcode: IscsiOpcode.NOP_IN, ...r, ...l }));

/** Random PDUs of every type, for the round trips here and the framer tests. */
export const INITIATOR_PDUS: ReadonlyArray<readonly [string, fc.Arbitrary<InitiatorPdu>]> = [
  ['NOP-Out', nopOut],
  ['SCSI Command', scsiCommand],
  ['Task Management Function Request', tmfRequest],
  ['Login Request', loginRequest],
  ['Text Request', textRequest],
  ['SCSI Data-Out', dataOut],
  ['Logout Request', logoutRequest],
  ['SNACK Request', snackRequest],
];
export const TARGET_PDUS: ReadonlyArray<readonly [string, fc.Arbitrary<TargetPdu>]> = [
  ['NOP-In', nopIn],
  ['SCSI Response', scsiResponse],
  ['Task Management Function Response', tmfResponse],
  ['Login Response', loginResponse],
  ['Text Response', textResponse],
  ['SCSI Data-In', dataIn],
  ['Logout Response', logoutResponse],
  ['R2T', r2t],
  ['Asynchronous Message', asyncMessage],
  ['Reject', reject],
];

/**
 * iSCSI PDUs (RFC 7143 11): typed encoders and decoders for every PDU of the protocol.
 *
 * Pure codecs, no I/O. A PDU arrives here already framed (see framer.ts) as a `RawPdu`: the
 * 48-byte Basic Header Segment, the Additional Header Segments, and the data segment without
 * its padding; digests were checked by the framer. Decoders return a typed value or throw
 * DecodeError; encoders return a RawPdu with TotalAHSLength and DataSegmentLength filled in,
 * or throw EncodeError when a value does not fit its field.
 *
 * Byte offsets in a DecodeError count from the start of the PDU as RFC 7143 11.1 lays it out
 * without digests: BHS at 0..47, AHS from 48, then the data segment.
 *
 * What decoders reject: a wrong opcode or BHS length, TotalAHSLength or DataSegmentLength that
 * disagree with the segments given, an AHS on a PDU that defines none (RFC 7143 11.2.1) or a
 * data segment on one that carries none, malformed or unknown AHS, sense lengths past the data,
 * a fixed 0xffffffff tag that is not, and field combinations the RFC forbids outright (T and C
 * both 1, C and F both 1, W and F both 0, R and W both 0 with a transfer length, S without F,
 * O with U, a NOP-Out with the reserved tag that is not immediate). Values of enumerated fields
 * (task attribute, TMF function, logout reason, SNACK type, CSG/NSG, version) pass through as
 * numbers: the session layer answers those with the Reject or status the RFC names for each.
 * Reserved bits and bytes are ignored on receipt and sent as zero (RFC 7143 11).
 *
 * Field names are the RFC's, in camelCase. 32-bit fields (tags, sequence numbers, lengths)
 * are unsigned numbers.
 */
import { DecodeError, EncodeError } from '../../errors';
import { encodeLun, lunNumberAt } from '../../scsi/report-luns';

/** Length of the Basic Header Segment (RFC 7143 11.2.1). */
export const BHS_LENGTH = 48;
/** Largest DataSegmentLength the 3-byte field holds (RFC 7143 11.2.1). */
export const MAX_DATA_SEGMENT_LENGTH = 0xff_ffff;
/** Largest AHS total: TotalAHSLength counts 4-byte words in one byte (RFC 7143 11.2.1). */
export const MAX_AHS_LENGTH = 255 * 4;
/** The reserved tag value (RFC 7143 11.2.1: 0xffffffff is never a valid Initiator Task Tag). */
export const RESERVED_TAG = 0xffff_ffff;

/** PDU opcodes (RFC 7143 11.2.1): initiator opcodes 0x00–0x1f, target opcodes 0x20–0x3f. */
export const enum IscsiOpcode {
  NOP_OUT = 0x00,
  SCSI_COMMAND = 0x01,
  TASK_MANAGEMENT_REQUEST = 0x02,
  LOGIN_REQUEST = 0x03,
  TEXT_REQUEST = 0x04,
  SCSI_DATA_OUT = 0x05,
  LOGOUT_REQUEST = 0x06,
  SNACK_REQUEST = 0x10,
  NOP_IN = 0x20,
  SCSI_RESPONSE = 0x21,
  TASK_MANAGEMENT_RESPONSE = 0x22,
  LOGIN_RESPONSE = 0x23,
  TEXT_RESPONSE = 0x24,
  SCSI_DATA_IN = 0x25,
  LOGOUT_RESPONSE = 0x26,
  R2T = 0x31,
  ASYNC_MESSAGE = 0x32,
  REJECT = 0x3f,
}

const INITIATOR_OPCODE_NAMES: ReadonlyMap<number, string> = new Map([
  [0x00, 'NOP-Out'],
  [0x01, 'SCSI Command'],
  [0x02, 'Task Management Function Request'],
  [0x03, 'Login Request'],
  [0x04, 'Text Request'],
  [0x05, 'SCSI Data-Out'],
  [0x06, 'Logout Request'],
  [0x10, 'SNACK Request'],
]);
const TARGET_OPCODE_NAMES: ReadonlyMap<number, string> = new Map([
  [0x20, 'NOP-In'],
  [0x21, 'SCSI Response'],
  [0x22, 'Task Management Function Response'],
  [0x23, 'Login Response'],
  [0x24, 'Text Response'],
  [0x25, 'SCSI Data-In'],
  [0x26, 'Logout Response'],
  [0x31, 'Ready To Transfer (R2T)'],
  [0x32, 'Asynchronous Message'],
  [0x3f, 'Reject'],
]);

/** The RFC's name of an opcode for logs, e.g. `SCSI Data-In`; unknown ones give `opcode 0x1c`. */
export function iscsiOpcodeName(opcode: number): string {
  return (
    INITIATOR_OPCODE_NAMES.get(opcode) ??
    TARGET_OPCODE_NAMES.get(opcode) ??
    `opcode 0x${(opcode >>> 0).toString(16).padStart(2, '0')}`
  );
}

/** True for the opcodes RFC 7143 defines for PDUs an initiator sends. */
export function isInitiatorOpcode(opcode: number): boolean {
  return INITIATOR_OPCODE_NAMES.has(opcode);
}

/** True for the opcodes RFC 7143 defines for PDUs a target sends. */
export function isTargetOpcode(opcode: number): boolean {
  return TARGET_OPCODE_NAMES.has(opcode);
}

/** Task attributes (RFC 7143 11.3.1, SAM-2); 5–7 are reserved. */
export const enum TaskAttribute {
  UNTAGGED = 0,
  SIMPLE = 1,
  ORDERED = 2,
  HEAD_OF_QUEUE = 3,
  ACA = 4,
}

/** Login stages, the CSG and NSG fields (RFC 7143 11.12.3); 2 is reserved. */
export const enum LoginStage {
  SECURITY_NEGOTIATION = 0,
  LOGIN_OPERATIONAL_NEGOTIATION = 1,
  FULL_FEATURE_PHASE = 3,
}

/** Login Response Status-Class (RFC 7143 11.13.5). */
export const enum LoginStatusClass {
  SUCCESS = 0,
  REDIRECTION = 1,
  INITIATOR_ERROR = 2,
  TARGET_ERROR = 3,
}

/**
 * Login Response status (RFC 7143 11.13.5) as Status-Class × 256 + Status-Detail:
 * `statusClass = s >> 8`, `statusDetail = s & 0xff`.
 */
export const enum LoginStatus {
  SUCCESS = 0x0000,
  TARGET_MOVED_TEMPORARILY = 0x0101,
  TARGET_MOVED_PERMANENTLY = 0x0102,
  INITIATOR_ERROR = 0x0200,
  AUTHENTICATION_FAILURE = 0x0201,
  AUTHORIZATION_FAILURE = 0x0202,
  NOT_FOUND = 0x0203,
  TARGET_REMOVED = 0x0204,
  UNSUPPORTED_VERSION = 0x0205,
  TOO_MANY_CONNECTIONS = 0x0206,
  MISSING_PARAMETER = 0x0207,
  CANT_INCLUDE_IN_SESSION = 0x0208,
  SESSION_TYPE_NOT_SUPPORTED = 0x0209,
  SESSION_DOES_NOT_EXIST = 0x020a,
  INVALID_DURING_LOGIN = 0x020b,
  TARGET_ERROR = 0x0300,
  SERVICE_UNAVAILABLE = 0x0301,
  OUT_OF_RESOURCES = 0x0302,
}

/** Task management function codes (RFC 7143 11.5.1). */
export const enum TmfFunction {
  ABORT_TASK = 1,
  ABORT_TASK_SET = 2,
  CLEAR_ACA = 3,
  CLEAR_TASK_SET = 4,
  LOGICAL_UNIT_RESET = 5,
  TARGET_WARM_RESET = 6,
  TARGET_COLD_RESET = 7,
  TASK_REASSIGN = 8,
}

/** Task management function responses (RFC 7143 11.6.1). */
export const enum TmfResponse {
  FUNCTION_COMPLETE = 0,
  TASK_DOES_NOT_EXIST = 1,
  LUN_DOES_NOT_EXIST = 2,
  TASK_STILL_ALLEGIANT = 3,
  TASK_ALLEGIANCE_REASSIGNMENT_NOT_SUPPORTED = 4,
  TMF_NOT_SUPPORTED = 5,
  FUNCTION_AUTHORIZATION_FAILED = 6,
  FUNCTION_REJECTED = 255,
}

/** The SCSI Response PDU's Response field (RFC 7143 11.4.3). */
export const enum ScsiResponseCode {
  COMMAND_COMPLETED_AT_TARGET = 0x00,
  TARGET_FAILURE = 0x01,
}

/** Logout Request reason codes (RFC 7143 11.14.1). */
export const enum LogoutReason {
  CLOSE_SESSION = 0,
  CLOSE_CONNECTION = 1,
  REMOVE_CONNECTION_FOR_RECOVERY = 2,
}

/** Logout Response codes (RFC 7143 11.15.1). */
export const enum LogoutResponseCode {
  CLOSED_SUCCESSFULLY = 0,
  CID_NOT_FOUND = 1,
  CONNECTION_RECOVERY_NOT_SUPPORTED = 2,
  CLEANUP_FAILED = 3,
}

/** SNACK types (RFC 7143 11.16.1). */
export const enum SnackType {
  DATA_R2T = 0,
  STATUS = 1,
  DATA_ACK = 2,
  R_DATA = 3,
}

/** Asynchronous Message AsyncEvent codes (RFC 7143 11.9.1). */
export const enum AsyncEvent {
  SCSI_ASYNC_EVENT = 0,
  LOGOUT_REQUEST = 1,
  CONNECTION_DROP = 2,
  SESSION_DROP = 3,
  NEGOTIATION_REQUEST = 4,
  TASK_TERMINATION = 5,
  VENDOR_SPECIFIC = 255,
}

/** Reject reasons (RFC 7143 11.17.1). */
export const enum RejectReason {
  DATA_DIGEST_ERROR = 0x02,
  SNACK_REJECT = 0x03,
  PROTOCOL_ERROR = 0x04,
  COMMAND_NOT_SUPPORTED = 0x05,
  IMMEDIATE_COMMAND_REJECT = 0x06,
  TASK_IN_PROGRESS = 0x07,
  INVALID_DATA_ACK = 0x08,
  INVALID_PDU_FIELD = 0x09,
  LONG_OPERATION_REJECT = 0x0a,
  /** 0x0b was "Negotiation Reset" in RFC 3720; RFC 7143 deprecates it. */
  DEPRECATED = 0x0b,
  WAITING_FOR_LOGOUT = 0x0c,
}

/** AHS types (RFC 7143 11.2.2.1). */
export const enum AhsType {
  EXTENDED_CDB = 1,
  BIDIRECTIONAL_READ_EXPECTED_DATA_TRANSFER_LENGTH = 2,
}

// ------------------------------------------------------------------------------------------
// Raw frames

/**
 * One PDU as framed (RFC 7143 11.1): the BHS (48 bytes), the AHS (TotalAHSLength × 4 bytes,
 * possibly empty) and the data segment (DataSegmentLength bytes, padding removed). Digests are
 * not part of it. The buffers may be views into a socket chunk: treat them as read-only.
 */
export interface RawPdu {
  bhs: Buffer;
  ahs: Buffer;
  data: Buffer;
}

/** The opcode of a BHS (byte 0, bits 5–0). */
export function pduOpcode(bhs: Buffer): number {
  return bhs[0] & 0x3f;
}

/** Length rounded up to the 4-byte boundary segments are padded to (RFC 7143 11.1). */
export function padded(length: number): number {
  return (length + 3) & ~3;
}

const EMPTY = Buffer.alloc(0);
const PDU = 'iSCSI PDU';

/**
 * Reads one PDU laid out without digests (BHS, AHS, data, optional padding) from the start of
 * `bytes`, as views into it. For tests, fuzzers and a Reject's data; sockets go through the
 * framer. Throws DecodeError (offset = first byte missing) when `bytes` is short.
 */
export function splitPdu(bytes: Buffer): RawPdu {
  if (bytes.length < BHS_LENGTH) {
    throw new DecodeError(PDU, bytes.length, `need a ${BHS_LENGTH}-byte BHS, got ${bytes.length} bytes`);
  }
  const ahsEnd = BHS_LENGTH + bytes[4] * 4;
  const dataEnd = ahsEnd + bytes.readUIntBE(5, 3);
  if (bytes.length < dataEnd) {
    throw new DecodeError(PDU, bytes.length, `TotalAHSLength and DataSegmentLength need ${dataEnd} bytes, got ${bytes.length}`);
  }
  return {
    bhs: bytes.subarray(0, BHS_LENGTH),
    ahs: bytes.subarray(BHS_LENGTH, ahsEnd),
    data: bytes.subarray(ahsEnd, dataEnd),
  };
}

/** The PDU as one buffer without digests: BHS, AHS, data and zero padding (RFC 7143 11.1). */
export function joinPdu(pdu: RawPdu): Buffer {
  const pad = padded(pdu.data.length) - pdu.data.length;
  return Buffer.concat([pdu.bhs, pdu.ahs, pdu.data, pad ? Buffer.alloc(pad) : EMPTY]);
}

// ------------------------------------------------------------------------------------------
// Field helpers

/** `Omit<T, 'opcode'>` with the fields K optional: what an encoder takes. */
type Init<T, K extends keyof T> = Omit<T, 'opcode' | K> & Partial<Pick<T, K>>;

/** The LUN field as decoded: the number when single-level (SAM-5 r21 4.7), and the raw 8 bytes. */
export interface LunField {
  /** Peripheral device or flat space addressed LUN; undefined for any other form. */
  lun: number | undefined;
  /** The 8 bytes of the LUN field, as received. */
  lunRaw: Buffer;
}

function uint(structure: string, field: string, value: unknown, bitsWide: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= 2 ** bitsWide) {
    throw new EncodeError(structure, field, `must be an integer in 0..${2 ** bitsWide - 1}, got ${String(value)}`);
  }
  return value;
}

function buf(structure: string, field: string, value: unknown, length?: number): Buffer {
  if (!Buffer.isBuffer(value)) throw new EncodeError(structure, field, 'must be a Buffer');
  if (length !== undefined && value.length !== length) {
    throw new EncodeError(structure, field, `must be ${length} bytes, got ${value.length}`);
  }
  return value;
}

/** A BHS with byte 0 (I bit, opcode) and byte 1 (flags) set, the rest zero. */
function newBhs(opcode: IscsiOpcode, immediate: boolean, flags: number): Buffer {
  // From Node's shared pool (a slice of it, zeroed here): a BHS per response, and Buffer.alloc
  // would make an ArrayBuffer of its own for each.
  const bhs = Buffer.allocUnsafe(BHS_LENGTH).fill(0);
  bhs[0] = (immediate ? 0x40 : 0) | opcode;
  bhs[1] = flags;
  return bhs;
}

function putU32(bhs: Buffer, offset: number, s: string, field: string, value: unknown): void {
  bhs.writeUInt32BE(uint(s, field, value, 32), offset);
}

function putLun(bhs: Buffer, s: string, p: { lun?: number; lunRaw?: Buffer }): void {
  if (p.lunRaw !== undefined) buf(s, 'lunRaw', p.lunRaw, 8).copy(bhs, 8);
  else encodeLun(p.lun ?? 0).copy(bhs, 8);
}

function readLun(bhs: Buffer): LunField {
  return { lun: lunNumberAt(bhs, 8), lunRaw: Buffer.from(bhs.subarray(8, 16)) };
}

/** Fills TotalAHSLength and DataSegmentLength and returns the frame. */
function finish(s: string, bhs: Buffer, ahs: Buffer, data: unknown): RawPdu {
  const d = buf(s, 'data', data);
  if (d.length > MAX_DATA_SEGMENT_LENGTH) {
    throw new EncodeError(s, 'data', `${d.length} bytes do not fit DataSegmentLength (max ${MAX_DATA_SEGMENT_LENGTH})`);
  }
  bhs[4] = ahs.length / 4;
  bhs.writeUIntBE(d.length, 5, 3);
  return { bhs, ahs, data: d };
}

interface Shape {
  /** The PDU may carry AHS (only the SCSI Command, RFC 7143 11.2.1). */
  ahs?: boolean;
  /** The PDU may carry a data segment. */
  data?: boolean;
}

/** Checks the frame against its BHS and returns the BHS. */
function header(raw: RawPdu, opcode: IscsiOpcode, s: string, shape: Shape): Buffer {
  const { bhs, ahs, data } = raw;
  if (!Buffer.isBuffer(bhs) || !Buffer.isBuffer(ahs) || !Buffer.isBuffer(data)) {
    throw new DecodeError(s, 0, 'bhs, ahs and data must be Buffers');
  }
  if (bhs.length !== BHS_LENGTH) {
    throw new DecodeError(s, Math.min(bhs.length, BHS_LENGTH), `the BHS must be ${BHS_LENGTH} bytes, got ${bhs.length}`);
  }
  const op = bhs[0] & 0x3f;
  if (op !== opcode) throw new DecodeError(s, 0, `opcode is ${iscsiOpcodeName(op)}`);
  if (bhs[4] * 4 !== ahs.length) {
    throw new DecodeError(s, 4, `TotalAHSLength ${bhs[4]} (words) disagrees with ${ahs.length} AHS bytes`);
  }
  if (ahs.length !== 0 && !shape.ahs) {
    throw new DecodeError(s, 4, `TotalAHSLength is ${bhs[4]}: this PDU has no AHS (RFC 7143 11.2.1)`);
  }
  const dsl = bhs.readUIntBE(5, 3);
  if (dsl !== data.length) throw new DecodeError(s, 5, `DataSegmentLength ${dsl} disagrees with ${data.length} data bytes`);
  if (dsl !== 0 && !shape.data) throw new DecodeError(s, 5, `DataSegmentLength is ${dsl}: this PDU carries no data segment`);
  return bhs;
}

/** `SenseLength` (2 bytes) + sense data + the rest, as the SCSI Response and Async Message carry. */
function senseSegment(s: string, sense: unknown, rest: unknown, restName: string): Buffer {
  const sn = sense === undefined ? EMPTY : buf(s, 'sense', sense);
  const r = rest === undefined ? EMPTY : buf(s, restName, rest);
  if (sn.length === 0 && r.length === 0) return EMPTY;
  if (sn.length > 0xffff) throw new EncodeError(s, 'sense', `${sn.length} bytes do not fit SenseLength`);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(sn.length, 0);
  return Buffer.concat([len, sn, r]);
}

function readSenseSegment(s: string, raw: RawPdu): { sense: Buffer; rest: Buffer } {
  const { data } = raw;
  const at = BHS_LENGTH + raw.ahs.length;
  if (data.length === 0) return { sense: EMPTY, rest: EMPTY };
  if (data.length < 2) throw new DecodeError(s, at + data.length, 'data segment too short for SenseLength');
  const senseLength = data.readUInt16BE(0);
  if (2 + senseLength > data.length) {
    throw new DecodeError(s, at, `SenseLength ${senseLength} runs past the ${data.length}-byte data segment`);
  }
  return { sense: data.subarray(2, 2 + senseLength), rest: data.subarray(2 + senseLength) };
}

function checkSequence(s: string, p: { statSN: unknown; expCmdSN: unknown; maxCmdSN: unknown }, bhs: Buffer): void {
  putU32(bhs, 24, s, 'statSN', p.statSN);
  putU32(bhs, 28, s, 'expCmdSN', p.expCmdSN);
  putU32(bhs, 32, s, 'maxCmdSN', p.maxCmdSN);
}

// ------------------------------------------------------------------------------------------
// SCSI Command (RFC 7143 11.3)

const SCSI_COMMAND = 'SCSI Command PDU';

export interface ScsiCommandPdu extends LunField {
  opcode: IscsiOpcode.SCSI_COMMAND;
  immediate: boolean;
  /** F: no unsolicited Data-Out PDUs follow. */
  final: boolean;
  /** R: the command expects input data. */
  read: boolean;
  /** W: the command expects output data. */
  write: boolean;
  /** ATTR: TaskAttribute (5–7 reserved). */
  attr: number;
  initiatorTaskTag: number;
  expectedDataTransferLength: number;
  cmdSN: number;
  expStatSN: number;
  /** The CDB: BHS bytes 32–47 (short CDBs are zero-padded there), then the Extended CDB AHS. */
  cdb: Buffer;
  /** From the Bidirectional Read Expected Data Transfer Length AHS, when present. */
  bidirectionalReadExpectedDataTransferLength: number | undefined;
  /** Immediate data. */
  data: Buffer;
}
export type ScsiCommandInit = Init<
  ScsiCommandPdu,
  'immediate' | 'final' | 'read' | 'write' | 'attr' | 'lun' | 'lunRaw' | 'bidirectionalReadExpectedDataTransferLength' | 'data'
>;

export function encodeScsiCommand(p: ScsiCommandInit): RawPdu {
  const s = SCSI_COMMAND;
  const final = p.final ?? true;
  const read = p.read ?? false;
  const write = p.write ?? false;
  const bidi = p.bidirectionalReadExpectedDataTransferLength;
  if (!write && !final) throw new EncodeError(s, 'final', 'must be true when write is false (RFC 7143 11.3.1)');
  const edtl = uint(s, 'expectedDataTransferLength', p.expectedDataTransferLength, 32);
  if (!read && !write && (edtl !== 0 || (bidi ?? 0) !== 0)) {
    throw new EncodeError(s, 'read', 'read or write must be set when a transfer length is not 0 (RFC 7143 11.3.1)');
  }
  const bhs = newBhs(
    IscsiOpcode.SCSI_COMMAND,
    p.immediate ?? false,
    (final ? 0x80 : 0) | (read ? 0x40 : 0) | (write ? 0x20 : 0) | uint(s, 'attr', p.attr ?? TaskAttribute.SIMPLE, 3),
  );
  putLun(bhs, s, p);
  putU32(bhs, 16, s, 'initiatorTaskTag', p.initiatorTaskTag);
  bhs.writeUInt32BE(edtl, 20);
  putU32(bhs, 24, s, 'cmdSN', p.cmdSN);
  putU32(bhs, 28, s, 'expStatSN', p.expStatSN);
  const cdb = buf(s, 'cdb', p.cdb);
  if (cdb.length === 0) throw new EncodeError(s, 'cdb', 'must not be empty');
  cdb.copy(bhs, 32, 0, Math.min(cdb.length, 16));
  // RFC 7143 11.2.2: AHS = AHSLength (2 bytes, not counting itself, AHSType or padding), AHSType,
  // AHS-specific bytes, padding to 4. Extended CDB first, as Linux's initiator sends them.
  const segments: Buffer[] = [];
  if (cdb.length > 16) {
    const ext = cdb.subarray(16);
    const ahsLength = ext.length + 1; // RFC 7143 11.2.2.3: AHSLength = CDBLength - 15
    if (ahsLength > 0xffff) throw new EncodeError(s, 'cdb', `${cdb.length} bytes do not fit an Extended CDB AHS`);
    const seg = Buffer.alloc(padded(3 + ahsLength));
    seg.writeUInt16BE(ahsLength, 0);
    seg[2] = AhsType.EXTENDED_CDB;
    ext.copy(seg, 4);
    segments.push(seg);
  }
  if (bidi !== undefined) {
    const seg = Buffer.alloc(8); // RFC 7143 11.2.2.4: AHSLength 5
    seg.writeUInt16BE(5, 0);
    seg[2] = AhsType.BIDIRECTIONAL_READ_EXPECTED_DATA_TRANSFER_LENGTH;
    seg.writeUInt32BE(uint(s, 'bidirectionalReadExpectedDataTransferLength', bidi, 32), 4);
    segments.push(seg);
  }
  const ahs = segments.length === 0 ? EMPTY : Buffer.concat(segments);
  if (ahs.length > MAX_AHS_LENGTH) throw new EncodeError(s, 'cdb', `${cdb.length} bytes need more AHS than TotalAHSLength holds`);
  return finish(s, bhs, ahs, p.data ?? EMPTY);
}

export function decodeScsiCommand(raw: RawPdu): ScsiCommandPdu {
  const s = SCSI_COMMAND;
  const bhs = header(raw, IscsiOpcode.SCSI_COMMAND, s, { ahs: true, data: true });
  const final = (bhs[1] & 0x80) !== 0;
  const read = (bhs[1] & 0x40) !== 0;
  const write = (bhs[1] & 0x20) !== 0;
  if (!write && !final) throw new DecodeError(s, 1, 'W and F are both 0 (RFC 7143 11.3.1)');
  const { ahs } = raw;
  let ext: Buffer | undefined;
  let bidi: number | undefined;
  for (let pos = 0; pos < ahs.length; ) {
    const at = BHS_LENGTH + pos;
    if (ahs.length - pos < 4) throw new DecodeError(s, BHS_LENGTH + ahs.length, 'AHS cut short');
    const ahsLength = ahs.readUInt16BE(pos);
    const type = ahs[pos + 2];
    const size = padded(3 + ahsLength);
    if (pos + size > ahs.length) {
      throw new DecodeError(s, at, `AHSLength ${ahsLength} runs past the ${ahs.length}-byte AHS`);
    }
    if (type === AhsType.EXTENDED_CDB) {
      if (ext !== undefined) throw new DecodeError(s, at + 2, 'a second Extended CDB AHS');
      if (ahsLength < 2) throw new DecodeError(s, at, `Extended CDB AHSLength ${ahsLength} holds no CDB bytes`);
      ext = ahs.subarray(pos + 4, pos + 3 + ahsLength);
    } else if (type === AhsType.BIDIRECTIONAL_READ_EXPECTED_DATA_TRANSFER_LENGTH) {
      if (bidi !== undefined) throw new DecodeError(s, at + 2, 'a second Bidirectional Read Expected Data Transfer Length AHS');
      if (ahsLength !== 5) throw new DecodeError(s, at, `Bidirectional Read AHSLength must be 5, got ${ahsLength}`);
      bidi = ahs.readUInt32BE(pos + 4);
    } else {
      throw new DecodeError(s, at + 2, `AHSType ${type} is not defined (RFC 7143 11.2.2.1)`);
    }
    pos += size;
  }
  const expectedDataTransferLength = bhs.readUInt32BE(20);
  if (!read && !write && (expectedDataTransferLength !== 0 || (bidi ?? 0) !== 0)) {
    throw new DecodeError(s, 1, 'R and W are both 0 with a transfer length that is not 0 (RFC 7143 11.3.1)');
  }
  return {
    opcode: IscsiOpcode.SCSI_COMMAND,
    immediate: (bhs[0] & 0x40) !== 0,
    final,
    read,
    write,
    attr: bhs[1] & 0x07,
    ...readLun(bhs),
    initiatorTaskTag: bhs.readUInt32BE(16),
    expectedDataTransferLength,
    cmdSN: bhs.readUInt32BE(24),
    expStatSN: bhs.readUInt32BE(28),
    cdb: ext === undefined ? Buffer.from(bhs.subarray(32, 48)) : Buffer.concat([bhs.subarray(32, 48), ext]),
    bidirectionalReadExpectedDataTransferLength: bidi,
    data: raw.data,
  };
}

// ------------------------------------------------------------------------------------------
// SCSI Response (RFC 7143 11.4)

const SCSI_RESPONSE = 'SCSI Response PDU';

export interface ScsiResponsePdu {
  opcode: IscsiOpcode.SCSI_RESPONSE;
  /** o: Bidirectional Read Residual Overflow. */
  bidiReadResidualOverflow: boolean;
  /** u: Bidirectional Read Residual Underflow. */
  bidiReadResidualUnderflow: boolean;
  /** O: Residual Overflow. */
  residualOverflow: boolean;
  /** U: Residual Underflow. */
  residualUnderflow: boolean;
  /** ScsiResponseCode. */
  response: number;
  /** SCSI status (SAM); valid when response is COMMAND_COMPLETED_AT_TARGET. */
  status: number;
  initiatorTaskTag: number;
  snackTag: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  expDataSN: number;
  bidiReadResidualCount: number;
  residualCount: number;
  /** Sense data (RFC 7143 11.4.7.2), empty when none. */
  sense: Buffer;
  /** Response data after the sense data (RFC 7143 11.4.7), empty when none. */
  responseData: Buffer;
}
export type ScsiResponseInit = Init<
  ScsiResponsePdu,
  | 'bidiReadResidualOverflow'
  | 'bidiReadResidualUnderflow'
  | 'residualOverflow'
  | 'residualUnderflow'
  | 'response'
  | 'snackTag'
  | 'expDataSN'
  | 'bidiReadResidualCount'
  | 'residualCount'
  | 'sense'
  | 'responseData'
>;

export function encodeScsiResponse(p: ScsiResponseInit): RawPdu {
  const s = SCSI_RESPONSE;
  if (p.residualOverflow && p.residualUnderflow) {
    throw new EncodeError(s, 'residualOverflow', 'O and U are mutually exclusive (RFC 7143 11.4.1)');
  }
  if (p.bidiReadResidualOverflow && p.bidiReadResidualUnderflow) {
    throw new EncodeError(s, 'bidiReadResidualOverflow', 'o and u are mutually exclusive (RFC 7143 11.4.1)');
  }
  const flags =
    0x80 |
    (p.bidiReadResidualOverflow ? 0x10 : 0) |
    (p.bidiReadResidualUnderflow ? 0x08 : 0) |
    (p.residualOverflow ? 0x04 : 0) |
    (p.residualUnderflow ? 0x02 : 0);
  const bhs = newBhs(IscsiOpcode.SCSI_RESPONSE, false, flags);
  bhs[2] = uint(s, 'response', p.response ?? ScsiResponseCode.COMMAND_COMPLETED_AT_TARGET, 8);
  bhs[3] = uint(s, 'status', p.status, 8);
  putU32(bhs, 16, s, 'initiatorTaskTag', p.initiatorTaskTag);
  putU32(bhs, 20, s, 'snackTag', p.snackTag ?? 0);
  checkSequence(s, p, bhs);
  putU32(bhs, 36, s, 'expDataSN', p.expDataSN ?? 0);
  putU32(bhs, 40, s, 'bidiReadResidualCount', p.bidiReadResidualCount ?? 0);
  putU32(bhs, 44, s, 'residualCount', p.residualCount ?? 0);
  return finish(s, bhs, EMPTY, senseSegment(s, p.sense, p.responseData, 'responseData'));
}

export function decodeScsiResponse(raw: RawPdu): ScsiResponsePdu {
  const s = SCSI_RESPONSE;
  const bhs = header(raw, IscsiOpcode.SCSI_RESPONSE, s, { data: true });
  const f = bhs[1];
  if ((f & 0x06) === 0x06) throw new DecodeError(s, 1, 'O and U are both set (RFC 7143 11.4.1)');
  if ((f & 0x18) === 0x18) throw new DecodeError(s, 1, 'o and u are both set (RFC 7143 11.4.1)');
  const { sense, rest } = readSenseSegment(s, raw);
  return {
    opcode: IscsiOpcode.SCSI_RESPONSE,
    bidiReadResidualOverflow: (f & 0x10) !== 0,
    bidiReadResidualUnderflow: (f & 0x08) !== 0,
    residualOverflow: (f & 0x04) !== 0,
    residualUnderflow: (f & 0x02) !== 0,
    response: bhs[2],
    status: bhs[3],
    initiatorTaskTag: bhs.readUInt32BE(16),
    snackTag: bhs.readUInt32BE(20),
    statSN: bhs.readUInt32BE(24),
    expCmdSN: bhs.readUInt32BE(28),
    maxCmdSN: bhs.readUInt32BE(32),
    expDataSN: bhs.readUInt32BE(36),
    bidiReadResidualCount: bhs.readUInt32BE(40),
    residualCount: bhs.readUInt32BE(44),
    sense,
    responseData: rest,
  };
}

// ------------------------------------------------------------------------------------------
// Task Management Function Request / Response (RFC 7143 11.5, 11.6)

const TMF_REQUEST = 'Task Management Function Request PDU';
const TMF_RESPONSE = 'Task Management Function Response PDU';

export interface TaskManagementRequestPdu extends LunField {
  opcode: IscsiOpcode.TASK_MANAGEMENT_REQUEST;
  immediate: boolean;
  /** TmfFunction (7 bits). */
  function: number;
  initiatorTaskTag: number;
  /** The task to abort (ABORT TASK), else 0xffffffff. */
  referencedTaskTag: number;
  cmdSN: number;
  expStatSN: number;
  refCmdSN: number;
  expDataSN: number;
}
export type TaskManagementRequestInit = Init<
  TaskManagementRequestPdu,
  'immediate' | 'lun' | 'lunRaw' | 'referencedTaskTag' | 'refCmdSN' | 'expDataSN'
>;

export function encodeTaskManagementRequest(p: TaskManagementRequestInit): RawPdu {
  const s = TMF_REQUEST;
  const bhs = newBhs(IscsiOpcode.TASK_MANAGEMENT_REQUEST, p.immediate ?? true, 0x80 | uint(s, 'function', p.function, 7));
  putLun(bhs, s, p);
  putU32(bhs, 16, s, 'initiatorTaskTag', p.initiatorTaskTag);
  putU32(bhs, 20, s, 'referencedTaskTag', p.referencedTaskTag ?? RESERVED_TAG);
  putU32(bhs, 24, s, 'cmdSN', p.cmdSN);
  putU32(bhs, 28, s, 'expStatSN', p.expStatSN);
  putU32(bhs, 32, s, 'refCmdSN', p.refCmdSN ?? 0);
  putU32(bhs, 36, s, 'expDataSN', p.expDataSN ?? 0);
  return finish(s, bhs, EMPTY, EMPTY);
}

export function decodeTaskManagementRequest(raw: RawPdu): TaskManagementRequestPdu {
  const bhs = header(raw, IscsiOpcode.TASK_MANAGEMENT_REQUEST, TMF_REQUEST, {});
  return {
    opcode: IscsiOpcode.TASK_MANAGEMENT_REQUEST,
    immediate: (bhs[0] & 0x40) !== 0,
    function: bhs[1] & 0x7f,
    ...readLun(bhs),
    initiatorTaskTag: bhs.readUInt32BE(16),
    referencedTaskTag: bhs.readUInt32BE(20),
    cmdSN: bhs.readUInt32BE(24),
    expStatSN: bhs.readUInt32BE(28),
    refCmdSN: bhs.readUInt32BE(32),
    expDataSN: bhs.readUInt32BE(36),
  };
}

export interface TaskManagementResponsePdu {
  opcode: IscsiOpcode.TASK_MANAGEMENT_RESPONSE;
  /** TmfResponse. */
  response: number;
  initiatorTaskTag: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
}
export type TaskManagementResponseInit = Init<TaskManagementResponsePdu, never>;

export function encodeTaskManagementResponse(p: TaskManagementResponseInit): RawPdu {
  const s = TMF_RESPONSE;
  const bhs = newBhs(IscsiOpcode.TASK_MANAGEMENT_RESPONSE, false, 0x80);
  bhs[2] = uint(s, 'response', p.response, 8);
  putU32(bhs, 16, s, 'initiatorTaskTag', p.initiatorTaskTag);
  checkSequence(s, p, bhs);
  return finish(s, bhs, EMPTY, EMPTY);
}

export function decodeTaskManagementResponse(raw: RawPdu): TaskManagementResponsePdu {
  const bhs = header(raw, IscsiOpcode.TASK_MANAGEMENT_RESPONSE, TMF_RESPONSE, {});
  return {
    opcode: IscsiOpcode.TASK_MANAGEMENT_RESPONSE,
    response: bhs[2],
    initiatorTaskTag: bhs.readUInt32BE(16),
    statSN: bhs.readUInt32BE(24),
    expCmdSN: bhs.readUInt32BE(28),
    maxCmdSN: bhs.readUInt32BE(32),
  };
}

// ------------------------------------------------------------------------------------------
// SCSI Data-Out / Data-In (RFC 7143 11.7)

const DATA_OUT = 'SCSI Data-Out PDU';
const DATA_IN = 'SCSI Data-In PDU';

export interface DataOutPdu extends LunField {
  opcode: IscsiOpcode.SCSI_DATA_OUT;
  /** F: the last PDU of the sequence (unsolicited burst or one R2T's data). */
  final: boolean;
  initiatorTaskTag: number;
  /** The R2T's tag, or 0xffffffff for unsolicited data. */
  targetTransferTag: number;
  expStatSN: number;
  dataSN: number;
  bufferOffset: number;
  data: Buffer;
}
export type DataOutInit = Init<DataOutPdu, 'final' | 'lun' | 'lunRaw' | 'targetTransferTag'>;

export function encodeDataOut(p: DataOutInit): RawPdu {
  const s = DATA_OUT;
  const bhs = newBhs(IscsiOpcode.SCSI_DATA_OUT, false, (p.final ?? true) ? 0x80 : 0);
  putLun(bhs, s, p);
  putU32(bhs, 16, s, 'initiatorTaskTag', p.initiatorTaskTag);
  putU32(bhs, 20, s, 'targetTransferTag', p.targetTransferTag ?? RESERVED_TAG);
  putU32(bhs, 28, s, 'expStatSN', p.expStatSN);
  putU32(bhs, 36, s, 'dataSN', p.dataSN);
  putU32(bhs, 40, s, 'bufferOffset', p.bufferOffset);
  return finish(s, bhs, EMPTY, p.data);
}

export function decodeDataOut(raw: RawPdu): DataOutPdu {
  const bhs = header(raw, IscsiOpcode.SCSI_DATA_OUT, DATA_OUT, { data: true });
  return {
    opcode: IscsiOpcode.SCSI_DATA_OUT,
    final: (bhs[1] & 0x80) !== 0,
    ...readLun(bhs),
    initiatorTaskTag: bhs.readUInt32BE(16),
    targetTransferTag: bhs.readUInt32BE(20),
    expStatSN: bhs.readUInt32BE(28),
    dataSN: bhs.readUInt32BE(36),
    bufferOffset: bhs.readUInt32BE(40),
    data: raw.data,
  };
}

export interface DataInPdu extends LunField {
  opcode: IscsiOpcode.SCSI_DATA_IN;
  /** F: the last PDU of the sequence. */
  final: boolean;
  /** A: the target asks for a DataACK SNACK (ErrorRecoveryLevel ≥ 1). */
  acknowledge: boolean;
  /** O: Residual Overflow (valid with status only). */
  residualOverflow: boolean;
  /** U: Residual Underflow (valid with status only). */
  residualUnderflow: boolean;
  /**
   * The SCSI status when the S bit is set ("phase collapse", RFC 7143 11.7.3: status sent with
   * the last data, no SCSI Response follows), else undefined.
   */
  status: number | undefined;
  initiatorTaskTag: number;
  /** 0xffffffff unless `acknowledge` is set. */
  targetTransferTag: number;
  /** StatSN (meaningful only with status). */
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  dataSN: number;
  bufferOffset: number;
  residualCount: number;
  data: Buffer;
}
export type DataInInit = Init<
  DataInPdu,
  | 'final'
  | 'acknowledge'
  | 'residualOverflow'
  | 'residualUnderflow'
  | 'status'
  | 'lun'
  | 'lunRaw'
  | 'targetTransferTag'
  | 'statSN'
  | 'residualCount'
>;

export function encodeDataIn(p: DataInInit): RawPdu {
  const s = DATA_IN;
  const withStatus = p.status !== undefined;
  const final = p.final ?? true;
  // RFC 7143 11.7.3: S needs F; O and U are valid only with the status.
  if (withStatus && !final) throw new EncodeError(s, 'final', 'must be true when status is sent (S bit)');
  if ((p.residualOverflow || p.residualUnderflow) && !withStatus) {
    throw new EncodeError(s, 'residualOverflow', 'O and U are valid only with status (S bit)');
  }
  if (p.residualOverflow && p.residualUnderflow) {
    throw new EncodeError(s, 'residualOverflow', 'O and U are mutually exclusive (RFC 7143 11.4.1)');
  }
  const flags =
    (final ? 0x80 : 0) |
    (p.acknowledge ? 0x40 : 0) |
    (p.residualOverflow ? 0x04 : 0) |
    (p.residualUnderflow ? 0x02 : 0) |
    (withStatus ? 0x01 : 0);
  const bhs = newBhs(IscsiOpcode.SCSI_DATA_IN, false, flags);
  if (withStatus) bhs[3] = uint(s, 'status', p.status, 8);
  putLun(bhs, s, p);
  putU32(bhs, 16, s, 'initiatorTaskTag', p.initiatorTaskTag);
  putU32(bhs, 20, s, 'targetTransferTag', p.targetTransferTag ?? RESERVED_TAG);
  checkSequence(s, { ...p, statSN: p.statSN ?? 0 }, bhs);
  putU32(bhs, 36, s, 'dataSN', p.dataSN);
  putU32(bhs, 40, s, 'bufferOffset', p.bufferOffset);
  putU32(bhs, 44, s, 'residualCount', p.residualCount ?? 0);
  return finish(s, bhs, EMPTY, p.data);
}

export function decodeDataIn(raw: RawPdu): DataInPdu {
  const s = DATA_IN;
  const bhs = header(raw, IscsiOpcode.SCSI_DATA_IN, s, { data: true });
  const f = bhs[1];
  const withStatus = (f & 0x01) !== 0;
  if (withStatus && (f & 0x80) === 0) throw new DecodeError(s, 1, 'S is set without F (RFC 7143 11.7.3)');
  if ((f & 0x06) === 0x06) throw new DecodeError(s, 1, 'O and U are both set (RFC 7143 11.4.1)');
  return {
    opcode: IscsiOpcode.SCSI_DATA_IN,
    final: (f & 0x80) !== 0,
    acknowledge: (f & 0x40) !== 0,
    residualOverflow: (f & 0x04) !== 0,
    residualUnderflow: (f & 0x02) !== 0,
    status: withStatus ? bhs[3] : undefined,
    ...readLun(bhs),
    initiatorTaskTag: bhs.readUInt32BE(16),
    targetTransferTag: bhs.readUInt32BE(20),
    statSN: bhs.readUInt32BE(24),
    expCmdSN: bhs.readUInt32BE(28),
    maxCmdSN: bhs.readUInt32BE(32),
    dataSN: bhs.readUInt32BE(36),
    bufferOffset: bhs.readUInt32BE(40),
    residualCount: bhs.readUInt32BE(44),
    data: raw.data,
  };
}

// ------------------------------------------------------------------------------------------
// Ready To Transfer (RFC 7143 11.8)

const R2T = 'R2T PDU';

export interface R2TPdu extends LunField {
  opcode: IscsiOpcode.R2T;
  initiatorTaskTag: number;
  targetTransferTag: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  r2tSN: number;
  bufferOffset: number;
  desiredDataTransferLength: number;
}
export type R2TInit = Init<R2TPdu, 'lun' | 'lunRaw'>;

export function encodeR2T(p: R2TInit): RawPdu {
  const s = R2T;
  const bhs = newBhs(IscsiOpcode.R2T, false, 0x80);
  putLun(bhs, s, p);
  putU32(bhs, 16, s, 'initiatorTaskTag', p.initiatorTaskTag);
  putU32(bhs, 20, s, 'targetTransferTag', p.targetTransferTag);
  checkSequence(s, p, bhs);
  putU32(bhs, 36, s, 'r2tSN', p.r2tSN);
  putU32(bhs, 40, s, 'bufferOffset', p.bufferOffset);
  putU32(bhs, 44, s, 'desiredDataTransferLength', p.desiredDataTransferLength);
  return finish(s, bhs, EMPTY, EMPTY);
}

export function decodeR2T(raw: RawPdu): R2TPdu {
  const bhs = header(raw, IscsiOpcode.R2T, R2T, {});
  return {
    opcode: IscsiOpcode.R2T,
    ...readLun(bhs),
    initiatorTaskTag: bhs.readUInt32BE(16),
    targetTransferTag: bhs.readUInt32BE(20),
    statSN: bhs.readUInt32BE(24),
    expCmdSN: bhs.readUInt32BE(28),
    maxCmdSN: bhs.readUInt32BE(32),
    r2tSN: bhs.readUInt32BE(36),
    bufferOffset: bhs.readUInt32BE(40),
    desiredDataTransferLength: bhs.readUInt32BE(44),
  };
}

// ------------------------------------------------------------------------------------------
// Asynchronous Message (RFC 7143 11.9)

const ASYNC = 'Asynchronous Message PDU';

export interface AsyncMessagePdu extends LunField {
  opcode: IscsiOpcode.ASYNC_MESSAGE;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  /** AsyncEvent. */
  asyncEvent: number;
  asyncVCode: number;
  parameter1: number;
  parameter2: number;
  parameter3: number;
  /** Sense data (for SCSI_ASYNC_EVENT), empty when none. */
  sense: Buffer;
  /** iSCSI event data after the sense data, empty when none. */
  eventData: Buffer;
}
export type AsyncMessageInit = Init<
  AsyncMessagePdu,
  'lun' | 'lunRaw' | 'asyncVCode' | 'parameter1' | 'parameter2' | 'parameter3' | 'sense' | 'eventData'
>;

export function encodeAsyncMessage(p: AsyncMessageInit): RawPdu {
  const s = ASYNC;
  const bhs = newBhs(IscsiOpcode.ASYNC_MESSAGE, false, 0x80);
  putLun(bhs, s, p);
  bhs.writeUInt32BE(RESERVED_TAG, 16); // RFC 7143 11.9: the Initiator Task Tag is 0xffffffff
  checkSequence(s, p, bhs);
  bhs[36] = uint(s, 'asyncEvent', p.asyncEvent, 8);
  bhs[37] = uint(s, 'asyncVCode', p.asyncVCode ?? 0, 8);
  bhs.writeUInt16BE(uint(s, 'parameter1', p.parameter1 ?? 0, 16), 38);
  bhs.writeUInt16BE(uint(s, 'parameter2', p.parameter2 ?? 0, 16), 40);
  bhs.writeUInt16BE(uint(s, 'parameter3', p.parameter3 ?? 0, 16), 42);
  return finish(s, bhs, EMPTY, senseSegment(s, p.sense, p.eventData, 'eventData'));
}

export function decodeAsyncMessage(raw: RawPdu): AsyncMessagePdu {
  const s = ASYNC;
  const bhs = header(raw, IscsiOpcode.ASYNC_MESSAGE, s, { data: true });
  if (bhs.readUInt32BE(16) !== RESERVED_TAG) throw new DecodeError(s, 16, 'the Initiator Task Tag must be 0xffffffff');
  const { sense, rest } = readSenseSegment(s, raw);
  return {
    opcode: IscsiOpcode.ASYNC_MESSAGE,
    ...readLun(bhs),
    statSN: bhs.readUInt32BE(24),
    expCmdSN: bhs.readUInt32BE(28),
    maxCmdSN: bhs.readUInt32BE(32),
    asyncEvent: bhs[36],
    asyncVCode: bhs[37],
    parameter1: bhs.readUInt16BE(38),
    parameter2: bhs.readUInt16BE(40),
    parameter3: bhs.readUInt16BE(42),
    sense,
    eventData: rest,
  };
}

// ------------------------------------------------------------------------------------------
// Text Request / Response (RFC 7143 11.10, 11.11)

const TEXT_REQUEST = 'Text Request PDU';
const TEXT_RESPONSE = 'Text Response PDU';

export interface TextRequestPdu extends LunField {
  opcode: IscsiOpcode.TEXT_REQUEST;
  immediate: boolean;
  /** F: the last Text Request of the exchange. */
  final: boolean;
  /** C: the text continues in the next PDU. */
  continue: boolean;
  initiatorTaskTag: number;
  /** 0xffffffff to start, or the tag the target gave to continue. */
  targetTransferTag: number;
  cmdSN: number;
  expStatSN: number;
  /** key=value pairs, each followed by a NUL (RFC 7143 6.1). */
  data: Buffer;
}
export type TextRequestInit = Init<
  TextRequestPdu,
  'immediate' | 'final' | 'continue' | 'lun' | 'lunRaw' | 'targetTransferTag' | 'data'
>;

export function encodeTextRequest(p: TextRequestInit): RawPdu {
  const s = TEXT_REQUEST;
  const final = p.final ?? true;
  const cont = p.continue ?? false;
  if (final && cont) throw new EncodeError(s, 'continue', 'C and F must not both be set (RFC 7143 11.10.2)');
  const bhs = newBhs(IscsiOpcode.TEXT_REQUEST, p.immediate ?? false, (final ? 0x80 : 0) | (cont ? 0x40 : 0));
  putLun(bhs, s, p);
  putU32(bhs, 16, s, 'initiatorTaskTag', p.initiatorTaskTag);
  putU32(bhs, 20, s, 'targetTransferTag', p.targetTransferTag ?? RESERVED_TAG);
  putU32(bhs, 24, s, 'cmdSN', p.cmdSN);
  putU32(bhs, 28, s, 'expStatSN', p.expStatSN);
  return finish(s, bhs, EMPTY, p.data ?? EMPTY);
}

export function decodeTextRequest(raw: RawPdu): TextRequestPdu {
  const s = TEXT_REQUEST;
  const bhs = header(raw, IscsiOpcode.TEXT_REQUEST, s, { data: true });
  if ((bhs[1] & 0xc0) === 0xc0) throw new DecodeError(s, 1, 'C and F are both set (RFC 7143 11.10.2)');
  return {
    opcode: IscsiOpcode.TEXT_REQUEST,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (bhs[1] & 0x80) !== 0,
    continue: (bhs[1] & 0x40) !== 0,
    ...readLun(bhs),
    initiatorTaskTag: bhs.readUInt32BE(16),
    targetTransferTag: bhs.readUInt32BE(20),
    cmdSN: bhs.readUInt32BE(24),
    expStatSN: bhs.readUInt32BE(28),
    data: raw.data,
  };
}

export interface TextResponsePdu extends LunField {
  opcode: IscsiOpcode.TEXT_RESPONSE;
  final: boolean;
  continue: boolean;
  initiatorTaskTag: number;
  /** 0xffffffff when final, else a tag the initiator returns to get more. */
  targetTransferTag: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  data: Buffer;
}
export type TextResponseInit = Init<TextResponsePdu, 'final' | 'continue' | 'lun' | 'lunRaw' | 'targetTransferTag' | 'data'>;

export function encodeTextResponse(p: TextResponseInit): RawPdu {
  const s = TEXT_RESPONSE;
  const final = p.final ?? true;
  const cont = p.continue ?? false;
  if (final && cont) throw new EncodeError(s, 'continue', 'C and F must not both be set (RFC 7143 11.11.2)');
  const bhs = newBhs(IscsiOpcode.TEXT_RESPONSE, false, (final ? 0x80 : 0) | (cont ? 0x40 : 0));
  putLun(bhs, s, p);
  putU32(bhs, 16, s, 'initiatorTaskTag', p.initiatorTaskTag);
  putU32(bhs, 20, s, 'targetTransferTag', p.targetTransferTag ?? RESERVED_TAG);
  checkSequence(s, p, bhs);
  return finish(s, bhs, EMPTY, p.data ?? EMPTY);
}

export function decodeTextResponse(raw: RawPdu): TextResponsePdu {
  const s = TEXT_RESPONSE;
  const bhs = header(raw, IscsiOpcode.TEXT_RESPONSE, s, { data: true });
  if ((bhs[1] & 0xc0) === 0xc0) throw new DecodeError(s, 1, 'C and F are both set (RFC 7143 11.11.2)');
  return {
    opcode: IscsiOpcode.TEXT_RESPONSE,
    final: (bhs[1] & 0x80) !== 0,
    continue: (bhs[1] & 0x40) !== 0,
    ...readLun(bhs),
    initiatorTaskTag: bhs.readUInt32BE(16),
    targetTransferTag: bhs.readUInt32BE(20),
    statSN: bhs.readUInt32BE(24),
    expCmdSN: bhs.readUInt32BE(28),
    maxCmdSN: bhs.readUInt32BE(32),
    data: raw.data,
  };
}

// ------------------------------------------------------------------------------------------
// Login Request / Response (RFC 7143 11.12, 11.13)

const LOGIN_REQUEST = 'Login Request PDU';
const LOGIN_RESPONSE = 'Login Response PDU';

/** Byte 1 of Login PDUs: T, C, CSG, NSG (RFC 7143 11.12.1–11.12.3). */
function loginFlags(s: string, p: { transit?: boolean; continue?: boolean; csg: number; nsg: number }): number {
  const transit = p.transit ?? false;
  const cont = p.continue ?? false;
  if (transit && cont) throw new EncodeError(s, 'continue', 'T and C must not both be set (RFC 7143 11.12.2)');
  return (transit ? 0x80 : 0) | (cont ? 0x40 : 0) | (uint(s, 'csg', p.csg, 2) << 2) | uint(s, 'nsg', p.nsg, 2);
}

function readLoginFlags(s: string, bhs: Buffer): { transit: boolean; continue: boolean; csg: number; nsg: number } {
  const f = bhs[1];
  if ((f & 0xc0) === 0xc0) throw new DecodeError(s, 1, 'T and C are both set (RFC 7143 11.12.2)');
  return { transit: (f & 0x80) !== 0, continue: (f & 0x40) !== 0, csg: (f >> 2) & 0x03, nsg: f & 0x03 };
}

export interface LoginRequestPdu {
  opcode: IscsiOpcode.LOGIN_REQUEST;
  /** T: the initiator is ready to move to stage `nsg`. */
  transit: boolean;
  /** C: the text continues in the next PDU. */
  continue: boolean;
  /** Current stage (LoginStage). */
  csg: number;
  /** Next stage (LoginStage), meaningful when `transit`. */
  nsg: number;
  versionMax: number;
  versionMin: number;
  /** ISID (RFC 7143 11.12.5): 6 bytes, T/A/B/C/D fields. */
  isid: Buffer;
  /** TSIH: 0 for a new session. */
  tsih: number;
  initiatorTaskTag: number;
  /** CID: the connection's ID within the session. */
  cid: number;
  cmdSN: number;
  expStatSN: number;
  /** key=value pairs, each followed by a NUL (RFC 7143 6.1). */
  data: Buffer;
}
export type LoginRequestInit = Init<LoginRequestPdu, 'transit' | 'continue' | 'versionMax' | 'versionMin' | 'tsih' | 'cid' | 'expStatSN' | 'data'>;

export function encodeLoginRequest(p: LoginRequestInit): RawPdu {
  const s = LOGIN_REQUEST;
  // RFC 7143 11.12: the I bit of a Login Request is always 1.
  const bhs = newBhs(IscsiOpcode.LOGIN_REQUEST, true, loginFlags(s, p));
  bhs[2] = uint(s, 'versionMax', p.versionMax ?? 0, 8);
  bhs[3] = uint(s, 'versionMin', p.versionMin ?? 0, 8);
  buf(s, 'isid', p.isid, 6).copy(bhs, 8);
  bhs.writeUInt16BE(uint(s, 'tsih', p.tsih ?? 0, 16), 14);
  putU32(bhs, 16, s, 'initiatorTaskTag', p.initiatorTaskTag);
  bhs.writeUInt16BE(uint(s, 'cid', p.cid ?? 0, 16), 20);
  putU32(bhs, 24, s, 'cmdSN', p.cmdSN);
  putU32(bhs, 28, s, 'expStatSN', p.expStatSN ?? 0);
  return finish(s, bhs, EMPTY, p.data ?? EMPTY);
}

export function decodeLoginRequest(raw: RawPdu): LoginRequestPdu {
  const s = LOGIN_REQUEST;
  const bhs = header(raw, IscsiOpcode.LOGIN_REQUEST, s, { data: true });
  return {
    opcode: IscsiOpcode.LOGIN_REQUEST,
    ...readLoginFlags(s, bhs),
    versionMax: bhs[2],
    versionMin: bhs[3],
    isid: Buffer.from(bhs.subarray(8, 14)),
    tsih: bhs.readUInt16BE(14),
    initiatorTaskTag: bhs.readUInt32BE(16),
    cid: bhs.readUInt16BE(20),
    cmdSN: bhs.readUInt32BE(24),
    expStatSN: bhs.readUInt32BE(28),
    data: raw.data,
  };
}

export interface LoginResponsePdu {
  opcode: IscsiOpcode.LOGIN_RESPONSE;
  transit: boolean;
  continue: boolean;
  csg: number;
  nsg: number;
  versionMax: number;
  versionActive: number;
  isid: Buffer;
  tsih: number;
  initiatorTaskTag: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  /** LoginStatusClass. */
  statusClass: number;
  /** Status-Detail (see LoginStatus). */
  statusDetail: number;
  data: Buffer;
}
export type LoginResponseInit = Init<
  LoginResponsePdu,
  'transit' | 'continue' | 'versionMax' | 'versionActive' | 'tsih' | 'statusClass' | 'statusDetail' | 'data'
>;

export function encodeLoginResponse(p: LoginResponseInit): RawPdu {
  const s = LOGIN_RESPONSE;
  const bhs = newBhs(IscsiOpcode.LOGIN_RESPONSE, false, loginFlags(s, p));
  bhs[2] = uint(s, 'versionMax', p.versionMax ?? 0, 8);
  bhs[3] = uint(s, 'versionActive', p.versionActive ?? 0, 8);
  buf(s, 'isid', p.isid, 6).copy(bhs, 8);
  bhs.writeUInt16BE(uint(s, 'tsih', p.tsih ?? 0, 16), 14);
  putU32(bhs, 16, s, 'initiatorTaskTag', p.initiatorTaskTag);
  checkSequence(s, p, bhs);
  bhs[36] = uint(s, 'statusClass', p.statusClass ?? LoginStatusClass.SUCCESS, 8);
  bhs[37] = uint(s, 'statusDetail', p.statusDetail ?? 0, 8);
  return finish(s, bhs, EMPTY, p.data ?? EMPTY);
}

export function decodeLoginResponse(raw: RawPdu): LoginResponsePdu {
  const s = LOGIN_RESPONSE;
  const bhs = header(raw, IscsiOpcode.LOGIN_RESPONSE, s, { data: true });
  return {
    opcode: IscsiOpcode.LOGIN_RESPONSE,
    ...readLoginFlags(s, bhs),
    versionMax: bhs[2],
    versionActive: bhs[3],
    isid: Buffer.from(bhs.subarray(8, 14)),
    tsih: bhs.readUInt16BE(14),
    initiatorTaskTag: bhs.readUInt32BE(16),
    statSN: bhs.readUInt32BE(24),
    expCmdSN: bhs.readUInt32BE(28),
    maxCmdSN: bhs.readUInt32BE(32),
    statusClass: bhs[36],
    statusDetail: bhs[37],
    data: raw.data,
  };
}

// ------------------------------------------------------------------------------------------
// Logout Request / Response (RFC 7143 11.14, 11.15)

const LOGOUT_REQUEST = 'Logout Request PDU';
const LOGOUT_RESPONSE = 'Logout Response PDU';

export interface LogoutRequestPdu {
  opcode: IscsiOpcode.LOGOUT_REQUEST;
  immediate: boolean;
  /** LogoutReason (7 bits). */
  reasonCode: number;
  initiatorTaskTag: number;
  /** CID of the connection to close (reserved when closing the session). */
  cid: number;
  cmdSN: number;
  expStatSN: number;
}
export type LogoutRequestInit = Init<LogoutRequestPdu, 'immediate' | 'cid'>;

export function encodeLogoutRequest(p: LogoutRequestInit): RawPdu {
  const s = LOGOUT_REQUEST;
  const bhs = newBhs(IscsiOpcode.LOGOUT_REQUEST, p.immediate ?? false, 0x80 | uint(s, 'reasonCode', p.reasonCode, 7));
  putU32(bhs, 16, s, 'initiatorTaskTag', p.initiatorTaskTag);
  bhs.writeUInt16BE(uint(s, 'cid', p.cid ?? 0, 16), 20);
  putU32(bhs, 24, s, 'cmdSN', p.cmdSN);
  putU32(bhs, 28, s, 'expStatSN', p.expStatSN);
  return finish(s, bhs, EMPTY, EMPTY);
}

export function decodeLogoutRequest(raw: RawPdu): LogoutRequestPdu {
  const bhs = header(raw, IscsiOpcode.LOGOUT_REQUEST, LOGOUT_REQUEST, {});
  return {
    opcode: IscsiOpcode.LOGOUT_REQUEST,
    immediate: (bhs[0] & 0x40) !== 0,
    reasonCode: bhs[1] & 0x7f,
    initiatorTaskTag: bhs.readUInt32BE(16),
    cid: bhs.readUInt16BE(20),
    cmdSN: bhs.readUInt32BE(24),
    expStatSN: bhs.readUInt32BE(28),
  };
}

export interface LogoutResponsePdu {
  opcode: IscsiOpcode.LOGOUT_RESPONSE;
  /** LogoutResponseCode. */
  response: number;
  initiatorTaskTag: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  /** Seconds to wait before reconnecting (RFC 7143 11.15.2). */
  time2Wait: number;
  /** Seconds the connection's tasks stay available for reassignment (RFC 7143 11.15.3). */
  time2Retain: number;
}
export type LogoutResponseInit = Init<LogoutResponsePdu, 'response' | 'time2Wait' | 'time2Retain'>;

export function encodeLogoutResponse(p: LogoutResponseInit): RawPdu {
  const s = LOGOUT_RESPONSE;
  const bhs = newBhs(IscsiOpcode.LOGOUT_RESPONSE, false, 0x80);
  bhs[2] = uint(s, 'response', p.response ?? LogoutResponseCode.CLOSED_SUCCESSFULLY, 8);
  putU32(bhs, 16, s, 'initiatorTaskTag', p.initiatorTaskTag);
  checkSequence(s, p, bhs);
  bhs.writeUInt16BE(uint(s, 'time2Wait', p.time2Wait ?? 0, 16), 40);
  bhs.writeUInt16BE(uint(s, 'time2Retain', p.time2Retain ?? 0, 16), 42);
  return finish(s, bhs, EMPTY, EMPTY);
}

export function decodeLogoutResponse(raw: RawPdu): LogoutResponsePdu {
  const bhs = header(raw, IscsiOpcode.LOGOUT_RESPONSE, LOGOUT_RESPONSE, {});
  return {
    opcode: IscsiOpcode.LOGOUT_RESPONSE,
    response: bhs[2],
    initiatorTaskTag: bhs.readUInt32BE(16),
    statSN: bhs.readUInt32BE(24),
    expCmdSN: bhs.readUInt32BE(28),
    maxCmdSN: bhs.readUInt32BE(32),
    time2Wait: bhs.readUInt16BE(40),
    time2Retain: bhs.readUInt16BE(42),
  };
}

// ------------------------------------------------------------------------------------------
// SNACK Request (RFC 7143 11.16)

const SNACK = 'SNACK Request PDU';

export interface SnackRequestPdu extends LunField {
  opcode: IscsiOpcode.SNACK_REQUEST;
  /** SnackType (4 bits). */
  type: number;
  initiatorTaskTag: number;
  /** Target Transfer Tag (DataACK) or SNACK Tag (R-Data), else 0xffffffff. */
  targetTransferTag: number;
  expStatSN: number;
  begRun: number;
  runLength: number;
}
export type SnackRequestInit = Init<SnackRequestPdu, 'lun' | 'lunRaw' | 'targetTransferTag'>;

export function encodeSnackRequest(p: SnackRequestInit): RawPdu {
  const s = SNACK;
  const bhs = newBhs(IscsiOpcode.SNACK_REQUEST, false, 0x80 | uint(s, 'type', p.type, 4));
  putLun(bhs, s, p);
  putU32(bhs, 16, s, 'initiatorTaskTag', p.initiatorTaskTag);
  putU32(bhs, 20, s, 'targetTransferTag', p.targetTransferTag ?? RESERVED_TAG);
  putU32(bhs, 28, s, 'expStatSN', p.expStatSN);
  putU32(bhs, 40, s, 'begRun', p.begRun);
  putU32(bhs, 44, s, 'runLength', p.runLength);
  return finish(s, bhs, EMPTY, EMPTY);
}

export function decodeSnackRequest(raw: RawPdu): SnackRequestPdu {
  const bhs = header(raw, IscsiOpcode.SNACK_REQUEST, SNACK, {});
  return {
    opcode: IscsiOpcode.SNACK_REQUEST,
    type: bhs[1] & 0x0f,
    ...readLun(bhs),
    initiatorTaskTag: bhs.readUInt32BE(16),
    targetTransferTag: bhs.readUInt32BE(20),
    expStatSN: bhs.readUInt32BE(28),
    begRun: bhs.readUInt32BE(40),
    runLength: bhs.readUInt32BE(44),
  };
}

// ------------------------------------------------------------------------------------------
// Reject (RFC 7143 11.17)

const REJECT = 'Reject PDU';

export interface RejectPdu {
  opcode: IscsiOpcode.REJECT;
  /** RejectReason. */
  reason: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  /** DataSN/R2TSN of the rejected PDU for SNACK rejects (RFC 7143 11.17.2), else 0. */
  dataSN: number;
  /**
   * The data segment: the complete header (BHS and AHS, no digest) of the rejected PDU, at
   * least 48 bytes, possibly followed by vendor-specific data (RFC 7143 11.17).
   */
  header: Buffer;
}
export type RejectInit = Init<RejectPdu, 'dataSN'>;

export function encodeReject(p: RejectInit): RawPdu {
  const s = REJECT;
  const hdr = buf(s, 'header', p.header);
  if (hdr.length < BHS_LENGTH) throw new EncodeError(s, 'header', `must hold the rejected BHS (48 bytes), got ${hdr.length}`);
  const bhs = newBhs(IscsiOpcode.REJECT, false, 0x80);
  bhs[2] = uint(s, 'reason', p.reason, 8);
  bhs.writeUInt32BE(RESERVED_TAG, 16); // RFC 7143 11.17: the Initiator Task Tag is 0xffffffff
  checkSequence(s, p, bhs);
  putU32(bhs, 36, s, 'dataSN', p.dataSN ?? 0);
  return finish(s, bhs, EMPTY, hdr);
}

export function decodeReject(raw: RawPdu): RejectPdu {
  const s = REJECT;
  const bhs = header(raw, IscsiOpcode.REJECT, s, { data: true });
  if (bhs.readUInt32BE(16) !== RESERVED_TAG) throw new DecodeError(s, 16, 'the Initiator Task Tag must be 0xffffffff');
  if (raw.data.length < BHS_LENGTH) {
    throw new DecodeError(s, 5, `DataSegmentLength ${raw.data.length} cannot hold the rejected PDU's BHS`);
  }
  return {
    opcode: IscsiOpcode.REJECT,
    reason: bhs[2],
    statSN: bhs.readUInt32BE(24),
    expCmdSN: bhs.readUInt32BE(28),
    maxCmdSN: bhs.readUInt32BE(32),
    dataSN: bhs.readUInt32BE(36),
    header: raw.data,
  };
}

// ------------------------------------------------------------------------------------------
// NOP-Out / NOP-In (RFC 7143 11.18, 11.19)

const NOP_OUT = 'NOP-Out PDU';
const NOP_IN = 'NOP-In PDU';

export interface NopOutPdu extends LunField {
  opcode: IscsiOpcode.NOP_OUT;
  immediate: boolean;
  /** 0xffffffff when answering a NOP-In (no response wanted), else a new task tag. */
  initiatorTaskTag: number;
  /** The NOP-In's tag being answered, else 0xffffffff. */
  targetTransferTag: number;
  cmdSN: number;
  expStatSN: number;
  /** Ping data, echoed in the NOP-In. */
  data: Buffer;
}
export type NopOutInit = Init<NopOutPdu, 'immediate' | 'lun' | 'lunRaw' | 'targetTransferTag' | 'data'>;

export function encodeNopOut(p: NopOutInit): RawPdu {
  const s = NOP_OUT;
  const immediate = p.immediate ?? true;
  if (p.initiatorTaskTag === RESERVED_TAG && !immediate) {
    throw new EncodeError(s, 'immediate', 'must be true when the Initiator Task Tag is 0xffffffff (RFC 7143 11.18)');
  }
  const bhs = newBhs(IscsiOpcode.NOP_OUT, immediate, 0x80);
  putLun(bhs, s, p);
  putU32(bhs, 16, s, 'initiatorTaskTag', p.initiatorTaskTag);
  putU32(bhs, 20, s, 'targetTransferTag', p.targetTransferTag ?? RESERVED_TAG);
  putU32(bhs, 24, s, 'cmdSN', p.cmdSN);
  putU32(bhs, 28, s, 'expStatSN', p.expStatSN);
  return finish(s, bhs, EMPTY, p.data ?? EMPTY);
}

export function decodeNopOut(raw: RawPdu): NopOutPdu {
  const s = NOP_OUT;
  const bhs = header(raw, IscsiOpcode.NOP_OUT, s, { data: true });
  const immediate = (bhs[0] & 0x40) !== 0;
  const initiatorTaskTag = bhs.readUInt32BE(16);
  if (initiatorTaskTag === RESERVED_TAG && !immediate) {
    throw new DecodeError(s, 0, 'the I bit must be 1 when the Initiator Task Tag is 0xffffffff (RFC 7143 11.18)');
  }
  return {
    opcode: IscsiOpcode.NOP_OUT,
    immediate,
    ...readLun(bhs),
    initiatorTaskTag,
    targetTransferTag: bhs.readUInt32BE(20),
    cmdSN: bhs.readUInt32BE(24),
    expStatSN: bhs.readUInt32BE(28),
    data: raw.data,
  };
}

export interface NopInPdu extends LunField {
  opcode: IscsiOpcode.NOP_IN;
  /** The NOP-Out's tag when answering one, else 0xffffffff. */
  initiatorTaskTag: number;
  /** A tag asking the initiator to answer, else 0xffffffff. */
  targetTransferTag: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  data: Buffer;
}
export type NopInInit = Init<NopInPdu, 'lun' | 'lunRaw' | 'initiatorTaskTag' | 'targetTransferTag' | 'data'>;

export function encodeNopIn(p: NopInInit): RawPdu {
  const s = NOP_IN;
  const bhs = newBhs(IscsiOpcode.NOP_IN, false, 0x80);
  putLun(bhs, s, p);
  putU32(bhs, 16, s, 'initiatorTaskTag', p.initiatorTaskTag ?? RESERVED_TAG);
  putU32(bhs, 20, s, 'targetTransferTag', p.targetTransferTag ?? RESERVED_TAG);
  checkSequence(s, p, bhs);
  return finish(s, bhs, EMPTY, p.data ?? EMPTY);
}

export function decodeNopIn(raw: RawPdu): NopInPdu {
  const bhs = header(raw, IscsiOpcode.NOP_IN, NOP_IN, { data: true });
  return {
    opcode: IscsiOpcode.NOP_IN,
    ...readLun(bhs),
    initiatorTaskTag: bhs.readUInt32BE(16),
    targetTransferTag: bhs.readUInt32BE(20),
    statSN: bhs.readUInt32BE(24),
    expCmdSN: bhs.readUInt32BE(28),
    maxCmdSN: bhs.readUInt32BE(32),
    data: raw.data,
  };
}

// ------------------------------------------------------------------------------------------
// Dispatch by opcode

/** Any PDU an initiator sends, as decoded; switch on `opcode`. */
export type InitiatorPdu =
  | NopOutPdu
  | ScsiCommandPdu
  | TaskManagementRequestPdu
  | LoginRequestPdu
  | TextRequestPdu
  | DataOutPdu
  | LogoutRequestPdu
  | SnackRequestPdu;

/** Any PDU a target sends, as decoded; switch on `opcode`. */
export type TargetPdu =
  | NopInPdu
  | ScsiResponsePdu
  | TaskManagementResponsePdu
  | LoginResponsePdu
  | TextResponsePdu
  | DataInPdu
  | LogoutResponsePdu
  | R2TPdu
  | AsyncMessagePdu
  | RejectPdu;

/**
 * Decodes any initiator PDU by its opcode. An opcode RFC 7143 does not define for initiators
 * is a DecodeError at byte 0 (check `isInitiatorOpcode` first to answer it with a Reject,
 * reason COMMAND_NOT_SUPPORTED, RFC 7143 11.17.1).
 */
export function decodeInitiatorPdu(raw: RawPdu): InitiatorPdu {
  const op = Buffer.isBuffer(raw.bhs) && raw.bhs.length > 0 ? raw.bhs[0] & 0x3f : -1;
  switch (op) {
    case IscsiOpcode.NOP_OUT:
      return decodeNopOut(raw);
    case IscsiOpcode.SCSI_COMMAND:
      return decodeScsiCommand(raw);
    case IscsiOpcode.TASK_MANAGEMENT_REQUEST:
      return decodeTaskManagementRequest(raw);
    case IscsiOpcode.LOGIN_REQUEST:
      return decodeLoginRequest(raw);
    case IscsiOpcode.TEXT_REQUEST:
      return decodeTextRequest(raw);
    case IscsiOpcode.SCSI_DATA_OUT:
      return decodeDataOut(raw);
    case IscsiOpcode.LOGOUT_REQUEST:
      return decodeLogoutRequest(raw);
    case IscsiOpcode.SNACK_REQUEST:
      return decodeSnackRequest(raw);
    default:
      throw new DecodeError(PDU, 0, op < 0 ? 'empty BHS' : `${iscsiOpcodeName(op)} is not an initiator opcode`);
  }
}

/** Decodes any target PDU by its opcode (for tests, fuzzers and peers of our own). */
export function decodeTargetPdu(raw: RawPdu): TargetPdu {
  const op = Buffer.isBuffer(raw.bhs) && raw.bhs.length > 0 ? raw.bhs[0] & 0x3f : -1;
  switch (op) {
    case IscsiOpcode.NOP_IN:
      return decodeNopIn(raw);
    case IscsiOpcode.SCSI_RESPONSE:
      return decodeScsiResponse(raw);
    case IscsiOpcode.TASK_MANAGEMENT_RESPONSE:
      return decodeTaskManagementResponse(raw);
    case IscsiOpcode.LOGIN_RESPONSE:
      return decodeLoginResponse(raw);
    case IscsiOpcode.TEXT_RESPONSE:
      return decodeTextResponse(raw);
    case IscsiOpcode.SCSI_DATA_IN:
      return decodeDataIn(raw);
    case IscsiOpcode.LOGOUT_RESPONSE:
      return decodeLogoutResponse(raw);
    case IscsiOpcode.R2T:
      return decodeR2T(raw);
    case IscsiOpcode.ASYNC_MESSAGE:
      return decodeAsyncMessage(raw);
    case IscsiOpcode.REJECT:
      return decodeReject(raw);
    default:
      throw new DecodeError(PDU, 0, op < 0 ? 'empty BHS' : `${iscsiOpcodeName(op)} is not a target opcode`);
  }
}

/** Encodes a decoded initiator PDU (the inverse of decodeInitiatorPdu). */
export function encodeInitiatorPdu(pdu: InitiatorPdu): RawPdu {
  switch (pdu.opcode) {
    case IscsiOpcode.NOP_OUT:
      return encodeNopOut(pdu);
    case IscsiOpcode.SCSI_COMMAND:
      return encodeScsiCommand(pdu);
    case IscsiOpcode.TASK_MANAGEMENT_REQUEST:
      return encodeTaskManagementRequest(pdu);
    case IscsiOpcode.LOGIN_REQUEST:
      return encodeLoginRequest(pdu);
    case IscsiOpcode.TEXT_REQUEST:
      return encodeTextRequest(pdu);
    case IscsiOpcode.SCSI_DATA_OUT:
      return encodeDataOut(pdu);
    case IscsiOpcode.LOGOUT_REQUEST:
      return encodeLogoutRequest(pdu);
    case IscsiOpcode.SNACK_REQUEST:
      return encodeSnackRequest(pdu);
  }
}

/** Encodes a decoded target PDU (the inverse of decodeTargetPdu). */
export function encodeTargetPdu(pdu: TargetPdu): RawPdu {
  switch (pdu.opcode) {
    case IscsiOpcode.NOP_IN:
      return encodeNopIn(pdu);
    case IscsiOpcode.SCSI_RESPONSE:
      return encodeScsiResponse(pdu);
    case IscsiOpcode.TASK_MANAGEMENT_RESPONSE:
      return encodeTaskManagementResponse(pdu);
    case IscsiOpcode.LOGIN_RESPONSE:
      return encodeLoginResponse(pdu);
    case IscsiOpcode.TEXT_RESPONSE:
      return encodeTextResponse(pdu);
    case IscsiOpcode.SCSI_DATA_IN:
      return encodeDataIn(pdu);
    case IscsiOpcode.LOGOUT_RESPONSE:
      return encodeLogoutResponse(pdu);
    case IscsiOpcode.R2T:
      return encodeR2T(pdu);
    case IscsiOpcode.ASYNC_MESSAGE:
      return encodeAsyncMessage(pdu);
    case IscsiOpcode.REJECT:
      return encodeReject(pdu);
  }
}

/**
 * The error registry (in the manner of Node's lib/internal/errors.js): every error the project
 * raises carries a stable `code`; callers match on `code`, never on message text. Each code maps
 * to one documented CLI exit status (see README "Exit status"). SCSI-caused failures follow
 * ddpt/sg3_utils' numbering by sense key, so scripts need no new table.
 */
// Only the const enum (inlined by tsc): this module sits below src/scsi/, whose codecs import it.
import { SenseKey } from './scsi/constants';

/** CLI exit statuses. Values 2..15 follow ddpt's sense-key numbering. */
export const ExitStatus = {
  OK: 0,
  USAGE: 1, // syntax or argument error (ddpt: 1)
  NOT_READY: 2, // sense key NOT READY
  MEDIUM_HARDWARE: 3, // sense key MEDIUM ERROR or HARDWARE ERROR
  ILLEGAL_REQUEST: 5, // sense key ILLEGAL REQUEST (other than invalid opcode)
  UNIT_ATTENTION: 6, // sense key UNIT ATTENTION (after retries)
  DATA_PROTECT: 7, // sense key DATA PROTECT
  INVALID_OPCODE: 9, // ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE (20h/00h)
  COPY_ABORTED: 10, // sense key COPY ABORTED
  ABORTED_COMMAND: 11, // sense key ABORTED COMMAND
  MISCOMPARE: 14, // sense key MISCOMPARE
  SCSI_OTHER: 15, // any other SCSI status or sense key
  UNREACHABLE: 40, // portal unreachable / connection refused / connect timeout
  LOGIN_REFUSED: 41, // login rejected (authentication, authorization, unknown target)
  NO_SUCH_LUN: 42, // target reachable but the LUN does not exist
  TIMEOUT: 43, // a command or the session timed out
  SESSION_CLOSED: 44, // the session was closed while commands were pending
  PROTOCOL: 45, // malformed data from a peer (a decoder rejected it)
  PARTIAL: 50, // part of the job succeeded (reserved for copy/backup)
  HOOK_FAILED: 51, // a backup's pre- or post-hook failed; the snapshot was ended, nothing left armed
  SNAPSHOT_INVALID: 52, // the snapshot turned INVALID during a backup (OBF full, I/O error...): no consistent copy
  CATALOG: 53, // the catalog of copies cannot be opened or written (locked, corrupt, unwritable): `catalog rebuild`
  FILESYSTEM: 54, // the file system on the LUN cannot be read for a table of contents (not ext2/3/4, unsupported, corrupt)
  INTERNAL: 99, // a bug: please report
  INTERRUPTED: 130, // SIGINT
} as const;
export type ExitStatusValue = (typeof ExitStatus)[keyof typeof ExitStatus];

/** Registered error codes and the exit status each maps to. */
export const ErrorCodes = {
  ERR_INVALID_ARG: ExitStatus.USAGE,
  ERR_INVALID_URL: ExitStatus.USAGE,
  ERR_SCSI_DECODE: ExitStatus.PROTOCOL,
  ERR_SCSI_ENCODE: ExitStatus.INTERNAL,
  ERR_SCSI_CHECK_CONDITION: ExitStatus.SCSI_OTHER, // refined by sense key in exitStatusOf()
  ERR_SCSI_STATUS: ExitStatus.SCSI_OTHER, // BUSY, RESERVATION CONFLICT, TASK SET FULL ... after retries
  ERR_ISCSI_UNREACHABLE: ExitStatus.UNREACHABLE,
  ERR_ISCSI_LOGIN: ExitStatus.LOGIN_REFUSED,
  ERR_ISCSI_NO_SUCH_LUN: ExitStatus.NO_SUCH_LUN,
  ERR_ISCSI_TIMEOUT: ExitStatus.TIMEOUT,
  ERR_ISCSI_CLOSED: ExitStatus.SESSION_CLOSED,
  ERR_ISCSI_TRANSPORT: ExitStatus.SCSI_OTHER,
  ERR_NATIVE_MISSING: ExitStatus.INTERNAL,
  ERR_INTERNAL: ExitStatus.INTERNAL,
  ERR_INTERRUPTED: ExitStatus.INTERRUPTED,
  ERR_MGMT_UNAUTHORIZED: ExitStatus.LOGIN_REFUSED, // the management API refused the bearer token (HTTP 401)
  ERR_MGMT_UNREACHABLE: ExitStatus.UNREACHABLE, // no connection (refused, no socket file, reset)
  ERR_MGMT_TIMEOUT: ExitStatus.TIMEOUT, // no answer within the client's timeout
  ERR_MGMT_PROTOCOL: ExitStatus.PROTOCOL, // not a JSON-RPC response
  ERR_MGMT_RPC: ExitStatus.INTERNAL, // a JSON-RPC error without a registry code
  ERR_SNAPSHOT_NOT_FOUND: ExitStatus.USAGE,
  ERR_SNAPSHOT_STATE: ExitStatus.USAGE, // the snapshot is not in a state that allows the operation
  ERR_STORE: ExitStatus.MEDIUM_HARDWARE, // a backing store request failed (StoreError; the SCSI layer answers its kind's sense)
  ERR_XCOPY_ABORTED: ExitStatus.COPY_ABORTED, // the copy manager stopped an EXTENDED COPY in a segment (COPY ABORTED)
  ERR_XCOPY_UNAVAILABLE: ExitStatus.COPY_ABORTED, // no copy manager can do the copy (COPY ABORTED 0Dh/02h: a LUN it cannot reach; 3PC=0) and host copy was not allowed
  ERR_HOLD_TIMEOUT: ExitStatus.TIMEOUT, // writes in flight did not drain while a snapshot held its source
  ERR_COW_TIMEOUT: ExitStatus.TIMEOUT, // a COW capture took longer than the policy's timeout
  ERR_OBF_FULL: ExitStatus.DATA_PROTECT, // the OBF has no room for a record (as SPACE ALLOCATION FAILED WRITE PROTECT)
  ERR_OBF_IO: ExitStatus.MEDIUM_HARDWARE, // writing the OBF failed
  ERR_SOURCE_READ: ExitStatus.MEDIUM_HARDWARE, // reading the original of a chunk from the source failed
  ERR_HOOK_FAILED: ExitStatus.HOOK_FAILED, // a backup's pre- or post-hook exited non-zero, was killed or timed out
  ERR_SNAPSHOT_INVALID: ExitStatus.SNAPSHOT_INVALID, // the snapshot of a backup turned INVALID; the secondary says failed
  ERR_NOT_SNAPSHOT_CAPABLE: ExitStatus.USAGE, // the source is not served by a target with snapshots (put it behind the gateway)
  ERR_SECONDARY_IN_USE: ExitStatus.USAGE, // the secondary holds data that is not a copy of ours (refused without --yes)
  ERR_NOT_AN_OBF: ExitStatus.USAGE, // erase-obf: block 0 of the LUN is not an OBF superblock (refused without --force)
  ERR_DESTINATION_IN_USE: ExitStatus.USAGE, // export: the destination holds data that is not a secondary (refused without --yes)
  ERR_EXPORT_VERIFY: ExitStatus.MISCOMPARE, // export: the copy does not read back as the secondary (its metadata or an extent's hash differs)
  ERR_BACKUP_VERIFY: ExitStatus.MISCOMPARE, // backup --verify: the secondary does not read back as the snapshot's image (an extent's hash differs)
  ERR_NOT_RESUMABLE: ExitStatus.PARTIAL, // --resume: the operation cannot be continued (its snapshot is gone or INVALID, it ended failed, its LUN holds another copy); it is recorded failed
  ERR_CATALOG: ExitStatus.CATALOG, // the catalog of copies is locked past the busy timeout, corrupt, unwritable or newer (docs/catalog.md)
  ERR_FS_UNSUPPORTED: ExitStatus.FILESYSTEM, // toc: no ext2/3/4 file system where asked (the partition table or signature found is named), or features libext2fs does not read
  ERR_FS_CORRUPT: ExitStatus.FILESYSTEM, // toc: libext2fs refused a structure of the file system (the inode or block is named)
  ERR_FS_READ: ExitStatus.MEDIUM_HARDWARE, // toc: reading the device under the file system failed (a READ's sense, an I/O error, a read past its end)
  ERR_VERIFY_MISMATCH: ExitStatus.MISCOMPARE, // verify: the secondary (or a restored LUN) is not a good copy: an extent's hash differs, its log or metadata is damaged, or its backup did not finish
} as const;
export type ErrorCode = keyof typeof ErrorCodes;

/**
 * Base of every error the project raises on purpose; docs/errors.md lists the classes below it,
 * their codes, who throws them and their exit statuses.
 */
export class AgentError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    Object.defineProperty(this, 'name', { value: new.target.name, enumerable: false });
  }
}

/** Bad argument to a public function or command (validated in TypeScript, never in C++). */
export class ArgumentError extends AgentError {
  constructor(message: string, code: ErrorCode = 'ERR_INVALID_ARG') {
    super(code, message);
  }
}

/**
 * A decoder rejected its input. `offset` is the byte offset (within the decoded structure) of
 * the field found wrong, so a bad buffer can be diagnosed (node-redis-parser's ParserError).
 */
export class DecodeError extends AgentError {
  readonly offset: number;
  readonly structure: string;
  constructor(structure: string, offset: number, message: string) {
    super('ERR_SCSI_DECODE', `${structure}: ${message} (byte ${offset})`);
    this.structure = structure;
    this.offset = offset;
  }
}

/** An encoder was asked for a value that does not fit its field. */
export class EncodeError extends AgentError {
  readonly field: string;
  constructor(structure: string, field: string, message: string) {
    super('ERR_SCSI_ENCODE', `${structure}: ${field} ${message}`);
    this.field = field;
  }
}

/**
 * The one error class of the initiator: transport failures (code ERR_ISCSI_*) and SCSI
 * failures (CHECK CONDITION with its sense, or another non-GOOD status).
 */
export class IscsiError extends AgentError {
  readonly scsiStatus?: number;
  readonly senseKey?: number;
  readonly asc?: number;
  readonly ascq?: number;
  readonly sense?: Buffer;
  constructor(
    code: ErrorCode,
    message: string,
    scsi?: { scsiStatus?: number; senseKey?: number; asc?: number; ascq?: number; sense?: Buffer },
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    if (scsi) {
      this.scsiStatus = scsi.scsiStatus;
      this.senseKey = scsi.senseKey;
      this.asc = scsi.asc;
      this.ascq = scsi.ascq;
      this.sense = scsi.sense;
    }
  }
}

/** Sense key → exit status (ddpt numbering). */
export function exitStatusOfSense(senseKey: number, asc?: number, ascq?: number): ExitStatusValue {
  switch (senseKey) {
    case SenseKey.NOT_READY:
      return ExitStatus.NOT_READY;
    case SenseKey.MEDIUM_ERROR:
    case SenseKey.HARDWARE_ERROR:
      return ExitStatus.MEDIUM_HARDWARE;
    case SenseKey.ILLEGAL_REQUEST:
      // INVALID COMMAND OPERATION CODE (20h/00h, Sense.INVALID_COMMAND_OPERATION_CODE; the
      // sense-reasons table sits above this module, and a test keeps the two in step).
      return asc === 0x20 && ascq === 0x00 ? ExitStatus.INVALID_OPCODE : ExitStatus.ILLEGAL_REQUEST;
    case SenseKey.UNIT_ATTENTION:
      return ExitStatus.UNIT_ATTENTION;
    case SenseKey.DATA_PROTECT:
      return ExitStatus.DATA_PROTECT;
    case SenseKey.COPY_ABORTED:
      return ExitStatus.COPY_ABORTED;
    case SenseKey.ABORTED_COMMAND:
      return ExitStatus.ABORTED_COMMAND;
    case SenseKey.MISCOMPARE:
      return ExitStatus.MISCOMPARE;
    default:
      return ExitStatus.SCSI_OTHER;
  }
}

/** The exit status a CLI command returns for an error. Unknown errors are bugs. */
export function exitStatusOf(err: unknown): ExitStatusValue {
  // CHECK CONDITION, from a peer (IscsiError) or answered by our target (SenseError): by sense key.
  if (err instanceof AgentError && err.code === 'ERR_SCSI_CHECK_CONDITION') {
    const s = err as AgentError & { senseKey?: number; asc?: number; ascq?: number };
    if (s.senseKey !== undefined) return exitStatusOfSense(s.senseKey, s.asc, s.ascq);
  }
  if (err instanceof AgentError) return ErrorCodes[err.code];
  // Errors carrying a registry code from elsewhere (e.g. the management API's remote errors).
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && Object.prototype.hasOwnProperty.call(ErrorCodes, code)) return ErrorCodes[code as ErrorCode];
  return ExitStatus.INTERNAL;
}

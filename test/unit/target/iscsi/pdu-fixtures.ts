/**
 * Golden iSCSI PDUs (RFC 7143 11), each as BHS + AHS + data segment without padding or digests.
 *
 * Most are real: bytes libiscsi 1.x (iscsi-ls, iscsi-inq, iscsi-test-cu, iscsi-perf) and tgt
 * 1.0.x exchanged on loopback, recorded by a relaying proxy between them; each was checked
 * field by field against RFC 7143. The RFC 3720 B.4 SCSI read command is the CRC test vector of
 * the RFC. The few PDUs no test run made (SNACK, Reject, Asynchronous Message, a SCSI Command
 * with AHS) are built by hand from RFC 7143's layouts and say so.
 */
import { hex } from '../../../helpers/codec';
import { LIBISCSI_INITIATOR, libiscsiLoginKeys } from './fixtures';

/** Text data segment: key=value pairs, each followed by a NUL (RFC 7143 6.1). */
export function text(...pairs: string[]): Buffer {
  return Buffer.from(pairs.map((p) => `${p}\0`).join(''), 'utf8');
}

// ---------------------------------------------------------------------------------------------
// SCSI Command (RFC 7143 11.3)

/** RFC 3720 B.4: "Read (10) command", the 48-byte CRC32C test vector (CRC 56 3a 96 d9). */
export const SCSI_COMMAND_RFC_READ10 = hex(`
  01                        # . I=0 | opcode 0x01 SCSI Command
  c0                        # F=1 R=1 W=0 | ATTR 0 (untagged)
  00 00                     # reserved
  00                        # TotalAHSLength 0
  00 00 00                  # DataSegmentLength 0
  00 00 00 00 00 00 00 00   # LUN 0
  14 00 00 00               # Initiator Task Tag 0x14000000
  00 00 04 00               # Expected Data Transfer Length 1024
  00 00 00 14               # CmdSN 20
  00 00 00 18               # ExpStatSN 24
  28 00 00 00 00 00 00 00   # CDB: READ(10), LBA 0,
  02 00 00 00 00 00 00 00   #      TRANSFER LENGTH 2 (CDB bytes 7-8), padded to 16
`);

/** libiscsi iscsi-inq: INQUIRY, allocation length 64, to LUN 1. */
export const SCSI_COMMAND_LIBISCSI_INQUIRY = hex(`
  01                        # . I=0 | opcode 0x01 SCSI Command
  c1                        # F=1 R=1 W=0 | ATTR 1 (simple)
  00 00                     # reserved
  00                        # TotalAHSLength 0
  00 00 00                  # DataSegmentLength 0
  00 01 00 00 00 00 00 00   # LUN 1 (peripheral device addressing)
  05 3d ef 65               # Initiator Task Tag
  00 00 00 40               # Expected Data Transfer Length 64
  70 09 fc ea               # CmdSN
  00 00 00 03               # ExpStatSN 3
  12 00 00 00 40 00         # CDB: INQUIRY, ALLOCATION LENGTH 64
  00 00 00 00 00 00 00 00 00 00   # CDB padding to 16 bytes
`);

/** iscsi-test-cu SCSI.Write10.Simple: WRITE(10) of 17 blocks with 8192 bytes of immediate data
 *  (FirstBurstLength 65536, ImmediateData=Yes, InitialR2T=Yes: tgt asks for the rest by R2T). */
export const SCSI_COMMAND_LIBISCSI_WRITE10 = Buffer.concat([
  hex(`
  01                        # . I=0 | opcode 0x01 SCSI Command
  a1                        # F=1 R=0 W=1 | ATTR 1 (simple)
  00 00                     # reserved
  00                        # TotalAHSLength 0
  00 20 00                  # DataSegmentLength 8192 (immediate data)
  00 01 00 00 00 00 00 00   # LUN 1
  65 16 8e 86               # Initiator Task Tag
  00 00 22 00               # Expected Data Transfer Length 8704 (17 × 512)
  66 e6 84 ba               # CmdSN
  00 00 00 13               # ExpStatSN
  2a 00 00 00 00 00 00 00 11 00   # CDB: WRITE(10), LBA 0, TRANSFER LENGTH 17
  00 00 00 00 00 00         # CDB padding to 16 bytes
`),
  Buffer.alloc(8192, 0xa6), // immediate data: the test's fill byte
]);

/**
 * Built by hand (RFC 7143 11.2.2.3, 11.2.2.4; SBC-3 r36 5.49): a bidirectional XDWRITEREAD(32) whose
 * 32-byte CDB needs an Extended CDB AHS, with a Bidirectional Read Expected Data Transfer
 * Length AHS.
 */
export const SCSI_COMMAND_AHS_XDWRITEREAD32 = hex(`
  01                        # . I=0 | opcode 0x01 SCSI Command
  e2                        # F=1 R=1 W=1 | ATTR 2 (ordered)
  00 00                     # reserved
  07                        # TotalAHSLength 7 (28 bytes)
  00 00 00                  # DataSegmentLength 0
  00 02 00 00 00 00 00 00   # LUN 2
  00 00 00 2a               # Initiator Task Tag 42
  00 00 10 00               # Expected Data Transfer Length 4096 (the write part)
  00 00 01 00               # CmdSN 256
  00 00 00 80               # ExpStatSN 128
  7f 00 00 00 00 00 00 18   # CDB 0-7: opcode 7Fh, CONTROL, reserved, ADDITIONAL CDB LENGTH 18h
  00 07 00 00 00 00 00 00   # CDB 8-15: SERVICE ACTION 0007h (XDWRITEREAD(32)), flags, LBA high bytes
  00 11                     # AHS 1: AHSLength 17 (CDB length 32 - 15)
  01                        #        AHSType 1 Extended CDB
  00                        #        reserved
  00 00 10 00               #        CDB 16-19: LBA 0x1000 (low bytes)
  00 00 00 00 00 00 00 00   #        CDB 20-27: reserved
  00 00 00 08               #        CDB 28-31: TRANSFER LENGTH 8
  00 05                     # AHS 2: AHSLength 5
  02                        #        AHSType 2 Bidirectional Read Expected Data Transfer Length
  00                        #        reserved
  00 00 10 00               #        Bidirectional Read Expected Data Transfer Length 4096
`);

// ---------------------------------------------------------------------------------------------
// SCSI Response (RFC 7143 11.4)

/** tgt: TEST UNIT READY answered CHECK CONDITION, UNIT ATTENTION / POWER ON, RESET (29h/00h). */
export const SCSI_RESPONSE_TGT_UNIT_ATTENTION = hex(`
  21                        # . . | opcode 0x21 SCSI Response
  80                        # 1 . . o=0 u=0 O=0 U=0 .
  00                        # Response 0 (command completed at target)
  02                        # Status 2 (CHECK CONDITION)
  00                        # TotalAHSLength 0
  00 00 14                  # DataSegmentLength 20
  00 00 00 00 00 00 00 00   # reserved
  05 3d ef 63               # Initiator Task Tag
  00 00 00 00               # SNACK Tag 0
  00 00 00 01               # StatSN 1
  70 09 fc e9               # ExpCmdSN
  70 09 fd 69               # MaxCmdSN (ExpCmdSN + 128)
  00 00 00 00               # ExpDataSN 0
  00 00 00 00               # Bidirectional Read Residual Count 0
  00 00 00 00               # Residual Count 0
  00 12                     # SenseLength 18
  70 00 06 00 00 00 00 0a   # sense: fixed, current; SENSE KEY 6 UNIT ATTENTION; ADDITIONAL SENSE LENGTH 10
  00 00 00 00 29 00 00 00   #        ASC 29h ASCQ 00h (POWER ON, RESET, OR BUS DEVICE RESET OCCURRED)
  00 00
`);

// ---------------------------------------------------------------------------------------------
// Task Management Function Request / Response (RFC 7143 11.5, 11.6)

/** libiscsi iscsi-test-cu iSCSITMF.AbortTaskSimpleAsync: ABORT TASK. */
export const TMF_REQUEST_LIBISCSI_ABORT_TASK = hex(`
  42                        # . I=1 | opcode 0x02 Task Management Function Request
  81                        # 1 | Function 1 (ABORT TASK)
  00 00                     # reserved
  00                        # TotalAHSLength 0
  00 00 00                  # DataSegmentLength 0
  00 01 00 00 00 00 00 00   # LUN 1
  0c 49 b0 41               # Initiator Task Tag
  0c 49 b0 40               # Referenced Task Tag (the task to abort)
  47 32 e7 6d               # CmdSN
  00 00 00 03               # ExpStatSN 3
  47 32 e7 6c               # RefCmdSN
  00 00 00 00               # ExpDataSN 0
  00 00 00 00 00 00 00 00   # reserved
`);

/** tgt: the answer, "Task does not exist" (the WRITE had already completed). */
export const TMF_RESPONSE_TGT_TASK_DOES_NOT_EXIST = hex(`
  22                        # . . | opcode 0x22 Task Management Function Response
  80                        # 1 | reserved
  01                        # Response 1 (Task does not exist)
  00                        # reserved
  00                        # TotalAHSLength 0
  00 00 00                  # DataSegmentLength 0
  00 00 00 00 00 00 00 00   # reserved
  0c 49 b0 41               # Initiator Task Tag
  00 00 00 00               # reserved
  00 00 00 04               # StatSN 4
  47 32 e7 6d               # ExpCmdSN
  47 32 e7 ed               # MaxCmdSN
  00 00 00 00 00 00 00 00 00 00 00 00   # reserved
`);

// ---------------------------------------------------------------------------------------------
// SCSI Data-Out / Data-In (RFC 7143 11.7)

/** libiscsi: the 512 bytes the R2T below asked for. */
export const DATA_OUT_LIBISCSI = Buffer.concat([
  hex(`
  05                        # . . | opcode 0x05 SCSI Data-Out
  80                        # F=1 | reserved
  00 00                     # reserved
  00                        # TotalAHSLength 0
  00 02 00                  # DataSegmentLength 512
  00 01 00 00 00 00 00 00   # LUN 1
  65 16 8e 86               # Initiator Task Tag (the WRITE(10))
  10 04 ec 9a               # Target Transfer Tag (from the R2T)
  00 00 00 00               # reserved
  00 00 00 14               # ExpStatSN
  00 00 00 00               # reserved
  00 00 00 00               # DataSN 0
  00 00 20 00               # Buffer Offset 8192
  00 00 00 00               # reserved
`),
  Buffer.alloc(512, 0xa6),
]);

/** tgt: 66 bytes of INQUIRY data with the status collapsed into the last Data-In (S bit). */
export const DATA_IN_TGT_INQUIRY = hex(`
  25                        # . . | opcode 0x25 SCSI Data-In
  81                        # F=1 A=0 . . . O=0 U=0 S=1
  00                        # reserved
  00                        # Status 0 (GOOD)
  00                        # TotalAHSLength 0
  00 00 42                  # DataSegmentLength 66 (2 bytes of padding follow on the wire)
  00 00 00 00 00 00 00 00   # LUN (reserved here)
  05 3d ef 66               # Initiator Task Tag
  ff ff ff ff               # Target Transfer Tag 0xffffffff
  00 00 00 04               # StatSN 4
  70 09 fc ec               # ExpCmdSN
  70 09 fd 6c               # MaxCmdSN
  00 00 00 00               # DataSN 0
  00 00 00 00               # Buffer Offset 0
  00 00 00 00               # Residual Count 0
  00 00 05 12 3d 00 00 02   # INQUIRY: disk, SPC-3, HISUP, format 2, ADDITIONAL LENGTH 61, CMDQUE
  49 45 54 20 20 20 20 20   #   T10 VENDOR IDENTIFICATION "IET     "
  56 49 52 54 55 41 4c 2d 44 49 53 4b 20 20 20 20   # PRODUCT IDENTIFICATION "VIRTUAL-DISK    "
  30 30 30 31               #   PRODUCT REVISION LEVEL "0001"
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   # vendor specific, reserved
  04 c0 09 60 03 00 00 00   #   VERSION DESCRIPTORS: SBC-3, iSCSI, SPC-3
`);

/** tgt: PERSISTENT RESERVE IN (READ KEYS, allocation 16384) gave 8 bytes: U with S. */
export const DATA_IN_TGT_UNDERFLOW = hex(`
  25                        # . . | opcode 0x25 SCSI Data-In
  83                        # F=1 A=0 . . . O=0 U=1 S=1
  00                        # reserved
  00                        # Status 0 (GOOD)
  00                        # TotalAHSLength 0
  00 00 08                  # DataSegmentLength 8
  00 00 00 00 00 00 00 00   # LUN (reserved here)
  4a 8e 48 3b               # Initiator Task Tag
  ff ff ff ff               # Target Transfer Tag 0xffffffff
  00 00 00 03               # StatSN 3
  5c 64 40 20               # ExpCmdSN
  5c 64 40 a0               # MaxCmdSN
  00 00 00 00               # DataSN 0
  00 00 00 00               # Buffer Offset 0
  00 00 3f f8               # Residual Count 16376 (16384 expected, 8 sent)
  00 00 00 00 00 00 00 00   # PRGENERATION 0, ADDITIONAL LENGTH 0 (no keys)
`);

// ---------------------------------------------------------------------------------------------
// R2T (RFC 7143 11.8)

/** tgt: after 8192 bytes of immediate data, asks for the last 512 bytes of the WRITE(10). */
export const R2T_TGT = hex(`
  31                        # . . | opcode 0x31 R2T
  80                        # 1 | reserved
  00 00                     # reserved
  00                        # TotalAHSLength 0
  00 00 00                  # DataSegmentLength 0
  00 01 00 00 00 00 00 00   # LUN 1
  65 16 8e 86               # Initiator Task Tag
  10 04 ec 9a               # Target Transfer Tag
  00 00 00 13               # StatSN
  66 e6 84 bb               # ExpCmdSN
  66 e6 85 3b               # MaxCmdSN
  00 00 00 00               # R2TSN 0
  00 00 20 00               # Buffer Offset 8192
  00 00 02 00               # Desired Data Transfer Length 512
`);

// ---------------------------------------------------------------------------------------------
// Asynchronous Message (RFC 7143 11.9)

/** Built by hand: a SCSI asynchronous event, UNIT ATTENTION / REPORTED LUNS DATA HAS CHANGED. */
export const ASYNC_MESSAGE_SCSI_EVENT = hex(`
  32                        # . . | opcode 0x32 Asynchronous Message
  80                        # 1 | reserved
  00 00                     # reserved
  00                        # TotalAHSLength 0
  00 00 14                  # DataSegmentLength 20
  00 01 00 00 00 00 00 00   # LUN 1
  ff ff ff ff               # 0xffffffff (Initiator Task Tag)
  00 00 00 00               # reserved
  00 00 00 21               # StatSN 33
  00 00 00 40               # ExpCmdSN 64
  00 00 00 c0               # MaxCmdSN 192
  00                        # AsyncEvent 0 (SCSI asynchronous event)
  00                        # AsyncVCode 0
  00 00                     # Parameter1 (reserved for this event)
  00 00                     # Parameter2
  00 00                     # Parameter3
  00 00 00 00               # reserved
  00 12                     # SenseLength 18
  70 00 06 00 00 00 00 0a   # sense: fixed, current; UNIT ATTENTION; ADDITIONAL SENSE LENGTH 10
  00 00 00 00 3f 0e 00 00   #        ASC 3Fh ASCQ 0Eh (REPORTED LUNS DATA HAS CHANGED)
  00 00
`);

// ---------------------------------------------------------------------------------------------
// Text Request / Response (RFC 7143 11.10, 11.11)

/** libiscsi iscsi-ls on a discovery session: SendTargets=All. */
export const TEXT_REQUEST_LIBISCSI_SENDTARGETS = Buffer.concat([
  hex(`
  44                        # . I=1 | opcode 0x04 Text Request
  80                        # F=1 C=0 | reserved
  00 00                     # reserved
  00                        # TotalAHSLength 0
  00 00 10                  # DataSegmentLength 16
  00 00 00 00 00 00 00 00   # LUN (reserved here)
  42 8d 19 64               # Initiator Task Tag
  ff ff ff ff               # Target Transfer Tag 0xffffffff (a new exchange)
  2f cd 71 54               # CmdSN
  00 00 00 01               # ExpStatSN 1
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   # reserved
`),
  text('SendTargets=All'),
]);

/** tgt's answer: one target, one portal (79 bytes, 1 byte of padding on the wire). */
export const TEXT_RESPONSE_TGT_SENDTARGETS = Buffer.concat([
  hex(`
  24                        # . . | opcode 0x24 Text Response
  80                        # F=1 C=0 | reserved
  00 00                     # reserved
  00                        # TotalAHSLength 0
  00 00 4f                  # DataSegmentLength 79
  00 00 00 00 00 00 00 00   # LUN (reserved here)
  42 8d 19 64               # Initiator Task Tag
  ff ff ff ff               # Target Transfer Tag 0xffffffff (final)
  00 00 00 01               # StatSN 1
  2f cd 71 54               # ExpCmdSN
  2f cd 71 55               # MaxCmdSN
  00 00 00 00 00 00 00 00 00 00 00 00   # reserved
`),
  text('TargetName=iqn.2026-11.io.xcopy-agent.peer:tgt', 'TargetAddress=127.0.0.1:13260,1'),
]);

// ---------------------------------------------------------------------------------------------
// Login Request / Response (RFC 7143 11.12, 11.13)

/** The keys libiscsi's iscsi_login_async() sends, in its order, without CHAP (lib/login.c). */
export const LIBISCSI_LOGIN_KEYS: readonly string[] = libiscsiLoginKeys(LIBISCSI_INITIATOR, 'iqn.2026-11.io.xcopy-agent.peer:tgt');

/** libiscsi iscsi-inq: the first and only Login Request (no CHAP: straight to operational
 *  negotiation, asking to go to Full Feature Phase). */
export const LOGIN_REQUEST_LIBISCSI = Buffer.concat([
  hex(`
  43                        # . I=1 | opcode 0x03 Login Request
  87                        # T=1 C=0 . . | CSG 1 (operational negotiation) | NSG 3 (full feature)
  00                        # Version-max 0
  00                        # Version-min 0
  00                        # TotalAHSLength 0
  00 01 bf                  # DataSegmentLength 447
  80 cb 49 da 00 00         # ISID: T=10b (random), A-C random, D 0 (libiscsi iscsi_set_isid_random)
  00 00                     # TSIH 0 (new session)
  05 3d ef 62               # Initiator Task Tag
  00 00                     # CID 0
  00 00                     # reserved
  70 09 fc e8               # CmdSN
  00 00 00 01               # ExpStatSN 1
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   # reserved
`),
  text(...LIBISCSI_LOGIN_KEYS),
]);

/** tgt's answer: success, TSIH 0x0100, on to Full Feature Phase. */
export const LOGIN_RESPONSE_TGT = Buffer.concat([
  hex(`
  23                        # . . | opcode 0x23 Login Response
  87                        # T=1 C=0 . . | CSG 1 | NSG 3
  00                        # Version-max 0
  00                        # Version-active 0
  00                        # TotalAHSLength 0
  00 01 2c                  # DataSegmentLength 300
  80 cb 49 da 00 00         # ISID (echoed)
  01 00                     # TSIH 0x0100
  05 3d ef 62               # Initiator Task Tag
  00 00 00 00               # reserved
  00 00 00 00               # StatSN 0
  70 09 fc e8               # ExpCmdSN
  70 09 fc e9               # MaxCmdSN
  00                        # Status-Class 0 (success)
  00                        # Status-Detail 0
  00 00 00 00 00 00 00 00 00 00   # reserved
`),
  text(
    'TargetPortalGroupTag=1',
    'HeaderDigest=None',
    'DataDigest=None',
    'InitialR2T=Yes',
    'ImmediateData=Yes',
    'MaxBurstLength=262144',
    'FirstBurstLength=65536',
    'DefaultTime2Wait=2',
    'DefaultTime2Retain=0',
    'MaxOutstandingR2T=1',
    'ErrorRecoveryLevel=0',
    'IFMarker=No',
    'OFMarker=No',
    'MaxConnections=1',
    'DataPDUInOrder=Yes',
    'DataSequenceInOrder=Yes',
  ),
]);

// ---------------------------------------------------------------------------------------------
// Logout Request / Response (RFC 7143 11.14, 11.15)

/** libiscsi: close the session. */
export const LOGOUT_REQUEST_LIBISCSI = hex(`
  46                        # . I=1 | opcode 0x06 Logout Request
  80                        # 1 | Reason Code 0 (close the session)
  00 00                     # reserved
  00                        # TotalAHSLength 0
  00 00 00                  # DataSegmentLength 0
  00 00 00 00 00 00 00 00   # reserved
  05 3d ef 67               # Initiator Task Tag
  00 00                     # CID 0
  00 00                     # reserved
  70 09 fc ec               # CmdSN
  00 00 00 05               # ExpStatSN 5
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   # reserved
`);

/** tgt's answer. */
export const LOGOUT_RESPONSE_TGT = hex(`
  26                        # . . | opcode 0x26 Logout Response
  80                        # 1 | reserved
  00                        # Response 0 (closed successfully)
  00                        # reserved
  00                        # TotalAHSLength 0
  00 00 00                  # DataSegmentLength 0
  00 00 00 00 00 00 00 00   # reserved
  05 3d ef 67               # Initiator Task Tag
  00 00 00 00               # reserved
  00 00 00 05               # StatSN 5
  70 09 fc ec               # ExpCmdSN
  70 09 fd 6c               # MaxCmdSN
  00 00 00 00               # reserved
  00 00                     # Time2Wait 0
  00 00                     # Time2Retain 0
  00 00 00 00               # reserved
`);

// ---------------------------------------------------------------------------------------------
// SNACK Request (RFC 7143 11.16)

/** Built by hand: a Data/R2T SNACK asking again for DataSN 3 and 4 of a read. */
export const SNACK_REQUEST_DATA = hex(`
  10                        # . . | opcode 0x10 SNACK Request
  80                        # 1 . . . | Type 0 (Data/R2T SNACK)
  00 00                     # reserved
  00                        # TotalAHSLength 0
  00 00 00                  # DataSegmentLength 0
  00 01 00 00 00 00 00 00   # LUN 1
  00 00 12 34               # Initiator Task Tag (the read)
  ff ff ff ff               # Target Transfer Tag / SNACK Tag 0xffffffff
  00 00 00 00               # reserved
  00 00 00 07               # ExpStatSN 7
  00 00 00 00 00 00 00 00   # reserved
  00 00 00 03               # BegRun 3
  00 00 00 02               # RunLength 2
`);

// ---------------------------------------------------------------------------------------------
// Reject (RFC 7143 11.17)

/** Built by hand: our Reject of the RFC 3720 B.4 read command, reason Invalid PDU field. */
export const REJECT_INVALID_PDU_FIELD = Buffer.concat([
  hex(`
  3f                        # . . | opcode 0x3f Reject
  80                        # 1 | reserved
  09                        # Reason 0x09 (Invalid PDU field)
  00                        # reserved
  00                        # TotalAHSLength 0
  00 00 30                  # DataSegmentLength 48 (the rejected BHS)
  00 00 00 00 00 00 00 00   # reserved
  ff ff ff ff               # 0xffffffff (Initiator Task Tag)
  00 00 00 00               # reserved
  00 00 00 18               # StatSN 24
  00 00 00 15               # ExpCmdSN 21
  00 00 00 94               # MaxCmdSN 148
  00 00 00 00               # DataSN/R2TSN (reserved here)
  00 00 00 00 00 00 00 00   # reserved
`),
  exports.SCSI_COMMAND_RFC_READ10, // data segment: the complete header of the bad PDU
]);

// ---------------------------------------------------------------------------------------------
// NOP-Out / NOP-In (RFC 7143 11.18, 11.19)

/** tgt (nop_interval=1): a ping asking for an answer (Target Transfer Tag 1). */
export const NOP_IN_TGT_PING = hex(`
  20                        # . . | opcode 0x20 NOP-In
  80                        # 1 | reserved
  00 00                     # reserved
  00                        # TotalAHSLength 0
  00 00 00                  # DataSegmentLength 0
  00 00 00 00 00 00 00 00   # LUN 0
  ff ff ff ff               # Initiator Task Tag 0xffffffff (not an answer)
  00 00 00 01               # Target Transfer Tag 1 (answer wanted)
  00 00 04 f1               # StatSN (not advanced by a NOP-In ping)
  57 07 31 47               # ExpCmdSN
  57 07 31 c7               # MaxCmdSN
  00 00 00 00 00 00 00 00 00 00 00 00   # reserved
`);

/** libiscsi's answer to it. */
export const NOP_OUT_LIBISCSI_ANSWER = hex(`
  40                        # . I=1 | opcode 0x00 NOP-Out
  80                        # 1 | reserved
  00 00                     # reserved
  00                        # TotalAHSLength 0
  00 00 00                  # DataSegmentLength 0
  00 00 00 00 00 00 00 00   # LUN 0
  ff ff ff ff               # Initiator Task Tag 0xffffffff (an answer: no NOP-In back)
  00 00 00 01               # Target Transfer Tag 1 (copied from the NOP-In)
  57 07 31 47               # CmdSN (not advanced: immediate)
  00 00 04 f1               # ExpStatSN
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   # reserved
`);

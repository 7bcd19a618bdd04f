/**
 * The interface between the iSCSI transport (src/target/iscsi/) and the SCSI command layer: one
 * SCSI command in, one status (with Data-In and sense) out. Everything here is plain data, so the
 * transport needs no knowledge of opcodes.
 */

/**
 * An I_T nexus (SAM-5): one initiator port (iSCSI name + ISID) talking to one target port
 * (the target portal group). Reservations, registrations and unit attentions are kept per nexus.
 */
export interface ItNexus {
  /** iSCSI initiator name (iqn./eui./naa.). */
  initiatorName: string;
  /** ISID as 12 hex digits (RFC 7143 11.12.5). */
  isid: string;
  /** TPGT of the target port the session logged in through. */
  targetPortalGroupTag: number;
  /** Unique per I_T nexus: the same initiator port through the same portal group gives the same id. */
  id: string;
}

export interface ScsiRequest {
  nexus: ItNexus;
  /** The LUN as the initiator addressed it (its mapped number). */
  lun: number;
  /** The CDB (a 16-byte iSCSI CDB field may carry a shorter CDB; trailing bytes are ignored). */
  cdb: Buffer;
  /** All Data-Out, already gathered (immediate, unsolicited and solicited). */
  dataOut?: Buffer;
  /** iSCSI EXPECTED DATA TRANSFER LENGTH (RFC 7143 11.3.4). */
  expectedDataTransferLength: number;
  /** iSCSI ATTR (SAM-5 task attribute: 0 untagged, 1 simple, 2 ordered, 3 head of queue, 4 ACA). */
  taskAttribute: number;
  /**
   * Aborted by ABORT TASK, a LUN reset or a lost connection. A transport may make it when first
   * read: to test for an abort, use requestAborted(), which does not.
   */
  readonly signal?: AbortSignal;
  /** True once aborted, as `signal.aborted`, where the transport can say so without a signal. */
  readonly aborted?: boolean;
  /**
   * This initiator's mapping of the LUN is write protected (an ACL's mapped LUN write_protect):
   * writes end in DATA PROTECT, WRITE PROTECTED and MODE SENSE reports WP, while the logical
   * unit (its reservations, unit attentions and range locks) stays the one all initiators share.
   */
  writeProtect?: boolean;
}

/** Whether the command has been aborted (its `aborted`, else its signal's). */
export function requestAborted(req: ScsiRequest): boolean {
  return req.aborted ?? req.signal?.aborted ?? false;
}

export interface ScsiReply {
  /** SAM-5 status (GOOD, CHECK CONDITION, CONDITION MET, RESERVATION CONFLICT, TASK ABORTED...). */
  status: number;
  /** Data-In; may be longer than the EDTL: the transport trims and sets residuals. */
  data?: Buffer;
  /**
   * Sense data for CHECK CONDITION: fixed format (SPC-4 r37 4.5.3), or descriptor format (4.5.2)
   * when the control mode page has D_SENSE set; a remote LUN's sense is forwarded as it came.
   */
  sense?: Buffer;
  /**
   * Bytes of Data-Out the CDB called for (TRANSFER LENGTH × block size, or the PARAMETER LIST
   * LENGTH), present for commands that take Data-Out. The transport compares it with the EDTL to
   * report a residual overflow or underflow on writes (RFC 7143 11.4.5); for Data-In the length
   * of `data` says the same.
   */
  dataOutLength?: number;
}

/** Direction of the data phase of a command. */
export type DataDirection = 'none' | 'in' | 'out';

/**
 * One SCSI command in flight on a connection (RFC 7143 11.3): its iSCSI state (tags, Data-Out
 * gathering, R2T) and, as the same object, the ScsiRequest the SCSI layer executes, so a command
 * costs one object rather than a task and a request built from it. What most commands never use
 * is made on first use: the abort signal (only a long handler or the copy manager listens), and
 * the promise of its end (only an abort, a reset, a logout or a graceful stop waits for it).
 */
import type { ItNexus, ScsiRequest } from '../scsi/types';
import type { ScsiCommandPdu } from './pdu';

export class Task implements ScsiRequest {
  readonly nexus: ItNexus;
  readonly itt: number;
  readonly cmdSN: number;
  /** The LUN addressed; 0xffff for an unsupported LUN form (it addresses no LU). */
  readonly lun: number;
  /** The LUN field as received, echoed in R2T and Data-In. */
  readonly lunRaw: Buffer;
  readonly cdb: Buffer;
  readonly expectedDataTransferLength: number;
  readonly taskAttribute: number;
  readonly read: boolean;
  readonly write: boolean;
  /** performance.now() when the command PDU arrived (for the latency metric). */
  readonly startedMs: number;
  /** Data-Out gathered so far (write commands), all of it once the command executes. */
  dataOut?: Buffer;
  writeProtect?: boolean;
  received = 0;
  /** Unsolicited bytes still expected (immediate data excluded). */
  unsolicitedLeft = 0;
  /** Outstanding R2T, if any. */
  r2t?: { ttt: number; offset: number; length: number; received: number };
  r2tSN = 0;
  /** DataSN expected next in the current Data-Out sequence (RFC 7143 11.7.5). */
  dataSN = 0;
  /** Set by ABORT TASK, a reset or a lost connection (ScsiRequest.aborted). */
  aborted = false;
  executing = false;
  private controller?: AbortController;
  private finished = false;
  private waiters?: Array<() => void>;

  /** `pdu`'s LUN field and CDB are the decoder's own copies (decodeScsiCommand). */
  constructor(pdu: ScsiCommandPdu, nexus: ItNexus) {
    this.nexus = nexus;
    this.itt = pdu.initiatorTaskTag;
    this.cmdSN = pdu.cmdSN;
    this.lun = pdu.lun ?? 0xffff;
    this.lunRaw = pdu.lunRaw;
    this.cdb = pdu.cdb;
    this.expectedDataTransferLength = pdu.expectedDataTransferLength;
    this.taskAttribute = pdu.attr;
    this.read = pdu.read;
    this.write = pdu.write;
    this.startedMs = performance.now();
  }

  /** Aborted by ABORT TASK, a LUN reset or a lost connection; made when first asked for. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort();
    }
    return this.controller.signal;
  }

  abort(): void {
    this.aborted = true;
    this.controller?.abort();
  }

  /** The command has ended (answered, refused or dropped): whoever waits for it goes on. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    const waiters = this.waiters;
    this.waiters = undefined;
    if (waiters) for (const w of waiters) w();
  }

  /** Resolves once finish() has been called. */
  whenDone(): Promise<void> {
    if (this.finished) return Promise.resolve();
    return new Promise<void>((resolve) => (this.waiters ??= []).push(resolve));
  }
}

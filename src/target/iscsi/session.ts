/**
 * A target-side iSCSI session (RFC 7143 4.3): one I_T nexus, its command numbering window and its
 * LUN view. With MaxConnections=1 a session has one connection.
 */
import type { ItNexus } from '../scsi/types';
import type { LunView, TargetPortalGroup } from '../target';

/** Commands the target accepts ahead of ExpCmdSN (MaxCmdSN = ExpCmdSN + depth - 1). */
export const COMMAND_WINDOW = 128;

/** Serial number arithmetic on 32 bits (RFC 1982, as RFC 7143 3.2.2.1 uses it): a < b. */
export function snLess(a: number, b: number): boolean {
  return a !== b && ((b - a) >>> 0) < 0x80000000;
}

export class TargetSession {
  readonly tsih: number;
  readonly type: 'Normal' | 'Discovery';
  readonly initiatorName: string;
  readonly isid: Buffer;
  readonly tpg?: TargetPortalGroup;
  /** Its LUNs; a configuration reload changes them in place (TargetServer.remapSessions). */
  readonly view: LunView;
  /** Mapped LUN numbers this session may only read (write-protected mappings); as `view`. */
  readonly writeProtected: Set<number>;
  readonly nexus: ItNexus;
  /** Next CmdSN expected (RFC 7143 3.2.2.1). */
  expCmdSN: number;
  closed = false;

  constructor(opts: {
    tsih: number;
    type: 'Normal' | 'Discovery';
    initiatorName: string;
    isid: Buffer;
    tpg?: TargetPortalGroup;
    view: LunView;
    writeProtected?: ReadonlySet<number>;
    cmdSN: number;
  }) {
    this.tsih = opts.tsih;
    this.type = opts.type;
    this.initiatorName = opts.initiatorName;
    this.isid = opts.isid;
    this.tpg = opts.tpg;
    this.view = opts.view;
    this.writeProtected = new Set(opts.writeProtected);
    this.expCmdSN = opts.cmdSN >>> 0;
    const isidHex = opts.isid.toString('hex');
    const tag = opts.tpg?.tag ?? 0;
    this.nexus = {
      initiatorName: opts.initiatorName,
      isid: isidHex,
      targetPortalGroupTag: tag,
      id: `${opts.initiatorName},i,0x${isidHex},${opts.tpg?.node.name ?? ''},t,0x${tag.toString(16)}`,
    };
  }

  get maxCmdSN(): number {
    return (this.expCmdSN + COMMAND_WINDOW - 1) >>> 0;
  }

  /** Whether a non-immediate CmdSN lies in [ExpCmdSN, MaxCmdSN]. */
  inWindow(cmdSN: number): boolean {
    return !snLess(cmdSN, this.expCmdSN) && !snLess(this.maxCmdSN, cmdSN);
  }

  /** Key for session reinstatement (RFC 7143 6.3.5): same initiator port to the same target. */
  static key(initiatorName: string, isid: Buffer, targetName: string | undefined): string {
    return `${initiatorName}|${isid.toString('hex')}|${targetName ?? ''}`;
  }
}

/**
 * The copy manager's rows of the opcode table (SPC-4 r37 6.5 THIRD-PARTY COPY OUT / EXTENDED COPY,
 * 6.18 THIRD-PARTY COPY IN / RECEIVE COPY RESULTS) and the switch that turns a logical unit into
 * one that offers them: 3PC = 1 in standard INQUIRY data and the Third-party Copy VPD page (8Fh).
 *
 * The rows are the same for every logical unit; each finds its CopyManager through
 * enableCopyManager(). A logical unit whose table has the rows but that was never enabled reports
 * the opcodes as not implemented (INVALID COMMAND OPERATION CODE, and REPORT SUPPORTED OPERATION
 * CODES leaves them out), so what is advertised is what is implemented.
 */
import { ArgumentError } from '../errors';
import {
  DEFAULT_OPCODES,
  Sense,
  SenseError,
  command,
  serviceActions,
  withOpcodes,
  type CommandContext,
  type CommandResult,
  type LogicalUnit,
  type OpcodeEntry,
  type OpcodeTable,
} from '../target/scsi';
import type { CopyManager } from './copy-manager';

const managers = new WeakMap<LogicalUnit, CopyManager>();

function managerOf(ctx: CommandContext): CopyManager {
  const cm = managers.get(ctx.lu);
  if (cm === undefined) throw new SenseError(Sense.INVALID_COMMAND_OPERATION_CODE, { field: { cdbByte: 0, bit: 7 } });
  return cm;
}

const enabled = (lu: LogicalUnit): boolean => managers.has(lu);

async function extendedCopy(ctx: CommandContext): Promise<CommandResult> {
  return managerOf(ctx).extendedCopy(ctx);
}

async function copyOperationAbort(ctx: CommandContext): Promise<CommandResult> {
  return managerOf(ctx).copyOperationAbort(ctx);
}

async function receiveCopyResults(ctx: CommandContext): Promise<CommandResult> {
  return managerOf(ctx).receiveCopyResults(ctx);
}

/**
 * The rows: 83h SA 00h EXTENDED COPY(LID1), 1Ch COPY OPERATION ABORT; 84h SA 00h COPY STATUS(LID1), 03h OPERATING
 * PARAMETERS, 04h FAILED SEGMENT DETAILS(LID1). Other service actions of 83h/84h are INVALID FIELD
 * IN CDB (the dispatcher's service action lookup). Persistent reservations: EXTENDED COPY writes,
 * RECEIVE COPY RESULTS reads (SPC-4 r37 5.13 tables).
 */
export function copyManagerOpcodeRows(): Array<[number, OpcodeEntry]> {
  const rcr = (sa: number, name: string): [number, Parameters<typeof command>[1]] => [
    sa,
    {
      name,
      cdbLength: 16,
      dir: 'in',
      // byte 2 LIST IDENTIFIER, bytes 10–13 ALLOCATION LENGTH
      usage: `84 ${sa.toString(16).padStart(2, '0')} ff 00 00 00 00 00 00 00 ff ff ff ff 00 00`,
      handler: receiveCopyResults,
      pr: 'read',
      supported: enabled,
    },
  ];
  return [
    serviceActions(0x83, 'THIRD-PARTY COPY OUT', 16, [
      [
        0x00,
        {
          name: 'EXTENDED COPY(LID1)',
          cdbLength: 16,
          dir: 'out',
          // bytes 10–13 PARAMETER LIST LENGTH
          usage: '83 00 00 00 00 00 00 00 00 00 ff ff ff ff 00 00',
          handler: extendedCopy,
          pr: 'write',
          timeout: 600,
          supported: enabled,
        },
      ],
      [
        0x1c,
        {
          name: 'COPY OPERATION ABORT',
          cdbLength: 16,
          dir: 'none',
          // bytes 2–5 LIST IDENTIFIER (SPC-4 r37 6.3, COPY OPERATION ABORT)
          usage: '83 1c ff ff ff ff 00 00 00 00 00 00 00 00 00 00',
          handler: copyOperationAbort,
          pr: 'read',
          supported: enabled,
        },
      ],
    ]),
    serviceActions(0x84, 'THIRD-PARTY COPY IN', 16, [
      rcr(0x00, 'RECEIVE COPY STATUS(LID1)'),
      rcr(0x03, 'RECEIVE COPY OPERATING PARAMETERS'),
      rcr(0x04, 'RECEIVE COPY FAILURE DETAILS(LID1)'),
    ]),
  ];
}

/** DEFAULT_OPCODES plus the copy manager's rows: pass as LogicalUnitOptions.opcodes. */
export const COPY_MANAGER_OPCODES: OpcodeTable = withOpcodes(DEFAULT_OPCODES, copyManagerOpcodeRows());

/**
 * Makes `lu` a copy manager served by `cm`: 3PC = 1 and VPD page 8Fh. The LU must have been built
 * with the rows (`opcodes: COPY_MANAGER_OPCODES`, or withOpcodes(table, copyManagerOpcodeRows())):
 * the opcode table of a LogicalUnit is fixed at construction.
 */
export function enableCopyManager(lu: LogicalUnit, cm: CopyManager): void {
  const out = lu.opcodes.get(0x83);
  const inn = lu.opcodes.get(0x84);
  if (out === undefined || inn === undefined || !('serviceActions' in out) || out.serviceActions.get(0x00)?.handler !== extendedCopy) {
    throw new ArgumentError('the logical unit lacks the copy manager opcodes: construct it with opcodes: COPY_MANAGER_OPCODES');
  }
  managers.set(lu, cm);
  lu.addVpdPage(0x8f, () => cm.thirdPartyCopyPage());
  lu.thirdPartyCopy = true;
}

/** The copy manager serving `lu`, if any. */
export function copyManagerOf(lu: LogicalUnit): CopyManager | undefined {
  return managers.get(lu);
}

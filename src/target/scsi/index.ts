/**
 * The SCSI command layer of the target (SPC-4 / SBC-3 disk logical units). The transport uses
 * executeOnView() (or LogicalUnit.execute()), LogicalUnit.reset() and LogicalUnit.nexusGone().
 */
export type { DataDirection, ItNexus, ScsiReply, ScsiRequest } from './types';
export { LogicalUnit, type LogicalUnitIdentity, type LogicalUnitLimits, type LogicalUnitOptions } from './logical-unit';
export { executeOnView, reportedLunsChanged } from './dispatch';
export { DEFAULT_OPCODES, command, serviceActions, withOpcodes } from './opcodes';
export type { CommandContext, CommandResult, CommandSpec, Handler, OpcodeEntry, OpcodeTable, ServiceActionGroup } from './command';
export { DEFAULT_VPD_PAGES, deviceDesignators, type VpdBuilder } from './vpd-pages';
export { Sense, SenseError, StatusError, buildSense, type SenseDetails, type SenseReason } from './sense-errors';

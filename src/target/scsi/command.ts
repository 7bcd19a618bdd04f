/**
 * What a command is to the dispatcher: one row of the opcode table (see opcodes.ts). A row says
 * how long the CDB is, which CDB bits the device server looks at (the CDB USAGE DATA of REPORT
 * SUPPORTED OPERATION CODES, SPC-4 r37 6.35.3 — also used to refuse any other bit), how the command
 * fares under reservations and unit attentions, and which handler executes it.
 */
import type { LogicalUnit } from './logical-unit';
import type { PrAccess } from './reservations';
import { Sense, SenseError, invalidCdbField } from './sense-errors';
import type { DataDirection, ItNexus, ScsiRequest } from './types';

export interface CommandContext {
  readonly lu: LogicalUnit;
  readonly req: ScsiRequest;
  readonly cdb: Buffer;
  readonly nexus: ItNexus;
  readonly spec: CommandSpec;
  /** The LUNs this initiator sees, by its LUN numbers (for REPORT LUNS), when known. */
  readonly view?: ReadonlyMap<number, LogicalUnit>;
}

export interface CommandResult {
  /** Default GOOD. */
  status?: number;
  data?: Buffer;
  /** See ScsiReply.dataOutLength. */
  dataOutLength?: number;
}

export type Handler = (ctx: CommandContext) => Promise<CommandResult>;

/** NOMINAL and RECOMMENDED COMMAND TIMEOUT, seconds (SPC-4 r37 6.35.4, command timeouts descriptor). */
export interface CommandTimeouts {
  nominal: number;
  recommended: number;
}

export interface CommandSpec {
  /** The standard's name, e.g. `READ(10)`. */
  readonly name: string;
  readonly opcode: number;
  /** Set for commands named by a service action (byte 1 bits 4:0). */
  readonly serviceAction?: number;
  readonly cdbLength: 6 | 10 | 12 | 16;
  readonly dataDirection: DataDirection;
  /**
   * CDB USAGE DATA (SPC-4 r37 6.35.3): byte 0 the opcode; in the service action field its value;
   * elsewhere a 1 for every bit the device server looks at. A CDB with any other bit set is
   * refused with INVALID FIELD IN CDB before the handler runs. A function when the answer
   * depends on the logical unit (e.g. the UNMAP bit of WRITE SAME only on thin LUs).
   */
  readonly usageData: Buffer | ((lu: LogicalUnit) => Buffer);
  readonly handler: Handler;
  /** Treatment under a persistent reservation held by another I_T nexus. */
  readonly pr: PrAccess | ((cdb: Buffer) => PrAccess);
  /** Under an SPC-2 reservation held by another I_T nexus: 'conflict' (default) or 'allowed'. */
  readonly spc2?: 'conflict' | 'allowed';
  /** SAM-5 r21 5.14: 'exempt' commands neither report nor clear a unit attention (default 'report'). */
  readonly unitAttention?: 'report' | 'exempt';
  readonly timeouts?: CommandTimeouts;
  /** Whether this logical unit implements the command (default: always). */
  readonly supported?: (lu: LogicalUnit) => boolean;
}

/** An opcode whose commands are told apart by the SERVICE ACTION field (byte 1 bits 4:0). */
export interface ServiceActionGroup {
  readonly name: string;
  readonly opcode: number;
  readonly cdbLength: 6 | 10 | 12 | 16;
  readonly serviceActions: ReadonlyMap<number, CommandSpec>;
}

export type OpcodeEntry = CommandSpec | ServiceActionGroup;
export type OpcodeTable = ReadonlyMap<number, OpcodeEntry>;

export function isServiceActionGroup(e: OpcodeEntry): e is ServiceActionGroup {
  return 'serviceActions' in e;
}

export const DEFAULT_TIMEOUTS: CommandTimeouts = { nominal: 0, recommended: 30 };

/** Bytes from spaced hex (`'28 1a ff ff ff ff 1f ff ff 00'`). */
export function usage(hex: string): Buffer {
  const b = Buffer.from(hex.replace(/\s+/g, ''), 'hex');
  if (b.length * 2 !== hex.replace(/\s+/g, '').length) throw new Error(`bad usage data ${hex}`);
  return b;
}

export function usageOf(spec: CommandSpec, lu: LogicalUnit): Buffer {
  return typeof spec.usageData === 'function' ? spec.usageData(lu) : spec.usageData;
}

export function prAccessOf(spec: CommandSpec, cdb: Buffer): PrAccess {
  return typeof spec.pr === 'function' ? spec.pr(cdb) : spec.pr;
}

/**
 * The command a CDB names, or the error that says why there is none: an opcode not in the
 * table (or not implemented by this LU) is INVALID COMMAND OPERATION CODE (SPC-4 r37 4.5.6); an
 * unknown service action is INVALID FIELD IN CDB pointing at the SERVICE ACTION field.
 */
export function resolveCommand(table: OpcodeTable, lu: LogicalUnit, cdb: Buffer): CommandSpec | SenseError {
  const entry = cdb.length > 0 ? table.get(cdb[0]) : undefined;
  if (entry === undefined) {
    return new SenseError(Sense.INVALID_COMMAND_OPERATION_CODE, { field: { cdbByte: 0, bit: 7 } });
  }
  if (!isServiceActionGroup(entry)) {
    if (entry.supported && !entry.supported(lu)) {
      return new SenseError(Sense.INVALID_COMMAND_OPERATION_CODE, { field: { cdbByte: 0, bit: 7 } });
    }
    return entry;
  }
  const sa = (cdb.length > 1 ? cdb[1] : 0) & 0x1f;
  const spec = entry.serviceActions.get(sa);
  if (spec === undefined || (spec.supported && !spec.supported(lu))) {
    return invalidCdbField(1, 4, `${entry.name} service action ${sa.toString(16)}h is not supported`);
  }
  return spec;
}

/**
 * The bit pointer for the offending bits `bad` of CDB byte `byte`: the highest of them, except
 * in byte 1 bits 7:5 — the 3-bit RDPROTECT/WRPROTECT/VRPROTECT field of the SBC commands (the old
 * LUN field elsewhere) — where SPC-4 r37 4.5.2.4.2 wants the most significant bit of the field: 7.
 */
function fieldBit(byte: number, bad: number): number {
  const top = 31 - Math.clz32(bad);
  return byte === 1 && top >= 5 ? 7 : top;
}

/**
 * Refuses any CDB bit the usage data does not claim (reserved and unsupported fields: SPC-4
 * lets a recipient check reserved bits, and SAM-5 r21 5.2 has unsupported CONTROL bits refused), pointing at the first such
 * byte and its highest offending bit. The service action bits were checked by the lookup.
 */
export function checkCdbUsage(spec: CommandSpec, lu: LogicalUnit, cdb: Buffer): void {
  const u = usageOf(spec, lu);
  for (let i = 1; i < spec.cdbLength; i++) {
    let mask = u[i];
    if (i === 1 && spec.serviceAction !== undefined) mask |= 0x1f;
    const bad = cdb[i] & ~mask & 0xff;
    if (bad !== 0) throw invalidCdbField(i, fieldBit(i, bad), `${spec.name}: reserved or unsupported bits set in CDB byte ${i}`);
  }
}

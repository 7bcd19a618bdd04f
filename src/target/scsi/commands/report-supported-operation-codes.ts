/**
 * REPORT SUPPORTED OPERATION CODES (SPC-4 r37 6.35; MAINTENANCE IN A3h, service action 0Ch),
 * generated from the same opcode table that dispatches — what is advertised is what runs, and
 * the CDB USAGE DATA is the very mask the dispatcher enforces.
 *
 * REPORTING OPTIONS (byte 2 bits 2:0):
 * - 000b: every command (all_commands parameter data, 6.35.2), with a command timeouts
 *   descriptor each when RCTD = 1 (CTDP = 1);
 * - 001b: one command named by REQUESTED OPERATION CODE; an opcode that has service actions is
 *   INVALID FIELD IN CDB;
 * - 010b: one command named by opcode and REQUESTED SERVICE ACTION; an opcode without service
 *   actions is INVALID FIELD IN CDB;
 * - 011b (SPC-5): either, whichever the opcode has;
 * - anything else: INVALID FIELD IN CDB.
 * For one command the SUPPORT field is 011b (supported as the standard says) or 001b (not
 * supported), with the CDB USAGE DATA when supported (one_command parameter data, 6.35.3).
 */
import type { CommandContext, CommandResult, CommandSpec, OpcodeTable } from '../command';
import { DEFAULT_TIMEOUTS, isServiceActionGroup, usageOf } from '../command';
import type { LogicalUnit } from '../logical-unit';
import { invalidCdbField } from '../sense-errors';

/** SPC-4 r37 6.35.4: the command timeouts descriptor (12 bytes, DESCRIPTOR LENGTH 0Ah). */
function timeoutsDescriptor(spec: CommandSpec): Buffer {
  const t = spec.timeouts ?? DEFAULT_TIMEOUTS;
  const d = Buffer.alloc(12);
  d.writeUInt16BE(0x0a, 0);
  d.writeUInt32BE(t.nominal, 4); // NOMINAL COMMAND PROCESSING TIMEOUT
  d.writeUInt32BE(t.recommended, 8); // RECOMMENDED COMMAND TIMEOUT
  return d;
}

/** Every command of the table this logical unit implements, by opcode then service action. */
export function supportedCommands(table: OpcodeTable, lu: LogicalUnit): CommandSpec[] {
  const out: CommandSpec[] = [];
  for (const opcode of [...table.keys()].sort((a, b) => a - b)) {
    const entry = table.get(opcode);
    if (entry === undefined) continue;
    const specs = isServiceActionGroup(entry)
      ? [...entry.serviceActions.keys()].sort((a, b) => a - b).map((sa) => entry.serviceActions.get(sa) as CommandSpec)
      : [entry];
    for (const spec of specs) if (!spec.supported || spec.supported(lu)) out.push(spec);
  }
  return out;
}

/** SPC-4 r37 6.35.2: the all_commands parameter data. */
function allCommands(lu: LogicalUnit, rctd: boolean): Buffer {
  const descriptors = supportedCommands(lu.opcodes, lu).map((spec) => {
    const d = Buffer.alloc(8);
    d[0] = spec.opcode;
    d.writeUInt16BE(spec.serviceAction ?? 0, 2); // SERVICE ACTION
    d[5] = (rctd ? 0x02 : 0) | (spec.serviceAction !== undefined ? 0x01 : 0); // CTDP, SERVACTV
    d.writeUInt16BE(spec.cdbLength, 6); // CDB LENGTH
    return rctd ? Buffer.concat([d, timeoutsDescriptor(spec)]) : d;
  });
  const body = Buffer.concat(descriptors);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0); // COMMAND DATA LENGTH
  return Buffer.concat([head, body]);
}

/** SPC-4 r37 6.35.3: the one_command parameter data. */
function oneCommand(lu: LogicalUnit, spec: CommandSpec | undefined, rctd: boolean): Buffer {
  if (spec === undefined || (spec.supported && !spec.supported(lu))) {
    const d = Buffer.alloc(4);
    d[1] = 0b001; // SUPPORT: not supported
    return d;
  }
  const u = usageOf(spec, lu);
  const head = Buffer.alloc(4);
  head[1] = (rctd ? 0x80 : 0) | 0b011; // CTDP, SUPPORT: supported as the standard says
  head.writeUInt16BE(u.length, 2); // CDB SIZE
  return Buffer.concat(rctd ? [head, u, timeoutsDescriptor(spec)] : [head, u]);
}

export async function reportSupportedOperationCodes(ctx: CommandContext): Promise<CommandResult> {
  const { lu, cdb } = ctx;
  const rctd = (cdb[2] & 0x80) !== 0;
  const options = cdb[2] & 0x07;
  const opcode = cdb[3];
  const serviceAction = cdb.readUInt16BE(4);
  const allocationLength = cdb.readUInt32BE(6);
  let data: Buffer;
  if (options === 0b000) {
    data = allCommands(lu, rctd);
  } else if (options === 0b001 || options === 0b010 || options === 0b011) {
    const entry = lu.opcodes.get(opcode);
    const hasServiceActions = entry !== undefined && isServiceActionGroup(entry);
    if (options === 0b001 && hasServiceActions) throw invalidCdbField(3, 7, `opcode ${opcode.toString(16)}h has service actions`);
    if (options === 0b010 && entry !== undefined && !hasServiceActions) {
      throw invalidCdbField(3, 7, `opcode ${opcode.toString(16)}h has no service actions`);
    }
    let spec: CommandSpec | undefined;
    if (entry !== undefined) spec = isServiceActionGroup(entry) ? entry.serviceActions.get(serviceAction) : entry;
    data = oneCommand(lu, spec, rctd);
  } else {
    throw invalidCdbField(2, 2, `REPORTING OPTIONS ${options.toString(2).padStart(3, '0')}b is not supported`);
  }
  return { data: data.subarray(0, allocationLength) };
}

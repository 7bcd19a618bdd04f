/**
 * START STOP UNIT (SBC-3). The logical unit has no spindle and no removable medium:
 * - LOEJ = 1 (load/eject) is refused (not in the CDB usage data: INVALID FIELD IN CDB, byte 4
 *   bit 1), as the medium cannot be removed;
 * - POWER CONDITION must be one SBC-3 defines (0h START_VALID, 1h ACTIVE, 2h IDLE,
 *   3h STANDBY, 7h LU_CONTROL, Ah FORCE_IDLE_0, Bh FORCE_STANDBY_0), else INVALID FIELD IN CDB;
 * - a stop (START = 0 with POWER CONDITION 0h) first makes cached writes durable, unless
 *   NO_FLUSH is set; the unit stays able to serve commands (there is nothing to spin down).
 * IMMED only allows GOOD before the flush ends; we wait for it either way.
 */
import type { CommandContext, CommandResult } from '../command';
import { invalidCdbField } from '../sense-errors';

const POWER_CONDITIONS: ReadonlySet<number> = new Set([0x0, 0x1, 0x2, 0x3, 0x7, 0xa, 0xb]);

export async function startStopUnit(ctx: CommandContext): Promise<CommandResult> {
  const b4 = ctx.cdb[4];
  const powerCondition = b4 >> 4;
  const noFlush = (b4 & 0x04) !== 0;
  const start = (b4 & 0x01) !== 0;
  if (!POWER_CONDITIONS.has(powerCondition)) throw invalidCdbField(4, 7, `POWER CONDITION ${powerCondition.toString(16)}h is reserved`);
  if (powerCondition === 0 && !start && !noFlush) await ctx.lu.store.flush();
  return {};
}

/**
 * TEST UNIT READY (SPC-4): GOOD when the logical unit is ready. The store is always there
 * once the logical unit exists; a store that says it is not ready now (a source waiting for its
 * snapshot to resume after a restart: NOT READY, LOGICAL UNIT IS IN PROCESS OF BECOMING READY)
 * is answered with its sense. Pending unit attentions and reservation conflicts were reported
 * before the handler runs.
 */
import type { CommandContext, CommandResult } from '../command';

export async function testUnitReady(ctx: CommandContext): Promise<CommandResult> {
  const why = ctx.lu.store.notReady?.();
  if (why) throw why;
  return {};
}

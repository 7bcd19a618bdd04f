/**
 * TEST UNIT READY (SPC-4): GOOD when the logical unit is ready. The store is always
 * there once the logical unit exists (a store that is not ready reports it on its own I/O);
 * pending unit attentions and reservation conflicts were reported before the handler runs.
 */
import type { CommandResult } from '../command';

export async function testUnitReady(): Promise<CommandResult> {
  return {};
}

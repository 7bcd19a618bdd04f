/**
 * PREVENT ALLOW MEDIUM REMOVAL (SBC-3). The medium of this
 * logical unit is not removable (RMB = 0): PREVENT = 00b (allow removal) has nothing to do and
 * completes with GOOD; any other PREVENT value asks to lock a medium there is no way to remove
 * and is refused as INVALID FIELD IN CDB (byte 4 is not in the CDB usage data).
 */
import type { CommandResult } from '../command';

export async function preventAllowMediumRemoval(): Promise<CommandResult> {
  return {};
}

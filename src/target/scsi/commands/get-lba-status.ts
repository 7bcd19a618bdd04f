/**
 * GET LBA STATUS (SBC-3 r36 5.4, SERVICE ACTION IN(16) 12h): the provisioning status of the blocks
 * from STARTING LOGICAL BLOCK ADDRESS on, as LBA status descriptors (mapped = 0, deallocated =
 * 1), from store.extents. A starting LBA past the last one is LOGICAL BLOCK ADDRESS OUT OF
 * RANGE (SBC-3 r36 5.4.1). On a fully provisioned logical unit every block is mapped. As many
 * descriptors as the ALLOCATION LENGTH holds (at least one), over at most 2^30 blocks per call;
 * the first descriptor always starts at the requested LBA.
 */
import type { Extent } from '../../../store/store';
import { checkLbaRange } from '../block-cdb';
import type { CommandContext, CommandResult } from '../command';

const WINDOW_BLOCKS = 1n << 30n;
const MAX_DESCRIPTORS = 4096;
const MAX_DESCRIPTOR_BLOCKS = 0xffff_ffffn;

export async function getLbaStatus(ctx: CommandContext): Promise<CommandResult> {
  const { lu, cdb } = ctx;
  const lba = cdb.readBigUInt64BE(2);
  const allocationLength = cdb.readUInt32BE(10);
  checkLbaRange(lu, lba, 1);
  const remaining = lu.store.blocks - lba;
  const window = remaining < WINDOW_BLOCKS ? remaining : WINDOW_BLOCKS;
  const extents: Extent[] = lu.thin ? await lu.store.extents(lba, window) : [{ lba, blocks: window, mapped: true }];
  const room = Math.max(1, Math.min(MAX_DESCRIPTORS, Math.floor((allocationLength - 8) / 16)));
  const descriptors: Buffer[] = [];
  for (const e of extents) {
    let at = e.lba;
    let left = e.blocks;
    while (left > 0n && descriptors.length < room) {
      const n = left > MAX_DESCRIPTOR_BLOCKS ? MAX_DESCRIPTOR_BLOCKS : left;
      const d = Buffer.alloc(16);
      d.writeBigUInt64BE(at, 0); // LOGICAL BLOCK ADDRESS
      d.writeUInt32BE(Number(n), 8); // NUMBER OF LOGICAL BLOCKS
      d[12] = e.mapped ? 0x0 : 0x1; // PROVISIONING STATUS: mapped / deallocated
      descriptors.push(d);
      at += n;
      left -= n;
    }
    if (descriptors.length >= room) break;
  }
  const head = Buffer.alloc(8);
  head.writeUInt32BE(4 + 16 * descriptors.length, 0); // PARAMETER DATA LENGTH (n − 3)
  return { data: Buffer.concat([head, ...descriptors]).subarray(0, allocationLength) };
}

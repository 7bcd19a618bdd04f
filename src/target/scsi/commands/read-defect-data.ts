/**
 * READ DEFECT DATA(10) and (12) (SBC-3 r36 5.17, 5.18). The medium is virtual and has no defects:
 * the primary and grown lists are both empty. The header echoes the lists asked for (PLISTV /
 * GLISTV = REQ_PLIST / REQ_GLIST) in the requested DEFECT LIST FORMAT when it is an address descriptor format
 * SBC-3 defines for a direct-access device (000b short block, 011b long block, 100b bytes from
 * index, 101b physical sector, 110b vendor specific); reserved formats are INVALID FIELD IN CDB.
 */
import type { CommandContext, CommandResult } from '../command';
import { invalidCdbField } from '../sense-errors';

const FORMATS: ReadonlySet<number> = new Set([0b000, 0b011, 0b100, 0b101, 0b110]);

function listBits(b: number, byte: number): number {
  const format = b & 0x07;
  if (!FORMATS.has(format)) throw invalidCdbField(byte, 2, `DEFECT LIST FORMAT ${format.toString(2).padStart(3, '0')}b is reserved`);
  return b & 0x1f; // REQ_PLIST (bit 4) → PLISTV, REQ_GLIST (bit 3) → GLISTV, the format
}

export async function readDefectData10(ctx: CommandContext): Promise<CommandResult> {
  const { cdb } = ctx;
  const data = Buffer.alloc(4); // DEFECT LIST LENGTH (bytes 2–3) = 0
  data[1] = listBits(cdb[2], 2);
  return { data: data.subarray(0, cdb.readUInt16BE(7)) };
}

export async function readDefectData12(ctx: CommandContext): Promise<CommandResult> {
  const { cdb } = ctx;
  const data = Buffer.alloc(8); // GENERATION CODE (2–3) = 0, DEFECT LIST LENGTH (4–7) = 0
  data[1] = listBits(cdb[1], 1);
  return { data: data.subarray(0, cdb.readUInt32BE(6)) };
}

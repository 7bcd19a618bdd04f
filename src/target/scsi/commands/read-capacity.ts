/**
 * READ CAPACITY(10) (SBC-3 r36 5.15) and READ CAPACITY(16) (SBC-3 r36 5.16, SERVICE ACTION IN(16) 10h).
 * The LOGICAL BLOCK ADDRESS and PMI fields are obsolete; a non-zero LBA with PMI = 0 is still an
 * INVALID FIELD IN CDB, as SBC-3 r36 5.15.1 says. READ CAPACITY(10) reports FFFFFFFFh when the last
 * LBA does not fit 32 bits; READ CAPACITY(16) adds the physical block exponent and, for thin
 * logical units, LBPME = 1 and LBPRZ (unmapped blocks read zeros), cut to the ALLOCATION LENGTH.
 */
import { decodeReadCapacity16Cdb } from '../../../scsi/cdb';
import { encodeReadCapacity10, encodeReadCapacity16, readCapacity10Lba } from '../../../scsi/read-capacity';
import type { CommandContext, CommandResult } from '../command';
import { invalidCdbField } from '../sense-errors';

export async function readCapacity10(ctx: CommandContext): Promise<CommandResult> {
  const { cdb, lu } = ctx;
  if ((cdb[8] & 0x01) === 0 && cdb.readUInt32BE(2) !== 0) {
    throw invalidCdbField(2, 7, 'LOGICAL BLOCK ADDRESS must be zero when PMI is zero');
  }
  const data = encodeReadCapacity10({
    returnedLogicalBlockAddress: readCapacity10Lba(lu.store.blocks - 1n),
    logicalBlockLength: lu.blockSize,
  });
  return { data };
}

export async function readCapacity16(ctx: CommandContext): Promise<CommandResult> {
  const { lu } = ctx;
  const { lba, pmi, allocationLength } = decodeReadCapacity16Cdb(ctx.cdb);
  if (!pmi && lba !== 0n) throw invalidCdbField(2, 7, 'LOGICAL BLOCK ADDRESS must be zero when PMI is zero');
  const data = encodeReadCapacity16({
    returnedLogicalBlockAddress: lu.store.blocks - 1n,
    logicalBlockLength: lu.blockSize,
    logicalBlocksPerPhysicalBlockExponent: lu.physicalBlockExponent,
    lbpme: lu.thin,
    lbprz: lu.thin && lu.store.unmapReadsZero,
  });
  return { data: data.subarray(0, allocationLength) };
}

/**
 * Step 608, overwrite mode: lay every record of a sealed OBF over its source address on the
 * secondary with EXTENDED COPY, one block→block (02h) segment per record, sent to the copy
 * manager serving the secondary. The OBF is read through the initiator (it is self-describing:
 * docs/obf-format.md); its log must match its SEAL.
 */
import { checkSeal, scanLog } from '../obf/log';
import { decodeSuperblock } from '../obf/format';
import { AgentError } from '../errors';
import type { IscsiSession } from '../initiator/session';
import { pickCscdDesignator } from '../scsi/vpd';
import { cscdFromDesignator, encodeExtendedCopyLid1, type CscdDescriptor, type SegmentDescriptor } from '../scsi/xcopy';

/** Segments per EXTENDED COPY (well under the copy manager's 256). */
const SEGMENTS_PER_LIST = 200;

/** The E4h CSCD descriptor naming a LUN (from its VPD 83h), or undefined when it has none usable. */
export async function cscdOfLun(s: IscsiSession, blockSize: number): Promise<CscdDescriptor | undefined> {
  const d = pickCscdDesignator((await s.deviceIdentification().catch(() => ({ designators: [] }))).designators);
  return d ? cscdFromDesignator(d, blockSize) : undefined;
}

export async function applyObf(obf: IscsiSession, secondary: IscsiSession): Promise<{ records: number; dataBytes: bigint }> {
  const sb = decodeSuperblock(await obf.read16(0n, 1));
  const scan = await scanLog((lba, n) => obf.read16(lba, n), sb);
  const seal = checkSeal(scan);
  if (!seal.ok) throw new AgentError('ERR_INTERNAL', `the OBF's log does not match its SEAL: ${seal.mismatches.join('; ')}`);
  const o = await cscdOfLun(obf, sb.blockSize);
  const d = await cscdOfLun(secondary, sb.sourceBlockSize);
  if (!o || !d) throw new AgentError('ERR_INTERNAL', 'the OBF or the secondary reports no designator a copy manager can resolve');
  for (let i = 0; i < scan.records.length; i += SEGMENTS_PER_LIST) {
    const segments: SegmentDescriptor[] = scan.records.slice(i, i + SEGMENTS_PER_LIST).map((r) => ({
      kind: 'blockToBlock',
      dc: true, // NUMBER OF BLOCKS counts destination (source LUN) blocks
      cat: false,
      sourceCscdDescriptorId: 0,
      destinationCscdDescriptorId: 1,
      blockDeviceNumberOfBlocks: r.sourceBlocks,
      sourceBlockDeviceLba: r.dataLba,
      destinationBlockDeviceLba: r.sourceLba,
    }));
    await secondary.extendedCopy(encodeExtendedCopyLid1({ listIdentifier: 1, listIdUsage: 2, cscdDescriptors: [o, d], segmentDescriptors: segments }));
  }
  await secondary.synchronizeCache16();
  return { records: scan.records.length, dataBytes: scan.dataBytes };
}

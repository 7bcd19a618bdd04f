/**
 * The VPD pages of a disk logical unit (SPC-4 r37 7.8, SBC-3 r36 6.6), as a table of builders: what
 * the Supported VPD Pages page (00h) lists is exactly what INQUIRY can return. The copy manager
 * adds the Third-party Copy page (8Fh) with LogicalUnit.addVpdPage().
 *
 * - 80h Unit Serial Number: the logical unit's serial.
 * - 83h Device Identification: an NAA 6h designator (unique per logical unit) and a T10 vendor
 *   ID designator (association: logical unit); the relative target port and target port group
 *   (association: target port); the SCSI name strings of the target port and of the target
 *   device, when the target name is known.
 * - B0h Block Limits: the limits this logical unit enforces.
 * - B1h Block Device Characteristics: a non-rotating medium.
 * - B2h Logical Block Provisioning: thin (LBPU, LBPWS, LBPWS10, LBPRZ from the store) or full.
 */
import {
  Association,
  CodeSet,
  DesignatorType,
  ProtocolIdentifier,
  encodeBlockDeviceCharacteristics,
  encodeBlockLimits,
  encodeDeviceIdentification,
  encodeLogicalBlockProvisioning,
  encodeSupportedVpdPages,
  encodeUnitSerialNumber,
  type DesignationDescriptor,
} from '../../scsi/vpd';
import type { LogicalUnit } from './logical-unit';
import type { ItNexus } from './types';

/** Builds one VPD page (header included) for a logical unit, as seen by a nexus. */
export type VpdBuilder = (lu: LogicalUnit, nexus: ItNexus) => Buffer;

/** SPC-4 r37 7.8.16: every page of the table, ascending. */
function supportedVpdPages(lu: LogicalUnit): Buffer {
  return encodeSupportedVpdPages([...lu.vpdPages.keys()].sort((a, b) => a - b));
}

/** SPC-4 r37 7.8.18. */
function unitSerialNumber(lu: LogicalUnit): Buffer {
  return encodeUnitSerialNumber(lu.serial);
}

/** SPC-4 r37 7.8.6.11: a SCSI name string is null terminated and null padded to a multiple of 4 bytes. */
function scsiNameString(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const length = Math.min(252, (bytes.length + 4) & ~3);
  const out = Buffer.alloc(length);
  bytes.copy(out, 0, 0, Math.min(bytes.length, length - 1));
  return out;
}

function u16Designator(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(value & 0xffff, 2);
  return b;
}

/** The designators of VPD 83h, in order (shared with tests and the copy manager). */
export function deviceDesignators(lu: LogicalUnit, nexus: ItNexus): DesignationDescriptor[] {
  const vendor = Buffer.alloc(8, 0x20);
  Buffer.from(lu.vendor, 'latin1').copy(vendor);
  const list: DesignationDescriptor[] = [
    // SPC-4 r37 7.8.6.6.4: NAA IEEE Registered Extended, the logical unit's unique name.
    { protocolIdentifier: 0, codeSet: CodeSet.BINARY, piv: false, association: Association.LOGICAL_UNIT, designatorType: DesignatorType.NAA, designator: Buffer.from(lu.naa) },
    // SPC-4 r37 7.8.6.4: T10 VENDOR IDENTIFICATION + vendor specific (the serial).
    { protocolIdentifier: 0, codeSet: CodeSet.ASCII, piv: false, association: Association.LOGICAL_UNIT, designatorType: DesignatorType.T10_VENDOR_ID, designator: Buffer.concat([vendor, Buffer.from(lu.serial, 'latin1')]).subarray(0, 255) },
    // SPC-4 r37 7.8.6.7: relative target port identifier of the port the command came through.
    { protocolIdentifier: ProtocolIdentifier.ISCSI, codeSet: CodeSet.BINARY, piv: true, association: Association.TARGET_PORT, designatorType: DesignatorType.RELATIVE_TARGET_PORT, designator: u16Designator(lu.relativeTargetPortId(nexus)) },
    // SPC-4 r37 7.8.6.8: target port group.
    { protocolIdentifier: ProtocolIdentifier.ISCSI, codeSet: CodeSet.BINARY, piv: true, association: Association.TARGET_PORT, designatorType: DesignatorType.TARGET_PORT_GROUP, designator: u16Designator(lu.targetPortGroup) },
  ];
  if (lu.targetName !== undefined) {
    const tpgt = (nexus.targetPortalGroupTag & 0xffff).toString(16).padStart(4, '0');
    // RFC 7143 (SCSI port names): an iSCSI target port is named "<target name>,t,0x<TPGT>".
    list.push(
      { protocolIdentifier: ProtocolIdentifier.ISCSI, codeSet: CodeSet.UTF8, piv: true, association: Association.TARGET_PORT, designatorType: DesignatorType.SCSI_NAME_STRING, designator: scsiNameString(`${lu.targetName},t,0x${tpgt}`) },
      { protocolIdentifier: ProtocolIdentifier.ISCSI, codeSet: CodeSet.UTF8, piv: true, association: Association.TARGET_DEVICE, designatorType: DesignatorType.SCSI_NAME_STRING, designator: scsiNameString(lu.targetName) },
    );
  }
  return list;
}

/** SPC-4 r37 7.8.6. */
function deviceIdentification(lu: LogicalUnit, nexus: ItNexus): Buffer {
  return encodeDeviceIdentification(deviceDesignators(lu, nexus));
}

/**
 * SBC-3 r36 6.6.4 (with the SBC-4 atomic write fields in bytes 44–63 when WRITE ATOMIC(16) is
 * offered: no alignment or granularity constraint, no atomic boundary).
 */
function blockLimits(lu: LogicalUnit): Buffer {
  const l = lu.limits;
  const granularity = 1 << lu.physicalBlockExponent;
  const page = encodeBlockLimits({
    wsnz: false,
    maximumCompareAndWriteLength: l.maxCompareAndWriteBlocks,
    optimalTransferLengthGranularity: granularity,
    maximumTransferLength: l.maxTransferBlocks,
    optimalTransferLength: l.optimalTransferBlocks,
    maximumPrefetchLength: 0,
    maximumUnmapLbaCount: lu.thin ? l.maxUnmapLbaCount : 0,
    maximumUnmapBlockDescriptorCount: lu.thin ? l.maxUnmapDescriptors : 0,
    optimalUnmapGranularity: lu.thin ? granularity : 0,
    ugavalid: false,
    unmapGranularityAlignment: 0,
    maximumWriteSameLength: BigInt(l.maxWriteSameBlocks),
  });
  if (lu.atomicWrite) page.writeUInt32BE(l.maxAtomicTransferBlocks, 44); // MAXIMUM ATOMIC TRANSFER LENGTH
  return page;
}

/** SBC-3 r36 6.6.2: MEDIUM ROTATION RATE 0001h (non-rotating medium). */
function blockDeviceCharacteristics(): Buffer {
  return encodeBlockDeviceCharacteristics({
    mediumRotationRate: 1,
    productType: 0,
    wabereq: 0,
    wacereq: 0,
    nominalFormFactor: 0,
    fuab: false,
    vbuls: false,
  });
}

/** SBC-3 r36 6.6.5. */
function logicalBlockProvisioning(lu: LogicalUnit): Buffer {
  return encodeLogicalBlockProvisioning({
    thresholdExponent: 0,
    lbpu: lu.thin,
    lbpws: lu.thin,
    lbpws10: lu.thin,
    lbprz: lu.thin && lu.store.unmapReadsZero ? 1 : 0,
    ancSup: false,
    dp: false,
    provisioningType: lu.thin ? 2 : 0,
  });
}

export const DEFAULT_VPD_PAGES: ReadonlyMap<number, VpdBuilder> = new Map<number, VpdBuilder>([
  [0x00, supportedVpdPages],
  [0x80, unitSerialNumber],
  [0x83, deviceIdentification],
  [0xb0, blockLimits],
  [0xb1, blockDeviceCharacteristics],
  [0xb2, logicalBlockProvisioning],
]);

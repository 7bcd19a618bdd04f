/**
 * What a LUN is: identity, designators, capacity, and — where it has a copy manager (3PC) — the
 * copy manager's OPERATING PARAMETERS. Gathered through the initiator; printed by `inquire`.
 */
import { IscsiError } from '../errors';
import { IscsiSession } from '../initiator/session';
import type { DecodedOperatingParameters } from '../scsi/copy-results';
import { spcVersionName } from '../scsi/inquiry';
import { formatDesignator, type DesignationDescriptor } from '../scsi/vpd';

export interface DesignatorReport {
  association: number;
  designator_type: number;
  code_set: number;
  hex: string;
  name: string;
}

export interface InquireReport {
  url: string;
  vendor: string;
  product: string;
  revision: string;
  peripheral_device_type: number;
  version: number;
  spc_version: string;
  three_pc: boolean;
  cmdque: boolean;
  vpd_pages: number[];
  unit_serial_number?: string;
  designators: DesignatorReport[];
  capacity_blocks: string;
  capacity_bytes: string;
  block_size: number;
  operating_parameters?: DecodedOperatingParameters;
  operating_parameters_error?: string;
}

function designatorReport(d: DesignationDescriptor): DesignatorReport {
  return {
    association: d.association,
    designator_type: d.designatorType,
    code_set: d.codeSet,
    hex: d.designator.toString('hex'),
    name: formatDesignator(d),
  };
}

export async function inquire(session: IscsiSession): Promise<InquireReport> {
  const std = await session.inquiry();
  const pages = await session.supportedVpdPages().catch(() => [] as number[]);
  const serial = pages.includes(0x80) ? await session.unitSerialNumber().catch(() => undefined) : undefined;
  const ids = pages.includes(0x83) ? (await session.deviceIdentification()).designators : [];
  const cap = await session.readCapacity16();
  const blocks = cap.returnedLogicalBlockAddress + 1n;
  const report: InquireReport = {
    url: session.url,
    vendor: std.t10VendorIdentification,
    product: std.productIdentification,
    revision: std.productRevisionLevel,
    peripheral_device_type: std.peripheralDeviceType,
    version: std.version,
    spc_version: spcVersionName(std.version),
    three_pc: std.threePc,
    cmdque: std.cmdque,
    vpd_pages: pages,
    unit_serial_number: serial,
    designators: ids.map(designatorReport),
    capacity_blocks: blocks.toString(),
    capacity_bytes: (blocks * BigInt(cap.logicalBlockLength)).toString(),
    block_size: cap.logicalBlockLength,
  };
  if (std.threePc) {
    try {
      report.operating_parameters = await session.operatingParameters();
    } catch (err) {
      if (!(err instanceof IscsiError)) throw err;
      report.operating_parameters_error = err.message;
    }
  }
  return report;
}

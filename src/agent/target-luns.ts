/**
 * A LUN reached by iSCSI found among the LUNs of a target's management API (lun_list), by its
 * NAA designator in VPD 83h (SPC-4 r37 7.8.6.6) — never by name: a URL names a portal, a
 * target and a LUN number, which a restart or another portal can give another LUN.
 */
import type { InquireReport } from './inquire';

/** The management API's view of a LUN (lun_list). */
export interface LunEntry {
  target: string;
  tpg?: number;
  lun: number;
  naa: string;
  blocks: string;
  block_size: number;
  snapshot?: string;
  kind?: string;
}

/** The NAA designators (hex) a LUN reports in VPD 83h with association logical unit. */
export function naasOf(r: InquireReport): string[] {
  return r.designators.filter((d) => d.association === 0 && d.designator_type === 3).map((d) => d.hex.toLowerCase());
}

/** The LUN of the target's API whose NAA designator is one the LUN reached by iSCSI reports. */
export function matchLun(luns: readonly LunEntry[], r: InquireReport): LunEntry | undefined {
  const naas = new Set(naasOf(r));
  return luns.find((l) => naas.has(l.naa.toLowerCase()));
}

/**
 * Reservation state of one logical unit: SPC-2 RESERVE/RELEASE (SPC-2, kept by SPC-4 as
 * "compatible reservation handling", 5.13) and persistent reservations (SPC-4 r37 5.13).
 *
 * Persistent reservation state survives I_T nexus loss and LUN resets (SPC-4 r37 5.13); it is not
 * kept across a restart of the target (PTPL_C = 0, APTPL refused). Registrations are per I_T
 * nexus; ALL_TG_PT and SPEC_I_PT are not supported (ATP_C = SIP_C = 0).
 */
import type { ItNexus } from './types';

/** PERSISTENT RESERVATION TYPE (SPC-4, PERSISTENT RESERVE IN READ RESERVATION). */
export const enum PrType {
  WRITE_EXCLUSIVE = 0x1,
  EXCLUSIVE_ACCESS = 0x3,
  WRITE_EXCLUSIVE_REGISTRANTS_ONLY = 0x5,
  EXCLUSIVE_ACCESS_REGISTRANTS_ONLY = 0x6,
  WRITE_EXCLUSIVE_ALL_REGISTRANTS = 0x7,
  EXCLUSIVE_ACCESS_ALL_REGISTRANTS = 0x8,
}

export const PR_TYPES: ReadonlySet<number> = new Set([0x1, 0x3, 0x5, 0x6, 0x7, 0x8]);

/** LU_SCOPE, the only SCOPE value SPC-4 keeps. */
export const LU_SCOPE = 0;

export function isAllRegistrants(type: number): boolean {
  return type === PrType.WRITE_EXCLUSIVE_ALL_REGISTRANTS || type === PrType.EXCLUSIVE_ACCESS_ALL_REGISTRANTS;
}

export function isRegistrantsOnly(type: number): boolean {
  return type === PrType.WRITE_EXCLUSIVE_REGISTRANTS_ONLY || type === PrType.EXCLUSIVE_ACCESS_REGISTRANTS_ONLY;
}

/**
 * How a command is treated in the presence of a persistent reservation held by another I_T
 * nexus (the tables of commands allowed in the presence of reservations in SPC-4 r37 5.13 and SBC-3,
 * reduced to three classes):
 * - `allowed`: always (INQUIRY, REPORT LUNS, REQUEST SENSE, PERSISTENT RESERVE IN/OUT — whose
 *   own rules are in its handler —, READ CAPACITY, TEST UNIT READY, ...);
 * - `read`: allowed under Write Exclusive types, and from registered I_T nexuses under
 *   Exclusive Access – Registrants Only / All Registrants; a conflict otherwise;
 * - `write`: allowed only from registered I_T nexuses under the Registrants Only / All
 *   Registrants types; a conflict otherwise.
 */
export type PrAccess = 'allowed' | 'read' | 'write';

export interface Registration {
  key: bigint;
  nexus: ItNexus;
}

export interface PersistentReservation {
  type: number;
  scope: number;
  /** The holder's nexus id; undefined for the All Registrants types (every registrant holds it). */
  holder?: string;
}

export class Reservations {
  /** The nexus holding an SPC-2 RESERVE, if any. */
  spc2Holder?: string;
  /** Registered I_T nexuses by id, in order of registration. */
  readonly registrations = new Map<string, Registration>();
  reservation?: PersistentReservation;
  /** PRGENERATION (SPC-4 PERSISTENT RESERVE IN): a 32-bit wrapping counter. */
  generation = 0;

  bumpGeneration(): void {
    this.generation = (this.generation + 1) >>> 0;
  }

  isRegistered(nexusId: string): boolean {
    return this.registrations.has(nexusId);
  }

  /** SPC-4 r37 5.13: the holder, or any registrant under an All Registrants type. */
  isHolder(nexusId: string): boolean {
    const r = this.reservation;
    if (r === undefined) return false;
    return isAllRegistrants(r.type) ? this.registrations.has(nexusId) : r.holder === nexusId;
  }

  /** The RESERVATION KEY READ RESERVATION reports: the holder's key, 0 for All Registrants. */
  reservationKey(): bigint {
    const r = this.reservation;
    if (r === undefined || r.holder === undefined) return 0n;
    return this.registrations.get(r.holder)?.key ?? 0n;
  }

  /** True if a command of class `access` from `nexusId` conflicts with the persistent reservation. */
  prConflict(access: PrAccess, nexusId: string): boolean {
    const r = this.reservation;
    if (r === undefined || access === 'allowed' || this.isHolder(nexusId)) return false;
    const registered = this.registrations.has(nexusId);
    switch (r.type) {
      case PrType.WRITE_EXCLUSIVE:
        return access === 'write';
      case PrType.EXCLUSIVE_ACCESS:
        return true;
      case PrType.WRITE_EXCLUSIVE_REGISTRANTS_ONLY:
      case PrType.WRITE_EXCLUSIVE_ALL_REGISTRANTS:
        return access === 'write' && !registered;
      default: // the Exclusive Access – Registrants Only / All Registrants types
        return !registered;
    }
  }

  /** True if an SPC-2 reservation of another nexus blocks `nexusId`. */
  spc2Conflict(nexusId: string): boolean {
    return this.spc2Holder !== undefined && this.spc2Holder !== nexusId;
  }

  /**
   * Removes a registration (SPC-4 r37 5.13, unregistering). If the nexus held a reservation
   * that does not outlive it, the reservation is released too; returns the nexus ids that must
   * get RESERVATIONS RELEASED (the other registrants, when a Registrants Only reservation goes).
   */
  unregister(nexusId: string): string[] {
    this.registrations.delete(nexusId);
    const r = this.reservation;
    if (r === undefined) return [];
    if (isAllRegistrants(r.type)) {
      if (this.registrations.size === 0) this.reservation = undefined;
      return [];
    }
    if (r.holder !== nexusId) return [];
    this.reservation = undefined;
    return isRegistrantsOnly(r.type) ? [...this.registrations.keys()] : [];
  }
}

/**
 * PERSISTENT RESERVE IN (SPC-4): READ KEYS (00h), READ RESERVATION (01h), REPORT
 * CAPABILITIES (02h), READ FULL STATUS (03h); other service actions are INVALID FIELD IN CDB
 * (the opcode table has only these four). Each answer is cut to the ALLOCATION LENGTH (bytes
 * 7–8); the length fields always describe the whole answer.
 */
import type { CommandContext, CommandResult } from '../command';
import type { LogicalUnit } from '../logical-unit';
import type { ItNexus } from '../types';

/** Service actions of PERSISTENT RESERVE IN (SPC-4). */
export const enum PrInServiceAction {
  READ_KEYS = 0x00,
  READ_RESERVATION = 0x01,
  REPORT_CAPABILITIES = 0x02,
  READ_FULL_STATUS = 0x03,
}

function header(lu: LogicalUnit, additionalLength: number): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(lu.reservations.generation, 0); // PRGENERATION
  h.writeUInt32BE(additionalLength, 4); // ADDITIONAL LENGTH
  return h;
}

/** READ KEYS: PRGENERATION, ADDITIONAL LENGTH, the keys. */
function readKeys(lu: LogicalUnit): Buffer {
  const keys = [...lu.reservations.registrations.values()].map((reg) => {
    const k = Buffer.alloc(8);
    k.writeBigUInt64BE(reg.key, 0);
    return k;
  });
  return Buffer.concat([header(lu, 8 * keys.length), ...keys]);
}

/** READ RESERVATION: RESERVATION KEY (0 for the All Registrants types), SCOPE and TYPE. */
function readReservation(lu: LogicalUnit): Buffer {
  const res = lu.reservations.reservation;
  if (res === undefined) return header(lu, 0);
  const d = Buffer.alloc(16);
  d.writeBigUInt64BE(lu.reservations.reservationKey(), 0);
  d[13] = (res.scope << 4) | res.type;
  return Buffer.concat([header(lu, 16), d]);
}

/**
 * REPORT CAPABILITIES: LENGTH 8; CRH = 1 (compatible reservation handling); SIP_C, ATP_C, PTPL_C = 0;
 * TMV = 1 with ALLOW COMMANDS 010b (TEST UNIT READY is allowed through Write Exclusive and
 * Exclusive Access; MODE SENSE, READ BUFFER, RECEIVE DIAGNOSTIC RESULTS, REPORT SUPPORTED
 * OPERATION CODES and READ DEFECT DATA through Write Exclusive); every type in the mask.
 */
export function reportCapabilities(): Buffer {
  const d = Buffer.alloc(8);
  d.writeUInt16BE(8, 0); // LENGTH
  d[2] = 0x10; // CRH
  d[3] = 0x80 | (0b010 << 4); // TMV, ALLOW COMMANDS
  d[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02; // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
  d[5] = 0x01; // EX_AC_AR
  return d;
}

/**
 * An iSCSI TransportID, initiator port form (SPC-4 TransportIDs, FORMAT CODE 01b): "<name>,i,0x<ISID>",
 * null terminated, padded to a multiple of 4 bytes, at least 24 bytes in all.
 */
export function iscsiTransportId(nexus: ItNexus): Buffer {
  const name = Buffer.from(`${nexus.initiatorName},i,0x${nexus.isid.toLowerCase()}`, 'utf8');
  const length = Math.max(20, (name.length + 4) & ~3);
  const out = Buffer.alloc(4 + length);
  out[0] = 0x40 | 0x05; // FORMAT CODE 01b, PROTOCOL IDENTIFIER iSCSI
  out.writeUInt16BE(length, 2); // ADDITIONAL LENGTH
  name.copy(out, 4);
  return out;
}

/** READ FULL STATUS: one full status descriptor per registration. */
function readFullStatus(lu: LogicalUnit): Buffer {
  const r = lu.reservations;
  const res = r.reservation;
  const descriptors = [...r.registrations.entries()].map(([id, reg]) => {
    const tid = iscsiTransportId(reg.nexus);
    const d = Buffer.alloc(24);
    d.writeBigUInt64BE(reg.key, 0); // RESERVATION KEY
    if (res !== undefined && r.isHolder(id)) {
      d[12] = 0x01; // R_HOLDER
      d[13] = (res.scope << 4) | res.type;
    }
    d.writeUInt16BE(lu.relativeTargetPortId(reg.nexus), 18); // RELATIVE TARGET PORT IDENTIFIER
    d.writeUInt32BE(tid.length, 20); // ADDITIONAL DESCRIPTOR LENGTH
    return Buffer.concat([d, tid]);
  });
  const body = Buffer.concat(descriptors);
  return Buffer.concat([header(lu, body.length), body]);
}

export async function persistentReserveIn(ctx: CommandContext): Promise<CommandResult> {
  const { lu, cdb } = ctx;
  const allocationLength = cdb.readUInt16BE(7);
  let data: Buffer;
  switch (cdb[1] & 0x1f) {
    case PrInServiceAction.READ_KEYS:
      data = readKeys(lu);
      break;
    case PrInServiceAction.READ_RESERVATION:
      data = readReservation(lu);
      break;
    case PrInServiceAction.REPORT_CAPABILITIES:
      data = reportCapabilities();
      break;
    default:
      data = readFullStatus(lu);
      break;
  }
  return { data: data.subarray(0, allocationLength) };
}

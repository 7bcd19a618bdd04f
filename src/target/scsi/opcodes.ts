/**
 * The opcode table of a disk logical unit: one row per command, dispatched from here and
 * reported from here (REPORT SUPPORTED OPERATION CODES). Adding a command is one row below and
 * one handler file under commands/ (the copy manager adds EXTENDED COPY and RECEIVE COPY
 * RESULTS the same way, or builds its own table with withOpcodes()).
 *
 * Each row's CDB usage data (SPC-4 r37 6.35.3) is the mask of bits the handler looks at; the
 * dispatcher refuses every other bit with INVALID FIELD IN CDB. So, for example, RDPROTECT ≠ 0
 * (no protection information), the WRITE SAME ANCHOR bit (ANC_SUP = 0), LOEJ of START STOP UNIT
 * (no removable medium) and the CONTROL byte's NACA bit are refused without handler code.
 *
 * Persistent reservation classes follow the SPC-4 r37 5.13 and SBC-3 r36 tables of commands allowed in the
 * presence of reservations (see PrAccess).
 */
import { cdbLengthOfOpcode } from '../../scsi/cdb';
import type { CommandSpec, Handler, OpcodeEntry, OpcodeTable, ServiceActionGroup } from './command';
import { usage } from './command';
import type { LogicalUnit } from './logical-unit';
import type { PrAccess } from './reservations';
import type { DataDirection } from './types';
import { compareAndWrite } from './commands/compare-and-write';
import { getLbaStatus } from './commands/get-lba-status';
import { inquiry } from './commands/inquiry';
import { modeSelect10, modeSelect6 } from './commands/mode-select';
import { modeSense10, modeSense6 } from './commands/mode-sense';
import { orwrite16 } from './commands/orwrite';
import { persistentReserveIn } from './commands/persistent-reserve-in';
import { persistentReserveOut } from './commands/persistent-reserve-out';
import { preFetch10, preFetch16 } from './commands/pre-fetch';
import { preventAllowMediumRemoval } from './commands/prevent-allow-medium-removal';
import { read10, read12, read16, read6 } from './commands/read';
import { readCapacity10, readCapacity16 } from './commands/read-capacity';
import { readDefectData10, readDefectData12 } from './commands/read-defect-data';
import { reportLuns } from './commands/report-luns';
import { reportSupportedOperationCodes } from './commands/report-supported-operation-codes';
import { requestSense } from './commands/request-sense';
import { release, reserve } from './commands/reserve-release';
import { startStopUnit } from './commands/start-stop-unit';
import { synchronizeCache10, synchronizeCache16 } from './commands/synchronize-cache';
import { testUnitReady } from './commands/test-unit-ready';
import { unmap } from './commands/unmap';
import { verify10, verify12, verify16 } from './commands/verify';
import { write10, write12, write16, write6 } from './commands/write';
import { writeAndVerify10, writeAndVerify12, writeAndVerify16 } from './commands/write-and-verify';
import { writeAtomic16 } from './commands/write-atomic';
import { writeSame10, writeSame16 } from './commands/write-same';

interface Row {
  name: string;
  cdbLength: 6 | 10 | 12 | 16;
  dir: DataDirection;
  /** Spaced hex, or a function of the logical unit. */
  usage: string | ((lu: LogicalUnit) => Buffer);
  handler: Handler;
  pr: CommandSpec['pr'];
  spc2?: 'allowed';
  ua?: 'exempt';
  timeout?: number;
  supported?: (lu: LogicalUnit) => boolean;
}

function spec(opcode: number, row: Row, serviceAction?: number): CommandSpec {
  const usageData = typeof row.usage === 'string' ? usage(row.usage) : row.usage;
  // SPC-4 r37 4.2.5.1: the GROUP CODE of the opcode fixes the CDB length (groups 3, 6, 7 do not).
  const groupLength = cdbLengthOfOpcode(opcode);
  if (groupLength !== undefined && groupLength !== row.cdbLength) throw new Error(`${row.name}: a ${row.cdbLength}-byte CDB, but opcode ${opcode.toString(16)}h is of ${groupLength}-byte group`);
  if (Buffer.isBuffer(usageData)) {
    if (usageData.length !== row.cdbLength || usageData[0] !== opcode) throw new Error(`${row.name}: usage data does not match the opcode/CDB length`);
    if (serviceAction !== undefined && (usageData[1] & 0x1f) !== serviceAction) throw new Error(`${row.name}: usage data lacks its service action`);
  }
  return Object.freeze({
    name: row.name,
    opcode,
    serviceAction,
    cdbLength: row.cdbLength,
    dataDirection: row.dir,
    usageData,
    handler: row.handler,
    pr: row.pr,
    spc2: row.spc2 ?? 'conflict',
    unitAttention: row.ua ?? 'report',
    timeouts: { nominal: 0, recommended: row.timeout ?? 30 },
    supported: row.supported,
  });
}

/** A command without service actions. */
export function command(opcode: number, row: Row): [number, OpcodeEntry] {
  return [opcode, spec(opcode, row)];
}

/** An opcode whose commands are told apart by service action. */
export function serviceActions(opcode: number, name: string, cdbLength: 6 | 10 | 12 | 16, rows: Array<[number, Row]>): [number, OpcodeEntry] {
  const group: ServiceActionGroup = {
    name,
    opcode,
    cdbLength,
    serviceActions: new Map(rows.map(([sa, row]) => [sa, spec(opcode, { ...row, cdbLength }, sa)])),
  };
  return [opcode, Object.freeze(group)];
}

/** A table with more rows (replacing rows of the same opcode). */
export function withOpcodes(base: OpcodeTable, rows: Array<[number, OpcodeEntry]>): OpcodeTable {
  const table = new Map(base);
  for (const [opcode, entry] of rows) table.set(opcode, entry);
  return table;
}

const thin = (lu: LogicalUnit) => lu.thin;
// SBC-3 (commands allowed under reservations): START STOP UNIT with START = 1 and POWER CONDITION = 0 is allowed, any other
// form conflicts; PREVENT ALLOW MEDIUM REMOVAL with PREVENT = 00b is allowed.
const startStopAccess = (cdb: Buffer): PrAccess => ((cdb[4] & 0xf1) === 0x01 ? 'allowed' : 'write');
const preventAccess = (cdb: Buffer): PrAccess => ((cdb[4] & 0x03) === 0 ? 'allowed' : 'write');
/** WRITE SAME: the UNMAP bit only on thin logical units. */
const writeSameUsage = (hex: string, unmapMask: number) => {
  const withUnmap = usage(hex);
  const without = Buffer.from(withUnmap);
  without[1] &= ~unmapMask;
  return (lu: LogicalUnit) => (lu.thin ? withUnmap : without);
};

/** PERSISTENT RESERVE IN/OUT rows share a handler; only the service action differs. */
const prIn = (name: string, hex: string): Row => ({ name, cdbLength: 10, dir: 'in', usage: hex, handler: persistentReserveIn, pr: 'allowed' });
const prOut = (name: string, hex: string): Row => ({ name, cdbLength: 10, dir: 'out', usage: hex, handler: persistentReserveOut, pr: 'allowed' });

export const DEFAULT_OPCODES: OpcodeTable = new Map<number, OpcodeEntry>([
  // --- SPC-4 -----------------------------------------------------------------------------------
  command(0x00, { name: 'TEST UNIT READY', cdbLength: 6, dir: 'none', usage: '00 00 00 00 00 00', handler: testUnitReady, pr: 'allowed' }),
  command(0x03, { name: 'REQUEST SENSE', cdbLength: 6, dir: 'in', usage: '03 01 00 00 ff 00', handler: requestSense, pr: 'allowed', spc2: 'allowed', ua: 'exempt' }),
  command(0x12, { name: 'INQUIRY', cdbLength: 6, dir: 'in', usage: '12 01 ff ff ff 00', handler: inquiry, pr: 'allowed', spc2: 'allowed', ua: 'exempt' }),
  command(0x15, { name: 'MODE SELECT(6)', cdbLength: 6, dir: 'out', usage: '15 11 00 00 ff 00', handler: modeSelect6, pr: 'write' }),
  command(0x16, { name: 'RESERVE(6)', cdbLength: 6, dir: 'none', usage: '16 00 00 00 00 00', handler: reserve, pr: 'allowed' }),
  command(0x17, { name: 'RELEASE(6)', cdbLength: 6, dir: 'none', usage: '17 00 00 00 00 00', handler: release, pr: 'allowed', spc2: 'allowed' }),
  command(0x1a, { name: 'MODE SENSE(6)', cdbLength: 6, dir: 'in', usage: '1a 08 ff ff ff 00', handler: modeSense6, pr: 'read' }),
  command(0x55, { name: 'MODE SELECT(10)', cdbLength: 10, dir: 'out', usage: '55 11 00 00 00 00 00 ff ff 00', handler: modeSelect10, pr: 'write' }),
  command(0x56, { name: 'RESERVE(10)', cdbLength: 10, dir: 'none', usage: '56 00 00 00 00 00 00 00 00 00', handler: reserve, pr: 'allowed' }),
  command(0x57, { name: 'RELEASE(10)', cdbLength: 10, dir: 'none', usage: '57 00 00 00 00 00 00 00 00 00', handler: release, pr: 'allowed', spc2: 'allowed' }),
  command(0x5a, { name: 'MODE SENSE(10)', cdbLength: 10, dir: 'in', usage: '5a 18 ff ff 00 00 00 ff ff 00', handler: modeSense10, pr: 'read' }),
  serviceActions(0x5e, 'PERSISTENT RESERVE IN', 10, [
    [0x00, prIn('PERSISTENT RESERVE IN: READ KEYS', '5e 00 00 00 00 00 00 ff ff 00')],
    [0x01, prIn('PERSISTENT RESERVE IN: READ RESERVATION', '5e 01 00 00 00 00 00 ff ff 00')],
    [0x02, prIn('PERSISTENT RESERVE IN: REPORT CAPABILITIES', '5e 02 00 00 00 00 00 ff ff 00')],
    [0x03, prIn('PERSISTENT RESERVE IN: READ FULL STATUS', '5e 03 00 00 00 00 00 ff ff 00')],
  ]),
  serviceActions(0x5f, 'PERSISTENT RESERVE OUT', 10, [
    [0x00, prOut('PERSISTENT RESERVE OUT: REGISTER', '5f 00 ff 00 00 ff ff ff ff 00')],
    [0x01, prOut('PERSISTENT RESERVE OUT: RESERVE', '5f 01 ff 00 00 ff ff ff ff 00')],
    [0x02, prOut('PERSISTENT RESERVE OUT: RELEASE', '5f 02 ff 00 00 ff ff ff ff 00')],
    [0x03, prOut('PERSISTENT RESERVE OUT: CLEAR', '5f 03 ff 00 00 ff ff ff ff 00')],
    [0x04, prOut('PERSISTENT RESERVE OUT: PREEMPT', '5f 04 ff 00 00 ff ff ff ff 00')],
    [0x05, prOut('PERSISTENT RESERVE OUT: PREEMPT AND ABORT', '5f 05 ff 00 00 ff ff ff ff 00')],
    [0x06, prOut('PERSISTENT RESERVE OUT: REGISTER AND IGNORE EXISTING KEY', '5f 06 ff 00 00 ff ff ff ff 00')],
  ]),
  command(0xa0, { name: 'REPORT LUNS', cdbLength: 12, dir: 'in', usage: 'a0 00 ff 00 00 00 ff ff ff ff 00 00', handler: reportLuns, pr: 'allowed', spc2: 'allowed', ua: 'exempt' }),
  serviceActions(0xa3, 'MAINTENANCE IN', 12, [
    [0x0c, { name: 'REPORT SUPPORTED OPERATION CODES', cdbLength: 12, dir: 'in', usage: 'a3 0c 87 ff ff ff ff ff ff ff 00 00', handler: reportSupportedOperationCodes, pr: 'read' }],
  ]),
  // --- SBC-3 -----------------------------------------------------------------------------------
  command(0x08, { name: 'READ(6)', cdbLength: 6, dir: 'in', usage: '08 1f ff ff ff 00', handler: read6, pr: 'read' }),
  command(0x0a, { name: 'WRITE(6)', cdbLength: 6, dir: 'out', usage: '0a 1f ff ff ff 00', handler: write6, pr: 'write' }),
  command(0x1b, { name: 'START STOP UNIT', cdbLength: 6, dir: 'none', usage: '1b 01 00 0f f5 00', handler: startStopUnit, pr: startStopAccess }),
  command(0x1e, { name: 'PREVENT ALLOW MEDIUM REMOVAL', cdbLength: 6, dir: 'none', usage: '1e 00 00 00 00 00', handler: preventAllowMediumRemoval, pr: preventAccess }),
  command(0x25, { name: 'READ CAPACITY(10)', cdbLength: 10, dir: 'in', usage: '25 00 ff ff ff ff 00 00 01 00', handler: readCapacity10, pr: 'allowed' }),
  command(0x28, { name: 'READ(10)', cdbLength: 10, dir: 'in', usage: '28 1a ff ff ff ff 1f ff ff 00', handler: read10, pr: 'read' }),
  command(0x2a, { name: 'WRITE(10)', cdbLength: 10, dir: 'out', usage: '2a 1a ff ff ff ff 1f ff ff 00', handler: write10, pr: 'write' }),
  command(0x2e, { name: 'WRITE AND VERIFY(10)', cdbLength: 10, dir: 'out', usage: '2e 16 ff ff ff ff 1f ff ff 00', handler: writeAndVerify10, pr: 'write' }),
  command(0x2f, { name: 'VERIFY(10)', cdbLength: 10, dir: 'out', usage: '2f 16 ff ff ff ff 1f ff ff 00', handler: verify10, pr: 'read' }),
  command(0x34, { name: 'PRE-FETCH(10)', cdbLength: 10, dir: 'none', usage: '34 02 ff ff ff ff 1f ff ff 00', handler: preFetch10, pr: 'read' }),
  command(0x35, { name: 'SYNCHRONIZE CACHE(10)', cdbLength: 10, dir: 'none', usage: '35 06 ff ff ff ff 1f ff ff 00', handler: synchronizeCache10, pr: 'write', timeout: 60 }),
  command(0x37, { name: 'READ DEFECT DATA(10)', cdbLength: 10, dir: 'in', usage: '37 00 1f 00 00 00 00 ff ff 00', handler: readDefectData10, pr: 'read' }),
  command(0x41, { name: 'WRITE SAME(10)', cdbLength: 10, dir: 'out', usage: writeSameUsage('41 08 ff ff ff ff 1f ff ff 00', 0x08), handler: writeSame10, pr: 'write', timeout: 60 }),
  command(0x42, { name: 'UNMAP', cdbLength: 10, dir: 'out', usage: '42 00 00 00 00 00 1f ff ff 00', handler: unmap, pr: 'write', timeout: 60, supported: thin }),
  command(0x88, { name: 'READ(16)', cdbLength: 16, dir: 'in', usage: '88 1a ff ff ff ff ff ff ff ff ff ff ff ff 1f 00', handler: read16, pr: 'read' }),
  command(0x89, { name: 'COMPARE AND WRITE', cdbLength: 16, dir: 'out', usage: '89 1a ff ff ff ff ff ff ff ff 00 00 00 ff 1f 00', handler: compareAndWrite, pr: 'write' }),
  command(0x8a, { name: 'WRITE(16)', cdbLength: 16, dir: 'out', usage: '8a 1a ff ff ff ff ff ff ff ff ff ff ff ff 1f 00', handler: write16, pr: 'write' }),
  command(0x8b, { name: 'ORWRITE(16)', cdbLength: 16, dir: 'out', usage: '8b 1a ff ff ff ff ff ff ff ff ff ff ff ff 1f 00', handler: orwrite16, pr: 'write' }),
  command(0x8e, { name: 'WRITE AND VERIFY(16)', cdbLength: 16, dir: 'out', usage: '8e 16 ff ff ff ff ff ff ff ff ff ff ff ff 1f 00', handler: writeAndVerify16, pr: 'write' }),
  command(0x8f, { name: 'VERIFY(16)', cdbLength: 16, dir: 'out', usage: '8f 16 ff ff ff ff ff ff ff ff ff ff ff ff 1f 00', handler: verify16, pr: 'read' }),
  command(0x90, { name: 'PRE-FETCH(16)', cdbLength: 16, dir: 'none', usage: '90 02 ff ff ff ff ff ff ff ff ff ff ff ff 1f 00', handler: preFetch16, pr: 'read' }),
  command(0x91, { name: 'SYNCHRONIZE CACHE(16)', cdbLength: 16, dir: 'none', usage: '91 06 ff ff ff ff ff ff ff ff ff ff ff ff 1f 00', handler: synchronizeCache16, pr: 'write', timeout: 60 }),
  command(0x93, { name: 'WRITE SAME(16)', cdbLength: 16, dir: 'out', usage: writeSameUsage('93 09 ff ff ff ff ff ff ff ff ff ff ff ff 1f 00', 0x08), handler: writeSame16, pr: 'write', timeout: 60 }),
  command(0x9c, { name: 'WRITE ATOMIC(16)', cdbLength: 16, dir: 'out', usage: '9c 18 ff ff ff ff ff ff ff ff 00 00 ff ff 1f 00', handler: writeAtomic16, pr: 'write', supported: (lu) => lu.atomicWrite }),
  serviceActions(0x9e, 'SERVICE ACTION IN(16)', 16, [
    [0x10, { name: 'READ CAPACITY(16)', cdbLength: 16, dir: 'in', usage: '9e 10 ff ff ff ff ff ff ff ff ff ff ff ff 01 00', handler: readCapacity16, pr: 'allowed' }],
    [0x12, { name: 'GET LBA STATUS', cdbLength: 16, dir: 'in', usage: '9e 12 ff ff ff ff ff ff ff ff ff ff ff ff 00 00', handler: getLbaStatus, pr: 'read' }],
  ]),
  command(0xa8, { name: 'READ(12)', cdbLength: 12, dir: 'in', usage: 'a8 1a ff ff ff ff ff ff ff ff 1f 00', handler: read12, pr: 'read' }),
  command(0xaa, { name: 'WRITE(12)', cdbLength: 12, dir: 'out', usage: 'aa 1a ff ff ff ff ff ff ff ff 1f 00', handler: write12, pr: 'write' }),
  command(0xae, { name: 'WRITE AND VERIFY(12)', cdbLength: 12, dir: 'out', usage: 'ae 16 ff ff ff ff ff ff ff ff 1f 00', handler: writeAndVerify12, pr: 'write' }),
  command(0xaf, { name: 'VERIFY(12)', cdbLength: 12, dir: 'out', usage: 'af 16 ff ff ff ff ff ff ff ff 1f 00', handler: verify12, pr: 'read' }),
  command(0xb7, { name: 'READ DEFECT DATA(12)', cdbLength: 12, dir: 'in', usage: 'b7 1f ff ff ff ff ff ff ff ff 00 00', handler: readDefectData12, pr: 'read' }),
]);

/**
 * Random and mutated CDBs (fast-check), for every opcode of the table and for random opcodes,
 * from two nexuses, to mapped and unmapped LUNs, with random Data-Out: the answer is always a
 * reply with a valid status and decodable sense — never an exception — and the medium changes
 * only when the CDB was a well-formed write that completed with GOOD (checked by hashing the
 * whole store before and after, and by counting store writes and unmaps).
 */
import fc from 'fast-check';
import { decodeSense } from '../../../../src/scsi/sense';
import { isServiceActionGroup, usageOf, type OpcodeEntry } from '../../../../src/target/scsi/command';
import type { LogicalUnit } from '../../../../src/target/scsi/logical-unit';
import { DEFAULT_OPCODES } from '../../../../src/target/scsi/opcodes';
import { executeOnView } from '../../../../src/target/scsi/dispatch';
import type { ScsiReply } from '../../../../src/target/scsi/types';
import { I1, I2, clearUa, fixture, sha256, type Fixture } from './helpers';

const VALID_STATUSES = new Set([0x00, 0x02, 0x04, 0x08, 0x18, 0x28, 0x40]);
/** Opcodes that may change the medium. */
const WRITES = new Set([0x0a, 0x2a, 0xaa, 0x8a, 0x2e, 0xae, 0x8e, 0x8b, 0x89, 0x41, 0x93, 0x42, 0x9c]);

interface Case {
  cdb: Buffer;
  dataOut?: Buffer;
  second: boolean;
  lun: number;
}

/** CDB bytes biased towards small values, so that fields are often in range. */
const cdbByte = fc.oneof(
  { weight: 6, arbitrary: fc.constant(0) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 3 }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 255 }) },
);

/** The usage data of the command a CDB names, if the table has it (for "well-formed" cases). */
function usageFor(lu: LogicalUnit, cdb: Buffer): Buffer | undefined {
  const entry = DEFAULT_OPCODES.get(cdb[0]);
  if (entry === undefined) return undefined;
  const spec = isServiceActionGroup(entry) ? entry.serviceActions.get(cdb[1] & 0x1f) : entry;
  return spec === undefined ? undefined : usageOf(spec, lu);
}

function caseFor(lu: LogicalUnit, opcode: fc.Arbitrary<number>): fc.Arbitrary<Case> {
  return fc
    .record({
      opcode,
      rest: fc.array(cdbByte, { minLength: 15, maxLength: 15 }),
      length: fc.oneof({ weight: 9, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 16 }) }),
      masked: fc.oneof({ weight: 7, arbitrary: fc.constant(true) }, { weight: 3, arbitrary: fc.constant(false) }),
      sa: fc.option(fc.integer({ min: 0, max: 0x1f })),
      dataOut: fc.option(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 0, max: 40 }).map((n) => new Uint8Array(n * 512).fill(0x5a)))),
      second: fc.boolean(),
      lun: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }) }),
    })
    .map(({ opcode: op, rest, length, masked, sa, dataOut, second, lun }) => {
      const entry = DEFAULT_OPCODES.get(op);
      const cdb = Buffer.alloc(length > 0 ? length : (entry?.cdbLength ?? 16));
      cdb[0] = op;
      Buffer.from(rest).copy(cdb, 1, 0, cdb.length - 1);
      if (entry !== undefined && isServiceActionGroup(entry) && sa !== null && cdb.length > 1) {
        const sas = [...entry.serviceActions.keys()];
        cdb[1] = (cdb[1] & 0xe0) | sas[sa % sas.length];
      }
      const u = masked ? usageFor(lu, cdb) : undefined;
      if (u !== undefined) for (let i = 1; i < Math.min(cdb.length, u.length); i++) cdb[i] &= i === 1 && isServiceActionGroup(entry as OpcodeEntry) ? u[i] | 0x1f : u[i];
      return { cdb, dataOut: dataOut === null ? undefined : Buffer.from(dataOut), second, lun };
    });
}

async function snapshot(f: Fixture): Promise<string> {
  return sha256(await f.mem.read(0n, Number(f.mem.blocks)));
}

function checkReply(r: ScsiReply): void {
  expect(VALID_STATUSES.has(r.status)).toBe(true);
  if (r.status === 0x02) {
    expect(r.sense).toBeDefined();
    const s = decodeSense(r.sense as Buffer);
    expect(s.senseKey).toBeGreaterThanOrEqual(1);
    expect(s.senseKey).toBeLessThanOrEqual(0x0e);
  } else {
    expect(r.sense).toBeUndefined();
  }
  if (r.data !== undefined) expect(Buffer.isBuffer(r.data)).toBe(true);
}

async function property(f: Fixture, c: Case): Promise<void> {
  const before = await snapshot(f);
  const mutations = f.store.mutations;
  let r: ScsiReply | undefined;
  r = await executeOnView(f.view, {
    nexus: c.second ? I2 : I1,
    lun: c.lun,
    cdb: c.cdb,
    dataOut: c.dataOut,
    expectedDataTransferLength: c.dataOut?.length ?? 0,
    taskAttribute: 1,
  });
  checkReply(r);
  const changed = (await snapshot(f)) !== before || f.store.mutations !== mutations;
  if (changed) {
    expect({ cdb: c.cdb.toString('hex'), status: r.status, write: WRITES.has(c.cdb[0]) }).toEqual({ cdb: c.cdb.toString('hex'), status: 0, write: true });
  }
}

async function freshFixture(): Promise<Fixture> {
  const f = fixture({ blocks: 64n, name: 'memory:fuzz' }, { limits: { maxTransferBlocks: 64, maxWriteSameBlocks: 64 } });
  await f.mem.write(0n, Buffer.alloc(64 * 512, 0xc3));
  await clearUa(f, I1);
  await clearUa(f, I2);
  return f;
}

describe('random CDBs', () => {
  const opcodes = [...DEFAULT_OPCODES.keys()];

  test.each(opcodes.map((op) => [op.toString(16).padStart(2, '0'), op]))('opcode %sh: random fields give a valid reply and write only when well formed', async (_name, op) => {
    const f = await freshFixture();
    await fc.assert(
      fc.asyncProperty(caseFor(f.lu, fc.constant(op as number)), (c) => property(f, c)),
      { numRuns: 60 },
    );
  });

  test('random opcodes, lengths and LUNs', async () => {
    const f = await freshFixture();
    await fc.assert(
      fc.asyncProperty(caseFor(f.lu, fc.integer({ min: 0, max: 255 })), (c) => property(f, c)),
      { numRuns: 600 },
    );
  });

  test('mutations of valid write CDBs never write out of range or on failure', async () => {
    const f = await freshFixture();
    const valid = fc.constantFrom(
      '2a 00 00 00 00 3e 00 00 02 00',
      '8a 08 00 00 00 00 00 00 00 3f 00 00 00 01 00 00',
      '41 08 00 00 00 30 00 00 10 00',
      '89 00 00 00 00 00 00 00 00 01 00 00 00 01 00 00',
      '93 01 00 00 00 00 00 00 00 20 00 00 00 08 00 00',
      '0a 00 00 3f 01 00',
    );
    const mutated = fc.record({ hex: valid, at: fc.nat(15), value: fc.integer({ min: 0, max: 255 }), blocks: fc.integer({ min: 0, max: 4 }), second: fc.boolean() }).map(({ hex, at, value, blocks, second }) => {
      const cdb = Buffer.from(hex.replace(/ /g, ''), 'hex');
      cdb[at % cdb.length] = at % cdb.length === 0 ? cdb[0] : value;
      return { cdb, dataOut: Buffer.alloc(blocks * 512, 0x11), second, lun: 0 } as Case;
    });
    await fc.assert(fc.asyncProperty(mutated, (c) => property(f, c)), { numRuns: 400 });
  });
});

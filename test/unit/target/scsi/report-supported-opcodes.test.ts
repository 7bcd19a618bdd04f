/**
 * REPORT SUPPORTED OPERATION CODES agrees with the opcode table that dispatches: every listed
 * command is accepted (not INVALID COMMAND OPERATION CODE), every table opcode this LU supports
 * is listed, the one-command CDB usage data is the mask the dispatcher enforces, and the
 * reporting options behave as libiscsi's ReportSupportedOpcodes suite expects.
 */
import { isServiceActionGroup, usageOf, type CommandSpec } from '../../../../src/target/scsi/command';
import { DEFAULT_OPCODES, command, withOpcodes } from '../../../../src/target/scsi/opcodes';
import { decodeSense } from '../../../../src/scsi/sense';
import { GOOD, INVALID_FIELD_IN_CDB, expectSense, fixture, ready, rsocCdb, run, type Fixture } from './helpers';

interface Descriptor {
  opcode: number;
  sa: number;
  servactv: boolean;
  ctdp: boolean;
  cdbLength: number;
  timeouts?: { length: number; nominal: number; recommended: number };
}

function parseAll(data: Buffer): Descriptor[] {
  const length = data.readUInt32BE(0);
  expect(length).toBe(data.length - 4);
  const out: Descriptor[] = [];
  for (let off = 4; off < data.length; ) {
    const ctdp = (data[off + 5] & 0x02) !== 0;
    const d: Descriptor = { opcode: data[off], sa: data.readUInt16BE(off + 2), servactv: (data[off + 5] & 0x01) !== 0, ctdp, cdbLength: data.readUInt16BE(off + 6) };
    off += 8;
    if (ctdp) {
      d.timeouts = { length: data.readUInt16BE(off), nominal: data.readUInt32BE(off + 4), recommended: data.readUInt32BE(off + 8) };
      off += 12;
    }
    out.push(d);
  }
  return out;
}

function tableSpecs(f: Fixture): CommandSpec[] {
  const out: CommandSpec[] = [];
  for (const e of f.lu.opcodes.values()) {
    const specs = isServiceActionGroup(e) ? [...e.serviceActions.values()] : [e];
    for (const s of specs) if (!s.supported || s.supported(f.lu)) out.push(s);
  }
  return out;
}

/** A CDB for `spec` with every usable bit zero (valid for every command here except a few fields). */
function zeroCdb(spec: CommandSpec): Buffer {
  const c = Buffer.alloc(spec.cdbLength);
  c[0] = spec.opcode;
  if (spec.serviceAction !== undefined) c[1] = spec.serviceAction;
  return c;
}

describe('REPORT SUPPORTED OPERATION CODES', () => {
  test('all commands: exactly the supported table rows, sorted, SERVACTV only with service actions', async () => {
    for (const f of [await ready(), await ready({}, { thinProvisioning: false, atomicWrite: false })]) {
      const r = await run(f, rsocCdb(0));
      expect(r.status).toBe(GOOD);
      const list = parseAll(r.data as Buffer);
      const expected = tableSpecs(f)
        .map((s) => ({ opcode: s.opcode, sa: s.serviceAction ?? 0, servactv: s.serviceAction !== undefined, ctdp: false, cdbLength: s.cdbLength }))
        .sort((a, b) => a.opcode - b.opcode || a.sa - b.sa);
      expect(list).toEqual(expected);
      for (const d of list) if (!d.servactv) expect(d.sa).toBe(0);
      // Every listed command is dispatched: never INVALID COMMAND OPERATION CODE.
      for (const d of list) {
        const c = Buffer.alloc(d.cdbLength);
        c[0] = d.opcode;
        if (d.servactv) c[1] = d.sa;
        const reply = await run(f, c, { dataOut: Buffer.alloc(0) });
        if (reply.sense) expect(decodeSense(reply.sense).asc).not.toBe(0x20);
      }
    }
  });

  test('UNMAP and WRITE ATOMIC(16) appear only where the LU implements them', async () => {
    const thick = await ready({}, { thinProvisioning: false, atomicWrite: false });
    const opcodes = parseAll((await run(thick, rsocCdb(0))).data as Buffer).map((d) => d.opcode);
    expect(opcodes).not.toContain(0x42);
    expect(opcodes).not.toContain(0x9c);
    const thin = await ready();
    expect(parseAll((await run(thin, rsocCdb(0))).data as Buffer).map((d) => d.opcode)).toEqual(expect.arrayContaining([0x42, 0x9c]));
  });

  test('RCTD adds a timeouts descriptor (length 0Ah) to each command', async () => {
    const f = await ready();
    for (const d of parseAll((await run(f, rsocCdb(0, 0, 0, 65535, true))).data as Buffer)) {
      expect(d.ctdp).toBe(true);
      expect(d.timeouts?.length).toBe(0x0a);
      expect(d.timeouts?.recommended).toBeGreaterThan(0);
    }
  });

  test('one command: options 1 and 2 per SERVACTV as libiscsi OneCommand expects, usage data = the enforced mask', async () => {
    const f = await ready();
    for (const s of tableSpecs(f)) {
      const byOpcode = await run(f, rsocCdb(1, s.opcode, s.serviceAction ?? 0));
      const bySa = await run(f, rsocCdb(2, s.opcode, s.serviceAction ?? 0));
      const either = await run(f, rsocCdb(3, s.opcode, s.serviceAction ?? 0, 65535, true));
      const good = s.serviceAction === undefined ? byOpcode : bySa;
      expectSense(s.serviceAction === undefined ? bySa : byOpcode, { ...INVALID_FIELD_IN_CDB, cdbByte: 3 });
      const d = good.data as Buffer;
      expect(d[1] & 0x07).toBe(0b011);
      expect(d.readUInt16BE(2)).toBe(s.cdbLength);
      const u = d.subarray(4, 4 + s.cdbLength);
      expect(u).toEqual(usageOf(s, f.lu));
      expect(u[0]).toBe(s.opcode);
      const e = either.data as Buffer;
      expect(e[1]).toBe(0x80 | 0b011);
      expect(e.readUInt16BE(4 + s.cdbLength)).toBe(0x0a);
      // Every bit outside the usage data is refused.
      for (let byte = 1; byte < s.cdbLength; byte++) {
        for (let bit = 0; bit < 8; bit++) {
          if ((u[byte] >> bit) & 1 || (byte === 1 && s.serviceAction !== undefined && bit < 5)) continue;
          const c = zeroCdb(s);
          c[byte] |= 1 << bit;
          const reply = await run(f, c);
          expect([s.name, byte, bit, reply.status]).toEqual([s.name, byte, bit, 0x02]);
          expect(decodeSense(reply.sense as Buffer)).toMatchObject({ senseKey: 5, asc: 0x24, ascq: 0 });
        }
      }
    }
  });

  test('usage data advertises DPO/FUA for the commands libiscsi checks (READ10, VERIFY10, WRITE VERIFY10, ORWRITE, COMPARE AND WRITE)', async () => {
    const f = await ready();
    for (const [opcode, mask] of [[0x28, 0x18], [0x2f, 0x10], [0x2e, 0x10], [0x8b, 0x18], [0x89, 0x18], [0x9c, 0x18]] as const) {
      const d = (await run(f, rsocCdb(1, opcode))).data as Buffer;
      expect(d[5] & mask).toBe(mask);
    }
  });

  test('an unknown opcode or service action is reported as not supported; bad options are INVALID FIELD IN CDB', async () => {
    const f = await ready();
    expect((await run(f, rsocCdb(1, 0xc5))).data).toEqual(Buffer.from([0, 1, 0, 0]));
    expect((await run(f, rsocCdb(2, 0x9e, 0x1f))).data).toEqual(Buffer.from([0, 1, 0, 0]));
    expectSense(await run(f, rsocCdb(4)), { ...INVALID_FIELD_IN_CDB, cdbByte: 2 });
    const cut = await run(f, rsocCdb(0, 0, 0, 16));
    expect(cut.data?.length).toBe(16);
  });

  test('a table extended with one row dispatches and reports the new command', async () => {
    const table = withOpcodes(DEFAULT_OPCODES, [
      command(0xc0, { name: 'VENDOR ECHO', cdbLength: 6, dir: 'in', usage: 'c0 00 00 00 ff 00', handler: async (ctx) => ({ data: Buffer.alloc(ctx.cdb[4], 0xee) }), pr: 'read' }),
    ]);
    const f = fixture({}, { opcodes: table });
    await run(f, '00 00 00 00 00 00');
    expect((await run(f, 'c0 00 00 00 03 00')).data).toEqual(Buffer.alloc(3, 0xee));
    expect(parseAll((await run(f, rsocCdb(0))).data as Buffer).map((d) => d.opcode)).toContain(0xc0);
    expect(() => command(0xc1, { name: 'BAD', cdbLength: 6, dir: 'none', usage: 'c0 00 00 00 00 00', handler: async () => ({}), pr: 'read' })).toThrow(/usage data/);
    // SPC-4 r37 4.2.5.1: 28h is of the 10-byte group, whatever the row says.
    expect(() => command(0x28, { name: 'BAD', cdbLength: 16, dir: 'none', usage: '28' + ' 00'.repeat(15), handler: async () => ({}), pr: 'read' })).toThrow(/10-byte group/);
  });
});

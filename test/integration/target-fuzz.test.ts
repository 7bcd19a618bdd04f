/**
 * Bad input against the project's target: random and mutated PDUs, truncated PDUs, absurd data
 * segment lengths, wrong digests, PDUs before login, unknown opcodes, CDBs with bad fields —
 * at least 100 000 inputs over many connections. Afterwards the target must still serve a
 * well-behaved client and the LUN's data must be unchanged (hash of the backing file).
 *
 * Mutated SCSI Command PDUs have their W bit cleared, so no mutation can become a well-formed
 * write with a data phase, and WRITE SAME(16) has NDOB cleared (the one write that needs no
 * data): any change to the LUN is a bug (a write applied from a malformed command). Seeds are logged; FUZZ_SEED=<n> replays a run.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { IscsiSession } from '../../src/initiator/session';
import { freePort } from '../../src/peers/tgt';
import { quickConfig } from '../../src/target/config';
import { crc32c } from '../../src/native/crc32c';
import {
  IscsiOpcode,
  encodeDataOut,
  encodeNopOut,
  encodeScsiCommand,
  encodeTaskManagementRequest,
  encodeTextRequest,
  joinPdu,
} from '../../src/target/iscsi/pdu';
import { encodeTextData } from '../../src/target/iscsi/text';
import { TargetServer } from '../../src/target/server';
import { RawClient } from '../helpers/raw-iscsi';
import { removeDir, tempDir } from '../helpers/tmp';

const IQN = 'iqn.2026-11.io.xcopy-agent.test:fuzz';
const INITIATOR = 'iqn.2026-11.io.xcopy-agent.test:fuzzer';
const TOTAL = Number(process.env.FUZZ_INPUTS ?? 100_000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** A seeded xorshift generator (the test's inputs are replayable from SEED). */
function rng(seed: number) {
  let x = seed | 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    bytes: (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256))),
  };
}

/** Valid PDUs a logged-in initiator might send, as raw bytes (seeds for the mutations). */
function seeds(): Buffer[] {
  const cdb = (bytes: number[]) => {
    const b = Buffer.alloc(16);
    Buffer.from(bytes).copy(b);
    return b;
  };
  const cmd = (c: number[], edtl: number, read: boolean, itt: number) =>
    joinPdu(encodeScsiCommand({ read, write: false, attr: 1, lun: 0, initiatorTaskTag: itt, expectedDataTransferLength: edtl, cmdSN: 1, expStatSN: 1, cdb: cdb(c) }));
  return [
    cmd([0x00, 0, 0, 0, 0, 0], 0, false, 10), // TEST UNIT READY
    cmd([0x12, 0, 0, 0, 96, 0], 96, true, 11), // INQUIRY
    cmd([0x12, 1, 0x83, 0, 255, 0], 255, true, 12), // INQUIRY VPD 83
    cmd([0x28, 0, 0, 0, 0, 8, 0, 0, 8, 0], 4096, true, 13), // READ(10)
    cmd([0x88, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 8, 0, 0], 4096, true, 14), // READ(16)
    cmd([0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], 32, true, 15), // READ CAPACITY(16)
    cmd([0x1a, 0, 0x3f, 0, 255, 0], 255, true, 16), // MODE SENSE(6)
    cmd([0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], 256, true, 17), // REPORT LUNS
    cmd([0x2a, 0, 0, 0, 0, 8, 0, 0, 1, 0], 0, false, 18), // WRITE(10) without W and data: must be refused
    cmd([0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0], 0, false, 19), // WRITE(16) likewise
    cmd([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], 0, false, 20), // UNMAP without its parameter list
    cmd([0x93, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], 0, false, 21), // WRITE SAME(16) UNMAP, no data
    joinPdu(encodeNopOut({ initiatorTaskTag: 30, cmdSN: 1, expStatSN: 1, data: Buffer.from('ping') })),
    joinPdu(encodeTextRequest({ final: true, initiatorTaskTag: 31, cmdSN: 1, expStatSN: 1, data: encodeTextData([['SendTargets', 'All']]) })),
    joinPdu(encodeTaskManagementRequest({ immediate: true, function: 1, lun: 0, initiatorTaskTag: 32, referencedTaskTag: 13, cmdSN: 1, expStatSN: 1, refCmdSN: 1, expDataSN: 0 })),
    joinPdu(encodeDataOut({ final: true, lun: 0, initiatorTaskTag: 99, targetTransferTag: 5, expStatSN: 1, dataSN: 0, bufferOffset: 0, data: Buffer.alloc(512, 0xee) })),
  ];
}

/**
 * One malformed or random input (never a SCSI Command with W set). `fatal` inputs (an absurd
 * DataSegmentLength) make the target close the connection, so they end a batch.
 */
function mutate(r: ReturnType<typeof rng>, base: Buffer[], fatal = false): Buffer {
  const kind = fatal ? 5 : [0, 1, 2, 3, 4, 6, 7][r.int(7)];
  let b: Buffer;
  if (kind === 0) {
    b = r.bytes(48 + r.int(80)); // random bytes
  } else {
    b = Buffer.from(base[r.int(base.length)]);
    const flips = 1 + r.int(6);
    for (let i = 0; i < flips; i++) {
      const at = r.int(Math.min(b.length, kind === 1 ? b.length : 48));
      b[at] ^= 1 << r.int(8);
    }
    if (kind === 2) b[r.int(48)] = r.int(256); // a whole byte of the BHS replaced
    if (kind === 3) b[0] = (b[0] & 0xc0) | r.int(64); // any opcode, known or not
    if (kind === 4 && b.length > 48) b = b.subarray(0, 48 + r.int(b.length - 48)); // short data
  }
  // Keep the data segment length honest about what follows, except in the absurd-length case
  // (kind 5), which the target must refuse by closing.
  if (kind !== 5) {
    const ahs = b[4] * 4;
    const dataLen = Math.max(0, b.length - 48 - ahs);
    b.writeUIntBE(Math.min(dataLen, 0xffffff), 5, 3);
    const want = 48 + ahs + ((dataLen + 3) & ~3);
    if (b.length < want) b = Buffer.concat([b, Buffer.alloc(want - b.length)]);
  } else {
    b.writeUIntBE(0x800000 + r.int(0x7fffff), 5, 3);
  }
  if ((b[0] & 0x3f) === IscsiOpcode.SCSI_COMMAND) {
    b[1] &= ~0x20; // W bit cleared
    // WRITE SAME(16) with NDOB = 1 changes blocks with no data phase at all (SBC-4 r15 5.50): a
    // well-formed write, not a malformed one, so the flip that would make one is undone.
    if (b[32] === 0x93) b[33] &= ~0x01;
  }
  return b;
}

test(`target survives ${TOTAL} malformed inputs, still serves, LUN unchanged (seed ${SEED})`, async () => {
  process.stdout.write(`target fuzz: seed ${SEED} (replay with FUZZ_SEED=${SEED})\n`);
  const dir = tempDir('fuzz');
  const file = path.join(dir, 'lun0.img');
  fs.writeFileSync(file, crypto.randomBytes(4 * 1024 * 1024));
  const before = sha256(file);
  const port = await freePort();
  const server = await TargetServer.start(quickConfig({ portal: `127.0.0.1:${port}`, iqn: IQN, luns: [`file:${file}`] }), {
    log: pino({ level: 'silent' }),
    keepAliveIntervalMs: 0,
  });
  const r = rng(SEED);
  const base = seeds();
  let sent = 0;
  let connections = 0;
  let closedByTarget = 0;
  try {
    while (sent < TOTAL) {
      const c = await RawClient.connect(port);
      connections++;
      const mode = r.int(10);
      if (mode === 0) {
        // Before login: anything but a Login Request closes the connection.
        for (let i = 0; i < 20 && sent < TOTAL; i++, sent++) c.send(mutate(r, base));
      } else if (mode === 1) {
        // A truncated PDU, then the connection goes away.
        c.send(mutate(r, base).subarray(0, 1 + r.int(47)));
        sent++;
      } else {
        const digests = mode === 2;
        if (!(await c.login(IQN, INITIATOR, { digests }))) throw new Error('the fuzzer could not log in');
        const batch = 500 + r.int(1500);
        for (let i = 0; i < batch && sent < TOTAL && !c.closed; i++, sent++) {
          // The last input of a batch may be fatal: an absurd length or a wrong header digest.
          const last = i === batch - 1 && r.int(2) === 0;
          let b = mutate(r, base, last && !digests);
          if (digests) {
            // Header digest (RFC 7143 13.1); a wrong one must close the connection.
            const hd = Buffer.alloc(4);
            hd.writeUInt32LE((crc32c(b.subarray(0, 48)) ^ (last ? 1 : 0)) >>> 0, 0);
            b = Buffer.concat([b.subarray(0, 48), hd, b.subarray(48)]);
          }
          c.send(b);
          // Let replies and a possible close arrive, so inputs are counted only while the
          // connection is open.
          if (i % 20 === 19) await new Promise((res) => setImmediate(res));
        }
      }
      await new Promise((res) => setTimeout(res, 5));
      if (c.closed) closedByTarget++;
      c.close();
    }
    // A well-behaved client is still served, and nothing was written.
    const s = await IscsiSession.connect(`iscsi://127.0.0.1:${port}/${IQN}/0`, { initiatorName: 'iqn.2026-11.io.xcopy-agent.test:good' });
    try {
      const data = await s.read16(0n, 8192);
      expect(crypto.createHash('sha256').update(data).digest('hex')).toBe(before);
    } finally {
      await s.close();
    }
    await server.stop();
    expect(sha256(file)).toBe(before);
    expect(sent).toBeGreaterThanOrEqual(TOTAL);
    process.stdout.write(`target fuzz: ${sent} inputs over ${connections} connections (${closedByTarget} closed by the target)\n`);
    expect(connections).toBeGreaterThan(20);
  } finally {
    await server.stop();
    removeDir(dir);
  }
}, Number(process.env.FUZZ_TIMEOUT_MS ?? 300_000));


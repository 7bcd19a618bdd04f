/**
 * Task management over the wire stops a running EXTENDED COPY: ABORT TASK and LUN RESET from a
 * raw iSCSI client reach the copy manager, which stops at the next chunk boundary (the copy's
 * counters say so, and the destination holds less than the whole copy). The copy runs between
 * two tgt LUNs behind the project's target (remote stores), so it is slow enough to be caught.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import pino from 'pino';
import { IscsiSession } from '../../src/initiator/session';
import { Tgt, freePort } from '../../src/peers/tgt';
import { encodeExtendedCopyCdb } from '../../src/scsi/cdb';
import { encodeExtendedCopyLid1, type SegmentDescriptor } from '../../src/scsi/xcopy';
import { cscdOfLun } from '../../src/agent/apply-obf';
import { quickConfig } from '../../src/target/config';
import { IscsiOpcode, decodeTaskManagementResponse, encodeScsiCommand, encodeTaskManagementRequest, joinPdu, type RawPdu } from '../../src/target/iscsi/pdu';
import { TargetServer } from '../../src/target/server';
import { copyManagerOf } from '../../src/xcopy';
import { RawClient } from '../helpers/raw-iscsi';
import { removeDir, tempDir, waitUntil } from '../helpers/tmp';

const IQN = 'iqn.2026-11.io.xcopy-agent.test:xabort';
const MiB = 1024 * 1024;
const SIZE = 256 * MiB;
let dir: string;
let tgt: Tgt;
let server: TargetServer;
let port: number;
let list: Buffer;

beforeAll(async () => {
  dir = tempDir('xcopy-abort');
  tgt = await Tgt.start({ dir, luns: [{ size: SIZE }, { size: SIZE }] });
  fs.writeFileSync(tgt.lunPaths[0], crypto.randomBytes(SIZE));
  port = await freePort();
  server = await TargetServer.start(quickConfig({ portal: `127.0.0.1:${port}`, iqn: IQN, luns: [tgt.url(1), tgt.url(2)] }), { log: pino({ level: 'silent' }) });
  // The parameter list: LUN 0 → LUN 1, the whole LUN in 02h segments of 65535 blocks.
  const cscd = async (lun: number) => {
    const s = await IscsiSession.connect(`iscsi://127.0.0.1:${port}/${IQN}/${lun}`);
    try {
      return (await cscdOfLun(s, 512))!;
    } finally {
      await s.close();
    }
  };
  const segments: SegmentDescriptor[] = [];
  for (let at = 0; at < SIZE / 512; at += 65535) {
    const n = Math.min(65535, SIZE / 512 - at);
    segments.push({ kind: 'blockToBlock', dc: false, cat: false, sourceCscdDescriptorId: 0, destinationCscdDescriptorId: 1, blockDeviceNumberOfBlocks: n, sourceBlockDeviceLba: BigInt(at), destinationBlockDeviceLba: BigInt(at) });
  }
  list = encodeExtendedCopyLid1({ listIdentifier: 3, listIdUsage: 0, cscdDescriptors: [await cscd(0), await cscd(1)], segmentDescriptors: segments });
});

afterAll(async () => {
  await server?.stop();
  await tgt?.stop();
  removeDir(dir);
});

const cm = () => copyManagerOf(server.model.nodes.get(IQN)!.tpgs[0].luns.get(0)!)!;

/** Starts the copy on LUN 1 (ITT 5) and waits until the copy manager moves data. */
async function startCopy(c: RawClient): Promise<void> {
  // TEST UNIT READY first: it takes the power-on unit attention of this new I_T nexus.
  c.send(joinPdu(encodeScsiCommand({ read: false, write: false, attr: 1, lun: 1, initiatorTaskTag: 4, expectedDataTransferLength: 0, cmdSN: 1, expStatSN: 1, cdb: Buffer.alloc(6) })));
  expect(await c.next(10_000)).toBeDefined();
  const before = cm().counters.bytes;
  c.send(
    joinPdu(
      encodeScsiCommand({ read: false, write: true, attr: 1, lun: 1, initiatorTaskTag: 5, expectedDataTransferLength: list.length, cmdSN: 2, expStatSN: 2, cdb: encodeExtendedCopyCdb({ parameterListLength: list.length }), data: list }),
    ),
  );
  await waitUntil(() => cm().counters.bytes > before, 10_000, 'the copy to start');
}

async function tmfResponse(c: RawClient): Promise<number> {
  for (;;) {
    const p: RawPdu | undefined = await c.next(10_000);
    if (!p) throw new Error('no Task Management Function Response');
    if ((p.bhs[0] & 0x3f) === IscsiOpcode.TASK_MANAGEMENT_RESPONSE) return decodeTaskManagementResponse(p).response;
  }
}

test.each([
  ['ABORT TASK', 1],
  ['LOGICAL UNIT RESET', 5],
])('%s stops a running EXTENDED COPY at a chunk boundary', async (_name, fn) => {
  const c = await RawClient.connect(port);
  try {
    expect(await c.login(IQN, `iqn.2026-11.io.xcopy-agent.test:tmf${fn}`)).toBe(true);
    const aborted = cm().counters.aborted;
    const bytes0 = cm().counters.bytes;
    await startCopy(c);
    c.send(joinPdu(encodeTaskManagementRequest({ immediate: true, function: fn, lun: 1, initiatorTaskTag: 6, referencedTaskTag: 5, cmdSN: 3, expStatSN: 2, refCmdSN: 2, expDataSN: 0 })));
    expect(await tmfResponse(c)).toBe(0); // function complete
    await waitUntil(() => cm().runningCopies === 0, 10_000, 'the copy to stop');
    expect(cm().counters.aborted).toBe(aborted + 1);
    expect(cm().counters.bytes - bytes0).toBeLessThan(BigInt(SIZE));
  } finally {
    c.close();
  }
});

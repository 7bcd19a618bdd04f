/**
 * The transport's task is also the SCSI layer's request (src/target/iscsi/task.ts): its fields
 * come from the command PDU, and what most commands never use — the abort signal, the promise of
 * its end — is made on first use and still behaves as an AbortController's and a promise would.
 */
import { decodeScsiCommand, encodeScsiCommand } from '../../../../src/target/iscsi/pdu';
import { Task } from '../../../../src/target/iscsi/task';
import { requestAborted } from '../../../../src/target/scsi/types';

const NEXUS = { initiatorName: 'iqn.2026-11.test:i', isid: '400001370000', targetPortalGroupTag: 1, id: 'n1' };

function task(): Task {
  const cdb = Buffer.from('2a000000001000000800', 'hex');
  const pdu = decodeScsiCommand(
    encodeScsiCommand({ final: true, write: true, attr: 1, lun: 3, initiatorTaskTag: 77, expectedDataTransferLength: 4096, cmdSN: 5, expStatSN: 1, cdb, data: Buffer.alloc(0) }),
  );
  return new Task(pdu, NEXUS);
}

test('the request fields are the command PDU\'s', () => {
  const t = task();
  expect(t.nexus).toBe(NEXUS);
  expect([t.itt, t.cmdSN, t.lun, t.expectedDataTransferLength, t.taskAttribute, t.write, t.read]).toEqual([77, 5, 3, 4096, 1, true, false]);
  expect(t.cdb.subarray(0, 10).toString('hex')).toBe('2a000000001000000800');
  expect(t.lunRaw.toString('hex')).toBe('0003000000000000');
});

test('aborted before the signal is first read: the signal is born aborted; requestAborted needs no signal', () => {
  const t = task();
  expect(requestAborted(t)).toBe(false);
  t.abort();
  expect(requestAborted(t)).toBe(true);
  expect(t.signal.aborted).toBe(true);
});

test('a signal read before the abort fires its listeners on abort, and is the same signal each time', () => {
  const t = task();
  const s = t.signal;
  const heard = jest.fn();
  s.addEventListener('abort', heard);
  expect(t.signal).toBe(s);
  t.abort();
  expect(heard).toHaveBeenCalledTimes(1);
  expect(s.aborted).toBe(true);
});

test('whenDone settles once finish() is called, before or after it is asked for', async () => {
  const t = task();
  let settled = false;
  const p = t.whenDone().then(() => (settled = true));
  await Promise.resolve();
  expect(settled).toBe(false);
  t.finish();
  t.finish();
  await p;
  expect(settled).toBe(true);
  await expect(t.whenDone()).resolves.toBeUndefined();
});

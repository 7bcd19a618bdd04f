/**
 * The error hierarchy (docs/errors.md): every error class the project raises descends from
 * AgentError with a registry code, keeps its own `name` and `instanceof`, and maps to the exit
 * status the table documents.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HoldTimeoutError } from '../../src/cow/cow-store';
import { ObfFullError, ObfIoError, SourceReadError } from '../../src/cow/obf-writer';
import { AgentError, ErrorCodes, ExitStatus, IscsiError, exitStatusOf } from '../../src/errors';
import { ManagementError } from '../../src/mgmt/client';
import { RpcError } from '../../src/mgmt/jsonrpc';
import { Sense } from '../../src/scsi/sense-reasons';
import { CaptureReadError } from '../../src/cow/capture-commit';
import { StoreError } from '../../src/store/store';
import { SenseError, StatusError } from '../../src/target/scsi/sense-errors';
import { CopyAbortError } from '../../src/xcopy/sense';

const cases: Array<[string, AgentError, string, number]> = [
  ['SenseError', new SenseError(Sense.WRITE_PROTECTED), 'ERR_SCSI_CHECK_CONDITION', ExitStatus.DATA_PROTECT],
  ['StatusError', new StatusError(0x18), 'ERR_SCSI_STATUS', ExitStatus.SCSI_OTHER],
  ['StoreError', new StoreError({ kind: 'read-error' }, 'x'), 'ERR_STORE', ExitStatus.MEDIUM_HARDWARE],
  ['CaptureReadError', new CaptureReadError({ kind: 'read-error' }, 'x'), 'ERR_STORE', ExitStatus.MEDIUM_HARDWARE],
  ['CopyAbortError', new CopyAbortError({ reason: Sense.THIRD_PARTY_DEVICE_FAILURE, segment: 0, message: 'x' }), 'ERR_XCOPY_ABORTED', ExitStatus.COPY_ABORTED],
  ['HoldTimeoutError', new HoldTimeoutError('x'), 'ERR_HOLD_TIMEOUT', ExitStatus.TIMEOUT],
  ['ObfFullError', new ObfFullError('x'), 'ERR_OBF_FULL', ExitStatus.DATA_PROTECT],
  ['ObfIoError', new ObfIoError('x'), 'ERR_OBF_IO', ExitStatus.MEDIUM_HARDWARE],
  ['SourceReadError', new SourceReadError('x'), 'ERR_SOURCE_READ', ExitStatus.MEDIUM_HARDWARE],
  ['RpcError', new RpcError(-32602, 'x'), 'ERR_MGMT_RPC', ExitStatus.INTERNAL],
  ['ManagementError', new ManagementError('ERR_MGMT_TIMEOUT', 'x'), 'ERR_MGMT_TIMEOUT', ExitStatus.TIMEOUT],
];

test.each(cases)('%s is an AgentError with its code, name and exit status', (name, err, code, status) => {
  expect(err).toBeInstanceOf(AgentError);
  expect(err).toBeInstanceOf(Error);
  expect(err.name).toBe(name);
  expect(err.code).toBe(code);
  expect(exitStatusOf(err)).toBe(status);
});

test('subclasses keep instanceof of their parents', () => {
  expect(new CaptureReadError({ kind: 'read-error' }, 'x')).toBeInstanceOf(StoreError);
});

test('CHECK CONDITION maps by sense key on both sides (ddpt numbering)', () => {
  expect(exitStatusOf(new SenseError(Sense.INVALID_COMMAND_OPERATION_CODE))).toBe(ExitStatus.INVALID_OPCODE);
  const peer = new IscsiError('ERR_SCSI_CHECK_CONDITION', 'x', { senseKey: 0x0a, asc: 0x0d, ascq: 0x02 });
  expect(exitStatusOf(peer)).toBe(ExitStatus.COPY_ABORTED);
});

test('a management error with a remote code this build does not register is ERR_MGMT_RPC, the code kept', () => {
  const known = new ManagementError('ERR_SNAPSHOT_NOT_FOUND', 'snapshot s1 not found');
  expect(known.code).toBe('ERR_SNAPSHOT_NOT_FOUND');
  expect(known.remoteCode).toBeUndefined();
  const unknown = new ManagementError('ERR_FROM_A_NEWER_TARGET', 'x');
  expect(unknown.code).toBe('ERR_MGMT_RPC');
  expect(unknown.remoteCode).toBe('ERR_FROM_A_NEWER_TARGET');
});

test('docs/errors.md lists every registry code', () => {
  const doc = fs.readFileSync(path.join(__dirname, '../../docs/errors.md'), 'utf8');
  for (const code of Object.keys(ErrorCodes)) expect(doc).toContain(`\`${code}\``);
});

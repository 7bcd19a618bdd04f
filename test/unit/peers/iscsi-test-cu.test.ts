import { parseCunitOutput } from '../../../src/peers/iscsi-test-cu';

// Excerpt of iscsi-test-cu 1.19 output against tgt 1.0.85 (this machine, -d -t ALL).
const TGT_EXCERPT = `
     CUnit - A unit testing framework for C - Version 2.1-3

Suite: CompareAndWrite
  Test: Simple ...    [SKIPPED] COMPAREANDWRITE is not implemented.
    [SKIPPED] COMPAREANDWRITE is not implemented.
passed
  Test: Unwritten ...    [SKIPPED] COMPAREANDWRITE is not implemented.
passed
Suite: GetLBAStatus
  Test: Simple ...passed
  Test: BeyondEol ...    [FAILED] GET_LBA_STATUS successful but should have failed with ILLEGAL_REQUEST(0x05)/LBA_OUT_OF_RANGE(0x2100)
FAILED
    1. test_get_lba_status_beyond_eol.c:45  - CU_FAIL
  Test: UnmapSingle ...    [SKIPPED] Logical unit is fully provisioned. Skipping test
passed
Suite: iSCSITMF
  Test: AbortTaskSimpleAsync ...passed
  Test: LUNResetSimpleAsync ...passed

Run Summary:    Type  Total    Ran Passed Failed Inactive
               tests    230    230    222      8        0
`;

test('CUnit output: skips counted apart from passes, failures explained', () => {
  const r = parseCunitOutput(TGT_EXCERPT);
  expect([...r.tests.entries()]).toEqual([
    ['CompareAndWrite.Simple', 'skip'],
    ['CompareAndWrite.Unwritten', 'skip'],
    ['GetLBAStatus.Simple', 'pass'],
    ['GetLBAStatus.BeyondEol', 'fail'],
    ['GetLBAStatus.UnmapSingle', 'skip'],
    ['iSCSITMF.AbortTaskSimpleAsync', 'pass'],
    ['iSCSITMF.LUNResetSimpleAsync', 'pass'],
  ]);
  expect([r.pass, r.fail, r.skip]).toEqual([3, 1, 3]);
  expect(r.failures).toEqual([
    'GetLBAStatus.BeyondEol: [FAILED] GET_LBA_STATUS successful but should have failed with ILLEGAL_REQUEST(0x05)/LBA_OUT_OF_RANGE(0x2100)',
  ]);
});

test('a [FAILED] printed by the suite cleanup after "passed" is a cleanup remark, not a failure', () => {
  const r = parseCunitOutput(
    'Suite: Reserve6\n  Test: LUNReset ...passed    [FAILED] PRIN command: failed with sense. SENSE KEY:UNIT_ATTENTION(6) ASCQ:BUS_RESET(0x2900)\n\nSuite: Sanitize\n',
  );
  expect(r.tests.get('Reserve6.LUNReset')).toBe('pass');
  expect(r.failures).toEqual([]);
  expect(r.cleanupRemarks).toEqual([
    'Reserve6.LUNReset (suite cleanup): [FAILED] PRIN command: failed with sense. SENSE KEY:UNIT_ATTENTION(6) ASCQ:BUS_RESET(0x2900)',
  ]);
});

test('a test cut off by a crash is not counted', () => {
  const r = parseCunitOutput('Suite: Read10\n  Test: Simple ...passed\n  Test: BeyondEol ...');
  expect([...r.tests.keys()]).toEqual(['Read10.Simple']);
});

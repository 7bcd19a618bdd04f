import fc from 'fast-check';
import {
  ExtendedCopySa,
  MaintenanceIn,
  Opcode,
  ReceiveCopyResultsSa,
  ScsiStatus,
  SenseKey,
  ServiceActionIn16,
  ascName,
  opcodeName,
  scsiStatusName,
  senseKeyName,
} from '../../../src/scsi/constants';

describe('Opcode and opcodeName', () => {
  // Every opcode a disk target implements (SPC-4 / SBC-3), with its number and name.
  const table: Array<[Opcode, number, string]> = [
    [Opcode.TEST_UNIT_READY, 0x00, 'TEST UNIT READY'],
    [Opcode.REQUEST_SENSE, 0x03, 'REQUEST SENSE'],
    [Opcode.READ_6, 0x08, 'READ(6)'],
    [Opcode.WRITE_6, 0x0a, 'WRITE(6)'],
    [Opcode.INQUIRY, 0x12, 'INQUIRY'],
    [Opcode.MODE_SELECT_6, 0x15, 'MODE SELECT(6)'],
    [Opcode.RESERVE_6, 0x16, 'RESERVE(6)'],
    [Opcode.RELEASE_6, 0x17, 'RELEASE(6)'],
    [Opcode.MODE_SENSE_6, 0x1a, 'MODE SENSE(6)'],
    [Opcode.START_STOP_UNIT, 0x1b, 'START STOP UNIT'],
    [Opcode.PREVENT_ALLOW_MEDIUM_REMOVAL, 0x1e, 'PREVENT ALLOW MEDIUM REMOVAL'],
    [Opcode.READ_CAPACITY_10, 0x25, 'READ CAPACITY(10)'],
    [Opcode.READ_10, 0x28, 'READ(10)'],
    [Opcode.WRITE_10, 0x2a, 'WRITE(10)'],
    [Opcode.WRITE_AND_VERIFY_10, 0x2e, 'WRITE AND VERIFY(10)'],
    [Opcode.VERIFY_10, 0x2f, 'VERIFY(10)'],
    [Opcode.PRE_FETCH_10, 0x34, 'PRE-FETCH(10)'],
    [Opcode.SYNCHRONIZE_CACHE_10, 0x35, 'SYNCHRONIZE CACHE(10)'],
    [Opcode.WRITE_SAME_10, 0x41, 'WRITE SAME(10)'],
    [Opcode.UNMAP, 0x42, 'UNMAP'],
    [Opcode.MODE_SELECT_10, 0x55, 'MODE SELECT(10)'],
    [Opcode.RESERVE_10, 0x56, 'RESERVE(10)'],
    [Opcode.RELEASE_10, 0x57, 'RELEASE(10)'],
    [Opcode.MODE_SENSE_10, 0x5a, 'MODE SENSE(10)'],
    [Opcode.PERSISTENT_RESERVE_IN, 0x5e, 'PERSISTENT RESERVE IN'],
    [Opcode.PERSISTENT_RESERVE_OUT, 0x5f, 'PERSISTENT RESERVE OUT'],
    [Opcode.EXTENDED_COPY, 0x83, 'EXTENDED COPY'],
    [Opcode.RECEIVE_COPY_RESULTS, 0x84, 'RECEIVE COPY RESULTS'],
    [Opcode.READ_16, 0x88, 'READ(16)'],
    [Opcode.COMPARE_AND_WRITE, 0x89, 'COMPARE AND WRITE'],
    [Opcode.WRITE_16, 0x8a, 'WRITE(16)'],
    [Opcode.ORWRITE_16, 0x8b, 'ORWRITE(16)'],
    [Opcode.WRITE_AND_VERIFY_16, 0x8e, 'WRITE AND VERIFY(16)'],
    [Opcode.VERIFY_16, 0x8f, 'VERIFY(16)'],
    [Opcode.PRE_FETCH_16, 0x90, 'PRE-FETCH(16)'],
    [Opcode.SYNCHRONIZE_CACHE_16, 0x91, 'SYNCHRONIZE CACHE(16)'],
    [Opcode.WRITE_SAME_16, 0x93, 'WRITE SAME(16)'],
    [Opcode.SERVICE_ACTION_IN_16, 0x9e, 'SERVICE ACTION IN(16)'],
    [Opcode.REPORT_LUNS, 0xa0, 'REPORT LUNS'],
    [Opcode.MAINTENANCE_IN, 0xa3, 'MAINTENANCE IN'],
    [Opcode.READ_12, 0xa8, 'READ(12)'],
    [Opcode.WRITE_12, 0xaa, 'WRITE(12)'],
    [Opcode.WRITE_AND_VERIFY_12, 0xae, 'WRITE AND VERIFY(12)'],
    [Opcode.VERIFY_12, 0xaf, 'VERIFY(12)'],
  ];

  it.each(table)('opcode %#: value and name', (op, value, name) => {
    expect(op).toBe(value);
    expect(opcodeName(op)).toBe(name);
  });

  it('names service actions', () => {
    expect(ServiceActionIn16.READ_CAPACITY_16).toBe(0x10);
    expect(ServiceActionIn16.GET_LBA_STATUS).toBe(0x12);
    expect(MaintenanceIn.REPORT_SUPPORTED_OPERATION_CODES).toBe(0x0c);
    expect(opcodeName(Opcode.SERVICE_ACTION_IN_16, ServiceActionIn16.READ_CAPACITY_16)).toBe('READ CAPACITY(16)');
    expect(opcodeName(Opcode.SERVICE_ACTION_IN_16, ServiceActionIn16.GET_LBA_STATUS)).toBe('GET LBA STATUS');
    expect(opcodeName(Opcode.MAINTENANCE_IN, MaintenanceIn.REPORT_SUPPORTED_OPERATION_CODES)).toBe(
      'REPORT SUPPORTED OPERATION CODES',
    );
    expect(opcodeName(Opcode.EXTENDED_COPY, ExtendedCopySa.EXTENDED_COPY_LID1)).toBe('EXTENDED COPY(LID1)');
    expect(opcodeName(Opcode.EXTENDED_COPY, ExtendedCopySa.POPULATE_TOKEN)).toBe('POPULATE TOKEN');
    expect(opcodeName(Opcode.RECEIVE_COPY_RESULTS, ReceiveCopyResultsSa.OPERATING_PARAMETERS)).toBe(
      'RECEIVE COPY OPERATING PARAMETERS',
    );
  });

  it('has the EXTENDED COPY and RECEIVE COPY RESULTS service action numbers', () => {
    expect([
      ExtendedCopySa.EXTENDED_COPY_LID1,
      ExtendedCopySa.EXTENDED_COPY_LID4,
      ExtendedCopySa.POPULATE_TOKEN,
      ExtendedCopySa.WRITE_USING_TOKEN,
      ExtendedCopySa.COPY_OPERATION_ABORT,
    ]).toEqual([0x00, 0x01, 0x10, 0x11, 0x1c]);
    expect([
      ReceiveCopyResultsSa.COPY_STATUS,
      ReceiveCopyResultsSa.RECEIVE_DATA,
      ReceiveCopyResultsSa.OPERATING_PARAMETERS,
      ReceiveCopyResultsSa.FAILED_SEGMENT_DETAILS,
      ReceiveCopyResultsSa.COPY_STATUS_LID4,
      ReceiveCopyResultsSa.RECEIVE_ROD_TOKEN_INFORMATION,
    ]).toEqual([0x00, 0x01, 0x03, 0x04, 0x05, 0x07]);
  });

  it('falls back to hex for unknown opcodes and service actions', () => {
    expect(opcodeName(0xc0)).toBe('OPCODE 0xc0');
    expect(opcodeName(Opcode.SERVICE_ACTION_IN_16, 0x1f)).toBe('SERVICE ACTION IN(16)/0x1f');
    // An opcode without service actions ignores the argument.
    expect(opcodeName(Opcode.READ_16, 0x05)).toBe('READ(16)');
  });

  it('returns a non-empty name for every byte', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 31 }), (op, sa) => {
        expect(opcodeName(op).length).toBeGreaterThan(0);
        expect(opcodeName(op, sa).length).toBeGreaterThan(0);
      }),
    );
  });
});

describe('ScsiStatus and scsiStatusName', () => {
  it.each([
    [ScsiStatus.GOOD, 0x00, 'GOOD'],
    [ScsiStatus.CHECK_CONDITION, 0x02, 'CHECK CONDITION'],
    [ScsiStatus.CONDITION_MET, 0x04, 'CONDITION MET'],
    [ScsiStatus.BUSY, 0x08, 'BUSY'],
    [ScsiStatus.RESERVATION_CONFLICT, 0x18, 'RESERVATION CONFLICT'],
    [ScsiStatus.TASK_SET_FULL, 0x28, 'TASK SET FULL'],
    [ScsiStatus.ACA_ACTIVE, 0x30, 'ACA ACTIVE'],
    [ScsiStatus.TASK_ABORTED, 0x40, 'TASK ABORTED'],
  ])('status %#', (status, value, name) => {
    expect(status).toBe(value);
    expect(scsiStatusName(status)).toBe(name);
  });

  it('falls back to hex', () => {
    expect(scsiStatusName(0x01)).toBe('STATUS 0x01');
  });
});

describe('SenseKey and senseKeyName', () => {
  it('names all 16 sense keys with the standard words', () => {
    const keys = [
      SenseKey.NO_SENSE,
      SenseKey.RECOVERED_ERROR,
      SenseKey.NOT_READY,
      SenseKey.MEDIUM_ERROR,
      SenseKey.HARDWARE_ERROR,
      SenseKey.ILLEGAL_REQUEST,
      SenseKey.UNIT_ATTENTION,
      SenseKey.DATA_PROTECT,
      SenseKey.BLANK_CHECK,
      SenseKey.VENDOR_SPECIFIC,
      SenseKey.COPY_ABORTED,
      SenseKey.ABORTED_COMMAND,
      SenseKey.EQUAL,
      SenseKey.VOLUME_OVERFLOW,
      SenseKey.MISCOMPARE,
      SenseKey.COMPLETED,
    ];
    expect(keys).toEqual([...Array(16).keys()]);
    const names = keys.map(senseKeyName);
    expect(new Set(names).size).toBe(16);
    expect(names[SenseKey.ILLEGAL_REQUEST]).toBe('ILLEGAL REQUEST');
    expect(names[SenseKey.COPY_ABORTED]).toBe('COPY ABORTED');
    expect(names[SenseKey.UNIT_ATTENTION]).toBe('UNIT ATTENTION');
    expect(names[SenseKey.MISCOMPARE]).toBe('MISCOMPARE');
  });

  it('falls back to hex outside 0..15', () => {
    expect(senseKeyName(16)).toBe('SENSE KEY 0x10');
    expect(senseKeyName(-1)).toBe('SENSE KEY -1');
  });
});

describe('ascName', () => {
  it.each([
    [0x00, 0x00, 'NO ADDITIONAL SENSE INFORMATION'],
    [0x00, 0x16, 'OPERATION IN PROGRESS'],
    [0x04, 0x00, 'LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE'],
    [0x04, 0x0b, 'LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN STANDBY STATE'],
    [0x08, 0x04, 'UNREACHABLE COPY TARGET'],
    [0x0c, 0x00, 'WRITE ERROR'],
    [0x0d, 0x01, 'THIRD PARTY DEVICE FAILURE'],
    [0x0d, 0x02, 'COPY TARGET DEVICE NOT REACHABLE'],
    [0x11, 0x00, 'UNRECOVERED READ ERROR'],
    [0x1a, 0x00, 'PARAMETER LIST LENGTH ERROR'],
    [0x1d, 0x00, 'MISCOMPARE DURING VERIFY OPERATION'],
    [0x20, 0x00, 'INVALID COMMAND OPERATION CODE'],
    [0x21, 0x00, 'LOGICAL BLOCK ADDRESS OUT OF RANGE'],
    [0x24, 0x00, 'INVALID FIELD IN CDB'],
    [0x25, 0x00, 'LOGICAL UNIT NOT SUPPORTED'],
    [0x26, 0x00, 'INVALID FIELD IN PARAMETER LIST'],
    [0x26, 0x06, 'TOO MANY TARGET DESCRIPTORS'],
    [0x26, 0x07, 'UNSUPPORTED TARGET DESCRIPTOR TYPE CODE'],
    [0x26, 0x08, 'TOO MANY SEGMENT DESCRIPTORS'],
    [0x26, 0x09, 'UNSUPPORTED SEGMENT DESCRIPTOR TYPE CODE'],
    [0x26, 0x0a, 'UNEXPECTED INEXACT SEGMENT'],
    [0x26, 0x0b, 'INLINE DATA LENGTH EXCEEDED'],
    [0x26, 0x0d, 'COPY SEGMENT GRANULARITY VIOLATION'],
    [0x27, 0x00, 'WRITE PROTECTED'],
    [0x28, 0x00, 'NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED'],
    [0x29, 0x00, 'POWER ON, RESET, OR BUS DEVICE RESET OCCURRED'],
    [0x29, 0x07, 'I_T NEXUS LOSS OCCURRED'],
    [0x2a, 0x09, 'CAPACITY DATA HAS CHANGED'],
    [0x2c, 0x00, 'COMMAND SEQUENCE ERROR'],
    [0x3a, 0x00, 'MEDIUM NOT PRESENT'],
    [0x3f, 0x0e, 'REPORTED LUNS DATA HAS CHANGED'],
    [0x44, 0x00, 'INTERNAL TARGET FAILURE'],
    [0x55, 0x03, 'INSUFFICIENT RESOURCES'],
  ])('%p/%p', (asc, ascq, name) => {
    expect(ascName(asc, ascq)).toBe(name);
  });

  // The codes docs/xcopy.md "Validation order" names: each must have a name, not the fallback.
  const required: Array<[number, number[]]> = [
    [0x00, [0x00, 0x16, 0x20]],
    [0x04, [0x00, 0x01, 0x02, 0x03, 0x04, 0x07, 0x09, 0x0a, 0x0b, 0x0c]],
    [0x08, [0x04]],
    [0x0c, [0x00]],
    [0x0d, [0x00, 0x01, 0x02, 0x03, 0x04, 0x05]],
    [0x11, [0x00]],
    [0x1a, [0x00]],
    [0x1d, [0x00]],
    [0x20, [0x00]],
    [0x21, [0x00]],
    [0x23, [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a]],
    [0x24, [0x00]],
    [0x25, [0x00]],
    [0x26, [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x15, 0x16]],
    [0x27, [0x00]],
    [0x28, [0x00]],
    [0x29, [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07]],
    [0x2a, [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09]],
    [0x2c, [0x00]],
    [0x3a, [0x00]],
    [0x3f, [0x0e]],
    [0x44, [0x00]],
    [0x55, [0x00, 0x01, 0x02, 0x03, 0x04, 0x0c, 0x0d]],
  ];
  it.each(required.map(([asc, ascqs]) => [`0x${asc.toString(16)}`, asc, ascqs] as const))(
    'names every required ASCQ of ASC %s',
    (_label, asc, ascqs) => {
      for (const ascq of ascqs) expect(ascName(asc, ascq)).not.toMatch(/^ASC 0x/);
    },
  );

  it('falls back to "ASC 0x.. ASCQ 0x.." for unknown pairs', () => {
    expect(ascName(0x7a, 0x33)).toBe('ASC 0x7a ASCQ 0x33');
    expect(ascName(0x24, 0x99)).toBe('ASC 0x24 ASCQ 0x99');
    expect(ascName(0x124, 0x00)).toBe('ASC 0x124 ASCQ 0x00'); // not a byte: no false match with 24h
  });

  it('answers every byte pair with a name or the fallback', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), (asc, ascq) => {
        const name = ascName(asc, ascq);
        expect(name.length).toBeGreaterThan(0);
        if (name.startsWith('ASC 0x')) {
          expect(name).toBe(`ASC 0x${asc.toString(16).padStart(2, '0')} ASCQ 0x${ascq.toString(16).padStart(2, '0')}`);
        }
      }),
    );
  });
});

/**
 * The one table of sense reasons (src/scsi/sense-reasons.ts): every reason is named by SPC-4
 * Annex D, no triple appears twice, buildSense writes both formats, and senseIs recognises a
 * reason in an initiator's IscsiError, the target's SenseError and decoded sense data.
 */
import { ExitStatus, IscsiError, exitStatusOfSense } from '../../../src/errors';
import { decodeSense } from '../../../src/scsi/sense';
import { Sense, buildSense, senseIs } from '../../../src/scsi/sense-reasons';
import { SenseError } from '../../../src/target/scsi/sense-errors';
import { hex } from '../../helpers/codec';

describe('Sense', () => {
  test('every reason has a sense key, ASC/ASCQ and the Annex D description as its name', () => {
    for (const [key, r] of Object.entries(Sense)) {
      expect(r.key).toBeGreaterThanOrEqual(0);
      expect(r.key).toBeLessThanOrEqual(0xf);
      expect(r.name).not.toMatch(/^ASC 0x/);
      // The key is the description in upper snake case, or the sense key's name then it.
      expect(key.endsWith(r.name.replace(/[^A-Z0-9]+/g, '_').replace(/_$/, ''))).toBe(true);
      expect(Object.isFrozen(r)).toBe(true);
    }
  });

  test("the CLI's exit statuses by sense (src/errors.ts, below this table) agree with it", () => {
    const of = (r: { key: number; asc: number; ascq: number }) => exitStatusOfSense(r.key, r.asc, r.ascq);
    expect(of(Sense.INVALID_COMMAND_OPERATION_CODE)).toBe(ExitStatus.INVALID_OPCODE);
    expect(of(Sense.INVALID_FIELD_IN_CDB)).toBe(ExitStatus.ILLEGAL_REQUEST);
    expect(of(Sense.COPY_TARGET_DEVICE_NOT_REACHABLE)).toBe(ExitStatus.COPY_ABORTED);
  });

  test('no sense key/ASC/ASCQ triple is listed twice', () => {
    const triples = Object.values(Sense).map((r) => `${r.key}/${r.asc}/${r.ascq}`);
    expect(new Set(triples).size).toBe(triples.length);
  });
});

describe('buildSense', () => {
  test('fixed format (SPC-4 r37 4.5.3): key, ASC/ASCQ and the field pointer', () => {
    expect(buildSense(Sense.INVALID_FIELD_IN_CDB, { field: { cdbByte: 2, bit: 7 } })).toEqual(
      hex(`
        70 00 05 00 00 00 00 0a  # current, fixed; ILLEGAL REQUEST; ADDITIONAL SENSE LENGTH 10
        00 00 00 00 24 00 00     # CSI; INVALID FIELD IN CDB; FRU
        cf 00 02                 # SKSV, C/D, BPV, bit 7; CDB byte 2
      `),
    );
  });

  test('descriptor format (SPC-4 r37 4.5.2): header and a sense key specific descriptor', () => {
    expect(buildSense(Sense.SPACE_ALLOCATION_FAILED_WRITE_PROTECT, {}, true)).toEqual(hex('72 07 27 07 00 00 00 00'));
    const s = decodeSense(buildSense(Sense.INVALID_FIELD_IN_PARAMETER_LIST, { field: { paramByte: 9 } }, true));
    expect(s).toMatchObject({ format: 'descriptor', senseKey: 0x5, asc: 0x26, ascq: 0x00 });
    expect(s.senseKeySpecific).toEqual({ kind: 'fieldPointer', cd: false, bpv: false, bitPointer: 0, fieldPointer: 9 });
  });
});

describe('senseIs', () => {
  const notReachable = new IscsiError('ERR_SCSI_CHECK_CONDITION', 'copy target not reachable', {
    scsiStatus: 0x02,
    senseKey: 0x0a,
    asc: 0x0d,
    ascq: 0x02,
  });

  test('matches an IscsiError on sense key, ASC and ASCQ together', () => {
    expect(senseIs(notReachable, Sense.COPY_TARGET_DEVICE_NOT_REACHABLE)).toBe(true);
    expect(senseIs(notReachable, Sense.THIRD_PARTY_DEVICE_FAILURE)).toBe(false); // ASCQ differs
    expect(senseIs({ senseKey: 0x05, asc: 0x0d, ascq: 0x02 }, Sense.COPY_TARGET_DEVICE_NOT_REACHABLE)).toBe(false); // key differs
  });

  test('matches decoded sense data and the target side SenseError', () => {
    expect(senseIs(decodeSense(buildSense(Sense.UNREACHABLE_COPY_TARGET, {}, true)), Sense.UNREACHABLE_COPY_TARGET)).toBe(true);
    expect(senseIs(new SenseError(Sense.INVALID_FIELD_IN_CDB), Sense.INVALID_FIELD_IN_CDB)).toBe(true);
  });

  test('is false for values without sense', () => {
    for (const v of [undefined, null, 0, 'ILLEGAL REQUEST', new Error('x'), new IscsiError('ERR_ISCSI_TIMEOUT', 'timed out')]) {
      expect(senseIs(v, Sense.NO_ADDITIONAL_SENSE_INFORMATION)).toBe(false);
    }
  });
});

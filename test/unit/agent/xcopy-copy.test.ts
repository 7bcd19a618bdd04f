/**
 * The steps of `xcopyCopy` that need no LUN: the range from the options, the limits taken from a
 * copy manager's OPERATING PARAMETERS, the split of a range into commands and segments, and the
 * OPERATING PARAMETERS answers that send the copy through the host. The whole copy runs against
 * real copy managers in test/integration/copy-tool.test.ts.
 */
import fc from 'fast-check';
import { AgentError, IscsiError } from '../../../src/errors';
import { commandSegments, copyLimits, operatingParametersOf, resolveRange, type CopyLimits } from '../../../src/agent/xcopy-copy';

type Limits = Parameters<typeof copyLimits>[0];

/** The limits of an OPERATING PARAMETERS answer (by default LIO's). */
function op(limits: Partial<Limits>): Limits {
  return { maximumSegmentDescriptorCount: 1, maximumDescriptorListLength: 1024, maximumSegmentLength: 268435456, maximumConcurrentCopies: 1, ...limits };
}

describe('resolveRange', () => {
  test('skip and seek default to 0, count to the rest of the source', () => {
    expect(resolveRange({}, 1000n, 2000n)).toEqual({ skip: 0n, seek: 0n, count: 1000n });
    expect(resolveRange({ skip: 100n, seek: 7n }, 1000n, 2000n)).toEqual({ skip: 100n, seek: 7n, count: 900n });
    expect(resolveRange({ skip: 100n, seek: 700n, count: 300n }, 1000n, 1000n)).toEqual({ skip: 100n, seek: 700n, count: 300n });
  });

  test('a range past either LUN is refused with ERR_INVALID_ARG, saying what to do', () => {
    const past = () => resolveRange({ skip: 900n, count: 200n }, 1000n, 2000n);
    expect(past).toThrow(AgentError);
    expect(past).toThrow(/^source range 900\+200 ends past its 1000 blocks$/);
    const small = () => resolveRange({ seek: 10n }, 1000n, 1000n);
    expect(small).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
    expect(small).toThrow('destination too small: 1010 blocks needed, 1000 present (grow it or copy fewer blocks with --count)');
  });
});

describe('copyLimits', () => {
  test("LIO's answer: 256 MiB segments cut to the 16-bit block count, one segment, one command", () => {
    expect(copyLimits(op({}), 512)).toEqual({ blocksPerSegment: 65535n, segmentsPerCommand: 1, commandsInFlight: 1 });
  });

  test("FreeBSD CTL's answer: no segment limit, 64 segments, at most 4 commands in flight", () => {
    const ctl = op({ maximumSegmentDescriptorCount: 64, maximumDescriptorListLength: 8192, maximumSegmentLength: 0, maximumConcurrentCopies: 255 });
    expect(copyLimits(ctl, 4096)).toEqual({ blocksPerSegment: 65535n, segmentsPerCommand: 64, commandsInFlight: 4 });
  });

  test('segment length in bytes becomes blocks; the list length bounds the segments after two 32-byte CSCDs', () => {
    const l = copyLimits(op({ maximumSegmentLength: 1024 * 1024, maximumSegmentDescriptorCount: 200, maximumDescriptorListLength: 64 + 28 * 10 + 27, maximumConcurrentCopies: 2 }), 512);
    expect(l).toEqual({ blocksPerSegment: 2048n, segmentsPerCommand: 10, commandsInFlight: 2 });
  });

  test('every limit is at least 1, however small the answer', () => {
    const l = copyLimits(op({ maximumSegmentLength: 100, maximumSegmentDescriptorCount: 0, maximumDescriptorListLength: 60, maximumConcurrentCopies: 0 }), 512);
    expect(l).toEqual({ blocksPerSegment: 1n, segmentsPerCommand: 1, commandsInFlight: 1 });
  });
});

describe('commandSegments', () => {
  const limits: CopyLimits = { blocksPerSegment: 100n, segmentsPerCommand: 3, commandsInFlight: 1 };

  test('a command takes full segments in order, source and destination LBAs offset by skip and seek', () => {
    const { segments, end } = commandSegments({ skip: 1000n, seek: 5n, count: 1000n }, 200n, limits);
    expect(end).toBe(500n);
    expect(segments).toEqual(
      [200n, 300n, 400n].map((at) => ({
        kind: 'blockToBlock',
        dc: false,
        cat: false,
        sourceCscdDescriptorId: 0,
        destinationCscdDescriptorId: 1,
        blockDeviceNumberOfBlocks: 100,
        sourceBlockDeviceLba: 1000n + at,
        destinationBlockDeviceLba: 5n + at,
      })),
    );
  });

  test('the last command ends at the range with a short segment', () => {
    const { segments, end } = commandSegments({ skip: 0n, seek: 0n, count: 1050n }, 900n, limits);
    expect(end).toBe(1050n);
    expect(segments.map((s) => [s.kind === 'blockToBlock' && s.sourceBlockDeviceLba, s.kind === 'blockToBlock' && s.blockDeviceNumberOfBlocks])).toEqual([
      [900n, 100],
      [1000n, 50],
    ]);
  });

  test('commands one after another cover the range once, within the limits', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 20_000n }),
        fc.bigInt({ min: 0n, max: 1n << 40n }),
        fc.bigInt({ min: 0n, max: 1n << 40n }),
        fc.integer({ min: 1, max: 65535 }),
        fc.integer({ min: 1, max: 64 }),
        (count, skip, seek, perSegment, perCommand) => {
          const l: CopyLimits = { blocksPerSegment: BigInt(perSegment), segmentsPerCommand: perCommand, commandsInFlight: 1 };
          const wrong: string[] = [];
          let at = 0n;
          while (at < count && wrong.length === 0) {
            const { segments, end } = commandSegments({ skip, seek, count }, at, l);
            if (segments.length === 0 || segments.length > perCommand) wrong.push(`${segments.length} segments at ${at}`);
            for (const s of segments) {
              if (s.kind !== 'blockToBlock') throw new Error(`unexpected ${s.kind}`);
              const n = s.blockDeviceNumberOfBlocks;
              if (s.sourceBlockDeviceLba !== skip + at || s.destinationBlockDeviceLba !== seek + at) wrong.push(`LBAs of the segment at ${at}`);
              // only the range's last segment is short
              if (n > perSegment || (n < perSegment && at + BigInt(n) !== count)) wrong.push(`${n} blocks at ${at}`);
              at += BigInt(n);
            }
            if (end !== at) wrong.push(`end ${end}, segments to ${at}`);
          }
          expect(wrong).toEqual([]);
          expect(at).toBe(count);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('operatingParametersOf: when the copy goes through the host instead', () => {
  const bridge = (answer: () => Promise<Limits>) => ({ operatingParameters: answer as () => never });
  const checkCondition = (senseKey: number, asc: number, ascq: number) =>
    new IscsiError('ERR_SCSI_CHECK_CONDITION', `sense ${senseKey}/${asc}/${ascq}`, { scsiStatus: 0x02, senseKey, asc, ascq });

  test('an answer is the limits', async () => {
    await expect(operatingParametersOf(bridge(async () => op({ maximumConcurrentCopies: 3 })))).resolves.toMatchObject({ maximumConcurrentCopies: 3 });
  });

  test.each([
    ['INVALID COMMAND OPERATION CODE (no RECEIVE COPY RESULTS)', checkCondition(0x05, 0x20, 0x00)],
    ['INVALID FIELD IN CDB (no OPERATING PARAMETERS service action)', checkCondition(0x05, 0x24, 0x00)],
    ['COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE', checkCondition(0x0a, 0x0d, 0x02)],
    ['COPY ABORTED, UNREACHABLE COPY TARGET', checkCondition(0x0a, 0x08, 0x04)],
  ])('%s: no limits (host path)', async (_name, err) => {
    await expect(operatingParametersOf(bridge(() => Promise.reject(err)))).resolves.toBeUndefined();
  });

  test.each([
    ['NOT READY', checkCondition(0x02, 0x04, 0x00)],
    ['COPY ABORTED for another reason', checkCondition(0x0a, 0x29, 0x00)],
    ['a transport failure', new IscsiError('ERR_ISCSI_TIMEOUT', 'no answer')],
    ['any other error', new Error('boom')],
  ])('%s is the copy’s failure', async (_name, err) => {
    await expect(operatingParametersOf(bridge(() => Promise.reject(err)))).rejects.toBe(err);
  });
});

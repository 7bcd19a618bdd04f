/** The EXTENDED COPY lists of step 608: records cut by MAXIMUM SEGMENT LENGTH, packed per command. */
import fc from 'fast-check';
import { segmentLists } from '../../../src/agent/apply-obf';
import type { DataRecordRef } from '../../../src/obf/log';
import type { SegmentDescriptor } from '../../../src/scsi/xcopy';

/** [source LBA, destination LBA, blocks] of a 02h segment. */
function triple(s: SegmentDescriptor): [bigint, bigint, number] {
  if (s.kind !== 'blockToBlock') throw new Error(`not a 02h segment: ${s.kind}`);
  return [s.sourceBlockDeviceLba, s.destinationBlockDeviceLba, s.blockDeviceNumberOfBlocks];
}

function record(sourceLba: bigint, sourceBlocks: number, dataLba: bigint, dataBlocks = sourceBlocks): DataRecordRef {
  return { sequence: 0n, obfLba: dataLba - 1n, dataLba, sourceLba, sourceBlocks, dataBlocks, crc: 0, timeMs: 0 };
}

test('one segment per record when it fits, packed per command; records counted where their last segment is', () => {
  const recs = [record(0n, 128, 2n), record(1024n, 128, 131n), record(4096n, 128, 260n)];
  const lists = segmentLists(recs, { at: 0n, obfBlockSize: 512, sourceBlockSize: 512, blocksPerSegment: 65535, segmentsPerCommand: 2 });
  expect(lists.map((l) => l.segments.length)).toEqual([2, 1]);
  expect(lists.map((l) => l.recordsEnding)).toEqual([2, 1]);
  expect(lists[1].segments[0]).toMatchObject({ sourceBlockDeviceLba: 260n, destinationBlockDeviceLba: 4096n, blockDeviceNumberOfBlocks: 128, dc: true });
});

test('a record longer than MAXIMUM SEGMENT LENGTH is cut; a record spanning two lists counts in the second', () => {
  const lists = segmentLists([record(100n, 300, 10n)], { at: 1000n, obfBlockSize: 512, sourceBlockSize: 512, blocksPerSegment: 128, segmentsPerCommand: 2 });
  expect(lists.map((l) => l.segments.map(triple))).toEqual([
    [
      [1010n, 100n, 128],
      [1138n, 228n, 128],
    ],
    [[1266n, 356n, 44]],
  ]);
  expect(lists.map((l) => l.recordsEnding)).toEqual([0, 1]);
});

test('cuts fall on the OBF block when its blocks are larger than the source\'s', () => {
  // 4096-byte OBF blocks, 512-byte source blocks: 8 source blocks per OBF block
  const lists = segmentLists([record(0n, 64, 5n, 8)], { at: 0n, obfBlockSize: 4096, sourceBlockSize: 512, blocksPerSegment: 20, segmentsPerCommand: 64 });
  expect(lists[0].segments.map(triple)).toEqual([
    [5n, 0n, 16],
    [7n, 16n, 16],
    [9n, 32n, 16],
    [11n, 48n, 16],
  ]);
});

test('random records: every source block covered exactly once, within the limits', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 600 }), { minLength: 0, maxLength: 40 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 8 }), (sizes, maxLen, perCmd) => {
      let lba = 0n;
      let data = 1n;
      const recs = sizes.map((n) => {
        const r = record(lba, n, data + 1n);
        lba += BigInt(n) + 7n;
        data += BigInt(n) + 1n;
        return r;
      });
      const lists = segmentLists(recs, { at: 0n, obfBlockSize: 512, sourceBlockSize: 512, blocksPerSegment: maxLen, segmentsPerCommand: perCmd });
      // Plain checks in the loop (jest's expect is slow per block); one verdict at the end.
      const problems: string[] = [];
      const covered = new Map<bigint, bigint>();
      for (const l of lists) {
        if (l.segments.length > perCmd) problems.push(`${l.segments.length} segments > ${perCmd}`);
        for (const s of l.segments) {
          const [src, dst, n] = triple(s);
          if (n > maxLen) problems.push(`segment of ${n} > ${maxLen}`);
          for (let i = 0n; i < BigInt(n); i++) {
            if (covered.has(dst + i)) problems.push(`block ${dst + i} twice`);
            covered.set(dst + i, src + i);
          }
        }
      }
      for (const r of recs) for (let i = 0n; i < BigInt(r.sourceBlocks); i++) if (covered.get(r.sourceLba + i) !== r.dataLba + i) problems.push(`block ${r.sourceLba + i} wrong`);
      if (lists.reduce((n, l) => n + l.recordsEnding, 0) !== recs.length) problems.push('records miscounted');
      expect(problems.slice(0, 3)).toEqual([]);
    }),
    { numRuns: 60 },
  );
});

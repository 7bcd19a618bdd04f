import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  checkLayoutAgainstTrailer,
  clipText,
  decodeHashTable,
  decodeHeaderSlot,
  decodeTrailer,
  DEFAULT_HASH_EXTENT_BYTES,
  defaultTocBytes,
  encodeHashTable,
  encodeHeaderSlot,
  encodeTrailer,
  extentHash,
  extentRange,
  NoValidHeaderError,
  pickHeader,
  planLayout,
  requiredBlocks,
  SECONDARY_FORMAT_VERSION,
  SecondaryVersionError,
  slotOf,
  type SecondaryLayout,
  type SecondaryLayoutParams,
  type SecondaryRecord,
} from '../../../src/secondary';
import { ArgumentError, EncodeError } from '../../../src/errors';
import { crc32c } from '../../../src/native/crc32c';
import { assertTotalDecoder, decodeErrorOf, decodesOrRejects, hex, offsetOf } from '../../helpers/codec';

const zeros = (n: number): string => '00 '.repeat(n);

// --------------------------------------------------------------------------------------------
// The example of docs/secondary-format.md: a 512-byte secondary of 1000 blocks, append mode,
// an image of 300 blocks hashed in 64 KiB extents (3 extents, the last 22528 bytes), a log
// area of 100 blocks, a TOC reserve of 4096 bytes.
// --------------------------------------------------------------------------------------------
const PARAMS: SecondaryLayoutParams = {
  blockSize: 512,
  capacityBlocks: 1000n,
  imageBlocks: 300n,
  mode: 'append',
  logBlocksMax: 100n,
  extentBytes: 65536,
  tocBytes: 4096n,
};
const LAYOUT: SecondaryLayout = {
  blockSize: 512,
  capacityBlocks: 1000n,
  imageBlocks: 300n,
  logLba: 300n,
  logBlocksMax: 100n,
  metaLba: 974n,
  metaBlocks: 25n, // 2 slots × 8 + 1 hash block + 8 TOC blocks
  slotBlocks: 8,
  hashLba: 990n,
  hashBlocks: 1n,
  extentBytes: 65536,
  extents: 3,
  tocLba: 991n,
  tocBlocks: 8n,
  trailerLba: 999n,
};

const RECORD: SecondaryRecord = {
  version: 1,
  generation: 7n,
  backupId: '5d0c8a52-3f6e-4b1a-9c2d-7e8f9a0b1c2d',
  state: 'log-appended',
  mode: 'append',
  label: 'nightly',
  source: {
    designators: [{ codeSet: 1, designatorType: 3, association: 0, designator: '6001405e4f5a6b71c2d4e3f8a9b0c1d2' }],
    capacityBlocks: 300n,
    blockSize: 512,
    vendor: 'XCOPYAG',
    product: 'source',
    url: 'iscsi://10.0.0.1:3260/iqn.2026-01.io.example:src/0',
  },
  snapshot: { id: '0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f1', institutedAt: '2026-01-01T00:00:00.000Z', pauseMs: 12, marked: false },
  layout: LAYOUT,
  log: { records: 2, dataBlocks: 32n, usedBlocks: 36n },
  progress: { copiedBlocks: 300n, appliedRecords: 0, integratedRecords: 0, hashedExtents: 3, appendedBlocks: 36n },
  times: {
    startedAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:01:00.000Z',
    phases: { institute: 0.012, copy: 41.5, obf: 3.25 },
  },
  toc: { usedBytes: 0n },
};

/** The golden body: written from the field tables of docs/secondary-format.md. */
const BODY =
  '{"backupId":"5d0c8a52-3f6e-4b1a-9c2d-7e8f9a0b1c2d","state":"log-appended","mode":"append","label":"nightly",' +
  '"source":{"designators":[{"codeSet":1,"designatorType":3,"association":0,"designator":"6001405e4f5a6b71c2d4e3f8a9b0c1d2"}],' +
  '"capacityBlocks":"300","blockSize":512,"vendor":"XCOPYAG","product":"source","url":"iscsi://10.0.0.1:3260/iqn.2026-01.io.example:src/0"},' +
  '"snapshot":{"id":"0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f1","institutedAt":"2026-01-01T00:00:00.000Z","pauseMs":12,"marked":false},' +
  '"layout":{"blockSize":512,"capacityBlocks":"1000","imageBlocks":"300","logLba":"300","logBlocksMax":"100","metaLba":"974",' +
  '"metaBlocks":"25","slotBlocks":8,"hashLba":"990","hashBlocks":"1","extentBytes":65536,"extents":3,"tocLba":"991","tocBlocks":"8",' +
  '"trailerLba":"999"},"log":{"records":2,"dataBlocks":"32","usedBlocks":"36"},' +
  '"progress":{"copiedBlocks":"300","appliedRecords":0,"integratedRecords":0,"hashedExtents":3,"appendedBlocks":"36"},' +
  '"times":{"startedAt":"2026-01-01T00:00:00.000Z","updatedAt":"2026-01-01T00:01:00.000Z","phases":{"institute":0.012,"copy":41.5,"obf":3.25}},' +
  '"toc":{"usedBytes":"0"}}';

const SLOT_HEADER = hex(`
  58 43 41 47 53 45 43 31    # 0–7   magic "XCAGSEC1"
  00 01                      # 8–9   version 1
  00 20                      # 10–11 header length 32
  00 00 10 00                # 12–15 slot size 4096
  00 00 00 00 00 00 00 07    # 16–23 generation 7
  00 00 04 4d                # 24–27 body length 1101
  13 a4 58 a9                # 28–31 CRC32C over 0–27 and the body
`);
const SLOT = Buffer.concat([SLOT_HEADER, Buffer.from(BODY, 'utf8'), Buffer.alloc(4096 - 32 - BODY.length)]);

const TRAILER = hex(`
  58 43 41 47 54 52 4c 31    # 0–7   magic "XCAGTRL1"
  00 01                      # 8–9   version 1
  00 40                      # 10–11 trailer length 64
  00 00 02 00                # 12–15 block size 512
  00 00 00 00 00 00 03 e8    # 16–23 capacity 1000 blocks
  00 00 00 00 00 00 03 ce    # 24–31 metadata area LBA 974
  00 00 00 00 00 00 00 19    # 32–39 metadata area blocks 25
  00 00 00 08                # 40–43 slot blocks 8
  ${zeros(16)}               # 44–59 reserved
  62 c7 0a cf                # 60–63 CRC32C over 0–59
  ${zeros(448)}              # 64–511 rest of the block
`);

/** A slot of `slotBytes` around a JSON body, its CRC computed (for tests past the CRC). */
function slotAround(body: string | Buffer, generation = 7n, slotBytes = 4096): Buffer {
  const json = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const b = Buffer.alloc(Math.max(slotBytes, 32 + json.length));
  SLOT_HEADER.copy(b, 0, 0, 16);
  b.writeUInt32BE(slotBytes, 12);
  b.writeBigUInt64BE(generation, 16);
  b.writeUInt32BE(json.length, 24);
  json.copy(b, 32);
  b.writeUInt32BE(crc32c(json, crc32c(b.subarray(0, 28))), 28);
  return b;
}

/** The golden body with `edit` applied to its parsed JSON, in a slot with a right CRC. */
function slotWith(edit: (body: Record<string, any>) => void, generation = 7n): Buffer {
  const body = JSON.parse(BODY) as Record<string, any>;
  edit(body);
  return slotAround(JSON.stringify(body), generation);
}

/** The golden slot with bytes replaced and the CRC recomputed. */
function slotBytesWith(offset: number, bytes: string): Buffer {
  const b = Buffer.from(SLOT);
  hex(bytes).copy(b, offset);
  const len = Math.min(b.readUInt32BE(24), b.length - 32);
  b.writeUInt32BE(crc32c(b.subarray(32, 32 + len), crc32c(b.subarray(0, 28))), 28);
  return b;
}

/** The golden trailer with bytes replaced and the CRC recomputed. */
function trailerWith(offset: number, bytes: string): Buffer {
  const b = Buffer.from(TRAILER);
  hex(bytes).copy(b, offset);
  b.writeUInt32BE(crc32c(b.subarray(0, 60)), 60);
  return b;
}

const withRecord = (change: Partial<SecondaryRecord>): SecondaryRecord => ({ ...RECORD, ...change });

// --------------------------------------------------------------------------------------------
describe('layout', () => {
  test('the documented example', () => {
    expect(planLayout(PARAMS)).toEqual(LAYOUT);
    expect(requiredBlocks(PARAMS)).toBe(300n + 100n + 25n + 1n);
  });

  test('overwrite mode: no log area; logBlocksMax is ignored', () => {
    const l = planLayout({ ...PARAMS, mode: 'overwrite' });
    expect(l).toEqual({ ...LAYOUT, logLba: 0n, logBlocksMax: 0n });
    expect(requiredBlocks({ ...PARAMS, mode: 'overwrite', logBlocksMax: -1n })).toBe(300n + 25n + 1n);
  });

  test('append mode without logBlocksMax: the log area is every block between image and metadata', () => {
    const { logBlocksMax: _omit, ...p } = PARAMS;
    expect(planLayout(p)).toEqual({ ...LAYOUT, logBlocksMax: 974n - 300n });
    expect(requiredBlocks(p)).toBe(300n + 25n + 1n);
  });

  test('4096-byte blocks: a slot is one block', () => {
    const l = planLayout({ blockSize: 4096, capacityBlocks: 100_000n, imageBlocks: 65536n, mode: 'overwrite' });
    // 256 MiB image: 256 extents of 1 MiB = 8192 bytes = 2 blocks; TOC reserve 1 MiB = 256 blocks.
    expect(l).toEqual({
      blockSize: 4096,
      capacityBlocks: 100_000n,
      imageBlocks: 65536n,
      logLba: 0n,
      logBlocksMax: 0n,
      metaLba: 100_000n - 1n - 260n,
      metaBlocks: 260n,
      slotBlocks: 1,
      hashLba: 100_000n - 1n - 258n,
      hashBlocks: 2n,
      extentBytes: DEFAULT_HASH_EXTENT_BYTES,
      extents: 256,
      tocLba: 100_000n - 1n - 256n,
      tocBlocks: 256n,
      trailerLba: 99_999n,
    });
  });

  test('too small: the message says what is needed and what to do', () => {
    const need = requiredBlocks(PARAMS);
    expect(() => planLayout({ ...PARAMS, capacityBlocks: need })).not.toThrow();
    const append = (() => {
      try {
        planLayout({ ...PARAMS, capacityBlocks: need - 1n });
      } catch (err) {
        return err as ArgumentError;
      }
      throw new Error('expected an ArgumentError');
    })();
    expect(append).toBeInstanceOf(ArgumentError);
    expect(append.code).toBe('ERR_INVALID_ARG');
    expect(append.message).toBe('secondary LUN too small: 426 blocks needed, 425 present (grow it or choose --mode overwrite)');
    expect(() => planLayout({ ...PARAMS, mode: 'overwrite', capacityBlocks: 300n })).toThrow(
      'secondary LUN too small: 326 blocks needed, 300 present (grow it)',
    );
  });

  test.each<[string, Partial<SecondaryLayoutParams>]>([
    ['block size', { blockSize: 1024 }],
    ['image of 0 blocks', { imageBlocks: 0n }],
    ['image not a bigint', { imageBlocks: 300 as unknown as bigint }],
    ['mode', { mode: 'mirror' as never }],
    ['negative log', { logBlocksMax: -1n }],
    ['extent not a multiple of the block size', { extentBytes: 1000 }],
    ['extent 0', { extentBytes: 0 }],
    ['extent over 1 GiB', { extentBytes: 2 ** 31 }],
    ['negative TOC reserve', { tocBytes: -1n }],
    ['capacity not a bigint', { capacityBlocks: 1000 as unknown as bigint }],
    ['too many extents', { imageBlocks: 1n << 40n, extentBytes: 512, capacityBlocks: 1n << 50n }],
  ])('bad parameter: %s is an ArgumentError', (_name, change) => {
    expect(() => planLayout({ ...PARAMS, ...change })).toThrow(ArgumentError);
  });

  test('default TOC reserve: 0.1 % of the image, 1 MiB .. 256 MiB, whole 4096-byte blocks', () => {
    expect(defaultTocBytes(0n)).toBe(1048576n);
    expect(defaultTocBytes(1n << 30n)).toBe(1077248n); // 1073742 bytes rounded up to 263 × 4096
    expect(defaultTocBytes(1n << 50n)).toBe(256n << 20n);
    expect(() => defaultTocBytes(-1n)).toThrow(ArgumentError);
  });

  test('property: the areas are in order, disjoint, and the metadata area ends right before the trailer', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(512, 4096),
        fc.bigInt({ min: 1n, max: 1n << 31n }), // at most 2^31 extents of one block
        fc.constantFrom<'overwrite' | 'append'>('overwrite', 'append'),
        fc.option(fc.bigInt({ min: 0n, max: 1n << 30n }), { nil: undefined }),
        fc.integer({ min: 1, max: 2048 }),
        fc.option(fc.bigInt({ min: 0n, max: 1n << 30n }), { nil: undefined }),
        fc.bigInt({ min: 0n, max: 1n << 20n }),
        (B, imageBlocks, mode, logBlocksMax, extentUnits, tocBytes, spare) => {
          const p = { blockSize: B, imageBlocks, mode, logBlocksMax, extentBytes: extentUnits * B, tocBytes };
          const capacityBlocks = requiredBlocks(p) + spare;
          const l = planLayout({ ...p, capacityBlocks });
          const imageBytes = imageBlocks * BigInt(B);
          expect(l.trailerLba).toBe(capacityBlocks - 1n);
          expect(l.metaLba + l.metaBlocks).toBe(l.trailerLba);
          expect(l.hashLba).toBe(l.metaLba + 2n * BigInt(l.slotBlocks));
          expect(l.tocLba).toBe(l.hashLba + l.hashBlocks);
          expect(l.tocLba + l.tocBlocks).toBe(l.trailerLba);
          expect(l.slotBlocks * B).toBe(4096);
          expect(BigInt(l.extents) * BigInt(l.extentBytes) >= imageBytes).toBe(true);
          expect(BigInt(l.extents - 1) * BigInt(l.extentBytes) < imageBytes).toBe(true);
          expect(l.hashBlocks).toBe((BigInt(l.extents) * 32n + BigInt(B) - 1n) / BigInt(B));
          if (mode === 'append') {
            expect(l.logLba).toBe(imageBlocks);
            expect(l.logLba + l.logBlocksMax <= l.metaLba).toBe(true);
            if (logBlocksMax === undefined) expect(l.logLba + l.logBlocksMax).toBe(l.metaLba);
          } else {
            expect([l.logLba, l.logBlocksMax]).toEqual([0n, 0n]);
            expect(imageBlocks <= l.metaLba).toBe(true);
          }
          if (spare === 0n) expect(() => planLayout({ ...p, capacityBlocks: capacityBlocks - 1n })).toThrow(ArgumentError);
          // The last extent ends at the image's end.
          const last = extentRange(l, l.extents - 1);
          expect(last.offset + BigInt(last.bytes)).toBe(imageBytes);
        },
      ),
      { numRuns: 500 },
    );
  });

  test('extent ranges: whole extents, then a shorter last one', () => {
    expect(extentRange(LAYOUT, 0)).toEqual({ offset: 0n, bytes: 65536 });
    expect(extentRange(LAYOUT, 1)).toEqual({ offset: 65536n, bytes: 65536 });
    expect(extentRange(LAYOUT, 2)).toEqual({ offset: 131072n, bytes: 300 * 512 - 131072 });
    for (const i of [-1, 3, 1.5]) expect(() => extentRange(LAYOUT, i)).toThrow(ArgumentError);
  });

  test('an extent hash is SHA-256 of its bytes, the last one not padded', () => {
    const data = Buffer.from('abc');
    expect(extentHash(data).toString('hex')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

// --------------------------------------------------------------------------------------------
describe('trailer', () => {
  test('the golden CRC is CRC32C over bytes 0–59', () => {
    expect(TRAILER.readUInt32BE(60)).toBe(crc32c(TRAILER.subarray(0, 60)));
  });
  test('decode', () => {
    expect(decodeTrailer(TRAILER, 1000n)).toEqual({ blockSize: 512, metaLba: 974n, metaBlocks: 25n, slotBlocks: 8 });
  });
  test('encode', () => expect(encodeTrailer(LAYOUT).toString('hex')).toBe(TRAILER.toString('hex')));
  test('round trip, 4096-byte blocks: the 64 defined bytes, then zeros', () => {
    const l = planLayout({ blockSize: 4096, capacityBlocks: 5000n, imageBlocks: 1000n, mode: 'append' });
    const t = encodeTrailer(l);
    expect(t.length).toBe(4096);
    expect(t.subarray(64).equals(Buffer.alloc(4096 - 64))).toBe(true);
    expect(decodeTrailer(t, 5000n)).toEqual({ blockSize: 4096, metaLba: l.metaLba, metaBlocks: l.metaBlocks, slotBlocks: 1 });
  });
  test('reserved bytes and the rest of the block are ignored (forward compatibility within version 1)', () => {
    const b = trailerWith(44, 'ff '.repeat(16));
    b.fill(0xee, 64);
    expect(decodeTrailer(b, 1000n)).toEqual(decodeTrailer(TRAILER, 1000n));
  });

  describe('decode errors are DecodeErrors naming the byte', () => {
    test('cut short at every length', () => {
      for (let cut = 0; cut < 64; cut++) expect(offsetOf(() => decodeTrailer(TRAILER.subarray(0, cut), 1000n))).toBe(cut);
      // Past the defined bytes, the block is shorter than the block size it gives.
      for (let cut = 64; cut < 512; cut++) expect(offsetOf(() => decodeTrailer(TRAILER.subarray(0, cut), 1000n))).toBe(12);
      expect(offsetOf(() => decodeTrailer(Buffer.concat([TRAILER, Buffer.alloc(1)]), 1000n))).toBe(12);
    });
    test('bad magic (an OBF superblock is no trailer)', () => {
      expect(offsetOf(() => decodeTrailer(trailerWith(0, '58 43 50 59 4f 42 46 00'), 1000n))).toBe(2);
    });
    test('version 2 is a SecondaryVersionError saying so (checked before the CRC)', () => {
      const b = Buffer.from(TRAILER);
      b.writeUInt16BE(2, 8);
      const err = decodeErrorOf(() => decodeTrailer(b, 1000n));
      expect(err).toBeInstanceOf(SecondaryVersionError);
      expect((err as SecondaryVersionError).version).toBe(2);
      expect(err.offset).toBe(8);
      expect(err.message).toMatch(/version 2 is not supported/);
    });
    test.each<[string, number, string, number]>([
      ['trailer length', 10, '00 41', 10],
      ['block size not 512 or 4096', 12, '00 00 04 00', 12],
      ['block size other than the block read', 12, '00 00 10 00', 12],
      ['written for another capacity (a copy to a larger LUN)', 16, '00 00 00 00 00 00 07 d0', 16],
      ['metadata area not right before the last block', 24, '00 00 00 00 00 00 03 cd', 24],
      ['metadata area at LBA 0 (no image)', 24, zeros(8), 24],
      ['metadata area without room for a hash table', 32, '00 00 00 00 00 00 00 10', 32],
      ['slot blocks', 40, '00 00 00 01', 40],
    ])('%s', (_name, at, bytes, offset) => {
      expect(offsetOf(() => decodeTrailer(trailerWith(at, bytes), 1000n))).toBe(offset);
    });
    test('bad CRC', () => {
      const b = Buffer.from(TRAILER);
      b[44] ^= 1;
      expect(offsetOf(() => decodeTrailer(b, 1000n))).toBe(60);
    });
    test('the capacity given is of this LUN', () => {
      expect(offsetOf(() => decodeTrailer(TRAILER, 1001n))).toBe(16);
      expect(() => decodeTrailer(TRAILER, 0n)).toThrow(ArgumentError);
    });
  });

  test.each<[string, Partial<SecondaryLayout>]>([
    ['block size', { blockSize: 1024 }],
    ['slot blocks', { slotBlocks: 1 }],
    ['metadata area not before the trailer', { metaLba: 973n }],
    ['metadata area too small', { metaBlocks: 16n, metaLba: 983n }],
    ['capacity', { capacityBlocks: 0n }],
  ])('encode error: %s', (_name, change) => {
    expect(() => encodeTrailer({ ...LAYOUT, ...change })).toThrow(EncodeError);
  });

  test('total decoder (random and mutated bytes)', () => {
    assertTotalDecoder((b) => decodeTrailer(b, 1000n), TRAILER, 1500);
  });
  test('total decoder past the CRC: mutated fields with the CRC made right again', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(59), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (flips) => {
        const b = Buffer.from(TRAILER);
        for (const [i, v] of flips) b[i] = v;
        b.writeUInt32BE(crc32c(b.subarray(0, 60)), 60);
        decodesOrRejects((x) => decodeTrailer(x, 1000n), b);
      }),
      { numRuns: 2000 },
    );
  });
});

// --------------------------------------------------------------------------------------------
describe('header slot', () => {
  test('the golden CRC is CRC32C over bytes 0–27, continued over the body', () => {
    expect(SLOT.readUInt32BE(28)).toBe(crc32c(Buffer.from(BODY), crc32c(SLOT.subarray(0, 28))));
    expect(SLOT.readUInt32BE(24)).toBe(Buffer.byteLength(BODY));
  });
  test('decode', () => expect(decodeHeaderSlot(SLOT)).toEqual(RECORD));
  test('encode', () => expect(encodeHeaderSlot(RECORD, 4096).toString('hex')).toBe(SLOT.toString('hex')));
  test('round trip of a minimal record (overwrite mode, no optional fields)', () => {
    const layout = planLayout({ ...PARAMS, mode: 'overwrite' });
    const r: SecondaryRecord = {
      version: 1,
      generation: 1n,
      backupId: 'b',
      state: 'copying',
      mode: 'overwrite',
      source: { designators: [], capacityBlocks: 300n, blockSize: 512 },
      snapshot: { id: 's', institutedAt: '2026-01-01T00:00:00Z' },
      layout,
      progress: { copiedBlocks: 0n, appliedRecords: 0, integratedRecords: 0, hashedExtents: 0 },
      times: { startedAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00+01:00' },
    };
    const slot = encodeHeaderSlot(r, 4096);
    expect(decodeHeaderSlot(slot)).toEqual(r);
    expect(Object.keys(decodeHeaderSlot(slot))).toEqual(Object.keys(r)); // absent, not undefined
  });
  test('a 4096-byte secondary: the slot is one block', () => {
    const layout = planLayout({ blockSize: 4096, capacityBlocks: 1000n, imageBlocks: 100n, mode: 'overwrite' });
    const r = withRecord({ mode: 'overwrite', state: 'integrated', layout, log: undefined, source: { ...RECORD.source, capacityBlocks: 100n, blockSize: 4096 } });
    const { appendedBlocks: _a, ...progress } = RECORD.progress;
    const slot = encodeHeaderSlot({ ...r, progress: { ...progress, copiedBlocks: 100n, hashedExtents: 1 } }, 4096);
    expect(decodeHeaderSlot(slot).layout.slotBlocks).toBe(1);
  });
  test('unknown fields are ignored by readers and not written (forward compatibility within version 1)', () => {
    const slot = slotWith((b) => {
      b.future = { anything: [1, 2] };
      b.progress.verifiedExtents = 3;
    });
    expect(decodeHeaderSlot(slot)).toEqual(RECORD);
    expect(encodeHeaderSlot({ ...RECORD, extra: 1 } as SecondaryRecord, 4096).equals(SLOT)).toBe(true);
    // Bytes after the body are not covered by the CRC and are ignored.
    const b = Buffer.from(SLOT);
    b.fill(0xaa, 32 + BODY.length);
    expect(decodeHeaderSlot(b)).toEqual(RECORD);
  });
  test('a failed backup keeps its reason; clipText shortens a long one to fit', () => {
    const reason = 'OBF full: ' + 'x'.repeat(2000);
    expect(() => encodeHeaderSlot(withRecord({ state: 'failed', reason }), 4096)).toThrow(EncodeError);
    const clipped = clipText(reason, 1024);
    expect(Buffer.byteLength(clipped)).toBeLessThanOrEqual(1024);
    expect(clipped.endsWith('…')).toBe(true);
    const r = withRecord({ state: 'failed', reason: clipped });
    expect(decodeHeaderSlot(encodeHeaderSlot(r, 4096))).toEqual(r);
    expect(clipText('short', 10)).toBe('short');
    expect(clipText('ééééé', 7)).toBe('éé…'); // 2 bytes each, the ellipsis 3: cut at a character
  });

  describe('decode errors are DecodeErrors naming the byte', () => {
    test('cut short at every length, or too long', () => {
      for (let cut = 0; cut < 4096; cut++) expect(offsetOf(() => decodeHeaderSlot(SLOT.subarray(0, cut)))).toBe(cut);
      expect(offsetOf(() => decodeHeaderSlot(Buffer.concat([SLOT, Buffer.alloc(512)])))).toBe(4096);
    });
    test('bad magic (a trailer is no header slot)', () => {
      expect(offsetOf(() => decodeHeaderSlot(slotBytesWith(0, '58 43 41 47 54 52 4c 31')))).toBe(4);
    });
    test('version 2 is a SecondaryVersionError (checked before the CRC)', () => {
      const b = Buffer.from(SLOT);
      b.writeUInt16BE(2, 8);
      const err = decodeErrorOf(() => decodeHeaderSlot(b));
      expect(err).toBeInstanceOf(SecondaryVersionError);
      expect(err.offset).toBe(8);
    });
    test.each<[string, number, string, number]>([
      ['header length', 10, '00 40', 10],
      ['slot size not a multiple of 512', 12, '00 00 10 01', 12],
      ['slot size other than the layout says', 12, '00 00 02 00', 512],
      ['generation 0', 16, zeros(8), 16],
      ['body length 0', 24, zeros(4), 24],
      ['body length past the slot', 24, '00 00 0f e1', 24],
    ])('%s', (_name, at, bytes, offset) => {
      expect(offsetOf(() => decodeHeaderSlot(slotBytesWith(at, bytes)))).toBe(offset);
    });
    test('bad CRC: in the binary header, and in the body', () => {
      for (const i of [20, 100]) {
        const b = Buffer.from(SLOT);
        b[i] ^= 0x01;
        expect(offsetOf(() => decodeHeaderSlot(b))).toBe(28);
      }
    });
    test('the body is not UTF-8, or not JSON', () => {
      expect(offsetOf(() => decodeHeaderSlot(slotAround(Buffer.from([0x7b, 0xff, 0x7d]))))).toBe(32);
      expect(offsetOf(() => decodeHeaderSlot(slotAround('{"backupId":')))).toBe(32);
      expect(offsetOf(() => decodeHeaderSlot(slotAround('[]')))).toBe(32);
    });
    test('a slot size the layout does not have', () => {
      // A whole 8192-byte slot around the golden body: the layout's slots are 8 × 512 bytes.
      expect(offsetOf(() => decodeHeaderSlot(slotAround(BODY, 7n, 8192)))).toBe(12);
    });
    test.each<[string, (b: Record<string, any>) => void, RegExp]>([
      ['a missing field', (b) => delete b.backupId, /backupId must be a string/],
      ['an unknown state', (b) => (b.state = 'done'), /state must be one of/],
      ['an unknown mode', (b) => (b.mode = 'mirror'), /mode must be one of/],
      ['a bigint as a JSON number', (b) => (b.layout.metaLba = 974), /layout\.metaLba must be a bigint/],
      ['a bigint with a sign', (b) => (b.progress.copiedBlocks = '-1'), /progress\.copiedBlocks must be a bigint/],
      ['a bigint past 2^64 − 1', (b) => (b.source.capacityBlocks = '18446744073709551616'), /source\.capacityBlocks/],
      ['a layout that is not planLayout\'s', (b) => (b.layout.metaLba = '973'), /layout\.metaLba is 973/],
      ['a layout whose hash table is too small', (b) => (b.layout.hashBlocks = '0'), /layout\./],
      ['an overwrite layout with a log area', (b) => (b.mode = 'overwrite'), /layout\.logLba/],
      ['a source block size other than the layout\'s', (b) => (b.source.blockSize = 4096), /source\.blockSize/],
      ['a source capacity other than the image', (b) => (b.source.capacityBlocks = '301'), /source\.capacityBlocks/],
      ['log-appended in overwrite mode', (b) => {
        b.mode = 'overwrite';
        b.layout.logLba = '0';
        b.layout.logBlocksMax = '0';
      }, /log-appended is a state of append mode only/],
      ['more blocks copied than the image has', (b) => (b.progress.copiedBlocks = '301'), /progress\.copiedBlocks/],
      ['more extents hashed than there are', (b) => (b.progress.hashedExtents = 4), /progress\.hashedExtents/],
      ['a log larger than the log area', (b) => (b.log.usedBlocks = '101'), /log\.usedBlocks/],
      ['more log blocks appended than the area has', (b) => (b.progress.appendedBlocks = '101'), /progress\.appendedBlocks/],
      ['a TOC larger than its reserve', (b) => (b.toc.usedBytes = '4097'), /toc\.usedBytes/],
      ['a designator that is not hex', (b) => (b.source.designators[0].designator = 'xyz'), /designators\[0\]\.designator/],
      ['a designator type past 15', (b) => (b.source.designators[0].designatorType = 16), /designatorType/],
      ['a time that is not ISO-8601', (b) => (b.times.updatedAt = 'yesterday'), /times\.updatedAt/],
      ['a negative phase time', (b) => (b.times.phases.copy = -1), /times\.phases\.copy/],
      ['a URL with a CHAP secret', (b) => (b.source.url = 'iscsi://alice%s3cret@10.0.0.1/iqn.x/0'), /source\.url carries a CHAP secret/],
      ['a label that is too long', (b) => (b.label = 'l'.repeat(257)), /label is longer than 256 bytes/],
      ['null for an optional field', (b) => (b.label = null), /label must be a string/],
    ])('body: %s', (_name, edit, message) => {
      const err = decodeErrorOf(() => decodeHeaderSlot(slotWith(edit)));
      expect(err.offset).toBe(32);
      expect(err.message).toMatch(message);
    });
    test('a redacted URL is fine', () => {
      const r = decodeHeaderSlot(slotWith((b) => (b.source.url = 'iscsi://alice%***@10.0.0.1/iqn.x/0?target_password=***')));
      expect(r.source.url).toBe('iscsi://alice%***@10.0.0.1/iqn.x/0?target_password=***');
    });
  });

  describe('encode errors are EncodeErrors naming the field', () => {
    test.each<[string, Partial<SecondaryRecord>, number, string]>([
      ['version', { version: 2 }, 4096, 'version'],
      ['generation 0', { generation: 0n }, 4096, 'generation'],
      ['generation past 2^64 − 1', { generation: 1n << 64n }, 4096, 'generation'],
      ['slot size other than the layout\'s', {}, 8192, 'slot size'],
      ['slot size not whole blocks', {}, 4000, 'slot size'],
      ['a layout that is not planLayout\'s', { layout: { ...LAYOUT, hashLba: 989n } }, 4096, 'layout.hashLba'],
      ['a number for a bigint', { layout: { ...LAYOUT, metaLba: 974 as unknown as bigint } }, 4096, 'layout.metaLba'],
      ['a bad time', { times: { ...RECORD.times, startedAt: '2026-01-01' } }, 4096, 'times.startedAt'],
      ['a URL with a secret', { source: { ...RECORD.source, url: 'iscsi://u%p@h/iqn.x/0' } }, 4096, 'source.url'],
      ['a URL with a target password', { source: { ...RECORD.source, url: 'iscsi://h/iqn.x/0?target_password=pw' } }, 4096, 'source.url'],
      ['log-appended in overwrite mode', { mode: 'overwrite', layout: { ...LAYOUT, logLba: 0n, logBlocksMax: 0n } }, 4096, 'state'],
      [
        'a body that does not fit the slot',
        { source: { ...RECORD.source, designators: Array(8).fill({ codeSet: 2, designatorType: 8, association: 2, designator: 'ab'.repeat(255) }) } },
        4096,
        'body',
      ],
    ])('%s', (_name, change, slotBytes, field) => {
      let err: unknown;
      try {
        encodeHeaderSlot(withRecord(change), slotBytes);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(EncodeError);
      expect((err as EncodeError).field).toBe(field);
    });
  });

  test('total decoder (random and mutated bytes)', () => assertTotalDecoder(decodeHeaderSlot, SLOT, 500));
  test('total decoder past the CRC: fields of the body replaced by any JSON, the CRC made right again', () => {
    const paths: string[][] = [];
    const walk = (v: unknown, path: string[]): void => {
      paths.push(path);
      if (v && typeof v === 'object') for (const [k, c] of Object.entries(v)) walk(c, [...path, k]);
    };
    walk(JSON.parse(BODY), []);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(paths.length - 1), fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined })), { minLength: 1, maxLength: 3 }),
        (edits) => {
          const body = JSON.parse(BODY);
          for (const [i, value] of edits) {
            const path = paths[i];
            if (path.length === 0) continue;
            let parent = body;
            for (const k of path.slice(0, -1)) parent = parent?.[k];
            if (parent && typeof parent === 'object') {
              if (value === undefined) delete parent[path[path.length - 1]];
              else parent[path[path.length - 1]] = value;
            }
          }
          const json = JSON.stringify(body);
          if (Buffer.byteLength(json) <= 4096 - 32) decodesOrRejects(decodeHeaderSlot, slotAround(json));
        },
      ),
      { numRuns: 3000 },
    );
  });
  test('total decoder past the CRC: body text mutated byte by byte', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(BODY.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (flips) => {
        const json = Buffer.from(BODY);
        for (const [i, v] of flips) json[i] = v;
        decodesOrRejects(decodeHeaderSlot, slotAround(json));
      }),
      { numRuns: 2000 },
    );
  });

  test('property: records round-trip over random layouts and progress', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(512, 4096),
        fc.bigInt({ min: 1n, max: 1n << 34n }),
        fc.constantFrom<'overwrite' | 'append'>('overwrite', 'append'),
        fc.bigInt({ min: 1n, max: 1n << 62n }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.string({ maxLength: 40 }),
        (B, imageBlocks, mode, generation, fraction, label) => {
          const layout = planLayout({ blockSize: B, capacityBlocks: imageBlocks * 2n + 100_000n, imageBlocks, mode });
          const part = (n: bigint): bigint => (n * BigInt(Math.floor(fraction * 1000))) / 1000n;
          const r: SecondaryRecord = {
            ...RECORD,
            generation,
            mode,
            state: mode === 'append' ? 'log-appended' : 'integrated',
            label,
            layout,
            source: { ...RECORD.source, blockSize: B, capacityBlocks: imageBlocks },
            log: mode === 'append' ? { records: 5, dataBlocks: 40n, usedBlocks: part(layout.logBlocksMax) } : undefined,
            progress: {
              copiedBlocks: part(imageBlocks),
              appliedRecords: 3,
              integratedRecords: 1,
              hashedExtents: Math.floor(fraction * layout.extents),
              appendedBlocks: part(layout.logBlocksMax),
            },
          };
          const slot = encodeHeaderSlot(r, layout.slotBlocks * B);
          expect(slot.length).toBe(4096);
          const back = decodeHeaderSlot(slot);
          expect(back).toEqual(r);
          expect(encodeHeaderSlot(back, 4096).equals(slot)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});

// --------------------------------------------------------------------------------------------
describe('two slots', () => {
  const at = (generation: bigint, change: Partial<SecondaryRecord> = {}): Buffer =>
    encodeHeaderSlot(withRecord({ generation, ...change }), 4096);

  test('generation g is written to slot g mod 2', () => {
    expect([1n, 2n, 3n, 7n, 1n << 63n].map(slotOf)).toEqual([1, 0, 1, 1, 0]);
  });
  test('the valid slot with the highest generation wins, wherever it is', () => {
    expect(pickHeader(at(8n), at(7n)).generation).toBe(8n);
    expect(pickHeader(at(6n), at(7n)).generation).toBe(7n);
  });
  test('a torn write of the next generation leaves the other slot current', () => {
    const next = at(8n, { state: 'integrated' });
    const torn = Buffer.from(at(6n));
    next.copy(torn, 0, 0, 1024); // the first two 512-byte blocks of the new slot reached the LUN
    const r = pickHeader(torn, at(7n));
    expect(r.generation).toBe(7n);
    expect(r.state).toBe('log-appended');
  });
  test('garbage or zeros in one slot: the other one', () => {
    expect(pickHeader(Buffer.alloc(4096), at(7n)).generation).toBe(7n);
    expect(pickHeader(at(8n), Buffer.alloc(4096, 0xa5)).generation).toBe(8n);
  });
  test('the same generation in both: the slot that generation is written to', () => {
    const r0 = pickHeader(at(7n, { label: 'in slot 0' }), at(7n, { label: 'in slot 1' }));
    expect(r0.label).toBe('in slot 1');
    const r1 = pickHeader(at(8n, { label: 'in slot 0' }), at(8n, { label: 'in slot 1' }));
    expect(r1.label).toBe('in slot 0');
  });
  test('neither valid: NoValidHeaderError with both reasons', () => {
    const err = decodeErrorOf(() => pickHeader(Buffer.alloc(4096), slotBytesWith(16, zeros(8))));
    expect(err).toBeInstanceOf(NoValidHeaderError);
    const e = err as NoValidHeaderError;
    expect(e.slotErrors.map((x) => x.offset)).toEqual([0, 16]);
    expect(e.code).toBe('ERR_SCSI_DECODE');
    expect(e.message).toMatch(/neither slot holds a valid header \(slot 0: .*bad magic.*; slot 1: .*generation 0/);
  });
  test('never anything but a record or a DecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4096, maxLength: 4096 }), fc.boolean(), (garbage, first) => {
        const g = Buffer.from(garbage);
        decodesOrRejects((b) => (first ? pickHeader(b, g) : pickHeader(g, b)), g);
      }),
      { numRuns: 200 },
    );
  });
});

// --------------------------------------------------------------------------------------------
describe('hash table', () => {
  const hashes = [0, 1, 2].map((i) => createHash('sha256').update(`extent ${i}`).digest());

  test('encode: the digests in extent order, zero padded to whole blocks', () => {
    const t = encodeHashTable(hashes, 512);
    expect(t.length).toBe(512);
    expect(t.subarray(0, 96).equals(Buffer.concat(hashes))).toBe(true);
    expect(t.subarray(96).equals(Buffer.alloc(416))).toBe(true);
    expect(encodeHashTable(Array(129).fill(hashes[0]), 4096).length).toBe(8192);
    expect(encodeHashTable([], 512).length).toBe(0);
  });
  test('decode and round trip; padding is ignored', () => {
    const t = encodeHashTable(hashes, 4096);
    t.fill(0xee, 96);
    expect(decodeHashTable(t, 3)).toEqual(hashes);
    expect(decodeHashTable(t, 2)).toEqual(hashes.slice(0, 2));
  });
  test('read in pieces (block by block) it is the same table', () => {
    const many = Array.from({ length: 40 }, (_, i) => createHash('sha256').update(String(i)).digest());
    const t = encodeHashTable(many, 512);
    const pieces = [0, 512, 1024, 1536, 2048].map((o) => t.subarray(o, o + 512));
    expect(decodeHashTable(Buffer.concat(pieces), 40)).toEqual(many);
  });
  test('decoded digests are copies', () => {
    const t = encodeHashTable(hashes, 512);
    const d = decodeHashTable(t, 3);
    t.fill(0);
    expect(d).toEqual(hashes);
  });
  test('too short: DecodeError at its end; bad arguments', () => {
    expect(offsetOf(() => decodeHashTable(Buffer.alloc(95), 3))).toBe(95);
    expect(() => decodeHashTable(Buffer.alloc(96), -1)).toThrow(ArgumentError);
    expect(() => encodeHashTable([Buffer.alloc(31)], 512)).toThrow(EncodeError);
    expect(() => encodeHashTable(hashes, 1024)).toThrow(EncodeError);
  });
  test('total decoder', () => assertTotalDecoder((b) => decodeHashTable(b, 3), encodeHashTable(hashes, 512), 500));
});

// --------------------------------------------------------------------------------------------
// A whole secondary in memory, read the way docs/secondary-format.md "Reading" says.
// --------------------------------------------------------------------------------------------
describe('a secondary read from nothing but its bytes', () => {
  const B = 512;
  const lun = Buffer.alloc(1000 * B);
  const blocks = (lba: bigint, n: bigint | number): Buffer => lun.subarray(Number(lba) * B, (Number(lba) + Number(n)) * B);
  const image = blocks(0n, 300n);
  for (let i = 0; i < image.length; i++) image[i] = (i * 7 + (i >> 9)) & 0xff;

  // The writer: trailer and first header before any image block, then data, hashes, header.
  const layout = planLayout(PARAMS);
  encodeTrailer(layout).copy(blocks(layout.trailerLba, 1));
  const write = (r: SecondaryRecord): void => {
    encodeHeaderSlot(r, layout.slotBlocks * B).copy(blocks(layout.metaLba + BigInt(slotOf(r.generation) * layout.slotBlocks), layout.slotBlocks));
  };
  write(withRecord({ generation: 1n, state: 'copying', log: undefined, progress: { copiedBlocks: 0n, appliedRecords: 0, integratedRecords: 0, hashedExtents: 0 } }));
  const hashes = Array.from({ length: layout.extents }, (_, i) => {
    const { offset, bytes } = extentRange(layout, i);
    return extentHash(image.subarray(Number(offset), Number(offset) + bytes));
  });
  encodeHashTable(hashes, B).copy(blocks(layout.hashLba, layout.hashBlocks));
  write(withRecord({ generation: 2n }));

  function read(): { record: SecondaryRecord; hashes: Buffer[] } {
    const capacity = BigInt(lun.length / B);
    const trailer = decodeTrailer(blocks(capacity - 1n, 1), capacity);
    const slot = (k: number): Buffer => blocks(trailer.metaLba + BigInt(k * trailer.slotBlocks), trailer.slotBlocks);
    const record = pickHeader(slot(0), slot(1));
    checkLayoutAgainstTrailer(record.layout, trailer);
    const l = record.layout;
    return { record, hashes: decodeHashTable(blocks(l.hashLba, l.hashBlocks), record.progress.hashedExtents) };
  }

  test('trailer → slots → record → hash table → the image verifies', () => {
    const { record, hashes: table } = read();
    expect(record.generation).toBe(2n);
    expect(record.state).toBe('log-appended');
    expect(record.version).toBe(SECONDARY_FORMAT_VERSION);
    table.forEach((h, i) => {
      const { offset, bytes } = extentRange(record.layout, i);
      expect(extentHash(image.subarray(Number(offset), Number(offset) + bytes)).equals(h)).toBe(true);
    });
  });
  test('a record that does not lie where the trailer says is rejected', () => {
    const other = planLayout({ ...PARAMS, capacityBlocks: 1001n });
    expect(offsetOf(() => checkLayoutAgainstTrailer(other, decodeTrailer(blocks(999n, 1), 1000n)))).toBe(32);
  });
  test('a torn header write leaves the previous generation', () => {
    const saved = Buffer.from(blocks(layout.metaLba, 2 * layout.slotBlocks));
    const next = encodeHeaderSlot(withRecord({ generation: 3n, state: 'integrated' }), 4096);
    next.copy(blocks(layout.metaLba + BigInt(layout.slotBlocks), 1)); // slot 1: its first block only (the body is longer)
    expect(read().record.generation).toBe(2n);
    saved.copy(blocks(layout.metaLba, 2 * layout.slotBlocks));
  });
});

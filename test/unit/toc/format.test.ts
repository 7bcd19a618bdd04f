/**
 * The TOC's stored format (docs/toc-format.md): golden bytes written from the document (the CRCs
 * by the bitwise reference CRC32C), decode, encode, round trip, every cut and every flipped byte
 * refused, random inputs refused with a DecodeError.
 */
import fc from 'fast-check';
import { decodeToc, decodeTocHeader, encodeToc, TOC_HEADER_LENGTH } from '../../../src/toc/format';
import { fileTypeOf, type Toc, type TocEntry } from '../../../src/toc/toc';
import { assertTotalDecoder, decodeErrorOf, hex } from '../../helpers/codec';
import { referenceCrc32c } from '../../helpers/crc32c';

const TOC: Toc = {
  fs: {
    type: 'ext4',
    blockSize: 4096,
    blocksCount: 1000,
    inodesCount: 256,
    features: ['extent'],
    needsRecovery: false,
    state: 1,
    uuid: 'u',
    label: '',
    offset: 1048576,
    deviceBlockSize: 512,
  },
  entries: [
    {
      ino: 2,
      paths: ['/'],
      type: 'dir',
      mode: 0o40755,
      uid: 0,
      gid: 0,
      links: 3,
      flags: 0x80000,
      size: 4096,
      mtime: 1700000000,
      mtimeNsec: 0,
      extents: [{ logical: 0, physical: 100, blocks: 1, uninit: false }],
      mapBlocks: [],
    },
    {
      ino: 12,
      paths: ['/a'],
      type: 'file',
      mode: 0o100644,
      uid: 1000,
      gid: 1000,
      links: 1,
      flags: 0x80000,
      size: 10000,
      mtime: -1,
      mtimeNsec: 500,
      extents: [
        { logical: 0, physical: 200, blocks: 2, uninit: false },
        { logical: 5, physical: 150, blocks: 1, uninit: true },
      ],
      mapBlocks: [300],
    },
  ],
};

const FS_JSON =
  '{"type":"ext4","blockSize":4096,"blocksCount":1000,"inodesCount":256,"features":["extent"],"needsRecovery":false,' +
  '"state":1,"uuid":"u","label":"","offset":1048576,"deviceBlockSize":512}';

const ENTRIES = hex(`
  02          # ino 2
  ED 83 01    # mode 0o40755 = 16877
  00 00       # uid, gid
  03          # links
  80 80 20    # flags EXT4_EXTENTS_FL 0x80000
  80 20       # size 4096
  80 C4 9F D5 0C  # mtime 1700000000, zigzag 3400000000
  00          # mtime ns
  00          # entry flags
  01          # 1 path
  00 01 2F    #   prefix 0, suffix "/"
  01          # 1 extent
  00 C8 01 02 #   logical gap 0, physical +100 (zigzag 200), 1 block
  00          # no map blocks
  0C          # ino 12
  A4 83 02    # mode 0o100644 = 33188
  E8 07 E8 07 # uid, gid 1000
  01          # links
  80 80 20    # flags
  90 4E       # size 10000
  01          # mtime -1 (zigzag 1)
  F4 03       # mtime ns 500
  00          # entry flags
  01          # 1 path
  01 01 61    #   shares "/" with the previous path, suffix "a"
  02          # 2 extents
  00 90 03 04 #   logical 0, physical +200 (zigzag 400), 2 blocks (2 × 2 + 0)
  03 67 03    #   logical gap 3 (5 − 2), physical 150 − 202 = −52 (zigzag 103), 1 block uninit (2 × 1 + 1)
  01 D8 04    # 1 map block: 300 (zigzag 600)
`);

function golden(): Buffer {
  const json = Buffer.from(FS_JSON);
  const body = Buffer.concat([Buffer.from([json.length & 0x7f | 0x80, json.length >> 7]), json, ENTRIES]);
  const header = hex(`
    58 43 41 47 54 4F 43 31   # magic XCAGTOC1
    00 01                     # version 1
    00 40                     # header length 64
    00 00 00 00               # flags
  `);
  const h = Buffer.alloc(64);
  header.copy(h);
  h.writeBigUInt64BE(BigInt(body.length), 16);
  h.writeUInt32BE(2, 24);
  h.writeUInt32BE(referenceCrc32c(body), 28);
  h.writeUInt32BE(referenceCrc32c(h.subarray(0, 60)), 60);
  return Buffer.concat([h, body]);
}

test('the JSON of the file system is more than 127 bytes and less than 16384 (two varint bytes)', () => {
  expect(Buffer.byteLength(FS_JSON)).toBeGreaterThan(127);
  expect(Buffer.byteLength(FS_JSON)).toBeLessThan(16384);
});

test('encode gives the golden bytes', () => {
  expect(encodeToc(TOC).toString('hex')).toBe(golden().toString('hex'));
});

test('decode of the golden bytes gives the TOC; round trip', () => {
  expect(decodeToc(golden())).toEqual(TOC);
  expect(decodeToc(encodeToc(decodeToc(golden())))).toEqual(TOC);
  expect(decodeTocHeader(golden())).toEqual({ version: 1, bodyLength: golden().length - 64, entries: 2, bodyCrc: golden().readUInt32BE(28) });
});

test('every cut of the bytes is refused with a DecodeError (split buffers)', () => {
  const g = golden();
  for (let cut = 0; cut < g.length; cut++) decodeErrorOf(() => decodeToc(g.subarray(0, cut)));
});

test('every changed byte is refused (the CRCs), naming the header CRC or the body CRC', () => {
  const g = golden();
  for (let i = 0; i < g.length; i++) {
    const b = Buffer.from(g);
    b[i] ^= 0x5a;
    const e = decodeErrorOf(() => decodeToc(b));
    expect([0, 8, 10, 28, 60]).toContain(e.offset);
  }
});

test('another version is refused before anything else but the magic', () => {
  const b = golden();
  b.writeUInt16BE(2, 8);
  expect(decodeErrorOf(() => decodeToc(b)).message).toMatch(/version 2/);
});

test('a body that passes its CRC but breaks a rule names the byte', () => {
  // An extent past the file system's end: the decoder does not trust the writer.
  const toc: Toc = JSON.parse(JSON.stringify(TOC));
  toc.entries[1].extents[0].physical = 999;
  const e = decodeErrorOf(() => decodeToc(encodeToc(toc)));
  expect(e.message).toMatch(/inode 12: extent 0 .* outside the file system/);
  expect(e.offset).toBeGreaterThan(TOC_HEADER_LENGTH);
});

test('random and mutated inputs give a TOC or a DecodeError', () => {
  assertTotalDecoder(decodeToc, golden(), 1000);
});

test('random TOCs round-trip, non-UTF-8 names and targets included', () => {
  const BIG_FS = { ...TOC.fs, blocksCount: 100_000 };
  const entry = (ino: number) =>
    fc.record({
      mode: fc.constantFrom(0o100644, 0o40755, 0o120777, 0o20600, 0o10644),
      uid: fc.nat(2 ** 32 - 1),
      gid: fc.nat(2 ** 32 - 1),
      links: fc.nat(65000),
      flags: fc.nat(2 ** 32 - 1),
      size: fc.nat(2 ** 44),
      mtime: fc.integer({ min: -(2 ** 31), max: 2 ** 34 }),
      mtimeNsec: fc.nat(999_999_999),
      names: fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 3 }),
      target: fc.option(fc.uint8Array({ minLength: 1, maxLength: 80 }), { nil: undefined }),
      inline: fc.option(fc.uint8Array({ maxLength: 60 }), { nil: undefined }),
      runs: fc.array(fc.tuple(fc.nat(50), fc.integer({ min: 1, max: 20 }), fc.boolean()), { maxLength: 6 }),
      map: fc.array(fc.nat(9999), { maxLength: 4 }),
    }).map((r): TocEntry => {
      const raw = r.names.map((n) => Buffer.concat([Buffer.from('/d/'), Buffer.from(n.map((c) => (c === 0x2f || c === 0 ? 0x41 : c)))]));
      const dec = new TextDecoder('utf-8', { fatal: true });
      const utf = (b: Buffer) => {
        try {
          dec.decode(b);
          return true;
        } catch {
          return false;
        }
      };
      const { mode, uid, gid, links, flags, size, mtime, mtimeNsec } = r;
      const e: TocEntry = { ino, paths: [], type: fileTypeOf(mode), mode, uid, gid, links, flags, size, mtime, mtimeNsec, extents: [], mapBlocks: r.map };
      // Paths as the decoder shows them; raw bytes kept when one is not UTF-8.
      e.paths = decodeToc(encodeToc({ fs: BIG_FS, entries: [{ ...e, paths: ['/x'], rawPaths: raw }] })).entries[0].paths;
      if (!raw.every(utf)) e.rawPaths = raw;
      if (r.target) {
        const t = Buffer.from(r.target);
        e.target = decodeToc(encodeToc({ fs: BIG_FS, entries: [{ ...e, paths: ['/x'], rawPaths: undefined, target: 'x', rawTarget: t }] })).entries[0].target;
        if (!utf(t)) e.rawTarget = t;
      }
      if (r.inline) e.inlineData = Buffer.from(r.inline);
      let next = 0;
      let phys = 0;
      for (const [gap, blocks, uninit] of r.runs) {
        e.extents.push({ logical: next + gap, physical: phys, blocks, uninit });
        next += gap + blocks;
        phys += blocks + 3;
      }
      return e;
    });
  fc.assert(
    fc.property(fc.array(fc.nat(200), { maxLength: 8 }).chain((inos) => fc.tuple(...[...new Set(inos)].map((i) => entry(i + 1)))), (entries) => {
      const toc: Toc = { fs: BIG_FS, entries };
      expect(decodeToc(encodeToc(toc))).toEqual(toc);
    }),
    { numRuns: 300 },
  );
});

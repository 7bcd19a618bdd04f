/**
 * The pure parts of `restore --files` (src/agent/restore-files.ts) and of choosing files by path
 * (src/toc/select.ts): which image bytes hold a file's data, device numbers as ext2 keeps them,
 * when an inode's layout counts as changed.
 */
import { dataPieces, deviceNumbers, layoutChange } from '../../../src/agent/restore-files';
import { isUnder, selectEntries } from '../../../src/toc/select';
import type { TocEntry } from '../../../src/toc/toc';

const entry = (over: Partial<TocEntry> = {}): TocEntry => ({
  ino: 12,
  paths: ['/a/b'],
  type: 'file',
  mode: 0o100644,
  uid: 0,
  gid: 0,
  links: 1,
  flags: 0x80000,
  size: 10000,
  mtime: 0,
  mtimeNsec: 0,
  extents: [
    { logical: 0, physical: 100, blocks: 2, uninit: false },
    { logical: 5, physical: 300, blocks: 1, uninit: true },
  ],
  mapBlocks: [],
  ...over,
});

test('dataPieces: runs clipped to the size, unwritten runs and runs past the end left out, the offset applied', () => {
  const fs = { blockSize: 4096, offset: 1048576 };
  expect(dataPieces(fs, entry().extents, 6000)).toEqual([{ fileOffset: 0, imageOffset: 1048576 + 100 * 4096, length: 6000 }]);
  expect(dataPieces(fs, [{ logical: 3, physical: 7, blocks: 4, uninit: false }], 3 * 4096)).toEqual([]);
  expect(dataPieces(fs, [{ logical: 1, physical: 7, blocks: 4, uninit: false }], 3 * 4096 + 1)).toEqual([{ fileOffset: 4096, imageOffset: 1048576 + 7 * 4096, length: 2 * 4096 + 1 }]);
});

test('deviceNumbers: the new encoding, and the old 8:8 one it contains', () => {
  expect(deviceNumbers(0x0801)).toEqual({ major: 8, minor: 1 }); // sda1, either encoding
  // major 259, minor 300: (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)
  expect(deviceNumbers((300 & 0xff) | (259 << 8) | ((300 & ~0xff) << 12))).toEqual({ major: 259, minor: 300 });
});

test('layoutChange: the same inode, or why its blocks are no longer the copy\'s', () => {
  const copy = entry();
  expect(layoutChange(copy, entry({ mtime: 99, mode: 0o100600 }))).toBeUndefined(); // attributes are not layout
  expect(layoutChange(copy, undefined)).toMatch(/no longer in use/);
  expect(layoutChange(copy, entry({ paths: ['/elsewhere'] }))).toMatch(/reused/);
  expect(layoutChange(copy, entry({ type: 'dir' }))).toMatch(/now a dir/);
  expect(layoutChange(copy, entry({ size: 10001 }))).toMatch(/size is 10001/);
  expect(layoutChange(copy, entry({ flags: 0 }))).toMatch(/flags changed/);
  expect(layoutChange(copy, entry({ extents: [{ logical: 0, physical: 101, blocks: 2, uninit: false }, copy.extents[1]] }))).toMatch(/extents changed/);
  expect(layoutChange(copy, entry({ extents: [copy.extents[0], { ...copy.extents[1], uninit: false }] }))).toMatch(/extents changed/);
  expect(layoutChange(copy, entry({ mapBlocks: [7] }))).toMatch(/block map moved/);
});

test('selectEntries: a path and what is below it, never a sibling sharing a prefix; a path matching nothing is an error', () => {
  const es = [entry({ ino: 2, paths: ['/'], type: 'dir' }), entry({ ino: 3, paths: ['/a'], type: 'dir' }), entry({ ino: 4, paths: ['/a/b'] }), entry({ ino: 5, paths: ['/ab'] })];
  expect(selectEntries(es, ['/a/']).map((e) => e.ino)).toEqual([3, 4]);
  expect(selectEntries(es, ['/']).map((e) => e.ino)).toEqual([2, 3, 4, 5]);
  expect(selectEntries(es, []).length).toBe(4);
  expect(() => selectEntries(es, ['/a', '/zz'])).toThrow(/no such path in the file system: \/zz/);
  expect(() => selectEntries(es, ['a'])).toThrow(/must start with '\/'/);
  expect(isUnder('/ab', '/a')).toBe(false);
  expect(isUnder('/a/b', '/')).toBe(true);
});

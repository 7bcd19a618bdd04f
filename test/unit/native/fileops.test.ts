import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ArgumentError } from '../../../src/errors';
import { FileIoBatch, captureCommit, copyFileRange, preadNoWait, punchHole, seekData, seekHole } from '../../../src/native/fileops';
import { loadNative } from '../../../src/native/index';
import { referenceCrc32c } from '../../helpers/crc32c';
import { removeDir, tempDir } from '../../helpers/tmp';

let dir: string;
beforeAll(() => {
  dir = tempDir('fileops');
});
afterAll(() => removeDir(dir));

const MiB = 1024 * 1024;

test('SEEK_DATA / SEEK_HOLE find the data of a sparse file', () => {
  const f = path.join(dir, 'sparse.img');
  fs.writeFileSync(f, '');
  fs.truncateSync(f, 8 * MiB);
  const fd = fs.openSync(f, 'r+');
  try {
    fs.writeSync(fd, Buffer.alloc(MiB, 1), 0, MiB, 3 * MiB);
    fs.fsyncSync(fd);
    expect(seekData(fd, 0)).toBe(3 * MiB);
    expect(seekHole(fd, 3 * MiB)).toBe(4 * MiB);
    expect(seekData(fd, 4 * MiB)).toBe(-1);
    expect(seekHole(fd, 4 * MiB)).toBe(4 * MiB);
  } finally {
    fs.closeSync(fd);
  }
});

test('punchHole deallocates and the range reads back zeros', () => {
  const f = path.join(dir, 'punch.img');
  fs.writeFileSync(f, Buffer.alloc(4 * MiB, 0xaa));
  const fd = fs.openSync(f, 'r+');
  try {
    punchHole(fd, MiB, 2 * MiB);
    expect(fs.fstatSync(fd).size).toBe(4 * MiB);
    const b = Buffer.alloc(4 * MiB);
    fs.readSync(fd, b, 0, b.length, 0);
    expect(b.subarray(MiB, 3 * MiB).every((x) => x === 0)).toBe(true);
    expect(b.subarray(0, MiB).every((x) => x === 0xaa)).toBe(true);
    expect(seekHole(fd, 0)).toBe(MiB);
  } finally {
    fs.closeSync(fd);
  }
});

test('preadNoWait reads what the page cache holds, short at the end of the file, and checks its arguments', () => {
  const f = path.join(dir, 'nowait.img');
  const data = crypto.randomBytes(64 * 1024);
  fs.writeFileSync(f, data); // just written: in the page cache
  const fd = fs.openSync(f, 'r');
  try {
    const b = Buffer.alloc(8192, 0xee);
    expect(preadNoWait(fd, b, 512, 4096, 4096)).toBe(4096);
    expect(b.subarray(512, 4608).equals(data.subarray(4096, 8192))).toBe(true);
    expect(b.subarray(0, 512).every((x) => x === 0xee)).toBe(true);
    expect(preadNoWait(fd, b, 0, 8192, data.length - 1024)).toBe(1024);
    expect(preadNoWait(fd, b, 0, 512, data.length)).toBe(0);
    expect(() => preadNoWait(fd, b, 4096, 8192, 0)).toThrow(ArgumentError);
    expect(() => preadNoWait(fd, b, 0, 512, -1)).toThrow(ArgumentError);
    expect(() => preadNoWait(-1, b, 0, 512, 0)).toThrow(expect.objectContaining({ syscall: 'preadv2', errno: 9 }));
  } finally {
    fs.closeSync(fd);
  }
});

describe('FileIoBatch', () => {
  test('the ops of one turn go to the pool as one job, in order; each settles with its own result', async () => {
    const f = path.join(dir, 'batch.img');
    const before = crypto.randomBytes(256 * 1024);
    fs.writeFileSync(f, before);
    const fd = fs.openSync(f, 'r+');
    const native = loadNative();
    const jobs = jest.spyOn(native, 'fileIoBatchAsync');
    try {
      const batch = new FileIoBatch();
      const w1 = crypto.randomBytes(4096);
      const w2 = crypto.randomBytes(4096);
      const r1 = Buffer.alloc(4096);
      const r2 = Buffer.alloc(4096);
      const tail = Buffer.alloc(8192);
      const results = await Promise.all([
        batch.submit(fd, true, w1, 8192),
        batch.submit(fd, false, r1, 8192), // after w1 in the same job: reads w1
        batch.submit(fd, true, w2, 8192), // then overwritten
        batch.submit(fd, false, r2, 65536),
        batch.submit(fd, false, tail, before.length - 4096), // short: the file ends
      ]);
      expect(results).toEqual([4096, 4096, 4096, 4096, 4096]);
      expect(jobs).toHaveBeenCalledTimes(1);
      expect(r1.equals(w1)).toBe(true);
      expect(r2.equals(before.subarray(65536, 69632))).toBe(true);
      expect(tail.subarray(0, 4096).equals(before.subarray(before.length - 4096))).toBe(true);
      expect(fs.readFileSync(f).subarray(8192, 12288).equals(w2)).toBe(true);
    } finally {
      jobs.mockRestore();
      fs.closeSync(fd);
    }
  });

  test('a failed op rejects alone, with errno, code and syscall; the others of its job land', async () => {
    const f = path.join(dir, 'batch-fail.img');
    fs.writeFileSync(f, Buffer.alloc(64 * 1024));
    const fd = fs.openSync(f, 'r+');
    const ro = fs.openSync(f, 'r');
    try {
      const batch = new FileIoBatch();
      const data = crypto.randomBytes(4096);
      const [bad, good, badRead] = await Promise.allSettled([
        batch.submit(ro, true, Buffer.alloc(4096), 0), // a read-only descriptor: EBADF
        batch.submit(fd, true, data, 4096),
        batch.submit(-1, false, Buffer.alloc(512), 0),
      ]);
      expect(bad).toMatchObject({ status: 'rejected', reason: { errno: 9, code: 'EBADF', syscall: 'pwrite' } });
      expect(good).toEqual({ status: 'fulfilled', value: 4096 });
      expect(badRead).toMatchObject({ status: 'rejected', reason: { code: 'EBADF', syscall: 'pread' } });
      expect(fs.readFileSync(f).subarray(4096, 8192).equals(data)).toBe(true);
    } finally {
      fs.closeSync(fd);
      fs.closeSync(ro);
    }
  });

  test('more than 256 KiB of ops in one turn is cut into jobs of at most 256 KiB', async () => {
    const f = path.join(dir, 'batch-split.img');
    fs.writeFileSync(f, Buffer.alloc(MiB));
    const fd = fs.openSync(f, 'r+');
    const native = loadNative();
    const jobs = jest.spyOn(native, 'fileIoBatchAsync');
    try {
      const batch = new FileIoBatch();
      const pieces = Array.from({ length: 10 }, () => crypto.randomBytes(64 * 1024));
      await Promise.all(pieces.map((p, i) => batch.submit(fd, true, p, i * 64 * 1024)));
      expect(jobs.mock.calls.map((c) => c[2].length)).toEqual([4, 4, 2]);
      expect(fs.readFileSync(f).subarray(0, 640 * 1024).equals(Buffer.concat(pieces))).toBe(true);
    } finally {
      jobs.mockRestore();
      fs.closeSync(fd);
    }
  });
});

test('copyFileRange copies exactly the bytes asked for', () => {
  const a = path.join(dir, 'a.img');
  const b = path.join(dir, 'b.img');
  const data = crypto.randomBytes(3 * MiB + 512);
  fs.writeFileSync(a, data);
  fs.writeFileSync(b, Buffer.alloc(4 * MiB));
  const fa = fs.openSync(a, 'r');
  const fb = fs.openSync(b, 'r+');
  try {
    copyFileRange(fa, 512, fb, 4096, 3 * MiB);
  } finally {
    fs.closeSync(fa);
    fs.closeSync(fb);
  }
  const out = fs.readFileSync(b);
  expect(out.subarray(4096, 4096 + 3 * MiB).equals(data.subarray(512, 512 + 3 * MiB))).toBe(true);
  expect(out.subarray(0, 4096).every((x) => x === 0)).toBe(true);
  expect(() => copyFileRange(-1, 0, -1, 0, 10)).toThrow(/copy_file_range/);
});

describe('captureCommit takes the record layout as arguments (the C++ copies no OBF fact)', () => {
  const BS = 512;
  /** A source of 8 random blocks, an OBF file, and their descriptors (the OBF's O_DSYNC). */
  function files(): { src: number; obf: number; original: Buffer; obfPath: string; close: () => void } {
    const srcPath = path.join(dir, `capture-src-${crypto.randomUUID()}.img`);
    const obfPath = path.join(dir, `capture-obf-${crypto.randomUUID()}.img`);
    const original = crypto.randomBytes(8 * BS);
    fs.writeFileSync(srcPath, original);
    fs.writeFileSync(obfPath, Buffer.alloc(16 * BS));
    const src = fs.openSync(srcPath, 'r');
    const obf = fs.openSync(obfPath, fs.constants.O_RDWR | fs.constants.O_DSYNC);
    return { src, obf, original, obfPath, close: () => [src, obf].forEach((fd) => fs.closeSync(fd)) };
  }

  it.each([
    [128, 124],
    [64, 8],
    [BS, 0],
  ])('a header of %i defined bytes with its CRC at byte %i: the reference CRC lands there, big-endian, and nowhere else', async (headerLength, crcOffset) => {
    const f = files();
    try {
      const header = Buffer.alloc(BS);
      header.fill(0x5c, 0, crcOffset); // the fields before the CRC
      const before = Buffer.from(header);
      const into = Buffer.alloc(2 * BS);
      const done = await captureCommit(f.src, [{ into, position: 3 * BS, header }], { headerLength, crcOffset }, f.obf, [{ position: BS, pieces: [header, into] }]);
      const want = referenceCrc32c(into, referenceCrc32c(header.subarray(0, crcOffset)));
      expect(into.equals(f.original.subarray(3 * BS, 5 * BS))).toBe(true);
      expect(done.crcs).toEqual([want]);
      const expected = Buffer.from(before);
      expected.writeUInt32BE(want, crcOffset);
      expect(header.equals(expected)).toBe(true);
      expect(fs.readFileSync(f.obfPath).subarray(BS, 4 * BS).equals(Buffer.concat([expected, into]))).toBe(true);
    } finally {
      f.close();
    }
  });

  it.each([
    [{ headerLength: 128, crcOffset: 125 }, /crcOffset \+ 4 <= headerLength/],
    [{ headerLength: 128, crcOffset: -1 }, /0 <= crcOffset/],
    [{ headerLength: 128, crcOffset: 1.5 }, /crcOffset 1.5/],
    [{ headerLength: NaN, crcOffset: 124 }, /headerLength NaN/],
    [{ headerLength: 1024, crcOffset: 124 }, /a record header is at least 1024 bytes, got 512/],
  ])('a bad layout %p is refused before any job is queued', (layout, message) => {
    const f = files();
    try {
      const header = Buffer.alloc(BS, 0x11);
      const into = Buffer.alloc(BS, 0xee);
      expect(() => captureCommit(f.src, [{ into, position: 0, header }], layout, f.obf, [{ position: BS, pieces: [header, into] }])).toThrow(ArgumentError);
      expect(() => captureCommit(f.src, [{ into, position: 0, header }], layout, f.obf, [])).toThrow(message);
      expect(into.every((x) => x === 0xee) && header.every((x) => x === 0x11)).toBe(true); // nothing read, no CRC stored
    } finally {
      f.close();
    }
  });
});

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { copyFileRange, punchHole, seekData, seekHole } from '../../../src/native/fileops';
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

/**
 * The snapshot capture's file paths: the native readChunks (pread + all-zero test + CRC32C on the
 * thread pool), FileStore.readChunks over it, and FileStore.writev (a gathered pwritev). Files
 * live in a temp folder; every expectation is checked against the bytes read back with Node's
 * fs and the bitwise referenceCrc32c (test/helpers/crc32c.ts) (independent of the code under test).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { ArgumentError } from '../../../src/errors';
import { FileStore } from '../../../src/store/file';
import { StoreError } from '../../../src/store/store';
import { referenceCrc32c } from '../../helpers/crc32c';
import * as fileops from '../../../src/native/fileops';
import { readChunks, seekData } from '../../../src/native/fileops';
import { fileBytes, tempFiles } from '../../helpers/tmp';

const KiB = 1024;
const MiB = 1024 * KiB;
const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

const files = tempFiles('file-capture');
const fresh = files.fresh;
afterEach(() => jest.restoreAllMocks());

/** Buffers pre-filled with a marker, so a buffer left unread cannot pass for zeros or data. */
const dirty = (len: number) => Buffer.alloc(len, 0xa5);

/**
 * A 1 MiB sparse file: random data at [0, 256 KiB), a hole at [256 KiB, 512 KiB), written zeros
 * at [512 KiB, 576 KiB), then 64 KiB of zeros but for its very last byte, then a hole to the end.
 */
function sparseFixture(): { file: string; data: Buffer } {
  const file = fresh('sparse');
  const data = crypto.randomBytes(256 * KiB);
  fs.writeFileSync(file, '');
  fs.truncateSync(file, MiB);
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, data, 0, data.length, 0);
    fs.writeSync(fd, Buffer.alloc(64 * KiB), 0, 64 * KiB, 512 * KiB);
    const lastByte = Buffer.alloc(64 * KiB);
    lastByte[lastByte.length - 1] = 0x01;
    fs.writeSync(fd, lastByte, 0, lastByte.length, 576 * KiB);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return { file, data };
}

async function withFd<T>(file: string, fn: (fd: number) => Promise<T>): Promise<T> {
  const fd = fs.openSync(file, 'r');
  try {
    return await fn(fd);
  } finally {
    fs.closeSync(fd);
  }
}

describe('readChunks (native, one thread-pool call)', () => {
  test('fills each buffer from its position and returns the CRC32C of the bytes read', async () => {
    const file = fresh();
    const content = crypto.randomBytes(300 * KiB);
    fs.writeFileSync(file, content);
    // Aligned and unaligned positions, sizes that are and are not multiples of 64 and 8.
    const spans: Array<[number, number]> = [
      [0, 64 * KiB],
      [64 * KiB, 4096],
      [1000, 3001],
      [300 * KiB - 1, 1],
      [123457, 65],
      [7, 7],
    ];
    await withFd(file, async (fd) => {
      const bufs = spans.map(([, len]) => dirty(len));
      const crcs = await readChunks(
        fd,
        bufs,
        spans.map(([pos]) => pos),
        false,
      );
      expect(crcs).toHaveLength(spans.length);
      spans.forEach(([pos, len], i) => {
        const expected = fileBytes(file, pos, len);
        expect(bufs[i].equals(expected)).toBe(true);
        expect(crcs[i]).toBe(referenceCrc32c(expected));
      });
      // With zeros asked for, data that is not all zero still gives its CRC.
      const again = spans.map(([, len]) => dirty(len));
      expect(
        await readChunks(
          fd,
          again,
          spans.map(([pos]) => pos),
          true,
        ),
      ).toEqual(crcs);
    });
  });

  test('a hole of a sparse file: undefined with zeros, the CRC of zeros without; the buffer holds zeros either way', async () => {
    const { file } = sparseFixture();
    await withFd(file, async (fd) => {
      expect(seekData(fd, 256 * KiB)).toBe(512 * KiB); // really a hole
      const a = dirty(64 * KiB);
      expect(await readChunks(fd, [a], [256 * KiB], true)).toEqual([undefined]);
      expect(a.equals(Buffer.alloc(64 * KiB))).toBe(true);
      const b = dirty(64 * KiB);
      expect(await readChunks(fd, [b], [256 * KiB], false)).toEqual([referenceCrc32c(Buffer.alloc(64 * KiB))]);
      expect(b.equals(Buffer.alloc(64 * KiB))).toBe(true);
      // The hole at the end of the file too.
      expect(await readChunks(fd, [dirty(4096)], [MiB - 4096], true)).toEqual([undefined]);
    });
  });

  test('zeros written (allocated, not a hole) are undefined too', async () => {
    const { file } = sparseFixture();
    await withFd(file, async (fd) => {
      expect(seekData(fd, 512 * KiB)).toBe(512 * KiB); // data, not a hole
      const a = dirty(64 * KiB);
      expect(await readChunks(fd, [a], [512 * KiB], true)).toEqual([undefined]);
      expect(a.equals(Buffer.alloc(64 * KiB))).toBe(true);
      expect(await readChunks(fd, [dirty(64 * KiB)], [512 * KiB], false)).toEqual([referenceCrc32c(Buffer.alloc(64 * KiB))]);
    });
  });

  test('one non-zero byte anywhere (the very end, the tail after the last 64-byte line, the first byte) gives a CRC', async () => {
    const { file } = sparseFixture();
    await withFd(file, async (fd) => {
      // The sparse fixture's chunk whose only non-zero byte is its last.
      const buf = dirty(64 * KiB);
      const [crc] = await readChunks(fd, [buf], [576 * KiB], true);
      const expected = fileBytes(file, 576 * KiB, 64 * KiB);
      expect(expected[expected.length - 1]).toBe(1);
      expect(crc).toBe(referenceCrc32c(expected));
    });
    // Lengths that leave a tail shorter than 64 bytes, and a non-zero byte at each interesting place.
    const cases: Array<[number, number]> = [
      [4096 + 100, 4096 + 99], // in the tail
      [4096 + 100, 4095], // the last byte of a 64-byte line
      [4096 + 100, 4096], // the first byte of the tail
      [4096, 0], // the first byte
      [4096, 2048], // the middle
      [63, 62], // only a tail
      [1, 0], // a single byte
    ];
    for (const [len, at] of cases) {
      const f = fresh('one-byte');
      const content = Buffer.alloc(len);
      content[at] = 0x80;
      fs.writeFileSync(f, content);
      await withFd(f, async (fd) => {
        const [crc] = await readChunks(fd, [dirty(len)], [0], true);
        expect([len, at, crc]).toEqual([len, at, referenceCrc32c(content)]);
      });
    }
  });

  test('a batch mixing data, a hole, written zeros and a last-byte chunk answers each in order', async () => {
    const { file, data } = sparseFixture();
    await withFd(file, async (fd) => {
      const positions = [576 * KiB, 256 * KiB, 0, 512 * KiB, 128 * KiB, 960 * KiB];
      const bufs = positions.map(() => dirty(64 * KiB));
      const crcs = await readChunks(fd, bufs, positions, true);
      expect(crcs).toEqual([
        referenceCrc32c(fileBytes(file, 576 * KiB, 64 * KiB)),
        undefined,
        referenceCrc32c(data.subarray(0, 64 * KiB)),
        undefined,
        referenceCrc32c(data.subarray(128 * KiB, 192 * KiB)),
        undefined,
      ]);
      positions.forEach((pos, i) => expect(bufs[i].equals(fileBytes(file, pos, 64 * KiB))).toBe(true));
    });
  });

  test('reading past the end of the file rejects (pread: unexpected end of file)', async () => {
    const file = fresh();
    fs.writeFileSync(file, crypto.randomBytes(8 * KiB));
    await withFd(file, async (fd) => {
      for (const [pos, len] of [
        [4 * KiB, 8 * KiB], // starts inside, ends past the end
        [8 * KiB, 512], // starts at the end
        [MiB, 512], // far past it
      ]) {
        const err = await readChunks(fd, [Buffer.alloc(len)], [pos], true).catch((e: unknown) => e);
        // An Error from the addon (another realm than jest's sandbox: no instanceof).
        expect(Object.prototype.toString.call(err)).toBe('[object Error]');
        expect(err).toMatchObject({ message: 'pread: unexpected end of file', syscall: 'pread' });
        expect(typeof (err as { errno?: unknown }).errno).toBe('number');
      }
      // One bad chunk in a batch fails the call.
      await expect(readChunks(fd, [Buffer.alloc(512), Buffer.alloc(512)], [0, 8 * KiB], false)).rejects.toMatchObject({
        syscall: 'pread',
      });
    });
  });

  test('a system call error rejects with its errno (pread on a folder: EISDIR)', async () => {
    const fd = fs.openSync(files.dir, 'r');
    try {
      const err = await readChunks(fd, [Buffer.alloc(512)], [0], true).catch((e: unknown) => e);
      expect(err).toMatchObject({ syscall: 'pread', errno: os.constants.errno.EISDIR });
      expect((err as Error).message).toMatch(/^pread: /);
    } finally {
      fs.closeSync(fd);
    }
  });

  test('bad arguments are ArgumentErrors, before any read', async () => {
    const file = fresh();
    fs.writeFileSync(file, Buffer.alloc(4096, 1));
    await withFd(file, async (fd) => {
      await expect(readChunks(fd, [Buffer.alloc(512), Buffer.alloc(512)], [0], false)).rejects.toBeInstanceOf(ArgumentError);
      await expect(readChunks(fd, [Buffer.alloc(512)], [0, 512], false)).rejects.toBeInstanceOf(ArgumentError);
      await expect(readChunks(fd, [Buffer.alloc(512)], [-512], false)).rejects.toBeInstanceOf(ArgumentError);
      await expect(readChunks(fd, [Buffer.alloc(512)], [1.5], false)).rejects.toBeInstanceOf(ArgumentError);
      await expect(readChunks(fd, [Buffer.alloc(0)], [0], false)).rejects.toBeInstanceOf(ArgumentError);
      expect(await readChunks(fd, [], [], true)).toEqual([]);
    });
  });
});

describe('FileStore.readChunks', () => {
  test('fills each chunk from its LBA with the CRC32C of its bytes; zeros as asked', async () => {
    const { file, data } = sparseFixture();
    const s = await FileStore.open({ path: file, readOnly: true });
    try {
      const lbas = [0n, 128n, 512n, 1024n, 1152n, 2040n]; // data, data, hole, written zeros, last byte, last 8 blocks (hole)
      const sizes = [128, 64, 128, 128, 128, 8];
      const mk = () => lbas.map((lba, i) => ({ lba, into: dirty(sizes[i] * 512) }));
      const withZeros = mk();
      const crcs = await s.readChunks(withZeros, { zeros: true });
      const expected = lbas.map((lba, i) => fileBytes(file, Number(lba) * 512, sizes[i] * 512));
      expect(expected[0].equals(data.subarray(0, 64 * KiB))).toBe(true);
      expect(crcs).toEqual([referenceCrc32c(expected[0]), referenceCrc32c(expected[1]), undefined, undefined, referenceCrc32c(expected[4]), undefined]);
      withZeros.forEach((c, i) => expect(c.into.equals(expected[i])).toBe(true));
      const noZeros = mk();
      expect(await s.readChunks(noZeros, { zeros: false })).toEqual(expected.map((b) => referenceCrc32c(b)));
      noZeros.forEach((c, i) => expect(c.into.equals(expected[i])).toBe(true));
    } finally {
      await s.close();
    }
  });

  test('a 4096-byte-block store addresses by its blocks', async () => {
    const file = fresh();
    const content = crypto.randomBytes(64 * KiB);
    fs.writeFileSync(file, content);
    const s = await FileStore.open({ path: file, blockSize: 4096 });
    try {
      const into = dirty(2 * 4096);
      expect(await s.readChunks([{ lba: 3n, into }], { zeros: true })).toEqual([referenceCrc32c(content.subarray(3 * 4096, 5 * 4096))]);
      expect(into.equals(content.subarray(3 * 4096, 5 * 4096))).toBe(true);
    } finally {
      await s.close();
    }
  });

  test('out of range is lba-out-of-range, a buffer of part of a block an ArgumentError; nothing is read', async () => {
    const s = await FileStore.open({ path: fresh(), size: 64 * 512 });
    try {
      const into = dirty(512);
      await expect(s.readChunks([{ lba: 64n, into }], { zeros: true })).rejects.toMatchObject({ name: 'StoreError', failure: { kind: 'lba-out-of-range' } });
      await expect(s.readChunks([{ lba: 0n, into: dirty(512) }, { lba: 60n, into: dirty(8 * 512) }], { zeros: true })).rejects.toMatchObject({
        failure: { kind: 'lba-out-of-range' },
      });
      await expect(s.readChunks([{ lba: 0n, into: dirty(700) }], { zeros: true })).rejects.toBeInstanceOf(ArgumentError);
      expect(into.equals(dirty(512))).toBe(true);
    } finally {
      await s.close();
    }
  });

  test('a file cut short behind the store\'s back gives read-error; a closed store not-ready', async () => {
    const file = fresh();
    const s = await FileStore.open({ path: file, size: 64 * 512 });
    try {
      fs.truncateSync(file, 32 * 512);
      const err = await s.readChunks([{ lba: 30n, into: dirty(4 * 512) }], { zeros: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).failure).toEqual({ kind: 'read-error' });
      expect((err as StoreError).message).toContain('unexpected end of file');
    } finally {
      await s.close();
    }
    await expect(s.readChunks([{ lba: 0n, into: dirty(512) }], { zeros: true })).rejects.toMatchObject({ failure: { kind: 'not-ready' } });
  });
});

describe('FileStore.writev', () => {
  test('pieces of different sizes land back to back, and nothing around them changes', async () => {
    const file = fresh();
    const s = await FileStore.open({ path: file, size: MiB });
    const reference = Buffer.alloc(MiB);
    try {
      const around = crypto.randomBytes(MiB);
      await s.write(0n, around);
      around.copy(reference);
      // 700 + 1500 + 1 + 2000 + 919 = 5120 bytes = 10 blocks; no piece is whole blocks.
      const pieces = [700, 1500, 1, 2000, 919].map((len) => crypto.randomBytes(len));
      await s.writev(37n, pieces);
      Buffer.concat(pieces).copy(reference, 37 * 512);
      expect(sha256(fs.readFileSync(file))).toBe(sha256(reference));
      expect(sha256(await s.read(0n, Number(s.blocks)))).toBe(sha256(reference));
    } finally {
      await s.close();
    }
  });

  test('on a 4096-byte-block store, whole blocks of pieces', async () => {
    const file = fresh();
    const s = await FileStore.open({ path: file, size: MiB, blockSize: 4096 });
    try {
      const pieces = [crypto.randomBytes(128), crypto.randomBytes(4096 * 2 - 128), crypto.randomBytes(4096)];
      await s.writev(253n, pieces); // the last 3 of 256 blocks
      const expected = Buffer.alloc(MiB);
      Buffer.concat(pieces).copy(expected, 253 * 4096);
      expect(sha256(fs.readFileSync(file))).toBe(sha256(expected));
    } finally {
      await s.close();
    }
  });

  test('one pwritev: fs.writev gets the pieces as given (not copied together)', async () => {
    const s = await FileStore.open({ path: fresh(), size: MiB });
    try {
      const writev = jest.spyOn(fs, 'writev');
      const write = jest.spyOn(fs, 'write');
      const pieces = [crypto.randomBytes(512), crypto.randomBytes(1024)];
      await s.writev(4n, pieces);
      expect(writev).toHaveBeenCalledTimes(1);
      expect(write).not.toHaveBeenCalled();
      const [, bufs, position] = writev.mock.calls[0] as unknown as [number, Buffer[], number];
      expect(position).toBe(4 * 512);
      expect(bufs).toHaveLength(2);
      expect(bufs[0]).toBe(pieces[0]);
      expect(bufs[1]).toBe(pieces[1]);
      expect((await s.read(4n, 3)).equals(Buffer.concat(pieces))).toBe(true);
    } finally {
      await s.close();
    }
  });

  test('fua: the pwritev goes to the O_DSYNC descriptor, and the data lands', async () => {
    const file = fresh();
    const s = await FileStore.open({ path: file, size: MiB });
    try {
      const fds: number[] = [];
      const original = fs.writev;
      jest.spyOn(fs, 'writev').mockImplementation(((...args: unknown[]) => {
        fds.push(args[0] as number);
        return (original as unknown as (...a: unknown[]) => void)(...args);
      }) as unknown as typeof fs.writev);
      const a = [crypto.randomBytes(300), crypto.randomBytes(724)];
      const b = [crypto.randomBytes(1000), crypto.randomBytes(24)];
      await s.writev(100n, a, { fua: true });
      await s.writev(200n, b);
      expect(fds).toHaveLength(2);
      expect(fds[0]).not.toBe(fds[1]);
      // /proc/self/fdinfo "flags" is octal; O_DSYNC is 010000 on Linux.
      const flagsOf = (fd: number) => parseInt(/flags:\s+([0-7]+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1], 8);
      expect(flagsOf(fds[0]) & 0o10000).toBe(0o10000);
      expect(flagsOf(fds[1]) & 0o10000).toBe(0);
      expect(fileBytes(file, 100 * 512, 1024).equals(Buffer.concat(a))).toBe(true);
      expect(fileBytes(file, 200 * 512, 1024).equals(Buffer.concat(b))).toBe(true);
    } finally {
      await s.close();
    }
  });

  test('a short pwritev is finished by write from the last whole block written', async () => {
    const file = fresh();
    const s = await FileStore.open({ path: file, size: MiB });
    try {
      const pieces = [crypto.randomBytes(1000), crypto.randomBytes(2072)]; // 6 blocks
      const whole = Buffer.concat(pieces);
      // The kernel writes only the first 1300 bytes (2 whole blocks and part of the third).
      jest.spyOn(fs, 'writev').mockImplementation(((fd: number, _bufs: Buffer[], position: number, cb: (err: Error | null, n: number) => void) => {
        const written = fs.writeSync(fd, whole, 0, 1300, position);
        process.nextTick(() => cb(null, written));
      }) as unknown as typeof fs.writev);
      const write = jest.spyOn(fileops.fileIoBatch, 'submit');
      await s.writev(8n, pieces);
      expect(write).toHaveBeenCalled();
      expect(write.mock.calls[0][3]).toBe(10 * 512); // position: LBA 8 + 2 whole blocks
      expect(fileBytes(file, 8 * 512, whole.length).equals(whole)).toBe(true);
      expect(fileBytes(file, 7 * 512, 512).equals(Buffer.alloc(512))).toBe(true);
      expect(fileBytes(file, 14 * 512, 512).equals(Buffer.alloc(512))).toBe(true);
    } finally {
      await s.close();
    }
  });

  test('a read-only store refuses with write-protected and the file is unchanged', async () => {
    const file = fresh();
    fs.writeFileSync(file, Buffer.alloc(8192, 0x42));
    const s = await FileStore.open({ path: file, readOnly: true });
    try {
      await expect(s.writev(0n, [Buffer.alloc(100), Buffer.alloc(412)])).rejects.toMatchObject({ name: 'StoreError', failure: { kind: 'write-protected' } });
      await expect(s.writev(0n, [Buffer.alloc(512)])).rejects.toMatchObject({ failure: { kind: 'write-protected' } });
      expect(fs.readFileSync(file)).toEqual(Buffer.alloc(8192, 0x42));
    } finally {
      await s.close();
    }
  });

  test('out of range is lba-out-of-range, not whole blocks an ArgumentError; the file is untouched', async () => {
    const file = fresh();
    const s = await FileStore.open({ path: file, size: 64 * 512 });
    try {
      const writev = jest.spyOn(fs, 'writev');
      await expect(s.writev(63n, [Buffer.alloc(512, 1), Buffer.alloc(512, 2)])).rejects.toMatchObject({
        name: 'StoreError',
        failure: { kind: 'lba-out-of-range' },
      });
      await expect(s.writev(64n, [Buffer.alloc(256, 1), Buffer.alloc(256, 2)])).rejects.toMatchObject({ failure: { kind: 'lba-out-of-range' } });
      await expect(s.writev(0n, [Buffer.alloc(512, 1), Buffer.alloc(100, 2)])).rejects.toBeInstanceOf(ArgumentError);
      await expect(s.writev(0n, [Buffer.alloc(100, 1)])).rejects.toBeInstanceOf(ArgumentError);
      expect(writev).not.toHaveBeenCalled();
      expect(fs.readFileSync(file)).toEqual(Buffer.alloc(64 * 512));
      // The last blocks themselves are in range.
      await s.writev(62n, [Buffer.alloc(512, 1), Buffer.alloc(512, 2)]);
      expect(fileBytes(file, 62 * 512, 1024)).toEqual(Buffer.concat([Buffer.alloc(512, 1), Buffer.alloc(512, 2)]));
    } finally {
      await s.close();
    }
  });

  test('a single piece takes write\'s path (no pwritev), fua included', async () => {
    const file = fresh();
    const s = await FileStore.open({ path: file, size: MiB });
    try {
      const writev = jest.spyOn(fs, 'writev');
      const write = jest.spyOn(fs, 'write');
      const batched = jest.spyOn(fileops.fileIoBatch, 'submit');
      const data = crypto.randomBytes(3 * 512);
      await s.writev(17n, [data]);
      await s.writev(40n, [data], { fua: true });
      expect(writev).not.toHaveBeenCalled();
      expect(batched).toHaveBeenCalledTimes(1); // the plain one, batched
      expect(write).toHaveBeenCalledTimes(1); // the FUA one, on the O_DSYNC descriptor
      expect(fileBytes(file, 17 * 512, data.length).equals(data)).toBe(true);
      expect(fileBytes(file, 40 * 512, data.length).equals(data)).toBe(true);
    } finally {
      await s.close();
    }
  });
});

describe('FileStore.close waits for requests on its descriptors', () => {
  test('a read, a chunk read and a gathered write in flight complete before the descriptors close; new requests are refused at once', async () => {
    const file = fresh('close');
    const size = 64 * MiB;
    const s = await FileStore.open({ path: file, size });
    const data = crypto.randomBytes(MiB);
    await s.write(0n, data);
    const order: string[] = [];
    const read = s.read(0n, size / 512).then((b) => {
      order.push('read');
      return b;
    });
    const chunks = s.readChunks([{ lba: 0n, into: Buffer.alloc(MiB) }], { zeros: true }).then((r) => {
      order.push('chunks');
      return r;
    });
    const wrote = s.writev(4096n, [Buffer.alloc(512, 1), Buffer.alloc(512, 2)]).then(() => order.push('writev'));
    const closed = s.close().then(() => order.push('close'));
    await expect(s.read(0n, 1)).rejects.toMatchObject({ name: 'StoreError' });
    const [r, c] = await Promise.all([read, chunks, wrote, closed]);
    expect(order[order.length - 1]).toBe('close');
    expect(r.subarray(0, MiB).equals(data)).toBe(true);
    expect(c[0]).toBe(referenceCrc32c(data));
    expect(fileBytes(file, 4096 * 512, 1024).equals(Buffer.concat([Buffer.alloc(512, 1), Buffer.alloc(512, 2)]))).toBe(true);
  });
});

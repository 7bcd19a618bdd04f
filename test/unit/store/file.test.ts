/**
 * FileStore on real files in a temp folder. Contents are checked by sha256 against a reference
 * buffer built in the test and against the file itself, read with fs (independent of the store).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { ArgumentError } from '../../../src/errors';
import { stampBlocks } from '../../../src/agent/stamp';
import * as fileops from '../../../src/native/fileops';
import { FileStore } from '../../../src/store/file';
import { StoreError } from '../../../src/store/store';
import { fileBytes, tempFiles } from '../../helpers/tmp';
import { storeContract } from './contract';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

const files = tempFiles('store-file');
const fresh = files.fresh;
afterEach(() => jest.restoreAllMocks());

/** The FileHandle class's prototype, to spy on datasync/write/read of the store's handle. */
async function fileHandleProto(): Promise<fs.promises.FileHandle> {
  const fh = await fs.promises.open(__filename, 'r');
  await fh.close();
  return Object.getPrototypeOf(fh) as fs.promises.FileHandle;
}

storeContract('file, 512-byte blocks', () => FileStore.open({ path: fresh('c512'), size: 4 * MiB + 512 * 3 }), { numRuns: 80 });
storeContract('file, 4096-byte blocks', () => FileStore.open({ path: fresh('c4k'), size: 2 * MiB, blockSize: 4096 }), { numRuns: 80 });

describe('FileStore', () => {
  test('creates a missing file sparse, with the size asked for', async () => {
    const f = fresh();
    const s = await FileStore.open({ path: f, size: 64 * MiB });
    try {
      expect(s.blocks).toBe(BigInt((64 * MiB) / 512));
      expect(fs.statSync(f).size).toBe(64 * MiB);
      expect(fs.statSync(f).blocks).toBe(0);
      expect(await s.extents(0n, s.blocks)).toEqual([{ lba: 0n, blocks: s.blocks, mapped: false }]);
      expect(await s.read(1000n, 8)).toEqual(Buffer.alloc(8 * 512));
    } finally {
      await s.close();
    }
  });

  test('FUA writes and capture reads use the file the store opened, even after its path was renamed and reused', async () => {
    const f = fresh();
    fs.writeFileSync(f, crypto.randomBytes(MiB));
    const original = fs.readFileSync(f);
    const s = await FileStore.open({ path: f });
    const moved = `${f}.moved`;
    try {
      fs.renameSync(f, moved);
      fs.writeFileSync(f, Buffer.alloc(MiB, 0xee)); // another file at the old path
      const data = crypto.randomBytes(4096);
      await s.write(16n, data, { fua: true });
      expect(fileBytes(moved, 16 * 512, 4096).equals(data)).toBe(true);
      expect(sha256(fs.readFileSync(f))).toBe(sha256(Buffer.alloc(MiB, 0xee)));
      const into = Buffer.alloc(8192);
      await s.readChunks([{ lba: 64n, into }], { zeros: false });
      expect(into.equals(original.subarray(64 * 512, 64 * 512 + 8192))).toBe(true);
    } finally {
      await s.close();
    }
  });

  test('writes and reads round-trip, matching a reference buffer and the file on disk', async () => {
    const f = fresh();
    const size = 8 * MiB;
    const s = await FileStore.open({ path: f, size, blockSize: 4096 });
    const reference = Buffer.alloc(size);
    try {
      for (let i = 0; i < 40; i++) {
        const lba = BigInt(crypto.randomInt(0, size / 4096 - 16));
        const count = crypto.randomInt(1, 17);
        const data = crypto.randomBytes(count * 4096);
        await s.write(lba, data);
        data.copy(reference, Number(lba) * 4096);
      }
      expect(sha256(await s.read(0n, size / 4096))).toBe(sha256(reference));
      await s.flush();
      expect(sha256(fileBytes(f, 0, size))).toBe(sha256(reference));
    } finally {
      await s.close();
    }
  });

  test('FUA writes go through a descriptor opened O_DSYNC (durable when they return); plain writes do not; flush syncs', async () => {
    const proto = await fileHandleProto();
    const s = await FileStore.open({ path: fresh(), size: MiB });
    try {
      const fds: number[] = [];
      const originalWrite = fs.write;
      const originalSubmit = fileops.fileIoBatch.submit.bind(fileops.fileIoBatch);
      const originalSync = proto.datasync;
      // The store writes a FUA write with fs.write (callback form, on the thread pool), a small
      // plain one in the shared FileIoBatch.
      jest.spyOn(fs, 'write').mockImplementation(((...args: unknown[]) => {
        fds.push(args[0] as number);
        return (originalWrite as unknown as (...a: unknown[]) => void)(...args);
      }) as unknown as typeof fs.write);
      jest.spyOn(fileops.fileIoBatch, 'submit').mockImplementation((fd, write, buffer, position) => {
        if (write) fds.push(fd);
        return originalSubmit(fd, write, buffer, position);
      });
      const datasync = jest.spyOn(proto, 'datasync').mockImplementation(function (this: fs.promises.FileHandle) {
        return originalSync.call(this);
      });
      const data = stampBlocks(10n, 4, 512, 1n);
      await s.write(10n, data, { fua: true });
      await s.write(20n, data);
      expect(fds).toHaveLength(2);
      expect(fds[0]).not.toBe(fds[1]);
      // /proc/self/fdinfo "flags" is octal; O_DSYNC is 010000 on Linux.
      const flagsOf = (fd: number) => parseInt(/flags:\s+([0-7]+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1], 8);
      expect(flagsOf(fds[0]) & 0o10000).toBe(0o10000);
      expect(flagsOf(fds[1]) & 0o10000).toBe(0);
      expect(datasync).toHaveBeenCalledTimes(0);
      await s.flush();
      expect(datasync).toHaveBeenCalledTimes(1);
      expect((await s.read(10n, 4)).equals(data)).toBe(true);
      expect((await s.read(20n, 4)).equals(data)).toBe(true);
    } finally {
      await s.close();
    }
  });

  test('a small read the page cache holds costs no pool job; one it does not goes to the batch; a large one to a job of its own', async () => {
    const s = await FileStore.open({ path: fresh(), size: 4 * MiB });
    try {
      const data = crypto.randomBytes(2 * MiB);
      await s.write(0n, data);
      const submit = jest.spyOn(fileops.fileIoBatch, 'submit');
      const nowait = jest.spyOn(fileops, 'preadNoWait');
      expect((await s.read(8n, 8)).equals(data.subarray(4096, 8192))).toBe(true);
      expect(nowait).toHaveBeenCalledTimes(1);
      expect(submit).not.toHaveBeenCalled();
      // As if the pages were not cached: the whole read goes to the batch.
      nowait.mockReturnValueOnce(-1);
      expect((await s.read(16n, 128)).equals(data.subarray(8192, 8192 + 65536))).toBe(true);
      expect(submit).toHaveBeenCalledTimes(1);
      // Above 64 KiB: no page cache try, no batch.
      expect((await s.read(0n, 4096)).equals(data)).toBe(true);
      expect(nowait).toHaveBeenCalledTimes(2);
      expect(submit).toHaveBeenCalledTimes(1);
    } finally {
      await s.close();
    }
  });

  test('unmap punches a hole: extents show it, it reads zeros, the file holds fewer blocks', async () => {
    const f = fresh();
    const s = await FileStore.open({ path: f, size: 8 * MiB });
    try {
      const data = crypto.randomBytes(8 * MiB);
      await s.write(0n, data);
      await s.flush();
      const allocatedBefore = fs.statSync(f).blocks;
      expect(await s.extents(0n, s.blocks)).toEqual([{ lba: 0n, blocks: s.blocks, mapped: true }]);
      await s.unmap(2048n, 4096n); // bytes 1 MiB .. 3 MiB
      expect(fs.statSync(f).blocks).toBe(allocatedBefore - (2 * MiB) / 512);
      expect(await s.extents(0n, s.blocks)).toEqual([
        { lba: 0n, blocks: 2048n, mapped: true },
        { lba: 2048n, blocks: 4096n, mapped: false },
        { lba: 6144n, blocks: s.blocks - 6144n, mapped: true },
      ]);
      const expected = Buffer.from(data);
      expected.fill(0, MiB, 3 * MiB);
      expect(sha256(await s.read(0n, Number(s.blocks)))).toBe(sha256(expected));
      expect(sha256(fileBytes(f, 0, 8 * MiB))).toBe(sha256(expected));
    } finally {
      await s.close();
    }
  });

  test('extents of a sparse file written by someone else, and of a sub-range', async () => {
    const f = fresh();
    fs.writeFileSync(f, '');
    fs.truncateSync(f, 8 * MiB);
    const fd = fs.openSync(f, 'r+');
    fs.writeSync(fd, Buffer.alloc(MiB, 1), 0, MiB, 3 * MiB);
    fs.writeSync(fd, Buffer.alloc(4096, 2), 0, 4096, 7 * MiB);
    fs.closeSync(fd);
    const s = await FileStore.open({ path: f, blockSize: 4096 });
    try {
      expect(s.blocks).toBe(2048n);
      expect(await s.extents(0n, 2048n)).toEqual([
        { lba: 0n, blocks: 768n, mapped: false },
        { lba: 768n, blocks: 256n, mapped: true },
        { lba: 1024n, blocks: 768n, mapped: false },
        { lba: 1792n, blocks: 1n, mapped: true },
        { lba: 1793n, blocks: 255n, mapped: false },
      ]);
      expect(await s.extents(800n, 300n)).toEqual([
        { lba: 800n, blocks: 224n, mapped: true },
        { lba: 1024n, blocks: 76n, mapped: false },
      ]);
    } finally {
      await s.close();
    }
  });

  test('a block that is partly data counts as mapped (data rounded out to whole blocks)', async () => {
    const s = await FileStore.open({ path: fresh(), size: 64 * 512 });
    try {
      // File system granularity finer than the block: data at bytes 700..1300 and 5000..5001.
      const spans = [
        [700, 1300],
        [5000, 5001],
      ];
      jest.spyOn(fileops, 'seekData').mockImplementation((_fd, off) => spans.find(([, e]) => e > off)?.[0] ?? -1);
      jest.spyOn(fileops, 'seekHole').mockImplementation((_fd, off) => spans.find(([, e]) => e > off)?.[1] ?? 64 * 512);
      expect(await s.extents(0n, 64n)).toEqual([
        { lba: 0n, blocks: 1n, mapped: false },
        { lba: 1n, blocks: 2n, mapped: true }, // bytes 512..1536
        { lba: 3n, blocks: 6n, mapped: false },
        { lba: 9n, blocks: 1n, mapped: true }, // byte 5000 is in block 9
        { lba: 10n, blocks: 54n, mapped: false },
      ]);
    } finally {
      await s.close();
    }
  });

  test('where hole punching is not supported, unmap writes zeros', async () => {
    const s = await FileStore.open({ path: fresh(), size: MiB });
    try {
      await s.write(0n, Buffer.alloc(64 * 512, 0x33));
      const punch = jest.spyOn(fileops, 'punchHole').mockImplementation(() => {
        throw Object.assign(new Error('fallocate: Operation not supported'), { errno: 95, syscall: 'fallocate' });
      });
      await s.unmap(8n, 16n);
      await s.unmap(40n, 8n);
      expect(punch).toHaveBeenCalledTimes(1); // remembered: not tried again
      const expected = Buffer.alloc(64 * 512, 0x33);
      expected.fill(0, 8 * 512, 24 * 512);
      expected.fill(0, 40 * 512, 48 * 512);
      expect(sha256(await s.read(0n, 64))).toBe(sha256(expected));
    } finally {
      await s.close();
    }
  });

  test('out-of-range requests are StoreError lba-out-of-range and touch nothing', async () => {
    const f = fresh();
    const s = await FileStore.open({ path: f, size: 64 * 512 });
    try {
      for (const p of [s.read(64n, 1), s.read(60n, 5), s.write(63n, Buffer.alloc(1024, 9)), s.unmap(0n, 65n), s.extents(64n, 1n)]) {
        await expect(p).rejects.toMatchObject({ name: 'StoreError', failure: { kind: 'lba-out-of-range' } });
      }
      expect(fs.statSync(f).size).toBe(64 * 512);
      expect(fileBytes(f, 0, 64 * 512)).toEqual(Buffer.alloc(64 * 512));
    } finally {
      await s.close();
    }
  });

  test('256 concurrent writes to different blocks all land', async () => {
    const f = fresh();
    const s = await FileStore.open({ path: f, size: 4 * MiB });
    try {
      const reference = Buffer.alloc(4 * MiB);
      await Promise.all(
        Array.from({ length: 256 }, (_, i) => {
          const lba = BigInt(i * 31);
          const block = stampBlocks(lba, 1, 512, 3n);
          block.copy(reference, Number(lba) * 512);
          return s.write(lba, block);
        }),
      );
      expect(sha256(await s.read(0n, Number(s.blocks)))).toBe(sha256(reference));
      await s.flush();
      expect(sha256(fileBytes(f, 0, 4 * MiB))).toBe(sha256(reference));
    } finally {
      await s.close();
    }
  });

  describe('sizes', () => {
    test('a size that is not a multiple of the block size is refused, and no file is created', async () => {
      const f = fresh();
      const err = await FileStore.open({ path: f, size: 1000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ArgumentError);
      expect((err as Error).message).toMatch(/multiple of the block size 512, got 1000/);
      await expect(FileStore.open({ path: f, size: 6144, blockSize: 4096 })).rejects.toThrow(/block size 4096, got 6144/);
      expect(fs.existsSync(f)).toBe(false);
    });

    test('an existing file of another size is refused, naming both sizes, and left as it was', async () => {
      const f = fresh();
      fs.writeFileSync(f, Buffer.alloc(MiB, 7));
      const err = await FileStore.open({ path: f, size: 2 * MiB }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ArgumentError);
      expect((err as Error).message).toContain('1048576 bytes (1 MiB)');
      expect((err as Error).message).toContain('2097152 bytes (2 MiB)');
      expect(fs.readFileSync(f).equals(Buffer.alloc(MiB, 7))).toBe(true);
    });

    test('an existing file that is not whole blocks is refused', async () => {
      const f = fresh();
      fs.writeFileSync(f, Buffer.alloc(4096 + 512));
      await expect(FileStore.open({ path: f, blockSize: 4096 })).rejects.toThrow(/4608 bytes.*not a positive multiple of the block size 4096/);
      const ok = await FileStore.open({ path: f, blockSize: 512 });
      expect(ok.blocks).toBe(9n);
      await ok.close();
    });

    test('a missing file without a size, a folder, and a bad block size are refused', async () => {
      await expect(FileStore.open({ path: fresh() })).rejects.toThrow(/does not exist: give a size/);
      await expect(FileStore.open({ path: files.dir })).rejects.toThrow(/is a folder, not a regular file/);
      await expect(FileStore.open({ path: '/dev/null' })).rejects.toThrow(/\/dev\/null is not a regular file/);
      await expect(FileStore.open({ path: fresh(), size: MiB, blockSize: 1024 as 512 })).rejects.toThrow(/512 or 4096/);
    });
  });

  test('identity: file:<realpath>, and the same designators after reopening or through a symlink', async () => {
    const f = fresh('id');
    const a = await FileStore.open({ path: f, size: MiB });
    await a.close();
    const link = fresh('link');
    fs.symlinkSync(f, link);
    const b = await FileStore.open({ path: link });
    const other = await FileStore.open({ path: fresh('id'), size: MiB });
    try {
      expect(a.identity.name).toBe(`file:${fs.realpathSync(f)}`);
      expect(b.identity).toEqual(a.identity);
      expect(a.identity.naa).toHaveLength(16);
      expect(a.identity.naa![0] >> 4).toBe(6);
      expect(a.identity.serial).toMatch(/^[0-9A-F]{16}$/);
      expect(other.identity.naa!.equals(a.identity.naa!)).toBe(false);
      expect(other.identity.serial).not.toBe(a.identity.serial);
    } finally {
      await b.close();
      await other.close();
    }
  });

  test('a read-only store reads, and refuses writes and unmaps with write-protected', async () => {
    const f = fresh();
    fs.writeFileSync(f, Buffer.alloc(8192, 0x42));
    const s = await FileStore.open({ path: f, readOnly: true });
    try {
      expect(s.readOnly).toBe(true);
      expect(await s.read(0n, 16)).toEqual(Buffer.alloc(8192, 0x42));
      await expect(s.write(0n, Buffer.alloc(512))).rejects.toMatchObject({ failure: { kind: 'write-protected' } });
      await expect(s.unmap(0n, 1n)).rejects.toMatchObject({ failure: { kind: 'write-protected' } });
      expect(fs.readFileSync(f)).toEqual(Buffer.alloc(8192, 0x42));
    } finally {
      await s.close();
    }
  });

  test.each([
    ['EIO', 'write', 'write-error'],
    ['ENOSPC', 'write', 'no-space'],
    ['EDQUOT', 'write', 'no-space'],
    ['EROFS', 'write', 'write-protected'],
    ['EIO', 'read', 'read-error'],
  ])('%s on %s becomes StoreError %s', async (code, op, kind) => {
    const s = await FileStore.open({ path: fresh(), size: MiB });
    try {
      // A small read or write goes to the thread pool in the shared FileIoBatch (a read after
      // the page cache had nothing: preadNoWait -1): fail it there.
      jest.spyOn(fileops, 'preadNoWait').mockReturnValue(-1);
      jest.spyOn(fileops.fileIoBatch, 'submit').mockImplementation(() => Promise.reject(Object.assign(new Error(`${code}: simulated`), { code })));
      const p = op === 'write' ? s.write(0n, Buffer.alloc(512)) : s.read(0n, 1);
      const err = await p.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).failure).toEqual({ kind });
      expect((err as StoreError).message).toContain(code);
    } finally {
      await s.close();
    }
  });

  test('a file cut short behind the store\'s back gives read-error, not short data', async () => {
    const f = fresh();
    const s = await FileStore.open({ path: f, size: 64 * 512 });
    try {
      fs.truncateSync(f, 32 * 512);
      await expect(s.read(30n, 4)).rejects.toMatchObject({ failure: { kind: 'read-error' } });
      // nor holes (a kernel copy would write zeros for the missing blocks)
      await expect(s.extents(30n, 4n)).rejects.toMatchObject({ failure: { kind: 'read-error' }, message: expect.stringMatching(/ends at byte 16384, before the 64 blocks .*truncated/) });
      expect(await s.extents(0n, 32n)).toEqual([{ lba: 0n, blocks: 32n, mapped: false }]);
      const d = await FileStore.open({ path: fresh(), size: 64 * 512 });
      try {
        await expect(s.copyRangeTo(d)!(0n, 0n, 64n, {})).rejects.toMatchObject({ failure: { kind: 'read-error' } });
      } finally {
        await d.close();
      }
    } finally {
      await s.close();
    }
  });
});

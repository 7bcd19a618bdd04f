import fs from 'node:fs';
import path from 'node:path';
import { ArgumentError, IscsiError } from '../../../src/errors';
import { FileStore } from '../../../src/store/file';
import { MemoryStore } from '../../../src/store/memory';
import { openStore, parseStoreSpec } from '../../../src/store/open';
import { removeDir, tempDir } from '../../helpers/tmp';

let dir: string;
beforeAll(() => {
  dir = tempDir('store-open');
});
afterAll(() => removeDir(dir));

describe('parseStoreSpec', () => {
  test.each([
    ['file:/srv/lun0.img', { kind: 'file', path: '/srv/lun0.img' }],
    ['file:/srv/lun0.img:256M', { kind: 'file', path: '/srv/lun0.img', size: 256 * 1024 ** 2 }],
    ['file:rel/a.img:1G', { kind: 'file', path: 'rel/a.img', size: 1024 ** 3 }],
    ['file:/srv/a:b.img', { kind: 'file', path: '/srv/a:b.img' }],
    ['file:/srv/a:b.img:4096', { kind: 'file', path: '/srv/a:b.img', size: 4096 }],
    ['FILE:/x:1.5G', { kind: 'file', path: '/x', size: 1.5 * 1024 ** 3 }],
    ['memory:1G', { kind: 'memory', size: 1024 ** 3 }],
    ['memory:64MiB', { kind: 'memory', size: 64 * 1024 ** 2 }],
    ['iscsi://10.0.0.1/iqn.2003-01.org.x:t/1', { kind: 'remote', url: 'iscsi://10.0.0.1/iqn.2003-01.org.x:t/1' }],
  ])('%s', (spec, expected) => {
    expect(parseStoreSpec(spec)).toEqual(expected);
  });

  test.each([
    ['', /empty/],
    ['lun0.img', /no kind/],
    ['disk:/dev/sda', /unknown kind "disk"/],
    ['memory:', /no size/],
    ['memory:lots', /"lots" is not a size/],
    ['memory:0', /not a positive whole number/],
    ['file:', /no path/],
    ['file::1G', /no path/],
  ])('%p is refused, naming the spec', (spec, why) => {
    let err: unknown;
    try {
      parseStoreSpec(spec);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ArgumentError);
    expect((err as Error).message).toContain(`invalid store ${JSON.stringify(spec)}`);
    expect((err as Error).message).toMatch(why);
    expect((err as ArgumentError).code).toBe('ERR_INVALID_ARG');
  });
});

describe('openStore', () => {
  test('memory:SIZE opens a sparse memory store of that size, in the block size asked for', async () => {
    const a = await openStore('memory:1M');
    const b = await openStore('memory:1M', { blockSize: 4096 });
    expect(a).toBeInstanceOf(MemoryStore);
    expect([a.blocks, a.blockSize, b.blocks, b.blockSize]).toEqual([2048n, 512, 256n, 4096]);
    await expect(openStore('memory:1000')).rejects.toThrow(/size 1000 is not a multiple of the block size 512/);
    await Promise.all([a.close(), b.close()]);
  });

  test('file:PATH:SIZE creates the file; file:PATH reopens it; another size is refused', async () => {
    const f = path.join(dir, 'lun.img');
    const s = await openStore(`file:${f}:2M`);
    expect(s).toBeInstanceOf(FileStore);
    expect(s.blocks).toBe(4096n);
    await s.write(7n, Buffer.alloc(512, 0x61));
    await s.close();
    expect(fs.statSync(f).size).toBe(2 * 1024 * 1024);
    const again = await openStore(`file:${f}`, { readOnly: true });
    expect(again.readOnly).toBe(true);
    expect(await again.read(7n, 1)).toEqual(Buffer.alloc(512, 0x61));
    await again.close();
    await expect(openStore(`file:${f}:4M`)).rejects.toThrow(/2097152 bytes.*4194304 bytes/);
  });

  test('iscsi:// opens a remote store (an unreachable portal fails with the initiator error)', async () => {
    const err = await openStore('iscsi://127.0.0.1:1/iqn.2026-11.io.x:none/1', { session: { connectTimeoutMs: 3000 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IscsiError);
    expect((err as IscsiError).code).toBe('ERR_ISCSI_UNREACHABLE');
  });
});

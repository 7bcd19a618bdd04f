/**
 * A logical unit on a FileStore (sparse file): thin by default, data round-trips by hash, UNMAP
 * punches holes that read back zeros, FUA and SYNCHRONIZE CACHE reach the file.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { FileStore } from '../../../../src/store/file';
import { LogicalUnit } from '../../../../src/target/scsi/logical-unit';
import { removeDir, tempDir } from '../../../helpers/tmp';
import { GOOD, RecordingStore, blockCdb, clearUa, run, serviceActionIn16, sha256, unmapCdb, unmapList, type Fixture } from './helpers';

const BS = 512;
let dir: string;

beforeAll(() => {
  dir = tempDir('scsi-lu');
});
afterAll(() => removeDir(dir));

test('a file-backed logical unit: thin, round trip, unmap, flush', async () => {
  const file = await FileStore.open({ path: path.join(dir, 'lun.img'), size: 8 * 1024 * 1024, blockSize: 512 });
  const store = new RecordingStore(file);
  const lu = new LogicalUnit({ store });
  const f = { lu, store, view: new Map([[0, lu]]) } as unknown as Fixture;
  await clearUa(f);
  expect(lu.thin).toBe(true);
  const data = crypto.randomBytes(64 * BS);
  expect((await run(f, blockCdb('write', 16, 1000, 64, 0x08), { dataOut: data })).status).toBe(GOOD);
  expect(store.fuaWrites).toBe(1);
  expect(sha256((await run(f, blockCdb('read', 10, 1000, 64))).data as Buffer)).toBe(sha256(data));
  const list = unmapList([[1000, 64]]);
  expect((await run(f, unmapCdb(list.length), { dataOut: list })).status).toBe(GOOD);
  expect((await run(f, blockCdb('read', 10, 1000, 64))).data).toEqual(Buffer.alloc(64 * BS));
  const st = (await run(f, serviceActionIn16(0x12, 0, 1024))).data as Buffer;
  expect(st.readUInt32BE(0)).toBeGreaterThanOrEqual(20);
  expect((await run(f, blockCdb('sync', 10, 0, 0))).status).toBe(GOOD);
  expect(store.flushes).toBe(1);
  await file.close();
});

/**
 * The management API's lun_hash, which `restore --mgmt` checks a restored LUN with: SHA-256 of
 * pieces of a LUN as it reads now, computed in the target. The oracle is node:crypto over the
 * LUN's backing file, read by this test (no code of the target's). Bad input is a registry
 * ERR_INVALID_ARG error, not an internal one. Real target in this process, real HTTP API.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { IscsiSession } from '../../src/initiator/session';
import { removeDir, tempDir } from '../helpers/tmp';
import { startSnapshotTarget, type SnapshotTarget } from '../helpers/snapshot-target';

const IQN = 'iqn.2026-12.io.xcopy-agent.test:lun-hash';
const MiB = 1024 * 1024;
const BS = 512;
/** 3 MiB + 7 blocks: the last piece of a whole-LUN hash is short. */
const BLOCKS = (3 * MiB) / BS + 7;

let dir: string;
let t: SnapshotTarget;
const file = (name: string) => path.join(dir, name);
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/** The digests of pieces of blocks [lba, lba + blocks) of the file, `piece` blocks each. */
function expected(name: string, lba: number, blocks: number, piece: number): string[] {
  const data = fs.readFileSync(file(name));
  const out: string[] = [];
  for (let at = lba; at < lba + blocks; at += piece) out.push(sha(data.subarray(at * BS, Math.min(at + piece, lba + blocks) * BS)));
  return out;
}

beforeAll(async () => {
  dir = tempDir('lun-hash');
  fs.writeFileSync(file('a.img'), crypto.randomBytes(BLOCKS * BS));
  fs.writeFileSync(file('b.img'), crypto.randomBytes(2 * MiB));
  t = await startSnapshotTarget(dir, IQN, [`file:${file('a.img')}`, `file:${file('b.img')}`]);
});
afterAll(async () => {
  await t.server.stop();
  removeDir(dir);
});

const naaOf = async (lun: number) => (await t.mgmt.call<Array<{ lun: number; naa: string }>>('lun_list')).find((l) => l.lun === lun)!.naa;

test('by NAA designator: the whole LUN in 1 MiB pieces (the last one short) is the file hashed piece by piece', async () => {
  const naa = await naaOf(0);
  const r = await t.mgmt.call<{ target: string; lun: number; naa: string; block_size: number; hashes: string[] }>('lun_hash', { naa: naa.toUpperCase(), lba: 0, blocks: BLOCKS, piece_blocks: MiB / BS });
  expect(r).toMatchObject({ target: IQN, lun: 0, naa, block_size: BS });
  expect(r.hashes).toHaveLength(4);
  expect(r.hashes).toEqual(expected('a.img', 0, BLOCKS, MiB / BS));
});

test('by target and lun: a range inside, small pieces and pieces over the 4 MiB batch (read a part at a time)', async () => {
  const small = await t.mgmt.call<{ hashes: string[] }>('lun_hash', { target: IQN, lun: 1, lba: '1000', blocks: '333', piece_blocks: 10 });
  expect(small.hashes).toEqual(expected('b.img', 1000, 333, 10));
  const big = await t.mgmt.call<{ hashes: string[] }>('lun_hash', { target: IQN, tpg: 1, lun: 0, lba: 3, blocks: BLOCKS - 3, piece_blocks: (5 * MiB) / BS });
  expect(big.hashes).toEqual(expected('a.img', 3, BLOCKS - 3, (5 * MiB) / BS));
});

test('the LUN as it reads now: a write through iSCSI changes the digest of its piece only', async () => {
  const before = await t.mgmt.call<{ hashes: string[] }>('lun_hash', { target: IQN, lun: 1, lba: 0, blocks: 4096, piece_blocks: 2048 });
  const s = await IscsiSession.connect(t.url(1));
  try {
    await s.write16(2048n + 5n, crypto.randomBytes(BS));
  } finally {
    await s.close();
  }
  const after = await t.mgmt.call<{ hashes: string[] }>('lun_hash', { target: IQN, lun: 1, lba: 0, blocks: 4096, piece_blocks: 2048 });
  expect(after.hashes[0]).toBe(before.hashes[0]);
  expect(after.hashes[1]).not.toBe(before.hashes[1]);
  expect(after.hashes).toEqual(expected('b.img', 0, 4096, 2048));
});

describe('bad input: ERR_INVALID_ARG saying what is wrong', () => {
  test.each<[string, Record<string, unknown>, RegExp]>([
    ['an unknown NAA', { naa: '6001405' + '0'.repeat(25), lba: 0, blocks: 1, piece_blocks: 1 }, /no LUN with NAA designator 60014050+ here \(lun_list shows the LUNs\)/],
    ['an NAA that is not hex', { naa: 'disk-a', lba: 0, blocks: 1, piece_blocks: 1 }, /is not an NAA designator in hex/],
    ['an unknown LUN number', { target: IQN, lun: 7, lba: 0, blocks: 1, piece_blocks: 1 }, /has no LUN 7/],
    ['an unknown target', { target: 'iqn.2026-12.io.example:none', lun: 0, lba: 0, blocks: 1, piece_blocks: 1 }, /no target iqn\.2026-12\.io\.example:none here/],
    ['a range past the end', { target: IQN, lun: 1, lba: 4090, blocks: 7, piece_blocks: 1 }, /blocks \[4090, 4097\) are not all in LUN 1 of .* \(4096 blocks\)/],
    ['no blocks', { target: IQN, lun: 1, lba: 0, blocks: 0, piece_blocks: 1 }, /blocks and piece_blocks must be at least 1/],
    ['both an NAA and a LUN', { naa: '00', target: IQN, lun: 0, lba: 0, blocks: 1, piece_blocks: 1 }, /by naa .* or by target and lun, one of the two/],
    ['neither', { lba: 0, blocks: 1, piece_blocks: 1 }, /by naa .* or by target and lun, one of the two/],
    ['no piece_blocks', { target: IQN, lun: 0, lba: 0, blocks: 1 }, /piece_blocks .* is required/],
    ['a negative lba', { target: IQN, lun: 0, lba: -1, blocks: 1, piece_blocks: 1 }, /lba must be a non-negative integer/],
    ['an unknown param', { target: IQN, lun: 0, lba: 0, blocks: 1, piece_blocks: 1, id: 'x' }, /unknown param "id"/],
  ])('%s', async (_name, params, message) => {
    const err = await t.mgmt.call('lun_hash', params).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_INVALID_ARG' });
    expect((err as Error).message).toMatch(message);
  });
});

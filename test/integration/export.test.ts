/**
 * `export` and `erase-obf` (610) end to end on the project's target (file LUNs, real iSCSI, its
 * copy manager and management API), and `erase-obf` on tgt (thick LUNs: no UNMAP). The oracle
 * of byte-exactness is the LUNs' backing files read with fs, hashed here: an exported LUN or
 * file must have the SHA-256 of the secondary's backing file (or, moved to a larger LUN, its
 * image and hash table where the relocated layout puts them); an erased OBF must read zeros
 * there, and nothing past what was erased may change.
 */
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { backup } from '../../src/agent/backup';
import { eraseObf } from '../../src/agent/erase-obf';
import { exportSecondary } from '../../src/agent/export';
import { SecondaryLun } from '../../src/agent/secondary-lun';
import { AgentError } from '../../src/errors';
import { IscsiSession } from '../../src/initiator/session';
import { ManagementClient } from '../../src/mgmt';
import { Tgt } from '../../src/peers/tgt';
import * as secondary from '../../src/secondary';
import { TargetServer } from '../../src/target/server';
import { hostWriter, startSnapshotTarget } from '../helpers/snapshot-target';
import { removeDir, tempDir } from '../helpers/tmp';

const IQN = 'iqn.2026-12.io.xcopy-agent.test:export';
const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
const BS = 512;
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

let dir: string;
let server: TargetServer;
let port: number;
let mgmt: ManagementClient;
const url = (lun: number) => `iscsi://127.0.0.1:${port}/${IQN}/${lun}`;
const file = (name: string) => path.join(dir, name);
const shaOf = (name: string) => sha(fs.readFileSync(file(name)));
const quiet = pino({ level: 'silent' });

/**
 * LUNs: 0 source (mostly zeros), 1 OBF, 2 secondary (overwrite), 3 secondary (append), 4 a LUN of
 * the secondary's size, 5 a larger one, 6 a small one, 7 a LUN holding data, 8 a failed secondary.
 */
beforeAll(async () => {
  dir = tempDir('export');
  const src = Buffer.alloc(SIZE);
  crypto.randomBytes(2 * MiB).copy(src, 0);
  crypto.randomBytes(MiB).copy(src, 9 * MiB);
  fs.writeFileSync(file('src.img'), src);
  fs.writeFileSync(file('used.img'), Buffer.concat([crypto.randomBytes(MiB), Buffer.alloc(19 * MiB)]));
  ({ server, port, mgmt } = await startSnapshotTarget(dir, IQN, [
    `file:${file('src.img')}`,
    `file:${file('obf.img')}:24M`,
    `file:${file('sec.img')}:20M`,
    `file:${file('sec-append.img')}:44M`,
    `file:${file('same.img')}:20M`,
    `file:${file('large.img')}:24M`,
    `file:${file('small.img')}:8M`,
    `file:${file('used.img')}`,
    `file:${file('failed.img')}:20M`,
  ]));
  // An overwrite-mode backup of the quiet source, and an append-mode one while a host writes
  // (its log then holds records, which verifying an export lays over the image).
  await backup({ source: url(0), secondary: url(2), obf: url(1), mgmt, log: quiet, label: 'export-me' });
  const writer = hostWriter(url(0), { seed: 1701, blocks: SIZE / BS, minBlocks: 8, maxBlocks: 127 });
  try {
    await backup({ source: url(0), secondary: url(3), obf: url(1), mgmt, log: quiet, mode: 'append' });
  } finally {
    expect(await writer.stop()).toBeGreaterThan(0);
  }
});

afterAll(async () => {
  await server?.stop();
  if (dir) removeDir(dir);
});

/** The secondary's metadata decoded from a backing file's bytes (trailer in its last block). */
function metadataOf(bytes: Buffer): { record: secondary.SecondaryRecord; hashes: Buffer[] } {
  const blocks = BigInt(bytes.length / BS);
  const at = (lba: bigint, n: number) => bytes.subarray(Number(lba) * BS, (Number(lba) + n) * BS);
  const t = secondary.decodeTrailer(at(blocks - 1n, 1), blocks);
  const record = secondary.pickHeader(at(t.metaLba, t.slotBlocks), at(t.metaLba + BigInt(t.slotBlocks), t.slotBlocks));
  const L = record.layout;
  return { record, hashes: secondary.decodeHashTable(at(L.hashLba, Number(L.hashBlocks)), record.progress.hashedExtents) };
}

/** SHA-256 of each extent of `image`, computed here. */
function extentHashes(image: Buffer, extentBytes: number): string[] {
  const out: string[] = [];
  for (let o = 0; o < image.length; o += extentBytes) out.push(sha(image.subarray(o, Math.min(o + extentBytes, image.length))));
  return out;
}

describe('export', () => {
  test('to a LUN of the same size: by EXTENDED COPY, the secondary byte for byte, verified', async () => {
    const r = await exportSecondary({ secondary: url(2), to: url(4) });
    expect(r).toMatchObject({ state: 'integrated', path: 'xcopy', host_bytes: 0n, bytes: BigInt(20 * MiB), relocated: false, verified: true, sparse_bytes_skipped: 0n });
    expect(r.xcopy_bytes).toBe(BigInt(20 * MiB - BS)); // all but the trailer, written last
    expect(r.verified_extents).toBe(SIZE / MiB);
    expect(shaOf('same.img')).toBe(shaOf('sec.img'));
  });

  test('to a larger LUN: the metadata area moves to its end; image and hashes as the secondary', async () => {
    const r = await exportSecondary({ secondary: url(2), to: url(5) });
    expect(r).toMatchObject({ path: 'xcopy', relocated: true, verified: true, verified_extents: SIZE / MiB });
    const sec = fs.readFileSync(file('sec.img'));
    const large = fs.readFileSync(file('large.img'));
    const from = metadataOf(sec);
    const to = metadataOf(large);
    expect(to.record).toMatchObject({ backupId: from.record.backupId, state: 'integrated', label: 'export-me' });
    expect(to.record.layout).toMatchObject({ capacityBlocks: BigInt((24 * MiB) / BS), trailerLba: BigInt((24 * MiB) / BS - 1) });
    expect(to.record.layout.metaLba - from.record.layout.metaLba).toBe(BigInt((4 * MiB) / BS));
    expect(sha(large.subarray(0, SIZE))).toBe(sha(sec.subarray(0, SIZE)));
    expect(to.hashes.map((h) => h.toString('hex'))).toEqual(extentHashes(sec.subarray(0, SIZE), from.record.layout.extentBytes));
    // Both slots describe the new layout: the copied, stale one was written over.
    const s = await IscsiSession.connect(url(5));
    try {
      expect((await SecondaryLun.open(s)).record.layout.metaLba).toBe(to.record.layout.metaLba);
      const L = to.record.layout;
      for (const slot of [0n, 1n]) {
        const rec = secondary.decodeHeaderSlot(await s.read16(L.metaLba + slot * BigInt(L.slotBlocks), L.slotBlocks));
        expect(rec.layout.capacityBlocks).toBe(L.capacityBlocks);
      }
    } finally {
      await s.close();
    }
  });

  test('to a file: the SHA-256 of the secondary LUN, zeros left as holes', async () => {
    const out = file('nightly.secondary');
    const r = await exportSecondary({ secondary: url(2), to: out });
    expect(r).toMatchObject({ path: 'file', to: out, bytes: BigInt(20 * MiB), verified: true, verified_extents: SIZE / MiB });
    expect(sha(fs.readFileSync(out))).toBe(shaOf('sec.img'));
    const st = fs.statSync(out);
    expect(st.size).toBe(20 * MiB);
    // 3 MiB of random data and the metadata in 20 MiB: the rest are holes.
    expect(r.sparse_bytes_skipped).toBeGreaterThan(BigInt(16 * MiB));
    expect(st.blocks * 512).toBeLessThan(5 * MiB);
  });

  test('a log-appended secondary to a file: verified with its log laid over the image', async () => {
    const out = file('append.secondary');
    const r = await exportSecondary({ secondary: url(3), to: out });
    expect(r).toMatchObject({ state: 'log-appended', path: 'file', verified: true, verified_extents: SIZE / MiB });
    expect(sha(fs.readFileSync(out))).toBe(shaOf('sec-append.img'));
    const m = metadataOf(fs.readFileSync(out));
    expect(m.record.log!.records).toBeGreaterThan(0); // the host wrote during the backup
  });

  test('a copy that does not read back as the secondary fails verification', async () => {
    const out = file('corrupt.secondary');
    const err = await exportSecondary({
      secondary: url(2),
      to: out,
      onPhase: (phase) => {
        if (phase !== 'verify') return;
        const fd = fs.openSync(out, 'r+');
        fs.writeSync(fd, Buffer.from([0xa5]), 0, 1, 5 * MiB + 77);
        fs.closeSync(fd);
      },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_EXPORT_VERIFY' });
    expect((err as Error).message).toMatch(/does not read back as the secondary: extent 5 \(bytes 5242880\.\.6291455\) has SHA-256 [0-9a-f]{64}, its hash table [0-9a-f]{64}/);
  });

  describe('refused before anything is written', () => {
    beforeAll(async () => {
      // A secondary whose backup failed: a copy of LUN 2 marked failed.
      await exportSecondary({ secondary: url(2), to: url(8) });
      const s = await IscsiSession.connect(url(8));
      try {
        await (await SecondaryLun.open(s)).save({ state: 'failed', reason: 'the snapshot turned INVALID (OBF_FULL)' });
      } finally {
        await s.close();
      }
    });

    test.each<[string, () => { secondary: string; to: string }, string, RegExp, string[]]>([
      ['a failed secondary', () => ({ secondary: url(8), to: url(4) }), 'ERR_SNAPSHOT_STATE', /holds a copy in state failed \(the snapshot turned INVALID \(OBF_FULL\)\), which is not a backup: .*--force/, ['same.img']],
      ['a destination too small', () => ({ secondary: url(2), to: url(6) }), 'ERR_INVALID_ARG', /destination too small: 40960 blocks needed, 16384 present \(grow it, or export to a file\)/, ['small.img']],
      ['a destination holding data', () => ({ secondary: url(2), to: url(7) }), 'ERR_DESTINATION_IN_USE', /holds data that is not a secondary: give a blank LUN, or --yes/, ['used.img']],
      ['the secondary itself', () => ({ secondary: url(2), to: url(2) }), 'ERR_INVALID_ARG', /is the secondary itself: give another LUN/, ['sec.img']],
      ['an existing file', () => ({ secondary: url(2), to: file('nightly.secondary') }), 'ERR_DESTINATION_IN_USE', /exists and is not empty: give a new file, or --yes/, ['nightly.secondary']],
    ])('%s', async (_name, opts, code, message, untouched) => {
      const before = untouched.map(shaOf);
      const err = await exportSecondary(opts()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AgentError);
      expect(err).toMatchObject({ code });
      expect((err as Error).message).toMatch(message);
      expect(untouched.map(shaOf)).toEqual(before);
    });

    test('--force exports a failed secondary all the same, and --yes a LUN holding data', async () => {
      const forced = await exportSecondary({ secondary: url(8), to: file('failed.secondary'), force: true });
      expect(forced).toMatchObject({ state: 'failed', verified: true });
      expect(sha(fs.readFileSync(file('failed.secondary')))).toBe(shaOf('failed.img'));
      const taken = await exportSecondary({ secondary: url(2), to: url(7), yes: true });
      expect(taken).toMatchObject({ relocated: false, verified: true });
      expect(shaOf('used.img')).toBe(shaOf('sec.img'));
    });
  });
});

describe('erase-obf', () => {
  const obfBytes = () => fs.readFileSync(file('obf.img'));

  test.each<[string, () => Parameters<typeof eraseObf>[0], string, RegExp, string]>([
    ['without --yes', () => ({ obf: url(1) }), 'ERR_INVALID_ARG', /^erase-obf destroys the OBF's superblock and log on iscsi:\/\/.*\/1: add --yes$/, 'obf.img'],
    ['a LUN that is not an OBF', () => ({ obf: url(6), yes: true }), 'ERR_NOT_AN_OBF', /is not an OBF \(block 0 is not an OBF superblock: .*\): check the URL, or add --force/, 'small.img'],
  ])('refused: %s', async (_name, opts, code, message, untouched) => {
    const before = shaOf(untouched);
    const err = await eraseObf(opts()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code });
    expect((err as Error).message).toMatch(message);
    expect(shaOf(untouched)).toBe(before);
  });

  test('refused while a snapshot may capture into it (ACTIVE), allowed once it is terminated', async () => {
    const st = await mgmt.call<{ id: string }>('snapshot_institute', { source: `${IQN}/0`, obf: `${IQN}/6` });
    try {
      const before = shaOf('small.img');
      const err = await eraseObf({ obf: url(6), yes: true }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_SNAPSHOT_STATE' });
      expect((err as Error).message).toMatch(new RegExp(`holds snapshot ${st.id}, ACTIVE: .*terminate it first \\(xcopy-agent snapshot terminate ${st.id}\\), or add --force`));
      expect(shaOf('small.img')).toBe(before);
    } finally {
      await mgmt.call('snapshot_terminate', { id: st.id });
      await mgmt.call('snapshot_forget', { id: st.id });
    }
    const r = await eraseObf({ obf: url(6), yes: true });
    expect(r).toMatchObject({ snapshot_id: st.id, obf_state: 'SEALED', records: 0, erased_blocks: BigInt(MiB / BS) });
    expect(fs.readFileSync(file('small.img')).equals(Buffer.alloc(8 * MiB))).toBe(true);
  });

  test('on tgt (thick: no UNMAP) the used part is written with zeros, the rest untouched', async () => {
    expect(Tgt.available()).toBe(true);
    // The OBF of the append backup (a sealed log with records), with data after its log.
    const lun = Buffer.alloc(8 * MiB);
    const obf = obfBytes();
    obf.copy(lun, 0, 0, 6 * MiB);
    crypto.randomBytes(2 * MiB).copy(lun, 6 * MiB);
    fs.writeFileSync(file('tgt-obf.img'), lun);
    const tgt = await Tgt.start({ dir: file('tgt'), luns: [{ size: 8 * MiB, path: file('tgt-obf.img') }] });
    try {
      const r = await eraseObf({ obf: tgt.url(1), yes: true });
      expect(['write-same', 'write']).toContain(r.method);
      expect(r.obf_state).toBe('SEALED');
      expect(r.records).toBeGreaterThan(0);
      expect(r.erased_blocks).toBeGreaterThanOrEqual(r.used_blocks!);
      expect(r.erased_blocks).toBeGreaterThanOrEqual(BigInt(MiB / BS));
      const after = fs.readFileSync(file('tgt-obf.img'));
      const erased = Number(r.erased_bytes);
      expect(after.subarray(0, erased).equals(Buffer.alloc(erased))).toBe(true);
      expect(sha(after.subarray(erased))).toBe(sha(lun.subarray(erased)));
      // --all: the whole LUN (block 0 is no OBF any more: --force).
      const all = await eraseObf({ obf: tgt.url(1), yes: true, force: true, all: true });
      expect(all).toMatchObject({ erased_blocks: BigInt((8 * MiB) / BS), snapshot_id: undefined });
      expect(fs.readFileSync(file('tgt-obf.img')).equals(Buffer.alloc(8 * MiB))).toBe(true);
    } finally {
      await tgt.stop();
    }
  });

  test('erases the used OBF by UNMAP (reads back zeros), then a new backup takes the OBF', async () => {
    const before = obfBytes();
    const r = await eraseObf({ obf: url(1), yes: true });
    expect(r).toMatchObject({ method: 'unmap', obf_state: 'SEALED', block_size: BS });
    expect(r.records).toBeGreaterThan(0);
    expect(r.erased_blocks).toBeGreaterThanOrEqual(r.used_blocks!);
    const after = obfBytes();
    const erased = Number(r.erased_bytes);
    expect(after.subarray(0, erased).equals(Buffer.alloc(erased))).toBe(true);
    expect(sha(after.subarray(erased))).toBe(sha(before.subarray(erased)));
    const b = await backup({ source: url(0), secondary: url(2), obf: url(1), mgmt, log: quiet });
    expect(b.state).toBe('integrated');
    expect(sha(fs.readFileSync(file('sec.img')).subarray(0, SIZE))).toBe(shaOf('src.img'));
    expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
  });
});

test('the CLI: one-line errors with their exit statuses, one summary record with --json', async () => {
  const bin = path.resolve(__dirname, '../../bin/xcopy-agent');
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(bin, args, { timeout: 120_000 }, (e, stdout, stderr) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr })),
    );
  const refusals: Array<[string[], RegExp]> = [
    [['erase-obf', '--obf', url(1)], /^xcopy-agent: erase-obf destroys the OBF's superblock and log on .*: add --yes$/],
    [['erase-obf', '--obf', url(7), '--yes'], /^xcopy-agent: .* is not an OBF \(.*\): check the URL, or add --force to erase it all the same$/],
    [['export', '--secondary', url(8), '--to', file('cli-failed.secondary')], /^xcopy-agent: .* holds a copy in state failed .*--force/],
    [['export', '--secondary', url(2), '--to', url(6)], /^xcopy-agent: destination too small: /],
  ];
  for (const [args, message] of refusals) {
    const r = await run(args);
    expect({ args, code: r.code }).toEqual({ args, code: 1 });
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(message);
    expect(r.stdout).toBe('');
  }
  expect(fs.existsSync(file('cli-failed.secondary'))).toBe(false);
  const ok = await run(['export', '--secondary', url(2), '--to', file('cli.secondary'), '--json']);
  expect(ok.code).toBe(0);
  const lines = ok.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(lines.at(-1)).toMatchObject({ type: 'summary', command: 'export', path: 'file', verified: true, bytes: String(20 * MiB) });
  expect(sha(fs.readFileSync(file('cli.secondary')))).toBe(shaOf('sec.img'));
  const erased = await run(['erase-obf', '--obf', url(1), '--yes']);
  expect(erased.code).toBe(0);
  expect(erased.stdout).toMatch(/^erase-obf: .* held snapshot [0-9a-f-]+ \(SEALED, \d+ records in \d+ blocks\); blocks 0\.\.\d+ \(.* MiB\) zeroed by unmap in .* s; the LUN is blank for a new snapshot\n$/);
});

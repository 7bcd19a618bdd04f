/**
 * `verify` end to end on the project's target: copies made by real backups while a host writes
 * (both modes; append with --mark, not integrated), then read back whole and checked against
 * their hash tables; damage to the image, to the appended log and to the metadata area — made
 * in the backing files, below the code under test — is caught with the documented code; a LUN a
 * copy was restored onto is checked with --against. The restored image is the source's backing
 * file copied while the snapshot's writes were held (the held event), independent of the COW,
 * copy and OBF code.
 */
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SecondaryLun } from '../../src/agent/secondary-lun';
import { verify } from '../../src/agent/verify';
import { IscsiSession } from '../../src/initiator/session';
import * as secondary from '../../src/secondary';
import { copiesTargetSuite } from '../helpers/copies-target';
import { flipByte } from '../helpers/tmp';

const IQN = 'iqn.2026-12.io.xcopy-agent.test:verify';
const MiB = 1024 * 1024;
const SIZE = 8 * MiB;
const BS = 512;

/** LUNs (test/helpers/copies-target.ts): 0 source, 1 OBF, 2 secondary (overwrite), 3 secondary (append), 4 another LUN, 5 a LUN too small. */
const t = copiesTargetSuite(IQN, 'verify');
const url = (lun: number) => t.url(lun);
const file = (name: string) => t.file(name);
const SEED = Number(process.env.VERIFY_SEED ?? crypto.randomInt(1, 2 ** 30));
console.info(`verify host writers seed ${SEED} (replay with VERIFY_SEED=${SEED})`);


/** XORs one byte of a backing file at `offset` (damage below the target and the agent). */
function flip(name: string, offset: number): () => void {
  flipByte(file(name), offset);
  return () => flip(name, offset);
}

async function metadataOf(lun: number): Promise<secondary.SecondaryRecord> {
  const s = await IscsiSession.connect(url(lun));
  try {
    return (await SecondaryLun.open(s)).record;
  } finally {
    await s.close();
  }
}

let held: Buffer;

test('an overwrite-mode copy made under writes verifies; a flipped byte in its image is found, with how many extents differ and the first', async () => {
  held = await t.backupUnderWrites(2, { mode: 'overwrite' }, SEED);
  const good = await verify({ secondary: url(2) });
  expect(good).toMatchObject({ mode: 'overwrite', state: 'integrated', extents: 8, image_bytes: BigInt(SIZE) });
  expect(good.log_records).toBeUndefined();
  // two bytes in two extents (3 and 6) of the image
  const undo = [flip('sec.img', 3 * MiB + 12345), flip('sec.img', 6 * MiB + 1)];
  const err = await verify({ secondary: url(2) }).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'ERR_VERIFY_MISMATCH' });
  expect((err as Error).message).toMatch(/is not a good copy: 2 of 8 extents differ from the hash table of backup [0-9a-f-]+, the first extent 3 \(bytes 3145728\.\.4194303\)$/);
  undo.forEach((u) => u());
  expect((await verify({ secondary: url(2) })).extents).toBe(8);
});

test('--against: a LUN holding the held image verifies; the source, changed since, does not', async () => {
  const s = await IscsiSession.connect(url(4));
  try {
    await s.write16(0n, held); // what a restore would write, taken from the held reference
  } finally {
    await s.close();
  }
  const r = await verify({ secondary: url(2), against: url(4) });
  expect(r.checked).toBe(url(4));
  expect(r.extents).toBe(8);
  const err = await verify({ secondary: url(2), against: url(0) }).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'ERR_VERIFY_MISMATCH' });
  expect((err as Error).message).toMatch(/extents differ/);
  // bad input: a LUN too small for the image is refused before reading it
  await expect(verify({ secondary: url(2), against: url(5) })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/fewer than the copy's image \(16384\): it cannot hold it/) });
});

test('an append-mode copy (--mark, not integrated) verifies as the image it stands for; a flipped byte in its appended log is found', async () => {
  const ref = await t.backupUnderWrites(3, { mode: 'append', mark: true }, SEED + 100);
  const r = await verify({ secondary: url(3) });
  expect(r).toMatchObject({ mode: 'append', state: 'log-appended', extents: 8 });
  expect(r.log_records).toBeGreaterThan(0);
  // The image as copied is not the held image: the log's records make it so.
  const m = await metadataOf(3);
  expect(m.log!.records).toBeGreaterThan(0);
  const image = fs.readFileSync(file('sec-append.img')).subarray(0, SIZE);
  expect(image.equals(ref)).toBe(false);
  // a byte in the data of the log's first record (the block after its header)
  const firstRecordData = (Number(m.layout.logLba) + 2) * BS + 100;
  const undo = flip('sec-append.img', firstRecordData);
  const err = await verify({ secondary: url(3) }).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'ERR_VERIFY_MISMATCH' });
  expect((err as Error).message).toMatch(/is not a good copy: its appended log does not check out \(the OBF's log does not match its MARKER/);
  undo();
  expect((await verify({ secondary: url(3) })).extents).toBe(8);
});

test('damaged metadata, a LUN that holds no copy, and a copy whose backup failed: each one line, nothing written', async () => {
  const m = await metadataOf(2);
  const slot = m.layout.slotBlocks * BS;
  const meta = Number(m.layout.metaLba) * BS;
  const before = fs.readFileSync(file('sec.img'));
  // both header slots damaged: the trailer says it is ours, but nothing describes it
  const undo = [flip('sec.img', meta + 40), flip('sec.img', meta + slot + 40)];
  const err = await verify({ secondary: url(2) }).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'ERR_VERIFY_MISMATCH' });
  expect((err as Error).message).toMatch(/is not a good copy: its metadata does not decode/);
  undo.forEach((u) => u());
  expect(fs.readFileSync(file('sec.img')).equals(before)).toBe(true);
  // a blank LUN: not a copy of ours (a usage error, exit 1)
  await expect(verify({ secondary: url(5) })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/holds no copy made by xcopy-agent backup/) });
  // a copy whose backup failed
  const s = await IscsiSession.connect(url(2));
  try {
    const lun = await SecondaryLun.open(s);
    await lun.save({ state: 'failed', reason: 'the bridge went away' });
  } finally {
    await s.close();
  }
  await expect(verify({ secondary: url(2) })).rejects.toMatchObject({ code: 'ERR_VERIFY_MISMATCH', message: expect.stringMatching(/its backup failed \(the bridge went away\)$/) });
});

test('the CLI: a summary record with --json and exit 0; a bad copy is one line and exit 14', async () => {
  const bin = path.resolve(__dirname, '../../bin/xcopy-agent');
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(bin, args, { timeout: 60_000, env: { ...process.env, XCOPY_AGENT_TOKEN_FILE: t.tokenFile } }, (e, stdout, stderr) =>
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr }),
      ),
    );
  const ok = await run(['verify', '--secondary', url(3), '--json']);
  expect(ok.code).toBe(0);
  const summary = JSON.parse(ok.stdout.trim().split('\n').at(-1)!) as { type: string; extents: number; mode: string };
  expect(summary).toMatchObject({ type: 'summary', extents: 8, mode: 'append' });
  const human = await run(['verify', '--secondary', url(3)]);
  expect(human.stdout).toMatch(/^verify: .* is a good copy of backup [0-9a-f-]+: 8 extents \(8\.0 MiB, with the \d+ records of its appended log laid over it\) match their SHA-256/);
  const bad = await run(['verify', '--secondary', url(2)]); // failed in the test before
  expect(bad.code).toBe(14);
  expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  expect(bad.stderr).toMatch(/is not a good copy: its backup failed/);
});

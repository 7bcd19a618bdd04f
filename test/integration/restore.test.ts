/**
 * `restore` end to end on the project's target: copies made by real backups while a host writes,
 * restored by EXTENDED COPY — 750 from an overwrite-mode copy, 700 from an append-mode copy that
 * was never integrated — whole and by ranges, onto another LUN and onto the original after its
 * loss. The oracle is the source's backing file copied while the snapshot's writes were held
 * (the held event), independent of the COW, copy, OBF and restore code; bytes outside restored
 * ranges must be untouched. Bad input is refused before anything is written.
 */
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { readObfLog } from '../../src/agent/apply-obf';
import { clipRecords, parseRange, restore } from '../../src/agent/restore';
import { SecondaryLun } from '../../src/agent/secondary-lun';
import { IscsiSession } from '../../src/initiator/session';
import { copiesTargetSuite } from '../helpers/copies-target';

const IQN = 'iqn.2026-12.io.xcopy-agent.test:restore';
const MiB = 1024 * 1024;
const SIZE = 8 * MiB;
const BS = 512;
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/** LUNs (test/helpers/copies-target.ts): 0 source, 1 OBF, 2 secondary (overwrite), 3 secondary (append), 4 another LUN, 5 a LUN too small. */
const t = copiesTargetSuite(IQN, 'restore');
const url = (lun: number) => t.url(lun);
const file = (name: string) => t.file(name);
const SEED = Number(process.env.RESTORE_SEED ?? crypto.randomInt(1, 2 ** 30));
console.info(`restore host writers seed ${SEED} (replay with RESTORE_SEED=${SEED})`);


let heldOverwrite: Buffer;
let heldAppend: Buffer;

beforeAll(async () => {
  heldOverwrite = await t.backupUnderWrites(2, { mode: 'overwrite' }, SEED);
  heldAppend = await t.backupUnderWrites(3, { mode: 'append', mark: true }, SEED + 1);
}, 60_000);

test('750: an overwrite-mode copy, whole, onto another LUN: the held image, checked against the hashes', async () => {
  fs.writeFileSync(file('other.img'), crypto.randomBytes(SIZE));
  const r = await restore({ secondary: url(2), to: url(4), yes: true });
  expect(r).toMatchObject({ method: '750', verified: 'hashes', restored_bytes: BigInt(SIZE), log_records: 0, host_bytes: 0n });
  expect(sha(fs.readFileSync(file('other.img')))).toBe(sha(heldOverwrite));
});

test('750 with the management API of the LUN\'s target: checked by lun_hash there, no read back', async () => {
  fs.writeFileSync(file('other.img'), crypto.randomBytes(SIZE));
  const r = await restore({ secondary: url(2), to: url(4), yes: true, mgmt: t.mgmt });
  expect(r).toMatchObject({ method: '750', verified: 'hashes', checked_by: 'target' });
  expect(sha(fs.readFileSync(file('other.img')))).toBe(sha(heldOverwrite));
  // without it (or onto a LUN of tgt), the LUN is read back
  expect((await restore({ secondary: url(2), to: url(4), yes: true })).checked_by).toBe('read-back');
});

test('with the management API of a target that does not serve the LUN: one warning, checked by reading it back', async () => {
  const warnings: string[] = [];
  const elsewhere = { url: 'http://127.0.0.1:1', call: async <T>() => [{ target: IQN, lun: 4, naa: '6001405' + '0'.repeat(25), blocks: '16384', block_size: 512 }] as T };
  const r = await restore({ secondary: url(2), to: url(4), yes: true, mgmt: elsewhere, onWarning: (m) => warnings.push(m) });
  expect(r).toMatchObject({ verified: 'hashes', checked_by: 'read-back' });
  expect(warnings).toEqual([expect.stringMatching(/is not a LUN of the target at http:\/\/127\.0\.0\.1:1 \(no LUN there has its NAA designator\): checking it by reading it back/)]);
  expect(sha(fs.readFileSync(file('other.img')))).toBe(sha(heldOverwrite));
});

test('checked by the target, a restore that does not match the copy\'s hashes is caught (the secondary\'s image damaged in extent 3)', async () => {
  const at = 3 * MiB + 100;
  const fd = fs.openSync(file('sec.img'), 'r+');
  const byte = Buffer.alloc(1);
  fs.readSync(fd, byte, 0, 1, at);
  try {
    fs.writeSync(fd, Buffer.from([byte[0] ^ 0x5a]), 0, 1, at);
    const err = await restore({ secondary: url(2), to: url(4), yes: true, mgmt: t.mgmt }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_VERIFY_MISMATCH' });
    expect((err as Error).message).toMatch(/^the restore, hashed by its target, does not match the copy: .* is not a good copy: 1 of 8 extents differ from the hash table of backup [0-9a-f-]+, the first extent 3 \(bytes 3145728\.\.4194303\)$/);
  } finally {
    fs.writeSync(fd, byte, 0, 1, at);
    fs.closeSync(fd);
  }
});

test('700: an append-mode copy never integrated, whole: the image then its log on the restored LUN; the secondary unchanged', async () => {
  fs.writeFileSync(file('other.img'), crypto.randomBytes(SIZE));
  const before = sha(fs.readFileSync(file('sec-append.img')));
  // the image as copied is not the held one: the log's records make it so
  expect(sha(fs.readFileSync(file('sec-append.img')).subarray(0, SIZE))).not.toBe(sha(heldAppend));
  const r = await restore({ secondary: url(3), to: url(4), yes: true, mgmt: t.mgmt });
  expect(r).toMatchObject({ method: '700', verified: 'hashes', checked_by: 'target' });
  expect(r.log_records).toBeGreaterThan(0);
  expect(sha(fs.readFileSync(file('other.img')))).toBe(sha(heldAppend));
  expect(sha(fs.readFileSync(file('sec-append.img')))).toBe(before);
});

test('ranges (700): exactly those blocks become the held image, every other block is untouched', async () => {
  const noise = crypto.randomBytes(SIZE);
  fs.writeFileSync(file('other.img'), noise);
  // a range that cuts into a record of the appended log (so records are clipped), and fixed ones
  const s = await IscsiSession.connect(url(3));
  const rec = await (async () => {
    try {
      const m = (await SecondaryLun.open(s)).record;
      return (await readObfLog(s, { obfOffset: m.layout.logLba, upToMarker: true, capacityBlocks: m.log!.usedBlocks })).records[0];
    } finally {
      await s.close();
    }
  })();
  const cut = { lba: rec.sourceLba + 5n, blocks: 20n };
  const ranges = ['16000+384', '100+3000', '9000+500', '2900+300'].map(parseRange); // unsorted, two overlapping
  const r = await restore({ secondary: url(3), to: url(4), ranges: [...ranges, cut], yes: true, mgmt: t.mgmt });
  expect(r).toMatchObject({ method: '700', verified: 'bytes', checked_by: 'read-back' });
  expect(r.log_records).toBeGreaterThanOrEqual(1);
  expect(r.ranges).toContainEqual(expect.objectContaining({ lba: 9000n, blocks: 500n }));
  const got = fs.readFileSync(file('other.img'));
  const expected = Buffer.from(noise);
  for (const g of r.ranges) heldAppend.copy(expected, Number(g.lba) * BS, Number(g.lba) * BS, Number(g.lba + g.blocks) * BS);
  expect(sha(got)).toBe(sha(expected));
});

test('the source lost (zeroed): restored onto the original LUN from the overwrite copy', async () => {
  fs.writeFileSync(file('src.img'), Buffer.alloc(SIZE));
  const r = await restore({ secondary: url(2), to: url(0), yes: true });
  expect(r.method).toBe('750');
  expect(sha(fs.readFileSync(file('src.img')))).toBe(sha(heldOverwrite));
});

describe('refused before anything is written', () => {
  test.each<[string, () => Parameters<typeof restore>[0], string, RegExp]>([
    ['without --yes', () => ({ secondary: url(2), to: url(4) }), 'ERR_INVALID_ARG', /a restore overwrites .*: give --yes to proceed/],
    ['a LUN smaller than the image', () => ({ secondary: url(2), to: url(5), yes: true }), 'ERR_INVALID_ARG', /has 8192 blocks, fewer than the 16384 the restore writes/],
    ['the secondary itself', () => ({ secondary: url(2), to: url(2), yes: true }), 'ERR_INVALID_ARG', /is the secondary itself/],
    ['a range outside the image', () => ({ secondary: url(2), to: url(4), ranges: [{ lba: 16380n, blocks: 8n }], yes: true }), 'ERR_INVALID_ARG', /range 16380\+8 is not inside the image \(16384 blocks\)/],
    ['a LUN that holds no copy', () => ({ secondary: url(5), to: url(4), yes: true }), 'ERR_INVALID_ARG', /holds no copy made by xcopy-agent backup/],
  ])('%s', async (_name, opts, code, message) => {
    const before = sha(fs.readFileSync(file('other.img')));
    const err = await restore(opts()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code });
    expect((err as Error).message).toMatch(message);
    expect(sha(fs.readFileSync(file('other.img')))).toBe(before);
  });

  test('--range syntax', () => {
    expect(parseRange('0x800+16')).toEqual({ lba: 2048n, blocks: 16n });
    expect(() => parseRange('12-40')).toThrow(/give LBA\+COUNT in blocks/);
    expect(() => parseRange('12+0')).toThrow(/COUNT must be at least 1/);
  });

  test('records clipped to ranges keep their data offset', () => {
    const rec = { sequence: 1n, obfLba: 10n, dataLba: 11n, sourceLba: 128n, sourceBlocks: 128, dataBlocks: 128, crc: 0, timeMs: 0 };
    expect(clipRecords([rec], [{ lba: 0n, blocks: 130n }, { lba: 250n, blocks: 100n }]).map((r) => [r.sourceLba, r.sourceBlocks, r.dataLba, r.dataBlocks])).toEqual([
      [128n, 2, 11n, 2],
      [250n, 6, 133n, 6],
    ]);
  });
});

test('the CLI: a summary with --json and exit 0; without --yes one line and exit 1', async () => {
  const bin = path.resolve(__dirname, '../../bin/xcopy-agent');
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(bin, args, { timeout: 60_000, env: { ...process.env, XCOPY_AGENT_TOKEN_FILE: t.tokenFile } }, (e, stdout, stderr) =>
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr }),
      ),
    );
  const refused = await run(['restore', '--secondary', url(2), '--to', url(4)]);
  expect(refused.code).toBe(1);
  expect(refused.stderr.trim().split('\n')).toHaveLength(1);
  fs.writeFileSync(file('other.img'), Buffer.alloc(SIZE));
  const ok = await run(['restore', '--secondary', url(2), '--to', url(4), '--range', '0+2048', '--yes', '--json']);
  expect(ok.code).toBe(0);
  const summary = JSON.parse(ok.stdout.trim().split('\n').at(-1)!) as { type: string; method: string; verified: string };
  expect(summary).toMatchObject({ type: 'summary', method: '750', verified: 'bytes' });
  expect(sha(fs.readFileSync(file('other.img')).subarray(0, MiB))).toBe(sha(heldOverwrite.subarray(0, MiB)));
  const human = await run(['restore', '--secondary', url(3), '--to', url(4), '--yes', '--mgmt', t.mgmt.url, '--token-file', t.tokenFile]);
  expect(human.code).toBe(0);
  expect(human.stdout).toMatch(/^restore: backup [0-9a-f-]+ onto .* by 700: the whole image, 8\.0 MiB \(8\.0 MiB by EXTENDED COPY, 0\.0 MiB through this host\), \d+ log records laid over it; checked against its SHA-256 hashes \(hashed by the LUN's target\) in/);
});

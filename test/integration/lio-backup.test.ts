/**
 * The agent with real Linux LIO (kernel 6.1 in a QEMU VM: src/peers/lio-vm.ts, docs/lio.md) as
 * the storage and the copy manager: source, OBF and secondary are LIO LUNs; the project's target
 * is the COW gateway in front of LIO's source and OBF (`remote` stores) and hosts write through it
 * during each backup; LIO's copy manager does 604 and 608 (one 02h segment per command, one
 * command at a time: its OPERATING PARAMETERS) and the restores.
 *
 * The oracle is LIO's own backing file of the source, copied inside the guest while the gateway
 * holds the writes (602), and hashed there by busybox's sha256sum, as are the secondary's and the
 * restored source's backing files: nothing of the code under test reads or hashes them.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { backup, type BackupOptions } from '../../src/agent/backup';
import { integrate } from '../../src/agent/integrate';
import { restore } from '../../src/agent/restore';
import { ManagementClient } from '../../src/mgmt';
import { freePort } from '../../src/peers/tgt';
import { quickConfig } from '../../src/target/config';
import { TargetServer } from '../../src/target/server';
import { onSnapshotHeld } from '../helpers/held';
import { hostWriter } from '../helpers/snapshot-target';
import { lioVmFixture } from '../helpers/lio-vm';
import { removeDir, tempDir } from '../helpers/tmp';

const BIN = path.resolve(__dirname, '../../bin/xcopy-agent');
const IQN = 'iqn.2026-11.io.xcopy-agent';
const GATEWAY_IQN = 'iqn.2026-12.io.xcopy-agent.test:lio-gateway';
const MiB = 1024 * 1024;

const lio = (target: string, lun: number) => vm().url(`${IQN}:${target}`, lun);
/** A LUN's backing file in the guest (as targetcli-configs/ name them). */
const lunFile = (layout: string, name: string) => `/var/lib/xcopy-agent/luns/${layout}/${name}.img`;
const SMALL = 16 * MiB;

/** The gateway's LUNs: LIO's LUNs behind it (remote stores), the COW filter over each. */
const GATEWAY_LUNS = [
  ['small-512', 0], // 0: source, 512-byte blocks
  ['small-512', 2], // 1: its OBF
  ['small-4096', 0], // 2: source, 4096-byte blocks
  ['small-4096', 2], // 3: its OBF
  ['site-a', 0], // 4: a source whose secondary is in another LIO target (site-b)
  ['site-a', 1], // 5: its OBF
] as const;

let dir: string;
let gateway: TargetServer;
let gatewayPort: number;
let mgmt: ManagementClient;
let tokenFile: string;
const gw = (lun: number) => `iscsi://127.0.0.1:${gatewayPort}/${GATEWAY_IQN}/${lun}`;

// small.json: LUNs of 16 MiB, quick to copy and hash under TCG (the CI's budget). The gateway
// runs while the VM does: started after it boots, stopped before it is.
const vm = lioVmFixture({ configs: ['small.json', 'two-targets.json'], probe: `${IQN}:small-512/0` }, { started: startGateway, stopping: stopGateway });

async function startGateway(): Promise<void> {
  dir = tempDir('lio-backup');
  gatewayPort = await freePort();
  tokenFile = path.join(dir, 'state', 'mgmt.token');
  gateway = await TargetServer.start(quickConfig({ portal: `127.0.0.1:${gatewayPort}`, iqn: GATEWAY_IQN, luns: GATEWAY_LUNS.map(([t, l]) => lio(t, l)) }), {
    log: pino({ level: 'silent' }),
    stateDir: path.join(dir, 'state'),
    management: { listen: '127.0.0.1:0', tokenFile },
  });
  mgmt = new ManagementClient({ url: gateway.management!.url, token: fs.readFileSync(tokenFile, 'utf8').trim() });
  // Random content in every source, written into the backing files in the guest.
  for (const bs of [512, 4096]) await guest(`dd if=/dev/urandom of=${lunFile('small', `${bs}-source`)} bs=1M count=16 conv=notrunc 2>/dev/null`);
  await guest(`dd if=/dev/urandom of=${lunFile('two-targets', 'source')} bs=1M count=32 conv=notrunc 2>/dev/null`);
}

async function stopGateway(): Promise<void> {
  await gateway?.stop();
  if (dir) removeDir(dir);
}

/** A command in the guest that must succeed. */
async function guest(command: string): Promise<string> {
  const r = await vm().exec(command);
  if (r.status !== 0) throw new Error(`in the LIO VM: ${command}: status ${r.status}: ${r.output.toString()}`);
  return r.output.toString();
}

/**
 * Runs `work` while a host writes random blocks (1 to 64 KiB) through the gateway's `lun` (of
 * `bytes`), and the source's backing file is copied to `reference` in the guest while the
 * gateway holds the writes at institution.
 */
async function underWrites<T>(lun: { lun: number; bytes: number; blockSize: number; file: string }, reference: string, seed: number, work: () => Promise<T>): Promise<{ result: T; writes: number }> {
  const off = onSnapshotHeld(() => guest(`cp ${lun.file} ${reference}`));
  const host = hostWriter(gw(lun.lun), { seed, blocks: lun.bytes / lun.blockSize, blockSize: lun.blockSize, maxBlocks: (64 * 1024) / lun.blockSize });
  try {
    const result = await work();
    return { result, writes: await host.stop() };
  } finally {
    await host.stop();
    off();
  }
}

const quiet = pino({ level: 'silent' });
/**
 * Captures go through slirp to a guest on one emulated CPU that is busy copying meanwhile; on a
 * loaded 2-core machine one can take longer than the target's default 5 s.
 */
const COW_TIMEOUT_MS = 60_000;

test('overwrite mode, 512-byte blocks: LIO copies (604) and lays each OBF record by one command (608); the secondary, and the source restored by LIO (750), are the source file held at 602', async () => {
  const source = lunFile('small', '512-source');
  const o: BackupOptions = { source: gw(0), obf: gw(1), secondary: lio('small-512', 1), bridge: lio('small-512', 1), mgmt, mode: 'overwrite', cowTimeoutMs: COW_TIMEOUT_MS, log: quiet };
  const { result: r, writes } = await underWrites({ lun: 0, bytes: SMALL, blockSize: 512, file: source }, '/ref-512.img', 0x16001, () => backup(o));
  expect(writes).toBeGreaterThan(0);
  expect(r).toMatchObject({ state: 'integrated', copy_path: 'xcopy', host_bytes: 0n, xcopy_bytes: BigInt(SMALL) });
  expect(r.obf_records).toBeGreaterThan(0);
  // LIO: one 02h segment of at most 65535 blocks per command (32768 blocks: 1), one record per command.
  expect(r.extended_copy_commands).toEqual({ copy: 1, apply: r.obf_records });
  const reference = await vm().sha256('/ref-512.img', SMALL);
  expect(await vm().sha256(lunFile('small', '512-secondary'), SMALL)).toBe(reference);

  // The source restored from the secondary by LIO's copy manager (the one serving the source).
  const rr = await restore({ secondary: lio('small-512', 1), to: lio('small-512', 0), yes: true });
  expect(rr).toMatchObject({ method: '750', xcopy_bytes: BigInt(SMALL), host_bytes: 0n, verified: 'hashes' });
  expect(await vm().sha256(source, SMALL)).toBe(reference);
  expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
}, 120_000);

test('append mode, 4096-byte blocks: the log appended by LIO; restore 700 lays its records by LIO onto the source, integrate by LIO in the secondary: both the source file held at 602', async () => {
  const source = lunFile('small', '4096-source');
  const o: BackupOptions = { source: gw(2), obf: gw(3), secondary: lio('small-4096', 1), bridge: lio('small-4096', 1), mgmt, mode: 'append', cowTimeoutMs: COW_TIMEOUT_MS, log: quiet };
  const { result: r, writes } = await underWrites({ lun: 2, bytes: SMALL, blockSize: 4096, file: source }, '/ref-4096.img', 0x16002, () => backup(o));
  expect(writes).toBeGreaterThan(0);
  expect(r).toMatchObject({ state: 'log-appended', copy_path: 'xcopy', host_bytes: 0n, xcopy_bytes: BigInt(SMALL), extended_copy_commands: { copy: 1, apply: 1 } });
  expect(r.obf_records).toBeGreaterThan(0);
  const reference = await vm().sha256('/ref-4096.img', SMALL);

  // 700 from the copy not integrated: the image, then the appended log's records over it.
  const rr = await restore({ secondary: lio('small-4096', 1), to: lio('small-4096', 0), yes: true });
  expect(rr).toMatchObject({ method: '700', host_bytes: 0n, log_records: r.obf_records });
  expect(await vm().sha256(source, SMALL)).toBe(reference);

  // 610 in the secondary, LIO laying each record by one command (the secondary is both ends).
  const i = await integrate({ secondary: lio('small-4096', 1) });
  expect(i).toMatchObject({ already_integrated: false, records: r.obf_records, applied_now: r.obf_records, extended_copy_commands: r.obf_records });
  expect(await vm().sha256(lunFile('small', '4096-secondary'), SMALL)).toBe(reference);
}, 120_000);

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN, [...args, '--mgmt', gateway.management!.url, '--token-file', tokenFile, '--catalog', path.join(dir, 'catalog.db')], { timeout: 150_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

test('a secondary in another LIO target: the backup is refused before anything changes (one line, exit 10); with --fallback the host copies, and the secondary is the source file held at 602', async () => {
  const secondaryFile = lunFile('two-targets', 'secondary');
  const args = ['backup', '--source', gw(4), '--obf', gw(5), '--secondary', lio('site-b', 0), '--cow-timeout-ms', String(COW_TIMEOUT_MS)];
  const refused = await cli(args);
  expect(refused.code).toBe(10);
  expect(refused.stderr.trim().split('\n')).toHaveLength(1);
  expect(refused.stderr).toMatch(/cannot copy from the source to the secondary \(.*COPY TARGET DEVICE NOT REACHABLE.*\): give --bridge .*or --fallback/i);
  expect(await mgmt.call<unknown[]>('snapshot_list')).toEqual([]);
  expect(await guest(`stat -c %s ${secondaryFile}`)).toBe('0\n'); // nothing written (the file is as LIO made it)

  const { result: r } = await underWrites({ lun: 4, bytes: 32 * MiB, blockSize: 512, file: lunFile('two-targets', 'source') }, '/ref-site-a.img', 0x16003, () => cli([...args, '--fallback', '--json']));
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
  expect(summary).toMatchObject({ state: 'integrated', copy_path: 'host', xcopy_bytes: '0', extended_copy_commands: { copy: 0, apply: 0 } });
  expect(summary.obf_records).toBeGreaterThan(0); // laid through this host too
  expect(BigInt(summary.host_bytes)).toBe(BigInt(32 * MiB) + BigInt(summary.obf_bytes));
  expect(summary.fallback_reason).toMatch(/COPY TARGET DEVICE NOT REACHABLE/i);
  expect(await vm().sha256(secondaryFile, 32 * MiB)).toBe(await vm().sha256('/ref-site-a.img', 32 * MiB));
}, 180_000);

test("drill --source --secondary --obf --bridge on the VM's LUNs: the gateway in front of LIO's source and OBF, LIO the secondary and the copy manager", async () => {
  const r = await cli(['drill', '--json', '--yes', '--source', gw(0), '--obf', gw(1), '--secondary', lio('small-512', 1), '--bridge', lio('small-512', 1), '--cow-timeout-ms', String(COW_TIMEOUT_MS)]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
  expect(summary).toMatchObject({ type: 'summary', command: 'drill', ok: true });
  expect(summary.backups.map((b: { mode: string; blocks_checked: number; extent_hashes_match: boolean }) => [b.mode, b.blocks_checked, b.extent_hashes_match])).toEqual([
    ['overwrite', SMALL / 512, true],
    ['append', SMALL / 512, true],
  ]);
  expect(summary.restores.map((x: { method: string; match: boolean }) => [x.method, x.match])).toEqual([
    ['750', true],
    ['700', true],
  ]);
}, 180_000);

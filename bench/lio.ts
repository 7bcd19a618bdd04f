/**
 * npm run bench:lio — LIO's copy manager (kernel 6.1 in the QEMU VM of the tests, TCG:
 * src/peers/lio-vm.ts, docs/lio.md) against peers measured in the same run:
 *  a. a LUN of BENCH_SIZE_MIB (default 256) of random data copied to another LUN of the same
 *     LIO target by EXTENDED COPY offloaded to LIO (xcopyCopy, no fallback: one 02h segment of
 *     at most 65535 blocks per command, one command at a time, then SYNCHRONIZE CACHE) vs the
 *     same copy through this host (READ(16)/WRITE(16) over the forwarded port, 8 commands of
 *     1 MiB in flight, then SYNCHRONIZE CACHE);
 *  b. a `backup` (overwrite mode, no host writing) of the same LUN with LIO as the bridge, the
 *     project's target as the COW gateway in front of LIO's source and OBF (a process of its
 *     own, `remote` stores), vs that backup's pure outboard copy (a.'s EXTENDED COPY); with the
 *     backup's phases, to see where its time goes.
 * One run of each. Each copy is checked: the destination's backing file hashed in the guest
 * (busybox sha256sum) against the source's. The layout is targetcli-configs/fileio-512.json
 * with LUNs of BENCH_SIZE_MIB (a saveconfig.json written to a temporary folder; LUN 1 holds the
 * image and a backup's metadata area, LUN 2 is the OBF). Absolute times are those of an emulated
 * CPU on a shared machine: read the ratios.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { backup } from '../src/agent/backup';
import { hostCopy } from '../src/agent/host-copy';
import { xcopyCopy } from '../src/agent/xcopy-copy';
import { IscsiSession } from '../src/initiator/session';
import { ManagementClient } from '../src/mgmt';
import { startLioVm, TARGETCLI_CONFIGS, type LioVm } from '../src/peers/lio-vm';
import { freePort } from '../src/peers/tgt';
import { requiredBlocks } from '../src/secondary';
import { startTargetProcess } from './run-target';

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_SIZE_MIB ?? 256) * MiB;
const BS = 512;
const IQN = 'iqn.2026-11.io.xcopy-agent:bench';
const GATEWAY_IQN = 'iqn.2026-12.io.xcopy-agent.bench:lio-gateway';
const LUNS = '/var/lib/xcopy-agent/luns/bench';

/** fileio-512.json with its LUNs resized: source SIZE, secondary the image and its metadata area, OBF 64 MiB. */
function benchLayout(dir: string): string {
  const doc = JSON.parse(fs.readFileSync(path.join(TARGETCLI_CONFIGS, 'fileio-512.json'), 'utf8')) as {
    storage_objects: Array<{ name: string; dev: string; size: number }>;
    targets: Array<{ wwn: string; tpgs: Array<{ luns: Array<{ storage_object: string }> }> }>;
  };
  const sizes: Record<string, number> = {
    source: SIZE,
    secondary: Number(requiredBlocks({ blockSize: BS, imageBlocks: BigInt(SIZE / BS), mode: 'overwrite' })) * BS,
    obf: 64 * MiB,
  };
  for (const so of doc.storage_objects) {
    const role = so.name.replace(/^.*-/, '');
    so.name = `bench-${role}`;
    so.dev = `${LUNS}/${role}.img`;
    so.size = Math.ceil(sizes[role] / MiB) * MiB;
  }
  doc.targets[0].wwn = IQN;
  for (const l of doc.targets[0].tpgs[0].luns) l.storage_object = l.storage_object.replace(/fileio-512-/, 'bench-');
  const file = path.join(dir, 'bench.json');
  fs.writeFileSync(file, JSON.stringify(doc, null, 2));
  return file;
}

async function timed<T>(f: () => Promise<T>): Promise<{ r: T; s: number }> {
  const t0 = process.hrtime.bigint();
  const r = await f();
  return { r, s: Number(process.hrtime.bigint() - t0) / 1e9 };
}

async function guest(vm: LioVm, command: string): Promise<string> {
  const r = await vm.exec(command, { timeoutMs: 600_000 });
  if (r.status !== 0) throw new Error(`in the LIO VM: ${command}: ${r.output.toString()}`);
  return r.output.toString();
}

/** The destination's first SIZE bytes are the source's (hashed in the guest), or this throws. */
async function checkCopy(vm: LioVm, what: string, sourceSha: string): Promise<void> {
  const got = await vm.sha256(`${LUNS}/secondary.img`, SIZE);
  if (got !== sourceSha) throw new Error(`${what}: the destination's sha256 ${got} is not the source's ${sourceSha}`);
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xcopy-bench-lio-'));
  const vm = await startLioVm({ configs: [benchLayout(dir)], probe: `${IQN}/0`, memoryMiB: 1024 + (3 * SIZE) / MiB });
  try {
    const url = (lun: number) => vm.url(IQN, lun);
    await guest(vm, `dd if=/dev/urandom of=${LUNS}/source.img bs=1M count=${SIZE / MiB} conv=notrunc 2>/dev/null`);
    const sourceSha = await vm.sha256(`${LUNS}/source.img`, SIZE);

    // a. EXTENDED COPY offloaded to LIO vs READ/WRITE through this host.
    const offloaded = await timed(() => xcopyCopy({ from: url(0), to: url(1), count: BigInt(SIZE / BS), fallback: false }));
    await checkCopy(vm, 'EXTENDED COPY', sourceSha);
    await guest(vm, `truncate -s 0 ${LUNS}/secondary.img`); // the host copy writes a blank LUN too
    const src = await IscsiSession.connect(url(0));
    const dst = await IscsiSession.connect(url(1));
    const host = await timed(() => hostCopy(src, dst, { count: BigInt(SIZE / BS) }).finally(async () => {
      await src.close();
      await dst.close();
    }));
    await checkCopy(vm, 'host copy', sourceSha);

    // b. backup with LIO as the bridge, the gateway in its own process.
    const stateDir = path.join(dir, 'state');
    const mport = await freePort();
    const gateway = await startTargetProcess(GATEWAY_IQN, [url(0), url(2)], ['--state-dir', stateDir, '--mgmt', `127.0.0.1:${mport}`]);
    let b: { r: Awaited<ReturnType<typeof backup>>; s: number };
    try {
      const mgmt = new ManagementClient({ url: `http://127.0.0.1:${mport}`, token: fs.readFileSync(path.join(stateDir, 'mgmt.token'), 'utf8').trim() });
      await guest(vm, `truncate -s 0 ${LUNS}/secondary.img`);
      b = await timed(() => backup({ source: gateway.url(0), obf: gateway.url(1), secondary: url(1), bridge: url(1), mgmt, yes: true, log: pino({ level: 'silent' }) }));
    } finally {
      await gateway.stop();
    }
    await checkCopy(vm, 'backup', sourceSha);

    const mibs = (s: number) => (SIZE / MiB / s).toFixed(1);
    const ratioA = host.s / offloaded.s;
    const ratioB = b.s / offloaded.s;
    process.stdout.write(
      [
        `LIO 6.1 in QEMU (TCG), ${SIZE / MiB} MiB LUN of 512-byte blocks; every copy checked by sha256 of the backing files in the guest; VM boot ${vm.bootSeconds.toFixed(1)} s`,
        '',
        '| copy | ours | peer | ratio |',
        '|---|---|---|---|',
        `| EXTENDED COPY offloaded to LIO (${offloaded.r.extended_copy_commands} commands) vs READ/WRITE through this host over the forwarded port | ${offloaded.s.toFixed(2)} s (${mibs(offloaded.s)} MiB/s) | ${host.s.toFixed(2)} s (${mibs(host.s)} MiB/s) | ${ratioA.toFixed(2)}x faster offloaded |`,
        `| backup (overwrite, LIO the bridge, the gateway in front of LIO) vs its pure outboard copy (the EXTENDED COPY above) | ${b.s.toFixed(2)} s | ${offloaded.s.toFixed(2)} s | ${ratioB.toFixed(2)}x the copy's time |`,
        '',
        `backup phases (s): ${Object.entries(b.r.phases).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}; ${b.r.extended_copy_commands.copy} + ${b.r.extended_copy_commands.apply} EXTENDED COPY commands, ${b.r.obf_records} OBF records`,
      ].join('\n') + '\n',
    );
  } finally {
    await vm.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:lio failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});

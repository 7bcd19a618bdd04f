/**
 * npm run bench:initiator — the libiscsi binding against tgt, next to libiscsi's own iscsi-perf
 * (reads) and qemu-img bench (writes) on the same LUN in the same run. Prints MB/s, IOPS and the
 * ratio ours/peer. Absolute numbers on a shared 2-core machine are noise; the ratio is the result.
 *
 *   BENCH_SECONDS (default 5) per measurement, BENCH_ROUNDS (default 3) alternating rounds; the
 *   best round of each side is reported.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { IscsiSession } from '../src/initiator/session';
import { iscsiPerf, qemuImgBenchWrite, type Rate } from '../src/peers/load';
import { Tgt } from '../src/peers/tgt';

const MiB = 1024 * 1024;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const LUN_BYTES = 1024 * MiB;
const QD = 32;


async function ours(s: IscsiSession, blocks: number, random: boolean, write: boolean, seconds: number): Promise<Rate> {
  const bs = await s.blockSize();
  const lunBlocks = LUN_BYTES / bs;
  const payload = write ? Buffer.alloc(blocks * bs, 0xa5) : undefined;
  let cursor = 0;
  let done = 0;
  const end = Date.now() + seconds * 1000;
  const t0 = process.hrtime.bigint();
  const worker = async () => {
    const into = Buffer.allocUnsafe(blocks * bs); // one buffer per worker, reused (as a copy engine's pool)
    while (Date.now() < end) {
      let lba: number;
      if (random) lba = Math.floor(Math.random() * (lunBlocks / blocks)) * blocks;
      else {
        lba = cursor;
        cursor = (cursor + blocks) % lunBlocks;
      }
      if (payload) await s.write16(BigInt(lba), payload);
      else await s.read16(BigInt(lba), blocks, { into });
      done++;
    }
  };
  await Promise.all(Array.from({ length: QD }, worker));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const iops = done / secs;
  return { iops, mibps: (iops * blocks * bs) / MiB };
}

async function qemuImgWrite(url: string): Promise<Rate | undefined> {
  if (!fs.existsSync('/usr/bin/qemu-img')) return undefined;
  return qemuImgBenchWrite(url, { size: '1M', count: 2048, depth: QD }); // 2 GiB wrapping over the LUN
}

function best(rates: Rate[]): Rate {
  return rates.reduce((a, b) => (b.iops > a.iops ? b : a));
}

function row(name: string, mine: Rate, peer: Rate | undefined, peerName: string, unit: 'MB/s' | 'IOPS'): string {
  const m = unit === 'MB/s' ? mine.mibps : mine.iops;
  const p = peer ? (unit === 'MB/s' ? peer.mibps : peer.iops) : undefined;
  const ratio = p ? (m / p).toFixed(2) : 'n/a';
  const fmt = (x: number) => (unit === 'MB/s' ? `${x.toFixed(0)} MiB/s` : `${x.toFixed(0)} IOPS`);
  return `| ${name.padEnd(28)} | ${fmt(m).padStart(12)} | ${(p ? fmt(p) : 'n/a').padStart(12)} | ${peerName.padEnd(12)} | ${ratio.padStart(5)} |`;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xcopy-bench-initiator-'));
  const tgt = await Tgt.start({ dir, luns: [{ size: LUN_BYTES }] });
  const url = tgt.url(1);
  try {
    const s = await IscsiSession.connect(url);
    // Fill the LUN once (not measured: first writes to a new file allocate its blocks).
    const bs = await s.blockSize();
    const chunk = Buffer.alloc(MiB, 0x5a);
    let next = 0;
    await Promise.all(
      Array.from({ length: QD }, async () => {
        while (next < LUN_BYTES) {
          const off = next;
          next += MiB;
          await s.write16(BigInt(off / bs), chunk);
        }
      }),
    );

    const seqOurs: Rate[] = [];
    const seqPeer: Rate[] = [];
    const rndOurs: Rate[] = [];
    const rndPeer: Rate[] = [];
    const wrOurs: Rate[] = [];
    const wrPeer: Rate[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      wrOurs.push(await ours(s, MiB / bs, false, true, SECONDS));
      const q = await qemuImgWrite(url).catch(() => undefined);
      if (q) wrPeer.push(q);
      seqOurs.push(await ours(s, MiB / bs, false, false, SECONDS));
      seqPeer.push(await iscsiPerf(url, { blocks: MiB / 512, random: false, seconds: SECONDS, depth: QD }));
      rndOurs.push(await ours(s, 4096 / bs, true, false, SECONDS));
      rndPeer.push(await iscsiPerf(url, { blocks: 4096 / 512, random: true, seconds: SECONDS, depth: QD }));
    }
    await s.close();
    const lines = [
      `bench:initiator — tgt 1 GiB file-backed LUN on loopback, QD ${QD}, ${SECONDS} s x ${ROUNDS} rounds (best of each), ${os.cpus().length} cores`,
      '| test                         |         ours |         peer | peer         | ratio |',
      '|------------------------------|--------------|--------------|--------------|-------|',
      row('1 MiB sequential read', best(seqOurs), best(seqPeer), 'iscsi-perf', 'MB/s'),
      row('4 KiB random read', best(rndOurs), best(rndPeer), 'iscsi-perf', 'IOPS'),
      row('1 MiB sequential write', best(wrOurs), wrPeer.length ? best(wrPeer) : undefined, 'qemu-img', 'MB/s'),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    const ratio = best(seqOurs).mibps / best(seqPeer).mibps;
    const ratioRnd = best(rndOurs).iops / best(rndPeer).iops;
    process.stdout.write(
      `goal >= 0.90x iscsi-perf: sequential ${ratio.toFixed(2)}x, random ${ratioRnd.toFixed(2)}x — ${ratio >= 0.9 && ratioRnd >= 0.9 ? 'met' : 'NOT met'}\n`,
    );
  } finally {
    await tgt.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench:initiator failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

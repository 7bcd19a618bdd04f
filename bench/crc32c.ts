/**
 * npm run bench:crc32c — the cost of one CRC32C call (src/native/crc32c.ts, the addon's SSE4.2 or
 * table path) per input size, from a 48-byte iSCSI header digest to a 1 MiB data segment, next to
 * the peer Node itself offers for the same kind of work: zlib.crc32 (CRC-32/ISO-HDLC, another
 * polynomial, also a call into C++). Also the addon's portable tables (the path of CPUs without
 * SSE4.2). Prints ns per call and the ratio ours/peer. docs/native.md records a run and why the
 * one CRC32C is the native one for every size.
 *
 *   BENCH_ROUNDS (default 15) alternating rounds; the best round of each is reported.
 */
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { crc32c } from '../src/native/crc32c';
import { loadNative } from '../src/native/index';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const SIZES = [48, 64, 128, 256, 512, 4096, 65536, 1 << 20];

type Crc = (data: Uint8Array, previous: number) => number;

/** ns per call over `iterations` calls, each continuing the previous CRC (no dead code). */
function nsPerCall(fn: Crc, data: Uint8Array, iterations: number): number {
  let crc = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) crc = fn(data, crc);
  const ns = Number(process.hrtime.bigint() - t0) / iterations;
  if (crc === -1) console.log(crc); // keeps the loop's result alive
  return ns;
}

function main(): void {
  const addon = loadNative();
  const contenders: Record<string, Crc> = {
    crc32c: crc32c,
    portable: addon.crc32cPortable,
    'zlib.crc32': (data, previous) => zlib.crc32(data, previous),
  };
  console.log(`CRC32C path chosen at load: ${addon.crc32cHardware ? 'SSE4.2' : 'portable tables'}; best of ${ROUNDS} rounds, ns per call`);
  console.log(['bytes', ...Object.keys(contenders), 'crc32c/zlib'].map((h) => h.padStart(12)).join(''));
  for (const size of SIZES) {
    const data = crypto.randomBytes(size);
    const iterations = Math.max(20, Math.floor(2e7 / (size + 100)));
    const best = new Map<string, number>();
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, fn] of Object.entries(contenders)) best.set(name, Math.min(best.get(name) ?? Infinity, nsPerCall(fn, data, iterations)));
    }
    const cells = [...best.values()].map((ns) => ns.toFixed(1));
    const ratio = (best.get('crc32c') ?? NaN) / (best.get('zlib.crc32') ?? NaN);
    console.log([String(size), ...cells, ratio.toFixed(2)].map((c) => c.padStart(12)).join(''));
  }
}

main();

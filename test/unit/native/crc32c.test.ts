import fc from 'fast-check';
import fs from 'node:fs';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { crc32c, crc32cBytes, crc32cCombine, crc32cOf, readCrc32c } from '../../../src/native/crc32c';
import { loadNative } from '../../../src/native/index';
import { hex } from '../../helpers/codec';
import { referenceCrc32c } from '../../helpers/crc32c';
import { SCSI_COMMAND_RFC_READ10 } from '../target/iscsi/pdu-fixtures';

describe('CRC32C (RFC 7143 13.1)', () => {
  // RFC 3720 B.4: each vector's CRC as it goes on the wire, least significant byte first.
  const vectors: Array<[string, Buffer, string, number]> = [
    ['32 bytes of zeroes', Buffer.alloc(32), 'aa 36 91 8a', 0x8a9136aa],
    ['32 bytes of ones', Buffer.alloc(32, 0xff), '43 ab a8 62', 0x62a8ab43],
    ['32 bytes of incrementing 00..1f', Buffer.from(Array.from({ length: 32 }, (_, i) => i)), '4e 79 dd 46', 0x46dd794e],
    ['32 bytes of decrementing 1f..00', Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)), '5c db 3f 11', 0x113fdb5c],
    ['an iSCSI SCSI Read (10) command PDU', SCSI_COMMAND_RFC_READ10, '56 3a 96 d9', 0xd9963a56],
  ];

  it.each(vectors)('matches RFC 3720 B.4: %s', (_name, data, wire, value) => {
    expect(data.length === 32 || data.length === 48).toBe(true);
    expect(referenceCrc32c(data)).toBe(value); // the reference itself is anchored to the RFC
    expect(crc32c(data)).toBe(value);
    expect(loadNative().crc32cPortable(data, 0)).toBe(value);
    expect(crc32cBytes(crc32c(data)).toString('hex')).toBe(hex(wire).toString('hex'));
    expect(readCrc32c(hex(wire), 0)).toBe(value);
  });

  it('is not zlib.crc32 (CRC-32/ISO-HDLC)', () => {
    expect(zlib.crc32(Buffer.alloc(32))).not.toBe(crc32c(Buffer.alloc(32)));
  });

  it('gives 0 for no bytes and the check value for "123456789"', () => {
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283); // CRC-32C catalogue check value
    expect(referenceCrc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('agrees with the bitwise definition on random data of every alignment', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(7), (bytes, skip) => {
        const data = bytes.subarray(Math.min(skip, bytes.length));
        expect(crc32c(data)).toBe(referenceCrc32c(data));
      }),
      { numRuns: 500 },
    );
  });

  it('continues from any previous CRC, negative or above 32 bits taken modulo 2^32', () => {
    const data = Buffer.from('123456789');
    expect(crc32c(data, -1)).toBe(crc32c(data, 0xffffffff));
    expect(crc32c(data, 2 ** 32 + 5)).toBe(crc32c(data, 5));
    expect(crc32c(data, 5)).toBe(referenceCrc32c(data, 5));
  });

  it('refuses what is not a Uint8Array, in TypeScript', () => {
    expect(() => crc32c('123456789' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => crc32c(new ArrayBuffer(8) as unknown as Uint8Array)).toThrow(TypeError);
  });

  it('continues a running CRC across pieces', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 6 }), (pieces) => {
        const whole = Buffer.concat(pieces);
        let running = 0;
        for (const p of pieces) running = crc32c(p, running);
        expect(running).toBe(crc32c(whole));
        expect(crc32cOf(pieces)).toBe(crc32c(whole));
      }),
    );
  });

  it('handles a 1 MiB data segment like the definition', () => {
    const data = Buffer.alloc(1 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    expect(crc32c(data)).toBe(referenceCrc32c(data));
  });
});

describe('both paths of the native CRC32C (SSE4.2, and the portable tables for CPUs without it) agree with the reference', () => {
  const { crc32c: chosen, crc32cPortable: portable } = loadNative();

  it('on random buffers of every size up to 5000 bytes (past both the 8-byte steps and the 3 × 2048-byte lanes), continued from random CRCs', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 5000 }), fc.nat(0xffffffff), (data, prev) => {
        const want = referenceCrc32c(data, prev);
        expect([chosen(data, prev), portable(data, prev), crc32c(data, prev)]).toEqual([want, want, want]);
      }),
      { numRuns: 500 },
    );
  });

  it('on 1 MiB and on an unaligned 70 000-byte view, continued', () => {
    const big = crypto.randomBytes(1 << 20);
    const want = referenceCrc32c(big);
    expect([chosen(big, 0), portable(big, 0)]).toEqual([want, want]);
    const view = big.subarray(3, 70003);
    const wantView = referenceCrc32c(view, 0x12345678);
    expect([chosen(view, 0x12345678), portable(view, 0x12345678)]).toEqual([wantView, wantView]);
  });

  it('the path is chosen at run time from the CPU: SSE4.2 exactly when the CPU has it', () => {
    const flags = fs.readFileSync('/proc/cpuinfo', 'latin1').match(/^flags\s*:(.*)$/m)?.[1].split(/\s+/) ?? [];
    const x86 = process.arch === 'x64';
    expect(loadNative().crc32cHardware).toBe(x86 && flags.includes('sse4_2'));
  });
});

describe('crc32cCombine: the CRC of A||B from the CRCs of A and B and the length of B', () => {
  /** `n` bytes from a seeded generator (xorshift32), so a failure reproduces from the seed. */
  function bytesOf(n: number, seed: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    let x = seed | 1;
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b[i] = x & 0xff;
    }
    return b;
  }
  /** The reference: the bitwise CRC of the concatenated bytes. */
  const concatCrc = (a: Uint8Array, b: Uint8Array) => referenceCrc32c(Buffer.concat([a, b]));
  const combined = (a: Uint8Array, b: Uint8Array) => crc32cCombine(referenceCrc32c(a), referenceCrc32c(b), b.length);

  const SIZES = [0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 63, 64, 65, 127, 128, 255, 256, 511, 512, 513, 1000, 4095, 4096, 4097, 65535, 65536, 65537, 131072 + 5];

  it('equals the CRC of the concatenation for every pair of sizes around the powers of two (0 to 128 KiB)', () => {
    const seen = new Set<number>();
    SIZES.forEach((la, i) => {
      SIZES.forEach((lb, j) => {
        const a = bytesOf(la, 1 + i * 97 + j);
        const b = bytesOf(lb, 7 + j * 89 + i);
        const want = concatCrc(a, b);
        expect(combined(a, b)).toBe(want);
        seen.add(want);
      });
    });
    // The inputs differ, so the CRCs do: a constant answer could not pass the checks above.
    expect(seen.size).toBeGreaterThan(SIZES.length * SIZES.length - 5);
  });

  it('equals the CRC of the concatenation on random inputs (seeded property, lengths up to 70 000 bytes)', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.nat(80), fc.integer({ min: 0, max: 70000 })),
        fc.oneof(fc.nat(80), fc.integer({ min: 0, max: 70000 })),
        fc.integer({ min: 1, max: 0x7fffffff }),
        (la, lb, seed) => {
          const a = bytesOf(la, seed);
          const b = bytesOf(lb, seed ^ 0x5a5a5a5a);
          expect(combined(a, b)).toBe(concatCrc(a, b));
          // And through the fast (native) crc32c, as a caller would compute the pieces.
          expect(crc32cCombine(crc32c(a), crc32c(b), b.length)).toBe(concatCrc(a, b));
        },
      ),
      { seed: 0x0c0ffee, numRuns: 300 },
    );
  });

  it('continues any running CRC: crc32cCombine(prev, crc(B), |B|) === crc32c(B, prev), for more lengths than the cache holds', () => {
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 1, max: 0x7fffffff }), (prev, lb, seed) => {
        const b = bytesOf(lb, seed);
        expect(crc32cCombine(prev, referenceCrc32c(b), lb)).toBe(referenceCrc32c(b, prev));
      }),
      { seed: 42, numRuns: 400 },
    );
    // The same lengths again, now answered from the cache of shift operators.
    for (const lb of [1, 2, 100, 4096, 5000]) {
      const b = bytesOf(lb, lb);
      expect(crc32cCombine(0xdeadbeef, referenceCrc32c(b), lb)).toBe(referenceCrc32c(b, 0xdeadbeef));
    }
  });

  it('joins three pieces in either grouping', () => {
    const [a, b, c] = [bytesOf(3000, 11), bytesOf(65536, 12), bytesOf(777, 13)];
    const [ca, cb, cc] = [a, b, c].map((x) => referenceCrc32c(x));
    const whole = referenceCrc32c(Buffer.concat([a, b, c]));
    expect(crc32cCombine(crc32cCombine(ca, cb, b.length), cc, c.length)).toBe(whole);
    expect(crc32cCombine(ca, crc32cCombine(cb, cc, c.length), b.length + c.length)).toBe(whole);
  });

  it('the CRC of 1 MiB of zeros, built by doubling from the CRC of one zero byte', () => {
    let crc = referenceCrc32c(Buffer.alloc(1));
    for (let n = 1; n < 1 << 20; n *= 2) crc = crc32cCombine(crc, crc, n);
    expect(crc).toBe(referenceCrc32c(Buffer.alloc(1 << 20)));
  });

  it('lengthB 0 returns crcA (as an unsigned 32-bit number), whatever crcB is', () => {
    expect(crc32cCombine(0x12345678, 0, 0)).toBe(0x12345678);
    expect(crc32cCombine(0xffffffff, 0, 0)).toBe(0xffffffff);
    expect(crc32cCombine(-1, 0, 0)).toBe(0xffffffff);
    expect(crc32cCombine(0x89abcdef, 0x55555555, 0)).toBe(0x89abcdef);
    const a = bytesOf(100, 3);
    expect(crc32cCombine(referenceCrc32c(a), referenceCrc32c(Buffer.alloc(0)), 0)).toBe(referenceCrc32c(a));
  });

  it('returns unsigned 32-bit numbers', () => {
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.nat(0xffffffff), fc.nat(1 << 20), (x, y, n) => {
        const r = crc32cCombine(x, y, n);
        expect(Number.isInteger(r) && r >= 0 && r <= 0xffffffff).toBe(true);
      }),
      { seed: 7, numRuns: 200 },
    );
  });

  it.each([-1, -4096, 1.5, 0.5, NaN, Infinity, -Infinity, 2 ** 53])('a length of %p throws RangeError', (len) => {
    expect(() => crc32cCombine(1, 2, len)).toThrow(RangeError);
  });

  // Shifting by 2n is shifting by n twice; anchored at the lengths checked against real bytes
  // above, this carries the check to lengths too large to allocate.
  it('shifting by 2n equals shifting by n twice, for n = 2^0 .. 2^27 (lengths below 512 MiB)', () => {
    for (const crcA of [0x12345678, 0xffffffff, 1]) {
      for (let k = 0; k < 28; k++) {
        const n = 2 ** k;
        expect([k, crcA, crc32cCombine(crc32cCombine(crcA, 0, n), 0, n)]).toEqual([k, crcA, crc32cCombine(crcA, 0, 2 * n)]);
      }
    }
  });

  // Lengths from 512 MiB use the powers x^(2^k) from k = 32 up, where zlib's CRC-32 code wraps
  // its table index (k & 31, assuming x^(2^32) = x). For this polynomial the period is 31, not
  // 32: P = (x + 1)·Q with Q primitive of degree 31, so x^(2^31) = x; an index wrapped mod 32
  // would shift every length with a bit from 2^29 up wrongly. crc32c.ts keeps all 64 powers.
  it('shifting by 2n equals shifting by n twice, for n = 2^28 .. 2^51 (lengths from 512 MiB)', () => {
    for (let k = 28; k < 52; k++) {
      const n = 2 ** k;
      expect([k, crc32cCombine(crc32cCombine(0x12345678, 0, n), 0, n)]).toEqual([k, crc32cCombine(0x12345678, 0, 2 * n)]);
    }
  });

  // An anchor for large lengths that needs no bytes and no other shift: x has order 2^31 − 1
  // modulo P (a Mersenne prime, the order of x modulo the primitive Q; modulo x + 1, x = 1), so
  // carrying a CRC past m·(2^31 − 1) bytes (8·m·(2^31 − 1) bits) changes nothing.
  it('carrying a CRC past m·(2^31 − 1) bytes (2 GiB up to 2^52) leaves it as it was', () => {
    const period = 2 ** 31 - 1;
    for (const m of [1, 2, 3, 1000, 2 ** 21 - 1]) {
      for (const crcA of [0x12345678, 0xffffffff, 1]) {
        expect([m, crcA, crc32cCombine(crcA, 0, m * period)]).toEqual([m, crcA, crcA]);
        expect([m, crc32cCombine(crcA, 0xabcdef01, m * period + 4096)]).toEqual([m, crc32cCombine(crcA, 0xabcdef01, 4096)]);
      }
    }
  });
});

/**
 * A seeded xorshift32 generator: replayable data for the drill and the randomized tests (print the seed; they take
 * it back from an environment variable such as COW_SEED).
 */
export function xorshift(seed: number): { next(): number; int(n: number): number; bytes(n: number): Buffer } {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  return {
    next,
    /** An integer in [0, n). */
    int: (n: number) => next() % n,
    /** `n` bytes (the tail of a length not a multiple of 4 is left as allocated: pass multiples of 4). */
    bytes: (n: number) => {
      const b = Buffer.alloc(n);
      for (let i = 0; i + 4 <= n; i += 4) b.writeUInt32LE(next(), i);
      return b;
    },
  };
}

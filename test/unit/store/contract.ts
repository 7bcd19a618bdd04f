/**
 * The Store conformance suite: what every backing store must do, run against each of them
 * (memory and file here, RemoteStore against a real tgt in test/integration/store-remote.test.ts).
 *
 * The core is a model test: fast-check generates sequences of writes (self-describing blocks,
 * zeros, patterns; with and without FUA), reads (with and without a caller buffer), unmaps,
 * flushes and extent queries over a window of the store; an in-test Buffer is the reference.
 * The store's contents are never assumed (a remote LUN keeps data between tests): each run
 * first reads the window into the model. On failure the seed is printed; replay it with
 * STORE_CONTRACT_SEED=<seed>.
 */
import crypto from 'node:crypto';
import fc from 'fast-check';
import { ArgumentError } from '../../../src/errors';
import { stampBlocks, checkBlock } from '../../../src/agent/stamp';
import { decodeSense } from '../../../src/scsi/sense';
import { StoreError, type Extent, type Store } from '../../../src/store/store';

export interface ContractOptions {
  /** fast-check runs of the model test (default 60). */
  numRuns?: number;
  /** Blocks in the window a model run works on (default 40; at most the store's capacity). */
  window?: number;
  /** Largest request of a model run, in blocks (default 12). */
  maxOpBlocks?: number;
  /** Per-test timeout (ms). */
  timeoutMs?: number;
}

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/**
 * LBA out of range, either found by the store itself or forwarded from a remote LUN
 * (ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE 21h/00h, SBC-3 r36 4.5).
 */
export function isOutOfRange(err: unknown): boolean {
  if (!(err instanceof StoreError)) return false;
  const f = err.failure;
  if (f.kind === 'lba-out-of-range') return true;
  if (f.kind !== 'forwarded' || !f.sense) return false;
  const s = decodeSense(f.sense);
  return s.senseKey === 0x5 && s.asc === 0x21 && s.ascq === 0x00;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the request to be refused, it succeeded');
}

/** Checks that extents tile [lba, lba+count) in order and that every hole reads zeros in the model. */
function checkExtents(ext: Extent[], lba: bigint, count: bigint, model: Buffer, base: bigint, bs: number): void {
  let cursor = lba;
  for (const e of ext) {
    expect(e.lba).toBe(cursor);
    expect(e.blocks > 0n).toBe(true);
    cursor += e.blocks;
    if (!e.mapped) {
      const from = Number(e.lba - base) * bs;
      const hole = model.subarray(from, from + Number(e.blocks) * bs);
      expect(hole.equals(Buffer.alloc(hole.length))).toBe(true); // a hole must read back zeros
    }
  }
  expect(cursor).toBe(lba + count);
}

type Op =
  | { t: 'write'; off: number; len: number; fill: 'stamp' | 'zero' | 'byte'; byte: number; fua: boolean }
  | { t: 'read'; off: number; len: number; into: boolean }
  | { t: 'unmap'; off: number; len: number }
  | { t: 'extents'; off: number; len: number }
  | { t: 'flush' };

function opArb(window: number, maxLen: number): fc.Arbitrary<Op> {
  const span = fc
    .integer({ min: 0, max: window - 1 })
    .chain((off) => fc.record({ off: fc.constant(off), len: fc.integer({ min: 1, max: Math.min(maxLen, window - off) }) }));
  return fc.oneof(
    { weight: 4, arbitrary: span.chain((s) => fc.record({ t: fc.constant('write' as const), off: fc.constant(s.off), len: fc.constant(s.len), fill: fc.constantFrom('stamp' as const, 'zero' as const, 'byte' as const), byte: fc.integer({ min: 1, max: 255 }), fua: fc.boolean() })) },
    { weight: 3, arbitrary: span.chain((s) => fc.record({ t: fc.constant('read' as const), off: fc.constant(s.off), len: fc.constant(s.len), into: fc.boolean() })) },
    { weight: 2, arbitrary: span.map((s) => ({ t: 'unmap' as const, ...s })) },
    { weight: 2, arbitrary: span.map((s) => ({ t: 'extents' as const, ...s })) },
    { weight: 1, arbitrary: fc.constant({ t: 'flush' as const }) },
  );
}

/**
 * Registers the conformance tests for one kind of store. `factory` opens a new store on each
 * call (a new temp file, a new session to the same LUN, ...); each test closes what it opened.
 */
export function storeContract(label: string, factory: () => Promise<Store>, opts: ContractOptions = {}): void {
  const numRuns = opts.numRuns ?? 60;
  const maxOpBlocks = opts.maxOpBlocks ?? 12;
  const timeout = opts.timeoutMs ?? 120_000;

  async function withStore<T>(fn: (s: Store) => Promise<T>): Promise<T> {
    const store = await factory();
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  }

  describe(`Store contract: ${label}`, () => {
    test('geometry and identity', async () => {
      await withStore(async (s) => {
        expect([512, 4096]).toContain(s.blockSize);
        expect(typeof s.blocks).toBe('bigint');
        expect(s.blocks > 0n).toBe(true);
        expect(typeof s.kind).toBe('string');
        expect(s.identity.name.length).toBeGreaterThan(0);
        expect(s.identity.name).not.toMatch(/%[^@/]*@/); // no CHAP secret in a name
        if (s.identity.naa !== undefined) {
          expect(s.identity.naa).toHaveLength(16);
          expect(s.identity.naa[0] >> 4).toBe(6);
        }
        if (s.identity.serial !== undefined) expect(s.identity.serial).toMatch(/^[\x20-\x7e]+$/);
        expect(typeof s.unmapReadsZero).toBe('boolean');
      });
    });

    test(
      'random writes, reads, unmaps and extents agree with a model',
      async () => {
        await withStore(async (s) => {
          const bs = s.blockSize;
          const window = Number(BigInt(opts.window ?? 40) < s.blocks ? BigInt(opts.window ?? 40) : s.blocks);
          const baseArb = fc.oneof(
            fc.constant(0n),
            fc.constant(s.blocks - BigInt(window)),
            fc.bigInt({ min: 0n, max: s.blocks - BigInt(window) }),
          );
          const seed = Number(process.env.STORE_CONTRACT_SEED ?? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0);
          let sequence = 0n;
          const property = fc.asyncProperty(baseArb, fc.array(opArb(window, maxOpBlocks), { minLength: 1, maxLength: 24 }), async (base, ops) => {
            const model = Buffer.from(await s.read(base, window));
            expect(model).toHaveLength(window * bs);
            for (const op of ops) {
              if (op.t === 'flush') {
                await s.flush();
                continue;
              }
              const lba = base + BigInt(op.off);
              const from = op.off * bs;
              const bytes = op.len * bs;
              switch (op.t) {
                case 'write': {
                  const data =
                    op.fill === 'stamp'
                      ? stampBlocks(lba, op.len, bs, ++sequence)
                      : Buffer.alloc(bytes, op.fill === 'zero' ? 0 : op.byte);
                  await s.write(lba, data, { fua: op.fua });
                  data.copy(model, from);
                  data.fill(0xee); // the store must have copied what it keeps
                  break;
                }
                case 'read': {
                  const into = op.into ? Buffer.alloc(bytes + bs, 0xa5) : undefined;
                  const got = await s.read(lba, op.len, into);
                  expect(got).toHaveLength(bytes);
                  if (into) {
                    expect(got.buffer).toBe(into.buffer);
                    expect(got.byteOffset).toBe(into.byteOffset);
                    expect(into.subarray(bytes).equals(Buffer.alloc(bs, 0xa5))).toBe(true);
                  }
                  expect(sha256(got)).toBe(sha256(model.subarray(from, from + bytes)));
                  break;
                }
                case 'unmap':
                  await s.unmap(lba, BigInt(op.len));
                  model.fill(0, from, from + bytes);
                  break;
                case 'extents':
                  checkExtents(await s.extents(lba, BigInt(op.len)), lba, BigInt(op.len), model, base, bs);
                  break;
              }
            }
            const all = await s.read(base, window);
            expect(sha256(all)).toBe(sha256(model));
            checkExtents(await s.extents(base, BigInt(window)), base, BigInt(window), model, base, bs);
          });
          try {
            await fc.assert(property, { numRuns, seed });
          } catch (err) {
            // eslint-disable-next-line no-console
            console.error(`store contract (${label}) failed with seed ${seed}: replay with STORE_CONTRACT_SEED=${seed}`);
            throw err;
          }
        });
      },
      timeout,
    );

    test(
      'concurrent writes to different blocks all land, and concurrent reads see them',
      async () => {
        await withStore(async (s) => {
          const bs = s.blockSize;
          const n = 64;
          const base = s.blocks / 2n - BigInt(n * 2) > 0n ? s.blocks / 2n - BigInt(n * 2) : 0n;
          const span = Math.min(n * 2, Number(s.blocks - base));
          const count = Math.min(n, span);
          // A permutation of distinct blocks in the span, written in one burst.
          const order = [...Array(span).keys()];
          for (let i = order.length - 1; i > 0; i--) {
            const j = crypto.randomInt(i + 1);
            [order[i], order[j]] = [order[j], order[i]];
          }
          const lbas = order.slice(0, count);
          const seq = BigInt(Date.now());
          const reference = Buffer.from(await s.read(base, span));
          await Promise.all(
            lbas.map((off) => {
              const block = stampBlocks(base + BigInt(off), 1, bs, seq);
              block.copy(reference, off * bs);
              return s.write(base + BigInt(off), block);
            }),
          );
          const back = await Promise.all(lbas.map((off) => s.read(base + BigInt(off), 1)));
          back.forEach((b, i) => expect(checkBlock(b, base + BigInt(lbas[i]), seq)).toMatchObject({ ok: true }));
          expect(sha256(await s.read(base, span))).toBe(sha256(reference));
        });
      },
      timeout,
    );

    test('requests past the end are refused whole', async () => {
      await withStore(async (s) => {
        const bs = s.blockSize;
        const last = s.blocks - 1n;
        const before = Buffer.from(await s.read(last, 1));
        const marker = Buffer.alloc(2 * bs, 0x5c);
        expect(isOutOfRange(await rejection(s.read(last, 2)))).toBe(true);
        expect(isOutOfRange(await rejection(s.read(s.blocks, 1)))).toBe(true);
        expect(isOutOfRange(await rejection(s.write(last, marker)))).toBe(true);
        expect(isOutOfRange(await rejection(s.unmap(last, 2n)))).toBe(true);
        expect(isOutOfRange(await rejection(s.extents(last, 2n)))).toBe(true);
        // The refused write and unmap left the last block as it was: nothing half applied.
        expect((await s.read(last, 1)).equals(before)).toBe(true);
      });
    });

    test('a write that is not whole blocks is refused and changes nothing', async () => {
      await withStore(async (s) => {
        const bs = s.blockSize;
        const before = Buffer.from(await s.read(0n, 2));
        await expect(s.write(0n, Buffer.alloc(bs + 1, 0x77))).rejects.toBeInstanceOf(ArgumentError);
        await expect(s.write(0n, Buffer.alloc(bs - 1, 0x77))).rejects.toBeInstanceOf(ArgumentError);
        await expect(s.read(-1n, 1)).rejects.toBeInstanceOf(ArgumentError);
        expect((await s.read(0n, 2)).equals(before)).toBe(true);
      });
    });

    test('zero-length requests succeed and do nothing', async () => {
      await withStore(async (s) => {
        expect(await s.read(1n, 0)).toHaveLength(0);
        await s.write(1n, Buffer.alloc(0));
        await s.unmap(1n, 0n);
        expect(await s.extents(1n, 0n)).toEqual([]);
      });
    });

    test('unmap makes a written range read back zeros; FUA writes and flush are accepted', async () => {
      await withStore(async (s) => {
        const bs = s.blockSize;
        const lba = s.blocks > 64n ? 16n : 0n;
        const count = Number(s.blocks - lba < 40n ? s.blocks - lba : 40n);
        const data = stampBlocks(lba, count, bs, 7n);
        await s.write(lba, data, { fua: true });
        expect(sha256(await s.read(lba, count))).toBe(sha256(data));
        await s.flush();
        await s.unmap(lba + 1n, BigInt(count - 2));
        const back = await s.read(lba, count);
        expect(back.subarray(0, bs).equals(data.subarray(0, bs))).toBe(true);
        expect(back.subarray(bs, (count - 1) * bs).equals(Buffer.alloc((count - 2) * bs))).toBe(true);
        expect(back.subarray((count - 1) * bs).equals(data.subarray((count - 1) * bs))).toBe(true);
      });
    });

    test('a closed store refuses requests with not-ready', async () => {
      const s = await factory();
      await s.close();
      const err = await rejection(s.read(0n, 1));
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).failure.kind).toBe('not-ready');
    });
  });
}

/**
 * sha256Async (src/native/digest.ts, OpenSSL on the thread pool) against FIPS 180-4's examples
 * and Node's own SHA-256 (a reference independent of the addon) over random sizes, and its
 * refusal of what is not a Buffer.
 */
import crypto from 'node:crypto';
import { sha256Async, sha256Pieces } from '../../../src/native/digest';
import { xorshift } from '../../helpers/rng';

const nodeSha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

test('the FIPS 180-4 examples: "abc", the 448-bit message, the empty string', async () => {
  expect((await sha256Async(Buffer.from('abc'))).toString('hex')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  expect((await sha256Async(Buffer.from('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))).toString('hex')).toBe(
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  );
  expect((await sha256Async(Buffer.alloc(0))).toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('equals node:crypto on random sizes and offsets into a larger buffer, many at once (seeded)', async () => {
  const seed = Number(process.env.DIGEST_SEED ?? crypto.randomInt(1, 2 ** 30));
  const rnd = xorshift(seed).int;
  const big = crypto.randomBytes(4 * 1024 * 1024);
  const cases = Array.from({ length: 64 }, () => {
    const off = rnd(big.length);
    return big.subarray(off, off + rnd(big.length - off + 1));
  });
  const got = await Promise.all(cases.map((b) => sha256Async(b)));
  got.forEach((d, i) => {
    if (d.toString('hex') !== nodeSha(cases[i])) throw new Error(`seed ${seed}: case ${i} (${cases[i].length} bytes) differs`);
  });
  expect(got).toHaveLength(64);
});

test('sha256Pieces: the digest of each consecutive piece, the last one shorter, as node:crypto gives them', async () => {
  const big = crypto.randomBytes(1000 * 7 + 3);
  const got = await sha256Pieces(big, 1000);
  expect(got).toHaveLength(8);
  got.forEach((d, i) => expect(d.toString('hex')).toBe(nodeSha(big.subarray(i * 1000, (i + 1) * 1000))));
  expect((await sha256Pieces(big, big.length)).map((d) => d.toString('hex'))).toEqual([nodeSha(big)]);
  expect((await sha256Pieces(big, 10 * big.length)).map((d) => d.toString('hex'))).toEqual([nodeSha(big)]);
  expect(await sha256Pieces(Buffer.alloc(0), 512)).toEqual([]);
});

test('anything but a Buffer is refused, and a piece size that is not a positive integer', async () => {
  expect(() => sha256Async('abc' as unknown as Buffer)).toThrow(TypeError);
  await expect(sha256Pieces('abc' as unknown as Buffer, 1)).rejects.toThrow(TypeError);
  await expect(sha256Pieces(Buffer.alloc(8), 0)).rejects.toThrow(RangeError);
  await expect(sha256Pieces(Buffer.alloc(8), 1.5)).rejects.toThrow(RangeError);
});

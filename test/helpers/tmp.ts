import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A fresh temporary folder for one test file (removed by the caller's afterAll). */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `xcopy-agent-${prefix}-`));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Waits for a condition with a bound (no bare sleeps in tests). */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A temporary folder for one test file, made before its tests and removed after them, and fresh
 * file paths in it: `const files = tempFiles('store-file'); files.fresh('a')`.
 */
export function tempFiles(prefix: string): { readonly dir: string; fresh(name?: string): string } {
  let dir = '';
  let n = 0;
  beforeAll(() => {
    dir = tempDir(prefix);
  });
  afterAll(() => removeDir(dir));
  return {
    get dir() {
      return dir;
    },
    fresh: (name = 'f') => path.join(dir, `${name}-${++n}.img`),
  };
}

/** The bytes of `file` at [offset, offset + length), read with fs (a short read fails the test). */
export function fileBytes(file: string, offset: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    expect(fs.readSync(fd, b, 0, length, offset)).toBe(length);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

/** XORs one byte of a file at `offset` (damage below the target and the agent); again to undo. */
export function flipByte(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, offset);
    b[0] ^= 0x5a;
    fs.writeSync(fd, b, 0, 1, offset);
  } finally {
    fs.closeSync(fd);
  }
}

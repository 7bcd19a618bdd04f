/**
 * The management API's bearer token: generated once into a file only its owner can read (as
 * sshd treats its keys), read back on every start, compared in constant time.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ArgumentError } from '../errors';

/** Shortest token accepted when one is given directly. */
export const MIN_TOKEN_LENGTH = 16;
/** A token file larger than this is not a token file. */
const MAX_TOKEN_FILE_BYTES = 4096;
/** RFC 6750 2.1 b64token: what may follow "Bearer " in an Authorization header. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** 32 random bytes as base64url (43 characters). */
export function generateToken(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/** Checks a token given directly (or read from a file): long enough, and sendable in a header. */
export function checkToken(token: string, what = 'token', hint = 'or use a token file to have one generated'): string {
  if (typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH) {
    throw new ArgumentError(`${what}: must be at least ${MIN_TOKEN_LENGTH} characters (${hint})`);
  }
  if (!B64TOKEN.test(token)) {
    throw new ArgumentError(`${what}: may hold only letters, digits and - . _ ~ + / (then = padding), as a bearer token must (RFC 6750)`);
  }
  return token;
}

/** Constant-time comparison: both sides are hashed first so lengths leak nothing either. */
export function tokenMatches(expected: string, presented: string): boolean {
  const a = crypto.createHash('sha256').update(expected, 'utf8').digest();
  const b = crypto.createHash('sha256').update(presented, 'utf8').digest();
  return crypto.timingSafeEqual(a, b);
}

/**
 * The token in `file`, created if the file does not exist.
 *
 * An existing file is refused if it is not a regular file, if group or others have any access
 * to it (mode & 0o077), if another user owns it, or if it is empty. A new token is written to a
 * temporary file opened with O_EXCL and mode 0600, then linked to `file`; the link (not a
 * rename) means two processes starting together agree on one token: the second link fails with
 * EEXIST and that process reads the first one's file. Where hard links are unsupported it falls
 * back to rename.
 */
export function loadOrCreateToken(file: string): string {
  const existing = readTokenFile(file);
  if (existing !== undefined) return existing;
  const token = generateToken();
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  let fd: number;
  try {
    fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  } catch (err) {
    throw new ArgumentError(`token file ${file}: cannot create it in ${dir}: ${(err as Error).message}`);
  }
  try {
    try {
      fs.writeSync(fd, `${token}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.linkSync(tmp, file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        const theirs = readTokenFile(file);
        if (theirs !== undefined) return theirs;
      }
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') {
        throw new ArgumentError(`token file ${file}: cannot create it: ${(err as Error).message}`);
      }
      fs.renameSync(tmp, file);
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  syncDir(dir);
  return token;
}

/** The token in `file`, or undefined if there is no such file. Throws if the file is unsafe. */
function readTokenFile(file: string): string | undefined {
  let fd: number;
  try {
    // O_NOFOLLOW: the mode we check must be the token file's, not a symlink target's.
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new ArgumentError(`token file ${file}: is a symbolic link; name the file itself`);
    throw new ArgumentError(`token file ${file}: cannot read it: ${(err as Error).message}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new ArgumentError(`token file ${file}: is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      throw new ArgumentError(
        `token file ${file}: mode ${(st.mode & 0o777).toString(8).padStart(4, '0')} lets other users read it; ` +
          `run chmod 600 ${file} (and replace the token if it may have been seen)`,
      );
    }
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) {
      throw new ArgumentError(`token file ${file}: is owned by uid ${st.uid}, not by this process's uid ${uid}`);
    }
    if (st.size > MAX_TOKEN_FILE_BYTES) throw new ArgumentError(`token file ${file}: ${st.size} bytes is too large for a token file`);
    const token = fs.readFileSync(fd, 'utf8').trim();
    if (token.length === 0) throw new ArgumentError(`token file ${file}: is empty; delete it to have a token generated`);
    return checkToken(token, `token file ${file}`, 'or delete the file to have one generated');
  } finally {
    fs.closeSync(fd);
  }
}

/** Makes the new directory entry durable (best effort: not every filesystem allows it). */
function syncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, fs.constants.O_RDONLY);
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // fsync of a directory is advisory here: the token is already in the file.
  }
}

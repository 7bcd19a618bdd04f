import fs from 'node:fs';
import path from 'node:path';
import { ArgumentError } from '../../../src/errors';
import { checkToken, generateToken, loadOrCreateToken, tokenMatches } from '../../../src/mgmt/token';
import { removeDir, tempDir } from '../../helpers/tmp';

let dir: string;
beforeAll(() => {
  dir = tempDir('mgmt-token');
});
afterAll(() => removeDir(dir));

function writeToken(name: string, text: string, mode: number): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text, { mode });
  fs.chmodSync(p, mode); // writeFileSync's mode is filtered by the umask
  return p;
}

describe('token file', () => {
  test('a missing file is created with a new token, mode 0600, and no temporary file is left', () => {
    const p = path.join(dir, 'new.token');
    const token = loadOrCreateToken(p);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 bytes, base64url
    const st = fs.statSync(p);
    expect(st.mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(p, 'utf8')).toBe(`${token}\n`);
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  test('an existing file is reused (trimmed)', () => {
    const p = path.join(dir, 'reuse.token');
    const first = loadOrCreateToken(p);
    expect(loadOrCreateToken(p)).toBe(first);
    const q = writeToken('given.token', '  abcdefghijklmnopqrstuvwxyz012345\n\n', 0o600);
    expect(loadOrCreateToken(q)).toBe('abcdefghijklmnopqrstuvwxyz012345');
  });

  test.each(['0644', '0640', '0604', '0660', '0620'])('mode %s is refused, saying what to do', (octal) => {
    const mode = parseInt(octal, 8);
    const p = writeToken(`mode-${octal}.token`, generateToken(), mode);
    expect(() => loadOrCreateToken(p)).toThrow(ArgumentError);
    expect(() => loadOrCreateToken(p)).toThrow(`mode ${octal} lets other users read it; run chmod 600 ${p}`);
  });

  test('an empty (or blank) file is refused', () => {
    const p = writeToken('empty.token', '', 0o600);
    expect(() => loadOrCreateToken(p)).toThrow(`token file ${p}: is empty; delete it to have a token generated`);
    const q = writeToken('blank.token', ' \n', 0o600);
    expect(() => loadOrCreateToken(q)).toThrow(/is empty/);
  });

  test('a short token, a symbolic link and a directory are refused', () => {
    const short = writeToken('short.token', 'abc', 0o600);
    expect(() => loadOrCreateToken(short)).toThrow(/must be at least 16 characters/);
    const target = writeToken('target.token', generateToken(), 0o600);
    const link = path.join(dir, 'link.token');
    fs.symlinkSync(target, link);
    expect(() => loadOrCreateToken(link)).toThrow(/is a symbolic link/);
    const sub = path.join(dir, 'a-directory');
    fs.mkdirSync(sub, { mode: 0o700 });
    expect(() => loadOrCreateToken(sub)).toThrow(/is not a regular file/);
  });

  test('a file that cannot be created is reported with its directory', () => {
    expect(() => loadOrCreateToken(path.join(dir, 'no-such-dir', 't'))).toThrow(/cannot create it in .*no-such-dir/);
  });
});

describe('token checks', () => {
  test('a token given directly must have 16 characters a header can carry', () => {
    expect(checkToken('0123456789abcdef')).toBe('0123456789abcdef');
    expect(() => checkToken('0123456789abcde')).toThrow(/at least 16 characters/);
    expect(() => checkToken('0123456789abcdef ghi')).toThrow(/RFC 6750/);
    expect(() => checkToken('0123456789abcdefé')).toThrow(/RFC 6750/);
  });

  test('tokens compare equal only when equal, whatever their lengths', () => {
    const t = generateToken();
    expect(tokenMatches(t, t)).toBe(true);
    expect(tokenMatches(t, `${t}x`)).toBe(false);
    expect(tokenMatches(t, t.slice(0, -1))).toBe(false);
    expect(tokenMatches(t, '')).toBe(false);
  });
});

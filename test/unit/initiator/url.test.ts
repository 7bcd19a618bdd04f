import fc from 'fast-check';
import { AgentError } from '../../../src/errors';
import { formatIscsiUrl, parseIscsiUrl, redactUrl } from '../../../src/initiator/url';

const noEnv = {} as NodeJS.ProcessEnv;

describe('parseIscsiUrl (libiscsi URL syntax)', () => {
  test('host, port, target and LUN', () => {
    const u = parseIscsiUrl('iscsi://127.0.0.1:3261/iqn.2026-11.test:peers1/1', { env: noEnv });
    expect(u).toMatchObject({ host: '127.0.0.1', port: 3261, portal: '127.0.0.1:3261', target: 'iqn.2026-11.test:peers1', lun: 1 });
    expect(u.user).toBeUndefined();
    expect(u.secretInUrl).toBe(false);
  });

  test('default port 3260, URL-encoded target, IPv6', () => {
    expect(parseIscsiUrl('iscsi://host/iqn.a%3Ab/0', { env: noEnv })).toMatchObject({ port: 3260, target: 'iqn.a:b', lun: 0 });
    expect(parseIscsiUrl('iscsi://[::1]:3262/iqn.x/2', { env: noEnv })).toMatchObject({ host: '::1', portal: '[::1]:3262', lun: 2 });
  });

  test('CHAP from the URL, mutual CHAP from arguments, digest', () => {
    const u = parseIscsiUrl('iscsi://alice%s3cr%40t@h:1/iqn.x/3?target_user=tgt&target_password=pw&header_digest=crc32c', { env: noEnv });
    expect(u).toMatchObject({ user: 'alice', password: 's3cr@t', targetUser: 'tgt', targetPassword: 'pw', headerDigest: 'crc32c', secretInUrl: true });
  });

  test('CHAP from the LIBISCSI_CHAP_* variables', () => {
    const env = {
      LIBISCSI_CHAP_USERNAME: 'u',
      LIBISCSI_CHAP_PASSWORD: 'p',
      LIBISCSI_CHAP_TARGET_USERNAME: 'tu',
      LIBISCSI_CHAP_TARGET_PASSWORD: 'tp',
    } as NodeJS.ProcessEnv;
    expect(parseIscsiUrl('iscsi://h/iqn.x/0', { env })).toMatchObject({ user: 'u', password: 'p', targetUser: 'tu', targetPassword: 'tp', secretInUrl: false });
  });

  test('portal form for discovery', () => {
    expect(parseIscsiUrl('iscsi://127.0.0.1:3260', { requireLun: false, env: noEnv })).toMatchObject({ portal: '127.0.0.1:3260', target: undefined, lun: undefined });
    expect(parseIscsiUrl('iscsi://127.0.0.1:3260/', { requireLun: false, env: noEnv }).target).toBeUndefined();
  });

  test.each([
    ['http://h/iqn.x/0', /must start with iscsi:\/\//],
    ['iscsi:///iqn.x/0', /no host/],
    ['iscsi://h:99999/iqn.x/0', /port "99999"/],
    ['iscsi://h/iqn.x', /no LUN/],
    ['iscsi://h/iqn.x/abc', /LUN "abc"/],
    ['iscsi://h/iqn.x/16384', /LUN "16384"/],
    ['iscsi://h', /no target name and LUN/],
    ['iscsi://h/iqn.x/0?bogus=1', /unknown argument "bogus"/],
    ['iscsi://h/iqn.x/0?header_digest=md5', /header_digest must be/],
    ['iscsi://u@h/iqn.x/0', /has no password/],
    ['iscsi://[::1/iqn.x/0', /IPv6/],
  ])('%s is refused with a clear message', (url, why) => {
    let err: unknown;
    try {
      parseIscsiUrl(url, { env: noEnv });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('ERR_INVALID_URL');
    expect((err as Error).message).toMatch(why);
  });

  test('a refused URL never shows its password', () => {
    expect(() => parseIscsiUrl('iscsi://u%hunter2@h/iqn.x/zz', { env: noEnv })).toThrow(/u%\*\*\*@h/);
    expect(redactUrl('iscsi://u%hunter2@h/iqn.x/0?target_password=pw2')).toBe('iscsi://u%***@h/iqn.x/0?target_password=***');
  });

  test('format then parse is the identity on host, port, target, LUN (property)', () => {
    fc.assert(
      fc.property(
        fc.ipV4(),
        fc.integer({ min: 1, max: 65535 }),
        fc.stringMatching(/^iqn\.[a-z0-9.:-]{1,40}$/),
        fc.integer({ min: 0, max: 16383 }),
        (host, port, target, lun) => {
          const url = formatIscsiUrl({ portal: `${host}:${port}`, target, lun });
          const u = parseIscsiUrl(url, { env: noEnv });
          expect([u.host, u.port, u.target, u.lun]).toEqual([host, port, target, lun]);
        },
      ),
    );
  });

  test('random strings give a URL or an ERR_INVALID_URL, nothing else (property)', () => {
    fc.assert(
      fc.property(fc.string(), (tail) => {
        try {
          parseIscsiUrl(`iscsi://${tail}`, { env: noEnv });
        } catch (e) {
          expect((e as AgentError).code).toBe('ERR_INVALID_URL');
        }
      }),
      { numRuns: 3000 },
    );
  });
});

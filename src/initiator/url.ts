/**
 * libiscsi's URL syntax (libiscsi README, include/iscsi.h ISCSI_URL_SYNTAX):
 *   iscsi://[<username>[%<password>]@]<host>[:<port>]/<target-iqn>/<lun>[?arg&arg]
 * and the portal form used for discovery:
 *   iscsi://[<username>[%<password>]@]<host>[:<port>][/]
 * The target name may be URL-encoded (%3A for ':'). Arguments: header_digest=<crc32c|none|
 * crc32c-none|none-crc32c>, target_user=, target_password= (mutual CHAP).
 * CHAP credentials also come from LIBISCSI_CHAP_USERNAME / LIBISCSI_CHAP_PASSWORD and
 * LIBISCSI_CHAP_TARGET_USERNAME / LIBISCSI_CHAP_TARGET_PASSWORD, as libiscsi's own tools do.
 */
import { ArgumentError } from '../errors';

export type HeaderDigest = 'none' | 'crc32c' | 'none-crc32c' | 'crc32c-none';

export interface IscsiUrl {
  host: string;
  port: number;
  /** host:port as libiscsi wants it ([v6]:port for IPv6). */
  portal: string;
  target?: string;
  lun?: number;
  user?: string;
  password?: string;
  targetUser?: string;
  targetPassword?: string;
  headerDigest?: HeaderDigest;
  /** True when a secret came from the URL itself (it may show in `ps` and shell history). */
  secretInUrl: boolean;
}

export const DEFAULT_ISCSI_PORT = 3260;
const DIGESTS: Record<string, HeaderDigest> = {
  none: 'none',
  crc32c: 'crc32c',
  'none-crc32c': 'none-crc32c',
  'crc32c-none': 'crc32c-none',
};

function bad(url: string, why: string): ArgumentError {
  return new ArgumentError(
    `invalid iSCSI URL ${JSON.stringify(redactUrl(url))}: ${why} (expected iscsi://[user[%password]@]host[:port]/<iqn>/<lun>)`,
    'ERR_INVALID_URL',
  );
}

function decode(url: string, s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw bad(url, `${what} has a malformed %-escape`);
  }
}

/**
 * Parses a LUN URL (`requireLun` true) or a portal URL. Environment CHAP variables fill in
 * credentials the URL does not carry.
 */
export function parseIscsiUrl(
  url: string,
  opts: { requireLun?: boolean; env?: NodeJS.ProcessEnv } = {},
): IscsiUrl {
  const requireLun = opts.requireLun ?? true;
  const env = opts.env ?? process.env;
  if (typeof url !== 'string' || !url.startsWith('iscsi://')) throw bad(String(url), 'it must start with iscsi://');
  let rest = url.slice('iscsi://'.length);
  let query = '';
  const q = rest.indexOf('?');
  if (q >= 0) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  // user[%password]@ — the last '@' before the first '/' ends the credentials.
  const slash = rest.indexOf('/');
  const authority = slash >= 0 ? rest.slice(0, slash) : rest;
  const pathPart = slash >= 0 ? rest.slice(slash + 1) : '';
  let hostPort = authority;
  let user: string | undefined;
  let password: string | undefined;
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const cred = authority.slice(0, at);
    hostPort = authority.slice(at + 1);
    const pct = cred.indexOf('%');
    user = pct >= 0 ? cred.slice(0, pct) : cred;
    password = pct >= 0 ? cred.slice(pct + 1) : undefined;
    if (!user) throw bad(url, 'empty user name before @');
  }
  let host: string;
  let portText: string | undefined;
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    if (close < 0) throw bad(url, "IPv6 address without ']'");
    host = hostPort.slice(1, close);
    const after = hostPort.slice(close + 1);
    if (after && !after.startsWith(':')) throw bad(url, `unexpected ${JSON.stringify(after)} after the IPv6 address`);
    portText = after ? after.slice(1) : undefined;
  } else {
    const colon = hostPort.lastIndexOf(':');
    host = colon >= 0 ? hostPort.slice(0, colon) : hostPort;
    portText = colon >= 0 ? hostPort.slice(colon + 1) : undefined;
  }
  if (!host) throw bad(url, 'no host');
  let port = DEFAULT_ISCSI_PORT;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw bad(url, `port ${JSON.stringify(portText)} is not a number from 1 to 65535`);
    }
    port = Number(portText);
  }
  const portal = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;

  let target: string | undefined;
  let lun: number | undefined;
  const segs = pathPart === '' ? [] : pathPart.replace(/\/$/, '').split('/');
  if (segs.length > 0 && segs[0] !== '') {
    target = decode(url, segs[0], 'the target name');
    if (segs.length < 2 || segs[1] === '') {
      if (requireLun) throw bad(url, 'no LUN after the target name');
    } else {
      if (!/^\d+$/.test(segs[1]) || Number(segs[1]) > 16383) {
        throw bad(url, `LUN ${JSON.stringify(segs[1])} is not a number from 0 to 16383`);
      }
      lun = Number(segs[1]);
      if (segs.length > 2) throw bad(url, `unexpected path after the LUN: ${JSON.stringify(segs.slice(2).join('/'))}`);
    }
  } else if (requireLun) {
    throw bad(url, 'no target name and LUN');
  }

  let headerDigest: HeaderDigest | undefined;
  let targetUser: string | undefined;
  let targetPassword: string | undefined;
  for (const kv of query.split('&').filter(Boolean)) {
    const eq = kv.indexOf('=');
    const key = eq >= 0 ? kv.slice(0, eq) : kv;
    const value = decode(url, eq >= 0 ? kv.slice(eq + 1) : '', key);
    switch (key) {
      case 'header_digest':
        if (!DIGESTS[value]) throw bad(url, `header_digest must be one of ${Object.keys(DIGESTS).join(', ')}`);
        headerDigest = DIGESTS[value];
        break;
      case 'target_user':
        targetUser = value;
        break;
      case 'target_password':
        targetPassword = value;
        break;
      default:
        throw bad(url, `unknown argument ${JSON.stringify(key)}`);
    }
  }
  const secretInUrl = password !== undefined || targetPassword !== undefined;
  user = user !== undefined ? decode(url, user, 'the user name') : env.LIBISCSI_CHAP_USERNAME || undefined;
  password = password !== undefined ? decode(url, password, 'the password') : env.LIBISCSI_CHAP_PASSWORD || undefined;
  targetUser = targetUser ?? (env.LIBISCSI_CHAP_TARGET_USERNAME || undefined);
  targetPassword = targetPassword ?? (env.LIBISCSI_CHAP_TARGET_PASSWORD || undefined);
  if (user !== undefined && password === undefined) {
    throw bad(url, `CHAP user ${JSON.stringify(user)} has no password: add %password or set LIBISCSI_CHAP_PASSWORD`);
  }
  if ((targetUser === undefined) !== (targetPassword === undefined)) {
    throw bad(url, 'mutual CHAP needs both target_user and target_password (or the LIBISCSI_CHAP_TARGET_* variables)');
  }
  if (targetUser !== undefined && user === undefined) {
    throw bad(url, 'mutual CHAP needs the initiator CHAP credentials too');
  }
  return { host, port, portal, target, lun, user, password, targetUser, targetPassword, headerDigest, secretInUrl };
}

/** The URL with any password replaced by '***' (for logs and error messages). */
export function redactUrl(url: string): string {
  return String(url)
    .replace(/^(iscsi:\/\/[^/@%]*)%[^@/]*@/, '$1%***@')
    .replace(/([?&]target_password=)[^&]*/g, '$1***');
}

/** The canonical URL of a LUN, without secrets. */
export function formatIscsiUrl(u: Pick<IscsiUrl, 'portal' | 'target' | 'lun'>): string {
  let s = `iscsi://${u.portal}`;
  if (u.target !== undefined) s += `/${encodeURIComponent(u.target).replace(/%3A/gi, ':')}`;
  if (u.lun !== undefined) s += `/${u.lun}`;
  return s;
}

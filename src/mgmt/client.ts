/**
 * Client of the management API (server.ts): one JSON-RPC call per HTTP request, over loopback
 * TCP or a Unix socket, with the bearer token. Failures come back as ManagementError with a
 * stable `code`: the transport's own (ERR_MGMT_*) or, for an application error raised by the
 * remote method, the remote registry code (data.code), so callers match on the same codes
 * whether a method ran locally or behind the API.
 */
import http from 'node:http';
import { AgentError, ArgumentError, ErrorCodes, type ErrorCode } from '../errors';
import { parseResponse, toJson } from './jsonrpc';
import { checkToken } from './token';

/** The transport's own codes (their meanings and exit statuses are in the registry, src/errors.ts). */
export type ManagementErrorCode = Extract<ErrorCode, `ERR_MGMT_${string}`>;

/**
 * A management call failed. `code` is a ManagementErrorCode, or the remote registry code of an
 * application error; a remote code this build does not register is ERR_MGMT_RPC, and
 * `remoteCode` keeps it as sent.
 */
export class ManagementError extends AgentError {
  /** The code of the remote error as sent, when it was not a registry code here. */
  readonly remoteCode?: string;
  /** The JSON-RPC error code, when the server answered with a JSON-RPC error. */
  readonly rpcCode?: number;
  /** The JSON-RPC error data, as sent. */
  readonly data?: unknown;
  /** The HTTP status, when the server answered. */
  readonly httpStatus?: number;
  constructor(code: string, message: string, extra: { rpcCode?: number; data?: unknown; httpStatus?: number; cause?: unknown } = {}) {
    const known = Object.prototype.hasOwnProperty.call(ErrorCodes, code);
    super(known ? (code as ErrorCode) : 'ERR_MGMT_RPC', message, extra.cause === undefined ? undefined : { cause: extra.cause });
    if (!known) this.remoteCode = code;
    if (extra.rpcCode !== undefined) this.rpcCode = extra.rpcCode;
    if (extra.data !== undefined) this.data = extra.data;
    if (extra.httpStatus !== undefined) this.httpStatus = extra.httpStatus;
  }
}

export interface ManagementClientOptions {
  /** As ManagementServer.url gives it: http://HOST:PORT (or http://[::1]:PORT) or unix:/path. */
  url: string;
  token: string;
  /** Time allowed for one call, connection included (ms). Default 30 000. */
  timeoutMs?: number;
  /** Largest response accepted (bytes). Default 64 MiB. */
  maxResponseBytes?: number;
}

type Endpoint = { socketPath: string } | { host: string; port: number };

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** Parses a management URL (exported for the CLI's option checks). */
export function parseManagementUrl(url: string): Endpoint {
  const what = `management URL ${JSON.stringify(url)}`;
  if (typeof url !== 'string') throw new ArgumentError(`management URL: must be a string`);
  if (url.startsWith('unix:')) {
    const socketPath = url.slice('unix:'.length);
    if (!socketPath.startsWith('/')) throw new ArgumentError(`${what}: must be unix:/absolute/path`);
    return { socketPath };
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ArgumentError(`${what}: must be http://HOST:PORT or unix:/path`);
  }
  if (u.protocol !== 'http:') throw new ArgumentError(`${what}: scheme must be http: or unix:`);
  if (u.username || u.password) throw new ArgumentError(`${what}: must not hold credentials; give the token separately`);
  if (u.port === '') throw new ArgumentError(`${what}: needs a port`);
  if (u.pathname !== '/' && u.pathname !== '/rpc') throw new ArgumentError(`${what}: path must be empty or /rpc`);
  if (u.search || u.hash) throw new ArgumentError(`${what}: must have no query or fragment`);
  // URL keeps IPv6 hosts in brackets; http.request wants them bare.
  return { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(u.port) };
}

export class ManagementClient {
  readonly url: string;
  private readonly endpoint: Endpoint;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;
  private nextId = 1;

  constructor(opts: ManagementClientOptions) {
    this.url = opts.url;
    this.endpoint = parseManagementUrl(opts.url);
    this.token = checkToken(opts.token, 'management token');
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isSafeInteger(this.timeoutMs) || this.timeoutMs < 1) throw new ArgumentError(`timeoutMs: must be a positive integer, got ${opts.timeoutMs}`);
    this.maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    if (!Number.isSafeInteger(this.maxResponseBytes) || this.maxResponseBytes < 1) {
      throw new ArgumentError(`maxResponseBytes: must be a positive integer, got ${opts.maxResponseBytes}`);
    }
  }

  /**
   * Calls `method` with params by position (an array) or by name (an object), and resolves
   * with its result (bigints travel as decimal strings, both ways). Rejects with a
   * ManagementError; `T` is not checked at run time.
   */
  async call<T = unknown>(method: string, params?: readonly unknown[] | object): Promise<T> {
    if (typeof method !== 'string' || method.length === 0) throw new ArgumentError('method: must be a non-empty string');
    if (params !== undefined && (typeof params !== 'object' || params === null)) {
      throw new ArgumentError('params: must be an array or an object (JSON-RPC 2.0 section 4.2)');
    }
    const id = this.nextId++;
    const body = toJson(params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params });
    const { status, text } = await this.post(body);
    if (status === 401) {
      throw new ManagementError('ERR_MGMT_UNAUTHORIZED', `management API at ${this.url} refused the token (HTTP 401): check the token or the token file`, {
        httpStatus: status,
      });
    }
    if (status !== 200 && status !== 400) {
      throw new ManagementError('ERR_MGMT_PROTOCOL', `management API at ${this.url} answered HTTP ${status}: ${httpErrorOf(text)}`, { httpStatus: status });
    }
    const r = parseResponse(text);
    if (r.kind === 'malformed') {
      throw new ManagementError('ERR_MGMT_PROTOCOL', `management API at ${this.url} sent a malformed JSON-RPC response: ${r.reason}`, { httpStatus: status });
    }
    // A request the server could not parse is answered with id null (section 5).
    if (r.id !== id && !(r.kind === 'error' && r.id === null)) {
      throw new ManagementError('ERR_MGMT_PROTOCOL', `management API at ${this.url} answered id ${JSON.stringify(r.id)} to request ${id}`, { httpStatus: status });
    }
    if (r.kind === 'result') return r.result as T;
    const data = r.error.data;
    const remoteCode =
      typeof data === 'object' && data !== null && typeof (data as { code?: unknown }).code === 'string' ? (data as { code: string }).code : undefined;
    throw new ManagementError(remoteCode ?? 'ERR_MGMT_RPC', remoteCode ? r.error.message : `${r.error.message} (JSON-RPC error ${r.error.code})`, {
      rpcCode: r.error.code,
      data,
      httpStatus: status,
    });
  }

  private post(body: string): Promise<{ status: number; text: Buffer }> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err: ManagementError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(err);
      };
      const req = http.request({
        ...this.endpoint,
        method: 'POST',
        path: '/rpc',
        // One connection per call: nothing is left open to keep a CLI process alive.
        agent: false,
        headers: {
          Authorization: `Bearer ${this.token}`,
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
          Accept: 'application/json',
        },
      });
      const timer = setTimeout(
        () => fail(new ManagementError('ERR_MGMT_TIMEOUT', `management API at ${this.url} did not answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'ECONNREFUSED' ? 'connection refused (is the target running?)' : err.code === 'ENOENT' ? 'no such socket (is the target running?)' : err.message;
        fail(new ManagementError('ERR_MGMT_UNREACHABLE', `cannot reach the management API at ${this.url}: ${why}`, { cause: err }));
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let total = 0;
        res.on('data', (chunk: Buffer) => {
          total += chunk.length;
          if (total > this.maxResponseBytes) {
            fail(new ManagementError('ERR_MGMT_PROTOCOL', `management API at ${this.url} sent a response over ${this.maxResponseBytes} bytes`, { httpStatus: res.statusCode }));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks, total) });
        });
        res.on('error', (err) => fail(new ManagementError('ERR_MGMT_UNREACHABLE', `connection to the management API at ${this.url} was lost: ${err.message}`, { cause: err })));
      });
      req.end(body);
    });
  }
}

/** The {"error": "..."} of an HTTP-level refusal, or the start of whatever was sent. */
function httpErrorOf(text: Buffer): string {
  try {
    const v = JSON.parse(text.toString('utf8')) as unknown;
    if (typeof v === 'object' && v !== null && typeof (v as { error?: unknown }).error === 'string') return (v as { error: string }).error;
  } catch {
    // not JSON: show the beginning
  }
  return JSON.stringify(text.subarray(0, 200).toString('utf8'));
}

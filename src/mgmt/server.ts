/**
 * The management API's transport: JSON-RPC 2.0 over HTTP, in the manner of targetd (the JSON-RPC
 * daemon that manages LIO), generic over its methods. It listens only on loopback TCP or on a
 * Unix socket, and every call needs the bearer token.
 *
 *   POST /rpc      Authorization: Bearer <token>, Content-Type: application/json;
 *                  body: one JSON-RPC request or a batch. 200 with the response(s), 204 when
 *                  only notifications were sent, 400 when the body is not JSON or not a request.
 *   GET  /health   200 {"ok":true}, without the token: it says only that the process answers
 *                  (no version, no names, no counts), for supervisors and readiness probes.
 *
 * HTTP-level refusals carry a JSON body {"error": "..."}: 401 (with WWW-Authenticate: Bearer)
 * for a missing or wrong token, 404, 405, 413 for a body over maxBodyBytes (read no further,
 * the connection is closed), 415 for a content type other than application/json.
 *
 * The token and the content type together keep browsers out: a web page cannot send either
 * header cross-origin without a CORS preflight, which this server does not answer.
 *
 * Batches run their calls one after the other, in order. Each call is logged at info (method,
 * duration, outcome); headers and params are never logged.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { AgentError, ArgumentError } from '../errors';
import { logger, type Logger } from '../util/log';
import {
  encodeResponse,
  errorObjectOf,
  errorResponse,
  parseMessage,
  resultResponse,
  RpcErrorCode,
  type JsonRpcResponse,
  type ParsedCall,
} from './jsonrpc';
import { checkToken, loadOrCreateToken, tokenMatches } from './token';

export interface MethodContext {
  log: Logger;
  method: string;
}

/** A method: params as sent (an array, an object, or undefined when absent); validate them. */
export type MethodHandler = (params: unknown, ctx: MethodContext) => Promise<unknown> | unknown;

export interface ManagementServerOptions {
  /** HOST:PORT on loopback (127.0.0.0/8, [::1], localhost; port 0 = any free port) or unix:/path. */
  listen: string;
  /** The bearer token itself (≥ 16 characters) ... */
  token?: string;
  /** ... or a file holding it, created with a new token (mode 0600) if missing. */
  tokenFile?: string;
  methods: Record<string, MethodHandler>;
  log?: Logger;
  /** Largest request body accepted (bytes). Default 1 MiB. */
  maxBodyBytes?: number;
}

export type ManagementAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** Time in-flight calls get to finish after stop() before their connections are cut. */
const STOP_GRACE_MS = 2000;
/** sun_path is 108 bytes on Linux, one of them the terminating NUL. */
const MAX_UNIX_PATH_BYTES = 107;

const loopback = new net.BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

const LISTEN_HELP = 'the management API listens only on loopback (127.0.0.0/8, [::1], localhost) or on a Unix socket (unix:/path)';

/**
 * Parses a listen address. `localhost` is taken as 127.0.0.1 (not looked up: /etc/hosts could
 * map it elsewhere). IPv6 addresses are written in brackets. The URL a client names the API by
 * (`http://HOST:PORT`, as `snapshot --mgmt` takes it) is accepted too, so one XCOPY_AGENT_MGMT
 * serves the target and its clients.
 */
export function parseListenAddress(listen: string): ManagementAddress {
  const what = `management listen address ${JSON.stringify(listen)}`;
  if (typeof listen !== 'string' || listen.length === 0) throw new ArgumentError(`${what}: is empty; ${LISTEN_HELP}`);
  const url = /^http:\/\/([^/]+)(?:\/|\/rpc)?$/i.exec(listen);
  if (url) listen = url[1];
  if (listen.startsWith('unix:')) {
    const p = listen.slice('unix:'.length);
    if (p.length === 0) throw new ArgumentError(`${what}: unix: needs a path, e.g. unix:/run/xcopy-agent/mgmt.sock`);
    const abs = path.resolve(p);
    if (Buffer.byteLength(abs) > MAX_UNIX_PATH_BYTES) {
      throw new ArgumentError(`${what}: socket path ${abs} is longer than ${MAX_UNIX_PATH_BYTES} bytes; choose a shorter one`);
    }
    return { kind: 'unix', path: abs };
  }
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(listen);
  if (!m) {
    const hint = net.isIPv6(listen.replace(/:\d+$/, '')) ? ' (write IPv6 addresses in brackets: [::1]:PORT)' : '';
    throw new ArgumentError(`${what}: must be HOST:PORT, [IPv6]:PORT or unix:/path${hint}`);
  }
  const port = Number(m[3]);
  if (port > 65535) throw new ArgumentError(`${what}: port ${port} is out of range 0..65535`);
  let host = m[1] ?? m[2];
  if (host.toLowerCase() === 'localhost') host = '127.0.0.1';
  const family = net.isIP(host);
  if (m[1] !== undefined && family !== 6) throw new ArgumentError(`${what}: ${host} in brackets is not an IPv6 address`);
  if (family === 0) throw new ArgumentError(`${what}: ${host} is not an IP address or localhost; ${LISTEN_HELP}`);
  if (!loopback.check(host, family === 4 ? 'ipv4' : 'ipv6')) {
    throw new ArgumentError(`${what}: ${host} is not a loopback address; ${LISTEN_HELP}`);
  }
  return { kind: 'tcp', host, port };
}

/** The URL a ManagementClient takes for an address. */
export function urlOf(address: ManagementAddress): string {
  if (address.kind === 'unix') return `unix:${address.path}`;
  return net.isIPv6(address.host) ? `http://[${address.host}]:${address.port}` : `http://${address.host}:${address.port}`;
}

export class ManagementServer {
  readonly address: ManagementAddress;
  readonly url: string;
  private readonly log: Logger;
  private stopping?: Promise<void>;

  private constructor(
    private readonly httpServer: http.Server,
    address: ManagementAddress,
    log: Logger,
  ) {
    this.address = address;
    this.url = urlOf(address);
    this.log = log;
  }

  /** Validates the options, reads or creates the token, and listens. */
  static async start(opts: ManagementServerOptions): Promise<ManagementServer> {
    const spec = parseListenAddress(opts.listen);
    const token = tokenOf(opts);
    const methods = methodTable(opts.methods);
    const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1) {
      throw new ArgumentError(`maxBodyBytes: must be a positive integer, got ${maxBodyBytes}`);
    }
    const log = (opts.log ?? logger()).child({ component: 'mgmt' });
    const handler = new RequestHandler(token, methods, maxBodyBytes, log);
    const srv = http.createServer((req, res) => handler.handle(req, res, false));
    // "Expect: 100-continue" (curl sends it for bodies over 1 MiB): the checks run first, and
    // the client is told to send its body only if they pass.
    srv.on('checkContinue', (req, res) => handler.handle(req, res, true));
    // A whole request must arrive within this time (slow senders hold no socket forever);
    // a method may take longer to answer.
    srv.headersTimeout = 10_000;
    srv.requestTimeout = 30_000;
    if (spec.kind === 'unix') await removeStaleSocket(spec.path);
    const address = await listen(srv, spec);
    srv.on('error', (err) => log.error({ err }, 'management API server error'));
    if (address.kind === 'unix') {
      // Node creates the socket with the umask's mode; the token guards the moment before this.
      try {
        fs.chmodSync(address.path, 0o600);
      } catch (err) {
        await new Promise<void>((resolve) => srv.close(() => resolve()));
        throw new AgentError('ERR_INVALID_ARG', `cannot make socket ${address.path} private (mode 0600): ${(err as Error).message}`);
      }
    }
    const server = new ManagementServer(srv, address, log);
    log.info({ url: server.url, methods: [...methods.keys()] }, 'management API listening');
    return server;
  }

  /**
   * Stops listening, closes idle connections, lets calls in flight finish for a short while
   * then cuts their connections. A Unix socket file is removed. Idempotent.
   */
  stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = new Promise<void>((resolve) => {
        const cut = setTimeout(() => this.httpServer.closeAllConnections(), STOP_GRACE_MS);
        cut.unref();
        this.httpServer.close(() => {
          clearTimeout(cut);
          this.log.info({ url: this.url }, 'management API stopped');
          resolve();
        });
        this.httpServer.closeIdleConnections();
      });
    }
    return this.stopping;
  }
}

function tokenOf(opts: ManagementServerOptions): string {
  if (opts.token !== undefined && opts.tokenFile !== undefined) throw new ArgumentError('give either token or tokenFile, not both');
  if (opts.token !== undefined) return checkToken(opts.token, 'token');
  if (opts.tokenFile !== undefined) return loadOrCreateToken(opts.tokenFile);
  throw new ArgumentError('the management API needs a token: give token or tokenFile (a file is created if missing)');
}

function methodTable(methods: Record<string, MethodHandler>): Map<string, MethodHandler> {
  if (typeof methods !== 'object' || methods === null) throw new ArgumentError('methods: must be an object of handlers');
  // Own properties only: "toString" or "__proto__" must not reach Object.prototype.
  const table = new Map<string, MethodHandler>();
  for (const [name, fn] of Object.entries(methods)) {
    if (name.length === 0 || name.startsWith('rpc.')) throw new ArgumentError(`methods: ${JSON.stringify(name)} is not allowed (names starting "rpc." are reserved by JSON-RPC 2.0)`);
    if (typeof fn !== 'function') throw new ArgumentError(`methods.${name}: must be a function`);
    table.set(name, fn);
  }
  return table;
}

function listen(srv: http.Server, spec: ManagementAddress): Promise<ManagementAddress> {
  const where = urlOf(spec);
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        new AgentError(
          'ERR_INVALID_ARG',
          err.code === 'EADDRINUSE'
            ? `management API address ${where} is already in use: choose another or stop what listens there`
            : `cannot listen on ${where}: ${err.message}`,
        ),
      );
    };
    srv.once('error', onError);
    const done = () => {
      srv.off('error', onError);
      if (spec.kind === 'unix') return resolve(spec);
      const a = srv.address() as net.AddressInfo;
      resolve({ kind: 'tcp', host: a.address, port: a.port });
    };
    if (spec.kind === 'unix') srv.listen(spec.path, done);
    else srv.listen(spec.port, spec.host, done);
  });
}

/**
 * Removes a socket file left by a process that died; refuses a live socket and anything that is
 * not a socket (never deletes a regular file).
 */
async function removeStaleSocket(p: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new AgentError('ERR_INVALID_ARG', `cannot inspect ${p}: ${(err as Error).message}`);
  }
  if (!st.isSocket()) throw new AgentError('ERR_INVALID_ARG', `${p} exists and is not a socket; remove it or choose another path`);
  const state = await probeSocket(p);
  if (state === 'live') {
    throw new AgentError('ERR_INVALID_ARG', `${p} is in use by a running process (another target?); stop it or choose another path`);
  }
  if (state !== 'stale') {
    throw new AgentError('ERR_INVALID_ARG', `cannot tell whether socket ${p} is in use (${state}); remove it if no process serves it`);
  }
  try {
    fs.unlinkSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new AgentError('ERR_INVALID_ARG', `cannot remove stale socket ${p}: ${(err as Error).message}`);
  }
}

/** Connects to a socket file: 'live' if someone accepts, 'stale' if refused, else the errno. */
function probeSocket(p: string): Promise<'live' | 'stale' | string> {
  return new Promise((resolve) => {
    const sock = net.connect({ path: p });
    const finish = (state: string) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(state);
    };
    // A process too busy to accept within a second is alive.
    const timer = setTimeout(() => finish('live'), 1000);
    sock.once('connect', () => finish('live'));
    sock.once('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? 'stale' : (err.code ?? err.message)));
  });
}

// ---- requests ----

class RequestHandler {
  constructor(
    private readonly token: string,
    private readonly methods: Map<string, MethodHandler>,
    private readonly maxBodyBytes: number,
    private readonly log: Logger,
  ) {}

  handle(req: http.IncomingMessage, res: http.ServerResponse, expectsContinue: boolean): void {
    this.serve(req, res, expectsContinue).catch((err: unknown) => {
      this.log.error({ err }, 'management request failed with an internal error');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse, expectsContinue: boolean): Promise<void> {
    // The path only: a query string is never logged (someone may put a secret there).
    const urlPath = (req.url ?? '/').split('?')[0];
    if (urlPath === '/health') {
      if (req.method !== 'GET') return this.refuse(req, res, 405, 'use GET for /health', { Allow: 'GET' });
      return sendJson(res, 200, { ok: true });
    }
    if (urlPath !== '/rpc') return this.refuse(req, res, 404, `no such path ${urlPath.slice(0, 100)}: the API is POST /rpc`);
    if (req.method !== 'POST') return this.refuse(req, res, 405, 'use POST for /rpc', { Allow: 'POST' });
    const auth = this.authenticate(req);
    if (auth !== 'ok') {
      this.log.warn({ http_status: 401, peer: peerOf(req), reason: auth }, 'management request refused: bearer token');
      return this.refuse(req, res, 401, auth === 'missing' ? 'a bearer token is required' : 'the bearer token is not valid', {
        'WWW-Authenticate': auth === 'missing' ? 'Bearer realm="xcopy-agent"' : 'Bearer realm="xcopy-agent", error="invalid_token"',
      }, false);
    }
    if (!isJsonContentType(req.headers['content-type'])) {
      return this.refuse(req, res, 415, 'Content-Type must be application/json', { 'Accept-Post': 'application/json' });
    }
    const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    if (declared !== undefined && declared > this.maxBodyBytes) return this.tooLarge(req, res);
    if (expectsContinue) res.writeContinue();
    const body = await readBody(req, this.maxBodyBytes);
    if (body === 'too-large') return this.tooLarge(req, res);
    if (body === 'aborted') return;

    const msg = parseMessage(body);
    if (msg.kind === 'invalid') {
      this.log.info({ rpc_code: msg.response.error.code }, 'management request not understood');
      return this.sendResponses(res, 400, [msg.response], false);
    }
    if (msg.kind === 'single') {
      const r = await this.execute(msg.call);
      if (r === undefined) return send(res, 204);
      return this.sendResponses(res, msg.call.kind === 'invalid' ? 400 : 200, [r], false);
    }
    const out: JsonRpcResponse[] = [];
    for (const call of msg.calls) {
      const r = await this.execute(call);
      if (r !== undefined) out.push(r);
    }
    // Section 6: a batch of notifications only gets nothing back.
    if (out.length === 0) return send(res, 204);
    return this.sendResponses(res, 200, out, true);
  }

  /** Runs one call; the response, or undefined for a notification. */
  private async execute(call: ParsedCall): Promise<JsonRpcResponse | undefined> {
    if (call.kind === 'invalid') {
      this.log.info({ rpc_code: call.response.error.code }, 'management request not understood');
      return call.response;
    }
    const id = call.kind === 'call' ? call.id : null;
    const notification = call.kind === 'notification';
    const handler = this.methods.get(call.method);
    if (!handler) {
      this.log.info({ rpc_method: call.method.slice(0, 100), ok: false, rpc_code: RpcErrorCode.METHOD_NOT_FOUND }, 'management call');
      if (notification) return undefined;
      return errorResponse(id, { code: RpcErrorCode.METHOD_NOT_FOUND, message: `method not found: ${call.method.slice(0, 100)}` });
    }
    const log = this.log.child({ rpc_method: call.method });
    const t0 = performance.now();
    let response: JsonRpcResponse;
    try {
      const result = await handler(call.params, { log, method: call.method });
      log.info({ duration_ms: round(performance.now() - t0), ok: true }, 'management call');
      response = resultResponse(id, result);
    } catch (err) {
      const { error, internal } = errorObjectOf(err);
      const fields = { duration_ms: round(performance.now() - t0), ok: false, rpc_code: error.code, code: codeOf(error.data) };
      if (internal) log.error({ ...fields, err }, 'management call failed with an internal error');
      else log.info(fields, 'management call');
      response = errorResponse(id, error);
    }
    return notification ? undefined : response;
  }

  private sendResponses(res: http.ServerResponse, status: number, responses: JsonRpcResponse[], batch: boolean): void {
    const texts = responses.map((r) => {
      const { text, failure } = encodeResponse(r);
      if (failure !== undefined) this.log.error({ err: failure, rpc_id: r.id }, 'management call result cannot be encoded as JSON');
      return text;
    });
    send(res, status, batch ? `[${texts.join(',')}]` : texts[0]);
  }

  private authenticate(req: http.IncomingMessage): 'ok' | 'missing' | 'invalid' {
    const header = req.headers.authorization;
    if (header === undefined) return 'missing';
    // RFC 7235 2.1: the scheme is case-insensitive; RFC 6750 2.1: one b64token follows.
    const m = /^Bearer +([^\s]+) *$/i.exec(header);
    if (!m) return 'missing';
    return tokenMatches(this.token, m[1]) ? 'ok' : 'invalid';
  }

  /**
   * An HTTP-level refusal. Node drains an unread body after the response to keep the
   * connection; it may do so for a body of acceptable declared size, any other connection is
   * closed once the response is out (Connection: close) so no more of it is read.
   */
  private refuse(req: http.IncomingMessage, res: http.ServerResponse, status: number, error: string, headers: Record<string, string> = {}, log = true): void {
    if (log) this.log.info({ http_status: status, http_method: req.method }, `management request refused: ${error}`);
    const length = req.headers['content-length'];
    // A client waiting for "100 Continue" will not send its body: nothing to drain then.
    const drainable =
      req.headers.expect === undefined && req.headers['transfer-encoding'] === undefined && (length === undefined || Number(length) <= this.maxBodyBytes);
    sendJson(res, status, { error }, drainable ? headers : { ...headers, Connection: 'close' });
  }

  private tooLarge(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.pause();
    this.refuse(req, res, 413, `request body exceeds ${this.maxBodyBytes} bytes`, { Connection: 'close' });
  }
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | 'too-large' | 'aborted'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > limit) {
        cleanup();
        resolve('too-large');
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, total));
    };
    const onClose = () => {
      cleanup();
      resolve('aborted');
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onClose);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    req.on('error', onClose);
  });
}

function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const [type, ...params] = value.split(';').map((s) => s.trim().toLowerCase());
  if (type !== 'application/json') return false;
  // JSON is UTF-8 (RFC 8259 8.1); a charset, if given, must say so.
  return params.every((p) => !p.startsWith('charset=') || /^charset="?utf-8"?$/.test(p));
}

function peerOf(req: http.IncomingMessage): string {
  const s = req.socket;
  return s.remoteAddress ? `${s.remoteAddress}:${s.remotePort}` : 'unix';
}

function codeOf(data: unknown): string | undefined {
  if (typeof data === 'object' && data !== null && typeof (data as { code?: unknown }).code === 'string') return (data as { code: string }).code;
  return undefined;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  send(res, status, JSON.stringify(body), headers);
}

function send(res: http.ServerResponse, status: number, body?: string, headers: Record<string, string> = {}): void {
  const h: Record<string, string | number> = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', ...headers };
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    h['Content-Length'] = Buffer.byteLength(body);
  }
  res.writeHead(status, h);
  res.end(body);
}

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { ArgumentError } from '../../../src/errors';
import { invalidParams } from '../../../src/mgmt/jsonrpc';
import { ManagementServer, parseListenAddress, type MethodHandler } from '../../../src/mgmt/server';
import { generateToken } from '../../../src/mgmt/token';
import { removeDir, tempDir } from '../../helpers/tmp';

let dir: string;
beforeAll(() => {
  dir = tempDir('mgmt-server');
});
afterAll(() => removeDir(dir));

const TOKEN = generateToken();

/** A logger whose records the test can read. */
function captureLog(): { log: pino.Logger; records: Record<string, unknown>[]; text: () => string } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l.length > 0));
      cb();
    },
  });
  const log = pino({ level: 'info' }, stream);
  return {
    log,
    get records() {
      return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    text: () => lines.join('\n'),
  };
}

const notified: unknown[] = [];
const methods: Record<string, MethodHandler> = {
  echo: (params) => params,
  add: (params) => {
    if (!Array.isArray(params) || params.length !== 2 || !params.every((n) => typeof n === 'number')) throw invalidParams('params: expected [a, b], two numbers');
    return params[0] + params[1];
  },
  capacity: () => ({ blocks: 2n ** 53n + 1n, block_size: 512 }),
  snapshot_delete: () => {
    throw Object.assign(new Error('snapshot s1 not found (list them with snapshot_list)'), { code: 'ERR_SNAPSHOT_NOT_FOUND', details: { snapshot: 's1' } });
  },
  buggy: () => {
    throw new TypeError('secret detail: /var/lib/xcopy-agent/keys');
  },
  remember: async (params) => {
    notified.push(params);
  },
};

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: () => any;
}

/** One HTTP request to a server URL (http://... or unix:/...). */
function request(
  url: string,
  opts: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Reply> {
  const target = url.startsWith('unix:') ? { socketPath: url.slice(5) } : { host: new URL(url).hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(new URL(url).port) };
  return new Promise((resolve, reject) => {
    const req = http.request({ ...target, agent: false, method: opts.method ?? 'POST', path: opts.path ?? '/rpc', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const auth = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' };

function rpc(url: string, body: unknown, headers: Record<string, string> = auth): Promise<Reply> {
  return request(url, { headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

/** Writes raw bytes on a new connection; resolves with all bytes read until the server closes it. */
function raw(url: string, write: (s: net.Socket) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = url.startsWith('unix:') ? net.connect({ path: url.slice(5) }) : net.connect({ host: new URL(url).hostname, port: Number(new URL(url).port) });
    let got = '';
    s.on('connect', () => write(s));
    s.on('data', (d) => {
      got += d.toString('latin1');
    });
    s.on('end', () => resolve(got));
    s.on('error', (err) => (got ? resolve(got) : reject(err)));
  });
}

describe.each([
  ['loopback TCP', () => '127.0.0.1:0'],
  ['a Unix socket', () => `unix:${path.join(dir, 'mgmt.sock')}`],
])('management server over %s', (_kind, listen) => {
  let server: ManagementServer;
  let logs: ReturnType<typeof captureLog>;
  let url: string;

  beforeAll(async () => {
    logs = captureLog();
    server = await ManagementServer.start({ listen: listen(), token: TOKEN, methods, log: logs.log, maxBodyBytes: 4096 });
    url = server.url;
  });
  afterAll(() => server.stop());

  test('address and url describe where it listens', () => {
    if (server.address.kind === 'tcp') {
      expect(server.address.host).toBe('127.0.0.1');
      expect(server.address.port).toBeGreaterThan(0);
      expect(url).toBe(`http://127.0.0.1:${server.address.port}`);
    } else {
      expect(url).toBe(`unix:${path.join(dir, 'mgmt.sock')}`);
      const st = fs.statSync(server.address.path);
      expect(st.isSocket()).toBe(true);
      expect(st.mode & 0o777).toBe(0o600);
    }
  });

  test('a method call works; params arrive as sent', async () => {
    const r = await rpc(url, { jsonrpc: '2.0', id: 1, method: 'add', params: [2, 40] });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.json()).toEqual({ jsonrpc: '2.0', id: 1, result: 42 });
    const e = await rpc(url, { jsonrpc: '2.0', id: 'e', method: 'echo', params: { name: 'lun0', nested: [1, { a: null }] } });
    expect(e.json()).toEqual({ jsonrpc: '2.0', id: 'e', result: { name: 'lun0', nested: [1, { a: null }] } });
  });

  test('bigints in results are sent as decimal strings', async () => {
    const r = await rpc(url, { jsonrpc: '2.0', id: 2, method: 'capacity' });
    expect(r.json().result).toEqual({ blocks: '9007199254740993', block_size: 512 });
  });

  test('no token → 401 with WWW-Authenticate: Bearer and a JSON error', async () => {
    const r = await rpc(url, { jsonrpc: '2.0', id: 1, method: 'echo' }, { 'Content-Type': 'application/json' });
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toMatch(/^Bearer\b/);
    expect(r.json()).toEqual({ error: 'a bearer token is required' });
    const basic = await rpc(url, { jsonrpc: '2.0', id: 1, method: 'echo' }, { 'Content-Type': 'application/json', Authorization: `Basic ${TOKEN}` });
    expect(basic.status).toBe(401);
  });

  test('a wrong token → 401 invalid_token', async () => {
    for (const wrong of [generateToken(), TOKEN.slice(0, -1), `${TOKEN}x`]) {
      const r = await rpc(url, { jsonrpc: '2.0', id: 1, method: 'echo' }, { 'Content-Type': 'application/json', Authorization: `Bearer ${wrong}` });
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toMatch(/^Bearer .*error="invalid_token"/);
      expect(r.json()).toEqual({ error: 'the bearer token is not valid' });
    }
  });

  test('the scheme is case-insensitive (RFC 7235 2.1)', async () => {
    const r = await rpc(url, { jsonrpc: '2.0', id: 1, method: 'add', params: [1, 1] }, { 'Content-Type': 'application/json', Authorization: `bearer ${TOKEN}` });
    expect(r.json().result).toBe(2);
  });

  test('another path → 404, GET /rpc → 405 with Allow: POST', async () => {
    const nf = await request(url, { path: '/rpc/x?token=abc', headers: auth, body: '{}' });
    expect(nf.status).toBe(404);
    expect(nf.json().error).toMatch(/^no such path \/rpc\/x: the API is POST \/rpc$/);
    const get = await request(url, { method: 'GET', headers: auth });
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect(get.json()).toEqual({ error: 'use POST for /rpc' });
  });

  test('GET /health answers without a token and says nothing more than ok', async () => {
    const r = await request(url, { method: 'GET', path: '/health' });
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ ok: true });
  });

  test('a content type other than JSON → 415', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1']) {
      const r = await rpc(url, { jsonrpc: '2.0', id: 1, method: 'echo' }, { Authorization: `Bearer ${TOKEN}`, 'Content-Type': type });
      expect(r.status).toBe(415);
      expect(r.json()).toEqual({ error: 'Content-Type must be application/json' });
    }
    const ok = await rpc(url, { jsonrpc: '2.0', id: 1, method: 'add', params: [1, 2] }, { ...auth, 'Content-Type': 'Application/JSON; charset=UTF-8' });
    expect(ok.json().result).toBe(3);
  });

  test('a body over maxBodyBytes → 413 at once when declared, and the connection is closed', async () => {
    const head =
      `POST /rpc HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\n` + `Content-Length: ${10 * 1024 * 1024}\r\n\r\n`;
    // Only the headers are sent: the answer cannot depend on reading the body.
    const got = await raw(url, (s) => s.write(head));
    expect(got).toMatch(/^HTTP\/1\.1 413 /);
    expect(got).toMatch(/\r\nConnection: close\r\n/i);
    expect(got).toContain('{"error":"request body exceeds 4096 bytes"}');
  });

  test('a chunked body growing over maxBodyBytes → 413, then the server closes the connection', async () => {
    const head = `POST /rpc HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const chunk = (n: number) => `${n.toString(16)}\r\n${' '.repeat(n)}\r\n`;
    // 5000 bytes of a body never terminated: the answer and the close come without it.
    const got = await raw(url, (s) => s.write(head + chunk(1000).repeat(5)));
    expect(got).toMatch(/^HTTP\/1\.1 413 /);
    expect(got).toMatch(/\r\nConnection: close\r\n/i);
  });

  test('Expect: 100-continue gets 100 only when the checks pass', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'add', params: [3, 4] });
    const head = (token: string) =>
      `POST /rpc HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`;
    let sent = false;
    const ok = await new Promise<string>((resolve, reject) => {
      const s = url.startsWith('unix:') ? net.connect({ path: url.slice(5) }) : net.connect({ host: '127.0.0.1', port: Number(new URL(url).port) });
      let got = '';
      s.on('connect', () => s.write(head(TOKEN)));
      s.on('data', (d) => {
        got += d.toString();
        if (!sent && got.includes('100 Continue\r\n\r\n')) {
          sent = true;
          s.write(body);
        }
      });
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });
    expect(ok).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    expect(ok).toContain('{"jsonrpc":"2.0","id":7,"result":7}');
    const refused = await raw(url, (s) => s.write(head(generateToken())));
    expect(refused).toMatch(/^HTTP\/1\.1 401 /);
  });

  test('a body that is not JSON → HTTP 400 with a -32700 parse error, id null', async () => {
    const r = await rpc(url, '{"jsonrpc":"2.0","method":"echo",');
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } });
  });

  test('an invalid request → HTTP 400 with -32600', async () => {
    const r = await rpc(url, { jsonrpc: '2.0', id: 5, method: 'echo', param: [1] });
    expect(r.status).toBe(400);
    expect(r.json()).toEqual({ jsonrpc: '2.0', id: 5, error: { code: -32600, message: 'invalid request: unknown member "param"' } });
  });

  test('an unknown method → -32601, also for names on Object.prototype', async () => {
    for (const method of ['lun_lst', 'toString', '__proto__', 'constructor', 'hasOwnProperty']) {
      const r = await rpc(url, { jsonrpc: '2.0', id: 3, method });
      expect(r.status).toBe(200);
      expect(r.json()).toEqual({ jsonrpc: '2.0', id: 3, error: { code: -32601, message: `method not found: ${method}` } });
    }
  });

  test('invalid params thrown by a handler → -32602', async () => {
    const r = await rpc(url, { jsonrpc: '2.0', id: 4, method: 'add', params: ['1', 2] });
    expect(r.json()).toEqual({ jsonrpc: '2.0', id: 4, error: { code: -32602, message: 'params: expected [a, b], two numbers' } });
  });

  test('an application error → -32000 with its message and data.code', async () => {
    const r = await rpc(url, { jsonrpc: '2.0', id: 8, method: 'snapshot_delete', params: { name: 's1' } });
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({
      jsonrpc: '2.0',
      id: 8,
      error: { code: -32000, message: 'snapshot s1 not found (list them with snapshot_list)', data: { code: 'ERR_SNAPSHOT_NOT_FOUND', snapshot: 's1' } },
    });
  });

  test('an internal error says only "internal error"; the log has the stack', async () => {
    const r = await rpc(url, { jsonrpc: '2.0', id: 9, method: 'buggy' });
    expect(r.json()).toEqual({ jsonrpc: '2.0', id: 9, error: { code: -32603, message: 'internal error' } });
    expect(r.text).not.toMatch(/secret|TypeError|keys/);
    const rec = logs.records.find((l) => l.rpc_method === 'buggy' && l.level === 50) as { err: { stack: string }; rpc_code: number } | undefined;
    expect(rec?.rpc_code).toBe(-32603);
    expect(rec?.err.stack).toMatch(/^TypeError: secret detail: \/var\/lib\/xcopy-agent\/keys\n\s+at /);
  });

  test('a batch is answered in order without the notifications; only notifications → 204', async () => {
    notified.length = 0;
    const r = await rpc(url, [
      { jsonrpc: '2.0', id: 1, method: 'add', params: [1, 2] },
      { jsonrpc: '2.0', method: 'remember', params: ['a'] },
      { foo: 'boo' },
      { jsonrpc: '2.0', id: 2, method: 'nope' },
      { jsonrpc: '2.0', id: 3, method: 'snapshot_delete' },
    ]);
    expect(r.status).toBe(200);
    expect(r.json()).toEqual([
      { jsonrpc: '2.0', id: 1, result: 3 },
      { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'invalid request: jsonrpc must be "2.0", got nothing' } },
      { jsonrpc: '2.0', id: 2, error: { code: -32601, message: 'method not found: nope' } },
      { jsonrpc: '2.0', id: 3, error: expect.objectContaining({ code: -32000 }) },
    ]);
    const n = await rpc(url, [
      { jsonrpc: '2.0', method: 'remember', params: ['b'] },
      { jsonrpc: '2.0', method: 'buggy' },
    ]);
    expect(n.status).toBe(204);
    expect(n.text).toBe('');
    const single = await rpc(url, { jsonrpc: '2.0', method: 'remember', params: ['c'] });
    expect(single.status).toBe(204);
    expect(notified).toEqual([['a'], ['b'], ['c']]);
  });

  test('each call is logged at info with method, duration and outcome; never the token', async () => {
    await rpc(url, { jsonrpc: '2.0', id: 1, method: 'add', params: [5, 5] });
    const calls = logs.records.filter((l) => l.msg === 'management call');
    expect(calls).toContainEqual(expect.objectContaining({ level: 30, rpc_method: 'add', ok: true, duration_ms: expect.any(Number) }));
    expect(calls).toContainEqual(expect.objectContaining({ rpc_method: 'snapshot_delete', ok: false, rpc_code: -32000, code: 'ERR_SNAPSHOT_NOT_FOUND' }));
    // Nor any prefix of it (the wrong tokens sent above share one).
    expect(logs.text()).not.toContain(TOKEN.slice(0, 20));
    expect(logs.text()).not.toMatch(/authorization/i);
    // params are not logged either
    expect(logs.text()).not.toContain('lun0');
  });
});

describe('listen addresses: loopback or a Unix socket only', () => {
  test.each([
    ['127.0.0.1:0', { kind: 'tcp', host: '127.0.0.1', port: 0 }],
    ['127.1.2.3:3261', { kind: 'tcp', host: '127.1.2.3', port: 3261 }],
    ['localhost:3261', { kind: 'tcp', host: '127.0.0.1', port: 3261 }],
    ['LocalHost:1', { kind: 'tcp', host: '127.0.0.1', port: 1 }],
    ['[::1]:3261', { kind: 'tcp', host: '::1', port: 3261 }],
    ['[0:0:0:0:0:0:0:1]:0', { kind: 'tcp', host: '0:0:0:0:0:0:0:1', port: 0 }],
    ['unix:/run/xcopy-agent/mgmt.sock', { kind: 'unix', path: '/run/xcopy-agent/mgmt.sock' }],
    // the client's URL form, so one XCOPY_AGENT_MGMT serves `target` and `snapshot`
    ['http://127.0.0.1:3261', { kind: 'tcp', host: '127.0.0.1', port: 3261 }],
    ['http://[::1]:3261/', { kind: 'tcp', host: '::1', port: 3261 }],
    ['HTTP://localhost:3261/rpc', { kind: 'tcp', host: '127.0.0.1', port: 3261 }],
  ])('%s is accepted', (listen, expected) => {
    expect(parseListenAddress(listen)).toEqual(expected);
  });

  test.each([
    ['0.0.0.0:0', /0\.0\.0\.0 is not a loopback address; the management API listens only on loopback/],
    ['8.8.8.8:1', /8\.8\.8\.8 is not a loopback address/],
    ['192.168.1.10:3261', /is not a loopback address/],
    ['[::]:0', /:: is not a loopback address/],
    ['[::ffff:8.8.8.8]:1', /is not a loopback address/],
    ['example.com:80', /example\.com is not an IP address or localhost/],
    ['::1:3261', /write IPv6 addresses in brackets/],
    ['127.0.0.1', /must be HOST:PORT/],
    ['127.0.0.1:65536', /port 65536 is out of range/],
    ['[127.0.0.1]:1', /in brackets is not an IPv6 address/],
    ['unix:', /unix: needs a path/],
    [`unix:/${'x'.repeat(120)}`, /longer than 107 bytes/],
    ['', /is empty/],
    ['http://10.0.0.1:3261', /10\.0\.0\.1 is not a loopback address/],
    ['https://127.0.0.1:3261', /must be HOST:PORT/],
    ['http://127.0.0.1:3261/x', /must be HOST:PORT/],
  ])('%j is refused', (listen, message) => {
    expect(() => parseListenAddress(listen)).toThrow(ArgumentError);
    expect(() => parseListenAddress(listen)).toThrow(message);
  });

  test.each(['0.0.0.0:0', '8.8.8.8:1'])('start refuses %s before listening', async (listen) => {
    await expect(ManagementServer.start({ listen, token: TOKEN, methods })).rejects.toThrow(ArgumentError);
  });

  test('[::1]:0 listens on IPv6 loopback', async () => {
    const s = await ManagementServer.start({ listen: '[::1]:0', token: TOKEN, methods });
    try {
      expect(s.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
      const r = await rpc(s.url, { jsonrpc: '2.0', id: 1, method: 'add', params: [1, 2] });
      expect(r.json().result).toBe(3);
    } finally {
      await s.stop();
    }
  });
});

describe('server options', () => {
  test.each([
    ['no token', { listen: '127.0.0.1:0', methods }, /needs a token: give token or tokenFile/],
    ['both token and tokenFile', { listen: '127.0.0.1:0', methods, token: TOKEN, tokenFile: '/x' }, /either token or tokenFile, not both/],
    ['a short token', { listen: '127.0.0.1:0', methods, token: 'short' }, /at least 16 characters/],
    ['a reserved method name', { listen: '127.0.0.1:0', token: TOKEN, methods: { 'rpc.discover': () => 1 } }, /reserved by JSON-RPC 2.0/],
    ['maxBodyBytes 0', { listen: '127.0.0.1:0', token: TOKEN, methods, maxBodyBytes: 0 }, /maxBodyBytes: must be a positive integer/],
  ])('%s is refused', async (_n, opts, message) => {
    await expect(ManagementServer.start(opts)).rejects.toThrow(message);
  });

  test('tokenFile: the token is created on first start and the same one is used after', async () => {
    const tokenFile = path.join(dir, 'mgmt.token');
    const s1 = await ManagementServer.start({ listen: '127.0.0.1:0', tokenFile, methods });
    const token = fs.readFileSync(tokenFile, 'utf8').trim();
    expect(fs.statSync(tokenFile).mode & 0o777).toBe(0o600);
    await s1.stop();
    const s2 = await ManagementServer.start({ listen: '127.0.0.1:0', tokenFile, methods });
    try {
      const r = await rpc(s2.url, { jsonrpc: '2.0', id: 1, method: 'add', params: [1, 2] }, { ...auth, Authorization: `Bearer ${token}` });
      expect(r.json().result).toBe(3);
    } finally {
      await s2.stop();
    }
  });
});

describe('Unix socket files', () => {
  test('stop() removes the socket file', async () => {
    const p = path.join(dir, 'stop.sock');
    const s = await ManagementServer.start({ listen: `unix:${p}`, token: TOKEN, methods });
    expect(fs.existsSync(p)).toBe(true);
    await s.stop();
    await s.stop(); // idempotent
    expect(fs.existsSync(p)).toBe(false);
  });

  test('a stale socket left by a killed process is replaced', async () => {
    const p = path.join(dir, 'stale.sock');
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(p)}, () => console.log('ready'))`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child.on('error', reject);
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(fs.lstatSync(p).isSocket()).toBe(true); // left behind: nobody unlinked it

    const s = await ManagementServer.start({ listen: `unix:${p}`, token: TOKEN, methods });
    try {
      const r = await rpc(s.url, { jsonrpc: '2.0', id: 1, method: 'add', params: [20, 22] });
      expect(r.json().result).toBe(42);
    } finally {
      await s.stop();
    }
  });

  test('a live socket is an error and is left alone', async () => {
    const p = path.join(dir, 'live.sock');
    const first = await ManagementServer.start({ listen: `unix:${p}`, token: TOKEN, methods });
    try {
      await expect(ManagementServer.start({ listen: `unix:${p}`, token: TOKEN, methods })).rejects.toThrow(`${p} is in use by a running process`);
      const r = await rpc(first.url, { jsonrpc: '2.0', id: 1, method: 'add', params: [1, 1] });
      expect(r.json().result).toBe(2);
    } finally {
      await first.stop();
    }
  });

  test('a regular file at the path is refused, never deleted', async () => {
    const p = path.join(dir, 'not-a-socket');
    fs.writeFileSync(p, 'precious');
    await expect(ManagementServer.start({ listen: `unix:${p}`, token: TOKEN, methods })).rejects.toThrow(`${p} exists and is not a socket`);
    expect(fs.readFileSync(p, 'utf8')).toBe('precious');
  });

  test('a TCP port already in use is reported as such', async () => {
    const s = await ManagementServer.start({ listen: '127.0.0.1:0', token: TOKEN, methods });
    try {
      const port = (s.address as { port: number }).port;
      await expect(ManagementServer.start({ listen: `127.0.0.1:${port}`, token: TOKEN, methods })).rejects.toThrow(/is already in use/);
    } finally {
      await s.stop();
    }
  });
});

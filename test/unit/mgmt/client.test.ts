import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { ArgumentError } from '../../../src/errors';
import { ManagementClient, ManagementError, parseManagementUrl } from '../../../src/mgmt/client';
import { invalidParams, RpcError } from '../../../src/mgmt/jsonrpc';
import { ManagementServer, type MethodHandler } from '../../../src/mgmt/server';
import { generateToken } from '../../../src/mgmt/token';
import { removeDir, tempDir } from '../../helpers/tmp';

let dir: string;
beforeAll(() => {
  dir = tempDir('mgmt-client');
});
afterAll(() => removeDir(dir));

const TOKEN = generateToken();

/** A promise the test settles itself (a method that stays busy until released). */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}
let slow = gate();

const methods: Record<string, MethodHandler> = {
  lun_list: () => [{ lun: 0, name: 'disk1', blocks: 2n ** 60n }],
  lun_get: (params) => {
    const p = params as { lun?: unknown };
    if (typeof p?.lun !== 'number') throw invalidParams('params.lun: must be a number');
    return { lun: p.lun };
  },
  snapshot_delete: () => {
    throw Object.assign(new Error('snapshot s1 not found'), { code: 'ERR_SNAPSHOT_NOT_FOUND', details: { snapshot: 's1' } });
  },
  busy: () => {
    throw new RpcError(-32001, 'target is busy', { retry_after_ms: 50 });
  },
  buggy: () => {
    throw new Error('secret detail');
  },
  slow: async () => {
    await slow.wait;
    return 'late';
  },
};

/** The ManagementError `p` rejects with. */
async function errorOf(p: Promise<unknown>): Promise<ManagementError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ManagementError) return err;
    throw err;
  }
  throw new Error('expected a ManagementError');
}

describe.each([
  ['loopback TCP', () => '127.0.0.1:0'],
  ['a Unix socket', () => `unix:${path.join(dir, 'c.sock')}`],
])('client over %s', (_kind, listen) => {
  let server: ManagementServer;
  let client: ManagementClient;

  beforeAll(async () => {
    server = await ManagementServer.start({ listen: listen(), token: TOKEN, methods, maxBodyBytes: 1024 });
    client = new ManagementClient({ url: server.url, token: TOKEN });
  });
  afterAll(() => server.stop());

  test('call resolves with the result (bigints as decimal strings)', async () => {
    expect(await client.call('lun_list')).toEqual([{ lun: 0, name: 'disk1', blocks: '1152921504606846976' }]);
    // Params may be typed with an interface (no index signature needed).
    interface LunGet {
      lun: number;
    }
    const params: LunGet = { lun: 3 };
    expect(await client.call<LunGet>('lun_get', params)).toEqual({ lun: 3 });
  });

  test('a wrong token → ERR_MGMT_UNAUTHORIZED', async () => {
    const err = await errorOf(new ManagementClient({ url: server.url, token: generateToken() }).call('lun_list'));
    expect(err).toMatchObject({ code: 'ERR_MGMT_UNAUTHORIZED', httpStatus: 401 });
    expect(err.message).toMatch(/refused the token \(HTTP 401\): check the token/);
  });

  test('an application error carries the remote registry code and data', async () => {
    const err = await errorOf(client.call('snapshot_delete', { name: 's1' }));
    expect(err).toMatchObject({ code: 'ERR_SNAPSHOT_NOT_FOUND', rpcCode: -32000, message: 'snapshot s1 not found', data: { code: 'ERR_SNAPSHOT_NOT_FOUND', snapshot: 's1' } });
  });

  test('JSON-RPC errors without a registry code → ERR_MGMT_RPC with rpcCode', async () => {
    expect(await errorOf(client.call('lun_lst'))).toMatchObject({ code: 'ERR_MGMT_RPC', rpcCode: -32601, message: 'method not found: lun_lst (JSON-RPC error -32601)' });
    expect(await errorOf(client.call('lun_get', { lun: 'x' }))).toMatchObject({ code: 'ERR_MGMT_RPC', rpcCode: -32602 });
    expect(await errorOf(client.call('busy'))).toMatchObject({ code: 'ERR_MGMT_RPC', rpcCode: -32001, data: { retry_after_ms: 50 } });
    const internal = await errorOf(client.call('buggy'));
    expect(internal).toMatchObject({ code: 'ERR_MGMT_RPC', rpcCode: -32603, message: 'internal error (JSON-RPC error -32603)' });
    expect(internal.data).toBeUndefined();
  });

  test('an HTTP refusal that is not JSON-RPC → ERR_MGMT_PROTOCOL with the status', async () => {
    const err = await errorOf(client.call('lun_get', { lun: 1, pad: 'x'.repeat(2000) }));
    expect(err).toMatchObject({ code: 'ERR_MGMT_PROTOCOL', httpStatus: 413 });
    expect(err.message).toMatch(/answered HTTP 413: request body exceeds 1024 bytes$/);
  });

  test('no answer within timeoutMs → ERR_MGMT_TIMEOUT', async () => {
    slow = gate();
    const impatient = new ManagementClient({ url: server.url, token: TOKEN, timeoutMs: 100 });
    const err = await errorOf(impatient.call('slow'));
    expect(err).toMatchObject({ code: 'ERR_MGMT_TIMEOUT' });
    expect(err.message).toMatch(/did not answer within 100 ms/);
    slow.open();
    expect(await client.call('slow')).toBe('late');
  });
});

describe('client failures without a working server', () => {
  test('connection refused on TCP → ERR_MGMT_UNREACHABLE', async () => {
    // A port just freed: nothing listens there now.
    const s = await ManagementServer.start({ listen: '127.0.0.1:0', token: TOKEN, methods });
    const url = s.url;
    await s.stop();
    const err = await errorOf(new ManagementClient({ url, token: TOKEN }).call('lun_list'));
    expect(err).toMatchObject({ code: 'ERR_MGMT_UNREACHABLE' });
    expect(err.message).toBe(`cannot reach the management API at ${url}: connection refused (is the target running?)`);
  });

  test('a missing Unix socket → ERR_MGMT_UNREACHABLE', async () => {
    const url = `unix:${path.join(dir, 'nobody.sock')}`;
    const err = await errorOf(new ManagementClient({ url, token: TOKEN }).call('lun_list'));
    expect(err).toMatchObject({ code: 'ERR_MGMT_UNREACHABLE' });
    expect(err.message).toMatch(/no such socket/);
  });

  test('a server that does not speak JSON-RPC → ERR_MGMT_PROTOCOL', async () => {
    const answers = [
      { status: 200, body: '<html>hello</html>' },
      { status: 200, body: '{"jsonrpc":"2.0","id":999,"result":1}' },
      { status: 500, body: 'oops' },
    ];
    let next = 0;
    const fake = http.createServer((_req, res) => {
      const a = answers[next++];
      res.writeHead(a.status, { 'Content-Type': 'text/html' });
      res.end(a.body);
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    try {
      const client = new ManagementClient({ url: `http://127.0.0.1:${(fake.address() as net.AddressInfo).port}`, token: TOKEN });
      expect(await errorOf(client.call('x'))).toMatchObject({ code: 'ERR_MGMT_PROTOCOL', message: expect.stringMatching(/malformed JSON-RPC response: not JSON/) });
      expect(await errorOf(client.call('x'))).toMatchObject({ code: 'ERR_MGMT_PROTOCOL', message: expect.stringMatching(/answered id 999 to request 2/) });
      expect(await errorOf(client.call('x'))).toMatchObject({ code: 'ERR_MGMT_PROTOCOL', httpStatus: 500, message: expect.stringMatching(/answered HTTP 500: "oops"/) });
    } finally {
      await new Promise((r) => fake.close(r));
    }
  });
});

describe('client options', () => {
  test.each([
    ['http://127.0.0.1:3261', { host: '127.0.0.1', port: 3261 }],
    ['http://127.0.0.1:3261/rpc', { host: '127.0.0.1', port: 3261 }],
    ['http://[::1]:3261', { host: '::1', port: 3261 }],
    ['unix:/run/xcopy-agent/mgmt.sock', { socketPath: '/run/xcopy-agent/mgmt.sock' }],
  ])('%s is accepted', (url, endpoint) => {
    expect(parseManagementUrl(url)).toEqual(endpoint);
  });

  test.each([
    ['https://127.0.0.1:3261', /scheme must be http: or unix:/],
    ['http://127.0.0.1', /needs a port/],
    ['http://u:p@127.0.0.1:1', /must not hold credentials/],
    ['http://127.0.0.1:1/api', /path must be empty or \/rpc/],
    ['unix:relative.sock', /must be unix:\/absolute\/path/],
    ['127.0.0.1:3261', /scheme must be http: or unix:|must be http:\/\/HOST:PORT/],
  ])('%s is refused', (url, message) => {
    expect(() => parseManagementUrl(url)).toThrow(ArgumentError);
    expect(() => parseManagementUrl(url)).toThrow(message);
  });

  test('a bad token, timeout or method is refused before any request', async () => {
    expect(() => new ManagementClient({ url: 'http://127.0.0.1:1', token: 'short' })).toThrow(/at least 16 characters/);
    expect(() => new ManagementClient({ url: 'http://127.0.0.1:1', token: `${TOKEN}\n` })).toThrow(/RFC 6750/);
    expect(() => new ManagementClient({ url: 'http://127.0.0.1:1', token: TOKEN, timeoutMs: 0 })).toThrow(/timeoutMs/);
    const c = new ManagementClient({ url: 'http://127.0.0.1:1', token: TOKEN });
    await expect(c.call('')).rejects.toThrow(/method: must be a non-empty string/);
    await expect(c.call('m', 'x' as never)).rejects.toThrow(/params: must be an array or an object/);
  });
});

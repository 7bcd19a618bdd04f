import fc from 'fast-check';
import { AgentError, ArgumentError } from '../../../src/errors';
import {
  encodeResponse,
  errorObjectOf,
  invalidParams,
  parseMessage,
  parseRequest,
  parseResponse,
  resultResponse,
  RpcError,
  RpcErrorCode,
  toJson,
  type ParsedCall,
} from '../../../src/mgmt/jsonrpc';

/** The error code of an invalid call, or fails. */
function invalidCode(call: ParsedCall): number {
  if (call.kind !== 'invalid') throw new Error(`expected an invalid call, got ${call.kind}`);
  return call.response.error.code;
}

describe('JSON-RPC 2.0 requests (section 4)', () => {
  test('a call with params by position, by name, and without params', () => {
    expect(parseMessage('{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}')).toEqual({
      kind: 'single',
      call: { kind: 'call', id: 1, method: 'subtract', params: [42, 23] },
    });
    expect(parseMessage(Buffer.from('{"jsonrpc":"2.0","method":"lun_create","params":{"name":"a","size":"1G"},"id":"x"}'))).toEqual({
      kind: 'single',
      call: { kind: 'call', id: 'x', method: 'lun_create', params: { name: 'a', size: '1G' } },
    });
    expect(parseMessage('{"jsonrpc":"2.0","method":"lun_list","id":null}')).toEqual({
      kind: 'single',
      call: { kind: 'call', id: null, method: 'lun_list', params: undefined },
    });
  });

  test('a request without id is a notification', () => {
    expect(parseRequest({ jsonrpc: '2.0', method: 'update', params: [1, 2] })).toEqual({ kind: 'notification', method: 'update', params: [1, 2] });
  });

  test('a UTF-8 byte order mark is accepted, invalid UTF-8 is a parse error', () => {
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"jsonrpc":"2.0","method":"m","id":1}')]);
    expect(parseMessage(bom)).toMatchObject({ kind: 'single', call: { kind: 'call', method: 'm' } });
    const bad = Buffer.from([0x7b, 0xff, 0x7d]);
    expect(parseMessage(bad)).toMatchObject({ kind: 'invalid', response: { id: null, error: { code: RpcErrorCode.PARSE_ERROR } } });
  });

  test('text that is not JSON is a parse error (-32700) with id null', () => {
    const m = parseMessage('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]');
    expect(m).toMatchObject({ kind: 'invalid', response: { jsonrpc: '2.0', id: null, error: { code: -32700 } } });
    expect(parseMessage('')).toMatchObject({ kind: 'invalid', response: { error: { code: -32700 } } });
  });

  test.each([
    ['not an object', 1, null],
    ['a string', '"x"', null],
    ['null', null, null],
    ['method not a string', { jsonrpc: '2.0', method: 1, params: 'bar' }, null],
    ['method empty', { jsonrpc: '2.0', method: '', id: 3 }, 3],
    ['jsonrpc missing', { method: 'm', id: 4 }, 4],
    ['jsonrpc "1.0"', { jsonrpc: '1.0', method: 'm', id: 'a' }, 'a'],
    ['params a string', { jsonrpc: '2.0', method: 'm', params: 'bar', id: 5 }, 5],
    ['params null', { jsonrpc: '2.0', method: 'm', params: null, id: 6 }, 6],
    ['id an object', { jsonrpc: '2.0', method: 'm', id: {} }, null],
    ['id a boolean', { jsonrpc: '2.0', method: 'm', id: true }, null],
    ['unknown member (misspelt params)', { jsonrpc: '2.0', method: 'm', param: [1], id: 7 }, 7],
  ])('%s is an invalid request (-32600), answered with the id if it is one', (_name, value, id) => {
    const call = parseRequest(value);
    expect(invalidCode(call)).toBe(RpcErrorCode.INVALID_REQUEST);
    expect(call).toMatchObject({ response: { jsonrpc: '2.0', id } });
  });

  test('an invalid request without id is still answered (section 5)', () => {
    expect(parseRequest({ jsonrpc: '2.0', method: 1 })).toMatchObject({ kind: 'invalid', response: { id: null, error: { code: -32600 } } });
  });

  test('the message names the wrong member without echoing long values', () => {
    const call = parseRequest({ jsonrpc: '2.0', method: 'x'.repeat(10), params: 'y'.repeat(1000), id: 1 });
    expect(call).toMatchObject({ response: { error: { message: 'invalid request: params must be an array or an object, got a string of 1000 characters' } } });
  });
});

describe('JSON-RPC 2.0 batches (section 6)', () => {
  test('a batch decodes member by member: calls, notifications and invalid members', () => {
    const m = parseMessage(
      JSON.stringify([
        { jsonrpc: '2.0', method: 'sum', params: [1, 2, 4], id: '1' },
        { jsonrpc: '2.0', method: 'notify_hello', params: [7] },
        { foo: 'boo' },
        1,
        { jsonrpc: '2.0', method: 'get_data', id: '9' },
      ]),
    );
    if (m.kind !== 'batch') throw new Error(`expected a batch, got ${m.kind}`);
    expect(m.calls.map((c) => c.kind)).toEqual(['call', 'notification', 'invalid', 'invalid', 'call']);
  });

  test('an empty batch is one invalid request, not an empty array', () => {
    expect(parseMessage('[]')).toMatchObject({ kind: 'invalid', response: { id: null, error: { code: -32600, message: 'invalid request: empty batch' } } });
  });

  test('a batch of invalid members gives one error per member', () => {
    const m = parseMessage('[1,2,3]');
    if (m.kind !== 'batch') throw new Error(`expected a batch, got ${m.kind}`);
    expect(m.calls.map(invalidCode)).toEqual([-32600, -32600, -32600]);
  });
});

describe('JSON-RPC 2.0 responses and error mapping', () => {
  test('a result of undefined is sent as null (result is required)', () => {
    expect(resultResponse(1, undefined)).toEqual({ jsonrpc: '2.0', id: 1, result: null });
  });

  test('bigints are encoded as decimal strings', () => {
    expect(toJson(resultResponse(2, { lba: 2n ** 64n - 1n, blocks: [1n, 2] }))).toBe(
      '{"jsonrpc":"2.0","id":2,"result":{"lba":"18446744073709551615","blocks":["1",2]}}',
    );
  });

  test('a result that cannot be encoded becomes an internal error for the same id', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const { text, failure } = encodeResponse(resultResponse(3, cyclic));
    expect(JSON.parse(text)).toEqual({ jsonrpc: '2.0', id: 3, error: { code: -32603, message: 'internal error' } });
    expect(failure).toBeInstanceOf(TypeError);
  });

  test('RpcError maps directly', () => {
    expect(errorObjectOf(new RpcError(-32001, 'busy', { retry_after_ms: 100 }))).toEqual({
      error: { code: -32001, message: 'busy', data: { retry_after_ms: 100 } },
      internal: false,
    });
    expect(errorObjectOf(invalidParams('params.lun: must be an integer'))).toEqual({
      error: { code: -32602, message: 'params.lun: must be an integer' },
      internal: false,
    });
    expect(() => new RpcError(1.5, 'x')).toThrow(/code must be an integer/);
  });

  test('a registry error maps to -32000 with data.code and its details', () => {
    expect(errorObjectOf(new ArgumentError('size: must be a multiple of 512'))).toEqual({
      error: { code: -32000, message: 'size: must be a multiple of 512', data: { code: 'ERR_INVALID_ARG' } },
      internal: false,
    });
    const withDetails = Object.assign(new Error('snapshot s1 not found'), { code: 'ERR_SNAPSHOT_NOT_FOUND', details: { snapshot: 's1', code: 'spoofed' } });
    expect(errorObjectOf(withDetails)).toEqual({
      error: { code: -32000, message: 'snapshot s1 not found', data: { snapshot: 's1', code: 'ERR_SNAPSHOT_NOT_FOUND' } },
      internal: false,
    });
    expect(errorObjectOf(new AgentError('ERR_ISCSI_TIMEOUT', 'timed out')).error.data).toEqual({ code: 'ERR_ISCSI_TIMEOUT' });
  });

  test.each([
    ['a TypeError', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['a system error (its message names paths)', Object.assign(new Error("ENOENT: no such file or directory, open '/secret/x'"), { code: 'ENOENT', syscall: 'open' })],
    ['a thrown string', 'boom'],
    ['undefined', undefined],
  ])('%s is an internal error that says only "internal error"', (_n, err) => {
    expect(errorObjectOf(err)).toEqual({ error: { code: -32603, message: 'internal error' }, internal: true });
  });

  test('responses are validated on the client side', () => {
    expect(parseResponse('{"jsonrpc":"2.0","id":1,"result":[1]}')).toEqual({ kind: 'result', id: 1, result: [1] });
    expect(parseResponse('{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"m","data":{"code":"ERR_X"}}}')).toEqual({
      kind: 'error',
      id: 1,
      error: { code: -32000, message: 'm', data: { code: 'ERR_X' } },
    });
    expect(parseResponse('{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"m"}}')).toMatchObject({ kind: 'malformed' });
    expect(parseResponse('{"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}}')).toMatchObject({ kind: 'malformed' });
    expect(parseResponse('<html>')).toMatchObject({ kind: 'malformed', reason: expect.stringMatching(/^not JSON/) });
  });
});

describe('decoders are total', () => {
  /** Objects shaped like requests: right and wrong members with any JSON values. */
  const requestLike = fc.dictionary(
    fc.constantFrom('jsonrpc', 'method', 'params', 'id', 'param', '__proto__', 'constructor'),
    fc.oneof(fc.jsonValue(), fc.constant('2.0'), fc.constant('lun_list')),
  );

  test('any JSON value, any text and any bytes give a message, never a throw', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), requestLike, fc.array(requestLike)), (v) => {
        const m = parseMessage(JSON.stringify(v));
        if (m.kind === 'invalid') expect(m.response.error.code).toBe(RpcErrorCode.INVALID_REQUEST);
        const calls = m.kind === 'batch' ? m.calls : m.kind === 'single' ? [m.call] : [];
        for (const c of calls) {
          if (c.kind === 'invalid') expect(c.response.error.code).toBe(RpcErrorCode.INVALID_REQUEST);
          else expect(typeof c.method).toBe('string');
          // What the server sends back must itself be JSON.
          if (c.kind === 'invalid') expect(() => JSON.parse(toJson(c.response))).not.toThrow();
        }
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.string(), (s) => {
        parseMessage(s);
        parseResponse(s);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (b) => {
        parseMessage(Buffer.from(b));
        parseResponse(Buffer.from(b));
      }),
      { numRuns: 2000 },
    );
  });

  test('a valid request survives a round trip through the parser', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
        fc.option(fc.oneof(fc.array(fc.jsonValue()), fc.dictionary(fc.string(), fc.jsonValue())), { nil: undefined }),
        (method, id, params) => {
          const req = params === undefined ? { jsonrpc: '2.0', method, id } : { jsonrpc: '2.0', method, params, id };
          const m = parseMessage(JSON.stringify(req));
          expect(m).toEqual({ kind: 'single', call: { kind: 'call', id, method, params: params === undefined ? undefined : JSON.parse(JSON.stringify(params)) } });
        },
      ),
      { numRuns: 1000 },
    );
  });
});

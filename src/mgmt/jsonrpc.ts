/**
 * JSON-RPC 2.0 codec for the management API (https://www.jsonrpc.org/specification): decoding
 * and validation of requests (single and batch), building and encoding responses, and the one
 * mapping from a thrown value to an error object. No I/O: the HTTP transport is in server.ts and
 * client.ts.
 *
 * Decoders never throw: a body that is not JSON, or a member of the wrong type, comes back as the
 * error response the specification prescribes (-32700, -32600), so the transport only sends it.
 *
 * Encoding: bigints anywhere in a result or in error data are written as decimal strings
 * (`12n` → `"12"`): JSON numbers lose precision above 2^53, and LBAs and byte counts do not fit
 * that. Clients convert back with BigInt(s) where they need to.
 */
import { AgentError } from '../errors';

/** Error codes of JSON-RPC 2.0 section 5.1, and the one server error code we use. */
export const RpcErrorCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  /** An application error: data.code is the project's registry code (ERR_...). */
  APPLICATION_ERROR: -32000,
} as const;

export type JsonRpcId = string | number | null;
export type JsonRpcParams = unknown[] | Record<string, unknown>;

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  method: string;
  params?: JsonRpcParams;
  /** Absent for a notification. */
  id?: JsonRpcId;
}

export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

export interface JsonRpcSuccess {
  jsonrpc: '2.0';
  id: JsonRpcId;
  result: unknown;
}

export interface JsonRpcFailure {
  jsonrpc: '2.0';
  id: JsonRpcId;
  error: JsonRpcErrorObject;
}

export type JsonRpcResponse = JsonRpcSuccess | JsonRpcFailure;

/**
 * Thrown by a method handler to answer with a chosen JSON-RPC error, e.g.
 * `throw new RpcError(RpcErrorCode.INVALID_PARAMS, 'params.lun: must be an integer', { field: 'lun' })`.
 */
export class RpcError extends AgentError {
  readonly rpcCode: number;
  readonly data?: unknown;
  constructor(rpcCode: number, message: string, data?: unknown) {
    // The client turns this answer into a ManagementError with the same registry code.
    super('ERR_MGMT_RPC', message);
    if (!Number.isSafeInteger(rpcCode)) throw new TypeError(`RpcError: code must be an integer, got ${rpcCode}`);
    this.rpcCode = rpcCode;
    if (data !== undefined) this.data = data;
  }
}

/** An RpcError with code -32602, for handlers that validate their params. */
export function invalidParams(message: string, data?: unknown): RpcError {
  return new RpcError(RpcErrorCode.INVALID_PARAMS, message, data);
}

// ---- requests ----

/** One member of a request (or of a batch), decoded. */
export type ParsedCall =
  | { kind: 'call'; id: JsonRpcId; method: string; params: JsonRpcParams | undefined }
  | { kind: 'notification'; method: string; params: JsonRpcParams | undefined }
  /** Not a valid Request object: send `response` (even without an id, section 5). */
  | { kind: 'invalid'; response: JsonRpcFailure };

export type ParsedMessage =
  | { kind: 'single'; call: ParsedCall }
  | { kind: 'batch'; calls: ParsedCall[] }
  /** Not JSON, or an empty batch: send `response` alone (sections 5 and 6). */
  | { kind: 'invalid'; response: JsonRpcFailure };

const REQUEST_MEMBERS = new Set(['jsonrpc', 'method', 'params', 'id']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isValidId(v: unknown): v is JsonRpcId {
  // Section 4: String, Number or Null (numbers SHOULD NOT be fractional; we accept them).
  return v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

function invalid(id: JsonRpcId, message: string): ParsedCall {
  return { kind: 'invalid', response: errorResponse(id, { code: RpcErrorCode.INVALID_REQUEST, message: `invalid request: ${message}` }) };
}

/** Validates one decoded Request object (section 4). Never throws. */
export function parseRequest(value: unknown): ParsedCall {
  if (!isPlainObject(value)) return invalid(null, `expected an object, got ${describe(value)}`);
  // Echo the id when it is one; section 5 asks for null only when it cannot be detected.
  const hasId = Object.prototype.hasOwnProperty.call(value, 'id');
  if (hasId && !isValidId(value.id)) return invalid(null, `id must be a string, a number or null, got ${describe(value.id)}`);
  const id = hasId ? (value.id as JsonRpcId) : null;
  if (value.jsonrpc !== '2.0') return invalid(id, `jsonrpc must be "2.0", got ${describe(value.jsonrpc)}`);
  if (typeof value.method !== 'string' || value.method.length === 0) {
    return invalid(id, `method must be a non-empty string, got ${describe(value.method)}`);
  }
  const hasParams = Object.prototype.hasOwnProperty.call(value, 'params');
  if (hasParams && typeof value.params !== 'object') return invalid(id, `params must be an array or an object, got ${describe(value.params)}`);
  if (hasParams && value.params === null) return invalid(id, 'params must be an array or an object, got null');
  // Strict about members: a misspelt "param" would otherwise call the method without params.
  for (const k of Object.keys(value)) {
    if (!REQUEST_MEMBERS.has(k)) return invalid(id, `unknown member ${JSON.stringify(k)}`);
  }
  const params = hasParams ? (value.params as JsonRpcParams) : undefined;
  return hasId ? { kind: 'call', id, method: value.method, params } : { kind: 'notification', method: value.method, params };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes a request body (UTF-8 JSON: a Request object or a batch array). Never throws. */
export function parseMessage(body: Buffer | string): ParsedMessage {
  let value: unknown;
  try {
    value = JSON.parse(typeof body === 'string' ? body : utf8.decode(body));
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { kind: 'invalid', response: errorResponse(null, { code: RpcErrorCode.PARSE_ERROR, message: `parse error: ${why}` }) };
  }
  if (Array.isArray(value)) {
    if (value.length === 0) {
      return { kind: 'invalid', response: errorResponse(null, { code: RpcErrorCode.INVALID_REQUEST, message: 'invalid request: empty batch' }) };
    }
    return { kind: 'batch', calls: value.map(parseRequest) };
  }
  return { kind: 'single', call: parseRequest(value) };
}

/** A short description of a value for error messages (never the whole value). */
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length <= 40 ? JSON.stringify(v) : `a string of ${v.length} characters`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === undefined) return 'nothing';
  return `an ${typeof v}`;
}

// ---- responses ----

export function resultResponse(id: JsonRpcId, result: unknown): JsonRpcSuccess {
  // Section 5: "result" is REQUIRED on success; JSON has no undefined.
  return { jsonrpc: '2.0', id, result: result === undefined ? null : result };
}

export function errorResponse(id: JsonRpcId, error: JsonRpcErrorObject): JsonRpcFailure {
  return { jsonrpc: '2.0', id, error };
}

const REGISTRY_CODE = /^ERR_[A-Z0-9_]+$/;

/**
 * The error object for a value a handler threw, and whether it is an internal error (a bug:
 * the caller logs it with its stack; the response says only "internal error").
 *
 * - RpcError → its code, message and data as given;
 * - an error with a registry code (`code` matching ERR_[A-Z0-9_]+, as AgentError and its
 *   subclasses carry) → -32000, its message, data { ...details, code };
 * - anything else (TypeError, a system error such as ENOENT whose message names paths) → -32603.
 */
export function errorObjectOf(err: unknown): { error: JsonRpcErrorObject; internal: boolean } {
  if (err instanceof RpcError) {
    const error: JsonRpcErrorObject = { code: err.rpcCode, message: err.message };
    if (err.data !== undefined) error.data = err.data;
    return { error, internal: false };
  }
  const code: unknown = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  if (err instanceof Error && typeof code === 'string' && REGISTRY_CODE.test(code)) {
    const details = (err as Error & { details?: unknown }).details;
    return {
      error: { code: RpcErrorCode.APPLICATION_ERROR, message: err.message, data: { ...(isPlainObject(details) ? details : {}), code } },
      internal: false,
    };
  }
  return { error: { code: RpcErrorCode.INTERNAL_ERROR, message: 'internal error' }, internal: true };
}

/** JSON.stringify with bigints as decimal strings. Throws what JSON.stringify throws (cycles). */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/**
 * The text of one response. A result that cannot be encoded (a cycle, a throwing toJSON) is
 * replaced by an internal error for the same id; `failure` then holds what was thrown.
 */
export function encodeResponse(response: JsonRpcResponse): { text: string; failure?: unknown } {
  try {
    return { text: toJson(response) };
  } catch (failure) {
    return { text: toJson(errorResponse(response.id, { code: RpcErrorCode.INTERNAL_ERROR, message: 'internal error' })), failure };
  }
}

// ---- responses, client side ----

export type ParsedResponse =
  | { kind: 'result'; id: JsonRpcId; result: unknown }
  | { kind: 'error'; id: JsonRpcId; error: JsonRpcErrorObject }
  | { kind: 'malformed'; reason: string };

/** Validates a response body (one Response object, section 5). Never throws. */
export function parseResponse(body: Buffer | string): ParsedResponse {
  let v: unknown;
  try {
    v = JSON.parse(typeof body === 'string' ? body : utf8.decode(body));
  } catch (err) {
    return { kind: 'malformed', reason: `not JSON (${err instanceof Error ? err.message : String(err)})` };
  }
  if (!isPlainObject(v)) return { kind: 'malformed', reason: `expected a response object, got ${describe(v)}` };
  if (v.jsonrpc !== '2.0') return { kind: 'malformed', reason: `jsonrpc must be "2.0", got ${describe(v.jsonrpc)}` };
  if (!isValidId(v.id)) return { kind: 'malformed', reason: `id must be a string, a number or null, got ${describe(v.id)}` };
  const hasResult = Object.prototype.hasOwnProperty.call(v, 'result');
  const hasError = Object.prototype.hasOwnProperty.call(v, 'error');
  if (hasResult === hasError) return { kind: 'malformed', reason: 'a response must have exactly one of "result" and "error"' };
  if (hasResult) return { kind: 'result', id: v.id, result: v.result };
  const e = v.error;
  if (!isPlainObject(e) || !Number.isSafeInteger(e.code) || typeof e.message !== 'string') {
    return { kind: 'malformed', reason: 'error must be an object with an integer code and a string message' };
  }
  const error: JsonRpcErrorObject = { code: e.code as number, message: e.message };
  if (Object.prototype.hasOwnProperty.call(e, 'data')) error.data = e.data;
  return { kind: 'error', id: v.id, error };
}

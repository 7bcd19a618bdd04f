/**
 * The management API: JSON-RPC 2.0 over HTTP on loopback or a Unix socket, with a bearer token
 * (the transport only; the methods are given by whoever starts the server).
 */
export {
  RpcError,
  RpcErrorCode,
  invalidParams,
  parseMessage,
  parseRequest,
  parseResponse,
  errorObjectOf,
  type JsonRpcId,
  type JsonRpcParams,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type JsonRpcErrorObject,
} from './jsonrpc';
export { loadOrCreateToken, generateToken, checkToken, tokenMatches, MIN_TOKEN_LENGTH } from './token';
export {
  ManagementServer,
  parseListenAddress,
  urlOf,
  type ManagementServerOptions,
  type ManagementAddress,
  type MethodHandler,
  type MethodContext,
} from './server';
export { ManagementClient, ManagementError, parseManagementUrl, type ManagementClientOptions, type ManagementErrorCode } from './client';

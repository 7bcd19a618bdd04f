/**
 * The one loader of the native addon: what it exports is exactly what src/native/index.ts
 * declares (the declared names are checked by the compiler against the NativeModule type, the
 * exported ones read from the loaded addon), so neither can drift from the other.
 */
import { loadNative, type NativeModule, type NativeSession } from '../../../src/native/index';

/** One entry per declared member: the compiler refuses a missing or an extra name. */
const DECLARED: Record<keyof NativeModule, true> = {
  NativeSession: true,
  seek: true,
  punchHole: true,
  preadNoWait: true,
  fileIoBatchAsync: true,
  copyFileRange: true,
  copyFileRangeAsync: true,
  readChunksAsync: true,
  captureCommitAsync: true,
  fadviseRandom: true,
  captureChainNew: true,
  captureChainTake: true,
  captureChainAbandon: true,
  crc32c: true,
  crc32cPortable: true,
  crc32cHardware: true,
  sha256Async: true,
  sdNotify: true,
  ext2TocAsync: true,
};

/** The same for the methods of a libiscsi session (native/src/session.cc). */
const SESSION_METHODS: Record<keyof NativeSession, true> = {
  setTargetName: true,
  setSessionType: true,
  setHeaderDigest: true,
  setInitiatorChap: true,
  setTargetChap: true,
  setTimeout: true,
  setAutoReconnect: true,
  connect: true,
  execute: true,
  discovery: true,
  logout: true,
  close: true,
  queueLength: true,
  lastError: true,
};

test('the addon exports exactly the names declared, and is loaded once', () => {
  const addon = loadNative();
  expect(Object.keys(addon).sort()).toEqual(Object.keys(DECLARED).sort());
  expect(loadNative()).toBe(addon);
});

test('its members have the declared kinds: the session class, functions, the SSE4.2 flag', () => {
  const addon = loadNative() as unknown as Record<string, unknown>;
  for (const name of Object.keys(DECLARED)) {
    expect([name, typeof addon[name]]).toEqual([name, name === 'crc32cHardware' ? 'boolean' : 'function']);
  }
});

test('a NativeSession has exactly the methods declared', () => {
  const methods = Object.getOwnPropertyNames(loadNative().NativeSession.prototype).filter((m) => m !== 'constructor');
  expect(methods.sort()).toEqual(Object.keys(SESSION_METHODS).sort());
});

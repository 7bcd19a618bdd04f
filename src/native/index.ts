/**
 * The one loader and type declaration of the native addon, xcopy_native (native/, node-gyp;
 * docs/native.md). It holds libiscsi initiator sessions (NativeSession, used by
 * src/initiator/session.ts), block-file I/O (used through src/native/fileops.ts), CRC32C (used
 * through src/native/crc32c.ts) and SHA-256 on the thread pool (src/native/digest.ts). Only
 * this file knows where the .node file lives and requires it; every function the addon exports
 * is declared here, once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AgentError } from '../errors';

/** libiscsi's scsi_xfer_dir. */
export const enum XferDir {
  NONE = 0,
  READ = 1,
  WRITE = 2,
}

/** libiscsi's status values beyond the SCSI ones (iscsi.h enum scsi_status). */
export const LIBISCSI_STATUS_CANCELLED = 0x0f000000;
export const LIBISCSI_STATUS_ERROR = 0x0f000001;
export const LIBISCSI_STATUS_TIMEOUT = 0x0f000002;

/** libiscsi's enum scsi_residual. */
export const enum ResidualKind {
  NONE = 0,
  UNDERFLOW = 1,
  OVERFLOW = 2,
}

export interface NativeResult {
  status: number;
  error?: string;
  data?: Buffer;
  sense?: Buffer;
  residual?: number;
  residualKind?: ResidualKind;
  targets?: { name: string; portals: string[] }[];
}

export interface NativeSession {
  setTargetName(name: string): number;
  setSessionType(discovery: boolean): number;
  setHeaderDigest(mode: number): number;
  setInitiatorChap(user: string, password: string): number;
  setTargetChap(user: string, password: string): number;
  setTimeout(seconds: number): void;
  setAutoReconnect(on: boolean): void;
  connect(portal: string, lun: number): Promise<NativeResult>;
  execute(
    lun: number,
    cdb: Buffer,
    dir: XferDir,
    dataOut: Buffer | null,
    dataInLength: number,
    dataInBuffer?: Buffer,
  ): Promise<NativeResult>;
  discovery(): Promise<NativeResult>;
  logout(): Promise<NativeResult>;
  close(): void;
  queueLength(): number;
  lastError(): string;
}

/** Everything the addon exports (native/src/addon.cc), each declared once. */
export interface NativeModule {
  NativeSession: new (initiatorName: string) => NativeSession;
  /** lseek with SEEK_DATA (3) or SEEK_HOLE (4); -1 when no data follows (ENXIO). */
  seek(fd: number, offset: number, whence: 3 | 4): number;
  /** fallocate(PUNCH_HOLE | KEEP_SIZE). */
  punchHole(fd: number, offset: number, length: number): void;
  /** copy_file_range; returns the bytes copied (may be short). */
  copyFileRange(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): number;
  copyFileRangeAsync(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): Promise<number>;
  /** Fills buffers[i] from positions[i] on the thread pool; the CRC32C of each, or -1 when `zeros` and all its bytes are zero. */
  readChunksAsync(fd: number, buffers: Uint8Array[], positions: number[], zeros: boolean): Promise<number[]>;
  /**
   * Reads originals into `into`, stores record CRCs big-endian at `header[crcOffset..+3]`, writes
   * the runs (pwritev each), then (with a chain, in its order) the host writes not cancelled.
   * Rejects with `phase` 'read' | 'write'.
   */
  captureCommitAsync(
    srcFd: number,
    reads: Array<{ into: Uint8Array; position: number; header: Uint8Array }>,
    crcOffset: number,
    obfFd: number,
    runs: Array<{ position: number; pieces: Uint8Array[] }>,
    chain?: unknown,
    ticket?: number,
    hosts?: Array<{ position: number; pieces: Uint8Array[]; fua: boolean; state: Int32Array }>,
    hostFd?: number,
  ): Promise<{ crcs: number[]; hosts: number[] }>;
  /** POSIX_FADV_RANDOM on the open file of `fd` (no readahead for its reads). */
  fadviseRandom(fd: number): void;
  /** A new capture chain (see src/native/fileops.ts CaptureChain). */
  captureChainNew(): unknown;
  /** The next ticket of a chain. */
  captureChainTake(chain: unknown): number;
  /** Finishes a ticket no job got, as failed. */
  captureChainAbandon(chain: unknown, ticket: number): void;
  /** CRC32C of `data` continuing `previous` (0 to start): SSE4.2 where present, else the tables. */
  crc32c(data: Uint8Array, previous: number): number;
  /** The same by the portable tables on any CPU (the fallback, for tests). */
  crc32cPortable(data: Uint8Array, previous: number): number;
  /** True when crc32c takes the SSE4.2 path (chosen once, at load). */
  crc32cHardware: boolean;
  /** SHA-256 of each `pieceBytes` piece of `data` (0: of all of it) on the libuv thread pool, read in place; the digests concatenated (see src/native/digest.ts). */
  sha256Async(data: Buffer, pieceBytes: number): Promise<Buffer>;
  /** sd_notify(3): sends `state` ("READY=1", ...) to $NOTIFY_SOCKET; false when it is unset. */
  sdNotify(state: string): boolean;
}

/** The addon's target name in native/binding.gyp (and the Makefile's ADDON). */
const ADDON_NAME = 'xcopy_native';

let cached: NativeModule | undefined;

/** The addon, loaded once. Throws ERR_NATIVE_MISSING with what to do when it was not built. */
export function loadNative(): NativeModule {
  if (cached) return cached;
  const candidates: string[] = [];
  for (let dir = __dirname, i = 0; i < 5; i++, dir = path.dirname(dir)) {
    candidates.push(path.join(dir, 'native', 'build', 'Release', `${ADDON_NAME}.node`));
  }
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) {
    throw new AgentError(
      'ERR_NATIVE_MISSING',
      `the native addon is not built (native/build/Release/${ADDON_NAME}.node missing): run \`make setup\``,
    );
  }
  cached = require(found) as NativeModule; // eslint-disable-line @typescript-eslint/no-require-imports
  return cached;
}

/**
 * Zeroes a range of a LUN through the initiator, the fastest way the LUN offers that reads back
 * zeros:
 *  1. `unmap`: UNMAP (SBC-3 r36 5.28), where the LUN deallocates (LBPME) and reads deallocated
 *     blocks as zeros (LBPRZ, READ CAPACITY(16) parameter data, 5.16.2) and supports UNMAP (LBPU,
 *     Logical Block Provisioning VPD page, 6.6.5) with non-zero Block Limits (6.6.4);
 *  2. `write-same-unmap`: WRITE SAME(16) (5.42) with UNMAP, where LBPRZ and LBPWS;
 *  3. `write-same`: WRITE SAME(16) of a zero block;
 *  4. `write`: WRITE(16) (5.35) of zero buffers.
 * A method the LUN refuses (ILLEGAL REQUEST: INVALID COMMAND OPERATION CODE or INVALID FIELD IN
 * CDB) gives way to the next, from the start of the range (zeroing twice is harmless). A
 * deallocating method is trusted only when the range reads back zeros where it is checked (its
 * first MiB and its last block); otherwise the range is written with zeros.
 */
import { AgentError, IscsiError } from '../errors';
import type { IscsiSession } from '../initiator/session';
import { encodeUnmapCdb, encodeUnmapParameterList, encodeWriteSame16Cdb } from '../scsi/provisioning';
import { Sense, senseIs } from '../scsi/sense-reasons';
import { decodeLogicalBlockProvisioning, type DecodedBlockLimits } from '../scsi/vpd';
import { isAllZero } from '../util/zero';
import { inPieces } from './pieces';

export type ZeroMethod = 'unmap' | 'write-same-unmap' | 'write-same' | 'write';

export interface ZeroBlocksOptions {
  /** Stops issuing commands (those in flight finish); rejects with ERR_INTERRUPTED. */
  signal?: AbortSignal;
  onProgress?: (doneBlocks: bigint, totalBlocks: bigint) => void;
}

const MiB = 1048576;
/** Commands in flight at once. */
const DEPTH = 4;
/** The most bytes one WRITE SAME without UNMAP is asked to write when the LUN states no limit. */
const WRITE_SAME_BYTES = 64 * MiB;
/** The most bytes one WRITE(16) of zeros carries. */
const WRITE_BYTES = MiB;
/** How much of the range a deallocating method must read back as zeros (at its start). */
const READ_BACK_BYTES = MiB;

function isUnsupported(err: unknown): boolean {
  return err instanceof IscsiError && (senseIs(err, Sense.INVALID_COMMAND_OPERATION_CODE) || senseIs(err, Sense.INVALID_FIELD_IN_CDB));
}

/** The methods to try on `s`, fastest first (see the file's header). */
async function methodsOf(s: IscsiSession, limits: DecodedBlockLimits | undefined): Promise<ZeroMethod[]> {
  const cap = await s.readCapacity16();
  const out: ZeroMethod[] = [];
  if (cap.lbpme && cap.lbprz) {
    const lbp = await s
      .inquiryVpd(0xb2)
      .then(decodeLogicalBlockProvisioning)
      .catch(() => undefined);
    const unmapLimits = !limits || (limits.maximumUnmapLbaCount > 0 && limits.maximumUnmapBlockDescriptorCount > 0);
    if (lbp?.lbpu && unmapLimits) out.push('unmap');
    if (lbp?.lbpws) out.push('write-same-unmap');
  }
  out.push('write-same', 'write');
  return out;
}

/** Blocks per command of `method` on a LUN of `blockSize` with these Block Limits. */
function blocksPerCommand(method: ZeroMethod, blockSize: number, limits: DecodedBlockLimits | undefined): bigint {
  const U32 = 0xffff_ffffn;
  const min = (a: bigint, b: bigint) => (a < b ? a : b);
  switch (method) {
    case 'unmap':
      return min(BigInt(limits?.maximumUnmapLbaCount || 0xffff_ffff), U32);
    case 'write-same-unmap':
    case 'write-same': {
      const cap = method === 'write-same' ? BigInt(WRITE_SAME_BYTES / blockSize) : U32;
      return limits && limits.maximumWriteSameLength > 0n ? min(limits.maximumWriteSameLength, cap) : cap;
    }
    case 'write': {
      const cap = BigInt(WRITE_BYTES / blockSize);
      return limits && limits.maximumTransferLength > 0 ? min(BigInt(limits.maximumTransferLength), cap) : cap;
    }
  }
}

/** One command of `method` zeroing `n` blocks at `lba`. */
async function zeroCommand(s: IscsiSession, method: ZeroMethod, lba: bigint, n: number, blockSize: number): Promise<void> {
  if (method === 'write') return s.write16(lba, Buffer.alloc(n * blockSize));
  if (method === 'unmap') {
    const list = encodeUnmapParameterList([{ lba, blocks: n }]);
    s.check(await s.execute(encodeUnmapCdb({ parameterListLength: list.length }), { dataOut: list }), `UNMAP at LBA ${lba}`);
    return;
  }
  const cdb = encodeWriteSame16Cdb({ lba, blocks: n, unmap: method === 'write-same-unmap' });
  s.check(await s.execute(cdb, { dataOut: Buffer.alloc(blockSize) }), `WRITE SAME(16) at LBA ${lba}`);
}

/** Zeroes [lba, lba + count) with `method`, DEPTH commands in flight; the first failure ends it. */
async function zeroWith(s: IscsiSession, method: ZeroMethod, lba: bigint, count: bigint, limits: DecodedBlockLimits | undefined, o: ZeroBlocksOptions): Promise<void> {
  const bs = await s.blockSize();
  await inPieces(count, blocksPerCommand(method, bs, limits), (at, n) => zeroCommand(s, method, lba + at, Number(n), bs), {
    depth: DEPTH,
    signal: o.signal,
    onProgress: o.onProgress,
    interrupted: (done) => `zeroing interrupted after ${done} of ${count} blocks`,
  });
}

/** Whether [lba, lba + count) reads zeros where a deallocating method is checked. */
async function readsZero(s: IscsiSession, lba: bigint, count: bigint): Promise<boolean> {
  const bs = await s.blockSize();
  const head = BigInt(Math.ceil(READ_BACK_BYTES / bs));
  return isAllZero(await s.read16(lba, Number(count < head ? count : head))) && isAllZero(await s.read16(lba + count - 1n, 1));
}

/** Zeroes `count` blocks at `lba` (see the file's header); resolves with the method that did it. */
export async function zeroBlocks(s: IscsiSession, lba: bigint, count: bigint, o: ZeroBlocksOptions = {}): Promise<ZeroMethod> {
  const limits = await s.blockLimits().catch(() => undefined);
  const methods = await methodsOf(s, limits);
  if (count <= 0n) return methods[0];
  let deallocationReadsZero = true;
  for (const method of methods) {
    const deallocates = method === 'unmap' || method === 'write-same-unmap';
    if (deallocates && !deallocationReadsZero) continue;
    try {
      await zeroWith(s, method, lba, count, limits, o);
    } catch (err) {
      if (method !== 'write' && isUnsupported(err)) continue;
      throw err;
    }
    if (!deallocates || (await readsZero(s, lba, count))) return method;
    deallocationReadsZero = false;
  }
  throw new AgentError('ERR_INTERNAL', 'zeroBlocks: WRITE(16) is always the last method');
}

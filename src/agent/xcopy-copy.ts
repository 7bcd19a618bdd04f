/**
 * A ddpt-style LUN-to-LUN copy through a copy manager: EXTENDED COPY (LID1) lists sent to the
 * bridge (by default the copy manager serving the destination), split by the bridge's OPERATING
 * PARAMETERS (segment length, descriptor counts, the 16-bit block count of a 02h segment), several
 * commands in flight where it allows. Falls back to host READ/WRITE (hostCopy) when the bridge
 * has no copy manager or cannot reach a LUN (COPY ABORTED 0Dh/02h), unless told not to.
 */
import { AgentError, IscsiError } from '../errors';
import { SenseKey } from '../scsi/constants';
import { transferCountToBytes } from '../scsi/copy-results';
import { Sense, senseIs } from '../scsi/sense-reasons';
import { IscsiSession, type SessionOptions } from '../initiator/session';
import { encodeExtendedCopyLid1, type SegmentDescriptor } from '../scsi/xcopy';
import { cscdOfLun } from './apply-obf';
import { hostCopy } from './host-copy';

export interface XcopyCopyOptions {
  from: string;
  to: string;
  /** The copy manager to send EXTENDED COPY to (default: the destination LUN). */
  bridge?: string;
  skip?: bigint;
  seek?: bigint;
  /** Blocks to copy (default: the rest of the source from skip). */
  count?: bigint;
  /** First LIST IDENTIFIER (default 1); each command in flight uses the next one. */
  listId?: number;
  fallback?: boolean;
  session?: SessionOptions;
  onProgress?: (copiedBlocks: bigint, totalBlocks: bigint, path: 'xcopy' | 'host') => void;
  /** How often COPY STATUS is asked for progress while commands run (default 500 ms). */
  progressIntervalMs?: number;
  /**
   * Stops the copy: no new command is sent, the ones in flight are stopped with COPY OPERATION
   * ABORT (where the bridge knows it), and xcopyCopy rejects with ERR_INTERRUPTED.
   */
  signal?: AbortSignal;
}

export interface XcopyCopyResult {
  blocks: bigint;
  block_size: number;
  xcopy_bytes: bigint;
  host_bytes: bigint;
  extended_copy_commands: number;
  seconds: number;
  path: 'xcopy' | 'host' | 'mixed';
  /** Why the host path was used, when it was. */
  fallback_reason?: string;
}

/** An answer that means "this copy manager cannot do it": fall back to host I/O. */
function isFallbackCondition(err: unknown): boolean {
  if (!(err instanceof IscsiError) || err.code !== 'ERR_SCSI_CHECK_CONDITION') return false;
  if (senseIs(err, Sense.COPY_TARGET_DEVICE_NOT_REACHABLE) || senseIs(err, Sense.UNREACHABLE_COPY_TARGET)) return true;
  return senseIs(err, Sense.INVALID_COMMAND_OPERATION_CODE); // no EXTENDED COPY at all
}

export async function xcopyCopy(opts: XcopyCopyOptions): Promise<XcopyCopyResult> {
  const fallback = opts.fallback ?? true;
  const t0 = process.hrtime.bigint();
  const src = await IscsiSession.connect(opts.from, opts.session);
  const dst = await IscsiSession.connect(opts.to, opts.session).catch(async (e: unknown) => {
    await src.close();
    throw e;
  });
  let bridge: IscsiSession | undefined;
  try {
    const bs = await src.blockSize();
    const dbs = await dst.blockSize();
    const srcBlocks = (await src.readCapacity16()).returnedLogicalBlockAddress + 1n;
    const dstBlocks = (await dst.readCapacity16()).returnedLogicalBlockAddress + 1n;
    const skip = opts.skip ?? 0n;
    const seek = opts.seek ?? 0n;
    const count = opts.count ?? srcBlocks - skip;
    if (skip + count > srcBlocks) throw new AgentError('ERR_INVALID_ARG', `source range ${skip}+${count} ends past its ${srcBlocks} blocks`);
    if (seek + count > dstBlocks) {
      throw new AgentError('ERR_INVALID_ARG', `destination too small: ${seek + count} blocks needed, ${dstBlocks} present (grow it or copy fewer blocks with --count)`);
    }
    const result: XcopyCopyResult = {
      blocks: count,
      block_size: bs,
      xcopy_bytes: 0n,
      host_bytes: 0n,
      extended_copy_commands: 0,
      seconds: 0,
      path: 'xcopy',
    };
    const viaHost = async (why: string, from: bigint): Promise<XcopyCopyResult> => {
      if (!fallback) throw new AgentError('ERR_SCSI_STATUS', `EXTENDED COPY not possible: ${why} (drop --no-fallback to copy through this host)`);
      result.fallback_reason = why;
      const r = await hostCopy(src, dst, {
        skip: skip + from,
        seek: seek + from,
        count: count - from,
        onProgress: (c, total) => opts.onProgress?.(from + c, from + total, 'host'),
        signal: opts.signal,
      });
      result.host_bytes += r.bytes;
      result.path = result.xcopy_bytes > 0n ? 'mixed' : 'host';
      result.seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      return result;
    };

    const srcCscd = await cscdOfLun(src, bs);
    const dstCscd = await cscdOfLun(dst, bs);
    if (!srcCscd || !dstCscd) return await viaHost('a LUN has no NAA, EUI-64 or T10 designator for a CSCD', 0n);
    if (bs !== dbs) return await viaHost(`block sizes differ (${bs} and ${dbs})`, 0n);

    bridge = opts.bridge ? await IscsiSession.connect(opts.bridge, opts.session) : dst;
    const inq = await bridge.inquiry();
    if (!inq.threePc) return await viaHost(`${bridge.url} has no copy manager (3PC=0)`, 0n);
    let op;
    try {
      op = await bridge.operatingParameters();
    } catch (err) {
      if (isFallbackCondition(err) || (err instanceof IscsiError && err.senseKey === SenseKey.ILLEGAL_REQUEST)) {
        return await viaHost(`${bridge.url} answers no OPERATING PARAMETERS`, 0n);
      }
      throw err;
    }
    // Split by the copy manager's limits (SPC-4 6.18.4 OPERATING PARAMETERS).
    const maxSegLenBlocks = op.maximumSegmentLength === 0 ? 65535 : Math.floor(op.maximumSegmentLength / bs);
    const perSegment = BigInt(Math.max(1, Math.min(65535, maxSegLenBlocks)));
    const byListLength = Math.floor((op.maximumDescriptorListLength - 64) / 28);
    const segsPerCommand = Math.max(1, Math.min(op.maximumSegmentDescriptorCount, byListLength > 0 ? byListLength : 1, 64));
    const inFlight = Math.max(1, Math.min(op.maximumConcurrentCopies || 1, 4));
    // LIST ID USAGE 10b with a distinct list id per command in flight: the bridge tracks each, so
    // COPY STATUS can report progress and COPY OPERATION ABORT can stop it (SPC-4 5.17.4.3).
    const listIdUsage = 2;
    const cscds = [srcCscd, dstCscd];
    let next = 0n;
    let done = 0n;
    let failedAt: bigint | undefined;
    let failure: unknown;
    let listId = opts.listId ?? 1;
    /** list id → blocks of its command (for progress); in flight only. */
    const running = new Map<number, bigint>();
    const takeListId = (): number => {
      while (running.has(listId)) listId = listId >= 255 ? 1 : listId + 1;
      const id = listId;
      listId = listId >= 255 ? 1 : listId + 1;
      return id;
    };
    const interrupted = () => opts.signal?.aborted === true;
    const onAbort = () => {
      for (const id of running.keys()) bridge!.copyOperationAbort(id).catch(() => undefined);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    // Progress from COPY STATUS (segments processed, transfer count) of each command in flight.
    let polling = opts.onProgress !== undefined;
    const poller = (async () => {
      while (polling) {
        await new Promise((r) => setTimeout(r, opts.progressIntervalMs ?? 500));
        if (!polling || running.size === 0) continue;
        let partial = 0n;
        try {
          for (const [id, blocks] of [...running]) {
            const st = await bridge!.copyStatus(id);
            const b = transferCountToBytes(st.transferCountUnits, st.transferCount, bs) / BigInt(bs);
            if (running.has(id)) partial += b < blocks ? b : blocks;
          }
        } catch {
          polling = false; // no COPY STATUS here (or the list is gone): completions only
          break;
        }
        if (polling) opts.onProgress?.(done + partial, count, 'xcopy');
      }
    })();
    const worker = async () => {
      while (next < count && failedAt === undefined && !interrupted()) {
        const start = next;
        const segments: SegmentDescriptor[] = [];
        let at = start;
        for (let i = 0; i < segsPerCommand && at < count; i++) {
          const n = count - at < perSegment ? count - at : perSegment;
          segments.push({
            kind: 'blockToBlock',
            dc: false,
            cat: false,
            sourceCscdDescriptorId: 0,
            destinationCscdDescriptorId: 1,
            blockDeviceNumberOfBlocks: Number(n),
            sourceBlockDeviceLba: skip + at,
            destinationBlockDeviceLba: seek + at,
          });
          at += n;
        }
        next = at;
        const id = takeListId();
        running.set(id, at - start);
        try {
          await bridge!.extendedCopy(encodeExtendedCopyLid1({ listIdentifier: id, listIdUsage, cscdDescriptors: cscds, segmentDescriptors: segments }));
          result.extended_copy_commands++;
          result.xcopy_bytes += (at - start) * BigInt(bs);
          done += at - start;
          opts.onProgress?.(done, count, 'xcopy');
        } catch (err) {
          if (failedAt === undefined || start < failedAt) failedAt = start;
          failure = err;
        } finally {
          running.delete(id);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: inFlight }, worker));
    } finally {
      polling = false;
      opts.signal?.removeEventListener('abort', onAbort);
      await poller;
    }
    if (interrupted() && (done < count || failedAt !== undefined)) {
      throw new AgentError('ERR_INTERRUPTED', `copy interrupted after ${done} of ${count} blocks; the copy manager was told to stop (COPY OPERATION ABORT) — run the copy again to finish it`);
    }
    if (failedAt !== undefined) {
      if (!isFallbackCondition(failure)) throw failure;
      // Everything before the first failed command was copied (commands run in list order
      // per worker; a later one that succeeded is simply copied again by the host path).
      return await viaHost(`${bridge.url}: ${(failure as Error).message}`, failedAt);
    }
    await dst.synchronizeCache16();
    result.seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return result;
  } finally {
    if (bridge && bridge !== dst) await bridge.close();
    await src.close();
    await dst.close();
  }
}

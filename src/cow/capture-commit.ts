/**
 * The capture fast path of the COW filter (docs/cow.md "COW"): one OBF group commit of snapshot
 * captures that also carries the hosts' writes needing them, in one job on the libuv thread pool,
 * so that a first write to a chunk costs the event loop no read, no write and no turn of its own.
 *
 * It works on two regular files through their raw descriptors (Store.backingFile): the source's
 * own file — the store below the source's COW filter, which only the session that claimed it
 * reaches — and the OBF's file (below its LUN's filter, if it is one: hosts may not write an
 * active OBF). The job (native captureCommit, src/native/fileops.ts):
 *  1. reads each original from the source (through its descriptor with no readahead) into
 *     `reads[i].into`, and stores its record CRC in `reads[i].header` (the header's CRC field,
 *     docs/obf-format.md);
 *  2. writes every run of the log (headers and data) durably: a pwritev each on the OBF's
 *     O_DSYNC descriptor;
 *  3. given an `order` (a capture chain and the ticket this commit took on it), once the commits
 *     holding earlier tickets are durable too, makes each host write of `hosts` not cancelled on
 *     the source: capture before change holds because a change is made only after its capture,
 *     and every capture before it, is durable.
 * Both files count the job as a request in flight (BackingFile.beginRequest) until it ends, so
 * closing either waits for it. The OBF writer (src/cow/obf-writer.ts) batches the records; the
 * capture path (src/cow/capture.ts, changeWith) hands it the host writes.
 */
import { ArgumentError } from '../errors';
import { checkBigRange, checkRead, writeProtected } from '../store/checks';
import { errnoName } from '../store/file';
import { StoreError, type BackingFile, type StoreFailure } from '../store/store';
import { abandonCaptureTicket, captureCommit, type CaptureChain } from '../native/fileops';
import { OBF_RECORD_CRC_OFFSET, OBF_RECORD_HEADER_LENGTH } from '../obf/format';

/** commitCaptures failed reading the source (nothing was written to the OBF). */
export class CaptureReadError extends StoreError {
  /** The read (index into commitCaptures' `reads`) that failed, when known. */
  readonly index: number | undefined;
  constructor(failure: StoreFailure, message: string, options?: { cause?: unknown; index?: number }) {
    super(failure, message, options);
    this.index = options?.index;
    Object.defineProperty(this, 'name', { value: 'CaptureReadError', enumerable: false });
  }
}

/**
 * A change to the source that an OBF capture commit makes once its records are durable
 * (commitCaptures): the host's write that needed the capture.
 */
export interface SourceHostWrite {
  lba: bigint;
  pieces: readonly Buffer[];
  fua: boolean;
  /** Cancellation cell shared with the job (src/native/fileops.ts CaptureHostWrite.state). */
  state: Int32Array;
}

/** What became of a host write carried by a capture commit. */
export type HostWriteOutcome = 'written' | 'not-written' | Error;

function piecesBytes(pieces: readonly Buffer[]): number {
  let n = 0;
  for (const p of pieces) n += p.length;
  return n;
}

/**
 * One OBF group commit of snapshot captures on `obf`'s file, in one thread-pool job (see above):
 * each original read from `source` into `reads[i].into` and its record CRC stored in
 * `reads[i].header`, then every run written durably; then, given an `order`, each host write in
 * `hosts` not cancelled made on `source`. Resolves with the record CRCs and each host write's
 * outcome. A failed read of the source is a CaptureReadError (nothing was written), a failed OBF
 * write a write-error; in both cases no host write was made. Failing before its job is queued,
 * it abandons the ticket (to the commits after it, a failed commit).
 */
export async function commitCaptures(
  obf: BackingFile,
  source: BackingFile,
  reads: ReadonlyArray<{ lba: bigint; into: Buffer; header: Buffer }>,
  runs: ReadonlyArray<{ lba: bigint; pieces: readonly Buffer[] }>,
  opts: { order?: { chain: CaptureChain; ticket: number }; hosts?: ReadonlyArray<SourceHostWrite> } = {},
): Promise<{ crcs: number[]; hosts: HostWriteOutcome[] }> {
  const hosts = opts.hosts ?? [];
  let job: ReturnType<typeof captureCommit>;
  try {
    for (const r of reads) checkRead(source, r.lba, r.into.length / source.blockSize, r.into);
    for (const r of runs) {
      const bytes = piecesBytes(r.pieces);
      if (bytes % obf.blockSize !== 0) throw new ArgumentError(`a run of ${bytes} bytes is not a whole number of ${obf.blockSize}-byte blocks`);
      checkBigRange(obf, r.lba, BigInt(bytes / obf.blockSize));
    }
    for (const h of hosts) {
      const bytes = piecesBytes(h.pieces);
      if (bytes === 0 || bytes % source.blockSize !== 0) throw new ArgumentError(`a host write of ${bytes} bytes is not a positive number of ${source.blockSize}-byte blocks`);
      checkBigRange(source, h.lba, BigInt(bytes / source.blockSize));
    }
    source.checkOpen();
    obf.checkOpen();
    if (obf.readOnly) throw writeProtected(obf.identity.name);
    if (hosts.length > 0 && source.readOnly) throw writeProtected(source.identity.name);
    job = captureCommit(
      source.randomReadFd(),
      reads.map((r) => ({ into: r.into, position: Number(r.lba) * source.blockSize, header: r.header })),
      // Where the record's CRC goes in its header (docs/obf-format.md, "Record header").
      { headerLength: OBF_RECORD_HEADER_LENGTH, crcOffset: OBF_RECORD_CRC_OFFSET },
      obf.dsyncFd(),
      // Fresh arrays: the job references them (and so the buffers) until it ends.
      runs.map((r) => ({ position: Number(r.lba) * obf.blockSize, pieces: [...r.pieces] })),
      opts.order,
      hosts.length > 0
        ? { fd: source.fd, writes: hosts.map((h) => ({ position: Number(h.lba) * source.blockSize, pieces: [...h.pieces], fua: h.fua, state: h.state })) }
        : undefined,
    );
  } catch (err) {
    // No job got the ticket: finish it as failed, or every later host write would wait on it
    // (or, worse, pass the gap this commit leaves).
    if (opts.order) abandonCaptureTicket(opts.order.chain, opts.order.ticket);
    throw err;
  }
  const sourceDone = source.beginRequest();
  const obfDone = obf.beginRequest();
  try {
    const done = await job;
    return {
      crcs: done.crcs,
      hosts: done.hosts.map((e, i): HostWriteOutcome => {
        if (e === 0) return 'written';
        if (e < 0) return 'not-written';
        const h = hosts[i];
        const err = Object.assign(new Error(`pwritev: ${errnoName({ errno: e }) ?? `errno ${e}`}`), { errno: e, syscall: 'pwritev' });
        return source.fail(err, 'write', `write of ${piecesBytes(h.pieces) / source.blockSize} blocks at LBA ${h.lba}`);
      }),
    };
  } catch (err) {
    const { phase, index } = err as { phase?: string; index?: number };
    if (phase === 'read') {
      const at = typeof index === 'number' ? reads[index]?.lba : undefined;
      const e = source.fail(err, 'read', at !== undefined ? `capture read at LBA ${at}` : `capture read of ${reads.length} chunks`);
      throw new CaptureReadError(e instanceof StoreError ? e.failure : { kind: 'read-error' }, e.message, { cause: err, index: typeof index === 'number' ? index : undefined });
    }
    throw obf.fail(err, 'write', `capture commit of ${runs.length} runs`);
  } finally {
    sourceDone();
    obfDone();
  }
}

/**
 * The iSCSI framer (RFC 7143 11.1): turns a TCP byte stream into whole PDUs, and PDUs into the
 * pieces to write. Separate from the decoders (pdu.ts); no sockets here either.
 *
 * A PDU on the wire is: BHS (48 bytes), AHS (TotalAHSLength × 4 bytes), HeaderDigest (4 bytes,
 * when negotiated, over BHS and AHS), the data segment padded to a multiple of 4, DataDigest
 * (4 bytes, when negotiated and the data segment is not empty, over data and padding). Digests
 * are CRC32C, least significant byte first (RFC 7143 13.1, src/native/crc32c.ts).
 *
 * Received bytes are kept as the list of chunks the socket gave. A PDU that lies inside one
 * chunk is handed on as views into it (no copy); one that spans chunks is assembled with one
 * Buffer.concat of exactly its bytes.
 */
import { ArgumentError, DecodeError } from '../../errors';
import { crc32c, crc32cBytes } from '../../native/crc32c';
import { BHS_LENGTH, IscsiOpcode, padded, type RawPdu } from './pdu';

/**
 * The data segment limit of a Login Request (RFC 7143 13.12 default MaxRecvDataSegmentLength):
 * the declared value does not apply during the login phase; LIO enforces the same.
 */
export const LOGIN_MAX_DATA_SEGMENT_LENGTH = 8192;
/** MaxRecvDataSegmentLength range (RFC 7143 13.12). */
export const MIN_MAX_RECV_DATA_SEGMENT_LENGTH = 512;
export const MAX_MAX_RECV_DATA_SEGMENT_LENGTH = 0xff_ffff;

const DIGEST_LENGTH = 4;

/**
 * The stream cannot be framed any further (a DataSegmentLength above the limit): the
 * connection must close. A DecodeError (code ERR_SCSI_DECODE) of structure `iSCSI PDU`,
 * `offset` 5 (DataSegmentLength) counted from the start of the offending PDU.
 */
export class FramingError extends DecodeError {
  constructor(offset: number, message: string) {
    super('iSCSI PDU', offset, message);
  }
}

/** A framed PDU and the result of its digest checks (true when that digest is off). */
export type FramedPdu = RawPdu & {
  /** False: BHS or AHS arrived damaged; nothing in it can be trusted, drop the connection
   *  (RFC 7143 7.8). */
  headerDigestOk: boolean;
  /** False: the data arrived damaged; the header is good, answer with a Reject (reason
   *  DATA_DIGEST_ERROR) and let the initiator retry (RFC 7143 7.8). */
  dataDigestOk: boolean;
};

export interface FramerOptions {
  /** Our declared MaxRecvDataSegmentLength (RFC 7143 13.12; 8192 until negotiated). */
  maxRecvDataSegmentLength: number;
  headerDigest: boolean;
  dataDigest: boolean;
}

function checkLimit(n: unknown): number {
  if (
    typeof n !== 'number' ||
    !Number.isInteger(n) ||
    n < MIN_MAX_RECV_DATA_SEGMENT_LENGTH ||
    n > MAX_MAX_RECV_DATA_SEGMENT_LENGTH
  ) {
    throw new ArgumentError(
      `maxRecvDataSegmentLength must be an integer in ${MIN_MAX_RECV_DATA_SEGMENT_LENGTH}..${MAX_MAX_RECV_DATA_SEGMENT_LENGTH}, got ${String(n)}`,
    );
  }
  return n;
}

/**
 * Gathers received bytes into PDUs. Settings (digests, limit) take effect at the next PDU
 * boundary: a PDU not yet handed out is framed with the settings current when it is.
 */
export class PduFramer {
  private maxRecv: number;
  private headerDigest: boolean;
  private dataDigest: boolean;
  /** Received chunks not yet handed out; `head` bytes of chunks[0] are already consumed. */
  private chunks: Buffer[] = [];
  private head = 0;
  private buffered = 0;
  private failure: FramingError | undefined;

  constructor(opts: FramerOptions) {
    this.maxRecv = checkLimit(opts.maxRecvDataSegmentLength);
    this.headerDigest = opts.headerDigest;
    this.dataDigest = opts.dataDigest;
  }

  /**
   * Digests for the PDUs not yet handed out (they switch on after login, RFC 7143 13.1). The
   * login exchange is lock-step (an initiator sends no Full Feature Phase PDU before the final
   * Login Response), so calling this after `push` returned the last Login Request is exact.
   */
  setDigests(header: boolean, data: boolean): void {
    this.headerDigest = header;
    this.dataDigest = data;
  }

  /** Our MaxRecvDataSegmentLength once negotiated (applies to all PDUs but Login Requests). */
  setMaxRecvDataSegmentLength(n: number): void {
    this.maxRecv = checkLimit(n);
  }

  /** Bytes received and not yet handed out as PDUs. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Adds received bytes and returns every PDU now whole, in order. */
  push(chunk: Buffer): FramedPdu[] {
    this.append(chunk);
    const out: FramedPdu[] = [];
    for (let pdu = this.next(); pdu !== undefined; pdu = this.next()) out.push(pdu);
    return out;
  }

  /** Adds received bytes without framing them (then call `next`). */
  append(chunk: Buffer): void {
    if (this.failure) throw this.failure;
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /**
   * The next whole PDU, or undefined until more bytes arrive. Lets a caller change settings
   * between two PDUs that arrived in one chunk.
   */
  next(): FramedPdu | undefined {
    if (this.failure) throw this.failure;
    if (this.buffered < 8) return undefined;
    const opcode = this.byteAt(0) & 0x3f;
    const dsl = (this.byteAt(5) << 16) | (this.byteAt(6) << 8) | this.byteAt(7);
    // RFC 7143 13.12: a PDU above the receiver's MaxRecvDataSegmentLength is a protocol error;
    // during login the default (8192) applies.
    const limit = opcode === IscsiOpcode.LOGIN_REQUEST ? LOGIN_MAX_DATA_SEGMENT_LENGTH : this.maxRecv;
    if (dsl > limit) {
      this.failure = new FramingError(
        5,
        `DataSegmentLength ${dsl} exceeds MaxRecvDataSegmentLength ${limit} (opcode 0x${opcode.toString(16).padStart(2, '0')})`,
      );
      throw this.failure;
    }
    if (this.buffered < BHS_LENGTH) return undefined;
    const ahsLength = this.byteAt(4) * 4;
    const headerEnd = BHS_LENGTH + ahsLength;
    const hd = this.headerDigest ? DIGEST_LENGTH : 0;
    const dataStart = headerEnd + hd;
    const dataEnd = dataStart + padded(dsl);
    const dd = this.dataDigest && dsl > 0 ? DIGEST_LENGTH : 0;
    const total = dataEnd + dd;
    if (this.buffered < total) return undefined;

    const bytes = this.take(total);
    let headerDigestOk = true;
    if (hd) headerDigestOk = crc32c(bytes.subarray(0, headerEnd)) === bytes.readUInt32LE(headerEnd);
    let dataDigestOk = true;
    if (dd) dataDigestOk = crc32c(bytes.subarray(dataStart, dataEnd)) === bytes.readUInt32LE(dataEnd);
    return {
      bhs: bytes.subarray(0, BHS_LENGTH),
      ahs: bytes.subarray(BHS_LENGTH, headerEnd),
      data: bytes.subarray(dataStart, dataStart + dsl),
      headerDigestOk,
      dataDigestOk,
    };
  }

  /** Byte i of the unconsumed stream (i < buffered). Only used on the first 8..48 bytes. */
  private byteAt(i: number): number {
    let k = 0;
    let at = this.head + i;
    while (at >= this.chunks[k].length) {
      at -= this.chunks[k].length;
      k++;
    }
    return this.chunks[k][at];
  }

  /** Removes the first n bytes: a view when they lie in one chunk, else one copy. */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first.length - this.head >= n) {
      out = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
    } else {
      const pieces: Buffer[] = [first.subarray(this.head)];
      let have = pieces[0].length;
      let k = 1;
      while (have + this.chunks[k].length <= n) {
        pieces.push(this.chunks[k]);
        have += this.chunks[k].length;
        k++;
        if (have === n) break;
      }
      let head = 0;
      if (have < n) {
        head = n - have;
        pieces.push(this.chunks[k].subarray(0, head));
      }
      out = Buffer.concat(pieces, n);
      this.chunks.splice(0, k);
      this.head = head;
    }
    this.buffered -= n;
    return out;
  }
}

const PADDING = Buffer.alloc(3);

/**
 * The pieces to write for one PDU (for `socket.cork()` + writes, or writev): the header (BHS,
 * AHS and header digest, one small buffer), the data segment as given (not copied), then the
 * padding and data digest. Empty pieces are left out.
 */
export function encodeFrame(pdu: RawPdu, opts: { headerDigest: boolean; dataDigest: boolean }): Buffer[] {
  const headerParts = pdu.ahs.length > 0 ? [pdu.bhs, pdu.ahs] : [pdu.bhs];
  if (opts.headerDigest) {
    let crc = 0;
    for (const p of headerParts) crc = crc32c(p, crc);
    headerParts.push(crc32cBytes(crc));
  }
  const out: Buffer[] = [headerParts.length === 1 ? pdu.bhs : Buffer.concat(headerParts)];
  const dsl = pdu.data.length;
  if (dsl === 0) return out;
  out.push(pdu.data);
  const pad = PADDING.subarray(0, padded(dsl) - dsl);
  if (opts.dataDigest) {
    out.push(Buffer.concat([pad, crc32cBytes(crc32c(pad, crc32c(pdu.data)))]));
  } else if (pad.length > 0) {
    out.push(pad);
  }
  return out;
}

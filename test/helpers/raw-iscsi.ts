/**
 * A raw iSCSI client for tests of the project's target: it logs in with hand-built PDUs (the
 * codecs of src/target/iscsi/pdu.ts) and then sends whatever bytes a test wants.
 */
import net from 'node:net';
import { PduFramer } from '../../src/target/iscsi/framer';
import { decodeLoginResponse, encodeLoginRequest, joinPdu, type RawPdu } from '../../src/target/iscsi/pdu';
import { encodeTextData } from '../../src/target/iscsi/text';

/** A raw client that logs in with hand-built PDUs (the target under test decodes them). */
export class RawClient {
  readonly socket: net.Socket;
  closed = false;
  private readonly framer = new PduFramer({ maxRecvDataSegmentLength: 0xffffff, headerDigest: false, dataDigest: false });
  private waiting?: (pdu: RawPdu | undefined) => void;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (c) => {
      try {
        for (const p of this.framer.push(c)) {
          const w = this.waiting;
          this.waiting = undefined;
          w?.(p);
        }
      } catch {
        socket.destroy();
      }
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.(undefined);
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  next(timeoutMs = 5000): Promise<RawPdu | undefined> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiting = undefined;
        resolve(undefined);
      }, timeoutMs);
      this.waiting = (p) => {
        clearTimeout(t);
        resolve(p);
      };
    });
  }

  /** A one-step leading login (operational stage straight to full feature); true on success. */
  async login(target: string, initiator: string, opts: { digests?: boolean; isid?: Buffer } = {}): Promise<boolean> {
    const digests = opts.digests ?? false;
    const text: [string, string][] = [
      ['InitiatorName', initiator],
      ['TargetName', target],
      ['SessionType', 'Normal'],
      ['HeaderDigest', digests ? 'CRC32C' : 'None'],
      ['DataDigest', digests ? 'CRC32C' : 'None'],
      ['InitialR2T', 'No'],
      ['ImmediateData', 'Yes'],
      ['MaxRecvDataSegmentLength', '262144'],
    ];
    this.socket.write(
      joinPdu(
        encodeLoginRequest({
          transit: true,
          csg: 1,
          nsg: 3,
          isid: opts.isid ?? Buffer.from([0x80, 0, 0, 0, 0x12, 0x34]),
          tsih: 0,
          initiatorTaskTag: 1,
          cid: 0,
          cmdSN: 1,
          expStatSN: 0,
          data: encodeTextData(text),
        }),
      ),
    );
    const r = await this.next();
    if (!r) return false;
    const res = decodeLoginResponse(r);
    return res.statusClass === 0 && res.transit && res.nsg === 3;
  }

  send(b: Buffer): void {
    if (!this.closed) this.socket.write(b);
  }

  close(): void {
    this.socket.destroy();
  }
}


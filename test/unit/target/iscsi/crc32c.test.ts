import fc from 'fast-check';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { crc32c, crc32cBytes, crc32cOf, crc32cSoftware, readCrc32c } from '../../../../src/target/iscsi/crc32c';
import { loadNative } from '../../../../src/initiator/native';
import { hex } from '../../../helpers/codec';
import { SCSI_COMMAND_RFC_READ10 } from './pdu-fixtures';

/** The definition, one bit at a time (reflected, polynomial 0x82F63B78): the reference. */
function bitwiseCrc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

describe('CRC32C (RFC 7143 13.1)', () => {
  // RFC 3720 B.4: each vector's CRC as it goes on the wire, least significant byte first.
  const vectors: Array<[string, Buffer, string, number]> = [
    ['32 bytes of zeroes', Buffer.alloc(32), 'aa 36 91 8a', 0x8a9136aa],
    ['32 bytes of ones', Buffer.alloc(32, 0xff), '43 ab a8 62', 0x62a8ab43],
    ['32 bytes of incrementing 00..1f', Buffer.from(Array.from({ length: 32 }, (_, i) => i)), '4e 79 dd 46', 0x46dd794e],
    ['32 bytes of decrementing 1f..00', Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)), '5c db 3f 11', 0x113fdb5c],
    ['an iSCSI SCSI Read (10) command PDU', SCSI_COMMAND_RFC_READ10, '56 3a 96 d9', 0xd9963a56],
  ];

  it.each(vectors)('matches RFC 3720 B.4: %s', (_name, data, wire, value) => {
    expect(data.length === 32 || data.length === 48).toBe(true);
    expect(crc32c(data)).toBe(value);
    expect(crc32cBytes(crc32c(data)).toString('hex')).toBe(hex(wire).toString('hex'));
    expect(readCrc32c(hex(wire), 0)).toBe(value);
  });

  it('is not zlib.crc32 (CRC-32/ISO-HDLC)', () => {
    expect(zlib.crc32(Buffer.alloc(32))).not.toBe(crc32c(Buffer.alloc(32)));
  });

  it('gives 0 for no bytes and the check value for "123456789"', () => {
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283); // CRC-32C catalogue check value
  });

  it('agrees with the bitwise definition on random data of every alignment', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(7), (bytes, skip) => {
        const data = bytes.subarray(Math.min(skip, bytes.length));
        expect(crc32c(data)).toBe(bitwiseCrc32c(data));
      }),
      { numRuns: 500 },
    );
  });

  it('continues a running CRC across pieces', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 6 }), (pieces) => {
        const whole = Buffer.concat(pieces);
        let running = 0;
        for (const p of pieces) running = crc32c(p, running);
        expect(running).toBe(crc32c(whole));
        expect(crc32cOf(pieces)).toBe(crc32c(whole));
      }),
    );
  });

  it('handles a 1 MiB data segment like the definition', () => {
    const data = Buffer.alloc(1 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    expect(crc32c(data)).toBe(bitwiseCrc32c(data));
  });
});

describe('the native CRC32C (SSE4.2 where present) agrees with the tables', () => {
  it('on random buffers of every size around the native threshold and large ones, continued from random CRCs', () => {
    expect(typeof loadNative().crc32c).toBe('function');
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 5000 }), fc.nat(0xffffffff), (data, prev) => {
        expect(loadNative().crc32c(data, prev)).toBe(crc32cSoftware(data, prev));
        expect(crc32c(data, prev)).toBe(crc32cSoftware(data, prev));
      }),
      { numRuns: 500 },
    );
    const big = crypto.randomBytes(1 << 20);
    expect(crc32c(big)).toBe(crc32cSoftware(big));
    expect(crc32c(big.subarray(3, 70001), 0x12345678)).toBe(crc32cSoftware(big.subarray(3, 70001), 0x12345678));
  });
  it('RFC 3720 B.4: 32 bytes of zeros, and 4 KiB of 0xff through the native path', () => {
    expect(loadNative().crc32c(Buffer.alloc(32), 0)).toBe(0x8a9136aa);
    const ff = Buffer.alloc(4096, 0xff);
    expect(crc32c(ff)).toBe(crc32cSoftware(ff));
  });
});

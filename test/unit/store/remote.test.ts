/**
 * The pieces of RemoteStore that need no peer: the SBC-3 CDBs and parameter data it builds
 * (golden bytes, worked by hand from the standard's tables) and how initiator errors become
 * store failures. The store itself runs against a real tgt in test/integration/store-remote.test.ts.
 */
import { ArgumentError, IscsiError } from '../../../src/errors';
import {
  UNMAP_MAX_DESCRIPTORS,
  decodeLbaStatus,
  encodeGetLbaStatusCdb,
  encodeUnmapCdb,
  encodeUnmapParameterList,
  encodeWriteSame16Cdb,
} from '../../../src/scsi/provisioning';
import { storeErrorOf } from '../../../src/store/remote';
import { StoreError } from '../../../src/store/store';

const hex = (b: Buffer) => b.toString('hex');

describe('SBC-3 encoders of RemoteStore', () => {
  test('UNMAP CDB (SBC-3 r36 5.28.1): 42h, ANCHOR, PARAMETER LIST LENGTH in bytes 7-8', () => {
    expect(hex(encodeUnmapCdb({ parameterListLength: 24 }))).toBe('42000000000000001800');
    expect(hex(encodeUnmapCdb({ parameterListLength: 0xfff8, anchor: true }))).toBe('42010000000000fff800');
    expect(() => encodeUnmapCdb({ parameterListLength: 0x10000 })).toThrow(ArgumentError);
  });

  test('UNMAP parameter list (SBC-3 r36 5.28.2): 8-byte header, 16-byte descriptors', () => {
    const one = encodeUnmapParameterList([{ lba: 0x0102030405060708n, blocks: 0x10 }]);
    expect(hex(one)).toBe('0016' + '0010' + '00000000' + '0102030405060708' + '00000010' + '00000000');
    const two = encodeUnmapParameterList([
      { lba: 0n, blocks: 0xffffffff },
      { lba: 0xffffffffn, blocks: 1 },
    ]);
    expect(two).toHaveLength(40);
    expect(two.readUInt16BE(0)).toBe(38); // UNMAP DATA LENGTH = n - 1
    expect(two.readUInt16BE(2)).toBe(32); // UNMAP BLOCK DESCRIPTOR DATA LENGTH = n - 7
    expect(hex(two.subarray(24))).toBe('00000000ffffffff' + '00000001' + '00000000');
    expect(UNMAP_MAX_DESCRIPTORS).toBe(4095);
    expect(() => encodeUnmapParameterList(new Array(4096).fill({ lba: 0n, blocks: 1 }))).toThrow(/at most 4095/);
    expect(() => encodeUnmapParameterList([{ lba: -1n, blocks: 1 }])).toThrow(ArgumentError);
    expect(() => encodeUnmapParameterList([{ lba: 0n, blocks: 2 ** 32 }])).toThrow(ArgumentError);
  });

  test('WRITE SAME(16) CDB (SBC-3 r36 5.42): 93h, UNMAP bit 3 and ANCHOR bit 4 of byte 1', () => {
    expect(hex(encodeWriteSame16Cdb({ lba: 0x1234n, blocks: 8, unmap: true }))).toBe('9308' + '0000000000001234' + '00000008' + '0000');
    expect(hex(encodeWriteSame16Cdb({ lba: 0xffffffffffffffffn, blocks: 0xffffffff }))).toBe('9300' + 'ffffffffffffffff' + 'ffffffff' + '0000');
    expect(encodeWriteSame16Cdb({ lba: 0n, blocks: 1, unmap: true, anchor: true })[1]).toBe(0x18);
  });

  test('GET LBA STATUS CDB (SBC-3 r36 5.4.1): 9Eh / 12h, STARTING LBA, ALLOCATION LENGTH', () => {
    expect(hex(encodeGetLbaStatusCdb({ lba: 5n, allocationLength: 4104 }))).toBe('9e12' + '0000000000000005' + '00001008' + '0000');
  });

  test('GET LBA STATUS parameter data (SBC-3 r36 5.4.2), as tgt sent it; cut descriptors are dropped', () => {
    const data = Buffer.from(
      '00000034' + '00000000' +
        '0000000000000000' + '00000060' + '01000000' +
        '0000000000000060' + '00000010' + '00000000' +
        '0000000000000070' + '00007f90' + '01000000',
      'hex',
    );
    expect(decodeLbaStatus(data)).toEqual([
      { lba: 0n, blocks: 0x60, provisioningStatus: 1 },
      { lba: 0x60n, blocks: 0x10, provisioningStatus: 0 },
      { lba: 0x70n, blocks: 0x7f90, provisioningStatus: 1 },
    ]);
    expect(decodeLbaStatus(data.subarray(0, 8 + 16 + 10))).toHaveLength(1); // allocation length cut the second
    const declaredShort = Buffer.from(data);
    declaredShort.writeUInt32BE(4 + 16, 0); // PARAMETER DATA LENGTH says one descriptor
    expect(decodeLbaStatus(declaredShort)).toHaveLength(1);
    expect(decodeLbaStatus(Buffer.alloc(4))).toEqual([]);
  });
});

describe('initiator errors as store failures', () => {
  test('CHECK CONDITION is forwarded with the raw sense bytes unchanged', () => {
    const sense = Buffer.from('700005000000000a00000000210000000000', 'hex');
    const err = storeErrorOf(
      new IscsiError('ERR_SCSI_CHECK_CONDITION', 'READ(16): LBA out of range', { scsiStatus: 2, senseKey: 5, asc: 0x21, ascq: 0, sense }),
      'read',
    );
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).failure).toEqual({ kind: 'forwarded', status: 2, sense });
    expect((err as StoreError).failure.kind === 'forwarded' && (err as StoreError & { failure: { sense: Buffer } }).failure.sense).toBe(sense);
    expect((err as StoreError).cause).toBeInstanceOf(IscsiError);
  });

  test('another SCSI status (RESERVATION CONFLICT) is forwarded without sense', () => {
    const err = storeErrorOf(new IscsiError('ERR_SCSI_STATUS', 'status RESERVATION CONFLICT', { scsiStatus: 0x18 }), 'write');
    expect((err as StoreError).failure).toEqual({ kind: 'forwarded', status: 0x18 });
  });

  test.each(['ERR_ISCSI_TIMEOUT', 'ERR_ISCSI_CLOSED', 'ERR_ISCSI_TRANSPORT'] as const)('%s becomes not-ready', (code) => {
    const err = storeErrorOf(new IscsiError(code, 'gone'), 'read');
    expect((err as StoreError).failure).toEqual({ kind: 'not-ready' });
    expect((err as StoreError).message).toBe('read: gone');
  });

  test('other errors pass through unchanged', () => {
    const arg = new ArgumentError('bad');
    expect(storeErrorOf(arg, 'read')).toBe(arg);
  });
});

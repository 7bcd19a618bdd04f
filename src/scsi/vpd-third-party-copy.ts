/**
 * The Third-party Copy VPD page, 8Fh (SPC-4 r37 7.8.17). Pure codec, big-endian.
 *
 * Decoded descriptors: 0001h Supported Commands, 0004h Parameter Data, 0008h Supported
 * Descriptors, 000Ch Supported CSCD Descriptor IDs and 8001h General Copy Operations — what a
 * LID1-only copy manager must provide. Any other descriptor type is kept raw. Every descriptor is
 * padded with zeros to a multiple of 4 bytes (SPC-4 r37 7.8.17.2); the padding is part of its
 * THIRD-PARTY COPY DESCRIPTOR LENGTH.
 *
 * The decoder honours PAGE LENGTH; a descriptor cut by the end of the buffer (allocation length)
 * ends the list with `truncated`, a descriptor whose length runs past the page is a DecodeError.
 */
import { DecodeError, EncodeError } from '../errors';
import { checkUint } from './fields';
import { encodeVpdPage, Peripheral, splitVpdPage, VpdPageCode } from './vpd';

const PAGE = 'Third-party Copy VPD page';

/** THIRD-PARTY COPY DESCRIPTOR TYPE (SPC-4 r37 Table 645). */
export const enum ThirdPartyCopyDescriptorType {
  BLOCK_DEVICE_ROD_LIMITS = 0x0000,
  SUPPORTED_COMMANDS = 0x0001,
  PARAMETER_DATA = 0x0004,
  SUPPORTED_DESCRIPTORS = 0x0008,
  SUPPORTED_CSCD_DESCRIPTOR_IDS = 0x000c,
  ROD_TOKEN_FEATURES = 0x0106,
  SUPPORTED_ROD_TOKEN_AND_ROD_TYPES = 0x0108,
  GENERAL_COPY_OPERATIONS = 0x8001,
  STREAM_COPY_OPERATIONS = 0x9101,
  HELD_DATA = 0xc001,
}

/** A command support descriptor (SPC-4 r37 7.8.17.4.2): an operation code and its service actions. */
export interface CommandSupport {
  /** SUPPORTED OPERATION CODE. */
  opcode: number;
  /** List of supported service actions (ascending per SPC-4). */
  serviceActions: number[];
}

/** 0001h (SPC-4 r37 7.8.17.4). */
export interface SupportedCommandsDescriptor {
  kind: 'supportedCommands';
  commands: CommandSupport[];
}

/** 0004h (SPC-4 r37 7.8.17.5); THIRD-PARTY COPY DESCRIPTOR LENGTH 001Ch. */
export interface ParameterDataDescriptor {
  kind: 'parameterData';
  /** MAXIMUM CSCD DESCRIPTOR COUNT (bytes 8–9). */
  maximumCscdDescriptorCount: number;
  /** MAXIMUM SEGMENT DESCRIPTOR COUNT (bytes 10–11). */
  maximumSegmentDescriptorCount: number;
  /** MAXIMUM DESCRIPTOR LIST LENGTH (bytes 12–15). */
  maximumDescriptorListLength: number;
  /** MAXIMUM INLINE DATA LENGTH (bytes 16–19). */
  maximumInlineDataLength: number;
}

/** 0008h (SPC-4 r37 7.8.17.6): supported CSCD and segment descriptor type codes. */
export interface SupportedDescriptorsDescriptor {
  kind: 'supportedDescriptors';
  descriptorTypeCodes: number[];
}

/** 000Ch (SPC-4 r37 7.8.17.7): supported CSCD descriptor IDs above 07FFh (e.g. FFFFh). */
export interface SupportedCscdDescriptorIdsDescriptor {
  kind: 'supportedCscdDescriptorIds';
  cscdDescriptorIds: number[];
}

/** 8001h (SPC-4 r37 7.8.17.10); THIRD-PARTY COPY DESCRIPTOR LENGTH 0020h. */
export interface GeneralCopyOperationsDescriptor {
  kind: 'generalCopyOperations';
  /** TOTAL CONCURRENT COPIES (bytes 4–7). */
  totalConcurrentCopies: number;
  /** MAXIMUM IDENTIFIED CONCURRENT COPIES (bytes 8–11). */
  maximumIdentifiedConcurrentCopies: number;
  /** MAXIMUM SEGMENT LENGTH (bytes 12–15), in bytes. */
  maximumSegmentLength: number;
  /** DATA SEGMENT GRANULARITY (byte 16), log2 of bytes. */
  dataSegmentGranularity: number;
  /** INLINE DATA GRANULARITY (byte 17), log2 of bytes. */
  inlineDataGranularity: number;
}

/** Any other descriptor: its type and the bytes after its 4-byte header (padding included). */
export interface RawThirdPartyCopyDescriptor {
  kind: 'raw';
  descriptorType: number;
  parameters: Buffer;
}

export type ThirdPartyCopyDescriptor =
  | SupportedCommandsDescriptor
  | ParameterDataDescriptor
  | SupportedDescriptorsDescriptor
  | SupportedCscdDescriptorIdsDescriptor
  | GeneralCopyOperationsDescriptor
  | RawThirdPartyCopyDescriptor;

export interface ThirdPartyCopyPage extends Peripheral {
  descriptors: ThirdPartyCopyDescriptor[];
  truncated: boolean;
}

/** SPC-4 r37 7.8.17: decode the Third-party Copy VPD page. */
export function decodeThirdPartyCopy(buf: Buffer): ThirdPartyCopyPage {
  const { header, body, truncated } = splitVpdPage(buf, VpdPageCode.THIRD_PARTY_COPY, PAGE);
  const descriptors: ThirdPartyCopyDescriptor[] = [];
  const end = header.pageLength; // in body offsets
  let off = 0;
  let cut = truncated;
  while (off < end) {
    const at = 4 + off; // page offset of this descriptor
    if (off + 4 > end) throw new DecodeError(PAGE, at, 'third-party copy descriptor header runs past the page');
    if (off + 4 > body.length) {
      cut = true;
      break;
    }
    const type = body.readUInt16BE(off);
    const length = body.readUInt16BE(off + 2);
    if (off + 4 + length > end) {
      throw new DecodeError(PAGE, at + 2, `THIRD-PARTY COPY DESCRIPTOR LENGTH ${length} runs past the page`);
    }
    if (off + 4 + length > body.length) {
      cut = true;
      break;
    }
    descriptors.push(decodeDescriptor(type, body.subarray(off + 4, off + 4 + length), at));
    off += 4 + length;
  }
  return {
    peripheralQualifier: header.peripheralQualifier,
    peripheralDeviceType: header.peripheralDeviceType,
    descriptors,
    truncated: cut,
  };
}

/** `p` = parameters (descriptor bytes 4…); `at` = page offset of the descriptor. */
function decodeDescriptor(type: number, p: Buffer, at: number): ThirdPartyCopyDescriptor {
  const tooShort = (need: number) =>
    new DecodeError(
      PAGE,
      at + 2,
      `THIRD-PARTY COPY DESCRIPTOR LENGTH ${p.length} is too short for type ${hex4(type)}h (needs ${need})`,
    );
  switch (type) {
    case ThirdPartyCopyDescriptorType.SUPPORTED_COMMANDS: {
      // SPC-4 r37 7.8.17.4: byte 4 COMMANDS SUPPORTED LIST LENGTH, then command support descriptors.
      if (p.length < 1) throw tooShort(1);
      const listLength = p[0];
      if (1 + listLength > p.length) {
        throw new DecodeError(PAGE, at + 4, `COMMANDS SUPPORTED LIST LENGTH ${listLength} runs past the descriptor`);
      }
      const commands: CommandSupport[] = [];
      let i = 1;
      while (i < 1 + listLength) {
        if (i + 2 > 1 + listLength) {
          throw new DecodeError(PAGE, at + 4 + i, 'command support descriptor runs past the commands supported list');
        }
        const n = p[i + 1];
        if (i + 2 + n > 1 + listLength) {
          throw new DecodeError(PAGE, at + 4 + i + 1, `SUPPORTED SERVICE ACTIONS LIST LENGTH ${n} runs past the list`);
        }
        commands.push({ opcode: p[i], serviceActions: [...p.subarray(i + 2, i + 2 + n)] });
        i += 2 + n;
      }
      return { kind: 'supportedCommands', commands };
    }
    case ThirdPartyCopyDescriptorType.PARAMETER_DATA:
      // SPC-4 r37 7.8.17.5, Table 648 (bytes 4–7 reserved).
      if (p.length < 16) throw tooShort(16);
      return {
        kind: 'parameterData',
        maximumCscdDescriptorCount: p.readUInt16BE(4),
        maximumSegmentDescriptorCount: p.readUInt16BE(6),
        maximumDescriptorListLength: p.readUInt32BE(8),
        maximumInlineDataLength: p.readUInt32BE(12),
      };
    case ThirdPartyCopyDescriptorType.SUPPORTED_DESCRIPTORS: {
      // SPC-4 r37 7.8.17.6: byte 4 SUPPORTED DESCRIPTOR LIST LENGTH, then one type code per byte.
      if (p.length < 1) throw tooShort(1);
      const n = p[0];
      if (1 + n > p.length) {
        throw new DecodeError(PAGE, at + 4, `SUPPORTED DESCRIPTOR LIST LENGTH ${n} runs past the descriptor`);
      }
      return { kind: 'supportedDescriptors', descriptorTypeCodes: [...p.subarray(1, 1 + n)] };
    }
    case ThirdPartyCopyDescriptorType.SUPPORTED_CSCD_DESCRIPTOR_IDS: {
      // SPC-4 r37 7.8.17.7: bytes 4–5 SUPPORTED CSCD IDS LIST LENGTH, then 2-byte ids.
      if (p.length < 2) throw tooShort(2);
      const n = p.readUInt16BE(0);
      if (n % 2 !== 0 || 2 + n > p.length) {
        throw new DecodeError(PAGE, at + 4, `SUPPORTED CSCD IDS LIST LENGTH ${n} is odd or runs past the descriptor`);
      }
      const cscdDescriptorIds: number[] = [];
      for (let i = 2; i < 2 + n; i += 2) cscdDescriptorIds.push(p.readUInt16BE(i));
      return { kind: 'supportedCscdDescriptorIds', cscdDescriptorIds };
    }
    case ThirdPartyCopyDescriptorType.GENERAL_COPY_OPERATIONS:
      // SPC-4 r37 7.8.17.10.
      if (p.length < 14) throw tooShort(14);
      return {
        kind: 'generalCopyOperations',
        totalConcurrentCopies: p.readUInt32BE(0),
        maximumIdentifiedConcurrentCopies: p.readUInt32BE(4),
        maximumSegmentLength: p.readUInt32BE(8),
        dataSegmentGranularity: p[12],
        inlineDataGranularity: p[13],
      };
    default:
      return { kind: 'raw', descriptorType: type, parameters: Buffer.from(p) };
  }
}

/** SPC-4 r37 7.8.17: encode the page; descriptors are written in the order given (SPC-4 wants ascending types). */
export function encodeThirdPartyCopy(
  descriptors: readonly ThirdPartyCopyDescriptor[],
  peripheral?: Partial<Peripheral>,
): Buffer {
  const body = Buffer.concat(descriptors.map((d, i) => encodeDescriptor(d, i)));
  return encodeVpdPage(VpdPageCode.THIRD_PARTY_COPY, body, peripheral, PAGE);
}

function encodeDescriptor(d: ThirdPartyCopyDescriptor, index: number): Buffer {
  const field = (name: string) => `${name} [descriptor ${index}]`;
  let type: number;
  let params: Buffer;
  switch (d.kind) {
    case 'supportedCommands': {
      const entries = d.commands.map((c, j) => {
        checkUint(PAGE, field(`SUPPORTED OPERATION CODE [${j}]`), c.opcode, 8);
        checkUint(PAGE, field(`SUPPORTED SERVICE ACTIONS LIST LENGTH [${j}]`), c.serviceActions.length, 8);
        c.serviceActions.forEach((sa, k) => checkUint(PAGE, field(`service action [${j}][${k}]`), sa, 8));
        return Buffer.from([c.opcode, c.serviceActions.length, ...c.serviceActions]);
      });
      const list = Buffer.concat(entries);
      checkUint(PAGE, field('COMMANDS SUPPORTED LIST LENGTH'), list.length, 8);
      type = ThirdPartyCopyDescriptorType.SUPPORTED_COMMANDS;
      params = Buffer.concat([Buffer.from([list.length]), list]);
      break;
    }
    case 'parameterData':
      checkUint(PAGE, field('MAXIMUM CSCD DESCRIPTOR COUNT'), d.maximumCscdDescriptorCount, 16);
      checkUint(PAGE, field('MAXIMUM SEGMENT DESCRIPTOR COUNT'), d.maximumSegmentDescriptorCount, 16);
      checkUint(PAGE, field('MAXIMUM DESCRIPTOR LIST LENGTH'), d.maximumDescriptorListLength, 32);
      checkUint(PAGE, field('MAXIMUM INLINE DATA LENGTH'), d.maximumInlineDataLength, 32);
      type = ThirdPartyCopyDescriptorType.PARAMETER_DATA;
      params = Buffer.alloc(0x1c);
      params.writeUInt16BE(d.maximumCscdDescriptorCount, 4);
      params.writeUInt16BE(d.maximumSegmentDescriptorCount, 6);
      params.writeUInt32BE(d.maximumDescriptorListLength, 8);
      params.writeUInt32BE(d.maximumInlineDataLength, 12);
      break;
    case 'supportedDescriptors':
      checkUint(PAGE, field('SUPPORTED DESCRIPTOR LIST LENGTH'), d.descriptorTypeCodes.length, 8);
      d.descriptorTypeCodes.forEach((c, j) => checkUint(PAGE, field(`descriptor type code [${j}]`), c, 8));
      type = ThirdPartyCopyDescriptorType.SUPPORTED_DESCRIPTORS;
      params = Buffer.from([d.descriptorTypeCodes.length, ...d.descriptorTypeCodes]);
      break;
    case 'supportedCscdDescriptorIds':
      checkUint(PAGE, field('SUPPORTED CSCD IDS LIST LENGTH'), 2 * d.cscdDescriptorIds.length, 16);
      type = ThirdPartyCopyDescriptorType.SUPPORTED_CSCD_DESCRIPTOR_IDS;
      params = Buffer.alloc(2 + 2 * d.cscdDescriptorIds.length);
      params.writeUInt16BE(2 * d.cscdDescriptorIds.length, 0);
      d.cscdDescriptorIds.forEach((id, j) => {
        checkUint(PAGE, field(`SUPPORTED CSCD ID [${j}]`), id, 16);
        params.writeUInt16BE(id, 2 + 2 * j);
      });
      break;
    case 'generalCopyOperations':
      checkUint(PAGE, field('TOTAL CONCURRENT COPIES'), d.totalConcurrentCopies, 32);
      checkUint(PAGE, field('MAXIMUM IDENTIFIED CONCURRENT COPIES'), d.maximumIdentifiedConcurrentCopies, 32);
      checkUint(PAGE, field('MAXIMUM SEGMENT LENGTH'), d.maximumSegmentLength, 32);
      checkUint(PAGE, field('DATA SEGMENT GRANULARITY'), d.dataSegmentGranularity, 8);
      checkUint(PAGE, field('INLINE DATA GRANULARITY'), d.inlineDataGranularity, 8);
      type = ThirdPartyCopyDescriptorType.GENERAL_COPY_OPERATIONS;
      params = Buffer.alloc(0x20);
      params.writeUInt32BE(d.totalConcurrentCopies, 0);
      params.writeUInt32BE(d.maximumIdentifiedConcurrentCopies, 4);
      params.writeUInt32BE(d.maximumSegmentLength, 8);
      params[12] = d.dataSegmentGranularity;
      params[13] = d.inlineDataGranularity;
      break;
    case 'raw':
      checkUint(PAGE, field('THIRD-PARTY COPY DESCRIPTOR TYPE'), d.descriptorType, 16);
      type = d.descriptorType;
      params = d.parameters;
      break;
  }
  // SPC-4 r37 7.8.17.2: DESCRIPTOR PAD so that the whole descriptor is a multiple of 4 bytes.
  const padded = (params.length + 3) & ~3;
  if (padded > 0xffff) {
    throw new EncodeError(PAGE, field('THIRD-PARTY COPY DESCRIPTOR LENGTH'), `${padded} does not fit 16 bits`);
  }
  const out = Buffer.alloc(4 + padded);
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(padded, 2);
  params.copy(out, 4);
  return out;
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}

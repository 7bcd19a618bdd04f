/**
 * The mode parameter header of MODE SENSE(10) data (SPC-4 "Mode parameter header formats"), with
 * the DEVICE-SPECIFIC PARAMETER of a direct-access block device (SBC-3 r36 6.4.1): decode only,
 * for the initiator (the target builds its header in src/target/scsi/commands/mode-sense.ts).
 *
 * Pure codec, no I/O. A short buffer is a DecodeError whose offset is the first byte missing.
 */
import { DecodeError } from '../errors';

export interface ModeParameterHeader10 {
  /** Bytes 0–1: MODE DATA LENGTH (the bytes that follow this field). */
  modeDataLength: number;
  /** Byte 2: MEDIUM TYPE. */
  mediumType: number;
  /** Byte 3: DEVICE-SPECIFIC PARAMETER, raw. */
  deviceSpecificParameter: number;
  /** Byte 3 bit 7 (SBC-3 r36 6.4.1): WP, the medium is write protected. */
  writeProtect: boolean;
  /** Byte 3 bit 4 (SBC-3 r36 6.4.1): DPOFUA, DPO and FUA are supported. */
  dpofua: boolean;
  /** Byte 4 bit 0: LONGLBA, the block descriptors are the long (16-byte) form. */
  longLba: boolean;
  /** Bytes 6–7: BLOCK DESCRIPTOR LENGTH. */
  blockDescriptorLength: number;
}

/** Length of the MODE SENSE(10) mode parameter header. */
export const MODE_PARAMETER_HEADER_10_LENGTH = 8;

export function decodeModeParameterHeader10(b: Buffer): ModeParameterHeader10 {
  if (b.length < MODE_PARAMETER_HEADER_10_LENGTH) throw new DecodeError('mode parameter header(10)', b.length, `is ${b.length} bytes, expected 8`);
  const dsp = b[3];
  return {
    modeDataLength: b.readUInt16BE(0),
    mediumType: b[2],
    deviceSpecificParameter: dsp,
    writeProtect: (dsp & 0x80) !== 0,
    dpofua: (dsp & 0x10) !== 0,
    longLba: (b[4] & 0x01) !== 0,
    blockDescriptorLength: b.readUInt16BE(6),
  };
}

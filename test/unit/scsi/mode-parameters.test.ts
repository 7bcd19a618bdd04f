import { decodeModeParameterHeader10 } from '../../../src/scsi/mode-parameters';
import { assertTotalDecoder, decodeErrorOf, hex } from '../../helpers/codec';

// The project's target (src/target/scsi/commands/mode-sense.ts) for a write-protected LUN,
// MODE SENSE(10) with DBD = 1 and all pages, cut to the header.
const WP = hex(`
  00 7a       # MODE DATA LENGTH 122
  00          # MEDIUM TYPE
  90          # DEVICE-SPECIFIC PARAMETER: WP 1, DPOFUA 1
  00          # LONGLBA 0
  00          # reserved
  00 00       # BLOCK DESCRIPTOR LENGTH 0
`);

// A writable LUN with a long block descriptor after the header.
const LONG = hex(`
  00 26       # MODE DATA LENGTH 38
  00          # MEDIUM TYPE
  10          # DEVICE-SPECIFIC PARAMETER: WP 0, DPOFUA 1
  01          # LONGLBA 1
  00          # reserved
  00 10       # BLOCK DESCRIPTOR LENGTH 16
  00 00 00 00 00 00 80 00 00 00 00 00 00 00 02 00  # the long block descriptor (not decoded here)
`);

describe('mode parameter header(10)', () => {
  it('decodes WP and DPOFUA of a write-protected LUN', () => {
    expect(decodeModeParameterHeader10(WP)).toEqual({
      modeDataLength: 122,
      mediumType: 0,
      deviceSpecificParameter: 0x90,
      writeProtect: true,
      dpofua: true,
      longLba: false,
      blockDescriptorLength: 0,
    });
  });

  it('decodes a writable LUN with LONGLBA and a block descriptor after the header', () => {
    expect(decodeModeParameterHeader10(LONG)).toMatchObject({ modeDataLength: 38, writeProtect: false, dpofua: true, longLba: true, blockDescriptorLength: 16 });
  });

  it('rejects every cut with the first missing byte as offset', () => {
    for (let cut = 0; cut < 8; cut++) expect(decodeErrorOf(() => decodeModeParameterHeader10(WP.subarray(0, cut))).offset).toBe(cut);
  });

  it('answers any bytes with a value or a DecodeError', () => {
    assertTotalDecoder(decodeModeParameterHeader10, LONG, 500);
  });
});

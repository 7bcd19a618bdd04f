/**
 * The reference CRC32C the tests compare against: the definition one bit at a time (RFC 7143
 * 13.1: generator 0x11EDC6F41, reflected 0x82F63B78, initial and final XOR 0xFFFFFFFF), sharing
 * nothing with the code under test (the addon's SSE4.2 and table paths, src/native/crc32c.ts).
 * `previous` continues a running CRC as crc32c(data, previous) does. Slow; fine for tests.
 */
export function referenceCrc32c(data: Uint8Array, previous = 0): number {
  let crc = ~previous;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

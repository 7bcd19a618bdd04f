import { parseSize } from '../../../src/util/size';

describe('parseSize', () => {
  test.each([
    ['512', 512],
    ['64M', 64 * 1024 ** 2],
    ['1G', 1024 ** 3],
    ['1.5G', 1.5 * 1024 ** 3],
    ['4k', 4096],
    ['2GiB', 2 * 1024 ** 3],
  ])('%s = %d bytes', (text, bytes) => expect(parseSize(text, '--size')).toBe(bytes));

  test.each(['', 'abc', '-1M', '0', '1.3', '12X'])('%j is refused with the option named', (text) => {
    expect(() => parseSize(text, '--size')).toThrow(/--size/);
  });
});

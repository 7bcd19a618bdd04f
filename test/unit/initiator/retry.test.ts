import { DEFAULT_RETRY, NO_RETRY, retryDelay } from '../../../src/initiator/retry';

const GOOD = 0x00;
const CHECK = 0x02;
const BUSY = 0x08;
const TASK_SET_FULL = 0x28;
const RESERVATION_CONFLICT = 0x18;

describe('retry policy', () => {
  test('BUSY and TASK SET FULL back off with jitter under an exponential ceiling', () => {
    for (const status of [BUSY, TASK_SET_FULL]) {
      expect(retryDelay(DEFAULT_RETRY, 1, status, undefined, () => 0.999)).toBe(4); // < 5 ms
      expect(retryDelay(DEFAULT_RETRY, 3, status, undefined, () => 0.999)).toBe(19); // < 20 ms
      expect(retryDelay(DEFAULT_RETRY, 3, status, undefined, () => 0)).toBe(0);
      expect(retryDelay(DEFAULT_RETRY, 7, status, undefined, () => 0.999)).toBeLessThan(DEFAULT_RETRY.maxDelayMs);
    }
  });

  test('a UNIT ATTENTION is retried at once, then backed off', () => {
    expect(retryDelay(DEFAULT_RETRY, 1, CHECK, 0x6, () => 0.5)).toBe(0);
    expect(retryDelay(DEFAULT_RETRY, 2, CHECK, 0x6, () => 0.999)).toBe(9);
  });

  test('bounded: no retry once maxAttempts is reached', () => {
    expect(retryDelay(DEFAULT_RETRY, DEFAULT_RETRY.maxAttempts, BUSY, undefined)).toBeUndefined();
    expect(retryDelay(NO_RETRY, 1, BUSY, undefined)).toBeUndefined();
  });

  test('GOOD, other CHECK CONDITIONs and RESERVATION CONFLICT are final', () => {
    expect(retryDelay(DEFAULT_RETRY, 1, GOOD, undefined)).toBeUndefined();
    expect(retryDelay(DEFAULT_RETRY, 1, CHECK, 0x5)).toBeUndefined();
    expect(retryDelay(DEFAULT_RETRY, 1, CHECK, 0x3)).toBeUndefined();
    expect(retryDelay(DEFAULT_RETRY, 1, RESERVATION_CONFLICT, undefined)).toBeUndefined();
  });
});

describe('NOT READY, becoming ready (04h/01h): waited out for a bounded time', () => {
  const BECOMING = { asc: 0x04, ascq: 0x01 };
  test('retried past maxAttempts while within the budget, backing off to 1 s', () => {
    expect(retryDelay(DEFAULT_RETRY, 1, 0x02, 0x02, Math.random, { ...BECOMING, elapsedMs: 0 })).toBe(100);
    expect(retryDelay(DEFAULT_RETRY, 3, 0x02, 0x02, Math.random, { ...BECOMING, elapsedMs: 500 })).toBe(400);
    expect(retryDelay(DEFAULT_RETRY, 40, 0x02, 0x02, Math.random, { ...BECOMING, elapsedMs: 30_000 })).toBe(1000);
  });
  test('final once the budget is spent, and with NO_RETRY', () => {
    expect(retryDelay(DEFAULT_RETRY, 61, 0x02, 0x02, Math.random, { ...BECOMING, elapsedMs: 60_000 })).toBeUndefined();
    expect(retryDelay(NO_RETRY, 1, 0x02, 0x02, Math.random, { ...BECOMING, elapsedMs: 0 })).toBeUndefined();
  });
  test('other NOT READY reasons stay final (04h/03h needs a person)', () => {
    expect(retryDelay(DEFAULT_RETRY, 1, 0x02, 0x02, Math.random, { asc: 0x04, ascq: 0x03, elapsedMs: 0 })).toBeUndefined();
  });
});

/** The poll beside a long operation: ticks until false or stopped; stop() ends the wait at once. */
import { every } from '../../../src/util/every';

test('ticks until the tick returns false', async () => {
  let ticks = 0;
  let ended!: () => void;
  const done = new Promise<void>((r) => (ended = r));
  const poll = every(1, async () => {
    ticks++;
    if (ticks === 3) {
      ended();
      return false;
    }
    return true;
  });
  await done;
  await poll.stop();
  expect(ticks).toBe(3);
});

test('stop() ends the current wait at once, without another tick', async () => {
  let ticks = 0;
  const poll = every(60_000, async () => {
    ticks++;
  });
  const t0 = Date.now();
  await poll.stop();
  expect(Date.now() - t0).toBeLessThan(1000);
  expect(ticks).toBe(0);
});

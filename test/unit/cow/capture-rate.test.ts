/**
 * The capture rate of a snapshot's status (src/cow/capture-rate.ts) on a clock the test moves:
 * one sample per 100 ms at most, 30 s kept, the rate falling as time passes without captures.
 */
import { CaptureRate } from '../../../src/cow/capture-rate';

function clocked() {
  let t = 1_000_000;
  const rate = new CaptureRate(() => t);
  return { rate, advance: (ms: number) => (t += ms) };
}

test('no rate before two samples', () => {
  const { rate, advance } = clocked();
  expect(rate.perSecond()).toBe(0);
  rate.sample(1000n);
  advance(5000);
  expect(rate.perSecond()).toBe(0);
});

test('bytes over the time between the first sample and now', () => {
  const { rate, advance } = clocked();
  rate.sample(0n);
  advance(1000);
  rate.sample(64n * 1024n);
  expect(rate.perSecond()).toBe(64 * 1024);
  advance(1000); // no captures for a second: the rate falls
  expect(rate.perSecond()).toBe(32 * 1024);
});

test('samples closer than 100 ms update the last one instead of adding one', () => {
  const { rate, advance } = clocked();
  rate.sample(0n);
  advance(50);
  rate.sample(100n); // updates the first: still one sample
  expect(rate.perSecond()).toBe(0);
  advance(100);
  rate.sample(300n);
  expect(rate.perSecond()).toBeCloseTo((300 - 100) / 0.15, 6); // the first sample now says 100 bytes
});

test('samples older than 30 s go, two are always kept', () => {
  const { rate, advance } = clocked();
  rate.sample(0n);
  advance(20_000);
  rate.sample(1_000_000n);
  advance(20_000);
  rate.sample(1_000_000n + 20_000n); // the first sample is 40 s old now: dropped
  expect(rate.perSecond()).toBe(1000);
  advance(60_000);
  rate.sample(1_000_000n + 20_000n); // both older ones go but one: two kept
  expect(rate.perSecond()).toBe(0);
});

/**
 * The progress display (src/cli/progress.ts) driven with a clock of the test's own and a stream
 * that keeps what was written: the bar's text and its control sequences on a terminal, the
 * status line of SIGUSR1 between two bars, NDJSON at most once a second with --json, plain
 * lines off a terminal with `lines`, and nothing otherwise. A real command under a
 * pseudo-terminal: test/integration/progress-tty.test.ts.
 */
import { PassThrough } from 'node:stream';
import { Output } from '../../../src/cli/output';
import { formatBytes, formatDuration, Progress } from '../../../src/cli/progress';

const MiB = 1048576;

/** A stream that keeps what is written to it, with a terminal width. */
function sink(columns?: number): PassThrough & { columns?: number; text(): string } {
  const s = new PassThrough() as PassThrough & { columns?: number; text(): string };
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.columns = columns;
  s.text = () => Buffer.concat(chunks).toString();
  return s;
}

function clock(): { now: () => number; at: (ms: number) => void } {
  let t = 1_000_000;
  const base = t;
  return { now: () => t, at: (ms) => (t = base + ms) };
}

test('bytes and durations read as a person expects', () => {
  expect(formatBytes(0)).toBe('0 B');
  expect(formatBytes(1536)).toBe('1.5 KiB');
  expect(formatBytes(448 * MiB)).toBe('448.0 MiB');
  expect(formatBytes(9 * 1024 * MiB)).toBe('9.0 GiB');
  expect(formatDuration(3)).toBe('00:03');
  expect(formatDuration(3725)).toBe('1:02:05');
  expect(formatDuration(Number.NaN)).toBe('--:--');
});

test('on a terminal: the label once, then one line rewritten in place; the last line stays with the time taken', () => {
  const err = sink(200);
  const out = sink();
  const c = clock();
  const p = new Progress(new Output(false, out, err), { command: 'copy', tty: true, err, now: c.now });
  p.start('copy', 'copy A → B');
  c.at(2000);
  p.update(512n * 1024n, 2048n * 1024n, 'blocks', { blockSize: 512, path: 'xcopy' }); // 256 of 1024 MiB in 2 s
  c.at(2100);
  p.update(600n * 1024n, 2048n * 1024n, 'blocks', { blockSize: 512, path: 'xcopy' }); // within 200 ms: not drawn
  c.at(4000);
  p.update(2048n * 1024n, 2048n * 1024n, 'blocks', { blockSize: 512, path: 'host' });
  p.finishLine();
  expect(err.text()).toBe(
    'copy A → B\n' +
      '\r\x1b[Kcopy [#####---------------]  25.0%  256.0 MiB of 1.0 GiB  128.0 MiB/s  ETA 00:06  XCOPY' +
      '\r\x1b[Kcopy [####################] 100.0%  1.0 GiB of 1.0 GiB  256.0 MiB/s  done in 00:04  HOST' +
      '\r\x1b[Kcopy [####################] 100.0%  1.0 GiB of 1.0 GiB  256.0 MiB/s  done in 00:04  HOST\n',
  );
  expect(out.text()).toBe('');
});

test('a line never wider than the terminal (a wrapped line is not rewritten in place)', () => {
  const err = sink(40);
  const c = clock();
  const p = new Progress(new Output(false, sink(), err), { tty: true, err, now: c.now });
  p.start('apply');
  c.at(1000);
  p.update(3n, 10n, 'records', { extra: 'OBF 3 records (0.1% full)' });
  const last = err.text().split('\r\x1b[K').pop()!;
  expect(last).toBe('apply [######--------------]  30.0%  3 ');
  expect(last.length).toBe(39);
});

test('SIGUSR1: the status line goes between two bars, the bar drawn again after it', () => {
  const err = sink(200);
  const c = clock();
  const p = new Progress(new Output(false, sink(), err), { command: 'backup', tty: true, err, now: c.now });
  p.start('copy', '604 outboard copy');
  c.at(1000);
  p.update(1024n, 4096n, 'blocks', { blockSize: 4096, path: 'xcopy', extra: 'OBF 2 records (0.0% full)' });
  c.at(1500);
  p.printStatus();
  const bar = '[#####---------------]  25.0%  4.0 MiB of 16.0 MiB  4.0 MiB/s';
  expect(err.text()).toBe(
    '604 outboard copy\n' +
      `\r\x1b[Kcopy ${bar}  ETA 00:03  XCOPY  OBF 2 records (0.0% full)` +
      '\r\x1b[Kbackup: copy: 25.0%, 4.0 MiB of 16.0 MiB, 2.7 MiB/s, ETA 00:05, XCOPY, OBF 2 records (0.0% full); 00:02 elapsed\n' +
      `\r\x1b[Kcopy [#####---------------]  25.0%  4.0 MiB of 16.0 MiB  2.7 MiB/s  ETA 00:05  XCOPY  OBF 2 records (0.0% full)`,
  );
});

test('off a terminal: the status line alone; before any numbers it says the command is starting', () => {
  const err = sink();
  const c = clock();
  const p = new Progress(new Output(false, sink(), err), { command: 'verify', tty: false, err, now: c.now });
  c.at(3000);
  p.printStatus();
  p.start('verify', 'verify: reading the image back');
  p.update(10n, 20n, 'blocks', { blockSize: 512 });
  p.finishLine();
  expect(err.text()).toBe('verify: starting, 00:03 elapsed\n');
});

test('with `lines` off a terminal: plain lines at most every 500 ms, and the last numbers at the end', () => {
  const err = sink();
  const c = clock();
  const p = new Progress(new Output(false, sink(), err), { command: 'copy', tty: false, lines: true, err, now: c.now });
  p.start('copy');
  c.at(1000);
  p.update(2048n, 8192n, 'blocks', { blockSize: 512, path: 'host' });
  c.at(1200);
  p.update(4096n, 8192n, 'blocks', { blockSize: 512, path: 'host' });
  c.at(2000);
  p.update(8192n, 8192n, 'blocks', { blockSize: 512, path: 'host' });
  p.finishLine();
  expect(err.text()).toBe(
    'copy: 25.0%, 1.0 MiB of 4.0 MiB, 1.0 MiB/s, ETA 00:03, HOST\n' + 'copy: 100.0%, 4.0 MiB of 4.0 MiB, 2.0 MiB/s, done in 00:02, HOST\n',
  );
});

test('with --json: NDJSON progress records on stdout at most once a second, nothing on stderr', () => {
  const err = sink(200);
  const out = sink();
  const c = clock();
  const p = new Progress(new Output(true, out, err), { tty: true, err, now: c.now });
  p.start('copy');
  for (const ms of [0, 400, 1100, 1500]) {
    c.at(ms);
    p.update(BigInt(ms), 2000n, 'blocks', { blockSize: 512, path: 'xcopy', fields: { obf_records: 1 } });
  }
  p.finishLine();
  expect(err.text()).toBe('');
  expect(out.text().trim().split('\n').map((l) => JSON.parse(l) as unknown)).toEqual([
    { type: 'progress', phase: 'copy', event: 'start' },
    { type: 'progress', phase: 'copy', done: '0', total: '2000', unit: 'blocks', path: 'xcopy', obf_records: 1 },
    { type: 'progress', phase: 'copy', done: '1100', total: '2000', unit: 'blocks', path: 'xcopy', obf_records: 1 },
  ]);
});

/**
 * The resuming event (src/cow/events.ts, docs/cow.md "The resuming event"), published by the
 * snapshot manager before each journalled snapshot resumes: the resume waits for the work its
 * subscribers hold on, a rejected one fails it, and with no subscriber nothing waits. (The held
 * event is tested with a real institute in cow-store-capabilities.test.ts.)
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { publishResuming, SNAPSHOT_RESUMING_CHANNEL, type SnapshotResumingMessage } from '../../../src/cow/events';
import { onSnapshotResuming } from '../../helpers/held';

const rec = { id: 'a0b1c2d3-0000-4000-8000-000000000001', source: '/backstores/fileio/src', obf: 'file:/tmp/x.obf' };

test('the resume waits for the work held on; the message names the snapshot, its source and OBF; hold() after the event throws', async () => {
  let seen: SnapshotResumingMessage | undefined;
  let go!: () => void;
  const off = onSnapshotResuming((m) => {
    seen = m;
    return new Promise<void>((r) => (go = r));
  });
  try {
    let resumed = false;
    const p = publishResuming(rec).then(() => (resumed = true));
    await new Promise((r) => setImmediate(r));
    expect(seen).toMatchObject({ snapshotId: rec.id, source: rec.source, obf: rec.obf });
    expect(resumed).toBe(false);
    go();
    await p;
    expect(resumed).toBe(true);
    expect(() => seen!.hold(Promise.resolve())).toThrow(/after the resuming event/);
  } finally {
    off();
  }
});

test('a rejected hold fails the resume with its error', async () => {
  const off = onSnapshotResuming(() => {
    throw new Error('OBF read failed: EIO');
  });
  try {
    await expect(publishResuming(rec)).rejects.toThrow('OBF read failed: EIO');
  } finally {
    off();
  }
});

test('no subscriber: nothing published, nothing waits', async () => {
  expect(diagnosticsChannel.hasSubscribers(SNAPSHOT_RESUMING_CHANNEL)).toBe(false);
  await expect(publishResuming(rec)).resolves.toBeUndefined();
  expect(SNAPSHOT_RESUMING_CHANNEL).toBe('xcopy-agent:snapshot:resuming'); // documented in docs/cow.md
});

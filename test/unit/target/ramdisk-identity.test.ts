/**
 * A RAM disk's identity (src/target/target.ts openStorageObject): its NAA designator is what a
 * copy manager resolves an EXTENDED COPY's CSCD descriptor to, so two RAM disks of the same name
 * — on two targets, or on one target before and after a restart — must not share one (else a
 * copy between them is silently a copy of a LUN onto itself). A `wwn` (unit serial) in the saved
 * configuration makes it stable, as on LIO.
 */
import pino from 'pino';
import { parseConfig } from '../../../src/target/config';
import { openStorageObject } from '../../../src/target/target';

const log = pino({ level: 'silent' });
const so = (extra: Record<string, unknown> = {}) =>
  parseConfig({ storage_objects: [{ name: 'lun0', plugin: 'ramdisk', size: '1M', ...extra }], targets: [] }).storageObjects[0];

test('two RAM disks named alike have different NAA designators and serials', async () => {
  const [a, b] = [await openStorageObject(so(), log), await openStorageObject(so(), log)];
  expect(a.store.identity.naa!.equals(b.store.identity.naa!)).toBe(false);
  expect(a.store.identity.serial).not.toBe(b.store.identity.serial);
  expect(a.store.identity.naa![0] >> 4).toBe(6); // NAA 6h (SPC-4 r37 7.8.6.6.4)
});

test('with a wwn the designator is the same at each opening', async () => {
  const wwn = '8f8d9d3e-4d4e-4b6b-9a3e-0123456789ab';
  const [a, b] = [await openStorageObject(so({ wwn }), log), await openStorageObject(so({ wwn }), log)];
  expect(a.store.identity.naa!.equals(b.store.identity.naa!)).toBe(true);
  expect(a.store.identity.serial).toBe(b.store.identity.serial);
});

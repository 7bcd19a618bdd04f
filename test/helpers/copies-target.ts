/**
 * The fixture `verify` and `restore` tests share: the project's target with an 8 MiB source and
 * the LUNs copies are made on and restored to, and backups of the source made while a host
 * writes, each returning the source as held at institution (the held event: the backing file
 * copied while the snapshot's writes were held, independent of the COW, copy and OBF code).
 *
 * LUNs: 0 source, 1 OBF, 2 secondary (overwrite), 3 secondary (append), 4 another 8 MiB LUN,
 * 5 a 4 MiB LUN (too small for the image).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { backup } from '../../src/agent/backup';
import { onSnapshotHeld } from './held';
import { removeDir, tempDir } from './tmp';
import { hostWriter, startSnapshotTarget, type SnapshotTarget } from './snapshot-target';

export const COPIES_SIZE = 8 * 1024 * 1024;
const BS = 512;

export interface CopiesTarget extends SnapshotTarget {
  file: (name: string) => string;
  /** A backup of LUN 0 onto `lun` while a host writes; the source as held at institution. */
  backupUnderWrites(lun: number, opts: { mode: 'overwrite' | 'append'; mark?: boolean }, seed: number): Promise<Buffer>;
}

export async function startCopiesTarget(dir: string, iqn: string): Promise<CopiesTarget> {
  const file = (name: string) => path.join(dir, name);
  fs.writeFileSync(file('src.img'), crypto.randomBytes(COPIES_SIZE));
  const t = await startSnapshotTarget(dir, iqn, [
    `file:${file('src.img')}`,
    `file:${file('obf.img')}:16M`,
    `file:${file('sec.img')}:12M`,
    `file:${file('sec-append.img')}:28M`,
    `file:${file('other.img')}:8M`,
    `file:${file('small.img')}:4M`,
  ]);
  const backupUnderWrites = async (lun: number, opts: { mode: 'overwrite' | 'append'; mark?: boolean }, seed: number): Promise<Buffer> => {
    const reference = file(`reference-${seed}.img`);
    const off = onSnapshotHeld(() => fs.promises.copyFile(file('src.img'), reference));
    const writer = hostWriter(t.url(0), { seed, blocks: COPIES_SIZE / BS });
    try {
      await backup({ source: t.url(0), secondary: t.url(lun), obf: t.url(1), mgmt: t.mgmt, log: pino({ level: 'silent' }), yes: true, ...opts });
      if ((await writer.stop()) === 0) throw new Error('the host made no write during the backup');
    } finally {
      off();
      await writer.stop();
    }
    return fs.readFileSync(reference);
  };
  return { ...t, file, backupUnderWrites };
}

/**
 * The fixture for a whole suite: started in a temporary folder named after `name` before its
 * tests (beforeAll), stopped and removed after them (afterAll). The object's members are there
 * once beforeAll has run.
 */
export function copiesTargetSuite(iqn: string, name: string): CopiesTarget {
  const t = {} as CopiesTarget;
  let dir: string | undefined;
  beforeAll(async () => {
    dir = tempDir(name);
    Object.assign(t, await startCopiesTarget(dir, iqn));
  });
  afterAll(async () => {
    await t.server?.stop();
    if (dir) removeDir(dir);
  });
  return t;
}

/**
 * The drill's file-level part (docs/method.md 603 and the restore of named files; docs/restore.md,
 * "Restoring files"): an ext4 file system made by e2fsprogs from a generated tree (`mkfs.ext4
 * -d`, no mount) is a LUN of the drill's target;
 *  1. `backup --toc` of it while a host overwrites the first block of every file once the snapshot
 *     is instituted (the copy must hold the tree, not the host's writes);
 *  2. `restore --files /` to a directory: every file there must hash as the tree's;
 *  3. `restore --files DIR --in-place` onto the LUN the host wrote: those files, read back by
 *     `debugfs` (e2fsprogs, independent of the code under test), must be the tree's again, and a
 *     file outside DIR must still hold the host's write (only the named files went back).
 * The references are the generated tree and e2fsprogs; the TOC, COW and copy code are what is
 * checked.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { AgentError } from '../errors';
import { IscsiSession } from '../initiator/session';
import type { ManagementClient } from '../mgmt';
import { xorshift } from '../util/rng';
import { readToc } from '../toc/read';
import { lunRanges } from '../toc/toc';
import type { DrillOperations, DrillStep, HostWriter } from './drill-steps';
import { restoreFiles } from './restore-files';

const run = promisify(execFile);

/** The file system's size: room for the tree, small next to the drill's LUNs. */
export const DRILL_FS_BYTES = 32 * 1024 * 1024;
/** The directory restored in place. */
const IN_PLACE_DIR = '/home/ann';

export interface DrillTree {
  /** The file system image (the LUN's backing file). */
  image: string;
  /** Regular files: path from the file system's root → content. */
  files: Map<string, Buffer>;
  seed: number;
}

/**
 * The generated tree (seeded: `seed` replays it) and the ext4 image made of it by mkfs.ext4 -d:
 * nested directories, small and large files, empty and sparse ones, a symbolic and a hard link.
 */
export async function makeDrillFileSystem(workDir: string, seed: number = crypto.randomInt(1, 2 ** 31)): Promise<DrillTree> {
  const root = path.join(workDir, 'fs-tree');
  const image = path.join(workDir, 'fs.img');
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(image, { force: true });
  const rng = xorshift(seed);
  const rand = rng.next;
  const bytes = rng.bytes;
  const files = new Map<string, Buffer>();
  const put = (rel: string, data: Buffer) => {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, data);
    files.set(rel, data);
  };
  for (const user of ['ann', 'bob', 'eve']) {
    for (let i = 0; i < 40; i++) put(`/home/${user}/${['docs', 'mail', 'src/lib'][i % 3]}/f${i}.dat`, bytes(4 + 4 * (rand() % (i % 7 === 0 ? 120_000 : 6_000))));
  }
  put('/var/db/app.db', bytes(2 * 1024 * 1024));
  put('/etc/empty', Buffer.alloc(0));
  fs.linkSync(path.join(root, 'home/ann/docs/f0.dat'), path.join(root, 'home/ann/hard-f0'));
  files.set('/home/ann/hard-f0', files.get('/home/ann/docs/f0.dat')!);
  fs.symlinkSync('../var/db/app.db', path.join(root, 'etc/db-link'));
  try {
    await run('mkfs.ext4', ['-q', '-F', '-b', '4096', '-d', root, image, `${DRILL_FS_BYTES / 1024}k`]);
  } catch (err) {
    throw new AgentError('ERR_INTERNAL', `the drill's file system could not be made with mkfs.ext4 (${(err as Error).message.split('\n')[0]}): run \`make setup\` (it installs e2fsprogs)`);
  }
  fs.rmSync(root, { recursive: true, force: true });
  return { image, files, seed };
}

export interface FileDrillResult {
  seed: number;
  backup_id: string;
  toc_files: number;
  host_writes_during_backup: number;
  /** Files (inodes) restored, the tree's paths, and those whose restored bytes hash as the tree's. */
  to_dir: { files: number; bytes: number; paths: number; matching: number; seconds: number };
  in_place: { files: number; paths: number; matching: number; untouched_elsewhere: boolean; seconds: number };
  ok: boolean;
}

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/**
 * A host that, once the snapshot is instituted, overwrites the first 4 KiB of every file through
 * the target (the file system's layout unchanged: a block-level write, as a database does).
 */
class FileOverwriter implements HostWriter {
  private writing: Promise<number> = Promise.resolve(0);

  constructor(
    private readonly host: IscsiSession,
    private readonly lbas: readonly number[],
  ) {}

  instituteBegins(): void {}

  instituteReturned(): void {
    this.writing = (async () => {
      for (const lba of this.lbas) await this.host.write16(BigInt(lba), crypto.randomBytes(4096));
      return this.lbas.length;
    })();
  }

  stop(): Promise<number> {
    return this.writing;
  }
}

/** The drill's file-level part (the file's header); `url(lun)` of the drill's target. */
export async function fileDrill(
  ops: DrillOperations,
  step: DrillStep,
  o: { tree: DrillTree; source: string; secondary: string; obf: string; mgmt: Pick<ManagementClient, 'call' | 'url'>; workDir: string },
): Promise<FileDrillResult> {
  // The first block of each file, from the image before the backup: where the host writes.
  const before = await readToc({ file: o.tree.image });
  const firstLbas = before.entries.filter((e) => e.type === 'file' && e.extents.length > 0).map((e) => lunRanges(before.fs, e.extents)[0].lba);
  const host = await IscsiSession.connect(o.source);
  let backupId: string;
  let hostWrites: number;
  let tocFiles: number;
  try {
    const b = await ops.backUpUnderWrites({ source: o.source, secondary: o.secondary, obf: o.obf, mgmt: o.mgmt as ManagementClient, mode: 'overwrite', toc: true, yes: true, label: 'drill files' }, new FileOverwriter(host, firstLbas));
    backupId = b.r.backup_id;
    hostWrites = b.hostWrites;
    tocFiles = b.r.toc?.files ?? 0;
    if (!b.r.toc) throw new AgentError('ERR_INTERNAL', 'the drill\'s backup --toc kept no table of contents (see its warning)');
  } finally {
    await host.close().catch(() => undefined);
  }

  // Every file to a directory, each against the tree.
  const outDir = path.join(o.workDir, 'restored-files');
  fs.rmSync(outDir, { recursive: true, force: true });
  const toDir = await ops.restoreFiles(o.secondary, () => restoreFiles({ secondary: o.secondary, paths: ['/'], toDir: outDir }));
  let matching = 0;
  for (const [p, data] of o.tree.files) {
    const got = fs.readFileSync(path.join(outDir, p));
    if (sha(got) === sha(data)) matching++;
  }
  step('restore-files', { to: outDir, files: toDir.files, bytes: toDir.bytes, matching_tree: `${matching}/${o.tree.files.size}`, seconds: toDir.seconds });

  // One directory in place, onto the LUN the host wrote; read back by debugfs.
  const cat = async (p: string) => (await run('debugfs', ['-R', `cat "${p}"`, o.tree.image], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 })).stdout;
  const inPlace = await ops.restoreFiles(o.secondary, () => restoreFiles({ secondary: o.secondary, paths: [IN_PLACE_DIR], inPlace: { to: o.source, yes: true } }));
  const named = [...o.tree.files.keys()].filter((p) => p.startsWith(`${IN_PLACE_DIR}/`));
  let inPlaceMatching = 0;
  for (const p of named) if (sha(await cat(p)) === sha(o.tree.files.get(p)!)) inPlaceMatching++;
  const untouched = sha(await cat('/var/db/app.db')) !== sha(o.tree.files.get('/var/db/app.db')!);
  step('restore-in-place', { dir: IN_PLACE_DIR, files: inPlace.files, matching_tree: `${inPlaceMatching}/${named.length}`, other_files_keep_host_writes: untouched, seconds: inPlace.seconds });
  fs.rmSync(outDir, { recursive: true, force: true });
  return {
    seed: o.tree.seed,
    backup_id: backupId,
    toc_files: tocFiles,
    host_writes_during_backup: hostWrites,
    to_dir: { files: toDir.files, bytes: toDir.bytes, paths: o.tree.files.size, matching, seconds: toDir.seconds },
    in_place: { files: inPlace.files, paths: named.length, matching: inPlaceMatching, untouched_elsewhere: untouched, seconds: inPlace.seconds },
    ok: matching === o.tree.files.size && inPlaceMatching === named.length && named.length > 0 && untouched,
  };
}

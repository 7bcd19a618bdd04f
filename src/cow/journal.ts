/**
 * The target's snapshot journal: one JSON file in the state directory listing every snapshot
 * session it knows (SessionRecord), rewritten atomically (temporary file, fsync, rename, fsync of
 * the directory) at each state change. It is what a restarted target resumes from, and the one
 * place an INVALID state is recorded when the OBF itself is failing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AgentError } from '../errors';
import type { SessionJournal, SessionRecord } from './session-record';

const FILE = 'snapshots.json';
const VERSION = 1;

export class FileJournal implements SessionJournal {
  readonly dir: string;
  private readonly records = new Map<string, SessionRecord>();
  private writing: Promise<void> = Promise.resolve();

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Opens (creating, mode 0700) the state directory and reads the journal in it. */
  static async open(dir: string): Promise<FileJournal> {
    try {
      await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
      await fs.promises.access(dir, fs.constants.W_OK);
    } catch (err) {
      throw new AgentError('ERR_INVALID_ARG', `state directory ${dir} is not usable (${(err as Error).message}): choose another with --state-dir`);
    }
    const j = new FileJournal(dir);
    let text: string | undefined;
    try {
      text = await fs.promises.readFile(path.join(dir, FILE), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new AgentError('ERR_INVALID_ARG', `${path.join(dir, FILE)} is not valid JSON: restore it from a backup or move it away (its snapshots are then forgotten)`);
      }
      const p = parsed as { version?: unknown; snapshots?: unknown };
      if (p.version !== VERSION || !Array.isArray(p.snapshots)) {
        throw new AgentError('ERR_INVALID_ARG', `${path.join(dir, FILE)} has an unknown layout (version ${String(p.version)}; this target reads ${VERSION})`);
      }
      for (const r of p.snapshots as SessionRecord[]) j.records.set(r.id, r);
    }
    return j;
  }

  list(): SessionRecord[] {
    return [...this.records.values()].map((r) => ({ ...r }));
  }

  get(id: string): SessionRecord | undefined {
    const r = this.records.get(id);
    return r ? { ...r } : undefined;
  }

  /** Records `record` durably (one write at a time, in call order). */
  save(record: SessionRecord): Promise<void> {
    this.records.set(record.id, { ...record });
    const snapshot = JSON.stringify({ version: VERSION, snapshots: [...this.records.values()] }, null, 2) + '\n';
    const next = this.writing.catch(() => undefined).then(() => this.writeFile(snapshot));
    this.writing = next;
    return next;
  }

  /** Forgets a session (its OBF is left as it is). */
  remove(id: string): Promise<void> {
    const r = this.records.get(id);
    if (!r) return Promise.resolve();
    this.records.delete(id);
    const snapshot = JSON.stringify({ version: VERSION, snapshots: [...this.records.values()] }, null, 2) + '\n';
    const next = this.writing.catch(() => undefined).then(() => this.writeFile(snapshot));
    this.writing = next;
    return next;
  }

  private async writeFile(text: string): Promise<void> {
    const file = path.join(this.dir, FILE);
    const tmp = `${file}.${process.pid}.tmp`;
    const fh = await fs.promises.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
    const d = await fs.promises.open(this.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}

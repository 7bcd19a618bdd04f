/**
 * The catalog of copies (docs/catalog.md): what this agent did — backups and the copies they
 * made, integrate, export, restore and verify runs — recorded where an administrator can list
 * it. One small interface, so that a shared server-side catalog (PostgreSQL, for fleets of
 * agents) can sit behind it later; every method is async for that reason. The embedded default
 * is ./sqlite.ts. The secondaries stay the truth: `catalog rebuild` recreates copies from them.
 */
import os from 'node:os';
import path from 'node:path';
import { AgentError } from '../errors';
import type { SecondaryRecord } from '../secondary';

export type OperationKind = 'backup' | 'integrate' | 'export' | 'restore' | 'verify';
export const OPERATION_KINDS: readonly OperationKind[] = ['backup', 'integrate', 'export', 'restore', 'verify'];
/** `running` until the operation ends; one left `running` was cut short (the agent died). */
export type OperationState = 'running' | 'ok' | 'failed';

/** A copy: one backup on one secondary, keyed by the backup's id. */
export interface CopyRecord {
  id: string;
  label?: string;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
  sourceUrl?: string;
  /** The source's preferred designator (docs/catalog.md): `naa.<hex>`, `eui.<hex>`, ... */
  sourceDesignator?: string;
  sourceCapacityBlocks?: number;
  sourceBlockSize?: number;
  secondaryUrl: string;
  obfUrl?: string;
  mode?: string;
  state: string;
  /** The image's bytes (the source's capacity). */
  bytes?: number;
  /** The last `verify` of this copy: ok (a good copy) or failed (not one). */
  verification?: 'ok' | 'failed';
  verifiedAt?: string;
}

/** Fields given to recordCopy: an id and what is known now; the fields left out keep their values. */
export type CopyUpdate = Partial<CopyRecord> & {
  id: string;
  /** Its table of contents (603) as the secondary keeps it (docs/toc-format.md), and how many inodes it lists. */
  toc?: { bytes: Buffer; files: number };
};

export interface OperationRecord {
  id: string;
  kind: OperationKind;
  copyId?: string;
  startedAt: string;
  finishedAt?: string;
  state: OperationState;
  /** The command's summary (state ok) or its error (state failed: code and message). */
  detail?: Record<string, unknown>;
  /** The options it ran with (URLs redacted), for `--resume` (docs/catalog.md). */
  params?: Record<string, unknown>;
  /** Its resume units so far (a restore's blocks copied, ...), for `--resume`. */
  progress?: Record<string, unknown>;
}

export type OperationUpdate = Partial<OperationRecord> & { id: string };

export interface Catalog {
  /** Where the catalog is (a path, or a server's name), for messages. */
  readonly location: string;
  /** Creates the copy, or updates the fields given. */
  recordCopy(c: CopyUpdate): Promise<void>;
  /** Creates the operation (kind, startedAt and state needed), or updates the fields given. */
  recordOperation(o: OperationUpdate): Promise<void>;
  /** Every copy, newest first (createdAt descending). */
  listCopies(): Promise<CopyRecord[]>;
  /** The table of contents recorded for the copy with this id (exactly), as the secondary keeps it. */
  getToc(copyId: string): Promise<Buffer | undefined>;
  /** The copy with this id (or the one copy whose id begins so) and its operations, oldest first. */
  getCopy(id: string): Promise<{ copy: CopyRecord; operations: OperationRecord[] } | undefined>;
  /** The operation with this id (or the one operation whose id begins so). */
  getOperation(id: string): Promise<OperationRecord | undefined>;
  /** Marks every other copy recorded on this secondary `replaced`: a new backup wrote over it. */
  replaceCopiesOn(secondaryUrl: string, byId: string): Promise<void>;
  /** The newest copy recorded on this secondary. */
  copyOnSecondary(secondaryUrl: string): Promise<CopyRecord | undefined>;
  close(): Promise<void>;
}

/** Why a catalog cannot be used; `catalog rebuild` moves a corrupt file aside and starts anew. */
export type CatalogFault = 'locked' | 'corrupt' | 'unwritable' | 'newer';

/** The catalog cannot be opened or written (ERR_CATALOG; docs/catalog.md). */
export class CatalogError extends AgentError {
  readonly fault: CatalogFault;
  constructor(fault: CatalogFault, message: string, options?: { cause?: unknown }) {
    super('ERR_CATALOG', message, options);
    this.fault = fault;
  }
}

/**
 * The default catalog (README "Catalog"): $XCOPY_AGENT_CATALOG (as --catalog) first; as root
 * /var/lib/xcopy-agent/catalog.db; else under $XDG_STATE_HOME (default ~/.local/state).
 */
export function defaultCatalogPath(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? -1): string {
  if (uid === 0) return '/var/lib/xcopy-agent/catalog.db';
  const state = env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : path.join(os.homedir(), '.local', 'state');
  return path.join(state, 'xcopy-agent', 'catalog.db');
}

/** The preferred designator of a source (SPC-4 7.8.6: NAA, then EUI-64, then the first), as `naa.<hex>`. */
export function designatorName(designators: SecondaryRecord['source']['designators']): string | undefined {
  const names: Record<number, string> = { 3: 'naa', 2: 'eui', 8: 'scsi', 1: 't10' };
  const d = designators.find((x) => x.designatorType === 3) ?? designators.find((x) => x.designatorType === 2) ?? designators[0];
  return d ? `${names[d.designatorType] ?? `type${d.designatorType}`}.${d.designator}` : undefined;
}

/** The copy a secondary's metadata describes (docs/secondary-format.md), as found at `secondaryUrl`. */
export function copyOfSecondary(r: SecondaryRecord, secondaryUrl: string): CopyUpdate {
  return {
    id: r.backupId,
    label: r.label,
    createdAt: r.times.startedAt,
    updatedAt: r.times.updatedAt,
    finishedAt: r.times.finishedAt,
    sourceUrl: r.source.url,
    sourceDesignator: designatorName(r.source.designators),
    sourceCapacityBlocks: Number(r.source.capacityBlocks),
    sourceBlockSize: r.source.blockSize,
    secondaryUrl,
    mode: r.mode,
    state: r.state,
    bytes: Number(r.layout.imageBlocks) * r.layout.blockSize,
  };
}

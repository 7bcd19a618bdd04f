/**
 * What the target keeps of a snapshot session outside its OBF: the policy, the state and why it
 * ended INVALID, in the record the journal holds (src/cow/journal.ts) to resume the session
 * after a restart. The journal, not the OBF's superblock, is the authority for INVALID: the
 * superblock may be unwritable exactly when it matters (docs/cow.md "Choices a successor should
 * know").
 */

export type SnapshotPolicy = 'protect-application' | 'protect-snapshot';
export type SnapshotState = 'ACTIVE' | 'MARKED' | 'SEALED' | 'INVALID';
export type SnapshotReason = 'OBF_FULL' | 'OBF_IO_ERROR' | 'COW_TIMEOUT' | 'TRACKING_GAP' | 'SOURCE_IO_ERROR' | 'ABANDONED';

/** What the target keeps about a session outside the OBF (the journal file), to resume it. */
export interface SessionRecord {
  id: string;
  seriesId: string;
  /** The source LUN's storage object key (e.g. /backstores/fileio/src). */
  source: string;
  /** The OBF's store spec (file:PATH, memory:SIZE, iscsi://...) or storage object key. */
  obf: string;
  chunkBytes: number;
  policy: SnapshotPolicy;
  cowTimeoutMs: number;
  state: SnapshotState;
  reason?: SnapshotReason;
  reasonDetail?: string;
  institutedAtMs: number;
  institutePauseMs: number;
}

/** Where session records are kept durably (src/cow/journal.ts). */
export interface SessionJournal {
  save(record: SessionRecord): Promise<void>;
}

/**
 * The state a journalled snapshot resumes in after a restart (resumedState, src/cow/session.ts),
 * from its journal entry and what its OBF holds: the OBF's word for a capturing one, the
 * journal's for an ended one, a tracking gap for a SEALED one whose SEAL is gone.
 */
import { resumedState, type SnapshotState } from '../../../src/cow/session';
import { ObfReason, ObfState, type ObfSuperblock } from '../../../src/obf/format';
import type { ObfScan } from '../../../src/obf/log';

const sb = (state: ObfState, reason = ObfReason.NONE) => ({ state, reason }) as ObfSuperblock;
const scan = (o: { marker?: boolean; seal?: boolean } = {}) =>
  ({ records: [], stop: o.seal ? 'after-seal' : 'clean-end', ...(o.marker ? { marker: {} } : {}), ...(o.seal ? { seal: {} } : {}) }) as unknown as ObfScan;

test.each<[string, SnapshotState, ObfSuperblock, ObfScan, ReturnType<typeof resumedState>]>([
  ['ACTIVE, an unmarked log: ACTIVE', 'ACTIVE', sb(ObfState.ACTIVE), scan(), { state: 'ACTIVE' }],
  ['ACTIVE, a MARKER in the log: MARKED', 'ACTIVE', sb(ObfState.ACTIVE), scan({ marker: true }), { state: 'MARKED' }],
  ['MARKED: MARKED', 'MARKED', sb(ObfState.MARKED), scan({ marker: true }), { state: 'MARKED' }],
  ['ACTIVE, sealed before the journal said so: SEALED', 'ACTIVE', sb(ObfState.SEALED), scan({ seal: true }), { state: 'SEALED' }],
  ['ACTIVE, superblock INVALID: INVALID with its reason', 'ACTIVE', sb(ObfState.INVALID, ObfReason.OBF_FULL), scan(), { state: 'INVALID', reason: 'OBF_FULL' }],
  ['MARKED, superblock INVALID: INVALID with its reason', 'MARKED', sb(ObfState.INVALID, ObfReason.COW_TIMEOUT), scan({ marker: true }), { state: 'INVALID', reason: 'COW_TIMEOUT' }],
  ['SEALED, sealed log: SEALED', 'SEALED', sb(ObfState.SEALED), scan({ seal: true }), { state: 'SEALED' }],
  ['SEALED, the SEAL gone: a tracking gap', 'SEALED', sb(ObfState.SEALED), scan(), { gap: "the journal says SEALED but the OBF's log has no SEAL (scan stopped: clean-end)" }],
  ['INVALID, superblock ACTIVE: INVALID (the journal is the authority)', 'INVALID', sb(ObfState.ACTIVE), scan(), { state: 'INVALID' }],
])('journal %s', (_name, state, superblock, log, expected) => {
  expect(resumedState({ state }, superblock, log)).toEqual(expected);
});

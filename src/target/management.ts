/**
 * The target's management API methods (JSON-RPC 2.0 over loopback HTTP or a Unix socket, see
 * src/mgmt/): the agent drives snapshot sessions through them, in the spirit of targetd's API
 * for LIO. Each method validates its params and calls the SnapshotManager; errors carry registry
 * codes (ERR_INVALID_ARG, ERR_SNAPSHOT_NOT_FOUND, ERR_SNAPSHOT_STATE) in data.code.
 *
 *   lun_list                                   every LUN: target, tpg, lun, kind, blocks, naa, snapshot
 *   snapshot_institute {source, obf, chunk_bytes?, policy?, cow_timeout_ms?, drain_timeout_ms?, series_id?, overwrite_obf?}
 *   snapshot_mark {id}   snapshot_terminate {id}   snapshot_status {id}   snapshot_list
 *   snapshot_forget {id}                       an ended snapshot out of the journal (its OBF stays)
 *   snapshot_hash {id, lba, blocks, piece_blocks}  SHA-256 of pieces of the image as of institution
 *   lun_hash {naa | target+lun(+tpg), lba, blocks, piece_blocks}  SHA-256 of pieces of a LUN as it reads now
 *   view_add {id, target?, tpg?, lun?}   view_remove {id, lun}
 *   counters                                   commands executed per opcode, sessions, copy manager
 *   reload                                     read the --config file again and put it in force, as SIGHUP
 *                                              does (docs/target.md "Reloading the configuration")
 */
import { AgentError } from '../errors';
import type { MethodHandler } from '../mgmt';
import type { InstituteParams, SnapshotManager } from './snapshots/manager';
import { copyManagerOf } from '../xcopy';
import { hashLun, lunByNaa } from './lun-hash';
import type { TargetServer } from './server';

type Params = Record<string, unknown>;

function obj(params: unknown): Params {
  if (params === undefined || params === null) return {};
  if (typeof params !== 'object' || Array.isArray(params)) throw new AgentError('ERR_INVALID_ARG', 'params must be an object with named members');
  return params as Params;
}

function only(p: Params, allowed: string[]): void {
  for (const k of Object.keys(p)) if (!allowed.includes(k)) throw new AgentError('ERR_INVALID_ARG', `unknown param ${JSON.stringify(k)} (allowed: ${allowed.join(', ')})`);
}

function optInt(p: Params, k: string, min: number, max: number): number | undefined {
  const v = p[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new AgentError('ERR_INVALID_ARG', `${k} must be an integer in ${min}..${max}`);
  return v;
}

function id(p: Params): string {
  if (typeof p.id !== 'string' || p.id === '') throw new AgentError('ERR_INVALID_ARG', 'id (the snapshot id) is required');
  return p.id;
}

/** A block number or count: a non-negative integer, as a number or a decimal string (beyond 2^53). */
function big(p: Params, k: string): bigint {
  const v = p[k];
  if ((typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) || (typeof v === 'string' && /^[0-9]{1,20}$/.test(v))) return BigInt(v);
  throw new AgentError('ERR_INVALID_ARG', `${k} must be a non-negative integer (a number or a decimal string)`);
}

/** The range params of snapshot_hash and lun_hash. */
function hashRange(p: Params): { lba: bigint; blocks: bigint; pieceBlocks: number } {
  const pieceBlocks = optInt(p, 'piece_blocks', 1, 2 ** 31);
  if (pieceBlocks === undefined) throw new AgentError('ERR_INVALID_ARG', 'piece_blocks (blocks per hashed piece) is required');
  return { lba: big(p, 'lba'), blocks: big(p, 'blocks'), pieceBlocks };
}

/** A method whose only parameter is the snapshot `id`. */
function byId(f: (id: string) => unknown): MethodHandler {
  return (params) => {
    const p = obj(params);
    only(p, ['id']);
    return f(id(p));
  };
}

export function managementMethods(server: TargetServer, manager: SnapshotManager): Record<string, MethodHandler> {
  return {
    lun_list: (params) => {
      only(obj(params), []);
      return manager.lunList();
    },
    snapshot_institute: async (params) => {
      const p = obj(params);
      only(p, ['source', 'obf', 'chunk_bytes', 'policy', 'cow_timeout_ms', 'drain_timeout_ms', 'series_id', 'overwrite_obf']);
      if (p.source === undefined) throw new AgentError('ERR_INVALID_ARG', 'source (the LUN to snapshot, "IQN/LUN") is required');
      if (p.obf === undefined) throw new AgentError('ERR_INVALID_ARG', 'obf (file:PATH[:SIZE], memory:SIZE, iscsi://... or "IQN/LUN") is required');
      if (p.policy !== undefined && p.policy !== 'protect-application' && p.policy !== 'protect-snapshot') {
        throw new AgentError('ERR_INVALID_ARG', 'policy must be "protect-application" (default) or "protect-snapshot"');
      }
      if (p.overwrite_obf !== undefined && typeof p.overwrite_obf !== 'boolean') throw new AgentError('ERR_INVALID_ARG', 'overwrite_obf must be true or false');
      if (p.series_id !== undefined && (typeof p.series_id !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(p.series_id))) {
        throw new AgentError('ERR_INVALID_ARG', 'series_id must be a UUID');
      }
      const ip: InstituteParams = {
        source: p.source as InstituteParams['source'],
        obf: p.obf as InstituteParams['obf'],
        chunk_bytes: optInt(p, 'chunk_bytes', 512, 64 * 1024 * 1024),
        policy: p.policy as InstituteParams['policy'],
        cow_timeout_ms: optInt(p, 'cow_timeout_ms', 1, 120_000),
        // writes are held at most this long: a bound, not a wish
        drain_timeout_ms: optInt(p, 'drain_timeout_ms', 1, 30_000),
        series_id: p.series_id as string | undefined,
        overwrite_obf: p.overwrite_obf as boolean | undefined,
      };
      return manager.institute(ip);
    },
    snapshot_mark: byId((i) => manager.mark(i)),
    snapshot_terminate: byId((i) => manager.terminate(i)),
    snapshot_status: byId((i) => manager.status(i)),
    snapshot_forget: byId((i) => manager.forget(i)),
    snapshot_hash: async (params) => {
      const p = obj(params);
      only(p, ['id', 'lba', 'blocks', 'piece_blocks']);
      return manager.hashImage(id(p), hashRange(p));
    },
    lun_hash: async (params) => {
      const p = obj(params);
      only(p, ['naa', 'target', 'tpg', 'lun', 'lba', 'blocks', 'piece_blocks']);
      const byNaa = p.naa !== undefined;
      if (byNaa === (p.target !== undefined || p.lun !== undefined)) throw new AgentError('ERR_INVALID_ARG', 'name the LUN by naa (its NAA designator in hex) or by target and lun, one of the two');
      let at;
      if (byNaa) {
        if (typeof p.naa !== 'string' || p.tpg !== undefined) throw new AgentError('ERR_INVALID_ARG', 'naa must be a string of hex digits, alone (no tpg)');
        at = lunByNaa(server.model, p.naa);
      } else {
        if (typeof p.target !== 'string' || p.lun === undefined) throw new AgentError('ERR_INVALID_ARG', 'target (an IQN) and lun are both required');
        at = manager.resolveLun({ target: p.target, lun: optInt(p, 'lun', 0, 16383)!, tpg: optInt(p, 'tpg', 0, 65535) });
      }
      return hashLun(at, hashRange(p));
    },
    snapshot_list: (params) => {
      only(obj(params), []);
      return manager.list();
    },
    view_add: (params) => {
      const p = obj(params);
      only(p, ['id', 'target', 'tpg', 'lun']);
      if (p.target !== undefined && typeof p.target !== 'string') throw new AgentError('ERR_INVALID_ARG', 'target must be an IQN');
      if (p.tpg !== undefined && p.target === undefined) throw new AgentError('ERR_INVALID_ARG', 'tpg needs target (the view goes to the source\'s TPG when neither is given)');
      return manager.addView(id(p), { target: p.target as string | undefined, tpg: optInt(p, 'tpg', 0, 65535), lun: optInt(p, 'lun', 0, 16383) });
    },
    view_remove: (params) => {
      const p = obj(params);
      only(p, ['id', 'lun']);
      const lun = optInt(p, 'lun', 0, 16383);
      if (lun === undefined) throw new AgentError('ERR_INVALID_ARG', 'lun (the view LUN to remove) is required');
      return manager.removeView(id(p), lun);
    },
    reload: (params) => {
      only(obj(params), []);
      return server.reloadConfig();
    },
    counters: (params) => {
      only(obj(params), []);
      const opcodes = [...server.opcodeCounts].sort((a, b) => a[0] - b[0]).map(([op, count]) => ({ opcode: `0x${op.toString(16).padStart(2, '0')}`, count }));
      const cms = new Set(server.model.allTpgs().flatMap((t) => [...t.luns.values()].map((lu) => copyManagerOf(lu)).filter((x) => x !== undefined)));
      const copy = [...cms].map((cm) => ({ ...cm.counters, bytes: cm.counters.bytes.toString(), kernelCopiedBytes: cm.counters.kernelCopiedBytes.toString(), zeroSkippedBytes: cm.counters.zeroSkippedBytes.toString() }));
      return { opcodes, sessions: server.sessionCount, copy_managers: copy };
    },
  };
}

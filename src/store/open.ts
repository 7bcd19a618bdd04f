/**
 * Opens a store from the spec string the CLI takes (targetcli's backstore nouns, one line each):
 *   file:PATH[:SIZE]   a backing file; with SIZE it is created sparse when missing (and must
 *                      have that size when present)
 *   memory:SIZE        a sparse in-memory LUN
 *   iscsi://...        a LUN on another target (libiscsi URL syntax)
 * SIZE as truncate(1) writes it: 512, 64M, 1G, 1.5T (binary units).
 */
import { ArgumentError } from '../errors';
import { redactUrl } from '../initiator/url';
import { parseSize } from '../util/size';
import { FileStore } from './file';
import { MemoryStore } from './memory';
import { RemoteStore, type RemoteStoreOptions } from './remote';
import type { Store } from './store';

export interface OpenStoreOptions {
  /** Block size of file and memory stores (a remote LUN has its own). Default 512. */
  blockSize?: 512 | 4096;
  readOnly?: boolean;
  /** Session options for iscsi:// stores. */
  session?: RemoteStoreOptions;
}

const SPEC_HELP = 'expected file:PATH[:SIZE], memory:SIZE or iscsi://host[:port]/<iqn>/<lun>';
/** A trailing ":SIZE" (what parseSize accepts). */
const SIZE_SUFFIX = /^(.*):(\d+(?:\.\d+)?\s*[KMGT]?(?:i?B)?)$/i;

export type StoreSpec =
  | { kind: 'file'; path: string; size?: number }
  | { kind: 'memory'; size: number }
  | { kind: 'remote'; url: string };

function bad(spec: string, why: string): ArgumentError {
  return new ArgumentError(`invalid store ${JSON.stringify(redactUrl(spec))}: ${why} (${SPEC_HELP})`);
}

/** Parses a store spec without opening anything. */
export function parseStoreSpec(spec: string): StoreSpec {
  if (typeof spec !== 'string' || spec.trim() === '') throw bad(String(spec), 'empty');
  if (/^iscsi:\/\//i.test(spec)) return { kind: 'remote', url: spec };
  const colon = spec.indexOf(':');
  const scheme = colon < 0 ? '' : spec.slice(0, colon).toLowerCase();
  const rest = colon < 0 ? '' : spec.slice(colon + 1);
  const sizeOf = (text: string) => {
    try {
      return parseSize(text, 'size');
    } catch (err) {
      throw bad(spec, (err as Error).message);
    }
  };
  switch (scheme) {
    case 'file': {
      const m = SIZE_SUFFIX.exec(rest);
      const path = m ? m[1] : rest;
      if (path === '') throw bad(spec, 'no path');
      return m ? { kind: 'file', path, size: sizeOf(m[2]) } : { kind: 'file', path };
    }
    case 'memory':
      if (rest === '') throw bad(spec, 'no size');
      return { kind: 'memory', size: sizeOf(rest) };
    default:
      throw bad(spec, colon < 0 ? 'no kind' : `unknown kind ${JSON.stringify(spec.slice(0, colon))}`);
  }
}

/** Opens the store a spec names. */
export async function openStore(spec: string, opts: OpenStoreOptions = {}): Promise<Store> {
  const parsed = parseStoreSpec(spec);
  const blockSize = opts.blockSize ?? 512;
  switch (parsed.kind) {
    case 'file':
      return FileStore.open({ path: parsed.path, size: parsed.size, blockSize, readOnly: opts.readOnly });
    case 'memory':
      if (parsed.size % blockSize !== 0) {
        throw bad(spec, `size ${parsed.size} is not a multiple of the block size ${blockSize}`);
      }
      return new MemoryStore({ blocks: BigInt(parsed.size / blockSize), blockSize, readOnly: opts.readOnly });
    case 'remote':
      return RemoteStore.open(parsed.url, { ...opts.session, readOnly: opts.readOnly ?? opts.session?.readOnly });
  }
}

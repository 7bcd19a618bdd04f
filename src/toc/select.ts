/**
 * Choosing files of a table of contents by path (docs/toc.md): what `toc PATH...` lists and what
 * `restore --files PATH...` restores. Pure: no I/O here.
 */
import { ArgumentError } from '../errors';
import type { TocEntry } from './toc';

/** Paths as given: absolute, without trailing slashes ('/' stays '/'). */
export function normalizePaths(paths: readonly string[]): string[] {
  const wanted = paths.map((p) => (p.length > 1 ? p.replace(/\/+$/, '') : p));
  for (const w of wanted) if (!w.startsWith('/')) throw new ArgumentError(`path ${JSON.stringify(w)} must start with '/' (paths are from the file system's root)`);
  return wanted;
}

/** The path `p` is `w` or lies below it. */
export function isUnder(p: string, w: string): boolean {
  return p === w || p.startsWith(w === '/' ? '/' : `${w}/`);
}

/** The entries any of whose paths is one of `paths` or lies below one; a path matching nothing is an error. */
export function selectEntries(entries: TocEntry[], paths: readonly string[]): TocEntry[] {
  if (paths.length === 0) return entries;
  const wanted = normalizePaths(paths);
  const hit = new Set<string>();
  const out = entries.filter((e) =>
    e.paths.some((p) => {
      const m = wanted.find((w) => isUnder(p, w));
      if (m) hit.add(m);
      return m !== undefined;
    }),
  );
  const missing = wanted.filter((w) => !hit.has(w));
  if (missing.length > 0) throw new ArgumentError(`no such path in the file system: ${missing.join(', ')} (paths are from its root, e.g. /etc/passwd)`);
  return out;
}

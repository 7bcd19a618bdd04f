import { ArgumentError } from '../errors';

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** "256M", "1G", "4096", "1.5G" -> bytes (binary units, as truncate(1) and targetcli use). */
export function parseSize(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(String(text).trim());
  if (!m) throw new ArgumentError(`${what} ${JSON.stringify(text)} is not a size (use e.g. 512, 64M, 1G)`);
  const bytes = Number(m[1]) * UNITS[m[2].toUpperCase()];
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new ArgumentError(`${what} ${JSON.stringify(text)} is not a positive whole number of bytes`);
  return bytes;
}

/**
 * The OBF (original image cache, old block file): its on-disk format (docs/obf-format.md) and
 * the reader of its log. Pure: shared by its writer (the COW filter, src/cow/) and its readers
 * (the agent's OBF pass, restore, verify).
 */
export * from './format';
export * from './log';

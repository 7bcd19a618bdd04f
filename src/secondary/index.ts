/**
 * The secondary LUN's on-disk layout (docs/secondary-format.md): where the image, the appended
 * OBF log and the metadata area lie, the header slots, the trailer and the extent hash table.
 * Pure: shared by the backup that writes a secondary and by restore, verify and the catalog
 * that read one.
 */
export * from './format';

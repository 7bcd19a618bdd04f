/** The catalog of copies (docs/catalog.md): the interface, and the embedded SQLite default. */
export * from './catalog';
export * from './sqlite';

/**
 * The layers the folder names promise (docs/design.md "Layers"): which folders a folder may
 * import from, that only the COW filter unwraps itself, and that one file loads the addon.
 * Read from the sources, so a change that breaks a rule fails here with the file and import.
 */
import fs from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(__dirname, '../../../src');

function sources(dir = SRC): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** The top-level folder (or file) of src/ that each relative import of `file` reaches. */
function importedLayers(file: string): Array<{ layer: string; spec: string }> {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'(\.[^']+)'/g)].map((m) => {
    const target = path.relative(SRC, path.resolve(path.dirname(file), m[1]));
    return { layer: target.split(path.sep)[0], spec: m[1] };
  });
}

const layerOf = (file: string) => path.relative(SRC, file).split(path.sep)[0];

/** What each layer must not import (the rest of the one-way flow cli → agent → initiator → target → scsi → xcopy/store). */
const FORBIDDEN: Record<string, string[]> = {
  scsi: ['native', 'store', 'cow', 'obf', 'xcopy', 'target', 'initiator', 'mgmt', 'agent', 'cli', 'peers'],
  obf: ['store', 'cow', 'xcopy', 'target', 'initiator', 'mgmt', 'agent', 'cli', 'peers'],
  secondary: ['store', 'cow', 'obf', 'xcopy', 'target', 'initiator', 'mgmt', 'agent', 'cli', 'peers'],
  native: ['scsi', 'store', 'cow', 'obf', 'xcopy', 'target', 'initiator', 'mgmt', 'agent', 'cli', 'peers'],
  store: ['cow', 'xcopy', 'target', 'mgmt', 'agent', 'cli'],
  cow: ['target', 'xcopy', 'mgmt', 'agent', 'cli', 'initiator'],
  xcopy: ['cow', 'mgmt', 'agent', 'cli'],
  initiator: ['store', 'cow', 'xcopy', 'target', 'mgmt', 'agent', 'cli'],
  mgmt: ['store', 'cow', 'xcopy', 'target', 'agent', 'cli'],
  agent: ['cow', 'store', 'xcopy', 'cli'],
  toc: ['store', 'cow', 'xcopy', 'target', 'mgmt', 'agent', 'cli', 'catalog', 'peers'],
  catalog: ['scsi', 'native', 'store', 'cow', 'obf', 'xcopy', 'target', 'initiator', 'mgmt', 'agent', 'cli', 'peers'],
  util: ['scsi', 'native', 'store', 'cow', 'obf', 'xcopy', 'target', 'initiator', 'mgmt', 'agent', 'cli'],
};

test('each layer imports only from the layers below it', () => {
  const broken: string[] = [];
  for (const file of sources()) {
    const forbidden = FORBIDDEN[layerOf(file)] ?? [];
    for (const { layer, spec } of importedLayers(file)) {
      if (forbidden.includes(layer)) broken.push(`${path.relative(SRC, file)} imports ${spec}`);
    }
  }
  expect(broken).toEqual([]);
});

test('nothing outside the COW filter unwraps it, or asks a store for its class', () => {
  const unwrap = /instanceof (?:CowStore|FileStore|MemoryStore|RemoteStore)\b|\bcowOf\(|\.inner\b/;
  const offenders = sources()
    .filter((f) => !f.startsWith(path.join(SRC, 'store') + path.sep) && f !== path.join(SRC, 'cow', 'cow-store.ts'))
    .flatMap((f) =>
      fs
        .readFileSync(f, 'utf8')
        .split('\n')
        .map((line, i) => ({ line, at: `${path.relative(SRC, f)}:${i + 1}` }))
        .filter(({ line }) => unwrap.test(line) && !/^\s*(?:\*|\/\/)/.test(line)),
    )
    .map(({ at, line }) => `${at}: ${line.trim()}`);
  expect(offenders).toEqual([]);
});

test('one file loads the native addon', () => {
  const loaders = sources().filter((f) => /\.node['"`]|xcopy_native/.test(fs.readFileSync(f, 'utf8')));
  expect(loaders.map((f) => path.relative(SRC, f))).toEqual([path.join('native', 'index.ts')]);
});

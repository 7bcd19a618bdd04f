/**
 * Test-only preload for a target started as a child process
 * (`node --require test/helpers/hold-copy.js bin/xcopy-agent target ...`): while a snapshot's
 * writes are held at institution, copies the source's backing file to
 * $XCOPY_TEST_HOLD_COPY_DIR/<snapshot id>.img — the oracle the crash tests compare the snapshot
 * with, made without the COW code. It listens on the held event's diagnostics channel
 * (docs/cow.md "The held event"); production code knows nothing of it.
 */
'use strict';
const diagnosticsChannel = require('node:diagnostics_channel');
const fs = require('node:fs');
const path = require('node:path');

const dir = process.env.XCOPY_TEST_HOLD_COPY_DIR;
if (dir) {
  diagnosticsChannel.subscribe('xcopy-agent:snapshot:held', (held) => {
    const file = held.source.backingFile?.();
    if (file) held.hold(fs.promises.copyFile(file.path, path.join(dir, `${held.snapshotId}.img`)));
  });
}

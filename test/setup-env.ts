import crypto from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

// Tests log nothing unless asked (XCOPY_AGENT_LOG_LEVEL=debug npx jest ... to see the logs).
process.env.XCOPY_AGENT_LOG_LEVEL ??= 'silent';
// The CLI commands tests run record in a catalog of their own, never the machine's (docs/catalog.md),
// one per checkout: two checkouts of different schema versions never share a file.
const checkout = crypto.createHash('sha256').update(path.resolve(__dirname, '..')).digest('hex').slice(0, 12);
process.env.XCOPY_AGENT_CATALOG ??= path.join(os.tmpdir(), `xcopy-agent-test-catalog-${checkout}`, 'catalog.db');

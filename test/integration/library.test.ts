/**
 * The library entry point as a user's script takes it: `require('xcopy-agent')` resolves through
 * package.json "main" to the built dist/, and its exports do real work — a target served
 * in-process, an initiator session, an EXTENDED COPY between two LUNs checked by sha256 against
 * the data written, the codecs and the error registry.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { freePort } from '../../src/peers/tgt';

const ROOT = path.resolve(__dirname, '../..');
const IQN = 'iqn.2026-12.io.xcopy-agent.test:library';
type Lib = typeof import('../../src/index');

let lib: Lib;

beforeAll(() => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { main: string; types: string };
  expect(fs.existsSync(path.join(ROOT, pkg.main))).toBe(true); // built by make setup
  expect(fs.existsSync(path.join(ROOT, pkg.types))).toBe(true);
  // the package itself, resolved as a dependant resolves it: through "main"
  expect(require.resolve(ROOT)).toBe(path.join(ROOT, pkg.main));
  lib = require(ROOT) as Lib;
});

test('exports the initiator, the codecs, the agent operations, the target and the error registry', () => {
  for (const name of ['IscsiSession', 'parseIscsiUrl', 'xcopyCopy', 'hostCopy', 'applyObf', 'inquire', 'runDrill', 'ManagementClient', 'TargetServer', 'quickConfig', 'AgentError', 'exitStatusOf'] as const) {
    expect(typeof lib[name]).toBe('function');
  }
  expect(lib.ErrorCodes.ERR_INVALID_ARG).toBe(lib.ExitStatus.USAGE);
  expect(typeof lib.scsi.encodeExtendedCopyLid1).toBe('function');
  expect(typeof lib.obf.decodeSuperblock).toBe('function');
  expect(typeof lib.obf.scanLog).toBe('function');
  expect(typeof lib.secondary.planLayout).toBe('function');
  expect(typeof lib.backup).toBe('function');
  expect(typeof lib.integrate).toBe('function');
  expect(lib.parseIscsiUrl(`iscsi://127.0.0.1:3260/${IQN}/1`)).toMatchObject({ target: IQN, lun: 1 });
  const d = fs.readFileSync(path.join(ROOT, 'dist/src/index.d.ts'), 'utf8');
  expect(d).toMatch(/IscsiSession/);
  expect(d).toMatch(/export \* as scsi/);
});

test('a target in-process, a session, an EXTENDED COPY: the destination equals what was written', async () => {
  const port = await freePort();
  const server = await lib.TargetServer.start(lib.quickConfig({ portal: `127.0.0.1:${port}`, iqn: IQN, luns: ['memory:4M', 'memory:4M'] }), {
    log: pino({ level: 'silent' }),
  });
  const url = (lun: number) => `iscsi://127.0.0.1:${port}/${IQN}/${lun}`;
  const data = crypto.randomBytes(4 * 1024 * 1024);
  const s0 = await lib.IscsiSession.connect(url(0));
  const s1 = await lib.IscsiSession.connect(url(1));
  try {
    await s0.write16(0n, data);
    const r = await lib.xcopyCopy({ from: url(0), to: url(1) });
    expect(r).toMatchObject({ path: 'xcopy', blocks: 8192n, block_size: 512 });
    const back = await s1.read16(0n, 8192);
    expect(crypto.createHash('sha256').update(back).digest('hex')).toBe(crypto.createHash('sha256').update(data).digest('hex'));
    await expect(lib.IscsiSession.connect(url(7))).rejects.toMatchObject({ code: 'ERR_ISCSI_NO_SUCH_LUN' });
  } finally {
    await s0.close();
    await s1.close();
    await server.stop();
  }
});

/**
 * XCOPY_AGENT_<FLAG> variables, as a DR script sets them once for every command it runs: each
 * command takes the variables of the options it has and ignores those of other commands, while a
 * mistyped flag on the command line still fails with the one-line usage error (README "Options
 * from the environment"). The built CLI, a target it runs itself, real iSCSI.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { ExitStatus } from '../../src/errors';
import { freePort } from '../../src/peers/tgt';
import { removeDir, tempDir } from '../helpers/tmp';

const BIN = path.resolve(__dirname, '../../bin/xcopy-agent');
const IQN = 'iqn.2026-12.io.xcopy-agent.test:env';

let dir: string;
let port: number;
let mgmtPort: number;
let target: ChildProcess | undefined;
/** One environment for every command, as a script sets it at the top. */
let env: NodeJS.ProcessEnv;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(BIN, args, { env: { ...process.env, ...env, ...extra }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** The NDJSON records of a run's stdout. */
function records(r: Run): Array<Record<string, unknown>> {
  return r.stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const url = (lun: number) => `iscsi://127.0.0.1:${port}/${IQN}/${lun}`;

beforeAll(async () => {
  expect(fs.existsSync(path.resolve(__dirname, '../../dist/src/cli/main.js'))).toBe(true); // built by make setup
  dir = tempDir('cli-env');
  port = await freePort();
  mgmtPort = await freePort();
  env = {
    // meant for snapshot (and the target, which takes the client's URL form too)
    XCOPY_AGENT_MGMT: `http://127.0.0.1:${mgmtPort}`,
    XCOPY_AGENT_TOKEN_FILE: path.join(dir, 'state', 'mgmt.token'),
    // meant for the target
    XCOPY_AGENT_STATE_DIR: path.join(dir, 'state'),
    XCOPY_AGENT_PORTAL: `127.0.0.1:${port}`,
    XCOPY_AGENT_IQN: IQN,
    // meant for commands to come (backup, restore, copies)
    XCOPY_AGENT_CATALOG: path.join(dir, 'catalog.db'),
    XCOPY_AGENT_LABEL: 'nightly',
    // meant for inquire/discover, copy, snapshot institute, drill
    XCOPY_AGENT_TIMEOUT: '20',
    XCOPY_AGENT_PROGRESS: 'false',
    XCOPY_AGENT_CHUNK: '32768',
    XCOPY_AGENT_SIZE: '16M',
    XCOPY_AGENT_WORK_DIR: path.join(dir, 'drill'),
    // read by the initiator itself, no command's flag
    XCOPY_AGENT_INITIATOR: 'iqn.2026-12.io.xcopy-agent.test:dr-script',
    // for every command
    XCOPY_AGENT_JSON: '1',
  };
  // The target itself runs under the shared environment: portal, IQN, state dir, mgmt, JSON from it.
  target = spawn(BIN, ['target', '--lun', 'memory:8M', '--lun', 'memory:8M', '--lun', 'memory:16M'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  target.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const lines = readline.createInterface({ input: target.stdout! });
  const seen: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`target did not start: ${stderr}`)), 30_000);
    target!.once('exit', (code) => reject(new Error(`target exited ${String(code)}: ${stderr}`)));
    lines.on('line', (line) => {
      const rec = JSON.parse(line) as { event?: string };
      if (rec.event) seen.push(rec.event);
      if (seen.includes('listening') && seen.includes('management')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
});

afterAll(async () => {
  if (target && target.exitCode === null) {
    const exited = new Promise((resolve) => target!.once('exit', resolve));
    target.kill('SIGTERM');
    await exited;
  }
  if (dir) removeDir(dir);
});

describe('variables of other commands are ignored, a command takes its own', () => {
  test('inquire (JSON from the environment)', async () => {
    const r = await cli(['inquire', url(0)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(records(r)).toEqual([expect.objectContaining({ type: 'summary', command: 'inquire', block_size: 512 })]);
  });

  test('discover', async () => {
    const r = await cli(['discover', `iscsi://127.0.0.1:${port}`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(IQN);
  });

  test('snapshot: --mgmt and --token-file from the environment', async () => {
    const r = await cli(['snapshot', 'luns']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((records(r)[0] as { result: unknown[] }).result).toContainEqual(expect.objectContaining({ target: IQN, lun: 0, kind: 'memory' }));
  });

  test('snapshot institute takes --chunk from the environment', async () => {
    const inst = await cli(['snapshot', 'institute', '--source', `${IQN}/0`, '--obf', `${IQN}/2`]);
    expect(inst.stderr).toBe('');
    expect(inst.code).toBe(0);
    const { result } = records(inst)[0] as { result: { id: string; chunk_bytes?: number; chunk?: number } };
    const status = await cli(['snapshot', 'status', result.id]);
    expect(status.code).toBe(0);
    expect(JSON.stringify(records(status))).toMatch(/"chunk(?:_bytes)?":32768/);
    expect((await cli(['snapshot', 'terminate', result.id])).code).toBe(0);
    expect((await cli(['snapshot', 'forget', result.id])).code).toBe(0);
  });

  test('copy', async () => {
    const r = await cli(['copy', '--from', url(0), '--to', url(1), '--count', '64']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(records(r).pop()).toMatchObject({ type: 'summary', command: 'copy' });
  });

  test('drill (--size and --work-dir from the environment)', async () => {
    const r = await cli(['drill']);
    expect(r.code).toBe(0);
    const summary = records(r).pop();
    expect(summary).toMatchObject({ type: 'summary', command: 'drill', ok: true, bytes: 16 * 1024 * 1024 });
  });

  test('verify: the shared environment (mgmt, catalog, label...) does not stop it; it reads the LUN and says it holds no copy', async () => {
    const r = await cli(['verify', '--secondary', url(0)]);
    expect(r.code).toBe(ExitStatus.USAGE);
    const last = records(r).at(-1)!;
    expect(last).toMatchObject({ type: 'error', code: 'ERR_INVALID_ARG' });
    expect(String(last.message)).toMatch(/holds no copy made by xcopy-agent backup/);
  });

  test('the command line wins over the environment', async () => {
    const r = await cli(['inquire', '--json=false', url(0)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Capacity\s+16384 blocks x 512 bytes/m);
  });
});

describe('what still fails', () => {
  test.each([
    ['inquire', ['inquire', '--timout', '5', 'URL'], /Unknown argument: timout/],
    ['discover', ['discover', '--mgmt', 'http://127.0.0.1:1', 'iscsi://127.0.0.1:1'], /Unknown argument: mgmt/],
    ['snapshot', ['snapshot', 'list', '--token', 'x'], /Unknown argument: token/],
    ['copy', ['copy', '--from', 'URL', '--to', 'URL', '--cuont', '8'], /Unknown argument: cuont/],
    ['drill', ['drill', '--sise', '16M'], /Unknown argument: sise/],
    ['target', ['target', '--portl', '127.0.0.1:1'], /Unknown argument: portl/],
    ['verify', ['verify', '--secondary', 'URL', '--agianst', 'URL'], /Unknown argument: agianst/],
    ['restore', ['restore', '--secondary', 'URL', '--to', 'URL', '--rnage', '0+8'], /Unknown argument: rnage/],
  ])('a mistyped flag on the command line (%s): one usage line, exit 1', async (_name, args, message) => {
    const r = await cli(args.map((a) => (a === 'URL' ? url(0) : a)));
    expect(r.code).toBe(ExitStatus.USAGE);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/see 'xcopy-agent --help'/);
  });

  test('a variable a command has, with a value its option cannot take', async () => {
    const r = await cli(['inquire', url(0)], { XCOPY_AGENT_JSON: 'maybe' });
    expect(r.code).toBe(ExitStatus.USAGE);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/XCOPY_AGENT_JSON=maybe: --json takes true or false/);
  });
});

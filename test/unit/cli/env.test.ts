/** Options from the environment: which variables a command takes, and how booleans read. */
import { ArgumentError } from '../../../src/errors';
import { optionsFromEnv, positionalsOf } from '../../../src/cli/env';

test('positionals of a command string', () => {
  expect([...positionalsOf('snapshot <action> [id]')]).toEqual(['action', 'id']);
  expect([...positionalsOf('inquire <url>')]).toEqual(['url']);
  expect([...positionalsOf('target')]).toEqual([]);
  expect([...positionalsOf(['copy <files..>', 'cp'])]).toEqual(['files']);
});

test('a command takes the variables of its own flags only', () => {
  const env = {
    XCOPY_AGENT_MGMT: 'http://127.0.0.1:3261',
    XCOPY_AGENT_TOKEN_FILE: '/etc/xcopy-agent/token',
    XCOPY_AGENT_CATALOG: '/var/lib/xcopy-agent/catalog.db',
    XCOPY_AGENT_JSON: 'yes',
    XCOPY_AGENT_INITIATOR: 'iqn.2026-12.example:host',
    XCOPY_AGENTX_TIMEOUT: '3',
    PATH: '/usr/bin',
  };
  expect(optionsFromEnv(env, new Set(['json', 'timeout']), new Set(['json']))).toEqual({ json: true });
  expect(optionsFromEnv(env, new Set(['json', 'mgmt', 'token-file']), new Set(['json']))).toEqual({
    json: true,
    mgmt: 'http://127.0.0.1:3261',
    'token-file': '/etc/xcopy-agent/token',
  });
});

test.each([
  ['true', true],
  ['1', true],
  ['YES', true],
  ['on', true],
  ['false', false],
  ['0', false],
  ['no', false],
  ['off', false],
  ['', false],
])('boolean %j reads as %s', (value, expected) => {
  expect(optionsFromEnv({ XCOPY_AGENT_KEEP: value }, new Set(['keep']), new Set(['keep']))).toEqual({ keep: expected });
});

test('a boolean variable with another value is a usage error naming it', () => {
  expect(() => optionsFromEnv({ XCOPY_AGENT_KEEP: 'maybe' }, new Set(['keep']), new Set(['keep']))).toThrow(ArgumentError);
  expect(() => optionsFromEnv({ XCOPY_AGENT_KEEP: 'maybe' }, new Set(['keep']), new Set(['keep']))).toThrow(/XCOPY_AGENT_KEEP=maybe: --keep takes true or false/);
});

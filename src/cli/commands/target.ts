/**
 * `target`: run the project's iSCSI target, from a saveconfig.json-like file or the quick form.
 * SIGINT/SIGTERM: stop accepting, finish commands in flight, flush, exit 0. SIGHUP: read the
 * --config file again and reload it (docs/target.md "Reloading the configuration"), telling the
 * service manager (RELOADING=1, then READY=1). SIGUSR1: one status line in the log. `--metrics`:
 * the Prometheus endpoint (src/target/metrics.ts, docs/metrics.md).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { ArgumentError } from '../../errors';
import { parseConfig, quickConfig, type Config } from '../../target/config';
import { parseMetricsAddress, TargetMetrics } from '../../target/metrics';
import { TargetServer } from '../../target/server';
import { sdNotify } from '../../native/notify';
import { createLogger } from '../../util/log';
import { Output } from '../output';

export const command = 'target';
export const describe = "Run the project's iSCSI target (SBC/SPC disk LUNs over file, memory or remote stores)";

interface Args {
  json: boolean;
  config?: string;
  portal?: string;
  iqn?: string;
  lun?: string[];
  logLevel: string;
  stateDir?: string;
  mgmt?: string;
  mgmtTokenFile?: string;
  metrics?: string;
  metricsAnyAddress: boolean;
}

export function builder(y: Argv): Argv<Args> {
  return y
    .option('config', { type: 'string', describe: 'targetcli-style saveconfig.json (see README "Target configuration")' })
    .option('portal', { type: 'string', describe: 'quick form: HOST:PORT to listen on' })
    .option('iqn', { type: 'string', describe: 'quick form: the target name' })
    .option('lun', { type: 'string', array: true, describe: 'quick form: file:PATH[:SIZE] | memory:SIZE | iscsi://URL, numbered from 0' })
    .option('state-dir', { type: 'string', describe: 'snapshot journal directory; sessions resume from it at start (default with --mgmt: /var/lib/xcopy-agent)' })
    .option('mgmt', { type: 'string', describe: 'management API: HOST:PORT (or http://HOST:PORT) on loopback, e.g. 127.0.0.1:3261, or unix:/path' })
    .option('mgmt-token-file', { type: 'string', describe: 'bearer token file (created 0600 when missing; default STATE_DIR/mgmt.token)' })
    .option('metrics', { type: 'string', describe: 'serve Prometheus metrics on http://HOST:PORT/metrics, loopback only unless --metrics-any-address (docs/metrics.md)' })
    .option('metrics-any-address', { type: 'boolean', default: false, describe: 'allow --metrics on a non-loopback address (the endpoint has no authentication)' })
    .conflicts('config', ['portal', 'iqn', 'lun'])
    .example('$0 target --portal 127.0.0.1:3260 --iqn iqn.2026-11.io.example:t1 --lun file:/srv/lun0.img:1G', '')
    .example('$0 target --config target.json', '')
    .example('$0 target --config target.json --mgmt 127.0.0.1:3261 --state-dir /var/lib/xcopy-agent', '')
    .example('$0 target --config target.json --metrics 127.0.0.1:9470', 'Prometheus scrapes http://127.0.0.1:9470/metrics') as unknown as Argv<Args>;
}

/** Reads and validates a saveconfig.json-like file (again, on a reload). */
function readConfigFile(file: string): Config {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ArgumentError(`cannot read --config ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ArgumentError(`--config ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseConfig(doc);
}

function loadConfig(argv: Args): Config {
  if (argv.config) return readConfigFile(argv.config);
  if (!argv.portal || !argv.iqn || !argv.lun?.length) {
    throw new ArgumentError('give --config FILE, or --portal HOST:PORT --iqn IQN --lun SPEC [--lun SPEC ...]');
  }
  return quickConfig({ portal: argv.portal, iqn: argv.iqn, luns: argv.lun });
}

export async function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  const out = new Output(argv.json);
  try {
    const config = loadConfig(argv);
    if (argv.metricsAnyAddress && argv.metrics === undefined) throw new ArgumentError('--metrics-any-address needs --metrics HOST:PORT');
    const metricsAddress = argv.metrics === undefined ? undefined : parseMetricsAddress(argv.metrics, argv.metricsAnyAddress);
    // The target logs its lifecycle at info level unless told otherwise.
    const log = createLogger({ level: process.env.XCOPY_AGENT_LOG_LEVEL ?? (argv.logLevel === 'warn' ? 'info' : argv.logLevel) });
    const stateDir = argv.stateDir ?? (argv.mgmt ? '/var/lib/xcopy-agent' : undefined);
    const configFile = argv.config;
    const server = await TargetServer.start(config, {
      log,
      stateDir,
      management: argv.mgmt ? { listen: argv.mgmt, tokenFile: argv.mgmtTokenFile ?? path.join(stateDir!, 'mgmt.token') } : undefined,
      configSource: configFile === undefined ? undefined : () => readConfigFile(configFile),
      onReload: (e) => {
        // sd_notify(3): RELOADING=1 with the monotonic time the reload began, READY=1 when done.
        if (e.phase === 'begin') sdNotify({ RELOADING: 1, MONOTONIC_USEC: String(process.hrtime.bigint() / 1000n), STATUS: 'reloading the configuration' });
        else if (e.phase === 'end') sdNotify({ READY: 1, STATUS: `serving ${server.model.config.targets.length} target(s) on ${server.listening.map((l) => `${l.host}:${l.port}`).join(', ')} (configuration reloaded)` });
        else sdNotify({ READY: 1, STATUS: `reload refused, the previous configuration stays: ${e.error.message}` });
      },
    });
    let metrics: TargetMetrics | undefined;
    try {
      if (metricsAddress) metrics = await TargetMetrics.start(server, metricsAddress, log);
    } catch (err) {
      await server.stop();
      throw err;
    }
    const portals = server.listening.map((l) => `${l.host}:${l.port}`);
    out.record('progress', { event: 'listening', portals, targets: config.targets.map((t) => t.wwn) });
    out.line(`target: listening on ${portals.join(', ')} for ${config.targets.map((t) => t.wwn).join(', ')}`);
    if (server.management) {
      out.record('progress', { event: 'management', url: server.management.url });
      out.line(`target: management API on ${server.management.url}`);
    }
    if (metrics) {
      out.record('progress', { event: 'metrics', url: metrics.url });
      out.line(`target: metrics on ${metrics.url}`);
    }
    // Under systemd (Type=notify): serving now.
    sdNotify({ READY: 1, STATUS: `serving ${config.targets.length} target(s) on ${portals.join(', ')}`, MAINPID: process.pid });
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        log.info({ signal: sig }, 'stopping');
        sdNotify({ STOPPING: 1 });
        void (metrics?.stop() ?? Promise.resolve()).then(() => server.stop()).then(resolve);
      };
      // SIGHUP: reload (a refusal is logged, with the key path, and the configuration in force stays).
      process.on('SIGHUP', () => {
        log.info({ signal: 'SIGHUP', config: configFile }, 'reloading the configuration');
        server.reloadConfig().then(
          (r) => out.record('progress', { event: 'reloaded', ...r }),
          (err: Error) => out.record('progress', { event: 'reload-refused', message: err.message }),
        );
      });
      // SIGUSR1 (which would otherwise open Node's inspector): one status line in the log.
      process.on('SIGUSR1', () => log.info(server.status(), 'status'));
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    out.record('summary', { command: 'target', stopped: true });
  } catch (err) {
    process.exitCode = out.error(err);
  }
}

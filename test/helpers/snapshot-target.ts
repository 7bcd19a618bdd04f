/**
 * The fixtures the agent's integration tests share: the project's target in-process, serving
 * file LUNs with its management API (the target that snapshots a source), and a host writing
 * random runs of blocks to a LUN through the initiator until stopped.
 */
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { IscsiSession } from '../../src/initiator/session';
import { ManagementClient } from '../../src/mgmt';
import { freePort } from '../../src/peers/tgt';
import { quickConfig } from '../../src/target/config';
import { TargetServer } from '../../src/target/server';
import { xorshift } from './rng';

export interface SnapshotTarget {
  server: TargetServer;
  port: number;
  mgmt: ManagementClient;
  tokenFile: string;
  url: (lun: number) => string;
}

/**
 * Starts the target on a free loopback port with `luns` (quick-form specs) and its management API;
 * state under `dir/state`. The LUNs numbered in `readOnly` are served read-only (their storage
 * objects' `readonly`, as in saveconfig.json).
 */
export async function startSnapshotTarget(dir: string, iqn: string, luns: string[], opts: { readOnly?: number[] } = {}): Promise<SnapshotTarget> {
  const port = await freePort();
  const state = path.join(dir, 'state');
  const tokenFile = path.join(state, 'mgmt.token');
  const config = quickConfig({ portal: `127.0.0.1:${port}`, iqn, luns });
  for (const n of opts.readOnly ?? []) config.storageObjects[n].readOnly = true;
  const server = await TargetServer.start(config, {
    log: pino({ level: 'silent' }),
    stateDir: state,
    management: { listen: '127.0.0.1:0', tokenFile },
  });
  const mgmt = new ManagementClient({ url: server.management!.url, token: fs.readFileSync(tokenFile, 'utf8').trim() });
  return { server, port, mgmt, tokenFile, url: (lun) => `iscsi://127.0.0.1:${port}/${iqn}/${lun}` };
}

/**
 * A host writing runs of `minBlocks`..`maxBlocks` random blocks at random LBAs of a LUN of
 * `blocks` blocks until stopped; `stop()` resolves with the number of writes made.
 */
export function hostWriter(url: string, o: { seed: number; blocks: number; blockSize?: number; minBlocks?: number; maxBlocks?: number }) {
  const r = xorshift(o.seed);
  const bs = o.blockSize ?? 512;
  const min = o.minBlocks ?? 1;
  const max = o.maxBlocks ?? 128;
  let stopped = false;
  let writes = 0;
  const done = (async () => {
    const s = await IscsiSession.connect(url);
    try {
      while (!stopped) {
        const n = min + r.int(max - min + 1);
        await s.write16(BigInt(r.int(o.blocks - n)), r.bytes(n * bs));
        writes++;
      }
    } finally {
      await s.close();
    }
  })();
  return {
    /** The writes acknowledged so far. */
    get writes() {
      return writes;
    },
    stop: async () => {
      stopped = true;
      await done;
      return writes;
    },
  };
}

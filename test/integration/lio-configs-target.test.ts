/**
 * The project's target serves the targetcli-configs/ files as they are (`target --config FILE`),
 * the way an administrator runs them: portal 0.0.0.0:3260, backing files under
 * /var/lib/xcopy-agent/luns/. So that neither touches this host, each run is in a private network
 * and mount namespace (`unshare -nm`) with a tmpfs on /var/lib/xcopy-agent; the client runs in
 * the same namespace. LIO's side of the same files: test/integration/lio.test.ts.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../src/target/config';
import { TARGETCLI_CONFIGS } from '../helpers/lio-vm';

const BIN = path.resolve(__dirname, '../../bin/xcopy-agent');
const SECRETS = { XCOPY_LIO_CHAP_SECRET: 'host-secret-0123', XCOPY_LIO_CHAP_MUTUAL_SECRET: 'target-secret-4567', XCOPY_LIO_DISCOVERY_SECRET: 'discovery-secret-89' };
const CHAP_ENV = { LIBISCSI_CHAP_USERNAME: 'xcopy-host', LIBISCSI_CHAP_PASSWORD: SECRETS.XCOPY_LIO_CHAP_SECRET, LIBISCSI_CHAP_TARGET_USERNAME: 'xcopy-lio-target', LIBISCSI_CHAP_TARGET_PASSWORD: SECRETS.XCOPY_LIO_CHAP_MUTUAL_SECRET };

/**
 * In a fresh namespace: starts the target with `file`, waits for its "listening" line, then runs
 * iscsi-readcapacity16 on each URL (one "URL size blocksize" line each, or "URL FAIL"), then stops it.
 */
function serveAndProbe(file: string, urls: string[], clientEnv: Record<string, string>): Promise<string> {
  const envWords = Object.entries(clientEnv).map(([k, v]) => `${k}=${v}`).join(' '); // plain words: no quoting needed
  const script = `
set -u
ip link set lo up
mount -t tmpfs -o size=64m tmpfs /var/lib/xcopy-agent
mkdir -p /var/lib/xcopy-agent/luns/$(basename "$1" .json)
"$2" target --config "$1" > "/var/lib/xcopy-agent/out" 2>&1 &
pid=$!
for i in $(seq 100); do grep -q listening /var/lib/xcopy-agent/out && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
cat /var/lib/xcopy-agent/out
shift 2
for u in "$@"; do
  r=$(env ${envWords} iscsi-readcapacity16 -i iqn.2026-11.io.xcopy-agent:host "$u" 2>/dev/null) || { echo "$u FAIL"; continue; }
  echo "$u $(echo "$r" | sed -n 's/^RETURNED LOGICAL BLOCK ADDRESS://p') $(echo "$r" | sed -n 's/^LOGICAL BLOCK LENGTH IN BYTES://p')"
done
kill $pid; wait $pid
`;
  fs.mkdirSync('/var/lib/xcopy-agent', { recursive: true }); // the mount point (empty on this host)
  return new Promise((resolve, reject) => {
    execFile(
      'unshare',
      ['-nm', '--propagation', 'private', 'sh', '-c', script, 'sh', file, BIN, ...urls],
      { timeout: 60_000, env: { ...process.env, ...SECRETS, XCOPY_AGENT_LOG_LEVEL: 'warn' } },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout)),
    );
  });
}

test.each(['fileio-512.json', 'fileio-4096.json', 'chap.json', 'two-targets.json', 'small.json'])(
  "the project's target serves %s as written: every LUN at its size and block size",
  async (name) => {
    const file = path.join(TARGETCLI_CONFIGS, name);
    const config = parseConfig(JSON.parse(fs.readFileSync(file, 'utf8')), SECRETS);
    const byPath = new Map(config.storageObjects.map((so) => [`/backstores/${so.plugin}/${so.name}`, so]));
    const expected = config.targets.flatMap((t) =>
      t.tpgs[0].luns.map((l) => {
        const so = byPath.get(l.storageObject)!;
        return `iscsi://127.0.0.1:3260/${t.wwn}/${l.index} ${so.size! / so.blockSize - 1} ${so.blockSize}`;
      }),
    );
    const urls = expected.map((e) => e.split(' ')[0]);
    const chap = name === 'chap.json';
    const out = await serveAndProbe(file, urls, chap ? CHAP_ENV : {});
    expect(out).toContain(`target: listening on 0.0.0.0:3260 for ${config.targets.map((t) => t.wwn).join(', ')}`);
    expect(out.split('\n').filter((l) => l.startsWith('iscsi://'))).toEqual(expected);
    if (chap) {
      // Without CHAP the ACL refuses the login.
      const refused = await serveAndProbe(file, [urls[0]], {});
      expect(refused).toContain(`${urls[0]} FAIL`);
    }
  },
  90_000,
);

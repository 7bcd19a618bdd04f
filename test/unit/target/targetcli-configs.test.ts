/**
 * The files of targetcli-configs/ (README "targetcli-configs"): the project's reader accepts each
 * as targetcli saved it, with the LUNs, block sizes and CHAP the tests and drills rely on; the
 * translator to configfs writes (src/peers/lio-configfs.ts, what the LIO VM runs) covers every key.
 * LIO's acceptance of the same files is proved by test/integration/lio.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as secondary from '../../../src/secondary';
import { parseConfig } from '../../../src/target/config';
import { saveconfigToConfigfs } from '../../../src/peers/lio-configfs';

const DIR = path.resolve(__dirname, '../../../targetcli-configs');
const FILES = ['chap.json', 'fileio-4096.json', 'fileio-512.json', 'small.json', 'two-targets.json'];
const load = (name: string): unknown => JSON.parse(fs.readFileSync(path.join(DIR, name), 'utf8'));
const SECRETS = {
  XCOPY_LIO_CHAP_SECRET: 'host-secret-0123',
  XCOPY_LIO_CHAP_MUTUAL_SECRET: 'target-secret-4567',
  XCOPY_LIO_DISCOVERY_SECRET: 'discovery-secret-89',
};

describe('targetcli-configs/', () => {
  test('the folder holds the five layouts, each valid JSON', () => {
    expect(fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).sort()).toEqual(FILES);
  });

  test.each([
    ['fileio-512.json', 512],
    ['fileio-4096.json', 4096],
  ])('%s: one target, source/secondary/obf fileio LUNs 0-2 of %i-byte blocks, demo mode', (file, blockSize) => {
    const config = parseConfig(load(file), {});
    expect(config.storageObjects.map((so) => [so.name.replace(/^.*-/, ''), so.plugin, so.blockSize])).toEqual([
      ['source', 'fileio', blockSize],
      ['secondary', 'fileio', blockSize],
      ['obf', 'fileio', blockSize],
    ]);
    // The secondary holds the image, an appended OBF and the metadata area (docs/secondary-format.md).
    const [source, secondary, obf] = config.storageObjects;
    expect(secondary.size!).toBeGreaterThan(source.size! + obf.size!);
    expect(config.targets).toHaveLength(1);
    const tpg = config.targets[0].tpgs[0];
    expect(tpg.luns.map((l) => l.index)).toEqual([0, 1, 2]);
    expect(tpg).toMatchObject({ generateNodeAcls: true, authentication: false, portals: [{ ipAddress: '0.0.0.0', port: 3260 }] });
    expect(config.discoveryAuth).toBeUndefined();
  });

  test('every LUN of every file has its own serial, distinct in its leading hex digits (LIO builds the NAA from them)', () => {
    const serials = FILES.flatMap((f) => parseConfig(load(f), SECRETS).storageObjects.map((so) => so.wwn!));
    expect(serials).toHaveLength(18);
    expect(new Set(serials.map((s) => s.replace(/[^0-9a-f]/gi, '').slice(0, 8))).size).toBe(18);
    const names = FILES.flatMap((f) => parseConfig(load(f), SECRETS).storageObjects.map((so) => so.dev!));
    expect(new Set(names).size).toBe(18);
  });

  test('chap.json: one ACL with mutual CHAP, discovery CHAP from fabric_modules, secrets from the environment', () => {
    const config = parseConfig(load('chap.json'), SECRETS);
    const tpg = config.targets[0].tpgs[0];
    expect(tpg).toMatchObject({ authentication: true, generateNodeAcls: false });
    expect(tpg.nodeAcls).toEqual([
      {
        nodeWwn: 'iqn.2026-11.io.xcopy-agent:host',
        chap: { userid: 'xcopy-host', password: 'host-secret-0123', mutualUserid: 'xcopy-lio-target', mutualPassword: 'target-secret-4567' },
        mappedLuns: [0, 1, 2].map((i) => ({ index: i, tpgLun: i, writeProtect: false })),
      },
    ]);
    expect(config.discoveryAuth).toEqual({ userid: 'xcopy-discovery', password: 'discovery-secret-89' });
    // No secret is in the file: without the variables the reader says which one is missing.
    expect(JSON.stringify(load('chap.json'))).not.toMatch(/secret-\d/);
    expect(() => parseConfig(load('chap.json'), {})).toThrow(/chap_password: names the environment variable XCOPY_LIO_CHAP_SECRET, which is not set/);
  });

  test('small.json: the same layout at 16 MiB, one target per block size (512, 4096), for the CI end-to-end runs on LIO', () => {
    const config = parseConfig(load('small.json'), {});
    const byPath = new Map(config.storageObjects.map((so) => [`/backstores/${so.plugin}/${so.name}`, so]));
    expect(
      config.targets.map((t) => [t.wwn, t.tpgs[0].luns.map((l) => [l.index, byPath.get(l.storageObject)!.name, byPath.get(l.storageObject)!.blockSize, byPath.get(l.storageObject)!.size])]),
    ).toEqual(
      [512, 4096].map((bs) => [
        `iqn.2026-11.io.xcopy-agent:small-${bs}`,
        [
          [0, `small-${bs}-source`, bs, 16 << 20],
          [1, `small-${bs}-secondary`, bs, 48 << 20],
          [2, `small-${bs}-obf`, bs, 16 << 20],
        ],
      ]),
    );
    // Each secondary holds the image, an appended OBF as large as the OBF LUN, and the metadata area.
    for (const bs of [512, 4096]) {
      const blocks = (n: number) => BigInt((n << 20) / bs);
      expect(secondary.requiredBlocks({ blockSize: bs, imageBlocks: blocks(16), mode: 'append', logBlocksMax: blocks(16) })).toBeLessThanOrEqual(blocks(48));
    }
  });

  test('two-targets.json: the secondary is a LUN of another target than the source and OBF', () => {
    const config = parseConfig(load('two-targets.json'), {});
    expect(config.targets.map((t) => [t.wwn, t.tpgs[0].luns.map((l) => l.storageObject)])).toEqual([
      ['iqn.2026-11.io.xcopy-agent:site-a', ['/backstores/fileio/two-targets-source', '/backstores/fileio/two-targets-obf']],
      ['iqn.2026-11.io.xcopy-agent:site-b', ['/backstores/fileio/two-targets-secondary']],
    ]);
  });

  test('the configfs translation writes each object, serial, LUN link, portal, ACL and CHAP secret', () => {
    const script = saveconfigToConfigfs(load('chap.json'), SECRETS);
    expect(script).toContain(`echo 'fd_dev_name=/var/lib/xcopy-agent/luns/chap/source.img,fd_dev_size=67108864' > 'core/fileio_0/chap-source/control'`);
    expect(script).toContain(`echo 'c4a90001-7c3e-4d2a-9f10-5e6b8a9d0c11' > 'core/fileio_0/chap-source/wwn/vpd_unit_serial'`);
    expect(script).toContain(`mkdir 'iscsi/iqn.2026-11.io.xcopy-agent:chap/tpgt_1/np/0.0.0.0:3260'`);
    expect(script).toContain(`printf %s 'target-secret-4567' > 'iscsi/iqn.2026-11.io.xcopy-agent:chap/tpgt_1/acls/iqn.2026-11.io.xcopy-agent:host/auth/password_mutual'`);
    expect(script).toContain(`printf %s 'discovery-secret-89' > 'iscsi/discovery_auth/password'`);
    expect(script).toContain(`echo 1 > 'iscsi/discovery_auth/enforce_discovery_auth'`);
    // block_size before the other attributes, the tpg enabled last.
    expect(script.indexOf('attrib/block_size')).toBeLessThan(script.indexOf('attrib/emulate_3pc'));
    expect(script.trimEnd().split('\n').at(-1)).toBe(`echo 1 > 'iscsi/iqn.2026-11.io.xcopy-agent:chap/tpgt_1/enable'`);
    // A file the project's reader refuses is refused here too (one source of truth).
    const broken = load('fileio-512.json') as { targets: { wwn: string }[] };
    broken.targets[0].wwn = 'not-an-iqn';
    expect(() => saveconfigToConfigfs(broken, {})).toThrow(/targets\[0\]\.wwn: "not-an-iqn" is not an iSCSI name/);
  });
});

import { parseConfig, quickConfig } from '../../../src/target/config';

const good = {
  storage_objects: [
    { name: 'disk1', plugin: 'fileio', dev: '/tmp/disk1.img', size: 1073741824, attributes: { block_size: 512 } },
    { name: 'ram1', plugin: 'ramdisk', size: '64M' },
  ],
  targets: [
    {
      wwn: 'iqn.2026-11.io.example:t1',
      fabric: 'iscsi',
      tpgs: [
        {
          tag: 1,
          portals: [{ ip_address: '127.0.0.1', port: 3260 }],
          luns: [
            { index: 0, storage_object: '/backstores/fileio/disk1' },
            { index: 1, storage_object: '/backstores/ramdisk/ram1' },
          ],
          node_acls: [
            {
              node_wwn: 'iqn.2026-11.io.example:host1',
              chap_userid: 'host1',
              chap_password: 'env:TEST_SECRET',
              mapped_luns: [{ index: 0, tpg_lun: 1, write_protect: true }],
            },
          ],
          attributes: { authentication: 1 },
        },
      ],
    },
  ],
};

describe('target config (saveconfig.json nouns)', () => {
  test('a full document is read, secrets from the environment', () => {
    const c = parseConfig(good, { TEST_SECRET: 'twelve-chars-secret' });
    expect(c.storageObjects[1]).toMatchObject({ plugin: 'ramdisk', size: 64 * 1024 * 1024, blockSize: 512 });
    const tpg = c.targets[0].tpgs[0];
    expect(tpg).toMatchObject({ tag: 1, authentication: true, generateNodeAcls: false });
    expect(tpg.nodeAcls[0]).toEqual({
      nodeWwn: 'iqn.2026-11.io.example:host1',
      chap: { userid: 'host1', password: 'twelve-chars-secret' },
      mappedLuns: [{ index: 0, tpgLun: 1, writeProtect: true }],
    });
  });

  const mutate = (f: (d: any) => void) => {
    const d = JSON.parse(JSON.stringify(good));
    f(d);
    return d;
  };

  test.each([
    ['unknown top-level key', (d: any) => (d.targetz = []), /config \(root\)\.targetz: unknown key/],
    ['bad plugin', (d: any) => (d.storage_objects[0].plugin = 'block'), /storage_objects\[0\]\.plugin: unsupported plugin "block"/],
    ['fileio without dev', (d: any) => delete d.storage_objects[0].dev, /storage_objects\[0\]\.dev: is required for plugin fileio/],
    ['size not a block multiple', (d: any) => (d.storage_objects[0].size = 1000), /storage_objects\[0\]\.size: 1000 is not a multiple of the block size 512/],
    ['bad target name', (d: any) => (d.targets[0].wwn = 'target1'), /targets\[0\]\.wwn: "target1" is not an iSCSI name/],
    ['LUN to an unknown storage object', (d: any) => (d.targets[0].tpgs[0].luns[0].storage_object = '/backstores/fileio/nope'), /targets\[0\]\.tpgs\[0\]\.luns\[0\]\.storage_object: \/backstores\/fileio\/nope is not among storage_objects/],
    ['duplicate LUN', (d: any) => (d.targets[0].tpgs[0].luns[1].index = 0), /luns\[1\]\.index: duplicate LUN 0/],
    ['mapped LUN to a missing tpg LUN', (d: any) => (d.targets[0].tpgs[0].node_acls[0].mapped_luns[0].tpg_lun = 7), /mapped_luns\[0\]\.tpg_lun: LUN 7 is not among the tpg's luns/],
    ['port out of range', (d: any) => (d.targets[0].tpgs[0].portals[0].port = 70000), /portals\[0\]\.port: must be an integer from 1 to 65535/],
    ['secret variable unset', (d: any) => (d.targets[0].tpgs[0].node_acls[0].chap_password = 'env:NOPE_UNSET'), /chap_password: names the environment variable NOPE_UNSET, which is not set/],
    ['mutual secret equal to the initiator secret', (d: any) => Object.assign(d.targets[0].tpgs[0].node_acls[0], { chap_password: 'same-secret-1', chap_mutual_userid: 't', chap_mutual_password: 'same-secret-1' }), /must differ from the initiator secret/],
  ])('%s is refused naming the key', (_n, f, message) => {
    expect(() => parseConfig(mutate(f), { TEST_SECRET: 'twelve-chars-secret' })).toThrow(message);
  });

  test('quick form: LUNs numbered from 0, every initiator sees them', () => {
    const c = quickConfig({ portal: '127.0.0.1:3260', iqn: 'iqn.2026-11.io.example:q', luns: ['file:/tmp/a.img:256M', 'memory:1G', 'file:/tmp/b.img'] });
    expect(c.storageObjects.map((s) => [s.plugin, s.dev, s.size])).toEqual([
      ['fileio', '/tmp/a.img', 256 * 1024 * 1024],
      ['ramdisk', undefined, 1024 ** 3],
      ['fileio', '/tmp/b.img', undefined],
    ]);
    expect(c.targets[0].tpgs[0].luns.map((l) => l.index)).toEqual([0, 1, 2]);
    expect(c.targets[0].tpgs[0].generateNodeAcls).toBe(true);
    expect(() => quickConfig({ portal: 'localhost', iqn: 'iqn.2026-11.io.example:q', luns: ['memory:1M'] })).toThrow(/^--portal: "localhost" must be HOST:PORT/);
    expect(() => quickConfig({ portal: '127.0.0.1:1', iqn: 'iqn.2026-11.io.example:q', luns: ['disk:/x'] })).toThrow(/--lun disk:\/x: must be file:PATH/);
  });
});

describe('target config: each part of the document', () => {
  const doc = (over: Record<string, unknown> = {}) => ({
    storage_objects: [{ name: 'd', plugin: 'ramdisk', size: '1M' }],
    targets: [{ wwn: 'iqn.2026-11.io.example:t', tpgs: [{ luns: [{ index: 0, storage_object: '/backstores/ramdisk/d' }] }] }],
    ...over,
  });
  const tpgWith = (tpg: Record<string, unknown>) => doc({ targets: [{ wwn: 'iqn.2026-11.io.example:t', tpgs: [{ luns: [{ index: 0, storage_object: '/backstores/ramdisk/d' }], ...tpg }] }] });

  test('a tpg with nothing but a LUN gets the demo-mode defaults', () => {
    expect(parseConfig(doc(), {}).targets[0].tpgs[0]).toEqual({
      tag: 1,
      enable: true,
      portals: [],
      luns: [{ index: 0, storageObject: '/backstores/ramdisk/d' }],
      nodeAcls: [],
      authentication: false,
      generateNodeAcls: true,
      demoModeWriteProtect: false,
      chap: undefined,
      parameters: {},
    });
  });

  test('storage objects: block size, read-only, remote URL and the size a ramdisk needs', () => {
    const so = (o: Record<string, unknown>) => () => parseConfig(doc({ storage_objects: [o], targets: [] }), {});
    expect(so({ name: 'f', plugin: 'fileio', dev: '/x', size: 8192, attributes: { block_size: 4096 }, readonly: 1 })().storageObjects[0]).toEqual({
      name: 'f',
      plugin: 'fileio',
      dev: '/x',
      size: 8192,
      wwn: undefined,
      blockSize: 4096,
      readOnly: true,
    });
    expect(so({ name: 'f', plugin: 'fileio', dev: '/x', attributes: { block_size: 1024 } })).toThrow(/^config storage_objects\[0\]\.attributes\.block_size: must be 512 or 4096$/);
    expect(so({ name: 'r', plugin: 'remote', dev: '/dev/sdb' })).toThrow(/^config storage_objects\[0\]\.dev: must be an iscsi:\/\/ URL for plugin remote$/);
    expect(so({ name: 'm', plugin: 'ramdisk' })).toThrow(/^config storage_objects\[0\]\.size: is required for plugin ramdisk$/);
    // The first broken key in document order is the one named.
    expect(so({ name: 'f', plugin: 'block' })).toThrow(/storage_objects\[0\]\.plugin: unsupported plugin/);
  });

  test('duplicates are refused: storage objects (before any target is read) and targets', () => {
    const twice = [
      { name: 'd', plugin: 'ramdisk', size: '1M' },
      { name: 'd', plugin: 'ramdisk', size: '2M' },
    ];
    expect(() => parseConfig(doc({ storage_objects: twice, targets: [{ wwn: 'bad' }] }), {})).toThrow(
      /^config storage_objects\[1\]\.name: duplicate storage object \/backstores\/ramdisk\/d$/,
    );
    const t = { wwn: 'iqn.2026-11.io.example:t', tpgs: [] };
    expect(() => parseConfig(doc({ targets: [t, t] }), {})).toThrow(/^config targets\[1\]\.wwn: duplicate target iqn\.2026-11\.io\.example:t$/);
    expect(() => parseConfig(doc({ targets: [{ wwn: 'iqn.2026-11.io.example:t' }] }), {})).toThrow(/^config targets\[0\]\.tpgs: must be an array$/);
  });

  test('tpg parameters, attributes, portals and tpg-wide CHAP', () => {
    const tpg = parseConfig(
      tpgWith({
        tag: 3,
        enable: false,
        portals: [{ ip_address: '::1', port: 3261 }],
        parameters: { MaxRecvDataSegmentLength: 65536, HeaderDigest: 'CRC32C' },
        attributes: { authentication: true, demo_mode_write_protect: 1 },
        chap_userid: 'u',
        chap_password: 'env:S',
      }),
      { S: 'sixteen-chars-ok' },
    ).targets[0].tpgs[0];
    expect(tpg).toMatchObject({
      tag: 3,
      enable: false,
      portals: [{ ipAddress: '::1', port: 3261 }],
      parameters: { MaxRecvDataSegmentLength: '65536', HeaderDigest: 'CRC32C' },
      authentication: true,
      demoModeWriteProtect: true,
      chap: { userid: 'u', password: 'sixteen-chars-ok' },
    });
    expect(() => parseConfig(tpgWith({ parameters: { HeaderDigest: true } }), {})).toThrow(/^config targets\[0\]\.tpgs\[0\]\.parameters\.HeaderDigest: must be a non-empty string$/);
    expect(() => parseConfig(tpgWith({ portals: [{ ip_address: '::1', port: 1, mtu: 9000 }] }), {})).toThrow(/portals\[0\]\.mtu: unknown key \(expected one of: ip_address, port, iser, offload\)/);
    expect(() => parseConfig(tpgWith({ enable: 'yes' }), {})).toThrow(/tpgs\[0\]\.enable: must be true\/false \(or 1\/0\), got "yes"/);
  });

  test('discovery_auth: CHAP when enabled (the default), nothing when disabled', () => {
    const auth = { userid: 'd', password: 'discovery-secret', mutual_userid: 't', mutual_password: 'target-secret-1' };
    expect(parseConfig(doc({ discovery_auth: auth }), {}).discoveryAuth).toEqual({
      userid: 'd',
      password: 'discovery-secret',
      mutualUserid: 't',
      mutualPassword: 'target-secret-1',
    });
    expect(parseConfig(doc({ discovery_auth: { ...auth, enable: 0 } }), {}).discoveryAuth).toBeUndefined();
    expect(parseConfig(doc(), {}).discoveryAuth).toBeUndefined();
    expect(() => parseConfig(doc({ discovery_auth: { enable: true, user: 'x' } }), {})).toThrow(/^config discovery_auth\.user: unknown key/);
  });

  test('fabric_modules (as targetcli saves discovery CHAP): the iscsi entry, enabled by default when it has a user id', () => {
    const iscsi = { name: 'iscsi', discovery_userid: 'd', discovery_password: 'env:DISC', discovery_mutual_userid: 't', discovery_mutual_password: 'target-secret-1' };
    expect(parseConfig(doc({ fabric_modules: [{ name: 'loopback' }, iscsi] }), { DISC: 'discovery-secret' }).discoveryAuth).toEqual({
      userid: 'd',
      password: 'discovery-secret',
      mutualUserid: 't',
      mutualPassword: 'target-secret-1',
    });
    expect(parseConfig(doc({ fabric_modules: [{ ...iscsi, discovery_enable_auth: false }] }), { DISC: 'x' }).discoveryAuth).toBeUndefined();
    expect(parseConfig(doc({ fabric_modules: [] }), {}).discoveryAuth).toBeUndefined();
    expect(() => parseConfig(doc({ fabric_modules: [{ name: 'iscsi', discovery_user: 'x' }] }), {})).toThrow(/^config fabric_modules\[0\]\.discovery_user: unknown key/);
    expect(() => parseConfig(doc({ fabric_modules: [iscsi], discovery_auth: { userid: 'd', password: 'discovery-secret' } }), { DISC: 'x' })).toThrow(
      /^config discovery_auth: give discovery CHAP in discovery_auth or in fabric_modules, not both$/,
    );
  });

  test('keys targetcli writes that mean nothing here are accepted (alua_tpgs, aliases, a target\'s parameters, an ACL\'s tag)', () => {
    const d = JSON.parse(JSON.stringify(good));
    Object.assign(d.storage_objects[0], { alua_tpgs: [{ name: 'default_tg_pt_gp', tg_pt_gp_id: 0 }], aio: false, write_back: false });
    Object.assign(d.targets[0], { parameters: { cmd_completion_affinity: '-1' } });
    const tpg = d.targets[0].tpgs[0];
    Object.assign(tpg.luns[0], { alias: '3f1a20c4b1', alua_tg_pt_gp_name: 'default_tg_pt_gp' });
    Object.assign(tpg.node_acls[0], { tag: 'hosts' });
    Object.assign(tpg.node_acls[0].mapped_luns[0], { alias: '8c2e4a1f01' });
    expect(parseConfig(d, { TEST_SECRET: 'sixteen-chars-ok' }).targets[0].tpgs[0].nodeAcls[0].mappedLuns).toEqual([{ index: 0, tpgLun: 1, writeProtect: true }]);
  });
});

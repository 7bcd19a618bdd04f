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

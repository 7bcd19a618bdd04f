/**
 * saveconfig.json → a shell script of configfs writes (mkdir, echo, ln -s) that configures the
 * Linux target (LIO) the way `targetcli restoreconfig` does, without targetcli or Python in the
 * VM (docs/lio.md). One source of truth: the files of targetcli-configs/ feed both this and the
 * project's target (`target --config`); the document is first validated by the project's own
 * reader (src/target/config.ts), so a file only one of the two accepts fails here.
 *
 * What is translated (rtslib-fb's saveconfig.json(5) nouns → LIO's configfs tree):
 * - storage_objects (fileio): core/fileio_N/NAME, `control` fd_dev_name/fd_dev_size, `enable`,
 *   wwn → wwn/vpd_unit_serial (LIO derives each LUN's NAA designator from it), attributes →
 *   attrib/*; alua_tpgs other than the default group are refused (none of ours has one).
 * - targets → iscsi/IQN (parameters → param/*), tpgs → tpgt_TAG with lun/lun_N (a symlink named
 *   by the LUN's alias), np/IP:PORT, acls/NODE (mapped LUNs, write_protect, auth, attrib),
 *   tpg attributes/parameters, tpg-wide CHAP (auth/*), `enable` last.
 * - fabric_modules[name=iscsi] discovery CHAP → iscsi/discovery_auth/*.
 * Secrets written "env:NAME" are taken from `env` (the same rule as the project's reader).
 *
 * An attribute LIO refuses makes the script print `LIO-CONFIG-WARN path` and go on, as rtslib
 * reports non-fatal errors; the harness collects these lines and the tests assert there are none.
 */
import { parseConfig } from '../target/config';

type Json = Record<string, unknown>;

const CFS = '/sys/kernel/config/target';

/** A shell word, quoted. */
function q(s: string | number | boolean): string {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

function attrValue(v: unknown): string {
  if (typeof v === 'boolean') return v ? '1' : '0';
  return String(v);
}

export function saveconfigToConfigfs(doc: unknown, env: NodeJS.ProcessEnv = process.env): string {
  parseConfig(doc, env); // the project's reader accepts it, or this throws naming the key
  const root = doc as Json;
  const secret = (v: unknown): string => {
    const s = String(v);
    return s.startsWith('env:') ? env[s.slice(4)]! : s;
  };
  const lines: string[] = [
    '# generated from a saveconfig.json by test/lio/configfs.ts',
    `cd ${CFS}`,
    // Optional writes: LIO may refuse an attribute; say so and go on (rtslib's non-fatal errors).
    'opt() { echo "$2" > "$1" 2>/dev/null || echo "LIO-CONFIG-WARN $1 = $2"; }',
  ];
  const attrs = (dir: string, o: unknown, skip: string[] = []) => {
    for (const [k, v] of Object.entries((o ?? {}) as Json)) if (!skip.includes(k)) lines.push(`opt ${q(`${dir}/${k}`)} ${q(attrValue(v))}`);
  };
  const chap = (dir: string, o: Json, prefix: string) => {
    const pairs: [string, string][] = [
      ['userid', 'userid'],
      ['password', 'password'],
      ['mutual_userid', 'userid_mutual'],
      ['mutual_password', 'password_mutual'],
    ];
    for (const [key, file] of pairs) {
      const v = o[`${prefix}${key}`];
      // printf, not echo: LIO keeps a trailing newline as part of the name or secret.
      if (v !== undefined) lines.push(`printf %s ${q(key.endsWith('password') ? secret(v) : String(v))} > ${q(`${dir}/${file}`)}`);
    }
  };

  const soPath = new Map<string, string>();
  ((root.storage_objects ?? []) as Json[]).forEach((so, i) => {
    if (so.plugin !== 'fileio') throw new Error(`storage_objects[${i}]: the LIO VM takes fileio objects only, not ${String(so.plugin)}`);
    for (const g of (so.alua_tpgs ?? []) as Json[]) {
      if (g.name !== 'default_tg_pt_gp') throw new Error(`storage_objects[${i}].alua_tpgs: only default_tg_pt_gp is supported`);
    }
    const dir = `core/fileio_${i}/${String(so.name)}`;
    const dev = String(so.dev);
    soPath.set(`/backstores/fileio/${String(so.name)}`, dir);
    const control = [`fd_dev_name=${dev}`, `fd_dev_size=${Number(so.size)}`, ...(so.write_back ? ['fd_buffered_io=1'] : [])];
    lines.push(
      `mkdir -p ${q(dev.replace(/\/[^/]*$/, '') || '/')} ${q(dir)}`,
      `echo ${q(control.join(','))} > ${q(`${dir}/control`)}`,
      `echo 1 > ${q(`${dir}/enable`)}`,
    );
    if (so.wwn !== undefined) lines.push(`echo ${q(String(so.wwn))} > ${q(`${dir}/wwn/vpd_unit_serial`)}`);
    // block_size first: LIO takes it only while the device is not exported.
    const a = (so.attributes ?? {}) as Json;
    if (a.block_size !== undefined) lines.push(`echo ${q(attrValue(a.block_size))} > ${q(`${dir}/attrib/block_size`)}`);
    attrs(`${dir}/attrib`, a, ['block_size']);
  });

  for (const fm of (root.fabric_modules ?? []) as Json[]) {
    if (fm.name !== 'iscsi') continue;
    chap('iscsi/discovery_auth', fm, 'discovery_');
    if (fm.discovery_enable_auth !== undefined) lines.push(`echo ${fm.discovery_enable_auth ? 1 : 0} > 'iscsi/discovery_auth/enforce_discovery_auth'`);
  }

  for (const t of (root.targets ?? []) as Json[]) {
    const tdir = `iscsi/${String(t.wwn)}`;
    lines.push(`mkdir -p ${q(tdir)}`);
    attrs(`${tdir}/param`, t.parameters);
    for (const g of (t.tpgs ?? []) as Json[]) {
      const gdir = `${tdir}/tpgt_${Number(g.tag ?? 1)}`;
      lines.push(`mkdir -p ${q(gdir)}`);
      for (const l of (g.luns ?? []) as Json[]) {
        const ldir = `${gdir}/lun/lun_${Number(l.index)}`;
        lines.push(`mkdir ${q(ldir)}`, `ln -s ${q(`${CFS}/${soPath.get(String(l.storage_object))!}`)} ${q(`${ldir}/${String(l.alias ?? 'link')}`)}`);
      }
      for (const p of (g.portals ?? []) as Json[]) {
        const ip = String(p.ip_address);
        lines.push(`mkdir ${q(`${gdir}/np/${ip.includes(':') && !ip.startsWith('[') ? `[${ip}]` : ip}:${Number(p.port)}`)}`);
      }
      for (const acl of (g.node_acls ?? []) as Json[]) {
        const adir = `${gdir}/acls/${String(acl.node_wwn)}`;
        lines.push(`mkdir ${q(adir)}`);
        for (const m of (acl.mapped_luns ?? []) as Json[]) {
          const mdir = `${adir}/lun_${Number(m.index)}`;
          lines.push(`mkdir ${q(mdir)}`, `ln -s ${q(`${CFS}/${gdir}/lun/lun_${Number(m.tpg_lun)}`)} ${q(`${mdir}/${String(m.alias ?? 'link')}`)}`);
          if (m.write_protect) lines.push(`echo 1 > ${q(`${mdir}/write_protect`)}`);
        }
        chap(`${adir}/auth`, acl, 'chap_');
        attrs(`${adir}/attrib`, acl.attributes);
      }
      chap(`${gdir}/auth`, g, 'chap_');
      attrs(`${gdir}/attrib`, g.attributes);
      attrs(`${gdir}/param`, g.parameters);
      if (g.enable !== false) lines.push(`echo 1 > ${q(`${gdir}/enable`)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

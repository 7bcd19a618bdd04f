/** `inquire URL`: what a LUN is (identity, designators, capacity, copy manager limits). */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { inquire, type InquireReport } from '../../agent/inquire';
import { IscsiSession } from '../../initiator/session';
import { Output } from '../output';

export const command = 'inquire <url>';
export const describe = 'Show a LUN: vendor/product, SPC version, designators, capacity, 3PC and copy manager limits';

interface Args {
  url: string;
  json: boolean;
  timeout: number;
}

export function builder(y: Argv): Argv<Args> {
  return y
    .positional('url', { type: 'string', demandOption: true, describe: 'iscsi://host[:port]/<iqn>/<lun>' })
    .option('timeout', { type: 'number', default: 10, describe: 'seconds allowed for connect, login and each command' })
    .example('$0 inquire iscsi://127.0.0.1:3260/iqn.2003-01.org.linux-iscsi.host:sn.1/0', '')
    .example('$0 inquire --json iscsi://127.0.0.1:3260/iqn.2026-11.io.example:disk/1', '') as unknown as Argv<Args>;
}

function human(out: Output, r: InquireReport): void {
  const bytes = BigInt(r.capacity_bytes);
  const gib = Number(bytes) / 2 ** 30;
  out.line(`URL            ${r.url}`);
  out.line(`Vendor         ${r.vendor}`);
  out.line(`Product        ${r.product}`);
  out.line(`Revision       ${r.revision}`);
  out.line(`Version        ${r.spc_version} (0x${r.version.toString(16).padStart(2, '0')})`);
  out.line(`Device type    0x${r.peripheral_device_type.toString(16).padStart(2, '0')}`);
  out.line(`Capacity       ${r.capacity_blocks} blocks x ${r.block_size} bytes = ${r.capacity_bytes} bytes (${gib.toFixed(2)} GiB)`);
  if (r.unit_serial_number !== undefined) out.line(`Serial         ${r.unit_serial_number}`);
  out.line(`VPD pages      ${r.vpd_pages.map((p) => `0x${p.toString(16).padStart(2, '0')}`).join(' ') || '(none)'}`);
  if (r.designators.length === 0) out.line('Designators    (none)');
  r.designators.forEach((d, i) => {
    out.line(`${i === 0 ? 'Designators' : ''.padEnd(11)}    ${d.name}  [assoc ${d.association} type ${d.designator_type} code set ${d.code_set}] ${d.hex}`);
  });
  out.line(`3PC            ${r.three_pc ? 'yes (copy manager present)' : 'no'}`);
  const op = r.operating_parameters;
  if (op) {
    out.line('Copy manager   OPERATING PARAMETERS');
    for (const [k, v] of Object.entries(op)) {
      const shown = Array.isArray(v) ? v.map((x) => (typeof x === 'number' ? `0x${x.toString(16).padStart(2, '0')}` : String(x))).join(' ') : String(v);
      out.line(`  ${k.padEnd(34)} ${shown}`);
    }
  } else if (r.operating_parameters_error) {
    out.line(`Copy manager   OPERATING PARAMETERS unavailable: ${r.operating_parameters_error}`);
  }
}

export async function handler(argv: ArgumentsCamelCase<Args>): Promise<void> {
  const out = new Output(argv.json);
  try {
    const ms = Math.max(1, argv.timeout) * 1000;
    const session = await IscsiSession.connect(argv.url, { connectTimeoutMs: ms, commandTimeoutMs: ms });
    try {
      const report = await inquire(session);
      if (out.json) out.record('summary', { command: 'inquire', ...report });
      else human(out, report);
    } finally {
      await session.close();
    }
  } catch (err) {
    process.exitCode = out.error(err);
  }
}

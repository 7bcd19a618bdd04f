/**
 * MODE SENSE(6) and (10) (SPC-4; SBC-3 r36 6.4). Returns the mode parameter header, a
 * block descriptor unless DBD = 1 (short, SBC-3 r36 6.4.2; long with LONGLBA when MODE SENSE(10)
 * has LLBAA = 1), and the pages asked for: one page, or all of them for 3Fh (SUBPAGE CODE 00h
 * or FFh; there are no subpages). PAGE CONTROL: current, changeable, default; saved values are
 * not implemented (ILLEGAL REQUEST, SAVING PARAMETERS NOT SUPPORTED). The
 * DEVICE-SPECIFIC PARAMETER (SBC-3 r36 6.4.1) has WP (write protected: configuration, store or SWP)
 * and DPOFUA = 1. The data is cut to the ALLOCATION LENGTH.
 */
import type { CommandContext, CommandResult, Handler } from '../command';
import type { LogicalUnit } from '../logical-unit';
import { MODE_PAGES, ModePage, PageControl, modePageDef } from '../mode-pages';
import { Sense, SenseError, invalidCdbField } from '../sense-errors';
import type { ScsiRequest } from '../types';

/** SBC-3 r36 6.4.1: WP (bit 7) and DPOFUA (bit 4). */
export function deviceSpecificParameter(lu: LogicalUnit, req?: ScsiRequest): number {
  return (lu.writeProtection(req) !== undefined ? 0x80 : 0) | 0x10;
}

function blockDescriptor(lu: LogicalUnit, long: boolean, pc: PageControl): Buffer {
  const changeable = pc === PageControl.CHANGEABLE; // nothing in it can be changed
  if (long) {
    // SBC-3 r36 6.4.2.3: NUMBER OF LOGICAL BLOCKS (0–7), LOGICAL BLOCK LENGTH (12–15).
    const d = Buffer.alloc(16);
    if (!changeable) {
      d.writeBigUInt64BE(lu.store.blocks, 0);
      d.writeUInt32BE(lu.blockSize, 12);
    }
    return d;
  }
  // SBC-3 r36 6.4.2.2: NUMBER OF LOGICAL BLOCKS (0–3, FFFFFFFFh if larger), LOGICAL BLOCK LENGTH (5–7).
  const d = Buffer.alloc(8);
  if (!changeable) {
    const blocks = lu.store.blocks;
    d.writeUInt32BE(blocks > 0xffff_ffffn ? 0xffff_ffff : Number(blocks), 0);
    d.writeUIntBE(lu.blockSize, 5, 3);
  }
  return d;
}

function modeSenseHandler(ten: boolean): Handler {
  return async (ctx: CommandContext): Promise<CommandResult> => {
    const { lu, cdb } = ctx;
    const dbd = (cdb[1] & 0x08) !== 0;
    const llbaa = ten && (cdb[1] & 0x10) !== 0;
    const pc = (cdb[2] >> 6) as PageControl;
    const pageCode = cdb[2] & 0x3f;
    const subpage = cdb[3];
    const allocationLength = ten ? cdb.readUInt16BE(7) : cdb[4];
    if (pc === PageControl.SAVED) {
      throw new SenseError(Sense.SAVING_PARAMETERS_NOT_SUPPORTED, { field: { cdbByte: 2, bit: 7 } });
    }
    let codes: number[];
    if (pageCode === ModePage.ALL_PAGES) codes = MODE_PAGES.map((p) => p.page);
    else if (modePageDef(pageCode) !== undefined) codes = [pageCode];
    else throw invalidCdbField(2, 5, `mode page ${pageCode.toString(16)}h is not supported`);
    if (subpage !== 0x00 && subpage !== 0xff) throw invalidCdbField(3, 7, `subpage ${subpage.toString(16)}h is not supported`);
    const pages = codes.map((code) => lu.modes.read(code, pc));
    const descriptor = dbd ? Buffer.alloc(0) : blockDescriptor(lu, llbaa, pc);
    const headerLength = ten ? 8 : 4;
    const header = Buffer.alloc(headerLength);
    const total = headerLength + descriptor.length + pages.reduce((n, p) => n + p.length, 0);
    if (ten) {
      header.writeUInt16BE(total - 2, 0); // MODE DATA LENGTH
      header[3] = deviceSpecificParameter(lu, ctx.req);
      header[4] = llbaa && !dbd ? 0x01 : 0; // LONGLBA
      header.writeUInt16BE(descriptor.length, 6); // BLOCK DESCRIPTOR LENGTH
    } else {
      header[0] = total - 1; // MODE DATA LENGTH
      header[2] = deviceSpecificParameter(lu, ctx.req);
      header[3] = descriptor.length; // BLOCK DESCRIPTOR LENGTH
    }
    const data = Buffer.concat([header, descriptor, ...pages]);
    return { data: data.subarray(0, allocationLength) };
  };
}

export const modeSense6 = modeSenseHandler(false);
export const modeSense10 = modeSenseHandler(true);

/**
 * The mode pages of a disk logical unit (SPC-4 mode parameters, SBC-3 r36 6.4) and their state: current values
 * (shared by all I_T nexuses), which bits MODE SELECT may change, and the defaults a LUN reset
 * returns to. Nothing can be saved (PS = 0; PC = saved and SP = 1 are refused).
 *
 * - Caching (08h, SBC-3 r36 6.4.5): WCE (write cache enable) and RCD (read cache disable) are
 *   changeable. WCE = 0 makes every write FUA; RCD has nothing to switch off (reads always come
 *   from the store) and is kept only so an initiator can set it.
 * - Control (0Ah, SPC-4): D_SENSE (descriptor sense) and SWP (software write protect) are
 *   changeable; TST = 000b (one task set), QUEUE ALGORITHM MODIFIER = 1 (unrestricted
 *   reordering), QERR = 00b, BUSY TIMEOUT PERIOD FFFFh (unlimited).
 * - Informational Exceptions Control (1Ch, SPC-4): DEXCPT = 1, nothing changeable: this
 *   logical unit reports no informational exceptions.
 */
import { invalidParameterField } from './sense-errors';

export const enum ModePage {
  CACHING = 0x08,
  CONTROL = 0x0a,
  INFORMATIONAL_EXCEPTIONS_CONTROL = 0x1c,
  /** MODE SENSE: return all pages. */
  ALL_PAGES = 0x3f,
}

/** PAGE CONTROL (SPC-4, MODE SENSE). */
export const enum PageControl {
  CURRENT = 0,
  CHANGEABLE = 1,
  DEFAULT = 2,
  SAVED = 3,
}

export interface ModePageDef {
  page: number;
  name: string;
  /** The whole page (bytes 0–1 header included) with its default values. */
  defaults: Buffer;
  /** Same length: a 1 bit where MODE SELECT may change the value. Bytes 0–1 are zero. */
  changeable: Buffer;
}

function page(pageCode: number, name: string, length: number, values: Record<number, number>, changeable: Record<number, number>): ModePageDef {
  const defaults = Buffer.alloc(length);
  defaults[0] = pageCode;
  defaults[1] = length - 2; // PAGE LENGTH
  for (const [at, v] of Object.entries(values)) defaults[Number(at)] = v;
  const mask = Buffer.alloc(length);
  for (const [at, v] of Object.entries(changeable)) mask[Number(at)] = v;
  return { page: pageCode, name, defaults, changeable: mask };
}

/** The pages, in ascending page code order (the order MODE SENSE returns them for 3Fh). */
export const MODE_PAGES: readonly ModePageDef[] = [
  // SBC-3 r36 6.4.5: byte 2 bit 2 WCE, bit 0 RCD.
  page(ModePage.CACHING, 'Caching', 20, { 2: 0x04 }, { 2: 0x05 }),
  // SPC-4 control mode page: byte 2 bit 2 D_SENSE; byte 3 bits 7:4 QUEUE ALGORITHM MODIFIER; byte 4 bit 3 SWP;
  // bytes 8–9 BUSY TIMEOUT PERIOD.
  page(ModePage.CONTROL, 'Control', 12, { 3: 0x10, 8: 0xff, 9: 0xff }, { 2: 0x04, 4: 0x08 }),
  // SPC-4 informational exceptions control mode page: byte 2 bit 3 DEXCPT.
  page(ModePage.INFORMATIONAL_EXCEPTIONS_CONTROL, 'Informational Exceptions Control', 12, { 2: 0x08 }, {}),
];

const BY_CODE: ReadonlyMap<number, ModePageDef> = new Map(MODE_PAGES.map((p) => [p.page, p]));

export function modePageDef(pageCode: number): ModePageDef | undefined {
  return BY_CODE.get(pageCode);
}

/** Highest set bit of a non-zero byte (for the bit pointer). */
function topBit(b: number): number {
  return 31 - Math.clz32(b & 0xff);
}

export class ModePages {
  private readonly current = new Map<number, Buffer>();

  constructor() {
    this.reset();
  }

  /** Back to the defaults (power on, LUN reset: SAM-5 r21 6.3.3 — nothing is saved). */
  reset(): void {
    for (const p of MODE_PAGES) this.current.set(p.page, Buffer.from(p.defaults));
  }

  /** A copy of one page as MODE SENSE reports it for a PAGE CONTROL value (not SAVED). */
  read(pageCode: number, pc: PageControl.CURRENT | PageControl.CHANGEABLE | PageControl.DEFAULT): Buffer {
    const def = BY_CODE.get(pageCode);
    if (def === undefined) throw new Error(`no mode page ${pageCode}`);
    switch (pc) {
      case PageControl.CURRENT:
        return Buffer.from(this.current.get(pageCode) as Buffer);
      case PageControl.CHANGEABLE: {
        const out = Buffer.from(def.changeable);
        out[0] = def.page;
        out[1] = def.defaults[1];
        return out;
      }
      case PageControl.DEFAULT:
        return Buffer.from(def.defaults);
    }
  }

  /**
   * Checks one page of a MODE SELECT parameter list (SPC-4): a known page, its PAGE
   * LENGTH as ours, no change to a bit that is not changeable. Field pointers are relative to
   * the parameter list (`offset` = where the page starts in it). Returns the page code.
   */
  validate(data: Buffer, offset: number): number {
    const code = data[0] & 0x3f;
    const def = BY_CODE.get(code);
    if ((data[0] & 0x40) !== 0) {
      throw invalidParameterField(offset, 6, 'subpage format (SPF = 1) pages are not supported');
    }
    if (def === undefined) throw invalidParameterField(offset, 5, `mode page ${code.toString(16)}h is not supported`);
    if (data[1] !== def.defaults[1]) {
      throw invalidParameterField(offset + 1, 7, `PAGE LENGTH of page ${code.toString(16)}h must be ${def.defaults[1]}`);
    }
    const cur = this.current.get(code) as Buffer;
    for (let i = 2; i < def.defaults.length; i++) {
      const diff = (data[i] ^ cur[i]) & ~def.changeable[i] & 0xff;
      if (diff !== 0) {
        throw invalidParameterField(offset + i, topBit(diff), `byte ${i} of mode page ${code.toString(16)}h is not changeable`);
      }
    }
    return code;
  }

  /** Stores a validated page; true if a value changed. */
  apply(data: Buffer): boolean {
    const code = data[0] & 0x3f;
    const cur = this.current.get(code) as Buffer;
    const next = Buffer.from(data);
    next[0] = code; // PS and SPF are not kept
    const changed = !next.equals(cur);
    this.current.set(code, next);
    return changed;
  }

  /** Caching page WCE: writes may complete before they are durable. */
  get writeCacheEnabled(): boolean {
    return ((this.current.get(ModePage.CACHING) as Buffer)[2] & 0x04) !== 0;
  }

  /** Control page D_SENSE: report sense in descriptor format. */
  get descriptorSense(): boolean {
    return ((this.current.get(ModePage.CONTROL) as Buffer)[2] & 0x04) !== 0;
  }

  /** Control page SWP: the medium is write protected by software. */
  get softwareWriteProtect(): boolean {
    return ((this.current.get(ModePage.CONTROL) as Buffer)[4] & 0x08) !== 0;
  }
}

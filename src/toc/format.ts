/**
 * How a table of contents is stored, version 1 (docs/toc-format.md): a 64-byte header (magic,
 * version, body length, entry count, CRC32C of the body, CRC32C of the header) and a body of
 * LEB128 varints — the file system's facts as JSON, then one record per inode, paths
 * prefix-compressed, runs as deltas. Written to the secondary's TOC reserve
 * (docs/secondary-format.md, "TOC reserve") and to the catalog. Pure codec: no I/O.
 */
import { DecodeError, EncodeError } from '../errors';
import { crc32c } from '../native/crc32c';
import { bytesToText, fileTypeOf, type Toc, type TocEntry, type TocExtent, type TocFileSystem } from './toc';

export const TOC_MAGIC = Buffer.from('XCAGTOC1', 'latin1');
export const TOC_VERSION = 1;
export const TOC_HEADER_LENGTH = 64;
/** The name `toc.format` in the secondary's header gives this format. */
export const TOC_FORMAT_NAME = 'xcagtoc1';

const S = 'TOC';
const S_ENC = 'TOC';

/** Entry flag bits (docs/toc-format.md, "Entry"). */
const F_INLINE = 1;
const F_FAST_SYMLINK = 2;
const F_RDEV = 4;
const F_TARGET = 8;
const F_KNOWN = F_INLINE | F_FAST_SYMLINK | F_RDEV | F_TARGET;

class Writer {
  private buf = Buffer.alloc(4096);
  length = 0;
  private room(n: number) {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  uint(v: number, field: string) {
    if (!Number.isSafeInteger(v) || v < 0) throw new EncodeError(S_ENC, field, `must be an integer 0..2^53-1, got ${v}`);
    this.room(8);
    while (v >= 0x80) {
      this.buf[this.length++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.length++] = v;
  }
  /** Zigzag: 0, -1, 1, -2, ... → 0, 1, 2, 3, ... */
  int(v: number, field: string) {
    if (!Number.isSafeInteger(v) || Math.abs(v) > 2 ** 51) throw new EncodeError(S_ENC, field, `must be an integer of magnitude ≤ 2^51, got ${v}`);
    this.uint(v < 0 ? -2 * v - 1 : 2 * v, field);
  }
  bytes(b: Buffer) {
    this.uint(b.length, 'length');
    this.room(b.length);
    b.copy(this.buf, this.length);
    this.length += b.length;
  }
  done(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

class Reader {
  pos = 0;
  constructor(
    private readonly b: Buffer,
    private readonly base: number,
  ) {}
  fail(msg: string, at = this.pos): never {
    throw new DecodeError(S, this.base + at, msg);
  }
  uint(field: string): number {
    const start = this.pos;
    let v = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= this.b.length) this.fail(`${field}: the body ends inside a number`, start);
      const c = this.b[this.pos++];
      v += (c & 0x7f) * scale;
      if (!Number.isSafeInteger(v)) this.fail(`${field}: number larger than 2^53-1`, start);
      if ((c & 0x80) === 0) {
        if (c === 0 && this.pos - start > 1) this.fail(`${field}: number not in its shortest form`, start);
        break;
      }
      scale *= 0x80;
    }
    return v;
  }
  int(field: string): number {
    const z = this.uint(field);
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }
  bytes(field: string, max = this.b.length): Buffer {
    const at = this.pos;
    const n = this.uint(`${field} length`);
    if (n > max) this.fail(`${field}: length ${n} exceeds ${max}`, at);
    if (this.pos + n > this.b.length) this.fail(`${field}: ${n} bytes, ${this.b.length - this.pos} left in the body`, at);
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  get left() {
    return this.b.length - this.pos;
  }
}

/** The raw bytes of an entry's paths (rawPaths when present, else the UTF-8 of paths). */
const pathBytes = (e: TocEntry): Buffer[] => e.rawPaths ?? e.paths.map((p) => Buffer.from(p, 'utf8'));

const sharedPrefix = (a: Buffer, b: Buffer): number => {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
};

/** The file system's facts, as the JSON of the body's first field. */
function fsJson(fs: TocFileSystem): Buffer {
  const { type, blockSize, blocksCount, inodesCount, features, needsRecovery, state, uuid, label, offset, deviceBlockSize } = fs;
  const ordered = { type, blockSize, blocksCount, inodesCount, features, needsRecovery, state, uuid, label, offset, deviceBlockSize };
  return Buffer.from(JSON.stringify(ordered), 'utf8');
}

/** Encodes a TOC: header then body (docs/toc-format.md). */
export function encodeToc(toc: Toc): Buffer {
  const w = new Writer();
  w.bytes(fsJson(toc.fs));
  let prevPath: Buffer = Buffer.alloc(0);
  for (const e of toc.entries) {
    w.uint(e.ino, 'ino');
    w.uint(e.mode, 'mode');
    w.uint(e.uid, 'uid');
    w.uint(e.gid, 'gid');
    w.uint(e.links, 'links');
    w.uint(e.flags, 'flags');
    w.uint(e.size, 'size');
    w.int(e.mtime, 'mtime');
    w.uint(e.mtimeNsec, 'mtimeNsec');
    const target = e.rawTarget ?? (e.target !== undefined ? Buffer.from(e.target, 'utf8') : undefined);
    const flags = (e.inlineData ? F_INLINE : 0) | (e.fastSymlink ? F_FAST_SYMLINK : 0) | (e.rdev !== undefined ? F_RDEV : 0) | (target ? F_TARGET : 0);
    w.uint(flags, 'entry flags');
    if (e.rdev !== undefined) w.uint(e.rdev, 'rdev');
    const paths = pathBytes(e);
    w.uint(paths.length, 'path count');
    for (const p of paths) {
      const shared = sharedPrefix(prevPath, p);
      w.uint(shared, 'path prefix');
      w.bytes(p.subarray(shared));
      prevPath = p;
    }
    if (target) w.bytes(target);
    if (e.inlineData) w.bytes(e.inlineData);
    w.uint(e.extents.length, 'extent count');
    let nextLogical = 0;
    let nextPhysical = 0;
    for (const x of e.extents) {
      if (x.blocks < 1) throw new EncodeError(S_ENC, 'extent blocks', `must be ≥ 1 (inode ${e.ino})`);
      w.uint(x.logical - nextLogical, 'extent logical gap');
      w.int(x.physical - nextPhysical, 'extent physical delta');
      w.uint(x.blocks * 2 + (x.uninit ? 1 : 0), 'extent blocks');
      nextLogical = x.logical + x.blocks;
      nextPhysical = x.physical + x.blocks;
    }
    w.uint(e.mapBlocks.length, 'map block count');
    let prev = 0;
    for (const b of e.mapBlocks) {
      w.int(b - prev, 'map block delta');
      prev = b;
    }
  }
  const body = w.done();
  const header = Buffer.alloc(TOC_HEADER_LENGTH);
  TOC_MAGIC.copy(header, 0);
  header.writeUInt16BE(TOC_VERSION, 8);
  header.writeUInt16BE(TOC_HEADER_LENGTH, 10);
  header.writeBigUInt64BE(BigInt(body.length), 16);
  header.writeUInt32BE(toc.entries.length, 24);
  header.writeUInt32BE(crc32c(body), 28);
  header.writeUInt32BE(crc32c(header.subarray(0, 60)), 60);
  return Buffer.concat([header, body]);
}

export interface TocHeader {
  version: number;
  bodyLength: number;
  entries: number;
  bodyCrc: number;
}

/** Decodes and checks the 64-byte header: how many bytes the whole TOC takes is 64 + bodyLength. */
export function decodeTocHeader(buf: Buffer): TocHeader {
  if (buf.length < TOC_HEADER_LENGTH) throw new DecodeError(S, buf.length, `${buf.length} bytes, the header needs ${TOC_HEADER_LENGTH}`);
  if (!buf.subarray(0, 8).equals(TOC_MAGIC)) throw new DecodeError(S, 0, 'no XCAGTOC1 magic: not a table of contents');
  const version = buf.readUInt16BE(8);
  if (version !== TOC_VERSION) throw new DecodeError(S, 8, `version ${version}; this agent reads version ${TOC_VERSION}`);
  if (buf.readUInt16BE(10) !== TOC_HEADER_LENGTH) throw new DecodeError(S, 10, `header length ${buf.readUInt16BE(10)}, ${TOC_HEADER_LENGTH} expected`);
  if (crc32c(buf.subarray(0, 60)) !== buf.readUInt32BE(60)) throw new DecodeError(S, 60, 'header CRC32C does not match');
  const len = buf.readBigUInt64BE(16);
  if (len > BigInt(Number.MAX_SAFE_INTEGER)) throw new DecodeError(S, 16, `body length ${len} too large`);
  return { version, bodyLength: Number(len), entries: buf.readUInt32BE(24), bodyCrc: buf.readUInt32BE(28) };
}

const FS_TYPES = ['ext2', 'ext3', 'ext4'];

function checkFs(v: unknown, r: Reader, at: number): TocFileSystem {
  const o = v as Record<string, unknown>;
  const bad = (f: string) => r.fail(`file system: ${f} is missing or of the wrong kind`, at);
  if (typeof o !== 'object' || o === null || Array.isArray(o)) bad('the object');
  const nat = (f: string) => (Number.isSafeInteger(o[f]) && (o[f] as number) >= 0 ? (o[f] as number) : bad(f));
  if (!FS_TYPES.includes(o.type as string)) bad('type');
  if (![1024, 2048, 4096, 8192, 16384, 32768, 65536].includes(o.blockSize as number)) bad('blockSize');
  if (![512, 4096].includes(o.deviceBlockSize as number)) bad('deviceBlockSize');
  if (!Array.isArray(o.features) || !o.features.every((f) => typeof f === 'string')) bad('features');
  if (typeof o.needsRecovery !== 'boolean') bad('needsRecovery');
  if (typeof o.uuid !== 'string') bad('uuid');
  if (typeof o.label !== 'string') bad('label');
  return {
    type: o.type as TocFileSystem['type'],
    blockSize: o.blockSize as number,
    blocksCount: nat('blocksCount'),
    inodesCount: nat('inodesCount'),
    features: o.features as string[],
    needsRecovery: o.needsRecovery as boolean,
    state: nat('state'),
    uuid: o.uuid as string,
    label: o.label as string,
    offset: nat('offset'),
    deviceBlockSize: o.deviceBlockSize as number,
  };
}

/** Decodes a whole TOC (header and body); every failure is a DecodeError naming its byte. */
export function decodeToc(buf: Buffer): Toc {
  const h = decodeTocHeader(buf);
  const end = TOC_HEADER_LENGTH + h.bodyLength;
  if (buf.length < end) throw new DecodeError(S, buf.length, `${buf.length} bytes, the TOC takes ${end}`);
  const body = buf.subarray(TOC_HEADER_LENGTH, end);
  if (crc32c(body) !== h.bodyCrc) throw new DecodeError(S, 28, 'body CRC32C does not match');
  const r = new Reader(body, TOC_HEADER_LENGTH);
  const fsJsonBytes = r.bytes('file system', 1 << 20);
  let fsValue: unknown;
  try {
    fsValue = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(fsJsonBytes));
  } catch {
    r.fail('file system: not UTF-8 JSON', 0);
  }
  const fs = checkFs(fsValue, r, 0);
  const entries: TocEntry[] = [];
  let prevPath: Buffer = Buffer.alloc(0);
  const seen = new Set<number>();
  for (let i = 0; i < h.entries; i++) {
    const at = r.pos;
    const ino = r.uint('ino');
    if (ino < 1 || ino > fs.inodesCount || seen.has(ino)) r.fail(`entry ${i}: inode ${ino} is not a valid, new inode number`, at);
    seen.add(ino);
    const mode = r.uint('mode');
    if (mode > 0xffff) r.fail(`inode ${ino}: mode ${mode} is not 16 bits`, at);
    const e: TocEntry = {
      ino,
      paths: [],
      type: fileTypeOf(mode),
      mode,
      uid: r.uint('uid'),
      gid: r.uint('gid'),
      links: r.uint('links'),
      flags: r.uint('flags'),
      size: r.uint('size'),
      mtime: r.int('mtime'),
      mtimeNsec: r.uint('mtimeNsec'),
      extents: [],
      mapBlocks: [],
    };
    const flagsAt = r.pos;
    const flags = r.uint('entry flags');
    if (flags & ~F_KNOWN) r.fail(`inode ${ino}: unknown entry flags ${flags}`, flagsAt);
    if (flags & F_RDEV) e.rdev = r.uint('rdev');
    const count = r.uint('path count');
    if (count < 1 || count > r.left) r.fail(`inode ${ino}: ${count} paths`, at);
    const raws: Buffer[] = [];
    for (let k = 0; k < count; k++) {
      const pAt = r.pos;
      const shared = r.uint('path prefix');
      if (shared > prevPath.length) r.fail(`inode ${ino}: path shares ${shared} bytes with a previous path of ${prevPath.length}`, pAt);
      const p = Buffer.concat([prevPath.subarray(0, shared), r.bytes('path')]);
      if (p[0] !== 0x2f || p.includes(0)) r.fail(`inode ${ino}: a path must start with '/' and hold no NUL`, pAt);
      raws.push(p);
      prevPath = p;
    }
    const texts = raws.map(bytesToText);
    e.paths = texts.map((t) => t.text);
    if (texts.some((t) => !t.utf8)) e.rawPaths = raws;
    if (flags & F_TARGET) {
      const t = Buffer.from(r.bytes('symlink target', 65536));
      const txt = bytesToText(t);
      e.target = txt.text;
      if (!txt.utf8) e.rawTarget = t;
    }
    if (flags & F_INLINE) e.inlineData = Buffer.from(r.bytes('inline data', 65536));
    if (flags & F_FAST_SYMLINK) e.fastSymlink = true;
    const n = r.uint('extent count');
    if (n > r.left) r.fail(`inode ${ino}: ${n} extents`, at);
    let nextLogical = 0;
    let nextPhysical = 0;
    for (let k = 0; k < n; k++) {
      const xAt = r.pos;
      const logical = nextLogical + r.uint('extent logical gap');
      const physical = nextPhysical + r.int('extent physical delta');
      const b2 = r.uint('extent blocks');
      const x: TocExtent = { logical, physical, blocks: Math.floor(b2 / 2), uninit: b2 % 2 === 1 };
      if (x.blocks < 1 || physical < 0 || physical + x.blocks > fs.blocksCount || !Number.isSafeInteger(logical + x.blocks)) {
        r.fail(`inode ${ino}: extent ${k} (blocks ${physical}+${x.blocks}) lies outside the file system`, xAt);
      }
      e.extents.push(x);
      nextLogical = logical + x.blocks;
      nextPhysical = physical + x.blocks;
    }
    const m = r.uint('map block count');
    if (m > r.left) r.fail(`inode ${ino}: ${m} map blocks`, at);
    let prev = 0;
    for (let k = 0; k < m; k++) {
      const bAt = r.pos;
      prev += r.int('map block delta');
      if (prev < 0 || prev >= fs.blocksCount) r.fail(`inode ${ino}: map block ${prev} lies outside the file system`, bAt);
      e.mapBlocks.push(prev);
    }
    entries.push(e);
  }
  if (r.left !== 0) r.fail(`${r.left} bytes after the last entry`);
  return { fs, entries };
}

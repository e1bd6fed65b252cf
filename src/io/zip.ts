// Minimal zip reader over RandomAccess: the central directory (zip64 aware),
// then entries on demand. torch.save and torch.jit.save write uncompressed
// ("stored") entries, which we can read by byte range without touching the
// rest of the archive; deflated entries are inflated whole with the standard
// DecompressionStream. Runtime-agnostic.
import type { RandomAccess } from './random-access.js';

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  localHeaderOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const U32_MAX = 0xffffffff;
/** Entries up to this size are CRC-checked when read whole (data.pkl, version files). */
const CRC_CHECK_LIMIT = 64 << 20;

function u64(dv: DataView, at: number): number {
  const v = dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 2 ** 32;
  if (!Number.isSafeInteger(v)) throw new RangeError('64-bit zip field too large');
  return v;
}

export class ZipArchive {
  private readonly dataStart = new Map<string, number>();

  constructor(readonly name: string, private readonly ra: RandomAccess, readonly entries: ReadonlyMap<string, ZipEntry>) {}

  get(name: string): ZipEntry {
    const e = this.entries.get(name);
    if (!e) throw new Error(`${this.name}: zip has no entry "${name}"`);
    return e;
  }

  /** Absolute offset of an entry's data (after its local header, whose lengths may differ from the central one). */
  private async start(e: ZipEntry): Promise<number> {
    const cached = this.dataStart.get(e.name);
    if (cached !== undefined) return cached;
    if (e.localHeaderOffset + 30 > this.ra.size) throw new Error(`${this.name}: zip entry "${e.name}": local header is outside the file`);
    const lh = await this.ra.read(e.localHeaderOffset, 30);
    const dv = new DataView(lh.buffer, lh.byteOffset, 30);
    if (dv.getUint32(0, true) !== SIG_LOCAL) throw new Error(`${this.name}: zip entry "${e.name}": bad local header signature`);
    const start = e.localHeaderOffset + 30 + dv.getUint16(26, true) + dv.getUint16(28, true);
    if (start + e.compressedSize > this.ra.size) {
      throw new Error(`${this.name}: zip entry "${e.name}": data (${e.compressedSize} bytes at ${start}) runs past the end of the file (truncated?)`);
    }
    this.dataStart.set(e.name, start);
    return start;
  }

  /** The whole (decompressed) entry. Small entries are CRC-checked. */
  async read(name: string): Promise<Uint8Array> {
    const e = this.get(name);
    const raw = await this.ra.read(await this.start(e), e.compressedSize);
    const data = e.method === 0 ? raw : await inflateRaw(raw, e.size, `${this.name}: zip entry "${name}"`);
    if (data.byteLength !== e.size) throw new Error(`${this.name}: zip entry "${name}": got ${data.byteLength} bytes, directory says ${e.size}`);
    if (e.size <= CRC_CHECK_LIMIT && crc32(data) !== e.crc32) throw new Error(`${this.name}: zip entry "${name}": CRC mismatch (corrupt file)`);
    return data;
  }

  /** `length` bytes at `offset` within the (decompressed) entry; positional for stored entries. */
  async readRange(name: string, offset: number, length: number): Promise<Uint8Array> {
    const e = this.get(name);
    if (offset < 0 || length < 0 || offset + length > e.size) {
      throw new Error(`${this.name}: zip entry "${name}": range [${offset}, ${offset + length}) is outside its ${e.size} bytes`);
    }
    if (e.method === 0) return this.ra.read((await this.start(e)) + offset, length);
    return (await this.read(name)).slice(offset, offset + length);
  }

  close(): Promise<void> {
    return this.ra.close();
  }
}

/** Reads the central directory. Errors say plainly when the file is not a zip at all. */
export async function openZip(ra: RandomAccess, name: string): Promise<ZipArchive> {
  // The end-of-central-directory record is in the last 22 + 65535 (comment) bytes.
  const tailLen = Math.min(ra.size, 22 + 0xffff);
  const tail = await ra.read(ra.size - tailLen, tailLen);
  const tv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let eocd = -1;
  for (let i = tail.byteLength - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === SIG_EOCD) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error(`${name}: not a zip archive (no end-of-central-directory record)`);
  let count = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  if (count === 0xffff || cdSize === U32_MAX || cdOffset === U32_MAX) {
    // zip64: a locator right before the EOCD points at the zip64 EOCD record.
    const loc = eocd - 20;
    if (loc < 0 || tv.getUint32(loc, true) !== SIG_ZIP64_LOCATOR) throw new Error(`${name}: zip64 archive without a zip64 locator`);
    const recOff = u64(tv, loc + 8);
    if (recOff + 56 > ra.size) throw new Error(`${name}: zip64 end record is outside the file`);
    const rec = await ra.read(recOff, 56);
    const rv = new DataView(rec.buffer);
    if (rv.getUint32(0, true) !== SIG_ZIP64_EOCD) throw new Error(`${name}: bad zip64 end record signature`);
    count = u64(rv, 32);
    cdSize = u64(rv, 40);
    cdOffset = u64(rv, 48);
  }
  if (cdOffset + cdSize > ra.size) throw new Error(`${name}: zip central directory (${cdSize} bytes at ${cdOffset}) is outside the file (truncated?)`);
  const cd = await ra.read(cdOffset, cdSize);
  const dv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  const dec = new TextDecoder();
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.byteLength || dv.getUint32(p, true) !== SIG_CENTRAL) throw new Error(`${name}: corrupt zip central directory (entry ${i})`);
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    const crc = dv.getUint32(p + 16, true);
    let csize = dv.getUint32(p + 20, true);
    let usize = dv.getUint32(p + 24, true);
    const nlen = dv.getUint16(p + 28, true), xlen = dv.getUint16(p + 30, true), clen = dv.getUint16(p + 32, true);
    let lho = dv.getUint32(p + 42, true);
    if (p + 46 + nlen + xlen + clen > cd.byteLength) throw new Error(`${name}: corrupt zip central directory (entry ${i})`);
    const entryName = dec.decode(cd.subarray(p + 46, p + 46 + nlen));
    // zip64 extended information: 64-bit values for whichever fields are 0xFFFFFFFF, in this order.
    for (let x = p + 46 + nlen; x + 4 <= p + 46 + nlen + xlen;) {
      const id = dv.getUint16(x, true), sz = dv.getUint16(x + 2, true);
      if (id === 0x0001) {
        let q = x + 4;
        if (usize === U32_MAX) { usize = u64(dv, q); q += 8; }
        if (csize === U32_MAX) { csize = u64(dv, q); q += 8; }
        if (lho === U32_MAX) { lho = u64(dv, q); q += 8; }
      }
      x += 4 + sz;
    }
    if (flags & 1) throw new Error(`${name}: zip entry "${entryName}" is encrypted`);
    if (method !== 0 && method !== 8) throw new Error(`${name}: zip entry "${entryName}" uses compression method ${method} (only stored and deflate are supported)`);
    entries.set(entryName, { name: entryName, method, compressedSize: csize, size: usize, crc32: crc, localHeaderOffset: lho });
    p += 46 + nlen + xlen + clen;
  }
  return new ZipArchive(name, ra, entries);
}

async function inflateRaw(data: Uint8Array, size: number, what: string): Promise<Uint8Array> {
  if (typeof DecompressionStream === 'undefined') throw new Error(`${what}: deflated entry and no DecompressionStream in this runtime`);
  const ds = new DecompressionStream('deflate-raw');
  const writer = ds.writable.getWriter();
  writer.write(data as Uint8Array<ArrayBuffer>).catch(() => {});
  writer.close().catch(() => {});
  const out = new Uint8Array(size);
  let o = 0;
  const reader = ds.readable.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (o + value.byteLength > size) throw new Error(`${what}: inflates to more than the ${size} bytes the directory says`);
      out.set(value, o);
      o += value.byteLength;
    }
  } catch (e) {
    throw new Error(`${what}: cannot inflate (${(e as Error).message})`);
  }
  return o === size ? out : out.subarray(0, o);
}

const CRC_TABLE = /* @__PURE__ */ (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

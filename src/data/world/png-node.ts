// A small PNG encoder for 8-bit RGB images (colour type 2, no interlace), on node:zlib. Each row
// takes the filter (None, Sub, Up, Average, Paeth) with the smallest sum of absolute residuals, the
// usual libpng heuristic. Output is deterministic for a given zlib build; the pixels round-trip
// exactly (test/world/writer.test.ts decodes them back with sharp).
import { deflateSync } from 'node:zlib';
import { assertRgbImage, type RgbImage } from '../../clip/rgb-image.js';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array, start: number, end: number): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out, 4, 8 + data.length));
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

function cost(r: number): number {
  r &= 0xff;
  return r < 128 ? r : 256 - r;
}

/** Filtered scanlines (filter byte + row) of an RGB image, best filter per row. */
function filterRows(img: RgbImage): Uint8Array {
  const { width, height, data } = img;
  const stride = width * 3;
  const out = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const row = y * stride, prev = row - stride;
    // One pass for the five costs...
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    for (let i = 0; i < stride; i++) {
      const x = data[row + i]!;
      const a = i >= 3 ? data[row + i - 3]! : 0;
      const b = y > 0 ? data[prev + i]! : 0;
      const c = i >= 3 && y > 0 ? data[prev + i - 3]! : 0;
      s0 += cost(x);
      s1 += cost(x - a);
      s2 += cost(x - b);
      s3 += cost(x - ((a + b) >> 1));
      s4 += cost(x - paeth(a, b, c));
    }
    let type = 0, best = s0;
    if (s1 < best) { type = 1; best = s1; }
    if (s2 < best) { type = 2; best = s2; }
    if (s3 < best) { type = 3; best = s3; }
    if (s4 < best) { type = 4; best = s4; }
    // ...then one to write the chosen one.
    const o = y * (stride + 1);
    out[o] = type;
    for (let i = 0; i < stride; i++) {
      const x = data[row + i]!;
      const a = i >= 3 ? data[row + i - 3]! : 0;
      const b = y > 0 ? data[prev + i]! : 0;
      const c = i >= 3 && y > 0 ? data[prev + i - 3]! : 0;
      const pred = type === 0 ? 0 : type === 1 ? a : type === 2 ? b : type === 3 ? (a + b) >> 1 : paeth(a, b, c);
      out[o + 1 + i] = (x - pred) & 0xff;
    }
  }
  return out;
}

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

/** PNG file bytes of an RGB image. */
export function encodePng(img: RgbImage): Uint8Array {
  assertRgbImage(img, 'encodePng');
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, img.width);
  v.setUint32(4, img.height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  // compression, filter, interlace: 0
  const raw = filterRows(img);
  // A window no larger than the data: zlib's set-up cost dominates for tiny images.
  const windowBits = Math.min(15, Math.max(9, Math.ceil(Math.log2(raw.length + 1))));
  const idat = deflateSync(raw, { level: 6, windowBits, memLevel: windowBits >= 13 ? 8 : 6 });
  const parts = [SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((t, p) => t + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Nearest-neighbour upscale by an integer factor (for looking at 32x32 samples). */
export function upscaleNearest(img: RgbImage, factor: number): RgbImage {
  const w = img.width * factor, h = img.height * factor;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = 3 * (Math.floor(y / factor) * img.width + Math.floor(x / factor));
      const d = 3 * (y * w + x);
      data[d] = img.data[s]!; data[d + 1] = img.data[s + 1]!; data[d + 2] = img.data[s + 2]!;
    }
  }
  return { width: w, height: h, data };
}

// Pillow's convolution resampling (`Image.resize(size, BICUBIC | BILINEAR)`) reimplemented
// so that the output bytes equal Pillow's for 8-bit RGB images.
//
// What has to match Pillow (src/libImaging/Resample.c, unchanged in substance from
// Pillow 4.3 to 11.x; our reference is Debian's Pillow 9.4):
// - separable, two passes: horizontal first (only over the source rows the vertical pass
//   will read), then vertical, each rounding to uint8 in between;
// - "antialias": when downscaling, the filter is stretched by the scale factor, so its
//   support grows and every source pixel under the output pixel contributes;
// - per output pixel, a window [xmin, xmin+xcount) found by truncating `center ± support + 0.5`
//   and clamped to the image, weights normalised to sum 1 in double precision;
// - weights converted to 22-bit fixed point (PRECISION_BITS = 32 - 8 - 2) rounding half away
//   from zero, accumulated in int32 starting from half an LSB, then arithmetic-shifted and clamped.
// Any deviation (float accumulation, symmetric rounding, a different window) changes bytes.

import { type RgbImage, assertRgbImage } from './rgb-image.js';

export type ResampleFilter = 'bicubic' | 'bilinear';

/** Pillow's fixed-point precision for 8-bit images: two spare bits for negative lobes / overshoot. */
const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

interface Filter {
  fn: (x: number) => number;
  support: number;
}

// Keys's cubic convolution with a = -0.5, written with Pillow's operation order so that
// double rounding is identical.
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function bilinear(x: number): number {
  if (x < 0) x = -x;
  if (x < 1) return 1 - x;
  return 0;
}

const FILTERS: Record<ResampleFilter, Filter> = {
  bicubic: { fn: bicubic, support: 2 },
  bilinear: { fn: bilinear, support: 1 },
};

/** Fixed-point coefficient table for one axis: output i reads `count[i]` inputs from `start[i]`. */
export interface AxisCoeffs {
  ksize: number;
  start: Int32Array;
  count: Int32Array;
  /** outSize * ksize, 22-bit fixed point */
  weights: Int32Array;
}

/**
 * Pillow's precompute_coeffs + normalize_coeffs_8bpc. `in0`/`in1` are the source box edges;
 * Pillow passes them as C `float`, so they are rounded to float32 here too.
 */
export function axisCoeffs(inSize: number, in0: number, in1: number, outSize: number, filter: ResampleFilter): AxisCoeffs {
  const f = FILTERS[filter];
  const b0 = Math.fround(in0);
  const b1 = Math.fround(in1);
  // (double)(in1 - in0): the subtraction happens in float.
  const scale = Math.fround(b1 - b0) / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = f.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = b0 + (xx + 0.5) * scale;
    // C's (int) truncates toward zero; negative starts are then clamped to 0 anyway.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = f.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    const base = xx * ksize;
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? k[x]! / ww : k[x]!;
      // Round half away from zero, as normalize_coeffs_8bpc does.
      weights[base + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { ksize, start, count, weights };
}

/** Pillow's clip8: arithmetic shift (floor), then clamp to [0, 255]. */
function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Source box in input pixel coordinates, Pillow's `box=(x0, y0, x1, y1)`. */
export type Box = readonly [number, number, number, number];

/**
 * Byte-exact equivalent of PIL `img.resize((outWidth, outHeight), BICUBIC|BILINEAR, box)` on an
 * RGB image (Pillow ≥ 4.3 semantics, `reducing_gap=None`, which is what torchvision uses).
 */
export function resizePil(
  img: RgbImage,
  outWidth: number,
  outHeight: number,
  filter: ResampleFilter = 'bicubic',
  box?: Box,
): RgbImage {
  assertRgbImage(img, 'resizePil input');
  if (!Number.isInteger(outWidth) || !Number.isInteger(outHeight) || outWidth <= 0 || outHeight <= 0) {
    throw new RangeError(`resizePil: output size must be positive integers, got ${outWidth}x${outHeight}`);
  }
  const { width: inW, height: inH } = img;
  const bx: Box = box ?? [0, 0, inW, inH];
  // Image.resize returns a plain copy when nothing changes.
  if (inW === outWidth && inH === outHeight && bx[0] === 0 && bx[1] === 0 && bx[2] === inW && bx[3] === inH) {
    return { width: inW, height: inH, data: img.data.slice() };
  }
  // Pillow's own test (including its quirk of comparing box[2] with the *output* width).
  const needH = outWidth !== inW || bx[0] !== 0 || bx[2] !== outWidth;
  const needV = outHeight !== inH || bx[1] !== 0 || bx[3] !== outHeight;

  const vert = axisCoeffs(inH, bx[1], bx[3], outHeight, filter);
  let cur = img;
  let rowOffset = 0;
  if (needH) {
    // Only the rows the vertical pass will read are resampled horizontally.
    const yFirst = vert.start[0]!;
    const yLast = vert.start[outHeight - 1]! + vert.count[outHeight - 1]!;
    const horiz = axisCoeffs(inW, bx[0], bx[2], outWidth, filter);
    cur = horizontalPass(img, horiz, outWidth, yFirst, yLast - yFirst);
    rowOffset = yFirst;
  }
  if (needV) {
    cur = verticalPass(cur, vert, outHeight, rowOffset);
  }
  if (cur === img) cur = { width: inW, height: inH, data: img.data.slice() };
  return cur;
}

function horizontalPass(src: RgbImage, c: AxisCoeffs, outW: number, y0: number, rows: number): RgbImage {
  const { ksize, start, count, weights } = c;
  const inStride = src.width * 3;
  const s = src.data;
  const out = new Uint8Array(outW * rows * 3);
  for (let yy = 0; yy < rows; yy++) {
    const rowIn = (yy + y0) * inStride;
    const rowOut = yy * outW * 3;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = start[xx]!;
      const n = count[xx]!;
      const kb = xx * ksize;
      let r = HALF, g = HALF, b = HALF;
      let p = rowIn + xmin * 3;
      for (let x = 0; x < n; x++, p += 3) {
        const w = weights[kb + x]!;
        r += s[p]! * w;
        g += s[p + 1]! * w;
        b += s[p + 2]! * w;
      }
      const o = rowOut + xx * 3;
      out[o] = clip8(r);
      out[o + 1] = clip8(g);
      out[o + 2] = clip8(b);
    }
  }
  return { width: outW, height: rows, data: out };
}

/** `rowOffset` is subtracted from the coefficient windows (Pillow shifts bounds after the horizontal pass). */
function verticalPass(src: RgbImage, c: AxisCoeffs, outH: number, rowOffset: number): RgbImage {
  const { ksize, start, count, weights } = c;
  const w3 = src.width * 3;
  const s = src.data;
  const out = new Uint8Array(w3 * outH);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = start[yy]! - rowOffset;
    const n = count[yy]!;
    const kb = yy * ksize;
    const rowOut = yy * w3;
    for (let i = 0; i < w3; i++) {
      let acc = HALF;
      let p = ymin * w3 + i;
      for (let y = 0; y < n; y++, p += w3) acc += s[p]! * weights[kb + y]!;
      out[rowOut + i] = clip8(acc);
    }
  }
  return { width: src.width, height: outH, data: out };
}

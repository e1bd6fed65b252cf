// torchvision.transforms on PIL images, the parts CLIP pipelines use: Resize(int),
// CenterCrop, crop, horizontal flip, ToTensor + Normalize. Integer rules follow
// torchvision's functional.py (`_compute_resized_output_size`, `center_crop`), including
// Python's round-half-to-even, so crop offsets match to the pixel.

import { type RgbImage, assertRgbImage, newRgbImage } from './rgb-image.js';
import { type ResampleFilter, resizePil } from './resize.js';

/** Python 3's round() on a double: ties go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * torchvision `Resize(size)` with an int: the shorter side becomes `size`, the longer
 * `int(size * long / short)` (truncation of a double division). Returns [width, height].
 */
export function resizeShorterSize(width: number, height: number, size: number): [number, number] {
  const wShort = width <= height;
  const short = wShort ? width : height;
  const long = wShort ? height : width;
  const newLong = Math.trunc((size * long) / short);
  return wShort ? [size, newLong] : [newLong, size];
}

/** torchvision `Resize(size)` (int) on a PIL image, with Pillow's resampling. */
export function resizeShorter(img: RgbImage, size: number, filter: ResampleFilter = 'bicubic'): RgbImage {
  const [w, h] = resizeShorterSize(img.width, img.height, size);
  return resizePil(img, w, h, filter);
}

/**
 * PIL `img.crop((left, top, left + width, top + height))`: pixels outside the source are 0,
 * as PIL fills them. torchvision's `F.crop(img, top, left, height, width)` is exactly this.
 */
export function crop(img: RgbImage, top: number, left: number, height: number, width: number): RgbImage {
  assertRgbImage(img, 'crop input');
  if (!Number.isInteger(top) || !Number.isInteger(left) || !Number.isInteger(height) || !Number.isInteger(width) || height <= 0 || width <= 0) {
    throw new RangeError(`crop: integer box with positive size required, got top=${top} left=${left} ${width}x${height}`);
  }
  const out = newRgbImage(width, height);
  const x0 = Math.max(0, left), x1 = Math.min(img.width, left + width);
  if (x1 <= x0) return out;
  for (let y = 0; y < height; y++) {
    const sy = top + y;
    if (sy < 0 || sy >= img.height) continue;
    const src = (sy * img.width + x0) * 3;
    out.data.set(img.data.subarray(src, src + (x1 - x0) * 3), (y * width + (x0 - left)) * 3);
  }
  return out;
}

/** Offsets torchvision's center_crop uses: int(round((H - h) / 2.0)), int(round((W - w) / 2.0)). */
export function centerCropOffsets(width: number, height: number, cropWidth: number, cropHeight: number): { top: number; left: number } {
  return { top: roundHalfEven((height - cropHeight) / 2), left: roundHalfEven((width - cropWidth) / 2) };
}

/**
 * torchvision `CenterCrop((cropHeight, cropWidth))`. When the crop is larger than the image
 * torchvision first zero-pads (left/top get the floor half) and then crops; both steps are
 * reproduced so results agree in that case too.
 */
export function centerCrop(img: RgbImage, cropWidth: number, cropHeight: number = cropWidth): RgbImage {
  let src = img;
  if (cropWidth > img.width || cropHeight > img.height) {
    const padL = cropWidth > img.width ? Math.floor((cropWidth - img.width) / 2) : 0;
    const padT = cropHeight > img.height ? Math.floor((cropHeight - img.height) / 2) : 0;
    const padR = cropWidth > img.width ? Math.floor((cropWidth - img.width + 1) / 2) : 0;
    const padB = cropHeight > img.height ? Math.floor((cropHeight - img.height + 1) / 2) : 0;
    src = crop(img, -padT, -padL, img.height + padT + padB, img.width + padL + padR);
    if (src.width === cropWidth && src.height === cropHeight) return src;
  }
  const { top, left } = centerCropOffsets(src.width, src.height, cropWidth, cropHeight);
  return crop(src, top, left, cropHeight, cropWidth);
}

/** PIL `transpose(FLIP_LEFT_RIGHT)` (torchvision `hflip`). */
export function hflip(img: RgbImage): RgbImage {
  assertRgbImage(img, 'hflip input');
  const { width, height, data } = img;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    for (let x = 0; x < width; x++) {
      const s = row + x * 3, d = row + (width - 1 - x) * 3;
      out[d] = data[s]!;
      out[d + 1] = data[s + 1]!;
      out[d + 2] = data[s + 2]!;
    }
  }
  return { width, height, data: out };
}

/** OpenAI CLIP's normalisation constants (clip/clip.py `_transform`; Dassl's CLIP configs). */
export const CLIP_MEAN: readonly [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: readonly [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/**
 * Per channel, the 256 possible outputs of ToTensor + Normalize in float32:
 * torch computes x.float().div(255), then .sub_(mean).div_(std) with mean/std as float32
 * tensors; every step rounds to float32, reproduced here with Math.fround (a double result
 * rounded once to float32 equals the float32 operation for +, -, /).
 */
export function normalizeTable(mean: readonly number[] = CLIP_MEAN, std: readonly number[] = CLIP_STD): Float32Array {
  const t = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(mean[c]!), s = Math.fround(std[c]!);
    for (let v = 0; v < 256; v++) t[c * 256 + v] = Math.fround(Math.fround(Math.fround(v / 255) - m) / s);
  }
  return t;
}

const defaultTable = normalizeTable();

/**
 * ToTensor + Normalize: interleaved HWC uint8 → planar CHW float32, written into `out`
 * at `offset` (so batches can be filled in place). Returns `out`.
 */
export function toNormalizedChw(img: RgbImage, out?: Float32Array, offset = 0, table: Float32Array = defaultTable): Float32Array {
  assertRgbImage(img, 'toNormalizedChw input');
  const n = img.width * img.height;
  const dst = out ?? new Float32Array(3 * n);
  if (offset < 0 || offset + 3 * n > dst.length) {
    throw new RangeError(`toNormalizedChw: output too small (${dst.length}) for offset ${offset} + ${3 * n}`);
  }
  const d = img.data;
  for (let c = 0; c < 3; c++) {
    const base = offset + c * n, tb = c * 256;
    for (let i = 0; i < n; i++) dst[base + i] = table[tb + d[i * 3 + c]!]!;
  }
  return dst;
}

// Training augmentation of the CLIP prompt-tuning repos: torchvision
// RandomResizedCrop(size, scale, ratio=(3/4, 4/3), BICUBIC) followed by RandomHorizontalFlip(0.5).
// Dassl-based repos (CoOp, CoCoOp, MaPLe, PromptSRC, KgCoOp, DAPT, Prompt-OT) use scale
// (0.08, 1.0); ProLIP and Tip-Adapter use (0.5, 1.0).
//
// Parameter sampling follows torchvision's RandomResizedCrop.get_params step for step (same
// draw order, same integer rounding, same centre-crop fallback) but draws from our own Rng,
// so the random stream differs from torch's. Given the parameters, `applyAugment` is exact
// with respect to PIL: crop, Pillow resize, then flip.

import { type RgbImage, assertRgbImage } from './rgb-image.js';
import { type ResampleFilter, resizePil } from './resize.js';
import { crop, hflip, roundHalfEven, toNormalizedChw } from './transforms.js';
import type { Rng } from './rng.js';

export const DASSL_RRC_SCALE: readonly [number, number] = [0.08, 1.0];
export const PROLIP_RRC_SCALE: readonly [number, number] = [0.5, 1.0];
export const DEFAULT_RRC_RATIO: readonly [number, number] = [3 / 4, 4 / 3];

/** A crop box in torchvision's (i, j, h, w) convention: top row, left column, height, width. */
export interface CropParams {
  top: number;
  left: number;
  height: number;
  width: number;
}

export interface AugmentParams extends CropParams {
  flip: boolean;
}

export interface AugmentOptions {
  /** Output side (square output). Default 224. */
  size?: number;
  /** Area fraction range. Default Dassl's (0.08, 1.0). */
  scale?: readonly [number, number];
  /** Aspect ratio (w/h) range, sampled log-uniformly. Default (3/4, 4/3). */
  ratio?: readonly [number, number];
  /** Horizontal flip probability. Default 0.5. */
  flipP?: number;
  /** Resampling filter of the resize. Default bicubic (CLIP repos); torchvision's own default is bilinear. */
  filter?: ResampleFilter;
}

/** torchvision's integer crop size for a target area and aspect ratio: int(round(sqrt(a·r))), int(round(sqrt(a/r))). */
export function cropSizeFor(targetArea: number, aspectRatio: number): { width: number; height: number } {
  return {
    width: roundHalfEven(Math.sqrt(targetArea * aspectRatio)),
    height: roundHalfEven(Math.sqrt(targetArea / aspectRatio)),
  };
}

/** get_params' fallback after 10 failed attempts: the largest centred crop within the ratio range. */
export function fallbackCropParams(width: number, height: number, ratio: readonly [number, number] = DEFAULT_RRC_RATIO): CropParams {
  const inRatio = width / height;
  const rMin = Math.min(ratio[0], ratio[1]), rMax = Math.max(ratio[0], ratio[1]);
  let w: number, h: number;
  if (inRatio < rMin) {
    w = width;
    h = roundHalfEven(w / rMin);
  } else if (inRatio > rMax) {
    h = height;
    w = roundHalfEven(h * rMax);
  } else {
    w = width;
    h = height;
  }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/**
 * RandomResizedCrop.get_params: up to 10 attempts of (area ~ U(scale)·W·H, log-ratio ~ U(log ratio));
 * the first crop that fits gets a uniform position; otherwise the centre fallback.
 */
export function randomResizedCropParams(
  rng: Rng,
  width: number,
  height: number,
  scale: readonly [number, number] = DASSL_RRC_SCALE,
  ratio: readonly [number, number] = DEFAULT_RRC_RATIO,
): CropParams {
  if (!(scale[0] <= scale[1]) || !(ratio[0] <= ratio[1])) {
    throw new RangeError(`randomResizedCropParams: scale and ratio must be (min, max), got ${scale} / ${ratio}`);
  }
  const area = width * height;
  const logLo = Math.log(ratio[0]), logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniformRange(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniformRange(logLo, logHi));
    const { width: w, height: h } = cropSizeFor(targetArea, aspect);
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.randint(0, height - h + 1);
      const left = rng.randint(0, width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  return fallbackCropParams(width, height, ratio);
}

/** Crop parameters then the flip coin, in the order torchvision's Compose draws them. */
export function sampleAugmentParams(rng: Rng, width: number, height: number, opts: AugmentOptions = {}): AugmentParams {
  const p = randomResizedCropParams(rng, width, height, opts.scale ?? DASSL_RRC_SCALE, opts.ratio ?? DEFAULT_RRC_RATIO);
  const flip = rng.uniform() < (opts.flipP ?? 0.5);
  return { ...p, flip };
}

/**
 * F.resized_crop then hflip, with given parameters: PIL crop to (top, left, height, width),
 * Pillow resize to size×size, then mirror if `flip`. Byte-exact with the PIL pipeline.
 */
export function applyAugment(img: RgbImage, params: AugmentParams, size = 224, filter: ResampleFilter = 'bicubic'): RgbImage {
  assertRgbImage(img, 'applyAugment input');
  const c = crop(img, params.top, params.left, params.height, params.width);
  const r = resizePil(c, size, size, filter);
  return params.flip ? hflip(r) : r;
}

/**
 * One training view for CLIP: sample parameters from `rng`, augment, ToTensor + Normalize.
 * Writes CHW float32 into `out` at `offset` when given (batch filling), returns the tensor
 * and the parameters used (log them to replay a view exactly).
 */
export function augmentForClip(
  img: RgbImage,
  rng: Rng,
  opts: AugmentOptions = {},
  out?: Float32Array,
  offset = 0,
): { tensor: Float32Array; params: AugmentParams } {
  const size = opts.size ?? 224;
  const params = sampleAugmentParams(rng, img.width, img.height, opts);
  const view = applyAugment(img, params, size, opts.filter ?? 'bicubic');
  return { tensor: toNormalizedChw(view, out, offset), params };
}

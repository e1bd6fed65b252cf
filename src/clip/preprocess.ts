// CLIP's test-time preprocessing, runtime-agnostic (no Node APIs): the transform of OpenAI
// CLIP's `_transform(n_px)` and Dassl's test transform —
//   Resize(n_px, BICUBIC) → CenterCrop(n_px) → convert('RGB') → ToTensor → Normalize(CLIP mean/std)
// — with every uint8 stage byte-equal to PIL/torchvision and the float32 output equal to torch's.

import { type RgbImage, assertRgbImage } from './rgb-image.js';
import { type ResampleFilter } from './resize.js';
import { centerCrop, resizeShorter, toNormalizedChw } from './transforms.js';

export type { RgbImage } from './rgb-image.js';
export { CLIP_MEAN, CLIP_STD } from './transforms.js';

/** The uint8 stage of the test transform: shorter side → size (bicubic), then centre crop size×size. */
export function clipTestTransformU8(rgb: RgbImage, size = 224, filter: ResampleFilter = 'bicubic'): RgbImage {
  assertRgbImage(rgb, 'clipTestTransformU8 input');
  return centerCrop(resizeShorter(rgb, size, filter), size, size);
}

/**
 * Full CLIP test transform → Float32Array [3, size, size] (CHW). With `out`, writes at `offset`
 * instead of allocating and returns `out`.
 */
export function preprocessForClip(rgb: RgbImage, size = 224, out?: Float32Array, offset = 0): Float32Array {
  return toNormalizedChw(clipTestTransformU8(rgb, size), out, offset);
}

/** Allocates a [B, 3, size, size] batch tensor and fills it with `preprocessForClip` of each image. */
export function preprocessBatchForClip(images: readonly RgbImage[], size = 224): Float32Array {
  const per = 3 * size * size;
  const out = new Float32Array(images.length * per);
  images.forEach((img, b) => preprocessForClip(img, size, out, b * per));
  return out;
}

// Node conveniences: file → CLIP input tensor.

import { decodeImageFile } from './image-decode-node.js';
import { preprocessForClip } from './preprocess.js';
import type { RgbImage } from './rgb-image.js';
import { type AugmentOptions, type AugmentParams, augmentForClip } from './augment.js';
import type { Rng } from './rng.js';

export { decodeImageFile, decodeImageBuffer } from './image-decode-node.js';

/** Decode `path` (JPEG/PNG) and apply the CLIP test transform → Float32Array [3, size, size]. */
export async function loadImageForClip(path: string, size = 224): Promise<Float32Array> {
  return preprocessForClip(await decodeImageFile(path), size);
}

/**
 * Decode and preprocess several files into one [B, 3, size, size] tensor. Decoding runs with
 * bounded concurrency (sharp decodes on libvips' threads); preprocessing is synchronous.
 */
export async function loadBatchForClip(paths: readonly string[], size = 224, concurrency = 4): Promise<Float32Array> {
  const per = 3 * size * size;
  const out = new Float32Array(paths.length * per);
  await forEachLimited(paths, concurrency, async (p, b) => {
    preprocessForClip(await decodeImageFile(p), size, out, b * per);
  });
  return out;
}

/** Decode `path` and produce one augmented training view (see augment.ts). */
export async function loadAugmentedForClip(path: string, rng: Rng, opts: AugmentOptions = {}): Promise<{ tensor: Float32Array; params: AugmentParams; image: RgbImage }> {
  const image = await decodeImageFile(path);
  return { ...augmentForClip(image, rng, opts), image };
}

async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

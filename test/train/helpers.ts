// Shared fixtures for the training tests: a small random CLIP with the real vocabulary (so the
// real tokenizer works) saved as safetensors, and a few-class world dataset on disk.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomClipWeights } from '../../src/clip/configs.js';
import { clipTensorSpec, type ClipConfig } from '../../src/clip/checkpoint.js';
import { writeSafetensors } from '../../src/io/safetensors-node.js';
import { writeWorldDataset } from '../../src/data/world/write-node.js';

/** 32x32 images, patch 8, widths 64, two layers per tower, the full 49408-token vocabulary. */
export const TINY_CONFIG: ClipConfig = {
  embedDim: 32,
  image: { resolution: 32, patchSize: 8, width: 64, layers: 2, heads: 1, mlpHidden: 256, eps: 1e-5 },
  text: { contextLength: 77, vocabSize: 49408, width: 64, layers: 2, heads: 1, mlpHidden: 256, eps: 1e-5 },
  activation: 'quick_gelu',
  activationSource: 'option',
};

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `cliptune-${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export async function writeTinyClip(path: string, seed = 0): Promise<void> {
  const w = randomClipWeights(TINY_CONFIG, seed);
  const entries = new Map(clipTensorSpec(TINY_CONFIG).map((s) => [s.name, { dtype: 'F32' as const, shape: s.shape, data: w.get(s.name)! }]));
  await writeSafetensors(path, entries);
}

/** World classes 0..classes-1 at 32x32. */
export async function writeWorld(out: string, classes = 4, counts = { train: 8, val: 2, test: 6 }): Promise<void> {
  await writeWorldDataset({ out, classes: Array.from({ length: classes }, (_, i) => i), counts, size: 32, seed: 0 });
}

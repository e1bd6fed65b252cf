// Zero-shot accuracy of a CLIP on the world's classification images, rendered on the fly (no files):
// base-half images classified among the 24 base class names, novel-half images among the 24 novel
// ones (CoCoOp's base-to-novel protocol), and all images among all 48.
import type { Gpu } from '../gpu/index.js';
import { tensor, tidy } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { matmul } from '../ops/matmul.js';
import { l2normalize } from '../ops/distance.js';
import { toNormalizedChw } from '../clip/transforms.js';
import type { ClipModel } from '../clip/model.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';
import { zeroShotWeights } from '../adapt/zeroshot.js';
import { classImage, type Split } from '../data/world/generate.js';
import type { Domain } from '../data/world/attributes.js';
import { NUM_BASE, NUM_CLASSES, WORLD_CLASSES } from '../data/world/classes.js';
import { COOP_TEMPLATE } from '../data/world/templates.js';

export interface WorldEvalOptions {
  /** World seed of the images (0: the images `cliptune world` writes by default). */
  seed: number;
  split: Split;
  /** Images per class (indices 0..perClass-1 of the split). */
  perClass: number;
  domain?: Domain;
  /** Prompt templates (an ensemble when several); default CoOp's "a photo of a {}.". */
  templates?: readonly string[];
  batch?: number;
}

export interface WorldEvalResult {
  split: Split;
  domain: Domain;
  perClass: number;
  templates: string[];
  /** Accuracy in % of base images among the base classes (chance 100/24). */
  base: number;
  /** Accuracy in % of novel images among the novel classes (chance 100/24). */
  novel: number;
  /** Accuracy in % of all images among all 48 classes (chance 100/48). */
  all: number;
  /** Harmonic mean of base and novel (the base-to-novel summary). */
  hm: number;
  images: number;
}

function argmaxRange(row: Float32Array, lo: number, hi: number): number {
  let best = lo;
  for (let c = lo + 1; c < hi; c++) if (row[c]! > row[best]!) best = c;
  return best;
}

export async function worldZeroShot(gpu: Gpu, model: ClipModel, tokenizer: ClipTokenizer, o: WorldEvalOptions): Promise<WorldEvalResult> {
  const res = model.config.image.resolution;
  const domain = o.domain ?? 'plain';
  const templates = [...(o.templates ?? [COOP_TEMPLATE])];
  const batch = o.batch ?? 128;
  const weights = zeroShotWeights(model, tokenizer, WORLD_CLASSES, templates);
  const items: { cls: number; index: number }[] = [];
  for (let c = 0; c < NUM_CLASSES; c++) for (let i = 0; i < o.perClass; i++) items.push({ cls: c, index: i });
  let baseOk = 0, novelOk = 0, allOk = 0, baseN = 0, novelN = 0;
  const per = 3 * res * res;
  try {
    for (let s = 0; s < items.length; s += batch) {
      const chunk = items.slice(s, s + batch);
      const px = new Float32Array(chunk.length * per);
      chunk.forEach((it, b) => toNormalizedChw(classImage({ seed: o.seed, classIndex: it.cls, split: o.split, index: it.index, domain, size: res }).image, px, b * per));
      const logits = noGrad(() =>
        tidy(() => {
          const img = model.encodeImage(tensor(px, [chunk.length, 3, res, res], 'f32', gpu)).embeds;
          return matmul(l2normalize(img), weights, { transB: true });
        }),
      );
      const host = (await logits.read()) as Float32Array;
      logits.dispose();
      chunk.forEach((it, b) => {
        const row = host.subarray(b * NUM_CLASSES, (b + 1) * NUM_CLASSES);
        if (argmaxRange(row, 0, NUM_CLASSES) === it.cls) allOk++;
        if (it.cls < NUM_BASE) {
          baseN++;
          if (argmaxRange(row, 0, NUM_BASE) === it.cls) baseOk++;
        } else {
          novelN++;
          if (argmaxRange(row, NUM_BASE, NUM_CLASSES) === it.cls) novelOk++;
        }
      });
    }
  } finally {
    weights.dispose();
  }
  const base = (100 * baseOk) / Math.max(1, baseN);
  const novel = (100 * novelOk) / Math.max(1, novelN);
  return {
    split: o.split,
    domain,
    perClass: o.perClass,
    templates,
    base,
    novel,
    all: (100 * allOk) / Math.max(1, items.length),
    hm: base + novel > 0 ? (2 * base * novel) / (base + novel) : 0,
    images: items.length,
  };
}

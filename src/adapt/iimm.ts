// IIMM, the inter/intra-modal measure (Niss et al., arXiv 2407.15731; methods.md section 7): from
// zero-shot embeddings of a dataset's training split, L2-normalised,
//   S_inter = (1/N) Σ_i (1/(C−1)) Σ_{c ≠ y_i} ⟨x_i, t_c⟩   (each image vs every wrong class text)
//   S_intra = (2/(N(N−1))) Σ_{i<j} ⟨x_i, x_j⟩              (mean similarity of distinct image pairs)
//   IIMM    = (S_inter + S_intra) / 2.
// Computed with the O(N·D) closed forms (7.b) on the GPU: with s = Σ_i x_i, T = Σ_c t_c,
//   S_intra = (‖s‖² − Σ_i ‖x_i‖²) / (N(N−1)),  S_inter = (⟨s, T⟩ − Σ_i ⟨x_i, t_{y_i}⟩) / (N(C−1)).
// (Σ‖x_i‖² is N for unit rows; keeping it exact makes the form hold for un-normalised input too.)
// Rows are accumulated chunk by chunk into a running column sum and two running scalars on the GPU;
// four scalars are read back once at the end, and the last subtraction and divisions run in float64.
// A predictor of fine-tuning gain and forgetting (7.c): see `olsFit` and `cliptune iimm`.
import { GpuError } from '../gpu/index.js';
import { keep, tensor, tidy, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { add, mul, square } from '../ops/elementwise.js';
import { l2normalize } from '../ops/distance.js';
import { sum } from '../ops/reduce.js';
import { indexSelect } from '../ops/index-ops.js';
import { concat, reshape } from '../ops/shape.js';
import { matmul } from '../ops/matmul.js';
import type { ClipModel } from '../clip/model.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';
import { ClipFeatures, FeatureCache } from '../train/features.js';
import type { FeatureSource, ImageItem } from './method.js';

export interface IimmResult {
  /** (inter + intra) / 2. */
  iimm: number;
  /** S_inter: mean similarity between an image and the texts of the classes it is not. */
  inter: number;
  /** S_intra: mean similarity between two distinct images. */
  intra: number;
  /** Images. */
  n: number;
  /** Classes (text rows). */
  classes: number;
}

export interface IimmOptions {
  /** L2-normalise image and text rows first (default true, as the official code does). */
  normalize?: boolean;
}

function checkText(text: Tensor): void {
  text.assertAlive('iimm');
  if (text.rank !== 2 || text.dtype !== 'f32') throw new GpuError(`iimm: text ${text.describe()} must be f32 [C, D]`);
  if (text.shape[0]! < 2) throw new GpuError(`iimm: text ${text.describe()}: S_inter needs at least 2 classes (it averages over the C − 1 wrong ones)`);
}

function checkImage(image: Tensor, labels: Int32Array, text: Tensor): void {
  image.assertAlive('iimm');
  if (image.rank !== 2 || image.dtype !== 'f32') throw new GpuError(`iimm: image ${image.describe()} must be f32 [N, D]`);
  const [n, d] = image.shape as [number, number];
  const [c, e] = text.shape as [number, number];
  if (d !== e) throw new GpuError(`iimm: image ${image.describe()} and text ${text.describe()}: embedding widths ${d} vs ${e}`);
  if (labels.length !== n) throw new GpuError(`iimm: image ${image.describe()} has ${n} rows but ${labels.length} labels`);
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    if (!(Number.isInteger(y) && y >= 0 && y < c)) throw new GpuError(`iimm: label ${y} of row ${i} is outside 0..${c - 1} (text ${text.describe()})`);
  }
}

/**
 * Running sums for IIMM over chunks of image embeddings (so a dataset never needs all its
 * embeddings on the GPU at once). add() only encodes GPU work; finish() reads four scalars.
 */
export class IimmAccumulator {
  private readonly text: Tensor;
  private readonly textSum: Tensor;
  /** Σ_i x_i [D]. */
  private colSum: Tensor | null = null;
  /** [Σ_i ‖x_i‖², Σ_i ⟨x_i, t_{y_i}⟩]. */
  private stats: Tensor | null = null;
  private count = 0;
  readonly dim: number;
  readonly classes: number;
  private readonly normalize: boolean;

  constructor(text: Tensor, opts: IimmOptions = {}) {
    checkText(text);
    this.classes = text.shape[0]!;
    this.dim = text.shape[1]!;
    this.normalize = opts.normalize ?? true;
    const t = noGrad(() => tidy(() => (this.normalize ? l2normalize(text) : text.share())));
    this.text = keep(t);
    this.textSum = keep(noGrad(() => tidy(() => sum(this.text, 0))));
  }

  get n(): number {
    return this.count;
  }

  /** Adds image embeddings [n, D] with their labels (class rows of the text). */
  add(image: Tensor, labels: Int32Array): void {
    checkImage(image, labels, this.text);
    const n = image.shape[0]!;
    if (n === 0) return;
    const gpu = image.gpu;
    const next = noGrad(() =>
      tidy(() => {
        const x = this.normalize ? l2normalize(image) : image;
        const y = tensor(labels, [n], 'i32', gpu);
        const own = indexSelect(this.text, 0, y);
        const sq = reshape(sum(square(x)), [1]);
        const correct = reshape(sum(mul(x, own)), [1]);
        const stats = concat([sq, correct], 0);
        const col = sum(x, 0);
        return [this.colSum ? add(this.colSum, col) : col, this.stats ? add(this.stats, stats) : stats] as const;
      }),
    );
    this.colSum?.dispose();
    this.stats?.dispose();
    this.colSum = keep(next[0]);
    this.stats = keep(next[1]);
    this.count += n;
  }

  /** The measure over every row added so far (needs at least 2). */
  async finish(): Promise<IimmResult> {
    const N = this.count;
    if (N < 2 || !this.colSum || !this.stats) throw new GpuError(`iimm: ${N} image(s); S_intra needs at least 2 (it averages over distinct pairs)`);
    const colSum = this.colSum;
    const stats = this.stats;
    const packed = noGrad(() => tidy(() => concat([stats, reshape(sum(square(colSum)), [1]), reshape(sum(mul(colSum, this.textSum)), [1])], 0)));
    const v = (await packed.read()) as Float32Array;
    packed.dispose();
    const [sumSq, correct, colSq, allDot] = [v[0]!, v[1]!, v[2]!, v[3]!];
    const intra = (colSq - sumSq) / (N * (N - 1));
    const inter = (allDot - correct) / (N * (this.classes - 1));
    return { iimm: (inter + intra) / 2, inter, intra, n: N, classes: this.classes };
  }

  dispose(): void {
    this.text.dispose();
    this.textSum.dispose();
    this.colSum?.dispose();
    this.stats?.dispose();
    this.colSum = this.stats = null;
  }
}

/** IIMM of image embeddings [N, D] (labels index the rows of text [C, D]); rows L2-normalised here. */
export async function iimmFromEmbeddings(image: Tensor, labels: Int32Array, text: Tensor, opts: IimmOptions = {}): Promise<IimmResult> {
  // Every check before the first dispatch.
  checkText(text);
  checkImage(image, labels, text);
  if (image.shape[0]! < 2) throw new GpuError(`iimm: image ${image.describe()}: S_intra needs at least 2 images (it averages over distinct pairs)`);
  const acc = new IimmAccumulator(text, opts);
  try {
    acc.add(image, labels);
    return await acc.finish();
  } finally {
    acc.dispose();
  }
}

export interface IimmDatasetOptions {
  /** One class prompt with {} (IIMM uses a single dataset template, methods.md 7.a). */
  template: string;
  /** Cached pre-projection features and class text features; default: computed here, not stored. */
  features?: FeatureSource;
  /** Images projected and accumulated per GPU chunk (default 4096). */
  rowsPerChunk?: number;
}

/**
 * IIMM of a labelled image list under a CLIP model, zero-shot: pre-projection features with CLIP's
 * test transform (no augmentation) through the model's visual projection; one caption per class
 * from `template`. Pass the training split (the data one would fine-tune on).
 */
export async function iimmForDataset(model: ClipModel, tokenizer: ClipTokenizer, items: readonly ImageItem[], classnames: readonly string[], o: IimmDatasetOptions): Promise<IimmResult> {
  if (!o.template.includes('{}')) throw new GpuError(`iimm: template "${o.template}" has no {} for the class name`);
  if (classnames.length < 2) throw new GpuError(`iimm: ${classnames.length} class(es); S_inter needs at least 2`);
  if (items.length < 2) throw new GpuError(`iimm: ${items.length} image(s); S_intra needs at least 2`);
  const labels = Int32Array.from(items, (it) => it.label);
  labels.forEach((y, i) => {
    if (!(y >= 0 && y < classnames.length)) throw new GpuError(`iimm: image ${items[i]!.impath} has label ${y}, outside 0..${classnames.length - 1}`);
  });
  const features = o.features ?? new ClipFeatures(model, tokenizer, { cache: new FeatureCache(null), weightsHash: 'none', progressFrom: Infinity });
  const gpu = model.gpu;
  const W = model.config.image.width;
  const E = model.config.embedDim;
  const textData = await features.textWeights(classnames, [o.template]);
  const pooled = await features.pooled(items, { mode: 'test' });
  if (pooled.length !== items.length * W) throw new GpuError(`iimm: the feature source gave ${pooled.length} values for ${items.length} images of width ${W}`);
  const text = tensor(textData, [classnames.length, E], 'f32', gpu);
  const acc = new IimmAccumulator(text);
  text.dispose();
  const proj = model.param('visual.proj');
  const chunk = Math.max(1, o.rowsPerChunk ?? 4096);
  try {
    for (let s = 0; s < items.length; s += chunk) {
      const e = Math.min(items.length, s + chunk);
      const emb = noGrad(() => tidy(() => matmul(tensor(pooled.subarray(s * W, e * W), [e - s, W], 'f32', gpu), proj)));
      acc.add(emb, labels.subarray(s, e));
      emb.dispose();
    }
    return await acc.finish();
  } finally {
    acc.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Ordinary least squares (IIMM -> gain, IIMM -> forgetting).

export class FitError extends Error {
  override name = 'FitError';
}

export interface OlsFit {
  slope: number;
  intercept: number;
  /** Coefficient of determination, 1 − SS_res/SS_tot (1 when every y is equal: the line is exact). */
  r2: number;
  n: number;
  predict(x: number): number;
}

/** y ≈ slope·x + intercept by ordinary least squares (float64, centred sums). */
export function olsFit(x: readonly number[], y: readonly number[]): OlsFit {
  if (x.length !== y.length) throw new FitError(`olsFit: ${x.length} x values but ${y.length} y values`);
  const n = x.length;
  for (let i = 0; i < n; i++) if (!Number.isFinite(x[i]!) || !Number.isFinite(y[i]!)) throw new FitError(`olsFit: point ${i} (${x[i]}, ${y[i]}) is not finite`);
  const distinct = new Set(x).size;
  if (distinct < 2) throw new FitError(`olsFit: a line needs at least 2 distinct x values, got ${n} point(s) with ${distinct} distinct x`);
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i]!;
    my += y[i]!;
  }
  mx /= n;
  my /= n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx;
    const dy = y[i]! - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  let ssRes = 0;
  for (let i = 0; i < n; i++) {
    const r = y[i]! - (slope * x[i]! + intercept);
    ssRes += r * r;
  }
  const r2 = syy === 0 ? 1 : 1 - ssRes / syy;
  return { slope, intercept, r2, n, predict: (v: number) => slope * v + intercept };
}

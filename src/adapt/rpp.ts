// RPP (Chen et al., arXiv 2409.06166; methods.md section 9): prompt (pre)training with
//   - unshared query, key and value vectors per prompt slot: at the prompted layer the slot's
//     query row (and its residual stream) comes from p^q, its key row from LN1(p^k)W_k + b_k, its
//     value row from LN1(p^v)W_v + b_v (the same frozen LayerNorm and projections as real tokens);
//     all three start equal, so training starts from the shared-prompt (CoOp) model;
//   - soft labels: L = CE(s, y) + α·τ²·KL(softmax(r/τ) ‖ softmax(s/τ)), r = the frozen zero-shot
//     model's logits (hand-crafted template) over the same classes as the student's s;
//   - POMP's class sampling for many-class pretraining: per step the batch's own classes plus K−1
//     negatives drawn uniformly (shared by the batch) from the step's generator; each image's row is
//     [its class, the negatives] with a negative equal to its class masked (−1e6) and the others
//     raised by log10(C − 1) − log10(#valid negatives of that row) (POMP's "local correction", log10
//     as its code). The teacher sees the same columns and the same offsets [ours].
// Default configuration (section 9.3, [ours]): shallow text prompts, M = 4, class token at the end,
// word init "a photo of a"; POMP's optimisation (SGD 0.002, batch 32, 5 epochs, warm-up 1 epoch at 1e-5).
//
// Shallow prompts: the slots are positions 1..M of the text input. p^q is the token embedding there
// (so the slot's own residual carries p^q + pos into layers 1..), and p^k + pos, p^v + pos are the
// input vectors of the slot's key/value rows at layer 0 (the model's kvPrompts hook). The
// checkpoint names p^q "ctx" (CoOp's name: an RPP run initialises CoOp with its query/stream vectors)
// and p^k, p^v "ctx_k", "ctx_v".
import { GpuError } from '../gpu/index.js';
import { keep, tensor, tidy, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { add, mul, scale as scaleBy } from '../ops/elementwise.js';
import { matmul } from '../ops/matmul.js';
import { l2normalize } from '../ops/distance.js';
import { crossEntropy, klDiv } from '../ops/losses.js';
import { concat, slice } from '../ops/shape.js';
import { indexSelect } from '../ops/index-ops.js';
import { sum } from '../ops/reduce.js';
import { SGD, type Optimizer } from '../nn/optim.js';
import { dasslCosineSchedule } from '../nn/schedule.js';
import { replaceRows } from '../nn/tokens.js';
import type { KvOverride } from '../nn/transformer.js';
import type { ClipModel } from '../clip/model.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';
import { ChunkedEncoder } from '../clip/chunked.js';
import { Rng } from '../clip/rng.js';
import { DASSL_RRC_SCALE } from '../clip/augment.js';
import { DecodeMemo } from '../train/features.js';
import { composeLoss, MethodOptionError, type AdaptMethod, type Classifier, type DefaultsContext, type LossTerm, type MethodEnv, type MethodSpec, type OptionValue, type StepContext, type StepOutput, type TrainPlan } from './method.js';
import { dasslStepsPerEpoch, finalizeInitFrom, gaussian, imageBatches, initTokens, planCoopPrompts, type PromptPlan } from './coop.js';
import { resolveTemplates } from './zeroshot.js';
import { initTensor, readInitSource } from './init-from.js';

/** The learned vectors of the M prompt slots, each [M, W]. */
export interface QkvPrompts {
  /** Query vectors: the slots' token embeddings (their residual stream). */
  q: Tensor;
  k: Tensor;
  v: Tensor;
}

/**
 * Text prompts "[SOT] p_1..p_M {class}. [EOT]" of a class list with unshared q/k/v prompt vectors
 * at layer 0. Token ids come from CoOp's planner (class token at the end, unified context).
 */
export class RppTextPrompts {
  readonly plan: PromptPlan;

  constructor(
    readonly model: ClipModel,
    tokenizer: ClipTokenizer,
    classnames: readonly string[],
    readonly nCtx: number,
    init: string | null,
  ) {
    this.plan = planCoopPrompts(tokenizer, classnames, { nCtx, position: 'end', csc: false, init }, model.config.text.contextLength);
  }

  /** Unnormalised text features [n, E] of the classes `cls` (indices into the class list). */
  encode(cls: readonly number[], p: QkvPrompts): Tensor {
    if (!cls.length) throw new GpuError('rpp: no classes to encode');
    const { plan, model } = this;
    const M = this.nCtx;
    const eot = cls.map((c) => plan.eot[c]!);
    // Causal attention: positions after the last end token cannot change the pooled rows.
    const len = Math.max(...eot) + 1;
    const ids = new Int32Array(cls.length * len);
    cls.forEach((c, r) => ids.set(plan.ids.subarray(c * plan.length, c * plan.length + len), r * len));
    return tidy(() => {
      const tokens = model.tokenEmbeddings({ ids, rows: cls.length, length: len }, len);
      const embeds = replaceRows(tokens, 1, p.q, 'RPP query prompts');
      // The stream adds the positional embedding to every input row; the key/value vectors get
      // the same, so equal q/k/v vectors give exactly the shared-prompt model.
      const pos = slice(model.param('positional_embedding'), 0, 1, 1 + M);
      const kv: KvOverride = { start: 1, k: add(p.k, pos), v: add(p.v, pos) };
      return model.encodeTextEmbeddings(embeds, eot, { kvPrompts: (l) => (l === 0 ? kv : null) }).embeds;
    });
  }

  /** Normalised features [C, E] of every class, without gradient, `chunk` classes at a time. */
  encodeAllNoGrad(p: QkvPrompts, chunk: number): Tensor {
    const C = this.plan.classes;
    return noGrad(() =>
      tidy(() => {
        const parts: Tensor[] = [];
        for (let s = 0; s < C; s += chunk) parts.push(this.encode(range(s, Math.min(C, s + chunk)), p));
        return l2normalize(parts.length === 1 ? parts[0]! : concat(parts, 0));
      }),
    );
  }
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a }, (_, i) => a + i);
}

// ---------------------------------------------------------------------------------------------
// POMP class sampling

/** One step's class set and per-image logit layout. */
export interface ClassSample {
  /** Classes whose prompts are encoded this step (the columns of the full logit matrix), distinct. */
  classes: number[];
  /** Column (in `classes`) of each image's own class. */
  positiveCols: number[];
  /** The K−1 sampled negatives (class ids, shared by the batch) and their columns in `classes`. */
  negatives: number[];
  negativeCols: number[];
  /** Added to the gathered logits [B, K]: 0 for column 0, the correction for valid negatives, −1e6 where a negative is the image's own class. */
  offsets: Float32Array;
  /** Per image: log10(C − 1) − log10(valid negatives). */
  corrections: number[];
}

/** The mask added to a negative that equals the image's own class (POMP's value). */
export const MASKED_LOGIT = -1e6;

/**
 * The batch's classes plus K−1 negatives drawn uniformly without replacement from all C classes
 * with `rng` (a partial Fisher-Yates shuffle: deterministic in the generator's state).
 */
export function sampleClasses(labels: ArrayLike<number>, numClasses: number, k: number, rng: Rng): ClassSample {
  const C = numClasses;
  if (!Number.isInteger(k) || k < 2 || k > C) throw new GpuError(`rpp: class sampling needs 2 <= K <= ${C} classes, got ${k}`);
  const pool = Int32Array.from({ length: C }, (_, i) => i);
  const negatives: number[] = [];
  for (let i = 0; i < k - 1; i++) {
    const j = i + rng.randint(0, C - i);
    const t = pool[i]!;
    pool[i] = pool[j]!;
    pool[j] = t;
    negatives.push(pool[i]!);
  }
  const classes: number[] = [];
  const col = new Map<number, number>();
  const addClass = (c: number) => {
    if (!col.has(c)) {
      col.set(c, classes.length);
      classes.push(c);
    }
  };
  const B = labels.length;
  for (let i = 0; i < B; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= C) throw new GpuError(`rpp: label ${y} of image ${i} is outside [0, ${C})`);
    addClass(y);
  }
  for (const c of negatives) addClass(c);
  const offsets = new Float32Array(B * k);
  const corrections: number[] = [];
  const base = Math.log10(C - 1);
  for (let i = 0; i < B; i++) {
    const y = labels[i]!;
    const valid = negatives.filter((c) => c !== y).length;
    const corr = base - Math.log10(valid);
    corrections.push(corr);
    negatives.forEach((c, j) => (offsets[i * k + 1 + j] = c === y ? MASKED_LOGIT : corr));
  }
  return { classes, positiveCols: Array.from(labels, (y) => col.get(y)!), negatives, negativeCols: negatives.map((c) => col.get(c)!), offsets, corrections };
}

/**
 * Each image's logits over [its class, the negatives] from the full matrix [B, n] (n = the sample's
 * classes), plus the sample's offsets: [B, K]. The positive column is a one-hot row sum, the
 * negatives a column gather, so gradients flow back into `full`.
 */
export function sampledLogits(full: Tensor, s: ClassSample): Tensor {
  const [B, n] = full.shape as [number, number];
  const k = s.negatives.length + 1;
  if (s.positiveCols.length !== B || s.classes.length !== n) throw new GpuError(`rpp: logits ${full.describe()} do not match a sample of ${s.positiveCols.length} images and ${s.classes.length} classes`);
  const gpu = full.gpu;
  return tidy(() => {
    const onehot = new Float32Array(B * n);
    s.positiveCols.forEach((c, i) => (onehot[i * n + c] = 1));
    const pos = sum(mul(full, tensor(onehot, [B, n], 'f32', gpu)), 1, true);
    const neg = indexSelect(full, 1, tensor(Int32Array.from(s.negativeCols), [k - 1], 'i32', gpu));
    return add(concat([pos, neg], 1), tensor(s.offsets, [B, k], 'f32', gpu));
  });
}

/** τ²·KL(softmax(teacher/τ) ‖ softmax(student/τ)), mean over the batch (α is the caller's weight). */
export function distillationLoss(student: Tensor, teacher: Tensor, tau: number): Tensor {
  return tidy(() => scaleBy(klDiv(student, teacher, { temperature: tau }), tau * tau));
}

// ---------------------------------------------------------------------------------------------
// The method

interface RppBatch {
  pixels: Float32Array;
  labels: Int32Array;
  count: number;
}

export class RppMethod implements AdaptMethod<RppBatch> {
  readonly name = 'rpp';
  readonly params = new Map<string, Tensor>();
  readonly caches = ['teacher class text features (frozen zero-shot model, teacher template)', 'pre-projection test features (test transform), at evaluation'];
  private env: MethodEnv | null = null;
  private prompts: RppTextPrompts | null = null;
  /** Teacher weights [C, E] (normalised), when α > 0. */
  private teacher: Tensor | null = null;
  private logitScale = 100;
  private lrTable: number[] = [];
  private sampleK = 0;
  private readonly decode = new DecodeMemo().decode;

  constructor(readonly options: Readonly<Record<string, OptionValue>>) {}

  private get o() {
    const o = this.options;
    return {
      nCtx: o.nCtx as number,
      init: (o.ctxInit as string) || null,
      alpha: o.alpha as number,
      tau: o.tau as number,
      sampleClasses: o.sampleClasses as number,
      teacherTemplate: o.teacherTemplate as string,
      epochs: o.epochs as number,
      lr: o.lr as number,
      batch: o.batchSize as number,
      chunk: o.textChunk as number,
      momentum: o.momentum as number,
      weightDecay: o.weightDecay as number,
      warmupEpochs: o.warmupEpochs as number,
      warmupLr: o.warmupLr as number,
      initFrom: (o.initFrom as string) ?? '',
    };
  }

  private vectors(): QkvPrompts {
    const q = this.params.get('ctx');
    if (!q) throw new GpuError('rpp: used before prepare()');
    return { q, k: this.params.get('ctx_k')!, v: this.params.get('ctx_v')! };
  }

  async prepare(env: MethodEnv): Promise<void> {
    this.env = env;
    const { model, tokenizer } = env;
    const o = this.o;
    const C = env.classnames.length;
    const W = model.config.text.width;
    this.prompts = new RppTextPrompts(model, tokenizer, env.classnames, o.nCtx, o.init);
    // q, k and v start equal: the init words' embeddings, else one N(0, 0.02) draw.
    let init: Float32Array;
    if (o.init) {
      const ids = Int32Array.from(initTokens(tokenizer, o.init));
      const e = noGrad(() => model.tokenEmbeddings({ ids, rows: 1, length: ids.length }));
      init = (await e.read()) as Float32Array;
      e.dispose();
    } else {
      init = gaussian(new Rng(`cliptune-rpp-ctx\u0001${env.seed}`), o.nCtx * W, 0.02);
    }
    let initQkv = [init, init, init];
    if (o.initFrom && env.purpose === 'train') {
      // An RPP run gives all three; a CoOp run (one shared ctx) gives the shared-prompt start.
      const src = await readInitSource(o.initFrom);
      const shape = [o.nCtx, W];
      const q = initTensor(src, 'ctx', shape, 'the query prompt vectors (--n-ctx x text width)');
      const unshared = src.tensors.has('ctx_k') && src.tensors.has('ctx_v');
      initQkv = unshared ? [q, initTensor(src, 'ctx_k', shape, 'the key prompt vectors'), initTensor(src, 'ctx_v', shape, 'the value prompt vectors')] : [q, q, q];
      env.log(`rpp: prompts initialised from ${src.path} (method ${src.method}, step ${src.step}${unshared ? '' : '; its shared context starts q, k and v'})`);
    }
    ['ctx', 'ctx_k', 'ctx_v'].forEach((name, i) => this.params.set(name, keep(tensor(initQkv[i]!, [o.nCtx, W], 'f32', env.gpu)).param(name)));
    this.logitScale = await noGrad(() => model.logitScale()).item();
    this.sampleK = o.sampleClasses > 0 && o.sampleClasses <= C ? o.sampleClasses : 0;
    if (o.sampleClasses > C) env.log(`rpp: --sample-classes ${o.sampleClasses} >= ${C} classes: every step uses all classes`);
    if (env.purpose === 'train' && o.alpha > 0) {
      const templates = resolveTemplates(o.teacherTemplate, env.datasetName, 'rpp');
      this.teacher = keep(tensor(await env.features.textWeights(env.classnames, templates), [C, model.config.embedDim], 'f32', env.gpu));
    }
    this.lrTable = dasslCosineSchedule({ baseLr: o.lr, maxEpoch: o.epochs, warmupEpochs: o.warmupEpochs, warmupType: 'constant', warmupLr: o.warmupLr });
  }

  plan(): TrainPlan {
    const n = this.env?.train.length ?? 0;
    return { epochs: this.o.epochs, stepsPerEpoch: dasslStepsPerEpoch(n, this.o.batch), imagesPerStep: Math.min(n, this.o.batch) };
  }

  createOptimizer(): Optimizer {
    const o = this.o;
    return new SGD([...this.params.values()], { lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay });
  }

  learningRate(epoch: number): number {
    return this.lrTable[epoch] ?? this.lrTable[this.lrTable.length - 1]!;
  }

  batches(epoch: number, startStep: number): AsyncIterable<RppBatch> {
    const env = this.env!;
    return imageBatches(env.train, { seed: env.seed, epoch, startStep, batch: this.o.batch, size: env.model.config.image.resolution, scale: DASSL_RRC_SCALE, decode: this.decode });
  }

  step(b: RppBatch, ctx: StepContext): StepOutput {
    const env = this.env!;
    const { model, gpu } = env;
    const o = this.o;
    const C = env.classnames.length;
    const res = model.config.image.resolution;
    const vecs = this.vectors();
    const sample = this.sampleK ? sampleClasses(b.labels, C, this.sampleK, ctx.rng) : null;
    const classes = sample ? sample.classes : range(0, C);
    const img = noGrad(() => l2normalize(model.encodeImage(tensor(b.pixels, [b.count, 3, res, res], 'f32', gpu)).embeds));
    let text: Tensor;
    let afterBackward: (() => void) | undefined;
    if (classes.length > o.chunk) {
      const enc = new ChunkedEncoder((s, e) => this.prompts!.encode(classes.slice(s, e), vecs), classes.length, o.chunk);
      text = keep(enc.forward());
      afterBackward = () => enc.backward();
    } else {
      text = this.prompts!.encode(classes, vecs);
    }
    const full = scaleBy(matmul(img, l2normalize(text), { transB: true }), this.logitScale);
    const student = sample ? sampledLogits(full, sample) : full;
    const labels = tensor(sample ? new Int32Array(b.count) : b.labels, [b.count], 'i32', gpu);
    const terms: LossTerm[] = [{ name: 'ce', weight: 1, value: crossEntropy(student, labels) }];
    // α = 0 drops the teacher altogether (no work), which is how the method's own cost is measured.
    if (o.alpha > 0) {
      const t = this.teacher;
      if (!t) throw new GpuError('rpp: no teacher features (prepare() ran for evaluation only)');
      const teacher = noGrad(() =>
        tidy(() => {
          const w = sample ? indexSelect(t, 0, tensor(Int32Array.from(classes), [classes.length], 'i32', gpu)) : t;
          const r = scaleBy(matmul(img, w, { transB: true }), this.logitScale);
          return sample ? sampledLogits(r, sample) : r;
        }),
      );
      terms.push({ name: 'kd', weight: o.alpha, value: distillationLoss(student, teacher, o.tau) });
    }
    const out = composeLoss(terms);
    return { loss: out.loss, terms: out.terms, afterBackward };
  }

  async classifier(classnames: readonly string[], env: MethodEnv): Promise<Classifier> {
    const vecs = this.vectors();
    const same = this.prompts && classnames.length === env.classnames.length && classnames.every((c, i) => c === env.classnames[i]);
    const prompts = same ? this.prompts! : new RppTextPrompts(env.model, env.tokenizer, classnames, this.o.nCtx, this.o.init);
    const text = keep(prompts.encodeAllNoGrad(vecs, Math.min(this.o.chunk, classnames.length)));
    const proj = env.model.param('visual.proj');
    return { text, scale: this.logitScale, embedPooled: (p) => matmul(p, proj), dispose: () => text.dispose() };
  }

  dispose(): void {
    this.teacher?.dispose();
    this.teacher = null;
    for (const t of this.params.values()) t.dispose();
    this.params.clear();
  }
}

export const RPP: MethodSpec = {
  name: 'rpp',
  summary: 'RPP: unshared query/key/value text prompts, soft labels from the zero-shot teacher, POMP class sampling',
  options: [
    { key: 'nCtx', flag: 'n-ctx', type: 'int', min: 1, help: 'number of prompt slots M (each with a query, key and value vector)' },
    { key: 'ctxInit', flag: 'ctx-init', type: 'string', help: 'init words, e.g. "a photo of a" (their count is M); empty: random N(0, 0.02); q, k and v start equal' },
    { key: 'alpha', flag: 'alpha', type: 'float', min: 0, help: 'weight α of the distillation term α·τ²·KL(teacher ‖ student) (0: hard labels only)' },
    { key: 'tau', flag: 'tau', type: 'float', min: 0, exclusiveMin: true, help: 'distillation temperature τ' },
    { key: 'sampleClasses', flag: 'sample-classes', type: 'int', min: 0, help: 'POMP class sampling: the batch\'s classes + K-1 sampled negatives per step (0: all classes; POMP uses 1000)' },
    { key: 'teacherTemplate', flag: 'teacher-template', type: 'string', help: 'the teacher\'s class prompts: "single" ("a photo of a {}."), "dataset", "ensemble", or templates with {} separated by |' },
    { key: 'epochs', flag: 'epochs', type: 'int', min: 1, help: 'training epochs (POMP: 5 for M = 4)' },
    { key: 'lr', flag: 'lr', type: 'float', min: 0, exclusiveMin: true, help: 'SGD learning rate (Dassl cosine, stepped per epoch)' },
    { key: 'batchSize', flag: 'batch-size', type: 'int', min: 1, help: 'images per step' },
    { key: 'momentum', flag: 'momentum', type: 'float', min: 0, help: 'SGD momentum' },
    { key: 'weightDecay', flag: 'weight-decay', type: 'float', min: 0, help: 'SGD weight decay' },
    { key: 'warmupEpochs', flag: 'warmup-epochs', type: 'int', min: 0, help: 'constant warm-up epochs' },
    { key: 'warmupLr', flag: 'warmup-lr', type: 'float', min: 0, help: 'learning rate of the warm-up epochs' },
    { key: 'textChunk', flag: 'text-chunk', type: 'int', min: 1, help: 'classes per text-encoder chunk (bounds memory; the backward re-runs chunks)' },
    { key: 'initFrom', flag: 'init-from', type: 'string', help: 'start from an RPP run\'s q/k/v prompts or a CoOp run\'s context (q = k = v); M follows that run unless --n-ctx is given' },
  ],
  defaults: (_ctx: DefaultsContext) => ({
    nCtx: 4,
    ctxInit: 'a photo of a',
    alpha: 1,
    tau: 1,
    sampleClasses: 0,
    teacherTemplate: 'single',
    epochs: 5,
    lr: 0.002,
    batchSize: 32,
    momentum: 0.9,
    weightDecay: 5e-4,
    warmupEpochs: 1,
    warmupLr: 1e-5,
    textChunk: 128,
    initFrom: '',
  }),
  finalize: (opts, given) => {
    finalizeInitFrom(opts, given);
    if (given.has('ctxInit') && !given.has('nCtx') && opts.ctxInit) opts.nCtx = String(opts.ctxInit).trim().split(/\s+/).length;
    if (given.has('nCtx') && !given.has('ctxInit')) opts.ctxInit = '';
  },
  validate: (opts) => {
    if (opts.sampleClasses === 1) throw new MethodOptionError('--sample-classes 1 leaves no negatives: use 0 (all classes) or K >= 2');
  },
  create: (opts) => new RppMethod(opts),
};

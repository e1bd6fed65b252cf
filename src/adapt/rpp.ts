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
//
// Deep variant (--variant deep, methods.md 9.3(a) "IVLP-deep as RPP-deep"): IVLP's slots (DeepPrompts:
// text positions 1..M_t, vision rows after the patches, replaced before every prompted layer up to
// the depth). Every prompted layer l gets its own key and value vectors (the kvPrompts hook at that
// layer); a slot's query vector (its residual-stream row) only matters where the row persists, i.e.
// at the last prompted layer J−1 when J is less than the tower's depth: before that the next layer
// replaces the row's output, and at the tower's last layer only the end token / class token is
// pooled. Query vectors are allocated only there (elsewhere the stream row is the layer's key
// vector, whose query path has zero gradient). All three start from DeepPrompts' initialisation, so
// training starts from the shared-prompt IVLP model. Names: the query vectors keep IVLP's names
// (text.ctx, text.deep.l, vision.ctx, vision.deep.l), the key/value vectors append ".k" / ".v".
import { GpuError } from '../gpu/index.js';
import { keep, tensor, tidy, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { add, mul, scale as scaleBy } from '../ops/elementwise.js';
import { layerNorm } from '../ops/layernorm.js';
import { matmul } from '../ops/matmul.js';
import { l2normalize } from '../ops/distance.js';
import { crossEntropy, klDiv } from '../ops/losses.js';
import { concat, slice } from '../ops/shape.js';
import { indexSelect } from '../ops/index-ops.js';
import { sum } from '../ops/reduce.js';
import { replaceRows } from '../nn/tokens.js';
import type { KvOverride } from '../nn/transformer.js';
import type { ClipModel, VisionOptions } from '../clip/model.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';
import { ChunkedEncoder } from '../clip/chunked.js';
import { Rng } from '../clip/rng.js';
import { composeLoss, MethodOptionError, type AdaptMethod, type Classifier, type DefaultsContext, type LossTerm, type MethodEnv, type MethodSpec, type OptionSpec, type StepContext, type StepOutput } from './method.js';
import { finalizeInitFrom, gaussian, initTokens, planCoopPrompts, type PromptPlan } from './coop.js';
import { DASSL_SGD_DEFAULTS, DASSL_SGD_OPTIONS, DasslPromptMethod, SGD_LR_OPTION, chunkedText, sameClasses, supportPixels, wordEmbeddings, type ImageBatch } from './prompt-common.js';
import { resolveTemplates } from './zeroshot.js';
import { initTensor, readInitSource } from './init-from.js';
import { DeepPrompts, planDeepTextPrompts } from './deep-prompts.js';
import { DEEP_PROMPT_OPTIONS, deepPromptConfig } from './ivlp.js';

/** The learned vectors of the M prompt slots, each [M, W] (the shallow variant). */
export interface QkvPrompts {
  /** Query vectors: the slots' token embeddings (their residual stream). */
  q: Tensor;
  k: Tensor;
  v: Tensor;
}

/**
 * One tower's unshared prompt vectors, each [M, W]: key and value vectors of every prompted layer
 * 0..J−1 (J = k.length), and the query (residual-stream) vectors of layer J−1 when its rows persist
 * into later layers (null otherwise: no layer's query reaches the output).
 */
export interface RppSlots {
  k: readonly Tensor[];
  v: readonly Tensor[];
  q: Tensor | null;
}

function toSlots(p: QkvPrompts | RppSlots): RppSlots {
  return 'k' in p && Array.isArray(p.k) ? (p as RppSlots) : { k: [(p as QkvPrompts).k], v: [(p as QkvPrompts).v], q: p.q };
}

/** The residual-stream rows of layer l: the query vectors where allocated, else the layer's key vectors (their query path is cut by the next replacement). */
function streamRows(s: RppSlots, l: number): Tensor {
  return l === s.k.length - 1 && s.q ? s.q : s.k[l]!;
}

/**
 * Text prompts "[SOT] p_1..p_M {class}. [EOT]" of a class list with unshared q/k/v prompt vectors
 * at layer 0 (and, deep, at every prompted layer). Token ids come from CoOp's planner (class token
 * at the end, unified context) or, deep, from IVLP's (`plan`).
 */
export class RppTextPrompts {
  readonly plan: PromptPlan;

  constructor(
    readonly model: ClipModel,
    tokenizer: ClipTokenizer,
    classnames: readonly string[],
    readonly nCtx: number,
    init: string | null,
    plan?: PromptPlan,
  ) {
    this.plan = plan ?? planCoopPrompts(tokenizer, classnames, { nCtx, position: 'end', csc: false, init }, model.config.text.contextLength);
  }

  /** IVLP's text slots (DeepPrompts' plan: learned head of the init words, the rest frozen words). */
  static deep(model: ClipModel, tokenizer: ClipTokenizer, classnames: readonly string[], tokens: number, init: string | null): RppTextPrompts {
    return new RppTextPrompts(model, tokenizer, classnames, tokens, init, planDeepTextPrompts(tokenizer, classnames, tokens, init, model.config.text.contextLength));
  }

  /** Unnormalised text features [n, E] of the classes `cls` (indices into the class list). */
  encode(cls: readonly number[], p: QkvPrompts | RppSlots): Tensor {
    if (!cls.length) throw new GpuError('rpp: no classes to encode');
    const { plan, model } = this;
    const M = this.nCtx;
    const s = toSlots(p);
    const depth = s.k.length;
    const eot = cls.map((c) => plan.eot[c]!);
    // Causal attention: positions after the last end token cannot change the pooled rows.
    const len = Math.max(...eot) + 1;
    const ids = new Int32Array(cls.length * len);
    cls.forEach((c, r) => ids.set(plan.ids.subarray(c * plan.length, c * plan.length + len), r * len));
    return tidy(() => {
      const tokens = model.tokenEmbeddings({ ids, rows: cls.length, length: len }, len);
      const embeds = replaceRows(tokens, 1, streamRows(s, 0), 'RPP query prompts');
      // The stream adds the positional embedding to every input row; the layer-0 key/value vectors
      // get the same (deeper layers' rows replace the stream as they are, as IVLP's), so equal
      // q/k/v vectors give exactly the shared-prompt model.
      const pos = slice(model.param('positional_embedding'), 0, 1, 1 + M);
      const kv0: KvOverride = { start: 1, k: add(s.k[0]!, pos), v: add(s.v[0]!, pos) };
      const kvPrompts = (l: number): KvOverride | null => (l === 0 ? kv0 : l < depth ? { start: 1, k: s.k[l]!, v: s.v[l]! } : null);
      const deepPrompts = depth > 1 ? (l: number) => (l > 0 && l < depth ? streamRows(s, l) : null) : null;
      return model.encodeTextEmbeddings(embeds, eot, { promptStart: 1, deepPrompts, kvPrompts }).embeds;
    });
  }

  /** Normalised features [C, E] of every class, without gradient, `chunk` classes at a time. */
  encodeAllNoGrad(p: QkvPrompts | RppSlots, chunk: number): Tensor {
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

/**
 * encodeImage options for IVLP's vision slots (appended after the patches) with unshared vectors.
 * Layer 0's rows pass through ln_pre in the stream, so its key/value vectors do too.
 */
export function rppVisionOptions(model: ClipModel, s: RppSlots): VisionOptions {
  const c = model.config.image;
  const depth = s.k.length;
  if (!depth) throw new GpuError('rpp: no vision prompt layers');
  const start = 1 + (c.resolution / c.patchSize) ** 2;
  const lnPre = (t: Tensor) => layerNorm(t, model.param('visual.ln_pre.weight'), model.param('visual.ln_pre.bias'), c.eps);
  return {
    appendTokens: streamRows(s, 0),
    deepPrompts: (l) => (l > 0 && l < depth ? streamRows(s, l) : null),
    kvPrompts: (l) => (l === 0 ? { start, k: lnPre(s.k[0]!), v: lnPre(s.v[0]!) } : l < depth ? { start, k: s.k[l]!, v: s.v[l]! } : null),
  };
}

/**
 * The deep variant's learned tensors from DeepPrompts' initialisation (q = k = v = IVLP's vectors):
 * per tower, ".k"/".v" copies of every prompted layer and the query vectors of the last prompted
 * layer when it is not the tower's last layer. Returns the slots and adds the tensors to `params`
 * in a fixed order (text layers, then vision layers; per layer q, k, v).
 */
export async function createDeepSlots(prompts: DeepPrompts, params: Map<string, Tensor>): Promise<{ text: RppSlots | null; vision: RppSlots | null }> {
  const cfg = prompts.model.config;
  const gpu = prompts.model.gpu;
  const tower = async (name: 'text' | 'vision', depth: number, layers: number, layer: (l: number) => Tensor | null): Promise<RppSlots | null> => {
    if (!depth) return null;
    const k: Tensor[] = [];
    const v: Tensor[] = [];
    let q: Tensor | null = null;
    for (let l = 0; l < depth; l++) {
      const src = layer(l)!;
      const data = (await src.read()) as Float32Array;
      const base = l === 0 ? `${name}.ctx` : `${name}.deep.${l}`;
      const make = (n: string) => {
        const t = keep(tensor(data, [...src.shape], 'f32', gpu)).param(n);
        params.set(n, t);
        return t;
      };
      if (l === depth - 1 && depth < layers) q = make(base);
      k.push(make(`${base}.k`));
      v.push(make(`${base}.v`));
    }
    return { k, v, q };
  };
  return {
    text: await tower('text', prompts.textDepth, cfg.text.layers, (l) => prompts.textLayer(l)),
    vision: await tower('vision', prompts.visionDepth, cfg.image.layers, (l) => prompts.visionLayer(l)),
  };
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

export class RppMethod extends DasslPromptMethod implements AdaptMethod<ImageBatch> {
  readonly name = 'rpp';
  readonly params = new Map<string, Tensor>();
  readonly caches = ['teacher class text features (frozen zero-shot model, teacher template)', 'pre-projection test features (test transform), at evaluation'];
  private prompts: RppTextPrompts | null = null;
  /** Deep variant: the text and vision slots (vision null when that tower is not prompted). */
  private deepSlots: { text: RppSlots; vision: RppSlots | null } | null = null;
  /** Teacher weights [C, E] (normalised), when α > 0. */
  private teacher: Tensor | null = null;
  private logitScale = 100;
  private sampleK = 0;

  private get o() {
    const o = this.options;
    return {
      nCtx: o.nCtx as number,
      init: (o.ctxInit as string) || null,
      alpha: o.alpha as number,
      tau: o.tau as number,
      sampleClasses: o.sampleClasses as number,
      teacherTemplate: o.teacherTemplate as string,
      chunk: o.textChunk as number,
      initFrom: (o.initFrom as string) ?? '',
      deep: o.variant === 'deep',
    };
  }

  /** The text slots (shallow: one layer, q = "ctx"). */
  private vectors(): RppSlots {
    if (this.deepSlots) return this.deepSlots.text;
    const q = this.params.get('ctx');
    if (!q) throw new GpuError('rpp: used before prepare()');
    return { k: [this.params.get('ctx_k')!], v: [this.params.get('ctx_v')!], q };
  }

  private get visionSlots(): RppSlots | null {
    return this.deepSlots?.vision ?? null;
  }

  /** Deep variant: IVLP's slots and initialisation, each vector split into q/k/v. */
  private async prepareDeep(env: MethodEnv): Promise<void> {
    const dp = await DeepPrompts.create(env.model, env.tokenizer, deepPromptConfig(this.options), env.seed, supportPixels(env));
    try {
      for (const n of dp.notes) env.log(`  rpp: ${n}`);
      env.log(`  rpp: deep variant on IVLP slots: ${dp.describe()}`);
      const slots = await createDeepSlots(dp, this.params);
      this.deepSlots = { text: slots.text!, vision: slots.vision };
      this.prompts = RppTextPrompts.deep(env.model, env.tokenizer, env.classnames, dp.textTokens, dp.config.text.init);
      const noQ = [['text', slots.text], ['vision', slots.vision]].filter(([, t]) => t && !(t as RppSlots).q).map(([n]) => n);
      if (noQ.length) env.log(`  rpp: ${noQ.join(' and ')} prompts reach the last layer: no query vectors (none would get a gradient)`);
    } finally {
      dp.dispose();
    }
  }

  /** Shallow variant: M text slots at layer 0, CoOp's prompt layout. */
  private async prepareShallow(env: MethodEnv): Promise<void> {
    const { model, tokenizer } = env;
    const o = this.o;
    const W = model.config.text.width;
    this.prompts = new RppTextPrompts(model, tokenizer, env.classnames, o.nCtx, o.init);
    // q, k and v start equal: the init words' embeddings, else one N(0, 0.02) draw.
    let init: Float32Array;
    if (o.init) {
      init = await wordEmbeddings(model, initTokens(tokenizer, o.init));
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
  }

  async prepare(env: MethodEnv): Promise<void> {
    this.env = env;
    const { model } = env;
    const o = this.o;
    const C = env.classnames.length;
    if (o.deep) await this.prepareDeep(env);
    else await this.prepareShallow(env);
    this.logitScale = await noGrad(() => model.logitScale()).item();
    this.sampleK = o.sampleClasses > 0 && o.sampleClasses <= C ? o.sampleClasses : 0;
    if (o.sampleClasses > C) env.log(`rpp: --sample-classes ${o.sampleClasses} >= ${C} classes: every step uses all classes`);
    if (env.purpose === 'train' && o.alpha > 0) {
      const templates = resolveTemplates(o.teacherTemplate, env.datasetName, 'rpp');
      this.teacher = keep(tensor(await env.features.textWeights(env.classnames, templates), [C, model.config.embedDim], 'f32', env.gpu));
    }
  }

  step(b: ImageBatch, ctx: StepContext): StepOutput {
    const env = this.env!;
    const { model, gpu } = env;
    const o = this.o;
    const C = env.classnames.length;
    const res = model.config.image.resolution;
    const vecs = this.vectors();
    const sample = this.sampleK ? sampleClasses(b.labels, C, this.sampleK, ctx.rng) : null;
    const classes = sample ? sample.classes : range(0, C);
    const pixels = tensor(b.pixels, [b.count, 3, res, res], 'f32', gpu);
    const vision = this.visionSlots;
    // The frozen model's image features: the student's when the vision tower is not prompted, and
    // the teacher's (f⁰(x), methods.md 9.3(b)) when it is.
    const img0 = !vision || o.alpha > 0 ? noGrad(() => l2normalize(model.encodeImage(pixels).embeds)) : null;
    const img = vision ? l2normalize(model.encodeImage(pixels, rppVisionOptions(model, vision)).embeds) : img0!;
    const chunked = classes.length > o.chunk ? new ChunkedEncoder((s, e) => this.prompts!.encode(classes.slice(s, e), vecs), classes.length, o.chunk) : null;
    const { text, afterBackward } = chunkedText(chunked, () => this.prompts!.encode(classes, vecs));
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
          const r = scaleBy(matmul(img0!, w, { transB: true }), this.logitScale);
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
    const same = this.prompts && sameClasses(classnames, env.classnames);
    const mine = this.prompts!;
    const prompts = same ? mine : this.deepSlots ? RppTextPrompts.deep(env.model, env.tokenizer, classnames, mine.nCtx, this.o.init) : new RppTextPrompts(env.model, env.tokenizer, classnames, this.o.nCtx, this.o.init);
    const text = keep(prompts.encodeAllNoGrad(vecs, Math.min(this.o.chunk, classnames.length)));
    const dispose = () => text.dispose();
    const vision = this.visionSlots;
    if (vision) return { text, scale: this.logitScale, embedPixels: (p) => env.model.encodeImage(p, rppVisionOptions(env.model, vision)).embeds, dispose };
    const proj = env.model.param('visual.proj');
    return { text, scale: this.logitScale, embedPooled: (p) => matmul(p, proj), dispose };
  }

  dispose(): void {
    this.teacher?.dispose();
    this.teacher = null;
    this.deepSlots = null;
    for (const t of this.params.values()) t.dispose();
    this.params.clear();
  }
}

/** The deep variant's slot options (IVLP's flags). */
const DEEP_SLOT_OPTIONS: readonly OptionSpec[] = DEEP_PROMPT_OPTIONS.filter((d) => ['textTokens', 'textDepth', 'textDeepInit', 'visionTokens', 'visionDepth', 'visionInit'].includes(d.key)).map((d) =>
  d.key === 'textDepth' ? { ...d, min: 1, help: 'deep: prompted text layers J_t, layer 0 included (clamped to the model)' } : { ...d, help: `deep: ${d.help}` },
);

export const RPP: MethodSpec = {
  name: 'rpp',
  summary: 'RPP: unshared query/key/value prompts (shallow text, or --variant deep on IVLP\'s text and vision slots), soft labels from the zero-shot teacher, POMP class sampling',
  options: [
    { key: 'variant', flag: 'variant', type: 'string', choices: ['shallow', 'deep'], help: 'shallow: M text slots at layer 0 (POMP-compatible); deep: IVLP\'s text and vision slots with key/value vectors at every prompted layer' },
    { key: 'nCtx', flag: 'n-ctx', type: 'int', min: 1, help: 'shallow: number of prompt slots M (each with a query, key and value vector)' },
    { key: 'ctxInit', flag: 'ctx-init', type: 'string', help: 'init words, e.g. "a photo of a" (their count is M); empty: random N(0, 0.02); q, k and v start equal' },
    { key: 'alpha', flag: 'alpha', type: 'float', min: 0, help: 'weight α of the distillation term α·τ²·KL(teacher ‖ student) (0: hard labels only)' },
    { key: 'tau', flag: 'tau', type: 'float', min: 0, exclusiveMin: true, help: 'distillation temperature τ' },
    { key: 'sampleClasses', flag: 'sample-classes', type: 'int', min: 0, help: 'POMP class sampling: the batch\'s classes + K-1 sampled negatives per step (0: all classes; POMP uses 1000)' },
    { key: 'teacherTemplate', flag: 'teacher-template', type: 'string', help: 'the teacher\'s class prompts: "single" ("a photo of a {}."), "dataset", "ensemble", or templates with {} separated by |' },
    { key: 'epochs', flag: 'epochs', type: 'int', min: 1, help: 'training epochs (POMP: 5 for M = 4)' },
    SGD_LR_OPTION,
    ...DASSL_SGD_OPTIONS,
    { key: 'initFrom', flag: 'init-from', type: 'string', help: 'shallow: start from an RPP run\'s q/k/v prompts or a CoOp run\'s context (q = k = v); M follows that run unless --n-ctx is given' },
    ...DEEP_SLOT_OPTIONS,
  ],
  defaults: (_ctx: DefaultsContext) => ({
    variant: 'shallow',
    nCtx: 4,
    ctxInit: 'a photo of a',
    alpha: 1,
    tau: 1,
    sampleClasses: 0,
    teacherTemplate: 'single',
    epochs: 5,
    lr: 0.002,
    batchSize: 32,
    ...DASSL_SGD_DEFAULTS,
    initFrom: '',
    // The deep variant's slots: IVLP's configuration (PromptSRC's 4+4 tokens, depth 9).
    textTokens: 4,
    textDepth: 9,
    visionTokens: 4,
    visionDepth: 9,
    visionInit: 'normal',
    textDeepInit: 'normal',
  }),
  finalize: (opts, given) => {
    if (opts.variant !== 'deep') {
      const deepOnly = DEEP_SLOT_OPTIONS.filter((d) => given.has(d.key)).map((d) => `--${d.flag}`);
      if (deepOnly.length) throw new MethodOptionError(`${deepOnly.join(', ')} only ${deepOnly.length === 1 ? 'applies' : 'apply'} to --variant deep`);
    } else {
      for (const k of ['nCtx', 'initFrom'] as const) if (given.has(k)) throw new MethodOptionError(`--${k === 'nCtx' ? 'n-ctx' : 'init-from'} only applies to --variant shallow (deep: --text-tokens / --vision-tokens)`);
    }
    finalizeInitFrom(opts, given);
    if (given.has('ctxInit') && !given.has('nCtx') && opts.ctxInit) opts.nCtx = String(opts.ctxInit).trim().split(/\s+/).length;
    if (given.has('nCtx') && !given.has('ctxInit')) opts.ctxInit = '';
  },
  validate: (opts) => {
    if (opts.variant === 'deep' && !opts.textDepth) throw new MethodOptionError('rpp --variant deep: --text-depth must be >= 1 (the text slots carry the classes)');
    if (opts.sampleClasses === 1) throw new MethodOptionError('--sample-classes 1 leaves no negatives: use 0 (all classes) or K >= 2');
  },
  create: (opts) => new RppMethod(opts),
};

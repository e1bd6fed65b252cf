// ProLIP (Fahes et al., arXiv 2410.05270; astra-vision/ProLIP): fine-tune only CLIP's last visual
// projection W (visual.proj, [width, embed]) on cached pre-projection features, regularised toward
// its pretrained value: L = CE(s·normalize(x W)·Tᵀ, y) + λ‖W − W₀‖²_F with λ = 1/N (N shots), the
// squared Frobenius norm unscaled (methods.md 8.b). Adam (eps 1e-4), lr 1e-5, per-step cosine to 0
// over 300 full-batch steps; step s uses every support feature of augmented view (s+1) mod V
// (V = 300 views of RandomResizedCrop(scale 0.5-1) + flip, cached on disk once per support set).
// The variants of methods.md 8.d (`--variant`), same recipe otherwise:
//   text: ProLIP-text learns the text projection P (text_projection, [text width, embed]) with the
//         visual side frozen: class weights T_c = normalize(mean_t normalize(h_{c,t} P)) from the
//         pre-projection text features h (CLIP's ensemble recipe), images normalize(x W₀), reg λ‖P − P₀‖².
//   rla:  the regularised linear adapter A ([embed, embed], from the identity) after the frozen
//         projection: normalize(x W₀ A), reg λ‖A − I‖² (a black-box alternative: needs only embeddings).
import { GpuError } from '../gpu/index.js';
import { empty, keep, tensor, tidy, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { scale as scaleBy, square, sub } from '../ops/elementwise.js';
import { mean, sum } from '../ops/reduce.js';
import { reshape } from '../ops/shape.js';
import { matmul } from '../ops/matmul.js';
import { l2normalize } from '../ops/distance.js';
import { crossEntropy } from '../ops/losses.js';
import { Adam, type Optimizer } from '../nn/optim.js';
import { cosineLr } from '../nn/schedule.js';
import { PROLIP_RRC_SCALE } from '../clip/augment.js';
import { MethodOptionError, composeLoss, type AdaptMethod, type Classifier, type MethodEnv, type MethodSpec, type OptionValue, type StepOutput, type TrainPlan } from './method.js';
import { classPrompt, encodePromptTexts, resolveTemplates } from './zeroshot.js';
import type { ClipModel } from '../clip/model.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';

export interface ProlipLossInputs {
  /** Pre-projection features [N, W]. */
  features: Tensor;
  /** The learned projection [W, E]. */
  proj: Tensor;
  /** Its pretrained value (frozen). */
  proj0: Tensor;
  /** Normalised class text features [C, E]. */
  text: Tensor;
  labels: Tensor;
  lambda: number;
  /** Logit scale (100 for released CLIP). */
  logitScale: number;
}

/** loss = ce + λ·Σ(P − P₀)², the regulariser every ProLIP variant adds to its CE. */
function withProjectorPenalty(ce: Tensor, i: { proj: Tensor; proj0: Tensor; lambda: number }): { loss: Tensor; terms: { ce: Tensor; reg: Tensor } } {
  const reg = sum(square(sub(i.proj, i.proj0)));
  const { loss } = composeLoss([
    { name: 'ce', weight: 1, value: ce },
    { name: 'reg', weight: i.lambda, value: reg },
  ]);
  return { loss, terms: { ce, reg } };
}

/** ProLIP's loss and its parts: ce = CE(s·normalize(x W) Tᵀ, y), reg = Σ(W − W₀)², loss = ce + λ·reg. */
export function prolipLoss(i: ProlipLossInputs): { loss: Tensor; terms: { ce: Tensor; reg: Tensor } } {
  const z = l2normalize(matmul(i.features, i.proj));
  const logits = scaleBy(matmul(z, i.text, { transB: true }), i.logitScale);
  return withProjectorPenalty(crossEntropy(logits, i.labels), i);
}

/** A copy of a tensor's values in fresh storage (not tracked by scopes). */
export function cloneTensor(t: Tensor, label = 'clone'): Tensor {
  const c = keep(empty(t.shape, t.dtype, t.gpu, label));
  t.gpu.copy(t.buffer, 0, c.buffer, 0, t.bytes, `${label} ${t.describe()}`);
  return c;
}

export type ProlipVariant = 'visual' | 'text' | 'rla';
export const PROLIP_VARIANTS: readonly ProlipVariant[] = ['visual', 'text', 'rla'];

/**
 * ProLIP-text's class weights [C, E]: normalize(mean over templates of normalize(h P)), from the
 * pre-projection text features `textPooled` [T·C, Wt] (template-major: rows t·C .. t·C + C − 1 are
 * template t) and the text projection P [Wt, E]. Differentiable in P.
 */
export function prolipTextWeights(textPooled: Tensor, proj: Tensor, templates: number): Tensor {
  const rows = textPooled.shape[0]!;
  if (templates < 1 || rows % templates !== 0) throw new GpuError(`prolip text: ${textPooled.describe()} is not ${templates} templates x classes`);
  const c = rows / templates;
  const z = l2normalize(matmul(textPooled, proj));
  if (templates === 1) return z;
  return l2normalize(mean(reshape(z, [templates, c, proj.shape[1]!]), 0));
}

export interface ProlipTextLossInputs {
  /** Normalised image embeddings normalize(x W₀) [N, E] (frozen). */
  images: Tensor;
  /** Pre-projection text features [T·C, Wt], template-major. */
  textPooled: Tensor;
  templates: number;
  /** The learned text projection [Wt, E]. */
  proj: Tensor;
  /** Its pretrained value (frozen). */
  proj0: Tensor;
  labels: Tensor;
  lambda: number;
  logitScale: number;
}

/** ProLIP-text's loss: CE(s·u·Tᵀ(P), y) + λ‖P − P₀‖²_F, with T(P) from prolipTextWeights. */
export function prolipTextLoss(i: ProlipTextLossInputs): { loss: Tensor; terms: { ce: Tensor; reg: Tensor } } {
  const text = prolipTextWeights(i.textPooled, i.proj, i.templates);
  const logits = scaleBy(matmul(i.images, text, { transB: true }), i.logitScale);
  return withProjectorPenalty(crossEntropy(logits, i.labels), i);
}

/** Pre-projection text features ln_final(x)[eot] [T·C, Wt] of every (template, class) prompt, template-major (no gradient). */
export function textPooledFeatures(model: ClipModel, tokenizer: ClipTokenizer, classnames: readonly string[], templates: readonly string[], chunk = 256): Tensor {
  if (!classnames.length) throw new GpuError('prolip text: no class names');
  return encodePromptTexts(model, tokenizer, templates.flatMap((t) => classnames.map((c) => classPrompt(t, c))), 'pooled', chunk);
}

function identity(n: number, gpu: import('../gpu/index.js').Gpu): Tensor {
  const d = new Float32Array(n * n);
  for (let i = 0; i < n; i++) d[i * n + i] = 1;
  return keep(tensor(d, [n, n], 'f32', gpu));
}

/** The learned tensor's checkpoint name per variant. */
export const PROLIP_PARAM: Record<ProlipVariant, string> = { visual: 'visual.proj', text: 'text_projection', rla: 'adapter' };

interface ProlipBatch {
  view: number;
  data: Float32Array;
}

/** Views kept in host memory up to this many bytes; beyond, each step reads its view from the cache. */
const VIEW_MEMORY_BUDGET = 1 << 30;

export class ProlipMethod implements AdaptMethod<ProlipBatch> {
  readonly name = 'prolip';
  readonly params = new Map<string, Tensor>();
  readonly caches: string[];
  private env: MethodEnv | null = null;
  /** The learned tensor's pretrained value (visual: W₀, text: P₀, rla: I). */
  private proj0: Tensor | null = null;
  /** visual / rla: fixed class weights [C, E]. */
  private text: Tensor | null = null;
  /** text variant: pre-projection text features of the training classes [T·C, Wt]. */
  private textPooled: Tensor | null = null;
  private labels: Tensor | null = null;
  private views: (Float32Array | null)[] = [];
  private logitScale = 100;
  private templates: string[] = [];

  constructor(readonly options: Readonly<Record<string, OptionValue>>) {
    const o = this.o;
    this.caches = [
      `pre-projection image features of the support set, ${o.views} augmented views (RandomResizedCrop ${o.cropMin}-1 + flip)`,
      o.variant === 'text' ? 'pre-projection text features of the class prompts (memory)' : 'class text features (template ensemble)',
      'pre-projection test features (test transform), at evaluation',
    ];
  }

  private get o() {
    const o = this.options;
    return {
      lr: o.lr as number,
      steps: o.steps as number,
      views: o.views as number,
      lambda: o.lambda as number,
      eps: o.eps as number,
      template: o.template as string,
      variant: ((o.variant as string | undefined) ?? 'visual') as ProlipVariant,
      cropMin: (o.cropMin as number | undefined) ?? PROLIP_RRC_SCALE[0],
    };
  }

  private get paramName(): string {
    return PROLIP_PARAM[this.o.variant];
  }

  async prepare(env: MethodEnv): Promise<void> {
    this.env = env;
    const { model } = env;
    const o = this.o;
    if (!PROLIP_VARIANTS.includes(o.variant)) throw new GpuError(`prolip: unknown variant "${o.variant}" (${PROLIP_VARIANTS.join(', ')})`);
    const e = model.config.embedDim;
    if (o.variant === 'rla') {
      this.proj0 = identity(e, env.gpu);
      this.params.set(this.paramName, identity(e, env.gpu).param(this.paramName));
    } else {
      const w0 = model.param(this.paramName);
      this.proj0 = cloneTensor(w0, `prolip ${this.paramName} 0`);
      this.params.set(this.paramName, cloneTensor(w0, `prolip ${this.paramName}`).param(this.paramName));
    }
    this.templates = resolveTemplates(o.template, env.datasetName, 'prolip');
    const c = env.classnames.length;
    if (o.variant === 'text') this.textPooled = keep(textPooledFeatures(model, env.tokenizer, env.classnames, this.templates));
    else this.text = keep(tensor(await env.features.textWeights(env.classnames, this.templates), [c, e], 'f32', env.gpu));
    this.logitScale = await noGrad(() => model.logitScale()).item();
    if (env.purpose === 'eval') return;
    if (!env.train.length) throw new GpuError('prolip: the support set is empty');
    this.labels = keep(tensor(Int32Array.from(env.train, (it) => it.label), [env.train.length], 'i32', env.gpu));
    const bytes = o.views * env.train.length * model.config.image.width * 4;
    const keepAll = bytes <= VIEW_MEMORY_BUDGET;
    if (!keepAll) env.log(`prolip: ${o.views} views take ${(bytes / 2 ** 30).toFixed(1)} GiB; each step reads its view from the feature cache`);
    this.views = [];
    for (let v = 0; v < o.views; v++) {
      const data = await env.features.pooled(env.train, this.viewSpec(v));
      this.views.push(keepAll ? data : null);
    }
  }

  private viewSpec(v: number) {
    const scale: readonly [number, number] = [this.o.cropMin, PROLIP_RRC_SCALE[1]];
    return { mode: 'train' as const, scale, flipP: 0.5, seed: this.env!.seed, view: v };
  }

  plan(): TrainPlan {
    return { epochs: this.o.steps, stepsPerEpoch: 1, imagesPerStep: this.env?.train.length ?? 0 };
  }

  createOptimizer(): Optimizer {
    return new Adam([this.params.get(this.paramName)!], { lr: this.o.lr, eps: this.o.eps });
  }

  /** torch's CosineAnnealingLR(T_max = steps), stepped once per step. */
  learningRate(_epoch: number, _stepInEpoch: number, globalStep: number): number {
    return cosineLr(globalStep, { baseLr: this.o.lr, totalSteps: this.o.steps });
  }

  async *batches(epoch: number, startStep: number): AsyncIterable<ProlipBatch> {
    if (startStep > 0) return;
    const view = (epoch + 1) % this.o.views;
    const data = this.views[view] ?? (await this.env!.features.pooled(this.env!.train, this.viewSpec(view)));
    yield { view, data };
  }

  step(b: ProlipBatch): StepOutput {
    const env = this.env!;
    const x = tensor(b.data, [env.train.length, env.model.config.image.width], 'f32', env.gpu);
    const learned = this.params.get(this.paramName)!;
    const common = { proj: learned, proj0: this.proj0!, labels: this.labels!, lambda: this.o.lambda, logitScale: this.logitScale };
    switch (this.o.variant) {
      case 'visual':
        return prolipLoss({ features: x, text: this.text!, ...common });
      case 'rla':
        // The frozen projection's embeddings x W₀ are the adapter's input (no gradient reaches W₀).
        return prolipLoss({ features: matmul(x, env.model.param('visual.proj')), text: this.text!, ...common });
      case 'text':
        return prolipTextLoss({ images: l2normalize(matmul(x, env.model.param('visual.proj'))), textPooled: this.textPooled!, templates: this.templates.length, ...common });
    }
  }

  async classifier(classnames: readonly string[], env: MethodEnv): Promise<Classifier> {
    const learned = this.params.get(this.paramName);
    if (!learned) throw new GpuError('prolip: classifier() before prepare()');
    // Templates follow the evaluated dataset (cross-dataset transfer uses the target's template).
    const templates = resolveTemplates(this.o.template, env.datasetName, 'prolip');
    const e = env.model.config.embedDim;
    const w0 = env.model.param('visual.proj');
    let text: Tensor;
    if (this.o.variant === 'text') {
      const pooled = textPooledFeatures(env.model, env.tokenizer, classnames, templates);
      text = keep(noGrad(() => tidy(() => prolipTextWeights(pooled, learned, templates.length))));
      pooled.dispose();
    } else {
      text = keep(tensor(await env.features.textWeights(classnames, templates), [classnames.length, e], 'f32', env.gpu));
    }
    const embedPooled = this.o.variant === 'visual' ? (p: Tensor) => matmul(p, learned) : this.o.variant === 'rla' ? (p: Tensor) => matmul(matmul(p, w0), learned) : (p: Tensor) => matmul(p, w0);
    return { text, scale: this.logitScale, embedPooled, dispose: () => text.dispose() };
  }

  dispose(): void {
    for (const t of [this.proj0, this.text, this.textPooled, this.labels, ...this.params.values()]) t?.dispose();
    this.params.clear();
    this.views = [];
  }
}

export const PROLIP: MethodSpec = {
  name: 'prolip',
  summary: 'fine-tune the last visual projection on cached features, regularised toward its pretrained value (ProLIP; variants: ProLIP-text, regularised linear adapter)',
  options: [
    { key: 'lr', flag: 'lr', type: 'float', min: 0, exclusiveMin: true, help: 'Adam learning rate (cosine to 0 over the steps)' },
    { key: 'steps', flag: 'steps', type: 'int', min: 1, help: 'full-batch steps (ProLIP calls them epochs)' },
    { key: 'views', flag: 'views', type: 'int', min: 1, help: 'augmented views cached per support image; step s uses view (s+1) mod views' },
    { key: 'lambda', flag: 'lambda', type: 'float', min: 0, help: "weight of ‖W − W₀‖²_F (default 1/shots; ProLIP's other validation-free choice is 1/shots², e.g. 0.00390625 for 16 shots)" },
    { key: 'eps', flag: 'adam-eps', type: 'float', min: 0, exclusiveMin: true, help: "Adam's epsilon" },
    { key: 'template', flag: 'template', type: 'string', help: 'class prompts: "dataset" (its single template; ImageNet: the 7-template ensemble), "ensemble", or a template with {}' },
    { key: 'variant', flag: 'variant', type: 'string', choices: PROLIP_VARIANTS, help: 'visual: the visual projection (ProLIP); text: the text projection (ProLIP-text); rla: a linear adapter after the frozen projection, from the identity' },
    { key: 'cropMin', flag: 'crop-min', type: 'float', min: 0, exclusiveMin: true, help: 'smallest RandomResizedCrop area of the cached views (ProLIP: 0.5; 1 = flips only)' },
  ],
  defaults: (ctx) => ({ lr: 1e-5, steps: 300, views: 300, lambda: ctx.shots > 0 ? 1 / ctx.shots : 0, eps: 1e-4, template: 'dataset', variant: 'visual', cropMin: PROLIP_RRC_SCALE[0] }),
  validate: (opts) => {
    if ((opts.cropMin as number) > 1) throw new MethodOptionError(`--crop-min must be <= 1, got ${opts.cropMin}`);
  },
  create: (opts) => new ProlipMethod(opts),
};

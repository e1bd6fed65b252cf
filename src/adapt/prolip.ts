// ProLIP (Fahes et al., arXiv 2410.05270; astra-vision/ProLIP): fine-tune only CLIP's last visual
// projection W (visual.proj, [width, embed]) on cached pre-projection features, regularised toward
// its pretrained value: L = CE(s·normalize(x W)·Tᵀ, y) + λ‖W − W₀‖²_F with λ = 1/N (N shots), the
// squared Frobenius norm unscaled (methods.md 8.b). Adam (eps 1e-4), lr 1e-5, per-step cosine to 0
// over 300 full-batch steps; step s uses every support feature of augmented view (s+1) mod V
// (V = 300 views of RandomResizedCrop(scale 0.5-1) + flip, cached on disk once per support set).
import { GpuError } from '../gpu/index.js';
import { empty, keep, tensor, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { scale as scaleBy, square, sub } from '../ops/elementwise.js';
import { matmul } from '../ops/matmul.js';
import { l2normalize } from '../ops/distance.js';
import { crossEntropy } from '../ops/losses.js';
import { sum } from '../ops/reduce.js';
import { Adam, type Optimizer } from '../nn/optim.js';
import { cosineLr } from '../nn/schedule.js';
import { PROLIP_RRC_SCALE } from '../clip/augment.js';
import { composeLoss, type AdaptMethod, type Classifier, type MethodEnv, type MethodSpec, type OptionValue, type StepOutput, type TrainPlan } from './method.js';
import { resolveTemplates } from './zeroshot.js';

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

/** ProLIP's loss and its parts: ce = CE(s·normalize(x W) Tᵀ, y), reg = Σ(W − W₀)², loss = ce + λ·reg. */
export function prolipLoss(i: ProlipLossInputs): { loss: Tensor; terms: { ce: Tensor; reg: Tensor } } {
  const z = l2normalize(matmul(i.features, i.proj));
  const logits = scaleBy(matmul(z, i.text, { transB: true }), i.logitScale);
  const ce = crossEntropy(logits, i.labels);
  const reg = sum(square(sub(i.proj, i.proj0)));
  const { loss } = composeLoss([
    { name: 'ce', weight: 1, value: ce },
    { name: 'reg', weight: i.lambda, value: reg },
  ]);
  return { loss, terms: { ce, reg } };
}

/** A copy of a tensor's values in fresh storage (not tracked by scopes). */
export function cloneTensor(t: Tensor, label = 'clone'): Tensor {
  const c = keep(empty(t.shape, t.dtype, t.gpu, label));
  t.gpu.copy(t.buffer, 0, c.buffer, 0, t.bytes, `${label} ${t.describe()}`);
  return c;
}

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
  private proj0: Tensor | null = null;
  private text: Tensor | null = null;
  private labels: Tensor | null = null;
  private views: (Float32Array | null)[] = [];
  private logitScale = 100;
  private templates: string[] = [];

  constructor(readonly options: Readonly<Record<string, OptionValue>>) {
    const o = options;
    this.caches = [
      `pre-projection image features of the support set, ${o.views} augmented views (RandomResizedCrop ${PROLIP_RRC_SCALE.join('-')} + flip)`,
      'class text features (template ensemble)',
      'pre-projection test features (test transform), at evaluation',
    ];
  }

  private get o() {
    const o = this.options;
    return { lr: o.lr as number, steps: o.steps as number, views: o.views as number, lambda: o.lambda as number, eps: o.eps as number, template: o.template as string };
  }

  async prepare(env: MethodEnv): Promise<void> {
    this.env = env;
    const { model } = env;
    const o = this.o;
    const w0 = model.param('visual.proj');
    this.proj0 = cloneTensor(w0, 'prolip W0');
    const w = cloneTensor(w0, 'prolip W').param('visual.proj');
    this.params.set('visual.proj', w);
    this.templates = resolveTemplates(o.template, env.datasetName, 'prolip');
    const c = env.classnames.length;
    this.text = keep(tensor(await env.features.textWeights(env.classnames, this.templates), [c, model.config.embedDim], 'f32', env.gpu));
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
    return { mode: 'train' as const, scale: PROLIP_RRC_SCALE, flipP: 0.5, seed: this.env!.seed, view: v };
  }

  plan(): TrainPlan {
    return { epochs: this.o.steps, stepsPerEpoch: 1, imagesPerStep: this.env?.train.length ?? 0 };
  }

  createOptimizer(): Optimizer {
    return new Adam([this.params.get('visual.proj')!], { lr: this.o.lr, eps: this.o.eps });
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
    return prolipLoss({ features: x, proj: this.params.get('visual.proj')!, proj0: this.proj0!, text: this.text!, labels: this.labels!, lambda: this.o.lambda, logitScale: this.logitScale });
  }

  async classifier(classnames: readonly string[], env: MethodEnv): Promise<Classifier> {
    const w = this.params.get('visual.proj');
    if (!w) throw new GpuError('prolip: classifier() before prepare()');
    // Templates follow the evaluated dataset (cross-dataset transfer uses the target's template).
    const templates = resolveTemplates(this.o.template, env.datasetName, 'prolip');
    const text = keep(tensor(await env.features.textWeights(classnames, templates), [classnames.length, env.model.config.embedDim], 'f32', env.gpu));
    return {
      text,
      scale: this.logitScale,
      embedPooled: (pooled) => matmul(pooled, w),
      dispose: () => text.dispose(),
    };
  }

  dispose(): void {
    for (const t of [this.proj0, this.text, this.labels, ...this.params.values()]) t?.dispose();
    this.params.clear();
    this.views = [];
  }
}

export const PROLIP: MethodSpec = {
  name: 'prolip',
  summary: 'fine-tune the last visual projection on cached features, regularised toward its pretrained value (ProLIP)',
  options: [
    { key: 'lr', flag: 'lr', type: 'float', min: 0, exclusiveMin: true, help: 'Adam learning rate (cosine to 0 over the steps)' },
    { key: 'steps', flag: 'steps', type: 'int', min: 1, help: 'full-batch steps (ProLIP calls them epochs)' },
    { key: 'views', flag: 'views', type: 'int', min: 1, help: 'augmented views cached per support image; step s uses view (s+1) mod views' },
    { key: 'lambda', flag: 'lambda', type: 'float', min: 0, help: 'weight of ‖W − W₀‖²_F (default 1/shots)' },
    { key: 'eps', flag: 'adam-eps', type: 'float', min: 0, exclusiveMin: true, help: "Adam's epsilon" },
    { key: 'template', flag: 'template', type: 'string', help: 'class prompts: "dataset" (its single template; ImageNet: the 7-template ensemble), "ensemble", or a template with {}' },
  ],
  defaults: (ctx) => ({ lr: 1e-5, steps: 300, views: 300, lambda: ctx.shots > 0 ? 1 / ctx.shots : 0, eps: 1e-4, template: 'dataset' }),
  create: (opts) => new ProlipMethod(opts),
};

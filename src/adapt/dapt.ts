// DAPT (Cho, Kim, Kim, ICCV 2023; mlvlab/DAPT): distribution-aware prompt tuning (methods.md 6).
// Learned: 16 CoOp-style text context vectors (unified, class token at the end, N(0, 0.02)) and 16
// shallow visual prompts inserted right after the class token AFTER ln_pre (no positional embedding,
// no ln_pre), initialised uniform(±sqrt(6/(3p² + d))) from the loaded model's patch size p and width
// d (VPT's bound: 0.0625 for ViT-B/16). Loss (code = ground truth, 6.b):
//   L = CE(s·f wᵀ, y) + β_v·mean_{b,d}(f − p_y)² + β_t·mean_{i<j} exp(−t‖w_i − w_j‖²), t = 2,
// f = normalised prompted image features, w = normalised prompted text features of every training
// class, p_c = unnormalised mean of the normalised FROZEN image features of one augmented view
// (RRC 0.08-1 + flip) of each training image of class c, cached with the seed.
// SGD (momentum 0.9, wd 5e-4), batch 32, Dassl cosine with one constant warm-up epoch at 1e-5, epochs
// by shots as CoOp; lr and β per dataset from the official configs (presets), train.py's defaults
// (lr 3e-4, β 0.1/0.1) elsewhere.
//
// Composability (issue 6.6): the two dispersion terms are exported functions, and --ot-lambda adds
// Prompt-OT's transport term between the adapted joint features [f; w_y] and the frozen model's
// [f⁰; t⁰_y] of the same augmented images (methods.md 5.b, cost 0.5‖z − z⁰‖², exact plan held constant).
import { GpuError } from '../gpu/index.js';
import { keep, tensor, tidy, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { exp, mul, scale as scaleBy } from '../ops/elementwise.js';
import { matmul } from '../ops/matmul.js';
import { l2normalize, pairwiseSqDist } from '../ops/distance.js';
import { crossEntropy, mse } from '../ops/losses.js';
import { sum } from '../ops/reduce.js';
import { concat, slice } from '../ops/shape.js';
import { indexSelect } from '../ops/index-ops.js';
import { SGD, type Optimizer } from '../nn/optim.js';
import { dasslCosineSchedule } from '../nn/schedule.js';
import { ChunkedEncoder } from '../clip/chunked.js';
import { Rng } from '../clip/rng.js';
import { DASSL_RRC_SCALE } from '../clip/augment.js';
import { DecodeMemo } from '../train/features.js';
import { PromptBank, planCoopPrompts, imageBatches, dasslStepsPerEpoch, gaussian, coopEpochs, type CoopPromptOptions } from './coop.js';
import { otLoss, OT_STAT } from './ot.js';
import { composeLoss, MethodOptionError, type AdaptMethod, type Classifier, type DefaultsContext, type LossTerm, type MethodEnv, type MethodSpec, type OptionValue, type StepContext, type StepOutput, type TrainPlan, type ViewSpec } from './method.js';

// ---------------------------------------------------------------------------------------------
// The dispersion losses (separate pieces other methods can compose)

/**
 * Inter-dispersion of normalised class text features w [C, E]: the mean over class pairs i < j of
 * exp(−t‖w_i − w_j‖²) (DAPT's TXT_RBF_T = 2; no log). The diagonal is masked out rather than
 * subtracted, so a small loss keeps its precision. Needs C >= 2.
 */
export function interDispersionLoss(w: Tensor, t = 2): Tensor {
  if (w.rank !== 2) throw new GpuError(`interDispersionLoss: text features ${w.describe()} must be [C, E]`);
  const c = w.shape[0]!;
  if (c < 2) throw new GpuError(`interDispersionLoss: text features ${w.describe()} hold ${c} class; the mean over class pairs needs at least 2`);
  if (!Number.isFinite(t)) throw new GpuError(`interDispersionLoss: temperature ${t} is not finite`);
  return tidy(() => {
    const mask = new Float32Array(c * c).fill(1);
    for (let i = 0; i < c; i++) mask[i * c + i] = 0;
    const k = mul(exp(scaleBy(pairwiseSqDist(w, w), -t)), tensor(mask, [c, c], 'f32', w.gpu));
    // Σ_{i≠j} = 2 Σ_{i<j}: dividing by C(C−1) gives the mean over the C(C−1)/2 pairs.
    return scaleBy(sum(k), 1 / (c * (c - 1)));
  });
}

/**
 * Intra-dispersion: mean over all B·E elements of (f − p_y)² (PyTorch mse_loss), f [B, E] the
 * normalised image features, prototypes [C, E] (frozen), labels i32 [B].
 */
export function intraDispersionLoss(f: Tensor, prototypes: Tensor, labels: Tensor): Tensor {
  if (f.rank !== 2 || prototypes.rank !== 2 || f.shape[1] !== prototypes.shape[1]) {
    throw new GpuError(`intraDispersionLoss: features ${f.describe()} and prototypes ${prototypes.describe()} must be [B, E] and [C, E]`);
  }
  if (labels.rank !== 1 || labels.size !== f.shape[0]) throw new GpuError(`intraDispersionLoss: labels ${labels.describe()} must be [${f.shape[0]}] for features ${f.describe()}`);
  return tidy(() => mse(f, indexSelect(prototypes, 0, labels)));
}

/**
 * Class prototypes [C·E] (host): p_c = mean of the rows of `normalised` [N, E] whose label is c, not
 * re-normalised; a class without images gets zeros (no batch can ask for it). Summed in float64.
 */
export function classPrototypes(normalised: Float32Array, labels: ArrayLike<number>, classes: number, dim: number): Float32Array {
  if (normalised.length !== labels.length * dim) throw new GpuError(`classPrototypes: ${normalised.length} values for ${labels.length} rows of ${dim}`);
  const acc = new Float64Array(classes * dim);
  const count = new Float64Array(classes);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (!(y >= 0 && y < classes)) throw new GpuError(`classPrototypes: label ${y} of row ${i} is outside ${classes} classes`);
    count[y]!++;
    for (let k = 0; k < dim; k++) acc[y * dim + k]! += normalised[i * dim + k]!;
  }
  const out = new Float32Array(classes * dim);
  for (let c = 0; c < classes; c++) if (count[c]) for (let k = 0; k < dim; k++) out[c * dim + k] = acc[c * dim + k]! / count[c]!;
  return out;
}

export interface JointOtInputs {
  /** Normalised adapted image features [B, E] and text features of every class [C, E]. */
  image: Tensor;
  text: Tensor;
  /** Normalised frozen image features of the same images [B, E] and frozen class text features [C, E]. */
  frozenImage: Tensor;
  frozenText: Tensor;
  labels: Tensor;
  /** Cost scale η (Prompt-OT's eta1 = 0.5). */
  eta?: number;
}

/**
 * Prompt-OT's term (methods.md 5.b): ⟨π*, C⟩ with C_ij = η‖z_i − z⁰_j‖², z_i = [v_i; t_{y_i}],
 * z⁰_j = [v⁰_j; t⁰_{y_j}], the exact plan with uniform marginals held constant in backward (otLoss).
 * Returns the scalar loss and the solver's stats (OT_STAT).
 */
export function jointOtLoss(i: JointOtInputs): { loss: Tensor; stats: Tensor } {
  return tidy(() => {
    const z = concat([i.image, indexSelect(i.text, 0, i.labels)], 1);
    const z0 = noGrad(() => concat([i.frozenImage, indexSelect(i.frozenText, 0, i.labels)], 1));
    const cost = scaleBy(pairwiseSqDist(z, z0), i.eta ?? 0.5);
    const r = otLoss(cost, { solver: 'exact' });
    r.plan.dispose();
    return { loss: r.loss, stats: r.stats };
  });
}

// ---------------------------------------------------------------------------------------------
// Presets and initialisation

export interface DaptHyper {
  lr: number;
  betaV: number;
  betaT: number;
}

/** The official per-dataset configs (mlvlab/DAPT configs/datasets, methods.md 6.b), by Dassl name. */
export const DAPT_PRESETS: Readonly<Record<string, DaptHyper>> = Object.freeze({
  ImageNet: { lr: 2.0, betaV: 0.01, betaT: 0.01 },
  Caltech101: { lr: 0.2, betaV: 10, betaT: 0.01 },
  OxfordPets: { lr: 0.02, betaV: 10, betaT: 0.1 },
  StanfordCars: { lr: 0.002, betaV: 100, betaT: 0.1 },
  OxfordFlowers: { lr: 0.002, betaV: 10, betaT: 0.01 },
  Food101: { lr: 20, betaV: 10, betaT: 0.01 },
  FGVCAircraft: { lr: 2.0, betaV: 100, betaT: 0.01 },
  SUN397: { lr: 20, betaV: 100, betaT: 0.01 },
  DescribableTextures: { lr: 20, betaV: 100, betaT: 0.01 },
  EuroSAT: { lr: 20, betaV: 100, betaT: 10 },
  UCF101: { lr: 20, betaV: 0.1, betaT: 0.1 },
});

/** train.py's defaults, for datasets without a config (e.g. World). */
export const DAPT_TRAIN_PY_DEFAULTS: Readonly<DaptHyper> = Object.freeze({ lr: 3e-4, betaV: 0.1, betaT: 0.1 });

/** The preset name a dataset gets by default: its own name when it has a config, else "default". */
export function daptPresetName(datasetName: string): string {
  return Object.hasOwn(DAPT_PRESETS, datasetName) ? datasetName : 'default';
}

export function daptPreset(name: string): DaptHyper {
  if (name === 'default') return DAPT_TRAIN_PY_DEFAULTS;
  const p = DAPT_PRESETS[name];
  if (!p) throw new MethodOptionError(`--preset must be one of ${[...Object.keys(DAPT_PRESETS), 'default'].join(', ')}, got "${name}"`);
  return p;
}

/** VPT's uniform init bound sqrt(6/(3·p² + d)) for patch size p and prompt width d (0.0625 for ViT-B/16). */
export function visualPromptBound(patchSize: number, width: number): number {
  return Math.sqrt(6 / (3 * patchSize * patchSize + width));
}

/** n draws of uniform(−bound, bound) from our generator. */
export function uniformInit(rng: Rng, n: number, bound: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniformRange(-bound, bound);
  return a;
}

// ---------------------------------------------------------------------------------------------
// The method

interface DaptBatch {
  pixels: Float32Array;
  labels: Int32Array;
  count: number;
}

export class DaptMethod implements AdaptMethod<DaptBatch> {
  readonly name = 'dapt';
  readonly params = new Map<string, Tensor>();
  readonly caches: string[];
  private env: MethodEnv | null = null;
  private bank: PromptBank | null = null;
  private chunked: ChunkedEncoder | null = null;
  private prototypes: Tensor | null = null;
  private frozenText: Tensor | null = null;
  private logitScale = 100;
  private lrTable: number[] = [];
  private readonly decode = new DecodeMemo().decode;

  constructor(readonly options: Readonly<Record<string, OptionValue>>) {
    this.caches = [
      `class prototypes: frozen image features of one augmented view (RandomResizedCrop ${DASSL_RRC_SCALE.join('-')} + flip) per training image, per seed`,
      'frozen token embeddings of the class prompts (memory)',
      ...(this.o.otLambda > 0 ? ['frozen class text features "a photo of a {}." (OT term)'] : []),
    ];
  }

  private get o() {
    const o = this.options;
    return {
      nCtx: o.nCtx as number,
      nCtxVision: o.nCtxVision as number,
      preset: o.preset as string,
      lr: o.lr as number,
      betaV: o.betaV as number,
      betaT: o.betaT as number,
      rbfT: o.rbfT as number,
      otLambda: o.otLambda as number,
      epochs: o.epochs as number,
      batch: o.batchSize as number,
      momentum: o.momentum as number,
      weightDecay: o.weightDecay as number,
      warmupEpochs: o.warmupEpochs as number,
      warmupLr: o.warmupLr as number,
      chunk: o.textChunk as number,
    };
  }

  private promptOptions(): CoopPromptOptions {
    return { nCtx: this.o.nCtx, position: 'end', csc: false, init: null };
  }

  /** The augmented view the prototypes come from (one per run seed). */
  prototypeView(seed: number): ViewSpec {
    return { mode: 'train', scale: DASSL_RRC_SCALE, flipP: 0.5, seed, view: 0 };
  }

  async prepare(env: MethodEnv): Promise<void> {
    this.env = env;
    const { model, tokenizer, gpu } = env;
    const o = this.o;
    const C = env.classnames.length;
    const Wt = model.config.text.width;
    const { width: Wv, patchSize } = model.config.image;
    const E = model.config.embedDim;
    const preset = daptPreset(o.preset);
    env.log(
      `dapt: preset ${o.preset === 'default' ? `"default" (train.py's defaults; ${env.datasetName} has no DAPT config)` : `"${o.preset}" (official config)`}: lr ${preset.lr}, beta_v ${preset.betaV}, beta_t ${preset.betaT}; ` +
        `this run: lr ${o.lr}, beta_v ${o.betaV}, beta_t ${o.betaT}${o.otLambda > 0 ? `, OT lambda ${o.otLambda}` : ''}`,
    );
    if (o.betaT > 0 && C < 2) throw new MethodOptionError(`--beta-t ${o.betaT}: the inter-dispersion term needs at least 2 training classes, got ${C} (use --beta-t 0)`);
    const plan = planCoopPrompts(tokenizer, env.classnames, this.promptOptions(), model.config.text.contextLength);
    this.bank = new PromptBank(model, plan, false, Math.min(o.chunk, C));
    const ctx = keep(tensor(gaussian(new Rng(`cliptune-dapt-ctx\u0001${env.seed}`), o.nCtx * Wt, 0.02), [o.nCtx, Wt], 'f32', gpu)).param('ctx');
    const bound = visualPromptBound(patchSize, Wv);
    const vpt = keep(tensor(uniformInit(new Rng(`cliptune-dapt-vpt\u0001${env.seed}`), o.nCtxVision * Wv, bound), [o.nCtxVision, Wv], 'f32', gpu)).param('visual_prompts');
    this.params.set('ctx', ctx);
    this.params.set('visual_prompts', vpt);
    this.logitScale = await noGrad(() => model.logitScale()).item();
    if (this.bank.chunks.length > 1) this.chunked = new ChunkedEncoder((s) => this.bank!.encode(ctx, s / this.bank!.chunk), C, this.bank.chunk);
    this.lrTable = dasslCosineSchedule({ baseLr: o.lr, maxEpoch: o.epochs, warmupEpochs: o.warmupEpochs, warmupType: 'constant', warmupLr: o.warmupLr });
    if (env.purpose === 'eval') return;
    if (!env.train.length) throw new GpuError('dapt: the training set is empty');
    if (o.betaV > 0) {
      const pooled = await env.features.pooled(env.train, this.prototypeView(env.seed));
      const n = env.train.length;
      const feats = noGrad(() => tidy(() => l2normalize(matmul(tensor(pooled, [n, Wv], 'f32', gpu), model.param('visual.proj')))));
      const normalised = (await feats.read()) as Float32Array;
      feats.dispose();
      this.prototypes = keep(tensor(classPrototypes(normalised, Int32Array.from(env.train, (it) => it.label), C, E), [C, E], 'f32', gpu));
    }
    if (o.otLambda > 0) this.frozenText = keep(tensor(await env.features.textWeights(env.classnames, ['a photo of a {}.']), [C, E], 'f32', gpu));
  }

  plan(): TrainPlan {
    const n = this.env?.train.length ?? 0;
    return { epochs: this.o.epochs, stepsPerEpoch: dasslStepsPerEpoch(n, this.o.batch), imagesPerStep: Math.min(n, this.o.batch) };
  }

  /** One SGD over both prompt sets (DAPT's single optimiser over the prompt learner). */
  createOptimizer(): Optimizer {
    const o = this.o;
    return new SGD([...this.params.values()], { lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay });
  }

  learningRate(epoch: number): number {
    return this.lrTable[epoch] ?? this.lrTable[this.lrTable.length - 1]!;
  }

  batches(epoch: number, startStep: number): AsyncIterable<DaptBatch> {
    const env = this.env!;
    return imageBatches(env.train, { seed: env.seed, epoch, startStep, batch: this.o.batch, size: env.model.config.image.resolution, scale: DASSL_RRC_SCALE, decode: this.decode });
  }

  step(b: DaptBatch, _ctx: StepContext): StepOutput {
    const env = this.env!;
    const { model, gpu } = env;
    const o = this.o;
    const res = model.config.image.resolution;
    const ctx = this.params.get('ctx')!;
    const vpt = this.params.get('visual_prompts')!;
    const pixels = tensor(b.pixels, [b.count, 3, res, res], 'f32', gpu);
    const labels = tensor(b.labels, [b.count], 'i32', gpu);
    const f = l2normalize(model.encodeImage(pixels, { insertAfterCls: vpt }).embeds);
    let text: Tensor;
    let afterBackward: (() => void) | undefined;
    if (this.chunked) {
      const enc = this.chunked;
      text = keep(enc.forward());
      afterBackward = () => enc.backward();
    } else {
      text = this.bank!.encode(ctx, 0);
    }
    const w = l2normalize(text);
    const logits = scaleBy(matmul(f, w, { transB: true }), this.logitScale);
    const terms: LossTerm[] = [{ name: 'ce', weight: 1, value: crossEntropy(logits, labels) }];
    // A term with weight 0 is not computed at all (benchmarks time the step without DAPT's terms).
    if (o.betaV > 0) terms.push({ name: 'intra', weight: o.betaV, value: intraDispersionLoss(f, this.prototypes!, labels) });
    if (o.betaT > 0) terms.push({ name: 'inter', weight: o.betaT, value: interDispersionLoss(w, o.rbfT) });
    let otStats: Tensor | null = null;
    if (o.otLambda > 0) {
      const frozenImage = noGrad(() => l2normalize(model.encodeImage(pixels).embeds));
      const ot = jointOtLoss({ image: f, text: w, frozenImage, frozenText: this.frozenText!, labels });
      terms.push({ name: 'ot', weight: o.otLambda, value: ot.loss });
      otStats = ot.stats;
    }
    const out = composeLoss(terms);
    if (otStats) out.terms.ot_non_identity = noGrad(() => slice(otStats!, 0, OT_STAT.nonIdentity, OT_STAT.nonIdentity + 1));
    return { loss: out.loss, terms: out.terms, afterBackward };
  }

  async classifier(classnames: readonly string[], env: MethodEnv): Promise<Classifier> {
    const ctx = this.params.get('ctx');
    const vpt = this.params.get('visual_prompts');
    if (!ctx || !vpt || !this.bank) throw new GpuError('dapt: classifier() before prepare()');
    const same = classnames.length === env.classnames.length && classnames.every((c, i) => c === env.classnames[i]);
    let text: Tensor;
    if (same) text = keep(this.bank.encodeAllNoGrad(ctx));
    else {
      const plan = planCoopPrompts(env.tokenizer, classnames, this.promptOptions(), env.model.config.text.contextLength);
      const bank = new PromptBank(env.model, plan, false, Math.min(this.o.chunk, classnames.length));
      text = keep(bank.encodeAllNoGrad(ctx));
      bank.dispose();
    }
    const model = env.model;
    return { text, scale: this.logitScale, embedPixels: (pixels) => model.encodeImage(pixels, { insertAfterCls: vpt }).embeds, dispose: () => text.dispose() };
  }

  dispose(): void {
    this.bank?.dispose();
    this.bank = null;
    for (const t of [this.prototypes, this.frozenText, ...this.params.values()]) t?.dispose();
    this.prototypes = null;
    this.frozenText = null;
    this.params.clear();
  }
}

const PRESET_CHOICES = [...Object.keys(DAPT_PRESETS), 'default'];

export const DAPT: MethodSpec = {
  name: 'dapt',
  summary: 'text context + visual prompts after the class token, with inter/intra-dispersion losses (DAPT); --ot-lambda adds Prompt-OT\'s term',
  options: [
    { key: 'nCtx', flag: 'n-ctx', type: 'int', min: 1, help: 'text context vectors (random N(0, 0.02), class token at the end)' },
    { key: 'nCtxVision', flag: 'n-ctx-vision', type: 'int', min: 1, help: 'visual prompts inserted after the class token, after ln_pre' },
    { key: 'preset', flag: 'preset', type: 'string', choices: PRESET_CHOICES, help: 'lr/beta from the official config of this dataset ("default": train.py\'s 3e-4, 0.1, 0.1)' },
    { key: 'lr', flag: 'lr', type: 'float', min: 0, exclusiveMin: true, help: 'SGD learning rate for both prompt sets (default: the preset\'s)' },
    { key: 'betaV', flag: 'beta-v', type: 'float', min: 0, help: 'weight of the intra-dispersion term mean (f - p_y)^2 (0: not computed)' },
    { key: 'betaT', flag: 'beta-t', type: 'float', min: 0, help: 'weight of the inter-dispersion term mean_{i<j} exp(-t |w_i - w_j|^2) (0: not computed)' },
    { key: 'rbfT', flag: 'rbf-t', type: 'float', min: 0, help: 'temperature t of the inter-dispersion kernel' },
    { key: 'otLambda', flag: 'ot-lambda', type: 'float', min: 0, help: 'weight of Prompt-OT\'s transport term on joint [image; class text] features vs the frozen model\'s (0: off)' },
    { key: 'epochs', flag: 'epochs', type: 'int', min: 1, help: 'training epochs (50 for 1 shot, 100 for 2-4, 200 for 8-16; ImageNet 50)' },
    { key: 'batchSize', flag: 'batch-size', type: 'int', min: 1, help: 'images per step' },
    { key: 'momentum', flag: 'momentum', type: 'float', min: 0, help: 'SGD momentum' },
    { key: 'weightDecay', flag: 'weight-decay', type: 'float', min: 0, help: 'SGD weight decay' },
    { key: 'warmupEpochs', flag: 'warmup-epochs', type: 'int', min: 0, help: 'constant warm-up epochs' },
    { key: 'warmupLr', flag: 'warmup-lr', type: 'float', min: 0, help: 'learning rate of the warm-up epochs' },
    { key: 'textChunk', flag: 'text-chunk', type: 'int', min: 1, help: 'classes per text-encoder chunk (bounds memory; the backward re-runs chunks)' },
  ],
  defaults: (ctx: DefaultsContext) => {
    const preset = daptPresetName(ctx.datasetName);
    const h = daptPreset(preset);
    return {
      nCtx: 16,
      nCtxVision: 16,
      preset,
      lr: h.lr,
      betaV: h.betaV,
      betaT: h.betaT,
      rbfT: 2,
      otLambda: 0,
      epochs: coopEpochs(ctx.shots, ctx.datasetName),
      batchSize: 32,
      momentum: 0.9,
      weightDecay: 5e-4,
      warmupEpochs: 1,
      warmupLr: 1e-5,
      textChunk: 128,
    };
  },
  finalize: (opts, given) => {
    // A preset chosen by the user supplies lr and betas unless those are given too.
    if (!given.has('preset')) return;
    const h = daptPreset(opts.preset as string);
    if (!given.has('lr')) opts.lr = h.lr;
    if (!given.has('betaV')) opts.betaV = h.betaV;
    if (!given.has('betaT')) opts.betaT = h.betaT;
  },
  create: (opts) => new DaptMethod(opts),
};

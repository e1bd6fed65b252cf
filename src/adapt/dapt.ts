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
import { indexSelect } from '../ops/index-ops.js';
import { ChunkedEncoder } from '../clip/chunked.js';
import { Rng } from '../clip/rng.js';
import { PromptBank, planCoopPrompts, classPromptText, gaussian, coopEpochs, type CoopPromptOptions } from './coop.js';
import { addToEveryRow, classTokenStates, vptUniformBound } from './deep-prompts.js';
import { otRunSummary, promptOtTerm } from './prompt-ot.js';
import { PHOTO_TEMPLATE } from './ivlp.js';
import { DASSL_SGD_DEFAULTS, DASSL_SGD_OPTIONS, DasslPromptMethod, chunkedText, type ImageBatch } from './prompt-common.js';
import { composeLoss, MethodOptionError, type AdaptMethod, type Classifier, type DefaultsContext, type LossTerm, type MethodEnv, type MethodSpec, type OptionValue, type StepContext, type StepOutput, type StepRecord, type ViewSpec } from './method.js';

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

/** n draws of uniform(−bound, bound) from our generator. */
export function uniformInit(rng: Rng, n: number, bound: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniformRange(-bound, bound);
  return a;
}

// ---------------------------------------------------------------------------------------------
// The method

export class DaptMethod extends DasslPromptMethod implements AdaptMethod<ImageBatch> {
  readonly name = 'dapt';
  readonly params = new Map<string, Tensor>();
  readonly caches: string[];
  private bank: PromptBank | null = null;
  private chunked: ChunkedEncoder | null = null;
  private prototypes: Tensor | null = null;
  private frozenText: Tensor | null = null;
  private logitScale = 100;

  constructor(options: Readonly<Record<string, OptionValue>>) {
    super(options);
    this.caches = [
      `class prototypes: frozen image features of one augmented view (RandomResizedCrop ${this.recipe.cropScale.join("-")} + flip) per training image, per seed`,
      'frozen token embeddings of the class prompts (memory)',
      ...(this.o.otLambda > 0 ? [`frozen class text features "${PHOTO_TEMPLATE}" (OT term)`] : []),
    ];
  }

  private get o() {
    const o = this.options;
    return {
      nCtx: o.nCtx as number,
      nCtxVision: o.nCtxVision as number,
      visionInit: o.visionInit as 'uniform' | 'class-token',
      preset: o.preset as string,
      lr: o.lr as number,
      betaV: o.betaV as number,
      betaT: o.betaT as number,
      rbfT: o.rbfT as number,
      otLambda: o.otLambda as number,
      chunk: o.textChunk as number,
    };
  }

  private promptOptions(): CoopPromptOptions {
    return { nCtx: this.o.nCtx, position: 'end', csc: false, init: null };
  }

  /** The augmented view the prototypes come from (one per run seed). */
  prototypeView(seed: number): ViewSpec {
    return { mode: 'train', scale: this.recipe.cropScale, flipP: 0.5, seed, view: 0 };
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
    const bound = vptUniformBound(patchSize, Wv);
    const vptInit = uniformInit(new Rng(`cliptune-dapt-vpt\u0001${env.seed}`), o.nCtxVision * Wv, bound);
    if (o.visionInit === 'class-token') {
      // The prompts sit after ln_pre, where the class token's state does not depend on the image.
      const [state] = await classTokenStates(model, { layers: 1, where: 'ln_pre' });
      addToEveryRow(vptInit, state!);
    }
    const vpt = keep(tensor(vptInit, [o.nCtxVision, Wv], 'f32', gpu)).param('visual_prompts');
    this.params.set('ctx', ctx);
    this.params.set('visual_prompts', vpt);
    this.logitScale = await noGrad(() => model.logitScale()).item();
    if (this.bank.chunks.length > 1) this.chunked = new ChunkedEncoder((s) => this.bank!.encode(ctx, s / this.bank!.chunk), C, this.bank.chunk);
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
    if (o.otLambda > 0) this.frozenText = keep(tensor(await env.features.textWeights(env.classnames, [PHOTO_TEMPLATE]), [C, E], 'f32', gpu));
  }

  step(b: ImageBatch, _ctx: StepContext): StepOutput {
    const env = this.env!;
    const { model, gpu } = env;
    const o = this.o;
    const res = model.config.image.resolution;
    const ctx = this.params.get('ctx')!;
    const vpt = this.params.get('visual_prompts')!;
    const pixels = tensor(b.pixels, [b.count, 3, res, res], 'f32', gpu);
    const labels = tensor(b.labels, [b.count], 'i32', gpu);
    const f = l2normalize(model.encodeImage(pixels, { insertAfterCls: vpt }).embeds);
    const { text, afterBackward } = chunkedText(this.chunked, () => this.bank!.encode(ctx, 0));
    const w = l2normalize(text);
    const logits = scaleBy(matmul(f, w, { transB: true }), this.logitScale);
    const terms: LossTerm[] = [{ name: 'ce', weight: 1, value: crossEntropy(logits, labels) }];
    // A term with weight 0 is not computed at all (benchmarks time the step without DAPT's terms).
    if (o.betaV > 0) terms.push({ name: 'intra', weight: o.betaV, value: intraDispersionLoss(f, this.prototypes!, labels) });
    if (o.betaT > 0) terms.push({ name: 'inter', weight: o.betaT, value: interDispersionLoss(w, o.rbfT) });
    let otLogs: Record<string, Tensor> = {};
    if (o.otLambda > 0) {
      // Prompt-OT's term (exact plan, η = 0.5) between [f; w_y] and the frozen [f⁰; t⁰_y].
      const image0 = noGrad(() => l2normalize(model.encodeImage(pixels).embeds));
      const ot = promptOtTerm({ image: f, text: w, image0, text0: this.frozenText!, labels, eta: 0.5, lambda: o.otLambda, ot: { solver: 'exact' } });
      terms.push(ot.term);
      otLogs = ot.logs;
    }
    const out = composeLoss(terms);
    return { loss: out.loss, terms: { ...out.terms, ...otLogs }, afterBackward };
  }

  /** With --ot-lambda: the share of steps whose exact OT plan was not the identity, over the whole run. */
  summarizeRun(steps: readonly StepRecord[]): Record<string, number> | null {
    return this.o.otLambda > 0 ? otRunSummary(steps, 'exact') : null;
  }

  async classifier(classnames: readonly string[], env: MethodEnv): Promise<Classifier> {
    const ctx = this.params.get('ctx');
    const vpt = this.params.get('visual_prompts');
    if (!ctx || !vpt || !this.bank) throw new GpuError('dapt: classifier() before prepare()');
    const text = keep(classPromptText(env, this.bank, ctx, classnames, this.promptOptions(), this.o.chunk));
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
    { key: 'visionInit', flag: 'vision-init', type: 'string', choices: ['uniform', 'class-token'], help: "visual prompt init: VPT's uniform ±sqrt(6/(3p²+d)) (DAPT's code), or class-token: the class token's state after ln_pre + that uniform draw" },
    { key: 'preset', flag: 'preset', type: 'string', choices: PRESET_CHOICES, help: 'lr/beta from the official config of this dataset ("default": train.py\'s 3e-4, 0.1, 0.1)' },
    { key: 'lr', flag: 'lr', type: 'float', min: 0, exclusiveMin: true, help: 'SGD learning rate for both prompt sets (default: the preset\'s)' },
    { key: 'betaV', flag: 'beta-v', type: 'float', min: 0, help: 'weight of the intra-dispersion term mean (f - p_y)^2 (0: not computed)' },
    { key: 'betaT', flag: 'beta-t', type: 'float', min: 0, help: 'weight of the inter-dispersion term mean_{i<j} exp(-t |w_i - w_j|^2) (0: not computed)' },
    { key: 'rbfT', flag: 'rbf-t', type: 'float', min: 0, help: 'temperature t of the inter-dispersion kernel' },
    { key: 'otLambda', flag: 'ot-lambda', type: 'float', min: 0, help: 'weight of Prompt-OT\'s transport term on joint [image; class text] features vs the frozen model\'s (0: off)' },
    { key: 'epochs', flag: 'epochs', type: 'int', min: 1, help: 'training epochs (50 for 1 shot, 100 for 2-4, 200 for 8-16; ImageNet 50)' },
    ...DASSL_SGD_OPTIONS,
  ],
  defaults: (ctx: DefaultsContext) => {
    const preset = daptPresetName(ctx.datasetName);
    const h = daptPreset(preset);
    return {
      nCtx: 16,
      nCtxVision: 16,
      visionInit: 'uniform',
      preset,
      lr: h.lr,
      betaV: h.betaV,
      betaT: h.betaT,
      rbfT: 2,
      otLambda: 0,
      epochs: coopEpochs(ctx.shots, ctx.datasetName),
      batchSize: 32,
      ...DASSL_SGD_DEFAULTS,
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

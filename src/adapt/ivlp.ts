// Deep-prompt methods on the DeepPrompts learner (deep-prompts.ts):
//   ivlp: independent vision-language prompting (methods.md 4.4): text and vision prompts, no
//         coupling; defaults = PromptSRC's IVLP config (4+4 tokens, depth 9, init "a photo of a",
//         SGD lr 0.0025, batch 4, 20 epochs, Dassl cosine with 1 constant warm-up epoch at 1e-5).
//   vpt:  deep visual prompts only (4.3; MaPLe repo's "deep vision prompting" baseline: 8 tokens,
//         depth 12, frozen text "a photo of a {}.", SGD lr 0.0025, batch 4, 5 epochs).
// The image tower trains through its prompts, so each step encodes the batch's augmented pixels
// (seeded RandomResizedCrop 0.08-1 + flip, as CoOp's batches), and evaluation encodes test pixels
// (Classifier.embedPixels). Loss CE(s·cos(image, text_c)); a regulariser (Prompt-OT's OT term, or
// any other DeepPromptRegulariser) may add weighted terms from the same step's features.
import { GpuError } from '../gpu/index.js';
import { keep, tensor, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { scale as scaleBy } from '../ops/elementwise.js';
import { matmul } from '../ops/matmul.js';
import { l2normalize } from '../ops/distance.js';
import { crossEntropy } from '../ops/losses.js';
import type { Optimizer } from '../nn/optim.js';
import { ChunkedEncoder } from '../clip/chunked.js';
import type { PromptBank } from './coop.js';
import { DASSL_SGD_DEFAULTS, DASSL_SGD_OPTIONS, DasslPromptMethod, SGD_LR_OPTION, chunkedText, sameClasses, supportPixels, type ImageBatch } from './prompt-common.js';
import { zeroShotWeights } from './zeroshot.js';
import { DeepPrompts, type DeepPromptConfig, type TextDeepInit, type VisionPromptInit } from './deep-prompts.js';
import {
  composeLoss,
  MethodOptionError,
  type AdaptMethod,
  type Classifier,
  type DefaultsContext,
  type LossTerm,
  type MethodEnv,
  type MethodSpec,
  type OptionSpec,
  type OptionValue,
  type StepContext,
  type StepOutput,
  type StepRecord,
} from './method.js';

/** The template of an unprompted text tower (VPT), and Prompt-OT's frozen text (template 0). */
export const PHOTO_TEMPLATE = 'a photo of a {}.';

/** What a regulariser sees of one step (all tensors live for the step; features are on the tape). */
export interface DeepPromptStep {
  /** Augmented pixels [B, 3, R, R]. */
  pixels: Tensor;
  /** Labels [B] (i32) and their host copy. */
  labels: Tensor;
  labelsHost: Int32Array;
  /** Normalised adapted image features [B, E]. */
  image: Tensor;
  /** Normalised adapted text features of every training class [C, E]. */
  text: Tensor;
  logitScale: number;
  ctx: StepContext;
}

/** A separable loss piece a deep-prompt method adds to its CE (composability, issue 6.6). */
export interface DeepPromptRegulariser {
  readonly name: string;
  readonly caches: readonly string[];
  prepare(env: MethodEnv, method: DeepPromptMethod): Promise<void>;
  /** Weighted loss terms, plus scalars to log only. Weight-0 terms are skipped by the regulariser itself. */
  terms(s: DeepPromptStep): { terms: LossTerm[]; logs?: Record<string, Tensor> };
  /** A line for the user on what happened so far (stats), or null. */
  summary?(): Promise<string | null>;
  /** Run-level figures for the report (AdaptMethod.summarizeRun). */
  summarizeRun?(steps: readonly StepRecord[]): Record<string, number> | null;
  dispose(): void;
}

export interface DeepPromptMethodConfig {
  name: string;
  options: Readonly<Record<string, OptionValue>>;
  regulariser?: DeepPromptRegulariser | null;
  /** Prompt options fixed by the method rather than the user (VPT: no text prompts). */
  fixed?: Readonly<Record<string, OptionValue>>;
}

/** DeepPrompts configuration from the shared option keys (VPT fixes the text depth to 0). */
export function deepPromptConfig(o: Readonly<Record<string, OptionValue>>): DeepPromptConfig {
  return {
    text: { tokens: (o.textTokens as number) ?? 4, depth: (o.textDepth as number) ?? 0, init: (o.ctxInit as string) || null, deepInit: ((o.textDeepInit as string) ?? 'normal') as TextDeepInit },
    vision: { tokens: o.visionTokens as number, depth: o.visionDepth as number, init: ((o.visionInit as string) ?? 'normal') as VisionPromptInit },
  };
}

export class DeepPromptMethod extends DasslPromptMethod implements AdaptMethod<ImageBatch> {
  readonly name: string;
  readonly params = new Map<string, Tensor>();
  readonly caches: string[];
  readonly regulariser: DeepPromptRegulariser | null;
  private readonly fixed: Readonly<Record<string, OptionValue>>;
  private prompts_: DeepPrompts | null = null;
  private bank: PromptBank | null = null;
  private chunked: ChunkedEncoder | null = null;
  /** Frozen class features when the text tower is not prompted. */
  private frozenText: Tensor | null = null;
  private logitScale_ = 100;

  constructor(c: DeepPromptMethodConfig) {
    super(c.options);
    this.name = c.name;
    this.regulariser = c.regulariser ?? null;
    this.fixed = c.fixed ?? {};
    this.caches = ['frozen token embeddings of the class prompts (memory)', ...(this.regulariser?.caches ?? [])];
  }

  get prompts(): DeepPrompts {
    if (!this.prompts_) throw new GpuError(`${this.name}: prompts used before prepare()`);
    return this.prompts_;
  }

  get logitScale(): number {
    return this.logitScale_;
  }

  private get o() {
    return { ...this.recipe.o, chunk: this.options.textChunk as number };
  }

  async prepare(env: MethodEnv): Promise<void> {
    this.env = env;
    const { model, tokenizer } = env;
    const o = this.o;
    const prompts = await DeepPrompts.create(model, tokenizer, deepPromptConfig({ ...this.options, ...this.fixed }), env.seed, supportPixels(env));
    if (!prompts.params.size) throw new MethodOptionError(`${this.name}: nothing to learn (both prompt depths are 0)`);
    this.prompts_ = prompts;
    for (const [k, t] of prompts.params) this.params.set(k, t);
    for (const n of prompts.notes) env.log(`  ${this.name}: ${n}`);
    env.log(`  ${this.name}: ${prompts.describe()}`);
    if (o.scheduleEpochs !== o.epochs) env.log(`  ${this.name}: cosine schedule over ${o.scheduleEpochs} epochs, trained and evaluated at epoch ${o.epochs}`);
    const C = env.classnames.length;
    if (prompts.textDepth > 0) {
      this.bank = prompts.textBank(env.classnames, o.chunk);
      if (this.bank.chunks.length > 1) this.chunked = new ChunkedEncoder((s) => prompts.encodeTextChunk(this.bank!, s / this.bank!.chunk), C, this.bank.chunk);
    } else if (env.purpose === 'train') {
      this.frozenText = keep(zeroShotWeights(model, tokenizer, env.classnames, [PHOTO_TEMPLATE]));
    }
    this.logitScale_ = await noGrad(() => model.logitScale()).item();
    if (this.regulariser && env.purpose === 'train') await this.regulariser.prepare(env, this);
  }

  /** Normalised adapted image features [B, E] of pixels (on the tape when the vision tower is prompted). */
  imageFeatures(pixels: Tensor): Tensor {
    if (this.prompts.visionDepth) return l2normalize(this.prompts.encodeImage(pixels).embeds);
    return noGrad(() => l2normalize(this.env!.model.encodeImage(pixels).embeds));
  }

  step(b: ImageBatch, ctx: StepContext): StepOutput {
    const env = this.env!;
    const { model, gpu } = env;
    const res = model.config.image.resolution;
    const pixels = tensor(b.pixels, [b.count, 3, res, res], 'f32', gpu);
    const labels = tensor(b.labels, [b.count], 'i32', gpu);
    const image = this.imageFeatures(pixels);
    let text: Tensor;
    let afterBackward: (() => void) | undefined;
    if (this.frozenText) text = this.frozenText;
    else {
      const t = chunkedText(this.chunked, () => this.prompts.encodeTextChunk(this.bank!, 0));
      text = l2normalize(t.text);
      afterBackward = t.afterBackward;
    }
    const logits = scaleBy(matmul(image, text, { transB: true }), this.logitScale_);
    const ce = crossEntropy(logits, labels);
    if (!this.regulariser) return { loss: ce, afterBackward };
    const extra = this.regulariser.terms({ pixels, labels, labelsHost: b.labels, image, text, logitScale: this.logitScale_, ctx });
    const { loss, terms } = composeLoss([{ name: 'ce', weight: 1, value: ce }, ...extra.terms]);
    return { loss, terms: { ...terms, ...(extra.logs ?? {}) }, afterBackward };
  }

  summarizeRun(steps: readonly StepRecord[]): Record<string, number> | null {
    return this.regulariser?.summarizeRun?.(steps) ?? null;
  }

  async classifier(classnames: readonly string[], env: MethodEnv): Promise<Classifier> {
    const prompts = this.prompts;
    if (this.regulariser?.summary) {
      const line = await this.regulariser.summary();
      if (line) env.log(`  ${this.name}: ${line}`);
    }
    let text: Tensor;
    if (prompts.textDepth > 0) {
      const same = this.bank && sameClasses(classnames, env.classnames);
      if (same) text = keep(prompts.encodeTextAllNoGrad(this.bank!));
      else {
        const bank = prompts.textBank(classnames, this.o.chunk);
        text = keep(prompts.encodeTextAllNoGrad(bank));
        bank.dispose();
      }
    } else text = keep(zeroShotWeights(env.model, env.tokenizer, classnames, [PHOTO_TEMPLATE]));
    const dispose = () => text.dispose();
    if (!prompts.visionDepth) {
      const proj = env.model.param('visual.proj');
      return { text, scale: this.logitScale_, embedPooled: (p) => matmul(p, proj), dispose };
    }
    return { text, scale: this.logitScale_, embedPixels: (p) => prompts.encodeImage(p).embeds, dispose };
  }

  dispose(): void {
    this.regulariser?.dispose();
    this.bank?.dispose();
    this.bank = null;
    this.frozenText?.dispose();
    this.frozenText = null;
    this.prompts_?.dispose();
    this.prompts_ = null;
    this.params.clear();
  }
}

// ---- options ----

const TEXT_OPTIONS: readonly OptionSpec[] = [
  { key: 'textTokens', flag: 'text-tokens', type: 'int', min: 1, help: 'text prompt vectors per prompted layer (M_t)' },
  { key: 'textDepth', flag: 'text-depth', type: 'int', min: 0, help: 'prompted text layers J_t, layer 0 included (clamped to the model; 0: frozen "a photo of a {}." text)' },
  { key: 'ctxInit', flag: 'ctx-init', type: 'string', help: 'words initialising the layer-0 text prompts ("a photo of a"); empty: N(0, 0.02)' },
  { key: 'textDeepInit', flag: 'text-deep-init', type: 'string', choices: ['normal', 'frozen'], help: "init of the text prompts of layers 1..J_t-1: N(0, 0.02) (IVLP's code), or frozen: the frozen tower's states at the positions they replace (the text tower starts as the shallow-prompted one)" },
];

const VISION_OPTIONS: readonly OptionSpec[] = [
  { key: 'visionTokens', flag: 'vision-tokens', type: 'int', min: 1, help: 'vision prompt vectors per prompted layer (M_v)' },
  { key: 'visionDepth', flag: 'vision-depth', type: 'int', min: 0, help: 'prompted vision layers J_v, layer 0 included (clamped to the model)' },
  { key: 'visionInit', flag: 'vision-init', type: 'string', choices: ['normal', 'uniform', 'class-token'], help: "vision prompt init: N(0, 0.02) (IVLP's code), VPT's uniform ±sqrt(6/(3p²+d)), or class-token: the class token's state where the prompts enter (layer 0: its embedding; deeper: its mean over the training images) + N(0, 0.02)" },
];

const TRAIN_OPTIONS: readonly OptionSpec[] = [
  { key: 'epochs', flag: 'epochs', type: 'int', min: 1, help: 'training epochs (the run is evaluated after the last)' },
  { key: 'scheduleEpochs', flag: 'schedule-epochs', type: 'int', min: 0, help: "length of the cosine schedule (0: --epochs); longer than --epochs stops a longer run's schedule early" },
  SGD_LR_OPTION,
  ...DASSL_SGD_OPTIONS,
];

export const DEEP_PROMPT_OPTIONS: readonly OptionSpec[] = [...TEXT_OPTIONS, ...VISION_OPTIONS, ...TRAIN_OPTIONS];

const DASSL_SGD = { ...DASSL_SGD_DEFAULTS, scheduleEpochs: 0 } as const;

export function validateSchedule(opts: Record<string, OptionValue>): void {
  const s = opts.scheduleEpochs as number;
  if (s && s < (opts.epochs as number)) throw new MethodOptionError(`--schedule-epochs ${s} must be 0 or >= --epochs ${opts.epochs}`);
}

/** PromptSRC's IVLP config (vit_b16_c2_ep20_batch4_4+4ctx): 4+4 tokens, depth 9, lr 0.0025, 20 epochs, batch 4. */
export const IVLP: MethodSpec = {
  name: 'ivlp',
  summary: 'independent vision-language deep prompts (IVLP): text prompts at positions 1..M and vision prompts after the patches, replaced before every prompted layer',
  options: DEEP_PROMPT_OPTIONS,
  defaults: (_ctx: DefaultsContext) => ({
    textTokens: 4,
    textDepth: 9,
    ctxInit: 'a photo of a',
    textDeepInit: 'normal',
    visionTokens: 4,
    visionDepth: 9,
    visionInit: 'normal',
    epochs: 20,
    lr: 0.0025,
    batchSize: 4,
    ...DASSL_SGD,
  }),
  validate: (opts) => {
    validateSchedule(opts);
    if (!opts.textDepth && !opts.visionDepth) throw new MethodOptionError('ivlp: --text-depth and --vision-depth are both 0: nothing to learn');
  },
  create: (opts) => new DeepPromptMethod({ name: 'ivlp', options: opts }),
};

/** MaPLe repo's deep vision prompting baseline: 8 tokens, depth 12, lr 0.0025, 5 epochs, batch 4; text frozen. */
export const VPT: MethodSpec = {
  name: 'vpt',
  summary: 'deep visual prompts (VPT-deep): vision prompts after the patches replaced before every prompted layer; frozen "a photo of a {}." text',
  options: [...VISION_OPTIONS, ...TRAIN_OPTIONS],
  defaults: (_ctx: DefaultsContext) => ({
    visionTokens: 8,
    visionDepth: 12,
    visionInit: 'normal',
    epochs: 5,
    lr: 0.0025,
    batchSize: 4,
    ...DASSL_SGD,
  }),
  validate: validateSchedule,
  create: (opts) => new DeepPromptMethod({ name: 'vpt', options: opts, fixed: { textTokens: 1, textDepth: 0, ctxInit: '' } }),
};

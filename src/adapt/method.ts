// The method interface: what an adaptation method (zero-shot, linear probe, CoOp, ProLIP, and the
// prompt methods of the next issue) tells the training loop. A method
//   - declares its options with their official defaults (printed at the start of a run),
//   - owns its learned tensors (`params`, the checkpoint's contents) and says what it caches,
//   - builds the loss of one step from one batch (`step`), in any way it likes: a frozen teacher
//     pass on the same pixels, a class subset drawn from the step's own generator, a GPU-side
//     solver, a chunked text encoder whose backward runs after the loss's (`afterBackward`),
//     regularisers composed from separate terms (`composeLoss`);
//   - gives the loop its optimiser, learning rate per (epoch, step), and batches per epoch, so the
//     loop can resume at any (epoch, step) bit-identically;
//   - builds a classifier for evaluation on any class list (base, novel, all).
import type { Gpu } from '../gpu/index.js';
import { GpuError } from '../gpu/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { add, scale } from '../ops/elementwise.js';
import type { Optimizer } from '../nn/optim.js';
import type { ClipModel } from '../clip/model.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';
import type { Rng } from '../clip/rng.js';

/** One labelled image of a training or evaluation list (labels in that list's class space). */
export interface ImageItem {
  impath: string;
  label: number;
}

/** How images are turned into pixels before the frozen encoder: CLIP's test transform or a seeded augmented view. */
export type ViewSpec =
  | { mode: 'test' }
  | { mode: 'train'; scale: readonly [number, number]; flipP: number; seed: number; view: number };

/** Frozen-encoder features, cached on disk (src/train/features.ts implements this). */
export interface FeatureSource {
  /** Pre-projection image features ln_post(class token) [items, W], in item order. */
  pooled(items: readonly ImageItem[], view: ViewSpec): Promise<Float32Array>;
  /** Normalised class text features [classes, E] from a template ensemble (CLIP's recipe). */
  textWeights(classnames: readonly string[], templates: readonly string[]): Promise<Float32Array>;
}

/** What a method may use while preparing and training. */
export interface MethodEnv {
  gpu: Gpu;
  model: ClipModel;
  tokenizer: ClipTokenizer;
  /** Dassl dataset name (templates), e.g. "OxfordPets"; unknown names get "a photo of a {}.". */
  datasetName: string;
  /** Training classes by label (base classes only in base-to-novel runs). */
  classnames: readonly string[];
  /** Few-shot training images. */
  train: readonly ImageItem[];
  /** Few-shot validation images (null when the dataset has none). */
  val: readonly ImageItem[] | null;
  shots: number;
  seed: number;
  features: FeatureSource;
  /** 'eval': only the classifier will be asked for (skip training caches); the learned tensors are loaded after prepare(). */
  purpose: 'train' | 'eval';
  /** Messages for the user (stderr). */
  log: (message: string) => void;
}

/** How many epochs and steps; `unit` says what the user's "epoch" means (ProLIP: one full-batch step). */
export interface TrainPlan {
  epochs: number;
  stepsPerEpoch: number;
  /** Images per step (for the throughput figure). */
  imagesPerStep: number;
}

/** What the loop hands a step besides its batch. */
export interface StepContext {
  epoch: number;
  stepInEpoch: number;
  globalStep: number;
  /** A generator keyed by (seed, global step): per-step randomness (class subsets) that replays on resume. */
  rng: Rng;
}

export interface StepOutput {
  /** The scalar to minimise (recorded on the tape). */
  loss: Tensor;
  /** Named scalar parts for the log (e.g. ce, reg); read back with the loss, never differentiated. */
  terms?: Record<string, Tensor>;
  /** Runs after loss.backward() (e.g. ChunkedEncoder.backward(), which re-runs chunks with the tape). */
  afterBackward?: () => void;
}

/**
 * An evaluation head. Cosine heads give normalised class weights `text`, the logit `scale`, and image
 * embeddings (from cached pre-projection features, or from pixels for methods that change the image
 * tower); linear heads give `logitsPooled` instead.
 */
export interface Classifier {
  /** Normalised class weights [C, E]. */
  text?: Tensor;
  /** Logit scale (exp(logit_scale): 100 for released CLIP weights). */
  scale?: number;
  /** Image embeddings [B, E] (not normalised) from cached pre-projection features [B, W]. */
  embedPooled?: (pooled: Tensor) => Tensor;
  /** Image embeddings [B, E] from pixels [B, 3, R, R] (visual prompts). */
  embedPixels?: (pixels: Tensor) => Tensor;
  /** Class logits [B, C] straight from pre-projection features (linear heads). */
  logitsPooled?: (pooled: Tensor) => Tensor;
  dispose(): void;
}

export interface AdaptMethod<B = unknown> {
  readonly name: string;
  /** The resolved options (defaults filled in), as stored in the run and printed. */
  readonly options: Readonly<Record<string, OptionValue>>;
  /** Learned tensors by checkpoint name, in a fixed order (the optimiser's parameter order). Empty for zero-shot. */
  readonly params: ReadonlyMap<string, Tensor>;
  /** Human-readable list of what the method caches (for the printed configuration and the report). */
  readonly caches: readonly string[];
  /** Computes caches and initial tensors. Must be deterministic in (options, env). */
  prepare(env: MethodEnv): Promise<void>;
  plan(): TrainPlan;
  createOptimizer(): Optimizer;
  /** The learning rate for a step (per-epoch schedules ignore the step). */
  learningRate(epoch: number, stepInEpoch: number, globalStep: number): number;
  /** The batches of one epoch from `startStep` on (resume mid-epoch), determined by (seed, epoch) alone. */
  batches(epoch: number, startStep: number): AsyncIterable<B>;
  step(batch: B, ctx: StepContext): StepOutput;
  /** An evaluation head for `classnames` (training classes, novel classes, ...). */
  classifier(classnames: readonly string[], env: MethodEnv): Promise<Classifier>;
  /**
   * Run-level figures of the method's own terms for report.json / report.md (e.g. Prompt-OT's share
   * of steps whose exact plan was not the identity), from the logged scalars of every step of the
   * whole run, a resumed run's earlier steps included, each step once. Null: nothing to report.
   */
  summarizeRun?(steps: readonly StepRecord[]): Record<string, number> | null;
  /** Frees the method's tensors and the batches' resources. */
  dispose(): void;
}

/** One step's logged scalars (log.jsonl "step" lines): step, epoch, lr, loss, each StepOutput term, grad_sq. */
export type StepRecord = Readonly<Record<string, number>>;

export type OptionValue = number | string | boolean | null;

/** A method option as the CLI sees it: --flag VALUE. */
export interface OptionSpec {
  /** Key in the options record (camelCase). */
  key: string;
  /** Command-line flag without dashes (kebab-case). */
  flag: string;
  type: 'int' | 'float' | 'string' | 'bool';
  choices?: readonly string[];
  help: string;
  /** Smallest accepted value for numbers. */
  min?: number;
  /** Whether the value must be strictly greater than `min`. */
  exclusiveMin?: boolean;
}

/** What decides a method's default configuration. */
export interface DefaultsContext {
  shots: number;
  datasetName: string;
  baseToNovel: boolean;
}

export interface MethodSpec {
  name: string;
  summary: string;
  options: readonly OptionSpec[];
  /** The official configuration for this context (every option key present). */
  defaults(ctx: DefaultsContext): Record<string, OptionValue>;
  /** Derives dependent defaults from the options the user gave (`given`: option keys), in place. */
  finalize?(opts: Record<string, OptionValue>, given: ReadonlySet<string>): void;
  /** Checks combinations the types cannot (throws MethodOptionError naming the flags). */
  validate?(opts: Record<string, OptionValue>, ctx: DefaultsContext): void;
  create(opts: Record<string, OptionValue>, ctx: DefaultsContext): AdaptMethod;
}

export class MethodOptionError extends Error {
  override name = 'MethodOptionError';
}

/** Parses a flag's text into its option type; errors name the flag and what was expected. */
export function parseOptionValue(spec: OptionSpec, text: string | boolean): OptionValue {
  const flag = `--${spec.flag}`;
  if (spec.type === 'bool') {
    if (typeof text === 'boolean') return text;
    if (text === 'true' || text === '1') return true;
    if (text === 'false' || text === '0') return false;
    throw new MethodOptionError(`${flag} takes no value or true/false, got "${text}"`);
  }
  if (typeof text === 'boolean') throw new MethodOptionError(`${flag} needs a value`);
  if (spec.type === 'string') {
    if (spec.choices && !spec.choices.includes(text)) throw new MethodOptionError(`${flag} must be one of ${spec.choices.join(', ')}, got "${text}"`);
    return text;
  }
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v)) throw new MethodOptionError(`${flag} must be a number, got "${text}"`);
  if (spec.type === 'int' && !Number.isInteger(v)) throw new MethodOptionError(`${flag} must be an integer, got "${text}"`);
  if (spec.min !== undefined && (v < spec.min || (spec.exclusiveMin && v === spec.min))) {
    throw new MethodOptionError(`${flag} must be ${spec.exclusiveMin ? '>' : '>='} ${spec.min}, got ${text}`);
  }
  return v;
}

/** A weighted loss term (regularisers are composed from these). */
export interface LossTerm {
  name: string;
  weight: number;
  value: Tensor;
}

/**
 * Σ weight·value over the terms (the total keeps the tape), plus each unweighted value by name for
 * the log. Terms with weight 0 are logged but not added.
 */
export function composeLoss(terms: readonly LossTerm[]): { loss: Tensor; terms: Record<string, Tensor> } {
  if (!terms.length) throw new GpuError('composeLoss: no terms');
  const named: Record<string, Tensor> = {};
  let total: Tensor | null = null;
  for (const t of terms) {
    if (named[t.name]) throw new GpuError(`composeLoss: two terms named "${t.name}"`);
    if (t.value.size !== 1) throw new GpuError(`composeLoss: term "${t.name}" is ${t.value.describe()}, not a scalar`);
    if (!Number.isFinite(t.weight)) throw new GpuError(`composeLoss: term "${t.name}" has weight ${t.weight}`);
    named[t.name] = t.value;
    if (t.weight === 0) continue;
    const w = t.weight === 1 ? t.value : scale(t.value, t.weight);
    total = total ? add(total, w) : w;
  }
  if (!total) throw new GpuError('composeLoss: every term has weight 0');
  return { loss: total, terms: named };
}

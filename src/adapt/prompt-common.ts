// What the prompt methods (CoOp, RPP, DAPT, IVLP/VPT/Prompt-OT) share: CoOp's Dassl training recipe
// (SGD with momentum and weight decay over the learned tensors; a cosine schedule stepped per epoch
// with constant warm-up; drop_last batches of seeded RandomResizedCrop + flip views), the chunked
// text forward, the word-embedding init of context vectors, and the option specs they declare alike.
import { keep, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { SGD, type Optimizer } from '../nn/optim.js';
import { dasslCosineSchedule } from '../nn/schedule.js';
import type { ClipModel } from '../clip/model.js';
import type { ChunkedEncoder } from '../clip/chunked.js';
import { DASSL_RRC_SCALE } from '../clip/augment.js';
import { DecodeMemo } from '../train/features.js';
import { Rng } from '../clip/rng.js';
import type { RgbImage } from '../clip/rgb-image.js';
import { ImageLoader } from '../data/loader-node.js';
import type { ImageItem, MethodEnv, OptionSpec, OptionValue, TrainPlan } from './method.js';
import type { SupportPixels } from './deep-prompts.js';

/** A batch of augmented training images. */
export interface ImageBatch {
  pixels: Float32Array;
  labels: Int32Array;
  count: number;
}

/** Dassl's training batches per epoch: drop_last when the set holds at least one full batch. */
export function dasslStepsPerEpoch(items: number, batch: number): number {
  return items >= batch ? Math.floor(items / batch) : items > 0 ? 1 : 0;
}

/** Fisher-Yates with our Rng (the visiting order of one epoch). */
export function shuffledOrder(n: number, rng: Rng): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.randint(0, i + 1);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/** The generator of epoch `epoch` of a run with `seed`: shuffling, then one fork per visited image (its augmentation). */
export function epochRng(seed: number, epoch: number): Rng {
  return new Rng(`cliptune-epoch\u0001${seed}\u0001${epoch}`);
}

/**
 * The augmented training batches of one epoch, from batch `startStep` on. Everything is decided by
 * (seed, epoch): skipping k batches advances the generator by the forks those images would have taken.
 */
export async function* imageBatches(
  items: readonly { impath: string; label: number }[],
  o: { seed: number; epoch: number; startStep: number; batch: number; size: number; scale: readonly [number, number]; decode: (p: string) => Promise<RgbImage> },
): AsyncGenerator<ImageBatch> {
  const rng = epochRng(o.seed, o.epoch);
  const order = shuffledOrder(items.length, rng);
  const steps = dasslStepsPerEpoch(items.length, o.batch);
  const used = items.length >= o.batch ? steps * o.batch : items.length;
  const skip = Math.min(used, o.startStep * o.batch);
  for (let i = 0; i < skip; i++) rng.fork();
  const rest = order.slice(skip, used).map((i) => items[i]!);
  if (!rest.length) return;
  const loader = new ImageLoader(rest, { batchSize: o.batch, mode: 'train', size: o.size, rng, shuffle: false, augment: { scale: o.scale, flipP: 0.5 }, decode: o.decode });
  for await (const b of loader) yield { pixels: b.images, labels: b.labels, count: b.count };
}

export interface DasslRecipeOptions {
  epochs: number;
  /** Length of the cosine (default `epochs`; longer stops a longer run's schedule early). */
  scheduleEpochs?: number;
  lr: number;
  batch: number;
  momentum: number;
  weightDecay: number;
  warmupEpochs: number;
  warmupLr: number;
  /** Smallest RandomResizedCrop area fraction of the training views (Dassl: 0.08). */
  cropMin: number;
}

/** The recipe's values from the shared option keys (epochs, lr, batchSize, momentum, weightDecay, warmupEpochs, warmupLr, scheduleEpochs). */
export function dasslRecipeOptions(o: Readonly<Record<string, OptionValue>>): DasslRecipeOptions {
  const epochs = o.epochs as number;
  return {
    epochs,
    scheduleEpochs: (o.scheduleEpochs as number | undefined) || epochs,
    lr: o.lr as number,
    batch: o.batchSize as number,
    momentum: o.momentum as number,
    weightDecay: o.weightDecay as number,
    warmupEpochs: o.warmupEpochs as number,
    warmupLr: o.warmupLr as number,
    cropMin: (o.cropMin as number | undefined) ?? DASSL_RRC_SCALE[0],
  };
}

/** CoOp's training recipe (Dassl): the AdaptMethod parts plan, createOptimizer, learningRate and batches. */
export class DasslRecipe {
  private lrTable: number[] | null = null;
  private readonly decode = new DecodeMemo().decode;

  constructor(readonly o: DasslRecipeOptions) {}

  plan(trainItems: number): TrainPlan {
    const { epochs, batch } = this.o;
    return { epochs, stepsPerEpoch: dasslStepsPerEpoch(trainItems, batch), imagesPerStep: Math.min(trainItems, batch) };
  }

  optimizer(params: Iterable<Tensor>): Optimizer {
    const o = this.o;
    return new SGD([...params], { lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay });
  }

  /** The per-epoch cosine (the last value past its end). */
  learningRate(epoch: number): number {
    const o = this.o;
    this.lrTable ??= dasslCosineSchedule({ baseLr: o.lr, maxEpoch: o.scheduleEpochs ?? o.epochs, warmupEpochs: o.warmupEpochs, warmupType: 'constant', warmupLr: o.warmupLr }, o.epochs);
    const t = this.lrTable;
    return t[epoch] ?? t[t.length - 1]!;
  }

  /** The training views' crop scale range: [cropMin, 1] (Dassl: [0.08, 1]). */
  get cropScale(): readonly [number, number] {
    return [this.o.cropMin, DASSL_RRC_SCALE[1]];
  }

  /** Augmented views (RandomResizedCrop cropMin-1 + flip) of one epoch from batch `startStep` on, decided by (seed, epoch). */
  batches(train: readonly ImageItem[], seed: number, size: number, epoch: number, startStep: number): AsyncIterable<ImageBatch> {
    return imageBatches(train, { seed, epoch, startStep, batch: this.o.batch, size, scale: this.cropScale, decode: this.decode });
  }
}

/** Training images a data-dependent init reads: a seeded sample of at most this many. */
const SUPPORT_MAX_IMAGES = 256;

/**
 * The training images under the test transform (resize + centre crop), a seeded sample of at most
 * SUPPORT_MAX_IMAGES in the training set's order, for data-dependent prompt inits (the class
 * token's mean state); read only if the init asks. Undefined when the method is prepared for
 * evaluation (the checkpoint replaces the init).
 */
export function supportPixels(env: MethodEnv): SupportPixels | undefined {
  if (env.purpose !== 'train') return undefined;
  const items = env.train;
  let chosen = items;
  if (items.length > SUPPORT_MAX_IMAGES) {
    const order = shuffledOrder(items.length, new Rng(`cliptune-support-sample\u0001${env.seed}`));
    chosen = order.slice(0, SUPPORT_MAX_IMAGES).sort((a, b) => a - b).map((i) => items[i]!);
  }
  const size = env.model.config.image.resolution;
  return async function* () {
    const loader = new ImageLoader(chosen, { batchSize: 64, mode: 'test', size, shuffle: false, decode: new DecodeMemo().decode });
    for await (const b of loader) yield { pixels: b.images, count: b.count };
  };
}

/**
 * A prompt method trained with the Dassl recipe: plan, optimiser, learning rate and batches come
 * from its options; subclasses set `env` in prepare() and fill `params`.
 */
export abstract class DasslPromptMethod {
  abstract readonly params: ReadonlyMap<string, Tensor>;
  protected env: MethodEnv | null = null;
  protected readonly recipe: DasslRecipe;

  constructor(readonly options: Readonly<Record<string, OptionValue>>) {
    this.recipe = new DasslRecipe(dasslRecipeOptions(options));
  }

  plan(): TrainPlan {
    return this.recipe.plan(this.env?.train.length ?? 0);
  }

  /** One SGD over every learned tensor. */
  createOptimizer(): Optimizer {
    return this.recipe.optimizer(this.params.values());
  }

  learningRate(epoch: number): number {
    return this.recipe.learningRate(epoch);
  }

  batches(epoch: number, startStep: number): AsyncIterable<ImageBatch> {
    const env = this.env!;
    return this.recipe.batches(env.train, env.seed, env.model.config.image.resolution, epoch, startStep);
  }
}

/**
 * Text features on the tape: through `chunked` (forward now, its backward after the loss's) when
 * given, else `whole()`.
 */
export function chunkedText(chunked: ChunkedEncoder | null, whole: () => Tensor): { text: Tensor; afterBackward?: () => void } {
  if (!chunked) return { text: whole() };
  return { text: keep(chunked.forward()), afterBackward: () => chunked.backward() };
}

/** The token embeddings [n·W] (host) of init words' ids: what word-initialised context vectors start from. */
export async function wordEmbeddings(model: ClipModel, ids: readonly number[]): Promise<Float32Array> {
  const i32 = Int32Array.from(ids);
  const e = noGrad(() => model.tokenEmbeddings({ ids: i32, rows: 1, length: i32.length }));
  const v = (await e.read()) as Float32Array;
  e.dispose();
  return v;
}

/** Whether an evaluation class list is the training one (its prompts are already built). */
export function sameClasses(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((c, i) => c === b[i]);
}

/** CoOp's Dassl configuration of the recipe's remaining options (momentum, weight decay, one constant warm-up epoch at 1e-5) and the text chunk. */
export const DASSL_SGD_DEFAULTS = { momentum: 0.9, weightDecay: 5e-4, warmupEpochs: 1, warmupLr: 1e-5, cropMin: DASSL_RRC_SCALE[0], textChunk: 128 } as const;

/** The SGD learning-rate option as CoOp, RPP and the deep-prompt methods state it. */
export const SGD_LR_OPTION: OptionSpec = { key: 'lr', flag: 'lr', type: 'float', min: 0, exclusiveMin: true, help: 'SGD learning rate (Dassl cosine, stepped per epoch)' };

/** The recipe's remaining options and the text chunk, in the order every prompt method lists them. */
export const DASSL_SGD_OPTIONS: readonly OptionSpec[] = [
  { key: 'batchSize', flag: 'batch-size', type: 'int', min: 1, help: 'images per step' },
  { key: 'momentum', flag: 'momentum', type: 'float', min: 0, help: 'SGD momentum' },
  { key: 'weightDecay', flag: 'weight-decay', type: 'float', min: 0, help: 'SGD weight decay' },
  { key: 'warmupEpochs', flag: 'warmup-epochs', type: 'int', min: 0, help: 'constant warm-up epochs' },
  { key: 'warmupLr', flag: 'warmup-lr', type: 'float', min: 0, help: 'learning rate of the warm-up epochs' },
  // Dassl's 0.08 suits photos whose object fills the frame; small objects anywhere in the frame (the
  // world's 32 px shapes) are often cropped away at that scale, so the range is an option.
  { key: 'cropMin', flag: 'crop-min', type: 'float', min: 0, exclusiveMin: true, help: 'smallest RandomResizedCrop area fraction of the training views (Dassl 0.08; 1 = flips only)' },
  { key: 'textChunk', flag: 'text-chunk', type: 'int', min: 1, help: 'classes per text-encoder chunk (bounds memory; the backward re-runs chunks)' },
];

// The demo's methods: one entry per method, with the demo preset's options. The preset gives every
// method the same number of optimiser steps of the same batch size (32), its official learning rate x DEMO_LR_FACTOR (the demo
// trains a small fraction of the official schedules), at most 16 ProLIP views, vision prompt counts
// scaled to the model's patches, the prompt inits below, and otherwise the official defaults
// (`cliptune train --help`). An entry whose method
// the registry does not have is skipped with a note, so methods plug in as they land; a preset
// option the method does not declare is left out (and listed).
import type { MethodSpec, OptionValue } from '../adapt/method.js';
import { dasslStepsPerEpoch } from '../adapt/coop.js';

/** How a method is trained and evaluated in the demo. */
export type DemoProtocol =
  /** Base-to-novel: trained on the base classes, evaluated on base and novel. */
  | 'base-to-novel'
  /** Trained and evaluated on the base classes only (a linear head has no novel-class weights). */
  | 'base-only';

export interface DemoMethod {
  name: string;
  protocol: DemoProtocol;
  /** Trains with a regulariser towards the zero-shot model (its novel-class change is the question). */
  regularised: boolean;
  /** Demo-preset option values by flag (only those the method declares are passed). */
  preset: Record<string, string>;
  /** Why the preset differs from the official defaults (printed). */
  why?: string;
  /** The flag of the method's vision prompt count, scaled to the model (scaledVisionPrompts). */
  visionPromptsFlag?: string;
}

/**
 * The demo trains a small fraction of the official schedules (60 steps where CoOp's 16-shot recipe
 * takes 2,400), so every method's learning rate is its official one times this factor: one rule for
 * all methods, no per-method tuning.
 */
export const DEMO_LR_FACTOR = 10;
/** Images per step for every method (CoOp, DAPT and RPP use 32 officially; IVLP and Prompt-OT 4). */
export const DEMO_BATCH = 32;
/**
 * The smallest RandomResizedCrop area the demo asks for where a method has `--crop-min` (1: no crop,
 * flips only): the world CLIP was pretrained on whole images, and crops of its 32 px images cut
 * the object off (docs/demo.md).
 */
export const DEMO_CROP_MIN = '1';
export const DEMO_MAX_VIEWS = 16;
/**
 * Vision prompts start as the class token's state (+ the official N(0, 0.02) or uniform draw)
 * instead of the draw alone: random tokens cost the 4-layer, 17-token world CLIP 12-19 points
 * before any training (docs/demo.md). Not an official init; labelled in the output.
 */
export const DEMO_VISION_INIT = 'class-token';
/** Deep text prompts start as the frozen tower's states at their positions (exact: the text tower starts unchanged). Not official; labelled. */
export const DEMO_TEXT_DEEP_INIT = 'frozen';

/** Patches of ViT-B/16 at 224 px: the image sequence the official vision prompt counts were chosen for. */
export const VIT_B16_PATCHES = 196;

/**
 * A vision prompt count chosen for ViT-B/16, scaled to a model with `patches` patches so the prompts
 * keep their share of the image sequence: max(1, round(M·N/196)). ViT-B/16 keeps M; the world CLIP
 * (16 patches) gets 1 for IVLP's and Prompt-OT's 4 and DAPT's 16. Four tokens beside 16 patches are
 * a fifth of the sequence, where ViT-B/16 gives them 2%, and cost IVLP, Prompt-OT and DAPT their
 * gain over zero-shot (docs/demo.md). Depths are clamped to the model's layers the same way.
 */
export function scaledVisionPrompts(official: number, patches: number): number {
  if (!(Number.isInteger(official) && official >= 1)) throw new Error(`scaledVisionPrompts: official count ${official} must be a positive integer`);
  if (!(Number.isInteger(patches) && patches >= 1)) throw new Error(`scaledVisionPrompts: patch count ${patches} must be a positive integer`);
  return Math.max(1, Math.round((official * patches) / VIT_B16_PATCHES));
}

export const DEMO_METHODS: readonly DemoMethod[] = [
  { name: 'zeroshot', protocol: 'base-to-novel', regularised: false, preset: {} },
  // The official C search (7-point grid + 8 bisection steps, 1000 L-BFGS iterations per fit) costs
  // more than all prompt methods together here; the demo keeps the grid and caps the iterations.
  { name: 'linear-probe', protocol: 'base-only', regularised: false, preset: { 'search-steps': '0', 'max-iter': '100' }, why: 'L-BFGS, no SGD steps; C from the 7-point grid on the val split; base classes only' },
  { name: 'coop', protocol: 'base-to-novel', regularised: false, preset: { 'crop-min': DEMO_CROP_MIN } },
  { name: 'prolip', protocol: 'base-to-novel', regularised: true, preset: { 'crop-min': DEMO_CROP_MIN } },
  { name: 'ivlp', protocol: 'base-to-novel', regularised: false, preset: { 'crop-min': DEMO_CROP_MIN, 'vision-init': DEMO_VISION_INIT, 'text-deep-init': DEMO_TEXT_DEEP_INIT }, visionPromptsFlag: 'vision-tokens' },
  { name: 'prompt-ot', protocol: 'base-to-novel', regularised: true, preset: { 'crop-min': DEMO_CROP_MIN, 'vision-init': DEMO_VISION_INIT, 'text-deep-init': DEMO_TEXT_DEEP_INIT }, visionPromptsFlag: 'vision-tokens' },
  { name: 'dapt', protocol: 'base-to-novel', regularised: true, preset: { 'crop-min': DEMO_CROP_MIN, 'vision-init': DEMO_VISION_INIT }, visionPromptsFlag: 'n-ctx-vision' },
  // RPP's default (shallow) variant has no vision prompts.
  { name: 'rpp', protocol: 'base-to-novel', regularised: true, preset: { 'crop-min': DEMO_CROP_MIN } },
];

export function demoMethod(name: string): DemoMethod | undefined {
  return DEMO_METHODS.find((m) => m.name === name);
}

export interface BudgetContext {
  /** Optimiser steps every trained method gets. */
  steps: number;
  /** Learning rate = the method's official one x lrFactor. */
  lrFactor: number;
  shots: number;
  /** Few-shot training images (training classes x shots). */
  trainImages: number;
  datasetName: string;
  /** Image patches of the model (vision prompt counts are scaled to it). */
  patches: number;
}

export interface ResolvedFlags {
  /** Extra `cliptune train` arguments for this method. */
  args: string[];
  /** Optimiser steps the arguments give (null: the method has no steps, e.g. L-BFGS or zero-shot). */
  steps: number | null;
  /** Preset options the method does not declare (so not passed), by flag. */
  missing: string[];
  /** Flags given, with values (printed). */
  given: Record<string, string>;
}

function hasFlag(spec: MethodSpec, flag: string): boolean {
  return spec.options.some((o) => o.flag === flag);
}

/**
 * The arguments that give `entry` the demo budget: `--steps N` for step-counted methods, else
 * `--epochs E` with E = round(N / steps per epoch) (Dassl's drop_last batching at the method's
 * default batch size), then the preset's options the method declares.
 */
export function demoFlags(entry: DemoMethod, spec: MethodSpec, ctx: BudgetContext): ResolvedFlags {
  const given: Record<string, string> = {};
  let steps: number | null = null;
  const defaults: Record<string, OptionValue> = spec.defaults({ shots: ctx.shots, datasetName: ctx.datasetName, baseToNovel: entry.protocol === 'base-to-novel' });
  if (hasFlag(spec, 'steps')) {
    given.steps = String(ctx.steps);
    steps = ctx.steps;
    if (hasFlag(spec, 'views')) {
      const views = Math.min(DEMO_MAX_VIEWS, ctx.steps, Number(defaults.views ?? DEMO_MAX_VIEWS));
      given.views = String(views);
    }
  } else if (hasFlag(spec, 'epochs')) {
    // Same steps and same images per step: the batch size is part of the budget.
    if (hasFlag(spec, 'batch-size')) given['batch-size'] = String(DEMO_BATCH);
    const batch = hasFlag(spec, 'batch-size') ? DEMO_BATCH : Number(defaults.batchSize ?? DEMO_BATCH);
    const perEpoch = dasslStepsPerEpoch(ctx.trainImages, batch);
    const epochs = Math.max(1, Math.round(ctx.steps / Math.max(1, perEpoch)));
    given.epochs = String(epochs);
    steps = epochs * perEpoch;
    // A schedule longer than the run (Prompt-OT: 40-epoch cosine, evaluated at 30) keeps its ratio.
    const sched = Number(defaults.scheduleEpochs ?? 0);
    const officialEpochs = Number(defaults.epochs ?? 0);
    if (sched > 0 && officialEpochs > 0 && hasFlag(spec, 'schedule-epochs')) given['schedule-epochs'] = String(Math.max(epochs, Math.round((epochs * sched) / officialEpochs)));
  }
  if (steps !== null && hasFlag(spec, 'lr') && typeof defaults.lr === 'number') given.lr = String(Number((defaults.lr * ctx.lrFactor).toPrecision(6)));
  const missing: string[] = [];
  const vp = entry.visionPromptsFlag ? spec.options.find((o) => o.flag === entry.visionPromptsFlag) : undefined;
  if (entry.visionPromptsFlag && !vp) missing.push(entry.visionPromptsFlag);
  if (vp && typeof defaults[vp.key] === 'number') given[vp.flag] = String(scaledVisionPrompts(defaults[vp.key] as number, ctx.patches));
  for (const [flag, value] of Object.entries(entry.preset)) {
    if (hasFlag(spec, flag)) given[flag] = value;
    else missing.push(flag);
  }
  const args = Object.entries(given).flatMap(([f, v]) => [`--${f}`, v]);
  return { args, steps, missing, given };
}

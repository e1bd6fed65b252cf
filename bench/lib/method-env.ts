// A synthetic training environment for timing adaptation methods (src/adapt) outside the CLI: a
// model (random weights of a CLIP_CONFIGS shape, or the shipped world CLIP), a small world dataset
// written to a temporary folder at the model's resolution (real image files, so methods that read
// pixels go through their own loader and augmentation), and a FeatureSource that returns seeded
// random features instead of encoding images (what methods cache is not what these suites time).
// `prepareMethod` gives a stepper that runs one training step as src/train/loop.ts does, minus the
// readback; `timeVariants` times steppers (a method with and without its own terms) interleaved.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gpu } from '../../src/gpu/index.js';
import { type Tensor } from '../../src/tensor/tensor.js';
import { stepContext, trainStep } from '../../src/train/loop.js';
import { ClipModel } from '../../src/clip/model.js';
import { CLIP_CONFIGS, randomClipWeights } from '../../src/clip/configs.js';
import { loadClipTokenizer } from '../../src/clip/tokenizer-node.js';
import { loadClip } from '../../src/clip/load-node.js';
import type { ClipTokenizer } from '../../src/clip/tokenizer.js';
import { writeWorldDataset } from '../../src/data/world/write-node.js';
import { openDataset } from '../../src/train/data.js';
import type { AdaptMethod, DefaultsContext, FeatureSource, ImageItem, MethodEnv, MethodSpec, OptionValue, ViewSpec } from '../../src/adapt/method.js';
import type { Optimizer } from '../../src/nn/optim.js';
import { median } from '../common.js';
import { uniform, type StepStat, type Stepper } from './steps.js';

export interface BenchModel {
  /** "ViT-B/32 (random weights)" or "world CLIP (weights/world-clip.safetensors)". */
  label: string;
  model: ClipModel;
  tokenizer: ClipTokenizer;
}

/** `name` is a CLIP_CONFIGS key (random weights, seed 0, OpenAI vocabulary) or "world" (the shipped checkpoint). */
export async function benchModel(gpu: Gpu, name: string, root: string): Promise<BenchModel> {
  if (name === 'world') {
    const path = join(root, 'weights', 'world-clip.safetensors');
    const l = await loadClip(gpu, path);
    return { label: 'world CLIP (weights/world-clip.safetensors)', model: l.model, tokenizer: l.tokenizer };
  }
  const cfg = CLIP_CONFIGS[name];
  if (!cfg) throw new Error(`unknown config "${name}" (known: world, ${Object.keys(CLIP_CONFIGS).join(', ')})`);
  const tokenizer = await loadClipTokenizer();
  return { label: `${name} (random weights)`, model: ClipModel.fromTensors(gpu, cfg, randomClipWeights(cfg, 0)), tokenizer };
}

/** Seeded random features in place of encoded images (the methods only need their shapes). */
export class SyntheticFeatures implements FeatureSource {
  constructor(readonly width: number, readonly embedDim: number) {}

  async pooled(items: readonly ImageItem[], view: ViewSpec): Promise<Float32Array> {
    return uniform(items.length * this.width, view.mode === 'test' ? 7 : 100 + view.view);
  }

  async textWeights(classnames: readonly string[]): Promise<Float32Array> {
    const e = this.embedDim;
    const w = uniform(classnames.length * e, 9);
    for (let c = 0; c < classnames.length; c++) {
      let n = 0;
      for (let i = 0; i < e; i++) n += w[c * e + i]! ** 2;
      const s = 1 / Math.sqrt(n);
      for (let i = 0; i < e; i++) w[c * e + i]! *= s;
    }
    return w;
  }
}

export interface WorldFolder {
  dir: string;
  classnames: string[];
  train: ImageItem[];
  dispose(): void;
}

/** `classes` world classes with `perClass` training images each, written at `size` px to a temporary folder. */
export async function worldFolder(classes: number, perClass: number, size: number): Promise<WorldFolder> {
  const dir = mkdtempSync(join(tmpdir(), 'cliptune-bench-world-'));
  try {
    await writeWorldDataset({ out: dir, classes: Array.from({ length: classes }, (_, i) => i), counts: { train: perClass, val: 1, test: 1 }, size, seed: 0, force: true });
    const ds = await openDataset(dir);
    return { dir, classnames: [...ds.classnames], train: ds.train.map((d) => ({ impath: d.impath, label: d.label })), dispose: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

export function benchEnv(gpu: Gpu, m: BenchModel, classnames: readonly string[], train: readonly ImageItem[], shots: number): MethodEnv {
  return {
    gpu,
    model: m.model,
    tokenizer: m.tokenizer,
    datasetName: 'World',
    classnames,
    train,
    val: null,
    shots,
    seed: 1,
    features: new SyntheticFeatures(m.model.config.image.width, m.model.config.embedDim),
    purpose: 'train',
    log: (msg) => process.stderr.write(`    ${msg}\n`),
  };
}

/** The method's official defaults for `ctx`, with `overrides` applied as if given on the command line. */
export function methodOptions(spec: MethodSpec, ctx: DefaultsContext, overrides: Record<string, OptionValue>): Record<string, OptionValue> {
  const opts = spec.defaults(ctx);
  for (const [k, v] of Object.entries(overrides)) {
    if (!spec.options.some((o) => o.key === k)) throw new Error(`${spec.name} has no option "${k}"`);
    opts[k] = v;
  }
  spec.finalize?.(opts, new Set(Object.keys(overrides)));
  spec.validate?.(opts, ctx);
  return opts;
}

export interface PreparedMethod {
  method: AdaptMethod;
  optimizer: Optimizer;
  stepper: Stepper;
  /** Images (or cached feature rows) in the timed batch. */
  batchSize: number;
  /** The last step's stats on the device: [loss, named terms..., Σ grad²]. */
  lastStats(): Tensor | null;
  dispose(): void;
}

/**
 * Creates and prepares a method, takes the first batch of epoch 0 (decoded and augmented once;
 * every timed step reuses it, so host-side image loading is not in the step time) and returns a
 * stepper that runs the loop's step: the method's loss in a tidy scope, backward, afterBackward,
 * the loop's per-step stats (loss, named terms, Σ grad²) kept on the device, the optimiser step
 * and zeroGrad. Throws if the method has nothing to train by steps.
 */
export async function prepareMethod(spec: MethodSpec, opts: Record<string, OptionValue>, ctx: DefaultsContext, env: MethodEnv): Promise<PreparedMethod> {
  const method = spec.create(opts, ctx);
  try {
    await method.prepare(env);
    const plan = method.plan();
    const params = [...method.params.values()];
    if (!params.length || plan.epochs * plan.stepsPerEpoch === 0) throw new Error(`${spec.name} has no training steps`);
    const optimizer = method.createOptimizer();
    optimizer.setLr(method.learningRate(0, 0, 0));
    let batch: unknown = undefined;
    for await (const b of method.batches(0, 0)) {
      batch = b;
      break;
    }
    if (batch === undefined) throw new Error(`${spec.name}: epoch 0 has no batch`);
    let globalStep = 0;
    let lastStats: Tensor | null = null;
    const stepper: Stepper = {
      step() {
        // The training loop's own step (src/train/loop.ts), so the bench times what training runs.
        const { stats } = trainStep(method, batch, stepContext(env.seed, 0, 0, globalStep), params, optimizer, env.gpu);
        globalStep++;
        lastStats?.dispose();
        lastStats = stats;
      },
      sync: () => env.gpu.sync(),
    };
    return {
      method,
      optimizer,
      stepper,
      batchSize: plan.imagesPerStep,
      lastStats: () => lastStats,
      dispose() {
        lastStats?.dispose();
        lastStats = null;
        optimizer.dispose();
        method.dispose();
      },
    };
  } catch (e) {
    method.dispose();
    throw e;
  }
}

/** Reads the last step's stats and says what is not finite (null when all are). */
export async function checkLastStep(p: PreparedMethod): Promise<string | null> {
  const t = p.lastStats();
  if (!t) return 'no step ran';
  const v = (await t.read()) as Float32Array;
  const bad = [...v].findIndex((x) => !Number.isFinite(x));
  return bad < 0 ? null : `step stats entry ${bad} is ${v[bad]} (0 = loss, last = Σ grad²)`;
}

interface Sample {
  wall: number;
  cpu: number;
}

async function sample(s: Stepper, calls: number): Promise<Sample> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) s.step();
  await s.sync();
  const c = process.cpuUsage(c0);
  return { wall: (performance.now() - t0) / 1000 / calls, cpu: (c.user + c.system) / 1e6 / calls };
}

export interface VariantTiming {
  repeats: number;
  /** Seconds all samples of all variants may take after the warm-ups (at least one sample each). */
  budget: number;
  /** A warm-up step slower than this is reported alone, marked `once` (default: budget / 2). */
  onceOver?: number;
  /** Steps shorter than this run several per sample, to about this long (default 1 s). */
  sampleSeconds?: number;
}

/**
 * Times several variants of a step with their samples interleaved (A, B, B, A, A, B, ...), like
 * timeStepsInterleaved in steps.ts, with one difference for sub-second steps (ProLIP on cached
 * features): after the warm-up step, one more step sizes the sample, which then runs enough steps
 * to last about `sampleSeconds` (one step is too noisy on a shared machine). A multi-second step
 * costs no extra step. Returns seconds per step (`calls`: steps per sample).
 */
export async function timeVariants(list: readonly Stepper[], o: VariantTiming): Promise<(StepStat | { error: string })[]> {
  const target = o.sampleSeconds ?? 1;
  const onceOver = o.onceOver ?? o.budget / 2;
  const state = await (async () => {
    const out: { warm: Sample; calls: number; error: string | null; samples: Sample[] }[] = [];
    for (const s of list) {
      try {
        const warm = await sample(s, 1);
        let calls = 1;
        if (warm.wall < target) {
          const one = await sample(s, 1);
          calls = Math.max(1, Math.min(64, Math.round(target / Math.max(one.wall, 1e-4))));
        }
        out.push({ warm, calls, error: null, samples: [] });
      } catch (e) {
        out.push({ warm: { wall: Infinity, cpu: 0 }, calls: 1, error: e instanceof Error ? e.message.split('\n')[0]! : String(e), samples: [] });
      }
    }
    return out;
  })();
  const active = state.map((v) => !v.error && v.warm.wall <= onceOver);
  let spent = 0;
  for (let k = 0; k < o.repeats; k++) {
    const t0 = performance.now();
    // ABBA order: odd rounds run the variants in reverse, so that running second in a round (after
    // the other variant's garbage, on a pool shaped by it) does not always fall on the same one.
    const order = list.map((_, i) => (k % 2 ? list.length - 1 - i : i));
    for (const i of order) {
      const v = state[i]!;
      if (!active[i] || v.error) continue;
      try {
        v.samples.push(await sample(list[i]!, v.calls));
      } catch (e) {
        v.error = e instanceof Error ? e.message.split('\n')[0]! : String(e);
      }
    }
    spent += (performance.now() - t0) / 1000;
    // Stop when another round would go over the budget (the rounds cost about the same).
    if (spent + spent / (k + 1) > o.budget) break;
  }
  return state.map((v, i) => {
    if (v.error) return { error: v.error };
    if (!active[i] || !v.samples.length) return { median: v.warm.wall, min: v.warm.wall, max: v.warm.wall, samples: 1, calls: 1, cpu: v.warm.cpu, warmup: v.warm.wall, once: true };
    const wall = v.samples.map((x) => x.wall);
    return { median: median(wall), min: Math.min(...wall), max: Math.max(...wall), samples: v.samples.length, calls: v.calls, cpu: median(v.samples.map((x) => x.cpu)), warmup: v.warm.wall, once: false };
  });
}

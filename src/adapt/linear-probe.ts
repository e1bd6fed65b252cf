// Linear probe (CLIP paper; CoOp's lpclip): multinomial logistic regression on frozen image
// embeddings (encode_image output, test transform), minimising sklearn's objective
//   C·Σᵢ CE(x̃ᵢ Θ, yᵢ) + ½‖W‖²,   Θ = [W; b] (bias unpenalised)
// with L-BFGS on the GPU to a relative gradient norm below 1e-6 (at most 1000 iterations, sklearn's
// max_iter). C is chosen on the few-shot val split as lpclip does (methods.md 4.10): the accuracy of
// C ∈ {1e6, 1e4, 1e2, 1, 1e-2, 1e-4, 1e-6}, then 8 steps of a binary search in log10 C around the peak.
// Two classes: sklearn fits one binary logistic vector; the 2-class softmax with this penalty has the
// same minimiser (same predictions) at C/2, so C is halved there.
// Large C (weak regularisation) makes the problem ill-conditioned: within sklearn's 1000 iterations
// L-BFGS then stops on max-iter at a relative gradient of ~1e-6..1e-4, not at 1e-6. Measured on the
// sketch world (24 classes x 16 shots, embed 128): C = 1e4 -> 5.8e-6, C = 100 -> 1.6e-4 here, and
// scipy's float64 L-BFGS-B (m = 10, same objective) -> 1.7e-6 and 4.1e-5; C = 1 reaches 1e-6 at
// iteration 970 here, 955 in scipy. So it is L-BFGS's convergence rate, not float32 (sklearn warns
// "failed to converge" in the same cases); the stop reason is logged with every fit.
import { GpuError, type Gpu } from '../gpu/index.js';
import { keep, tensor, tidy, zeros, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { add, mul, scale, square } from '../ops/elementwise.js';
import { matmul } from '../ops/matmul.js';
import { crossEntropy } from '../ops/losses.js';
import { argmax, sum } from '../ops/reduce.js';
import { reshape, slice } from '../ops/shape.js';
import type { Optimizer } from '../nn/optim.js';
import { lbfgs, type LbfgsResult } from './lbfgs.js';
import { MethodOptionError, type AdaptMethod, type Classifier, type ImageItem, type MethodEnv, type MethodSpec, type OptionValue, type StepOutput, type TrainPlan } from './method.js';
import { sameClasses } from './prompt-common.js';

/** lpclip's initial grid of C values, in its order. */
export const C_GRID: readonly number[] = [1e6, 1e4, 1e2, 1, 1e-2, 1e-4, 1e-6];

export interface LogisticData {
  /** Features [n, d], row-major. */
  x: Float32Array;
  y: Int32Array;
  n: number;
  d: number;
  classes: number;
}

export interface LogisticFit {
  /** Θ = [W; b] as [(d + 1)·classes] (row d is the bias). */
  theta: Tensor;
  solver: LbfgsResult;
  c: number;
}

/** Fits the probe for one C from Θ = 0 (as sklearn, no warm start). */
export async function fitLogistic(gpu: Gpu, data: LogisticData, c: number, o: { maxIter?: number; tol?: number } = {}): Promise<LogisticFit> {
  const { n, d, classes: k } = data;
  if (!(c > 0) || !Number.isFinite(c)) throw new GpuError(`linear probe: C must be a positive number, got ${c}`);
  if (k < 2) throw new GpuError(`linear probe: needs at least 2 classes, got ${k}`);
  const xa = new Float32Array(n * (d + 1));
  for (let i = 0; i < n; i++) {
    xa.set(data.x.subarray(i * d, (i + 1) * d), i * (d + 1));
    xa[i * (d + 1) + d] = 1;
  }
  const mask = new Float32Array((d + 1) * k).fill(1, 0, d * k);
  const X = tensor(xa, [n, d + 1], 'f32', gpu);
  const M = tensor(mask, [(d + 1) * k], 'f32', gpu);
  const Y = tensor(data.y, [n], 'i32', gpu);
  const cEff = k === 2 ? c / 2 : c;
  const objective = (theta: Tensor) => {
    const logits = matmul(X, reshape(theta, [d + 1, k]));
    const ce = crossEntropy(logits, Y, { reduction: 'sum' });
    return add(scale(reshape(ce, [1]), cEff), scale(reshape(sum(mul(square(theta), M)), [1]), 0.5));
  };
  const x0 = zeros([(d + 1) * k], 'f32', gpu);
  try {
    const solver = await lbfgs(x0, objective, o);
    return { theta: solver.x, solver, c };
  } finally {
    for (const t of [X, M, Y, x0]) t.dispose();
  }
}

/** Logits [n, classes] of features [n, d] under Θ. */
export function probeLogits(theta: Tensor, x: Tensor, d: number, k: number): Tensor {
  return tidy(() => {
    const t = reshape(theta, [d + 1, k]);
    return matmul(x, slice(t, 0, 0, d), { bias: reshape(slice(t, 0, d, d + 1), [k]) });
  });
}

/** Predicted class of each row (first maximum, as numpy's argmax). */
export async function probePredict(gpu: Gpu, theta: Tensor, data: Pick<LogisticData, 'x' | 'n' | 'd' | 'classes'>): Promise<Int32Array> {
  const p = noGrad(() => tidy(() => argmax(probeLogits(theta, tensor(data.x, [data.n, data.d], 'f32', gpu), data.d, data.classes), -1)));
  const out = (await p.read()) as Int32Array;
  p.dispose();
  return out;
}

export interface CSearchStep {
  c: number;
  accuracy: number;
}

/**
 * lpclip's C search: the grid, then `steps` rounds comparing the accuracies at c_left and c_right
 * (ties keep the left), narrowing in log10 C. `accuracyAt` fits and scores one C (called once per
 * distinct value). Returns the final C and every evaluation in order.
 */
export async function searchC(accuracyAt: (c: number) => Promise<number>, steps = 8): Promise<{ c: number; visits: CSearchStep[] }> {
  const memo = new Map<number, number>();
  const visits: CSearchStep[] = [];
  const acc = async (c: number) => {
    let a = memo.get(c);
    if (a === undefined) {
      a = await accuracyAt(c);
      memo.set(c, a);
      visits.push({ c, accuracy: a });
    }
    return a;
  };
  const grid: number[] = [];
  for (const c of C_GRID) grid.push(await acc(c));
  let peak = 0;
  for (let i = 1; i < grid.length; i++) if (grid[i]! > grid[peak]!) peak = i;
  let cLeft = 1e-1 * C_GRID[peak]!;
  let cRight = 1e1 * C_GRID[peak]!;
  let cFinal = C_GRID[peak]!;
  for (let s = 0; s < steps; s++) {
    const aLeft = await acc(cLeft);
    const aRight = await acc(cRight);
    let l: number, r: number;
    if (aLeft < aRight) {
      cFinal = cRight;
      l = 0.5 * (Math.log10(cRight) + Math.log10(cLeft));
      r = Math.log10(cRight);
    } else {
      cFinal = cLeft;
      r = 0.5 * (Math.log10(cRight) + Math.log10(cLeft));
      l = Math.log10(cLeft);
    }
    cLeft = 10 ** l;
    cRight = 10 ** r;
  }
  return { c: cFinal, visits };
}

function accuracyOf(pred: Int32Array, y: Int32Array): number {
  let hit = 0;
  for (let i = 0; i < y.length; i++) if (pred[i] === y[i]) hit++;
  return (100 * hit) / y.length;
}

export class LinearProbeMethod implements AdaptMethod<never> {
  readonly name = 'linear-probe';
  readonly params = new Map<string, Tensor>();
  readonly caches = ['pre-projection image features of the few-shot train and val images and of the test images (test transform)'];
  /** What the search found (for the log and the report). */
  search: { c: number; visits: CSearchStep[]; solver: Omit<LbfgsResult, 'x'> } | null = null;

  constructor(readonly options: Readonly<Record<string, OptionValue>>) {}

  private async embeddings(env: MethodEnv, items: readonly ImageItem[]): Promise<Float32Array> {
    const { model, gpu } = env;
    const pooled = await env.features.pooled(items, { mode: 'test' });
    const t = noGrad(() => tidy(() => matmul(tensor(pooled, [items.length, model.config.image.width], 'f32', gpu), model.param('visual.proj'))));
    const out = (await t.read()) as Float32Array;
    t.dispose();
    return out;
  }

  async prepare(env: MethodEnv): Promise<void> {
    const d = env.model.config.embedDim;
    const k = env.classnames.length;
    if (env.purpose === 'eval') {
      this.params.set('head', keep(zeros([(d + 1) * k], 'f32', env.gpu)));
      return;
    }
    if (!env.train.length) throw new GpuError('linear probe: no training images');
    const train: LogisticData = { x: await this.embeddings(env, env.train), y: Int32Array.from(env.train, (i) => i.label), n: env.train.length, d, classes: k };
    const solverOpts = { maxIter: this.options.maxIter as number, tol: this.options.tol as number };
    let c = this.options.c as number | null;
    let visits: CSearchStep[] = [];
    if (c === null) {
      if (!env.val || !env.val.length) throw new MethodOptionError('linear probe: the C search needs a val split and this dataset has none; give --c');
      const val = { x: await this.embeddings(env, env.val), y: Int32Array.from(env.val, (i) => i.label), n: env.val.length, d, classes: k };
      const found = await searchC(async (cv) => {
        const fit = await fitLogistic(env.gpu, train, cv, solverOpts);
        const acc = accuracyOf(await probePredict(env.gpu, fit.theta, val), val.y);
        env.log(`  linear probe: C ${cv.toPrecision(6)}: val accuracy ${acc.toFixed(2)}% (${fit.solver.iterations} iterations, ${fit.solver.evaluations} evaluations, ‖g‖/‖g₀‖ ${fit.solver.relGradNorm.toExponential(2)}, ${fit.solver.reason})`);
        fit.theta.dispose();
        return acc;
      }, this.options.searchSteps as number);
      c = found.c;
      visits = found.visits;
    }
    const fit = await fitLogistic(env.gpu, train, c, solverOpts);
    const { x: _x, ...solver } = fit.solver;
    this.search = { c, visits, solver };
    env.log(`  linear probe: C = ${c.toPrecision(6)}, ${solver.iterations} L-BFGS iterations, ‖g‖/‖g₀‖ = ${solver.relGradNorm.toExponential(2)} (${solver.reason})`);
    this.params.set('head', keep(fit.theta));
  }

  plan(): TrainPlan {
    return { epochs: 0, stepsPerEpoch: 0, imagesPerStep: 0 };
  }

  createOptimizer(): Optimizer {
    throw new GpuError('linear probe: solved by L-BFGS in prepare(), no optimiser steps');
  }

  learningRate(): number {
    return 0;
  }

  async *batches(): AsyncIterable<never> {}

  step(): StepOutput {
    throw new GpuError('linear probe: no training steps');
  }

  async classifier(classnames: readonly string[], env: MethodEnv): Promise<Classifier> {
    const theta = this.params.get('head');
    if (!theta) throw new GpuError('linear probe: classifier() before prepare()');
    if (!sameClasses(classnames, env.classnames)) throw new MethodOptionError('a linear probe has weights only for its training classes; it cannot classify other (novel) classes');
    const d = env.model.config.embedDim;
    const proj = env.model.param('visual.proj');
    return { logitsPooled: (p) => probeLogits(theta, matmul(p, proj), d, classnames.length), dispose: () => {} };
  }

  dispose(): void {
    for (const t of this.params.values()) t.dispose();
    this.params.clear();
  }
}

export const LINEAR_PROBE: MethodSpec = {
  name: 'linear-probe',
  summary: 'logistic regression on frozen image embeddings, L-BFGS on the GPU, C searched on the val split (CoOp lpclip)',
  options: [
    { key: 'c', flag: 'c', type: 'float', min: 0, exclusiveMin: true, help: 'inverse regularisation strength; default: searched on the val split' },
    { key: 'searchSteps', flag: 'search-steps', type: 'int', min: 0, help: 'binary-search steps in log10 C after the grid' },
    { key: 'maxIter', flag: 'max-iter', type: 'int', min: 1, help: 'L-BFGS iterations per fit (sklearn max_iter)' },
    { key: 'tol', flag: 'tol', type: 'float', min: 0, exclusiveMin: true, help: 'stop at this relative gradient norm' },
  ],
  defaults: () => ({ c: null, searchSteps: 8, maxIter: 1000, tol: 1e-6 }),
  validate: (_o, ctx) => {
    if (ctx.baseToNovel) throw new MethodOptionError('linear-probe cannot be used with --base-to-novel: it has no weights for the novel classes');
  },
  create: (opts) => new LinearProbeMethod(opts),
};

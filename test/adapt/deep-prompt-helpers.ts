// Shared fixtures of the deep-prompt method tests: a tiny random CLIP with three layers per tower
// (so a depth below the layer count can be checked), a method environment without files, a few
// training steps run the way the loop runs them, and the CLI end-to-end runner on the shipped world CLIP.
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { getGpu, type Gpu } from '../../src/gpu/index.js';
import { tidy, type Tensor } from '../../src/tensor/tensor.js';
import { noGrad } from '../../src/autograd/tape.js';
import { ClipModel, type ClipConfig } from '../../src/clip/model.js';
import { randomClipWeights } from '../../src/clip/configs.js';
import { loadClipTokenizer } from '../../src/clip/tokenizer-node.js';
import type { ClipTokenizer } from '../../src/clip/tokenizer.js';
import { epochRng } from '../../src/adapt/coop.js';
import type { AdaptMethod, MethodEnv, MethodSpec, OptionValue } from '../../src/adapt/method.js';
import { checkpointParams, cliTrain } from '../train/helpers.js';
import { randArray } from '../helpers/parity.js';

/** 16x16 images, patch 8 (4 patches), widths 32, three layers and two heads per tower, the real vocabulary. */
export const DEEP_TINY: ClipConfig = {
  embedDim: 16,
  image: { resolution: 16, patchSize: 8, width: 32, layers: 3, heads: 2, mlpHidden: 64, eps: 1e-5 },
  text: { contextLength: 77, vocabSize: 49408, width: 32, layers: 3, heads: 2, mlpHidden: 64, eps: 1e-5 },
  activation: 'quick_gelu',
  activationSource: 'option',
};

export const CLASSES = ['red circle', 'green square', 'blue triangle', 'yellow star', 'purple cross'];

let weights: Map<string, Float32Array> | null = null;

export async function tinySetup(): Promise<{ gpu: Gpu; model: ClipModel; tokenizer: ClipTokenizer }> {
  const gpu = await getGpu();
  weights ??= randomClipWeights(DEEP_TINY, 7);
  const model = ClipModel.fromTensors(gpu, DEEP_TINY, weights);
  return { gpu, model, tokenizer: await loadClipTokenizer() };
}

export function tinyEnv(gpu: Gpu, model: ClipModel, tokenizer: ClipTokenizer, logs: string[] = [], classnames = CLASSES): MethodEnv {
  return { gpu, model, tokenizer, datasetName: 'World', classnames, train: [], val: null, shots: 1, seed: 3, features: null as never, purpose: 'train', log: (m) => logs.push(m) };
}

/** A fixed batch of random pixels (B images) and labels. */
export function tinyBatch(B: number, seed = 21) {
  const res = DEEP_TINY.image.resolution;
  return { pixels: Float32Array.from(randArray(B * 3 * res * res, seed)), labels: Int32Array.from({ length: B }, (_, i) => (i * 2) % CLASSES.length), count: B };
}

export async function createMethod(spec: MethodSpec, env: MethodEnv, over: Record<string, OptionValue>): Promise<AdaptMethod> {
  const ctx = { shots: 1, datasetName: 'World', baseToNovel: false };
  const opts = { ...spec.defaults(ctx), ...over };
  spec.validate?.(opts, ctx);
  const m = spec.create(opts, ctx);
  await m.prepare(env);
  return m;
}

/** All model parameters' values (frozen-weights check). */
export async function snapshot(model: ClipModel): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, t] of model.params) out.set(k, (await t.read()) as Float32Array);
  return out;
}

export interface StepRun {
  losses: number[];
  terms: Record<string, number>[];
  /** Per learned tensor: max |grad| after the first step's backward. */
  firstGrad: Map<string, number>;
  /** Live device bytes after each step (steady from the second step on: nothing leaks). */
  live: number[];
}

/** `steps` optimiser steps on the same batch, as the loop runs them (step, backward, afterBackward, SGD). */
export async function runSteps(m: AdaptMethod, batch: unknown, steps: number, lr: number): Promise<StepRun> {
  const opt = m.createOptimizer();
  opt.setLr(lr);
  const losses: number[] = [];
  const terms: Record<string, number>[] = [];
  const firstGrad = new Map<string, number>();
  const live: number[] = [];
  for (let s = 0; s < steps; s++) {
    const out = tidy(() => m.step(batch, { epoch: 0, stepInEpoch: s, globalStep: s, rng: epochRng(0, s) }));
    out.loss.backward();
    out.afterBackward?.();
    losses.push(await out.loss.item());
    const row: Record<string, number> = {};
    for (const [k, t] of Object.entries(out.terms ?? {})) row[k] = await t.item();
    terms.push(row);
    if (s === 0) {
      for (const [k, p] of m.params) {
        const g = p.grad ? ((await p.grad.read()) as Float32Array) : new Float32Array(0);
        let mx = 0;
        for (const v of g) mx = Math.max(mx, Math.abs(v));
        firstGrad.set(k, g.length ? mx : -1);
      }
    }
    const owned = new Set<Tensor>([out.loss, ...Object.values(out.terms ?? {})]);
    for (const t of owned) t.dispose();
    opt.step();
    opt.zeroGrad();
    live.push(m.params.values().next().value!.gpu.pool.snapshot().liveBytes);
  }
  opt.dispose();
  return { losses, terms, firstGrad, live };
}

/**
 * Central differences of a method's step loss in its learned tensors against the tape's gradient:
 * for each tensor, the `per` coordinates with the largest |gradient| are perturbed by ±h (f32 on
 * the device, so h is not tiny) and the largest relative error is returned per tensor.
 */
export async function fdCheck(m: AdaptMethod, batch: unknown, per = 3, h = 1e-2): Promise<Map<string, { err: number; grad: number[]; fd: number[] }>> {
  const ctx = { epoch: 0, stepInEpoch: 0, globalStep: 0, rng: epochRng(0, 0) };
  const out = tidy(() => m.step(batch, ctx));
  out.loss.backward();
  out.afterBackward?.();
  const grads = new Map<string, Float32Array>();
  for (const [k, p] of m.params) grads.set(k, Float32Array.from((await p.grad!.read()) as Float32Array));
  out.loss.dispose();
  for (const t of Object.values(out.terms ?? {})) t.dispose();
  for (const p of m.params.values()) {
    p.grad?.dispose();
    p.grad = null;
  }
  const lossAt = async () => {
    const o = noGrad(() => tidy(() => m.step(batch, ctx)));
    const v = await o.loss.item();
    o.loss.dispose();
    for (const t of Object.values(o.terms ?? {})) t.dispose();
    return v;
  };
  const result = new Map<string, { err: number; grad: number[]; fd: number[] }>();
  for (const [k, p] of m.params) {
    const g = grads.get(k)!;
    const base = Float32Array.from((await p.read()) as Float32Array);
    const idx = Array.from(g.keys()).sort((a, b) => Math.abs(g[b]!) - Math.abs(g[a]!)).slice(0, per);
    const fd: number[] = [];
    for (const i of idx) {
      const v = Float32Array.from(base);
      v[i] = base[i]! + h;
      p.gpu.write(p.buffer, 0, v, `fd +h ${k}`);
      const up = await lossAt();
      v[i] = base[i]! - h;
      p.gpu.write(p.buffer, 0, v, `fd -h ${k}`);
      const down = await lossAt();
      fd.push((up - down) / (2 * h));
    }
    p.gpu.write(p.buffer, 0, base, `fd restore ${k}`);
    const gi = idx.map((i) => g[i]!);
    const err = Math.max(...gi.map((x, j) => Math.abs(x - fd[j]!) / Math.max(Math.abs(x), Math.abs(fd[j]!), 1e-8)));
    result.set(k, { err, grad: gi, fd });
  }
  return result;
}

// ---- CLI end to end on the shipped world CLIP ----

export const WORLD_WEIGHTS = join(process.cwd(), 'weights', 'world-clip.safetensors');

export function haveWorldWeights(): boolean {
  return existsSync(WORLD_WEIGHTS);
}

// The CLI runner and run-folder readers live with the other training fixtures (test/train/helpers.ts).
export { checkpointParams, cliTrain, logLines } from '../train/helpers.js';

/** Trains uninterrupted, and interrupted after step `stopAt` then resumed; both must end with the same weights. */
export async function trainAndResume(root: string, name: string, args: string[], stopAt: number, cache: string) {
  const a = join(root, `${name}-a`);
  const b = join(root, `${name}-b`);
  const t0 = performance.now();
  const r1 = await cliTrain([...args, '--out', a], cache, {}, true);
  const secs = (performance.now() - t0) / 1000;
  assert.is(r1.value, 0, r1.err);
  const ctl = new AbortController();
  const r2 = await cliTrain([...args, '--out', b], cache, { signal: ctl.signal, onStep: (s) => s === stopAt && ctl.abort() });
  assert.is(r2.value, 130, r2.err);
  const r3 = await cliTrain(['--resume', '--out', b], cache);
  assert.is(r3.value, 0, r3.err);
  const pa = await checkpointParams(a);
  const pb = await checkpointParams(b);
  assert.equal([...pb.keys()], [...pa.keys()]);
  for (const [k, v] of pa) assert.equal(pb.get(k), v, `${name}: resumed ${k} equals the uninterrupted run`);
  return { a, b, secs, err: r1.err, out: r1.out };
}

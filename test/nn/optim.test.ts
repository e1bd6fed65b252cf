import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu, type Gpu } from '../../src/gpu/index.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import { Adam, AdamW, SGD, clipGradNorm, type Optimizer, type OptimizerState } from '../../src/nn/optim.js';
import { randArray } from '../helpers/parity.js';
import { groupSegments, planSegments, segmentElements, slotsFor } from '../../src/nn/slots.js';
import { P0, P1, TORCH_CLIP, TORCH_OPTIM, gradAt } from './torch-optim-ref.js';

// ---------------------------------------------------------------------------------------------
// Independent float64 references: torch's documented update rules, written as plain loops.

interface SgdCfg {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}
interface AdamCfg {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  decoupled: boolean;
}
type GradFn = (t: number, idx: number, n: number) => number[] | null;

/** Parameters after each step. `lrAt(t)` overrides cfg.lr per step. */
function refSgd(init: number[][], grads: GradFn, steps: number, c: SgdCfg, lrAt?: (t: number) => number): number[][][] {
  const p = init.map((a) => [...a]);
  const buf: (number[] | null)[] = init.map(() => null);
  const out: number[][][] = [];
  for (let t = 0; t < steps; t++) {
    const lr = lrAt ? lrAt(t) : c.lr;
    p.forEach((pi, idx) => {
      const g = grads(t, idx, pi.length);
      if (!g) return;
      for (let i = 0; i < pi.length; i++) {
        let d = g[i]! + c.weightDecay * pi[i]!;
        if (c.momentum !== 0) {
          const b = buf[idx] ?? (buf[idx] = new Array<number>(pi.length).fill(NaN));
          b[i] = t === 0 || Number.isNaN(b[i]!) ? d : c.momentum * b[i]! + (1 - c.dampening) * d;
          d = c.nesterov ? d + c.momentum * b[i]! : b[i]!;
        }
        pi[i] = pi[i]! - lr * d;
      }
    });
    out.push(p.map((a) => [...a]));
  }
  return out;
}

function refAdam(init: number[][], grads: GradFn, steps: number, c: AdamCfg): number[][][] {
  const p = init.map((a) => [...a]);
  const m = init.map((a) => a.map(() => 0));
  const v = init.map((a) => a.map(() => 0));
  const vmax = init.map((a) => a.map(() => 0));
  const count = init.map(() => 0);
  const [b1, b2] = c.betas;
  const out: number[][][] = [];
  for (let t = 0; t < steps; t++) {
    p.forEach((pi, idx) => {
      const gr = grads(t, idx, pi.length);
      if (!gr) return;
      const k = ++count[idx]!;
      for (let i = 0; i < pi.length; i++) {
        let g = gr[i]!;
        if (!c.decoupled) g += c.weightDecay * pi[i]!;
        else pi[i] = pi[i]! * (1 - c.lr * c.weightDecay);
        m[idx]![i] = b1 * m[idx]![i]! + (1 - b1) * g;
        v[idx]![i] = b2 * v[idx]![i]! + (1 - b2) * g * g;
        vmax[idx]![i] = Math.max(vmax[idx]![i]!, v[idx]![i]!);
        const vh = c.amsgrad ? vmax[idx]![i]! : v[idx]![i]!;
        const denom = Math.sqrt(vh) / Math.sqrt(1 - b2 ** k) + c.eps;
        pi[i] = pi[i]! - ((c.lr / (1 - b1 ** k)) * m[idx]![i]!) / denom;
      }
    });
    out.push(p.map((a) => [...a]));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// GPU harness.

function makeParams(gpu: Gpu, init: number[][] = [P0, P1], shapes: number[][] = [[5], [2, 3]]): Tensor[] {
  return init.map((a, i) => tensor(Float32Array.from(a), shapes[i], 'f32', gpu).param(`p${i}`));
}

function setGrads(gpu: Gpu, ps: Tensor[], t: number, grads: GradFn): void {
  ps.forEach((p, idx) => {
    p.grad?.dispose();
    const g = grads(t, idx, p.size);
    p.grad = g ? tensor(Float32Array.from(g), p.shape, 'f32', gpu) : null;
  });
}

async function readAll(ps: Tensor[]): Promise<number[][]> {
  const out: number[][] = [];
  for (const p of ps) out.push([...(await p.read())]);
  return out;
}

/** Runs `steps` steps; returns the parameters after each. Disposes everything it made. */
async function runGpu(gpu: Gpu, make: (ps: Tensor[]) => Optimizer, steps: number, grads: GradFn = gradAt, init?: number[][]): Promise<number[][][]> {
  const ps = makeParams(gpu, init);
  const opt = make(ps);
  const out: number[][][] = [];
  for (let t = 0; t < steps; t++) {
    setGrads(gpu, ps, t, grads);
    opt.step();
    out.push(await readAll(ps));
  }
  opt.dispose();
  for (const p of ps) p.dispose();
  return out;
}

/** |got - want| <= tol * max(1, |want|) everywhere (tol 5e-7 is a few float32 ulps at 1). */
function assertNear(got: number[][][] | number[][] | number[], want: number[][][] | number[][] | number[], what: string, tol = 5e-7): void {
  const g = (got as unknown[]).flat(2) as number[];
  const w = (want as unknown[]).flat(2) as number[];
  assert.is(g.length, w.length, `${what}: length`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < g.length; i++) {
    const e = Math.abs(g[i]! - w[i]!) / Math.max(1, Math.abs(w[i]!));
    if (!(e <= worst)) {
      worst = Number.isNaN(e) ? Infinity : e;
      at = i;
    }
  }
  assert.ok(worst <= tol, `${what}: error ${worst.toExponential(3)} > ${tol} at flat index ${at} (got ${g[at]}, want ${w[at]})`);
}

/** The float32 bit patterns of a nested array, as a short digest (FNV-1a) plus the length. */
function bits(a: number[][][] | number[][]): string {
  const u = new Uint32Array(Float32Array.from((a as unknown[]).flat(2) as number[]).buffer);
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < u.length; i++) {
    h1 = Math.imul(h1 ^ u[i]!, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ u[i]! ^ i, 0x5bd1e995) >>> 0;
  }
  return `${u.length}:${h1.toString(16)}${h2.toString(16)}`;
}

const skipGrads =
  (skip: string[]): GradFn =>
  (t, idx, n) =>
    skip.includes(`${t},${idx}`) ? null : gradAt(t, idx, n);

const sgdCases: [string, SgdCfg][] = [
  ['sgd_dassl', { lr: 0.002, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: false }],
  ['sgd_nesterov', { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 1e-2, nesterov: true }],
  ['sgd_dampening', { lr: 0.05, momentum: 0.8, dampening: 0.25, weightDecay: 0, nesterov: false }],
  ['sgd_plain', { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0.1, nesterov: false }],
];

const adamCases: [string, AdamCfg][] = [
  ['adam_default', { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, decoupled: false }],
  ['adam_eps_wd', { lr: 1e-2, betas: [0.9, 0.999], eps: 1e-4, weightDecay: 0.1, amsgrad: false, decoupled: false }],
  ['adam_amsgrad', { lr: 1e-2, betas: [0.8, 0.9], eps: 1e-8, weightDecay: 0, amsgrad: true, decoupled: false }],
  ['adamw', { lr: 1e-2, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01, amsgrad: false, decoupled: true }],
  ['adamw_amsgrad', { lr: 5e-2, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.5, amsgrad: true, decoupled: true }],
];

function makeAdam(c: AdamCfg, extra = {}): (ps: Tensor[]) => Optimizer {
  const o = { lr: c.lr, betas: c.betas, eps: c.eps, weightDecay: c.weightDecay, amsgrad: c.amsgrad, ...extra };
  return (ps) => (c.decoupled ? new AdamW(ps, o) : new Adam(ps, o));
}

// ---------------------------------------------------------------------------------------------

test('SGD matches torch 1.13 and the float64 loop (momentum, weight decay, nesterov, dampening, plain)', async () => {
  const gpu = await getGpu();
  for (const [name, c] of sgdCases) {
    const got = await runGpu(gpu, (ps) => new SGD(ps, c), 4);
    assertNear(got, TORCH_OPTIM[name]!, `${name} vs torch`);
    assertNear(got, refSgd([P0, P1], gradAt, 4, c), `${name} vs float64`);
  }
});

test('Adam and AdamW match torch 1.13 and the float64 loop (bias correction, eps, L2 vs decoupled decay, amsgrad)', async () => {
  const gpu = await getGpu();
  for (const [name, c] of adamCases) {
    const got = await runGpu(gpu, makeAdam(c), 4);
    assertNear(got, TORCH_OPTIM[name]!, `${name} vs torch`);
    assertNear(got, refAdam([P0, P1], gradAt, 4, c), `${name} vs float64`);
  }
});

test('parameters without a gradient are skipped; state and step counts are per parameter (as torch)', async () => {
  const gpu = await getGpu();
  // Adam: p1 has no grad at step 1, so its bias correction uses its own step count afterwards.
  const adamSkip = skipGrads(['1,1']);
  const a = await runGpu(gpu, (ps) => new Adam(ps, { lr: 1e-2 }), 4, adamSkip);
  assertNear(a, TORCH_OPTIM.adam_skip!, 'adam_skip vs torch');
  assertNear(a, refAdam([P0, P1], adamSkip, 4, { lr: 1e-2, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, decoupled: false }), 'adam_skip vs float64');
  assert.equal(bits([a[1]![1]!]), bits([a[0]![1]!]), 'p1 untouched at the skipped step');
  // SGD: p1 starts late (its first step initialises the buffer), p0 skips step 2.
  const sgdSkip = skipGrads(['0,1', '2,0']);
  const cfg: SgdCfg = { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: false };
  const s = await runGpu(gpu, (ps) => new SGD(ps, cfg), 4, sgdSkip);
  assertNear(s, TORCH_OPTIM.sgd_skip!, 'sgd_skip vs torch');
  assert.equal(bits([s[0]![1]!]), bits([P1]), 'p1 untouched before its first gradient');

  // No state exists for a parameter that never had a gradient.
  const ps = makeParams(gpu);
  const opt = new Adam(ps, { lr: 1e-3 });
  setGrads(gpu, ps, 0, skipGrads(['0,1']));
  opt.step();
  const st = opt.stateDict();
  assert.equal(Object.keys(st.tensors).sort(), ['state.0.exp_avg', 'state.0.exp_avg_sq']);
  assert.equal(st.paramSteps, [1, 0]);
  assert.is(st.step, 1);
  for (const t of Object.values(st.tensors)) t.dispose();
  opt.zeroGrad();
  assert.is(ps[0]!.grad, null);
  const before = await readAll(ps);
  const d0 = gpu.counters.dispatches;
  opt.step(); // nothing has a gradient: no dispatch, nothing moves
  assert.is(gpu.counters.dispatches, d0);
  assert.equal(await readAll(ps), before, 'no grads: nothing moves');
  opt.dispose();
  for (const p of ps) p.dispose();
});

test('SGD first step copies d into the momentum buffer (no 1 - dampening factor)', async () => {
  const gpu = await getGpu();
  const ps = makeParams(gpu);
  const opt = new SGD(ps, { lr: 0.5, momentum: 0.9, dampening: 0.5, weightDecay: 0.25 });
  setGrads(gpu, ps, 0, gradAt);
  opt.step();
  const st = opt.stateDict();
  const buf0 = [...(await st.tensors['state.0.momentum_buffer']!.read())];
  const d0 = gradAt(0, 0, 5).map((g, i) => g + 0.25 * P0[i]!);
  assertNear(buf0, d0, 'buf after step 1 = g + wd p');
  assertNear((await readAll(ps))[0]!, P0.map((p, i) => p - 0.5 * d0[i]!), 'p after step 1 = p - lr d');
  for (const t of Object.values(st.tensors)) t.dispose();
  opt.dispose();
  for (const p of ps) p.dispose();
});

test('Adam step 1 moves each weight by lr * g / (|g| + eps) (bias correction); AdamW decays decoupled from the moments', async () => {
  const gpu = await getGpu();
  const lr = 0.01;
  const one = await runGpu(gpu, (ps) => new Adam(ps, { lr }), 1);
  const want = [P0, P1].map((p, idx) => {
    const g = gradAt(0, idx, p.length);
    return p.map((x, i) => x - (lr * g[i]!) / (Math.abs(g[i]!) + 1e-8));
  });
  assertNear(one[0]!, want, 'Adam step 1');
  // Zero gradients: Adam with L2 decay moves every weight (the decay becomes the gradient) by about
  // lr; AdamW only shrinks the weights by (1 - lr wd) per step.
  const zero: GradFn = (_t, _i, n) => new Array<number>(n).fill(0);
  const w = await runGpu(gpu, (ps) => new AdamW(ps, { lr: 0.1, weightDecay: 0.5 }), 3, zero);
  assertNear(w[2]!, [P0, P1].map((p) => p.map((x) => x * 0.95 ** 3)), 'AdamW zero grad: p (1 - lr wd)^3');
  const l2 = await runGpu(gpu, (ps) => new Adam(ps, { lr: 0.1, weightDecay: 0.5 }), 1, zero);
  assertNear(l2[0]!, [P0, P1].map((p) => p.map((x) => x - 0.1 * Math.sign(x))), 'Adam L2 zero grad: p - lr sign(p)', 1e-6);
});

test('eps dominates tiny gradients as in torch (ProLIP uses eps = 1e-4)', async () => {
  const gpu = await getGpu();
  const tiny: GradFn = (t, idx, n) => gradAt(t, idx, n).map((g) => Math.fround(g * 1e-6));
  const c: AdamCfg = { lr: 1e-2, betas: [0.9, 0.999], eps: 1e-4, weightDecay: 0, amsgrad: false, decoupled: false };
  const got = await runGpu(gpu, makeAdam(c), 3, tiny);
  const want = refAdam([P0, P1], tiny, 3, c);
  assertNear(got, want, 'Adam eps 1e-4, grads ~1e-6');
  // The update is ~100x smaller than with eps 1e-8: check the step itself, not just the weights.
  const step = want[0]![0]![0]! - P0[0]!;
  assert.ok(Math.abs(step) < 2e-4 && Math.abs(step) > 1e-6, `eps-limited step ${step}`);
  const gotStep = got[0]![0]![0]! - P0[0]!;
  assert.ok(Math.abs(gotStep - step) <= 1e-3 * Math.abs(step) + 6e-8, `step ${gotStep} vs ${step}`);
});

test('setLr changes the rate through the uniform block: no new pipelines, matches float64 with a schedule', async () => {
  const gpu = await getGpu();
  const c: SgdCfg = { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: false };
  const lrs = [0.1, 0.05, 0.02, 0.3];
  const ps = makeParams(gpu);
  const opt = new SGD(ps, c);
  const out: number[][][] = [];
  let pipelines = -1;
  for (let t = 0; t < 4; t++) {
    opt.setLr(lrs[t]!);
    assert.is(opt.lr, lrs[t]);
    setGrads(gpu, ps, t, gradAt);
    opt.step();
    if (t === 0) pipelines = gpu.counters.pipelines;
    out.push(await readAll(ps));
  }
  assert.is(gpu.counters.pipelines, pipelines, 'no pipeline created after the first step');
  assertNear(out, refSgd([P0, P1], gradAt, 4, c, (t) => lrs[t]!), 'scheduled SGD vs float64');
  opt.dispose();
  for (const p of ps) p.dispose();
});

test('state dict round trip continues bit-identically (SGD, Adam, AdamW+amsgrad); snapshots do not change', async () => {
  const gpu = await getGpu();
  const makers: [string, (ps: Tensor[]) => Optimizer][] = [
    ['sgd', (ps) => new SGD(ps, { lr: 0.05, nesterov: true })],
    ['adam', (ps) => new Adam(ps, { lr: 1e-2, eps: 1e-4, weightDecay: 0.01 })],
    ['adamw', (ps) => new AdamW(ps, { lr: 1e-2, amsgrad: true })],
  ];
  const grads = skipGrads(['1,1']); // a skipped step makes the per-parameter counts differ
  for (const [name, make] of makers) {
    const straight = await runGpu(gpu, make, 4, grads);

    const ps = makeParams(gpu);
    let opt = make(ps);
    for (let t = 0; t < 2; t++) {
      setGrads(gpu, ps, t, grads);
      opt.step();
    }
    const saved = opt.stateDict();
    const snapshot = await Promise.all(Object.values(saved.tensors).map(async (t) => [...(await t.read())]));
    // Go on with the old optimiser for a step: the snapshot must not move.
    setGrads(gpu, ps, 2, grads);
    opt.step();
    const after = await Promise.all(Object.values(saved.tensors).map(async (t) => [...(await t.read())]));
    assert.equal(bits(after), bits(snapshot), `${name}: snapshot unchanged by later steps`);
    opt.dispose();
    // "Resume": parameters as saved (re-run the first two steps from scratch), fresh optimiser + load.
    for (const p of ps) p.dispose();
    const ps2 = makeParams(gpu);
    const pre = make(ps2);
    for (let t = 0; t < 2; t++) {
      setGrads(gpu, ps2, t, grads);
      pre.step();
    }
    pre.dispose();
    opt = make(ps2);
    opt.setLr(123); // overwritten by the load (hyperparameters are part of the state)
    const json = JSON.parse(JSON.stringify({ ...saved, tensors: {} })) as OptimizerState;
    opt.loadStateDict({ ...json, tensors: saved.tensors } as never);
    for (const t of Object.values(saved.tensors)) t.dispose(); // the optimiser copied them
    assert.is(opt.stepCount, 2);
    assert.is(opt.lr, saved.hyper.lr);
    const resumed: number[][][] = [];
    for (let t = 2; t < 4; t++) {
      setGrads(gpu, ps2, t, grads);
      opt.step();
      resumed.push(await readAll(ps2));
    }
    assert.equal(bits(resumed), bits(straight.slice(2)), `${name}: 2 + load + 2 steps == 4 steps, bit for bit`);
    opt.dispose();
    for (const p of ps2) p.dispose();
  }
});

test('loadStateDict rejects mismatched state before changing anything', async () => {
  const gpu = await getGpu();
  const ps = makeParams(gpu);
  const adam = new Adam(ps, { lr: 1e-3 });
  setGrads(gpu, ps, 0, gradAt);
  adam.step();
  const st = adam.stateDict();
  const sgd = new SGD(ps, { lr: 0.1 });
  assert.throws(() => sgd.loadStateDict(st as never), /state is for adam/);
  const other = new Adam(ps, { lr: 0.5 });
  const missing = { ...st, tensors: { ...st.tensors } };
  delete missing.tensors['state.1.exp_avg_sq'];
  assert.throws(() => other.loadStateDict(missing), /missing tensor state\.1\.exp_avg_sq/);
  const wrong = { ...st, tensors: { ...st.tensors, 'state.0.exp_avg': st.tensors['state.1.exp_avg']! } };
  assert.throws(() => other.loadStateDict(wrong), /state\.0\.exp_avg is .*\[2,3\]/);
  assert.throws(() => other.loadStateDict({ ...st, paramSteps: [1] }), /1 parameters/);
  assert.throws(() => other.loadStateDict({ ...st, hyper: { ...st.hyper, betas: [1.5, 0.9] } }), /betas\[0\]/);
  assert.is(other.lr, 0.5, 'failed loads leave the optimiser as it was');
  assert.is(other.stepCount, 0);
  for (const t of Object.values(st.tensors)) t.dispose();
  for (const o of [adam, sgd, other]) o.dispose();
  for (const p of ps) p.dispose();
});

test('bad inputs throw before any dispatch', async () => {
  const gpu = await getGpu();
  const ps = makeParams(gpu);
  assert.throws(() => new SGD([], { lr: 0.1 }), /empty parameter list/);
  assert.throws(() => new SGD([ps[0]!, ps[0]!], { lr: 0.1 }), /appears twice/);
  assert.throws(() => new SGD(ps, { lr: -1 }), /lr must be/);
  assert.throws(() => new SGD(ps, { lr: 0.1, nesterov: true, dampening: 0.1 }), /Nesterov/);
  assert.throws(() => new SGD(ps, { lr: 0.1, momentum: 0, nesterov: true }), /Nesterov/);
  assert.throws(() => new Adam(ps, { lr: 0.1, betas: [0.9, 1] }), /betas\[1\]/);
  assert.throws(() => new AdamW(ps, { lr: 0.1, eps: -1 }), /eps/);
  assert.throws(() => new SGD([tensor(Int32Array.from([1]), [1], 'i32', gpu)], { lr: 0.1 }), /must be f32/);
  const opt = new Adam(ps, { lr: 0.1 });
  assert.throws(() => opt.setLr(NaN), /lr must be/);
  ps[0]!.grad = tensor(new Float32Array(4), [4], 'f32', gpu);
  const before = gpu.counters.dispatches;
  assert.throws(() => opt.step(), /gradient .*\[4\] does not match parameter p0 f32\[5\]/);
  assert.is(gpu.counters.dispatches, before, 'no dispatch');
  assert.is(opt.stepCount, 0, 'a failed step counts nothing');
  assert.throws(() => clipGradNorm(ps, -1), /maxNorm/);
  assert.throws(() => clipGradNorm(ps, 1, 0), /normType/);
  assert.throws(() => clipGradNorm(ps, 1, NaN), /normType/);
  assert.is(gpu.counters.dispatches, before, 'no dispatch');
  opt.zeroGrad();
  opt.dispose();
  for (const p of ps) p.dispose();
});

// ---------------------------------------------------------------------------------------------
// Many parameters: dispatch grouping, windows over big tensors, determinism, leaks.

const manyShapes = [[7], [1], [64], [3, 5], [129], [2, 2, 2], [97], [1000], [13, 11], [4], [256]];

function manyInit(seed: number): number[][] {
  return manyShapes.map((s, i) => [...randArray(s.reduce((a, b) => a * b, 1), seed + i)]);
}
function manyGrads(seed: number): GradFn {
  return (t, idx, n) => [...randArray(n, seed * 1000 + t * 100 + idx)];
}

async function runMany(gpu: Gpu, make: (ps: Tensor[]) => Optimizer, steps: number): Promise<{ out: number[][][]; perStep: number[]; live: number[]; readbacks: number }> {
  const init = manyInit(11);
  const grads = manyGrads(3);
  const ps = init.map((a, i) => tensor(Float32Array.from(a), manyShapes[i], 'f32', gpu).param(`m${i}`));
  const opt = make(ps);
  const perStep: number[] = [];
  const live: number[] = [];
  let readbacks = 0;
  for (let t = 0; t < steps; t++) {
    setGrads(gpu, ps, t, grads);
    const d0 = gpu.counters.dispatches;
    const r0 = gpu.counters.readbacks;
    opt.step();
    perStep.push(gpu.counters.dispatches - d0);
    readbacks += gpu.counters.readbacks - r0;
    await gpu.sync();
    live.push(gpu.pool.snapshot().liveBytes);
  }
  const out = [await readAll(ps)];
  opt.zeroGrad();
  opt.dispose();
  for (const p of ps) p.dispose();
  return { out, perStep, live, readbacks };
}

test('many parameters: one dispatch per group of slots, same count every step, no readback, no leak, all variants bit-identical', async () => {
  const gpu = await getGpu();
  await gpu.sync();
  const live0 = gpu.pool.snapshot().liveBytes;
  const n = manyShapes.length;
  const cfgA: AdamCfg = { lr: 3e-3, betas: [0.9, 0.99], eps: 1e-6, weightDecay: 0.02, amsgrad: true, decoupled: true };
  const cfgS: SgdCfg = { lr: 0.02, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: true };
  const variants: { name: string; opts: Record<string, number>; slots: number }[] = [
    { name: 'default', opts: {}, slots: 0 },
    { name: 'one slot', opts: { slotsPerDispatch: 1 }, slots: 1 },
    { name: '3 slots, 64-element windows', opts: { slotsPerDispatch: 3, segmentElements: 64 }, slots: 3 },
  ];
  for (const [name, make, ref] of [
    ['adamw+amsgrad', (o: object) => makeAdam(cfgA, o), () => refAdam(manyInit(11), manyGrads(3), 5, cfgA)],
    ['sgd nesterov', (o: object) => (ps: Tensor[]) => new SGD(ps, { ...cfgS, ...o }), () => refSgd(manyInit(11), manyGrads(3), 5, cfgS)],
  ] as const) {
    const want = ref().slice(-1);
    let first = '';
    for (const v of variants) {
      const r = await runMany(gpu, make(v.opts), 5);
      assertNear(r.out, want, `${name} ${v.name} vs float64`, 1e-6);
      const b = bits(r.out);
      if (!first) first = b;
      else assert.is(b, first, `${name} ${v.name}: bit-identical to the default variant`);
      assert.ok(r.perStep.every((d) => d === r.perStep[0]), `${name} ${v.name}: dispatches per step ${r.perStep}`);
      if (v.slots === 1) assert.is(r.perStep[0], n, `${name}: one dispatch per parameter`);
      if (v.slots === 3) {
        const segs = manyShapes.reduce((s, sh) => s + Math.ceil(sh.reduce((a, b) => a * b, 1) / 64), 0);
        assert.is(r.perStep[0], Math.ceil(segs / 3), `${name}: ${segs} windows in groups of 3`);
      }
      if (v.slots === 0) assert.ok(r.perStep[0]! < n, `${name}: grouped (${r.perStep[0]} dispatches for ${n} params)`);
      assert.is(r.readbacks, 0, 'step() reads nothing back');
      assert.ok(r.live.slice(1).every((x) => x === r.live[0]), `${name} ${v.name}: live bytes stable across steps ${r.live}`);
    }
  }
  await gpu.sync();
  assert.is(gpu.pool.snapshot().liveBytes, live0, 'device bytes leaked');
});

test('a parameter over 65535 workgroups (grid split over y): clipGradNorm then SGD', async () => {
  const gpu = await getGpu();
  const n = 64 * 70000 + 3;
  const p0 = randArray(n, 5);
  const g0 = randArray(n, 6);
  const p = tensor(Float32Array.from(p0), [n], 'f32', gpu).param('big');
  p.grad = tensor(Float32Array.from(g0), [n], 'f32', gpu);
  // Clipping first: its scale kernel also runs over > 65535 workgroups.
  let sq = 0;
  for (let i = 0; i < n; i++) sq += g0[i]! * g0[i]!;
  const total = Math.sqrt(sq);
  const norm = clipGradNorm([p], total / 2);
  const got0 = await norm.item();
  assert.ok(Math.abs(got0 - total) <= 1e-5 * total, `norm ${got0} vs ${total}`);
  norm.dispose();
  const s = Math.fround(Math.fround(total / 2) / Math.fround(got0 + 1e-6));
  const opt = new SGD([p], { lr: 0.5, weightDecay: 0.25 });
  opt.step();
  const got = await p.read();
  for (const i of [0, 1, 64 * 65535 - 1, 64 * 65535, 64 * 65535 + 1, n - 2, n - 1]) {
    const want = p0[i]! - 0.5 * (g0[i]! * s + 0.25 * p0[i]!);
    assert.ok(Math.abs(got[i]! - want) <= 2e-7 * Math.max(1, Math.abs(want)), `element ${i}: ${got[i]} vs ${want}`);
  }
  opt.zeroGrad();
  opt.dispose();
  p.dispose();
});

test('slot planning follows the device limits (WebGPU minimum 8 storage buffers, 256-byte offset alignment)', () => {
  const dev = (buffers: number) =>
    ({ limits: { maxStorageBuffersPerShaderStage: buffers, minStorageBufferOffsetAlignment: 256, maxStorageBufferBindingSize: 2 ** 27, maxBufferSize: 2 ** 28 } }) as unknown as Gpu;
  // (p, g, buf) = 3, (p, g, m, v) = 4, amsgrad 5 per slot; clipping: 1 per slot + 1 shared.
  assert.equal([3, 4, 5].map((k) => slotsFor(dev(8), k, 0)), [2, 2, 1]);
  assert.equal([3, 4, 5].map((k) => slotsFor(dev(16), k, 0)), [5, 4, 3]);
  assert.is(slotsFor(dev(8), 1, 1), 7);
  assert.is(slotsFor(dev(32), 1, 1), 8, 'capped by the uniform block');
  assert.is(slotsFor(dev(16), 4, 0, 1), 1, 'forced');
  assert.throws(() => slotsFor(dev(4), 5, 0), /maxStorageBuffersPerShaderStage 4/);
  assert.is(segmentElements(dev(8)), 2 ** 25);
  assert.is(segmentElements(dev(8), 100), 64, 'rounded down to the offset alignment');
  const segs = planSegments([130, 0, 64, 5], [3, 0, 1, 2], 64);
  assert.equal(segs.map((x) => [x.index, x.offset, x.count]), [[3, 0, 5], [0, 0, 64], [0, 64, 64], [0, 128, 2], [2, 0, 64]]);
  const groups = groupSegments(segs, 2, 64);
  assert.equal(groups.map((g) => [g.segs.length, [...g.wg0], g.workgroups]), [[2, [0, 1], 2], [2, [0, 1], 2], [1, [0], 1]]);
});

// ---------------------------------------------------------------------------------------------
// clipGradNorm.

test('clipGradNorm matches torch 1.13 (2-norm clipping and not, 1-norm, infinity norm)', async () => {
  const gpu = await getGpu();
  for (const [name, maxNorm, normType] of [
    ['clip2', 1.0, 2],
    ['noclip2', 100.0, 2],
    ['clipinf', 0.5, Infinity],
    ['clip1', 2.0, 1],
  ] as const) {
    const ps = makeParams(gpu);
    ps[0]!.grad = tensor(Float32Array.from(gradAt(0, 0, 5)), [5], 'f32', gpu);
    ps[1]!.grad = tensor(Float32Array.from(gradAt(1, 1, 6)), [2, 3], 'f32', gpu);
    const norm = clipGradNorm(ps, maxNorm, normType);
    const ref = TORCH_CLIP[name]!;
    assert.equal([...norm.shape], [1]);
    assertNear([await norm.item()], [ref.norm], `${name} norm`, 2e-7);
    assertNear([[...(await ps[0]!.grad.read())], [...(await ps[1]!.grad!.read())]], ref.grads, `${name} grads`, 2e-7);
    if (name === 'noclip2') assert.equal([...(await ps[0]!.grad.read())], gradAt(0, 0, 5), 'unclipped grads are untouched');
    norm.dispose();
    for (const p of ps) p.dispose();
  }
});

function refNorm(gs: number[][], p: number): number {
  if (p === Infinity) return Math.max(...gs.flat().map(Math.abs));
  return gs.flat().reduce((s, x) => s + Math.abs(x) ** p, 0) ** (1 / p);
}

test('clipGradNorm vs float64 over many gradients: every variant, determinism, shared storage, params without grad', async () => {
  const gpu = await getGpu();
  await gpu.sync();
  const live0 = gpu.pool.snapshot().liveBytes;
  const shapes = [[5000], [1], [7, 3], [1024], [1025], [3], [40000], [33]];
  const gs = shapes.map((s, i) => [...randArray(s.reduce((a, b) => a * b, 1), 70 + i, -1, 1)]);
  for (const normType of [2, 1, 3, Infinity]) {
    const total = refNorm(gs, normType);
    for (const maxNorm of [total * 0.25, total * 4, Infinity]) {
      let first = '';
      for (const opts of [{}, { slotsPerDispatch: 1 }, { slotsPerDispatch: 2, segmentElements: 1024 }, { segmentElements: 64 }]) {
        const ps = shapes.map((s, i) => {
          const p = tensor(new Float32Array(gs[i]!.length), s, 'f32', gpu).param(`q${i}`);
          p.grad = tensor(Float32Array.from(gs[i]!), s, 'f32', gpu);
          return p;
        });
        const extra = tensor(new Float32Array(3), [3], 'f32', gpu).param('nograd');
        const r0 = gpu.counters.readbacks;
        const norm = clipGradNorm([...ps, extra], maxNorm, normType, opts);
        assert.is(gpu.counters.readbacks, r0, 'no readback');
        const got = await norm.item();
        const tol = normType === 3 ? 2e-6 : 1e-6;
        assert.ok(Math.abs(got - total) <= tol * total, `p=${normType} norm ${got} vs ${total} (${JSON.stringify(opts)})`);
        const scale = Math.min(1, maxNorm / (total + 1e-6));
        const after = [];
        for (const p of ps) after.push([...(await p.grad!.read())]);
        assertNear(after, gs.map((g) => g.map((x) => x * scale)), `p=${normType} max=${maxNorm} grads`, 1e-6);
        const b = bits(after) + bits([[got]]);
        if (!first) first = b;
        else assert.is(b, first, `p=${normType}: bit-identical across slot/window variants ${JSON.stringify(opts)}`);
        norm.dispose();
        extra.dispose();
        for (const p of ps) p.dispose();
      }
    }
  }
  // Two leaves whose gradients share storage (as `a + b` produces): counted twice, scaled once.
  const g = [3, 4];
  const a = tensor(new Float32Array(2), [2], 'f32', gpu).param('a');
  const b = tensor(new Float32Array(2), [2], 'f32', gpu).param('b');
  a.grad = tensor(Float32Array.from(g), [2], 'f32', gpu);
  b.grad = a.grad.share();
  const n = clipGradNorm([a, b], 1);
  assertNear([await n.item()], [Math.sqrt(50)], 'shared norm', 2e-7);
  const s = 1 / (Math.sqrt(50) + 1e-6);
  assertNear([...(await a.grad.read())], g.map((x) => x * s), 'shared grads scaled once', 2e-7);
  n.dispose();
  a.dispose();
  b.dispose();
  // Nothing to clip: 0, like torch.
  const zp = tensor(new Float32Array(2), [2], 'f32', gpu).param('z');
  const z = clipGradNorm([zp], 1);
  assert.is(await z.item(), 0);
  z.dispose();
  zp.dispose();
  await gpu.sync();
  assert.is(gpu.pool.snapshot().liveBytes, live0, 'device bytes leaked');
});

test('clipGradNorm is deterministic run to run and costs a fixed number of dispatches', async () => {
  const gpu = await getGpu();
  const shapes = [[300000], [17], [4096]];
  const gs = shapes.map((s, i) => Float32Array.from(randArray(s[0]!, 90 + i)));
  const results: string[] = [];
  const counts: number[] = [];
  for (let run = 0; run < 3; run++) {
    const ps = shapes.map((s, i) => {
      const p = tensor(new Float32Array(s[0]!), s, 'f32', gpu).param();
      p.grad = tensor(gs[i]!, s, 'f32', gpu);
      return p;
    });
    const d0 = gpu.counters.dispatches;
    const norm = clipGradNorm(ps, 1, 2, { slotsPerDispatch: 2 });
    counts.push(gpu.counters.dispatches - d0);
    results.push(bits([[await norm.item()], [...(await ps[0]!.grad!.read()).slice(0, 1000)]]));
    norm.dispose();
    for (const p of ps) p.dispose();
  }
  assert.ok(results.every((r) => r === results[0]), 'bit-identical norm and grads across runs');
  // 3 gradients in groups of 2: 2 partials dispatches + 1 total + 2 scale dispatches.
  assert.equal(counts, [5, 5, 5]);
});

test.run();

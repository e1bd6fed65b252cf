import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { attention, attentionTiles, setAttentionTiles, type AttentionOptions, type AttentionTiles } from '../../src/ops/attention.js';
import { attentionSources } from '../../src/ops/attention-kernels.js';
import { add, mul } from '../../src/ops/elementwise.js';
import { attentionRef } from '../ref/attention.js';
import * as ref from '../ref/core.js';
import { checkOp, randArray, type InputSpec } from '../helpers/parity.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import { createGpu, getGpu, setCurrentGpu } from '../../src/gpu/index.js';
import { clearTape, noGrad, tapeLength } from '../../src/autograd/tape.js';
import type { R } from '../ref/core.js';

interface Case {
  b: number;
  tq: number;
  tk?: number;
  d: number;
  heads: number;
  causal?: boolean;
  /** Mask shape and values (default: random in [-3, 1]). */
  mask?: { shape: number[]; data?: number[] };
  scale?: number;
  /** Which of q, k, v get gradients (default all). */
  grads?: [boolean, boolean, boolean];
  range?: [number, number];
  data?: [number[], number[], number[]];
  /** Keep P from forward to backward (default: alternates between calls, so both paths run). */
  keep?: boolean;
}

let alternate = false;

function caseName(c: Case): string {
  const g = c.grads ? ` grads(q,k,v)=${c.grads.map(Number).join('')}` : '';
  return `attention B${c.b} Tq${c.tq} Tk${c.tk ?? c.tq} D${c.d} h${c.heads}${c.causal ? ' causal' : ''}${c.mask ? ` mask[${c.mask.shape}]` : ''}${g} ${c.keep ? 'keeping P' : 'recomputing P'}`;
}

function optsOf<M>(c: Case, m: M | undefined): { heads: number; causal: boolean; mask?: M; scale?: number } {
  return { heads: c.heads, causal: !!c.causal, ...(m ? { mask: m } : {}), ...(c.scale !== undefined ? { scale: c.scale } : {}) };
}

async function check(c0: Case): Promise<void> {
  const c = { ...c0, keep: c0.keep ?? (alternate = !alternate) };
  const tk = c.tk ?? c.tq;
  const g = c.grads ?? [true, true, true];
  const range = c.range ?? [-2, 2];
  const inputs: InputSpec[] = [
    { shape: [c.b, c.tq, c.d], grad: g[0], range, ...(c.data ? { data: c.data[0] } : {}) },
    { shape: [c.b, tk, c.d], grad: g[1], range, ...(c.data ? { data: c.data[1] } : {}) },
    { shape: [c.b, tk, c.d], grad: g[2], ...(c.data ? { data: c.data[2] } : {}) },
  ];
  if (c.mask) inputs.push({ shape: c.mask.shape, grad: false, ...(c.mask.data ? { data: c.mask.data } : { range: [-3, 1] }) });
  await checkOp({
    name: caseName(c),
    inputs,
    gpu: (q, k, v, m) => attention(q!, k!, v!, { ...optsOf(c, m), keepProbs: c.keep } as AttentionOptions),
    ref: (q, k, v, m) => attentionRef(q!, k!, v!, optsOf<R>(c, m)),
    fdCoords: 6,
  });
}

/** Runs `fn` with forced tiles, restoring the defaults after. */
async function withTiles(t: Partial<AttentionTiles>, fn: () => Promise<void>): Promise<void> {
  setAttentionTiles(t);
  try {
    await fn();
  } finally {
    setAttentionTiles(null);
  }
}

/** A mask of `shape` with values in [-3, 1) and -inf at the given flat indices. */
function maskWithInf(shape: number[], infAt: (i: number) => boolean, seed = 99): number[] {
  const n = shape.reduce((a, b) => a * b, 1);
  const vals = randArray(n, seed, -3, 1);
  return Array.from(vals, (v, i) => (infAt(i) ? -Infinity : v));
}

test('Tq == Tk, full and causal', async () => {
  for (const causal of [false, true]) {
    await check({ b: 2, tq: 5, d: 16, heads: 2, causal });
    await check({ b: 1, tq: 17, d: 32, heads: 4, causal });
  }
});

test('T = 1, and a single query over many keys', async () => {
  for (const causal of [false, true]) {
    await check({ b: 3, tq: 1, d: 8, heads: 2, causal });
    await check({ b: 2, tq: 1, tk: 6, d: 8, heads: 1, causal });
  }
});

test('Tq != Tk: extra key rows before the sequence are visible to every query (causal offset)', async () => {
  await check({ b: 2, tq: 3, tk: 7, d: 8, heads: 2 });
  await check({ b: 2, tq: 3, tk: 7, d: 8, heads: 2, causal: true });
  await check({ b: 1, tq: 13, tk: 17, d: 16, heads: 2, causal: true });
  // Tq > Tk with causal: the first Tq - Tk queries see no key and output zeros.
  await check({ b: 2, tq: 7, tk: 3, d: 8, heads: 2, causal: true });
});

test('heads 1/2/4, head dims 4/8/64, primes 17/50/77, batch 1..4', async () => {
  await check({ b: 4, tq: 3, d: 4, heads: 1 });
  await check({ b: 3, tq: 6, d: 16, heads: 2 });
  await check({ b: 1, tq: 17, d: 128, heads: 2, causal: true });
  await check({ b: 2, tq: 50, d: 64, heads: 4 });
  await check({ b: 1, tq: 77, d: 128, heads: 2, causal: true });
});

test('head dims that are not a multiple of 4 take the scalar path', async () => {
  await check({ b: 2, tq: 5, d: 6, heads: 1 });
  await check({ b: 2, tq: 9, tk: 4, d: 9, heads: 3, causal: true });
  await check({ b: 1, tq: 6, d: 10, heads: 2, mask: { shape: [6, 6] } });
});

test('custom scale', async () => {
  await check({ b: 2, tq: 5, d: 8, heads: 2, scale: 0.9 });
});

test('additive masks: [Tq,Tk], [B,1,Tq,Tk], [B,h,Tq,Tk], key padding [B,1,1,Tk] and [Tk], with -inf', async () => {
  const b = 2;
  const h = 2;
  const tq = 5;
  const tk = 7;
  await check({ b, tq, tk, d: 8, heads: h, mask: { shape: [tq, tk], data: maskWithInf([tq, tk], (i) => i % 5 === 2) } });
  await check({ b, tq, tk, d: 8, heads: h, mask: { shape: [b, 1, tq, tk], data: maskWithInf([b, 1, tq, tk], (i) => i % 7 === 3) } });
  await check({ b, tq, tk, d: 8, heads: h, mask: { shape: [b, h, tq, tk] } });
  // Key padding: the last two keys of batch 1 are masked for every query.
  await check({ b, tq, tk, d: 8, heads: h, mask: { shape: [b, 1, 1, tk], data: maskWithInf([b, 1, 1, tk], (i) => i >= 2 * tk - 2) } });
  await check({ b, tq, tk, d: 8, heads: h, mask: { shape: [tk], data: maskWithInf([tk], (i) => i === 0) } });
  // A finite "minus infinity" (HF uses finfo(float32).min) behaves like -inf.
  await check({ b, tq, tk, d: 8, heads: h, mask: { shape: [1, tq, tk], data: maskWithInf([1, tq, tk], () => false).map((v, i) => (i % 3 === 0 ? -3.4028234663852886e38 : v)) } });
  // Mask and causal together.
  await check({ b, tq, tk, d: 8, heads: h, causal: true, mask: { shape: [tq, tk] } });
});

test('a fully masked row outputs zeros and passes zero gradients (no NaN)', async () => {
  const tq = 4;
  const tk = 5;
  // Row 2 of head 1 is masked everywhere.
  const mask = maskWithInf([1, 2, tq, tk], (i) => i >= (tq + 2) * tk && i < (tq + 3) * tk);
  await check({ b: 2, tq, tk, d: 8, heads: 2, mask: { shape: [1, 2, tq, tk], data: mask } });
  const gpu = await getGpu();
  const q = tensor(randArray(2 * tq * 8, 1), [2, tq, 8]).param();
  const k = tensor(randArray(2 * tk * 8, 2), [2, tk, 8]).param();
  const v = tensor(randArray(2 * tk * 8, 3), [2, tk, 8]).param();
  const m = tensor(Float32Array.from(mask), [1, 2, tq, tk]);
  const o = attention(q, k, v, { heads: 2, mask: m });
  o.backward({ gradient: tensor(new Float32Array(o.size).fill(1), o.shape) });
  const out = await o.read();
  for (let b = 0; b < 2; b++) for (let c = 4; c < 8; c++) assert.is(out[(b * tq + 2) * 8 + c], 0, 'masked row output');
  for (const t of [q, k, v]) for (const x of await t.grad!.read()) assert.ok(Number.isFinite(x), 'gradients are finite');
  const gq = await q.grad!.read();
  for (let b = 0; b < 2; b++) for (let c = 4; c < 8; c++) assert.is(gq[(b * tq + 2) * 8 + c], 0, 'masked row dQ');
  for (const t of [q, k, v, m, o]) t.dispose();
  assert.ok(gpu);
});

test('large logits are stable (max subtraction): one-hot attention', async () => {
  // s_ij = 0.5 * 100 * 100 * [j == (i+1) % 4]: exp without the max would overflow to inf.
  const t = 4;
  const hot = (i: number, j: number) => (j === (i + 1) % t ? 100 : 0);
  const q = Array.from({ length: t * 4 }, (_, x) => hot(Math.floor(x / 4), x % 4));
  const k = Array.from({ length: t * 4 }, (_, x) => (Math.floor(x / 4) === x % 4 ? 100 : 0));
  const v = Array.from(randArray(t * 4, 5));
  await check({ b: 1, tq: t, d: 4, heads: 1, data: [q, k, v] });
});

test('gradients of q, k, v each alone and in pairs', async () => {
  const all: [boolean, boolean, boolean][] = [
    [true, false, false],
    [false, true, false],
    [false, false, true],
    [true, false, true],
    [false, true, true],
  ];
  for (const grads of all) {
    await check({ b: 2, tq: 6, tk: 9, d: 16, heads: 2, causal: true, grads });
    await check({ b: 1, tq: 5, d: 8, heads: 2, grads, mask: { shape: [5, 5] } });
  }
});

test('backward runs only the kernels the needed gradients use', async () => {
  const gpu = await getGpu();
  const mk = (t: number, seed: number) => tensor(randArray(2 * t * 16, seed), [2, t, 16]);
  // Dispatches of backward alone. Recomputing P: scores + softmax first. Then dV: 1 kernel; dQ or
  // dK: delta + dS, then 1 kernel each.
  const expected: [[boolean, boolean, boolean], number][] = [
    [[false, false, true], 1],
    [[true, false, false], 3],
    [[false, true, false], 3],
    [[true, true, false], 4],
    [[true, true, true], 5],
  ];
  for (const keepProbs of [true, false]) {
    for (const [needs, count] of expected) {
      const [q, k, v] = [mk(5, 1), mk(7, 2), mk(7, 3)];
      [q, k, v].forEach((t, i) => (t.requiresGrad = needs[i]!));
      const o = attention(q, k, v, { heads: 2, causal: true, keepProbs });
      const seed = tensor(randArray(o.size, 4), o.shape);
      await gpu.sync();
      const before = gpu.counters.dispatches;
      o.backward({ gradient: seed });
      const want = count + (keepProbs ? 0 : 2);
      assert.is(gpu.counters.dispatches - before, want, `backward dispatches with needs ${needs}, keepProbs ${keepProbs}`);
      [q, k, v].forEach((t, i) => assert.is(!!t.grad, needs[i], `input ${i} has a gradient`));
      for (const t of [q, k, v, o, seed]) t.dispose();
    }
  }
  // Frozen inputs: three forward dispatches and nothing recorded.
  const [q, k, v] = [mk(5, 1), mk(5, 2), mk(5, 3)];
  const tape0 = tapeLength();
  const before = gpu.counters.dispatches;
  const o = attention(q, k, v, { heads: 2 });
  assert.is(gpu.counters.dispatches - before, 3, 'forward dispatches');
  assert.is(tapeLength(), tape0, 'no tape node for frozen inputs');
  for (const t of [q, k, v, o]) t.dispose();
});

test('retainGraph: a second backward gives the same gradients (kept P is not overwritten)', async () => {
  for (const keepProbs of [true, false]) {
    const q = tensor(randArray(2 * 6 * 8, 21), [2, 6, 8]).param();
    const k = tensor(randArray(2 * 6 * 8, 22), [2, 6, 8]).param();
    const v = tensor(randArray(2 * 6 * 8, 23), [2, 6, 8]).param();
    const o = attention(q, k, v, { heads: 2, keepProbs });
    const seed = tensor(randArray(o.size, 24), o.shape);
    o.backward({ gradient: seed, retainGraph: true });
    const first = await Promise.all([q, k, v].map((t) => t.grad!.read()));
    o.backward({ gradient: seed });
    const second = await Promise.all([q, k, v].map((t) => t.grad!.read()));
    // The second pass accumulates the same gradient again.
    first.forEach((g, i) => g.forEach((x, j) => assert.ok(Math.abs(second[i]![j]! - 2 * x) <= 1e-6 * (1 + Math.abs(x)), `keepProbs ${keepProbs}: input ${i}[${j}]`)));
    for (const t of [q, k, v, o, seed]) t.dispose();
  }
});

test('deterministic: forward and gradients are bit-identical across runs and memory modes', async () => {
  const runOnce = async (keepProbs: boolean) => {
    const q = tensor(randArray(3 * 13 * 32, 11), [3, 13, 32]).param();
    const k = tensor(randArray(3 * 19 * 32, 12), [3, 19, 32]).param();
    const v = tensor(randArray(3 * 19 * 32, 13), [3, 19, 32]).param();
    const o = attention(q, k, v, { heads: 4, causal: true, keepProbs });
    o.backward({ gradient: tensor(randArray(o.size, 14), o.shape) });
    const res = [await o.read(), await q.grad!.read(), await k.grad!.read(), await v.grad!.read()];
    for (const t of [q, k, v, o]) t.dispose();
    return res;
  };
  const a = await runOnce(true);
  const b = await runOnce(true);
  a.forEach((x, i) => assert.equal(Array.from(b[i]!), Array.from(x), `run-to-run output ${i}`));
  // Recomputing P reproduces the forward's P bit for bit, so the gradients do not depend on the mode.
  const c = await runOnce(false);
  a.forEach((x, i) => assert.equal(Array.from(c[i]!), Array.from(x), `keeping vs recomputing P, output ${i}`));
});

test('forced kernel variants: tiny tiles, GPU-sized tiles, scalar path', async () => {
  const variants: Partial<AttentionTiles>[] = [
    { qkRows: 1, qkKeys: 4, nnRows: 1, nnCols: 1, tnKeys: 4, tnCols: 1, wg: 1 },
    { qkRows: 4, qkKeys: 4, nnRows: 4, nnCols: 1, tnKeys: 4, tnCols: 1, wg: 64 },
    { vec: 1, qkRows: 3, qkKeys: 8, nnRows: 5, nnCols: 3, tnKeys: 8, tnCols: 2, wg: 7 },
  ];
  for (const t of variants) {
    await withTiles(t, async () => {
      await check({ b: 2, tq: 9, tk: 11, d: 16, heads: 2, causal: true });
      await check({ b: 1, tq: 6, d: 24, heads: 2, mask: { shape: [1, 1, 6, 6], data: maskWithInf([1, 1, 6, 6], (i) => i % 6 === 5) } });
    });
  }
});

test('more than 65535 workgroups in x', async () => {
  // 70000 query rows, one per invocation with workgroups of 1: every kernel's grid splits over y.
  await withTiles({ qkRows: 1, qkKeys: 4, nnRows: 1, nnCols: 1, tnKeys: 4, tnCols: 1, wg: 1 }, async () => {
    await check({ b: 1, tq: 70000, tk: 2, d: 4, heads: 1, causal: true });
  });
});

test('RPP: query, key and value rows projected from different inputs at the prompt slots', async () => {
  // Tokens x [B,T,D] share one hidden state except at the prompt slots (rows 1..2), where q, k and v
  // come from separate learnable vectors pq, pk, pv; a diagonal projection per stream stands in for
  // W_q/W_k/W_v. All four inputs need gradients: x through all three streams, each prompt through one.
  const b = 2;
  const t = 6;
  const d = 8;
  const isPrompt = Array.from({ length: t }, (_, i) => (i === 1 || i === 2 ? 1 : 0));
  const promptSel = Float32Array.from({ length: t }, (_, i) => isPrompt[i]!);
  const realSel = Float32Array.from({ length: t }, (_, i) => 1 - isPrompt[i]!);
  const w = [randArray(d, 71, 0.5, 1.5), randArray(d, 72, 0.5, 1.5), randArray(d, 73, 0.5, 1.5)];
  const gpu = await getGpu();
  const gpuSel = [tensor(realSel, [1, t, 1], 'f32', gpu), tensor(promptSel, [1, t, 1], 'f32', gpu)];
  const gpuW = w.map((x) => tensor(Float32Array.from(x), [d], 'f32', gpu));
  const gStream = (x: Tensor, p: Tensor, i: number) => mul(add(mul(x, gpuSel[0]!), mul(p, gpuSel[1]!)), gpuW[i]!);
  const rSel = [ref.constant(realSel, [1, t, 1]), ref.constant(promptSel, [1, t, 1])];
  const rW = w.map((x) => ref.constant(x, [d]));
  const rStream = (x: R, p: R, i: number) => ref.mul(ref.add(ref.mul(x, rSel[0]!), ref.mul(p, rSel[1]!)), rW[i]!);
  for (const causal of [false, true]) {
    await checkOp({
      name: `RPP unshared prompts${causal ? ' causal' : ''}`,
      inputs: [{ shape: [b, t, d] }, { shape: [b, t, d] }, { shape: [b, t, d] }, { shape: [b, t, d] }],
      gpu: (x, pq, pk, pv) => attention(gStream(x!, pq!, 0), gStream(x!, pk!, 1), gStream(x!, pv!, 2), { heads: 2, causal }),
      ref: (x, pq, pk, pv) => attentionRef(rStream(x!, pq!, 0), rStream(x!, pk!, 1), rStream(x!, pv!, 2), { heads: 2, causal }),
      fdCoords: 6,
    });
  }
  for (const x of [...gpuSel, ...gpuW]) x.dispose();
});

test('self-attention with one tensor as q, k and v (gradients accumulate over the three uses)', async () => {
  for (const keepProbs of [true, false]) {
    await checkOp({
      name: `attention(x, x, x) keepProbs ${keepProbs}`,
      inputs: [{ shape: [2, 7, 16] }],
      gpu: (x) => attention(x!, x!, x!, { heads: 2, causal: true, keepProbs }),
      ref: (x) => attentionRef(x!, x!, x!, { heads: 2, causal: true }),
      fdCoords: 8,
    });
  }
});

test('generated kernels stay compact (llvmpipe compile time grows with storage access sites)', async () => {
  const gpu = await getGpu();
  for (const t of [attentionTiles(gpu, 64), attentionTiles(gpu, 6)]) {
    for (const [name, code] of Object.entries(attentionSources(t))) {
      const sites = code.match(/\b(A|B|C|S|X|DS|DELTA)\[/g)?.length ?? 0;
      assert.ok(sites <= 16, `${name}: ${sites} storage access sites`);
      assert.ok(code.split('\n').length < 800, `${name}: ${code.split('\n').length} lines`);
    }
  }
});

test('methods.md 9.4 sanity check: separate key/value prompt', async () => {
  // One head, d = 2, W_q = W_k = I, W_v = diag(1, 2); real tokens X = I, one prompt with key [1,1]
  // and value [3,0] appended after them (so Tk = Tq + 1, not causal).
  const q = tensor([1, 0, 0, 1], [1, 2, 2]);
  const k = tensor([1, 0, 0, 1, 1, 1], [1, 3, 2]);
  const v = tensor([1, 0, 0, 2, 3, 0], [1, 3, 2]);
  const o = noGrad(() => attention(q, k, v, { heads: 1 }));
  const out = await o.read();
  const want = [1.604448, 0.395552, 1.401112, 0.802224];
  want.forEach((x, i) => assert.ok(Math.abs(out[i]! - x) < 2e-6, `output ${i}: ${out[i]} vs ${x}`));
  for (const t of [q, k, v, o]) t.dispose();
});

test('bad inputs are clear errors before any dispatch', async () => {
  const gpu = await getGpu();
  const t = (shape: number[], dtype: 'f32' | 'i32' = 'f32') => tensor(new (dtype === 'f32' ? Float32Array : Int32Array)(shape.reduce((a, b) => a * b, 1)), shape, dtype);
  const q = t([2, 5, 8]);
  const k = t([2, 7, 8]);
  const v = t([2, 7, 8]);
  const cases: [() => unknown, RegExp][] = [
    [() => attention(q, k, v, { heads: 3 }), /attention: D = 8 \(tensor#\d+ f32\[2,5,8\]\) is not divisible by heads = 3/],
    [() => attention(q, k, v, { heads: 0 }), /heads = 0 must be a positive integer/],
    [() => attention(q, k, v, { heads: 1.5 }), /heads = 1.5 must be a positive integer/],
    [() => attention(q, t([3, 7, 8]), t([3, 7, 8]), { heads: 2 }), /batch sizes differ/],
    [() => attention(q, k, t([2, 6, 8]), { heads: 2 }), /k and v have different lengths/],
    [() => attention(q, t([2, 7, 4]), t([2, 7, 4]), { heads: 2 }), /feature dims differ/],
    [() => attention(t([5, 8]), k, v, { heads: 2 }), /q tensor#\d+ f32\[5,8\] must be \[B,T,D\]/],
    [() => attention(q, t([2, 7, 8], 'i32'), v, { heads: 2 }), /k tensor#\d+ i32\[2,7,8\] must be f32/],
    [() => attention(q, k, v, { heads: 2, mask: t([5, 6]) }), /mask tensor#\d+ f32\[5,6\] does not broadcast to \[B,heads,Tq,Tk\] = \[2,2,5,7\]: dim 1 is 6, expected 7 or 1/],
    [() => attention(q, k, v, { heads: 2, mask: t([3, 1, 5, 7]) }), /dim 0 is 3, expected 2 or 1/],
    [() => attention(q, k, v, { heads: 2, mask: t([1, 2, 2, 5, 7]) }), /rank 5 > 4/],
    [() => attention(q, k, v, { heads: 2, mask: t([5, 7], 'i32') }), /mask tensor#\d+ i32\[5,7\] must be f32/],
    [() => attention(q, k, v, { heads: 2, mask: t([5, 7]).param() }), /mask tensor#\d+ f32\[5,7\] requires grad/],
    [() => attention(q, k, v, { heads: 2, scale: NaN }), /scale NaN must be finite/],
    [() => attention(q, t([2, 0, 8]), t([2, 0, 8]), { heads: 2 }), /k tensor#\d+ f32\[2,0,8\] is empty/],
  ];
  await gpu.sync();
  const before = gpu.counters.dispatches;
  for (const [f, re] of cases) assert.throws(f, re);
  const gone = t([2, 5, 8]);
  gone.dispose();
  assert.throws(() => attention(gone, k, v, { heads: 2 }), /attention: tensor#\d+ f32\[2,5,8\] was disposed/);
  assert.is(gpu.counters.dispatches, before, 'no dispatch for bad inputs');
  for (const x of [q, k, v]) x.dispose();
  clearTape();
});

test('scores over one storage binding are processed in batch chunks', async () => {
  // Bindings capped at 1120 B: k/v [5,7,8] just fit, the scores take 384 B per batch element, so the
  // batch runs as chunks [0,2), [2,4), [4,5), in both memory modes, with a per-batch mask.
  const main = await getGpu();
  const small = await createGpu({ limitOverrides: { maxStorageBufferBindingSize: 1120 } });
  setCurrentGpu(small);
  try {
    for (const keep of [true, false]) {
      await check({ b: 5, tq: 6, tk: 7, d: 8, heads: 2, causal: true, keep, mask: { shape: [5, 1, 6, 7] } });
    }
    const q = tensor(randArray(5 * 6 * 8, 1), [5, 6, 8]).param();
    const before = small.counters.dispatches;
    const o = attention(q, q, q, { heads: 2, keepProbs: true });
    assert.is(small.counters.dispatches - before, 9, 'three forward dispatches per chunk');
    for (const t of [q, o]) t.dispose();
    clearTape();
  } finally {
    setCurrentGpu(main);
    small.destroy();
  }
});

test('buffers over the device binding limit are clear errors before any dispatch', async () => {
  // A device whose storage bindings are capped at 4 KiB: q/k/v of 2 KiB fit, their scores do not.
  const small = await createGpu({ limitOverrides: { maxStorageBufferBindingSize: 4096 } });
  try {
    const t = (shape: number[]) => tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape, 'f32', small);
    const before = small.counters.dispatches;
    assert.throws(
      () => attention(t([1, 32, 16]), t([1, 32, 16]), t([1, 32, 16]), { heads: 2 }),
      /attention: q tensor#\d+ f32\[1,32,16\] and k tensor#\d+ f32\[1,32,16\] need 8192 bytes of scores \[heads,Tq,ceil4\(Tk\)\] = \[2,32,32\] per batch element, over this device's maxStorageBufferBindingSize 4096/,
    );
    assert.throws(() => attention(t([1, 128, 16]), t([1, 2, 16]), t([1, 2, 16]), { heads: 2 }), /f32\[1,128,16\] is 8192 bytes, over this device's maxStorageBufferBindingSize 4096/);
    assert.is(small.counters.dispatches, before);
  } finally {
    small.destroy();
  }
});

test.run();

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as ops from '../../src/ops/reduce.js';
import { add, sumTo } from '../../src/ops/elementwise.js';
import { forceReduceVariant } from '../../src/ops/reduce-core.js';
import { forEachVariant } from './variants.js';
import * as core from '../ref/core.js';
import * as ref from '../ref/reduce.js';
import { checkOp, randArray, relErr } from '../helpers/parity.js';
import { tensor } from '../../src/tensor/tensor.js';
import { getGpu } from '../../src/gpu/index.js';

type Case = { shape: number[]; axis?: number; keepDim?: boolean };

// Sizes 1, primes, non-multiples of the workgroups (8, 256) and of the invocation block (64), rows
// over the GPU short-row threshold (65), rows split into several chunks (50000 > 128 and > 256 * 32),
// many rows, reductions over leading and middle axes.
const cases: Case[] = [
  { shape: [1] },
  { shape: [1], axis: 0 },
  { shape: [7] },
  { shape: [13, 1], axis: 1 },
  { shape: [3, 5, 7], axis: 0 },
  { shape: [3, 5, 7], axis: 1, keepDim: true },
  { shape: [3, 5, 7], axis: -1 },
  { shape: [3, 5, 7], keepDim: true },
  { shape: [5, 65], axis: 1 },
  { shape: [2, 131, 3], axis: 1 },
  { shape: [257, 3], axis: 0 },
  { shape: [2, 50000], axis: -1 },
  { shape: [4099, 17], axis: 1 },
  { shape: [1021, 6], axis: 0 },
];

const name = (op: string, c: Case, v: string) => `${op} ${JSON.stringify(c.shape)} axis ${c.axis} keep ${!!c.keepDim} (${v})`;
const big = (c: Case) => c.shape.reduce((a, b) => a * b, 1) > 20000;

test('sum and mean: every axis, keepDim, global, every kernel configuration', async () => {
  await forEachVariant(async (v) => {
    for (const c of cases) {
      await checkOp({ name: name('sum', c, v), inputs: [{ shape: c.shape }], gpu: (x) => ops.sum(x, c.axis, c.keepDim), ref: (x) => core.sum(x, c.axis, c.keepDim), fd: v === 'auto', fdCoords: big(c) ? 4 : 24 });
      await checkOp({ name: name('mean', c, v), inputs: [{ shape: c.shape }], gpu: (x) => ops.mean(x, c.axis, c.keepDim), ref: (x) => core.mean(x, c.axis, c.keepDim), fd: v === 'auto', fdCoords: big(c) ? 4 : 24 });
    }
  });
});

test('max (gradient to the first maximum) and logsumexp, every kernel configuration', async () => {
  await forEachVariant(async (v) => {
    for (const c of cases) {
      await checkOp({ name: name('max', c, v), inputs: [{ shape: c.shape }], gpu: (x) => ops.max(x, c.axis, c.keepDim), ref: (x) => ref.max(x, c.axis, c.keepDim), fd: v === 'auto', fdCoords: big(c) ? 4 : 24 });
      await checkOp({
        name: name('logsumexp', c, v),
        inputs: [{ shape: c.shape, range: [-8, 8] }],
        gpu: (x) => ops.logsumexp(x, c.axis, c.keepDim),
        ref: (x) => ref.logsumexp(x, c.axis, c.keepDim),
        fd: v === 'auto',
        fdCoords: big(c) ? 4 : 24,
      });
    }
  });
});

test('max with ties: the gradient goes to the first maximum only', async () => {
  const data = [1, 5, 5, 2, /**/ 7, 7, 7, 7, /**/ -1, -3, -1, -2];
  await forEachVariant(async (v) => {
    await checkOp({ name: `max ties (${v})`, inputs: [{ shape: [3, 4], data }], gpu: (x) => ops.max(x, 1), ref: (x) => core.max(x, 1), fd: false });
  });
});

test('logsumexp handles -inf entries and huge values without overflow', async () => {
  const gpu = await getGpu();
  const ninf = -Infinity;
  const x = tensor([0, ninf, 0, ninf, ninf, ninf, 1000, 1000, 999], [3, 3], 'f32', gpu);
  await forEachVariant(async () => {
    const y = ops.logsumexp(x, 1);
    const v = await y.read();
    assert.ok(Math.abs(v[0]! - Math.log(2)) < 1e-6, `row 0: ${v[0]}`);
    assert.is(v[1], -Infinity);
    assert.ok(Math.abs(v[2]! - (1000 + Math.log(2 + Math.exp(-1)))) < 1e-3, `row 2: ${v[2]}`);
    y.dispose();
  });
  x.dispose();
});

test('argmax returns the first maximum (ties), per axis and global', async () => {
  const shapes: Case[] = [
    { shape: [3, 4], axis: 1 },
    { shape: [3, 4], axis: 0 },
    { shape: [3, 4] },
    { shape: [2, 300], axis: 1 },
    { shape: [3, 9000], axis: -1 },
    { shape: [50001] },
  ];
  await forEachVariant(async (v) => {
    for (const c of shapes) {
      const n = c.shape.reduce((a, b) => a * b, 1);
      // Few distinct values: many ties, so "first" is really tested.
      const data = Array.from(randArray(n, 77), (x) => Math.round(x * 3));
      const outShape = c.axis === undefined ? [] : c.shape.filter((_, i) => i !== (c.axis! + c.shape.length) % c.shape.length);
      await checkOp({
        name: `argmax ${JSON.stringify(c)} (${v})`,
        inputs: [{ shape: c.shape, data }],
        gpu: (x) => {
          const y = ops.argmax(x, c.axis);
          assert.ok(y.dtype === 'i32' && !y.requiresGrad);
          return y;
        },
        ref: (x) => core.R.from(ref.argmax(x.data, c.shape, c.axis), outShape),
        forwardOnly: true,
        fwdTol: 0,
      });
    }
  });
});

test('global sum of 5M elements: accurate to 1e-5 relative and bit-identical over 2 runs', async () => {
  const gpu = await getGpu();
  for (const [lo, hi] of [
    [0, 1],
    [-1, 1],
  ] as const) {
    const n = 5_000_000;
    const data = randArray(n, 5, lo, hi);
    let exact = 0;
    for (let i = 0; i < n; i++) exact += data[i]!;
    const x = tensor(Float32Array.from(data), [n], 'f32', gpu);
    const a = ops.sum(x);
    const b = ops.sum(x);
    assert.equal([...a.shape], []);
    const va = await a.item();
    const vb = await b.item();
    assert.ok(Object.is(va, vb), `two runs differ: ${va} vs ${vb}`);
    const rel = Math.abs(va - exact) / Math.abs(exact);
    assert.ok(rel <= 1e-5, `sum of 5M in [${lo},${hi}): ${va} vs ${exact} (rel ${rel.toExponential(2)})`);
    const m = ops.mean(x);
    const relM = Math.abs((await m.item()) - exact / n) / Math.abs(exact / n);
    assert.ok(relM <= 1e-5, `mean rel ${relM}`);
    for (const t of [x, a, b, m]) t.dispose();
  }
});

test('sumTo: [5M] seed gradient reduced to [1] (backward of broadcasting)', async () => {
  // y = x + b with b [1]: b's gradient is the sum of the 5M-element seed gradient. (x also takes
  // a gradient: add's backward leaks the unused share when only b needs one, an elementwise.ts bug.)
  await checkOp({ name: 'add [5M] + [1]', inputs: [{ shape: [5_000_000] }, { shape: [1] }], gpu: add, ref: core.add, gradTol: 1e-5, fd: false });
});

test('sumTo: several reduced runs, size-1 dims, rank change, both variants; deterministic', async () => {
  const gpu = await getGpu();
  const pairs: [number[], number[]][] = [
    [[2, 3, 4, 5], [1, 3, 1, 5]],
    [[2, 3, 4, 5], [3, 1, 1]],
    [[6, 1000, 7], [1000, 1]],
    [[3, 70, 2], [3, 1, 2]],
    [[4, 1, 9], [1, 1, 9]],
    [[5, 3], [1, 1, 5, 1]],
  ];
  await forEachVariant(async (v) => {
    for (const [gs, ts] of pairs) {
      const n = gs.reduce((a, b) => a * b, 1);
      const data = randArray(n, 11);
      const g = tensor(Float32Array.from(data), gs, 'f32', gpu);
      const o1 = sumTo(g, ts);
      const o2 = sumTo(g, ts);
      assert.equal([...o1.shape], ts);
      // Reference: sum over broadcast dims in float64.
      const full = ts.length >= gs.length ? ts : [...Array(gs.length - ts.length).fill(1), ...ts];
      let r = core.R.from(data, gs);
      for (let d = gs.length - 1; d >= 0; d--) {
        const t = full[full.length - gs.length + d] ?? 1;
        if (t === 1 && gs[d] !== 1) r = core.sum(r, d, true);
      }
      const a = await o1.read();
      assert.ok(relErr(a, r.data) < 1e-6, `sumTo ${JSON.stringify(gs)} -> ${JSON.stringify(ts)} (${v}): ${relErr(a, r.data)}`);
      assert.equal([...a], [...(await o2.read())], 'bit-identical');
      for (const t of [g, o1, o2]) t.dispose();
    }
  });
});

test('more than 65535 workgroups / invocation blocks (grid split over y)', async () => {
  const gpu = await getGpu();
  // wg variant: one workgroup per output row, 66000 rows.
  forceReduceVariant('wg');
  try {
    await checkOp({ name: 'sum [66000,3] axis 1 (wg)', inputs: [{ shape: [66000, 3] }], gpu: (x) => ops.sum(x, 1), ref: (x) => core.sum(x, 1), fdCoords: 4 });
  } finally {
    forceReduceVariant(null);
  }
  // thread variant: 64 * 65536 + 1 outputs (rows of 1: the output is the input); the backward of
  // the global sum expands over as many elements.
  const n = 64 * 65536 + 1;
  const data = Float32Array.from(randArray(n, 12));
  const x = tensor(data, [n, 1], 'f32', gpu).param();
  const y = ops.sum(x, 1);
  assert.ok((await y.read()).every((v, i) => v === data[i]), 'sum over a length-1 axis is the identity');
  const s = ops.sum(x);
  s.backward();
  assert.ok((await x.grad!.read()).every((v) => v === 1), 'global sum gradient is all ones');
  for (const t of [x, y, s]) t.dispose();
});

test('results are bit-identical run to run (long rows, partial passes)', async () => {
  const gpu = await getGpu();
  const x = tensor(Float32Array.from(randArray(3 * 60001, 9)), [3, 60001], 'f32', gpu);
  for (const f of [(t: typeof x) => ops.sum(t, 1), (t: typeof x) => ops.logsumexp(t, 1), (t: typeof x) => ops.mean(t)]) {
    const a = f(x);
    const b = f(x);
    assert.equal([...(await a.read())], [...(await b.read())]);
    a.dispose();
    b.dispose();
  }
  x.dispose();
});

test('bad inputs throw before any dispatch', async () => {
  const gpu = await getGpu();
  const x = tensor(new Float32Array(6), [2, 3], 'f32', gpu);
  const xi = tensor(new Int32Array(6), [2, 3], 'i32', gpu);
  const z = tensor(new Float32Array(0), [2, 0], 'f32', gpu);
  const s = tensor(new Float32Array(1), [], 'f32', gpu);
  const before = gpu.counters.dispatches;
  const live = gpu.pool.snapshot().liveBytes;
  assert.throws(() => ops.sum(x, 2), /sum: axis 2 is out of range for tensor#\d+ f32\[2,3\] \(rank 2\)/);
  assert.throws(() => ops.max(x, -3), /max: axis -3 is out of range/);
  assert.throws(() => ops.sum(x, 0.5), /sum: axis 0.5 is out of range/);
  assert.throws(() => ops.mean(xi), /mean: tensor#\d+ i32\[2,3\] must be f32/);
  assert.throws(() => ops.argmax(xi, 0), /argmax: .* must be f32/);
  assert.throws(() => ops.max(z, 1), /max: tensor#\d+ f32\[2,0\] has no elements along the reduced axis/);
  assert.throws(() => ops.logsumexp(z, 1), /logsumexp: .* has no elements/);
  assert.throws(() => ops.mean(z, 1), /mean: .* has no elements/);
  assert.throws(() => ops.sum(s, 0), /sum: tensor#\d+ f32\[\] is a scalar; it has no axis 0/);
  assert.throws(() => sumTo(x, [3, 2]), /sumTo: \[2,3\] cannot reduce to \[3,2\]/);
  assert.throws(() => sumTo(x, [2, 2, 3]), /sumTo: \[2,3\] cannot reduce to \[2,2,3\]/);
  assert.is(gpu.counters.dispatches, before);
  assert.is(gpu.pool.snapshot().liveBytes, live);
  x.dispose();
  assert.throws(() => ops.sum(x), /sum: tensor#\d+ f32\[2,3\] was disposed/);
  // Sum over an empty axis is 0 (as torch); reductions of a scalar work.
  const zs = ops.sum(z, 1);
  assert.equal([...(await zs.read())], [0, 0]);
  const ss = ops.sum(s);
  assert.is(await ss.item(), 0);
  for (const t of [xi, z, s, zs, ss]) t.dispose();
});

test.run();

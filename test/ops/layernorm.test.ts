import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { layerNorm } from '../../src/ops/layernorm.js';
import { forceReduceVariant } from '../../src/ops/reduce-core.js';
import { forEachVariant } from './variants.js';
import * as ref from '../ref/nn.js';
import { checkOp, randArray } from '../helpers/parity.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import { getGpu } from '../../src/gpu/index.js';

// Widths 1, primes, CLIP's 128..1024 (one invocation per row up to 128 on CPU adapters, one
// workgroup beyond), rows over the 64-row chunk of the dW/db partials.
const shapes = [[1, 1], [3, 7], [5, 128], [4, 129], [2, 3, 512], [3, 768], [2, 1024], [130, 13], [1, 2053]];

test('layerNorm: x, weight, bias gradients; widths 1..1024; every kernel configuration', async () => {
  await forEachVariant(async (v) => {
    for (const shape of shapes) {
      const d = shape[shape.length - 1]!;
      await checkOp({
        name: `layerNorm ${JSON.stringify(shape)} (${v})`,
        inputs: [{ shape, range: [-2, 3] }, { shape: [d], range: [0.5, 1.5] }, { shape: [d] }],
        gpu: (x, w, b) => layerNorm(x, w, b),
        ref: (x, w, b) => ref.layerNorm(x, w, b),
        fd: v === 'auto', // FD validates the reference, whatever kernel variant runs
      });
    }
  });
});

test('layerNorm: frozen parts compute only what is needed', async () => {
  const gpu = await getGpu();
  const cases: [string, boolean[]][] = [
    ['x only (frozen weight and bias: prompt tuning)', [true, false, false]],
    ['weight and bias only (frozen input)', [false, true, true]],
    ['bias only', [false, false, true]],
    ['weight only', [false, true, false]],
  ];
  for (const [what, grads] of cases) {
    await checkOp({
      name: `layerNorm ${what}`,
      inputs: [
        { shape: [70, 96], grad: grads[0] },
        { shape: [96], range: [0.5, 1.5], grad: grads[1] },
        { shape: [96], grad: grads[2] },
      ],
      gpu: (x, w, b) => layerNorm(x, w, b),
      ref: (x, w, b) => ref.layerNorm(x, w, b),
    });
  }
  // Dispatch count of the backward with frozen weight and bias: the dx kernel only.
  const x = tensor(Float32Array.from(randArray(4 * 96, 3)), [4, 96], 'f32', gpu).param();
  const w = tensor(Float32Array.from(randArray(96, 4)), [96], 'f32', gpu);
  const b = tensor(Float32Array.from(randArray(96, 5)), [96], 'f32', gpu);
  const y = layerNorm(x, w, b);
  const seed = tensor(Float32Array.from(randArray(4 * 96, 6)), [4, 96], 'f32', gpu);
  const before = gpu.counters.dispatches;
  y.backward({ gradient: seed });
  assert.is(gpu.counters.dispatches - before, 1, 'one dx kernel');
  assert.ok(x.grad && !w.grad && !b.grad);
  for (const t of [x, w, b, y]) t.dispose();
});

test('layerNorm without weight / bias, other eps, offset inputs (two-pass variance)', async () => {
  await forEachVariant(async (v) => {
    await checkOp({ name: `layerNorm no affine (${v})`, inputs: [{ shape: [6, 200] }], gpu: (x) => layerNorm(x, null, null), ref: (x) => ref.layerNorm(x, null, null), fd: v === 'auto' });
    await checkOp({
      name: `layerNorm weight only, eps 1e-3 (${v})`,
      inputs: [{ shape: [6, 33] }, { shape: [33] }],
      gpu: (x, w) => layerNorm(x, w, null, 1e-3),
      ref: (x, w) => ref.layerNorm(x, w, null, 1e-3),
      fd: v === 'auto',
    });
    await checkOp({
      name: `layerNorm offset rows mean 10 (${v})`,
      inputs: [{ shape: [8, 768], range: [9, 11] }, { shape: [768] }, { shape: [768] }],
      gpu: (x, w, b) => layerNorm(x, w, b),
      ref: (x, w, b) => ref.layerNorm(x, w, b),
      fd: false,
    });
  });
});

test('rows beyond 65535 workgroups / invocation blocks (grid split over y)', async () => {
  forceReduceVariant('wg');
  try {
    await checkOp({ name: 'layerNorm [66000,3] (wg)', inputs: [{ shape: [66000, 3] }, { shape: [3] }, { shape: [3] }], gpu: (x, w, b) => layerNorm(x, w, b), ref: (x, w, b) => ref.layerNorm(x, w, b), fdCoords: 3 });
  } finally {
    forceReduceVariant(null);
  }
  // One invocation per row: 64 * 65536 + 1 rows of 2 -> (+-h / sqrt(h^2 + eps)), h = |x0 - x1| / 2.
  const gpu = await getGpu();
  const n = 64 * 65536 + 1;
  const data = Float32Array.from(randArray(2 * n, 14));
  const x = tensor(data, [n, 2], 'f32', gpu);
  const y = layerNorm(x, null, null);
  const yv = await y.read();
  let err = 0;
  for (let r = 0; r < n; r++) {
    const h = (data[2 * r]! - data[2 * r + 1]!) / 2;
    const e = h / Math.sqrt(h * h + 1e-5);
    err = Math.max(err, Math.abs(yv[2 * r]! - e), Math.abs(yv[2 * r + 1]! + e));
  }
  assert.ok(err < 2e-5, `max error ${err}`);
  x.dispose();
  y.dispose();
});

test('deterministic: outputs and all gradients bit-identical over two runs', async () => {
  const gpu = await getGpu();
  for (const [rows, d] of [
    [1600, 768],
    [300, 64],
  ] as const) {
    const runs: number[][] = [];
    for (let r = 0; r < 2; r++) {
      const x = tensor(Float32Array.from(randArray(rows * d, 1)), [rows, d], 'f32', gpu).param();
      const w = tensor(Float32Array.from(randArray(d, 2)), [d], 'f32', gpu).param();
      const b = tensor(Float32Array.from(randArray(d, 3)), [d], 'f32', gpu).param();
      const y = layerNorm(x, w, b);
      y.backward({ gradient: tensor(Float32Array.from(randArray(rows * d, 4)), [rows, d], 'f32', gpu) });
      let all: number[] = [];
      for (const t of [y, x.grad!, w.grad!, b.grad!] as Tensor[]) all = all.concat(Array.from(await t.read()));
      runs.push(all);
      for (const t of [x, w, b, y]) t.dispose();
    }
    assert.equal(runs[0], runs[1], `[${rows},${d}]`);
  }
});

test('bad inputs throw before any dispatch', async () => {
  const gpu = await getGpu();
  const x = tensor(new Float32Array(12), [3, 4], 'f32', gpu);
  const w = tensor(new Float32Array(4), [4], 'f32', gpu);
  const w5 = tensor(new Float32Array(5), [5], 'f32', gpu);
  const w22 = tensor(new Float32Array(4), [2, 2], 'f32', gpu);
  const xi = tensor(new Int32Array(12), [3, 4], 'i32', gpu);
  const e = tensor(new Float32Array(0), [3, 0], 'f32', gpu);
  const before = gpu.counters.dispatches;
  assert.throws(() => layerNorm(x, w5, null), /layerNorm: weight tensor#\d+ f32\[5\] must have shape \[4\] for x tensor#\d+ f32\[3,4\]/);
  assert.throws(() => layerNorm(x, w, w22), /layerNorm: bias tensor#\d+ f32\[2,2\] must have shape \[4\]/);
  assert.throws(() => layerNorm(xi, null, null), /layerNorm: x tensor#\d+ i32\[3,4\] must be f32/);
  assert.throws(() => layerNorm(x, w, null, -1), /layerNorm: eps -1 must be a finite number >= 0/);
  assert.throws(() => layerNorm(e, null, null), /layerNorm: x tensor#\d+ f32\[3,0\] has an empty last dim/);
  assert.is(gpu.counters.dispatches, before);
  for (const t of [x, w, w5, w22, xi, e]) t.dispose();
});

test.run();

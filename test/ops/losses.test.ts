import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { crossEntropy, checkLabels, klDiv, mse } from '../../src/ops/losses.js';
import { forEachVariant } from './variants.js';
import * as ref from '../ref/losses.js';
import { checkOp, randArray, rng } from '../helpers/parity.js';
import { tensor } from '../../src/tensor/tensor.js';
import { getGpu } from '../../src/gpu/index.js';

function labelsFor(n: number, c: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.floor(r() * c));
}

/** Rows of positive probabilities summing to 1 (a teacher given as probabilities). */
function probRows(rows: number, c: number, seed: number): number[] {
  const v = randArray(rows * c, seed, 0.05, 1);
  const out: number[] = [];
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let k = 0; k < c; k++) s += v[i * c + k]!;
    for (let k = 0; k < c; k++) out.push(v[i * c + k]! / s);
  }
  return out;
}

test('crossEntropy vs float64 log-softmax + NLL: shapes, reductions, every kernel configuration', async () => {
  await forEachVariant(async (v) => {
    for (const [n, c] of [
      [1, 1],
      [5, 7],
      [8, 1000],
      [2, 50000],
      [130, 10],
    ] as const) {
      const labels = labelsFor(n, c, n * c);
      for (const reduction of ['mean', 'sum', 'none'] as const) {
        await checkOp({
          name: `crossEntropy [${n},${c}] ${reduction} (${v})`,
          inputs: [{ shape: [n, c], range: [-5, 5] }, { shape: [n], data: labels, dtype: 'i32', grad: false }],
          gpu: (x, l) => crossEntropy(x, l, { reduction }),
          ref: (x) => ref.crossEntropy(x, labels, reduction),
          fd: v === 'auto' && c < 50000, // FD validates the reference (loses ~1e-5 on 100000 terms)
          fdCoords: 8,
        });
      }
    }
  });
});

test('crossEntropy: out-of-range labels give NaN rows; checkLabels reports them', async () => {
  const gpu = await getGpu();
  const x = tensor(Float32Array.from(randArray(12, 3)), [3, 4], 'f32', gpu);
  const bad = tensor(Int32Array.from([1, 4, -1]), [3], 'i32', gpu);
  const good = tensor(Int32Array.from([0, 3, 2]), [3], 'i32', gpu);
  const none = crossEntropy(x, bad, { reduction: 'none' });
  const mean = crossEntropy(x, bad);
  const l = await none.read();
  assert.ok(Number.isFinite(l[0]) && Number.isNaN(l[1]) && Number.isNaN(l[2]), `per-row losses ${[...l]}`);
  assert.ok(Number.isNaN(await mean.item()), 'mean is NaN');
  none.dispose();
  mean.dispose();
  await checkLabels(good, 4);
  let err: Error | null = null;
  await checkLabels(bad, 4).catch((e: Error) => (err = e));
  assert.match(String(err), /checkLabels: labels tensor#\d+ i32\[3\]: labels\[1\] = 4 is outside \[0, 4\)/);
  for (const t of [x, bad, good]) t.dispose();
});

test('klDiv = KL(softmax(t/T) || softmax(s/T)) from logits, gradients for student and teacher', async () => {
  await forEachVariant(async (v) => {
    for (const shape of [
      [1, 1],
      [4, 10],
      [3, 1000],
      [2, 3, 17],
    ]) {
      for (const temperature of [1, 2.5]) {
        for (const reduction of ['batchmean', 'sum', 'none'] as const) {
          await checkOp({
            name: `klDiv ${JSON.stringify(shape)} T=${temperature} ${reduction} (${v})`,
            inputs: [
              { shape, range: [-4, 4] },
              { shape, range: [-4, 4] },
            ],
            gpu: (s, t) => klDiv(s, t, { temperature, reduction }),
            ref: (s, t) => ref.klDiv(s, t, temperature, reduction),
            fd: v === 'auto',
            fdCoords: 8,
          });
        }
      }
    }
  });
});

test('klDiv: teacher as probabilities; frozen teacher (distillation)', async () => {
  await forEachVariant(async (v) => {
    const c = 30;
    await checkOp({
      name: `klDiv teacher probabilities (${v})`,
      inputs: [{ shape: [5, c] }, { shape: [5, c], data: probRows(5, c, 7) }],
      gpu: (s, t) => klDiv(s, t, { teacherLogits: false, temperature: 2 }),
      ref: (s, t) => ref.klDiv(s, t, 2, 'batchmean', false),
      fd: v === 'auto',
    });
    await checkOp({
      name: `klDiv teacher probabilities, none (${v})`,
      inputs: [{ shape: [3, c] }, { shape: [3, c], data: probRows(3, c, 8) }],
      gpu: (s, t) => klDiv(s, t, { teacherLogits: false, reduction: 'none' }),
      ref: (s, t) => ref.klDiv(s, t, 1, 'none', false),
      fd: v === 'auto',
    });
    await checkOp({
      name: `klDiv frozen teacher logits (${v})`,
      inputs: [{ shape: [6, 200] }, { shape: [6, 200], grad: false }],
      gpu: (s, t) => klDiv(s, t, { temperature: 4 }),
      ref: (s, t) => ref.klDiv(s, t, 4),
      fd: v === 'auto',
    });
    await checkOp({
      name: `klDiv teacher-only gradient (${v})`,
      inputs: [{ shape: [6, 20], grad: false }, { shape: [6, 20] }],
      gpu: (s, t) => klDiv(s, t, { reduction: 'sum' }),
      ref: (s, t) => ref.klDiv(s, t, 1, 'sum'),
      fd: v === 'auto',
    });
  });
});

test('klDiv: zero teacher probabilities contribute 0 (no NaN)', async () => {
  const gpu = await getGpu();
  const s = tensor(Float32Array.from([0.1, 0.2, 0.3]), [1, 3], 'f32', gpu);
  const t = tensor(Float32Array.from([0, 0.5, 0.5]), [1, 3], 'f32', gpu);
  const kt = klDiv(s, t, { teacherLogits: false });
  const k = await kt.item();
  kt.dispose();
  const q = [0.1, 0.2, 0.3].map(Math.exp);
  const z = q.reduce((a, b) => a + b);
  const want = 0.5 * (Math.log(0.5) - Math.log(q[1]! / z)) + 0.5 * (Math.log(0.5) - Math.log(q[2]! / z));
  assert.ok(Math.abs(k - want) < 1e-6, `${k} vs ${want}`);
  s.dispose();
  t.dispose();
});

test('mse: reductions and both gradients', async () => {
  for (const shape of [[1], [7, 13], [2, 3, 50]]) {
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      await checkOp({ name: `mse ${JSON.stringify(shape)} ${reduction}`, inputs: [{ shape }, { shape }], gpu: (a, b) => mse(a, b, reduction), ref: (a, b) => ref.mse(a, b, reduction) });
    }
  }
  await checkOp({ name: 'mse b frozen', inputs: [{ shape: [9] }, { shape: [9], grad: false }], gpu: (a, b) => mse(a, b), ref: (a, b) => ref.mse(a, b) });
});

test('losses are bit-identical run to run', async () => {
  const gpu = await getGpu();
  const [n, c] = [256, 1000];
  const xv = Float32Array.from(randArray(n * c, 31, -5, 5));
  const tv = Float32Array.from(randArray(n * c, 32, -5, 5));
  const lv = Int32Array.from(labelsFor(n, c, 33));
  const runs: number[][] = [];
  for (let r = 0; r < 2; r++) {
    const x = tensor(xv, [n, c], 'f32', gpu).param();
    const t = tensor(tv, [n, c], 'f32', gpu);
    const l = tensor(lv, [n], 'i32', gpu);
    const ce = crossEntropy(x, l);
    const kl = klDiv(x, t, { temperature: 2 });
    const vals = [await ce.item(), await kl.item()];
    ce.backward();
    runs.push([...vals, ...(await x.grad!.read())]);
    for (const z of [x, t, l, ce, kl]) z.dispose();
  }
  assert.equal(runs[0], runs[1]);
});

test('bad inputs throw before any dispatch', async () => {
  const gpu = await getGpu();
  const x = tensor(new Float32Array(12), [3, 4], 'f32', gpu);
  const x3 = tensor(new Float32Array(12), [1, 3, 4], 'f32', gpu);
  const y = tensor(new Float32Array(8), [2, 4], 'f32', gpu);
  const lf = tensor(new Float32Array(3), [3], 'f32', gpu);
  const l2 = tensor(new Int32Array(2), [2], 'i32', gpu);
  const l = tensor(new Int32Array(3), [3], 'i32', gpu);
  const before = gpu.counters.dispatches;
  assert.throws(() => crossEntropy(x, lf), /crossEntropy: labels tensor#\d+ f32\[3\] must be i32 class indices/);
  assert.throws(() => crossEntropy(x, l2), /crossEntropy: labels tensor#\d+ i32\[2\] must have shape \[3\] for logits tensor#\d+ f32\[3,4\]/);
  assert.throws(() => crossEntropy(x3, l), /crossEntropy: logits tensor#\d+ f32\[1,3,4\] must be \[N, C\]/);
  assert.throws(() => crossEntropy(x, l, { reduction: 'avg' as 'mean' }), /crossEntropy: reduction 'avg' is not one of 'mean', 'sum', 'none'/);
  assert.throws(() => klDiv(x, y), /klDiv: student tensor#\d+ f32\[3,4\] and teacher tensor#\d+ f32\[2,4\] must have the same shape/);
  assert.throws(() => klDiv(x, x, { temperature: 0 }), /klDiv: temperature 0 must be a finite number > 0/);
  assert.throws(() => klDiv(x, x, { reduction: 'mean' as 'sum' }), /klDiv: reduction 'mean' is not one of/);
  assert.throws(() => mse(x, y), /mse: a tensor#\d+ f32\[3,4\] and b tensor#\d+ f32\[2,4\] must have the same shape/);
  assert.throws(() => mse(x, l as never), /mse: b tensor#\d+ i32\[3\] must be f32/);
  assert.is(gpu.counters.dispatches, before);
  for (const t of [x, x3, y, lf, l2, l]) t.dispose();
});

test.run();

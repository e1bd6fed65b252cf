import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cosineSim, forcePairTile, l2normalize, pairwiseSqDist } from '../../src/ops/distance.js';
import { forceReduceVariant } from '../../src/ops/reduce-core.js';
import { forEachVariant } from './variants.js';
import * as ref from '../ref/nn.js';
import { checkOp, randArray, relErr } from '../helpers/parity.js';
import { tensor } from '../../src/tensor/tensor.js';
import { getGpu } from '../../src/gpu/index.js';

test('l2normalize: shapes, every kernel configuration', async () => {
  await forEachVariant(async (v) => {
    for (const shape of [[1, 1], [5, 7], [3, 512], [2, 3, 768], [2, 30000]]) {
      await checkOp({
        name: `l2normalize ${JSON.stringify(shape)} (${v})`,
        inputs: [{ shape }],
        gpu: (x) => l2normalize(x),
        ref: (x) => ref.l2normalize(x),
        fd: v === 'auto' && shape[1] !== 30000, // FD validates the reference, whatever kernel runs
        fdCoords: 8,
      });
    }
  });
});

test('l2normalize: rows with norm below eps are divided by eps (gradient g / eps)', async () => {
  // eps 0.5: row 0 has norm < eps (clamped), row 1 > eps.
  const data = [0.03, -0.04, 0.02, 0.6, -0.8, 0.3];
  await forEachVariant(async (v) => {
    await checkOp({ name: `l2normalize clamped row (${v})`, inputs: [{ shape: [2, 3], data }], gpu: (x) => l2normalize(x, 0.5), ref: (x) => ref.l2normalize(x, 0.5), fd: v === 'auto' });
  });
});

/** Runs a block with the CPU (16x16) and GPU (8x8) register tiles of the pair kernel. */
async function forEachTile(fn: (tile: string) => Promise<void>): Promise<void> {
  for (const tile of [
    [16, 4],
    [8, 2],
  ] as [number, number][]) {
    forcePairTile(tile);
    try {
      await fn(`${tile[0]}x${4 * tile[1]}`);
    } finally {
      forcePairTile(null);
    }
  }
}

test('pairwiseSqDist: shapes (non-multiples of the tiles), gradients for both sides, both tiles', async () => {
  await forEachTile(async (tile) => {
  for (const [n, m, d] of [
    [1, 1, 1],
    [5, 3, 7],
    [33, 17, 64],
    [8, 70, 300],
  ]) {
    await checkOp({ name: `pairwiseSqDist [${n},${d}] [${m},${d}] (${tile})`, inputs: [{ shape: [n, d] }, { shape: [m, d] }], gpu: pairwiseSqDist, ref: ref.pairwiseSqDist, fd: tile === '16x16', fdCoords: 8 });
  }
  await checkOp({ name: `pairwiseSqDist b frozen (${tile})`, inputs: [{ shape: [6, 10] }, { shape: [9, 10], grad: false }], gpu: pairwiseSqDist, ref: ref.pairwiseSqDist });
  });
});

test('pairwiseSqDist: near neighbours far from the origin stay accurate (direct differences)', async () => {
  // ||a||^2 ~ 512 * 1e4 while the distances are ~512 * 1e-6: the expanded form would return noise.
  const d = 512;
  const base = randArray(4 * d, 40, 90, 110);
  const delta = randArray(4 * d, 41, -1e-3, 1e-3);
  const a = Array.from(base);
  const b = Array.from(base, (x, i) => Math.fround(x + delta[i]!));
  const r = await checkOp({ name: 'pairwiseSqDist near neighbours', inputs: [{ shape: [4, d], data: a }, { shape: [4, d], data: b }], gpu: pairwiseSqDist, ref: ref.pairwiseSqDist, fd: false });
  assert.ok(r.fwd < 1e-5);
});

test('cosineSim: shapes, gradients, a and b the same tensor, both tiles', async () => {
  await forEachTile(async (tile) => {
  for (const [n, m, d] of [
    [1, 1, 1],
    [5, 3, 7],
    [33, 17, 512],
    [4, 1000, 64],
  ]) {
    await checkOp({ name: `cosineSim [${n},${d}] [${m},${d}] (${tile})`, inputs: [{ shape: [n, d] }, { shape: [m, d] }], gpu: (a, b) => cosineSim(a, b), ref: (a, b) => ref.cosineSim(a, b), fd: tile === '16x16', fdCoords: 8 });
  }
  await checkOp({ name: `cosineSim(a, a) (${tile})`, inputs: [{ shape: [6, 16] }], gpu: (a) => cosineSim(a, a), ref: (a) => ref.cosineSim(a, a) });
  await checkOp({ name: `cosineSim text frozen (${tile})`, inputs: [{ shape: [3, 32] }, { shape: [10, 32], grad: false }], gpu: (a, b) => cosineSim(a, b), ref: (a, b) => ref.cosineSim(a, b) });
  });
});

test('rows beyond 65535 workgroups / invocation blocks (grid split over y)', async () => {
  forceReduceVariant('wg');
  try {
    await checkOp({ name: 'l2normalize [66000,3] (wg)', inputs: [{ shape: [66000, 3] }], gpu: (x) => l2normalize(x), ref: (x) => ref.l2normalize(x), fdCoords: 3 });
  } finally {
    forceReduceVariant(null);
  }
  const gpu = await getGpu();
  const n = 64 * 65536 + 1;
  const data = Float32Array.from(randArray(n, 15));
  const x = tensor(data, [n, 1], 'f32', gpu);
  const y = l2normalize(x);
  // Exactly ±1 on the CPU adapters; WGSL allows inverseSqrt 2 ULP and division 2.5 ULP of error, and
  // real GPUs use that (the exact check failed on an H100), so the bound is 4 ULP of 1.
  const got = await y.read();
  let worst = 0;
  got.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - Math.sign(data[i]!))); });
  assert.ok(worst <= 4 * 2 ** -23, `rows of 1 normalise to their sign (worst error ${worst})`);
  x.dispose();
  y.dispose();
});

test('deterministic: bit-identical over two runs', async () => {
  const gpu = await getGpu();
  const av = Float32Array.from(randArray(32 * 512, 51));
  const bv = Float32Array.from(randArray(100 * 512, 52));
  const gv = Float32Array.from(randArray(32 * 100, 53));
  const runs: number[][] = [];
  for (let r = 0; r < 2; r++) {
    const a = tensor(av, [32, 512], 'f32', gpu).param();
    const b = tensor(bv, [100, 512], 'f32', gpu).param();
    const s = cosineSim(a, b);
    const dd = pairwiseSqDist(a, b);
    const sv = Array.from(await s.read()).concat(Array.from(await dd.read()));
    s.backward({ gradient: tensor(gv, [32, 100], 'f32', gpu) });
    runs.push(sv.concat(Array.from(await a.grad!.read()), Array.from(await b.grad!.read())));
    for (const t of [a, b, s, dd]) t.dispose();
  }
  assert.ok(relErr(runs[0]!, runs[1]!) === 0);
  assert.equal(runs[0], runs[1]);
});

test('bad inputs throw before any dispatch', async () => {
  const gpu = await getGpu();
  const a = tensor(new Float32Array(12), [3, 4], 'f32', gpu);
  const b = tensor(new Float32Array(10), [2, 5], 'f32', gpu);
  const v = tensor(new Float32Array(4), [4], 'f32', gpu);
  const ai = tensor(new Int32Array(12), [3, 4], 'i32', gpu);
  const s = tensor(new Float32Array(1), [], 'f32', gpu);
  const long = tensor(new Float32Array(60000), [1, 60000], 'f32', gpu);
  const before = gpu.counters.dispatches;
  assert.throws(() => pairwiseSqDist(a, b), /pairwiseSqDist: a tensor#\d+ f32\[3,4\] and b tensor#\d+ f32\[2,5\] must be \[N, D\] and \[M, D\]/);
  assert.throws(() => cosineSim(a, v), /cosineSim: a .* must be \[N, D\] and \[M, D\]/);
  assert.throws(() => cosineSim(ai, a), /cosineSim: a tensor#\d+ i32\[3,4\] must be f32/);
  assert.throws(() => l2normalize(a, 0), /l2normalize: eps 0 must be a finite number > 0/);
  assert.throws(() => l2normalize(s), /l2normalize: x tensor#\d+ f32\[\] is a scalar/);
  assert.throws(() => pairwiseSqDist(long, long), /pairwiseSqDist: .* a sum over 60000 terms is over the 60000-iteration loop budget/);
  assert.is(gpu.counters.dispatches, before);
  for (const t of [a, b, v, ai, s, long]) t.dispose();
});

test.run();

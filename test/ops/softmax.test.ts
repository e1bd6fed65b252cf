import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { softmax, logSoftmax } from '../../src/ops/softmax.js';
import { exp } from '../../src/ops/elementwise.js';
import { forceReduceVariant } from '../../src/ops/reduce-core.js';
import { forEachVariant } from './variants.js';
import * as ref from '../ref/nn.js';
import * as core from '../ref/core.js';
import { checkOp, randArray, rng } from '../helpers/parity.js';
import { empty, tensor } from '../../src/tensor/tensor.js';
import { getGpu } from '../../src/gpu/index.js';

const cases: { shape: number[]; axis: number }[] = [
  { shape: [1], axis: 0 },
  { shape: [7, 13], axis: -1 },
  { shape: [3, 5, 7], axis: 1 },
  { shape: [3, 5, 7], axis: 0 },
  { shape: [5, 65], axis: 1 },
  { shape: [3, 131], axis: -1 },
  { shape: [2, 50000], axis: 1 },
  { shape: [4099, 17], axis: 1 },
];

test('softmax and logSoftmax: shapes, axes, every kernel configuration', async () => {
  await forEachVariant(async (v) => {
    for (const c of cases) {
      const big = c.shape[1] === 50000 || c.shape[0] === 4099;
      for (const [nm, g, r] of [
        ['softmax', softmax, ref.softmax],
        ['logSoftmax', logSoftmax, ref.logSoftmax],
      ] as const) {
        await checkOp({
          name: `${nm} ${JSON.stringify(c.shape)} axis ${c.axis} (${v})`,
          inputs: [{ shape: c.shape, range: [-6, 6] }],
          gpu: (x) => g(x, c.axis),
          ref: (x) => r(x, c.axis),
          // Central differences of a 100000-term objective lose ~1e-5 to f64 rounding; the same
          // reference composition is FD-checked on the smaller shapes.
          fd: !big && v === 'auto',
        });
      }
    }
  });
});

/** An additive mask of `shape` with some -inf entries, but never a whole row along the last dim. */
function maskData(shape: number[], seed: number): number[] {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const last = shape[shape.length - 1]!;
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(i % last === 0 ? Math.fround(r() - 0.5) : r() < 0.3 ? -Infinity : Math.fround(2 * r() - 1));
  return out;
}

test('additive masks broadcast to x, with -inf entries ([T,T] and [B,1,T,T])', async () => {
  await forEachVariant(async (v) => {
    for (const [xs, ms] of [
      [[2, 3, 5, 5], [5, 5]],
      [[2, 3, 5, 5], [2, 1, 5, 5]],
      [[1, 2, 77, 77], [77, 77]],
      [[3, 70], [1, 70]],
    ] as const) {
      const mdata = maskData([...ms], 3);
      await checkOp({
        name: `softmax x ${JSON.stringify(xs)} mask ${JSON.stringify(ms)} (${v})`,
        inputs: [{ shape: xs, range: [-4, 4] }, { shape: ms, data: mdata, grad: false }],
        gpu: (x, m) => softmax(x, -1, { mask: m }),
        ref: (x, m) => ref.softmax(x, -1, { mask: m }),
        fd: v === 'auto', // FD validates the reference, whatever kernel variant runs
      });
      // log-softmax is -inf at masked entries (relative errors are NaN there): check it through
      // exp(), which also takes its backward through the -inf entries.
      await checkOp({
        name: `exp(logSoftmax) x ${JSON.stringify(xs)} mask ${JSON.stringify(ms)} (${v})`,
        inputs: [{ shape: xs, range: [-4, 4] }, { shape: ms, data: mdata, grad: false }],
        gpu: (x, m) => exp(logSoftmax(x, -1, { mask: m })),
        ref: (x, m) => core.exp(ref.logSoftmax(x, -1, { mask: m })),
        fd: v === 'auto',
      });
    }
  });
});

test('causal mask (Tq = Tk and Tq < Tk), alone and with an additive mask', async () => {
  await forEachVariant(async (v) => {
    for (const xs of [
      [2, 7, 7],
      [3, 4, 9],
      [1, 70, 70],
    ]) {
      for (const [nm, g, r] of [
        ['softmax', softmax, ref.softmax],
        ['logSoftmax', (x: Parameters<typeof softmax>[0], a: number, o: object) => exp(logSoftmax(x, a, o)), (x: core.R, a: number, o: object) => core.exp(ref.logSoftmax(x, a, o))],
      ] as const) {
        await checkOp({ name: `${nm} causal ${JSON.stringify(xs)} (${v})`, inputs: [{ shape: xs }], gpu: (x) => g(x, -1, { causal: true }), ref: (x) => r(x, -1, { causal: true }), fd: v === 'auto' });
      }
      const ms = xs.slice(1);
      await checkOp({
        name: `softmax causal + mask ${JSON.stringify(xs)} (${v})`,
        inputs: [{ shape: xs }, { shape: ms, data: randArray(ms[0]! * ms[1]!, 8, -2, 2) }],
        gpu: (x, m) => softmax(x, -1, { mask: m, causal: true }),
        ref: (x, m) => ref.softmax(x, -1, { mask: m, causal: true }),
        fd: v === 'auto',
      });
    }
  });
});

test('mask gradient: summed over broadcast dims', async () => {
  await forEachVariant(async (v) => {
    await checkOp({
      name: `softmax dmask [2,3,6,6] mask [6,6] (${v})`,
      inputs: [{ shape: [2, 3, 6, 6] }, { shape: [6, 6] }],
      gpu: (x, m) => softmax(x, -1, { mask: m }),
      ref: (x, m) => ref.softmax(x, -1, { mask: m }),
    });
    await checkOp({
      name: `logSoftmax dmask only (x frozen) [4,100] mask [1,100] (${v})`,
      inputs: [{ shape: [4, 100], grad: false }, { shape: [1, 100] }],
      gpu: (x, m) => logSoftmax(x, -1, { mask: m }),
      ref: (x, m) => ref.logSoftmax(x, -1, { mask: m }),
    });
  });
});

test('fully masked rows give softmax 0 and logSoftmax -inf, never NaN; gradients are finite', async () => {
  const gpu = await getGpu();
  await forEachVariant(async (v) => {
    for (const n of [5, 200]) {
      const x = tensor(Float32Array.from(randArray(2 * n, 4)), [2, n], 'f32', gpu).param();
      const mdata = new Float32Array(2 * n);
      mdata.fill(-Infinity, 0, n); // row 0 fully masked
      const m = tensor(mdata, [2, n], 'f32', gpu);
      const y = softmax(x, -1, { mask: m });
      const ly = logSoftmax(x, -1, { mask: m });
      const yv = await y.read();
      const lv = await ly.read();
      for (let k = 0; k < n; k++) {
        assert.is(yv[k], 0, `softmax masked row (${v})`);
        assert.is(lv[k], -Infinity, `logSoftmax masked row (${v})`);
      }
      let s = 0;
      for (let k = n; k < 2 * n; k++) s += yv[k]!;
      assert.ok(Math.abs(s - 1) < 1e-5, `unmasked row sums to ${s}`);
      y.backward({ gradient: tensor(Float32Array.from(randArray(2 * n, 5)), [2, n], 'f32', gpu) });
      const gx = await x.grad!.read();
      assert.ok(gx.every((g) => Number.isFinite(g)), `gradient finite (${v})`);
      for (const t of [x, m, y, ly]) t.dispose();
    }
  });
});

test('rows beyond 65535 workgroups / invocation blocks (grid split over y)', async () => {
  forceReduceVariant('wg');
  try {
    await checkOp({ name: 'logSoftmax [66000,3] (wg)', inputs: [{ shape: [66000, 3] }], gpu: (x) => logSoftmax(x), ref: (x) => ref.logSoftmax(x), fdCoords: 3 });
  } finally {
    forceReduceVariant(null);
  }
  // thread variant: 64 * 65536 + 1 rows of 2.
  const gpu = await getGpu();
  const n = 64 * 65536 + 1;
  const data = Float32Array.from(randArray(2 * n, 13, -3, 3));
  const x = tensor(data, [n, 2], 'f32', gpu);
  const y = await softmax(x).read();
  let err = 0;
  for (let r = 0; r < n; r++) {
    const p0 = 1 / (1 + Math.exp(data[2 * r + 1]! - data[2 * r]!));
    err = Math.max(err, Math.abs(y[2 * r]! - p0), Math.abs(y[2 * r + 1]! - (1 - p0)));
  }
  assert.ok(err < 1e-6, `softmax of ${n} rows of 2: max error ${err}`);
  x.dispose();
});

test('deterministic: bit-identical outputs and gradients over two runs', async () => {
  const gpu = await getGpu();
  for (const shape of [
    [64, 77],
    [3, 20000],
  ]) {
    const n = shape[0]! * shape[1]!;
    const xv = Float32Array.from(randArray(n, 21, -5, 5));
    const gv = Float32Array.from(randArray(n, 22));
    const runs: number[][] = [];
    for (let r = 0; r < 2; r++) {
      const x = tensor(xv, shape, 'f32', gpu).param();
      const y = softmax(x, -1, { causal: shape[0] === 64 });
      y.backward({ gradient: tensor(gv, shape, 'f32', gpu) });
      runs.push([...(await y.read()), ...(await x.grad!.read())]);
      x.dispose();
      y.dispose();
    }
    assert.equal(runs[0], runs[1]);
  }
});

test('bad inputs throw before any dispatch', async () => {
  const gpu = await getGpu();
  const x = tensor(new Float32Array(24), [2, 3, 4], 'f32', gpu);
  const xi = tensor(new Int32Array(24), [2, 3, 4], 'i32', gpu);
  const badMask = tensor(new Float32Array(6), [2, 3], 'f32', gpu);
  const bigMask = tensor(new Float32Array(48), [2, 2, 3, 4], 'f32', gpu);
  const before = gpu.counters.dispatches;
  assert.throws(() => softmax(x, 3), /softmax: axis 3 is out of range for tensor#\d+ f32\[2,3,4\] \(rank 3\)/);
  assert.throws(() => logSoftmax(xi), /logSoftmax: tensor#\d+ i32\[2,3,4\] must be f32/);
  assert.throws(() => softmax(x, -1, { mask: badMask }), /softmax mask: shapes \[2,3,4\] and \[2,3\] do not broadcast/);
  assert.throws(() => softmax(x, -1, { mask: bigMask }), /softmax: mask tensor#\d+ f32\[2,2,3,4\] does not broadcast to x/);
  assert.throws(() => softmax(x, 1, { causal: true }), /softmax: causal needs the last axis/);
  assert.throws(() => softmax(xi, -1, { mask: xi }), /must be f32/);
  // 24M-element rows would need over 60000 loop iterations per invocation even in the largest
  // workgroup (1024 here).
  const long = empty([24_000_000], 'f32', gpu);
  assert.throws(() => softmax(long), /softmax: rows of 24000000 elements are too long for one workgroup of \d+ \(over the 60000-iteration loop budget/);
  assert.is(gpu.counters.dispatches, before);
  for (const t of [x, xi, badMask, bigMask, long]) t.dispose();
});

test.run();

// Linear probe: the GPU L-BFGS solve of sklearn's objective C·ΣCE + ½‖W‖² (bias unpenalised)
// reaches a relative gradient norm below 1e-6 and agrees with a float64 Newton solve; two classes
// match sklearn's binary logistic regression; the C search follows lpclip's rules.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../../src/gpu/index.js';
import { C_GRID, fitLogistic, probePredict, searchC, type LogisticData } from '../../src/adapt/linear-probe.js';
import { randArray, relErr } from '../helpers/parity.js';
import { binaryLogisticNewton, logisticNewton, logisticParts } from '../ref/adapt.js';

/** Noisy but learnable data: class means plus uniform noise, rounded to f32. */
function data(n: number, d: number, k: number, seed: number): LogisticData {
  const noise = randArray(n * d, seed);
  const means = randArray(k * d, seed + 1);
  const x = new Float32Array(n * d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = (i * 7 + seed) % k;
    for (let j = 0; j < d; j++) x[i * d + j] = Math.fround(means[y[i]! * d + j]! + 1.2 * noise[i * d + j]!);
  }
  return { x, y, n, d, classes: k };
}

for (const c of [1e-2, 1, 30]) {
  test(`C = ${c}: GPU L-BFGS reaches ‖g‖/‖g₀‖ < 1e-6 and matches a float64 Newton solve`, async () => {
    const gpu = await getGpu();
    const dd = data(40, 5, 3, 3);
    const fit = await fitLogistic(gpu, dd, c);
    assert.ok(fit.solver.converged, `${fit.solver.reason} after ${fit.solver.iterations} iterations, rel ${fit.solver.relGradNorm}`);
    assert.ok(fit.solver.relGradNorm < 1e-6);
    const theta = Float64Array.from((await fit.theta.read()) as Float32Array);
    const ref = logisticNewton(dd.x, dd.n, dd.d, dd.y, 3, c);
    const fRef = logisticParts(dd.x, dd.n, dd.d, dd.y, 3, c, ref).f;
    const fGot = logisticParts(dd.x, dd.n, dd.d, dd.y, 3, c, theta);
    assert.ok(Math.abs(fGot.f - fRef) <= 1e-6 * Math.abs(fRef), `objective ${fGot.f} vs ${fRef}`);
    // The float64 gradient at the GPU's solution is small relative to the gradient at 0.
    const g0 = Math.hypot(...logisticParts(dd.x, dd.n, dd.d, dd.y, 3, c, new Float64Array(theta.length)).g);
    assert.ok(Math.hypot(...fGot.g) / g0 < 1e-5, `float64 relative gradient ${Math.hypot(...fGot.g) / g0}`);
    assert.ok(relErr(theta, ref) < 1e-4, `Θ vs Newton: ${relErr(theta, ref)}`);
    const pred = await probePredict(gpu, fit.theta, dd);
    const refPred = Array.from({ length: dd.n }, (_, i) => {
      const z = [0, 1, 2].map((a) => Array.from({ length: 6 }, (_, j) => (j < 5 ? dd.x[i * 5 + j]! : 1) * ref[j * 3 + a]!).reduce((s, v) => s + v, 0));
      return z.indexOf(Math.max(...z));
    });
    assert.equal(Array.from(pred), refPred, 'predictions equal the float64 solution');
    fit.theta.dispose();
  });
}

test('two classes: the softmax at C/2 equals sklearn’s binary logistic regression at C', async () => {
  const gpu = await getGpu();
  const dd = data(30, 4, 2, 5);
  const fit = await fitLogistic(gpu, dd, 10);
  assert.ok(fit.solver.converged, fit.solver.reason);
  const th = (await fit.theta.read()) as Float32Array;
  // v = w1 - w0 (and b1 - b0) is the binary model.
  const v = Float64Array.from({ length: 5 }, (_, j) => th[j * 2 + 1]! - th[j * 2]!);
  const ref = binaryLogisticNewton(dd.x, dd.n, dd.d, dd.y, 10);
  assert.ok(relErr(v, ref) < 1e-4, `binary weights ${relErr(v, ref)}`);
  fit.theta.dispose();
});

test('C search: the grid, then 8 rounds in log10 C (ties keep the left), as lpclip', async () => {
  const acc = (c: number) => -Math.abs(Math.log10(c) - 1.3);
  const r = await searchC(async (c) => acc(c));
  // Worked by hand from lpclip's update rules: peak 1e2, then (10, 1e3), (10, 1e2), (10, 10^1.5),
  // (10^1.25, 10^1.5), (10^1.25, 10^1.375), (10^1.25, 10^1.3125), (10^1.28125, 10^1.3125),
  // (10^1.296875, 10^1.3125) -> left wins.
  assert.ok(Math.abs(Math.log10(r.c) - 1.296875) < 1e-12, `C = 10^${Math.log10(r.c)}`);
  assert.equal(r.visits.slice(0, 7).map((v) => v.c), [...C_GRID]);
  // Every distinct C is fitted once.
  assert.is(new Set(r.visits.map((v) => v.c)).size, r.visits.length);
  const flat = await searchC(async () => 50);
  assert.is(flat.c, 1e5, 'all equal: the first grid value is the peak, ties keep the left (0.1 x 1e6)');
});

test.run();

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { constantLr, cosineLr, dasslCosineLr, dasslCosineSchedule, makeSchedule } from '../../src/nn/schedule.js';
import { TORCH_COSINE, TORCH_DASSL } from './torch-optim-ref.js';

function assertRel(got: readonly number[], want: readonly number[], tol: number, what: string): void {
  assert.is(got.length, want.length, `${what}: length`);
  got.forEach((g, i) => {
    const w = want[i]!;
    const e = Math.abs(g - w) / Math.max(Math.abs(w), 1e-300);
    assert.ok(e <= tol, `${what}[${i}]: ${g} vs ${w} (rel ${e.toExponential(2)} > ${tol})`);
  });
}

test("Dassl cosine + constant warmup reproduces methods.md 2.3's verified example", () => {
  // E = 5, base 0.0035, 1 warmup epoch at 1e-5 (values as printed there, 5 significant digits).
  const lrs = dasslCosineSchedule({ baseLr: 0.0035, maxEpoch: 5, warmupEpochs: 1, warmupLr: 1e-5 });
  assertRel(lrs, [1e-5, 0.0035, 0.0031658, 0.0022908, 0.0012092], 2e-5, 'E=5 example');
  // The closed form the note gives: epoch k >= 1 uses base (1 + cos(pi (k - 1) / E)) / 2.
  for (let k = 1; k < 5; k++) assertRel([lrs[k]!], [(0.0035 * (1 + Math.cos((Math.PI * (k - 1)) / 5))) / 2], 1e-14, `closed form epoch ${k}`);
  assert.ok(lrs[4]! > 0, 'the last epoch never reaches 0');
});

test('Dassl schedules match Dassl.pytorch run on torch 1.13 (constant/linear warmup, no recount, no warmup)', () => {
  const cases: [string, Parameters<typeof dasslCosineSchedule>[0]][] = [
    ['e5_w1_const', { baseLr: 0.0035, maxEpoch: 5, warmupEpochs: 1, warmupLr: 1e-5 }],
    ['e10_w3_const', { baseLr: 0.002, maxEpoch: 10, warmupEpochs: 3, warmupLr: 1e-4 }],
    ['e10_w3_linear', { baseLr: 0.002, maxEpoch: 10, warmupEpochs: 3, warmupType: 'linear', warmupLr: 1e-5 }],
    ['e8_w2_norecount', { baseLr: 0.01, maxEpoch: 8, warmupEpochs: 2, warmupLr: 1e-5, warmupRecount: false }],
    ['e6_w0', { baseLr: 0.005, maxEpoch: 6 }],
  ];
  for (const [name, o] of cases) {
    const got = dasslCosineSchedule(o);
    assertRel(got, TORCH_DASSL[name]!, 1e-15, name); // bit-identical today (same recursion); allow 1 ulp of libm
    got.forEach((lr, k) => assert.is(dasslCosineLr(k, o), lr, `${name}: dasslCosineLr(${k})`));
    const f = makeSchedule({ type: 'dassl-cosine', ...o });
    got.forEach((lr, k) => assert.is(f(k), lr, `${name}: makeSchedule(${k})`));
  }
  // Past maxEpoch the recursion goes on as torch's does (cosine rises again after T_max).
  const o = { baseLr: 0.01, maxEpoch: 4 };
  const long = dasslCosineSchedule(o, 9);
  assertRel([long[4]!, long[8]!], [0, 0.01], 1e-12, 'period 2 T_max');
  assert.ok(Math.abs(long[4]!) < 1e-18, 'reaches 0 at T_max');
});

test('per-step cosine: torch CosineAnnealingLR (ProLIP T_max = 300), eta_min, linear warmup, clamp', () => {
  const t300 = Array.from({ length: 300 }, (_, s) => cosineLr(s, { baseLr: 1e-5, totalSteps: 300 }));
  // torch uses the recursive form; over 300 steps it drifts from our closed form by ~1e-15.
  assertRel(t300, TORCH_COSINE.t300!, 1e-14, 't300');
  assertRel(
    Array.from({ length: 7 }, (_, s) => cosineLr(s, { baseLr: 0.1, totalSteps: 7, minLr: 1e-3 })),
    TORCH_COSINE.t7_min!,
    1e-13,
    't7_min',
  );
  const o = { baseLr: 1e-3, totalSteps: 110, warmupSteps: 10, warmupStartLr: 1e-5 };
  assert.is(cosineLr(0, o), 1e-5);
  assertRel([cosineLr(5, o)], [1e-5 + (1e-3 - 1e-5) * 0.5], 1e-15, 'half warmup');
  assert.is(cosineLr(10, o), 1e-3);
  assertRel([cosineLr(60, o)], [0.5e-3], 1e-14, 'mid cosine');
  assert.ok(Math.abs(cosineLr(110, o)) < 1e-20, 'ends at minLr');
  assert.ok(Math.abs(cosineLr(500, o)) < 1e-20, 'held at minLr after the end');
  assert.is(cosineLr(3, { baseLr: 0.5, totalSteps: 10, warmupSteps: 4 }), 0.375, 'default warmup start 0');
  assert.is(constantLr(7, { lr: 0.25 }), 0.25);
  assert.is(makeSchedule({ type: 'constant', lr: 0.25 })(100), 0.25);
  assert.is(makeSchedule({ type: 'cosine', ...o })(60), cosineLr(60, o));
});

test('schedule argument errors', () => {
  assert.throws(() => dasslCosineSchedule({ baseLr: 0.1, maxEpoch: 0 }), /maxEpoch/);
  assert.throws(() => dasslCosineSchedule({ baseLr: -1, maxEpoch: 3 }), /baseLr/);
  assert.throws(() => dasslCosineSchedule({ baseLr: 0.1, maxEpoch: 3, warmupEpochs: 1.5 }), /warmupEpochs/);
  assert.throws(() => dasslCosineSchedule({ baseLr: 0.1, maxEpoch: 3, warmupType: 'exp' as never }), /warmupType/);
  assert.throws(() => dasslCosineLr(-1, { baseLr: 0.1, maxEpoch: 3 }), /epoch/);
  assert.throws(() => cosineLr(0, { baseLr: 0.1, totalSteps: 5, warmupSteps: 5 }), /warmupSteps/);
  assert.throws(() => cosineLr(1.5, { baseLr: 0.1, totalSteps: 5 }), /step/);
  assert.throws(() => constantLr(0, { lr: NaN }), /lr/);
  assert.throws(() => makeSchedule({ type: 'linear' } as never), /unknown type/);
});

test.run();

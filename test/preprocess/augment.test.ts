// Training augmentation: get_params integer rules vs torchvision, crop+resize+flip with fixed
// parameters vs PIL, and the seeded RNG's determinism.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DASSL_RRC_SCALE, PROLIP_RRC_SCALE, applyAugment, augmentForClip, cropSizeFor, fallbackCropParams, randomResizedCropParams, sampleAugmentParams } from '../../src/clip/augment.js';
import { Rng } from '../../src/clip/rng.js';
import { toNormalizedChw } from '../../src/clip/transforms.js';
import { expected, load, sha256 } from './helpers.js';

test('rng: xoshiro128** reference outputs from state (1,2,3,4)', () => {
  const r = Rng.fromState([1, 2, 3, 4]);
  assert.equal([r.nextU32(), r.nextU32(), r.nextU32()], [11520, 0, 5927040]);
});

test('rng: same seed → same stream; state export resumes exactly; fork is deterministic', () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const sa = Array.from({ length: 50 }, () => a.nextU32());
  assert.equal(sa, Array.from({ length: 50 }, () => b.nextU32()));
  assert.not.equal(sa, Array.from({ length: 50 }, () => c.nextU32()));
  assert.equal(new Rng('run-1').getState(), new Rng('run-1').getState());
  assert.not.equal(new Rng('run-1').getState(), new Rng('run-2').getState());
  assert.not.equal(new Rng(1).getState(), new Rng(1 + 2 ** 32).getState());

  const saved = JSON.parse(JSON.stringify(a.getState()));
  const next = [a.uniform(), a.randint(0, 1000), a.nextU32()];
  const resumed = Rng.fromState(saved);
  assert.equal([resumed.uniform(), resumed.randint(0, 1000), resumed.nextU32()], next);

  const p1 = new Rng(7), p2 = new Rng(7);
  const f1 = p1.fork(), f2 = p2.fork();
  assert.equal(f1.getState(), f2.getState());
  assert.equal(p1.getState(), p2.getState());
  assert.not.equal(f1.getState(), p1.getState());
  assert.not.equal(p1.fork().getState(), f1.getState());
  assert.throws(() => Rng.fromState([0, 0, 0, 0]), /all zero/);
});

test('rng: uniform in [0,1), randint covers its range uniformly-ish', () => {
  const r = new Rng(1);
  const counts = new Array(7).fill(0);
  let lo = 1, hi = 0, sum = 0;
  for (let i = 0; i < 70000; i++) {
    const u = r.uniform();
    lo = Math.min(lo, u); hi = Math.max(hi, u); sum += u;
    counts[r.randint(3, 10) - 3]++;
  }
  assert.ok(lo >= 0 && hi < 1 && Math.abs(sum / 70000 - 0.5) < 0.01);
  for (const n of counts) assert.ok(Math.abs(n - 10000) < 500, `randint bucket ${n}`);
  assert.throws(() => r.randint(5, 5), /lo < hi/);
});

test('get_params: crop size rounding = torchvision int(round(sqrt(...))) incl. half-even ties', () => {
  for (const [area, ratio, w, h] of expected.cropSize) assert.equal(cropSizeFor(area, ratio), { width: w, height: h }, `area ${area} ratio ${ratio}`);
});

test('get_params: centre fallback = torchvision (checked with real get_params in the generator)', () => {
  for (const [W, H, i, j, h, w] of expected.fallback) assert.equal(fallbackCropParams(W, H), { top: i, left: j, height: h, width: w }, `${W}x${H}`);
  // Scale ≥ 2 can never fit, so sampling must land on the fallback too.
  assert.equal(randomResizedCropParams(new Rng(3), 1000, 10, [2, 3]), fallbackCropParams(1000, 10));
});

test('get_params: sampled crops fit, respect scale/ratio up to rounding, same seed → same params', () => {
  for (const scale of [DASSL_RRC_SCALE, PROLIP_RRC_SCALE]) {
    const r = new Rng(123);
    for (let k = 0; k < 2000; k++) {
      const W = 16 + r.randint(0, 700), H = 16 + r.randint(0, 700);
      const p = randomResizedCropParams(r, W, H, scale);
      assert.ok(p.top >= 0 && p.left >= 0 && p.height > 0 && p.width > 0 && p.top + p.height <= H && p.left + p.width <= W, JSON.stringify(p));
      const frac = (p.width * p.height) / (W * H);
      // Rounding w and h to integers moves the area by < (w + h + 1) / 2 pixels.
      const slack = (p.width + p.height + 1) / 2 / (W * H);
      const fell = p.width === W || p.height === H;
      assert.ok(fell || (frac >= scale[0] - slack && frac <= scale[1] + slack), `area fraction ${frac}`);
    }
  }
  const seq = (seed: number) => { const r = new Rng(seed); return Array.from({ length: 20 }, () => sampleAugmentParams(r, 300, 200)); };
  assert.equal(seq(5), seq(5));
  assert.not.equal(seq(5), seq(6));
  const r = new Rng(9);
  let flips = 0;
  for (let i = 0; i < 4000; i++) flips += sampleAugmentParams(r, 50, 40).flip ? 1 : 0;
  assert.ok(Math.abs(flips - 2000) < 200, `flip count ${flips}`);
});

test('crop + resize + flip with fixed params: byte-exact vs PIL (torchvision resized_crop + hflip)', async () => {
  for (const c of expected.cropResize) {
    const img = await load(c.src);
    const out = applyAugment(img, c, c.size, c.filter);
    assert.is(out.width, c.size);
    assert.is(sha256(out.data), c.sha256, `${c.src} crop ${c.top},${c.left},${c.height}x${c.width} flip=${c.flip} ${c.filter}`);
  }
});

test('augmentForClip: deterministic per seed, tensor equals applyAugment of the reported params', async () => {
  const img = await load('mix_640x480.png');
  const a = augmentForClip(img, new Rng(11), { size: 64, scale: PROLIP_RRC_SCALE });
  const b = augmentForClip(img, new Rng(11), { size: 64, scale: PROLIP_RRC_SCALE });
  assert.equal(a.params, b.params);
  assert.is(sha256(a.tensor), sha256(b.tensor));
  assert.is(sha256(a.tensor), sha256(toNormalizedChw(applyAugment(img, a.params, 64))));
  const out = new Float32Array(2 * 3 * 64 * 64);
  augmentForClip(img, new Rng(11), { size: 64, scale: PROLIP_RRC_SCALE }, out, 3 * 64 * 64);
  assert.is(sha256(out.subarray(3 * 64 * 64)), sha256(a.tensor));
});

test.run();

// DAPT (methods.md 6): the dispersion losses against 6.f's sanity numbers and an independent float64
// reference (values, gradients, finite differences), the joint-feature OT term (5.b) against brute
// force, the presets, the visual prompts' place and init; on a tiny random CLIP: every learned tensor
// gets a gradient on the first step, frozen tensors stay bit-identical, the loss falls, the chunked
// text encoder changes nothing; end to end through the CLI on the shipped world CLIP, base-to-novel,
// with an interrupted and resumed run reaching bit-identical prompts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getGpu } from '../../src/gpu/index.js';
import { tensor, tidy, type Tensor } from '../../src/tensor/tensor.js';
import { clearTape, noGrad } from '../../src/autograd/tape.js';
import { l2normalize } from '../../src/ops/distance.js';
import { ClipModel, type Trace } from '../../src/clip/model.js';
import { randomClipWeights } from '../../src/clip/configs.js';
import { loadClipTokenizer } from '../../src/clip/tokenizer-node.js';
import { composeLoss, MethodOptionError, type FeatureSource, type MethodEnv } from '../../src/adapt/method.js';
import { METHODS } from '../../src/adapt/registry.js';
import { epochRng } from '../../src/adapt/coop.js';
import {
  DAPT,
  DAPT_PRESETS,
  classPrototypes,
  interDispersionLoss,
  intraDispersionLoss,
} from '../../src/adapt/dapt.js';
import { vptUniformBound as visualPromptBound } from '../../src/adapt/deep-prompts.js';
import { promptOtTerm } from '../../src/adapt/prompt-ot.js';
import type { TrainIo } from '../../src/cli/train.js';
import { worldCommand } from '../../src/cli/world.js';
import { evalCommand } from '../../src/cli/eval.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { assertClose, checkOp, randArray, relErr } from '../helpers/parity.js';
import { interRef, intraRef, jointOtRef } from '../ref/dapt.js';
import * as core from '../ref/core.js';
import { R } from '../ref/core.js';
import { TINY_CONFIG, cliTrain, logLines, quiet, removeDir, tempDir } from '../train/helpers.js';
import { fdCheck } from './deep-prompt-helpers.js';

// ---------------------------------------------------------------------------------------------
// Losses

test('methods.md 6.f: L_inter 0.223180, L_intra 0.010000, 10·intra + 0.01·inter 0.102232, bound 0.0625', async () => {
  const gpu = await getGpu();
  const w = tensor([1, 0, 0, 1, 0.6, 0.8], [3, 2], 'f32', gpu);
  const f = tensor([0.6, 0.8, 1, 0], [2, 2], 'f32', gpu);
  const p = tensor([0.9, 0.1, 0.2, 0.9, 0.5, 0.7], [3, 2], 'f32', gpu);
  const y = tensor([2, 0], [2], 'i32', gpu);
  const inter = interDispersionLoss(w);
  const intra = intraDispersionLoss(f, p, y);
  const { loss } = composeLoss([
    { name: 'intra', weight: 10, value: intra },
    { name: 'inter', weight: 0.01, value: inter },
  ]);
  const expectInter = (Math.exp(-4) + Math.exp(-1.6) + Math.exp(-0.8)) / 3;
  assert.ok(Math.abs(expectInter - 0.22318) < 5e-7);
  assert.ok(Math.abs((await inter.item()) - 0.22318) < 1e-6, `inter ${await inter.item()}`);
  assert.ok(Math.abs((await intra.item()) - 0.01) < 1e-7, `intra ${await intra.item()}`);
  assert.ok(Math.abs((await loss.item()) - 0.102232) < 1e-6, `total ${await loss.item()}`);
  // The float64 references give the same numbers.
  assert.ok(Math.abs(interRef(R.from([1, 0, 0, 1, 0.6, 0.8], [3, 2])).data[0]! - expectInter) < 1e-15);
  assert.ok(Math.abs(intraRef(R.from([0.6, 0.8, 1, 0], [2, 2]), R.from([0.9, 0.1, 0.2, 0.9, 0.5, 0.7], [3, 2]), [2, 0]).data[0]! - 0.01) < 1e-15);
  assert.ok(Math.abs(visualPromptBound(16, 768) - 0.0625) < 1e-15, 'ViT-B/16: sqrt(6/(3·16·16 + 768))');
  assert.ok(Math.abs(visualPromptBound(8, 128) - Math.sqrt(6 / 320)) < 1e-15, 'world CLIP: patch 8, width 128');
  for (const t of [inter, intra, loss, w, f, p, y]) t.dispose();
  clearTape();
});

for (const [c, e, t] of [[2, 5, 2], [7, 32, 2], [13, 9, 0.5]] as const) {
  test(`inter-dispersion vs float64 reference: C = ${c}, E = ${e}, t = ${t} (value, gradient, finite differences)`, async () => {
    await checkOp({
      name: `interDispersion C=${c}`,
      inputs: [{ shape: [c, e], range: [-0.4, 0.4] }],
      gpu: (w) => interDispersionLoss(w, t),
      ref: (w) => interRef(w, t),
      seed: c,
    });
  });
}

test('inter-dispersion on normalised features (the way DAPT uses it): gradient through l2normalize', async () => {
  const norm = (w: R) => {
    const n = core.sqrt(core.sum(core.square(w), 1, true));
    return core.div(w, n);
  };
  await checkOp({
    name: 'interDispersion(l2normalize(w))',
    inputs: [{ shape: [6, 8] }],
    gpu: (w) => interDispersionLoss(l2normalize(w)),
    ref: (w) => interRef(norm(w)),
    seed: 5,
  });
});

for (const [b, c, e] of [[1, 1, 3], [5, 3, 7], [11, 4, 32]] as const) {
  test(`intra-dispersion vs float64 reference: B = ${b}, C = ${c}, E = ${e}`, async () => {
    const labels = Array.from({ length: b }, (_, i) => (i * 5 + 1) % c);
    await checkOp({
      name: `intraDispersion B=${b}`,
      inputs: [{ shape: [b, e] }, { shape: [c, e], grad: false }, { shape: [b], data: labels, dtype: 'i32', grad: false }],
      gpu: (f, p, y) => intraDispersionLoss(f, p, y),
      ref: (f, p) => intraRef(f, p, labels),
      seed: b,
    });
  });
}

for (const b of [3, 6]) {
  test(`joint-feature OT term vs brute force: B = ${b}, plan held constant (value, gradients into image and text features)`, async () => {
    const c = 4;
    const e = 5;
    const labels = Array.from({ length: b }, (_, i) => (i * 3) % c);
    let perm: number[] = [];
    await checkOp({
      name: `jointOt B=${b}`,
      inputs: [
        { shape: [b, e] },
        { shape: [c, e] },
        { shape: [b, e], grad: false },
        { shape: [c, e], grad: false },
        { shape: [b], data: labels, dtype: 'i32', grad: false },
      ],
      gpu: (v, t, v0, t0, y) => promptOtTerm({ image: v, text: t, image0: v0, text0: t0, labels: y, eta: 0.5, lambda: 1, ot: { solver: 'exact' } }).term.value,
      ref: (v, t, v0, t0) => {
        const r = jointOtRef(v, t, v0, t0, labels);
        perm = r.perm;
        return r.loss;
      },
      seed: 40 + b,
    });
    assert.ok(perm.some((j, i) => j !== i), 'random features: the test exercises a non-identity plan');
  });
}

test('joint OT term: adapted = frozen gives 0 and the identity plan (the stats say so)', async () => {
  const gpu = await getGpu();
  const v = tensor(randArray(4 * 3, 1), [4, 3], 'f32', gpu);
  const t = tensor(randArray(2 * 3, 2), [2, 3], 'f32', gpu);
  const y = tensor([0, 1, 1, 0], [4], 'i32', gpu);
  const r = noGrad(() => promptOtTerm({ image: v, text: t, image0: v, text0: t, labels: y, eta: 0.5, lambda: 1, ot: { solver: 'exact' } }));
  assert.is(await r.term.value.item(), 0);
  assert.is(((await r.stats.read()) as Float32Array)[0], 0, 'nonIdentity');
  for (const x of [r.term.value, r.stats, r.cost, r.plan, ...Object.values(r.logs), v, t, y]) x.dispose();
});

test('bad inputs throw before any dispatch', async () => {
  const gpu = await getGpu();
  const one = tensor([1, 0], [1, 2], 'f32', gpu);
  const f = tensor([1, 0, 0, 1], [2, 2], 'f32', gpu);
  const p = tensor([1, 0, 0], [1, 3], 'f32', gpu);
  const y = tensor([0], [1], 'i32', gpu);
  const before = gpu.counters.dispatches;
  assert.throws(() => interDispersionLoss(one), /interDispersionLoss: .*hold 1 class; the mean over class pairs needs at least 2/);
  assert.throws(() => interDispersionLoss(tensor([1], [1], 'f32', gpu)), /must be \[C, E\]/);
  assert.throws(() => intraDispersionLoss(f, p, y), /intraDispersionLoss: features .*f32\[2,2\] and prototypes .*f32\[1,3\]/);
  assert.throws(() => intraDispersionLoss(f, tensor([1, 0], [1, 2], 'f32', gpu), y), /labels .*i32\[1\] must be \[2\]/);
  assert.is(gpu.counters.dispatches, before);
  clearTape();
});

test('class prototypes: unnormalised per-class means in float64, empty classes zero', () => {
  const rows = Float32Array.from([1, 0, 0, 1, 0.6, 0.8]);
  const p = classPrototypes(rows, [1, 1, 0], 3, 2);
  assert.equal(Array.from(p), [0.6, 0.8, 0.5, 0.5, 0, 0].map(Math.fround));
  assert.throws(() => classPrototypes(rows, [1, 3, 0], 3, 2), /label 3 of row 1 is outside 3 classes/);
});

// ---------------------------------------------------------------------------------------------
// Options

test('presets: official per-dataset lr/β, train.py defaults for World, --preset fills unless given, epochs by shots; registered', () => {
  const ctx = (datasetName: string, shots = 16) => ({ shots, datasetName, baseToNovel: false });
  const pets = DAPT.defaults(ctx('OxfordPets'));
  assert.equal([pets.preset, pets.lr, pets.betaV, pets.betaT, pets.epochs, pets.batchSize, pets.nCtx, pets.nCtxVision, pets.rbfT, pets.otLambda], ['OxfordPets', 0.02, 10, 0.1, 200, 32, 16, 16, 2, 0]);
  const world = DAPT.defaults(ctx('World', 1));
  assert.equal([world.preset, world.lr, world.betaV, world.betaT, world.epochs], ['default', 3e-4, 0.1, 0.1, 50]);
  assert.equal([world.momentum, world.weightDecay, world.warmupEpochs, world.warmupLr], [0.9, 5e-4, 1, 1e-5]);
  assert.is(DAPT.defaults(ctx('ImageNet', 4)).epochs, 50);
  assert.is(DAPT.defaults(ctx('EuroSAT', 4)).epochs, 100);
  // methods.md 6.b's table, row by row.
  const table: [string, number, number, number][] = [
    ['ImageNet', 2.0, 0.01, 0.01], ['Caltech101', 0.2, 10, 0.01], ['OxfordPets', 0.02, 10, 0.1], ['StanfordCars', 0.002, 100, 0.1],
    ['OxfordFlowers', 0.002, 10, 0.01], ['Food101', 20, 10, 0.01], ['FGVCAircraft', 2.0, 100, 0.01], ['SUN397', 20, 100, 0.01],
    ['DescribableTextures', 20, 100, 0.01], ['EuroSAT', 20, 100, 10], ['UCF101', 20, 0.1, 0.1],
  ];
  assert.equal(Object.entries(DAPT_PRESETS).map(([k, v]) => [k, v.lr, v.betaV, v.betaT]), table);
  // A chosen preset supplies lr and betas unless those are given too.
  const o = DAPT.defaults(ctx('World'));
  o.preset = 'EuroSAT';
  o.betaT = 0;
  DAPT.finalize!(o, new Set(['preset', 'betaT']));
  assert.equal([o.lr, o.betaV, o.betaT], [20, 100, 0]);
  const untouched = DAPT.defaults(ctx('World'));
  untouched.lr = 0.1;
  DAPT.finalize!(untouched, new Set(['lr']));
  assert.equal([untouched.lr, untouched.betaV], [0.1, 0.1]);
  assert.ok(DAPT.options.find((x) => x.key === 'preset')!.choices!.includes('default'));
  assert.equal(['betaV', 'betaT', 'otLambda'].map((k) => DAPT.options.find((x) => x.key === k)!.flag), ['beta-v', 'beta-t', 'ot-lambda']);
  assert.is(METHODS.dapt, DAPT);
});

// ---------------------------------------------------------------------------------------------
// On a tiny random CLIP

const weights = randomClipWeights(TINY_CONFIG, 7);
const CLASSES = ['red circle', 'green square', 'blue triangle', 'yellow star', 'purple cross'];
const RES = TINY_CONFIG.image.resolution;

/** A FeatureSource with fixed random values (the method only needs the shapes and determinism). */
function fakeFeatures(): FeatureSource {
  return {
    pooled: async (items, view) => Float32Array.from(randArray(items.length * TINY_CONFIG.image.width, 100 + (view.mode === 'train' ? view.seed : 0))),
    textWeights: async (names) => {
      const e = TINY_CONFIG.embedDim;
      const a = Float32Array.from(randArray(names.length * e, 200));
      for (let c = 0; c < names.length; c++) {
        const n = Math.hypot(...a.subarray(c * e, (c + 1) * e));
        for (let k = 0; k < e; k++) a[c * e + k]! /= n;
      }
      return a;
    },
  };
}

async function tinyEnv(model: ClipModel, logs: string[] = []): Promise<MethodEnv> {
  const gpu = await getGpu();
  const train = Array.from({ length: 10 }, (_, i) => ({ impath: `img${i}`, label: i % CLASSES.length }));
  return { gpu, model, tokenizer: await loadClipTokenizer(), datasetName: 'World', classnames: CLASSES, train, val: null, shots: 2, seed: 4, features: fakeFeatures(), purpose: 'train', log: (m) => logs.push(m) };
}

const BATCH = { pixels: Float32Array.from(randArray(4 * 3 * RES * RES, 21)), labels: Int32Array.of(0, 4, 2, 2), count: 4 };
const stepCtx = (globalStep: number) => ({ epoch: 0, stepInEpoch: globalStep, globalStep, rng: epochRng(0, 0) });

function makeDapt(over: Record<string, number | string> = {}) {
  const ctx = { shots: 2, datasetName: 'World', baseToNovel: false };
  return DAPT.create({ ...DAPT.defaults(ctx), nCtx: 3, nCtxVision: 4, ...over }, ctx);
}

test('visual prompts sit at rows 1..M after ln_pre (no positional embedding, no ln_pre); init uniform within ±sqrt(6/(3p²+d)) of the model', async () => {
  const gpu = await getGpu();
  const model = ClipModel.fromTensors(gpu, TINY_CONFIG, weights);
  const logs: string[] = [];
  const m = makeDapt();
  await m.prepare(await tinyEnv(model, logs));
  assert.match(logs.join('\n'), /dapt: preset "default" \(train.py's defaults; World has no DAPT config\): lr 0.0003, beta_v 0.1, beta_t 0.1/);
  const vpt = m.params.get('visual_prompts')!;
  assert.equal([...vpt.shape], [4, TINY_CONFIG.image.width]);
  assert.equal([...m.params.keys()], ['ctx', 'visual_prompts']);
  const v = (await vpt.read()) as Float32Array;
  const bound = visualPromptBound(TINY_CONFIG.image.patchSize, TINY_CONFIG.image.width);
  assert.ok(Math.abs(bound - Math.sqrt(6 / (3 * 64 + 64))) < 1e-15);
  const maxAbs = Math.max(...v.map(Math.abs));
  assert.ok(maxAbs <= bound && maxAbs > 0.95 * bound, `max |v| ${maxAbs} vs bound ${bound}`);
  const ctxVals = (await m.params.get('ctx')!.read()) as Float32Array;
  const std = Math.sqrt(ctxVals.reduce((a, x) => a + x * x, 0) / ctxVals.length);
  assert.ok(std > 0.015 && std < 0.025, `text ctx std ${std} (N(0, 0.02))`);
  // Splice: the stream after ln_pre is [ln_pre(cls), prompts, ln_pre(patches)].
  const pixels = tensor(BATCH.pixels, [4, 3, RES, RES], 'f32', gpu);
  const tr: Trace = new Map();
  noGrad(() => tidy(() => model.encodeImage(pixels, { insertAfterCls: vpt, trace: tr }).embeds)).dispose();
  const plain: Trace = new Map();
  noGrad(() => tidy(() => model.encodeImage(pixels, { trace: plain }).embeds)).dispose();
  const got = (await tr.get('vision.ln_pre')!.read()) as Float32Array;
  const ref = (await plain.get('vision.ln_pre')!.read()) as Float32Array;
  const Wv = TINY_CONFIG.image.width;
  const T = 1 + (RES / TINY_CONFIG.image.patchSize) ** 2;
  assert.equal([...tr.get('vision.ln_pre')!.shape], [4, T + 4, Wv]);
  for (let b = 0; b < 4; b++) {
    const row = (x: Float32Array, t: number, len: number) => Array.from(x.subarray((b * len + t) * Wv, (b * len + t + 1) * Wv));
    assert.equal(row(got, 0, T + 4), row(ref, 0, T), 'class token');
    for (let k = 0; k < 4; k++) assert.equal(row(got, 1 + k, T + 4), Array.from(v.subarray(k * Wv, (k + 1) * Wv)), `prompt ${k} untouched by ln_pre`);
    for (let t = 1; t < T; t++) assert.equal(row(got, 4 + t, T + 4), row(ref, t, T), `patch ${t}`);
  }
  // ln_pre really changes rows (so the check above tells "after" from "before").
  assert.not.equal(row0(await plain.get('vision.embeddings')!.read()), row0(ref));
  for (const x of [...tr.values(), ...plain.values(), pixels]) x.dispose();
  m.dispose();
  model.dispose();
});

test('--vision-init class-token: prompts = the uniform draw + ln_pre(class embedding + its position), float64 on the host', async () => {
  const gpu = await getGpu();
  const model = ClipModel.fromTensors(gpu, TINY_CONFIG, weights);
  const uniform = makeDapt();
  await uniform.prepare(await tinyEnv(model));
  const cls = makeDapt({ visionInit: 'class-token' });
  await cls.prepare(await tinyEnv(model));
  const u = (await uniform.params.get('visual_prompts')!.read()) as Float32Array;
  const c = (await cls.params.get('visual_prompts')!.read()) as Float32Array;
  // Reference: LayerNorm of class_embedding + positional_embedding[0], biased variance, eps 1e-5.
  const W = TINY_CONFIG.image.width;
  const x = Array.from({ length: W }, (_, d) => weights.get('visual.class_embedding')![d]! + weights.get('visual.positional_embedding')![d]!);
  const mu = x.reduce((a, v) => a + v, 0) / W;
  const varc = x.reduce((a, v) => a + (v - mu) ** 2, 0) / W;
  const state = x.map((v, d) => ((v - mu) / Math.sqrt(varc + TINY_CONFIG.image.eps)) * weights.get('visual.ln_pre.weight')![d]! + weights.get('visual.ln_pre.bias')![d]!);
  for (let k = 0; k < 4; k++) {
    const diff = Float32Array.from({ length: W }, (_, d) => c[k * W + d]! - u[k * W + d]!);
    assertClose(diff, Float32Array.from(state), 1e-5, `prompt ${k} - uniform draw vs ln_pre(class token)`);
  }
  // The draw is still there: the prompts differ from each other.
  assert.ok(Math.abs(c[0]! - c[W]!) > 1e-4, 'prompts are not identical copies');
  for (const m of [uniform, cls]) m.dispose();
  model.dispose();
});

test('tiny CLIP: the tape gradient of the text context and the visual prompts matches central differences of the step loss (CE + both dispersion terms)', async () => {
  const gpu = await getGpu();
  const model = ClipModel.fromTensors(gpu, TINY_CONFIG, weights);
  const m = makeDapt({ betaV: 10, betaT: 0.5 });
  await m.prepare(await tinyEnv(model));
  const r = await fdCheck(m, BATCH, 3, 1e-3);
  console.log(`    dapt FD: ${[...r].map(([k, v]) => `${k} ${v.err.toExponential(1)}`).join(', ')}`);
  assert.equal([...r.keys()], ['ctx', 'visual_prompts']);
  for (const [k, v] of r) {
    assert.ok(v.grad.some((g) => Math.abs(g) > 1e-4), `${k}: gradient too small to check (${v.grad})`);
    assert.ok(v.err < 1e-2, `${k}: tape ${v.grad.map((x) => x.toPrecision(4))} vs central differences ${v.fd.map((x) => x.toPrecision(4))} (rel ${v.err.toExponential(2)})`);
  }
  clearTape();
  m.dispose();
  model.dispose();
});

function row0(x: ArrayLike<number>): number[] {
  return Array.from(x).slice(0, TINY_CONFIG.image.width);
}

async function readAll(ts: Iterable<Tensor>): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const t of ts) out.push(Float32Array.from((await t.read()) as Float32Array));
  return out;
}

test('tiny CLIP (with the OT term): every learned tensor gets a non-zero gradient on step 1, frozen CLIP bit-identical after 6 SGD steps, loss falls', async () => {
  const gpu = await getGpu();
  const model = ClipModel.fromTensors(gpu, TINY_CONFIG, weights);
  const m = makeDapt({ lr: 0.5, betaV: 1, betaT: 1, otLambda: 1 });
  await m.prepare(await tinyEnv(model));
  const frozen0 = await readAll(model.params.values());
  const opt = m.createOptimizer();
  opt.setLr(0.5);
  const losses: number[] = [];
  for (let s = 0; s < 6; s++) {
    const out = tidy(() => m.step(BATCH, stepCtx(s)));
    assert.equal(Object.keys(out.terms!), ['ce', 'intra', 'inter', 'ot', 'ot_nonidentity']);
    losses.push(await out.loss.item());
    out.loss.backward();
    out.afterBackward?.();
    if (s === 0) {
      for (const [name, p] of m.params) {
        assert.ok(p.grad, `${name} has a gradient`);
        const g = (await p.grad.read()) as Float32Array;
        const n = Math.hypot(...g);
        assert.ok(n > 0 && Number.isFinite(n), `${name}: |grad| ${n}`);
      }
      for (const [name, p] of model.params) assert.ok(!p.grad, `frozen ${name} got a gradient`);
    }
    for (const t of [out.loss, ...Object.values(out.terms!)]) t.dispose();
    opt.step();
    opt.zeroGrad();
  }
  const frozen1 = await readAll(model.params.values());
  [...model.params.keys()].forEach((name, i) => assert.ok(frozen0[i]!.every((v, k) => Object.is(v, frozen1[i]![k])), `${name} changed`));
  assert.ok(losses[5]! < losses[0]! - 0.1, `loss ${losses.map((l) => l.toFixed(4)).join(' -> ')}`);
  m.dispose();
  model.dispose();
  clearTape();
});

test('tiny CLIP: chunked text encoder (2 classes per chunk) gives the unchunked loss and gradients; β = 0 skips the terms', async () => {
  const gpu = await getGpu();
  const model = ClipModel.fromTensors(gpu, TINY_CONFIG, weights);
  const run = async (over: Record<string, number>) => {
    const m = makeDapt({ betaV: 2, betaT: 3, otLambda: 0.5, ...over });
    await m.prepare(await tinyEnv(model));
    const out = tidy(() => m.step(BATCH, stepCtx(0)));
    const loss = await out.loss.item();
    const names = Object.keys(out.terms!);
    out.loss.backward();
    out.afterBackward?.();
    const grads = await readAll([...m.params.values()].map((p) => p.grad!));
    for (const t of [out.loss, ...Object.values(out.terms!)]) t.dispose();
    m.dispose();
    return { loss, grads, names, chunked: !!out.afterBackward };
  };
  const whole = await run({ textChunk: 128 });
  const chunked = await run({ textChunk: 2 });
  assert.equal([whole.chunked, chunked.chunked], [false, true]);
  assert.ok(Math.abs(whole.loss - chunked.loss) <= 1e-6 * Math.abs(whole.loss), `loss ${whole.loss} vs ${chunked.loss}`);
  whole.grads.forEach((g, i) => assert.ok(relErr(chunked.grads[i]!, g) < 1e-5, `grad ${i}: ${relErr(chunked.grads[i]!, g)}`));
  const bare = await run({ betaV: 0, betaT: 0, otLambda: 0 });
  assert.equal(bare.names, ['ce'], 'terms with weight 0 are not computed');
  assert.ok(bare.loss < whole.loss);
  model.dispose();
  clearTape();
});

test('--beta-t with a single training class is an option error', async () => {
  const gpu = await getGpu();
  const model = ClipModel.fromTensors(gpu, TINY_CONFIG, weights);
  const env = { ...(await tinyEnv(model)), classnames: ['red circle'], train: [{ impath: 'x', label: 0 }] };
  const m = makeDapt();
  let err: unknown = null;
  try {
    await m.prepare(env);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof MethodOptionError && /--beta-t 0.1: the inter-dispersion term needs at least 2 training classes/.test(err.message), String(err));
  m.dispose();
  const ok = makeDapt({ betaT: 0 });
  await ok.prepare(env);
  ok.dispose();
  model.dispose();
});

// ---------------------------------------------------------------------------------------------
// End to end on the shipped world CLIP

const repo = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));
const root = tempDir('dapt');
const DATA = join(root, 'world');
const CACHE = join(root, 'cache');
test.after(() => removeDir(root));

const train = (args: string[], io: TrainIo = {}) => cliTrain(args, CACHE, io, true);

test('CLI: `train --method dapt --base-to-novel` on the world CLIP trains (loss falls), reports base/novel/HM, and a resumed run is bit-identical', async () => {
  const w = await quiet(() => worldCommand(['--out', DATA, '--train', '4', '--val', '1', '--test', '4']));
  assert.is(w.value, 0, w.err);
  const args = ['--weights', repo('weights/world-clip.safetensors'), '--data', DATA, '--method', 'dapt', '--base-to-novel', '--shots', '1', '--seed', '1', '--epochs', '2', '--batch-size', '8', '--lr', '0.2', '--warmup-epochs', '0', '--ot-lambda', '1', '--log-every', '1'];
  const a = join(root, 'a');
  const b = join(root, 'b');
  const t0 = performance.now();
  const r1 = await train([...args, '--out', a]);
  const secs = (performance.now() - t0) / 1000;
  assert.is(r1.value, 0, r1.err);
  assert.match(r1.err, /--preset "default"/);
  assert.match(r1.err, /dapt: preset "default" \(train.py's defaults; World has no DAPT config\): lr 0.0003, beta_v 0.1, beta_t 0.1; this run: lr 0.2, beta_v 0.1, beta_t 0.1, OT lambda 1/);
  assert.match(r1.out, /test base: accuracy/);
  assert.match(r1.out, /test novel: accuracy/);
  assert.match(r1.out, /HM /);
  const steps = logLines(a).filter((l) => l.type === 'step') as Record<string, number>[];
  assert.is(steps.length, 6, '24 base images / batch 8 = 3 steps x 2 epochs');
  for (const s of steps) for (const k of ['ce', 'intra', 'inter', 'ot', 'ot_nonidentity']) assert.ok(Number.isFinite(s[k]), `step ${s.step}: ${k}`);
  const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
  const first = mean(steps.slice(0, 3).map((s) => s.loss));
  const last = mean(steps.slice(-3).map((s) => s.loss));
  assert.ok(last < first - 0.5, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
  const runJson = JSON.parse(readFileSync(join(a, 'run.json'), 'utf8'));
  assert.equal([runJson.options.otLambda, runJson.options.betaV, runJson.options.betaT, runJson.options.preset], [1, 0.1, 0.1, 'default']);
  const report = JSON.parse(readFileSync(join(a, 'report.json'), 'utf8'));
  assert.equal(report.methodSummary, { otSteps: 6, otNonIdentityFraction: steps.reduce((x, s) => x + s.ot_nonidentity!, 0) / 6 });
  assert.equal(report.results.map((x: { classSet: string; total: number }) => [x.classSet, x.total]), [['base', 96], ['novel', 96]]);
  // `cliptune eval` rebuilds the prompted classifier from the run and reproduces its accuracy.
  const ev = await quiet(() => evalCommand(['--run', a, '--cache', CACHE, '--classes', 'novel', '--json']));
  assert.is(ev.value, 0, ev.err);
  assert.is(JSON.parse(ev.out.trim().split('\n').pop()!).results[0].accuracy, report.results[1].accuracy);
  // Interrupted mid-epoch 2, then resumed.
  const ctl = new AbortController();
  const r2 = await train([...args, '--out', b], { signal: ctl.signal, onStep: (s) => s === 4 && ctl.abort() });
  assert.is(r2.value, 130, r2.err);
  const r3 = await train(['--resume', '--out', b]);
  assert.is(r3.value, 0, r3.err);
  const pa = (await loadCheckpoint(join(a, 'checkpoint.safetensors'))).tensors;
  const pb = (await loadCheckpoint(join(b, 'checkpoint.safetensors'))).tensors;
  for (const k of ['param.ctx', 'param.visual_prompts']) {
    assert.ok(pa.get(k), k);
    assert.equal(Array.from(pb.get(k)!.data), Array.from(pa.get(k)!.data), `${k}: resumed = uninterrupted`);
  }
  console.log(`    dapt world b2n: 6 steps + eval in ${secs.toFixed(1)} s, loss ${first.toFixed(3)} -> ${last.toFixed(3)}, base ${report.results[0].accuracy.toFixed(1)}% novel ${report.results[1].accuracy.toFixed(1)}%, ${report.train.msPerStep.toFixed(0)} ms/step`);
});

test.run();

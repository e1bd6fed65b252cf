// RPP (methods.md section 9): the distillation loss against the 9.4 sanity numbers and a float64
// reference (values and gradients, with POMP's sampled columns, masks and log10 correction); the
// residual block whose prompt rows take keys/values from their own vectors against a float64
// reference, and the 9.4 attention numbers; the text encoder with q = k = v equal to the
// shared-prompt model; class sampling deterministic per step; on a tiny random CLIP every learned
// tensor gets a gradient on the first step, frozen tensors stay bit-identical and the loss falls;
// end to end on the shipped world CLIP: train --method rpp --base-to-novel, --resume bit-identical,
// and CoOp started from the RPP run (--init-from). Deep variant (IVLP slots): equal to the IVLP model at
// init (text and image features), query vectors only at a persistent last prompted layer, every
// allocated tensor gets a gradient on the first step, and the CLI run on the world CLIP.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getGpu } from '../../src/gpu/index.js';
import { tensor, tidy } from '../../src/tensor/tensor.js';
import { noGrad } from '../../src/autograd/tape.js';
import { attention } from '../../src/ops/attention.js';
import { crossEntropy } from '../../src/ops/losses.js';
import { add, scale } from '../../src/ops/elementwise.js';
import { replaceRows } from '../../src/nn/tokens.js';
import { residualBlock, type BlockWeights } from '../../src/nn/transformer.js';
import { ClipModel } from '../../src/clip/model.js';
import { randomClipWeights } from '../../src/clip/configs.js';
import { loadClipTokenizer } from '../../src/clip/tokenizer-node.js';
import { Rng } from '../../src/clip/rng.js';
import { RPP, RppTextPrompts, distillationLoss, sampleClasses, sampledLogits, MASKED_LOGIT } from '../../src/adapt/rpp.js';
import { zeroShotWeights } from '../../src/adapt/zeroshot.js';
import { MethodOptionError, type MethodEnv } from '../../src/adapt/method.js';
import type { TrainIo } from '../../src/cli/train.js';
import { writeWorldDataset } from '../../src/data/world/write-node.js';
import { assertClose, checkOp, randArray, relErr } from '../helpers/parity.js';
import { R } from '../ref/core.js';
import { crossEntropy as crossEntropyRef, klDiv as klDivRef } from '../ref/losses.js';
import { residualBlockRef, rppLossRef, sampledLogitsRef, type BlockRef } from '../ref/rpp.js';
import { TINY_CONFIG, checkpointParams, cliTrain, logLines, removeDir, tempDir } from '../train/helpers.js';
import { IVLP } from '../../src/adapt/ivlp.js';
import { createMethod, runSteps, snapshot, tinyBatch, tinyEnv as deepTinyEnv, tinySetup } from './deep-prompt-helpers.js';

const near = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('KD loss: methods.md 9.4 sanity numbers (GPU and float64 reference)', async () => {
  const gpu = await getGpu();
  const student = [28, 27, 10]; // 100 x cos [0.28, 0.27, 0.10]
  const teacher = [30, 25, 20];
  const s = tensor(student, [1, 3], 'f32', gpu);
  const t = tensor(teacher, [1, 3], 'f32', gpu);
  const kd1 = distillationLoss(s, t, 1);
  const kd2 = distillationLoss(s, t, 2);
  const ce = crossEntropy(s, tensor([0], [1], 'i32', gpu));
  near(await kd1.item(), 0.280092, 2e-6, 'KL at tau 1');
  near(await kd2.item(), 1.052129, 4e-6, 'tau^2 KL at tau 2');
  near(await ce.item(), 0.313262, 2e-6, 'hard CE');
  const rs = R.from(student, [1, 3]);
  const rt = R.from(teacher, [1, 3]);
  near(klDivRef(rs, rt, 1).data[0]!, 0.280092, 5e-7, 'reference KL at tau 1');
  near(4 * klDivRef(rs, rt, 2).data[0]!, 1.052129, 5e-7, 'reference tau^2 KL at tau 2');
  near(crossEntropyRef(rs, [0]).data[0]!, 0.313262, 5e-7, 'reference CE');
  for (const x of [s, t, kd1, kd2, ce]) x.dispose();
});

test('RPP loss with POMP sampling (masked own-class negative, log10 correction) vs float64: values and gradients', async () => {
  const C = 9;
  const K = 5;
  const labels = [2, 7, 2];
  // The first step generator whose negatives hit an image's own class (a masked entry).
  let sample = null;
  for (let step = 0; !sample; step++) {
    const s = sampleClasses(labels, C, K, new Rng(`cliptune-step\u00013\u0001${step}`));
    if (s.offsets.some((o) => o === MASKED_LOGIT)) sample = s;
  }
  const B = labels.length;
  const n = sample.classes.length;
  for (const [alpha, tau] of [[1, 1], [0.7, 2], [0, 1]] as const) {
    await checkOp({
      name: `rpp loss alpha ${alpha} tau ${tau}`,
      inputs: [{ shape: [B, n], range: [-8, 8] }, { shape: [B, n], range: [-8, 8], grad: false }],
      gpu: (fs, ft) => {
        const s = sampledLogits(fs, sample);
        const ce = crossEntropy(s, tensor(new Int32Array(B), [B], 'i32', fs.gpu));
        if (alpha === 0) return ce;
        const t = noGrad(() => sampledLogits(ft, sample));
        return add(ce, scale(distillationLoss(s, t, tau), alpha));
      },
      ref: (fs, ft) => rppLossRef(sampledLogitsRef(fs, sample.positiveCols, sample.negativeCols, sample.offsets), sampledLogitsRef(ft, sample.positiveCols, sample.negativeCols, sample.offsets), new Array(B).fill(0), alpha, tau),
    });
  }
});

test('class sampling: batch classes + K-1 shared negatives, deterministic per step, masks and log10 correction', () => {
  const labels = [3, 0, 3, 5];
  const C = 10;
  const K = 4;
  const at = (seed: number, step: number) => sampleClasses(labels, C, K, new Rng(`cliptune-step\u0001${seed}\u0001${step}`));
  assert.equal(at(1, 5), at(1, 5), 'same (seed, step): same sample');
  const draws = Array.from({ length: 8 }, (_, s) => at(1, s).negatives.join(','));
  assert.ok(new Set(draws).size > 1, 'other steps draw other negatives');
  for (let step = 0; step < 20; step++) {
    const s = at(2, step);
    assert.is(s.negatives.length, K - 1);
    assert.is(new Set(s.negatives).size, K - 1, 'negatives are distinct');
    assert.equal(s.classes.slice(0, 3), [3, 0, 5], 'the batch classes come first, once each');
    assert.is(new Set(s.classes).size, s.classes.length);
    labels.forEach((y, i) => {
      assert.is(s.classes[s.positiveCols[i]!], y);
      assert.is(s.offsets[i * K], 0);
      const valid = s.negatives.filter((c) => c !== y).length;
      near(s.corrections[i]!, Math.log10(C - 1) - Math.log10(valid), 1e-12, 'correction');
      s.negatives.forEach((c, j) => {
        assert.is(s.classes[s.negativeCols[j]!], c);
        assert.is(s.offsets[i * K + 1 + j], c === y ? MASKED_LOGIT : Math.fround(s.corrections[i]!));
      });
    });
  }
  assert.throws(() => sampleClasses(labels, C, 1, new Rng(0)), /2 <= K <= 10/);
  assert.throws(() => sampleClasses(labels, C, 11, new Rng(0)), /2 <= K <= 10/);
  assert.throws(() => RPP.validate!({ ...RPP.defaults({ shots: 4, datasetName: 'X', baseToNovel: false }), sampleClasses: 1 }, { shots: 4, datasetName: 'X', baseToNovel: false }), (e: Error) => e instanceof MethodOptionError && /--sample-classes 1/.test(e.message));
});

test('attention with a separate key/value prompt: methods.md 9.4 numbers', async () => {
  const gpu = await getGpu();
  // Real tokens X = I (queries and keys, W_q = W_k = I), values X diag(1, 2); the prompt's key
  // [1, 1] and value [3, 0] (diag(1, 2) keeps it). Its own query row (third) is irrelevant here.
  const q = tensor([1, 0, 0, 1, 0.5, 0.5], [1, 3, 2], 'f32', gpu);
  const k = tensor([1, 0, 0, 1, 1, 1], [1, 3, 2], 'f32', gpu);
  const v = tensor([1, 0, 0, 2, 3, 0], [1, 3, 2], 'f32', gpu);
  const o = attention(q, k, v, { heads: 1, causal: false });
  const got = Array.from((await o.read()) as Float32Array).slice(0, 4);
  assert.ok(relErr(got, [1.604448, 0.395552, 1.401112, 0.802224]) < 2e-6, `outputs ${got}`);
  for (const t of [q, k, v, o]) t.dispose();
});

/** Weight inputs of a block with width W and MLP hidden H, as checkOp inputs (not differentiated). */
function blockInputs(W: number, H: number) {
  const w = (shape: number[], range: [number, number] = [-0.4, 0.4]) => ({ shape, range, grad: false });
  return [w([W], [0.6, 1.4]), w([W], [-0.2, 0.2]), w([3 * W, W]), w([3 * W], [-0.2, 0.2]), w([W, W]), w([W], [-0.2, 0.2]), w([W], [0.6, 1.4]), w([W], [-0.2, 0.2]), w([H, W]), w([H], [-0.2, 0.2]), w([W, H]), w([W], [-0.2, 0.2])];
}
const BLOCK_KEYS = ['ln1w', 'ln1b', 'inW', 'inB', 'outW', 'outB', 'ln2w', 'ln2b', 'fcW', 'fcB', 'projW', 'projB'] as const;

for (const [heads, causal, start] of [[2, true, 1], [1, false, 3]] as const) {
  test(`residual block with unshared prompt key/value rows vs float64 (heads ${heads}, ${causal ? 'causal' : 'bidirectional'}, rows ${start}..${start + 1})`, async () => {
    const [B, T, W, H, n] = [2, 5, 8, 16, 2];
    await checkOp({
      name: 'residualBlock kv',
      inputs: [{ shape: [B, T, W] }, { shape: [n, W] }, { shape: [n, W] }, ...blockInputs(W, H)],
      gpu: (x, k, v, ...ws) => {
        const w = Object.fromEntries(BLOCK_KEYS.map((key, i) => [key, ws[i]!])) as unknown as BlockWeights;
        return residualBlock(x, w, { heads, causal, act: 'quick_gelu', eps: 1e-5, kv: { start, k, v } });
      },
      ref: (x, k, v, ...ws) => {
        const w = Object.fromEntries(BLOCK_KEYS.map((key, i) => [key, ws[i]!])) as unknown as BlockRef;
        return residualBlockRef(x, w, heads, causal, { start, k, v });
      },
      fdCoords: 12,
    });
  });
}

// ---- tiny random CLIP ----

const weights = randomClipWeights(TINY_CONFIG, 5);
const CLASSES = ['red circle', 'green square', 'blue triangle', 'yellow star', 'purple cross'];

test('text encoder: q = k = v gives the shared-prompt model; distinct k or v change it; all three get gradients', async () => {
  const gpu = await getGpu();
  const tok = await loadClipTokenizer();
  const model = ClipModel.fromTensors(gpu, TINY_CONFIG, weights);
  const M = 3;
  const W = TINY_CONFIG.text.width;
  const prompts = new RppTextPrompts(model, tok, CLASSES, M, null);
  const p = randArray(M * W, 31, -0.05, 0.05);
  const cls = [4, 0, 2];
  const shared = tensor(p, [M, W], 'f32', gpu);
  const rpp = noGrad(() => prompts.encode(cls, { q: shared, k: shared, v: shared }));
  // The shared-prompt model: the same token rows with p at positions 1..M, no key/value override.
  const plain = noGrad(() =>
    tidy(() => {
      const eot = cls.map((c) => prompts.plan.eot[c]!);
      const len = Math.max(...eot) + 1;
      const ids = new Int32Array(cls.length * len);
      cls.forEach((c, r) => ids.set(prompts.plan.ids.subarray(c * prompts.plan.length, c * prompts.plan.length + len), r * len));
      const e = replaceRows(model.tokenEmbeddings({ ids, rows: cls.length, length: len }, len), 1, shared);
      return model.encodeTextEmbeddings(e, eot).embeds;
    }),
  );
  const a = (await rpp.read()) as Float32Array;
  const b = (await plain.read()) as Float32Array;
  const err = relErr(a, b);
  assert.ok(err <= 1e-6, `q = k = v vs shared prompts: ${err}`);
  console.log(`    init equality: relative max difference ${err === 0 ? '0 (bit-identical)' : err.toExponential(2)}`);
  const other = tensor(randArray(M * W, 32, -0.05, 0.05), [M, W], 'f32', gpu);
  for (const which of ['k', 'v'] as const) {
    const x = noGrad(() => prompts.encode(cls, { q: shared, k: which === 'k' ? other : shared, v: which === 'v' ? other : shared }));
    assert.ok(relErr((await x.read()) as Float32Array, b) > 1e-3, `a different ${which} vector changes the features`);
    x.dispose();
  }
  const qkv = { q: tensor(p, [M, W], 'f32', gpu).param('q'), k: tensor(p, [M, W], 'f32', gpu).param('k'), v: tensor(p, [M, W], 'f32', gpu).param('v') };
  const f = tidy(() => prompts.encode(cls, qkv));
  const seed = tensor(randArray(f.size, 34), f.shape, 'f32', gpu);
  f.backward({ gradient: seed });
  for (const [name, t] of Object.entries(qkv)) {
    const g = (await t.grad!.read()) as Float32Array;
    assert.ok(g.some((x) => x !== 0), `d/d${name} is zero`);
    t.dispose();
  }
  for (const t of [f, seed, shared, other, rpp, plain]) t.dispose();
  model.dispose();
});

function tinyEnv(gpu: MethodEnv['gpu'], model: ClipModel, tok: MethodEnv['tokenizer']): MethodEnv {
  return {
    gpu,
    model,
    tokenizer: tok,
    datasetName: 'World',
    classnames: CLASSES,
    train: [],
    val: null,
    shots: 1,
    seed: 3,
    features: {
      pooled: () => Promise.reject(new Error('not used')),
      textWeights: async (names, templates) => {
        const w = zeroShotWeights(model, tok, names, templates);
        const v = (await w.read()) as Float32Array;
        w.dispose();
        return v;
      },
    },
    purpose: 'train',
    log: () => {},
  };
}

for (const sample of [0, 3]) {
  test(`tiny CLIP (${sample ? `sampled classes K = ${sample}, text chunk 2` : 'all classes'}): first-step gradients, frozen weights unchanged, loss falls`, async () => {
    const gpu = await getGpu();
    const tok = await loadClipTokenizer();
    const model = ClipModel.fromTensors(gpu, TINY_CONFIG, weights);
    const before = new Map<string, Float32Array>();
    for (const [name, t] of model.params) before.set(name, (await t.read()) as Float32Array);
    const ctx = { shots: 1, datasetName: 'World', baseToNovel: false };
    // Word init and the teacher's template agree ("a photo of a {}."): the student starts as the teacher.
    const opts = { ...RPP.defaults(ctx), sampleClasses: sample, textChunk: sample ? 2 : 128, lr: 0.2, warmupEpochs: 0, alpha: 0.5, tau: 2 };
    const m = RPP.create(opts, ctx);
    await m.prepare(tinyEnv(gpu, model, tok));
    assert.equal([...m.params.keys()], ['ctx', 'ctx_k', 'ctx_v']);
    const res = TINY_CONFIG.image.resolution;
    const batch = { pixels: Float32Array.from(randArray(4 * 3 * res * res, 41)), labels: Int32Array.of(0, 3, 1, 3), count: 4 };
    const opt = m.createOptimizer();
    opt.setLr(m.learningRate(0, 0, 0));
    const losses: number[] = [];
    for (let step = 0; step < 8; step++) {
      const out = tidy(() => m.step(batch, { epoch: 0, stepInEpoch: step, globalStep: step, rng: new Rng(`cliptune-step\u00013\u0001${sample ? 0 : step}`) }));
      losses.push(await out.loss.item());
      if (step === 0) {
        const kd = await out.terms!.kd!.item();
        assert.ok(Math.abs(kd) < 1e-5, `KD at the start (student = zero-shot teacher): ${kd}`);
      }
      out.loss.backward();
      out.afterBackward?.();
      if (step === 0) {
        for (const [name, p] of m.params) {
          const g = (await p.grad!.read()) as Float32Array;
          assert.ok(g.some((x) => x !== 0) && g.every(Number.isFinite), `${name} gets a non-zero finite gradient on the first step`);
        }
      }
      out.loss.dispose();
      for (const t of Object.values(out.terms ?? {})) if (t !== out.loss) t.dispose();
      opt.step();
      opt.zeroGrad();
    }
    assert.ok(losses[7]! < losses[0]! - 0.01, `loss ${losses.map((l) => l.toFixed(4)).join(' ')}`);
    for (const [name, t] of model.params) assert.equal((await t.read()) as Float32Array, before.get(name)!, `frozen ${name} unchanged`);
    m.dispose();
    model.dispose();
  });
}


// ---- deep variant on IVLP slots (3-layer tiny CLIP: depth 2 persists, depth 3 reaches the last layer) ----

/** The deep-prompt helpers' environment with the teacher's text weights (RPP's distillation). */
function deepEnv(gpu: MethodEnv['gpu'], model: ClipModel, tok: MethodEnv['tokenizer'], logs: string[] = []): MethodEnv {
  return { ...deepTinyEnv(gpu, model, tok, logs), features: tinyEnv(gpu, model, tok).features };
}

const DEEP_CASES = [
  { textDepth: 2, visionDepth: 3, names: ['text.ctx.k', 'text.ctx.v', 'text.deep.1', 'text.deep.1.k', 'text.deep.1.v', 'vision.ctx.k', 'vision.ctx.v', 'vision.deep.1.k', 'vision.deep.1.v', 'vision.deep.2.k', 'vision.deep.2.v'] },
  { textDepth: 1, visionDepth: 0, names: ['text.ctx', 'text.ctx.k', 'text.ctx.v'] },
  { textDepth: 3, visionDepth: 2, names: ['text.ctx.k', 'text.ctx.v', 'text.deep.1.k', 'text.deep.1.v', 'text.deep.2.k', 'text.deep.2.v', 'vision.ctx.k', 'vision.ctx.v', 'vision.deep.1', 'vision.deep.1.k', 'vision.deep.1.v'] },
] as const;

for (const c of DEEP_CASES) {
  test(`deep variant (text depth ${c.textDepth}, vision depth ${c.visionDepth}): query vectors only where the rows persist; at init = the IVLP model`, async () => {
    const { gpu, model, tokenizer } = await tinySetup();
    const logs: string[] = [];
    const env = deepEnv(gpu, model, tokenizer, logs);
    const over = { textTokens: 2, textDepth: c.textDepth, visionTokens: 3, visionDepth: c.visionDepth, ctxInit: 'a photo of a' };
    const rpp = await createMethod(RPP, env, { ...over, variant: 'deep' });
    const ivlp = await createMethod(IVLP, deepTinyEnv(gpu, model, tokenizer), over);
    assert.equal([...rpp.params.keys()], [...c.names]);
    // Every vector starts as IVLP's vector of the same slot and layer.
    for (const [name, t] of rpp.params) {
      const base = name.replace(/\.[kv]$/, '');
      assert.equal((await t.read()) as Float32Array, (await ivlp.params.get(base)!.read()) as Float32Array, `${name} starts as IVLP's ${base}`);
    }
    const a = await rpp.classifier(CLASSES, env);
    const b = await ivlp.classifier(CLASSES, env);
    assertClose((await a.text!.read()) as Float32Array, (await b.text!.read()) as Float32Array, 1e-5, 'class text features at init');
    const res = model.config.image.resolution;
    const pixels = tensor(randArray(3 * 3 * res * res, 51), [3, 3, res, res], 'f32', gpu);
    const fa = noGrad(() => (a.embedPixels ? a.embedPixels(pixels) : a.embedPooled!(model.encodeImage(pixels).pooled)));
    const fb = noGrad(() => (b.embedPixels ? b.embedPixels(pixels) : b.embedPooled!(model.encodeImage(pixels).pooled)));
    assertClose((await fa.read()) as Float32Array, (await fb.read()) as Float32Array, 1e-5, 'image features at init');
    for (const t of [pixels, fa, fb]) t.dispose();
    a.dispose();
    b.dispose();
    rpp.dispose();
    ivlp.dispose();
    model.dispose();
  });
}

test('deep variant: every allocated tensor gets a non-zero gradient on the first step, frozen weights unchanged, loss falls', async () => {
  const { gpu, model, tokenizer } = await tinySetup();
  const before = await snapshot(model);
  const m = await createMethod(RPP, deepEnv(gpu, model, tokenizer), { variant: 'deep', textTokens: 2, textDepth: 2, visionTokens: 3, visionDepth: 2, ctxInit: 'a photo of a', alpha: 0.5, tau: 2, sampleClasses: 0, textChunk: 2 });
  assert.equal([...m.params.keys()].filter((k) => !/\.[kv]$/.test(k)), ['text.deep.1', 'vision.deep.1'], 'query vectors at the last prompted layer only');
  const run = await runSteps(m, tinyBatch(4), 6, 1e-5);
  for (const [name, g] of run.firstGrad) assert.ok(g > 0 && Number.isFinite(g), `${name}: first-step max |grad| ${g}`);
  for (const t of run.terms) assert.ok(Number.isFinite(t.ce!) && Number.isFinite(t.kd!), 'ce and kd logged');
  assert.ok(run.losses[5]! < run.losses[0]!, `loss ${run.losses.map((l) => l.toFixed(4)).join(' ')}`);
  for (const [name, t] of model.params) assert.equal((await t.read()) as Float32Array, before.get(name)!, `frozen ${name} unchanged`);
  m.dispose();
  model.dispose();
});

test('deep variant options: deep-only flags rejected in the shallow variant and vice versa; text depth 0 rejected', () => {
  const ctx = { shots: 4, datasetName: 'X', baseToNovel: false };
  const d = RPP.defaults(ctx);
  assert.is(d.variant, 'shallow');
  assert.throws(() => RPP.finalize!({ ...d }, new Set(['textDepth'])), (e: Error) => e instanceof MethodOptionError && /--text-depth only applies to --variant deep/.test(e.message));
  assert.throws(() => RPP.finalize!({ ...d, variant: 'deep' }, new Set(['variant', 'nCtx'])), (e: Error) => e instanceof MethodOptionError && /--n-ctx only applies to --variant shallow/.test(e.message));
  assert.throws(() => RPP.validate!({ ...d, variant: 'deep', textDepth: 0 }, ctx), (e: Error) => e instanceof MethodOptionError && /--text-depth must be >= 1/.test(e.message));
});

// ---- end to end on the shipped world CLIP ----

const root = tempDir('rpp');
const WORLD_WEIGHTS = join(process.cwd(), 'weights', 'world-clip.safetensors');
const DATA = join(root, 'world');
const CACHE = join(root, 'cache');

const train = (args: string[], io: TrainIo = {}) => cliTrain(args, CACHE, io);
const params = checkpointParams;

test.after(() => removeDir(root));

test('world CLIP: rpp --base-to-novel runs (loss = ce + α·kd), resumes bit-identically; coop --init-from starts from its prompts', async () => {
  assert.ok(existsSync(WORLD_WEIGHTS), `${WORLD_WEIGHTS} (run the tests from the repository root)`);
  await writeWorldDataset({ out: DATA, classes: Array.from({ length: 48 }, (_, i) => i), counts: { train: 4, val: 1, test: 4 }, size: 32, seed: 0 });
  const a = join(root, 'rpp-a');
  const b = join(root, 'rpp-b');
  const args = ['--weights', WORLD_WEIGHTS, '--data', DATA, '--method', 'rpp', '--base-to-novel', '--shots', '4', '--seed', '1', '--epochs', '2', '--lr', '0.01', '--warmup-epochs', '0', '--sample-classes', '8', '--alpha', '0.5', '--tau', '2', '--log-every', '1'];
  const t0 = performance.now();
  const r1 = await train([...args, '--out', a]);
  const secs = (performance.now() - t0) / 1000;
  assert.is(r1.value, 0, r1.err);
  assert.match(r1.out, /test base: accuracy/);
  assert.match(r1.out, /test novel: accuracy/);
  const steps = logLines(a).filter((l) => l.type === 'step') as Record<string, number>[];
  assert.is(steps.length, 6, '96 images / batch 32 = 3 steps x 2 epochs');
  for (const s of steps) assert.ok(Number.isFinite(s.ce) && Number.isFinite(s.kd) && Math.abs(s.loss - (s.ce + 0.5 * s.kd)) < 1e-4, `loss = ce + alpha kd at step ${s.step}`);
  const ctl = new AbortController();
  const r2 = await train([...args, '--out', b], { signal: ctl.signal, onStep: (s) => s === 4 && ctl.abort() });
  assert.is(r2.value, 130, r2.err);
  const r3 = await train(['--resume', '--out', b]);
  assert.is(r3.value, 0, r3.err);
  const pa = await params(a);
  const pb = await params(b);
  assert.equal([...pa.keys()], ['param.ctx', 'param.ctx_k', 'param.ctx_v']);
  for (const k of pa.keys()) assert.equal(pb.get(k), pa.get(k), `resumed ${k} equals the uninterrupted run`);
  assert.not.equal(pa.get('param.ctx_k'), pa.get('param.ctx_v'), 'k and v moved apart');
  const report = JSON.parse(readFileSync(join(a, 'report.json'), 'utf8'));
  console.log(`    rpp world: 6 steps + base/novel eval in ${secs.toFixed(1)} s, HM ${report.hm.toFixed(2)}, ${report.train.msPerStep.toFixed(0)} ms/step`);

  // CoOp from the RPP run: M follows the run; with warm-up lr 0 for its one epoch the context stays
  // exactly RPP's query vectors.
  const c = join(root, 'coop-init');
  const r4 = await train(['--weights', WORLD_WEIGHTS, '--data', DATA, '--method', 'coop', '--base-to-novel', '--shots', '4', '--epochs', '1', '--warmup-lr', '0', '--init-from', a, '--out', c]);
  assert.is(r4.value, 0, r4.err);
  assert.equal((await params(c)).get('param.ctx'), pa.get('param.ctx'));
  const cfg = JSON.parse(readFileSync(join(c, 'run.json'), 'utf8'));
  assert.is(cfg.options.initFrom, a, 'the run config records the source run');
  const bad = await train(['--weights', WORLD_WEIGHTS, '--data', DATA, '--method', 'coop', '--base-to-novel', '--shots', '4', '--epochs', '1', '--n-ctx', '3', '--init-from', a, '--out', join(root, 'coop-bad')]);
  assert.is.not(bad.value, 0);
  assert.match(bad.err, /checkpoint\.safetensors: tensor param\.ctx has shape \[4,128\], but the context .* is \[3,128\]/);

  // The deep variant on IVLP slots (4-layer towers, depth 2: query vectors at layer 1).
  const d = join(root, 'rpp-deep');
  const t1 = performance.now();
  const r5 = await train(['--weights', WORLD_WEIGHTS, '--data', DATA, '--method', 'rpp', '--variant', 'deep', '--text-depth', '2', '--vision-depth', '2', '--base-to-novel', '--shots', '4', '--epochs', '1', '--lr', '0.01', '--warmup-epochs', '0', '--sample-classes', '8', '--out', d]);
  assert.is(r5.value, 0, r5.err);
  assert.match(r5.out, /test novel: accuracy/);
  const pd = await params(d);
  assert.equal([...pd.keys()].filter((k) => !/\.[kv]$/.test(k)), ['param.text.deep.1', 'param.vision.deep.1']);
  assert.is(pd.size, 10);
  const rd = JSON.parse(readFileSync(join(d, 'report.json'), 'utf8'));
  console.log(`    rpp deep world: 3 steps + base/novel eval in ${((performance.now() - t1) / 1000).toFixed(1)} s, HM ${rd.hm.toFixed(2)}`);
});

test.run();

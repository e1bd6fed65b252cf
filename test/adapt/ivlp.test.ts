// IVLP / VPT deep prompts: the text prompt layout and word init (MaPLe/PromptSRC ctx_init rules),
// shallow text prompts at init = the frozen "a photo of a {}." features, prompts replaced before
// every prompted layer and only those (against a block-by-block composition from the traced
// stream), the methods on a tiny random CLIP (gradients reach every prompt tensor, frozen weights
// stay bit-identical, the loss falls, chunked text = unchunked, the classifier = the training path),
// defaults, and the CLI on the shipped world CLIP (trains, resumes to bit-identical prompts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensor, tidy, type Tensor } from '../../src/tensor/tensor.js';
import { clearTape, noGrad } from '../../src/autograd/tape.js';
import { l2normalize } from '../../src/ops/distance.js';
import { slice } from '../../src/ops/shape.js';
import { replaceRows } from '../../src/nn/tokens.js';
import { residualBlock, type BlockWeights } from '../../src/nn/transformer.js';
import type { ClipModel, Trace } from '../../src/clip/model.js';
import { DeepPrompts, planDeepTextPrompts, textInit, vptUniformBound } from '../../src/adapt/deep-prompts.js';
import { DeepPromptMethod, IVLP, VPT } from '../../src/adapt/ivlp.js';
import { zeroShotWeights } from '../../src/adapt/zeroshot.js';
import { METHODS } from '../../src/adapt/registry.js';
import { writeWorldDataset } from '../../src/data/world/write-node.js';
import { assertClose, randArray } from '../helpers/parity.js';
import { CLASSES, DEEP_TINY, checkpointParams, createMethod, fdCheck, haveWorldWeights, logLines, runSteps, snapshot, tinyBatch, tinyEnv, tinySetup, trainAndResume, WORLD_WEIGHTS } from './deep-prompt-helpers.js';

// Prompt gradients are large on a random CLIP (LayerNorm of N(0, 0.02) prompt rows scales them by ~50).
const LR = 1e-5;

test('text layout: "a photo of a" with 4 / 2 tokens (MaPLe keeps the other words frozen), more tokens than words -> random "X" prompts', async () => {
  const { tokenizer: tok, model } = await tinySetup();
  const full = tok.tokenize('a photo of a red circle.', { contextLength: 77 })[0]!;
  const p4 = planDeepTextPrompts(tok, ['red circle'], 4, 'a photo of a');
  assert.equal(Array.from(p4.ids), Array.from(full.slice(0, p4.length)));
  assert.equal(Array.from(p4.ctxRow.slice(0, 7)), [-1, 0, 1, 2, 3, -1, -1]);
  assert.is(p4.eot[0], 1 + 4 + 2 + 1, 'EOT after SOT, 4 prompt tokens, 2 class tokens and "."');
  const t2 = textInit(tok, 2, 'a photo of a');
  assert.equal([t2.head, t2.rest, t2.initIds], ['a photo', 'of a', tok.encode('a photo')]);
  const p2 = planDeepTextPrompts(tok, ['red circle'], 2, 'a photo of a');
  assert.equal(Array.from(p2.ids), Array.from(full.slice(0, p2.length)), 'same prompt string');
  assert.equal(Array.from(p2.ctxRow.slice(0, 5)), [-1, 0, 1, -1, -1], 'only "a photo" learned');
  const t6 = textInit(tok, 6, 'a photo of a');
  assert.is(t6.initIds, null);
  assert.match(t6.note!, /random N\(0, 0.02\)/);
  const p6 = planDeepTextPrompts(tok, ['red circle'], 6, 'a photo of a');
  assert.equal(Array.from(p6.ids.slice(0, p6.length)), Array.from(tok.tokenize('X X X X X X red circle.', { contextLength: 77 })[0]!.slice(0, p6.length)));
  // "photographically" is two BPE tokens: 1 vector would end inside the word.
  const multi = 'photographically';
  assert.is(tok.encode(multi).length, 2);
  assert.throws(() => textInit(tok, 1, `${multi} of`), /word boundary/);
  assert.is(vptUniformBound(16, 768), 0.0625);
  model.dispose();
});

test('shallow text prompts initialised from "a photo of a" give the frozen "a photo of a {}." features', async () => {
  const { model, tokenizer } = await tinySetup();
  const p = await DeepPrompts.create(model, tokenizer, { text: { tokens: 4, depth: 1, init: 'a photo of a' }, vision: { tokens: 2, depth: 0, init: 'normal' } }, 1);
  assert.equal([...p.params.keys()], ['text.ctx']);
  const bank = p.textBank(CLASSES, 2);
  const got = p.encodeTextAllNoGrad(bank);
  const ref = zeroShotWeights(model, tokenizer, CLASSES, ['a photo of a {}.']);
  assertClose((await got.read()) as Float32Array, (await ref.read()) as Float32Array, 1e-5, 'prompted text at init vs zero-shot');
  for (const t of [got, ref]) t.dispose();
  bank.dispose();
  p.dispose();
  model.dispose();
});

test('--text-deep-init frozen: deep text prompts (depth 3 of 3) start as the frozen states, so the text tower gives "a photo of a {}." exactly; normal init does not', async () => {
  const { model, tokenizer } = await tinySetup();
  const ref = zeroShotWeights(model, tokenizer, CLASSES, ['a photo of a {}.']);
  const refV = Float32Array.from((await ref.read()) as Float32Array);
  const maxDiff = async (deepInit: 'normal' | 'frozen') => {
    const p = await DeepPrompts.create(model, tokenizer, { text: { tokens: 4, depth: 3, init: 'a photo of a', deepInit }, vision: { tokens: 2, depth: 0, init: 'normal' } }, 1);
    assert.equal([...p.params.keys()], ['text.ctx', 'text.deep.1', 'text.deep.2']);
    assert.match(p.describe(), deepInit === 'frozen' ? /deeper layers from the frozen tower's states/ : /deeper layers N\(0, 0.02\)/);
    const bank = p.textBank(CLASSES, 2);
    const got = p.encodeTextAllNoGrad(bank);
    const g = (await got.read()) as Float32Array;
    got.dispose();
    bank.dispose();
    p.dispose();
    return { g, diff: Math.max(...g.map((v, i) => Math.abs(v - refV[i]!))) };
  };
  const frozen = await maxDiff('frozen');
  assertClose(frozen.g, refV, 1e-5, 'deep-prompted text at init vs zero-shot');
  const normal = await maxDiff('normal');
  assert.ok(normal.diff > 1e-3, `random deep prompts change the text features (max diff ${normal.diff})`);
  ref.dispose();
  model.dispose();
});

test('--vision-init class-token: layer 0 = the normal draw + class embedding + its position; deeper layers = the draw + the mean class-token input to that block over the support images', async () => {
  const { gpu, model, tokenizer } = await tinySetup();
  const B = 3;
  const batch = tinyBatch(B, 33);
  const support = async function* () {
    yield { pixels: batch.pixels, count: B };
  };
  const cfg = (init: 'normal' | 'class-token') => ({ text: { tokens: 1, depth: 0, init: null }, vision: { tokens: 2, depth: 3, init } });
  const normal = await DeepPrompts.create(model, tokenizer, cfg('normal'), 5);
  const cls = await DeepPrompts.create(model, tokenizer, cfg('class-token'), 5, support);
  assert.match(cls.describe(), /class-token states \+ N\(0, 0.02\)/);
  // Reference states from a separate frozen forward of the same images.
  const res = DEEP_TINY.image.resolution;
  const W = DEEP_TINY.image.width;
  const trace: Trace = new Map();
  const pixels = tensor(batch.pixels, [B, 3, res, res], 'f32', gpu);
  noGrad(() => tidy(() => model.encodeImage(pixels, { trace }).embeds)).dispose();
  const ce = model.param('visual.class_embedding');
  const pos = model.param('visual.positional_embedding');
  const [ceV, posV] = [(await ce.read()) as Float32Array, (await pos.read()) as Float32Array];
  const states: number[][] = [Array.from({ length: W }, (_, d) => ceV[d]! + posV[d]!)];
  for (let l = 1; l < 3; l++) {
    const t = trace.get(`vision.blocks.${l - 1}`)!;
    const x = (await t.read()) as Float32Array;
    const T = t.shape[1]!;
    states.push(Array.from({ length: W }, (_, d) => {
      let s = 0;
      for (let b = 0; b < B; b++) s += x[b * T * W + d]!;
      return s / B;
    }));
  }
  for (let l = 0; l < 3; l++) {
    const a = (await cls.visionLayer(l)!.read()) as Float32Array;
    const n = (await normal.visionLayer(l)!.read()) as Float32Array;
    for (let k = 0; k < 2; k++) {
      const diff = Float32Array.from({ length: W }, (_, d) => a[k * W + d]! - n[k * W + d]!);
      assertClose(diff, Float32Array.from(states[l]!), 1e-5, `layer ${l} prompt ${k}: class-token - normal draw vs the class token's state`);
    }
  }
  // Without support images (evaluation: the checkpoint replaces the values) deep layers need none.
  const evalInit = await DeepPrompts.create(model, tokenizer, cfg('class-token'), 5);
  const e1 = (await evalInit.visionLayer(1)!.read()) as Float32Array;
  const n1 = (await normal.visionLayer(1)!.read()) as Float32Array;
  assert.equal(Array.from(e1), Array.from(n1), 'deep layers without support: the draw alone');
  for (const t of [...trace.values(), pixels]) t.dispose();
  for (const p of [normal, cls, evalInit]) p.dispose();
  model.dispose();
});

function blockWeights(model: ClipModel, prefix: string): BlockWeights {
  const q = (n: string) => model.param(`${prefix}.${n}`);
  return {
    ln1w: q('ln_1.weight'), ln1b: q('ln_1.bias'), inW: q('attn.in_proj_weight'), inB: q('attn.in_proj_bias'), outW: q('attn.out_proj.weight'), outB: q('attn.out_proj.bias'),
    ln2w: q('ln_2.weight'), ln2b: q('ln_2.bias'), fcW: q('mlp.c_fc.weight'), fcB: q('mlp.c_fc.bias'), projW: q('mlp.c_proj.weight'), projB: q('mlp.c_proj.bias'),
  };
}

const arr = async (t: Tensor) => Array.from((await t.read()) as Float32Array);

/**
 * Recomposes a traced tower block by block: the input of layer l is the traced output of layer l-1
 * with the prompt rows replaced where l < depth. Each block must reproduce the traced one, and the
 * opposite choice (replace where the model must not, or not where it must) must not.
 */
async function checkReplacement(model: ClipModel, trace: Trace, tower: 'vision' | 'text', start: number, rowsAt: (l: number) => Tensor | null, depth: number): Promise<void> {
  const c = tower === 'vision' ? model.config.image : model.config.text;
  const prefix = tower === 'vision' ? 'visual.transformer.resblocks' : 'transformer.resblocks';
  const opts = { heads: c.heads, causal: tower === 'text', act: model.config.activation, eps: c.eps, kv: null };
  let x = trace.get(tower === 'vision' ? 'vision.ln_pre' : 'text.embeddings')!;
  for (let l = 0; l < c.layers; l++) {
    const rows = l > 0 ? rowsAt(l) : null;
    if (l > 0) assert.is(rows !== null, l < depth, `${tower} layer ${l}: prompt rows exist exactly below the depth`);
    const want = await arr(trace.get(`${tower}.blocks.${l}`)!);
    const xin = x;
    const got = noGrad(() => tidy(() => residualBlock(rows ? replaceRows(xin, start, rows) : xin, blockWeights(model, `${prefix}.${l}`), opts)));
    assertClose(await arr(got), want, 1e-6, `${tower} block ${l} from the replaced stream`);
    got.dispose();
    if (l > 0) {
      // The other choice gives a different block output: replacement (or its absence) is visible.
      const other = rows ? null : rowsAt(1)!;
      const alt = noGrad(() => tidy(() => residualBlock(other ? replaceRows(xin, start, other) : xin, blockWeights(model, `${prefix}.${l}`), opts)));
      const a = await arr(alt);
      alt.dispose();
      assert.ok(a.some((v, i) => Math.abs(v - want[i]!) > 1e-4), `${tower} layer ${l}: ${rows ? 'not replacing' : 'replacing'} would give the same output`);
    }
    x = trace.get(`${tower}.blocks.${l}`)!;
  }
}

test('deep prompts are replaced before every prompted layer and only those (depth 2 of 3 layers, both towers)', async () => {
  const { gpu, model, tokenizer } = await tinySetup();
  const M = 3;
  const p = await DeepPrompts.create(model, tokenizer, { text: { tokens: 4, depth: 2, init: 'a photo of a' }, vision: { tokens: M, depth: 2, init: 'uniform' } }, 5);
  assert.equal([...p.params.keys()], ['text.ctx', 'text.deep.1', 'vision.ctx', 'vision.deep.1']);
  const res = DEEP_TINY.image.resolution;
  const B = 2;
  const pixels = tensor(randArray(B * 3 * res * res, 4), [B, 3, res, res], 'f32', gpu);
  // Vision: the appended rows are the layer-0 prompts (after the positional embedding), the last M of 1 + 4 + M.
  const vt: Trace = new Map();
  noGrad(() => tidy(() => model.encodeImage(pixels, { ...p.visionOptions(), trace: vt }).embeds)).dispose();
  const emb = vt.get('vision.embeddings')!;
  assert.equal(emb.shape, [B, 1 + 4 + M, DEEP_TINY.image.width]);
  const ctxV = await arr(p.visionLayer(0)!);
  const last = noGrad(() => slice(emb, 1, 1 + 4, 1 + 4 + M));
  assert.equal(await arr(last), [...ctxV, ...ctxV], 'layer-0 vision prompts appended after the patches');
  last.dispose();
  const bound = vptUniformBound(8, 32);
  assert.ok(ctxV.every((v) => Math.abs(v) <= bound) && ctxV.some((v) => Math.abs(v) > bound / 2), 'uniform init within the VPT bound');
  await checkReplacement(model, vt, 'vision', 1 + 4, (l) => p.visionLayer(l), 2);
  // Text: positions 1..4 of each class prompt.
  const bank = p.textBank(CLASSES.slice(0, 3), 8);
  const tt: Trace = new Map();
  noGrad(() => tidy(() => model.encodeTextEmbeddings(bank.embeddings(p.textLayer(0)!, 0), bank.chunks[0]!.eot, { ...p.textOptions(), trace: tt }).embeds)).dispose();
  await checkReplacement(model, tt, 'text', 1, (l) => p.textLayer(l), 2);
  for (const t of [...vt.values(), ...tt.values(), pixels]) t.dispose();
  bank.dispose();
  p.dispose();
  model.dispose();
});

test('ivlp on a tiny CLIP: every prompt tensor gets a gradient, frozen weights bit-identical, loss falls', async () => {
  const { gpu, model, tokenizer } = await tinySetup();
  const env = tinyEnv(gpu, model, tokenizer);
  const before = await snapshot(model);
  const m = await createMethod(IVLP, env, { warmupEpochs: 0 });
  assert.equal([...m.params.keys()], ['text.ctx', 'text.deep.1', 'text.deep.2', 'vision.ctx', 'vision.deep.1', 'vision.deep.2'], 'depth 9 clamped to 3');
  const run = await runSteps(m, tinyBatch(4), 5, LR);
  for (const [k, g] of run.firstGrad) assert.ok(g > 0, `${k}: first-step gradient max |g| = ${g}`);
  assert.ok(run.live.slice(1).every((b) => b === run.live[1]), `device bytes after each step ${run.live.join(', ')}`);
  assert.ok(run.losses[4]! < run.losses[0]! - 1e-3, `loss ${run.losses.map((v) => v.toFixed(4)).join(' -> ')}`);
  const after = await snapshot(model);
  for (const [k, v] of before) assert.equal(after.get(k), v, `frozen ${k} changed`);
  console.log(`    ivlp tiny: loss ${run.losses.map((v) => v.toFixed(3)).join(' ')}`);
  m.dispose();
  model.dispose();
  clearTape();
});

test('ivlp (depth 3, both towers) and vpt: the tape gradient of every prompt tensor matches central differences of the step loss', async () => {
  const { gpu, model, tokenizer } = await tinySetup();
  for (const [spec, over] of [
    [IVLP, { textTokens: 2, textDepth: 3, visionTokens: 2, visionDepth: 3, visionInit: 'uniform' }],
    [VPT, { visionTokens: 2, visionDepth: 3, visionInit: 'uniform' }],
  ] as const) {
    const m = await createMethod(spec, tinyEnv(gpu, model, tokenizer), over);
    const r = await fdCheck(m, tinyBatch(4), 3, 1e-3);
    console.log(`    ${spec.name} FD: ${[...r].map(([k, v]) => `${k} ${v.err.toExponential(1)}`).join(', ')}`);
    assert.equal([...r.keys()], [...m.params.keys()]);
    for (const [k, v] of r) {
      assert.ok(v.grad.some((g) => Math.abs(g) > 1e-4), `${spec.name} ${k}: gradient too small to check (${v.grad})`);
      assert.ok(v.err < 1e-2, `${spec.name} ${k}: tape ${v.grad.map((x) => x.toPrecision(4))} vs central differences ${v.fd.map((x) => x.toPrecision(4))} (rel ${v.err.toExponential(2)})`);
    }
    m.dispose();
  }
  clearTape();
  model.dispose();
});

test('ivlp: chunked text encoder (2 classes per chunk) = unchunked loss and gradients; the classifier = the training path', async () => {
  const { gpu, model, tokenizer } = await tinySetup();
  const env = tinyEnv(gpu, model, tokenizer);
  const grads = async (chunk: number) => {
    const m = (await createMethod(IVLP, env, { textChunk: chunk })) as DeepPromptMethod;
    const out = tidy(() => m.step(tinyBatch(3), { epoch: 0, stepInEpoch: 0, globalStep: 0, rng: null as never }));
    out.loss.backward();
    out.afterBackward?.();
    const loss = await out.loss.item();
    const g = new Map<string, number[]>();
    for (const [k, p] of m.params) g.set(k, await arr(p.grad!));
    out.loss.dispose();
    return { m, loss, g, chunked: !!out.afterBackward };
  };
  const whole = await grads(128);
  const chunked = await grads(2);
  assert.equal([whole.chunked, chunked.chunked], [false, true]);
  assert.ok(Math.abs(whole.loss - chunked.loss) <= 1e-6 * Math.abs(whole.loss), `loss ${whole.loss} vs ${chunked.loss}`);
  for (const [k, g] of whole.g) assertClose(chunked.g.get(k)!, g, 1e-5, `d/d${k}`);
  // Classifier: text = the prompted class features, embedPixels = the prompted image tower.
  const m = whole.m;
  const clf = await m.classifier(CLASSES, env);
  const res = DEEP_TINY.image.resolution;
  const px = tensor(tinyBatch(3).pixels, [3, 3, res, res], 'f32', gpu);
  const viaClf = noGrad(() => tidy(() => l2normalize(clf.embedPixels!(px))));
  const viaStep = noGrad(() => m.imageFeatures(px));
  assert.equal(await arr(viaClf), await arr(viaStep));
  const textStep = noGrad(() => tidy(() => l2normalize(m.prompts.encodeTextChunk(m.prompts.textBank(CLASSES, 128), 0))));
  assertClose(await arr(clf.text!), await arr(textStep), 1e-6, 'classifier text');
  // Novel classes get the same prompts.
  const novel = await m.classifier(['orange heart', 'white moon'], env);
  assert.equal(novel.text!.shape, [2, DEEP_TINY.embedDim]);
  for (const t of [viaClf, viaStep, textStep, px]) t.dispose();
  clf.dispose();
  novel.dispose();
  whole.m.dispose();
  chunked.m.dispose();
  model.dispose();
  clearTape();
});

test('vpt on a tiny CLIP: vision prompts only (text frozen "a photo of a {}."), gradients, frozen weights, loss falls', async () => {
  const { gpu, model, tokenizer } = await tinySetup();
  const env = tinyEnv(gpu, model, tokenizer);
  const before = await snapshot(model);
  const m = (await createMethod(VPT, env, { warmupEpochs: 0 })) as DeepPromptMethod;
  assert.equal([...m.params.keys()], ['vision.ctx', 'vision.deep.1', 'vision.deep.2']);
  assert.equal(m.params.get('vision.ctx')!.shape, [8, DEEP_TINY.image.width]);
  const run = await runSteps(m, tinyBatch(4), 5, LR);
  for (const [k, g] of run.firstGrad) assert.ok(g > 0, `${k}: first-step gradient max |g| = ${g}`);
  assert.ok(run.live.slice(1).every((b) => b === run.live[1]), `device bytes after each step ${run.live.join(', ')}`);
  assert.ok(run.losses[4]! < run.losses[0]!, `loss ${run.losses.map((v) => v.toFixed(4)).join(' -> ')}`);
  const after = await snapshot(model);
  for (const [k, v] of before) assert.equal(after.get(k), v, `frozen ${k} changed`);
  const clf = await m.classifier(CLASSES, env);
  const ref = zeroShotWeights(model, tokenizer, CLASSES, ['a photo of a {}.']);
  assert.equal(await arr(clf.text!), await arr(ref));
  assert.ok(clf.embedPixels);
  clf.dispose();
  ref.dispose();
  m.dispose();
  model.dispose();
  clearTape();
});

test('ivlp and vpt defaults (methods.md 4.4 PromptSRC IVLP config, 4.3 MaPLe-repo deep vision prompting) and registry', () => {
  const ctx = { shots: 16, datasetName: 'X', baseToNovel: true };
  const i = IVLP.defaults(ctx);
  assert.equal([i.textTokens, i.textDepth, i.ctxInit, i.visionTokens, i.visionDepth, i.visionInit, i.lr, i.epochs, i.batchSize, i.warmupEpochs, i.warmupLr, i.momentum, i.weightDecay], [4, 9, 'a photo of a', 4, 9, 'normal', 0.0025, 20, 4, 1, 1e-5, 0.9, 5e-4]);
  const v = VPT.defaults(ctx);
  assert.equal([v.visionTokens, v.visionDepth, v.lr, v.epochs, v.batchSize], [8, 12, 0.0025, 5, 4]);
  assert.not.ok(VPT.options.some((o) => o.key === 'textDepth'));
  assert.throws(() => IVLP.validate!({ ...i, textDepth: 0, visionDepth: 0 }, ctx), /nothing to learn/);
  assert.throws(() => IVLP.validate!({ ...i, scheduleEpochs: 10 }, ctx), /--schedule-epochs 10 must be 0 or >= --epochs 20/);
  assert.is(METHODS.ivlp, IVLP);
  assert.is(METHODS.vpt, VPT);
});

test('cliptune train --method ivlp on the world CLIP: trains and resumes to bit-identical prompts', async () => {
  if (!haveWorldWeights()) throw new Error(`missing ${WORLD_WEIGHTS}`);
  const root = mkdtempSync(join(tmpdir(), 'cliptune-ivlp-'));
  try {
    const data = join(root, 'world');
    await writeWorldDataset({ out: data, classes: Array.from({ length: 48 }, (_, i) => i), counts: { train: 4, val: 1, test: 4 }, size: 32, seed: 0 });
    const args = ['--weights', WORLD_WEIGHTS, '--data', data, '--method', 'ivlp', '--base-to-novel', '--shots', '1', '--seed', '2', '--epochs', '2', '--lr', '0.002', '--warmup-epochs', '0', '--log-every', '3'];
    const r = await trainAndResume(root, 'ivlp', args, 5, join(root, 'cache'));
    assert.match(r.err, /text prompt depth 9 clamped to the model's 4 text layers/);
    assert.match(r.out, /test novel: accuracy/);
    const steps = logLines(r.a).filter((l) => l.type === 'step');
    assert.is(steps.length, 12);
    const ck = await checkpointParams(r.a);
    assert.equal([...ck.keys()].length, 8);
    const [first, last] = [steps[0]!.loss as number, steps[11]!.loss as number];
    console.log(`    ivlp world CLI: 12 steps + eval in ${r.secs.toFixed(1)} s, loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
    assert.ok(last < first, `the loss falls over the 12 steps: ${first} -> ${last}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();

// CLIP ViT-B/32 at full size with random weights (OpenAI's init, randomClipWeights): the embeddings
// are shaped and finite, and the engine's gradients agree with central finite differences of the
// engine's own f32 contrastive loss along random unit directions, one probe per checked tensor.
// Measured costs print with CLIPTUNE_TEST_VERBOSE=1.
//
// How each probe works (tensor θ with n entries, gradient g from one forward + backward):
//  1. d: a random unit direction over all of θ's entries. The slope <g, d> along a random
//     direction is Gaussian with spread |g|/√n, so an unlucky draw can be nearly flat, which would
//     need a large h (the first version of this test drew one direction for the last vision
//     attention whose slope was 1/5 of typical: h was 20% of |θ| and the central difference was
//     off by 8% from curvature alone). So 8 candidates are drawn, d_k = r ⊙ s_k (one Gaussian
//     vector r, independent random signs s_k: each d_k is itself a uniformly random direction),
//     and the one with the largest |<g, d_k>| is used. That buys a slope ~2x typical; d stays
//     almost orthogonal to g (|cos| ~ 2/√n), so errors in g are as visible as for any direction.
//  2. Noise σ of the f32 loss: the loss is deterministic (evaluating it twice gives the same bits),
//     so its rounding noise is exposed with tiny perturbations instead: for ε = 1e-5·|θ| (each entry
//     moves by ~100 ulps, the loss by ~1e-5 of its scale) the second difference
//     L(θ+εd) + L(θ−εd) − 2L(θ) cancels the linear term, and the quadratic term is ~1e-10 of the
//     loss, so what is left is rounding noise. σ = half its size, at least one ulp of the loss.
//  3. h: the step that moves the loss by 1500σ on the analytic slope, h = 1500σ / (2|<g,d>|); then
//     quadrupled until the measured |L(θ+hd) − L(θ−hd)| ≥ 1000σ (asserted), so noise is at most
//     ~2e-3 of the difference.
//  4. Check: θ± = f32(θ ± h·d) are what the GPU actually sees, so the analytic change is
//     <g, θ+ − θ−> (float64 sum; this accounts exactly for rounding θ ± hd to f32), and
//     L(θ+) − L(θ−) must match it within 1e-2 relative: (L(θ+hd) − L(θ−hd)) / 2h vs <g, d> with
//     the step taken as stored.
// Costs are kept down by re-running only what a tensor feeds: logit_scale and visual.proj reuse the
// features of the one forward; the text tensors re-run the (short) text tower; the vision attention
// probe re-runs only the last block from its traced input (checked bit-identical to the full model
// at θ); only the pixel probe runs the whole image tower again, batching the perturbed images
// into one forward per step (±ε, then ±h). conv1 and class_embedding are not probed here: each would cost two more full image
// forwards; the pixel probe already backpropagates through conv1, and golden.test.ts checks both
// gradients against OpenAI's CLIP at small size.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu, type Gpu } from '../../src/gpu/index.js';
import { keep, tensor, tidy, type Tensor } from '../../src/tensor/tensor.js';
import { clearTape, noGrad } from '../../src/autograd/tape.js';
import { CLIP_CONFIGS, randomClipWeights } from '../../src/clip/configs.js';
import { ClipModel, type Trace } from '../../src/clip/model.js';
import { loadClipTokenizer } from '../../src/clip/tokenizer-node.js';
import { Rng } from '../../src/clip/rng.js';
import { matmul } from '../../src/ops/matmul.js';
import { layerNorm } from '../../src/ops/layernorm.js';
import { reshape, slice } from '../../src/ops/shape.js';
import { residualBlock, type BlockWeights } from '../../src/nn/transformer.js';

const cfg = CLIP_CONFIGS['ViT-B/32']!;
const RES = cfg.image.resolution;
const TEXTS = ['a red circle', 'a blue square'];
const LAST = cfg.image.layers - 1;
const VISION_ATTN = `visual.transformer.resblocks.${LAST}.attn.in_proj_weight`;
const TEXT_ATTN = 'transformer.resblocks.0.attn.in_proj_weight';
const PROBED = ['logit_scale', 'visual.proj', VISION_ATTN, TEXT_ATTN, 'token_embedding.weight', 'ln_final.weight'];
const TOL = 1e-2;
const NOISE_FACTOR = 1000;

const timings: string[] = [];
function timed<T>(what: string, t0: number, v: T): T {
  timings.push(`${what} ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return v;
}

interface Setup {
  gpu: Gpu;
  model: ClipModel;
  /** Host copies of the probed tensors' initial values. */
  host: Map<string, Float32Array>;
  pixels: Tensor;
  pixelData: Float32Array;
  tokens: { ids: Int32Array; rows: number; length: number };
  loss0: number;
  imageEmbeds: Tensor;
  textEmbeds: Tensor;
  pooled: Tensor;
  trace: Trace;
  grads: Map<string, Float32Array>;
}

let setup: Setup | undefined;

function normals(n: number, rng: Rng, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(Math.max(rng.uniform(), 1e-300))) * scale;
    const t = 2 * Math.PI * rng.uniform();
    a[i] = r * Math.cos(t);
    if (i + 1 < n) a[i + 1] = r * Math.sin(t);
  }
  return a;
}

async function getSetup(): Promise<Setup> {
  if (setup) return setup;
  const gpu = await getGpu();
  let t0 = performance.now();
  const weights = timed('randomClipWeights', t0, randomClipWeights(cfg, 0));
  t0 = performance.now();
  const model = ClipModel.fromTensors(gpu, cfg, weights);
  const host = new Map(PROBED.map((n) => [n, weights.get(n)!]));
  weights.clear(); // the other 600 MB of host copies are not needed
  timed('upload', t0, 0);
  const pixelData = normals(2 * 3 * RES * RES, new Rng('vitb32 pixels'));
  const pixels = keep(tensor(pixelData, [2, 3, RES, RES], 'f32', gpu)).param('pixels');
  const tok = await loadClipTokenizer();
  const rows = tok.tokenize(TEXTS, { contextLength: cfg.text.contextLength });
  const tokens = { ids: new Int32Array(rows[0]!.buffer), rows: rows.length, length: cfg.text.contextLength };
  model.setTrainable((n) => PROBED.includes(n));

  t0 = performance.now();
  const trace: Trace = new Map();
  const { loss, imageEmbeds, textEmbeds, pooled } = tidy(() => {
    const img = model.encodeImage(pixels, { trace });
    const txt = model.encodeText(tokens);
    return { loss: model.contrastiveLoss(img.embeds, txt.embeds), imageEmbeds: img.embeds, textEmbeds: txt.embeds, pooled: img.pooled };
  });
  const loss0 = timed('forward', t0, await loss.item());
  t0 = performance.now();
  loss.backward();
  const grads = new Map<string, Float32Array>();
  for (const n of PROBED) grads.set(n, (await model.param(n).grad!.read()) as Float32Array);
  grads.set('pixels', (await pixels.grad!.read()) as Float32Array);
  timed('backward', t0, 0);
  loss.dispose();
  clearTape();
  setup = { gpu, model, host, pixels, pixelData, tokens, loss0, imageEmbeds, textEmbeds, pooled, trace, grads };
  return setup;
}

function allFinite(a: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
  return true;
}

function norm(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

test('ViT-B/32 with random weights: embeddings [2, 512], finite, loss near ln 2', async () => {
  const s = await getSetup();
  assert.equal(s.imageEmbeds.shape, [2, cfg.embedDim]);
  assert.equal(s.textEmbeds.shape, [2, cfg.embedDim]);
  assert.equal(s.pooled.shape, [2, cfg.image.width]);
  for (const t of [s.imageEmbeds, s.textEmbeds]) {
    const v = (await t.read()) as Float32Array;
    assert.ok(allFinite(v), `${t.describe()} is finite`);
    for (let r = 0; r < 2; r++) assert.ok(norm(v.subarray(r * cfg.embedDim, (r + 1) * cfg.embedDim)) > 1e-3, `row ${r} of ${t.describe()} is not ~0`);
  }
  // Random towers: the two pairs are barely told apart, so the symmetric loss is close to ln 2.
  assert.ok(Number.isFinite(s.loss0) && Math.abs(s.loss0 - Math.LN2) < 0.1, `loss ${s.loss0}`);
  for (const [name, g] of s.grads) {
    assert.ok(allFinite(g), `grad of ${name} is finite`);
    assert.ok(norm(g) > 0, `grad of ${name} is not zero`);
  }
  // Frozen tensors got no gradient.
  assert.is(s.model.param('visual.conv1.weight').grad, null);
});

/** Writes host values into a parameter's GPU buffer. */
function setParam(s: Setup, name: string, v: Float32Array): void {
  s.gpu.write(s.model.param(name).buffer, 0, v, `probe ${name}`);
}

function block(model: ClipModel, prefix: string): BlockWeights {
  const p = (n: string) => model.param(`${prefix}.${n}`);
  return {
    ln1w: p('ln_1.weight'), ln1b: p('ln_1.bias'), inW: p('attn.in_proj_weight'), inB: p('attn.in_proj_bias'),
    outW: p('attn.out_proj.weight'), outB: p('attn.out_proj.bias'), ln2w: p('ln_2.weight'), ln2b: p('ln_2.bias'),
    fcW: p('mlp.c_fc.weight'), fcB: p('mlp.c_fc.bias'), projW: p('mlp.c_proj.weight'), projB: p('mlp.c_proj.bias'),
  };
}

/** The last vision block, ln_post and the projection from the traced input of that block (as ClipModel.encodeImage). */
function visionTail(s: Setup): Tensor {
  const c = cfg.image;
  const x = residualBlock(s.trace.get(`vision.blocks.${LAST - 1}`)!, block(s.model, `visual.transformer.resblocks.${LAST}`), {
    heads: c.heads, causal: false, act: cfg.activation, eps: c.eps,
  });
  const pooled = layerNorm(reshape(slice(x, 1, 0, 1), [2, c.width]), s.model.param('visual.ln_post.weight'), s.model.param('visual.ln_post.bias'), c.eps);
  return matmul(pooled, s.model.param('visual.proj'));
}

async function lossOf(s: Setup, f: () => Tensor): Promise<number> {
  const l = noGrad(() => tidy(f));
  const v = await l.item();
  l.dispose();
  return v;
}

/** The loss with the current parameters, re-running only what `name` feeds. */
function evaluator(s: Setup, name: string): () => Promise<number> {
  const m = s.model;
  switch (name) {
    case 'logit_scale':
      return () => lossOf(s, () => m.contrastiveLoss(s.imageEmbeds, s.textEmbeds));
    case 'visual.proj':
      return () => lossOf(s, () => m.contrastiveLoss(matmul(s.pooled, m.param('visual.proj')), s.textEmbeds));
    case VISION_ATTN:
      return () => lossOf(s, () => m.contrastiveLoss(visionTail(s), s.textEmbeds));
    default:
      return () => lossOf(s, () => m.contrastiveLoss(s.imageEmbeds, m.encodeText(s.tokens).embeds));
  }
}

function ulp32(x: number): number {
  return 2 ** (Math.floor(Math.log2(Math.abs(x))) - 23);
}

interface ProbeResult {
  name: string;
  sigma: number;
  h: number;
  /** L(θ+h) − L(θ−h) and its first-order prediction <g, θ+h − θ−h>. */
  dL: number;
  predicted: number;
  rel: number;
  ms: number;
}

const results: ProbeResult[] = [];

function report(r: ProbeResult): string {
  return (
    `${r.name}: L(θ+hd) − L(θ−hd) ${r.dL.toExponential(4)} vs <g, Δθ> ${r.predicted.toExponential(4)} (rel ${r.rel.toExponential(2)}), ` +
    `h ${r.h.toExponential(2)}, σ ${r.sigma.toExponential(2)}, ${(r.ms / 1000).toFixed(1)} s`
  );
}

/** <g, f32(θ0 + a·d) − f32(θ0 − a·d)> in float64: the first-order change for the perturbation the GPU sees. */
function predictedChange(theta0: Float32Array, g: Float32Array, d: Float32Array, a: number): number {
  const p = new Float32Array(1);
  const m = new Float32Array(1);
  let sum = 0;
  for (let i = 0; i < theta0.length; i++) {
    p[0] = theta0[i]! + a * d[i]!;
    m[0] = theta0[i]! - a * d[i]!;
    sum += g[i]! * (p[0] - m[0]);
  }
  return sum;
}

const CANDIDATES = 8;

/** The random unit direction (of 8 candidates r ⊙ s_k) with the steepest analytic slope; see the header. */
function direction(g: Float32Array, seed: string): Float32Array {
  const n = g.length;
  const rng = new Rng(seed);
  const r = normals(n, rng);
  const dots = new Float64Array(CANDIDATES);
  const signs: Uint32Array[] = [];
  for (let k = 0; k < CANDIDATES; k++) {
    const s = new Uint32Array(Math.ceil(n / 32));
    for (let j = 0; j < s.length; j++) s[j] = rng.nextU32();
    signs.push(s);
    let dot = 0;
    for (let i = 0; i < n; i++) dot += ((s[i >>> 5]! >>> (i & 31)) & 1 ? -1 : 1) * r[i]! * g[i]!;
    dots[k] = dot;
  }
  let best = 0;
  for (let k = 1; k < CANDIDATES; k++) if (Math.abs(dots[k]!) > Math.abs(dots[best]!)) best = k;
  const s = signs[best]!;
  const rn = norm(r);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = (((s[i >>> 5]! >>> (i & 31)) & 1 ? -1 : 1) * r[i]!) / rn;
  return d;
}

/**
 * One probe. `evalAt(scales)` returns the loss at f32(θ0 + scale·d) for each scale; a probe may
 * batch them.
 */
async function probe(name: string, theta0: Float32Array, g: Float32Array, loss0: number, d: Float32Array, evalAt: (scales: number[]) => Promise<number[]>): Promise<ProbeResult> {
  const t0 = performance.now();
  let gd = 0;
  for (let i = 0; i < d.length; i++) gd += g[i]! * d[i]!;
  const scale = Math.max(norm(theta0), 1e-3);

  const eps = 1e-5 * scale;
  const [lp, lm] = await evalAt([eps, -eps]);
  const sigma = Math.max(ulp32(loss0), Math.abs(lp! + lm! - 2 * loss0) / 2);

  let h = Math.min(0.05 * scale, (1.5 * NOISE_FACTOR * sigma) / (2 * Math.abs(gd) + 1e-30));
  for (let attempt = 0; ; attempt++) {
    const [a, b] = await evalAt([h, -h]);
    const dL = a! - b!;
    if (Math.abs(dL) >= NOISE_FACTOR * sigma || attempt === 3) {
      assert.ok(Math.abs(dL) >= NOISE_FACTOR * sigma, `${name}: loss change ${dL} stays below ${NOISE_FACTOR}x noise ${sigma} even at h ${h}`);
      const predicted = predictedChange(theta0, g, d, h);
      const r = { name, sigma, h, dL, predicted, rel: Math.abs(dL - predicted) / Math.abs(predicted), ms: performance.now() - t0 };
      results.push(r);
      return r;
    }
    h *= 4;
  }
}

/** Evaluator for a parameter: writes θ0 + scale·d (rounded to f32) before each evaluation, restores θ0 after. */
function paramEval(s: Setup, name: string, dir: Float32Array): (scales: number[]) => Promise<number[]> {
  const theta0 = s.host.get(name)!;
  const run = evaluator(s, name);
  return async (scales) => {
    const out: number[] = [];
    const v = new Float32Array(theta0.length);
    for (const sc of scales) {
      for (let i = 0; i < v.length; i++) v[i] = theta0[i]! + sc * dir[i]!;
      setParam(s, name, v);
      out.push(await run());
    }
    setParam(s, name, theta0);
    return out;
  };
}

for (const name of PROBED) {
  test(`d loss / d ${name} along a random direction = central finite difference`, async () => {
    const s = await getSetup();
    const theta0 = s.host.get(name)!;
    // The restricted re-evaluation reproduces the full model's loss bit for bit at θ0.
    const at0 = await evaluator(s, name)();
    assert.is(at0, s.loss0, `${name}: re-evaluated loss ${at0} vs full forward ${s.loss0}`);
    const d = direction(s.grads.get(name)!, `direction ${name}`);
    const r = await probe(name, theta0, s.grads.get(name)!, s.loss0, d, paramEval(s, name, d));
    assert.ok(r.rel <= TOL, report(r));
  });
}

test('d loss / d pixels along a random direction = central finite difference (whole image tower)', async () => {
  const s = await getSetup();
  const n = s.pixelData.length;
  const d = direction(s.grads.get('pixels')!, 'direction pixels');
  // All requested scales in one batch: images [θ0 + s0·d (2 images), θ0 + s1·d (2 images), ...].
  const evalAt = async (scales: number[]): Promise<number[]> => {
    const px = new Float32Array(scales.length * n);
    scales.forEach((sc, k) => {
      for (let i = 0; i < n; i++) px[k * n + i] = s.pixelData[i]! + sc * d[i]!;
    });
    const e = noGrad(() => tidy(() => keep(s.model.encodeImage(tensor(px, [2 * scales.length, 3, RES, RES], 'f32', s.gpu)).embeds)));
    const out: number[] = [];
    for (let k = 0; k < scales.length; k++) out.push(await lossOf(s, () => s.model.contrastiveLoss(slice(e, 0, 2 * k, 2 * k + 2), s.textEmbeds)));
    e.dispose();
    return out;
  };
  const r = await probe('pixels', s.pixelData, s.grads.get('pixels')!, s.loss0, d, evalAt);
  assert.ok(r.rel <= TOL, report(r));
});

test('cleanup (and the measured costs)', async () => {
  const s = await getSetup();
  for (const t of [s.pixels, s.imageEmbeds, s.textEmbeds, s.pooled, ...s.trace.values()]) t.dispose();
  s.model.dispose();
  if (process.env.CLIPTUNE_TEST_VERBOSE) {
    console.log(`\n  ViT-B/32: ${timings.join(', ')}`);
    for (const r of results) console.log(`  ${report(r)}`);
  }
});

test.run();

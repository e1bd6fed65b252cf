// ProLIP's loss and gradient: methods.md 8.g's sanity numbers (torch, float64), an independent
// float64 CPU computation (checked against finite differences), and the first Adam step.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../../src/gpu/index.js';
import { tensor, tidy, type Tensor } from '../../src/tensor/tensor.js';
import { clearTape } from '../../src/autograd/tape.js';
import { Adam } from '../../src/nn/optim.js';
import { PROLIP, prolipLoss, prolipTextLoss, prolipTextWeights, textPooledFeatures, type ProlipMethod } from '../../src/adapt/prolip.js';
import { matmul } from '../../src/ops/matmul.js';
import { loadClip } from '../../src/clip/load-node.js';
import type { FeatureSource, ImageItem, MethodEnv } from '../../src/adapt/method.js';
import { prolipTextRef, rlaRef } from '../ref/prolip-variants.js';
import { removeDir, tempDir, writeTinyClip } from '../train/helpers.js';
import { join } from 'node:path';
import { composeLoss } from '../../src/adapt/method.js';
import { assertClose, randArray, relErr } from '../helpers/parity.js';
import { prolipRef } from '../ref/adapt.js';
import { l2normalize as l2n } from '../../src/ops/distance.js';

// methods.md 8.g: x pre-projection (N·C = 2), W0 [3, 2], T = I2, y = [0, 1], logits = 100·normalize(xW)·T.
const X = [1, 1, 0, 1, 0.98, 0.02];
const W0 = [0.5, 0.49, 0.5, 0.52, 0, 0];
const T = [1, 0, 0, 1];
const Y = [0, 1];
const GRAD_W0 = [-11.6614, 11.5424, -11.9012, 11.779852, 0.23978, -0.23748];

async function run(w: number[], lambda: number) {
  const gpu = await getGpu();
  const proj = tensor(w, [3, 2], 'f32', gpu).param('W');
  const proj0 = tensor(W0, [3, 2], 'f32', gpu);
  const feats = tensor(X, [2, 3], 'f32', gpu);
  const text = tensor(T, [2, 2], 'f32', gpu);
  const labels = tensor(Y, [2], 'i32', gpu);
  const out = tidy(() => prolipLoss({ features: feats, proj, proj0, text, labels, lambda, logitScale: 100 }));
  const loss = await out.loss.item();
  const ce = await out.terms.ce.item();
  const reg = await out.terms.reg.item();
  out.loss.backward();
  const grad = Array.from((await proj.grad!.read()) as Float32Array);
  for (const t of [out.loss, out.terms.ce, out.terms.reg, proj, proj0, feats, text, labels]) t.dispose();
  return { loss, ce, reg, grad };
}

test('ProLIP sanity (methods.md 8.g): CE and dCE/dW at W = W0', async () => {
  const r = await run(W0, 1);
  // float32 gives 0.757324, float64 0.757326
  assert.ok(Math.abs(r.ce - 0.757326) < 4e-6, `CE ${r.ce}`);
  assert.ok(Math.abs(r.reg) === 0, `reg ${r.reg}`);
  assert.ok(Math.abs(r.loss - r.ce) < 1e-7);
  // The reference gradient is printed to 5-6 significant digits.
  assertClose(r.grad, GRAD_W0, 2e-5, 'dCE/dW');
  // And the float64 reference reproduces the printed numbers.
  const ref = prolipRef(X, 2, 3, W0, W0, 2, T, 2, Y, 1, 100);
  assert.ok(Math.abs(ref.ce - 0.757326) < 5e-7, `ref CE ${ref.ce}`);
  assertClose(ref.gradW, GRAD_W0, 5e-6, 'reference dCE/dW');
  assertClose(r.grad, ref.gradW, 1e-5, 'GPU vs float64 reference');
});

test('ProLIP sanity: W = W0 + 0.01, lambda = 1 -> CE 0.755012, reg 0.0006, total 0.755612', async () => {
  const w = W0.map((v) => v + 0.01);
  const r = await run(w, 1);
  assert.ok(Math.abs(r.ce - 0.755012) < 4e-6, `CE ${r.ce}`);
  assert.ok(Math.abs(r.reg - 0.0006) < 1e-8, `reg ${r.reg}`);
  assert.ok(Math.abs(r.loss - 0.755612) < 4e-6, `total ${r.loss}`);
  const ref = prolipRef(X, 2, 3, w, W0, 2, T, 2, Y, 1, 100);
  assert.ok(Math.abs(ref.loss - 0.755612) < 5e-7, `ref total ${ref.loss}`);
  assertClose(r.grad, ref.gradW, 1e-5, 'gradient with the regulariser');
});

test('ProLIP sanity: first Adam step (lr 1e-3, eps 1e-4) moves W by -lr·g/(|g| + eps) ≈ -lr·sign(g)', async () => {
  const gpu = await getGpu();
  const proj = tensor(W0, [3, 2], 'f32', gpu).param('W');
  const proj0 = tensor(W0, [3, 2], 'f32', gpu);
  const feats = tensor(X, [2, 3], 'f32', gpu);
  const text = tensor(T, [2, 2], 'f32', gpu);
  const labels = tensor(Y, [2], 'i32', gpu);
  const opt = new Adam([proj], { lr: 1e-3, eps: 1e-4 });
  const out = tidy(() => prolipLoss({ features: feats, proj, proj0, text, labels, lambda: 1, logitScale: 100 }));
  out.loss.backward();
  const g = Array.from((await proj.grad!.read()) as Float32Array);
  opt.step();
  const after = Array.from((await proj.read()) as Float32Array);
  const delta = after.map((v, i) => v - W0[i]!);
  const expected = [0.001, -0.001, 0.001, -0.001, -0.001, 0.001];
  for (let i = 0; i < 6; i++) {
    const exact = (-1e-3 * g[i]!) / (Math.abs(g[i]!) + 1e-4);
    assert.ok(Math.abs(delta[i]! - exact) < 2e-8, `delta[${i}] ${delta[i]} vs ${exact}`);
    assert.ok(Math.abs(delta[i]! - expected[i]!) < 1e-6, `delta[${i}] ${delta[i]} vs ≈${expected[i]}`);
  }
  opt.dispose();
  for (const t of [out.loss, out.terms.ce, out.terms.reg, proj, proj0, feats, text, labels]) t.dispose();
});

test('ProLIP loss and gradient equal a float64 CPU computation on random data (reference checked by finite differences)', async () => {
  const gpu = await getGpu();
  const [n, d, e, c] = [13, 7, 5, 4];
  const x = randArray(n * d, 1);
  const w0 = randArray(d * e, 2);
  const w = Array.from(w0, (v, i) => Math.fround(v + 0.1 * Math.sin(i)));
  // Unit-norm class rows, rounded to f32 for both sides.
  const tRaw = randArray(c * e, 3);
  const t = new Float64Array(c * e);
  for (let q = 0; q < c; q++) {
    let s = 0;
    for (let k = 0; k < e; k++) s += tRaw[q * e + k]! ** 2;
    for (let k = 0; k < e; k++) t[q * e + k] = Math.fround(tRaw[q * e + k]! / Math.sqrt(s));
  }
  const y = Array.from({ length: n }, (_, i) => (i * 3) % c);
  const lambda = 0.37;
  const s = 20;
  const ref = prolipRef(x, n, d, w, w0, e, t, c, y, lambda, s);
  // The reference's gradient against central differences.
  const h = 1e-6;
  const fd = new Float64Array(d * e);
  for (let k = 0; k < d * e; k++) {
    const wp = Float64Array.from(w), wm = Float64Array.from(w);
    wp[k]! += h;
    wm[k]! -= h;
    fd[k] = (prolipRef(x, n, d, wp, w0, e, t, c, y, lambda, s).loss - prolipRef(x, n, d, wm, w0, e, t, c, y, lambda, s).loss) / (2 * h);
  }
  assert.ok(relErr(ref.gradW, fd) < 1e-6, `reference gradient vs finite differences: ${relErr(ref.gradW, fd)}`);

  const proj = tensor(w, [d, e], 'f32', gpu).param('W');
  const tensors: Tensor[] = [proj];
  const mk = (v: ArrayLike<number>, shape: number[], dt: 'f32' | 'i32' = 'f32') => {
    const tt = tensor(Array.from(v), shape, dt, gpu);
    tensors.push(tt);
    return tt;
  };
  const out = tidy(() => prolipLoss({ features: mk(x, [n, d]), proj, proj0: mk(w0, [d, e]), text: mk(t, [c, e]), labels: mk(y, [n], 'i32'), lambda, logitScale: s }));
  assertClose([await out.loss.item()], [ref.loss], 1e-5, 'loss');
  assertClose([await out.terms.ce.item()], [ref.ce], 1e-5, 'ce');
  assertClose([await out.terms.reg.item()], [ref.reg], 1e-5, 'reg');
  out.loss.backward();
  assertClose((await proj.grad!.read()) as Float32Array, ref.gradW, 1e-4, 'dL/dW');
  for (const tt of [out.loss, out.terms.ce, out.terms.reg, ...tensors]) tt.dispose();
  clearTape();
});

test('composeLoss: weighted sum, zero weights logged only, errors', async () => {
  const gpu = await getGpu();
  const a = tensor([2], [1], 'f32', gpu), b = tensor([3], [1], 'f32', gpu), c = tensor([5], [1], 'f32', gpu);
  const out = tidy(() => composeLoss([{ name: 'a', weight: 1, value: a }, { name: 'b', weight: 0.5, value: b }, { name: 'c', weight: 0, value: c }]));
  assert.is(await out.loss.item(), 3.5);
  assert.equal(Object.keys(out.terms), ['a', 'b', 'c']);
  assert.throws(() => composeLoss([]), /no terms/);
  assert.throws(() => composeLoss([{ name: 'a', weight: 1, value: a }, { name: 'a', weight: 1, value: b }]), /two terms named "a"/);
  assert.throws(() => composeLoss([{ name: 'c', weight: 0, value: c }]), /every term has weight 0/);
  const v = tensor([1, 2], [2], 'f32', gpu);
  assert.throws(() => composeLoss([{ name: 'v', weight: 1, value: v }]), /not a scalar/);
  for (const t of [out.loss, a, b, c, v]) t.dispose();
});

/** Unit rows [c, e] rounded to f32. */
function unitRows(c: number, e: number, seed: number): Float64Array {
  const raw = randArray(c * e, seed);
  const t = new Float64Array(c * e);
  for (let q = 0; q < c; q++) {
    let s = 0;
    for (let k = 0; k < e; k++) s += raw[q * e + k]! ** 2;
    for (let k = 0; k < e; k++) t[q * e + k] = Math.fround(raw[q * e + k]! / Math.sqrt(s));
  }
  return t;
}

/** Central differences of a float64 loss over every entry of `at`. */
function finiteDiff(at: ArrayLike<number>, loss: (v: Float64Array) => number, h = 1e-6): Float64Array {
  const g = new Float64Array(at.length);
  for (let k = 0; k < at.length; k++) {
    const p = Float64Array.from(at), m = Float64Array.from(at);
    p[k]! += h;
    m[k]! -= h;
    g[k] = (loss(p) - loss(m)) / (2 * h);
  }
  return g;
}

for (const templates of [1, 3]) {
  test(`ProLIP-text (methods.md 8.d): loss and dL/dP equal a float64 reference (${templates} template${templates > 1 ? 's' : ''}; reference checked by finite differences)`, async () => {
    const gpu = await getGpu();
    const [n, d, e, c, dt] = [11, 6, 5, 4, 7];
    const x = randArray(n * d, 11), w0 = randArray(d * e, 12), h = randArray(templates * c * dt, 13), p0 = randArray(dt * e, 14);
    const p = Array.from(p0, (v, i) => Math.fround(v + 0.07 * Math.cos(i)));
    const y = Array.from({ length: n }, (_, i) => (i * 5) % c);
    const a = { x, n, d, w0, e, h, templates, c, dt, p, p0, y, lambda: 0.4, s: 17 };
    const ref = prolipTextRef(a);
    const fd = finiteDiff(p, (v) => prolipTextRef({ ...a, p: v }).loss);
    assert.ok(relErr(ref.grad, fd) < 1e-6, `reference gradient vs finite differences: ${relErr(ref.grad, fd)}`);
    const keepAlive: Tensor[] = [];
    const mk = (v: ArrayLike<number>, shape: number[], dt2: 'f32' | 'i32' = 'f32') => {
      const t = tensor(Array.from(v), shape, dt2, gpu);
      keepAlive.push(t);
      return t;
    };
    const proj = mk(p, [dt, e]).param('P');
    const out = tidy(() => {
      const u = l2n(matmul(mk(x, [n, d]), mk(w0, [d, e])));
      return prolipTextLoss({ images: u, textPooled: mk(h, [templates * c, dt]), templates, proj, proj0: mk(p0, [dt, e]), labels: mk(y, [n], 'i32'), lambda: 0.4, logitScale: 17 });
    });
    assertClose([await out.loss.item()], [ref.loss], 1e-5, 'loss');
    assertClose([await out.terms.ce.item()], [ref.ce], 1e-5, 'ce');
    assertClose([await out.terms.reg.item()], [ref.reg], 1e-5, 'reg');
    out.loss.backward();
    assertClose((await proj.grad!.read()) as Float32Array, ref.grad, 1e-4, 'dL/dP');
    for (const t of [out.loss, out.terms.ce, out.terms.reg, ...keepAlive]) t.dispose();
    clearTape();
  });
}

test('Regularised linear adapter (methods.md 8.d): loss and dL/dA equal a float64 reference (reference checked by finite differences)', async () => {
  const gpu = await getGpu();
  const [n, d, e, c] = [9, 6, 5, 3];
  const x = randArray(n * d, 21), w0 = randArray(d * e, 22), t = unitRows(c, e, 23);
  const adapter = Array.from({ length: e * e }, (_, i) => Math.fround((i % (e + 1) === 0 ? 1 : 0) + 0.05 * Math.sin(3 * i)));
  const y = Array.from({ length: n }, (_, i) => (i * 2) % c);
  const a = { x, n, d, w0, e, adapter, t, c, y, lambda: 0.25, s: 30 };
  const ref = rlaRef(a);
  const fd = finiteDiff(adapter, (v) => rlaRef({ ...a, adapter: v }).loss);
  assert.ok(relErr(ref.grad, fd) < 1e-6, `reference gradient vs finite differences: ${relErr(ref.grad, fd)}`);
  const eye = new Float32Array(e * e);
  for (let i = 0; i < e; i++) eye[i * e + i] = 1;
  const A = tensor(adapter, [e, e], 'f32', gpu).param('A');
  const others = [tensor(x, [n, d], 'f32', gpu), tensor(w0, [d, e], 'f32', gpu), tensor(eye, [e, e], 'f32', gpu), tensor(t, [c, e], 'f32', gpu), tensor(y, [n], 'i32', gpu)] as const;
  const [xt, w0t, it, tt, yt] = others;
  // As the method's step does: the frozen embeddings x W0 are the adapter's input.
  const out = tidy(() => prolipLoss({ features: matmul(xt, w0t), proj: A, proj0: it, text: tt, labels: yt, lambda: 0.25, logitScale: 30 }));
  assertClose([await out.loss.item()], [ref.loss], 1e-5, 'loss');
  assertClose([await out.terms.reg.item()], [ref.reg], 1e-5, 'reg');
  out.loss.backward();
  assertClose((await A.grad!.read()) as Float32Array, ref.grad, 1e-4, 'dL/dA');
  for (const q of [out.loss, out.terms.ce, out.terms.reg, A, ...others]) q.dispose();
  clearTape();
});

test('ProLIP method, every variant on a tiny CLIP: the step loss and gradient equal the float64 references, the classifier matches', async () => {
  const gpu = await getGpu();
  const dir = tempDir('prolip-variants');
  try {
    const path = join(dir, 'tiny.safetensors');
    await writeTinyClip(path, 3);
    const { model, tokenizer } = await loadClip(gpu, path, { activation: 'quick_gelu' });
    const W = model.config.image.width, E = model.config.embedDim;
    const classnames = ['red circle', 'blue square', 'green star'];
    const train: ImageItem[] = Array.from({ length: 6 }, (_, i) => ({ impath: `img${i}.png`, label: i % 3 }));
    const textRows = unitRows(classnames.length, E, 31);
    const views = new Map<number, Float32Array>();
    const features: FeatureSource = {
      pooled: async (items, view) => {
        const v = view.mode === 'test' ? -1 : view.view;
        if (!views.has(v)) views.set(v, Float32Array.from(randArray(items.length * W, 40 + v)));
        return views.get(v)!;
      },
      textWeights: async (names) => Float32Array.from(textRows.subarray(0, names.length * E)),
    };
    const env: MethodEnv = { gpu, model, tokenizer, datasetName: 'World', classnames, train, val: null, shots: 2, seed: 1, features, purpose: 'train', log: () => {} };
    const s = await model.logitScale().item();
    const w0 = Array.from((await model.param('visual.proj').read()) as Float32Array);
    const p0 = Array.from((await model.param('text_projection').read()) as Float32Array);
    const y = train.map((it) => it.label);
    for (const variant of ['visual', 'text', 'rla'] as const) {
      const opts = { ...PROLIP.defaults({ shots: 2, datasetName: 'World', baseToNovel: false }), views: 2, steps: 3, lambda: 0.3, variant };
      const method = PROLIP.create(opts, { shots: 2, datasetName: 'World', baseToNovel: false }) as ProlipMethod;
      await method.prepare(env);
      const [name, learned] = [...method.params][0]!;
      assert.is(name, { visual: 'visual.proj', text: 'text_projection', rla: 'adapter' }[variant]);
      // Move the learned tensor off its starting point so the regulariser counts.
      const start = Array.from((await learned.read()) as Float32Array);
      const moved = Float32Array.from(start, (v, i) => v + 0.02 * Math.sin(i + 1));
      gpu.write(learned.buffer, 0, moved, 'test');
      let batch = null;
      for await (const b of method.batches(0, 0)) batch = b;
      assert.is(batch!.view, 1, 'step 0 uses view (0 + 1) mod views');
      const x = views.get(1)!;
      const out = tidy(() => method.step(batch!));
      out.loss.backward();
      const loss = await out.loss.item();
      const grad = (await learned.grad!.read()) as Float32Array;
      const n = train.length;
      let ref;
      if (variant === 'visual') {
        const r = prolipRef(x, n, W, moved, w0, E, textRows, 3, y, 0.3, s);
        ref = { loss: r.loss, grad: r.gradW };
      } else if (variant === 'rla') {
        ref = rlaRef({ x, n, d: W, w0, e: E, adapter: moved, t: textRows, c: 3, y, lambda: 0.3, s });
        assert.equal(start, Array.from({ length: E * E }, (_, i) => (i % (E + 1) === 0 ? 1 : 0)), 'the adapter starts at the identity');
      } else {
        const pooled = textPooledFeatures(model, tokenizer, classnames, ['a photo of a {}.']);
        const h = (await pooled.read()) as Float32Array;
        pooled.dispose();
        ref = prolipTextRef({ x, n, d: W, w0, e: E, h, templates: 1, c: 3, dt: model.config.text.width, p: moved, p0, y, lambda: 0.3, s });
      }
      assertClose([loss], [ref.loss], 2e-5, `${variant} loss`);
      assertClose(grad, ref.grad, 2e-4, `${variant} gradient`);
      learned.grad = null;
      for (const t of [out.loss, ...Object.values(out.terms ?? {})]) t.dispose();
      clearTape();
      // The evaluation head: the same image embedding and class weights as training.
      const clf = await method.classifier(classnames, env);
      const xt = tensor(x, [n, W], 'f32', gpu);
      const emb = tidy(() => clf.embedPooled!(xt));
      const embV = (await emb.read()) as Float32Array;
      const expectEmb = tidy(() => (variant === 'visual' ? matmul(xt, learned) : variant === 'rla' ? matmul(matmul(xt, model.param('visual.proj')), learned) : matmul(xt, model.param('visual.proj'))));
      assertClose(embV, (await expectEmb.read()) as Float32Array, 1e-6, `${variant} embedPooled`);
      if (variant === 'text') {
        const pooled = textPooledFeatures(model, tokenizer, classnames, ['a photo of a {}.']);
        const tw = tidy(() => prolipTextWeights(pooled, learned, 1));
        assertClose((await clf.text!.read()) as Float32Array, (await tw.read()) as Float32Array, 1e-6, 'text classifier = T(P)');
        for (const t of [pooled, tw]) t.dispose();
      } else assertClose((await clf.text!.read()) as Float32Array, textRows, 1e-6, `${variant} class weights`);
      for (const t of [xt, emb, expectEmb]) t.dispose();
      clf.dispose();
      method.dispose();
    }
    model.dispose();
  } finally {
    removeDir(dir);
  }
});

test('ProLIP options: unknown variant and --crop-min > 1 are refused', () => {
  const ctx = { shots: 4, datasetName: 'World', baseToNovel: false };
  const v = PROLIP.options.find((o) => o.key === 'variant')!;
  assert.equal(v.choices, ['visual', 'text', 'rla']);
  assert.throws(() => PROLIP.validate!({ ...PROLIP.defaults(ctx), cropMin: 1.5 }, ctx), /--crop-min must be <= 1/);
  assert.is(PROLIP.defaults(ctx).cropMin, 0.5);
  assert.is(PROLIP.defaults(ctx).variant, 'visual');
});

test.run();

// ProLIP's loss and gradient: methods.md 8.g's sanity numbers (torch, float64), an independent
// float64 CPU computation (checked against finite differences), and the first Adam step.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../../src/gpu/index.js';
import { tensor, tidy, type Tensor } from '../../src/tensor/tensor.js';
import { clearTape } from '../../src/autograd/tape.js';
import { Adam } from '../../src/nn/optim.js';
import { prolipLoss } from '../../src/adapt/prolip.js';
import { composeLoss } from '../../src/adapt/method.js';
import { assertClose, randArray, relErr } from '../helpers/parity.js';
import { prolipRef } from '../ref/adapt.js';

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

test.run();

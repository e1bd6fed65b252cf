// Timings of the reduction family (reductions, softmax, layer norm, losses, distances) on CLIP-like
// shapes. Run after `npm run build`: node bench/reduce-family.mjs
// Each line: median of 5 timed runs after one warm-up, wall time from encode to GPU completion.
import { getGpu } from '../dist/src/gpu/index.js';
import { tensor } from '../dist/src/tensor/tensor.js';
import * as R from '../dist/src/ops/reduce.js';
import { sumTo } from '../dist/src/ops/elementwise.js';
import { softmax } from '../dist/src/ops/softmax.js';
import { layerNorm } from '../dist/src/ops/layernorm.js';
import { crossEntropy, klDiv } from '../dist/src/ops/losses.js';
import { cosineSim, pairwiseSqDist, l2normalize } from '../dist/src/ops/distance.js';
import { clearTape } from '../dist/src/autograd/tape.js';

const gpu = await getGpu();
console.log(`adapter: ${gpu.kind} (${gpu.info.description || gpu.info.device}), backend ${gpu.info.backend}`);
let seed = 1;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
const mk = (shape, param = false) => {
  const t = tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rand), shape);
  return param ? t.param() : t;
};

async function time(name, f) {
  const ts = [];
  let dispatches = 0;
  for (let i = 0; i < 6; i++) {
    await gpu.sync();
    const d0 = gpu.counters.dispatches;
    const t0 = performance.now();
    const outs = f();
    await gpu.sync();
    if (i > 0) ts.push(performance.now() - t0);
    dispatches = gpu.counters.dispatches - d0;
    for (const o of [outs].flat()) o?.dispose?.();
    clearTape();
  }
  ts.sort((a, b) => a - b);
  console.log(`${name.padEnd(56)} ${ts[2].toFixed(1).padStart(7)} ms  (${dispatches} dispatches)`);
}

/** Runs forward + backward with seed `g` and returns every tensor to dispose. */
function fb(y, g, ...params) {
  y.backward(g ? { gradient: g.share() } : undefined);
  const grads = params.map((p) => p.grad);
  for (const p of params) p.grad = null;
  return [y, ...grads];
}

const big = mk([5_000_000]);
await time('sum [5M] global', () => R.sum(big));
const h = mk([1600, 768]);
await time('sumTo [1600,768] -> [768] (bias gradient)', () => sumTo(h, [768]));
await time('sum [1600,768] axis -1', () => R.sum(h, -1));
await time('max [1600,768] axis -1', () => R.max(h, -1));
const att = mk([256, 77, 77], true);
const gatt = mk([256, 77, 77]);
await time('softmax causal [256,77,77] fwd', () => softmax(att, -1, { causal: true }));
await time('softmax causal [256,77,77] fwd+bwd', () => fb(softmax(att, -1, { causal: true }), gatt, att));
const x = mk([1600, 768], true);
const w = mk([768]);
const b = mk([768]);
const g = mk([1600, 768]);
await time('layerNorm [1600,768] fwd', () => layerNorm(x, w, b));
await time('layerNorm [1600,768] fwd+bwd, frozen w,b (dx only)', () => fb(layerNorm(x, w, b), g, x));
w.param();
b.param();
await time('layerNorm [1600,768] fwd+bwd dx,dW,db', () => fb(layerNorm(x, w, b), g, x, w, b));
const logits = mk([256, 1000], true);
const teacher = mk([256, 1000]);
const labels = tensor(Int32Array.from({ length: 256 }, (_, i) => (i * 7) % 1000), [256], 'i32');
await time('crossEntropy [256,1000] fwd+bwd', () => fb(crossEntropy(logits, labels), null, logits));
await time('klDiv [256,1000] T=2 fwd+bwd (student)', () => fb(klDiv(logits, teacher, { temperature: 2 }), null, logits));
const img = mk([32, 512], true);
const txt = mk([1000, 512]);
const gs = mk([32, 1000]);
await time('l2normalize [1000,512] fwd', () => l2normalize(txt));
await time('cosineSim [32,512]x[1000,512] fwd+bwd (b frozen)', () => fb(cosineSim(img, txt), gs, img));
await time('pairwiseSqDist [32,512]x[1000,512] fwd+bwd (b frozen)', () => fb(pairwiseSqDist(img, txt), gs, img));
const q = mk([256, 512]);
await time('pairwiseSqDist [1000,512]x[256,512] fwd', () => pairwiseSqDist(txt, q));

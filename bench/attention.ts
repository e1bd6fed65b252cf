// Times attention forward and forward+backward (gradients of q, k and v) at CLIP sizes.
// Usage: node dist/bench/attention.js [reps] [tiles-json] [shape index]
//   e.g. node dist/bench/attention.js 5 '{"qr":4,"kb":4,"kr":2,"qb":4,"wg":16}'
import { getGpu } from '../src/gpu/index.js';
import { tensor, type Tensor } from '../src/tensor/tensor.js';
import { noGrad, clearTape } from '../src/autograd/tape.js';
import { attention, attentionTiles, setAttentionTiles } from '../src/ops/attention.js';

const reps = Number(process.argv[2] ?? 5);
if (process.argv[3]) setAttentionTiles(JSON.parse(process.argv[3]));

const shapes = [
  { name: 'ViT-B/32 B8 T50 D768 h12', b: 8, t: 50, d: 768, heads: 12, causal: false },
  { name: 'text B32 T77 D512 h8 causal', b: 32, t: 77, d: 512, heads: 8, causal: true },
  { name: 'text B32 T77 D512 h8 full', b: 32, t: 77, d: 512, heads: 8, causal: false },
];

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const gpu = await getGpu();
console.log(`adapter ${gpu.kind} (${gpu.info.description || gpu.info.device}), tiles ${JSON.stringify(attentionTiles(gpu, 64))}`);
const only = process.argv[4] === undefined ? null : Number(process.argv[4]);
for (const s of shapes.filter((_, i) => only === null || i === only)) {
  const mk = (t: number, seed: number) => tensor(rand(s.b * t * s.d, seed), [s.b, t, s.d], 'f32', gpu);
  const q = mk(s.t, 1);
  const k = mk(s.t, 2);
  const v = mk(s.t, 3);
  const dO = mk(s.t, 4);
  const opts = { heads: s.heads, causal: s.causal };
  const fwd: number[] = [];
  const both: number[] = [];
  // CPU time of this process (llvmpipe's worker threads included): on a shared, overloaded machine
  // wall time swings by 2-4x while CPU time stays close to the work done.
  let firstFwd = 0;
  let firstBoth = 0;
  const fwdCpu: number[] = [];
  const bothCpu: number[] = [];
  const cpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  for (let r = 0; r <= reps; r++) {
    await gpu.sync();
    let t0 = performance.now();
    let c0 = cpuMs();
    noGrad(() => attention(q, k, v, opts)).dispose();
    await gpu.sync();
    if (r) fwd.push(performance.now() - t0);
    if (r) fwdCpu.push(cpuMs() - c0);
    else firstFwd = performance.now() - t0;
    for (const x of [q, k, v]) x.requiresGrad = true;
    t0 = performance.now();
    c0 = cpuMs();
    const o = attention(q, k, v, opts);
    o.backward({ gradient: dO });
    await gpu.sync();
    if (r) both.push(performance.now() - t0);
    if (r) bothCpu.push(cpuMs() - c0);
    else firstBoth = performance.now() - t0;
    o.dispose();
    for (const x of [q, k, v]) {
      x.grad?.dispose();
      x.grad = null;
      x.requiresGrad = false;
    }
    clearTape();
  }
  const flops = 4 * s.b * s.heads * s.t * s.t * (s.d / s.heads) * (s.causal ? 0.5 : 1);
  const f = median(fwd);
  const fb = median(both);
  console.log(
    `${s.name}: forward ${f.toFixed(2)} ms (${(flops / f / 1e6).toFixed(1)} GFLOP/s), forward+backward ${fb.toFixed(2)} ms, backward ~${(fb - f).toFixed(2)} ms` +
      `  [min ${Math.min(...fwd).toFixed(2)} / ${Math.min(...both).toFixed(2)} ms; CPU time ${median(fwdCpu).toFixed(1)} / ${median(bothCpu).toFixed(1)} ms; first call incl. compile ${firstFwd.toFixed(0)} / ${firstBoth.toFixed(0)} ms]`,
  );
  for (const x of [q, k, v, dO]) x.dispose();
}
gpu.destroy();

// Per-kernel CPU/wall time of the attention kernels at one shape (for tuning tiles).
// Usage: node dist/bench/attention-kernels.js B T D heads [tiles-json] [reps]
import { getGpu } from '../src/gpu/index.js';
import { empty, tensor } from '../src/tensor/tensor.js';
import { AttentionKernels, attentionTiles, paddedKeys, setAttentionTiles } from '../src/ops/attention-kernels.js';

const [B, T, D, H] = process.argv.slice(2, 6).map(Number) as [number, number, number, number];
if (process.argv[6]) setAttentionTiles(JSON.parse(process.argv[6]));
const reps = Number(process.argv[7] ?? 5);
const gpu = await getGpu();
const hd = D / H;
const t = attentionTiles(gpu, hd);
const d = { batch: B, tq: T, tk: T, dModel: D, heads: H, headDim: hd, causal: false, scale: 1 / Math.sqrt(hd), maskStrides: null };
const k = new AttentionKernels(gpu, t, d);
const rnd = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
const x = () => tensor(rnd(B * T * D), [B, T, D], 'f32', gpu);
const [q, kk, v, o, dO] = [x(), x(), x(), x(), x()];
const s = empty([B * H, T, paddedKeys(T)], 'f32', gpu);
const pristine = empty([B * H, T, paddedKeys(T)], 'f32', gpu);
const lse = empty([B * H * T], 'f32', gpu);
const out = empty([B, T, D], 'f32', gpu);
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const fl = 2 * B * H * T * T * hd;
const cases: [string, () => void, number][] = [
  ['scores', () => k.scores(q.buffer, kk.buffer, s.buffer, null), fl],
  ['softmax', () => k.softmax(s.buffer, lse.buffer, false), 0],
  ['(keep P)', () => gpu.copy(s.buffer, 0, pristine.buffer, 0, s.bytes, 'keep P'), 0],
  ['P.V', () => k.nn(s.buffer, v.buffer, out.buffer, 1, 'P.V'), fl],
  ['dV', () => k.tn(s.buffer, dO.buffer, out.buffer, 1, 'dV'), fl],
  ['delta', () => k.delta(o.buffer, dO.buffer, lse.buffer), 0],
  // dS overwrites P in place: restore P first so every rep (and dQ, dK after it) sees real values.
  ['dS', () => (gpu.copy(pristine.buffer, 0, s.buffer, 0, s.bytes, 'restore P'), k.dScores(dO.buffer, v.buffer, lse.buffer, s.buffer, null)), fl],
  ['dQ', () => k.nn(s.buffer, kk.buffer, out.buffer, 0.125, 'dQ'), fl],
  ['dK', () => k.tn(s.buffer, q.buffer, out.buffer, 0.125, 'dK'), fl],
];
console.log(`B${B} T${T} D${D} h${H} tiles ${JSON.stringify(t)}`);
// Minimum over reps of single-dispatch CPU time: the machine is shared, so the minimum is the
// least disturbed measurement.
for (const [name, f, flops] of cases) {
  f();
  await gpu.sync();
  let c = Infinity;
  let w = Infinity;
  for (let r = 0; r < reps; r++) {
    const c0 = cpu();
    const t0 = performance.now();
    f();
    await gpu.sync();
    c = Math.min(c, cpu() - c0);
    w = Math.min(w, performance.now() - t0);
  }
  console.log(`  ${name.padEnd(7)} wall ${w.toFixed(2).padStart(7)} ms  cpu ${c.toFixed(2).padStart(7)} ms${flops ? `  ${(flops / c / 1e6).toFixed(1)} GFLOP/s per cpu-s` : ''}`);
}
gpu.destroy();

// A/B of tile configurations for one attention kernel in one process, interleaved, min CPU time.
// Usage: node dist/bench/attention-ab.js B T D heads kernel reps cfg1 cfg2 ...
import { getGpu } from '../src/gpu/index.js';
import { empty, tensor } from '../src/tensor/tensor.js';
import { AttentionKernels, attentionTiles, paddedKeys, setAttentionTiles } from '../src/ops/attention-kernels.js';

const [B, T, D, H] = process.argv.slice(2, 6).map(Number) as [number, number, number, number];
const which = process.argv[6]!;
const reps = Number(process.argv[7]);
const cfgs = process.argv.slice(8);
const gpu = await getGpu();
const hd = D / H;
const d = { batch: B, tq: T, tk: T, dModel: D, heads: H, headDim: hd, causal: false, scale: 1 / Math.sqrt(hd), maskStrides: null };
const kerns = cfgs.map((c) => {
  setAttentionTiles(JSON.parse(c));
  return new AttentionKernels(gpu, attentionTiles(gpu, hd), d);
});
const rnd = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
const x = () => tensor(rnd(B * T * D), [B, T, D], 'f32', gpu);
const [q, k, v] = [x(), x(), x()];
const s = empty([B * H, T, paddedKeys(T)], 'f32', gpu);
const lse = empty([B * H * T], 'f32', gpu);
const out = empty([B, T, D], 'f32', gpu);
kerns[0]!.scores(q.buffer, k.buffer, s.buffer, null);
kerns[0]!.softmax(s.buffer, lse.buffer, false);
const run = (kk: AttentionKernels) => {
  if (which === 'scores') kk.scores(q.buffer, k.buffer, s.buffer, null);
  else if (which === 'nn') kk.nn(s.buffer, v.buffer, out.buffer, 1, 'P.V');
  else if (which === 'tn') kk.tn(s.buffer, v.buffer, out.buffer, 1, 'dV');
};
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const best = cfgs.map(() => Infinity);
for (let r = -1; r < reps; r++) {
  for (let i = 0; i < cfgs.length; i++) {
    await gpu.sync();
    const c0 = cpu();
    run(kerns[i]!);
    await gpu.sync();
    if (r >= 0) best[i] = Math.min(best[i]!, cpu() - c0);
  }
}
const fl = 2 * B * H * T * T * hd;
cfgs.forEach((c, i) => console.log(`${which} ${c}: min cpu ${best[i]!.toFixed(2)} ms (${(fl / best[i]! / 1e6).toFixed(1)} GFLOP/s per cpu-s)`));
gpu.destroy();

// Times attention forward and forward+backward (gradients of q, k and v) at CLIP sizes.
// Usage: node dist/bench/attention.js [reps] [tiles-json] [shape index]
//   e.g. node dist/bench/attention.js 5 '{"qkRows":16,"qkKeys":16}' 0
// Reports wall time (median and min) and this process's CPU time (llvmpipe's worker threads
// included): on a shared, overloaded machine wall time swings by 2-4x while CPU time stays closer
// to the work done. The first call includes pipeline creation (shader compile).
import { getGpu } from '../src/gpu/index.js';
import { tensor } from '../src/tensor/tensor.js';
import { noGrad, clearTape } from '../src/autograd/tape.js';
import { attention, attentionTiles, setAttentionTiles } from '../src/ops/attention.js';

const reps = Number(process.argv[2] ?? 5);
if (process.argv[3]) setAttentionTiles(JSON.parse(process.argv[3]));
const only = process.argv[4] === undefined ? null : Number(process.argv[4]);

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
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const gpu = await getGpu();
console.log(`adapter ${gpu.kind} (${gpu.info.description || gpu.info.device}), tiles ${JSON.stringify(attentionTiles(gpu, 64))}`);

/** Times `f` (which encodes work) to completion: wall ms, CPU ms. */
async function time(f: () => void): Promise<[number, number]> {
  await gpu.sync();
  const t0 = performance.now();
  const c0 = cpuMs();
  f();
  await gpu.sync();
  return [performance.now() - t0, cpuMs() - c0];
}

for (const s of shapes.filter((_, i) => only === null || i === only)) {
  const mk = (seed: number) => tensor(rand(s.b * s.t * s.d, seed), [s.b, s.t, s.d], 'f32', gpu);
  const [q, k, v, dO] = [mk(1), mk(2), mk(3), mk(4)];
  const flops = 4 * s.b * s.heads * s.t * s.t * (s.d / s.heads) * (s.causal ? 0.5 : 1);
  const run = (keepProbs: boolean | null, grad: boolean) => () => {
    const opts = { heads: s.heads, causal: s.causal, ...(keepProbs === null ? {} : { keepProbs }) };
    if (!grad) {
      noGrad(() => attention(q, k, v, opts)).dispose();
      return;
    }
    const o = attention(q, k, v, opts);
    o.backward({ gradient: dO });
    o.dispose();
  };
  const modes: [string, () => void][] = [
    ['forward', run(null, false)],
    ['fwd+bwd keeping P', run(true, true)],
    ['fwd+bwd recomputing P', run(false, true)],
  ];
  for (const x of [q, k, v]) x.requiresGrad = true;
  const lines: string[] = [];
  for (const [label, f] of modes) {
    const [first] = await time(f);
    const wall: number[] = [];
    const cpu: number[] = [];
    for (let r = 0; r < reps; r++) {
      const [w, c] = await time(f);
      wall.push(w);
      cpu.push(c);
      for (const x of [q, k, v]) {
        x.grad?.dispose();
        x.grad = null;
      }
      clearTape();
    }
    const gflops = label === 'forward' ? ` (${(flops / median(wall) / 1e6).toFixed(1)} GFLOP/s wall, ${(flops / median(cpu) / 1e6).toFixed(1)} per CPU-s)` : '';
    lines.push(`  ${label.padEnd(22)} wall median ${median(wall).toFixed(1)} ms, min ${Math.min(...wall).toFixed(1)} ms; CPU ${median(cpu).toFixed(1)} ms${gflops}; first call ${first.toFixed(0)} ms`);
  }
  console.log(`${s.name}:\n${lines.join('\n')}`);
  for (const x of [q, k, v, dO]) x.dispose();
}
gpu.destroy();

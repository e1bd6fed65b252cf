// Timings of the OT solvers (encode + sync, median of REPS runs after a warm-up): the exact solver at
// the batch sizes Prompt-OT uses (B = 4 with enumeration, 8, 32 and beyond with the Hungarian), and
// log-domain Sinkhorn. Run: npm run -s build && node dist/bench/ot.js  (REPS=9, SIZES=4,8,32)
import { getGpu } from '../src/gpu/index.js';
import { tensor } from '../src/tensor/tensor.js';
import { otSolve, type OtOptions } from '../src/adapt/ot.js';
import { rng } from '../test/helpers/parity.js';

const gpu = await getGpu();
const reps = Number(process.env.REPS ?? 9);
const sizes = (process.env.SIZES ?? '4,8,9,16,32,64,128').split(',').map(Number);

async function time(name: string, n: number, opts: OtOptions): Promise<void> {
  const r = rng(n * 31 + 7);
  const C = tensor(Float32Array.from({ length: n * n }, () => r() * 2), [n, n], 'f32', gpu);
  const run = () => {
    const o = otSolve(C, opts);
    o.loss.dispose();
    o.plan.dispose();
    o.stats.dispose();
  };
  run();
  await gpu.sync();
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    run();
    await gpu.sync();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  console.log(`${name.padEnd(40)} B=${String(n).padEnd(4)} median ${ms[ms.length >> 1]!.toFixed(2)} ms (min ${ms[0]!.toFixed(2)}, max ${ms[ms.length - 1]!.toFixed(2)})`);
  C.dispose();
}

console.log(`device: ${gpu.kind} ${gpu.info.description} (${gpu.info.backend}); reps ${reps}`);
for (const n of sizes) {
  if (n <= 8) await time('exact (enumerate)', n, { solver: 'exact', exactAlgorithm: 'enumerate' });
  await time('exact (hungarian)', n, { solver: 'exact', exactAlgorithm: 'hungarian' });
  await time('sinkhorn eps=0.05 iters=100', n, { solver: 'sinkhorn', epsilon: 0.05, iterations: 100 });
}
gpu.destroy();

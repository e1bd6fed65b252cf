// First-call time (pipeline creation + llvmpipe compile) of the attention kernels for given tiles.
// Run with MESA_SHADER_CACHE_DISABLE=true for honest numbers:
//   MESA_SHADER_CACHE_DISABLE=true node dist/bench/attention-compile.js '{"qr":4,"kr":2}' [headDim]
import { getGpu } from '../src/gpu/index.js';
import { tensor } from '../src/tensor/tensor.js';
import { noGrad } from '../src/autograd/tape.js';
import { attention, setAttentionTiles } from '../src/ops/attention.js';

if (process.argv[2]) setAttentionTiles(JSON.parse(process.argv[2]));
const hd = Number(process.argv[3] ?? 64);
const gpu = await getGpu();
const mk = () => tensor(new Float32Array(2 * hd).fill(0.1), [1, 2, hd], 'f32', gpu);
const [q, k, v] = [mk(), mk(), mk()];
let t0 = performance.now();
noGrad(() => attention(q, k, v, { heads: 1 })).dispose();
await gpu.sync();
const fwd = performance.now() - t0;
for (const x of [q, k, v]) x.requiresGrad = true;
t0 = performance.now();
const o = attention(q, k, v, { heads: 1 });
o.backward({ gradient: mk() });
await gpu.sync();
console.log(`${process.argv[2] ?? 'defaults'} headDim ${hd}: forward first call ${fwd.toFixed(0)} ms, backward (delta+dQ+dKV) first call ${(performance.now() - t0).toFixed(0)} ms`);
gpu.destroy();

// Timings of the data-movement ops at CLIP sizes (ViT-B/32 text and image towers, batch 32), and the
// windowed ViT-L/14 token embedding (152 MB, over the 128 MiB binding limit).
// Run: npm run -s build && node dist/bench/shape.js
import { getGpu } from '../src/gpu/index.js';
import { tensor, empty } from '../src/tensor/tensor.js';
import { noGrad } from '../src/autograd/tape.js';
import * as sh from '../src/ops/shape.js';
import * as ix from '../src/ops/index-ops.js';
import type { Tensor } from '../src/tensor/tensor.js';

const gpu = await getGpu();
const reps = Number(process.env.REPS ?? 5);

async function time(name: string, fn: () => Tensor | Tensor[]): Promise<void> {
  const run = () => {
    const r = noGrad(fn);
    for (const t of Array.isArray(r) ? r : [r]) t.dispose();
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
  console.log(`${name.padEnd(58)} median ${ms[ms.length >> 1]!.toFixed(2)} ms (min ${ms[0]!.toFixed(2)})`);
}

const rand = (shape: number[]) => {
  const t = empty(shape, 'f32', gpu, 'bench');
  gpu.clear(t.buffer, 0, t.storage.bytes, 'bench');
  return t;
};
const B = 32;
const ids = tensor(Int32Array.from({ length: B * 77 }, (_, i) => (i % 77 < 20 ? (i * 7919) % 49408 : 0)), [B, 77], 'i32', gpu);
const Wb = rand([49408, 512]);
const g512 = rand([B, 77, 512]);
console.log(`device: ${gpu.kind} ${gpu.info.description}; maxStorageBufferBindingSize ${gpu.limits.maxStorageBufferBindingSize}`);
await time('embedding fwd [49408,512] ids [32,77]', () => ix.embedding(Wb, ids));
// dW: clear of 101 MB + link pass (m = 2464) + scatter.
const gi = (await import('../src/ops/index-ops.js')).scatterAdd;
await time('embedding dW (scatterAdd into zeros [49408,512])', () => gi([49408, 512], 0, ids.share([B * 77]), g512.share([B * 77, 512])));
const x = rand([B, 77, 8, 64]);
await time('permute [32,77,8,64] -> [0,2,1,3]', () => sh.permute(x, [0, 2, 1, 3]));
const img = rand([B, 3, 224, 224]);
await time('patchify [32,3,224,224] P=32', () => sh.patchify(img, 32));
await time('gatherRows [32,77,512] -> [32,512]', () => ix.gatherRows(g512, tensor(Int32Array.from({ length: B }, (_, i) => i + 10), [B], 'i32', gpu)));
const pre = rand([B, 1, 512]);
const ctx = rand([B, 16, 512]);
const suf = rand([B, 60, 512]);
await time('concat [32,1|16|60,512] axis 1', () => sh.concat([pre, ctx, suf], 1));
await time('slice [32,77,512] axis 1 [1,17)', () => sh.slice(g512, 1, 1, 17));
await time('transpose [2464,512]', () => sh.transpose(g512.share([B * 77, 512])));
const WL = rand([49408, 768]);
console.log(`ViT-L/14 token embedding: ${WL.bytes} bytes (windowed: ${WL.bytes > gpu.limits.maxStorageBufferBindingSize})`);
await time('embedding fwd [49408,768] ids [32,77] (windowed table)', () => ix.embedding(WL, ids));
const g768 = rand([B * 77, 768]);
await time('embedding dW [49408,768] (windowed, 152 MB clear)', () => gi([49408, 768], 0, ids.share([B * 77]), g768));
gpu.destroy();

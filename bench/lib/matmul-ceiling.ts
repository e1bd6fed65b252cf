// The engine's matmul rate at given shapes and layouts, timed in this process with the matmul
// suite's protocol (a checked warm-up call, then samples of R calls and one device wait): the
// yardstick a training step's counted FLOP rate is divided by. `ceiling` times several shapes that
// the step itself runs and keeps the fastest: the best rate the engine reaches on this adapter at
// the step's sizes.
import type { Gpu } from '../../src/gpu/index.js';
import { tensor } from '../../src/tensor/tensor.js';
import { matmul } from '../../src/ops/matmul.js';
import { errorText, rate, timeCalls, type Stat } from '../common.js';
import { uniform } from './steps.js';

export interface MatmulShape {
  /** Output rows, inner dimension, output columns. */
  M: number;
  K: number;
  N: number;
  /** A stored [K, M] (a weight gradient's Xᵀ·dY), B stored [N, K] (nn.Linear's weight). */
  transA?: boolean;
  transB?: boolean;
  name: string;
}

/** GFLOP/s of 2·M·N·K per call for one shape (throws if the warm-up result is wrong). */
export async function matmulRateAt(gpu: Gpu, s: MatmulShape, repeats: number): Promise<Stat> {
  const { M, K, N } = s;
  const ah = uniform(M * K, 21);
  const bh = uniform(K * N, 22);
  const a = tensor(ah, s.transA ? [K, M] : [M, K], 'f32', gpu);
  const b = tensor(bh, s.transB ? [N, K] : [K, N], 'f32', gpu);
  const opts = { transA: !!s.transA, transB: !!s.transB };
  try {
    const c = matmul(a, b, opts);
    const got = await c.readF32();
    c.dispose();
    for (let t = 0; t < 16; t++) {
      const i = (t * 7919) % M;
      const j = (t * 104729) % N;
      let ref = 0;
      for (let k = 0; k < K; k++) ref += ah[s.transA ? k * M + i : i * K + k]! * bh[s.transB ? j * K + k : k * N + j]!;
      if (!(Math.abs(ref - got[i * N + j]!) <= 1e-4 * Math.max(1, Math.abs(ref)))) throw new Error(`matmul ${s.name}: wrong result at (${i}, ${j})`);
    }
    const st = await timeCalls(() => matmul(a, b, opts).dispose(), () => gpu.sync(), { repeats });
    return rate(st, (2 * M * N * K) / 1e9);
  } finally {
    a.dispose();
    b.dispose();
  }
}

export interface Ceiling {
  /** Each shape's rate (or why it has none). */
  shapes: { shape: MatmulShape; rate: Stat | { error: string } }[];
  /** The fastest shape's rate (null when none ran). */
  best: { shape: MatmulShape; rate: Stat } | null;
}

export async function ceiling(gpu: Gpu, shapes: readonly MatmulShape[], repeats: number): Promise<Ceiling> {
  const out: Ceiling = { shapes: [], best: null };
  for (const shape of shapes) {
    const r = await matmulRateAt(gpu, shape, repeats).catch((e: unknown) => ({ error: errorText(e) }));
    out.shapes.push({ shape, rate: r });
    if ('median' in r && (!out.best || r.median > out.best.rate.median)) out.best = { shape, rate: r };
  }
  return out;
}

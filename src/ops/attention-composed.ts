// Multi-head attention composed from general ops (permute, batched matmul, masked softmax). Exact
// and easy to audit; the fused kernels in attention.ts are checked against it, and it serves
// shapes or devices the fused kernels do not.
import { GpuError } from '../gpu/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/tensor.js';
import { matmul } from './matmul.js';
import { softmax } from './softmax.js';
import { permute, reshape } from './shape.js';
import { scale as scaleBy } from './elementwise.js';

export interface ComposedAttentionOptions {
  heads: number;
  causal?: boolean;
  /** Additive mask broadcastable to [B, heads, Tq, Tk]. */
  mask?: Tensor;
  scale?: number;
}

/** q [B,Tq,D], k/v [B,Tk,D] -> [B,Tq,D]; heads are contiguous D/heads slices. */
export function attentionComposed(q: Tensor, k: Tensor, v: Tensor, o: ComposedAttentionOptions): Tensor {
  if (q.rank !== 3 || k.rank !== 3 || v.rank !== 3) throw new GpuError(`attention: q ${q.describe()}, k ${k.describe()}, v ${v.describe()} must be [B, T, D]`);
  const [b, tq, d] = q.shape as [number, number, number];
  const tk = k.shape[1]!;
  if (k.shape[0] !== b || v.shape[0] !== b || k.shape[2] !== d || v.shape[2] !== d || v.shape[1] !== tk) {
    throw new GpuError(`attention: q ${q.describe()}, k ${k.describe()}, v ${v.describe()} do not match`);
  }
  if (d % o.heads !== 0) throw new GpuError(`attention: width ${d} is not divisible by ${o.heads} heads`);
  const hd = d / o.heads;
  const scale = o.scale ?? 1 / Math.sqrt(hd);
  return tidy(() => {
    const split = (x: Tensor, t: number) => permute(reshape(x, [b, t, o.heads, hd]), [0, 2, 1, 3]);
    // Scaling q (not the scores) as PyTorch's multi-head attention does.
    const qh = scaleBy(split(q, tq), scale);
    const kh = split(k, tk);
    const vh = split(v, tk);
    const scores = matmul(qh, kh, { transB: true });
    const p = softmax(scores, -1, { ...(o.causal ? { causal: true } : {}), ...(o.mask ? { mask: o.mask } : {}) });
    return reshape(permute(matmul(p, vh), [0, 2, 1, 3]), [b, tq, d]);
  });
}

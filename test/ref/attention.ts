// Float64 reference for multi-head attention, composed of core primitives (so its gradients come
// from their adjoints and the finite-difference check validates the composition):
// split heads by reshape + permute, scores = (scale q) k^T + mask, a softmax whose masked entries
// (score <= -1e30, causal) are multiplied by a 0/1 constant, P v, heads merged back.
import { R, add, constant, div, exp, matmul, mul, permute, reshape, scale, sub, sum, transpose } from './core.js';

export interface AttentionRefOptions {
  heads: number;
  causal?: boolean;
  mask?: R;
  scale?: number;
}

/** Masked scores at or below this count as masked (same rule as src/ops/attention.ts). */
export const MASKED = -1e30;

function splitHeads(x: R, heads: number): R {
  const [b, t, d] = x.shape as [number, number, number];
  return permute(reshape(x, [b, t, heads, d / heads]), [0, 2, 1, 3]);
}

/**
 * Softmax over the last axis of s [.., Tq, Tk] with entries where `keep` is 0 removed; a row with
 * nothing kept gives zeros. The row max is a constant (softmax is shift invariant).
 */
export function maskedSoftmax(s: R, keep: Float64Array): R {
  const tk = s.shape[s.shape.length - 1]!;
  const rows = s.size / tk;
  const m = new Float64Array(rows);
  const empty = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let j = 0; j < tk; j++) if (keep[r * tk + j]) mx = Math.max(mx, s.data[r * tk + j]!);
    m[r] = mx === -Infinity ? 0 : mx;
    empty[r] = mx === -Infinity ? 1 : 0;
  }
  const rowShape = [...s.shape.slice(0, -1), 1];
  const e = mul(exp(sub(s, constant(m, rowShape))), constant(keep, s.shape));
  return div(e, add(sum(e, -1, true), constant(empty, rowShape)));
}

export function attentionRef(q: R, k: R, v: R, o: AttentionRefOptions): R {
  const [b, tq, d] = q.shape as [number, number, number];
  const tk = k.shape[1]!;
  const h = o.heads;
  const sc = o.scale ?? 1 / Math.sqrt(d / h);
  let s = matmul(scale(splitHeads(q, h), sc), transpose(splitHeads(k, h))); // [B,h,Tq,Tk]
  if (o.mask) s = add(s, o.mask);
  const keep = new Float64Array(s.size);
  const off = tk - tq;
  for (let idx = 0; idx < s.size; idx++) {
    const j = idx % tk;
    const i = Math.floor(idx / tk) % tq;
    const visible = !o.causal || j <= i + off;
    keep[idx] = visible && !(s.data[idx]! <= MASKED) ? 1 : 0;
  }
  const p = maskedSoftmax(s, keep);
  const out = matmul(p, splitHeads(v, h)); // [B,h,Tq,hd]
  return reshape(permute(out, [0, 2, 1, 3]), [b, tq, d]);
}

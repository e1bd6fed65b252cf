// Float64 references for RPP (methods.md section 9), composed from test/ref primitives:
// the pre-LN residual block whose prompt rows take keys and values from their own vectors, and the
// loss CE + α·τ²·KL(teacher ‖ student) over POMP's per-image columns [own class, negatives] + offsets.
import * as core from './core.js';
import { R } from './core.js';
import { layerNorm } from './nn.js';
import { attentionRef } from './attention.js';
import { crossEntropy, klDiv } from './losses.js';

export interface BlockRef {
  ln1w: R;
  ln1b: R;
  inW: R;
  inB: R;
  outW: R;
  outB: R;
  ln2w: R;
  ln2b: R;
  fcW: R;
  fcB: R;
  projW: R;
  projB: R;
}

/** x W^T + b for W [out, in]. */
export function linearRef(x: R, w: R, b: R): R {
  return core.add(core.matmul(x, core.transpose(w)), b);
}

/**
 * CLIP's residual block on x [B, T, W]; with `kv`, rows [start, start + n) of the keys and values
 * come from LN1(kv.k) W_k + b_k and LN1(kv.v) W_v + b_v (kv.k, kv.v: [n, W], shared by the batch).
 */
export function residualBlockRef(x: R, w: BlockRef, heads: number, causal: boolean, kv: { start: number; k: R; v: R } | null, eps = 1e-5): R {
  const [B, T, W] = x.shape as [number, number, number];
  const h = layerNorm(x, w.ln1w, w.ln1b, eps);
  const proj = (inp: R, part: number) => linearRef(inp, core.slice(w.inW, 0, part * W, (part + 1) * W), core.slice(w.inB, 0, part * W, (part + 1) * W));
  const q = proj(h, 0);
  let k = proj(h, 1);
  let v = proj(h, 2);
  if (kv) {
    const n = kv.k.shape[0]!;
    const rows = (t: R, part: number) => {
      const r = core.reshape(proj(layerNorm(t, w.ln1w, w.ln1b, eps), part), [1, n, W]);
      // Broadcast over the batch: add to zeros of [B, n, W].
      return core.add(core.constant(new Float64Array(B * n * W), [B, n, W]), r);
    };
    const splice = (full: R, r: R) => core.concat([core.slice(full, 1, 0, kv.start), r, core.slice(full, 1, kv.start + n, T)], 1);
    k = splice(k, rows(kv.k, 1));
    v = splice(v, rows(kv.v, 2));
  }
  const a = attentionRef(q, k, v, { heads, causal });
  const x1 = core.add(x, linearRef(a, w.outW, w.outB));
  const m = linearRef(core.quickGelu(linearRef(layerNorm(x1, w.ln2w, w.ln2b, eps), w.fcW, w.fcB)), w.projW, w.projB);
  return core.add(x1, m);
}

/** Per-image logits [B, K]: full[i, pos_i], full[i, neg_j] (flat-index gather), plus offsets. */
export function sampledLogitsRef(full: R, positiveCols: readonly number[], negativeCols: readonly number[], offsets: ArrayLike<number>): R {
  const [B, n] = full.shape as [number, number];
  const K = negativeCols.length + 1;
  const flat: number[] = [];
  for (let i = 0; i < B; i++) {
    flat.push(i * n + positiveCols[i]!);
    for (const c of negativeCols) flat.push(i * n + c);
  }
  const picked = core.reshape(core.indexSelect(core.reshape(full, [B * n, 1]), flat, 0), [B, K]);
  return core.add(picked, core.constant(offsets, [B, K]));
}

/** CE(s, 0) + α·τ²·KL(softmax(t/τ) ‖ softmax(s/τ)) (batch mean), s and t [B, K]. */
export function rppLossRef(s: R, t: R, labels: ArrayLike<number>, alpha: number, tau: number): R {
  const ce = crossEntropy(s, labels);
  if (alpha === 0) return ce;
  return core.add(ce, core.scale(klDiv(s, t, tau), alpha * tau * tau));
}

// Multi-head scaled-dot-product attention, forward and exact backward, with its own kernels
// (src/ops/attention-kernels.ts, shaders/attention_*.wgsl; no matmul/softmax from other ops).
//
// Layout: q [B,Tq,D], k and v [B,Tk,D], already projected; D = heads x headDim and head h is the
// contiguous slice [h*headDim, (h+1)*headDim) of D, as in torch.nn.MultiheadAttention. The output
// [B,Tq,D] interleaves the heads the same way, ready for out_proj. No permutes are materialised.
// Any Tq, Tk, heads >= 1 and any headDim (vec4 loads when headDim % 4 == 0, scalar otherwise);
// v has the same D as q and k. Inputs with different query/key/value rows (RPP's unshared prompt
// vectors) need nothing special: the caller projects different input rows into q, k and v.
//
// Kernels per call (attention-kernels.ts): forward = scores (+ mask) -> row softmax in place ->
// P.V; backward = dV = P^T dO, delta = rowsum(dO*O), dS = P*(dO V^T - delta), dQ = scale dS K,
// dK = scale dS^T Q, each run only when a needed gradient uses it.
//
// Memory/compute trade-off: P [B*heads, Tq, ceil4(Tk)] (in batch chunks when it exceeds one
// storage binding) is either kept from the forward for
// backward or recomputed there (scores + softmax from q, k, the mask and the saved log-sum-exp,
// B*heads*Tq floats, which makes the recomputed P bit-identical). Keeping it saves those two
// kernels (about a quarter of the backward's work) and costs its memory per layer until backward:
// 4 MB for ViT-B/32 and 6 MB for the text tower at batch 32, but 60 MB for ViT-B/16 and 0.7 GB for
// its 12 layers. `keepProbs` chooses; by default P is kept when it takes at most 16 MiB.
//
// Masking semantics: `causal` lets query i see key j iff j <= i + (Tk - Tq), so key/value rows
// placed before the sequence (prefix prompts) are visible to every query; with Tq == Tk it is CLIP's
// text mask. `mask` is added to the scaled scores. A score at or below -1e30 after the mask (-inf,
// or a finite "minus infinity" such as HF's -3.4e38) counts as masked: its probability is exactly
// zero. A query row with no visible key outputs zeros and gets zero gradients (PyTorch gives NaN).
// The mask must not contain +inf or NaN.
import { GpuError } from '../gpu/index.js';
import { record, isGradEnabled } from '../autograd/tape.js';
import { empty, shapeStr, type Shape, type Tensor } from '../tensor/tensor.js';
import type { Binding } from '../gpu/index.js';
import { AttentionKernels, attentionTiles, paddedKeys, type AttnDims } from './attention-kernels.js';

export { setAttentionTiles, attentionTiles, type AttentionTiles } from './attention-kernels.js';

export interface AttentionOptions {
  heads: number;
  /** Query i attends keys j <= i + (Tk - Tq). */
  causal?: boolean;
  /** Additive f32 mask broadcastable to [B, heads, Tq, Tk] (numpy rules, rank <= 4). Not differentiated. */
  mask?: Tensor;
  /** Score scale, applied to q (default 1/sqrt(headDim)). */
  scale?: number;
  /**
   * Keep the probabilities for backward (true) or recompute them there (false). Default: keep when
   * they take at most KEEP_PROBS_BYTES. Only matters when an input requires grad.
   */
  keepProbs?: boolean;
}

/** Default limit for keeping P [B*heads, Tq, ceil4(Tk)] from forward to backward. */
export const KEEP_PROBS_BYTES = 16 * 1024 * 1024;

const OP = 'attention';

/** Mask element strides for (batch, head, query, key); 0 where the mask broadcasts. */
function maskStrides(mask: Tensor, target: readonly [number, number, number, number]): [number, number, number, number] {
  const s = mask.shape;
  const bad = (why: string) =>
    new GpuError(`${OP}: mask ${mask.describe()} does not broadcast to [B,heads,Tq,Tk] = ${shapeStr(target)}: ${why}`);
  if (s.length > 4) throw bad(`rank ${s.length} > 4`);
  const strides: [number, number, number, number] = [0, 0, 0, 0];
  let st = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    const ti = 4 - s.length + i;
    const dim = s[i]!;
    if (dim !== target[ti] && dim !== 1) throw bad(`dim ${i} is ${dim}, expected ${target[ti]} or 1`);
    strides[ti] = dim === 1 ? 0 : st;
    st *= dim;
  }
  return strides;
}

function checkInputs(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): AttnDims {
  for (const [n, t] of [['q', q], ['k', k], ['v', v]] as const) {
    t.assertAlive(OP);
    if (t.dtype !== 'f32') throw new GpuError(`${OP}: ${n} ${t.describe()} must be f32`);
    if (t.rank !== 3) throw new GpuError(`${OP}: ${n} ${t.describe()} must be [B,T,D]`);
    if (t.size === 0) throw new GpuError(`${OP}: ${n} ${t.describe()} is empty`);
  }
  const all = `q ${q.describe()}, k ${k.describe()}, v ${v.describe()}`;
  const [batch, tq, dModel] = q.shape as [number, number, number];
  const [bk, tk, dk] = k.shape as [number, number, number];
  if (bk !== batch || v.shape[0] !== batch) throw new GpuError(`${OP}: ${all}: batch sizes differ`);
  if (v.shape[1] !== tk) throw new GpuError(`${OP}: ${all}: k and v have different lengths`);
  if (dk !== dModel || v.shape[2] !== dModel) throw new GpuError(`${OP}: ${all}: feature dims differ`);
  const { heads } = opts;
  if (!Number.isInteger(heads) || heads < 1) throw new GpuError(`${OP}: heads = ${heads} must be a positive integer`);
  if (dModel % heads !== 0) throw new GpuError(`${OP}: D = ${dModel} (${q.describe()}) is not divisible by heads = ${heads}`);
  const headDim = dModel / heads;
  const scale = opts.scale ?? 1 / Math.sqrt(headDim);
  if (!Number.isFinite(scale)) throw new GpuError(`${OP}: scale ${scale} must be finite`);
  let ms: AttnDims['maskStrides'] = null;
  if (opts.mask) {
    const m = opts.mask;
    m.assertAlive(OP);
    if (m.dtype !== 'f32') throw new GpuError(`${OP}: mask ${m.describe()} must be f32 (additive; use -inf for masked entries)`);
    if (m.requiresGrad) throw new GpuError(`${OP}: mask ${m.describe()} requires grad, but attention does not differentiate its mask`);
    ms = maskStrides(m, [batch, heads, tq, tk]);
  }
  const limit = q.gpu.limits.maxStorageBufferBindingSize;
  for (const t of [q, k, v, opts.mask]) {
    if (t && t.bytes > limit) throw new GpuError(`${OP}: ${t.describe()} is ${t.bytes} bytes, over this device's maxStorageBufferBindingSize ${limit}`);
  }
  return { batch, tq, tk, dModel, heads, headDim, causal: !!opts.causal, scale, maskStrides: ms };
}

/**
 * softmax(scale * q_h k_h^T + mask) v_h for every head h, with the heads re-interleaved:
 * q [B,Tq,D], k and v [B,Tk,D] -> [B,Tq,D]. Differentiable in q, k and v (each only when needed).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Tensor {
  const d = checkInputs(q, k, v, opts);
  const gpu = q.gpu;
  const kern = new AttentionKernels(gpu, attentionTiles(gpu, d.headDim), d);
  const mask = opts.mask ?? null;
  const chunks = batchChunks(d, gpu.limits.maxStorageBufferBindingSize, q, k).map((c) => ({ ...c, kern: kern.chunk(c.b0, c.batch) }));
  const o = empty([d.batch, d.tq, d.dModel], 'f32', gpu, OP);
  const lse = empty([d.batch, d.heads, d.tq], 'f32', gpu, `${OP} lse`);
  const probs = chunks.map((c) => {
    const p = empty(c.shape, 'f32', gpu, `${OP} probabilities`);
    c.kern.scores(bind(q), bind(k), bind(p), mask ? bind(mask) : null);
    c.kern.softmax(bind(p), bind(lse), false);
    c.kern.nn(bind(p), bind(v), bind(o), 1, 'P.V');
    return p;
  });
  const wantsGrad = isGradEnabled() && (q.requiresGrad || k.requiresGrad || v.requiresGrad);
  if (!wantsGrad) {
    for (const p of probs) p.dispose();
    lse.dispose();
    return o;
  }
  const probsBytes = probs.reduce((n, p) => n + p.bytes, 0);
  const keep = opts.keepProbs ?? probsBytes <= KEEP_PROBS_BYTES;
  return record(o, OP, [q, k, v], (needs, ctx) => {
    const [needQ, needK, needV] = needs as [boolean, boolean, boolean];
    const needDS = needQ || needK;
    // Saved: P (kept) or what recomputes it (q, k, mask, lse); v and O for dS; q for dK, k for dQ.
    const sp = keep ? probs.map((p) => ctx.save(p)) : null;
    const sq = !keep || needK ? ctx.save(q) : null;
    const sk = !keep || needQ ? ctx.save(k) : null;
    const sm = !keep && mask ? ctx.save(mask) : null;
    const sl = keep ? null : ctx.save(lse);
    const sv = needDS ? ctx.save(v) : null;
    const so = needDS ? ctx.save(o) : null;
    for (const p of probs) p.dispose();
    lse.dispose();
    return (g) => {
      const dv = needV ? empty(v.shape, 'f32', gpu, `${OP} dV`) : null;
      const dq = needQ ? empty(q.shape, 'f32', gpu, `${OP} dQ`) : null;
      const dk = needK ? empty(k.shape, 'f32', gpu, `${OP} dK`) : null;
      let delta: Tensor | null = null;
      if (needDS) {
        delta = empty([d.batch, d.heads, d.tq], 'f32', gpu, `${OP} delta`);
        kern.delta(bind(so!), bind(g), bind(delta));
      }
      chunks.forEach((c, ci) => {
        let p: Tensor;
        if (sp) {
          p = sp[ci]!.share();
        } else {
          // P again from recomputed scores and the forward's lse: bit-identical to the forward's P.
          p = empty(c.shape, 'f32', gpu, `${OP} backward probabilities`);
          c.kern.scores(bind(sq!), bind(sk!), bind(p), sm ? bind(sm) : null);
          c.kern.softmax(bind(p), bind(sl!), true);
        }
        if (dv) c.kern.tn(bind(p), bind(g), bind(dv), 1, 'dV');
        if (needDS) {
          // A kept P must survive (retainGraph may run backward again): dS goes to its own buffer.
          const ds = sp ? empty(c.shape, 'f32', gpu, `${OP} dS`) : p.share();
          c.kern.dScores(bind(g), bind(sv!), bind(delta!), bind(p), sp ? bind(ds) : null);
          if (dq) c.kern.nn(bind(ds), bind(sk!), bind(dq), d.scale, 'dQ');
          if (dk) c.kern.tn(bind(ds), bind(sq!), bind(dk), d.scale, 'dK');
          ds.dispose();
        }
        p.dispose();
      });
      delta?.dispose();
      return [dq, dk, dv];
    };
  });
}

/** Binds a tensor's storage at the tensor's size (its pooled buffer may be a larger bucket). */
function bind(t: Tensor): Binding {
  return { buffer: t.buffer, size: t.storage.bytes };
}

/**
 * The batch elements whose scores [chunk*heads, Tq, ceil4(Tk)] fit one storage binding, as
 * consecutive chunks (one chunk unless the device's binding limit is reached, e.g. ViT-L/14 at
 * batch 32 needs 137 MB of scores against 128 MiB).
 */
function batchChunks(d: AttnDims, limit: number, q: Tensor, k: Tensor): { b0: number; batch: number; shape: Shape }[] {
  const perElement = d.heads * d.tq * paddedKeys(d.tk) * 4;
  if (perElement > limit) {
    throw new GpuError(
      `${OP}: q ${q.describe()} and k ${k.describe()} need ${perElement} bytes of scores [heads,Tq,ceil4(Tk)] = ${shapeStr([d.heads, d.tq, paddedKeys(d.tk)])} per batch element, over this device's maxStorageBufferBindingSize ${limit}`,
    );
  }
  const per = Math.min(d.batch, Math.floor(limit / perElement));
  const out: { b0: number; batch: number; shape: Shape }[] = [];
  for (let b0 = 0; b0 < d.batch; b0 += per) {
    const batch = Math.min(per, d.batch - b0);
    out.push({ b0, batch, shape: [batch * d.heads, d.tq, paddedKeys(d.tk)] });
  }
  return out;
}

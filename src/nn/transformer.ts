// CLIP's pre-LN residual attention block, as OpenAI's ResidualAttentionBlock:
//   x = x + out_proj(attn(ln_1(x)));  x = x + c_proj(act(c_fc(ln_2(x))))
// with the one hook prompt methods need inside a layer: key/value rows computed from different
// input vectors than the stream holds (RPP's unshared prompts).
import { GpuError } from '../gpu/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { add, gelu, quickGelu } from '../ops/elementwise.js';
import { linear } from '../ops/matmul.js';
import { layerNorm } from '../ops/layernorm.js';
import { attention } from '../ops/attention.js';
import { slice } from '../ops/shape.js';
import { replaceRows } from './tokens.js';

export type Activation = 'quick_gelu' | 'gelu';

export interface BlockWeights {
  ln1w: Tensor;
  ln1b: Tensor;
  /** [3W, W]: rows 0:W project queries, W:2W keys, 2W:3W values. */
  inW: Tensor;
  inB: Tensor;
  outW: Tensor;
  outB: Tensor;
  ln2w: Tensor;
  ln2b: Tensor;
  fcW: Tensor;
  fcB: Tensor;
  projW: Tensor;
  projB: Tensor;
}

/** Key/value rows [start, start + n) computed from these input vectors ([n, W] or [B, n, W]). */
export interface KvOverride {
  start: number;
  k: Tensor;
  v: Tensor;
}

export interface BlockOptions {
  heads: number;
  causal: boolean;
  act: Activation;
  eps: number;
  kv?: KvOverride | null;
}

export function activation(x: Tensor, act: Activation): Tensor {
  return act === 'gelu' ? gelu(x) : quickGelu(x);
}

export function residualBlock(x: Tensor, w: BlockWeights, o: BlockOptions): Tensor {
  const width = x.shape[x.rank - 1]!;
  if (width % o.heads !== 0) throw new GpuError(`residual block: width ${width} is not divisible by ${o.heads} heads`);
  const h = layerNorm(x, w.ln1w, w.ln1b, o.eps);
  const qkv = linear(h, w.inW, w.inB);
  const q = slice(qkv, -1, 0, width);
  let k = slice(qkv, -1, width, 2 * width);
  let v = slice(qkv, -1, 2 * width, 3 * width);
  if (o.kv) {
    // The same frozen LayerNorm and projections as real tokens, applied to the prompt's own vectors.
    const kIn = layerNorm(o.kv.k, w.ln1w, w.ln1b, o.eps);
    const vIn = layerNorm(o.kv.v, w.ln1w, w.ln1b, o.eps);
    const kRows = linear(kIn, slice(w.inW, 0, width, 2 * width), slice(w.inB, 0, width, 2 * width));
    const vRows = linear(vIn, slice(w.inW, 0, 2 * width, 3 * width), slice(w.inB, 0, 2 * width, 3 * width));
    k = replaceRows(k, o.kv.start, kRows, 'prompt key rows');
    v = replaceRows(v, o.kv.start, vRows, 'prompt value rows');
  }
  const a = attention(q, k, v, { heads: o.heads, causal: o.causal });
  const x1 = add(x, linear(a, w.outW, w.outB));
  const m = linear(activation(linear(layerNorm(x1, w.ln2w, w.ln2b, o.eps), w.fcW, w.fcB), o.act), w.projW, w.projB);
  return add(x1, m);
}

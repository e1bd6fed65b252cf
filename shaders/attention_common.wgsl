// Shared prelude of the attention kernels (shaders/attention_*.wgsl). One uniform block serves all
// of them. Head-dim data (q, k, v, dO, outputs: [B,T,D] with head h at columns h*headDim..) is
// addressed in units of {{V}} (vec4<f32>, or f32 when headDim % 4 != 0): `rowv` = D / width is the
// row stride and `nv` = headDim / width the head width in those units. Scores live in a
// [batch*heads, Tq, tk4] buffer, tk4 = Tk rounded up to 4, read and written as vec4 along the keys;
// when the whole batch's scores exceed a storage binding, each dispatch covers a chunk of the batch
// starting at b0 (bh below indexes the chunk's scores, b is the global batch element).
struct Params {
  batch: u32, tq: u32, tk: u32, rowv: u32,
  heads: u32, tk4: u32, nv: u32, total: u32,
  // Tiles per (batch, head) along the two tiled axes of the lane grid; total = lanes in all.
  ta: u32, tb: u32, causal: u32,
  // Causal: query i sees key j iff j <= i + offset (offset = Tk - Tq: extra key rows come first).
  offset: i32,
  // ra, rb: rows (keys) per invocation along the tiled axes, at most the compiled register tile.
  // b0: first batch element of this dispatch (the scores buffer holds batch elements b0..b0+batch).
  scale: f32, ra: u32, rb: u32, b0: u32,
  // Element strides of the additive mask for (batch, head, query, key); 0 along broadcast dims.
  ms: vec4<u32>,
}

// Scores at or below this (after the additive mask: -inf, or a finite "minus infinity" such as
// -3.4e38) are masked: their probability is exactly 0. Stored scores use it as the masked marker.
// Finite, because WGSL compilers may assume that infinities never occur.
const MASKED: f32 = -1e30;

fn vdot(a: {{V}}, b: {{V}}) -> f32 { return {{VDOT}}; }

fn key_visible(i: u32, j: u32) -> bool { return u.causal == 0u || i32(j) <= i32(i) + u.offset; }

// Softmax probabilities of 4 stored scores given the row's log-sum-exp (masked -> exactly 0).
fn probs(s: vec4<f32>, lse: f32) -> vec4<f32> {
  return select(vec4<f32>(0.0), exp(s - vec4<f32>(lse)), s > vec4<f32>(MASKED));
}

// Workgroup tree reductions shared by the row kernels (softmax, layer norm, losses, distances).
// Prepended to a kernel's source. Every invocation of the workgroup must call these from uniform
// control flow; the combine order is fixed by the workgroup size, so results are bit-identical.
//
// Each call site of a kernel passes its own `slot` (0 or 1): its own region of workgroup memory.
// On Dawn's GL backend workgroupBarrier() becomes GLSL barrier() without a shared-memory fence, and
// Mesa sinks the read of a tree's result past the following barrier: with one region, a second
// tree's first writes overwrote the first tree's result before other SIMD batches read it
// (measured on llvmpipe: layer norm's variance tree clobbered its mean for invocations 8..15).
// With disjoint regions there is no write-after-read between trees to order.
const WG: u32 = {{WG}}u;
var<workgroup> tree_v: array<vec2<f32>, 2u * WG>;

// Sums v over the workgroup (two independent sums at once).
fn tree_sum2(slot: u32, lid: u32, v: vec2<f32>) -> vec2<f32> {
  let o = slot * WG;
  tree_v[o + lid] = v;
  for (var h = WG / 2u; h > 0u; h = h >> 1u) {
    workgroupBarrier();
    if (lid < h) { tree_v[o + lid] = tree_v[o + lid] + tree_v[o + lid + h]; }
  }
  workgroupBarrier();
  return tree_v[o];
}

fn tree_sum(slot: u32, lid: u32, v: f32) -> f32 {
  return tree_sum2(slot, lid, vec2<f32>(v, 0.0)).x;
}

fn is_neg_inf(v: f32) -> bool {
  return bitcast<u32>(v) == 0xff800000u;
}

// (m, s) with s = sum exp(v - m); s == 0 marks an empty state (no finite contribution). Equal
// maxima scale by exactly 1, so two -inf maxima never produce NaN.
fn lse_combine(x: vec2<f32>, y: vec2<f32>) -> vec2<f32> {
  if (y.y == 0.0) { return x; }
  if (x.y == 0.0) { return y; }
  let m = max(x.x, y.x);
  let sx = select(x.y * exp(x.x - m), x.y, x.x == m);
  let sy = select(y.y * exp(y.x - m), y.y, y.x == m);
  return vec2<f32>(m, sx + sy);
}

fn tree_lse(slot: u32, lid: u32, v: vec2<f32>) -> vec2<f32> {
  let o = slot * WG;
  tree_v[o + lid] = v;
  for (var h = WG / 2u; h > 0u; h = h >> 1u) {
    workgroupBarrier();
    if (lid < h) { tree_v[o + lid] = lse_combine(tree_v[o + lid], tree_v[o + lid + h]); }
  }
  workgroupBarrier();
  return tree_v[o];
}

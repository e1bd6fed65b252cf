// Workgroup tree reductions shared by the row kernels (softmax, layer norm, losses, distances).
// Prepended to a kernel's source. Every invocation of the workgroup must call these from uniform
// control flow; the combine order is fixed by the workgroup size, so results are bit-identical.
const WG: u32 = {{WG}}u;
var<workgroup> tree_v: array<vec2<f32>, WG>;

// Sums v over the workgroup (two independent sums at once).
fn tree_sum2(lid: u32, v: vec2<f32>) -> vec2<f32> {
  tree_v[lid] = v;
  for (var h = WG / 2u; h > 0u; h = h >> 1u) {
    workgroupBarrier();
    if (lid < h) { tree_v[lid] = tree_v[lid] + tree_v[lid + h]; }
  }
  workgroupBarrier();
  let r = tree_v[0];
  workgroupBarrier();
  return r;
}

fn tree_sum(lid: u32, v: f32) -> f32 {
  return tree_sum2(lid, vec2<f32>(v, 0.0)).x;
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

fn tree_lse(lid: u32, v: vec2<f32>) -> vec2<f32> {
  tree_v[lid] = v;
  for (var h = WG / 2u; h > 0u; h = h >> 1u) {
    workgroupBarrier();
    if (lid < h) { tree_v[lid] = lse_combine(tree_v[lid], tree_v[lid + h]); }
  }
  workgroupBarrier();
  let r = tree_v[0];
  workgroupBarrier();
  return r;
}

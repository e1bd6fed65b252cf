// Gradient-norm stage 2: one workgroup folds all partials in a fixed order (invocation t takes
// partials t, t+64, ...; then a fixed tree) and writes the total norm. No atomics.
struct Params { count: u32, _p0: u32, _p1: u32, _p2: u32, inv_p: f32, _q0: f32, _q1: f32, _q2: f32 }
@group(0) @binding(0) var<storage, read> partials: array<f32>;
@group(0) @binding(1) var<storage, read_write> norm: array<f32>;
@group(0) @binding(2) var<uniform> u: Params;

var<workgroup> red: array<f32, 64>;

fn combine(a: f32, b: f32) -> f32 { return {{COMBINE}}; }

fn finish(x: f32) -> f32 { return {{FINISH}}; }

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var k = lid; k < u.count; k += 64u) { acc = combine(acc, partials[k]); }
  red[lid] = acc;
  workgroupBarrier();
  for (var st = 32u; st > 0u; st = st >> 1u) {
    if (lid < st) { red[lid] = combine(red[lid], red[lid + st]); }
    workgroupBarrier();
  }
  if (lid == 0u) { norm[0] = finish(red[0]); }
}

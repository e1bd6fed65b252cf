// Sums a tensor over its broadcast dimensions down to a smaller shape (the backward of
// broadcasting). One invocation per output element, summing its inputs in a fixed order.
// Dimensions are given for the input (rank <= 8); `keep[d]` = 1 where the output keeps dim d.
struct Params {
  n_out: u32, rank: u32, count: u32, _p: u32,
  shape: array<vec4<u32>, 2>,
  keep: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> O: array<f32>;
@group(0) @binding(2) var<uniform> u: Params;

fn at(v: array<vec4<u32>, 2>, i: u32) -> u32 { return v[i / 4u][i % 4u]; }

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let o = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (o >= u.n_out) { return; }
  var acc = 0.0;
  for (var k = 0u; k < u.count; k++) {
    // Walk dims from the last: kept dims take digits of o, reduced dims take digits of k.
    var ro = o;
    var rk = k;
    var off = 0u;
    var stride = 1u;
    for (var d = i32(u.rank) - 1; d >= 0; d--) {
      let s = at(u.shape, u32(d));
      var c: u32;
      if (at(u.keep, u32(d)) == 1u) { c = ro % s; ro = ro / s; } else { c = rk % s; rk = rk / s; }
      off += c * stride;
      stride *= s;
    }
    acc += X[off];
  }
  O[o] = acc;
}

// Backward of a reduction over a [outer, n, inner] view: one invocation per input element e =
// (o, k, i), reading the output gradient of its row r = o * inner + i.
//   sum/mean: G[r] * scale;  max: G[r] where k is the row's first maximum, else 0;
//   logsumexp: G[r] * exp(X[e] - Y[r]) (the softmax along the reduced axis).
struct Params { n_el: u32, n: u32, inner: u32, _p: u32, scale: f32, _q0: f32, _q1: f32, _q2: f32 }
{{DECL}}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (e >= u.n_el) { return; }
  let i = e % u.inner;
  let ok = e / u.inner;
  let k = ok % u.n;
  let r = (ok / u.n) * u.inner + i;
  O[e] = {{EXPR}};
}

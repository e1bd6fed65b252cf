// Gradient of cross-entropy w.r.t. the logits, one invocation per element (i, k):
//   dx = g_i * (softmax(x_i)_k - [k == label_i]),  softmax = exp(x - m) / s from the saved row (m, s),
// with g_i = G[0] * scale (mean/sum: one upstream scalar) or G[i] * scale (reduction 'none').
struct Params { n_el: u32, c: u32, per_row: u32, _p: u32, scale: f32, _q0: f32, _q1: f32, _q2: f32 }
{{DECL}}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (e >= u.n_el) { return; }
  let i = e / u.c;
  let k = e % u.c;
  let g = select(G[0], G[i], u.per_row == 1u) * u.scale;
  let onehot = select(0.0, 1.0, i32(k) == LAB[i]);
  let p = LSE[i];
  DX[e] = g * (exp(X[e] - p.x) / p.y - onehot);
}

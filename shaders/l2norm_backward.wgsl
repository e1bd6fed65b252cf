// Backward of y = x / max(||x||, eps) per row, from y, the raw norm r and g:
//   r > eps: dx = (g - y * sum(g * y)) / r;   r <= eps (clamped): dx = g / eps.
struct Params { rows: u32, d: u32, eps: f32, _p: u32 }
@group(0) @binding(0) var<storage, read> Y: array<f32>;
@group(0) @binding(1) var<storage, read> R: array<f32>;
@group(0) @binding(2) var<storage, read> G: array<f32>;
@group(0) @binding(3) var<storage, read_write> DX: array<f32>;
@group(0) @binding(4) var<uniform> u: Params;

fn grad(j: u32, norm: f32, dot: f32) -> f32 {
  if (norm > u.eps) { return (G[j] - Y[j] * dot) / norm; }
  return G[j] / u.eps;
}

@compute @workgroup_size(64)
fn thread_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (r >= u.rows) { return; }
  let base = r * u.d;
  var t = 0.0;
  for (var k0 = 0u; k0 < u.d; k0 += 64u) {
    var b = 0.0;
    for (var k = k0; k < min(u.d, k0 + 64u); k++) { b += G[base + k] * Y[base + k]; }
    t += b;
  }
  let norm = R[r];
  for (var k = 0u; k < u.d; k++) { DX[base + k] = grad(base + k, norm, t); }
}

@compute @workgroup_size(WG)
fn wg_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= u.rows) { return; }
  let base = r * u.d;
  var t = 0.0;
  for (var k = lid; k < u.d; k += WG) { t += G[base + k] * Y[base + k]; }
  let dot = tree_sum(0u, lid, t);
  let norm = R[r];
  for (var k = lid; k < u.d; k += WG) { DX[base + k] = grad(base + k, norm, dot); }
}

// Row L2 normalisation over the last dim of [rows, d]: y = x / max(||x||, eps) (torch F.normalize).
// Writes the raw norm per row to R (the backward reads it). Entry points: thread_main (one
// invocation per row, sums of squares in blocks of 64), wg_main (one workgroup per row, tree sum).
struct Params { rows: u32, d: u32, eps: f32, _p: u32 }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<storage, read_write> R: array<f32>;
@group(0) @binding(3) var<uniform> u: Params;

@compute @workgroup_size(64)
fn thread_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (r >= u.rows) { return; }
  let base = r * u.d;
  var s = 0.0;
  for (var k0 = 0u; k0 < u.d; k0 += 64u) {
    var b = 0.0;
    for (var k = k0; k < min(u.d, k0 + 64u); k++) { let v = X[base + k]; b += v * v; }
    s += b;
  }
  let norm = sqrt(s);
  R[r] = norm;
  let den = max(norm, u.eps);
  for (var k = 0u; k < u.d; k++) { Y[base + k] = X[base + k] / den; }
}

@compute @workgroup_size(WG)
fn wg_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= u.rows) { return; }
  let base = r * u.d;
  var s = 0.0;
  for (var k = lid; k < u.d; k += WG) { let v = X[base + k]; s += v * v; }
  let norm = sqrt(tree_sum(0u, lid, s));
  if (lid == 0u) { R[r] = norm; }
  let den = max(norm, u.eps);
  for (var k = lid; k < u.d; k += WG) { Y[base + k] = X[base + k] / den; }
}

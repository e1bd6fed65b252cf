// Layer norm over the last dim of [rows, d]: two passes for the statistics (mean, then the mean of
// squared deviations: no E[x^2] - E[x]^2 cancellation), then y = (x - mean) * rstd * w + b.
// Writes (mean, rstd) per row when STATS (the backward reads them). Entry points: thread_main
// (one invocation per row, sums in blocks of 64), wg_main (one workgroup per row, tree sums).
struct Params { rows: u32, d: u32, eps: f32, _p: u32 }
{{DECL}}

fn affine(j: u32, v: f32) -> f32 {
  var y = v;
  {{SCALE}}
  {{SHIFT}}
  return y;
}

fn finish(r: u32, mean: f32, var_: f32) -> f32 {
  let rstd = 1.0 / sqrt(var_ + u.eps);
  {{WRITE_STATS}}
  return rstd;
}

@compute @workgroup_size(64)
fn thread_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (r >= u.rows) { return; }
  let base = r * u.d;
  var s = 0.0;
  for (var k0 = 0u; k0 < u.d; k0 += 64u) {
    var b = 0.0;
    for (var k = k0; k < min(u.d, k0 + 64u); k++) { b += X[base + k]; }
    s += b;
  }
  let mean = s / f32(u.d);
  var q = 0.0;
  for (var k0 = 0u; k0 < u.d; k0 += 64u) {
    var b = 0.0;
    for (var k = k0; k < min(u.d, k0 + 64u); k++) { let c = X[base + k] - mean; b += c * c; }
    q += b;
  }
  let rstd = finish(r, mean, q / f32(u.d));
  for (var k = 0u; k < u.d; k++) { Y[base + k] = affine(k, (X[base + k] - mean) * rstd); }
}

@compute @workgroup_size(WG)
fn wg_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= u.rows) { return; }
  let base = r * u.d;
  var s = 0.0;
  for (var k = lid; k < u.d; k += WG) { s += X[base + k]; }
  let mean = tree_sum(0u, lid, s) / f32(u.d);
  var q = 0.0;
  for (var k = lid; k < u.d; k += WG) { let c = X[base + k] - mean; q += c * c; }
  let var_ = tree_sum(1u, lid, q) / f32(u.d);
  let rstd = 1.0 / sqrt(var_ + u.eps);
  if (lid == 0u) { _ = finish(r, mean, var_); }
  for (var k = lid; k < u.d; k += WG) { Y[base + k] = affine(k, (X[base + k] - mean) * rstd); }
}

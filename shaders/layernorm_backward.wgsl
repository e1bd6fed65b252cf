// Input gradient of layer norm over the last dim, per row, from x, the saved (mean, rstd) and g:
//   xhat = (x - mean) * rstd,  gh = g * w,
//   dx = rstd * (gh - (sum(gh) + xhat * sum(gh * xhat)) / d)
// Entry points: thread_main (one invocation per row), wg_main (one workgroup per row).
struct Params { rows: u32, d: u32, _p0: u32, _p1: u32 }
{{DECL}}

fn gh(j: u32, idx: u32) -> f32 {
  return G[idx]{{TIMES_W}};
}

@compute @workgroup_size(64)
fn thread_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (r >= u.rows) { return; }
  let base = r * u.d;
  let st = S[r];
  var t = vec2<f32>(0.0, 0.0);
  for (var k0 = 0u; k0 < u.d; k0 += 64u) {
    var b = vec2<f32>(0.0, 0.0);
    for (var k = k0; k < min(u.d, k0 + 64u); k++) {
      let h = gh(k, base + k);
      b += vec2<f32>(h, h * (X[base + k] - st.x) * st.y);
    }
    t += b;
  }
  let inv_d = 1.0 / f32(u.d);
  for (var k = 0u; k < u.d; k++) {
    let xh = (X[base + k] - st.x) * st.y;
    DX[base + k] = st.y * (gh(k, base + k) - (t.x + xh * t.y) * inv_d);
  }
}

@compute @workgroup_size(WG)
fn wg_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= u.rows) { return; }
  let base = r * u.d;
  let st = S[r];
  var t = vec2<f32>(0.0, 0.0);
  for (var k = lid; k < u.d; k += WG) {
    let h = gh(k, base + k);
    t += vec2<f32>(h, h * (X[base + k] - st.x) * st.y);
  }
  let tot = tree_sum2(0u, lid, t);
  let inv_d = 1.0 / f32(u.d);
  for (var k = lid; k < u.d; k += WG) {
    let xh = (X[base + k] - st.x) * st.y;
    DX[base + k] = st.y * (gh(k, base + k) - (tot.x + xh * tot.y) * inv_d);
  }
}

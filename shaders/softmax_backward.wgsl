// Backward of softmax / log-softmax along one axis of a [outer, n, inner] view, from the saved
// output Y and the output gradient G:
//   softmax:     dx = y * (g - sum(g * y))
//   log-softmax: dx = g - exp(y) * sum(g)
// Entry points as in softmax.wgsl: thread_main (one invocation per row), wg_main (one workgroup
// per row with a tree sum).
struct Params { n_rows: u32, n: u32, inner: u32, _p: u32 }
@group(0) @binding(0) var<storage, read> Y: array<f32>;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read_write> DX: array<f32>;
@group(0) @binding(3) var<uniform> u: Params;

const LOG_SOFTMAX = {{LOG}};

fn term(j: u32) -> f32 {
  if (LOG_SOFTMAX) { return G[j]; }
  return G[j] * Y[j];
}

fn write(j: u32, t: f32) {
  if (LOG_SOFTMAX) {
    DX[j] = G[j] - exp(Y[j]) * t;
  } else {
    DX[j] = Y[j] * (G[j] - t);
  }
}

fn base_of(r: u32) -> u32 { return (r / u.inner) * u.n * u.inner + r % u.inner; }

@compute @workgroup_size(64)
fn thread_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (r >= u.n_rows) { return; }
  let base = base_of(r);
  var t = 0.0;
  for (var k0 = 0u; k0 < u.n; k0 += 64u) {
    var b = 0.0;
    for (var k = k0; k < min(u.n, k0 + 64u); k++) { b += term(base + k * u.inner); }
    t += b;
  }
  for (var k = 0u; k < u.n; k++) { write(base + k * u.inner, t); }
}

@compute @workgroup_size(WG)
fn wg_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= u.n_rows) { return; }
  let base = base_of(r);
  var t = 0.0;
  for (var k = lid; k < u.n; k += WG) { t += term(base + k * u.inner); }
  let tot = tree_sum(0u, lid, t);
  for (var k = lid; k < u.n; k += WG) { write(base + k * u.inner, tot); }
}

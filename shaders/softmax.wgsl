// Softmax / log-softmax along one axis of a [outer, n, inner] view, with an optional additive mask
// (broadcast to x through strides, -inf allowed) and an optional causal mask over the last two
// dims (query q sees keys k <= q + (Tk - Tq)). Max-subtracted: y = exp(v - m) / s with
// m = max v, s = sum exp(v - m). A row whose entries are all -inf gives softmax 0 and log-softmax
// -inf (instead of NaN). Entry points: thread_main (one invocation per row, short rows) and
// wg_main (one workgroup per row: per-invocation max and sum, then one (m, s) tree).
struct Params {
  n_rows: u32, n: u32, inner: u32, rank: u32,
  axis: u32, tq: u32, causal_off: i32, ninf: f32,
  shape: array<vec4<u32>, 2>,
  mstride: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<storage, read> X: array<f32>;
{{DECL}}
@group(0) @binding({{U_BIND}}) var<uniform> u: Params;

const LOG_SOFTMAX = {{LOG}};

fn at(v: array<vec4<u32>, 2>, i: u32) -> u32 { return v[i / 4u][i % 4u]; }

struct Row { base: u32, mbase: u32, lim: i32 }

fn row_setup(r: u32) -> Row {
  let o = r / u.inner;
  let i = r % u.inner;
  var mb = 0u;
  {{MASK_BASE}}
  var lim = 0;
  {{CAUSAL_LIM}}
  return Row(o * u.n * u.inner + i, mb, lim);
}

fn value(k: u32, row: Row) -> f32 {
  var v = X[row.base + k * u.inner];
  {{MASK_ADD}}
  {{CAUSAL_CUT}}
  return v;
}

fn write_row(row: Row, k: u32, m: f32, s: f32, inv: f32, ls: f32) {
  let v = value(k, row);
  if (LOG_SOFTMAX) {
    Y[row.base + k * u.inner] = select(v - m - ls, u.ninf, s == 0.0);
  } else {
    Y[row.base + k * u.inner] = select(exp(v - m) * inv, 0.0, s == 0.0);
  }
}

@compute @workgroup_size(64)
fn thread_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (r >= u.n_rows) { return; }
  let row = row_setup(r);
  var m = u.ninf;
  for (var k = 0u; k < u.n; k++) { m = max(m, value(k, row)); }
  var s = 0.0;
  if (!is_neg_inf(m)) {
    // Blocked: sums of 64 terms added to the total keep long rows accurate.
    for (var k0 = 0u; k0 < u.n; k0 += 64u) {
      var b = 0.0;
      for (var k = k0; k < min(u.n, k0 + 64u); k++) { b += exp(value(k, row) - m); }
      s += b;
    }
  }
  let inv = 1.0 / s;
  let ls = log(s);
  for (var k = 0u; k < u.n; k++) { write_row(row, k, m, s, inv, ls); }
}

@compute @workgroup_size(WG)
fn wg_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= u.n_rows) { return; }
  let row = row_setup(r);
  var m = u.ninf;
  for (var k = lid; k < u.n; k += WG) { m = max(m, value(k, row)); }
  var s = 0.0;
  if (!is_neg_inf(m)) {
    for (var k = lid; k < u.n; k += WG) { s += exp(value(k, row) - m); }
  }
  let st = tree_lse(0u, lid, vec2<f32>(m, s));
  let inv = 1.0 / st.y;
  let ls = log(st.y);
  for (var k = lid; k < u.n; k += WG) { write_row(row, k, st.x, st.y, inv, ls); }
}

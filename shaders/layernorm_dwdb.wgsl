// Weight and bias gradients of layer norm, as partial sums over chunks of rows: one invocation per
// (chunk c, column j) folds rows [c * chunk, (c + 1) * chunk) in order:
//   PW[c, j] = sum g * xhat,  PB[c, j] = sum g.
// With several chunks the partials [n_chunks, d] are then summed over chunks by the reduction
// kernels (fixed order, so the result is bit-identical run to run).
struct Params { rows: u32, d: u32, chunk: u32, n_out: u32 }
{{DECL}}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let o = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (o >= u.n_out) { return; }
  let j = o % u.d;
  let c = o / u.d;
  let r1 = min(u.rows, (c + 1u) * u.chunk);
  var w = 0.0;
  var b = 0.0;
  for (var r = c * u.chunk; r < r1; r++) {
    let g = G[r * u.d + j];
    {{ACC}}
  }
  {{STORE}}
}

// Attention "TN" kernel: per (batch, head), C[j, :] = scale * sum_i X[i,j] b_i over the queries,
// with X = P (dV = P^T dO) or dS (dK = scale * dS^T Q). A register tile of up to {{TM}} keys (u.ra
// at run time, a multiple of 4) x {{TNV}} head-dim elements of {{V}} per invocation; the query loop
// is a runtime loop in order, so each sum
// over queries is done by one invocation in a fixed order (deterministic, no atomics). Causal:
// queries before the first one that sees the tile's first key are skipped (their X are zero).
@group(0) @binding(0) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> B: array<{{V}}>;
@group(0) @binding(2) var<storage, read_write> C: array<{{V}}>;
@group(0) @binding(3) var<uniform> u: Params;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let inv = (wid.x + wid.y * nwg.x) * {{WG}}u + lid;
  if (inv >= u.total) { return; }
  let tc = inv % u.tb;
  let ta = (inv / u.tb) % u.ta;
  let bh = inv / (u.tb * u.ta);
  let h = bh % u.heads;
  let b = bh / u.heads + u.b0;
  let hoff = h * u.nv;
  let j0 = ta * u.ra;
  let c0 = tc * {{TNV}}u;
  let row4 = u.tk4 / 4u;
  var istart = 0u;
  if (u.causal != 0u) {
    istart = u32(clamp(i32(j0) - u.offset, 0, i32(u.tq)));
  }
{{PROLOGUE}}
  for (var i = istart; i < u.tq; i++) {
{{BODY}}
  }
{{EPILOGUE}}
}

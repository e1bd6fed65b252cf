// Attention "NN" kernel: per (batch, head), C[i, :] = scale * sum_j X[i,j] b_j over the keys, with
// X = P (the forward output P.V) or dS (dQ = scale * dS.K), stored [B*heads, Tq, tk4]. A register
// tile of up to {{TM}} rows (u.ra at run time) x {{TNV}} head-dim elements of {{V}} per invocation;
// the key loop is a runtime loop over groups of 4 (one vec4 load per row, rows routed into
// registers by selects). Causal: keys after the tile's last visible one are skipped (their X are
// zero anyway).
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
  let i0 = ta * u.ra;
  let c0 = tc * {{TNV}}u;
  let row4 = u.tk4 / 4u;
  var jend = u.tk;
  if (u.causal != 0u) {
    jend = u32(clamp(i32(min(i0 + u.ra, u.tq)) + u.offset, 0, i32(u.tk)));
  }
{{PROLOGUE}}
  for (var j = 0u; j < jend; j += 4u) {
{{BODY}}
  }
{{EPILOGUE}}
}

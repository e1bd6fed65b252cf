// Attention "NT" kernel: per (batch, head), X[i,j] = a_i . b_j over the head dim, for a register
// tile of up to {{TM}} rows x {{TN}} keys per invocation (u.ra x u.rb at run time; no workgroup
// memory, no barriers: register tiling is what wins on the CPU adapters). Rows are loaded in runtime
// loops and routed into the unrolled registers with selects, so the code has one load site per
// operand (see src/ops/attention-kernels.ts for why that matters on llvmpipe). Two epilogues:
//   scores: a = q (scaled), b = k -> S = scale q.k, with causal and padding keys marked MASKED;
//   dS:     a = dO, b = v        -> dS = P * (dO.v - delta), overwriting the stored P.
@group(0) @binding(0) var<storage, read> A: array<{{V}}>;
@group(0) @binding(1) var<storage, read> B: array<{{V}}>;
{{BINDINGS}}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let inv = (wid.x + wid.y * nwg.x) * {{WG}}u + lid;
  if (inv >= u.total) { return; }
  let tb = inv % u.tb;
  let ta = (inv / u.tb) % u.ta;
  let bh = inv / (u.tb * u.ta);
  let h = bh % u.heads;
  let b = bh / u.heads + u.b0;
  let hoff = h * u.nv;
  let i0 = ta * u.ra;
  let j0 = tb * u.rb;
{{PROLOGUE}}
  // Causal: a tile whose first key is after its last row's last visible key is all masked.
  let live = u.causal == 0u || i32(j0) <= i32(min(i0 + u.ra, u.tq)) - 1 + u.offset;
  if (live) {
    for (var v = 0u; v < u.nv; v++) {
{{BODY}}
    }
  }
{{EPILOGUE}}
}

// delta = rowsum(dO * O) per (batch, head, query): the softmax-backward term of dS
// (sum_j P_ij dP_ij equals dO_i . O_i). One invocation per row, head dim in {{V}} units.
@group(0) @binding(0) var<storage, read> O: array<{{V}}>;
@group(0) @binding(1) var<storage, read> DO: array<{{V}}>;
@group(0) @binding(2) var<storage, read_write> DELTA: array<f32>;
@group(0) @binding(3) var<uniform> u: Params;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * {{WG}}u + lid;   // (b * heads + h) * tq + i
  if (row >= u.total) { return; }
  let i = row % u.tq;
  let bh = row / u.tq;
  let h = bh % u.heads;
  let b = bh / u.heads;
  let base = (b * u.tq + i) * u.rowv + h * u.nv;
  var acc = 0.0;
  for (var c = 0u; c < u.nv; c++) {
    acc += vdot(DO[base + c], O[base + c]);
  }
  DELTA[row] = acc;
}

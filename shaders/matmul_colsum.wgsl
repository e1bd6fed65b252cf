// Column sums of a row-major [rows, N] matrix (the bias gradient): one invocation per column, rows
// summed in a fixed order, 64 at a time into a partial that is then added to the total (the error
// grows with 64 + rows/64 instead of rows). No atomics, so results are bit-identical run to run.
struct Params { rows: u32, N: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<storage, read> G: array<f32>;
@group(0) @binding(1) var<storage, read_write> O: array<f32>;
@group(0) @binding(2) var<uniform> u: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (n >= u.N) { return; }
  var total = 0.0;
  for (var r0 = 0u; r0 < u.rows; r0 += 64u) {
    let end = min(r0 + 64u, u.rows);
    var part = 0.0;
    for (var r = r0; r < end; r++) { part += G[r * u.N + n]; }
    total += part;
  }
  O[n] = total;
}

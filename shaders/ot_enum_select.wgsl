// Exact OT for n <= 8, pass 2 of 2 (one workgroup): the fixed-order argmin over the per-workgroup
// (cost, index) pairs of pass 1 (ties -> smaller index, so the identity wins any exact tie it is
// in), then the winning index is decoded and the plan P/n, loss and stats are written.
struct Params { n: u32, parts: u32, count: u32, canary: u32, inv_n: f32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<storage, read> C: array<f32>;
@group(0) @binding(1) var<storage, read> Part: array<u32>;
@group(0) @binding(2) var<storage, read_write> Plan: array<f32>;
@group(0) @binding(3) var<storage, read_write> Loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> Stats: array<f32>;
@group(0) @binding(5) var<uniform> u: Params;

var<workgroup> red_cost: array<f32, WG>;
var<workgroup> red_index: array<u32, WG>;
var<workgroup> permw: array<u32, 8>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let n = u.n;
  scan_nonfinite(lid, n * n);
  var best = pos_inf();
  var best_index = NONE;
  for (var k = lid; k < u.parts; k += WG) {
    let c = bitcast<f32>(Part[2u * k]);
    let i = Part[2u * k + 1u];
    if (better(c, i, best, best_index)) {
      best = c;
      best_index = i;
    }
  }
  red_cost[lid] = best;
  red_index[lid] = best_index;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) {
      let oc = red_cost[lid + stride];
      let oi = red_index[lid + stride];
      if (better(oc, oi, red_cost[lid], red_index[lid])) {
        red_cost[lid] = oc;
        red_index[lid] = oi;
      }
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    // All sums NaN: fall back to the identity (stats[6] flags the input).
    var rem = select(red_index[0], 0u, red_index[0] == NONE);
    var weight = 1u;
    for (var k = 2u; k < n; k++) { weight *= k; }
    var used = 0u;
    for (var i = 0u; i < n; i++) {
      let digit = rem / weight;
      rem = rem % weight;
      if (n - 1u - i > 0u) { weight = weight / (n - 1u - i); }
      var seen = 0u;
      var col = 0u;
      for (var e = 0u; e < n; e++) {
        if ((used & (1u << e)) == 0u) {
          if (seen == digit) { col = e; }
          seen++;
        }
      }
      used |= 1u << col;
      permw[i] = col;
    }
  }
  workgroupBarrier();
  write_exact_outputs(lid, n, u.inv_n, 0.0, f32(u.count), u.canary);
}

// Exact OT for n <= 8, pass 1 of 2: enumerate all n! permutations. Invocation k of the grid ranks
// the PER consecutive permutation indices [k*PER, (k+1)*PER): each index is decoded in the factorial
// number system (Lehmer code: digit i, of weight (n-1-i)!, picks the digit-th smallest unused column;
// index 0 = identity) while the row-order f32 sum of C[i, perm[i]] is accumulated. Each workgroup
// then reduces its 64 candidates to one (cost, index) pair with a fixed-order tree; ties go to the
// smaller index, so the order is total and the result bit-identical run to run.
struct Params { n: u32, count: u32, per: u32, _pad: u32 }
@group(0) @binding(0) var<storage, read> C: array<f32>;
@group(0) @binding(1) var<storage, read_write> Part: array<u32>;
@group(0) @binding(2) var<uniform> u: Params;

var<workgroup> red_cost: array<f32, WG>;
var<workgroup> red_index: array<u32, WG>;

fn permutation_sum(index: u32, n: u32) -> f32 {
  var weight = 1u;
  for (var k = 2u; k < n; k++) { weight *= k; }
  var rem = index;
  var used = 0u;
  var s = 0.0;
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
    s += C[i * n + col];
  }
  return s;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let first = (wg * WG + lid) * u.per;
  var best = pos_inf();
  var best_index = NONE;
  for (var k = 0u; k < u.per; k++) {
    let index = first + k;
    if (index < u.count) {
      // NaN sums never win (a row of NaN only leaves best_index at NONE).
      let s = permutation_sum(index, u.n);
      if (!is_nan(s) && better(s, index, best, best_index)) {
        best = s;
        best_index = index;
      }
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
    Part[2u * wg] = bitcast<u32>(red_cost[0]);
    Part[2u * wg + 1u] = red_index[0];
  }
}

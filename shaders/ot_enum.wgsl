// Exact OT for n <= 8, pass 1 of 2: enumerate all n! permutations in index order. A permutation's
// index is its lexicographic rank in the factorial number system (Lehmer code: digit i, of weight
// (n-1-i)!, picks the digit-th smallest column not used by rows 0..i-1; index 0 = identity). Its
// score is the row-order f32 sum of C[i, perm[i]]. Invocation g ranks the TAIL! consecutive indices
// [g TAIL!, (g+1) TAIL!) (TAIL = min(n, 4)): they share the first n - TAIL digits, so it decodes that
// prefix once (and its partial sum), then walks the TAIL! orders of the remaining TAIL columns. Each workgroup reduces
// its 64 candidates to one (cost, index) pair with a fixed-order tree; ties go to the smaller index,
// a total order, so the result is bit-identical run to run.
struct Params { n: u32, count: u32, tail: u32, tail_count: u32 }
@group(0) @binding(0) var<storage, read> C: array<f32>;
@group(0) @binding(1) var<storage, read_write> Part: array<u32>;
@group(0) @binding(2) var<uniform> u: Params;

var<workgroup> red_cost: array<f32, WG>;
var<workgroup> red_index: array<u32, WG>;

// The d-th (0-based) column whose bit is clear in `used`.
fn nth_free(used: u32, d: u32, n: u32) -> u32 {
  var seen = 0u;
  var col = 0u;
  for (var e = 0u; e < n; e++) {
    if ((used & (1u << e)) == 0u) {
      if (seen == d) { col = e; }
      seen++;
    }
  }
  return col;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = u.n;
  let tail = u.tail;
  let wg = wid.x + wid.y * nwg.x;
  let g = wg * WG + lid;
  let first = g * u.tail_count;
  var best = pos_inf();
  var best_index = NONE;
  if (first < u.count) {
    // Prefix: digits 0 .. n-tail-1 of `first` (weights (n-1)! .. tail!).
    var weight = 1u;
    for (var k = 2u; k < n; k++) { weight *= k; }
    var rem = first;
    var used = 0u;
    var prefix = 0.0;
    for (var i = 0u; i < n - tail; i++) {
      let digit = rem / weight;
      rem = rem % weight;
      weight = weight / (n - 1u - i);
      let col = nth_free(used, digit, n);
      used |= 1u << col;
      prefix += C[i * n + col];
    }
    if (tail == 4u) {
      // The 24 orders of the 4 remaining columns r0 < r1 < r2 < r3, as nested loops in lexicographic
      // order (so the index advances by one per leaf), with the partial sums shared along the tree
      // and the 16 costs they need loaded once.
      var r: array<u32, 4>;
      var m = 0u;
      for (var e = 0u; e < n; e++) {
        if ((used & (1u << e)) == 0u) {
          r[m] = e;
          m++;
        }
      }
      let base = n - 4u;
      var t: array<f32, 16>;
      for (var q = 0u; q < 4u; q++) {
        for (var c = 0u; c < 4u; c++) { t[q * 4u + c] = C[(base + q) * n + r[c]]; }
      }
      var index = first;
      for (var a = 0u; a < 4u; a++) {
        let s1 = prefix + t[a];
        for (var b = 0u; b < 4u; b++) {
          if (b == a) { continue; }
          let s2 = s1 + t[4u + b];
          for (var c = 0u; c < 4u; c++) {
            if (c == a || c == b) { continue; }
            let d = 6u - a - b - c;
            let s = (s2 + t[8u + c]) + t[12u + d];
            // NaN sums never win (if all are NaN, best_index stays NONE).
            if (!is_nan(s) && better(s, index, best, best_index)) {
              best = s;
              best_index = index;
            }
            index++;
          }
        }
      }
    } else {
      // n < 4: one invocation decodes all n! <= 6 indices.
      for (var k = 0u; k < u.tail_count; k++) {
        var tw = u.tail_count / tail;
        var trem = k;
        var tused = used;
        var s = prefix;
        for (var i = n - tail; i < n; i++) {
          let digit = trem / tw;
          trem = trem % tw;
          if (n - 1u - i > 0u) { tw = tw / (n - 1u - i); }
          let col = nth_free(tused, digit, n);
          tused |= 1u << col;
          s += C[i * n + col];
        }
        if (!is_nan(s) && better(s, first + k, best, best_index)) {
          best = s;
          best_index = first + k;
        }
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

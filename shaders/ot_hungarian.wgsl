// Exact OT for any n up to CAP - 1, in one workgroup: the Hungarian algorithm with shortest
// augmenting paths and dual potentials (Jonker-Volgenant / e-maxx form, as the host reference
// hungarian() in src/adapt/ot-host.ts). Rows are inserted one at a time; each insertion runs a
// Dijkstra over the columns in reduced costs C[i][j] - U[i] - V[j]. The columns are spread over the
// 64 invocations (column j belongs to invocation j % 64); one Dijkstra step is
//   A: each invocation relaxes its free columns from row i0 and proposes its smallest MINV (value,
//      column), ties -> smaller column;                                            barrier
//   B: every invocation scans the 64 proposals in the same order (so all agree on delta, j1 without
//      a second reduction), then updates the potentials of its own columns;  workgroupUniformLoad
// so the result does not depend on the workgroup size, and every choice is a fixed-order argmin.
// Work O(n^3), at most n(n+1)/2 steps of 2 barriers. After the last row: a duality certificate
// (min reduced cost, dual sum) and the tie rule "identity if its row-order f32 sum is <= the
// found one", which the enumeration kernel also follows.
struct Params { n: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<storage, read> C: array<f32>;
@group(0) @binding(1) var<storage, read_write> Plan: array<f32>;
@group(0) @binding(2) var<storage, read_write> Loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> Stats: array<f32>;
@group(0) @binding(4) var<uniform> u: Params;

const CAP: u32 = {{CAP}}u;
// Index 0 is the virtual row/column where each augmenting path starts; rows and columns are 1-based.
var<workgroup> U: array<f32, CAP>;
var<workgroup> V: array<f32, CAP>;
var<workgroup> MINV: array<f32, CAP>;
var<workgroup> WAY: array<u32, CAP>;
var<workgroup> P: array<u32, CAP>;   // P[j] = row matched to column j (0 = free)
var<workgroup> USED: array<u32, CAP>;
var<workgroup> permw: array<u32, CAP>;
var<workgroup> prop_value: array<f32, WG>;
var<workgroup> prop_col: array<u32, WG>;
var<workgroup> path_done: u32;
var<workgroup> gap_w: f32;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let n = u.n;
  let inf = pos_inf();
  scan_nonfinite(lid, n * n);
  for (var j = lid; j <= n; j += WG) {
    U[j] = 0.0;
    V[j] = 0.0;
    P[j] = 0u;
  }
  var steps = 0u;
  workgroupBarrier();
  for (var i = 1u; i <= n; i++) {
    for (var j = lid; j <= n; j += WG) {
      MINV[j] = inf;
      USED[j] = 0u;
      // Reset so a column never relaxed (all costs inf) links straight to the path start: the
      // matching stays a permutation whatever the values.
      WAY[j] = 0u;
    }
    if (lid == 0u) { P[0] = i; }
    workgroupBarrier();
    var j0 = 0u;
    // At most i steps reach a free column (i - 1 columns are matched); n + 1 bounds the loop anyway.
    for (var step = 0u; step <= n; step++) {
      steps++;
      if (j0 % WG == lid) { USED[j0] = 1u; }
      let i0 = P[j0];
      let ui = U[i0];
      let row = (i0 - 1u) * n;
      var bv = inf;
      var bj = NONE;
      for (var j = lid; j <= n; j += WG) {
        if (j == 0u || USED[j] != 0u) { continue; }
        let cur = nan_to_inf(C[row + j - 1u] - ui - V[j]);
        if (cur < MINV[j]) {
          MINV[j] = cur;
          WAY[j] = j0;
        }
        let mv = nan_to_inf(MINV[j]);
        if (better(mv, j, bv, bj)) {
          bv = mv;
          bj = j;
        }
      }
      prop_value[lid] = bv;
      prop_col[lid] = bj;
      workgroupBarrier();
      var delta = inf;
      var j1 = NONE;
      for (var t = 0u; t < WG; t++) {
        if (better(prop_value[t], prop_col[t], delta, j1)) {
          delta = prop_value[t];
          j1 = prop_col[t];
        }
      }
      for (var j = lid; j <= n; j += WG) {
        if (USED[j] != 0u) {
          U[P[j]] += delta;
          V[j] -= delta;
        } else {
          MINV[j] -= delta;
        }
      }
      j0 = j1;
      if (lid == 0u) { path_done = select(0u, 1u, P[j1] == 0u); }
      if (workgroupUniformLoad(&path_done) != 0u) { break; }
    }
    // Augment along the path (serial, at most n links).
    if (lid == 0u) {
      var jj = j0;
      for (var k = 0u; k <= n && jj != 0u; k++) {
        let prev = WAY[jj];
        P[jj] = P[prev];
        jj = prev;
      }
    }
    workgroupBarrier();
  }
  for (var j = lid; j <= n; j += WG) {
    if (j > 0u) { permw[P[j] - 1u] = j - 1u; }
  }
  // Certificate: with r = min reduced cost, U - max(0, -r) and V are dual feasible, so
  // found - optimum <= found - (sum U + sum V) + n max(0, -r) (0 in exact arithmetic).
  var rmin = inf;
  for (var j = lid; j <= n; j += WG) {
    if (j == 0u) { continue; }
    for (var r = 1u; r <= n; r++) {
      rmin = min(rmin, C[(r - 1u) * n + j - 1u] - U[r] - V[j]);
    }
  }
  prop_value[lid] = rmin;
  workgroupBarrier();
  if (lid == 0u) {
    var m = inf;
    for (var t = 0u; t < WG; t++) { m = min(m, prop_value[t]); }
    var dual = 0.0;
    for (var r = 1u; r <= n; r++) { dual += U[r]; }
    for (var j = 1u; j <= n; j++) { dual += V[j]; }
    var found = 0.0;
    var ident = 0.0;
    for (var r = 0u; r < n; r++) {
      found += C[r * n + permw[r]];
      ident += C[r * n + r];
    }
    if (ident <= found) {
      for (var r = 0u; r < n; r++) { permw[r] = r; }
      found = ident;
    }
    gap_w = found - dual + f32(n) * max(0.0, -m);
  }
  workgroupBarrier();
  write_exact_outputs(lid, n, gap_w, f32(steps));
}

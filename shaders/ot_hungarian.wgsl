// Exact OT for any n up to CAP - 1, in one workgroup: the Hungarian algorithm with shortest
// augmenting paths and dual potentials (Jonker-Volgenant / e-maxx form, as the host reference
// hungarian() in src/adapt/ot-host.ts). Rows are inserted one at a time; each insertion runs a
// Dijkstra over the columns in reduced costs C[i][j] - U[i] - V[j]. Column j belongs to invocation
// j % WG. One Dijkstra step is
//   A: each invocation relaxes its free columns from row i0 and proposes its smallest MINV (value,
//      column; ties -> smaller column);                                          barrier
//   B: every invocation scans the WG proposals in the same order (unrolled, generated in ot.ts), so all
//      agree on (delta, j1) with no second reduction, then updates the potentials of its own
//      columns;                                                                 workgroupUniformLoad
// Every choice is a total-order argmin, so the result does not depend on WG or on how the work is
// split into dispatches. Row i needs at most i steps: n(n+1)/2 steps in all, O(n) work each.
//
// Resumable: a dispatch runs at most max_steps steps (a loop budget, see ot_common.wgsl), keeping its
// state in workgroup memory and loading/storing it from State between dispatches (`first` starts
// from scratch, `last` finishes: permutation, duality certificate, the identity tie rule, outputs).
struct Params { n: u32, max_steps: u32, first: u32, last: u32, canary: u32, inv_n: f32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<storage, read> C: array<f32>;
@group(0) @binding(1) var<storage, read_write> State: array<u32>;
@group(0) @binding(2) var<storage, read_write> Plan: array<f32>;
@group(0) @binding(3) var<storage, read_write> Loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> Stats: array<f32>;
@group(0) @binding(5) var<uniform> u: Params;

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
var<workgroup> saved: array<u32, 5>;  // row, in_row, j0, steps, incomplete

// State: U, V, MINV (f32 bits), WAY, P, USED, each n + 1 words, then the 5 scalars of `saved`.
fn at(k: u32, j: u32, n: u32) -> u32 { return k * (n + 1u) + j; }

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let n = u.n;
  let inf = pos_inf();
  // row and in_row only change in uniform control flow from uniform values: they stay uniform.
  var row = 1u;
  var in_row = 0u;
  var j0 = 0u;
  var steps = 0u;
  if (u.first != 0u) {
    for (var j = lid; j <= n; j += WG) {
      U[j] = 0.0;
      V[j] = 0.0;
      P[j] = 0u;
    }
  } else {
    if (lid == 0u) {
      for (var k = 0u; k < 5u; k++) { saved[k] = State[at(6u, k, n)]; }
    }
    row = workgroupUniformLoad(&saved[0]);
    // Finished in an earlier dispatch: nothing to do until the finishing one.
    if (row > n && u.last == 0u) { return; }
    in_row = workgroupUniformLoad(&saved[1]);
    j0 = saved[2];
    steps = saved[3];
    if (lid == 0u && saved[4] != 0u) { atomicOr(&cut_flag, 1u); }
    for (var j = lid; j <= n; j += WG) {
      U[j] = bitcast<f32>(State[at(0u, j, n)]);
      V[j] = bitcast<f32>(State[at(1u, j, n)]);
      MINV[j] = bitcast<f32>(State[at(2u, j, n)]);
      WAY[j] = State[at(3u, j, n)];
      P[j] = State[at(4u, j, n)];
      USED[j] = State[at(5u, j, n)];
    }
  }
  workgroupBarrier();
  for (var s = 0u; s < u.max_steps; s++) {
    if (row > n) { break; }
    if (in_row == 0u) {
      for (var j = lid; j <= n; j += WG) {
        MINV[j] = inf;
        USED[j] = 0u;
        // Reset so a column never relaxed (all its costs inf) links straight to the path start:
        // the matching stays a permutation whatever the values.
        WAY[j] = 0u;
      }
      if (lid == 0u) { P[0] = row; }
      j0 = 0u;
      in_row = 1u;
      workgroupBarrier();
    }
    steps++;
    if (j0 % WG == lid) { USED[j0] = 1u; }
    let i0 = P[j0];
    let ui = U[i0];
    let crow = (i0 - 1u) * n;
    var bv = inf;
    var bj = NONE;
    for (var j = lid; j <= n; j += WG) {
      if (j == 0u || USED[j] != 0u) { continue; }
      let cur = nan_to_inf(C[crow + j - 1u] - ui - V[j]);
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
    // Unused columns always remain (at most row - 1 are matched), so j1 is a real column.
    var delta = inf;
    var j1 = NONE;
{{SCAN}}
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
    if (workgroupUniformLoad(&path_done) != 0u) {
      // Augment along the path (serial; its length is at most this row's step count).
      if (lid == 0u) {
        var jj = j0;
        for (var k = 0u; k <= n && jj != 0u; k++) {
          let prev = WAY[jj];
          P[jj] = P[prev];
          jj = prev;
        }
      }
      row++;
      in_row = 0u;
      workgroupBarrier();
    }
  }
  if (u.last == 0u) {
    for (var j = lid; j <= n; j += WG) {
      State[at(0u, j, n)] = bitcast<u32>(U[j]);
      State[at(1u, j, n)] = bitcast<u32>(V[j]);
      State[at(2u, j, n)] = bitcast<u32>(MINV[j]);
      State[at(3u, j, n)] = WAY[j];
      State[at(4u, j, n)] = P[j];
      State[at(5u, j, n)] = USED[j];
    }
    loop_canary(u.canary);
    workgroupBarrier();
    if (lid == 0u) {
      State[at(6u, 0u, n)] = row;
      State[at(6u, 1u, n)] = in_row;
      State[at(6u, 2u, n)] = j0;
      State[at(6u, 3u, n)] = steps;
      State[at(6u, 4u, n)] = atomicLoad(&cut_flag);
    }
    return;
  }
  scan_nonfinite(lid, n * n);
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
    for (var r = 1u; r <= n; r++) { dual += U[r] + V[r]; }
    var found = 0.0;
    var ident = 0.0;
    for (var r = 0u; r < n; r++) {
      found += C[r * n + permw[r]];
      ident += C[r * n + r];
    }
    // Tie rule shared with the enumeration: the identity whenever its row-order sum is <= the found one.
    if (ident <= found) {
      for (var r = 0u; r < n; r++) { permw[r] = r; }
      found = ident;
    }
    gap_w = found - dual + f32(n) * max(0.0, -m);
    // Still rows to insert: only if the dispatch plan was too short (a bug), reported as incomplete.
    if (row <= n) { atomicOr(&cut_flag, 1u); }
  }
  workgroupBarrier();
  write_exact_outputs(lid, n, u.inv_n, gap_w, f32(steps), u.canary);
}

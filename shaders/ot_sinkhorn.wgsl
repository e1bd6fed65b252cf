// Entropic OT, log-domain Sinkhorn with uniform marginals 1/n, in one workgroup (the host reference
// is sinkhornLog() in src/adapt/ot-host.ts): G = 0, then ITER times
//   F_i = eps (log(1/n) - LSE_j((G_j - C_ij) / eps)),   G_j = eps (log(1/n) - LSE_i((F_i - C_ij) / eps)),
// each LSE a two-pass (max, then sum of exp) serial loop of one invocation in index order, rows and
// columns spread over the 64 invocations; plan_ij = exp((F_i + G_j - C_ij) / eps). Work
// O(ITER n^2), 2 ITER barriers. Stats partials are summed by invocation 0 in invocation order, so
// the outputs are bit-identical run to run.
struct Params { n: u32, iterations: u32, eps: f32, inv_eps: f32 }
@group(0) @binding(0) var<storage, read> C: array<f32>;
@group(0) @binding(1) var<storage, read_write> Plan: array<f32>;
@group(0) @binding(2) var<storage, read_write> Loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> Stats: array<f32>;
@group(0) @binding(4) var<uniform> u: Params;

const CAP: u32 = {{CAP}}u;
var<workgroup> F: array<f32, CAP>;
var<workgroup> G: array<f32, CAP>;
var<workgroup> part_cost: array<f32, WG>;
var<workgroup> part_entropy: array<f32, WG>;
var<workgroup> part_trace: array<f32, WG>;
var<workgroup> part_marginal: array<f32, WG>;
var<workgroup> part_moved: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let n = u.n;
  let eps = u.eps;
  let inv_eps = u.inv_eps;
  let log_a = -log(f32(n));
  scan_nonfinite(lid, n * n);
  for (var j = lid; j < n; j += WG) { G[j] = 0.0; }
  workgroupBarrier();
  for (var it = 0u; it < u.iterations; it++) {
    for (var i = lid; i < n; i += WG) {
      var m = -pos_inf();
      for (var j = 0u; j < n; j++) { m = max(m, (G[j] - C[i * n + j]) * inv_eps); }
      var s = 0.0;
      for (var j = 0u; j < n; j++) { s += exp((G[j] - C[i * n + j]) * inv_eps - m); }
      F[i] = eps * (log_a - (m + log(s)));
    }
    workgroupBarrier();
    for (var j = lid; j < n; j += WG) {
      var m = -pos_inf();
      for (var i = 0u; i < n; i++) { m = max(m, (F[i] - C[i * n + j]) * inv_eps); }
      var s = 0.0;
      for (var i = 0u; i < n; i++) { s += exp((F[i] - C[i * n + j]) * inv_eps - m); }
      G[j] = eps * (log_a - (m + log(s)));
    }
    workgroupBarrier();
  }
  var cost = 0.0;
  var entropy = 0.0;
  var trace = 0.0;
  var marginal = 0.0;
  var moved = 0u;
  for (var i = lid; i < n; i += WG) {
    var row = 0.0;
    var diag = 0.0;
    var off_max = 0.0;
    for (var j = 0u; j < n; j++) {
      let logp = (F[i] + G[j] - C[i * n + j]) * inv_eps;
      let p = exp(logp);
      Plan[i * n + j] = p;
      row += p;
      cost += p * C[i * n + j];
      // 0 log 0 = 0: an underflowed entry contributes nothing.
      if (p > 0.0) { entropy -= p * logp; }
      if (j == i) { diag = p; } else { off_max = max(off_max, p); }
    }
    trace += diag;
    marginal = max(marginal, abs(row * f32(n) - 1.0));
    if (off_max > diag) { moved = 1u; }
  }
  part_cost[lid] = cost;
  part_entropy[lid] = entropy;
  part_trace[lid] = trace;
  part_marginal[lid] = marginal;
  part_moved[lid] = moved;
  workgroupBarrier();
  if (lid == 0u) {
    var c = 0.0;
    var h = 0.0;
    var tr = 0.0;
    var mg = 0.0;
    var mv = 0u;
    for (var t = 0u; t < WG; t++) {
      c += part_cost[t];
      h += part_entropy[t];
      tr += part_trace[t];
      mg = max(mg, part_marginal[t]);
      mv = mv | part_moved[t];
    }
    Loss[0] = c;
    Stats[0] = f32(mv);
    Stats[1] = c;
    Stats[2] = h;
    Stats[3] = 1.0 - tr;
    Stats[4] = mg;
    Stats[5] = 0.0;
    Stats[6] = f32(atomicLoad(&nonfinite_flag));
    Stats[7] = f32(u.iterations);
  }
}

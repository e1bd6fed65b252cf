// Entropic OT, log-domain Sinkhorn with uniform marginals 1/n, in one workgroup (the host reference
// is sinkhornLog() in src/adapt/ot-host.ts): G = 0, then `iterations` times
//   F_i = eps (log(1/n) - LSE_j((G_j - C_ij) / eps)),   G_j = eps (log(1/n) - LSE_i((F_i - C_ij) / eps)),
// each LSE a two-pass (max, then sum of exp) serial loop of one invocation in index order (4 terms
// per loop trip), rows and columns spread over the WG invocations; plan_ij = exp((F_i + G_j - C_ij) / eps).
// O(iterations n^2) work, 2 barriers per iteration. Stats partials are summed by invocation 0 in
// invocation order, so the outputs are bit-identical run to run.
// Resumable like ot_hungarian.wgsl: a dispatch runs `iterations` iterations within the loop budget
// (ot_common.wgsl), F and G persist in State between dispatches; `first` starts from G = 0 and
// `last` writes the plan, loss and stats.
struct Params { n: u32, iterations: u32, first: u32, last: u32, eps: f32, inv_eps: f32, canary: u32, _p0: u32 }
@group(0) @binding(0) var<storage, read> C: array<f32>;
@group(0) @binding(1) var<storage, read_write> State: array<u32>;
@group(0) @binding(2) var<storage, read_write> Plan: array<f32>;
@group(0) @binding(3) var<storage, read_write> Loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> Stats: array<f32>;
@group(0) @binding(5) var<uniform> u: Params;

const CAP: u32 = {{CAP}}u;
var<workgroup> F: array<f32, CAP>;
var<workgroup> G: array<f32, CAP>;
var<workgroup> part_cost: array<f32, WG>;
var<workgroup> part_entropy: array<f32, WG>;
var<workgroup> part_trace: array<f32, WG>;
var<workgroup> part_marginal: array<f32, WG>;
var<workgroup> part_moved: array<u32, WG>;
var<workgroup> saved: array<u32, 2>;  // iterations done, incomplete

// x_k = (H[k] - C[base + k * stride]) * inv_eps for k < n; returns LSE_k x_k.
// Both passes take 4 terms per loop trip (the loop budget), then the n % 4 tail.
fn lse_row(i: u32, n: u32, inv_eps: f32) -> f32 {
  let b = i * n;
  let q = n & ~3u;
  var m = -pos_inf();
  for (var j = 0u; j < q; j += 4u) {
    m = max(m, (G[j] - C[b + j]) * inv_eps);
    m = max(m, (G[j + 1u] - C[b + j + 1u]) * inv_eps);
    m = max(m, (G[j + 2u] - C[b + j + 2u]) * inv_eps);
    m = max(m, (G[j + 3u] - C[b + j + 3u]) * inv_eps);
  }
  if (q < n) { m = max(m, (G[q] - C[b + q]) * inv_eps); }
  if (q + 1u < n) { m = max(m, (G[q + 1u] - C[b + q + 1u]) * inv_eps); }
  if (q + 2u < n) { m = max(m, (G[q + 2u] - C[b + q + 2u]) * inv_eps); }
  var s = 0.0;
  for (var j = 0u; j < q; j += 4u) {
    s += exp((G[j] - C[b + j]) * inv_eps - m);
    s += exp((G[j + 1u] - C[b + j + 1u]) * inv_eps - m);
    s += exp((G[j + 2u] - C[b + j + 2u]) * inv_eps - m);
    s += exp((G[j + 3u] - C[b + j + 3u]) * inv_eps - m);
  }
  if (q < n) { s += exp((G[q] - C[b + q]) * inv_eps - m); }
  if (q + 1u < n) { s += exp((G[q + 1u] - C[b + q + 1u]) * inv_eps - m); }
  if (q + 2u < n) { s += exp((G[q + 2u] - C[b + q + 2u]) * inv_eps - m); }
  return m + log(s);
}

fn lse_col(j: u32, n: u32, inv_eps: f32) -> f32 {
  let q = n & ~3u;
  var m = -pos_inf();
  for (var i = 0u; i < q; i += 4u) {
    m = max(m, (F[i] - C[i * n + j]) * inv_eps);
    m = max(m, (F[i + 1u] - C[(i + 1u) * n + j]) * inv_eps);
    m = max(m, (F[i + 2u] - C[(i + 2u) * n + j]) * inv_eps);
    m = max(m, (F[i + 3u] - C[(i + 3u) * n + j]) * inv_eps);
  }
  if (q < n) { m = max(m, (F[q] - C[q * n + j]) * inv_eps); }
  if (q + 1u < n) { m = max(m, (F[q + 1u] - C[(q + 1u) * n + j]) * inv_eps); }
  if (q + 2u < n) { m = max(m, (F[q + 2u] - C[(q + 2u) * n + j]) * inv_eps); }
  var s = 0.0;
  for (var i = 0u; i < q; i += 4u) {
    s += exp((F[i] - C[i * n + j]) * inv_eps - m);
    s += exp((F[i + 1u] - C[(i + 1u) * n + j]) * inv_eps - m);
    s += exp((F[i + 2u] - C[(i + 2u) * n + j]) * inv_eps - m);
    s += exp((F[i + 3u] - C[(i + 3u) * n + j]) * inv_eps - m);
  }
  if (q < n) { s += exp((F[q] - C[q * n + j]) * inv_eps - m); }
  if (q + 1u < n) { s += exp((F[q + 1u] - C[(q + 1u) * n + j]) * inv_eps - m); }
  if (q + 2u < n) { s += exp((F[q + 2u] - C[(q + 2u) * n + j]) * inv_eps - m); }
  return m + log(s);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let n = u.n;
  let eps = u.eps;
  let inv_eps = u.inv_eps;
  let log_a = -log(f32(n));
  var done = 0u;
  if (u.first != 0u) {
    for (var j = lid; j < n; j += WG) { G[j] = 0.0; }
  } else {
    for (var j = lid; j < n; j += WG) {
      F[j] = bitcast<f32>(State[j]);
      G[j] = bitcast<f32>(State[n + j]);
    }
    if (lid == 0u) {
      done = State[2u * n];
      if (State[2u * n + 1u] != 0u) { atomicOr(&cut_flag, 1u); }
    }
  }
  workgroupBarrier();
  for (var it = 0u; it < u.iterations; it++) {
    for (var i = lid; i < n; i += WG) { F[i] = eps * (log_a - lse_row(i, n, inv_eps)); }
    workgroupBarrier();
    for (var j = lid; j < n; j += WG) { G[j] = eps * (log_a - lse_col(j, n, inv_eps)); }
    workgroupBarrier();
    done++;
  }
  if (u.last == 0u) {
    for (var j = lid; j < n; j += WG) {
      State[j] = bitcast<u32>(F[j]);
      State[n + j] = bitcast<u32>(G[j]);
    }
    loop_canary(u.canary);
    workgroupBarrier();
    if (lid == 0u) {
      State[2u * n] = done;
      State[2u * n + 1u] = atomicLoad(&cut_flag);
    }
    return;
  }
  scan_nonfinite(lid, n * n);
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
  loop_canary(u.canary);
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
    // Counted by the loop itself (a cut-short loop shows here as well as in stats[8]).
    Stats[7] = f32(done);
    Stats[8] = f32(atomicLoad(&cut_flag));
  }
}

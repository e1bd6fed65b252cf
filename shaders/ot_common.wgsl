// Shared by the OT kernels (prepended to ot_enum, ot_enum_select, ot_hungarian and ot_sinkhorn);
// the including kernel declares C (the cost matrix, read) and its outputs.
// Stats layout (f32[9], see OT_STAT in src/adapt/ot.ts):
//   0 nonIdentity, 1 cost <plan, C>, 2 plan entropy, 3 off-diagonal mass 1 - trace(plan),
//   4 max relative row-marginal error, 5 duality-gap bound (Hungarian), 6 C has a non-finite entry,
//   7 solver steps, 8 incomplete (a loop was cut short by the device).
//
// Loop budget: Mesa's llvmpipe/lavapipe (gallivm) give every invocation one counter of 65535 loop
// iterations, shared by all its loops (each loop entry costs one more); when it runs out every loop
// exits at its next check, silently. The long-running solvers are therefore split into dispatches
// whose worst-case loop count stays under a budget (src/adapt/ot.ts), and each ends with a canary loop
// of a uniform trip count 2: if it runs once, the counter ran out and stats[8] is set.
const WG: u32 = {{WG}}u;
const NONE: u32 = 0xffffffffu;

// A private variable, not a constant: WGSL const-evaluation rejects a bitcast to infinity.
var<private> INF_BITS: u32 = 0x7f800000u;
fn pos_inf() -> f32 { return bitcast<f32>(INF_BITS); }

fn finite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }

fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }

// NaN compares false with everything; mapping it to +inf keeps argmin scans total and terminating.
fn nan_to_inf(x: f32) -> f32 { return select(x, pos_inf(), is_nan(x)); }

// Strict order on (value, index): smaller value, then smaller index. Values here are never NaN.
fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool { return v < bv || (v == bv && i < bi); }

var<workgroup> nonfinite_flag: atomic<u32>;

// Every invocation sets the flag if its strided share of C holds a NaN or an infinity (OR is
// order-independent, so this is deterministic). Callers put a barrier before reading it.
fn scan_nonfinite(lid: u32, nn: u32) {
  var bad = 0u;
  for (var k = lid; k < nn; k += WG) {
    if (!finite(C[k])) { bad = 1u; }
  }
  if (bad != 0u) { atomicOr(&nonfinite_flag, 1u); }
}

var<workgroup> cut_flag: atomic<u32>;

// Runs a loop of `trips` (a uniform equal to 2) iterations; fewer means the loop counter ran out.
fn loop_canary(trips: u32) {
  var k = 0u;
  for (var t = 0u; t < trips; t++) { k++; }
  if (k != trips) { atomicOr(&cut_flag, 1u); }
}

// Gradient-norm stage 1: one partial per workgroup over up to K gradient windows per dispatch.
// A workgroup reduces CHUNK = 64 * ITEMS consecutive elements of one window: each invocation
// folds a fixed strided set, then a fixed tree in workgroup memory, so the partial (and the norm
// built from the partials) is bit-identical run to run. No atomics.
// TERM maps an element (|g|^2, |g|, |g|^p); COMBINE folds (sum, or max for the infinity norm).
struct Slot { n: u32, wg0: u32, _a: u32, _b: u32 }
struct Params {
  nslots: u32, total: u32, pbase: u32, _p0: u32,
  p: f32, _q0: f32, _q1: f32, _q2: f32,
  slots: array<Slot, {{K}}>,
}
{{BINDINGS}}
@group(0) @binding({{UNIFORM}}) var<uniform> u: Params;

var<workgroup> red: array<f32, 64>;

fn load(s: u32, i: u32) -> f32 {
  var v = 0.0;
  switch s {
{{CASES}}
    default: {}
  }
  return v;
}

fn term(x: f32) -> f32 {
  let a = abs(x);
  return {{TERM}};
}

fn combine(a: f32, b: f32) -> f32 { return {{COMBINE}}; }

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let live = wg < u.total;
  var acc = 0.0;
  if (live) {
    var s = 0u;
    for (var k = 1u; k < u.nslots; k++) { if (wg >= u.slots[k].wg0) { s = k; } }
    let n = u.slots[s].n;
    let base = (wg - u.slots[s].wg0) * (64u * {{ITEMS}}u);
    for (var k = 0u; k < {{ITEMS}}u; k++) {
      let i = base + k * 64u + lid;
      if (i < n) { acc = combine(acc, term(load(s, i))); }
    }
  }
  red[lid] = acc;
  workgroupBarrier();
  for (var st = 32u; st > 0u; st = st >> 1u) {
    if (lid < st) { red[lid] = combine(red[lid], red[lid + st]); }
    workgroupBarrier();
  }
  if (live && lid == 0u) { partials[u.pbase + wg] = red[0]; }
}

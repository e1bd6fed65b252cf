// One SGD step (torch.optim.SGD semantics) over up to K parameter windows ("slots") per dispatch.
// Each slot owns a contiguous range of workgroups starting at slots[s].wg0; one invocation updates one
// element in place. Buffers are generated per slot: P (param, rw), G (grad, read) and,
// with momentum, B (momentum buffer, rw). The learning rate arrives in the uniform block every step.
struct Slot { n: u32, wg0: u32, first: u32, _pad: u32 }
struct Params {
  nslots: u32, total: u32, neg_lr: f32, wd: f32,
  momentum: f32, one_minus_damp: f32, nesterov: u32, has_momentum: u32,
  slots: array<Slot, {{K}}>,
}
{{BINDINGS}}
@group(0) @binding({{UNIFORM}}) var<uniform> u: Params;

struct Cell { p: f32, g: f32, s0: f32, s1: f32, s2: f32 }

fn update(c: Cell, first: u32) -> Cell {
  var r = c;
  var d = c.g;
  // torch skips the add when weight_decay == 0 (matters only for non-finite params).
  if (u.wd != 0.0) { d = d + u.wd * c.p; }
  if (u.has_momentum != 0u) {
    // First step: buf = clone(d); afterwards buf = momentum * buf + (1 - dampening) * d.
    var buf = d;
    if (first == 0u) { buf = c.s0 * u.momentum + u.one_minus_damp * d; }
    r.s0 = buf;
    if (u.nesterov != 0u) { d = d + u.momentum * buf; } else { d = buf; }
  }
  r.p = c.p + u.neg_lr * d;
  return r;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  if (wg >= u.total) { return; }
  var s = 0u;
  for (var k = 1u; k < u.nslots; k++) { if (wg >= u.slots[k].wg0) { s = k; } }
  let slot = u.slots[s];
  let i = (wg - slot.wg0) * 64u + lid;
  if (i >= slot.n) { return; }
  switch s {
{{CASES}}
    default: {}
  }
}

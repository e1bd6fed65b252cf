// One Adam / AdamW step (torch.optim.Adam / AdamW, single-tensor path) over up to {{K}} parameter
// windows per dispatch; layout as optim_sgd.wgsl. Per slot: P (rw), G (read), M = exp_avg (rw),
// V = exp_avg_sq (rw) and, with amsgrad, X = max_exp_avg_sq (rw). Bias corrections depend on each
// parameter's own step count, so they come per slot; the host computes them in float64 as torch does.
// Adam: wd > 0 adds wd * p to the gradient (decay = 1). AdamW: wd = 0, decay = 1 - lr * weight_decay.
struct Slot { n: u32, wg0: u32, neg_step_size: f32, bc2_sqrt: f32 }
struct Params {
  nslots: u32, total: u32, wd: f32, decay: f32,
  beta1: f32, one_minus_beta1: f32, beta2: f32, one_minus_beta2: f32,
  eps: f32, amsgrad: u32, _p0: u32, _p1: u32,
  slots: array<Slot, {{K}}>,
}
{{BINDINGS}}
@group(0) @binding({{UNIFORM}}) var<uniform> u: Params;

struct Cell { p: f32, g: f32, s0: f32, s1: f32, s2: f32 }

fn update(c: Cell, slot: Slot) -> Cell {
  var r = c;
  var g = c.g;
  if (u.wd != 0.0) { g = g + u.wd * c.p; }
  var p = c.p;
  if (u.decay != 1.0) { p = p * u.decay; }
  // Operation order mirrors torch: exp_avg.mul_(b1).add_(g, alpha=1-b1);
  // exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2); denom = sqrt(v) / sqrt(bc2) + eps;
  // p.addcdiv_(m, denom, value=-lr/bc1), i.e. p + (value * m) / denom.
  let m = c.s0 * u.beta1 + u.one_minus_beta1 * g;
  let v = c.s1 * u.beta2 + (u.one_minus_beta2 * g) * g;
  var vh = v;
  if (u.amsgrad != 0u) { vh = max(c.s2, v); r.s2 = vh; }
  let denom = sqrt(vh) / slot.bc2_sqrt + u.eps;
  r.p = p + (slot.neg_step_size * m) / denom;
  r.s0 = m;
  r.s1 = v;
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

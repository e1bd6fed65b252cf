// Gradient clipping stage 3: scales up to K gradient windows in place by
// min(1, max_norm / (norm + 1e-6)), read from the norm the previous stage wrote (no host round trip).
// A scale of exactly 1 writes nothing (g * 1 == g).
struct Slot { n: u32, wg0: u32, _a: u32, _b: u32 }
struct Params { nslots: u32, total: u32, max_norm: f32, _p0: u32, slots: array<Slot, {{K}}> }
{{BINDINGS}}
@group(0) @binding({{UNIFORM}}) var<uniform> u: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  if (wg >= u.total) { return; }
  var s = 0u;
  for (var k = 1u; k < u.nslots; k++) { if (wg >= u.slots[k].wg0) { s = k; } }
  let i = (wg - u.slots[s].wg0) * 64u + lid;
  if (i >= u.slots[s].n) { return; }
  let scale = min(1.0, u.max_norm / (norm[0] + 1e-6));
  if (scale >= 1.0) { return; }
  switch s {
{{CASES}}
    default: {}
  }
}

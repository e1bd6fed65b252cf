// Fills a tensor with one value (written as raw bits so one kernel serves f32, i32 and u32).
struct Params { n: u32, bits: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<uniform> u: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (i < u.n) { out[i] = u.bits; }
}

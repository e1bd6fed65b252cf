// Strided copy of 32-bit words, the one kernel behind permute, slice, concat, patchify and their
// backwards. Invocation i visits linear index l = l0 + i of an iteration space (rank <= 6, row-major);
// its coordinates c give the source element s_off + sum c*ss and the destination d_off + sum c*ds.
// Both are global element indices; the buffers are bound as windows [s_base, s_base + s_len) and
// [d_base, d_base + d_len) (tensors over maxStorageBufferBindingSize), and an element whose source or
// destination lies outside its window is left to the dispatch that binds it (u32 wrap-around makes
// "below the base" fail the same test as "past the end").
struct Params {
  n: u32, rank: u32, l0: u32, _p0: u32,
  s_off: u32, s_base: u32, s_len: u32, _p1: u32,
  d_off: u32, d_base: u32, d_len: u32, _p2: u32,
  shape: array<vec4<u32>, 2>,
  ss: array<vec4<u32>, 2>,
  ds: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<storage, read> X: array<u32>;
@group(0) @binding(1) var<storage, read_write> O: array<u32>;
@group(0) @binding(2) var<uniform> u: Params;

fn at(v: array<vec4<u32>, 2>, i: u32) -> u32 { return v[i / 4u][i % 4u]; }

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (i >= u.n) { return; }
  var rem = u.l0 + i;
  var s = u.s_off;
  var d = u.d_off;
  for (var k = i32(u.rank) - 1; k >= 0; k--) {
    let e = at(u.shape, u32(k));
    let c = rem % e;
    rem = rem / e;
    s += c * at(u.ss, u32(k));
    d += c * at(u.ds, u32(k));
  }
  let sl = s - u.s_base;
  let dl = d - u.d_base;
  if (sl >= u.s_len || dl >= u.d_len) { return; }
  O[dl] = X[sl];
}

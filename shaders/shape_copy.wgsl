// Strided copy of 32-bit words, the one kernel (one pipeline per rank) behind permute, slice, concat, patchify and their
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
// WORD is u32, or vec4<u32> when the innermost dim is contiguous on both sides and everything is a
// multiple of 4 words (then all indices, offsets and windows are in units of 4 words).
@group(0) @binding(0) var<storage, read> X: array<{{WORD}}>;
@group(0) @binding(1) var<storage, read_write> O: array<{{WORD}}>;
@group(0) @binding(2) var<uniform> u: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (i >= u.n) { return; }
  var rem = u.l0 + i;
  var s = u.s_off;
  var d = u.d_off;
  var c = 0u;
  // Coordinates from the innermost dim out, unrolled for this kernel's rank (constant indices into
  // the uniform arrays: a loop with dynamic indices is several times slower on llvmpipe).
{{DECODE}}
  let sl = s - u.s_base;
  let dl = d - u.d_base;
  if (sl >= u.s_len || dl >= u.d_len) { return; }
  O[dl] = X[sl];
}

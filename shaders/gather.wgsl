// Row gather of 32-bit words: out[a, k, j] = X[a, idx[p], j] with p = a * idx_outer + k (idx_outer = 0:
// one index list for every a, as index_select and embedding; idx_outer = m: one list per a, as
// gatherRows). Output elements [o_start, o_start + count) are bound as one window starting at o_start;
// X is bound as the window [x_base, x_base + x_len) and an element whose source lies outside it is
// written by the dispatch that binds that source. Out-of-range indices give 0 (written by the dispatch
// flagged zero_invalid, the first X window), never a clamped row. WORD is u32, or vec4<u32> when the
// row length is a multiple of 4 (then inner, o_start and the window are in units of 4 words).
struct Params {
  count: u32, o_start: u32, inner: u32, m: u32,
  n: u32, idx_outer: u32, zero_invalid: u32, _p0: u32,
  x_base: u32, x_len: u32, _p1: u32, _p2: u32,
}
@group(0) @binding(0) var<storage, read> X: array<{{WORD}}>;
@group(0) @binding(1) var<storage, read> I: array<i32>;
@group(0) @binding(2) var<storage, read_write> O: array<{{WORD}}>;
@group(0) @binding(3) var<uniform> u: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (i >= u.count) { return; }
  let o = u.o_start + i;
  let j = o % u.inner;
  let r = o / u.inner;
  let k = r % u.m;
  let a = r / u.m;
  let id = I[a * u.idx_outer + k];
  if (id < 0 || u32(id) >= u.n) {
    if (u.zero_invalid == 1u) { O[i] = {{WORD}}(); }
    return;
  }
  let sl = (a * u.n + u32(id)) * u.inner + j - u.x_base;
  if (sl >= u.x_len) { return; }
  O[i] = X[sl];
}

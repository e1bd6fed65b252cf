// Pass 2 of the deterministic scatter-add: D[a, idx[p], j] += sum of G[a, k', j] over the positions
// p' = a * idx_outer + k' that hold the same index, in ascending order (the chain from gather_link).
// One invocation per G element; only the first position of each distinct index does work, so every
// D element has one writer and a fixed summation order (bit-identical run to run). D is bound as the
// window [d_base, d_base + d_len) and G as [g_base, g_base + g_len); with several G windows the
// dispatches run in ascending window order and each resumes from the partial sum stored in D, which
// gives exactly the same additions, in the same order, as one unwindowed pass. VAL is f32, or
// vec4<f32> when the row length is a multiple of 4 (inner and the windows then count vec4s; each lane
// adds in the same order as the scalar kernel, so both give the same bits).
struct Params {
  count: u32, inner: u32, m: u32, n: u32,
  idx_outer: u32, use_link: u32, _p0: u32, _p1: u32,
  d_base: u32, d_len: u32, g_base: u32, g_len: u32,
}
@group(0) @binding(0) var<storage, read> G: array<{{VAL}}>;
@group(0) @binding(1) var<storage, read> I: array<i32>;
@group(0) @binding(2) var<storage, read> Lk: array<u32>;
@group(0) @binding(3) var<storage, read_write> D: array<{{VAL}}>;
@group(0) @binding(4) var<uniform> u: Params;

const NONE: u32 = 0x7fffffffu;
const FIRST: u32 = 0x80000000u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (i >= u.count) { return; }
  let j = i % u.inner;
  let r = i / u.inner;
  let k = r % u.m;
  let a = r / u.m;
  let p0 = a * u.idx_outer;
  let p = p0 + k;
  let id = I[p];
  if (id < 0 || u32(id) >= u.n) { return; }
  // With one position per list (m == 1) there is no chain and no link table.
  var link = FIRST | NONE;
  if (u.use_link == 1u) { link = Lk[p]; }
  if ((link & FIRST) == 0u) { return; }
  let tl = (a * u.n + u32(id)) * u.inner + j - u.d_base;
  if (tl >= u.d_len) { return; }
  var acc = D[tl];
  var touched = false;
  var q = p;
  loop {
    let s = (a * u.m + (q - p0)) * u.inner + j;
    if (s >= u.g_base) {
      if (s - u.g_base >= u.g_len) { break; }
      acc += G[s - u.g_base];
      touched = true;
    }
    let nx = link & NONE;
    if (nx == NONE) { break; }
    q = nx;
    link = Lk[q];
  }
  if (touched) { D[tl] = acc; }
}

// Pass 1 of the deterministic scatter-add: for each index position p, whether it is the first
// position holding its index within its segment (seg positions: the whole list, or one list per
// outer row), and the next position holding the same index (NONE if none). Pass 2 then lets the
// first position of each distinct index sum all of its positions in ascending order, with no atomics.
// One invocation per position, scanning backward and forward with early exit: O(seg) work each in the
// worst case (all indices distinct), O(total * seg) in all.
struct Params { total: u32, seg: u32, n: u32, _p0: u32 }
@group(0) @binding(0) var<storage, read> I: array<i32>;
@group(0) @binding(1) var<storage, read_write> L: array<u32>;
@group(0) @binding(2) var<uniform> u: Params;

const NONE: u32 = 0x7fffffffu;
const FIRST: u32 = 0x80000000u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let p = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (p >= u.total) { return; }
  let s0 = (p / u.seg) * u.seg;
  let s1 = min(s0 + u.seg, u.total);
  let id = I[p];
  // Out-of-range indices take no part: never first, so no gradient flows through them.
  if (id < 0 || u32(id) >= u.n) { L[p] = NONE; return; }
  var first = FIRST;
  for (var q = p; q > s0; q--) {
    if (I[q - 1u] == id) { first = 0u; break; }
  }
  var next = NONE;
  for (var q = p + 1u; q < s1; q++) {
    if (I[q] == id) { next = q; break; }
  }
  L[p] = first | next;
}

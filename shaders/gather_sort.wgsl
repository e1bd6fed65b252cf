// Pass 1 of the deterministic scatter-add for long index lists: the same link table as
// gather_link.wgsl (first-position flag, next position with the same index), built in O(m log^2 m)
// work instead of O(m^2). The pairs (index, position) are sorted by a bitonic network over M = 2^k
// slots (entry `init`, then one dispatch of `sort_step` per network stage); (index, position) pairs are
// unique, so the sorted order, and the link table read off it (entry `link`), do not depend on how
// the network is scheduled. Out-of-range indices sort after the valid ones and get no link.
struct Params { m: u32, slots: u32, k: u32, j: u32, n: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<storage, read> I: array<i32>;
@group(0) @binding(1) var<storage, read_write> KP: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read_write> L: array<u32>;
@group(0) @binding(3) var<uniform> u: Params;

const NONE: u32 = 0x7fffffffu;
const FIRST: u32 = 0x80000000u;
const INVALID: u32 = 0xfffffffeu;
const PAD: u32 = 0xffffffffu;

fn index_of(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 64u + lid; }

@compute @workgroup_size(64)
fn init(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = index_of(wid, nwg, lid);
  if (i >= u.slots) { return; }
  var key = PAD;
  if (i < u.m) {
    let id = I[i];
    key = select(INVALID, u32(id), id >= 0 && u32(id) < u.n);
  }
  KP[i] = vec2<u32>(key, i);
}

fn greater(a: vec2<u32>, b: vec2<u32>) -> bool { return a.x > b.x || (a.x == b.x && a.y > b.y); }

@compute @workgroup_size(64)
fn sort_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = index_of(wid, nwg, lid);
  if (t >= u.slots / 2u) { return; }
  let lo = (t / u.j) * 2u * u.j + t % u.j;
  let hi = lo + u.j;
  let a = KP[lo];
  let b = KP[hi];
  let ascending = (lo & u.k) == 0u;
  if (greater(a, b) == ascending) {
    KP[lo] = b;
    KP[hi] = a;
  }
}

@compute @workgroup_size(64)
fn link(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = index_of(wid, nwg, lid);
  if (i >= u.m) { return; }
  let e = KP[i];
  if (e.x == INVALID) { L[e.y] = NONE; return; }
  var first = FIRST;
  if (i > 0u && KP[i - 1u].x == e.x) { first = 0u; }
  var next = NONE;
  if (i + 1u < u.m && KP[i + 1u].x == e.x) { next = KP[i + 1u].y; }
  L[e.y] = first | next;
}

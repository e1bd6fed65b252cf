// Chunked reduction of a [outer, n, inner] view along n. Each output of a pass covers one chunk of
// one (outer, inner) row: out layout [outer, n_chunks, inner]. With n_chunks > 1 the pass writes
// partial states that the next pass reduces again, so a huge reduction is a tree of passes.
// Two variants:
//   wg_main:     one workgroup per output; each invocation folds a strided slice of the chunk in
//                order, then a fixed-shape tree in workgroup memory (long rows, inner == 1).
//   thread_main: one invocation per output, folding its chunk sequentially (short rows, or
//                inner > 1 where neighbouring invocations read neighbouring addresses).
// The combine order depends only on the shape, so results are bit-identical run to run.
// State: a = sum | max value | running max m; b = (lse) running sum of exp(v - m);
// i = index of the max along n (NONE marks an empty state).
struct Params {
  outer: u32, n: u32, inner: u32, chunk: u32,
  n_chunks: u32, n_out: u32, scale: f32, in_scale: f32,
}
struct State { a: f32, b: f32, i: u32 }

@group(0) @binding(0) var<storage, read> X: array<{{IN_T}}>;
{{OUT_DECL}}
@group(0) @binding({{U_BIND}}) var<uniform> u: Params;

const WG: u32 = {{WG}}u;
const NONE: u32 = 0xffffffffu;
var<workgroup> ta: array<f32, WG>;
var<workgroup> tb: array<f32, WG>;
var<workgroup> ti: array<u32, WG>;

fn empty_state() -> State { return State(0.0, 0.0, NONE); }

// Element k of the reduced axis, at flat index `idx` of the input.
fn load(idx: u32, k: u32) -> State {
  {{LOAD}}
}

fn combine(x: State, y: State) -> State {
  {{COMBINE}}
}

fn store(o: u32, s: State) {
  {{STORE}}
}

@compute @workgroup_size(WG)
fn wg_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= u.n_out) { return; }
  let i = w % u.inner;
  let rest = w / u.inner;
  let c = rest % u.n_chunks;
  let o = rest / u.n_chunks;
  let k0 = c * u.chunk;
  let k1 = min(u.n, k0 + u.chunk);
  var s = empty_state();
  for (var k = k0 + lid; k < k1; k += WG) {
    s = combine(s, load((o * u.n + k) * u.inner + i, k));
  }
  ta[lid] = s.a;
  tb[lid] = s.b;
  ti[lid] = s.i;
  for (var h = WG / 2u; h > 0u; h = h >> 1u) {
    workgroupBarrier();
    if (lid < h) {
      let r = combine(State(ta[lid], tb[lid], ti[lid]), State(ta[lid + h], tb[lid + h], ti[lid + h]));
      ta[lid] = r.a;
      tb[lid] = r.b;
      ti[lid] = r.i;
    }
  }
  // Invocation 0 wrote slot 0 itself in the last step: no barrier needed to read it.
  if (lid == 0u) { store(w, State(ta[0], tb[0], ti[0])); }
}

@compute @workgroup_size(64)
fn thread_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (w >= u.n_out) { return; }
  let i = w % u.inner;
  let rest = w / u.inner;
  let c = rest % u.n_chunks;
  let o = rest / u.n_chunks;
  let k0 = c * u.chunk;
  let k1 = min(u.n, k0 + u.chunk);
  var s = empty_state();
  for (var k = k0; k < k1; k++) {
    s = combine(s, load((o * u.n + k) * u.inner + i, k));
  }
  store(w, s);
}

// Shared by every matmul kernel: the uniform block and the batch addressing.
// C[o] = sum_r op(P[o, r]) @ op(Q[o, r]) (+ bias): o walks the kept batch dims (outer*), r the dims a
// gradient sums over (reduce*). Each group has up to 4 dims with an element stride per operand
// (0 = broadcast). Shapes and strides live here, never in the shader text, so one pipeline serves
// every shape with the same layout.
struct Params {
  M: u32, N: u32, K: u32, total: u32,
  ldp: u32, ldq: u32, ldc: u32, tilesN: u32,
  tilesM: u32, outerRank: u32, reduceRank: u32, nReduce: u32,
  offs: vec4<u32>,  // element offsets of P, Q, C; w = 1 when a bias is bound
  oshape: vec4<u32>, osp: vec4<u32>, osq: vec4<u32>, osc: vec4<u32>,
  rshape: vec4<u32>, rsp: vec4<u32>, rsq: vec4<u32>,
}
@group(0) @binding(4) var<uniform> u: Params;

// Element offsets of the P, Q and C matrices of outer batch index t.
fn outerOffsets(t: u32) -> vec3<u32> {
  var rem = t;
  var o = u.offs.xyz;
  for (var d = i32(u.outerRank) - 1; d >= 0; d--) {
    let s = u.oshape[d];
    let c = rem % s;
    rem = rem / s;
    o += c * vec3<u32>(u.osp[d], u.osq[d], u.osc[d]);
  }
  return o;
}

// Element offsets of P and Q for reduced batch index r.
fn reduceOffsets(r: u32) -> vec2<u32> {
  var rem = r;
  var o = vec2<u32>(0u, 0u);
  for (var d = i32(u.reduceRank) - 1; d >= 0; d--) {
    let s = u.rshape[d];
    let c = rem % s;
    rem = rem / s;
    o += c * vec2<u32>(u.rsp[d], u.rsq[d]);
  }
  return o;
}

// Reference matmul: one output per invocation, scalar loads, a plain k loop. Slow and obviously
// correct; kept to cross-check the tiled kernels. P_IDX / Q_IDX address P(m,k) and Q(k,n)
// for the stored layouts; the bias is added when u.offs.w != 0.
@group(0) @binding(0) var<storage, read> P: array<f32>;
@group(0) @binding(1) var<storage, read> Q: array<f32>;
@group(0) @binding(2) var<storage, read> BIAS: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (i >= u.total) { return; }
  let n = i % u.N;
  let rest = i / u.N;
  let m = rest % u.M;
  let ob = outerOffsets(rest / u.M);
  var acc = 0.0;
  for (var r = 0u; r < u.nReduce; r++) {
    let ro = reduceOffsets(r);
    let pbase = ob.x + ro.x;
    let qbase = ob.y + ro.y;
    for (var k = 0u; k < u.K; k++) {
      acc += P[{{P_IDX}}] * Q[{{Q_IDX}}];
    }
  }
  C[ob.z + m * u.ldc + n] = acc + select(0.0, BIAS[n], u.offs.w != 0u);
}

// Register-tiled matmul without workgroup memory: each invocation computes a TMxTN block of C with
// vec4 accumulators, reading P and Q straight from storage (the CPU caches do the tiling on
// llvmpipe/lavapipe, where barriers are expensive; runtime.md section 2). The generator fills STEP,
// the unrolled body for KSTEP values of k: 1, or 4 when Q is k-contiguous (nn.Linear's weight) and
// aligned, so its columns are read as vec4 along k. Operands contiguous along m or n are read as
// vec4 when aligned. Edge tiles read clamped rows/columns (offsets computed once per invocation,
// none in the k loop) and only the store is guarded. The bias is added when u.offs.w != 0.
@group(0) @binding(0) var<storage, read> P: array<{{P_T}}>;
@group(0) @binding(1) var<storage, read> Q: array<{{Q_T}}>;
@group(0) @binding(2) var<storage, read> BIAS: array<{{C_T}}>;
@group(0) @binding(3) var<storage, read_write> C: array<{{C_T}}>;

@compute @workgroup_size({{WX}}, {{WY}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = wid.x + wid.y * nwg.x;
  if (t >= u.total) { return; }
{{TILE}}
  let m0 = (tm * {{WY}}u + lid.y) * {{TM}}u;
  let n0 = (tn * {{WX}}u + lid.x) * {{TN}}u;
  let mLast = u.M - 1u;
  let nLast = u.N - 1u;
{{ACC}}
  for (var r = 0u; r < u.nReduce; r++) {
    let ro = reduceOffsets(r);
    let pbase = ob.x + ro.x;
    let qbase = ob.y + ro.y;
{{SETUP}}
    for (var k = 0u; k < u.K; k += {{KSTEP}}u) {
{{STEP}}
    }
  }
  let cb = ob.z;
{{STORE}}
}

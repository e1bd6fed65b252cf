// Workgroup-memory tiled matmul for real GPUs: the workgroup stages a BMxBK tile of P (stored
// k-major) and a BKxBN tile of Q in workgroup memory, then each invocation accumulates
// TMxTN outputs at rows ly + i*WY, columns lx + j*WX (strided so neighbouring
// invocations read neighbouring words and store coalesced). Tile loads are bounds-checked and
// zero-filled, so any M, N, K and both layouts of each operand work.
@group(0) @binding(0) var<storage, read> P: array<f32>;
@group(0) @binding(1) var<storage, read> Q: array<f32>;
@group(0) @binding(2) var<storage, read> BIAS: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

var<workgroup> Ps: array<f32, {{PS_SIZE}}>;
var<workgroup> Qs: array<f32, {{QS_SIZE}}>;

@compute @workgroup_size({{WX}}, {{WY}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = wid.x + wid.y * nwg.x;
  if (t >= u.total) { return; }
  let tn = t % u.tilesN;
  let rest = t / u.tilesN;
  let tm = rest % u.tilesM;
  let ob = outerOffsets(rest / u.tilesM);
  let mT = tm * {{BM}}u;
  let nT = tn * {{BN}}u;
  let lidx = lid.y * {{WX}}u + lid.x;
  var acc: array<f32, {{TMTN}}>;
  var a: array<f32, {{TM}}>;
  var b: array<f32, {{TN}}>;
  for (var r = 0u; r < u.nReduce; r++) {
    let ro = reduceOffsets(r);
    let pbase = ob.x + ro.x;
    let qbase = ob.y + ro.y;
    for (var k0 = 0u; k0 < u.K; k0 += {{BK}}u) {
      for (var e = lidx; e < {{BM}}u * {{BK}}u; e += {{NT}}u) {
        {{P_COORD}}
        let m = mT + mm;
        let k = k0 + kk;
        var v = 0.0;
        if (m < u.M && k < u.K) { v = P[{{P_IDX}}]; }
        Ps[kk * {{BM}}u + mm] = v;
      }
      for (var e = lidx; e < {{BN}}u * {{BK}}u; e += {{NT}}u) {
        {{Q_COORD}}
        let n = nT + nn;
        let k = k0 + kk;
        var v = 0.0;
        if (n < u.N && k < u.K) { v = Q[{{Q_IDX}}]; }
        Qs[kk * {{BN}}u + nn] = v;
      }
      workgroupBarrier();
      for (var kk = 0u; kk < {{BK}}u; kk++) {
        for (var i = 0u; i < {{TM}}u; i++) { a[i] = Ps[kk * {{BM}}u + lid.y + i * {{WY}}u]; }
        for (var j = 0u; j < {{TN}}u; j++) { b[j] = Qs[kk * {{BN}}u + lid.x + j * {{WX}}u]; }
        for (var i = 0u; i < {{TM}}u; i++) {
          for (var j = 0u; j < {{TN}}u; j++) {
            acc[i * {{TN}}u + j] = fma(a[i], b[j], acc[i * {{TN}}u + j]);
          }
        }
      }
      workgroupBarrier();
    }
  }
  for (var i = 0u; i < {{TM}}u; i++) {
    let m = mT + lid.y + i * {{WY}}u;
    if (m >= u.M) { continue; }
    for (var j = 0u; j < {{TN}}u; j++) {
      let n = nT + lid.x + j * {{WX}}u;
      if (n < u.N) { C[ob.z + m * u.ldc + n] = acc[i * {{TN}}u + j] + select(0.0, BIAS[n], u.offs.w != 0u); }
    }
  }
}

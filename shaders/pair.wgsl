// Pairwise row kernel: out[i, j] = scale * sum_k TERM(P(i, k), Q(k, j), C(i, j)) for i < I, j < J,
// with P(i, k) = P[i * pi + k * pk], Q(k, j) = Q[k * qk + j * qj], C(i, j) = C[i * ci + j]. TERM:
//   (p - q)^2 (squared distances), p * q (dot products), p * (c - q) (distance gradients).
// Each invocation computes a 4x4 tile of outputs from registers; sums run over k in blocks of 32
// added to the total, in a fixed order.
struct Params {
  I: u32, J: u32, K: u32, tiles_j: u32,
  pi: u32, pk: u32, qk: u32, qj: u32,
  ci: u32, scale: f32, _p0: u32, _p1: u32,
}
{{DECL}}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * nwg.x) * 64u + lid;
  let i0 = (t / u.tiles_j) * 4u;
  let j0 = (t % u.tiles_j) * 4u;
  if (i0 >= u.I) { return; }
  // Rows and columns past the edge read the last valid one (never written back).
  let ri = vec4<u32>(i0, min(i0 + 1u, u.I - 1u), min(i0 + 2u, u.I - 1u), min(i0 + 3u, u.I - 1u));
  let rj = vec4<u32>(j0, min(j0 + 1u, u.J - 1u), min(j0 + 2u, u.J - 1u), min(j0 + 3u, u.J - 1u));
  {{CENTER}}
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < u.K; k0 += 32u) {
    var b0 = vec4<f32>(0.0);
    var b1 = vec4<f32>(0.0);
    var b2 = vec4<f32>(0.0);
    var b3 = vec4<f32>(0.0);
    for (var k = k0; k < min(u.K, k0 + 32u); k++) {
      let p = vec4<f32>(P[ri.x * u.pi + k * u.pk], P[ri.y * u.pi + k * u.pk], P[ri.z * u.pi + k * u.pk], P[ri.w * u.pi + k * u.pk]);
      let q = vec4<f32>(Q[k * u.qk + rj.x * u.qj], Q[k * u.qk + rj.y * u.qj], Q[k * u.qk + rj.z * u.qj], Q[k * u.qk + rj.w * u.qj]);
      {{TERMS}}
    }
    acc0 += b0;
    acc1 += b1;
    acc2 += b2;
    acc3 += b3;
  }
  var acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  for (var a = 0u; a < 4u; a++) {
    let i = i0 + a;
    if (i >= u.I) { break; }
    for (var b = 0u; b < 4u; b++) {
      let j = j0 + b;
      if (j < u.J) { O[i * u.J + j] = acc[a][b] * u.scale; }
    }
  }
}

// Per-row negative log-likelihood from the row logsumexp pair (m, s):
//   loss[i] = (m - x[i, label[i]]) + log(s)   (= logsumexp - x[label], without rounding m + log s)
// A label outside [0, C) gives NaN (labels live on the GPU; checkLabels() validates them).
struct Params { n: u32, c: u32, _p0: u32, _p1: u32, nan: f32, _q0: f32, _q1: f32, _q2: f32 }
{{DECL}}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (i >= u.n) { return; }
  let lab = LAB[i];
  if (lab < 0 || u32(lab) >= u.c) {
    L[i] = u.nan;
    return;
  }
  let p = LSE[i];
  L[i] = (p.x - X[i * u.c + u32(lab)]) + log(p.y);
}

// Shared by the KL-divergence kernels: per element e of [rows, c], the teacher distribution p and
// the student distribution q = softmax(s / T), from the saved row logsumexp pairs (m, s) of s / T
// (LS) and, for teacher logits, of t / T (LT). inv_t = 1 / T. d = log p - log q is formed as
// (t - s) / T - (m_t - m_s) - log(s_t / s_s): no cancellation between two rounded logsumexps.
// The upstream gradient of element e is g_at(e).
struct Params { n_el: u32, c: u32, _p0: u32, _p1: u32, inv_t: f32, scale: f32, _q0: f32, _q1: f32 }
{{DECL}}

struct KL { p: f32, q: f32, d: f32 }

fn kl_at(e: u32) -> KL {
  let i = e / u.c;
  let ls = LS[i];
  let logq = S[e] * u.inv_t - ls.x - log(ls.y);
  var p: f32;
  var d: f32;
  {{TEACHER}}
  return KL(p, exp(logq), d);
}

fn g_at(e: u32) -> f32 {
  {{G}}
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (e >= u.n_el) { return; }
  let i = e / u.c;
  let k = kl_at(e);
  {{BODY}}
}

// Row softmax of the stored scores, in place: S -> P. One invocation per (batch, head, query) row,
// streaming it in vec4 groups (fixed order: deterministic). The forward finds the row's
// log-sum-exp with a running max and writes it for backward; backward passes that lse back in
// ({{USE_LSE}}) and only rewrites the probabilities, so its P is bit-identical to the forward's.
// Masked scores (<= MASKED) get probability exactly 0; a row with no visible key stores lse = 0
// and all-zero probabilities (so its output and gradients are zero).
@group(0) @binding(0) var<storage, read_write> S: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> LSE: array<f32>;
@group(0) @binding(2) var<uniform> u: Params;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * {{WG}}u + lid;
  if (row >= u.total) { return; }
  let row4 = u.tk4 / 4u;
  let lrow = row + u.b0 * u.heads * u.tq;   // statistics are indexed over the whole batch
  var lse: f32;
  if ({{USE_LSE}}) {
    lse = LSE[lrow];
  } else {
    var m = MASKED;
    var l = 0.0;
    for (var g = 0u; g < row4; g++) {
      let s = S[row * row4 + g];
      let mn = max(m, max(max(s.x, s.y), max(s.z, s.w)));
      let p = select(vec4<f32>(0.0), exp(s - vec4<f32>(mn)), s > vec4<f32>(MASKED));
      l = l * exp(m - mn) + ((p.x + p.y) + (p.z + p.w));
      m = mn;
    }
    lse = select(0.0, m + log(l), l > 0.0);
    LSE[lrow] = lse;
  }
  for (var g = 0u; g < row4; g++) {
    S[row * row4 + g] = probs(S[row * row4 + g], lse);
  }
}

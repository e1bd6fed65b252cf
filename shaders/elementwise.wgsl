// Elementwise map over one or two tensors with numpy broadcasting. {{EXPR}} is an f32 expression
// in a, b (b = 0 for unary), and the uniform scalars alpha, beta. Each invocation handles one output;
// the output index is decomposed into coordinates only when an input is broadcast ({{BCAST}}).
struct Params {
  n: u32, rank: u32, alpha: f32, beta: f32,
  shape: array<vec4<u32>, 2>,
  sa: array<vec4<u32>, 2>,
  sb: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
@group(0) @binding(3) var<uniform> u: Params;

fn at(v: array<vec4<u32>, 2>, i: u32) -> u32 { return v[i / 4u][i % 4u]; }

fn sigm(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }

// erf with |error| < 1.2e-7 (Numerical Recipes erfc, Chebyshev fit); WGSL has no erf.
fn erf_(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
          t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
          t * (-0.82215223 + t * 0.17087277)))))))));
  return select(r - 1.0, 1.0 - r, x >= 0.0);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (i >= u.n) { return; }
  var ia = i;
  var ib = i;
  if ({{BCAST}}) {
    var rem = i;
    ia = 0u;
    ib = 0u;
    for (var d = i32(u.rank) - 1; d >= 0; d--) {
      let s = at(u.shape, u32(d));
      let c = rem % s;
      rem = rem / s;
      ia += c * at(u.sa, u32(d));
      ib += c * at(u.sb, u32(d));
    }
  }
  let a = A[ia];
  let b = B[ib];
  let alpha = u.alpha;
  let beta = u.beta;
  O[i] = {{EXPR}};
}

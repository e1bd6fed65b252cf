// Adds the additive mask (broadcast through its strides) to the stored scores in place, one
// invocation per vec4 of scores; a score that ends at or below MASKED becomes exactly MASKED.
@group(0) @binding(0) var<storage, read_write> S: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> M: array<f32>;
@group(0) @binding(2) var<uniform> u: Params;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * {{WG}}u + lid;
  if (idx >= u.total) { return; }
  let row4 = u.tk4 / 4u;
  let j = (idx % row4) * 4u;
  let row = idx / row4;
  let i = row % u.tq;
  let bh = row / u.tq;
  let h = bh % u.heads;
  let b = bh / u.heads + u.b0;
  let base = b * u.ms.x + h * u.ms.y + i * u.ms.z;
  // Padding keys (j >= tk) are already MASKED; read a valid mask entry for them and add nothing.
  let add = vec4<f32>(
    M[base + min(j, u.tk - 1u) * u.ms.w],
    select(0.0, M[base + min(j + 1u, u.tk - 1u) * u.ms.w], j + 1u < u.tk),
    select(0.0, M[base + min(j + 2u, u.tk - 1u) * u.ms.w], j + 2u < u.tk),
    select(0.0, M[base + min(j + 3u, u.tk - 1u) * u.ms.w], j + 3u < u.tk));
  let s = S[idx] + add;
  S[idx] = select(s, vec4<f32>(MASKED), s <= vec4<f32>(MASKED));
}

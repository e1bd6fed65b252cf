// Output stage of the exact solvers (prepended after ot_common to ot_enum_select and ot_hungarian).
// The including kernel declares Plan, Loss, Stats (rw) and the workgroup array `permw` holding the
// chosen permutation (row i -> column permw[i]).
// Writes plan = P/n, loss and stats for the permutation in permw. Called by every invocation, in
// uniform control flow, after a barrier that made permw and nonfinite_flag visible; ends with the
// loop canary (`canary` = the uniform 2). Loop cost per invocation: ceil(n^2 / WG) + 4, and n + 1
// more for invocation 0.
// `inv` is 1/n computed on the host: WGSL division may be off by 2.5 ULP (NVIDIA's is), and the plan's
// entries must be exactly the f32 nearest 1/n on every device.
fn write_exact_outputs(lid: u32, n: u32, inv: f32, gap: f32, steps: f32, canary: u32) {
  for (var k = lid; k < n * n; k += WG) {
    Plan[k] = select(0.0, inv, permw[k / n] == k % n);
  }
  loop_canary(canary);
  workgroupBarrier();
  if (lid == 0u) {
    // Row order, f32: the same sum the enumeration ranks permutations by.
    var s = 0.0;
    var moved = 0u;
    for (var i = 0u; i < n; i++) {
      s += C[i * n + permw[i]];
      if (permw[i] != i) { moved++; }
    }
    let cost = s / f32(n);
    Loss[0] = cost;
    Stats[0] = select(0.0, 1.0, moved > 0u);
    Stats[1] = cost;
    Stats[2] = log(f32(n));
    Stats[3] = f32(moved) / f32(n);
    Stats[4] = 0.0;
    Stats[5] = gap;
    Stats[6] = f32(atomicLoad(&nonfinite_flag));
    Stats[7] = steps;
    Stats[8] = f32(atomicLoad(&cut_flag));
  }
}

// Float64 CPU references for the adaptation losses, written as plain loops with hand-derived
// gradients (the tests check those gradients against central finite differences).

/** ProLIP: ce = mean_i CE(s·normalize(x_i W)·Tᵀ, y_i), reg = Σ(W − W0)², loss = ce + λ reg. W [D, E], T [C, E]. */
export function prolipRef(x: ArrayLike<number>, n: number, d: number, w: ArrayLike<number>, w0: ArrayLike<number>, e: number, t: ArrayLike<number>, c: number, y: ArrayLike<number>, lambda: number, s: number) {
  const gradW = new Float64Array(d * e);
  let ce = 0;
  for (let i = 0; i < n; i++) {
    const z = new Float64Array(e);
    for (let k = 0; k < e; k++) for (let j = 0; j < d; j++) z[k]! += x[i * d + j]! * w[j * e + k]!;
    const norm = Math.sqrt(z.reduce((a, v) => a + v * v, 0));
    const u = z.map((v) => v / norm);
    const logits = new Float64Array(c);
    for (let q = 0; q < c; q++) for (let k = 0; k < e; k++) logits[q]! += s * u[k]! * t[q * e + k]!;
    const m = Math.max(...logits);
    const lse = m + Math.log(logits.reduce((a, v) => a + Math.exp(v - m), 0));
    ce += (lse - logits[y[i]!]!) / n;
    // d ce / d logits = (softmax - onehot) / n; -> d/du = s Σ_q dl_q T_q; -> d/dz = (du - u (u·du)) / |z|
    const du = new Float64Array(e);
    for (let q = 0; q < c; q++) {
      const dl = (Math.exp(logits[q]! - lse) - (q === y[i] ? 1 : 0)) / n;
      for (let k = 0; k < e; k++) du[k]! += s * dl * t[q * e + k]!;
    }
    const dot = u.reduce((a, v, k) => a + v * du[k]!, 0);
    for (let k = 0; k < e; k++) {
      const dz = (du[k]! - u[k]! * dot) / norm;
      for (let j = 0; j < d; j++) gradW[j * e + k]! += x[i * d + j]! * dz;
    }
  }
  let reg = 0;
  for (let k = 0; k < d * e; k++) {
    const diff = w[k]! - w0[k]!;
    reg += diff * diff;
    gradW[k]! += 2 * lambda * diff;
  }
  return { loss: ce + lambda * reg, ce, reg, gradW };
}

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

/** Solves A z = b (dense, partial pivoting), float64. */
function solve(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const m = Float64Array.from(a);
  const z = Float64Array.from(b);
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r * n + col]!) > Math.abs(m[piv * n + col]!)) piv = r;
    if (piv !== col) {
      for (let k = 0; k < n; k++) [m[col * n + k], m[piv * n + k]] = [m[piv * n + k]!, m[col * n + k]!];
      [z[col], z[piv]] = [z[piv]!, z[col]!];
    }
    for (let r = col + 1; r < n; r++) {
      const f = m[r * n + col]! / m[col * n + col]!;
      if (f === 0) continue;
      for (let k = col; k < n; k++) m[r * n + k]! -= f * m[col * n + k]!;
      z[r]! -= f * z[col]!;
    }
  }
  for (let r = n - 1; r >= 0; r--) {
    let s = z[r]!;
    for (let k = r + 1; k < n; k++) s -= m[r * n + k]! * z[k]!;
    z[r] = s / m[r * n + r]!;
  }
  return z;
}

/**
 * sklearn's multinomial objective C·Σ CE([x, 1] Θ, y) + ½‖W‖² (Θ = [W; b], [(d+1), k] row-major),
 * its gradient and Hessian, float64. `sumPenalty` adds ½(Σ b)², which leaves the minimum unchanged
 * (softmax ignores a shift of all biases) and picks the minimiser with Σ b = 0 (where L-BFGS from 0 stays).
 */
export function logisticParts(x: ArrayLike<number>, n: number, d: number, y: ArrayLike<number>, k: number, c: number, theta: Float64Array, sumPenalty = false) {
  const p = (d + 1) * k;
  const g = new Float64Array(p);
  const h = new Float64Array(p * p);
  let f = 0;
  const xt = new Float64Array(d + 1);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) xt[j] = x[i * d + j]!;
    xt[d] = 1;
    const z = new Float64Array(k);
    for (let a = 0; a < k; a++) for (let j = 0; j <= d; j++) z[a]! += xt[j]! * theta[j * k + a]!;
    const mx = Math.max(...z);
    const lse = mx + Math.log(z.reduce((s, v) => s + Math.exp(v - mx), 0));
    f += c * (lse - z[y[i]!]!);
    const pr = z.map((v) => Math.exp(v - lse));
    for (let a = 0; a < k; a++) {
      const r = pr[a]! - (a === y[i] ? 1 : 0);
      for (let j = 0; j <= d; j++) g[j * k + a]! += c * r * xt[j]!;
    }
    for (let j = 0; j <= d; j++)
      for (let l = 0; l <= d; l++)
        for (let a = 0; a < k; a++)
          for (let b = 0; b < k; b++) h[(j * k + a) * p + l * k + b]! += c * xt[j]! * xt[l]! * ((a === b ? pr[a]! : 0) - pr[a]! * pr[b]!);
  }
  for (let q = 0; q < d * k; q++) {
    f += 0.5 * theta[q]! ** 2;
    g[q]! += theta[q]!;
    h[q * p + q]! += 1;
  }
  if (sumPenalty) {
    let sb = 0;
    for (let a = 0; a < k; a++) sb += theta[d * k + a]!;
    f += 0.5 * sb * sb;
    for (let a = 0; a < k; a++) {
      g[d * k + a]! += sb;
      for (let b = 0; b < k; b++) h[(d * k + a) * p + d * k + b]! += 1;
    }
  }
  return { f, g, h };
}

/** Newton's method (with step halving) on logisticParts, to ‖g‖ < 1e-12·(1 + ‖g₀‖). */
export function logisticNewton(x: ArrayLike<number>, n: number, d: number, y: ArrayLike<number>, k: number, c: number): Float64Array {
  const p = (d + 1) * k;
  let theta = new Float64Array(p);
  let parts = logisticParts(x, n, d, y, k, c, theta, true);
  const g0 = Math.hypot(...parts.g);
  for (let it = 0; it < 200 && Math.hypot(...parts.g) > 1e-12 * (1 + g0); it++) {
    const step = solve(parts.h, parts.g, p);
    let t = 1;
    for (;;) {
      const cand = theta.map((v, q) => v - t * step[q]!);
      const next = logisticParts(x, n, d, y, k, c, cand, true);
      if (next.f <= parts.f || t < 1e-12) {
        theta = cand;
        parts = next;
        break;
      }
      t /= 2;
    }
  }
  return theta;
}

/** sklearn's binary logistic regression C·Σ log(1 + exp(−sᵢ(w·xᵢ + b))) + ½‖w‖² (sᵢ = ±1 for y = 1/0), by Newton, float64: [w; b]. */
export function binaryLogisticNewton(x: ArrayLike<number>, n: number, d: number, y: ArrayLike<number>, c: number): Float64Array {
  const p = d + 1;
  let th = new Float64Array(p);
  const parts = (t: Float64Array) => {
    let f = 0;
    const g = new Float64Array(p);
    const h = new Float64Array(p * p);
    for (let i = 0; i < n; i++) {
      const xt = [...Array.from({ length: d }, (_, j) => x[i * d + j]!), 1];
      const s = y[i] === 1 ? 1 : -1;
      const z = xt.reduce((a, v, j) => a + v * t[j]!, 0);
      const m = s * z;
      f += c * (m > 0 ? Math.log1p(Math.exp(-m)) : -m + Math.log1p(Math.exp(m)));
      const sig = 1 / (1 + Math.exp(m)); // d/dm log(1+e^-m) = -sig
      for (let j = 0; j < p; j++) g[j]! += -c * s * sig * xt[j]!;
      const w = c * sig * (1 - sig);
      for (let j = 0; j < p; j++) for (let l = 0; l < p; l++) h[j * p + l]! += w * xt[j]! * xt[l]!;
    }
    for (let j = 0; j < d; j++) {
      f += 0.5 * t[j]! ** 2;
      g[j]! += t[j]!;
      h[j * p + j]! += 1;
    }
    return { f, g, h };
  };
  let cur = parts(th);
  for (let it = 0; it < 200 && Math.hypot(...cur.g) > 1e-12; it++) {
    const step = solve(cur.h, cur.g, p);
    let t = 1;
    for (;;) {
      const cand = th.map((v, q) => v - t * step[q]!);
      const next = parts(cand);
      if (next.f <= cur.f || t < 1e-12) {
        th = cand;
        cur = next;
        break;
      }
      t /= 2;
    }
  }
  return th;
}

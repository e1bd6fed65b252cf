// L-BFGS on the GPU: the iterate, the gradients and the curvature pairs live in GPU tensors (the
// pairs as rows of one [2m, n] matrix P = [S; Y]); the direction uses the compact representation of
// Byrd, Nocedal and Schnabel (1994), H g = γg + S a − γ Y r with r = R⁻¹(Sᵀg), a = R⁻ᵀ((D + γYᵀY) r − γ Yᵀg)
// (R = upper triangle of SᵀY, D its diagonal), so a direction costs two matrix products on the GPU
// and an m×m triangular solve on the host in float64, instead of ~10 small ops per stored pair. The
// host reads back a handful of scalars per step (Sᵀg and Yᵀg; f, the directional derivative and the
// curvature products of a line-search trial; the new pair's products with the stored ones). Stops when ‖g‖ ≤ tol·‖g₀‖ (relative gradient norm), after
// maxIter iterations (sklearn's max_iter), or when the line search cannot make progress in float32.
//
// The line search brackets a step satisfying the weak Wolfe conditions, with Hager and Zhang's
// approximate Armijo test (f(t) ≤ f(0) + ε|f(0)| and φ'(t) ≤ (2δ − 1)φ'(0)) so that it still works
// when function differences fall below float32 resolution near the optimum; gradients stay accurate
// there, which is what lets float32 reach small relative gradient norms.
import { GpuError } from '../gpu/index.js';
import { keep, tensor, tidy, zeros, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { add, mul, scale, sub } from '../ops/elementwise.js';
import { sum } from '../ops/reduce.js';
import { matmul } from '../ops/matmul.js';
import { concat, reshape } from '../ops/shape.js';

export interface LbfgsOptions {
  /** Iterations (sklearn's max_iter). Default 1000. */
  maxIter?: number;
  /** Curvature pairs kept (scipy's m). Default 10. */
  history?: number;
  /** Stop when ‖g‖ ≤ tol·‖g₀‖. Default 1e-6. */
  tol?: number;
  /** Trials per line search. Default 40. */
  maxTrials?: number;
}

export interface LbfgsResult {
  /** The minimiser (a new tensor the caller owns). */
  x: Tensor;
  f: number;
  iterations: number;
  evaluations: number;
  /** ‖g‖ / ‖g₀‖ at the returned point. */
  relGradNorm: number;
  converged: boolean;
  reason: 'gradient' | 'max-iter' | 'line-search' | 'zero-gradient';
}

/** Scalar dot product as a [1] tensor. */
function dot(a: Tensor, b: Tensor): Tensor {
  return reshape(sum(mul(a, b)), [1]);
}

/**
 * Minimises `objective` from `x0` (a flat f32 tensor, copied). `objective(x)` must build a scalar
 * from x (which requires grad) with recorded ops; the solver backpropagates it for the gradient.
 */
export async function lbfgs(x0: Tensor, objective: (x: Tensor) => Tensor, o: LbfgsOptions = {}): Promise<LbfgsResult> {
  const maxIter = o.maxIter ?? 1000;
  const m = o.history ?? 10;
  const tol = o.tol ?? 1e-6;
  const maxTrials = o.maxTrials ?? 40;
  if (x0.rank !== 1) throw new GpuError(`lbfgs: x0 ${x0.describe()} must be flat`);
  let evaluations = 0;
  const evaluate = (x: Tensor): { f: Tensor; g: Tensor } => {
    evaluations++;
    x.requiresGrad = true;
    const f = tidy(() => reshape(objective(x), [1]));
    if (!f.requiresGrad) throw new GpuError('lbfgs: the objective does not depend on x');
    f.backward();
    const g = x.grad!;
    x.grad = null;
    x.requiresGrad = false;
    return { f: keep(f), g };
  };
  const read = async (parts: Tensor[]): Promise<number[]> => {
    const t = noGrad(() => concat(parts, 0));
    const v = Array.from((await t.read()) as Float32Array);
    t.dispose();
    for (const p of parts) p.dispose();
    return v;
  };

  const n = x0.size;
  let x = noGrad(() => keep(scale(x0, 1)));
  let { f: fT, g } = evaluate(x);
  const [f0v, gg0] = await read([fT, noGrad(() => dot(g, g))]);
  let f = f0v!;
  const g0 = Math.sqrt(gg0!);
  // Pair j (chronological) lives in rows slot[j] (s) and m + slot[j] (y) of P.
  const P = zeros([2 * m, n], 'f32', x0.gpu);
  const slots: number[] = [];
  // Host copies of the products between stored pairs, chronological: SY[i][j] = s_iᵀy_j, YY[i][j] = y_iᵀy_j.
  let SY: number[][] = [];
  let YY: number[][] = [];
  let gamma = 1;
  let gnorm = g0;
  const done = (iterations: number, reason: LbfgsResult['reason']): LbfgsResult => {
    g.dispose();
    P.dispose();
    const rel = g0 === 0 ? 0 : gnorm / g0;
    return { x, f, iterations, evaluations, relGradNorm: rel, converged: reason === 'gradient' || reason === 'zero-gradient', reason };
  };
  if (g0 === 0 || !Number.isFinite(g0)) return done(0, g0 === 0 ? 'zero-gradient' : 'line-search');

  /** d = -H g from P g (the 2m products), on the host then one product on the GPU. */
  const direction = async (): Promise<Tensor> => {
    const k = slots.length;
    if (k === 0) return noGrad(() => scale(g, -1));
    const pg = await read([noGrad(() => reshape(matmul(P, reshape(g, [n, 1])), [2 * m]))]);
    const sg = slots.map((sl) => pg[sl]!);
    const yg = slots.map((sl) => pg[m + sl]!);
    // r = R⁻¹ sg (R upper triangular: R[i][j] = s_iᵀy_j, i <= j).
    const r = new Array<number>(k).fill(0);
    for (let i = k - 1; i >= 0; i--) {
      let v = sg[i]!;
      for (let j = i + 1; j < k; j++) v -= SY[i]![j]! * r[j]!;
      r[i] = v / SY[i]![i]!;
    }
    // w = (D + γ YᵀY) r − γ yg; a = R⁻ᵀ w (lower triangular solve).
    const w = Array.from({ length: k }, (_, i) => SY[i]![i]! * r[i]! + gamma * YY[i]!.reduce((acc, v, j) => acc + v * r[j]!, 0) - gamma * yg[i]!);
    const a = new Array<number>(k).fill(0);
    for (let i = 0; i < k; i++) {
      let v = w[i]!;
      for (let j = 0; j < i; j++) v -= SY[j]![i]! * a[j]!;
      a[i] = v / SY[i]![i]!;
    }
    // d = −γ g − S a + γ Y r, as −γ g + Pᵀ c.
    const c = new Float32Array(2 * m);
    slots.forEach((sl, j) => {
      c[sl] = -a[j]!;
      c[m + sl] = gamma * r[j]!;
    });
    return noGrad(() =>
      tidy(() => {
        const ct = tensor(c, [1, 2 * m], 'f32', x0.gpu);
        return add(scale(g, -gamma), reshape(matmul(ct, P), [n]));
      }),
    );
  };

  for (let k = 0; k < maxIter; k++) {
    if (gnorm <= tol * g0) return done(k, 'gradient');
    let d = await direction();
    let [dg] = await read([noGrad(() => dot(d, g))]);
    if (!(dg! < 0)) {
      // Not a descent direction (float32 loss of positivity): restart from steepest descent.
      d.dispose();
      slots.length = 0;
      SY = [];
      YY = [];
      gamma = 1;
      d = noGrad(() => scale(g, -1));
      dg = -gnorm * gnorm;
    }
    // Line search on phi(t) = f(x + t d).
    let t = k === 0 ? Math.min(1, 1 / gnorm) : 1;
    let lo = 0;
    let hi = Infinity;
    const c1 = 1e-4, c2 = 0.9, eps = 1e-6;
    let accepted: { x: Tensor; g: Tensor; f: number; gg: number; sy: number; yy: number; s: Tensor; y: Tensor } | null = null;
    for (let trial = 0; trial < maxTrials; trial++) {
      const xt = noGrad(() => keep(add(x, scale(d, t))));
      const ev = evaluate(xt);
      const s = noGrad(() => keep(scale(d, t)));
      const y = noGrad(() => keep(sub(ev.g, g)));
      const [ft, dgt, ggt, sy, yy] = await read([ev.f, noGrad(() => dot(ev.g, d)), noGrad(() => dot(ev.g, ev.g)), noGrad(() => dot(s, y)), noGrad(() => dot(y, y))]);
      const armijo = ft! <= f + c1 * t * dg!;
      const approx = ft! <= f + eps * Math.abs(f) && dgt! <= (2 * c1 - 1) * dg!;
      const sufficient = Number.isFinite(ft!) && (armijo || approx);
      if (sufficient && dgt! >= c2 * dg!) {
        accepted = { x: xt, g: ev.g, f: ft!, gg: ggt!, sy: sy!, yy: yy!, s, y };
        break;
      }
      xt.dispose();
      ev.g.dispose();
      s.dispose();
      y.dispose();
      if (!sufficient || dgt! > 0) hi = t;
      else lo = t;
      t = Number.isFinite(hi) ? (lo + hi) / 2 : 2 * t;
      if (hi - lo < 1e-20) break;
    }
    d.dispose();
    if (!accepted) return done(k, 'line-search');
    x.dispose();
    g.dispose();
    x = accepted.x;
    g = accepted.g;
    f = accepted.f;
    gnorm = Math.sqrt(accepted.gg);
    if (accepted.sy > 1e-10 * accepted.yy && accepted.sy > 0) {
      // Store the pair in the oldest slot (or a free one) and update the products.
      let slot: number;
      if (slots.length < m) slot = slots.length;
      else {
        slot = slots.shift()!;
        SY = SY.slice(1).map((row) => row.slice(1));
        YY = YY.slice(1).map((row) => row.slice(1));
      }
      x0.gpu.copy(accepted.s.buffer, 0, P.buffer, slot * n * 4, n * 4, 'lbfgs store s');
      x0.gpu.copy(accepted.y.buffer, 0, P.buffer, (m + slot) * n * 4, n * 4, 'lbfgs store y');
      slots.push(slot);
      const prods = await read([
        noGrad(() => reshape(matmul(P, reshape(accepted!.s, [n, 1])), [2 * m])),
        noGrad(() => reshape(matmul(P, reshape(accepted!.y, [n, 1])), [2 * m])),
      ]);
      const k2 = slots.length;
      // Row/column of the new pair (chronological index k2 - 1); its own products from the trial.
      for (const row of SY) row.push(0);
      for (const row of YY) row.push(0);
      SY.push(new Array<number>(k2).fill(0));
      YY.push(new Array<number>(k2).fill(0));
      slots.forEach((sl, j) => {
        SY[j]![k2 - 1] = prods[2 * m + sl]!; // s_jᵀ y_new
        SY[k2 - 1]![j] = prods[m + sl]!; // s_newᵀ y_j = y_jᵀ s_new
        YY[j]![k2 - 1] = YY[k2 - 1]![j] = prods[2 * m + m + sl]!; // y_jᵀ y_new
      });
      SY[k2 - 1]![k2 - 1] = accepted.sy;
      YY[k2 - 1]![k2 - 1] = accepted.yy;
      gamma = accepted.sy / accepted.yy;
    }
    accepted.s.dispose();
    accepted.y.dispose();
  }
  return done(maxIter, gnorm <= tol * g0 ? 'gradient' : 'max-iter');
}

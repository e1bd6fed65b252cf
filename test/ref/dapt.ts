// Float64 references for DAPT's losses (methods.md 6.b) and the joint-feature OT term (5.b), written
// from the definitions with the core autograd primitives: pairwise differences by broadcasting (not
// the engine's distance kernel), prototypes picked by indexSelect, the exact plan by brute force.
import * as core from './core.js';
import type { R } from './core.js';

/** Squared distances [N, M] of the rows of a [N, D] and b [M, D], by broadcasting a_i − b_j. */
function sqDist(a: R, b: R): R {
  const [n, d] = a.shape as [number, number];
  const m = b.shape[0]!;
  const diff = core.sub(core.reshape(a, [n, 1, d]), core.reshape(b, [1, m, d]));
  return core.sum(core.square(diff), 2);
}

/** L_inter = (2 / (C(C−1))) Σ_{i<j} exp(−t‖w_i − w_j‖²), over the strict upper triangle. */
export function interRef(w: R, t = 2): R {
  const c = w.shape[0]!;
  const upper = new Float64Array(c * c);
  for (let i = 0; i < c; i++) for (let j = i + 1; j < c; j++) upper[i * c + j] = 1;
  const k = core.mul(core.exp(core.scale(sqDist(w, w), -t)), core.constant(upper, [c, c]));
  return core.scale(core.sum(k), 2 / (c * (c - 1)));
}

/** L_intra = (1/(B·D)) Σ_b Σ_d (f_bd − p_{y_b, d})². */
export function intraRef(f: R, p: R, labels: ArrayLike<number>): R {
  const picked = core.indexSelect(p, Array.from(labels, (v) => Math.round(v)), 0);
  return core.mean(core.square(core.sub(f, picked)));
}

/** The permutation minimising Σ_i cost[i, perm[i]] (all n! permutations, float64). */
export function bruteForcePermutation(cost: ArrayLike<number>, n: number): number[] {
  let best: number[] = [];
  let bestSum = Infinity;
  const perm: number[] = [];
  const used = new Array<boolean>(n).fill(false);
  const visit = (row: number, acc: number) => {
    if (row === n) {
      if (acc < bestSum) {
        bestSum = acc;
        best = [...perm];
      }
      return;
    }
    for (let j = 0; j < n; j++) {
      if (used[j]) continue;
      used[j] = true;
      perm.push(j);
      visit(row + 1, acc + cost[row * n + j]!);
      perm.pop();
      used[j] = false;
    }
  };
  visit(0, 0);
  return best;
}

/**
 * Prompt-OT on joint features: z_i = [v_i; t_{y_i}], z⁰_j = [v⁰_j; t⁰_{y_j}], C = η‖z_i − z⁰_j‖²,
 * loss = Σ_ij π_ij C_ij with π = P/B the optimal permutation (constant: it carries no gradient).
 */
export function jointOtRef(v: R, t: R, v0: R, t0: R, labels: ArrayLike<number>, eta = 0.5): { loss: R; perm: number[] } {
  const y = Array.from(labels, (x) => Math.round(x));
  const b = y.length;
  const z = core.concat([v, core.indexSelect(t, y, 0)], 1);
  const z0 = core.concat([v0, core.indexSelect(t0, y, 0)], 1);
  const cost = core.scale(sqDist(z, z0), eta);
  const perm = bruteForcePermutation(cost.data, b);
  const plan = new Float64Array(b * b);
  perm.forEach((j, i) => (plan[i * b + j] = 1 / b));
  return { loss: core.sum(core.mul(cost, core.constant(plan, [b, b]))), perm };
}

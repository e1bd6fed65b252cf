// Float64 references for DAPT's losses (methods.md 6.b) and the joint-feature OT term (5.b), written
// from the definitions with the core autograd primitives: pairwise differences by broadcasting (not
// the engine's distance kernel), prototypes picked by indexSelect, the exact plan by brute force
// over all permutations (the host solver, as Prompt-OT's reference).
import * as core from './core.js';
import type { R } from './core.js';
import { pairwiseSqDist } from './nn.js';
import { bruteForceAssignment, planFromPermutation } from '../../src/adapt/ot-host.js';

/** L_inter = (2 / (C(C−1))) Σ_{i<j} exp(−t‖w_i − w_j‖²), over the strict upper triangle. */
export function interRef(w: R, t = 2): R {
  const c = w.shape[0]!;
  const upper = new Float64Array(c * c);
  for (let i = 0; i < c; i++) for (let j = i + 1; j < c; j++) upper[i * c + j] = 1;
  const k = core.mul(core.exp(core.scale(pairwiseSqDist(w, w), -t)), core.constant(upper, [c, c]));
  return core.scale(core.sum(k), 2 / (c * (c - 1)));
}

/** L_intra = (1/(B·D)) Σ_b Σ_d (f_bd − p_{y_b, d})². */
export function intraRef(f: R, p: R, labels: ArrayLike<number>): R {
  const picked = core.indexSelect(p, Array.from(labels, (v) => Math.round(v)), 0);
  return core.mean(core.square(core.sub(f, picked)));
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
  const cost = core.scale(pairwiseSqDist(z, z0), eta);
  const perm = Array.from(bruteForceAssignment(cost.data, b).perm);
  return { loss: core.sum(core.mul(cost, core.constant(planFromPermutation(perm), [b, b]))), perm };
}

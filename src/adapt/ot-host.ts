// Host (float64, plain TS) optimal-transport solvers for a square cost matrix with uniform marginals
// 1/B: the test oracles of the GPU solvers in ot.ts, and usable on their own (e.g. to cross-check a
// training step offline). With uniform marginals and equal sizes an optimal plan is a permutation
// matrix / B (Birkhoff-von Neumann), so the exact problem is the linear assignment problem.
// Matrices are row-major ArrayLike<number> of length n*n; perm[i] is the column assigned to row i.

export interface Assignment {
  /** perm[i] = column matched to row i. */
  perm: Int32Array;
  /** Sum_i C[i, perm[i]] (the transport cost is this / n). */
  sum: number;
}

function checkSquare(C: ArrayLike<number>, n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what}: size ${n} must be a positive integer`);
  if (C.length !== n * n) throw new Error(`${what}: ${C.length} values for a ${n}x${n} matrix`);
}

export function factorial(n: number): number {
  let f = 1;
  for (let k = 2; k <= n; k++) f *= k;
  return f;
}

/**
 * The permutation with lexicographic rank `index` (factorial number system / Lehmer code): digit i,
 * of weight (n-1-i)!, picks the digit-th smallest column not used by rows 0..i-1. Index 0 is the
 * identity, index n!-1 the reversal. The GPU enumeration kernel decodes the same way.
 */
export function permutationFromIndex(index: number, n: number): Int32Array {
  if (!Number.isInteger(index) || index < 0 || index >= factorial(n)) throw new Error(`permutationFromIndex: ${index} out of [0, ${n}!)`);
  const perm = new Int32Array(n);
  const free = Array.from({ length: n }, (_, k) => k);
  let rem = index;
  for (let i = 0; i < n; i++) {
    const w = factorial(n - 1 - i);
    const d = Math.floor(rem / w);
    rem -= d * w;
    perm[i] = free.splice(d, 1)[0]!;
  }
  return perm;
}

/** Inverse of permutationFromIndex. */
export function permutationIndex(perm: ArrayLike<number>): number {
  const n = perm.length;
  let index = 0;
  for (let i = 0; i < n; i++) {
    let smaller = 0;
    for (let k = i + 1; k < n; k++) if (perm[k]! < perm[i]!) smaller++;
    index += smaller * factorial(n - 1 - i);
  }
  return index;
}

/** Sum_i C[i, perm[i]] in row order; `f32` rounds every step as the GPU kernels do. */
export function assignmentSum(C: ArrayLike<number>, perm: ArrayLike<number>, f32 = false): number {
  const n = perm.length;
  let s = 0;
  for (let i = 0; i < n; i++) s = f32 ? Math.fround(s + Math.fround(C[i * n + perm[i]!]!)) : s + C[i * n + perm[i]!]!;
  return s;
}

/**
 * Exhaustive search over all n! permutations (n <= 10), in index order; a strictly smaller sum
 * replaces the best, so ties go to the smallest index and the identity (index 0) wins any tie it is
 * in. With `f32: true` the sums are rounded to f32 in row order, which mirrors the GPU enumeration
 * kernel bit for bit (it picks the same permutation, ties included).
 */
export function bruteForceAssignment(C: ArrayLike<number>, n: number, opts: { f32?: boolean } = {}): Assignment & { index: number } {
  checkSquare(C, n, 'bruteForceAssignment');
  if (n > 10) throw new Error(`bruteForceAssignment: n = ${n} > 10 (${factorial(n)} permutations)`);
  const count = factorial(n);
  let best = Infinity;
  let bestIndex = -1;
  for (let idx = 0; idx < count; idx++) {
    const s = assignmentSum(C, permutationFromIndex(idx, n), opts.f32);
    if (s < best || bestIndex < 0) {
      if (Number.isNaN(s)) continue;
      best = s;
      bestIndex = idx;
    }
  }
  if (bestIndex < 0) bestIndex = 0;
  const perm = permutationFromIndex(bestIndex, n);
  return { perm, sum: assignmentSum(C, perm, opts.f32), index: bestIndex };
}

/**
 * Hungarian algorithm with shortest augmenting paths and dual potentials (Kuhn-Munkres in the
 * Jonker-Volgenant / e-maxx form): rows are added one at a time and each is matched along a
 * Dijkstra shortest path in reduced costs. O(n^3) time, O(n) extra memory. Returns the duals too:
 * C[i][j] - u[i] - v[j] >= 0 everywhere and = 0 on the assignment, so sum(u) + sum(v) = optimum.
 */
export function hungarian(C: ArrayLike<number>, n: number): Assignment & { u: Float64Array; v: Float64Array } {
  checkSquare(C, n, 'hungarian');
  // 1-based: row/column 0 is the virtual start of each augmenting path.
  const u = new Float64Array(n + 1);
  const v = new Float64Array(n + 1);
  const p = new Int32Array(n + 1); // p[j] = row matched to column j (0 = free)
  const way = new Int32Array(n + 1);
  const minv = new Float64Array(n + 1);
  const used = new Uint8Array(n + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    minv.fill(Infinity);
    used.fill(0);
    do {
      used[j0] = 1;
      const i0 = p[j0]!;
      let delta = Infinity;
      let j1 = -1;
      for (let j = 1; j <= n; j++) {
        if (used[j]) continue;
        const cur = C[(i0 - 1) * n + (j - 1)]! - u[i0]! - v[j]!;
        if (cur < minv[j]!) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j]! < delta || j1 < 0) {
          delta = minv[j]!;
          j1 = j;
        }
      }
      for (let j = 0; j <= n; j++) {
        if (used[j]) {
          u[p[j]!]! += delta;
          v[j]! -= delta;
        } else minv[j]! -= delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0]!;
      p[j0] = p[j1]!;
      j0 = j1;
    } while (j0 !== 0);
  }
  const perm = new Int32Array(n);
  for (let j = 1; j <= n; j++) perm[p[j]! - 1] = j - 1;
  return { perm, sum: assignmentSum(C, perm), u: u.slice(1), v: v.slice(1) };
}

/** The plan P/n of a permutation, row-major n x n. */
export function planFromPermutation(perm: ArrayLike<number>): Float64Array {
  const n = perm.length;
  const plan = new Float64Array(n * n);
  for (let i = 0; i < n; i++) plan[i * n + perm[i]!] = 1 / n;
  return plan;
}

/** <plan, C>. */
export function transportCost(plan: ArrayLike<number>, C: ArrayLike<number>): number {
  let s = 0;
  for (let k = 0; k < plan.length; k++) s += plan[k]! * C[k]!;
  return s;
}

/** -sum plan log plan (0 log 0 = 0): log n for a permutation plan, 2 log n for the uniform one. */
export function planEntropy(plan: ArrayLike<number>): number {
  let h = 0;
  for (let k = 0; k < plan.length; k++) if (plan[k]! > 0) h -= plan[k]! * Math.log(plan[k]!);
  return h;
}

/** Exact OT plan with uniform marginals (Hungarian): the plan, its cost and the permutation. */
export function exactOt(C: ArrayLike<number>, n: number): { plan: Float64Array; cost: number; perm: Int32Array } {
  const { perm } = hungarian(C, n);
  const plan = planFromPermutation(perm);
  return { plan, cost: transportCost(plan, C), perm };
}

/**
 * Entropic OT by log-domain Sinkhorn with uniform marginals a = b = 1/n, in the order the GPU kernel
 * uses (and methods.md 5.b): g = 0 (v = 1), then `iterations` times
 *   f_i = eps log(1/n) - eps LSE_j((g_j - C_ij) / eps),  g_j = eps log(1/n) - eps LSE_i((f_i - C_ij) / eps),
 * and plan_ij = exp((f_i + g_j - C_ij) / eps). Column sums are exact after the last g update; row
 * sums converge as iterations grow.
 */
export function sinkhornLog(
  C: ArrayLike<number>,
  n: number,
  epsilon: number,
  iterations: number,
): { plan: Float64Array; f: Float64Array; g: Float64Array; cost: number; entropy: number } {
  checkSquare(C, n, 'sinkhornLog');
  if (!(epsilon > 0) || !Number.isFinite(epsilon)) throw new Error(`sinkhornLog: epsilon ${epsilon} must be finite and > 0`);
  const f = new Float64Array(n);
  const g = new Float64Array(n);
  const logA = -Math.log(n);
  const lse = (k: number, pick: (m: number) => number): number => {
    let m = -Infinity;
    for (let t = 0; t < k; t++) m = Math.max(m, pick(t));
    if (m === -Infinity) return -Infinity;
    let s = 0;
    for (let t = 0; t < k; t++) s += Math.exp(pick(t) - m);
    return m + Math.log(s);
  };
  for (let it = 0; it < iterations; it++) {
    for (let i = 0; i < n; i++) f[i] = epsilon * (logA - lse(n, (j) => (g[j]! - C[i * n + j]!) / epsilon));
    for (let j = 0; j < n; j++) g[j] = epsilon * (logA - lse(n, (i) => (f[i]! - C[i * n + j]!) / epsilon));
  }
  const plan = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) plan[i * n + j] = Math.exp((f[i]! + g[j]! - C[i * n + j]!) / epsilon);
  return { plan, f, g, cost: transportCost(plan, C), entropy: planEntropy(plan) };
}

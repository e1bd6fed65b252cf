// The OT regulariser's solvers: host references (Hungarian, brute force, log-Sinkhorn) against each
// other and methods.md 5.f, then every GPU solver against them: the enumeration bit for bit against
// an f32-emulating brute force (ties included), the Hungarian against the host optimum for B up to
// 300, Sinkhorn against the float64 host run, and otLoss's gradient through checkOp.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createGpu, getGpu, type Gpu } from '../../src/gpu/index.js';
import { empty, tensor, type Tensor } from '../../src/tensor/tensor.js';
import { record } from '../../src/autograd/tape.js';
import { mapRaw, scale, sub, square, sumTo } from '../../src/ops/elementwise.js';
import {
  OT_STAT,
  OT_STAT_COUNT,
  OtStatsAccumulator,
  otLoss,
  otMaxB,
  otSolve,
  hungarianPlan,
  hungarianStepCost,
  setOtKernelOverrides,
  sinkhornIterationCost,
  sinkhornPlan,
  LOOP_BUDGET,
  type OtOptions,
} from '../../src/adapt/ot.js';
import {
  assignmentSum,
  bruteForceAssignment,
  exactOt,
  factorial,
  hungarian,
  permutationFromIndex,
  permutationIndex,
  planEntropy,
  planFromPermutation,
  sinkhornLog,
  transportCost,
} from '../../src/adapt/ot-host.js';
import { R, sub as rsub, square as rsquare, sum as rsum, reshape as rreshape, scale as rscale } from '../ref/core.js';
import { checkOp, relErr, rng } from '../helpers/parity.js';

// ---------- helpers ----------

function randomCost(n: number, seed: number, lo = 0, hi = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n * n }, () => lo + (hi - lo) * r());
}

/** Small integers: many exact ties, and every f32 sum is exact. */
function integerCost(n: number, seed: number, levels: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n * n }, () => Math.floor(r() * levels));
}

/** A cost whose optimum is the permutation `perm`, unique with a margin of at least 0.3. */
function plantedCost(perm: ArrayLike<number>, seed: number): Float32Array {
  const n = perm.length;
  const r = rng(seed);
  const C = Float32Array.from({ length: n * n }, () => 0.5 + 0.5 * r());
  for (let i = 0; i < n; i++) C[i * n + perm[i]!] = 0.2 * r();
  return C;
}

function randomPerm(n: number, seed: number): Int32Array {
  const r = rng(seed);
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

/** Unit-norm rows [B, d], and a noisy copy re-normalised: joint-feature halves as in Prompt-OT. */
function unitRows(B: number, d: number, seed: number, base?: Float64Array, noise = 0): Float64Array {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const x = new Float64Array(B * d);
  for (let i = 0; i < B; i++) {
    let s = 0;
    for (let k = 0; k < d; k++) {
      const v = (base ? base[i * d + k]! : 0) + (base ? noise : 1) * gauss();
      x[i * d + k] = v;
      s += v * v;
    }
    for (let k = 0; k < d; k++) x[i * d + k]! /= Math.sqrt(s);
  }
  return x;
}

/** C_ij = eta ||z_i - z0_j||^2 (direct differences, so z = z0 gives an exactly zero diagonal). */
function sqDistCost(z: Float64Array, z0: Float64Array, B: number, D: number, eta: number): Float64Array {
  const C = new Float64Array(B * B);
  for (let i = 0; i < B; i++) {
    for (let j = 0; j < B; j++) {
      let s = 0;
      for (let k = 0; k < D; k++) s += (z[i * D + k]! - z0[j * D + k]!) ** 2;
      C[i * B + j] = eta * s;
    }
  }
  return C;
}

/** Joint features [v ; t] of B items (two unit halves of d dims each). */
function joint(v: Float64Array, t: Float64Array, B: number, d: number): Float64Array {
  const z = new Float64Array(B * 2 * d);
  for (let i = 0; i < B; i++) {
    for (let k = 0; k < d; k++) {
      z[i * 2 * d + k] = v[i * d + k]!;
      z[i * 2 * d + d + k] = t[i * d + k]!;
    }
  }
  return z;
}

interface Solved {
  perm: Int32Array;
  plan: Float32Array;
  loss: number;
  stats: Float32Array;
}

/** Checks the plan is exactly a permutation / n (entries 0 or f32(1/n)) and returns the permutation. */
function permOfPlan(plan: Float32Array, n: number, what: string): Int32Array {
  const inv = Math.fround(1 / n);
  const perm = new Int32Array(n).fill(-1);
  const colSeen = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const v = plan[i * n + j]!;
      if (v === 0) continue;
      assert.is(v, inv, `${what}: plan[${i},${j}] = ${v} is neither 0 nor 1/${n}`);
      assert.is(perm[i], -1, `${what}: row ${i} has two entries`);
      assert.is(colSeen[j], 0, `${what}: column ${j} has two entries`);
      perm[i] = j;
      colSeen[j] = 1;
    }
    assert.ok(perm[i]! >= 0, `${what}: row ${i} is empty`);
  }
  return perm;
}

/** Solves on the GPU and reads everything back; exact plans are checked to be permutations / n unless `raw`. */
async function solve(gpu: Gpu, C: ArrayLike<number>, n: number, opts: OtOptions, raw = false): Promise<Solved> {
  const t = tensor(Float32Array.from(C), [n, n], 'f32', gpu);
  const o = otSolve(t, opts);
  // One readback for plan, loss and stats (each costs >= 11.5 ms on Deno).
  const all = empty([n * n + 1 + OT_STAT_COUNT], 'f32', gpu);
  gpu.copy(o.plan.buffer, 0, all.buffer, 0, n * n * 4, 'test gather plan');
  gpu.copy(o.loss.buffer, 0, all.buffer, n * n * 4, 4, 'test gather loss');
  gpu.copy(o.stats.buffer, 0, all.buffer, (n * n + 1) * 4, OT_STAT_COUNT * 4, 'test gather stats');
  const v = (await all.read()) as Float32Array;
  for (const x of [t, o.plan, o.loss, o.stats, all]) x.dispose();
  const plan = v.slice(0, n * n);
  const loss = v[n * n]!;
  const stats = v.slice(n * n + 1);
  const perm = opts.solver === 'exact' && !raw ? permOfPlan(plan, n, `${opts.exactAlgorithm ?? 'auto'} B=${n}`) : new Int32Array(0);
  return { perm, plan, loss, stats };
}

const isIdentity = (p: ArrayLike<number>) => Array.from(p).every((v, i) => v === i);
const f32eq = (a: number, b: number, rel: number) => Math.abs(a - b) <= rel * Math.max(1, Math.abs(b));

/** Exact-plan stats against the permutation the solver returned. */
function checkExactStats(s: Solved, C: ArrayLike<number>, n: number, what: string): void {
  const sum = assignmentSum(C, s.perm, true);
  const moved = Array.from(s.perm).filter((v, i) => v !== i).length;
  // WGSL division is only accurate to 2.5 ulp, hence not bit equality with fround(sum / n).
  assert.ok(f32eq(s.loss, sum / n, 1e-6), `${what}: loss ${s.loss} vs ${sum / n}`);
  assert.is(s.stats[OT_STAT.cost], s.loss, `${what}: stats cost`);
  assert.is(s.stats[OT_STAT.nonIdentity], moved ? 1 : 0, `${what}: nonIdentity`);
  assert.ok(f32eq(s.stats[OT_STAT.entropy]!, Math.log(n), 1e-6), `${what}: entropy ${s.stats[OT_STAT.entropy]} vs log ${n}`);
  assert.ok(f32eq(s.stats[OT_STAT.offDiagonalMass]!, moved / n, 1e-6), `${what}: offDiagonalMass`);
  assert.is(s.stats[OT_STAT.marginalError], 0, `${what}: marginalError`);
  assert.is(s.stats[OT_STAT.nonFinite], 0, `${what}: nonFinite`);
}

// ---------- host references ----------

test('host: Lehmer index round trip, identity = 0, lexicographic order', () => {
  for (let n = 1; n <= 6; n++) {
    let prev = '';
    for (let k = 0; k < factorial(n); k++) {
      const p = permutationFromIndex(k, n);
      assert.is(permutationIndex(p), k);
      const key = Array.from(p, (v) => String.fromCharCode(65 + v)).join('');
      assert.ok(key > prev, `n=${n}: index ${k} not in lexicographic order`);
      prev = key;
    }
    assert.ok(isIdentity(permutationFromIndex(0, n)));
    assert.equal(Array.from(permutationFromIndex(factorial(n) - 1, n)), Array.from({ length: n }, (_, i) => n - 1 - i));
  }
  assert.throws(() => permutationFromIndex(24, 4), /out of/);
});

test('host: Hungarian = brute force (B 1..8), duals certify optimality', () => {
  for (let n = 1; n <= 8; n++) {
    for (let s = 0; s < (n <= 6 ? 25 : 6); s++) {
      const C = s % 3 === 2 ? integerCost(n, 100 * n + s, 3) : randomCost(n, 100 * n + s, -2, 3);
      const h = hungarian(C, n);
      const b = bruteForceAssignment(C, n);
      assert.ok(Math.abs(h.sum - b.sum) < 1e-12, `n=${n} seed ${s}: Hungarian ${h.sum} vs brute force ${b.sum}`);
      let dual = 0;
      for (let i = 0; i < n; i++) dual += h.u[i]! + h.v[i]!;
      assert.ok(Math.abs(dual - h.sum) < 1e-9, `n=${n}: dual ${dual} vs primal ${h.sum}`);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          const red = C[i * n + j]! - h.u[i]! - h.v[j]!;
          assert.ok(red > -1e-9, `n=${n}: reduced cost ${red} < 0`);
          if (h.perm[i] === j) assert.ok(Math.abs(red) < 1e-9, `n=${n}: assigned reduced cost ${red}`);
        }
      }
    }
  }
  // Ties: an all-equal cost has every permutation optimal; brute force takes the identity.
  assert.ok(isIdentity(bruteForceAssignment(new Float32Array(25).fill(0.5), 5).perm));
});

test('host: methods.md 5.f (B = 3 exact and Sinkhorn numbers)', () => {
  const X = [[1, 0], [0, 1], [0.6, 0.8]];
  const Y = [[0.8, 0.6], [1, 0], [0, 1]];
  const D = new Float64Array(9);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) D[i * 3 + j] = (X[i]![0]! - Y[j]![0]!) ** 2 + (X[i]![1]! - Y[j]![1]!) ** 2;
  assert.ok(relErr(D, [0.4, 0, 2, 0.8, 2, 0, 0.08, 0.8, 0.4]) < 1e-12);
  const ex = exactOt(D, 3);
  assert.equal(Array.from(ex.perm), [1, 2, 0]);
  assert.ok(Math.abs(ex.cost - 0.026667) < 5e-7);
  assert.ok(Math.abs(0.5 * ex.cost - 0.013333) < 5e-7);
  assert.ok(Math.abs(10 * 0.5 * ex.cost - 0.133333) < 5e-7);
  const s50 = sinkhornLog(D, 3, 0.1, 50);
  assert.ok(Math.abs(s50.cost - 0.030089) < 5e-7, `eps 0.1, 50 its: ${s50.cost}`);
  const rows = [0, 1, 2].map((i) => s50.plan[i * 3]! + s50.plan[i * 3 + 1]! + s50.plan[i * 3 + 2]!);
  assert.ok(relErr(rows, [0.3368, 0.32967, 0.33353]) < 2e-5, `row sums ${rows}`);
  for (let j = 0; j < 3; j++) assert.ok(Math.abs(s50.plan[j]! + s50.plan[3 + j]! + s50.plan[6 + j]! - 1 / 3) < 1e-15, 'column sums exact');
  assert.ok(Math.abs(sinkhornLog(D, 3, 0.1, 1000).cost - 0.029412) < 5e-7);
  assert.ok(Math.abs(sinkhornLog(D, 3, 0.05, 1000).cost - 0.026769) < 5e-7);
});

// ---------- GPU exact: enumeration ----------

test('enumerate = f32 brute force bit for bit (B 1..8: random, integer ties, all-equal, planted)', async () => {
  const gpu = await getGpu();
  for (let n = 1; n <= 8; n++) {
    const cases: [string, Float32Array][] = [];
    const reps = n <= 6 ? 6 : 3;
    for (let s = 0; s < reps; s++) cases.push([`random ${s}`, randomCost(n, 7 * n + s, -1, 2)]);
    for (let s = 0; s < reps; s++) cases.push([`ties ${s}`, integerCost(n, 900 + 7 * n + s, 2 + (s % 3))]);
    cases.push(['all equal', new Float32Array(n * n).fill(0.25)]);
    cases.push(['planted', plantedCost(randomPerm(n, n), n)]);
    for (const [name, C] of cases) {
      const what = `enumerate B=${n} ${name}`;
      const s = await solve(gpu, C, n, { solver: 'exact', exactAlgorithm: 'enumerate' });
      const b = bruteForceAssignment(C, n, { f32: true });
      assert.equal(Array.from(s.perm), Array.from(b.perm), `${what}: permutation`);
      checkExactStats(s, C, n, what);
      assert.is(s.stats[OT_STAT.steps], factorial(n));
      assert.is(s.stats[OT_STAT.dualGap], 0);
      if (name === 'all equal') assert.ok(isIdentity(s.perm), `${what}: identity wins the tie`);
    }
  }
});

test('enumerate: the identity wins exact ties it is in; a strictly better permutation beats it', async () => {
  const gpu = await getGpu();
  // B = 4: identity and the swap (0 1) both cost 2; every other permutation costs more.
  const C = new Float32Array([0.5, 0.5, 9, 9, 0.5, 0.5, 9, 9, 9, 9, 0.5, 9, 9, 9, 9, 0.5]);
  let s = await solve(gpu, C, 4, { solver: 'exact' });
  assert.ok(isIdentity(s.perm));
  assert.is(s.stats[OT_STAT.nonIdentity], 0);
  C[1] = 0.25; // now the swap is strictly cheaper
  s = await solve(gpu, C, 4, { solver: 'exact' });
  assert.equal(Array.from(s.perm), [1, 0, 2, 3]);
  assert.is(s.stats[OT_STAT.nonIdentity], 1);
  assert.ok(f32eq(s.stats[OT_STAT.offDiagonalMass]!, 0.5, 1e-7));
});

// ---------- GPU exact: Hungarian ----------

test('hungarian forced for B 1..8 reaches the brute-force optimum (exactly on integer costs)', async () => {
  const gpu = await getGpu();
  for (let n = 1; n <= 8; n++) {
    for (let s = 0; s < 4; s++) {
      const ints = s % 2 === 1;
      const C = ints ? integerCost(n, 300 + 11 * n + s, 4) : randomCost(n, 300 + 11 * n + s, -1, 1);
      const what = `hungarian B=${n} ${ints ? 'integer' : 'random'} ${s}`;
      const g = await solve(gpu, C, n, { solver: 'exact', exactAlgorithm: 'hungarian' });
      const b = bruteForceAssignment(C, n);
      const got = assignmentSum(C, g.perm);
      if (ints) assert.is(got, b.sum, `${what}: sum`);
      else assert.ok(Math.abs(got - b.sum) <= 4 * n * 2 ** -23, `${what}: sum ${got} vs optimum ${b.sum}`);
      if (ints && assignmentSum(C, permutationFromIndex(0, n)) === b.sum) assert.ok(isIdentity(g.perm), `${what}: identity-optimal tie`);
      checkExactStats(g, C, n, what);
    }
  }
  const all = await solve(gpu, new Float32Array(36).fill(3), 6, { solver: 'exact', exactAlgorithm: 'hungarian' });
  assert.ok(isIdentity(all.perm), 'all-equal cost: identity');
});

test('hungarian = host optimum for B in {9, 16, 32, 64, 100, 300} (random, signed/large, integer ties)', async () => {
  const gpu = await getGpu();
  for (const n of [9, 16, 32, 64, 100, 300]) {
    const kinds: [string, Float32Array][] = [
      ['random', randomCost(n, 5000 + n)],
      ['integer ties', integerCost(n, 6000 + n, 5)],
    ];
    if (n <= 64) kinds.push(['signed large', randomCost(n, 7000 + n, -1000, 1000)]);
    for (const [name, C] of kinds) {
      const what = `hungarian B=${n} ${name}`;
      const g = await solve(gpu, C, n, { solver: 'exact' });
      const h = hungarian(C, n);
      const got = assignmentSum(C, g.perm);
      let maxAbs = 0;
      for (const v of C) maxAbs = Math.max(maxAbs, Math.abs(v));
      // f32 potentials: the found sum is optimal up to a few ulp of the costs per row.
      const tol = name === 'integer ties' ? 0 : 4 * n * maxAbs * 2 ** -23;
      assert.ok(Math.abs(got - h.sum) <= tol, `${what}: sum ${got} vs optimum ${h.sum} (tol ${tol})`);
      const gap = g.stats[OT_STAT.dualGap]!;
      assert.ok(Math.abs(gap) <= 4 * n * maxAbs * 2 ** -23 + 1e-30, `${what}: duality gap bound ${gap}`);
      assert.ok(g.stats[OT_STAT.steps]! >= n && g.stats[OT_STAT.steps]! <= (n * (n + 1)) / 2, `${what}: steps ${g.stats[OT_STAT.steps]}`);
      checkExactStats(g, C, n, what);
      if (name === 'random') assert.equal(Array.from(g.perm), Array.from(h.perm), `${what}: permutation (no ties)`);
    }
  }
});

test('hungarian: planted permutations and the identity-optimal case at B = 9, 32, 65', async () => {
  const gpu = await getGpu();
  for (const n of [9, 32, 65]) {
    const p = randomPerm(n, n + 1);
    const s = await solve(gpu, plantedCost(p, n), n, { solver: 'exact' });
    assert.equal(Array.from(s.perm), Array.from(p), `B=${n} planted`);
    const id = await solve(gpu, plantedCost(Int32Array.from({ length: n }, (_, i) => i), n + 7), n, { solver: 'exact' });
    assert.ok(isIdentity(id.perm), `B=${n} identity planted`);
    assert.is(id.stats[OT_STAT.nonIdentity], 0);
    const eq = await solve(gpu, new Float32Array(n * n).fill(1.5), n, { solver: 'exact' });
    assert.ok(isIdentity(eq.perm), `B=${n} all equal -> identity`);
  }
});

// ---------- GPU Sinkhorn ----------

test('sinkhorn = float64 host run with the same epsilon and iterations', async () => {
  const gpu = await getGpu();
  const cases: [number, number, number][] = [
    [1, 0.1, 5],
    [3, 0.1, 50],
    [7, 0.5, 1],
    [7, 0.05, 100],
    [33, 0.1, 20],
    [64, 0.2, 100],
    [100, 0.1, 30],
  ];
  for (const [n, eps, its] of cases) {
    const C = randomCost(n, 40 + n, 0, 2);
    const what = `sinkhorn B=${n} eps=${eps} iters=${its}`;
    const g = await solve(gpu, C, n, { solver: 'sinkhorn', epsilon: eps, iterations: its });
    const h = sinkhornLog(C, n, eps, its);
    const ep = relErr(g.plan, h.plan);
    assert.ok(ep < 2e-5, `${what}: plan rel err ${ep}`);
    assert.ok(f32eq(g.loss, h.cost, 2e-5), `${what}: cost ${g.loss} vs ${h.cost}`);
    assert.is(g.stats[OT_STAT.cost], g.loss);
    assert.ok(Math.abs(g.stats[OT_STAT.entropy]! - h.entropy) < 2e-5 * Math.max(1, h.entropy), `${what}: entropy ${g.stats[OT_STAT.entropy]} vs ${h.entropy}`);
    let trace = 0;
    let marg = 0;
    let moved = 0;
    for (let i = 0; i < n; i++) {
      let row = 0;
      for (let j = 0; j < n; j++) {
        row += h.plan[i * n + j]!;
        if (j !== i && h.plan[i * n + j]! > h.plan[i * n + i]!) moved = 1;
      }
      trace += h.plan[i * n + i]!;
      marg = Math.max(marg, Math.abs(row * n - 1));
    }
    assert.ok(Math.abs(g.stats[OT_STAT.offDiagonalMass]! - (1 - trace)) < 2e-5, `${what}: off-diagonal mass`);
    assert.ok(Math.abs(g.stats[OT_STAT.marginalError]! - marg) < 1e-4, `${what}: marginal error ${g.stats[OT_STAT.marginalError]} vs ${marg}`);
    assert.is(g.stats[OT_STAT.nonIdentity], moved, `${what}: nonIdentity`);
    assert.is(g.stats[OT_STAT.steps], its);
  }
});

test('sinkhorn approaches the exact cost as epsilon -> 0 (B = 6 and 20)', async () => {
  const gpu = await getGpu();
  for (const n of [6, 20]) {
    const C = randomCost(n, 77 + n, 0, 1);
    const exact = exactOt(C, n).cost;
    const errs: number[] = [];
    for (const [eps, its] of [[1, 200], [0.1, 500], [0.01, 3000]] as const) {
      const g = await solve(gpu, C, n, { solver: 'sinkhorn', epsilon: eps, iterations: its });
      errs.push(Math.abs(g.loss - exact));
      // The entropic cost is never below the exact one (up to the unconverged row marginals).
      assert.ok(g.loss > exact - 1e-3, `B=${n} eps=${eps}: ${g.loss} below exact ${exact}`);
    }
    assert.ok(errs[0]! > errs[1]! && errs[1]! > errs[2]!, `B=${n}: errors not decreasing: ${errs}`);
    assert.ok(errs[2]! < 0.02 * exact, `B=${n}: error at eps 0.01 is ${errs[2]} (exact ${exact})`);
  }
});

test('sinkhorn reproduces methods.md 5.f on the GPU', async () => {
  const gpu = await getGpu();
  const D = [0.4, 0, 2, 0.8, 2, 0, 0.08, 0.8, 0.4];
  const s50 = await solve(gpu, D, 3, { solver: 'sinkhorn', epsilon: 0.1, iterations: 50 });
  assert.ok(Math.abs(s50.loss - 0.030089) < 2e-6, `${s50.loss}`);
  const rows = [0, 1, 2].map((i) => s50.plan[i * 3]! + s50.plan[i * 3 + 1]! + s50.plan[i * 3 + 2]!);
  assert.ok(relErr(rows, [0.3368, 0.32967, 0.33353]) < 5e-5, `row sums ${rows}`);
  assert.ok(Math.abs((await solve(gpu, D, 3, { solver: 'sinkhorn', epsilon: 0.1, iterations: 1000 })).loss - 0.029412) < 2e-6);
  assert.ok(Math.abs((await solve(gpu, D, 3, { solver: 'sinkhorn', epsilon: 0.05, iterations: 1000 })).loss - 0.026769) < 2e-6);
});

// ---------- determinism, non-finite input ----------

test('every solver is bit-identical run to run', async () => {
  const gpu = await getGpu();
  const variants: [number, OtOptions][] = [
    [8, { solver: 'exact', exactAlgorithm: 'enumerate' }],
    [8, { solver: 'exact', exactAlgorithm: 'hungarian' }],
    [47, { solver: 'exact' }],
    [47, { solver: 'sinkhorn', epsilon: 0.05, iterations: 60 }],
  ];
  for (const [n, opts] of variants) {
    const C = randomCost(n, 4242 + n, -1, 1);
    const a = await solve(gpu, C, n, opts);
    const b = await solve(gpu, C, n, opts);
    assert.equal(Array.from(new Uint32Array(a.plan.buffer)), Array.from(new Uint32Array(b.plan.buffer)), `${JSON.stringify(opts)}: plan`);
    assert.equal(Array.from(new Uint32Array(a.stats.buffer)), Array.from(new Uint32Array(b.stats.buffer)), `${JSON.stringify(opts)}: stats`);
    assert.is(a.loss, b.loss);
  }
});

test('NaN and infinite costs: flagged, the solvers terminate, exact plans stay permutations', async () => {
  const gpu = await getGpu();
  for (const n of [4, 8, 12]) {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const C = randomCost(n, 99 + n);
      C[n + 2] = bad;
      for (const algo of n <= 8 ? (['enumerate', 'hungarian'] as const) : (['hungarian'] as const)) {
        const s = await solve(gpu, C, n, { solver: 'exact', exactAlgorithm: algo });
        assert.is(s.stats[OT_STAT.nonFinite], 1, `${algo} B=${n} ${bad}`);
        // Enumeration skips NaN sums and otherwise ranks as the f32 brute force does.
        if (algo === 'enumerate') assert.equal(Array.from(s.perm), Array.from(bruteForceAssignment(C, n, { f32: true }).perm));
      }
      const s = await solve(gpu, C, n, { solver: 'sinkhorn', epsilon: 0.1, iterations: 5 });
      assert.is(s.stats[OT_STAT.nonFinite], 1, `sinkhorn B=${n} ${bad}`);
    }
    const allNaN = await solve(gpu, new Float32Array(n * n).fill(NaN), n, { solver: 'exact' });
    assert.ok(n > 8 || isIdentity(allNaN.perm), `B=${n}: all-NaN enumeration falls back to the identity`);
  }
});

test('resumable dispatches: a small loop budget splits Hungarian and Sinkhorn, results bit-identical', async () => {
  const gpu = await getGpu();
  const cases: [number, OtOptions, number][] = [
    [23, { solver: 'exact', exactAlgorithm: 'hungarian' }, 1000],
    [70, { solver: 'exact' }, 1500],
    [23, { solver: 'sinkhorn', epsilon: 0.05, iterations: 37 }, 600],
    [70, { solver: 'sinkhorn', epsilon: 0.2, iterations: 9 }, 800],
  ];
  for (const [n, opts, budget] of cases) {
    const C = randomCost(n, 515 + n, -1, 1);
    const d0 = gpu.counters.dispatches;
    const one = await solve(gpu, C, n, opts);
    const d1 = gpu.counters.dispatches;
    const prev = setOtKernelOverrides({ loopBudget: budget });
    let split: Solved;
    try {
      const plan = opts.solver === 'exact' ? hungarianPlan(n, n + 1 <= 32 ? 32 : 64) : sinkhornPlan(n, opts.iterations!);
      assert.ok(plan.chunks.length > 2, `${JSON.stringify(opts)} B=${n}: the small budget splits (${plan.chunks})`);
      split = await solve(gpu, C, n, opts);
      assert.is(gpu.counters.dispatches - d1, plan.chunks.length + (plan.finishOnly ? 1 : 0), 'dispatch count');
    } finally {
      setOtKernelOverrides(prev);
    }
    assert.is(d1 - d0, 1, 'the default budget runs this case in one dispatch');
    const what = `${opts.solver} B=${n}`;
    assert.equal(Array.from(new Uint32Array(split.plan.buffer)), Array.from(new Uint32Array(one.plan.buffer)), `${what}: plan`);
    assert.equal(Array.from(new Uint32Array(split.stats.buffer)), Array.from(new Uint32Array(one.stats.buffer)), `${what}: stats`);
    assert.is(split.stats[OT_STAT.incomplete], 0);
  }
});

test('hungarian: workgroup sizes 16, 32, 64 give bit-identical results', async () => {
  const gpu = await getGpu();
  for (const n of [5, 15, 40]) {
    const C = integerCost(n, 31 + n, 3); // many ties: the tie-breaking must not depend on the size
    const R2 = randomCost(n, 32 + n);
    for (const c of [C, R2]) {
      const runs: Solved[] = [];
      for (const wg of [16, 32, 64] as const) {
        const prev = setOtKernelOverrides({ hungarianWorkgroup: wg });
        try {
          runs.push(await solve(gpu, c, n, { solver: 'exact', exactAlgorithm: 'hungarian' }));
        } finally {
          setOtKernelOverrides(prev);
        }
      }
      for (const r of runs.slice(1)) {
        assert.equal(Array.from(r.perm), Array.from(runs[0]!.perm), `B=${n}: permutation`);
        assert.equal(Array.from(new Uint32Array(r.stats.buffer)), Array.from(new Uint32Array(runs[0]!.stats.buffer)), `B=${n}: stats`);
      }
    }
  }
});

test('long solves stay complete: 20000 Sinkhorn iterations, a worst-case Hungarian (C = -i j)', async () => {
  const gpu = await getGpu();
  const C = randomCost(8, 8);
  const s = await solve(gpu, C, 8, { solver: 'sinkhorn', epsilon: 0.05, iterations: 20000 });
  assert.is(s.stats[OT_STAT.steps], 20000);
  assert.is(s.stats[OT_STAT.incomplete], 0);
  const h = sinkhornLog(C, 8, 0.05, 20000);
  assert.ok(relErr(s.plan, h.plan) < 2e-5);
  const n = 64;
  const hard = Float32Array.from({ length: n * n }, (_, k) => -Math.floor(k / n) * (k % n));
  const g = await solve(gpu, hard, n, { solver: 'exact' });
  assert.is(g.stats[OT_STAT.incomplete], 0);
  assert.ok(g.stats[OT_STAT.steps]! > 1900, `steps ${g.stats[OT_STAT.steps]} (near the n(n+1)/2 worst case)`);
  assert.is(assignmentSum(hard, g.perm), hungarian(hard, n).sum);
});

test('loop canary: with no budget the CPU adapters cut the loops short and stats say incomplete; the cost models over-count', async () => {
  const gpu = await getGpu();
  const cpu = gpu.kind === 'llvmpipe' || gpu.kind === 'lavapipe';
  const prev = setOtKernelOverrides({ loopBudget: 1e12 });
  try {
    for (const n of [1, 4, 20, 64, 65, 130]) {
      const its = Math.ceil((3 * 65535) / sinkhornIterationCost(n));
      const s = await solve(gpu, randomCost(n, n), n, { solver: 'sinkhorn', epsilon: 0.1, iterations: its });
      if (!cpu) {
        assert.is(s.stats[OT_STAT.incomplete], 0, `${gpu.kind}: no loop limit expected`);
        continue;
      }
      assert.is(s.stats[OT_STAT.incomplete], 1, `sinkhorn B=${n}: the canary must see the cut`);
      const done = s.stats[OT_STAT.steps]!;
      assert.ok(done < its, `sinkhorn B=${n}: ${done} of ${its} iterations`);
      // Iterations that fit in 65535 loop trips, against the model's cost per iteration.
      assert.ok(65535 / done <= sinkhornIterationCost(n), `sinkhorn B=${n}: measured ${(65535 / done).toFixed(1)} loop trips per iteration > model ${sinkhornIterationCost(n)}`);
    }
    // n(n+1)/2 = 11325 worst-case steps in one dispatch: far over 65535 loop trips.
    const n = 150;
    const hard = Float32Array.from({ length: n * n }, (_, k) => -Math.floor(k / n) * (k % n));
    const g = await solve(gpu, hard, n, { solver: 'exact', exactAlgorithm: 'hungarian' }, true);
    if (cpu) {
      assert.is(g.stats[OT_STAT.incomplete], 1, 'hungarian: the canary must see the cut');
      const steps = g.stats[OT_STAT.steps]!;
      assert.ok(65535 / steps <= hungarianStepCost(n, 64), `hungarian B=${n}: measured ${(65535 / steps).toFixed(1)} loop trips per step > model ${hungarianStepCost(n, 64)}`);
    } else {
      assert.is(g.stats[OT_STAT.incomplete], 0);
    }
  } finally {
    setOtKernelOverrides(prev);
  }
  assert.ok(LOOP_BUDGET < 65535);
});

// ---------- otLoss: autograd ----------

/** float64 reference: <P* / B, C> with P* from the host Hungarian; adjoint dL/dC = g P* / B. */
function refOtExact(C: R): R {
  const n = C.shape[0]!;
  const { plan, cost } = exactOt(C.data, n);
  return new R(Float64Array.of(cost), [], [C], (g) => {
    if (!C.grad) C.grad = new Float64Array(C.size);
    for (let k = 0; k < plan.length; k++) C.grad[k]! += g[0]! * plan[k]!;
  });
}

/** Sinkhorn plan held constant (the adjoint is the plan, not the derivative of the entropic cost). */
function refOtSinkhorn(C: R, eps: number, its: number): R {
  const n = C.shape[0]!;
  const { plan } = sinkhornLog(C.data, n, eps, its);
  return new R(Float64Array.of(transportCost(plan, C.data)), [], [C], (g) => {
    if (!C.grad) C.grad = new Float64Array(C.size);
    for (let k = 0; k < plan.length; k++) C.grad[k]! += g[0]! * plan[k]!;
  });
}

test('otLoss: forward and dL/dC = plan through checkOp (enumerate, hungarian, sinkhorn)', async () => {
  const cases: [number, OtOptions][] = [
    [1, { solver: 'exact' }],
    [4, { solver: 'exact' }],
    [7, { solver: 'exact' }],
    [5, { solver: 'exact', exactAlgorithm: 'hungarian' }],
    [13, { solver: 'exact' }],
    [40, { solver: 'exact' }],
  ];
  for (const [n, opts] of cases) {
    await checkOp({
      name: `otLoss ${opts.exactAlgorithm ?? 'auto'} B=${n}`,
      inputs: [{ shape: [n, n], data: plantedCost(randomPerm(n, 3 * n), 5 * n) }],
      gpu: (C) => otLoss(C, opts).loss,
      ref: refOtExact,
    });
  }
  for (const n of [3, 17]) {
    await checkOp({
      name: `otLoss sinkhorn B=${n}`,
      inputs: [{ shape: [n, n], range: [0, 1] }],
      gpu: (C) => otLoss(C, { solver: 'sinkhorn', epsilon: 0.1, iterations: 40 }).loss,
      ref: (C) => refOtSinkhorn(C, 0.1, 40),
      // Finite differences would differentiate through the Sinkhorn plan, which the op holds constant.
      fd: false,
    });
  }
});

// Test-only autograd sum over the last axis (the engine has no reduction op with a backward yet).
function sumLast(x: Tensor): Tensor {
  const [a, b] = x.shape as [number, number, number];
  const o = sumTo(x, [a, b, 1]);
  const y = o.share([a, b]);
  o.dispose();
  return record(y, 'sumLast', [x], (_needs, ctx) => {
    const xs = ctx.save(x);
    return (g) => {
      const g3 = g.share([a, b, 1]);
      const out = mapRaw('a + 0.0 * b', g3, xs, 0, 0, 'sumLast backward');
      g3.dispose();
      return [out];
    };
  });
}

test('methods.md 5.f end to end: C = eta ||x_i - y_j||^2 on the GPU, loss 0.013333, dL/dX', async () => {
  const gpu = await getGpu();
  const Xv = [1, 0, 0, 1, 0.6, 0.8];
  const Yv = [0.8, 0.6, 1, 0, 0, 1];
  const X = tensor(Xv, [3, 1, 2], 'f32', gpu).param('X');
  const Y = tensor(Yv, [1, 3, 2], 'f32', gpu);
  const C = scale(sumLast(square(sub(X, Y))), 0.5);
  const o = otLoss(C, { solver: 'exact' });
  assert.ok(Math.abs((await o.loss.item()) - 0.013333) < 5e-7);
  assert.equal(Array.from(permOfPlan((await o.plan.read()) as Float32Array, 3, '5.f')), [1, 2, 0]);
  const total = scale(o.loss, 10);
  assert.ok(Math.abs((await total.item()) - 0.133333) < 5e-6);
  o.loss.backward();
  const gx = await X.grad!.read();
  assert.ok(relErr(gx, [0, 0, 0, 0, -0.066667, 0.066667]) < 1e-5, `dL/dX ${Array.from(gx)}`);
  // The same chain in the float64 reference library.
  const rx = R.from(Xv, [3, 1, 2]);
  const rC = rscale(rreshape(rsum(rsquare(rsub(rx, R.from(Yv, [1, 3, 2]))), 2), [3, 3]), 0.5);
  const rl = refOtExact(rC);
  rl.backward();
  assert.ok(relErr(gx, rx.grad!) < 1e-6);
  for (const t of [X, Y, C, o.plan, o.stats, o.loss, total]) t.dispose();
});

test('methods.md 5.b/5.f behaviour: at init (z = z0) the plan is identity/B and L_OT = 0; small noise keeps the identity', async () => {
  const gpu = await getGpu();
  for (const [B, d] of [[4, 8], [8, 16], [32, 16]] as const) {
    const v = unitRows(B, d, 10 + B);
    const t = unitRows(B, d, 20 + B);
    const z = joint(v, t, B, d);
    const C0 = sqDistCost(z, z, B, 2 * d, 0.5);
    const init = await solve(gpu, C0, B, { solver: 'exact' });
    assert.ok(isIdentity(init.perm), `B=${B}: identity at init`);
    assert.is(init.loss, 0);
    assert.is(init.stats[OT_STAT.nonIdentity], 0);
    // Teachers = students + 0.05 noise (re-normalised): the diagonal stays the cheapest matching,
    // and L_OT = (eta / B) sum_i ||z_i - z0_i||^2 (point-wise distillation).
    const z0 = joint(unitRows(B, d, 30 + B, v, 0.05), unitRows(B, d, 40 + B, t, 0.05), B, d);
    const C = sqDistCost(z, z0, B, 2 * d, 0.5);
    const host = hungarian(C, B);
    assert.ok(isIdentity(host.perm), `B=${B}: host identity with small noise`);
    const s = await solve(gpu, C, B, { solver: 'exact' });
    assert.ok(isIdentity(s.perm), `B=${B}: GPU identity with small noise`);
    let diag = 0;
    for (let i = 0; i < B; i++) diag += C[i * B + i]!;
    assert.ok(f32eq(s.loss, diag / B, 1e-5), `B=${B}: loss ${s.loss} = diagonal ${diag / B}`);
  }
  // The 5.b example (B = 4, 8+8 dims, 0.3-noise teachers): the GPU plan is the host optimum, and
  // when that is the identity the loss equals the diagonal term.
  const v = unitRows(4, 8, 1);
  const t = unitRows(4, 8, 2);
  const z = joint(v, t, 4, 8);
  const z0 = joint(unitRows(4, 8, 3, v, 0.3), unitRows(4, 8, 4, t, 0.3), 4, 8);
  const C = sqDistCost(z, z0, 4, 16, 0.5);
  const s = await solve(gpu, C, 4, { solver: 'exact' });
  assert.equal(Array.from(s.perm), Array.from(bruteForceAssignment(C, 4, { f32: true }).perm));
  if (isIdentity(s.perm)) assert.ok(f32eq(s.loss, (C[0]! + C[5]! + C[10]! + C[15]!) / 4, 1e-6));
});

test('OtStatsAccumulator: fraction of non-identity steps and mean entropy, read back once', async () => {
  const gpu = await getGpu();
  const acc = new OtStatsAccumulator(gpu);
  const p = randomPerm(6, 1);
  const costs = [plantedCost([0, 1, 2, 3, 4, 5], 1), plantedCost(p, 2), plantedCost([0, 1, 2, 3, 4, 5], 3), plantedCost([1, 0, 2, 3, 4, 5], 4)];
  const reads0 = gpu.counters.readbacks;
  for (const C of costs) {
    const t = tensor(C, [6, 6], 'f32', gpu);
    const o = otSolve(t, { solver: 'exact' });
    acc.add(o.stats);
    for (const x of [t, o.loss, o.plan, o.stats]) x.dispose();
  }
  assert.is(gpu.counters.readbacks, reads0, 'no readback while accumulating');
  const m = await acc.read();
  assert.is(acc.steps, 4);
  assert.ok(Math.abs(m.nonIdentity - 0.5) < 1e-7, `nonIdentity ${m.nonIdentity}`);
  assert.ok(Math.abs(m.entropy - Math.log(6)) < 1e-6);
  const moved = Array.from(p).filter((v, i) => v !== i).length;
  assert.ok(Math.abs(m.offDiagonalMass - (moved / 6 + 2 / 6) / 4) < 1e-6);
  acc.reset();
  assert.is(acc.steps, 0);
  const wrong = tensor(new Float32Array(4), [4], 'f32', gpu);
  assert.throws(() => acc.add(wrong), /not an OT stats tensor f32\[9\]/);
  wrong.dispose();
});

// ---------- errors and limits ----------

test('bad inputs are clear errors before any dispatch', async () => {
  const gpu = await getGpu();
  const rect = tensor(new Float32Array(6), [2, 3], 'f32', gpu);
  const vec = tensor(new Float32Array(4), [4], 'f32', gpu);
  const ints = tensor(new Int32Array(4), [2, 2], 'i32', gpu);
  const nine = tensor(new Float32Array(81), [9, 9], 'f32', gpu);
  const empty0 = tensor(new Float32Array(0), [0, 0], 'f32', gpu);
  const big = tensor(new Float32Array(1025 * 1025), [1025, 1025], 'f32', gpu);
  const before = gpu.counters.dispatches;
  assert.throws(() => otLoss(rect, { solver: 'exact' }), /otLoss: cost tensor#\d+ f32\[2,3\] must be a square matrix \[B,B\]/);
  assert.throws(() => otLoss(vec, { solver: 'exact' }), /must be a square matrix/);
  assert.throws(() => otLoss(ints, { solver: 'exact' }), /otLoss: cost tensor#\d+ i32\[2,2\] must be f32/);
  assert.throws(() => otLoss(empty0, { solver: 'exact' }), /is empty/);
  assert.throws(() => otLoss(nine, { solver: 'exact', exactAlgorithm: 'enumerate' }), /'enumerate' supports B <= 8 on this device/);
  assert.throws(() => otLoss(big, { solver: 'exact' }), /'hungarian' supports B <= 512 on this device \(maxComputeWorkgroupStorageSize/);
  assert.throws(() => otLoss(big, { solver: 'sinkhorn' }), /sinkhorn supports B <= 1024/);
  assert.throws(() => otLoss(nine, { solver: 'sinkhorn', epsilon: 0 }), /epsilon 0 must be finite and > 0/);
  assert.throws(() => otLoss(nine, { solver: 'sinkhorn', epsilon: NaN }), /epsilon NaN/);
  assert.throws(() => otLoss(nine, { solver: 'sinkhorn', epsilon: 1e-45 }), /1\/epsilon finite/);
  assert.throws(() => otLoss(nine, { solver: 'sinkhorn', iterations: 0 }), /iterations 0 must be an integer/);
  assert.throws(() => otLoss(nine, { solver: 'sinkhorn', iterations: 2.5 }), /iterations 2.5/);
  assert.throws(() => otSolve(nine, { solver: 'emd' as 'exact' }), /unknown solver "emd"/);
  assert.throws(() => otSolve(nine, { solver: 'exact', exactAlgorithm: 'auction' as 'auto' }), /unknown exactAlgorithm "auction"/);
  assert.is(gpu.counters.dispatches, before);
  nine.dispose();
  assert.throws(() => otLoss(nine, { solver: 'exact' }), /otLoss: tensor#\d+ f32\[9,9\] was disposed/);
  for (const t of [rect, vec, ints, empty0, big]) t.dispose();
});

test('device limits: a small workgroup memory lowers the Hungarian/Sinkhorn maximum B, and the small tiers still solve', async () => {
  const small = await createGpu({ limitOverrides: { maxComputeWorkgroupStorageSize: 4096 } });
  try {
    assert.equal(otMaxB(small), { enumerate: 8, hungarian: 64, sinkhorn: 256 });
    const C100 = tensor(randomCost(100, 1), [100, 100], 'f32', small);
    assert.throws(() => otSolve(C100, { solver: 'exact' }), /'hungarian' supports B <= 64 on this device \(maxComputeWorkgroupStorageSize 4096/);
    C100.dispose();
    const C = randomCost(64, 2);
    const s = await solve(small, C, 64, { solver: 'exact' });
    assert.ok(Math.abs(assignmentSum(C, s.perm) - hungarian(C, 64).sum) < 64 * 2 ** -20);
  } finally {
    small.destroy();
  }
  const gpu = await getGpu();
  const m = otMaxB(gpu);
  assert.ok(m.hungarian >= 64 && m.sinkhorn >= 256, `default device: ${JSON.stringify(m)}`);
});

test('plan helpers: entropy of a permutation plan is log B, of the uniform plan 2 log B', () => {
  assert.ok(Math.abs(planEntropy(planFromPermutation([2, 0, 1])) - Math.log(3)) < 1e-15);
  assert.ok(Math.abs(planEntropy(new Float64Array(16).fill(1 / 16)) - 2 * Math.log(4)) < 1e-15);
  assert.is(OT_STAT_COUNT, Object.keys(OT_STAT).length);
});

test.run();

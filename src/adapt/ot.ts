// Prompt-OT's regulariser (methods.md 5.b): L_OT = <pi*, C> for a batch cost matrix C [B,B] with
// uniform marginals 1/B, the plan pi* held constant in backward (dL/dC = pi*, the envelope-theorem
// gradient of the exact OT value). Every solver runs on the GPU with no readback, so a training step
// never waits on the device; stats (non-identity flag, plan entropy, ...) stay on the GPU too and are
// accumulated there (OtStatsAccumulator) to be read back rarely.
//
// Solvers (all choices fixed-order argmins or sums, outputs bit-identical run to run):
// - exact, B <= 8 ('enumerate', the default there): all B! permutations ranked by their row-order
//   f32 sum (shaders/ot_enum.wgsl, ot_enum_select.wgsl): 2 dispatches, O(B! B) work over
//   ceil(B!/(24*64)) workgroups (27 at B = 8), then one workgroup for the argmin and the outputs.
//   Ties go to the smallest permutation index (lexicographic rank), so the identity (index 0) wins
//   any exact tie it is in.
// - exact, B <= 512 ('hungarian', the default beyond 8): shortest-augmenting-path Hungarian with
//   dual potentials in one workgroup (shaders/ot_hungarian.wgsl). O(B^3) work in at most B(B+1)/2
//   steps of 2 barriers (random costs need far fewer: ~400 at B = 64). Exact in exact arithmetic; in
//   f32 the found sum is within a few ulp per row of the optimum, and stats[5] holds a duality-gap
//   bound from the final potentials. The identity is returned whenever its row-order f32 sum is <=
//   the found one (the enumeration's tie rule).
// - 'sinkhorn': log-domain Sinkhorn (epsilon, iterations) in one workgroup (shaders/ot_sinkhorn.wgsl),
//   O(iterations B^2) work, B <= 1024.
// The one-workgroup solvers are resumable: their work is cut into dispatches under LOOP_BUDGET (the
// CPU adapters silently stop loops after 65535 iterations per invocation), one dispatch in the usual
// cases (Hungarian B <= 64 in the worst case; Sinkhorn B = 64 up to ~700 iterations).
import { GpuError, shaderSource, type Gpu, type Kernel } from '../gpu/index.js';
import { Uniforms } from '../gpu/uniforms.js';
import { record, noGrad } from '../autograd/tape.js';
import { empty, keep, zeros, type Tensor } from '../tensor/tensor.js';
import { add, mapRaw } from '../ops/elementwise.js';

/** Indices into the stats tensor (f32[9]) every solver writes. */
export const OT_STAT = {
  /** 1 if the plan is not the identity/B (exact); 1 if some row's largest entry is off the diagonal (Sinkhorn). */
  nonIdentity: 0,
  /** <plan, C> (= the loss). */
  cost: 1,
  /** -sum plan log plan: log B for a permutation plan, up to 2 log B for the uniform plan. */
  entropy: 2,
  /** 1 - trace(plan): the mass moved off the diagonal (exact: fraction of rows not matched to themselves). */
  offDiagonalMass: 3,
  /** max_i |B sum_j plan_ij - 1| (0 for exact plans; Sinkhorn's row marginals are approximate). */
  marginalError: 4,
  /** Hungarian: found sum - dual bound (>= its distance to the optimum up to rounding); 0 otherwise. */
  dualGap: 5,
  /** 1 if C holds a NaN or an infinity. */
  nonFinite: 6,
  /** Solver steps: B! (enumerate), Dijkstra steps (Hungarian), iterations run (Sinkhorn). */
  steps: 7,
  /** 1 if the device cut a solver loop short (see LOOP_BUDGET): the outputs are not to be trusted. */
  incomplete: 8,
} as const;
export const OT_STAT_COUNT = 9;

export type OtSolver = 'exact' | 'sinkhorn';
export type ExactAlgorithm = 'auto' | 'enumerate' | 'hungarian';

export interface OtOptions {
  solver: OtSolver;
  /** Sinkhorn regularisation, in the units of C (default 0.05, methods.md 5.e). */
  epsilon?: number;
  /** Sinkhorn iterations, each a row then a column update (default 100). */
  iterations?: number;
  /** Exact solver variant: 'auto' (default) enumerates for B <= 8 and runs the Hungarian beyond. */
  exactAlgorithm?: ExactAlgorithm;
}

export interface OtResult {
  /** Scalar [] = <plan, C>; backward gives dL/dC = plan (the plan is a constant). */
  loss: Tensor;
  /** [B, B]: entries 0 or 1/B (exact), or the Sinkhorn plan. */
  plan: Tensor;
  /** f32[9], indexed by OT_STAT. */
  stats: Tensor;
}

export const ENUMERATE_MAX_B = 8;
export const HUNGARIAN_MAX_B = 512;
export const SINKHORN_MAX_B = 1024;
export const OT_DEFAULT_EPSILON = 0.05;
export const OT_DEFAULT_ITERATIONS = 100;
export const SINKHORN_MAX_ITERATIONS = 1 << 20;

const WG = 64;
/** The enumeration pass's invocations each walk the TAIL! orders of the last TAIL rows. */
const ENUM_TAIL = 4;
const FACTORIALS = [1, 1, 2, 6, 24, 120, 720, 5040, 40320];

/**
 * Loop iterations one invocation may run in one dispatch. Mesa's llvmpipe and lavapipe (the CPU
 * adapters) give each invocation a single counter of 65535 loop iterations shared by all its loops
 * (a loop entry costs one more) and silently exit every loop once it runs out; the cost models below
 * over-count, and the long solvers split their work into dispatches under this budget. Real GPUs have
 * no such counter, but the split also bounds each dispatch's run time (watchdogs), and it changes no
 * result: the state is carried between dispatches bit for bit.
 */
export const LOOP_BUDGET = 60000;

/** Test hooks: force the Hungarian's workgroup size, or a smaller loop budget (more dispatches). */
export interface OtKernelOverrides {
  hungarianWorkgroup?: 16 | 32 | 64;
  loopBudget?: number;
}
let overrides: OtKernelOverrides = {};
export function setOtKernelOverrides(o: OtKernelOverrides): OtKernelOverrides {
  const prev = overrides;
  overrides = { ...o };
  return prev;
}

/** Workgroup-array capacity tiers (the Hungarian adds 1 for its virtual start row/column). */
function tier(n: number, tiers: readonly number[]): number {
  for (const t of tiers) if (n <= t) return t;
  return tiers[tiers.length - 1]!;
}
const HUNGARIAN_TIERS = [64, 256, 512];
const SINKHORN_TIERS = [64, 256, 1024];

function hungarianBytes(cap: number, wg: number): number {
  return 7 * 4 * (cap + 1) + 2 * 4 * wg + 9 * 4;
}
function sinkhornBytes(cap: number): number {
  return 2 * 4 * cap + 5 * 4 * WG + 5 * 4;
}

/** Largest B each solver accepts on this device (workgroup memory and invocation limits). */
export function otMaxB(gpu: Gpu): { enumerate: number; hungarian: number; sinkhorn: number } {
  const wgOk = gpu.limits.maxComputeInvocationsPerWorkgroup >= WG && gpu.limits.maxComputeWorkgroupSizeX >= WG;
  const mem = gpu.limits.maxComputeWorkgroupStorageSize;
  const fit = (tiers: readonly number[], bytes: (c: number) => number) => {
    let best = 0;
    for (const t of tiers) if (bytes(t) <= mem) best = t;
    return wgOk ? best : 0;
  };
  return {
    enumerate: wgOk ? ENUMERATE_MAX_B : 0,
    hungarian: fit(HUNGARIAN_TIERS, (c) => hungarianBytes(c, WG)),
    sinkhorn: fit(SINKHORN_TIERS, sinkhornBytes),
  };
}

function source(name: string, wg: number, defines: Record<string, string | number> = {}, exact = false): string {
  return shaderSource('ot_common', { WG: wg }) + (exact ? shaderSource('ot_exact_out') : '') + shaderSource(name, defines);
}

function enumKernels(gpu: Gpu): { pass: Kernel; select: Kernel } {
  return {
    pass: gpu.kernel('ot_enum', () => ({ label: 'ot_enum', code: source('ot_enum', WG), bindings: ['read', 'rw'], uniform: true })),
    select: gpu.kernel('ot_enum_select', () => ({
      label: 'ot_enum_select',
      code: source('ot_enum_select', WG, {}, true),
      bindings: ['read', 'read', 'rw', 'rw', 'rw'],
      uniform: true,
    })),
  };
}

/** The Hungarian's argmin over the WG proposals, unrolled (no loop: no loop budget, no branch). */
function scanCode(wg: number): string {
  const lines: string[] = [];
  for (let t = 0; t < wg; t++) {
    lines.push(`    if (better(prop_value[${t}u], prop_col[${t}u], delta, j1)) { delta = prop_value[${t}u]; j1 = prop_col[${t}u]; }`);
  }
  return lines.join('\n');
}

function hungarianKernel(gpu: Gpu, cap: number, wg: number): Kernel {
  return gpu.kernel(`ot_hungarian:${cap}:${wg}`, () => ({
    label: `ot_hungarian cap ${cap} wg ${wg}`,
    code: source('ot_hungarian', wg, { CAP: cap + 1, SCAN: scanCode(wg) }, true),
    bindings: ['read', 'rw', 'rw', 'rw', 'rw'],
    uniform: true,
  }));
}

function sinkhornKernel(gpu: Gpu, cap: number): Kernel {
  return gpu.kernel(`ot_sinkhorn:${cap}`, () => ({
    label: `ot_sinkhorn cap ${cap}`,
    code: source('ot_sinkhorn', WG, { CAP: cap }),
    bindings: ['read', 'rw', 'rw', 'rw', 'rw'],
    uniform: true,
  }));
}

/**
 * Counted cost of a loop running `trips` times. Measured on llvmpipe: trips + 1 (an entry counts
 * even with no trip), and compiled code adds about one per loop on top (a Sinkhorn iteration with
 * four inner loops costs its trips + 1 count plus 4); trips + 2 over-counts, which the loop-canary
 * test checks against the measured cut-off points.
 */
const L = (trips: number) => trips + 2;
/** Canary, barrier bookkeeping and rounding slack per dispatch. */
const SLACK = 64;

/** Exact-output stage (ot_exact_out.wgsl) and the non-finite scan, per invocation. */
function exactOutputCost(n: number, wg: number): number {
  return L(Math.ceil((n * n) / wg)) * 2 + L(n) + L(2);
}

export interface DispatchPlan {
  /** Steps (Hungarian) or iterations (Sinkhorn) per dispatch. */
  chunks: number[];
  /** Whether the last dispatch runs no steps and only finishes (its budget is the output stage). */
  finishOnly: boolean;
}

/**
 * Loop cost of one Hungarian step for invocation 0: the relax and update loops over its
 * ceil((n+1)/wg) columns, the amortised row start (the same again), and augmentation (<= 1 link per
 * step plus one entry per row).
 */
export function hungarianStepCost(n: number, wg: number): number {
  return 3 * L(Math.ceil((n + 1) / wg)) + 4;
}

/** How the Hungarian's worst case of n(n+1)/2 steps is split into dispatches under the loop budget. */
export function hungarianPlan(n: number, wg: number, budget = overrides.loopBudget ?? LOOP_BUDGET): DispatchPlan {
  const cpt = Math.ceil((n + 1) / wg);
  const perStep = hungarianStepCost(n, wg);
  const io = 2 * L(cpt) + L(5);
  const finish = L(cpt) * 2 + cpt * L(n) + L(wg) + 3 * L(n) + exactOutputCost(n, wg);
  const total = (n * (n + 1)) / 2;
  if (L(cpt) + finish + total * perStep + SLACK <= budget) return { chunks: [total], finishOnly: false };
  const per = Math.floor((budget - io - SLACK) / perStep);
  if (per < 1 || io + finish + SLACK > budget) throw new GpuError(`hungarian B=${n}: loop budget ${budget} too small`);
  const chunks: number[] = [];
  for (let left = total; left > 0; left -= per) chunks.push(Math.min(per, left));
  return { chunks, finishOnly: true };
}

/** Loop cost of one Sinkhorn iteration: ceil(n/64) row and column LSEs of two loops of floor(n/4) trips. */
export function sinkhornIterationCost(n: number): number {
  const rpt = Math.ceil(n / WG);
  return 1 + 2 * (L(rpt) + rpt * 2 * L(Math.floor(n / 4)));
}

/** How `iterations` Sinkhorn iterations are split into dispatches under the loop budget. */
export function sinkhornPlan(n: number, iterations: number, budget = overrides.loopBudget ?? LOOP_BUDGET): DispatchPlan {
  const rpt = Math.ceil(n / WG);
  const perIter = sinkhornIterationCost(n);
  const io = 2 * L(rpt);
  const output = L(rpt) + rpt * L(n) + L(Math.ceil((n * n) / WG)) + L(WG) + L(2);
  const lastCap = Math.floor((budget - io - output - SLACK) / perIter);
  const midCap = Math.floor((budget - io - SLACK) / perIter);
  if (midCap < 1 || io + output + SLACK > budget) throw new GpuError(`sinkhorn B=${n}: loop budget ${budget} too small`);
  if (iterations <= lastCap) return { chunks: [iterations], finishOnly: false };
  const chunks: number[] = [];
  let left = iterations;
  while (left > Math.max(0, lastCap)) {
    const k = Math.min(midCap, left - Math.max(0, lastCap));
    chunks.push(k);
    left -= k;
  }
  if (lastCap >= 1) {
    chunks.push(left);
    return { chunks, finishOnly: false };
  }
  return { chunks, finishOnly: true };
}

interface Resolved {
  n: number;
  kind: 'enumerate' | 'hungarian' | 'sinkhorn';
  epsilon: number;
  iterations: number;
}

/** All validation, before anything is encoded. */
function resolve(C: Tensor, opts: OtOptions, op: string): Resolved {
  C.assertAlive(op);
  if (C.dtype !== 'f32') throw new GpuError(`${op}: cost ${C.describe()} must be f32`);
  if (C.rank !== 2 || C.shape[0] !== C.shape[1]) throw new GpuError(`${op}: cost ${C.describe()} must be a square matrix [B,B]`);
  const n = C.shape[0]!;
  if (n < 1) throw new GpuError(`${op}: cost ${C.describe()} is empty (B must be >= 1)`);
  const max = otMaxB(C.gpu);
  const limits = `maxComputeWorkgroupStorageSize ${C.gpu.limits.maxComputeWorkgroupStorageSize}, maxComputeInvocationsPerWorkgroup ${C.gpu.limits.maxComputeInvocationsPerWorkgroup}`;
  if (opts.solver === 'sinkhorn') {
    const epsilon = opts.epsilon ?? OT_DEFAULT_EPSILON;
    const iterations = opts.iterations ?? OT_DEFAULT_ITERATIONS;
    if (!(epsilon > 0) || !Number.isFinite(epsilon) || !Number.isFinite(Math.fround(1 / epsilon))) {
      throw new GpuError(`${op}: sinkhorn epsilon ${epsilon} must be finite and > 0 (with 1/epsilon finite in f32)`);
    }
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > SINKHORN_MAX_ITERATIONS) {
      throw new GpuError(`${op}: sinkhorn iterations ${iterations} must be an integer in [1, ${SINKHORN_MAX_ITERATIONS}]`);
    }
    if (n > max.sinkhorn) {
      throw new GpuError(`${op}: cost ${C.describe()}: sinkhorn supports B <= ${max.sinkhorn} on this device (${limits})`);
    }
    return { n, kind: 'sinkhorn', epsilon, iterations };
  }
  if (opts.solver !== 'exact') throw new GpuError(`${op}: unknown solver "${String(opts.solver)}" (expected 'exact' or 'sinkhorn')`);
  const algo = opts.exactAlgorithm ?? 'auto';
  if (algo !== 'auto' && algo !== 'enumerate' && algo !== 'hungarian') {
    throw new GpuError(`${op}: unknown exactAlgorithm "${String(algo)}" (expected 'auto', 'enumerate' or 'hungarian')`);
  }
  const kind = algo === 'auto' ? (n <= ENUMERATE_MAX_B ? 'enumerate' : 'hungarian') : algo;
  const cap = kind === 'enumerate' ? max.enumerate : max.hungarian;
  if (n > cap) {
    throw new GpuError(`${op}: cost ${C.describe()}: the exact solver '${kind}' supports B <= ${cap} on this device (${limits})`);
  }
  return { n, kind, epsilon: 0, iterations: 0 };
}

/** The trip count of the loop canaries (a uniform, so no compiler can fold the loop away). */
const CANARY = 2;

/**
 * Encodes a resumable single-workgroup solver as the dispatches of `plan`; the state (stateWords
 * u32) lives in a pooled scratch buffer between them.
 */
function runChunks(
  gpu: Gpu,
  kernel: Kernel,
  plan: DispatchPlan,
  stateWords: number,
  [C, out, loss, stats]: readonly [Tensor, Tensor, Tensor, Tensor],
  uniforms: (work: number, first: number, last: number) => Uint32Array,
  label: string,
): void {
  const single = plan.chunks.length === 1 && !plan.finishOnly;
  const state = empty([single ? 1 : stateWords], 'u32', gpu, 'ot state');
  const work = plan.finishOnly ? [...plan.chunks, 0] : plan.chunks;
  work.forEach((w, k) => {
    gpu.dispatch({
      kernel,
      buffers: [C.buffer, state.buffer, out.buffer, loss.buffer, stats.buffer],
      uniforms: uniforms(w, k === 0 ? 1 : 0, k === work.length - 1 ? 1 : 0),
      workgroups: [1],
      label: work.length > 1 ? `${label} (${k + 1}/${work.length})` : label,
    });
  });
  state.dispose();
}

/** Solves the OT problem for C on the GPU (no autograd, no readback). */
export function otSolve(C: Tensor, opts: OtOptions): OtResult {
  const r = resolve(C, opts, 'otSolve');
  return encode(C, r);
}

function encode(C: Tensor, r: Resolved): OtResult {
  const gpu = C.gpu;
  const { n } = r;
  const plan = empty([n, n], 'f32', gpu, 'ot plan');
  const loss = empty([], 'f32', gpu, 'ot loss');
  const stats = empty([OT_STAT_COUNT], 'f32', gpu, 'ot stats');
  const what = `${r.kind} B=${n}`;
  if (r.kind === 'enumerate') {
    const k = enumKernels(gpu);
    const count = FACTORIALS[n]!;
    const tail = Math.min(n, ENUM_TAIL);
    const parts = Math.ceil(count / FACTORIALS[tail]! / WG);
    const part = empty([2 * parts], 'u32', gpu, 'ot partials');
    gpu.dispatch({
      kernel: k.pass,
      buffers: [C.buffer, part.buffer],
      uniforms: new Uniforms().u32(n, count, tail, FACTORIALS[tail]!).done(),
      workgroups: gpu.grid(parts),
      label: `otSolve enumerate ${C.describe()}`,
    });
    gpu.dispatch({
      kernel: k.select,
      buffers: [C.buffer, part.buffer, plan.buffer, loss.buffer, stats.buffer],
      uniforms: new Uniforms().u32(n, parts, count, CANARY).f32v(1 / n).u32(0, 0, 0).done(),
      workgroups: [1],
      label: `otSolve select ${what}`,
    });
    part.dispose();
  } else if (r.kind === 'hungarian') {
    const wg = overrides.hungarianWorkgroup ?? (n + 1 <= 16 ? 16 : n + 1 <= 32 ? 32 : 64);
    const kernel = hungarianKernel(gpu, tier(n, HUNGARIAN_TIERS), wg);
    const p = hungarianPlan(n, wg);
    runChunks(gpu, kernel, p, 6 * (n + 1) + 5, [C, plan, loss, stats], (steps, first, last) =>
      new Uniforms().u32(n, steps, first, last, CANARY).f32v(1 / n).u32(0, 0).done(), `otSolve hungarian ${C.describe()}`);
  } else {
    const p = sinkhornPlan(n, r.iterations);
    runChunks(gpu, sinkhornKernel(gpu, tier(n, SINKHORN_TIERS)), p, 2 * n + 2, [C, plan, loss, stats], (its, first, last) =>
      new Uniforms().u32(n, its, first, last).f32v(r.epsilon, 1 / r.epsilon).u32(CANARY, 0).done(),
      `otSolve sinkhorn eps=${r.epsilon} iters=${r.iterations} ${C.describe()}`);
  }
  return { loss, plan, stats };
}

/**
 * The OT regulariser as an autograd op: loss = <plan, C> with the plan computed from C's current
 * values and held constant, so backward gives dL/dC = g * plan (no gradient through the solver).
 * C is built by the caller (Prompt-OT: eta * squared distances between adapted and frozen joint
 * features; the caller scales the loss by lambda).
 */
export function otLoss(C: Tensor, opts: OtOptions): OtResult {
  const r = resolve(C, opts, 'otLoss');
  const out = encode(C, r);
  record(out.loss, `otLoss ${r.kind}`, [C], (_needs, ctx) => {
    const plan = ctx.save(out.plan);
    return (g) => [mapRaw('a * b', plan, g, 0, 0, 'otLoss backward')];
  });
  return out;
}

/**
 * Sums OT stats over steps on the GPU (one elementwise add per step, no readback); `read()` returns
 * the means, e.g. nonIdentity = the fraction of steps whose exact plan was not the identity.
 */
export class OtStatsAccumulator {
  private sum: Tensor | null = null;
  private count = 0;

  constructor(private readonly gpu: Gpu) {}

  get steps(): number {
    return this.count;
  }

  add(stats: Tensor): void {
    if (stats.dtype !== 'f32' || stats.rank !== 1 || stats.size !== OT_STAT_COUNT) {
      throw new GpuError(`OtStatsAccumulator.add: ${stats.describe()} is not an OT stats tensor f32[${OT_STAT_COUNT}]`);
    }
    noGrad(() => {
      const prev = this.sum ?? zeros([OT_STAT_COUNT], 'f32', this.gpu);
      // keep(): the running sum outlives any tidy() scope the training step runs in.
      this.sum = keep(add(prev, stats));
      prev.dispose();
    });
    this.count++;
  }

  /** Means over the steps added since the last reset (reads back 32 bytes). */
  async read(): Promise<Record<keyof typeof OT_STAT, number>> {
    const out = {} as Record<keyof typeof OT_STAT, number>;
    const v = this.sum ? await this.sum.read() : new Float32Array(OT_STAT_COUNT);
    for (const [name, i] of Object.entries(OT_STAT)) out[name as keyof typeof OT_STAT] = this.count ? v[i]! / this.count : 0;
    return out;
  }

  reset(): void {
    this.sum?.dispose();
    this.sum = null;
    this.count = 0;
  }
}

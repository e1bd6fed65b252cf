// Prompt-OT's regulariser (methods.md 5.b): L_OT = <pi*, C> for a batch cost matrix C [B,B] with
// uniform marginals 1/B, the plan pi* held constant in backward (dL/dC = pi*, the envelope-theorem
// gradient of the exact OT value). Every solver runs on the GPU with no readback, so a training step
// never waits on the device; stats (non-identity flag, plan entropy, ...) stay on the GPU too and are
// accumulated there (OtStatsAccumulator) to be read back rarely.
//
// Solvers (each one or two dispatches, all choices fixed-order, outputs bit-identical run to run):
// - exact, B <= 8 ('enumerate'): all B! permutations ranked by their row-order f32 sum
//   (shaders/ot_enum.wgsl, ot_enum_select.wgsl). O(B! B^2) work over ceil(B!/512) workgroups + one.
//   Ties go to the smallest permutation index (lexicographic rank), so the identity (index 0) wins
//   any exact tie it is in.
// - exact, any B up to 512 ('hungarian'): shortest-augmenting-path Hungarian with dual potentials in
//   one workgroup (shaders/ot_hungarian.wgsl). O(B^3) work, <= B(B+1)/2 steps of 2 barriers. Exact
//   in exact arithmetic; in f32 the found sum is within rounding of the optimum, and stats[5] holds
//   a duality-gap bound computed from the final potentials. The identity is returned whenever its
//   row-order f32 sum is <= the found one (the same tie rule as the enumeration).
// - 'sinkhorn': log-domain Sinkhorn (epsilon, iterations) in one workgroup (shaders/ot_sinkhorn.wgsl),
//   O(iterations B^2) work, B <= 1024.
import { GpuError, shaderSource, type Gpu, type Kernel } from '../gpu/index.js';
import { Uniforms } from '../gpu/uniforms.js';
import { record, noGrad } from '../autograd/tape.js';
import { empty, keep, zeros, type Tensor } from '../tensor/tensor.js';
import { add, mapRaw } from '../ops/elementwise.js';

/** Indices into the stats tensor (f32[8]) every solver writes. */
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
  /** Solver steps: B! (enumerate), Dijkstra steps (Hungarian), iterations (Sinkhorn). */
  steps: 7,
} as const;
export const OT_STAT_COUNT = 8;

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
  /** f32[8], indexed by OT_STAT. */
  stats: Tensor;
}

export const ENUMERATE_MAX_B = 8;
export const HUNGARIAN_MAX_B = 512;
export const SINKHORN_MAX_B = 1024;
export const OT_DEFAULT_EPSILON = 0.05;
export const OT_DEFAULT_ITERATIONS = 100;
export const SINKHORN_MAX_ITERATIONS = 1 << 20;

const WG = 64;
/** Permutations ranked per invocation by the enumeration pass. */
const ENUM_PER = 8;
const FACTORIALS = [1, 1, 2, 6, 24, 120, 720, 5040, 40320];

/** Workgroup-array capacity tiers (index 0 of the Hungarian arrays is the virtual start, hence +1). */
function tier(n: number, tiers: readonly number[]): number {
  for (const t of tiers) if (n <= t) return t;
  return tiers[tiers.length - 1]!;
}
const HUNGARIAN_TIERS = [64, 256, 512];
const SINKHORN_TIERS = [64, 256, 1024];

function hungarianBytes(cap: number): number {
  return 7 * 4 * (cap + 1) + 2 * 4 * WG + 3 * 4;
}
function sinkhornBytes(cap: number): number {
  return 2 * 4 * cap + 5 * 4 * WG + 4;
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
  return { enumerate: wgOk ? ENUMERATE_MAX_B : 0, hungarian: fit(HUNGARIAN_TIERS, hungarianBytes), sinkhorn: fit(SINKHORN_TIERS, sinkhornBytes) };
}

function source(name: string, defines: Record<string, number> = {}, exact = false): string {
  return shaderSource('ot_common') + (exact ? shaderSource('ot_exact_out') : '') + shaderSource(name, defines);
}

function enumKernels(gpu: Gpu): { pass: Kernel; select: Kernel } {
  return {
    pass: gpu.kernel('ot_enum', () => ({ label: 'ot_enum', code: source('ot_enum'), bindings: ['read', 'rw'], uniform: true })),
    select: gpu.kernel('ot_enum_select', () => ({
      label: 'ot_enum_select',
      code: source('ot_enum_select', {}, true),
      bindings: ['read', 'read', 'rw', 'rw', 'rw'],
      uniform: true,
    })),
  };
}

function hungarianKernel(gpu: Gpu, cap: number): Kernel {
  return gpu.kernel(`ot_hungarian:${cap}`, () => ({
    label: `ot_hungarian cap ${cap}`,
    code: source('ot_hungarian', { CAP: cap + 1 }, true),
    bindings: ['read', 'rw', 'rw', 'rw'],
    uniform: true,
  }));
}

function sinkhornKernel(gpu: Gpu, cap: number): Kernel {
  return gpu.kernel(`ot_sinkhorn:${cap}`, () => ({
    label: `ot_sinkhorn cap ${cap}`,
    code: source('ot_sinkhorn', { CAP: cap }),
    bindings: ['read', 'rw', 'rw', 'rw'],
    uniform: true,
  }));
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
    const parts = Math.ceil(count / (WG * ENUM_PER));
    const part = empty([2 * parts], 'u32', gpu, 'ot partials');
    gpu.dispatch({
      kernel: k.pass,
      buffers: [C.buffer, part.buffer],
      uniforms: new Uniforms().u32(n, count, ENUM_PER, 0).done(),
      workgroups: gpu.grid(parts),
      label: `otSolve enumerate ${C.describe()}`,
    });
    gpu.dispatch({
      kernel: k.select,
      buffers: [C.buffer, part.buffer, plan.buffer, loss.buffer, stats.buffer],
      uniforms: new Uniforms().u32(n, parts, count, 0).done(),
      workgroups: [1],
      label: `otSolve select ${what}`,
    });
    part.dispose();
  } else if (r.kind === 'hungarian') {
    gpu.dispatch({
      kernel: hungarianKernel(gpu, tier(n, HUNGARIAN_TIERS)),
      buffers: [C.buffer, plan.buffer, loss.buffer, stats.buffer],
      uniforms: new Uniforms().u32(n, 0, 0, 0).done(),
      workgroups: [1],
      label: `otSolve hungarian ${C.describe()}`,
    });
  } else {
    gpu.dispatch({
      kernel: sinkhornKernel(gpu, tier(n, SINKHORN_TIERS)),
      buffers: [C.buffer, plan.buffer, loss.buffer, stats.buffer],
      uniforms: new Uniforms().u32(n, r.iterations).f32v(r.epsilon, 1 / r.epsilon).done(),
      workgroups: [1],
      label: `otSolve sinkhorn eps=${r.epsilon} iters=${r.iterations} ${C.describe()}`,
    });
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

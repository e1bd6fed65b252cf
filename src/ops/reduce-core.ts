// Reduction kernels without autograd: the building block of sum/mean/max/argmax/logsumexp, of
// sumTo (the backward of broadcasting) and of the loss and layer-norm weight reductions.
// A reduction runs over a [outer, n, inner] view of a contiguous tensor. Each pass reduces chunks of
// n; when a row needs more than one chunk the pass writes partial states and the next pass reduces
// those, so a 5M-element sum is a two-level tree (pairwise-like accuracy) and no float atomics are
// used. The plan (variant, chunk sizes, passes) depends only on the shape and the device limits,
// so results are bit-identical run to run.
import { GpuError, shaderSource, type Gpu, type Kernel } from '../gpu/index.js';
import { Uniforms } from '../gpu/uniforms.js';
import { empty, type Tensor } from '../tensor/tensor.js';

/**
 * 'lsepair' is logsumexp kept as its two parts: out[2r] = m (row max), out[2r+1] = s = sum exp(v - m).
 * Callers that subtract two logsumexps (KL divergence) combine them as (m1 - m2) + log(s1 / s2),
 * which keeps the accuracy that m + log(s) rounding would lose.
 */
export type ReduceOp = 'sum' | 'max' | 'argmax' | 'lse' | 'lsepair';
export type ReduceVariant = 'wg' | 'thread';

/** Elements each invocation of the workgroup variant folds sequentially at most, per pass. */
const WG_PER_THREAD = 32;
/** Longest chunk the one-invocation variant folds sequentially in one pass. */
const THREAD_CHUNK = 128;

/**
 * Loop iterations one invocation may run, in total over all its loops. Mesa's gallivm (llvmpipe on
 * Node-GL, lavapipe on Deno) keeps ONE counter per invocation, starting at 65535 and decremented at
 * every loop back-edge of every loop; at zero every loop exits after its current iteration, so a
 * kernel silently computes garbage (measured: two 50000-iteration loops run 50000 and 15534). Every
 * kernel here keeps its per-invocation total under this budget (with margin), on all adapters.
 */
export const LOOP_BUDGET = 60000;

let forced: ReduceVariant | null = null;

/**
 * Forces every reduction pass onto one kernel variant (tests use it to cover both on any shape);
 * null restores the shape-based choice. Env: CLIPTUNE_REDUCE_VARIANT=wg|thread.
 */
export function forceReduceVariant(v: ReduceVariant | null): void {
  forced = v;
}

function envVariant(): ReduceVariant | null {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> } };
  const v = g.process?.env?.CLIPTUNE_REDUCE_VARIANT;
  return v === 'wg' || v === 'thread' ? v : null;
}
const envForced = envVariant();

export function forcedVariant(): ReduceVariant | null {
  return forced ?? envForced;
}

const envWg = Number((globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.CLIPTUNE_ROW_WG ?? 0);
let forcedWg = 0;

/**
 * Forces the base workgroup size of the row and reduction kernels (a power of two; null restores
 * the adapter's default). Tests use 256 to run the GPU configuration on CPU adapters.
 * Env: CLIPTUNE_ROW_WG.
 */
export function forceRowWorkgroup(wg: number | null): void {
  if (wg !== null && (!Number.isInteger(Math.log2(wg)) || wg < 1)) throw new GpuError(`forceRowWorkgroup: ${wg} is not a power of two`);
  forcedWg = wg ?? 0;
}

/** Largest power-of-two workgroup the device allows (up to 16 bytes of tree memory per invocation). */
function maxWorkgroup(gpu: Gpu): number {
  const lim = gpu.limits;
  const cap = Math.min(1024, lim.maxComputeInvocationsPerWorkgroup, lim.maxComputeWorkgroupSizeX, Math.floor(lim.maxComputeWorkgroupStorageSize / 16));
  let wg = 1;
  while (wg * 2 <= cap) wg *= 2;
  return wg;
}

/**
 * Workgroup size of a one-workgroup-per-row kernel that loops `passes` times over rows of `n`.
 * GPUs get 256. CPU adapters get 8: llvmpipe runs a workgroup as 8-wide SIMD batches that switch
 * at every barrier, and per-workgroup cost dominates (measured: a sum of [66000,3] by rows takes
 * 2.8 s with 128 invocations per workgroup, 0.1 s with 8). The size doubles while one invocation
 * would run over the loop budget. Env CLIPTUNE_ROW_WG overrides the base size (benchmarks).
 */
export function rowWorkgroupSize(gpu: Gpu, n = 0, passes = 1): number {
  const max = maxWorkgroup(gpu);
  let wg = Math.min(max, forcedWg || envWg || (gpu.kind === 'gpu' ? 256 : 8));
  while (wg < max && rowIterations(wg, n, passes) > LOOP_BUDGET) wg *= 2;
  return wg;
}

/** Loop iterations one invocation of a row kernel runs (its strided passes plus the trees). */
export function rowIterations(wg: number, n: number, passes: number): number {
  return passes * Math.ceil(n / wg) + 2 * Math.log2(wg) + 4;
}

export interface ReduceDims {
  outer: number;
  n: number;
  inner: number;
}

export interface PassPlan {
  variant: ReduceVariant;
  chunk: number;
  nChunks: number;
}

/**
 * Chooses the kernel and chunking of one pass over [outer, n, inner]. GPUs reduce long contiguous
 * rows with workgroups. CPU adapters always use one invocation per chunk of 128: it beat the
 * workgroup variant on every shape measured (sum [1,5M] 27 vs 128 ms, [32,50000] 6 vs 24 ms,
 * [256,1000] 1.5 vs 5.8 ms, with workgroups of 8).
 */
export function planPass(gpu: Gpu, d: ReduceDims): PassPlan {
  const auto: ReduceVariant = gpu.kind === 'gpu' && d.inner === 1 && d.n > 64 ? 'wg' : 'thread';
  const variant: ReduceVariant = forcedVariant() ?? auto;
  const maxChunk = variant === 'wg' ? rowWorkgroupSize(gpu) * WG_PER_THREAD : THREAD_CHUNK;
  const nChunks = Math.max(1, Math.ceil(d.n / maxChunk));
  return { variant, nChunks, chunk: Math.ceil(d.n / nChunks) };
}

const LOAD_F32: Record<ReduceOp, string> = {
  sum: 'return State(X[idx], 0.0, k);',
  max: 'return State(X[idx], 0.0, k);',
  argmax: 'return State(X[idx], 0.0, k);',
  lse: 'return State(X[idx] * u.in_scale, 1.0, k);',
  lsepair: 'return State(X[idx] * u.in_scale, 1.0, k);',
};

const MAX_COMBINE = `if (y.i == NONE) { return x; }
  if (x.i == NONE) { return y; }
  // The larger value wins; on a tie the smaller index (the first maximum), whatever the order.
  if (y.a > x.a || (y.a == x.a && y.i < x.i)) { return y; }
  return x;`;

const LSE_COMBINE = `if (y.b == 0.0) { return x; }
  if (x.b == 0.0) { return y; }
  let m = max(x.a, y.a);
  let sx = select(x.b * exp(x.a - m), x.b, x.a == m);
  let sy = select(y.b * exp(y.a - m), y.b, y.a == m);
  return State(m, sx + sy, 0u);`;

const COMBINE: Record<ReduceOp, string> = {
  sum: 'return State(x.a + y.a, 0.0, min(x.i, y.i));',
  max: MAX_COMBINE,
  argmax: MAX_COMBINE,
  // (m, s) pairs: s = sum exp(v - m). Equal maxima (including two -inf) scale by exactly 1, so
  // -inf entries never produce exp(-inf + inf) = NaN.
  lse: LSE_COMBINE,
  lsepair: LSE_COMBINE,
};

const STORE_FINAL: Record<ReduceOp, string> = {
  sum: 'O[o] = s.a * u.scale;',
  max: 'O[o] = s.a;\n  OI[o] = i32(s.i);',
  argmax: 'O[o] = i32(s.i);',
  lse: 'O[o] = s.a + log(s.b);',
  lsepair: 'O[2u * o] = s.a;\n  O[2u * o + 1u] = s.b;',
};

function outDecl(op: ReduceOp, final: boolean): { decl: string; nBuffers: number } {
  const rw = (b: number, name: string, t: string) => `@group(0) @binding(${b}) var<storage, read_write> ${name}: array<${t}>;`;
  if (!final) return { decl: rw(1, 'O', 'State'), nBuffers: 2 };
  if (op === 'max') return { decl: `${rw(1, 'O', 'f32')}\n${rw(2, 'OI', 'i32')}`, nBuffers: 3 };
  return { decl: rw(1, 'O', op === 'argmax' ? 'i32' : 'f32'), nBuffers: 2 };
}

function reduceKernel(gpu: Gpu, op: ReduceOp, variant: ReduceVariant, firstPass: boolean, final: boolean): Kernel {
  const wg = rowWorkgroupSize(gpu);
  const key = `reduce:${op}:${variant}:${firstPass ? 'x' : 'p'}:${final ? 'f' : 'p'}:${wg}`;
  return gpu.kernel(key, () => {
    const { decl, nBuffers } = outDecl(op, final);
    const bindings = ['read' as const, ...Array<'rw'>(nBuffers - 1).fill('rw')];
    return {
      label: `reduce ${op} ${variant}${firstPass ? '' : ' partials'}${final ? '' : ' -> partials'}`,
      code: shaderSource('reduce', {
        IN_T: firstPass ? 'f32' : 'State',
        OUT_DECL: decl,
        U_BIND: nBuffers,
        WG: wg,
        LOAD: firstPass ? LOAD_F32[op] : 'return X[idx];',
        COMBINE: COMBINE[op],
        STORE: final ? STORE_FINAL[op] : 'O[o] = s;',
      }),
      entry: variant === 'wg' ? 'wg_main' : 'thread_main',
      bindings,
      uniform: true,
    };
  });
}

export interface ReduceOutputs {
  /** f32 result (sum/max/lse; 2 values per row for lsepair), or the i32 index for argmax. */
  value?: Tensor;
  /** i32 index of the first maximum (op 'max' only; required there). */
  index?: Tensor;
}

export interface ReduceOptions {
  /** Multiplies a sum's result (mean = 1/n). */
  scale?: number;
  /** Multiplies each input before a logsumexp (1/temperature). */
  inScale?: number;
  label?: string;
}

const STATE_WORDS = 3;

/**
 * Encodes the reduction of `x` (f32, contiguous, viewed as [outer, n, inner]) along n into the
 * given outputs of outer*inner elements. No autograd, no validation beyond sizes: callers check.
 */
export function reduceInto(op: ReduceOp, x: Tensor, d: ReduceDims, out: ReduceOutputs, opts: ReduceOptions = {}): void {
  const gpu = x.gpu;
  const label = opts.label ?? `reduce ${op}`;
  const nOut = d.outer * d.inner;
  if (d.outer * d.n * d.inner !== x.size) throw new GpuError(`${label}: view [${d.outer},${d.n},${d.inner}] does not cover ${x.describe()}`);
  const target = out.value;
  if (!target) throw new GpuError(`${label}: no output given`);
  if (op === 'max' && !out.index) throw new GpuError(`${label}: max needs an index output`);
  if (nOut === 0) return;
  if (d.n === 0) {
    if (op !== 'sum') throw new GpuError(`${label}: ${x.describe()} has nothing to reduce along a 0-length axis`);
    gpu.clear(target.buffer, 0, target.storage.bytes, label);
    return;
  }
  let input: Tensor = x;
  let dims = { ...d };
  let first = true;
  for (;;) {
    const plan = planPass(gpu, dims);
    const final = plan.nChunks === 1;
    const passOut = dims.outer * plan.nChunks * dims.inner;
    const partial = final ? null : empty([passOut * STATE_WORDS], 'u32', gpu, `${label} partials`);
    const buffers = final ? (op === 'max' ? [input.buffer, target.buffer, out.index!.buffer] : [input.buffer, target.buffer]) : [input.buffer, partial!.buffer];
    const u = new Uniforms()
      .u32(dims.outer, dims.n, dims.inner, plan.chunk, plan.nChunks, passOut)
      .f32v(opts.scale ?? 1, opts.inScale ?? 1)
      .done();
    gpu.dispatch({
      kernel: reduceKernel(gpu, op, plan.variant, first, final),
      buffers,
      uniforms: u,
      workgroups: gpu.grid(plan.variant === 'wg' ? passOut : Math.ceil(passOut / 64)),
      label: `${label} [${dims.outer},${dims.n},${dims.inner}] ${plan.variant}${final ? '' : ` -> ${plan.nChunks} chunks`}`,
    });
    // Safe to release while the dispatch is only encoded: any later user of the pooled buffer is
    // ordered after it in the same queue.
    if (!first) input.dispose();
    if (final) return;
    input = partial!;
    dims = { outer: dims.outer, n: plan.nChunks, inner: dims.inner };
    first = false;
  }
}

/** Normalises a possibly negative axis of a rank-`rank` tensor (throws with `op` on a bad axis). */
export function normAxis(axis: number, rank: number, op: string, what: string): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new GpuError(`${op}: axis ${axis} is out of range for ${what} (rank ${rank})`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** [outer, n, inner] around `axis` (axis undefined: the whole tensor as one row). */
export function dimsAround(shape: readonly number[], axis: number | undefined): ReduceDims {
  if (axis === undefined) return { outer: 1, n: shape.reduce((a, b) => a * b, 1), inner: 1 };
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i]!;
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i]!;
  return { outer, n: shape[axis]!, inner };
}

/** Throws if a tensor is too large to bind whole (these kernels do not bind windows). */
export function checkBindable(op: string, ...ts: Tensor[]): void {
  const lim = ts[0]?.gpu.limits.maxStorageBufferBindingSize ?? Infinity;
  for (const t of ts) {
    if (t.bytes > lim) throw new GpuError(`${op}: ${t.describe()} is ${t.bytes} bytes, over this device's maxStorageBufferBindingSize ${lim}`);
  }
}

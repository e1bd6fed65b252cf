// The three matmul kernels, how one is chosen per adapter, and how a planned product is dispatched.
//  - naive:  one output per invocation (reference, for tests).
//  - reg:    register tiles TMxTN per invocation, no workgroup memory, vec4 loads: the fast kernel on
//            CPU adapters (llvmpipe, lavapipe, SwiftShader), where barriers are expensive.
//  - shared: workgroup-memory tiles with barriers: the usual GPU kernel, for real GPUs.
// All three take the same uniforms (shaders/matmul_common.wgsl) and do one dispatch per product.
import { GpuError, shaderSource, type Binding, type Gpu, type Kernel } from '../gpu/index.js';
import { Uniforms } from '../gpu/uniforms.js';
import type { Tensor } from '../tensor/tensor.js';
import { MAX_BATCH_DIMS, outerCount, reduceCount, type MatmulPlan } from './matmul-plan.js';
import { regDefines, type RegLayout } from './matmul-reg-codegen.js';

export type MatmulVariant =
  | { kind: 'naive' }
  | { kind: 'reg'; tm: number; tn: number; wx: number; wy: number; order?: 'm' | 'n' }
  | { kind: 'shared'; tm: number; tn: number; wx: number; wy: number; bk: number };

/** Parses 'naive', 'reg:16x16:8x1[:m|n]' (TMxTN : workgroup WXxWY : tile order), 'shared:4x4:16x16:16' (... : BK). */
export function parseVariant(spec: string): MatmulVariant {
  const parts = spec.trim().split(':');
  const pair = (s: string | undefined): [number, number] => {
    const m = /^(\d+)x(\d+)$/.exec(s ?? '');
    if (!m) throw new GpuError(`matmul variant "${spec}": expected NxM, got "${s ?? ''}"`);
    return [+m[1]!, +m[2]!];
  };
  if (parts[0] === 'naive' && parts.length === 1) return { kind: 'naive' };
  if (parts[0] === 'reg' && (parts.length === 3 || parts.length === 4)) {
    const [tm, tn] = pair(parts[1]);
    const [wx, wy] = pair(parts[2]);
    const order = parts[3] ?? 'm';
    if (order !== 'm' && order !== 'n') throw new GpuError(`matmul variant "${spec}": tile order must be m or n`);
    return { kind: 'reg', tm, tn, wx, wy, order };
  }
  if (parts[0] === 'shared' && parts.length === 4) {
    const [tm, tn] = pair(parts[1]);
    const [wx, wy] = pair(parts[2]);
    const bk = Number(parts[3]);
    return { kind: 'shared', tm, tn, wx, wy, bk };
  }
  throw new GpuError(`matmul variant "${spec}": expected naive, reg:TMxTN:WXxWY[:m|n] or shared:TMxTN:WXxWY:BK`);
}

export function variantName(v: MatmulVariant): string {
  switch (v.kind) {
    case 'naive':
      return 'naive';
    case 'reg':
      return `reg:${v.tm}x${v.tn}:${v.wx}x${v.wy}:${v.order ?? 'm'}`;
    case 'shared':
      return `shared:${v.tm}x${v.tn}:${v.wx}x${v.wy}:${v.bk}`;
  }
}

/** Throws if `v` cannot run on this device (workgroup size and memory limits, tile constraints). */
export function checkVariant(gpu: Gpu, v: MatmulVariant, what: string): void {
  if (v.kind === 'naive') return;
  const lim = gpu.limits;
  const bad = (why: string) => new GpuError(`${what}: matmul variant ${variantName(v)} ${why}`);
  const ints = [v.tm, v.tn, v.wx, v.wy, ...(v.kind === 'shared' ? [v.bk] : [])];
  if (!ints.every((x) => Number.isInteger(x) && x >= 1)) throw bad('needs positive integer sizes');
  if (v.kind === 'reg' && (v.tm % 4 !== 0 || v.tn % 4 !== 0)) throw bad('needs TM and TN multiples of 4 (vec4 accumulators)');
  if (v.wx * v.wy > lim.maxComputeInvocationsPerWorkgroup) {
    throw bad(`has ${v.wx * v.wy} invocations per workgroup, over this device's maxComputeInvocationsPerWorkgroup ${lim.maxComputeInvocationsPerWorkgroup}`);
  }
  if (v.wx > lim.maxComputeWorkgroupSizeX || v.wy > lim.maxComputeWorkgroupSizeY) {
    throw bad(`workgroup ${v.wx}x${v.wy} exceeds maxComputeWorkgroupSizeX/Y ${lim.maxComputeWorkgroupSizeX}/${lim.maxComputeWorkgroupSizeY}`);
  }
  if (v.kind === 'shared') {
    const bytes = 4 * v.bk * (v.tm * v.wy + v.tn * v.wx);
    if (bytes > lim.maxComputeWorkgroupStorageSize) {
      throw bad(`needs ${bytes} bytes of workgroup memory, over this device's maxComputeWorkgroupStorageSize ${lim.maxComputeWorkgroupStorageSize}`);
    }
  }
}

/**
 * CPU adapters: 16x16 outputs per invocation, workgroup (8,1). Measured on llvmpipe against 8x16,
 * 16x8 (8,8), 8x16 (8,8), 24x16, 32x16, 16x32, (4,1) and (16,1) workgroups on the bench shapes,
 * including M = 50 and 77 (bench/README.md): none was faster beyond the ±30% noise, 16x16 (8,1) was
 * fastest or tied on every shape, as in runtime.md section 2. Larger tiles only cost JIT time.
 */
const CPU_DEFAULT: MatmulVariant = { kind: 'reg', tm: 16, tn: 16, wx: 8, wy: 1, order: 'm' };

/** The kernel this device would use for `plan` when nothing is forced. */
export function autoVariant(gpu: Gpu, _plan: MatmulPlan): MatmulVariant {
  if (gpu.isSoftware) return CPU_DEFAULT;
  // Real GPUs: 64x64 output tiles staged through workgroup memory.
  const lim = gpu.limits;
  if (lim.maxComputeInvocationsPerWorkgroup >= 256 && lim.maxComputeWorkgroupStorageSize >= 8192) {
    return { kind: 'shared', tm: 4, tn: 4, wx: 16, wy: 16, bk: 16 };
  }
  return { kind: 'shared', tm: 8, tn: 8, wx: 8, wy: 8, bk: 8 };
}

function layoutOf(plan: MatmulPlan): RegLayout {
  const al = (xs: readonly number[]) => xs.every((x) => x % 4 === 0);
  const pAligned = al([plan.ldp, plan.offP, ...plan.outer.sp, ...plan.reduce.sp]);
  const qAligned = al([plan.ldq, plan.offQ, ...plan.outer.sq, ...plan.reduce.sq]);
  // A k-contiguous Q is read 4 k at a time when vectorised (matmul-reg-codegen.ts), so K % 4 == 0;
  // a k-contiguous P is vectorised only then too (in the 1-k step it is read as scalars).
  const k4 = plan.transQ && qAligned && plan.K % 4 === 0;
  return {
    transP: plan.transP,
    transQ: plan.transQ,
    vecP: pAligned && (plan.transP || k4),
    vecQ: plan.transQ ? k4 : qAligned,
    vecC: al([plan.ldc, plan.offC, plan.N, ...plan.outer.sc]),
  };
}

function kernelFor(gpu: Gpu, v: MatmulVariant, plan: MatmulPlan): Kernel {
  const bindings = ['read', 'read', 'read', 'rw'] as const;
  const common = shaderSource('matmul_common');
  const pIdx = plan.transP ? 'pbase + k * u.ldp + m' : 'pbase + m * u.ldp + k';
  const qIdx = plan.transQ ? 'qbase + n * u.ldq + k' : 'qbase + k * u.ldq + n';
  const tr = `${plan.transP ? 'T' : 'N'}${plan.transQ ? 'T' : 'N'}`;
  switch (v.kind) {
    case 'naive':
      return gpu.kernel(`mm:naive:${tr}`, () => ({
        label: `matmul naive ${tr}`,
        code: common + shaderSource('matmul_naive', { P_IDX: pIdx, Q_IDX: qIdx }),
        bindings,
        uniform: true,
      }));
    case 'reg': {
      const l = layoutOf(plan);
      const order = v.order ?? 'm';
      const key = `mm:reg:${v.tm}x${v.tn}:${v.wx}x${v.wy}:${order}:${tr}:${+l.vecP}${+l.vecQ}${+l.vecC}`;
      return gpu.kernel(key, () => ({
        label: `matmul ${variantName(v)} ${tr} vec${+l.vecP}${+l.vecQ}${+l.vecC}`,
        code: common + shaderSource('matmul_reg', regDefines({ tm: v.tm, tn: v.tn, wx: v.wx, wy: v.wy, order }, l)),
        bindings,
        uniform: true,
      }));
    }
    case 'shared': {
      const bm = v.tm * v.wy;
      const bn = v.tn * v.wx;
      const key = `mm:shared:${v.tm}x${v.tn}:${v.wx}x${v.wy}:${v.bk}:${tr}`;
      return gpu.kernel(key, () => ({
        label: `matmul ${variantName(v)} ${tr}`,
        code:
          common +
          shaderSource('matmul_shared', {
            TM: v.tm,
            TN: v.tn,
            TMTN: v.tm * v.tn,
            WX: v.wx,
            WY: v.wy,
            BK: v.bk,
            BM: bm,
            BN: bn,
            NT: v.wx * v.wy,
            PS_SIZE: v.bk * bm,
            QS_SIZE: v.bk * bn,
            // Neighbouring invocations load neighbouring words of whichever dim is contiguous.
            P_COORD: plan.transP ? `let mm = e % ${bm}u; let kk = e / ${bm}u;` : `let kk = e % ${v.bk}u; let mm = e / ${v.bk}u;`,
            Q_COORD: plan.transQ ? `let kk = e % ${v.bk}u; let nn = e / ${v.bk}u;` : `let nn = e % ${bn}u; let kk = e / ${bn}u;`,
            P_IDX: pIdx,
            Q_IDX: qIdx,
          }),
        bindings,
        uniform: true,
      }));
    }
  }
}

/** Output tile of one workgroup (rows, columns); naive: 64 outputs along a flat index. */
function tileOf(v: MatmulVariant): [number, number] {
  return v.kind === 'naive' ? [1, 1] : [v.tm * v.wy, v.tn * v.wx];
}

export interface Launch {
  variant: MatmulVariant;
  workgroups: [number, number, number];
  tilesM: number;
  tilesN: number;
  total: number;
}

/** Sizes the dispatch; throws (before anything is encoded) if it cannot be expressed. */
export function planLaunch(gpu: Gpu, plan: MatmulPlan, v: MatmulVariant, what: string): Launch {
  checkVariant(gpu, v, what);
  const outer = outerCount(plan);
  if (v.kind === 'naive') {
    const total = outer * plan.M * plan.N;
    if (total >= 2 ** 32) throw new GpuError(`${what}: ${total} outputs exceed the 32-bit index of the naive kernel`);
    return { variant: v, workgroups: gpu.grid(Math.ceil(total / 64)), tilesM: 1, tilesN: 1, total };
  }
  const [bm, bn] = tileOf(v);
  const tilesM = Math.ceil(plan.M / bm);
  const tilesN = Math.ceil(plan.N / bn);
  const total = tilesM * tilesN * outer;
  return { variant: v, workgroups: gpu.grid(total), tilesM, tilesN, total };
}

function uniformsFor(plan: MatmulPlan, launch: Launch, bias: boolean): Uint32Array {
  const pad = (xs: readonly number[]) => [...xs, ...new Array<number>(MAX_BATCH_DIMS - xs.length).fill(0)];
  const o = plan.outer;
  const r = plan.reduce;
  return new Uniforms()
    .u32(plan.M, plan.N, plan.K, launch.total)
    .u32(plan.ldp, plan.ldq, plan.ldc, launch.tilesN)
    .u32(launch.tilesM, o.shape.length, r.shape.length, reduceCount(plan))
    .vec4u([plan.offP, plan.offQ, plan.offC, bias ? 1 : 0])
    .vec4u(pad(o.shape))
    .vec4u(pad(o.sp))
    .vec4u(pad(o.sq))
    .vec4u(pad(o.sc))
    .vec4u(pad(r.shape))
    .vec4u(pad(r.sp))
    .vec4u(pad(r.sq))
    .done();
}

/** A tensor's words, bound whole-vec4 (pooled buffers are larger, so rounding up stays inside). */
function bindingOf(t: Tensor): Binding {
  const buffer = t.buffer;
  return { buffer, offset: 0, size: Math.min(buffer.size, Math.max(16, Math.ceil(t.bytes / 16) * 16)) };
}

/** Encodes C = P @ Q (+ bias) per `plan` with one dispatch. */
export function encodeProduct(gpu: Gpu, plan: MatmulPlan, launch: Launch, p: Tensor, q: Tensor, c: Tensor, bias: Tensor | null, label: string): void {
  if (launch.total === 0) return;
  const kernel = kernelFor(gpu, launch.variant, plan);
  gpu.dispatch({
    kernel,
    // Without a bias, P is bound again in its slot (read-only; what the kernel reads there is discarded).
    buffers: [bindingOf(p), bindingOf(q), bindingOf(bias ?? p), bindingOf(c)],
    uniforms: uniformsFor(plan, launch, bias !== null),
    workgroups: launch.workgroups,
    label,
  });
}

/** Column sums of g viewed as [rows, n] into out [n], fixed order (the bias gradient). */
export function encodeColumnSums(gpu: Gpu, g: Tensor, rows: number, n: number, out: Tensor, label: string): void {
  if (n === 0) return;
  const kernel = gpu.kernel('mm:colsum', () => ({ label: 'matmul bias gradient', code: shaderSource('matmul_colsum'), bindings: ['read', 'rw'], uniform: true }));
  gpu.dispatch({
    kernel,
    buffers: [g.buffer, out.buffer],
    uniforms: new Uniforms().u32(rows, n, 0, 0).done(),
    workgroups: gpu.grid(Math.ceil(n / 64)),
    label,
  });
}

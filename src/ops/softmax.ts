// softmax and logSoftmax along one axis, with an optional additive mask and a causal mask, and
// their backward kernels side by side (shaders/softmax.wgsl, shaders/softmax_backward.wgsl).
import { GpuError, type Gpu, type Kernel } from '../gpu/index.js';
import { Uniforms } from '../gpu/uniforms.js';
import { record } from '../autograd/tape.js';
import { empty, shapeStr, type Tensor } from '../tensor/tensor.js';
import { broadcastShapes, sumTo } from './elementwise.js';
import { checkBindable, dimsAround, normAxis } from './reduce-core.js';
import { rowPlan, rowSource, rowWorkgroups, type RowPlan } from './rows.js';

const MAX_RANK = 8;

export interface SoftmaxOptions {
  /**
   * Additive mask, broadcastable to x (e.g. [T,T] or [B,1,T,T] for x [B,H,T,T]); -inf entries
   * exclude a position. It may require grad (dmask = dx summed over broadcast dims).
   */
  mask?: Tensor;
  /**
   * Causal mask over the last two dims (x [..., Tq, Tk], axis must be the last): query i sees keys
   * j <= i + (Tk - Tq). Combined with `mask` when both are given.
   */
  causal?: boolean;
}

function forwardKernel(gpu: Gpu, log: boolean, mask: boolean, causal: boolean, plan: RowPlan): Kernel {
  const { variant, wg } = plan;
  const key = `softmax:${log ? 'log' : 'sm'}:${mask ? 'm' : ''}${causal ? 'c' : ''}:${variant}:${wg}`;
  return gpu.kernel(key, () => ({
    label: `${log ? 'logSoftmax' : 'softmax'}${mask ? ' masked' : ''}${causal ? ' causal' : ''} ${variant}`,
    code: rowSource(wg, 'softmax', {
      LOG: log,
      DECL: mask
        ? '@group(0) @binding(1) var<storage, read> M: array<f32>;\n@group(0) @binding(2) var<storage, read_write> Y: array<f32>;'
        : '@group(0) @binding(1) var<storage, read_write> Y: array<f32>;',
      U_BIND: mask ? 3 : 2,
      MASK_BASE: mask
        ? `var rem = r;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    if (u32(d) == u.axis) { continue; }
    let s = at(u.shape, u32(d));
    mb += (rem % s) * at(u.mstride, u32(d));
    rem = rem / s;
  }`
        : '',
      MASK_ADD: mask ? 'v += M[row.mbase + k * at(u.mstride, u.axis)];' : '',
      CAUSAL_LIM: causal ? 'lim = i32(r % u.tq) + u.causal_off;' : '',
      CAUSAL_CUT: causal ? 'if (i32(k) > row.lim) { v = u.ninf; }' : '',
    }),
    entry: variant === 'wg' ? 'wg_main' : 'thread_main',
    bindings: mask ? ['read', 'read', 'rw'] : ['read', 'rw'],
    uniform: true,
  }));
}

function backwardKernel(gpu: Gpu, log: boolean, plan: RowPlan): Kernel {
  const { variant, wg } = plan;
  return gpu.kernel(`softmax_bwd:${log ? 'log' : 'sm'}:${variant}:${wg}`, () => ({
    label: `${log ? 'logSoftmax' : 'softmax'} backward ${variant}`,
    code: rowSource(wg, 'softmax_backward', { LOG: log }),
    entry: variant === 'wg' ? 'wg_main' : 'thread_main',
    bindings: ['read', 'read', 'rw'],
    uniform: true,
  }));
}

/** Strides of `s` read as if broadcast to `out` (0 along broadcast dims). */
function broadcastStrides(s: readonly number[], out: readonly number[]): number[] {
  const strides = new Array<number>(out.length).fill(0);
  let st = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    const oi = out.length - s.length + i;
    strides[oi] = s[i] === 1 && out[oi] !== 1 ? 0 : st;
    st *= s[i]!;
  }
  return strides;
}

function softmaxImpl(op: 'softmax' | 'logSoftmax', x: Tensor, axis: number, opts: SoftmaxOptions): Tensor {
  const log = op === 'logSoftmax';
  x.assertAlive(op);
  if (x.dtype !== 'f32') throw new GpuError(`${op}: ${x.describe()} must be f32`);
  if (x.rank === 0) throw new GpuError(`${op}: ${x.describe()} is a scalar; it has no axis ${axis}`);
  if (x.rank > MAX_RANK) throw new GpuError(`${op}: ${x.describe()} has rank ${x.rank}, over ${MAX_RANK}`);
  const ax = normAxis(axis, x.rank, op, x.describe());
  const mask = opts.mask;
  if (mask) {
    mask.assertAlive(op);
    if (mask.dtype !== 'f32') throw new GpuError(`${op}: mask ${mask.describe()} must be f32`);
    const b = broadcastShapes(x.shape, mask.shape, `${op} mask`);
    if (b.length !== x.rank || b.some((d, i) => d !== x.shape[i])) {
      throw new GpuError(`${op}: mask ${mask.describe()} does not broadcast to x ${x.describe()}`);
    }
  }
  const causal = !!opts.causal;
  if (causal && (x.rank < 2 || ax !== x.rank - 1)) {
    throw new GpuError(`${op}: causal needs the last axis of a rank >= 2 tensor (x ${x.describe()}, axis ${axis})`);
  }
  checkBindable(op, x, ...(mask ? [mask] : []));
  const gpu = x.gpu;
  const d = dimsAround(x.shape, ax);
  const rows = d.outer * d.inner;
  const plan = rowPlan(gpu, op, d.n, 3);
  const y = empty(x.shape, 'f32', gpu, op);
  const tq = causal ? x.shape[x.rank - 2]! : 1;
  const off = causal ? x.shape[x.rank - 1]! - tq : 0;
  const u = new Uniforms()
    .u32(rows, d.n, d.inner, x.rank, ax, tq)
    .i32v(off)
    .f32v(-Infinity)
    .vec4u(x.shape, 2)
    .vec4u(mask ? broadcastStrides(mask.shape, x.shape) : [], 2)
    .done();
  gpu.dispatch({
    kernel: forwardKernel(gpu, log, !!mask, causal, plan),
    buffers: mask ? [x.buffer, mask.buffer, y.buffer] : [x.buffer, y.buffer],
    uniforms: u,
    workgroups: rowWorkgroups(gpu, plan.variant, rows),
    label: `${op} ${x.describe()} axis ${ax}${mask ? ` mask ${shapeStr(mask.shape)}` : ''}${causal ? ' causal' : ''}`,
  });
  const inputs = mask ? [x, mask] : [x];
  const maskShape = mask?.shape;
  return record(y, op, inputs, (needs, ctx) => {
    const sy = ctx.save(y);
    return (g) => {
      const dx = empty(sy.shape, 'f32', gpu, `${op} backward`);
      gpu.dispatch({
        kernel: backwardKernel(gpu, log, plan),
        buffers: [sy.buffer, g.buffer, dx.buffer],
        uniforms: new Uniforms().u32(rows, d.n, d.inner, 0).done(),
        workgroups: rowWorkgroups(gpu, plan.variant, rows),
        label: `${op} backward ${shapeStr(sy.shape)}`,
      });
      const dmask = needs[1] ? sumTo(dx, maskShape!) : null;
      if (needs[0]) return [dx, dmask];
      if (dmask !== dx) dx.dispose();
      return [null, dmask];
    };
  });
}

/** softmax(x) along `axis`: exp(x + mask - m) / sum, m the row max. */
export function softmax(x: Tensor, axis = -1, opts: SoftmaxOptions = {}): Tensor {
  return softmaxImpl('softmax', x, axis, opts);
}

/** log(softmax(x)) along `axis`, computed as x + mask - m - log(sum exp(x + mask - m)). */
export function logSoftmax(x: Tensor, axis = -1, opts: SoftmaxOptions = {}): Tensor {
  return softmaxImpl('logSoftmax', x, axis, opts);
}

// Reductions with autograd: sum, mean, max, logsumexp, argmax. Forward kernels come from
// reduce-core.ts (chunked fixed-order trees); each backward is one "expand" kernel beside it.
//
// Shapes: with `axis` given, the axis is removed (or kept as size 1 with keepDim). With axis
// undefined the whole tensor is reduced and the result has shape [] (a scalar, size 1, so
// `item()` works), or all-ones of the input's rank with keepDim (as torch).
import { GpuError, shaderSource, type Gpu, type Kernel } from '../gpu/index.js';
import { Uniforms } from '../gpu/uniforms.js';
import { record } from '../autograd/tape.js';
import { empty, shapeStr, type Shape, type Tensor } from '../tensor/tensor.js';
import { checkBindable, dimsAround, normAxis, reduceInto, type ReduceDims } from './reduce-core.js';

export { forceReduceVariant, type ReduceVariant } from './reduce-core.js';

interface Resolved {
  axis: number | undefined;
  dims: ReduceDims;
  outShape: number[];
}

/** Validates the input and axis (before anything is allocated or encoded). */
function resolve(op: string, x: Tensor, axis: number | undefined, keepDim: boolean, nonEmpty: boolean): Resolved {
  x.assertAlive(op);
  if (x.dtype !== 'f32') throw new GpuError(`${op}: ${x.describe()} must be f32`);
  checkBindable(op, x);
  let r: Resolved;
  if (axis === undefined) {
    r = { axis, dims: dimsAround(x.shape, undefined), outShape: keepDim ? x.shape.map(() => 1) : [] };
  } else {
    if (x.rank === 0) throw new GpuError(`${op}: ${x.describe()} is a scalar; it has no axis ${axis}`);
    const ax = normAxis(axis, x.rank, op, x.describe());
    const outShape = keepDim ? x.shape.map((d, i) => (i === ax ? 1 : d)) : x.shape.filter((_, i) => i !== ax);
    r = { axis: ax, dims: dimsAround(x.shape, ax), outShape };
  }
  if (nonEmpty && r.dims.n === 0 && r.dims.outer * r.dims.inner > 0) {
    throw new GpuError(`${op}: ${x.describe()} has no elements along the reduced axis`);
  }
  return r;
}

type ExpandKind = 'sum' | 'max' | 'lse';

function expandKernel(gpu: Gpu, kind: ExpandKind): Kernel {
  const ro = (b: number, name: string, t: string) => `@group(0) @binding(${b}) var<storage, read> ${name}: array<${t}>;`;
  const rw = (b: number) => `@group(0) @binding(${b}) var<storage, read_write> O: array<f32>;`;
  const un = (b: number) => `@group(0) @binding(${b}) var<uniform> u: Params;`;
  const spec = {
    sum: { decl: [ro(0, 'G', 'f32'), rw(1), un(2)], expr: 'G[r] * u.scale', bindings: ['read', 'rw'] },
    max: { decl: [ro(0, 'G', 'f32'), ro(1, 'I', 'i32'), rw(2), un(3)], expr: 'select(0.0, G[r], k == u32(I[r]))', bindings: ['read', 'read', 'rw'] },
    lse: { decl: [ro(0, 'G', 'f32'), ro(1, 'X', 'f32'), ro(2, 'Y', 'f32'), rw(3), un(4)], expr: 'G[r] * exp(X[e] - Y[r])', bindings: ['read', 'read', 'read', 'rw'] },
  }[kind];
  return gpu.kernel(`reduce_expand:${kind}`, () => ({
    label: `reduce backward ${kind}`,
    code: shaderSource('reduce_expand', { DECL: spec.decl.join('\n'), EXPR: spec.expr }),
    bindings: spec.bindings as ('read' | 'rw')[],
    uniform: true,
  }));
}

/** Gradient of a reduction: one kernel writing every input element from its row's gradient. */
function expand(kind: ExpandKind, g: Tensor, extra: Tensor[], xShape: Shape, dims: ReduceDims, scale: number, label: string): Tensor {
  const gpu = g.gpu;
  const o = empty(xShape, 'f32', gpu, label);
  const nEl = o.size;
  gpu.dispatch({
    kernel: expandKernel(gpu, kind),
    buffers: [g.buffer, ...extra.map((t) => t.buffer), o.buffer],
    uniforms: new Uniforms().u32(nEl, Math.max(1, dims.n), Math.max(1, dims.inner), 0).f32v(scale).done(),
    workgroups: gpu.grid(Math.ceil(nEl / 64)),
    label: `${label} ${shapeStr(xShape)}`,
  });
  return o;
}

function sumLike(op: 'sum' | 'mean', x: Tensor, axis: number | undefined, keepDim: boolean): Tensor {
  const r = resolve(op, x, axis, keepDim, op === 'mean');
  const scale = op === 'mean' ? 1 / r.dims.n : 1;
  const y = empty(r.outShape, 'f32', x.gpu, op);
  reduceInto('sum', x, r.dims, { value: y }, { scale, label: `${op} ${x.describe()}${axis === undefined ? '' : ` axis ${axis}`}` });
  const xShape = x.shape;
  return record(y, op, [x], () => (g) => [expand('sum', g, [], xShape, r.dims, scale, `${op} backward`)]);
}

/** Sum over `axis` (all elements when undefined). */
export function sum(x: Tensor, axis?: number, keepDim = false): Tensor {
  return sumLike('sum', x, axis, keepDim);
}

/** Mean over `axis` (all elements when undefined). */
export function mean(x: Tensor, axis?: number, keepDim = false): Tensor {
  return sumLike('mean', x, axis, keepDim);
}

/**
 * Maximum over `axis` (all elements when undefined). The gradient goes to the FIRST maximum of each
 * row only (ties are not split). NaN entries are not propagated (a NaN never wins a comparison).
 */
export function max(x: Tensor, axis?: number, keepDim = false): Tensor {
  const r = resolve('max', x, axis, keepDim, true);
  const y = empty(r.outShape, 'f32', x.gpu, 'max');
  const idx = empty(r.outShape, 'i32', x.gpu, 'max index');
  reduceInto('max', x, r.dims, { value: y, index: idx }, { label: `max ${x.describe()}` });
  const xShape = x.shape;
  const out = record(y, 'max', [x], (_needs, ctx) => {
    const si = ctx.save(idx);
    return (g) => [expand('max', g, [si], xShape, r.dims, 1, 'max backward')];
  });
  idx.dispose();
  return out;
}

/** log(sum(exp(x))) over `axis`, computed stably (running max and rescaled sum in one pass). */
export function logsumexp(x: Tensor, axis?: number, keepDim = false): Tensor {
  const r = resolve('logsumexp', x, axis, keepDim, true);
  const y = empty(r.outShape, 'f32', x.gpu, 'logsumexp');
  reduceInto('lse', x, r.dims, { value: y }, { label: `logsumexp ${x.describe()}` });
  const xShape = x.shape;
  return record(y, 'logsumexp', [x], (_needs, ctx) => {
    const sx = ctx.save(x);
    const sy = ctx.save(y);
    return (g) => [expand('lse', g, [sx, sy], xShape, r.dims, 1, 'logsumexp backward')];
  });
}

/**
 * Index of the FIRST maximum along `axis` (i32; the flat index when axis is undefined). Forward
 * only: the result does not require grad.
 */
export function argmax(x: Tensor, axis?: number, keepDim = false): Tensor {
  const r = resolve('argmax', x, axis, keepDim, true);
  const y = empty(r.outShape, 'i32', x.gpu, 'argmax');
  reduceInto('argmax', x, r.dims, { value: y }, { label: `argmax ${x.describe()}` });
  return y;
}

/**
 * Raw (no autograd) reduction of `x` viewed as `dims` into a new tensor of `outShape` (outer*inner
 * elements): for other op families that need a fixed-order sum, logsumexp or argmax inside a kernel
 * sequence of their own.
 */
export function reduceRaw(op: 'sum' | 'lse' | 'argmax', x: Tensor, dims: ReduceDims, outShape: Shape, opts: { scale?: number; inScale?: number; label?: string } = {}): Tensor {
  const label = opts.label ?? `reduceRaw ${op}`;
  x.assertAlive(label);
  if (x.dtype !== 'f32') throw new GpuError(`${label}: ${x.describe()} must be f32`);
  if (dims.outer * dims.n * dims.inner !== x.size || outShape.reduce((a, b) => a * b, 1) !== dims.outer * dims.inner) {
    throw new GpuError(`${label}: view [${dims.outer},${dims.n},${dims.inner}] -> ${shapeStr(outShape)} does not fit ${x.describe()}`);
  }
  checkBindable(label, x);
  const y = empty(outShape, op === 'argmax' ? 'i32' : 'f32', x.gpu, label);
  reduceInto(op, x, dims, { value: y }, { ...opts, label });
  return y;
}

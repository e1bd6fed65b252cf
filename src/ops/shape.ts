// Shape ops: reshape (a view), permute/transpose, slice, concat and patchify (im2col for the ViT patch
// embedding), each with its backward beside it. All copies go through one strided-copy kernel
// (copy.ts, shaders/shape_copy.wgsl), which binds tensors over maxStorageBufferBindingSize in windows.
import { GpuError } from '../gpu/index.js';
import { record } from '../autograd/tape.js';
import { empty, shapeSize, shapeStr, Tensor, zeros, type Shape } from '../tensor/tensor.js';
import { MAX_COPY_RANK, stridedCopy, stridesOf } from './copy.js';
import { checkWords } from './window.js';

export { stridesOf } from './copy.js';

/** Normalises a possibly negative axis of a rank-`rank` tensor, or throws naming the op. */
export function normAxis(op: string, t: Tensor, axis: number): number {
  const r = t.rank;
  if (!Number.isInteger(axis) || axis < -r || axis >= r) throw new GpuError(`${op}: axis ${axis} out of range for ${t.describe()}`);
  return axis < 0 ? axis + r : axis;
}

/** Resolves one -1 in `shape` from x's size. */
function resolveShape(x: Tensor, shape: readonly number[]): number[] {
  const out = [...shape];
  let free = -1;
  let known = 1;
  for (let i = 0; i < out.length; i++) {
    const d = out[i]!;
    if (d === -1) {
      if (free >= 0) throw new GpuError(`reshape ${x.describe()} to ${shapeStr(shape)}: more than one -1`);
      free = i;
    } else if (!Number.isInteger(d) || d < 0) {
      throw new GpuError(`reshape ${x.describe()} to ${shapeStr(shape)}: invalid dim ${d}`);
    } else known *= d;
  }
  if (free >= 0) {
    if (known === 0 || x.size % known !== 0) throw new GpuError(`reshape ${x.describe()} to ${shapeStr(shape)}: cannot infer -1`);
    out[free] = x.size / known;
  }
  if (shapeSize(out) !== x.size) throw new GpuError(`reshape ${x.describe()} to ${shapeStr(shape)}: sizes ${x.size} and ${shapeSize(out)} differ`);
  return out;
}

/** A view of x with a new shape (shares storage; one dim may be -1). Backward reshapes back. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  x.assertAlive('reshape');
  const s = resolveShape(x, shape);
  // Not x.share(): that handle is outside tidy() scopes, and an op's result must be tracked like any other.
  x.storage.retain();
  const y = new Tensor(x.gpu, s, x.dtype, x.storage);
  const xShape = x.shape;
  return record(y, 'reshape', [x], () => (g) => [g.share(xShape)]);
}

/** Output dim i is input dim perm[i] (general N-d, rank <= 6). Backward is the inverse permutation. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  checkWords('permute', x);
  const r = x.rank;
  const bad = () => new GpuError(`permute ${x.describe()}: [${perm.join(',')}] is not a permutation of ${r} axes`);
  if (perm.length !== r) throw bad();
  const p = perm.map((a) => {
    if (!Number.isInteger(a) || a < -r || a >= r) throw bad();
    return a < 0 ? a + r : a;
  });
  if (new Set(p).size !== r) throw bad();
  if (r > MAX_COPY_RANK) throw new GpuError(`permute ${x.describe()}: rank ${r} over ${MAX_COPY_RANK}`);
  if (p.every((a, i) => a === i)) return reshape(x, x.shape);
  const y = permuteRaw(x, p);
  const inv = new Array<number>(r);
  p.forEach((a, i) => (inv[a] = i));
  return record(y, 'permute', [x], () => (g) => [permuteRaw(g, inv)]);
}

function permuteRaw(x: Tensor, p: readonly number[]): Tensor {
  const outShape = p.map((a) => x.shape[a]!);
  const y = empty(outShape, x.dtype, x.gpu, 'permute');
  const xs = stridesOf(x.shape);
  stridedCopy(
    `permute ${shapeStr(x.shape)} [${p.join(',')}]`,
    outShape,
    { t: x, offset: 0, strides: p.map((a) => xs[a]!) },
    { t: y, offset: 0, strides: stridesOf(outShape) },
  );
  return y;
}

/** Swaps two dims (default: the last two). */
export function transpose(x: Tensor, d0 = -2, d1 = -1): Tensor {
  const a = normAxis('transpose', x, d0);
  const b = normAxis('transpose', x, d1);
  const perm = [...Array(x.rank).keys()];
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

/** [outer, n, inner] around `axis`. */
function around(shape: Shape, ax: number): [number, number, number] {
  return [shapeSize(shape.slice(0, ax)), shape[ax]!, shapeSize(shape.slice(ax + 1))];
}

/**
 * Elements [start, end) along `axis` (negative start/end count from the end; no clamping: out of
 * range is an error). Backward scatters the gradient into zeros.
 */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  checkWords('slice', x);
  const ax = normAxis('slice', x, axis);
  const dim = x.shape[ax]!;
  const s = start < 0 ? start + dim : start;
  const e = end === undefined ? dim : end < 0 ? end + dim : end;
  if (!Number.isInteger(s) || !Number.isInteger(e) || s < 0 || e > dim || s > e) {
    throw new GpuError(`slice ${x.describe()}: [${start}, ${end ?? dim}) out of range for axis ${ax} of size ${dim}`);
  }
  const y = sliceRaw(x, ax, s, e);
  const xShape = x.shape;
  return record(y, 'slice', [x], () => (g) => {
    const dx = zeros(xShape, g.dtype, g.gpu);
    const [outer, n, inner] = around(xShape, ax);
    const m = e - s;
    stridedCopy(
      `slice backward ${shapeStr(xShape)} axis ${ax} [${s},${e})`,
      [outer, m, inner],
      { t: g, offset: 0, strides: [m * inner, inner, 1] },
      { t: dx, offset: s * inner, strides: [n * inner, inner, 1] },
    );
    return [dx];
  });
}

function sliceRaw(x: Tensor, ax: number, s: number, e: number): Tensor {
  const outShape = x.shape.map((d, i) => (i === ax ? e - s : d));
  const y = empty(outShape, x.dtype, x.gpu, 'slice');
  const [outer, n, inner] = around(x.shape, ax);
  const m = e - s;
  stridedCopy(
    `slice ${shapeStr(x.shape)} axis ${ax} [${s},${e})`,
    [outer, m, inner],
    { t: x, offset: s * inner, strides: [n * inner, inner, 1] },
    { t: y, offset: 0, strides: [m * inner, inner, 1] },
  );
  return y;
}

/** Joins tensors along `axis` (same dtype, same dims elsewhere). Backward slices the gradient. */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new GpuError('concat: no tensors');
  const first = xs[0]!;
  checkWords('concat', ...xs);
  const ax = normAxis('concat', first, axis);
  for (const t of xs) {
    const ok = t.dtype === first.dtype && t.rank === first.rank && t.shape.every((d, i) => i === ax || d === first.shape[i]);
    if (!ok) throw new GpuError(`concat along axis ${ax}: ${t.describe()} does not match ${first.describe()} (dtype and all dims but ${ax} must agree)`);
    if (t.gpu !== first.gpu) throw new GpuError(`concat: ${t.describe()} is on another device than ${first.describe()}`);
  }
  const sizes = xs.map((t) => t.shape[ax]!);
  const total = sizes.reduce((a, b) => a + b, 0);
  const outShape = first.shape.map((d, i) => (i === ax ? total : d));
  const y = empty(outShape, first.dtype, first.gpu, 'concat');
  const [outer, , inner] = around(first.shape, ax);
  let off = 0;
  xs.forEach((t, k) => {
    const m = sizes[k]!;
    stridedCopy(
      `concat part ${k} ${shapeStr(t.shape)} axis ${ax}`,
      [outer, m, inner],
      { t, offset: 0, strides: [m * inner, inner, 1] },
      { t: y, offset: off * inner, strides: [total * inner, inner, 1] },
    );
    off += m;
  });
  return record(y, 'concat', xs, (needs) => (g) => {
    let start = 0;
    return sizes.map((m, k) => {
      const s = start;
      start += m;
      return needs[k] ? sliceRaw(g, ax, s, s + m) : null;
    });
  });
}

/**
 * im2col for a conv with stride = kernel = P: pixels [B, C, H, W] -> [B, (H/P)*(W/P), C*P*P]. Rows go
 * over patches in row-major (ph, pw) order and columns in (c, py, px) order, so a PyTorch conv weight
 * [D, C, P, P] flattened to [D, C*P*P] gives conv2d(x, W, stride=P) = patchify(x, P) @ W^T (the
 * output's [B, D, H/P, W/P].flatten(2).transpose(1, 2)). Backward is col2im (patches do not overlap).
 */
export function patchify(x: Tensor, P: number): Tensor {
  checkWords('patchify', x);
  if (x.rank !== 4) throw new GpuError(`patchify: ${x.describe()} must be [B, C, H, W]`);
  const [B, C, H, W] = x.shape as [number, number, number, number];
  if (!Number.isInteger(P) || P < 1) throw new GpuError(`patchify ${x.describe()}: patch size ${P} must be a positive integer`);
  if (H % P !== 0 || W % P !== 0) throw new GpuError(`patchify ${x.describe()}: H=${H} and W=${W} must be multiples of the patch size ${P}`);
  const hp = H / P;
  const wp = W / P;
  const space = [B, hp, wp, C, P, P];
  // Pixel (b, c, ph*P + py, pw*P + px) for iteration coordinates (b, ph, pw, c, py, px).
  const pixelStrides = [C * H * W, P * W, P, H * W, W, 1];
  const outShape = [B, hp * wp, C * P * P];
  const y = empty(outShape, x.dtype, x.gpu, 'patchify');
  stridedCopy(`patchify ${shapeStr(x.shape)} P=${P}`, space, { t: x, offset: 0, strides: pixelStrides }, { t: y, offset: 0, strides: stridesOf(space) });
  const xShape = x.shape;
  return record(y, 'patchify', [x], () => (g) => {
    const dx = empty(xShape, g.dtype, g.gpu, 'patchify backward');
    stridedCopy(`patchify backward ${shapeStr(xShape)} P=${P}`, space, { t: g, offset: 0, strides: stridesOf(space) }, { t: dx, offset: 0, strides: pixelStrides });
    return [dx];
  });
}

// Index ops: indexSelect, gatherRows (CLIP's text pooling at the EOT token), embedding, scatterAdd and
// the id check for CLIs. Forward is a row gather (shaders/gather.wgsl); every backward is the same
// deterministic scatter-add (shaders/gather_link.wgsl then shaders/scatter_add.wgsl): no float
// atomics, each destination element summed by one invocation in ascending index-position order.
//
// Out-of-range indices (< 0 or >= the indexed dim) cannot be checked without a readback: the gather
// writes zeros for them (no clamping) and the scatter ignores them (no gradient). `checkIds` reads the
// ids back and throws, for CLIs that want the error.
import { GpuError, shaderSource, type Gpu, type Kernel } from '../gpu/index.js';
import { Uniforms } from '../gpu/uniforms.js';
import { record } from '../autograd/tape.js';
import { empty, shapeSize, shapeStr, zeros, type Shape, type Tensor } from '../tensor/tensor.js';
import { normAxis } from './shape.js';
import { copyVariant } from './copy.js';
import { checkBindable, checkWords, partition, type Window } from './window.js';

const WG = 64;

/**
 * x viewed as [outer, n, inner], gathered/scattered rows [outer, m, inner]; the index of row (a, k) is
 * idx[k] (shared list) or idx[a * m + k] (perOuter: one list per outer row).
 */
interface Geom {
  outer: number;
  n: number;
  m: number;
  inner: number;
  perOuter: boolean;
}

function kernel(gpu: Gpu, name: 'gather' | 'gather_link' | 'scatter_add', vec4 = false): Kernel {
  const bindings = {
    gather: ['read', 'read', 'rw'],
    gather_link: ['read', 'rw'],
    scatter_add: ['read', 'read', 'read', 'rw'],
  } as const;
  return gpu.kernel(`${name}:${vec4 ? 4 : 1}`, () => ({
    label: `${name}${vec4 ? ' vec4' : ''}`,
    code: shaderSource(name, { WORD: vec4 ? 'vec4<u32>' : 'u32', VAL: vec4 ? 'vec4<f32>' : 'f32' }),
    bindings: bindings[name],
    uniform: true,
  }));
}

/**
 * How pass 1 links equal indices: 'scan' (each position scans its list: O(m) each, O(m^2) in all, one
 * dispatch) or 'sort' (bitonic sort of (index, position): O(m log^2 m), ~log2(m)^2 / 2 dispatches).
 * 'auto' scans up to SCAN_MAX positions. Both give the same table; tests force each.
 */
export type LinkMethod = 'auto' | 'scan' | 'sort';
let linkMethod: LinkMethod = 'auto';
const SCAN_MAX = 1024;
export function setLinkMethod(m: LinkMethod): LinkMethod {
  const prev = linkMethod;
  linkMethod = m;
  return prev;
}

/** The link table of pass 1 (u32 per index position: FIRST flag | next position with the same index). */
function linkTable(op: string, idx: Tensor, g: Geom): Tensor {
  const gpu = idx.gpu;
  const m = idx.size;
  const link = empty([m], 'u32', gpu, `${op} links`);
  const bind = (t: Tensor) => ({ buffer: t.buffer, offset: 0, size: t.storage.bytes });
  // One list per outer row (gatherRows-style) only ever has short lists: always scanned.
  const sort = !g.perOuter && (linkMethod === 'sort' || (linkMethod === 'auto' && m > SCAN_MAX));
  if (!sort) {
    gpu.dispatch({
      kernel: kernel(gpu, 'gather_link'),
      buffers: [bind(idx), bind(link)],
      uniforms: new Uniforms().u32(m, g.perOuter ? g.m : m, g.n, 0).done(),
      workgroups: gpu.grid(Math.ceil(m / WG)),
      label: `${op} link ${idx.describe()}`,
    });
    return link;
  }
  let slots = 1;
  while (slots < m) slots *= 2;
  const pairs = empty([slots, 2], 'u32', gpu, `${op} sort`);
  checkBindable(op, pairs);
  const sortKernel = (entry: string) =>
    gpu.kernel(`gather_sort:${entry}`, () => ({
      label: `gather_sort ${entry}`,
      code: shaderSource('gather_sort'),
      entry,
      bindings: ['read', 'rw', 'rw'],
      uniform: true,
    }));
  const run = (entry: string, invocations: number, k = 0, j = 0) =>
    gpu.dispatch({
      kernel: sortKernel(entry),
      buffers: [bind(idx), bind(pairs), bind(link)],
      uniforms: new Uniforms().u32(m, slots, k, j, g.n, 0, 0, 0).done(),
      workgroups: gpu.grid(Math.ceil(invocations / WG)),
      label: `${op} link (sort ${entry}) ${idx.describe()}`,
    });
  run('init', slots);
  for (let k = 2; k <= slots; k *= 2) for (let j = k / 2; j >= 1; j /= 2) run('sort_step', slots / 2, k, j);
  run('link', m);
  pairs.dispose();
  return link;
}

/** Words per kernel element: 4 (vec4 kernels) when rows are whole vec4s, unless tests force scalar. */
function unitOf(g: Geom): number {
  return copyVariant() === 'auto' && g.inner % 4 === 0 ? 4 : 1;
}

function checkIndex(op: string, idx: Tensor, x: Tensor): void {
  idx.assertAlive(op);
  if (idx.dtype !== 'i32') throw new GpuError(`${op}: indices ${idx.describe()} must be i32`);
  if (idx.gpu !== x.gpu) throw new GpuError(`${op}: indices ${idx.describe()} are on another device than ${x.describe()}`);
  checkBindable(op, idx);
}

/** out[a, k, :] = x[a, idx(a, k), :] (zeros for out-of-range indices); X and out may be windowed. */
function gatherInto(op: string, x: Tensor, idx: Tensor, g: Geom, out: Tensor): void {
  const gpu = x.gpu;
  const w = unitOf(g);
  const total = (g.outer * g.m * g.inner) / w;
  if (total === 0) return;
  const xWins = partition(x);
  for (const ow of partition(out)) {
    // Window bases are 16-byte aligned (window.ts), so whole vec4s.
    const count = Math.min(Math.floor(ow.len / w), total - ow.base / w);
    if (count <= 0) continue;
    xWins.forEach((xw, wi) => {
      const u = new Uniforms()
        .u32(count, ow.base / w, g.inner / w, g.m)
        .u32(g.n, g.perOuter ? g.m : 0, wi === 0 ? 1 : 0, 0)
        .u32(xw.base / w, Math.floor(xw.len / w), 0, 0);
      gpu.dispatch({
        kernel: kernel(gpu, 'gather', w === 4),
        buffers: [xw.binding, { buffer: idx.buffer, offset: 0, size: idx.storage.bytes }, ow.binding],
        uniforms: u.done(),
        workgroups: gpu.grid(Math.ceil(count / WG)),
        label: `${op} ${x.describe()} idx ${shapeStr(idx.shape)}`,
      });
    });
  }
}

/**
 * dst[a, idx(a, k), :] += src[a, k, :] for every (a, k), deterministically: pass 1 links equal indices
 * (linkTable: O(m^2) scan for short lists, O(m log^2 m) sort for long ones), pass 2 has the first
 * position of each distinct index sum its chain in ascending position order (O(outer * m * inner)
 * reads in all, no atomics). dst (e.g. a dense [V, D] embedding gradient) and src may be windowed.
 */
function scatterAddInto(op: string, dst: Tensor, idx: Tensor, g: Geom, src: Tensor): void {
  const gpu = dst.gpu;
  const total = g.outer * g.m * g.inner;
  if (total === 0) return;
  const idxBind = { buffer: idx.buffer, offset: 0, size: idx.storage.bytes };
  const link = g.m > 1 ? linkTable(op, idx, g) : null;
  const linkBind = link ? { buffer: link.buffer, offset: 0, size: link.storage.bytes } : idxBind;
  const w = unitOf(g);
  const srcWins: Window[] = partition(src);
  for (const dw of partition(dst)) {
    // Ascending source windows: each dispatch resumes the running sums the previous one stored.
    for (const sw of srcWins) {
      const u = new Uniforms()
        .u32(total / w, g.inner / w, g.m, g.n)
        .u32(g.perOuter ? g.m : 0, link ? 1 : 0, 0, 0)
        .u32(dw.base / w, Math.floor(dw.len / w), sw.base / w, Math.floor(sw.len / w));
      gpu.dispatch({
        kernel: kernel(gpu, 'scatter_add', w === 4),
        buffers: [sw.binding, idxBind, linkBind, dw.binding],
        uniforms: u.done(),
        workgroups: gpu.grid(Math.ceil(total / w / WG)),
        label: `${op} ${src.describe()} into ${dst.describe()}`,
      });
    }
  }
  link?.dispose();
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function geomAt(shape: Shape, ax: number, m: number): Geom {
  return { outer: shapeSize(shape.slice(0, ax)), n: shape[ax]!, m, inner: shapeSize(shape.slice(ax + 1)), perOuter: false };
}

/**
 * Picks entries of x along `axis` by a 1-D i32 index list (repeats allowed): out has x's shape with
 * that dim replaced by idx.size. Backward: deterministic scatter-add into zeros.
 */
export function indexSelect(x: Tensor, axis: number, idx: Tensor): Tensor {
  checkWords('indexSelect', x);
  checkIndex('indexSelect', idx, x);
  const ax = normAxis('indexSelect', x, axis);
  if (idx.rank !== 1) throw new GpuError(`indexSelect: indices ${idx.describe()} must be 1-D`);
  const g = geomAt(x.shape, ax, idx.size);
  const y = empty(x.shape.map((d, i) => (i === ax ? idx.size : d)), x.dtype, x.gpu, 'indexSelect');
  gatherInto('indexSelect', x, idx, g, y);
  const xShape = x.shape;
  return record(y, 'indexSelect', [x, idx], (_needs, ctx) => {
    const si = ctx.save(idx);
    return (gy) => {
      const dx = zeros(xShape, 'f32', gy.gpu);
      scatterAddInto('indexSelect backward', dx, si, g, gy);
      return [dx, null];
    };
  });
}

/**
 * One row per sequence: x [B, T, ...rest], idx i32 [B] -> [B, ...rest], out[b] = x[b, idx[b]] (CLIP's
 * text pooling at the EOT position). Backward writes each gradient row into zeros.
 */
export function gatherRows(x: Tensor, idx: Tensor): Tensor {
  checkWords('gatherRows', x);
  checkIndex('gatherRows', idx, x);
  if (x.rank < 2) throw new GpuError(`gatherRows: ${x.describe()} must be [B, T, ...]`);
  const B = x.shape[0]!;
  if (idx.rank !== 1 || idx.size !== B) throw new GpuError(`gatherRows: indices ${idx.describe()} must be [${B}] for ${x.describe()}`);
  const rest = x.shape.slice(2);
  const g: Geom = { outer: B, n: x.shape[1]!, m: 1, inner: shapeSize(rest), perOuter: true };
  const y = empty([B, ...rest], x.dtype, x.gpu, 'gatherRows');
  gatherInto('gatherRows', x, idx, g, y);
  const xShape = x.shape;
  return record(y, 'gatherRows', [x, idx], (_needs, ctx) => {
    const si = ctx.save(idx);
    return (gy) => {
      const dx = zeros(xShape, 'f32', gy.gpu);
      scatterAddInto('gatherRows backward', dx, si, g, gy);
      return [dx, null];
    };
  });
}

/**
 * Token embedding: weight [V, D], ids i32 of any shape -> [...ids.shape, D]. dW is a dense [V, D]
 * tensor (bound in windows when over the binding limit) filled by the deterministic scatter-add:
 * a clear of V*D words (the dominant cost: 101 MB for ViT-B/32), the link pass (O(N^2) for N <= 1024
 * ids, else O(N log^2 N)) and N*D adds, N = ids.size (batch x 77 here).
 */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  checkWords('embedding', weight);
  checkIndex('embedding', ids, weight);
  if (weight.rank !== 2) throw new GpuError(`embedding: weight ${weight.describe()} must be [V, D]`);
  const [V, D] = weight.shape as [number, number];
  const g: Geom = { outer: 1, n: V, m: ids.size, inner: D, perOuter: false };
  const y = empty([...ids.shape, D], weight.dtype, weight.gpu, 'embedding');
  gatherInto('embedding', weight, ids, g, y);
  return record(y, 'embedding', [weight, ids], (_needs, ctx) => {
    const si = ctx.save(ids);
    return (gy) => {
      const dw = zeros([V, D], 'f32', gy.gpu);
      scatterAddInto('embedding backward', dw, si, g, gy);
      return [dw, null];
    };
  });
}

/**
 * out = base with src added at the positions idx along `axis` (repeats accumulate, in index order):
 * out[.., idx[k], ..] += src[.., k, ..]. `base` may be a shape (zeros). src has base's shape with the
 * axis dim replaced by idx.size. Backward: base gets the gradient, src gets indexSelect of it.
 */
export function scatterAdd(base: Tensor | Shape, axis: number, idx: Tensor, src: Tensor): Tensor {
  const op = 'scatterAdd';
  src.assertAlive(op);
  if (src.dtype !== 'f32') throw new GpuError(`${op}: ${src.describe()} must be f32`);
  const baseT = Array.isArray(base) ? null : (base as Tensor);
  const shape: Shape = baseT ? baseT.shape : (base as Shape);
  if (baseT) {
    baseT.assertAlive(op);
    if (baseT.dtype !== 'f32') throw new GpuError(`${op}: base ${baseT.describe()} must be f32`);
    if (baseT.gpu !== src.gpu) throw new GpuError(`${op}: base ${baseT.describe()} is on another device than ${src.describe()}`);
  }
  checkIndex(op, idx, src);
  if (idx.rank !== 1) throw new GpuError(`${op}: indices ${idx.describe()} must be 1-D`);
  const r = shape.length;
  if (!Number.isInteger(axis) || axis < -r || axis >= r) throw new GpuError(`${op}: axis ${axis} out of range for shape ${shapeStr(shape)}`);
  const ax = axis < 0 ? axis + r : axis;
  const want = shape.map((d, i) => (i === ax ? idx.size : d));
  if (!sameShape(src.shape, want)) throw new GpuError(`${op}: ${src.describe()} must be ${shapeStr(want)} for base ${shapeStr(shape)}, axis ${ax} and ${idx.describe()}`);
  const out = empty(shape, 'f32', src.gpu, op);
  if (baseT) src.gpu.copy(baseT.buffer, 0, out.buffer, 0, out.storage.bytes, `${op} base ${baseT.describe()}`);
  else src.gpu.clear(out.buffer, 0, out.storage.bytes, `${op} zeros ${shapeStr(shape)}`);
  const g = geomAt(shape, ax, idx.size);
  scatterAddInto(op, out, idx, g, src);
  const inputs = baseT ? [baseT, idx, src] : [idx, src];
  return record(out, op, inputs, (needs, ctx) => {
    const needSrc = needs[inputs.length - 1]!;
    const si = needSrc ? ctx.save(idx) : null;
    return (gy) => {
      let gs: Tensor | null = null;
      if (si) {
        gs = empty(want, 'f32', gy.gpu, `${op} backward`);
        gatherInto(`${op} backward`, gy, si, g, gs);
      }
      return baseT ? [needs[0] ? gy.share() : null, null, gs] : [null, gs];
    };
  });
}

/** Reads ids back and throws if any lies outside [0, V) (for CLIs; the kernels themselves write zeros). */
export async function checkIds(ids: Tensor, V: number): Promise<void> {
  ids.assertAlive('checkIds');
  if (ids.dtype !== 'i32') throw new GpuError(`checkIds: ${ids.describe()} must be i32`);
  const host = (await ids.read()) as Int32Array;
  for (let i = 0; i < host.length; i++) {
    const v = host[i]!;
    if (v < 0 || v >= V) {
      const coords: number[] = [];
      let rem = i;
      for (let d = ids.rank - 1; d >= 0; d--) {
        coords.unshift(rem % ids.shape[d]!);
        rem = Math.floor(rem / ids.shape[d]!);
      }
      throw new GpuError(`checkIds: ${ids.describe()} holds ${v} at [${coords.join(',')}], outside [0, ${V})`);
    }
  }
}

// Elementwise ops with numpy broadcasting: one generated kernel per expression
// (shaders/elementwise.wgsl), and each op's backward beside it, written with the same kernel.
import { GpuError, shaderSource, type Kernel, type Gpu } from '../gpu/index.js';
import { Uniforms } from '../gpu/uniforms.js';
import { record } from '../autograd/tape.js';
import { empty, shapeStr, shapeSize, type Shape, type Tensor } from '../tensor/tensor.js';
import { needsWindows, partition, whole } from './window.js';
import { checkBindable, reduceInto } from './reduce-core.js';

const MAX_RANK = 8;

function kernelFor(gpu: Gpu, expr: string, bcast: boolean): Kernel {
  return gpu.kernel(`ew:${bcast ? 1 : 0}:${expr}`, () => ({
    label: `elementwise ${expr}`,
    code: shaderSource('elementwise', { EXPR: expr, BCAST: bcast }),
    bindings: ['read', 'read', 'rw'],
    uniform: true,
  }));
}

export function broadcastShapes(a: Shape, b: Shape, op: string): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new GpuError(`${op}: shapes ${shapeStr(a)} and ${shapeStr(b)} do not broadcast (dim ${i}: ${da} vs ${db})`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Strides of `s` read as if broadcast to `out` (0 along broadcast dims). */
function broadcastStrides(s: Shape, out: Shape): number[] {
  const strides = new Array<number>(out.length).fill(0);
  let st = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    const oi = out.length - s.length + i;
    strides[oi] = s[i] === 1 && out[oi] !== 1 ? 0 : st;
    st *= s[i]!;
  }
  return strides;
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function checkF32(op: string, ...ts: Tensor[]): void {
  for (const t of ts) {
    t.assertAlive(op);
    if (t.dtype !== 'f32') throw new GpuError(`${op}: ${t.describe()} must be f32`);
  }
}

/** Runs `expr` over a (and b, broadcast) into a new tensor. No autograd. */
export function mapRaw(expr: string, a: Tensor, b: Tensor | null, alpha = 0, beta = 0, label = expr): Tensor {
  const gpu = a.gpu;
  const bb = b ?? a;
  const out = b ? broadcastShapes(a.shape, b.shape, label) : [...a.shape];
  if (out.length > MAX_RANK) throw new GpuError(`${label}: rank ${out.length} over ${MAX_RANK}`);
  const bcast = !(sameShape(a.shape, out) && sameShape(bb.shape, out));
  const o = empty(out, 'f32', gpu, label);
  const n = shapeSize(out);
  const what = `${label} ${shapeStr(a.shape)}${b ? ` ${shapeStr(b.shape)}` : ''}`;
  const big = needsWindows(o) || needsWindows(a) || needsWindows(bb);
  if (big && bcast) {
    throw new GpuError(`${what}: broadcasting a tensor over this device's maxStorageBufferBindingSize ${gpu.limits.maxStorageBufferBindingSize} is not supported`);
  }
  // Same-shape maps over a tensor too large to bind whole run window by window: element i of every
  // operand sits at the same offset, so each window is an independent map over [base, base + len).
  const chunks = big ? partition(o) : [whole(o)];
  for (const w of chunks) {
    const count = Math.min(w.len, n - w.base);
    if (count <= 0) continue;
    const u = new Uniforms().u32(count, out.length).f32v(alpha, beta).vec4u(out, 2);
    u.vec4u(broadcastStrides(a.shape, out), 2).vec4u(broadcastStrides(bb.shape, out), 2);
    const win = (t: Tensor) => (big ? { buffer: t.buffer, offset: w.base * 4, size: count * 4 } : whole(t).binding);
    gpu.dispatch({
      kernel: kernelFor(gpu, expr, bcast),
      buffers: [win(a), win(bb), w.binding],
      uniforms: u.done(),
      workgroups: gpu.grid(Math.ceil(count / 64)),
      label: what,
    });
  }
  return o;
}

/**
 * Sums `g` over broadcast dims so it has `shape` (identity handle if shapes match). Runs the
 * fixed-order tree reductions of reduce-core.ts, one reduction per run of adjacent reduced dims
 * (left to right), so large reductions are fast, accurate and bit-identical run to run.
 */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g.share();
  const r = g.shape.length;
  for (let i = 0; i < shape.length - r; i++) {
    if (shape[i] !== 1) throw new GpuError(`sumTo: ${shapeStr(g.shape)} cannot reduce to ${shapeStr(shape)}`);
  }
  // Alternating runs of kept and reduced dims; size-1 dims are dropped (they change nothing).
  const runs: { size: number; keep: boolean }[] = [];
  for (let i = 0; i < r; i++) {
    const si = shape[shape.length - r + i] ?? 1;
    const gi = g.shape[i]!;
    if (si !== gi && si !== 1) throw new GpuError(`sumTo: ${shapeStr(g.shape)} cannot reduce to ${shapeStr(shape)}`);
    if (gi === 1) continue;
    const keep = si === gi;
    const last = runs[runs.length - 1];
    if (last && last.keep === keep) last.size *= gi;
    else runs.push({ size: gi, keep });
  }
  if (shapeSize(shape) === g.size) return g.share(shape);
  checkBindable('sumTo', g);
  let cur = g;
  for (;;) {
    const j = runs.findIndex((run) => !run.keep);
    let outer = 1;
    let inner = 1;
    for (let k = 0; k < j; k++) outer *= runs[k]!.size;
    for (let k = j + 1; k < runs.length; k++) inner *= runs[k]!.size;
    const n = runs[j]!.size;
    runs.splice(j, 1);
    if (runs[j - 1]?.keep && runs[j]?.keep) runs.splice(j - 1, 2, { size: runs[j - 1]!.size * runs[j]!.size, keep: true });
    const last = !runs.some((run) => !run.keep);
    const o = last ? empty(shape, 'f32', g.gpu, 'sumTo') : empty([outer * inner], 'f32', g.gpu, 'sumTo partial');
    reduceInto('sum', cur, { outer, n, inner }, { value: o }, { label: `sumTo ${shapeStr(g.shape)}->${shapeStr(shape)}` });
    if (cur !== g) cur.dispose();
    if (last) return o;
    cur = o;
  }
}

function binary(
  name: string,
  expr: string,
  a: Tensor,
  b: Tensor,
  grads: (g: Tensor, a: Tensor | null, b: Tensor | null, y: Tensor | null) => [Tensor | null, Tensor | null],
  saves: { a?: 'forA' | 'forB' | 'both'; b?: 'forA' | 'forB' | 'both'; y?: 'forB' },
): Tensor {
  checkF32(name, a, b);
  const y = mapRaw(expr, a, b, 0, 0, name);
  const aShape = a.shape;
  const bShape = b.shape;
  return record(y, name, [a, b], (needs, ctx) => {
    const want = (s: 'forA' | 'forB' | 'both' | undefined) => s === 'both' ? needs[0] || needs[1] : s === 'forA' ? needs[0] : s === 'forB' ? needs[1] : false;
    const sa = want(saves.a) ? ctx.save(a) : null;
    const sb = want(saves.b) ? ctx.save(b) : null;
    const sy = want(saves.y) ? ctx.save(y) : null;
    return (g) => {
      const [ga, gb] = grads(g, sa, sb, sy);
      // A closure may return a handle for an input that needs no gradient (e.g. add's g.share()).
      if (!needs[0]) ga?.dispose();
      if (!needs[1]) gb?.dispose();
      const ra = needs[0] && ga ? reduceOwned(ga, aShape) : null;
      const rb = needs[1] && gb ? reduceOwned(gb, bShape) : null;
      return [ra, rb];
    };
  });
}

function reduceOwned(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const r = sumTo(g, shape);
  g.dispose();
  return r;
}

export function add(a: Tensor, b: Tensor): Tensor {
  return binary('add', 'a + b', a, b, (g) => [g.share(), g.share()], {});
}

export function sub(a: Tensor, b: Tensor): Tensor {
  return binary('sub', 'a - b', a, b, (g) => [g.share(), mapRaw('-a', g, null, 0, 0, 'neg')], {});
}

export function mul(a: Tensor, b: Tensor): Tensor {
  return binary(
    'mul',
    'a * b',
    a,
    b,
    (g, sa, sb) => [sb ? mapRaw('a * b', g, sb) : null, sa ? mapRaw('a * b', g, sa) : null],
    { a: 'forB', b: 'forA' },
  );
}

export function div(a: Tensor, b: Tensor): Tensor {
  return binary(
    'div',
    'a / b',
    a,
    b,
    (g, _sa, sb, sy) => {
      const ga = sb ? mapRaw('a / b', g, sb) : null;
      let gb: Tensor | null = null;
      if (sy && sb) {
        const gy = mapRaw('a * b', g, sy); // d(a/b)/db = -y/b
        gb = mapRaw('-(a / b)', gy, sb);
        gy.dispose();
      }
      return [ga, gb];
    },
    { b: 'both', y: 'forB' },
  );
}

/**
 * A unary op: forward `expr` over a (with alpha, beta), backward `gradExpr` over (a = g, b = x or y).
 * `uses` says whether the backward reads the input x or the output y.
 */
function unary(name: string, x: Tensor, expr: string, gradExpr: string, uses: 'x' | 'y' | 'none', alpha = 0, beta = 0): Tensor {
  checkF32(name, x);
  const y = mapRaw(expr, x, null, alpha, beta, name);
  return record(y, name, [x], (_needs, ctx) => {
    const s = uses === 'x' ? ctx.save(x) : uses === 'y' ? ctx.save(y) : null;
    return (g) => [mapRaw(gradExpr, g, s ?? g, alpha, beta, `${name} backward`)];
  });
}

export const neg = (x: Tensor) => unary('neg', x, '-a', '-a', 'none');
export const scale = (x: Tensor, s: number) => unary('scale', x, 'a * alpha', 'a * alpha', 'none', s);
export const addScalar = (x: Tensor, s: number) => unary('addScalar', x, 'a + alpha', 'a', 'none', s);
export const exp = (x: Tensor) => unary('exp', x, 'exp(a)', 'a * b', 'y');
export const log = (x: Tensor) => unary('log', x, 'log(a)', 'a / b', 'x');
export const sqrt = (x: Tensor) => unary('sqrt', x, 'sqrt(a)', 'a * 0.5 / b', 'y');
export const square = (x: Tensor) => unary('square', x, 'a * a', '2.0 * a * b', 'x');
export const sigmoid = (x: Tensor) => unary('sigmoid', x, 'sigm(a)', 'a * b * (1.0 - b)', 'y');
/** CLIP's QuickGELU: x * sigmoid(1.702 x). */
export const quickGelu = (x: Tensor) =>
  unary('quickGelu', x, 'a * sigm(1.702 * a)', 'a * sigm(1.702 * b) * (1.0 + 1.702 * b * (1.0 - sigm(1.702 * b)))', 'x');
/** Exact (erf) GELU, as torch.nn.GELU() and open_clip's non-quickgelu models. */
export const gelu = (x: Tensor) =>
  unary(
    'gelu',
    x,
    '0.5 * a * (1.0 + erf_(a * 0.70710678118654752))',
    'a * (0.5 * (1.0 + erf_(b * 0.70710678118654752)) + b * 0.39894228040143268 * exp(-0.5 * b * b))',
    'x',
  );

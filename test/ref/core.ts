// A small float64 CPU tensor library with reverse-mode autograd: the independent reference every GPU
// op is checked against. Deliberately naive (plain loops, no tiling) so it is obviously correct; its
// own gradients are checked against central finite differences (test/helpers/parity.ts).
// Compound ops (softmax, layer norm, attention, losses) are written in test/ref/*.ts as compositions
// of these primitives, so their gradients come from the primitives' adjoints.

export type Shape = readonly number[];

export function size(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let st = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = st;
    st *= shape[i]!;
  }
  return s;
}

let tapeOrder = 0;

export class R {
  grad: Float64Array | null = null;
  readonly order = tapeOrder++;
  constructor(
    readonly data: Float64Array,
    readonly shape: Shape,
    readonly parents: readonly R[] = [],
    /** Adds this node's contribution to each parent's grad given this node's grad. */
    readonly back: ((g: Float64Array) => void) | null = null,
  ) {
    if (data.length !== size(shape)) throw new Error(`R: ${data.length} values for shape [${shape}]`);
  }

  static from(values: ArrayLike<number>, shape: Shape): R {
    return new R(Float64Array.from(values), [...shape]);
  }

  get size(): number {
    return this.data.length;
  }

  /** Reverse-mode pass from this node with seed gradient `seed` (default ones). */
  backward(seed?: ArrayLike<number>): void {
    const nodes: R[] = [];
    const seen = new Set<R>();
    const visit = (n: R) => {
      if (seen.has(n)) return;
      seen.add(n);
      for (const p of n.parents) visit(p);
      nodes.push(n);
    };
    visit(this);
    for (const n of nodes) if (n.back) n.grad = null;
    this.grad = seed ? Float64Array.from(seed) : new Float64Array(this.size).fill(1);
    for (let i = nodes.length - 1; i >= 0; i--) {
      const n = nodes[i]!;
      if (n.back && n.grad) n.back(n.grad);
    }
  }
}

function acc(p: R, g: Float64Array): void {
  if (!p.grad) p.grad = new Float64Array(p.size);
  for (let i = 0; i < g.length; i++) p.grad[i]! += g[i]!;
}

export function broadcastShape(a: Shape, b: Shape): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`ref: [${a}] and [${b}] do not broadcast`);
    out.push(Math.max(da, db));
  }
  return out;
}

/** For each flat index of `out`, the flat index into an input of shape `s` broadcast to it. */
function broadcastIndex(s: Shape, out: Shape): Int32Array {
  const n = size(out);
  const idx = new Int32Array(n);
  const os = stridesOf(out);
  const ss = stridesOf(s);
  const off = out.length - s.length;
  for (let i = 0; i < n; i++) {
    let j = 0;
    for (let d = 0; d < s.length; d++) {
      const c = Math.floor(i / os[d + off]!) % out[d + off]!;
      j += (s[d] === 1 ? 0 : c) * ss[d]!;
    }
    idx[i] = j;
  }
  return idx;
}

export function map2(a: R, b: R, f: (x: number, y: number) => number, dfa: (x: number, y: number) => number, dfb: (x: number, y: number) => number): R {
  const shape = broadcastShape(a.shape, b.shape);
  const ia = broadcastIndex(a.shape, shape);
  const ib = broadcastIndex(b.shape, shape);
  const n = size(shape);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = f(a.data[ia[i]!]!, b.data[ib[i]!]!);
  return new R(out, shape, [a, b], (g) => {
    const ga = new Float64Array(a.size);
    const gb = new Float64Array(b.size);
    for (let i = 0; i < n; i++) {
      const x = a.data[ia[i]!]!;
      const y = b.data[ib[i]!]!;
      ga[ia[i]!]! += g[i]! * dfa(x, y);
      gb[ib[i]!]! += g[i]! * dfb(x, y);
    }
    acc(a, ga);
    acc(b, gb);
  });
}

export function map1(a: R, f: (x: number) => number, df: (x: number) => number): R {
  const out = a.data.map(f);
  return new R(out, a.shape, [a], (g) => {
    const ga = new Float64Array(a.size);
    for (let i = 0; i < a.size; i++) ga[i] = g[i]! * df(a.data[i]!);
    acc(a, ga);
  });
}

export const add = (a: R, b: R) => map2(a, b, (x, y) => x + y, () => 1, () => 1);
export const sub = (a: R, b: R) => map2(a, b, (x, y) => x - y, () => 1, () => -1);
export const mul = (a: R, b: R) => map2(a, b, (x, y) => x * y, (_x, y) => y, (x) => x);
export const div = (a: R, b: R) => map2(a, b, (x, y) => x / y, (_x, y) => 1 / y, (x, y) => -x / (y * y));
export const scale = (a: R, s: number) => map1(a, (x) => x * s, () => s);
export const addScalar = (a: R, s: number) => map1(a, (x) => x + s, () => 1);
export const neg = (a: R) => map1(a, (x) => -x, () => -1);
export const exp = (a: R) => map1(a, Math.exp, Math.exp);
export const log = (a: R) => map1(a, Math.log, (x) => 1 / x);
export const sqrt = (a: R) => map1(a, Math.sqrt, (x) => 0.5 / Math.sqrt(x));
export const square = (a: R) => map1(a, (x) => x * x, (x) => 2 * x);
const sig = (x: number) => 1 / (1 + Math.exp(-x));
export const sigmoid = (a: R) => map1(a, sig, (x) => sig(x) * (1 - sig(x)));
export const quickGelu = (a: R) => map1(a, (x) => x * sig(1.702 * x), (x) => sig(1.702 * x) + x * 1.702 * sig(1.702 * x) * (1 - sig(1.702 * x)));

/** erf to double precision (Abramowitz-Stegun 7.1.26 is too coarse; use a series / continued fraction). */
export function erf(x: number): number {
  const z = Math.abs(x);
  let r: number;
  if (z < 3) {
    // Maclaurin series: erf(z) = 2/sqrt(pi) * sum (-1)^n z^(2n+1) / (n! (2n+1))
    let term = z;
    let sum = z;
    for (let n = 1; n < 200; n++) {
      term *= (-z * z) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // Continued fraction for erfc (Lentz), accurate for z >= 3.
    let f = z;
    let C = z;
    let D = 0;
    for (let n = 1; n < 300; n++) {
      const an = n / 2;
      D = z + an * D;
      D = 1 / D;
      C = z + an / C;
      const delta = C * D;
      f *= delta;
      if (Math.abs(delta - 1) < 1e-16) break;
    }
    r = 1 - Math.exp(-z * z) / (f * Math.sqrt(Math.PI));
  }
  return x < 0 ? -r : r;
}
export const gelu = (a: R) =>
  map1(
    a,
    (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
    (x) => 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI),
  );

export function reshape(a: R, shape: Shape): R {
  if (size(shape) !== a.size) throw new Error(`ref reshape [${a.shape}] -> [${shape}]`);
  return new R(a.data, [...shape], [a], (g) => acc(a, g));
}

export function permute(a: R, perm: readonly number[]): R {
  const shape = perm.map((p) => a.shape[p]!);
  const as = stridesOf(a.shape);
  const os = stridesOf(shape);
  const n = a.size;
  const src = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let j = 0;
    for (let d = 0; d < shape.length; d++) j += (Math.floor(i / os[d]!) % shape[d]!) * as[perm[d]!]!;
    src[i] = j;
  }
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = a.data[src[i]!]!;
  return new R(out, shape, [a], (g) => {
    const ga = new Float64Array(n);
    for (let i = 0; i < n; i++) ga[src[i]!] = g[i]!;
    acc(a, ga);
  });
}

/** Sum over `axis` (negative counts from the end); keepDim keeps a size-1 dim. axis undefined = all. */
export function sum(a: R, axis?: number, keepDim = false): R {
  if (axis === undefined) {
    let s = 0;
    for (const v of a.data) s += v;
    return new R(Float64Array.of(s), keepDim ? a.shape.map(() => 1) : [], [a], (g) => acc(a, new Float64Array(a.size).fill(g[0]!)));
  }
  const ax = axis < 0 ? axis + a.shape.length : axis;
  const outer = size(a.shape.slice(0, ax));
  const n = a.shape[ax]!;
  const inner = size(a.shape.slice(ax + 1));
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) for (let k = 0; k < n; k++) for (let i = 0; i < inner; i++) out[o * inner + i]! += a.data[(o * n + k) * inner + i]!;
  const shape = keepDim ? a.shape.map((d, i) => (i === ax ? 1 : d)) : a.shape.filter((_, i) => i !== ax);
  return new R(out, shape, [a], (g) => {
    const ga = new Float64Array(a.size);
    for (let o = 0; o < outer; o++) for (let k = 0; k < n; k++) for (let i = 0; i < inner; i++) ga[(o * n + k) * inner + i] = g[o * inner + i]!;
    acc(a, ga);
  });
}

export function mean(a: R, axis?: number, keepDim = false): R {
  const n = axis === undefined ? a.size : a.shape[axis < 0 ? axis + a.shape.length : axis]!;
  return scale(sum(a, axis, keepDim), 1 / n);
}

/** Max over `axis` (keepDim); gradient flows to the first maximum, as the GPU kernels do. */
export function max(a: R, axis: number, keepDim = false): R {
  const ax = axis < 0 ? axis + a.shape.length : axis;
  const outer = size(a.shape.slice(0, ax));
  const n = a.shape[ax]!;
  const inner = size(a.shape.slice(ax + 1));
  const out = new Float64Array(outer * inner);
  const arg = new Int32Array(outer * inner);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let best = -Infinity;
      let bi = 0;
      for (let k = 0; k < n; k++) {
        const v = a.data[(o * n + k) * inner + i]!;
        if (v > best) {
          best = v;
          bi = k;
        }
      }
      out[o * inner + i] = best;
      arg[o * inner + i] = bi;
    }
  const shape = keepDim ? a.shape.map((d, i) => (i === ax ? 1 : d)) : a.shape.filter((_, i) => i !== ax);
  return new R(out, shape, [a], (g) => {
    const ga = new Float64Array(a.size);
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) ga[(o * n + arg[o * inner + i]!) * inner + i]! += g[o * inner + i]!;
    acc(a, ga);
  });
}

/** Batched matmul: a [..., M, K] @ b [..., K, N] with broadcasting batch dims (2-D b broadcasts). */
export function matmul(a: R, b: R): R {
  const M = a.shape[a.shape.length - 2]!;
  const K = a.shape[a.shape.length - 1]!;
  const K2 = b.shape[b.shape.length - 2]!;
  const N = b.shape[b.shape.length - 1]!;
  if (K !== K2) throw new Error(`ref matmul [${a.shape}] @ [${b.shape}]`);
  const batchShape = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const nb = size(batchShape);
  const ia = broadcastIndex(a.shape.slice(0, -2), batchShape);
  const ib = broadcastIndex(b.shape.slice(0, -2), batchShape);
  const out = new Float64Array(nb * M * N);
  for (let t = 0; t < nb; t++) {
    const ao = ia[t]! * M * K;
    const bo = ib[t]! * K * N;
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a.data[ao + i * K + k]! * b.data[bo + k * N + j]!;
        out[t * M * N + i * N + j] = s;
      }
  }
  return new R(out, [...batchShape, M, N], [a, b], (g) => {
    const ga = new Float64Array(a.size);
    const gb = new Float64Array(b.size);
    for (let t = 0; t < nb; t++) {
      const ao = ia[t]! * M * K;
      const bo = ib[t]! * K * N;
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++) {
          const gv = g[t * M * N + i * N + j]!;
          for (let k = 0; k < K; k++) {
            ga[ao + i * K + k]! += gv * b.data[bo + k * N + j]!;
            gb[bo + k * N + j]! += gv * a.data[ao + i * K + k]!;
          }
        }
    }
    acc(a, ga);
    acc(b, gb);
  });
}

/** Transpose of the last two dims. */
export function transpose(a: R): R {
  const r = a.shape.length;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
  return permute(a, perm);
}

/** Slice [start, end) along axis. */
export function slice(a: R, axis: number, start: number, end: number): R {
  const ax = axis < 0 ? axis + a.shape.length : axis;
  const outer = size(a.shape.slice(0, ax));
  const n = a.shape[ax]!;
  const inner = size(a.shape.slice(ax + 1));
  const m = end - start;
  const out = new Float64Array(outer * m * inner);
  for (let o = 0; o < outer; o++) for (let k = 0; k < m; k++) for (let i = 0; i < inner; i++) out[(o * m + k) * inner + i] = a.data[(o * n + start + k) * inner + i]!;
  return new R(out, a.shape.map((d, i) => (i === ax ? m : d)), [a], (g) => {
    const ga = new Float64Array(a.size);
    for (let o = 0; o < outer; o++) for (let k = 0; k < m; k++) for (let i = 0; i < inner; i++) ga[(o * n + start + k) * inner + i] = g[(o * m + k) * inner + i]!;
    acc(a, ga);
  });
}

export function concat(parts: readonly R[], axis: number): R {
  const ax = axis < 0 ? axis + parts[0]!.shape.length : axis;
  const outer = size(parts[0]!.shape.slice(0, ax));
  const inner = size(parts[0]!.shape.slice(ax + 1));
  const total = parts.reduce((s, p) => s + p.shape[ax]!, 0);
  const out = new Float64Array(outer * total * inner);
  let off = 0;
  const offs: number[] = [];
  for (const p of parts) {
    offs.push(off);
    const n = p.shape[ax]!;
    for (let o = 0; o < outer; o++) for (let k = 0; k < n; k++) for (let i = 0; i < inner; i++) out[(o * total + off + k) * inner + i] = p.data[(o * n + k) * inner + i]!;
    off += n;
  }
  return new R(out, parts[0]!.shape.map((d, i) => (i === ax ? total : d)), parts, (g) => {
    parts.forEach((p, pi) => {
      const n = p.shape[ax]!;
      const gp = new Float64Array(p.size);
      for (let o = 0; o < outer; o++) for (let k = 0; k < n; k++) for (let i = 0; i < inner; i++) gp[(o * n + k) * inner + i] = g[(o * total + offs[pi]! + k) * inner + i]!;
      acc(p, gp);
    });
  });
}

/** Rows of `a` ([N, ...]) picked by integer `idx` (gradient scatter-adds). */
export function indexSelect(a: R, idx: ArrayLike<number>, axis = 0): R {
  const ax = axis < 0 ? axis + a.shape.length : axis;
  const outer = size(a.shape.slice(0, ax));
  const n = a.shape[ax]!;
  const inner = size(a.shape.slice(ax + 1));
  const m = idx.length;
  const out = new Float64Array(outer * m * inner);
  for (let o = 0; o < outer; o++) for (let k = 0; k < m; k++) for (let i = 0; i < inner; i++) out[(o * m + k) * inner + i] = a.data[(o * n + idx[k]!) * inner + i]!;
  return new R(out, a.shape.map((d, i) => (i === ax ? m : d)), [a], (g) => {
    const ga = new Float64Array(a.size);
    for (let o = 0; o < outer; o++) for (let k = 0; k < m; k++) for (let i = 0; i < inner; i++) ga[(o * n + idx[k]!) * inner + i]! += g[(o * m + k) * inner + i]!;
    acc(a, ga);
  });
}

/** A constant (no gradient) of the given values. */
export function constant(values: ArrayLike<number>, shape: Shape): R {
  return R.from(values, shape);
}

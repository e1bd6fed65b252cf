// Distances between embedding rows, forward and backward side by side: l2normalize
// (shaders/l2norm*.wgsl), pairwiseSqDist and cosineSim (shaders/pair.wgsl, one generated
// register-tiled kernel for distances, dot products and their gradients).
import { GpuError, shaderSource, type Gpu, type Kernel } from '../gpu/index.js';
import { Uniforms } from '../gpu/uniforms.js';
import { record } from '../autograd/tape.js';
import { empty, shapeStr, type Tensor } from '../tensor/tensor.js';
import { checkBindable, LOOP_BUDGET } from './reduce-core.js';
import { declare, rowPlan, rowSource, rowWorkgroups, type Decl, type RowPlan } from './rows.js';

function checkF32(op: string, what: string, t: Tensor): void {
  t.assertAlive(op);
  if (t.dtype !== 'f32') throw new GpuError(`${op}: ${what} ${t.describe()} must be f32`);
}

// ---------------------------------------------------------------------------------------------
// l2normalize

function l2Kernel(gpu: Gpu, plan: RowPlan, backward: boolean): Kernel {
  return gpu.kernel(`l2norm${backward ? '_bwd' : ''}:${plan.variant}:${plan.wg}`, () => ({
    label: `l2normalize${backward ? ' backward' : ''} ${plan.variant}`,
    code: rowSource(plan.wg, backward ? 'l2norm_backward' : 'l2norm', {}),
    entry: plan.variant === 'wg' ? 'wg_main' : 'thread_main',
    bindings: backward ? ['read', 'read', 'read', 'rw'] : ['read', 'rw', 'rw'],
    uniform: true,
  }));
}

/**
 * Rows over the last dim divided by their L2 norm: x / max(||x||, eps), as torch F.normalize
 * (eps = 1e-12). CLIP's own code divides by x.norm() with no clamp: identical unless a row's norm
 * is below eps (then F.normalize returns x / eps where CLIP would divide by ~0). Backward:
 * (g - y (g . y)) / ||x||, or g / eps for clamped rows.
 */
export function l2normalize(x: Tensor, eps = 1e-12): Tensor {
  const op = 'l2normalize';
  checkF32(op, 'x', x);
  if (x.rank === 0) throw new GpuError(`${op}: x ${x.describe()} is a scalar; it needs a last dim`);
  if (!(eps > 0) || !Number.isFinite(eps)) throw new GpuError(`${op}: eps ${eps} must be a finite number > 0`);
  checkBindable(op, x);
  const gpu = x.gpu;
  const d = x.shape[x.rank - 1]!;
  const rows = d === 0 ? 0 : x.size / d;
  const plan = rowPlan(gpu, op, d, 2);
  const y = empty(x.shape, 'f32', gpu, op);
  const norms = empty([rows], 'f32', gpu, `${op} norms`);
  const u = new Uniforms().u32(rows, d).f32v(eps).done();
  gpu.dispatch({ kernel: l2Kernel(gpu, plan, false), buffers: [x.buffer, y.buffer, norms.buffer], uniforms: u, workgroups: rowWorkgroups(gpu, plan.variant, rows), label: `${op} ${x.describe()}` });
  const out = record(y, op, [x], (_needs, ctx) => {
    const sy = ctx.save(y);
    const sn = ctx.save(norms);
    return (g) => {
      const dx = empty(sy.shape, 'f32', gpu, `${op} backward`);
      gpu.dispatch({
        kernel: l2Kernel(gpu, plan, true),
        buffers: [sy.buffer, sn.buffer, g.buffer, dx.buffer],
        uniforms: u,
        workgroups: rowWorkgroups(gpu, plan.variant, rows),
        label: `${op} backward ${shapeStr(sy.shape)}`,
      });
      return [dx];
    };
  });
  norms.dispose();
  return out;
}

// ---------------------------------------------------------------------------------------------
// The pair kernel

type Term = 'sq' | 'dot' | 'gdiff';

interface PairArgs {
  I: number;
  J: number;
  K: number;
  /** P(i, k) = P[i * pi + k * pk]; Q(k, j) = Q[k * qk + j * qj]; C(i, j) = C[i * ci + j]. */
  pi: number;
  pk: number;
  qk: number;
  qj: number;
  ci?: number;
  scale: number;
}

const COMPONENTS = ['x', 'y', 'z', 'w'] as const;

/**
 * Register tile of the pair kernel, TI rows x (4 * CJ) columns per invocation. CPU adapters: 16x16
 * (measured on llvmpipe, squared distances 1000x256x512: 4x4 1.2, 8x8 2.6, 16x8 3.6, 16x16 10-11
 * GFLOP/s). GPUs: 8x8, which keeps the accumulators (and their block sums) in registers.
 */
function pairTile(gpu: Gpu): [ti: number, cj: number] {
  return forcedTile ?? (gpu.kind === 'gpu' ? [8, 2] : [16, 4]);
}

let forcedTile: [number, number] | null = null;

/** Forces the pair kernel's tile (rows, column vec4 groups); null restores the adapter default. */
export function forcePairTile(tile: [ti: number, cj: number] | null): void {
  forcedTile = tile;
}

/** The unrolled pieces of shaders/pair.wgsl for one TERM. */
function pairCode(term: Term, TI: number, CJ: number): Record<string, string | number> {
  const rows = [...Array(TI).keys()];
  const groups = [...Array(CJ).keys()];
  const cols = [...Array(4 * CJ).keys()];
  const lines = (xs: string[], indent: string) => xs.join(`\n${indent}`);
  const setup = [
    ...rows.map((r) => `let r${r} = min(i0 + ${r}u, u.I - 1u);`),
    ...cols.map((c) => `let c${c} = min(j0 + ${c}u, u.J - 1u);`),
    ...rows.flatMap((r) => groups.map((g) => `var a${r}_${g} = vec4<f32>(0.0);`)),
    ...(term === 'gdiff'
      ? rows.flatMap((r) => groups.map((g) => `let z${r}_${g} = vec4<f32>(${COMPONENTS.map((_, l) => `C[r${r} * u.ci + c${4 * g + l}]`).join(', ')});`))
      : []),
  ];
  const loads = [
    ...rows.map((r) => `let p${r} = P[r${r} * u.pi + k * u.pk];`),
    ...groups.map((g) => `let q${g} = vec4<f32>(${COMPONENTS.map((_, l) => `Q[k * u.qk + c${4 * g + l} * u.qj]`).join(', ')});`),
  ];
  const terms = rows.flatMap((r) =>
    groups.map((g) =>
      term === 'sq'
        ? `{ let d = vec4<f32>(p${r}) - q${g}; b${r}_${g} += d * d; }`
        : term === 'dot'
          ? `b${r}_${g} += p${r} * q${g};`
          : `b${r}_${g} += p${r} * (z${r}_${g} - q${g});`,
    ),
  );
  const store = rows.flatMap((r) => [
    `if (i0 + ${r}u < u.I) {`,
    ...groups.flatMap((g) => COMPONENTS.map((c, l) => `  if (j0 + ${4 * g + l}u < u.J) { O[(i0 + ${r}u) * u.J + j0 + ${4 * g + l}u] = a${r}_${g}.${c} * u.scale; }`)),
    '}',
  ]);
  return {
    TI,
    TJ: 4 * CJ,
    SETUP: lines(setup, '  '),
    BLOCK_INIT: lines(rows.flatMap((r) => groups.map((g) => `var b${r}_${g} = vec4<f32>(0.0);`)), '    '),
    LOADS: lines(loads, '      '),
    TERMS: lines(terms, '      '),
    BLOCK_ADD: lines(rows.flatMap((r) => groups.map((g) => `a${r}_${g} += b${r}_${g};`)), '    '),
    STORE: lines(store, '  '),
  };
}

function pairKernel(gpu: Gpu, term: Term): Kernel {
  const [ti, cj] = pairTile(gpu);
  return gpu.kernel(`pair:${term}:${ti}x${4 * cj}`, () => {
    const list: Decl[] = [['P', 'read', 'f32'], ['Q', 'read', 'f32']];
    if (term === 'gdiff') list.push(['C', 'read', 'f32']);
    list.push(['O', 'rw', 'f32']);
    const { code, bindings } = declare(list);
    return { label: `pair ${term}`, code: shaderSource('pair', { DECL: code, ...pairCode(term, ti, cj) }), bindings, uniform: true };
  });
}

function pair(term: Term, p: Tensor, q: Tensor, c: Tensor | null, a: PairArgs, label: string): Tensor {
  const gpu = p.gpu;
  const out = empty([a.I, a.J], 'f32', gpu, label);
  const [ti, cj] = pairTile(gpu);
  const tilesJ = Math.ceil(a.J / (4 * cj));
  const tiles = Math.ceil(a.I / ti) * tilesJ;
  if (tiles === 0) return out;
  gpu.dispatch({
    kernel: pairKernel(gpu, term),
    buffers: [p.buffer, q.buffer, ...(c ? [c.buffer] : []), out.buffer],
    uniforms: new Uniforms().u32(a.I, a.J, a.K, tilesJ, a.pi, a.pk, a.qk, a.qj, a.ci ?? 0).f32v(a.scale).done(),
    workgroups: gpu.grid(Math.ceil(tiles / 64)),
    label,
  });
  return out;
}

/** Checks a [N,D] x [M,D] pair and the loop budget of the kernels' sums over D, N and M. */
function checkPair(op: string, a: Tensor, b: Tensor): [number, number, number] {
  checkF32(op, 'a', a);
  checkF32(op, 'b', b);
  if (a.rank !== 2 || b.rank !== 2 || a.shape[1] !== b.shape[1]) {
    throw new GpuError(`${op}: a ${a.describe()} and b ${b.describe()} must be [N, D] and [M, D]`);
  }
  const [n, d] = a.shape as [number, number];
  const m = b.shape[0]!;
  const longest = Math.max(n, m, d);
  if (longest * (1 + 1 / 32) + 32 > LOOP_BUDGET) {
    throw new GpuError(`${op}: a ${a.describe()} and b ${b.describe()}: a sum over ${longest} terms is over the ${LOOP_BUDGET}-iteration loop budget of one invocation on software adapters`);
  }
  checkBindable(op, a, b);
  return [n, m, d];
}

// ---------------------------------------------------------------------------------------------
// pairwiseSqDist

/**
 * Squared Euclidean distances ||a_i - b_j||^2 of a [N,D] and b [M,D] -> [N,M], summed from the
 * direct differences (a_id - b_jd)^2: no cancellation, unlike ||a||^2 + ||b||^2 - 2 a.b, which
 * loses all precision for near neighbours (exactly the pairs a distance-based loss cares about),
 * at the same O(NMD) cost. Backward, also from differences:
 *   dA[i] = 2 sum_j g_ij (a_i - b_j),  dB[j] = 2 sum_i g_ij (b_j - a_i).
 */
export function pairwiseSqDist(a: Tensor, b: Tensor): Tensor {
  const op = 'pairwiseSqDist';
  const [n, m, d] = checkPair(op, a, b);
  const y = pair('sq', a, b, null, { I: n, J: m, K: d, pi: d, pk: 1, qk: 1, qj: d, scale: 1 }, `${op} ${a.describe()} ${b.describe()}`);
  return record(y, op, [a, b], (needs, ctx) => {
    const sa = ctx.save(a);
    const sb = ctx.save(b);
    return (g) => [
      needs[0] ? pair('gdiff', g, sb, sa, { I: n, J: d, K: m, pi: m, pk: 1, qk: d, qj: 1, ci: d, scale: 2 }, `${op} backward a`) : null,
      needs[1] ? pair('gdiff', g, sa, sb, { I: m, J: d, K: n, pi: 1, pk: m, qk: d, qj: 1, ci: d, scale: 2 }, `${op} backward b`) : null,
    ];
  });
}

// ---------------------------------------------------------------------------------------------
// cosineSim

/** a [N,D] . b [M,D]^T -> [N,M] with its backward (dA = g b, dB = g^T a). */
function rowDot(a: Tensor, b: Tensor, n: number, m: number, d: number): Tensor {
  const op = 'rowDot';
  const y = pair('dot', a, b, null, { I: n, J: m, K: d, pi: d, pk: 1, qk: 1, qj: d, scale: 1 }, `${op} ${a.describe()} ${b.describe()}`);
  return record(y, op, [a, b], (needs, ctx) => {
    const sa = needs[1] ? ctx.save(a) : null;
    const sb = needs[0] ? ctx.save(b) : null;
    return (g) => [
      sb ? pair('dot', g, sb, null, { I: n, J: d, K: m, pi: m, pk: 1, qk: d, qj: 1, scale: 1 }, `${op} backward a`) : null,
      sa ? pair('dot', g, sa, null, { I: m, J: d, K: n, pi: 1, pk: m, qk: d, qj: 1, scale: 1 }, `${op} backward b`) : null,
    ];
  });
}

/**
 * Cosine similarities of the rows of a [N,D] and b [M,D] -> [N,M]:
 * (a_i / max(||a_i||, eps)) . (b_j / max(||b_j||, eps)), eps = 1e-8 (torch >= 1.12
 * F.cosine_similarity clamps each norm separately). Recorded as l2normalize of each side and a
 * row dot product, so the backward reuses theirs.
 */
export function cosineSim(a: Tensor, b: Tensor, eps = 1e-8): Tensor {
  const [n, m, d] = checkPair('cosineSim', a, b);
  const an = l2normalize(a, eps);
  const bn = b === a ? an : l2normalize(b, eps);
  const y = rowDot(an, bn, n, m, d);
  // The tape keeps what the backward needs; these handles are internal.
  an.dispose();
  bn.dispose();
  return y;
}

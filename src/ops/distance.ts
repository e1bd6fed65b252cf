// Distances between embedding rows, forward and backward side by side: l2normalize
// (shaders/l2norm*.wgsl), pairwiseSqDist and cosineSim (shaders/pair.wgsl, one register-tiled
// kernel for distances, dot products and their gradients).
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

function pairKernel(gpu: Gpu, term: Term): Kernel {
  return gpu.kernel(`pair:${term}`, () => {
    const list: Decl[] = [['P', 'read', 'f32'], ['Q', 'read', 'f32']];
    if (term === 'gdiff') list.push(['C', 'read', 'f32']);
    list.push(['O', 'rw', 'f32']);
    const { code, bindings } = declare(list);
    const terms = COMPONENTS.map((c, a) =>
      term === 'sq' ? `{ let d = vec4<f32>(p.${c}) - q; b${a} += d * d; }` : term === 'dot' ? `b${a} += p.${c} * q;` : `b${a} += p.${c} * (c${a} - q);`,
    ).join('\n      ');
    const center =
      term === 'gdiff'
        ? COMPONENTS.map((r, a) => `let c${a} = vec4<f32>(${COMPONENTS.map((c) => `C[ri.${r} * u.ci + rj.${c}]`).join(', ')});`).join('\n  ')
        : '';
    return { label: `pair ${term}`, code: shaderSource('pair', { DECL: code, TERMS: terms, CENTER: center }), bindings, uniform: true };
  });
}

function pair(term: Term, p: Tensor, q: Tensor, c: Tensor | null, a: PairArgs, label: string): Tensor {
  const gpu = p.gpu;
  const out = empty([a.I, a.J], 'f32', gpu, label);
  const tilesJ = Math.ceil(a.J / 4);
  const tiles = Math.ceil(a.I / 4) * tilesJ;
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

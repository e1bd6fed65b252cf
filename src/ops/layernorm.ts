// Layer norm over the last dim (CLIP's ln_pre/ln_1/ln_2/ln_post/ln_final), forward and backward side
// by side: shaders/layernorm.wgsl, layernorm_backward.wgsl (dx), layernorm_dwdb.wgsl (dW, db).
// Variance is biased (divides by D) as torch. Only the gradients `needs` asks for are computed:
// with frozen weight and bias (prompt tuning) the backward is the one dx kernel.
import { GpuError, shaderSource, type Gpu, type Kernel } from '../gpu/index.js';
import { Uniforms } from '../gpu/uniforms.js';
import { isGradEnabled, record } from '../autograd/tape.js';
import { empty, shapeStr, type Tensor } from '../tensor/tensor.js';
import { checkBindable, reduceInto } from './reduce-core.js';
import { declare, rowPlan, rowSource, rowWorkgroups, type Decl, type RowPlan } from './rows.js';

/** Rows each invocation of the dW/db kernel folds before the partials are reduced. */
const DWDB_ROWS = 64;

function forwardKernel(gpu: Gpu, plan: RowPlan, hasW: boolean, hasB: boolean, stats: boolean): Kernel {
  return gpu.kernel(`layernorm:${plan.variant}:${plan.wg}:${+hasW}${+hasB}${+stats}`, () => {
    const list: Decl[] = [['X', 'read', 'f32']];
    if (hasW) list.push(['W', 'read', 'f32']);
    if (hasB) list.push(['B', 'read', 'f32']);
    list.push(['Y', 'rw', 'f32']);
    if (stats) list.push(['S', 'rw', 'vec2<f32>']);
    const { code, bindings } = declare(list);
    return {
      label: `layerNorm ${plan.variant}`,
      code: rowSource(plan.wg, 'layernorm', {
        DECL: code,
        SCALE: hasW ? 'y = y * W[j];' : '',
        SHIFT: hasB ? 'y = y + B[j];' : '',
        WRITE_STATS: stats ? 'S[r] = vec2<f32>(mean, rstd);' : '',
      }),
      entry: plan.variant === 'wg' ? 'wg_main' : 'thread_main',
      bindings,
      uniform: true,
    };
  });
}

function dxKernel(gpu: Gpu, plan: RowPlan, hasW: boolean): Kernel {
  return gpu.kernel(`layernorm_dx:${plan.variant}:${plan.wg}:${+hasW}`, () => {
    const list: Decl[] = [['X', 'read', 'f32']];
    if (hasW) list.push(['W', 'read', 'f32']);
    list.push(['S', 'read', 'vec2<f32>'], ['G', 'read', 'f32'], ['DX', 'rw', 'f32']);
    const { code, bindings } = declare(list);
    return {
      label: `layerNorm backward dx ${plan.variant}`,
      code: rowSource(plan.wg, 'layernorm_backward', { DECL: code, TIMES_W: hasW ? ' * W[j]' : '' }),
      entry: plan.variant === 'wg' ? 'wg_main' : 'thread_main',
      bindings,
      uniform: true,
    };
  });
}

function dwdbKernel(gpu: Gpu, needW: boolean, needB: boolean): Kernel {
  return gpu.kernel(`layernorm_dwdb:${+needW}${+needB}`, () => {
    const list: Decl[] = [['G', 'read', 'f32']];
    if (needW) list.push(['X', 'read', 'f32'], ['S', 'read', 'vec2<f32>'], ['PW', 'rw', 'f32']);
    if (needB) list.push(['PB', 'rw', 'f32']);
    const { code, bindings } = declare(list);
    const acc = [needW ? 'let st = S[r];\n    w += g * (X[r * u.d + j] - st.x) * st.y;' : '', needB ? 'b += g;' : ''].join('\n    ');
    const store = [needW ? 'PW[o] = w;' : '', needB ? 'PB[o] = b;' : ''].join('\n  ');
    return { label: 'layerNorm backward dW/db', code: shaderSource('layernorm_dwdb', { DECL: code, ACC: acc, STORE: store }), bindings, uniform: true };
  });
}

/** One chunked pass of row partials, then (with several chunks) the fixed-order sum over chunks. */
function weightGrads(g: Tensor, x: Tensor | null, stats: Tensor | null, rows: number, d: number, needW: boolean, needB: boolean): [Tensor | null, Tensor | null] {
  const gpu = g.gpu;
  const nChunks = Math.max(1, Math.ceil(rows / DWDB_ROWS));
  const shape = nChunks === 1 ? [d] : [nChunks, d];
  const pw = needW ? empty(shape, 'f32', gpu, 'layerNorm dW') : null;
  const pb = needB ? empty(shape, 'f32', gpu, 'layerNorm db') : null;
  const nOut = nChunks * d;
  const buffers = [g.buffer];
  if (pw) buffers.push(x!.buffer, stats!.buffer, pw.buffer);
  if (pb) buffers.push(pb.buffer);
  gpu.dispatch({
    kernel: dwdbKernel(gpu, needW, needB),
    buffers,
    uniforms: new Uniforms().u32(rows, d, DWDB_ROWS, nOut).done(),
    workgroups: gpu.grid(Math.ceil(nOut / 64)),
    label: `layerNorm backward dW/db [${rows},${d}]`,
  });
  if (nChunks === 1) return [pw, pb];
  const total = (p: Tensor | null, what: string): Tensor | null => {
    if (!p) return null;
    const o = empty([d], 'f32', gpu, `layerNorm ${what}`);
    reduceInto('sum', p, { outer: 1, n: nChunks, inner: d }, { value: o }, { label: `layerNorm ${what} over row chunks` });
    p.dispose();
    return o;
  };
  return [total(pw, 'dW'), total(pb, 'db')];
}

/**
 * Layer norm over the last dim: (x - mean) / sqrt(var + eps) * weight + bias, with weight and bias
 * of shape [D] (either may be null: no scale / no shift). Each row is normalised by one invocation
 * or one workgroup (see rowPlan), with fixed-order two-pass statistics.
 */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  const op = 'layerNorm';
  x.assertAlive(op);
  if (x.dtype !== 'f32') throw new GpuError(`${op}: x ${x.describe()} must be f32`);
  if (x.rank === 0) throw new GpuError(`${op}: x ${x.describe()} is a scalar; it needs a last dim to normalise`);
  const d = x.shape[x.rank - 1]!;
  if (d === 0) throw new GpuError(`${op}: x ${x.describe()} has an empty last dim`);
  for (const [t, what] of [
    [weight, 'weight'],
    [bias, 'bias'],
  ] as const) {
    if (!t) continue;
    t.assertAlive(op);
    if (t.dtype !== 'f32') throw new GpuError(`${op}: ${what} ${t.describe()} must be f32`);
    if (t.rank !== 1 || t.shape[0] !== d) throw new GpuError(`${op}: ${what} ${t.describe()} must have shape [${d}] for x ${x.describe()}`);
  }
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new GpuError(`${op}: eps ${eps} must be a finite number >= 0`);
  checkBindable(op, x);
  const gpu = x.gpu;
  const rows = x.size / d;
  const plan = rowPlan(gpu, op, d, 3);
  const wantStats = isGradEnabled() && (x.requiresGrad || !!weight?.requiresGrad);
  const y = empty(x.shape, 'f32', gpu, op);
  const stats = wantStats ? empty([rows, 2], 'f32', gpu, 'layerNorm stats') : null;
  const buffers = [x.buffer];
  if (weight) buffers.push(weight.buffer);
  if (bias) buffers.push(bias.buffer);
  buffers.push(y.buffer);
  if (stats) buffers.push(stats.buffer);
  gpu.dispatch({
    kernel: forwardKernel(gpu, plan, !!weight, !!bias, !!stats),
    buffers,
    uniforms: new Uniforms().u32(rows, d).f32v(eps).done(),
    workgroups: rowWorkgroups(gpu, plan.variant, rows),
    label: `${op} ${x.describe()}`,
  });
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  const out = record(y, op, inputs, (needs, ctx) => {
    const needX = needs[0]!;
    const needW = !!weight && needs[1]!;
    const needB = !!bias && needs[weight ? 2 : 1]!;
    const sx = needX || needW ? ctx.save(x) : null;
    const ss = needX || needW ? ctx.save(stats!) : null;
    const sw = needX && weight ? ctx.save(weight) : null;
    return (g) => {
      let dx: Tensor | null = null;
      if (needX) {
        dx = empty(x.shape, 'f32', gpu, 'layerNorm dx');
        gpu.dispatch({
          kernel: dxKernel(gpu, plan, !!sw),
          buffers: [sx!.buffer, ...(sw ? [sw.buffer] : []), ss!.buffer, g.buffer, dx.buffer],
          uniforms: new Uniforms().u32(rows, d).done(),
          workgroups: rowWorkgroups(gpu, plan.variant, rows),
          label: `layerNorm backward dx ${shapeStr(x.shape)}`,
        });
      }
      const [dw, db] = needW || needB ? weightGrads(g, sx, ss, rows, d, needW, needB) : [null, null];
      const grads: (Tensor | null)[] = [dx];
      if (weight) grads.push(dw);
      if (bias) grads.push(db);
      return grads;
    };
  });
  stats?.dispose();
  return out;
}

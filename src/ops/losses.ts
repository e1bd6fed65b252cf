// Losses with their backward side by side: crossEntropy (fused log-softmax + NLL), klDiv (the
// knowledge-distillation form, from logits), mse. Row logsumexps and every sum come from the
// fixed-order reduction kernels (reduce-core.ts), so losses are bit-identical run to run.
import { GpuError, shaderSource, type Gpu, type Kernel } from '../gpu/index.js';
import { Uniforms } from '../gpu/uniforms.js';
import { record } from '../autograd/tape.js';
import { empty, shapeStr, type Shape, type Tensor } from '../tensor/tensor.js';
import { mapRaw } from './elementwise.js';
import { checkBindable, reduceInto } from './reduce-core.js';
import { declare, type Decl } from './rows.js';

export type Reduction = 'mean' | 'sum' | 'none';

function elementKernel(gpu: Gpu, key: string, label: string, source: string, list: Decl[], defines: Record<string, string>): Kernel {
  return gpu.kernel(key, () => {
    const { code, bindings } = declare(list);
    return { label, code: shaderSource(source, { ...defines, DECL: code }), bindings, uniform: true };
  });
}

function dispatchElements(gpu: Gpu, kernel: Kernel, buffers: GPUBuffer[], uniforms: Uint32Array, n: number, label: string): void {
  gpu.dispatch({ kernel, buffers, uniforms, workgroups: gpu.grid(Math.ceil(n / 64)), label });
}

/** Sum of all elements of `t` times `scale`, as a new [] tensor (fixed-order tree). */
function totalOf(t: Tensor, scale: number, label: string): Tensor {
  const o = empty([], 'f32', t.gpu, label);
  reduceInto('sum', t, { outer: 1, n: t.size, inner: 1 }, { value: o }, { scale, label });
  return o;
}

/** Row sums of a [rows, c] tensor into a new [rows] tensor. */
function rowSums(t: Tensor, rows: number, c: number, label: string): Tensor {
  const o = empty([rows], 'f32', t.gpu, label);
  reduceInto('sum', t, { outer: rows, n: c, inner: 1 }, { value: o }, { label });
  return o;
}

/** Row logsumexp of x * invT as (max, sum of exp) pairs: a new [rows, 2] tensor. */
function rowLse(x: Tensor, rows: number, c: number, invT: number, label: string): Tensor {
  const o = empty([rows, 2], 'f32', x.gpu, label);
  reduceInto('lsepair', x, { outer: rows, n: c, inner: 1 }, { value: o }, { inScale: invT, label });
  return o;
}

function checkReduction(op: string, r: string, allowed: readonly string[]): void {
  if (!allowed.includes(r)) throw new GpuError(`${op}: reduction '${r}' is not one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
}

function checkF32(op: string, what: string, t: Tensor): void {
  t.assertAlive(op);
  if (t.dtype !== 'f32') throw new GpuError(`${op}: ${what} ${t.describe()} must be f32`);
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy

export interface CrossEntropyOptions {
  /** 'mean' (default) over rows, 'sum', or 'none' (per-row losses [N]). */
  reduction?: Reduction;
}

/**
 * Cross-entropy of logits [N, C] against integer class labels (i32 [N]): per row
 * logsumexp(x_i) - x_i[label_i], i.e. log-softmax + NLL fused (as torch F.cross_entropy).
 * Gradient w.r.t. the logits: (softmax - onehot) * g, divided by N for 'mean'.
 *
 * Labels live on the GPU, so only their dtype and shape are checked here: a label outside [0, C)
 * gives a NaN loss for its row (and a gradient without the onehot term). Call
 * `await checkLabels(labels, C)` first where labels come from untrusted input (CLIs, files).
 */
export function crossEntropy(logits: Tensor, labels: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  const reduction = opts.reduction ?? 'mean';
  checkReduction(op, reduction, ['mean', 'sum', 'none']);
  checkF32(op, 'logits', logits);
  labels.assertAlive(op);
  if (logits.rank !== 2) throw new GpuError(`${op}: logits ${logits.describe()} must be [N, C]`);
  const [n, c] = logits.shape as [number, number];
  if (labels.dtype !== 'i32') throw new GpuError(`${op}: labels ${labels.describe()} must be i32 class indices`);
  if (labels.rank !== 1 || labels.shape[0] !== n) throw new GpuError(`${op}: labels ${labels.describe()} must have shape [${n}] for logits ${logits.describe()}`);
  if (n === 0 || c === 0) throw new GpuError(`${op}: logits ${logits.describe()} has no rows or no classes`);
  checkBindable(op, logits, labels);
  const gpu = logits.gpu;
  const lse = rowLse(logits, n, c, 1, `${op} logsumexp`);
  const perRow = empty([n], 'f32', gpu, `${op} per-row`);
  dispatchElements(
    gpu,
    elementKernel(gpu, 'ce_nll', 'crossEntropy nll', 'ce_nll', [['X', 'read', 'f32'], ['LSE', 'read', 'vec2<f32>'], ['LAB', 'read', 'i32'], ['L', 'rw', 'f32']], {}),
    [logits.buffer, lse.buffer, labels.buffer, perRow.buffer],
    new Uniforms().u32(n, c, 0, 0).f32v(NaN).done(),
    n,
    `${op} nll ${logits.describe()}`,
  );
  let out = perRow;
  if (reduction !== 'none') {
    out = totalOf(perRow, reduction === 'mean' ? 1 / n : 1, `${op} ${reduction}`);
    perRow.dispose();
  }
  const result = record(out, op, [logits], (_needs, ctx) => {
    const sx = ctx.save(logits);
    const sl = ctx.save(labels);
    const slse = ctx.save(lse);
    return (g) => {
      const dx = empty([n, c], 'f32', gpu, `${op} backward`);
      dispatchElements(
        gpu,
        elementKernel(gpu, 'ce_backward', 'crossEntropy backward', 'ce_backward', [['X', 'read', 'f32'], ['LSE', 'read', 'vec2<f32>'], ['LAB', 'read', 'i32'], ['G', 'read', 'f32'], ['DX', 'rw', 'f32']], {}),
        [sx.buffer, slse.buffer, sl.buffer, g.buffer, dx.buffer],
        new Uniforms().u32(n * c, c, reduction === 'none' ? 1 : 0, 0).f32v(reduction === 'mean' ? 1 / n : 1).done(),
        n * c,
        `${op} backward ${shapeStr([n, c])}`,
      );
      return [dx];
    };
  });
  lse.dispose();
  return result;
}

/**
 * Reads `labels` back and throws a GpuError naming the first entry outside [0, numClasses).
 * For CLIs and data loaders: crossEntropy itself cannot check values without a GPU round trip.
 */
export async function checkLabels(labels: Tensor, numClasses: number): Promise<void> {
  labels.assertAlive('checkLabels');
  if (labels.dtype !== 'i32') throw new GpuError(`checkLabels: labels ${labels.describe()} must be i32`);
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new GpuError(`checkLabels: numClasses ${numClasses} must be a positive integer`);
  const v = await labels.read();
  for (let i = 0; i < v.length; i++) {
    const l = v[i]!;
    if (l < 0 || l >= numClasses) throw new GpuError(`checkLabels: labels ${labels.describe()}: labels[${i}] = ${l} is outside [0, ${numClasses})`);
  }
}

// ---------------------------------------------------------------------------------------------
// KL divergence

export interface KlDivOptions {
  /** Softmax temperature T applied to both sides (default 1). */
  temperature?: number;
  /**
   * 'batchmean' (default): sum / shape[0] (as torch: the batch size for [N, C]); 'sum'; 'none':
   * the elementwise terms p * (log p - log q), same shape as the inputs (as torch).
   */
  reduction?: 'batchmean' | 'sum' | 'none';
  /** Teacher given as logits (default true); false: as probabilities p over the last dim. */
  teacherLogits?: boolean;
}

function klKernel(gpu: Gpu, stage: 'fwd' | 'terms' | 'grads', teacherLogits: boolean, gPerElement: boolean, needS: boolean, needT: boolean): Kernel {
  const list: Decl[] = [
    ['S', 'read', 'f32'],
    ['T', 'read', 'f32'],
    ['LS', 'read', 'vec2<f32>'],
  ];
  if (teacherLogits) list.push(['LT', 'read', 'vec2<f32>']);
  if (stage !== 'fwd') list.push(['G', 'read', 'f32']);
  const pb = 'select(k.p * g * (k.d + 1.0), 0.0, k.p == 0.0)';
  const body: string[] = [];
  if (stage === 'fwd') {
    list.push(['E', 'rw', 'f32']);
    body.push('E[e] = select(k.p * k.d, 0.0, k.p == 0.0);');
  } else if (stage === 'terms') {
    body.push('let g = g_at(e);');
    if (needS) {
      list.push(['GP', 'rw', 'f32']);
      body.push('GP[e] = g * k.p;');
    }
    if (needT && teacherLogits) {
      list.push(['PB', 'rw', 'f32']);
      body.push(`PB[e] = ${pb};`);
    }
  } else {
    body.push('let g = g_at(e);');
    if (needS) {
      list.push(['RA', 'read', 'f32'], ['DS', 'rw', 'f32']);
      body.push('DS[e] = u.inv_t * (k.q * RA[i] - g * k.p);');
    }
    if (needT && teacherLogits) {
      list.push(['RB', 'read', 'f32'], ['DT', 'rw', 'f32']);
      body.push(`DT[e] = u.inv_t * (${pb} - k.p * RB[i]);`);
    } else if (needT) {
      list.push(['DT', 'rw', 'f32']);
      body.push('DT[e] = g * (k.d + 1.0);');
    }
  }
  const key = `kl:${stage}:${+teacherLogits}${+gPerElement}${+needS}${+needT}`;
  return elementKernel(gpu, key, `klDiv ${stage}`, 'kl_common', list, {
    TEACHER: teacherLogits
      ? 'let lt = LT[i];\n  p = exp(T[e] * u.inv_t - lt.x - log(lt.y));\n  d = (T[e] - S[e]) * u.inv_t - (lt.x - ls.x) - log(lt.y / ls.y);'
      : 'p = T[e];\n  d = log(p) - logq;',
    G: stage === 'fwd' ? 'return 0.0;' : gPerElement ? 'return G[e] * u.scale;' : 'return G[0] * u.scale;',
    BODY: body.join('\n  '),
  });
}

/**
 * KL(p || q) with p = softmax(teacher / T) (or the teacher's probabilities with
 * teacherLogits: false) and q = softmax(student / T), over the last dim:
 *   sum_k p_k (log p_k - log q_k)   (as torch F.kl_div(log_softmax(s/T), softmax(t/T)))
 * reduced per `reduction`. The T^2 factor of Hinton-style distillation is NOT included: the
 * caller multiplies. Entries with p = 0 contribute 0. Gradients (both from logits):
 *   d/ds = (q * sum(g p) - g p) / T;   d/dt (logits) = p (b - sum(p b)) / T, b = g (log p - log q + 1);
 *   d/dt (probabilities) = g (log p + 1 - log q).
 */
export function klDiv(student: Tensor, teacher: Tensor, opts: KlDivOptions = {}): Tensor {
  const op = 'klDiv';
  const reduction = opts.reduction ?? 'batchmean';
  checkReduction(op, reduction, ['batchmean', 'sum', 'none']);
  const temp = opts.temperature ?? 1;
  if (!(temp > 0) || !Number.isFinite(temp)) throw new GpuError(`${op}: temperature ${temp} must be a finite number > 0`);
  const teacherLogits = opts.teacherLogits ?? true;
  checkF32(op, 'student', student);
  checkF32(op, 'teacher', teacher);
  if (student.rank === 0 || student.shape.length !== teacher.shape.length || student.shape.some((d, i) => d !== teacher.shape[i])) {
    throw new GpuError(`${op}: student ${student.describe()} and teacher ${teacher.describe()} must have the same shape [..., C]`);
  }
  const c = student.shape[student.rank - 1]!;
  if (student.size === 0) throw new GpuError(`${op}: student ${student.describe()} is empty`);
  checkBindable(op, student, teacher);
  const gpu = student.gpu;
  const rows = student.size / c;
  const invT = 1 / temp;
  const shape: Shape = student.shape;
  const ls = rowLse(student, rows, c, invT, `${op} logsumexp student`);
  const lt = teacherLogits ? rowLse(teacher, rows, c, invT, `${op} logsumexp teacher`) : null;
  const terms = empty(shape, 'f32', gpu, `${op} terms`);
  const base = [student.buffer, teacher.buffer, ls.buffer, ...(lt ? [lt.buffer] : [])];
  const u = (scale: number) => new Uniforms().u32(rows * c, c, 0, 0).f32v(invT, scale).done();
  dispatchElements(gpu, klKernel(gpu, 'fwd', teacherLogits, false, false, false), [...base, terms.buffer], u(1), rows * c, `${op} ${student.describe()}`);
  let out = terms;
  const scale = reduction === 'batchmean' ? 1 / shape[0]! : 1;
  if (reduction !== 'none') {
    out = totalOf(terms, scale, `${op} ${reduction}`);
    terms.dispose();
  }
  const result = record(out, op, [student, teacher], (needs, ctx) => {
    const [needS, needT] = [needs[0]!, needs[1]!];
    const ss = ctx.save(student);
    const st = ctx.save(teacher);
    const sls = ctx.save(ls);
    const slt = lt ? ctx.save(lt) : null;
    return (g) => {
      const perEl = reduction === 'none';
      const gs = perEl ? 1 : scale;
      const saved = [ss.buffer, st.buffer, sls.buffer, ...(slt ? [slt.buffer] : []), g.buffer];
      const gp = needS ? empty(shape, 'f32', gpu, `${op} g*p`) : null;
      const pb = needT && teacherLogits ? empty(shape, 'f32', gpu, `${op} p*b`) : null;
      if (gp || pb) {
        dispatchElements(gpu, klKernel(gpu, 'terms', teacherLogits, perEl, needS, needT), [...saved, ...(gp ? [gp.buffer] : []), ...(pb ? [pb.buffer] : [])], u(gs), rows * c, `${op} backward terms`);
      }
      const ra = gp ? rowSums(gp, rows, c, `${op} backward sum(g p)`) : null;
      const rb = pb ? rowSums(pb, rows, c, `${op} backward sum(p b)`) : null;
      gp?.dispose();
      pb?.dispose();
      const ds = needS ? empty(shape, 'f32', gpu, `${op} d student`) : null;
      const dt = needT ? empty(shape, 'f32', gpu, `${op} d teacher`) : null;
      const outs: GPUBuffer[] = [];
      if (ds) outs.push(ra!.buffer, ds.buffer);
      if (dt) outs.push(...(rb ? [rb.buffer] : []), dt.buffer);
      dispatchElements(gpu, klKernel(gpu, 'grads', teacherLogits, perEl, needS, needT), [...saved, ...outs], u(gs), rows * c, `${op} backward`);
      ra?.dispose();
      rb?.dispose();
      return [ds, dt];
    };
  });
  ls.dispose();
  lt?.dispose();
  return result;
}

// ---------------------------------------------------------------------------------------------
// Mean squared error

/**
 * Mean squared error of a and b (same shape): mean (default), sum, or 'none' (elementwise
 * (a - b)^2). Gradients 2 (a - b) g (/ size for 'mean') and its negation for b.
 */
export function mse(a: Tensor, b: Tensor, reduction: Reduction = 'mean'): Tensor {
  const op = 'mse';
  checkReduction(op, reduction, ['mean', 'sum', 'none']);
  checkF32(op, 'a', a);
  checkF32(op, 'b', b);
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new GpuError(`${op}: a ${a.describe()} and b ${b.describe()} must have the same shape`);
  }
  if (reduction === 'mean' && a.size === 0) throw new GpuError(`${op}: mean of empty tensors ${a.describe()}`);
  checkBindable(op, a, b);
  const diff = mapRaw('a - b', a, b, 0, 0, `${op} diff`);
  const sq = mapRaw('a * a', diff, null, 0, 0, `${op} square`);
  let out = sq;
  const scale = reduction === 'mean' ? 1 / a.size : 1;
  if (reduction !== 'none') {
    out = totalOf(sq, scale, `${op} ${reduction}`);
    sq.dispose();
  }
  const result = record(out, op, [a, b], (needs, ctx) => {
    const sd = ctx.save(diff);
    return (g) => {
      // g is [] (broadcast over the elements) or elementwise: one expression serves both.
      const gv = g.share(reduction === 'none' ? sd.shape : []);
      const da = needs[0] ? mapRaw('a * b * alpha', sd, gv, 2 * scale, 0, `${op} backward a`) : null;
      const db = needs[1] ? mapRaw('a * b * alpha', sd, gv, -2 * scale, 0, `${op} backward b`) : null;
      gv.dispose();
      return [da, db];
    };
  });
  diff.dispose();
  return result;
}

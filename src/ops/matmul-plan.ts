// Stride algebra for one matmul dispatch. Every product the forward and backward need has the form
//   C[o] = sum_r op(P[o, r]) @ op(Q[o, r])        (o: kept batch dims, r: reduced batch dims)
// where P and Q are stored matrices (row-major, or transposed) addressed through per-dim strides
// (0 along broadcast dims). Forward has no reduced dims; the gradient of a broadcast operand reduces
// over the dims it was broadcast along, inside the kernel's k loop (no extra reduction kernel).
// Adjacent dims are merged when their strides allow, and whole batches fold into M (a linear layer:
// [B,T,in] rows) or into K (the weight gradient of a linear layer) when memory is contiguous.
import { GpuError } from '../gpu/index.js';

export const MAX_BATCH_DIMS = 4;

/** A group of batch dims with the element stride of each operand (and the output) along each. */
export interface BatchDims {
  shape: number[];
  sp: number[];
  sq: number[];
  /** Output strides (kept dims only; all zero for reduced dims). */
  sc: number[];
}

export interface MatmulPlan {
  M: number;
  N: number;
  K: number;
  /** P stored [K, M] (instead of [M, K]); Q stored [N, K] (instead of [K, N]). */
  transP: boolean;
  transQ: boolean;
  /** Leading dims (row pitch, in elements) of P, Q, C as stored. */
  ldp: number;
  ldq: number;
  ldc: number;
  /** Element offsets of the first matrix of P, Q, C. */
  offP: number;
  offQ: number;
  offC: number;
  outer: BatchDims;
  reduce: BatchDims;
}

export interface ProductSpec {
  M: number;
  N: number;
  K: number;
  transP: boolean;
  transQ: boolean;
  /** Full broadcast batch shape of the product (before reduction). */
  batch: readonly number[];
  /** Batch shapes of P, Q (right-aligned to `batch`, missing dims are broadcast). */
  pBatch: readonly number[];
  qBatch: readonly number[];
  /** Batch shape of the result: each dim equals batch's or is 1 (reduced). */
  cBatch: readonly number[];
  /** Op name and operand descriptions for errors. */
  what: string;
}

function prod(xs: readonly number[]): number {
  let n = 1;
  for (const x of xs) n *= x;
  return n;
}

/** Contiguous strides of `shape` right-aligned into `rank` dims, 0 where the dim is 1 or missing. */
function alignedStrides(shape: readonly number[], rank: number, matrixSize: number): number[] {
  const out = new Array<number>(rank).fill(0);
  let st = matrixSize;
  for (let i = shape.length - 1; i >= 0; i--) {
    const d = rank - shape.length + i;
    out[d] = shape[i] === 1 ? 0 : st;
    st *= shape[i]!;
  }
  return out;
}

/** Merges dim d into d+1 where every operand's stride is contiguous across the pair. */
function collapse(dims: BatchDims): BatchDims {
  const out: BatchDims = { shape: [], sp: [], sq: [], sc: [] };
  for (let d = 0; d < dims.shape.length; d++) {
    const n = dims.shape[d]!;
    if (n === 1) continue;
    const last = out.shape.length - 1;
    const canMerge =
      last >= 0 &&
      out.sp[last] === dims.sp[d]! * n &&
      out.sq[last] === dims.sq[d]! * n &&
      out.sc[last] === dims.sc[d]! * n;
    if (canMerge) {
      out.shape[last] = out.shape[last]! * n;
      out.sp[last] = dims.sp[d]!;
      out.sq[last] = dims.sq[d]!;
      out.sc[last] = dims.sc[d]!;
    } else {
      out.shape.push(n);
      out.sp.push(dims.sp[d]!);
      out.sq.push(dims.sq[d]!);
      out.sc.push(dims.sc[d]!);
    }
  }
  return out;
}

export function planProduct(s: ProductSpec): MatmulPlan {
  const r = s.batch.length;
  const sizeP = s.M * s.K;
  const sizeQ = s.K * s.N;
  const sizeC = s.M * s.N;
  const sp = alignedStrides(s.pBatch, r, sizeP);
  const sq = alignedStrides(s.qBatch, r, sizeQ);
  const sc = alignedStrides(s.cBatch, r, sizeC);
  const outer: BatchDims = { shape: [], sp: [], sq: [], sc: [] };
  const reduce: BatchDims = { shape: [], sp: [], sq: [], sc: [] };
  for (let d = 0; d < r; d++) {
    const n = s.batch[d]!;
    if (n === 1) continue;
    const cd = s.cBatch[s.cBatch.length - r + d] ?? 1;
    const into = cd === n ? outer : reduce;
    into.shape.push(n);
    into.sp.push(sp[d]!);
    into.sq.push(sq[d]!);
    into.sc.push(cd === n ? sc[d]! : 0);
  }
  const plan: MatmulPlan = {
    M: s.M,
    N: s.N,
    K: s.K,
    transP: s.transP,
    transQ: s.transQ,
    ldp: s.transP ? s.M : s.K,
    ldq: s.transQ ? s.K : s.N,
    ldc: s.N,
    offP: 0,
    offQ: 0,
    offC: 0,
    outer: collapse(outer),
    reduce: collapse(reduce),
  };
  foldIntoM(plan);
  foldIntoK(plan);
  if (plan.outer.shape.length > MAX_BATCH_DIMS || plan.reduce.shape.length > MAX_BATCH_DIMS) {
    throw new GpuError(
      `${s.what}: batch dims [${s.batch.join(',')}] need more than ${MAX_BATCH_DIMS} strided dims after merging; reshape the operands`,
    );
  }
  return plan;
}

/**
 * Rows of consecutive batches of a row-major P are consecutive rows of one taller matrix when Q is
 * shared (stride 0) and C is contiguous: the linear-layer case, [B*T, in] @ W^T.
 */
function foldIntoM(p: MatmulPlan): void {
  const o = p.outer;
  if (o.shape.length !== 1 || p.transP) return;
  if (o.sq[0] !== 0 || o.sp[0] !== p.M * p.ldp || o.sc[0] !== p.M * p.ldc) return;
  p.M *= o.shape[0]!;
  p.outer = { shape: [], sp: [], sq: [], sc: [] };
}

/**
 * A reduced batch of P stored [K, M] and Q stored [K, N], both contiguous across the batch, is one
 * longer k range: the weight gradient of a linear layer, X^T @ G summed over the batch.
 */
function foldIntoK(p: MatmulPlan): void {
  const r = p.reduce;
  if (r.shape.length !== 1 || !p.transP || p.transQ) return;
  if (r.sp[0] !== p.K * p.ldp || r.sq[0] !== p.K * p.ldq) return;
  p.K *= r.shape[0]!;
  p.reduce = { shape: [], sp: [], sq: [], sc: [] };
}

export function outerCount(p: MatmulPlan): number {
  return prod(p.outer.shape);
}

export function reduceCount(p: MatmulPlan): number {
  return prod(p.reduce.shape);
}

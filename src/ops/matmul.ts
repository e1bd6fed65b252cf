// Matrix multiply, the engine's hot path, with its backward beside it.
//   matmul(a, b, {transA, transB, bias}): a [..., M, K] ([..., K, M] if transA) @ b [..., K, N]
//   ([..., N, K] if transB), batch dims broadcast (a 2-D b is a weight shared across the batch),
//   plus an optional bias [N] fused into the store.
//   linear(x, weight [out, in], bias?) = x @ weight^T + bias (nn.Linear layout).
// Every product, forward or backward, is one dispatch of one kernel: the gradients use the kernel's
// transposed-operand layouts (no transpose copies) and sum over broadcast batch dims inside its k
// loop (no reduction kernel). Only the gradients an input needs are computed, and only what they
// read is saved: dA needs B, dB needs A, dBias needs neither.
import { GpuError, type Gpu } from '../gpu/index.js';
import { record } from '../autograd/tape.js';
import { empty, shapeSize, shapeStr, type Shape, type Tensor } from '../tensor/tensor.js';
import { broadcastShapes } from './elementwise.js';
import { planProduct, type ProductSpec } from './matmul-plan.js';
import {
  autoVariant,
  checkVariant,
  encodeColumnSums,
  encodeProduct,
  parseVariant,
  planLaunch,
  variantName,
  type MatmulVariant,
} from './matmul-kernels.js';

export { parseVariant, variantName, autoVariant, type MatmulVariant } from './matmul-kernels.js';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  /** [N], added to every output row. */
  bias?: Tensor;
  /** Force a kernel for this call and its backward (e.g. 'naive', 'reg:16x16:8x1', 'shared:4x4:16x16:16'). */
  variant?: MatmulVariant | string;
}

function envVariant(): MatmulVariant | null {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> }; Deno?: { env: { get(k: string): string | undefined } } };
  let s: string | undefined;
  try {
    s = g.process?.env?.CLIPTUNE_MATMUL ?? g.Deno?.env.get('CLIPTUNE_MATMUL');
  } catch {
    s = undefined; // Deno without --allow-env
  }
  return s ? parseVariant(s) : null;
}

let forced: MatmulVariant | null | undefined;

/**
 * Forces one kernel for every matmul (null: choose per adapter and shape). Env CLIPTUNE_MATMUL sets
 * the initial value. Tests use this to run GPU-only variants on the CPU adapters.
 */
export function setMatmulVariant(v: MatmulVariant | string | null): void {
  forced = typeof v === 'string' ? parseVariant(v) : v;
}

export function getMatmulVariant(): MatmulVariant | null {
  if (forced === undefined) forced = envVariant();
  return forced;
}

function resolveVariant(opt: MatmulVariant | string | undefined): MatmulVariant | null {
  if (opt !== undefined) return typeof opt === 'string' ? parseVariant(opt) : opt;
  return getMatmulVariant();
}

function checkOperand(t: Tensor, role: string, op: string): void {
  t.assertAlive(op);
  if (t.dtype !== 'f32') throw new GpuError(`${op}: ${role} ${t.describe()} must be f32`);
}

/** Plans, validates and encodes one product into a new tensor of `shape`. */
function product(
  gpu: Gpu,
  spec: ProductSpec,
  p: Tensor,
  q: Tensor,
  bias: Tensor | null,
  shape: Shape,
  variant: MatmulVariant | null,
  label: string,
): Tensor {
  const plan = planProduct(spec);
  const v = variant ?? autoVariant(gpu, plan);
  const launch = planLaunch(gpu, plan, v, spec.what);
  const out = empty(shape, 'f32', gpu, label);
  encodeProduct(gpu, plan, launch, p, q, out, bias, `${label} ${variantName(v)}`);
  return out;
}

export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const op = 'matmul';
  checkOperand(a, 'a', op);
  checkOperand(b, 'b', op);
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const bias = opts.bias ?? null;
  const desc = `a ${a.describe()}${transA ? ' (transposed)' : ''} and b ${b.describe()}${transB ? ' (transposed)' : ''}`;
  if (a.rank < 2 || b.rank < 2) throw new GpuError(`${op}: ${desc}: both operands need at least 2 dims (reshape vectors to [1,K] or [K,1])`);
  const [a0, a1] = a.shape.slice(-2) as [number, number];
  const [b0, b1] = b.shape.slice(-2) as [number, number];
  const [M, K] = transA ? [a1, a0] : [a0, a1];
  const [Kb, N] = transB ? [b1, b0] : [b0, b1];
  if (K !== Kb) throw new GpuError(`${op}: ${desc}: inner dims ${K} vs ${Kb}`);
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const batch = broadcastShapes(aBatch, bBatch, `${op}: ${desc}: batch dims`);
  if (bias) {
    checkOperand(bias, 'bias', op);
    if (bias.rank !== 1 || bias.shape[0] !== N) throw new GpuError(`${op}: ${desc}: bias ${bias.describe()} must be [${N}]`);
  }
  const variant = resolveVariant(opts.variant);
  const gpu = a.gpu;
  if (variant) checkVariant(gpu, variant, op);
  const outShape = [...batch, M, N];
  checkBindable(gpu, op, desc, [a, b, ...(bias ? [bias] : [])], shapeSize(outShape));

  const y = product(
    gpu,
    { M, N, K, transP: transA, transQ: transB, batch, pBatch: aBatch, qBatch: bBatch, cBatch: batch, what: `${op}: ${desc}` },
    a,
    b,
    bias,
    outShape,
    variant,
    op,
  );

  const inputs = bias ? [a, b, bias] : [a, b];
  return record(y, 'matmul', inputs, (needs, ctx) => {
    const sb = needs[0] ? ctx.save(b) : null;
    const sa = needs[1] ? ctx.save(a) : null;
    const aShape = a.shape;
    const bShape = b.shape;
    return (g) => {
      const dims = { M, N, K, transA, transB, batch, aBatch, bBatch, variant };
      const ga = sb ? gradA(g, sb, aShape, dims) : null;
      const gb = sa ? gradB(g, sa, bShape, dims) : null;
      const gbias = needs[2] ? biasGrad(g, N) : null;
      return [ga, gb, gbias];
    };
  });
}

interface Dims {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  batch: number[];
  aBatch: number[];
  bBatch: number[];
  variant: MatmulVariant | null;
}

/**
 * dA. With A' = op(a), B' = op(b): dA' = g @ B'^T. For a stored [M,K]: P = g, Q = b read as B'^T.
 * For a stored [K,M] (transA): da = dA'^T = B' @ g^T.
 */
function gradA(g: Tensor, b: Tensor, aShape: Shape, d: Dims): Tensor {
  const what = 'matmul backward dA';
  const common = { batch: d.batch, cBatch: d.aBatch, what };
  if (!d.transA) {
    return product(g.gpu, { ...common, M: d.M, N: d.K, K: d.N, transP: false, transQ: !d.transB, pBatch: d.batch, qBatch: d.bBatch }, g, b, null, aShape, d.variant, what);
  }
  return product(g.gpu, { ...common, M: d.K, N: d.M, K: d.N, transP: d.transB, transQ: true, pBatch: d.bBatch, qBatch: d.batch }, b, g, null, aShape, d.variant, what);
}

/**
 * dB = A'^T @ g for b stored [K,N]; for b stored [N,K] (transB): db = g^T @ A'. Summed over the batch
 * dims b was broadcast along (a 2-D weight: the batch folds into this product's K).
 */
function gradB(g: Tensor, a: Tensor, bShape: Shape, d: Dims): Tensor {
  const what = 'matmul backward dB';
  const common = { batch: d.batch, cBatch: d.bBatch, what };
  if (!d.transB) {
    return product(a.gpu, { ...common, M: d.K, N: d.N, K: d.M, transP: !d.transA, transQ: false, pBatch: d.aBatch, qBatch: d.batch }, a, g, null, bShape, d.variant, what);
  }
  return product(a.gpu, { ...common, M: d.N, N: d.K, K: d.M, transP: true, transQ: d.transA, pBatch: d.batch, qBatch: d.aBatch }, g, a, null, bShape, d.variant, what);
}

function biasGrad(g: Tensor, N: number): Tensor {
  const out = empty([N], 'f32', g.gpu, 'matmul dBias');
  encodeColumnSums(g.gpu, g, N === 0 ? 0 : g.size / N, N, out, `matmul backward dBias ${shapeStr(g.shape)}`);
  return out;
}

function checkBindable(gpu: Gpu, op: string, desc: string, ins: Tensor[], outSize: number): void {
  const max = gpu.limits.maxStorageBufferBindingSize;
  for (const t of ins) {
    if (t.bytes > max) throw new GpuError(`${op}: ${desc}: ${t.describe()} is ${t.bytes} bytes, over this device's maxStorageBufferBindingSize ${max}`);
  }
  if (outSize * 4 > max) throw new GpuError(`${op}: ${desc}: the output needs ${outSize * 4} bytes, over this device's maxStorageBufferBindingSize ${max}`);
}

/** nn.Linear: x [..., in] @ weight[out, in]^T + bias [out]. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  x.assertAlive('linear');
  weight.assertAlive('linear');
  if (weight.rank !== 2) throw new GpuError(`linear: weight ${weight.describe()} must be [out, in]`);
  if (x.shape[x.rank - 1] !== weight.shape[1]) {
    throw new GpuError(`linear: input ${x.describe()} does not end in ${weight.shape[1]} (weight ${weight.describe()} is [out, in])`);
  }
  if (x.rank < 2) throw new GpuError(`linear: input ${x.describe()} must have at least 2 dims ([rows, in]); reshape a vector to [1, ${weight.shape[1]}]`);
  return matmul(x, weight, bias ? { transB: true, bias } : { transB: true });
}

// Token splicing: the row operations prompt methods use on a [B, T, W] residual stream (append,
// insert, replace a block of rows), composed from slice/concat so gradients flow to both the
// stream and the prompt rows.
import { GpuError } from '../gpu/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { zeros } from '../tensor/tensor.js';
import { add } from '../ops/elementwise.js';
import { concat, reshape, slice } from '../ops/shape.js';

/** [n, W] (shared by the batch) or [B, n, W] -> [B, n, W]. */
export function expandBatch(rows: Tensor, batch: number, what = 'prompt rows'): Tensor {
  if (rows.rank === 3) {
    if (rows.shape[0] !== batch) throw new GpuError(`${what}: ${rows.describe()} has batch ${rows.shape[0]}, expected ${batch}`);
    return rows;
  }
  if (rows.rank !== 2) throw new GpuError(`${what}: ${rows.describe()} must be [n, W] or [B, n, W]`);
  const [n, w] = rows.shape as [number, number];
  if (batch === 1) return reshape(rows, [1, n, w]);
  // Broadcasting add: its backward sums the batch back into the shared rows.
  const z = zeros([batch, n, w], 'f32', rows.gpu);
  const out = add(z, reshape(rows, [1, n, w]));
  z.dispose();
  return out;
}

function checkRows(x: Tensor, rows: Tensor, what: string): void {
  if (x.rank !== 3) throw new GpuError(`${what}: stream ${x.describe()} must be [B, T, W]`);
  const w = rows.shape[rows.rank - 1];
  if (w !== x.shape[2]) throw new GpuError(`${what}: ${rows.describe()} width ${w} does not match stream ${x.describe()}`);
}

/** Replaces rows [start, start + n) of x [B, T, W] by `rows` ([n, W] or [B, n, W]). */
export function replaceRows(x: Tensor, start: number, rows: Tensor, what = 'replaceRows'): Tensor {
  checkRows(x, rows, what);
  const [b, t] = x.shape as [number, number, number];
  const r = expandBatch(rows, b, what);
  const n = r.shape[1]!;
  if (start < 0 || start + n > t) throw new GpuError(`${what}: rows [${start}, ${start + n}) outside a stream of ${t} tokens`);
  const parts: Tensor[] = [];
  if (start > 0) parts.push(slice(x, 1, 0, start));
  parts.push(r);
  if (start + n < t) parts.push(slice(x, 1, start + n, t));
  return parts.length === 1 ? parts[0]! : concat(parts, 1);
}

/** Inserts `rows` before position `at` of x [B, T, W] (at = T appends). */
export function insertRows(x: Tensor, at: number, rows: Tensor, what = 'insertRows'): Tensor {
  checkRows(x, rows, what);
  const [b, t] = x.shape as [number, number, number];
  if (at < 0 || at > t) throw new GpuError(`${what}: position ${at} outside a stream of ${t} tokens`);
  const r = expandBatch(rows, b, what);
  const parts: Tensor[] = [];
  if (at > 0) parts.push(slice(x, 1, 0, at));
  parts.push(r);
  if (at < t) parts.push(slice(x, 1, at, t));
  return concat(parts, 1);
}

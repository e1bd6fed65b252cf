// Float64 references for the losses, composed from test/ref/core.ts primitives.
import * as core from './core.js';
import { R } from './core.js';
import { logSoftmax, softmax } from './nn.js';

export type Reduction = 'mean' | 'sum' | 'none';

/** -log_softmax(x)[label] per row, then reduced. */
export function crossEntropy(logits: R, labels: ArrayLike<number>, reduction: Reduction = 'mean'): R {
  const [n, c] = logits.shape as [number, number];
  const onehot = new Float64Array(n * c);
  for (let i = 0; i < n; i++) onehot[i * c + labels[i]!] = 1;
  const perRow = core.neg(core.sum(core.mul(logSoftmax(logits, 1), core.constant(onehot, [n, c])), 1));
  if (reduction === 'none') return perRow;
  return reduction === 'mean' ? core.mean(perRow) : core.sum(perRow);
}

/** KL(p || q), p = softmax(t/T) (or t itself), q = softmax(s/T), over the last dim. */
export function klDiv(s: R, t: R, temperature = 1, reduction: 'batchmean' | 'sum' | 'none' = 'batchmean', teacherLogits = true): R {
  const ax = s.shape.length - 1;
  const logq = logSoftmax(core.scale(s, 1 / temperature), ax);
  const logp = teacherLogits ? logSoftmax(core.scale(t, 1 / temperature), ax) : core.log(t);
  const p = teacherLogits ? core.exp(logp) : t;
  const terms = core.mul(p, core.sub(logp, logq));
  if (reduction === 'none') return terms;
  const total = core.sum(terms);
  return reduction === 'sum' ? total : core.scale(total, 1 / s.shape[0]!);
}

export function mse(a: R, b: R, reduction: Reduction = 'mean'): R {
  const sq = core.square(core.sub(a, b));
  if (reduction === 'none') return sq;
  return reduction === 'mean' ? core.mean(sq) : core.sum(sq);
}

export { softmax };

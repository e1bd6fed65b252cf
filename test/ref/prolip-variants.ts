// Float64 references for ProLIP's variants (methods.md 8.d), composed from the core reference
// primitives (their gradients come from the reference autograd, checked by finite differences in
// the tests):
//   ProLIP-text: u = normalize(x W0) (frozen), T = normalize(mean_t normalize(h_t P)),
//                L = CE(s·u·Tᵀ, y) + λ‖P − P0‖²
//   RLA:         L = CE(s·normalize(x W0 A)·Tᵀ, y) + λ‖A − I‖²
import { R, constant, matmul, mean, reshape, scale, square, sub, sum, transpose, add } from './core.js';
import { crossEntropy } from './losses.js';
import { l2normalize } from './nn.js';

export interface VariantRef {
  loss: number;
  ce: number;
  reg: number;
  /** dL/d(learned tensor), row-major. */
  grad: Float64Array;
}

function finish(logits: R, y: ArrayLike<number>, learned: R, target: R, lambda: number): VariantRef {
  const ce = crossEntropy(logits, y);
  const reg = sum(square(sub(learned, target)));
  const loss = add(ce, scale(reg, lambda));
  loss.backward();
  return { loss: loss.data[0]!, ce: ce.data[0]!, reg: reg.data[0]!, grad: Float64Array.from(learned.grad!) };
}

/** ProLIP-text: x [n, d], w0 [d, e], h [t·c, dt] template-major, p/p0 [dt, e], labels y. */
export function prolipTextRef(a: { x: ArrayLike<number>; n: number; d: number; w0: ArrayLike<number>; e: number; h: ArrayLike<number>; templates: number; c: number; dt: number; p: ArrayLike<number>; p0: ArrayLike<number>; y: ArrayLike<number>; lambda: number; s: number }): VariantRef {
  const u = l2normalize(matmul(constant(a.x, [a.n, a.d]), constant(a.w0, [a.d, a.e])));
  const p = R.from(a.p, [a.dt, a.e]);
  const z = l2normalize(matmul(constant(a.h, [a.templates * a.c, a.dt]), p));
  const text = l2normalize(mean(reshape(z, [a.templates, a.c, a.e]), 0));
  const logits = scale(matmul(u, transpose(text)), a.s);
  return finish(logits, a.y, p, constant(a.p0, [a.dt, a.e]), a.lambda);
}

/** Regularised linear adapter: x [n, d], w0 [d, e], A [e, e], unit class rows t [c, e]. */
export function rlaRef(a: { x: ArrayLike<number>; n: number; d: number; w0: ArrayLike<number>; e: number; adapter: ArrayLike<number>; t: ArrayLike<number>; c: number; y: ArrayLike<number>; lambda: number; s: number }): VariantRef {
  const A = R.from(a.adapter, [a.e, a.e]);
  const emb = matmul(constant(a.x, [a.n, a.d]), constant(a.w0, [a.d, a.e]));
  const z = l2normalize(matmul(emb, A));
  const logits = scale(matmul(z, transpose(constant(a.t, [a.c, a.e]))), a.s);
  const eye = new Float64Array(a.e * a.e);
  for (let i = 0; i < a.e; i++) eye[i * a.e + i] = 1;
  return finish(logits, a.y, A, constant(eye, [a.e, a.e]), a.lambda);
}

// Float64 references for softmax, layer norm and distances, composed from test/ref/core.ts
// primitives (their gradients come from the primitives' adjoints, checked by finite differences).
import * as core from './core.js';
import { R } from './core.js';

export interface RefSoftmaxOptions {
  mask?: R;
  causal?: boolean;
}

/** The causal mask of x [..., Tq, Tk] as a constant: -inf where key j > query i + (Tk - Tq). */
export function causalMask(tq: number, tk: number): R {
  const m = new Float64Array(tq * tk);
  for (let i = 0; i < tq; i++) for (let j = 0; j < tk; j++) m[i * tk + j] = j > i + (tk - tq) ? -Infinity : 0;
  return core.constant(m, [tq, tk]);
}

function masked(x: R, opts: RefSoftmaxOptions): R {
  let z = opts.mask ? core.add(x, opts.mask) : x;
  if (opts.causal) z = core.add(z, causalMask(x.shape[x.shape.length - 2]!, x.shape[x.shape.length - 1]!));
  return z;
}

/** A constant copy of the row max (a shift whose gradient contributions cancel exactly). */
function rowMax(z: R, ax: number): R {
  const m = core.max(z, ax, true);
  return core.constant(m.data, m.shape);
}

export function softmax(x: R, axis = -1, opts: RefSoftmaxOptions = {}): R {
  const ax = axis < 0 ? axis + x.shape.length : axis;
  const z = masked(x, opts);
  const e = core.exp(core.sub(z, rowMax(z, ax)));
  return core.div(e, core.sum(e, ax, true));
}

export function logSoftmax(x: R, axis = -1, opts: RefSoftmaxOptions = {}): R {
  const ax = axis < 0 ? axis + x.shape.length : axis;
  const z = masked(x, opts);
  const zc = core.sub(z, rowMax(z, ax));
  return core.sub(zc, core.log(core.sum(core.exp(zc), ax, true)));
}

/** Layer norm over the last dim with the biased variance (as torch), two-pass. */
export function layerNorm(x: R, w: R | null, b: R | null, eps = 1e-5): R {
  const ax = x.shape.length - 1;
  const xc = core.sub(x, core.mean(x, ax, true));
  const v = core.mean(core.square(xc), ax, true);
  let y = core.div(xc, core.sqrt(core.addScalar(v, eps)));
  if (w) y = core.mul(y, w);
  if (b) y = core.add(y, b);
  return y;
}

/** x / max(||x||, eps) over the last dim (torch F.normalize). */
export function l2normalize(x: R, eps = 1e-12): R {
  const n = core.sqrt(core.sum(core.square(x), x.shape.length - 1, true));
  const d = core.map1(n, (v) => Math.max(v, eps), (v) => (v > eps ? 1 : 0));
  return core.div(x, d);
}

/** ||a_i - b_j||^2 for a [N,D], b [M,D] -> [N,M], from direct differences. */
export function pairwiseSqDist(a: R, b: R): R {
  const [n, d] = a.shape as [number, number];
  const m = b.shape[0]!;
  const diff = core.sub(core.reshape(a, [n, 1, d]), core.reshape(b, [1, m, d]));
  return core.sum(core.square(diff), 2);
}

/** Cosine similarity a [N,D] x b [M,D] -> [N,M], each norm clamped to eps (torch >= 1.12). */
export function cosineSim(a: R, b: R, eps = 1e-8): R {
  return core.matmul(l2normalize(a, eps), core.transpose(l2normalize(b, eps)));
}

// Float64 references for the reduction family, composed from test/ref/core.ts primitives.
import * as core from './core.js';
import { R } from './core.js';

/** Global (axis undefined) or per-axis max, with the GPU op's result shapes. */
export function max(a: R, axis?: number, keepDim = false): R {
  if (axis !== undefined) return core.max(a, axis, keepDim);
  const m = core.max(core.reshape(a, [a.size]), 0, false);
  return keepDim ? core.reshape(m, a.shape.map(() => 1)) : m;
}

/** log(sum(exp(x))) = m + log(sum(exp(x - m))) with m the (constant-gradient-free) row max. */
export function logsumexp(a: R, axis?: number, keepDim = false): R {
  if (axis === undefined) {
    const l = logsumexp(core.reshape(a, [a.size]), 0, false);
    return keepDim ? core.reshape(l, a.shape.map(() => 1)) : l;
  }
  const ax = axis < 0 ? axis + a.shape.length : axis;
  // The max is a constant shift: its gradient contributions cancel exactly, so use a constant.
  const mk = core.max(a, ax, true);
  const m = core.constant(mk.data, mk.shape);
  const s = core.sum(core.exp(core.sub(a, m)), ax, true);
  const out = core.add(core.log(s), m);
  return core.reshape(out, keepDim ? out.shape : a.shape.filter((_, i) => i !== ax));
}

/** First index of the maximum along `axis` (flat index when undefined), as plain numbers. */
export function argmax(data: ArrayLike<number>, shape: readonly number[], axis?: number): number[] {
  if (axis === undefined) {
    let bi = 0;
    for (let i = 1; i < data.length; i++) if (data[i]! > data[bi]!) bi = i;
    return [bi];
  }
  const ax = axis < 0 ? axis + shape.length : axis;
  const outer = core.size(shape.slice(0, ax));
  const n = shape[ax]!;
  const inner = core.size(shape.slice(ax + 1));
  const out: number[] = [];
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let bi = 0;
      for (let k = 1; k < n; k++) if (data[(o * n + k) * inner + i]! > data[(o * n + bi) * inner + i]!) bi = k;
      out.push(bi);
    }
  return out;
}

// Float64 references for the data-movement ops that core.ts lacks: compositions of core primitives
// where possible, and scatterAdd as a new primitive with a hand-written adjoint (checked by the
// finite-difference step of checkOp).
import { R, indexSelect, permute, reshape, size, type Shape } from './core.js';

function acc0(p: R, g: Float64Array): void {
  if (!p.grad) p.grad = new Float64Array(p.size);
  for (let i = 0; i < g.length; i++) p.grad[i]! += g[i]!;
}

/** Index values of an R holding integers (idx inputs come through checkOp as R too). */
export function ints(r: R): number[] {
  return Array.from(r.data, (v) => Math.round(v));
}

/** [B, C, H, W] -> [B, (H/P)(W/P), C*P*P] as reshape + permute + reshape. */
export function patchify(x: R, P: number): R {
  const [B, C, H, W] = x.shape as [number, number, number, number];
  const y = reshape(x, [B, C, H / P, P, W / P, P]);
  const z = permute(y, [0, 2, 4, 1, 3, 5]);
  return reshape(z, [B, (H / P) * (W / P), C * P * P]);
}

/** x [B, T, ...rest], idx [B] -> [B, ...rest] through indexSelect on the flattened [B*T, ...rest]. */
export function gatherRows(x: R, idx: readonly number[]): R {
  const [B, T] = x.shape as [number, number];
  const rest = x.shape.slice(2);
  const flat = reshape(x, [B * T, size(rest)]);
  const rows = idx.map((t, b) => b * T + t);
  return reshape(indexSelect(flat, rows, 0), [B, ...rest]);
}

/** weight [V, D], ids [...] -> [..., D]. */
export function embedding(w: R, ids: R): R {
  return reshape(indexSelect(w, ints(ids), 0), [...ids.shape, w.shape[1]!]);
}

/** out = base; out[.., idx[k], ..] += src[.., k, ..] in ascending k. */
export function scatterAdd(base: R | null, shape: Shape, axis: number, idx: readonly number[], src: R): R {
  const ax = axis < 0 ? axis + shape.length : axis;
  const outer = size(shape.slice(0, ax));
  const n = shape[ax]!;
  const inner = size(shape.slice(ax + 1));
  const m = idx.length;
  const out = base ? Float64Array.from(base.data) : new Float64Array(size(shape));
  for (let o = 0; o < outer; o++) for (let k = 0; k < m; k++) for (let i = 0; i < inner; i++) out[(o * n + idx[k]!) * inner + i]! += src.data[(o * m + k) * inner + i]!;
  const parents = base ? [base, src] : [src];
  return new R(out, [...shape], parents, (g) => {
    if (base) acc0(base, g);
    const gs = new Float64Array(src.size);
    for (let o = 0; o < outer; o++) for (let k = 0; k < m; k++) for (let i = 0; i < inner; i++) gs[(o * m + k) * inner + i] = g[(o * n + idx[k]!) * inner + i]!;
    acc0(src, gs);
  });
}

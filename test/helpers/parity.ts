// The one parity helper every op test uses: the GPU op's forward against the float64 reference, its
// backward against the reference's analytic gradient (relative max error, the golden metric), the
// reference's own gradient against central finite differences, and no leaked device bytes.
import * as assert from 'uvu/assert';
import { getGpu, type Gpu } from '../../src/gpu/index.js';
import { tensor, tidy, type Tensor, type DType } from '../../src/tensor/tensor.js';
import { clearTape } from '../../src/autograd/tape.js';
import { R, size } from '../ref/core.js';

export async function testGpu(): Promise<Gpu> {
  return getGpu();
}

/** err(x, ref) = max|x - ref| / max|ref| (manifest.json's metric); absolute when ref is all zero. */
export function relErr(x: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (x.length !== ref.length) throw new Error(`relErr: lengths ${x.length} vs ${ref.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i]! - ref[i]!);
    num = Number.isNaN(d) ? Infinity : Math.max(num, d);
    den = Math.max(den, Math.abs(ref[i]!));
  }
  return den === 0 ? num : num / den;
}

export function assertClose(x: ArrayLike<number>, ref: ArrayLike<number>, tol: number, what: string): void {
  const e = relErr(x, ref);
  assert.ok(e <= tol, `${what}: relative max error ${e.toExponential(3)} > ${tol}`);
}

/** Deterministic PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n values uniform in [lo, hi), rounded to f32 so GPU and reference see the same inputs. */
export function randArray(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  const r = rng(seed);
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.fround(lo + (hi - lo) * r());
  return a;
}

export interface InputSpec {
  shape: readonly number[];
  /** Values (default: uniform in `range`, seeded). */
  data?: ArrayLike<number>;
  range?: [number, number];
  dtype?: DType;
  /** Whether this input gets a gradient check (default: true for f32). */
  grad?: boolean;
}

export interface OpCheck {
  name: string;
  inputs: readonly InputSpec[];
  gpu: (...xs: Tensor[]) => Tensor;
  ref: (...xs: R[]) => R;
  seed?: number;
  /** Forward tolerance (default 1e-5), backward tolerance (default 1e-4). */
  fwdTol?: number;
  gradTol?: number;
  /** Finite-difference check of the reference gradient (default true); max coordinates per input. */
  fd?: boolean;
  fdCoords?: number;
  /** Skip the backward check (forward-only ops such as argmax). */
  forwardOnly?: boolean;
}

/** Runs one op check; returns the errors measured (for reporting). */
export async function checkOp(c: OpCheck): Promise<{ fwd: number; grads: number[] }> {
  const gpu = await getGpu();
  await gpu.sync();
  const live0 = gpu.pool.snapshot().liveBytes;
  const seed = c.seed ?? 1;
  const values = c.inputs.map((s, i) => {
    if (s.data) return Float64Array.from(s.data, (v) => (s.dtype && s.dtype !== 'f32' ? v : Math.fround(v)));
    const [lo, hi] = s.range ?? [-1, 1];
    return randArray(size(s.shape), seed * 1000 + i, lo, hi);
  });
  const wantGrad = c.inputs.map((s) => !c.forwardOnly && (s.grad ?? (s.dtype ?? 'f32') === 'f32'));

  // GPU side.
  const ts = c.inputs.map((s, i) => {
    const dt = s.dtype ?? 'f32';
    const host = dt === 'f32' ? Float32Array.from(values[i]!) : dt === 'i32' ? Int32Array.from(values[i]!) : Uint32Array.from(values[i]!);
    const t = tensor(host, s.shape, dt, gpu);
    if (wantGrad[i]) t.requiresGrad = true;
    return t;
  });
  // Intermediates of composed ops are freed by tidy (the tape keeps what backward needs).
  const out = tidy(() => c.gpu(...ts));
  const outVals = await out.read();

  // Reference side.
  const rs = values.map((v, i) => R.from(v, c.inputs[i]!.shape));
  const rout = c.ref(...rs);
  assert.equal([...out.shape], [...rout.shape], `${c.name}: output shape`);
  const fwd = relErr(outVals, rout.data);
  assert.ok(fwd <= (c.fwdTol ?? 1e-5), `${c.name}: forward relative max error ${fwd.toExponential(3)} > ${c.fwdTol ?? 1e-5}`);

  const grads: number[] = [];
  if (wantGrad.some(Boolean)) {
    const seedGrad = randArray(rout.size, seed * 7919 + 17);
    const gt = tensor(Float32Array.from(seedGrad), out.shape, 'f32', gpu);
    out.backward({ gradient: gt });
    rout.backward(seedGrad);
    for (let i = 0; i < ts.length; i++) {
      if (!wantGrad[i]) continue;
      const rg = rs[i]!.grad ?? new Float64Array(rs[i]!.size);
      const g = ts[i]!.grad;
      assert.ok(g, `${c.name}: input ${i} got no gradient`);
      const gv = await g.read();
      const e = relErr(gv, rg);
      grads.push(e);
      assert.ok(e <= (c.gradTol ?? 1e-4), `${c.name}: gradient of input ${i} relative max error ${e.toExponential(3)} > ${c.gradTol ?? 1e-4}`);
      if (c.fd ?? true) fdCheck(c, values, i, seedGrad, rg);
    }
    gt.dispose();
  }
  out.dispose();
  for (const t of ts) t.dispose();
  clearTape();
  await gpu.sync();
  assert.is(gpu.pool.snapshot().liveBytes, live0, `${c.name}: device bytes leaked`);
  return { fwd, grads };
}

/** Central differences of f(x) = <seed, ref(x)> in float64 against the reference's gradient. */
function fdCheck(c: OpCheck, values: Float64Array[], which: number, seedGrad: Float64Array, analytic: Float64Array): void {
  const n = values[which]!.length;
  const coords = Math.min(n, c.fdCoords ?? 24);
  const r = rng(4242 + which);
  const picks = coords === n ? [...Array(n).keys()] : Array.from({ length: coords }, () => Math.floor(r() * n));
  const f = (vals: Float64Array[]) => {
    const out = c.ref(...vals.map((v, i) => R.from(v, c.inputs[i]!.shape)));
    let s = 0;
    for (let k = 0; k < out.size; k++) s += out.data[k]! * seedGrad[k]!;
    return s;
  };
  let maxAbs = 0;
  for (const v of analytic) maxAbs = Math.max(maxAbs, Math.abs(v));
  for (const k of picks) {
    const x0 = values[which]![k]!;
    const h = 1e-6 * Math.max(1, Math.abs(x0));
    const plus = values.map((v) => Float64Array.from(v));
    const minus = values.map((v) => Float64Array.from(v));
    plus[which]![k] = x0 + h;
    minus[which]![k] = x0 - h;
    const fd = (f(plus) - f(minus)) / (2 * h);
    const err = Math.abs(fd - analytic[k]!) / Math.max(maxAbs, 1e-12);
    assert.ok(err < 1e-5, `${c.name}: reference gradient of input ${which}[${k}] = ${analytic[k]} but finite differences give ${fd} (rel ${err.toExponential(2)})`);
  }
}

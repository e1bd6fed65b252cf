// The strided-copy engine shared by the shape ops (shaders/shape_copy.wgsl): copies an iteration
// space of 32-bit words from one strided view to another, binding tensors over
// maxStorageBufferBindingSize in windows. No autograd here; the ops in shape.ts record.
import { GpuError, shaderSource, type Gpu, type Kernel } from '../gpu/index.js';
import { Uniforms } from '../gpu/uniforms.js';
import { shapeStr, type Shape, type Tensor } from '../tensor/tensor.js';
import { fitsWindow, needsWindows, partition, whole, windowAt, type Window } from './window.js';

export const MAX_COPY_RANK = 6;
const WG = 64;

/** A strided view of a tensor's words: element at coordinates c is `offset + sum c[d] * strides[d]`. */
export interface View {
  readonly t: Tensor;
  readonly offset: number;
  readonly strides: readonly number[];
}

export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let st = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = st;
    st *= shape[i]!;
  }
  return s;
}

/**
 * Which data-movement kernels run (copies here, gather and scatter-add in index-ops.ts): 'auto' takes
 * the vec4 kernel whenever the layout allows it, 'scalar' never does (tests run every op both ways).
 */
export type CopyVariant = 'auto' | 'scalar';
let variant: CopyVariant = 'auto';
/** Copy dispatches per kernel variant (tests check that each variant really ran). */
export const copyStats = { scalar: 0, vec4: 0 };
export function copyVariant(): CopyVariant {
  return variant;
}
export function setCopyVariant(v: CopyVariant): CopyVariant {
  const prev = variant;
  variant = v;
  return prev;
}

function copyKernel(gpu: Gpu, rank: number, vec4: boolean): Kernel {
  return gpu.kernel(`shape_copy:${rank}:${vec4 ? 4 : 1}`, () => {
    const lines: string[] = [];
    for (let k = rank - 1; k >= 0; k--) {
      const at = (v: string) => `u.${v}[${k >> 2}].${'xyzw'[k & 3]}`;
      // The outermost coordinate is what remains (l < n <= product of the dims).
      lines.push(k > 0 ? `  c = rem % ${at('shape')}; rem = rem / ${at('shape')};` : '  c = rem;');
      lines.push(`  s += c * ${at('ss')}; d += c * ${at('ds')};`);
    }
    return {
      label: `shape_copy rank ${rank}${vec4 ? ' vec4' : ''}`,
      code: shaderSource('shape_copy', { DECODE: lines.join('\n'), WORD: vec4 ? 'vec4<u32>' : 'u32' }),
      bindings: ['read', 'rw'],
      uniform: true,
    };
  });
}

/** Drops size-1 dims and merges neighbours that are contiguous in both views (fewer div/mods per element). */
function collapse(shape: readonly number[], ss: readonly number[], ds: readonly number[]): { shape: number[]; ss: number[]; ds: number[] } {
  const out = { shape: [] as number[], ss: [] as number[], ds: [] as number[] };
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const k = out.shape.length - 1;
    if (k >= 0 && out.ss[k] === ss[d]! * shape[d]! && out.ds[k] === ds[d]! * shape[d]!) {
      out.shape[k] = out.shape[k]! * shape[d]!;
      out.ss[k] = ss[d]!;
      out.ds[k] = ds[d]!;
    } else {
      out.shape.push(shape[d]!);
      out.ss.push(ss[d]!);
      out.ds.push(ds[d]!);
    }
  }
  return out;
}

/** Whether linear order of the iteration space maps to strictly increasing element indices. */
function isMonotone(shape: readonly number[], strides: readonly number[]): boolean {
  let span = 0;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (strides[d]! <= span) return false;
    span += strides[d]! * (shape[d]! - 1);
  }
  return true;
}

function elementAt(l: number, shape: readonly number[], strides: readonly number[], offset: number): number {
  let e = offset;
  for (let d = shape.length - 1; d >= 0; d--) {
    const c = l % shape[d]!;
    l = Math.floor(l / shape[d]!);
    e += c * strides[d]!;
  }
  return e;
}

/**
 * Copies `shape` elements from `src` to `dst`. When a tensor must be windowed, the iteration space is
 * cut into chunks whose elements fit one window on every side where the view is monotone (slice,
 * concat, contiguous); a side whose view is not monotone (a permuted source) is bound window by
 * window over each chunk, each element being written by the dispatch whose windows hold it.
 */
export function stridedCopy(label: string, shape: readonly number[], src: View, dst: View): void {
  const gpu = src.t.gpu;
  let n = 1;
  for (const d of shape) n *= d;
  if (n === 0) return;
  const c = collapse(shape, src.strides, dst.strides);
  if (c.shape.length > MAX_COPY_RANK) throw new GpuError(`${label}: copy of rank ${c.shape.length} over ${MAX_COPY_RANK}`);
  // One contiguous run on both sides: a plain buffer copy (no binding limit, no kernel).
  if (c.shape.length <= 1 && (c.shape.length === 0 || (c.ss[0] === 1 && c.ds[0] === 1))) {
    gpu.copy(src.t.buffer, src.offset * 4, dst.t.buffer, dst.offset * 4, n * 4, label);
    return;
  }
  // vec4 kernel: a quarter of the invocations and index arithmetic. All planning below is in units
  // of `w` words; windows are computed in words (their offsets are 16-byte aligned, see window.ts).
  const last = c.shape.length - 1;
  const w =
    variant === 'auto' &&
    c.ss[last] === 1 &&
    c.ds[last] === 1 &&
    c.shape[last]! % 4 === 0 &&
    src.offset % 4 === 0 &&
    dst.offset % 4 === 0 &&
    c.ss.every((v, i) => i === last || v % 4 === 0) &&
    c.ds.every((v, i) => i === last || v % 4 === 0)
      ? 4
      : 1;
  const u = {
    shape: c.shape.map((v, i) => (i === last ? v / w : v)),
    ss: c.ss.map((v, i) => (i === last ? v : v / w)),
    ds: c.ds.map((v, i) => (i === last ? v : v / w)),
  };
  const sOff = src.offset / w;
  const dOff = dst.offset / w;
  const nu = n / w;
  const sw = needsWindows(src.t);
  const dw = needsWindows(dst.t);
  const sMono = sw && isMonotone(u.shape, u.ss);
  const dMono = dw && isMonotone(u.shape, u.ds);
  // First word of unit l, and one past the last word of unit l.
  const sAt = (l: number) => w * elementAt(l, u.shape, u.ss, sOff);
  const dAt = (l: number) => w * elementAt(l, u.shape, u.ds, dOff);
  // Largest chunk end such that the monotone windowed sides still fit one binding.
  const fits = (l0: number, l1: number) =>
    (!sMono || fitsWindow(gpu, sAt(l0), sAt(l1 - 1) + w)) && (!dMono || fitsWindow(gpu, dAt(l0), dAt(l1 - 1) + w));
  let l0 = 0;
  while (l0 < nu) {
    let l1 = nu;
    if (!fits(l0, l1)) {
      let lo = l0 + 1;
      let hi = nu;
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        if (fits(l0, mid)) lo = mid;
        else hi = mid - 1;
      }
      l1 = lo;
    }
    const sWins: Window[] = !sw ? [whole(src.t)] : sMono ? [windowAt(src.t, sAt(l0), sAt(l1 - 1) + w, label)] : partition(src.t);
    const dWins: Window[] = !dw ? [whole(dst.t)] : dMono ? [windowAt(dst.t, dAt(l0), dAt(l1 - 1) + w, label)] : partition(dst.t);
    for (const s of sWins) for (const d of dWins) dispatchCopy(gpu, label, u, w, l0, l1 - l0, sOff, s, dOff, d);
    l0 = l1;
  }
}

function dispatchCopy(
  gpu: Gpu,
  label: string,
  c: { shape: number[]; ss: number[]; ds: number[] },
  w: number,
  l0: number,
  count: number,
  sOff: number,
  s: Window,
  dOff: number,
  d: Window,
): void {
  const u = new Uniforms()
    .u32(count, c.shape.length, l0, 0)
    .u32(sOff, s.base / w, Math.floor(s.len / w), 0)
    .u32(dOff, d.base / w, Math.floor(d.len / w), 0)
    .vec4u(c.shape, 2)
    .vec4u(c.ss, 2)
    .vec4u(c.ds, 2);
  copyStats[w === 4 ? 'vec4' : 'scalar']++;
  gpu.dispatch({
    kernel: copyKernel(gpu, c.shape.length, w === 4),
    buffers: [s.binding, d.binding],
    uniforms: u.done(),
    workgroups: gpu.grid(Math.ceil(count / WG)),
    label: `${label} ${shapeStr(c.shape)}${w === 4 ? ' vec4' : ''}`,
  });
}

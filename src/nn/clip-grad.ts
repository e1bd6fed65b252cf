// torch.nn.utils.clip_grad_norm_ on the GPU without a host round trip: the total norm is reduced in
// a fixed order (per-workgroup partials over each gradient, then one workgroup over the partials;
// no float atomics, so it is bit-identical run to run), and the scale min(1, max / (norm + 1e-6)) is
// computed inside the kernel that scales the gradients. The norm comes back as a 1-element tensor
// the caller may read later.
import { currentGpu, GpuError, shaderSource, type Gpu } from '../gpu/index.js';
import { Uniforms } from '../gpu/uniforms.js';
import { empty, zeros, type Storage, type Tensor } from '../tensor/tensor.js';
import { groupSegments, planSegments, segmentElements, slotBindings, slotCases, slotsFor, windowOf, type SlotOptions } from './slots.js';

/** Elements per invocation in the partials kernel (a workgroup covers 64 * ITEMS). */
const ITEMS = 16;
const CHUNK = 64 * ITEMS;

type Mode = 'sq' | 'abs' | 'max' | 'pow';

const TERM: Record<Mode, string> = { sq: 'x * x', abs: 'a', max: 'a', pow: 'select(0.0, pow(a, u.p), a > 0.0)' };
const FINISH: Record<Mode, string> = { sq: 'sqrt(x)', abs: 'x', max: 'x', pow: 'select(0.0, pow(x, u.inv_p), x > 0.0)' };

function modeOf(normType: number): Mode {
  if (normType === Infinity) return 'max';
  if (normType === 2) return 'sq';
  if (normType === 1) return 'abs';
  return 'pow';
}

/**
 * Scales the gradients of `params` in place so their total `normType`-norm is at most `maxNorm`
 * (torch.nn.utils.clip_grad_norm_: scale = min(1, maxNorm / (total + 1e-6))), and returns the total
 * norm before clipping as a 1-element tensor (the caller owns it). Parameters without a gradient are
 * ignored. `maxNorm = Infinity` only measures the norm. Gradients sharing storage are scaled once.
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number, normType = 2, opts: SlotOptions = {}): Tensor {
  if (typeof maxNorm !== 'number' || Number.isNaN(maxNorm) || maxNorm < 0) {
    throw new GpuError(`clipGradNorm: maxNorm must be a number >= 0, got ${maxNorm}`);
  }
  if (typeof normType !== 'number' || !(normType > 0)) {
    throw new GpuError(`clipGradNorm: normType must be > 0 (or Infinity), got ${normType}`);
  }
  const grads: Tensor[] = [];
  for (const p of params) {
    p.assertAlive('clipGradNorm');
    if (!p.grad) continue;
    p.grad.assertAlive('clipGradNorm');
    if (p.grad.dtype !== 'f32') throw new GpuError(`clipGradNorm: gradient ${p.grad.describe()} must be f32`);
    grads.push(p.grad);
  }
  const gpu: Gpu = params[0]?.gpu ?? currentGpu();
  for (const g of grads) if (g.gpu !== gpu) throw new GpuError(`clipGradNorm: gradient ${g.describe()} lives on another device`);
  // torch returns 0 when there is nothing to measure.
  if (grads.every((g) => g.size === 0)) return zeros([1], 'f32', gpu);
  const norm = empty([1], 'f32', gpu, 'grad norm');

  const mode = modeOf(normType);
  const combine = mode === 'max' ? 'max(a, b)' : 'a + b';
  const segElems = segmentElements(gpu, opts.segmentElements);

  // Stage 1: partials, in tensor order, one per workgroup of CHUNK elements. Windows are whole
  // chunks, so the partials (and the norm) do not depend on how tensors are windowed or grouped.
  const k1 = slotsFor(gpu, 1, 1, opts.slotsPerDispatch);
  const chunkElems = Math.max(CHUNK, Math.floor(segElems / CHUNK) * CHUNK);
  const groups1 = groupSegments(planSegments(grads.map((g) => g.size), [...grads.keys()], chunkElems), k1, CHUNK);
  const count = groups1.reduce((s, g) => s + g.workgroups, 0);
  const partials = empty([count], 'f32', gpu, 'clipGradNorm partials');
  let pbase = 0;
  for (const group of groups1) {
    const k = group.segs.length;
    const kernel = gpu.kernel(`optim:norm:${mode}:${k}`, () => ({
      label: `grad norm partials (${mode}, ${k} slots)`,
      code: shaderSource('optim_norm', {
        K: k,
        ITEMS,
        UNIFORM: k + 1,
        BINDINGS: slotBindings(k, ['G'], ['read']) + `\n@group(0) @binding(${k}) var<storage, read_write> partials: array<f32>;`,
        CASES: slotCases(k, (s) => `v = G${s}[i];`),
        TERM: TERM[mode],
        COMBINE: combine,
      }),
      bindings: [...Array.from({ length: k }, () => 'read' as const), 'rw'],
      uniform: true,
    }));
    const u = new Uniforms().u32(k, group.workgroups, pbase, 0).f32v(normType === Infinity ? 0 : normType, 0, 0, 0);
    group.segs.forEach((s, j) => u.u32(s.count, group.wg0[j]!, 0, 0));
    gpu.dispatch({
      kernel,
      buffers: [...group.segs.map((s) => windowOf(grads[s.index]!, s)), { buffer: partials.buffer, offset: 0, size: count * 4 }],
      uniforms: u.done(),
      workgroups: gpu.grid(group.workgroups),
      label: `clipGradNorm partials ${group.segs.map((s) => grads[s.index]!.describe()).join(', ')}`,
    });
    pbase += group.workgroups;
  }

  // Stage 2: the total.
  const fin = gpu.kernel(`optim:normfin:${mode}`, () => ({
    label: `grad norm total (${mode})`,
    code: shaderSource('optim_norm_final', { COMBINE: combine, FINISH: FINISH[mode] }),
    bindings: ['read', 'rw'],
    uniform: true,
  }));
  gpu.dispatch({
    kernel: fin,
    buffers: [{ buffer: partials.buffer, offset: 0, size: count * 4 }, { buffer: norm.buffer, offset: 0, size: 4 }],
    uniforms: new Uniforms().u32(count, 0, 0, 0).f32v(normType === Infinity ? 0 : 1 / normType, 0, 0, 0).done(),
    workgroups: [1],
    label: `clipGradNorm total of ${grads.length} gradients`,
  });
  partials.dispose();

  // Stage 3: scale in place, once per distinct storage.
  if (maxNorm !== Infinity) {
    const seen = new Set<Storage>();
    const order: number[] = [];
    grads.forEach((g, i) => {
      if (seen.has(g.storage)) return;
      seen.add(g.storage);
      order.push(i);
    });
    const k3 = slotsFor(gpu, 1, 1, opts.slotsPerDispatch);
    for (const group of groupSegments(planSegments(grads.map((g) => g.size), order, segElems), k3, 64)) {
      const k = group.segs.length;
      const kernel = gpu.kernel(`optim:clip:${k}`, () => ({
        label: `clip grad scale (${k} slots)`,
        code: shaderSource('optim_clip_scale', {
          K: k,
          UNIFORM: k + 1,
          BINDINGS: slotBindings(k, ['G'], ['rw']) + `\n@group(0) @binding(${k}) var<storage, read> norm: array<f32>;`,
          CASES: slotCases(k, (s) => `G${s}[i] = G${s}[i] * scale;`),
        }),
        bindings: [...Array.from({ length: k }, () => 'rw' as const), 'read'],
        uniform: true,
      }));
      const u = new Uniforms().u32(k, group.workgroups).f32v(maxNorm).u32(0);
      group.segs.forEach((s, j) => u.u32(s.count, group.wg0[j]!, 0, 0));
      gpu.dispatch({
        kernel,
        buffers: [...group.segs.map((s) => windowOf(grads[s.index]!, s)), { buffer: norm.buffer, offset: 0, size: 4 }],
        uniforms: u.done(),
        workgroups: gpu.grid(group.workgroups),
        label: `clipGradNorm scale ${group.segs.map((s) => grads[s.index]!.describe()).join(', ')}`,
      });
    }
  }
  return norm;
}

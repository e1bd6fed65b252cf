// Multi-tensor dispatch planning shared by the optimisers and gradient clipping. A prompt-tuning run
// has tens of small parameters, and each dispatch costs ~70 µs on llvmpipe, so one dispatch serves
// several tensors ("slots"): each slot binds its own buffers and owns a contiguous range of
// workgroups. Tensors larger than one storage binding are split into aligned windows, one slot each.
import { GpuError, type Binding, type Gpu } from '../gpu/index.js';
import type { Tensor } from '../tensor/tensor.js';

/** Slots a kernel may take, also bounded by the 256-byte uniform block (32-byte header + 16 per slot). */
export const MAX_SLOTS = 8;

/** A window of one tensor: elements [offset, offset + count). */
export interface Segment {
  /** Index into the caller's tensor list. */
  readonly index: number;
  readonly offset: number;
  readonly count: number;
}

/** One dispatch: its slots and where each slot's workgroups start. */
export interface SlotGroup {
  readonly segs: readonly Segment[];
  readonly wg0: readonly number[];
  readonly workgroups: number;
}

/** Internal knobs that tests use to force the variants a small device would take. */
export interface SlotOptions {
  /** Tensors per dispatch (default: as many as the device's storage-binding limit allows, <= MAX_SLOTS). */
  slotsPerDispatch?: number;
  /** Largest window in elements (default: the device's binding limit); rounded down to the offset alignment. */
  segmentElements?: number;
}

/** How many slots fit, given `perSlot` storage bindings per slot and `extra` shared bindings. */
export function slotsFor(gpu: Gpu, perSlot: number, extra: number, forced?: number): number {
  const fit = Math.min(MAX_SLOTS, Math.floor((gpu.limits.maxStorageBuffersPerShaderStage - extra) / perSlot));
  if (fit < 1) {
    throw new GpuError(`optimiser kernel needs ${perSlot + extra} storage buffers, over this device's maxStorageBuffersPerShaderStage ${gpu.limits.maxStorageBuffersPerShaderStage}`);
  }
  if (forced === undefined) return fit;
  if (!Number.isInteger(forced) || forced < 1) throw new GpuError(`slotsPerDispatch must be a positive integer, got ${forced}`);
  return Math.min(forced, fit);
}

/** Largest window in elements whose byte offset stays aligned and whose size fits one binding. */
export function segmentElements(gpu: Gpu, forced?: number): number {
  const alignElems = Math.max(1, gpu.limits.minStorageBufferOffsetAlignment / 4);
  const maxBytes = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  let n = Math.floor(maxBytes / 4);
  if (forced !== undefined) n = Math.min(n, forced);
  n = Math.floor(n / alignElems) * alignElems;
  if (n < 1) throw new GpuError(`segmentElements ${forced} is below the offset alignment (${alignElems} elements)`);
  return n;
}

/** Splits tensors (by element count, in `order`) into windows of at most `segElems`; empty tensors get none. */
export function planSegments(sizes: readonly number[], order: readonly number[], segElems: number): Segment[] {
  const segs: Segment[] = [];
  for (const index of order) {
    const n = sizes[index]!;
    for (let offset = 0; offset < n; offset += segElems) segs.push({ index, offset, count: Math.min(segElems, n - offset) });
  }
  return segs;
}

/** Packs segments into dispatches of at most `slots` slots; each slot gets ceil(count / perWorkgroup) workgroups. */
export function groupSegments(segs: readonly Segment[], slots: number, perWorkgroup: number): SlotGroup[] {
  const groups: SlotGroup[] = [];
  for (let i = 0; i < segs.length; i += slots) {
    const part = segs.slice(i, i + slots);
    const wg0: number[] = [];
    let total = 0;
    for (const s of part) {
      wg0.push(total);
      total += Math.ceil(s.count / perWorkgroup);
    }
    groups.push({ segs: part, wg0, workgroups: total });
  }
  return groups;
}

/** The storage binding for a segment of `t` (an exact window, never the whole pooled buffer). */
export function windowOf(t: Tensor, seg: Segment): Binding {
  return { buffer: t.buffer, offset: seg.offset * 4, size: seg.count * 4 };
}

/** WGSL declarations for per-slot buffers: `names[j]` + slot index, at consecutive bindings. */
export function slotBindings(slots: number, names: readonly string[], kinds: readonly ('read' | 'rw')[], first = 0): string {
  const lines: string[] = [];
  let b = first;
  for (let s = 0; s < slots; s++) {
    for (let j = 0; j < names.length; j++) {
      const access = kinds[j] === 'rw' ? 'read_write' : 'read';
      lines.push(`@group(0) @binding(${b++}) var<storage, ${access}> ${names[j]}${s}: array<f32>;`);
    }
  }
  return lines.join('\n');
}

/** `case s: { body(s) }` for every slot. */
export function slotCases(slots: number, body: (s: number) => string): string {
  const out: string[] = [];
  for (let s = 0; s < slots; s++) out.push(`    case ${s}u: { ${body(s)} }`);
  return out.join('\n');
}

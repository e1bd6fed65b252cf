// Windowed binding of tensors larger than the device's maxStorageBufferBindingSize (128 MiB on the
// software adapters and by default in browsers; CLIP ViT-L/14's token embedding is 152 MB). A kernel
// that touches such a tensor binds a window of it ({buffer, offset, size}) and is told the window's
// first element (`base`) and length in a uniform; it works on global element indices and skips the
// ones outside the window, and the op dispatches once per window. Small tensors are one window that
// starts at 0, so every kernel has exactly one code path. All windowed tensors hold 32-bit words.
import { GpuError, type Binding, type Gpu } from '../gpu/index.js';
import type { Tensor } from '../tensor/tensor.js';

/** A bound range of a tensor's 32-bit elements: [base, base + len). */
export interface Window {
  readonly base: number;
  readonly len: number;
  readonly binding: Binding;
}

/** Rejects dtypes that are not 32-bit words (the data-movement kernels copy raw u32 bits). */
export function checkWords(op: string, ...ts: Tensor[]): void {
  for (const t of ts) {
    t.assertAlive(op);
    if (t.dtype === 'f16') throw new GpuError(`${op}: ${t.describe()}: f16 tensors are not supported by data-movement ops (cast to f32 first)`);
  }
}

/** Byte alignment of window offsets: at least 16, so windows also start on whole vec4s. */
function offsetAlign(gpu: Gpu): number {
  return Math.max(16, gpu.limits.minStorageBufferOffsetAlignment);
}

/** Elements per window when a tensor is cut into consecutive windows: aligned, and fits one binding. */
export function windowStride(gpu: Gpu): number {
  const align = offsetAlign(gpu);
  const bytes = Math.floor(gpu.limits.maxStorageBufferBindingSize / align) * align;
  if (bytes < align) {
    throw new GpuError(
      `maxStorageBufferBindingSize ${gpu.limits.maxStorageBufferBindingSize} is below minStorageBufferOffsetAlignment ${align}: cannot bind windows`,
    );
  }
  return bytes / 4;
}

/** Whether `t` cannot be bound whole on its device. */
export function needsWindows(t: Tensor): boolean {
  return t.storage.bytes > t.gpu.limits.maxStorageBufferBindingSize;
}

/** The whole tensor as one window (caller knows it fits). */
export function whole(t: Tensor): Window {
  const bytes = t.storage.bytes;
  return { base: 0, len: bytes / 4, binding: { buffer: t.buffer, offset: 0, size: bytes } };
}

/**
 * The window that covers elements [e0, e1) of `t`, starting at the aligned offset at or below e0.
 * Throws if the range cannot be bound at once (callers plan ranges with `fitsWindow`).
 */
export function windowAt(t: Tensor, e0: number, e1: number, op: string): Window {
  const align = offsetAlign(t.gpu);
  const offset = Math.floor((e0 * 4) / align) * align;
  const end = Math.min(Math.max(e1 * 4, offset + 4), t.storage.bytes);
  const size = end - offset;
  if (size > t.gpu.limits.maxStorageBufferBindingSize) {
    throw new GpuError(`${op}: elements [${e0}, ${e1}) of ${t.describe()} span ${size} bytes, over maxStorageBufferBindingSize ${t.gpu.limits.maxStorageBufferBindingSize}`);
  }
  return { base: offset / 4, len: size / 4, binding: { buffer: t.buffer, offset, size } };
}

/** Whether elements [e0, e1) fit in one window (given the aligned start below e0). */
export function fitsWindow(gpu: Gpu, e0: number, e1: number): boolean {
  const align = offsetAlign(gpu);
  const offset = Math.floor((e0 * 4) / align) * align;
  return e1 * 4 - offset <= gpu.limits.maxStorageBufferBindingSize;
}

/** `t` cut into consecutive windows that cover it (one window when it fits). */
export function partition(t: Tensor): Window[] {
  if (!needsWindows(t)) return [whole(t)];
  const stride = windowStride(t.gpu);
  const total = t.storage.bytes / 4;
  const out: Window[] = [];
  for (let base = 0; base < total; base += stride) {
    const len = Math.min(stride, total - base);
    out.push({ base, len, binding: { buffer: t.buffer, offset: base * 4, size: len * 4 } });
  }
  return out;
}

/** Requires a tensor that a kernel binds whole (index lists, link tables). */
export function checkBindable(op: string, t: Tensor): void {
  if (needsWindows(t)) {
    throw new GpuError(`${op}: ${t.describe()} is ${t.bytes} bytes, over this device's maxStorageBufferBindingSize ${t.gpu.limits.maxStorageBufferBindingSize}`);
  }
}

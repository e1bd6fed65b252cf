// Constant tensors, filled on the GPU (no upload).
import type { Gpu } from '../gpu/index.js';
import { currentGpu, shaderSource } from '../gpu/index.js';
import { Uniforms } from '../gpu/uniforms.js';
import { empty, type DType, type Shape, type Tensor } from '../tensor/tensor.js';
import { partition } from './window.js';

export function fill(t: Tensor, value: number): Tensor {
  const gpu = t.gpu;
  const bits = new Uint32Array(1);
  if (t.dtype === 'f32') new Float32Array(bits.buffer)[0] = value;
  else if (t.dtype === 'i32') new Int32Array(bits.buffer)[0] = value;
  else if (t.dtype === 'u32') bits[0] = value;
  else throw new Error(`fill: unsupported dtype ${t.dtype}`);
  if (bits[0] === 0) {
    gpu.clear(t.buffer, 0, t.storage.bytes, `fill ${t.describe()}`);
    return t;
  }
  const kernel = gpu.kernel('fill', () => ({ label: 'fill', code: shaderSource('fill'), bindings: ['rw'], uniform: true }));
  // Window by window when the tensor is over maxStorageBufferBindingSize.
  for (const w of partition(t)) {
    const count = Math.min(w.len, t.size - w.base);
    if (count <= 0) continue;
    gpu.dispatch({
      kernel,
      buffers: [w.binding],
      uniforms: new Uniforms().u32(count, bits[0]!).done(),
      workgroups: gpu.grid(Math.ceil(count / 64)),
      label: `fill ${t.describe()}`,
    });
  }
  return t;
}

export function full(shape: Shape, value: number, gpu?: Gpu, dtype: DType = 'f32'): Tensor {
  return fill(empty(shape, dtype, gpu ?? currentGpu(), 'full'), value);
}

export function onesLike(t: Tensor): Tensor {
  return full(t.shape, 1, t.gpu, t.dtype);
}

export function zerosLike(t: Tensor): Tensor {
  return full(t.shape, 0, t.gpu, t.dtype);
}

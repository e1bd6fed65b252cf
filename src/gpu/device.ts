// The GPU context: one device, its limits and features, a buffer pool, a pipeline cache, and the
// command stream. Ops encode dispatches into one command encoder; the stream is submitted in chunks
// and nothing waits on the GPU unless the caller reads a result (on Deno every wait costs >= 11.5 ms).
import { BufferPool, type PoolStats } from './pool.js';

export type AdapterKind = 'llvmpipe' | 'lavapipe' | 'swiftshader' | 'gpu';

export interface GpuOptions {
  /** Node only: Dawn backend ('vulkan', 'opengles', 'metal', 'd3d12', 'default'). Env: CLIPTUNE_BACKEND. */
  backend?: string;
  powerPreference?: GPUPowerPreference;
  /**
   * Lower some limits below what the device grants, to exercise code paths on small devices
   * (e.g. { maxStorageBufferBindingSize: 1 << 20 } forces windowed binding). Env: none.
   */
  limitOverrides?: Partial<Record<LimitName, number>>;
  /** Disable optional features even if granted (tests force the portable paths). */
  disableFeatures?: string[];
  /** Dispatches per submitted chunk. */
  chunkSize?: number;
}

export type LimitName =
  | 'maxBufferSize'
  | 'maxStorageBufferBindingSize'
  | 'maxStorageBuffersPerShaderStage'
  | 'maxComputeWorkgroupStorageSize'
  | 'maxComputeInvocationsPerWorkgroup'
  | 'maxComputeWorkgroupSizeX'
  | 'maxComputeWorkgroupSizeY'
  | 'maxComputeWorkgroupSizeZ'
  | 'maxComputeWorkgroupsPerDimension'
  | 'maxUniformBufferBindingSize'
  | 'minStorageBufferOffsetAlignment'
  | 'minUniformBufferOffsetAlignment'
  | 'maxBindGroups';

export const LIMIT_NAMES: readonly LimitName[] = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxUniformBufferBindingSize',
  'minStorageBufferOffsetAlignment',
  'minUniformBufferOffsetAlignment',
  'maxBindGroups',
];

export type BindingKind = 'read' | 'rw';

/** What a kernel binds: storage buffers in order (binding 0..n-1), then an optional uniform block. */
export interface KernelSpec {
  label: string;
  code: string;
  entry?: string;
  bindings: readonly BindingKind[];
  uniform?: boolean;
}

export interface Kernel {
  readonly spec: KernelSpec;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
}

/** A storage binding: a whole buffer, or a window of one (tensors over maxStorageBufferBindingSize). */
export interface Binding {
  buffer: GPUBuffer;
  offset?: number;
  size?: number;
}

export interface DispatchSpec {
  kernel: Kernel;
  buffers: readonly (Binding | GPUBuffer)[];
  /** Uniform block contents (<= 256 bytes); u32/i32/f32 words. */
  uniforms?: ArrayBufferView;
  workgroups: readonly [number, number?, number?];
  /** Names the op in errors, e.g. "matmul [8,50,768]x[768,2304]". */
  label: string;
}

const UNIFORM_SLOT = 256;

export class GpuError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GpuError';
  }
}

export class Gpu {
  readonly pool: BufferPool;
  readonly limits: Readonly<Record<LimitName, number>>;
  readonly features: ReadonlySet<string>;
  readonly kind: AdapterKind;
  readonly info: { vendor: string; architecture: string; device: string; description: string; backend: string; featureLevel: string };
  readonly chunkSize: number;

  private kernels = new Map<string, Kernel>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private chunkLabels: string[] = [];
  private uniformStage: ArrayBuffer;
  private uniformWords: Uint32Array;
  private uniformBuffer: GPUBuffer;
  private uniformSlots = 0;
  private pendingError: Error | null = null;
  private lostReason: string | null = null;
  private errorChecks: Promise<void>[] = [];
  /** Counters for benchmarks and tests. */
  readonly counters = { dispatches: 0, submits: 0, readbacks: 0, uploads: 0, pipelines: 0 };

  constructor(
    readonly device: GPUDevice,
    adapterInfo: GPUAdapterInfo,
    backend: string,
    featureLevel: string,
    opts: GpuOptions = {},
  ) {
    const lim: Record<string, number> = {};
    for (const k of LIMIT_NAMES) {
      lim[k] = (device.limits as unknown as Record<string, number>)[k] as number;
    }
    for (const [k, v] of Object.entries(opts.limitOverrides ?? {})) {
      if (v !== undefined) lim[k] = k.startsWith('min') ? Math.max(lim[k]!, v) : Math.min(lim[k]!, v);
    }
    this.limits = lim as Record<LimitName, number>;
    const disabled = new Set(opts.disableFeatures ?? []);
    this.features = new Set([...device.features].filter((f) => !disabled.has(f)));
    const desc = `${adapterInfo.vendor} ${adapterInfo.architecture} ${adapterInfo.device} ${adapterInfo.description}`.toLowerCase();
    this.kind = /swiftshader/.test(desc)
      ? 'swiftshader'
      : /llvmpipe|lavapipe/.test(desc)
        ? backend === 'opengles' || /opengl/.test(desc)
          ? 'llvmpipe'
          : 'lavapipe'
        : 'gpu';
    this.info = {
      vendor: adapterInfo.vendor,
      architecture: adapterInfo.architecture,
      device: adapterInfo.device,
      description: adapterInfo.description,
      backend,
      featureLevel,
    };
    this.chunkSize = opts.chunkSize ?? 128;
    this.pool = new BufferPool(device, this.limits.maxBufferSize, this.limits.maxStorageBufferBindingSize);
    const uniformAlign = Math.max(UNIFORM_SLOT, this.limits.minUniformBufferOffsetAlignment);
    if (uniformAlign !== UNIFORM_SLOT) throw new GpuError(`unsupported minUniformBufferOffsetAlignment ${uniformAlign}`);
    this.uniformStage = new ArrayBuffer(this.chunkSize * UNIFORM_SLOT);
    this.uniformWords = new Uint32Array(this.uniformStage);
    this.uniformBuffer = device.createBuffer({
      size: this.chunkSize * UNIFORM_SLOT,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: 'cliptune uniforms',
    });
    device.lost.then((info) => {
      this.lostReason = `${info.reason}: ${info.message}`;
    });
  }

  get isSoftware(): boolean {
    return this.kind !== 'gpu';
  }

  hasFeature(name: string): boolean {
    return this.features.has(name);
  }

  /** Returns the cached pipeline for `key`, creating it from `build()` on first use. */
  kernel(key: string, build: () => KernelSpec): Kernel {
    const hit = this.kernels.get(key);
    if (hit) return hit;
    const spec = build();
    this.checkAlive(spec.label);
    const entries: GPUBindGroupLayoutEntry[] = spec.bindings.map((b, i) => ({
      binding: i,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: b === 'read' ? 'read-only-storage' : 'storage' },
    }));
    if (spec.bindings.length > this.limits.maxStorageBuffersPerShaderStage) {
      throw new GpuError(
        `${spec.label}: binds ${spec.bindings.length} storage buffers, over this device's maxStorageBuffersPerShaderStage ${this.limits.maxStorageBuffersPerShaderStage}`,
      );
    }
    if (spec.uniform) {
      entries.push({ binding: spec.bindings.length, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } });
    }
    const layout = this.device.createBindGroupLayout({ entries, label: spec.label });
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code: spec.code, label: spec.label });
    const pipeline = this.device.createComputePipeline({
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: spec.entry ?? 'main' },
      label: spec.label,
    });
    // Compile errors are reported asynchronously; the next sync point (read/sync) throws them with
    // the kernel's name and the compiler's messages.
    const check = Promise.all([this.device.popErrorScope(), module.getCompilationInfo()]).then(([err, info]) => {
      if (!err) return;
      const msgs = info.messages
        .filter((m) => m.type === 'error')
        .map((m) => `  line ${m.lineNum}:${m.linePos}: ${m.message}`)
        .join('\n');
      this.pendingError ??= new GpuError(`WGSL kernel "${spec.label}" failed to compile: ${err.message}${msgs ? '\n' + msgs : ''}`);
    });
    this.errorChecks.push(check);
    const k: Kernel = { spec, pipeline, layout };
    this.kernels.set(key, k);
    this.counters.pipelines++;
    return k;
  }

  /** Compiles a kernel now and throws its WGSL errors (await it where a bad kernel must fail early). */
  async compile(key: string, build: () => KernelSpec): Promise<Kernel> {
    const k = this.kernel(key, build);
    await this.settleErrors();
    return k;
  }

  /** Number of workgroups split over x and y so that neither exceeds the per-dimension limit. */
  grid(workgroups: number): [number, number, number] {
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (workgroups <= max) return [Math.max(1, workgroups), 1, 1];
    const y = Math.ceil(workgroups / max);
    if (y > max) throw new GpuError(`${workgroups} workgroups exceed ${max}x${max}`);
    return [Math.ceil(workgroups / y), y, 1];
  }

  dispatch(d: DispatchSpec): void {
    this.checkAlive(d.label);
    const { kernel } = d;
    const [x, y = 1, z = 1] = d.workgroups;
    const maxWg = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxWg || y > maxWg || z > maxWg) {
      throw new GpuError(`${d.label}: dispatch [${x},${y},${z}] exceeds maxComputeWorkgroupsPerDimension ${maxWg}`);
    }
    if (d.buffers.length !== kernel.spec.bindings.length) {
      throw new GpuError(`${d.label}: kernel "${kernel.spec.label}" binds ${kernel.spec.bindings.length} buffers, got ${d.buffers.length}`);
    }
    if (x * y * z === 0) return;
    const entries: GPUBindGroupEntry[] = d.buffers.map((b, i) => {
      const bind: Binding = 'buffer' in b ? b : { buffer: b };
      const size = bind.size ?? bind.buffer.size - (bind.offset ?? 0);
      if (size > this.limits.maxStorageBufferBindingSize) {
        throw new GpuError(
          `${d.label}: binding ${i} is ${size} bytes, over this device's maxStorageBufferBindingSize ${this.limits.maxStorageBufferBindingSize} (bind it in windows)`,
        );
      }
      return { binding: i, resource: { buffer: bind.buffer, offset: bind.offset ?? 0, size } };
    });
    if (!this.encoder) this.beginChunk();
    if (kernel.spec.uniform) {
      if (!d.uniforms) throw new GpuError(`${d.label}: kernel "${kernel.spec.label}" needs uniforms`);
      if (d.uniforms.byteLength > UNIFORM_SLOT) throw new GpuError(`${d.label}: uniforms over ${UNIFORM_SLOT} bytes`);
      const slot = this.uniformSlots++;
      const src = new Uint32Array(d.uniforms.buffer, d.uniforms.byteOffset, d.uniforms.byteLength >> 2);
      this.uniformWords.set(src, (slot * UNIFORM_SLOT) >> 2);
      entries.push({ binding: kernel.spec.bindings.length, resource: { buffer: this.uniformBuffer, offset: slot * UNIFORM_SLOT, size: UNIFORM_SLOT } });
    }
    const bindGroup = this.device.createBindGroup({ layout: kernel.layout, entries });
    if (!this.pass) this.pass = this.encoder!.beginComputePass();
    this.pass.setPipeline(kernel.pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(x, y, z);
    this.chunkLabels.push(d.label);
    this.counters.dispatches++;
    if (this.uniformSlots >= this.chunkSize) this.flush();
  }

  /** Encodes a buffer-to-buffer copy in stream order. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number, label: string): void {
    this.checkAlive(label);
    if (!this.encoder) this.beginChunk();
    this.endPass();
    this.encoder!.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.chunkLabels.push(label);
  }

  /** Zero-fills a range in stream order. */
  clear(buffer: GPUBuffer, offset: number, bytes: number, label: string): void {
    this.checkAlive(label);
    if (!this.encoder) this.beginChunk();
    this.endPass();
    this.encoder!.clearBuffer(buffer, offset, bytes);
    this.chunkLabels.push(label);
  }

  /**
   * Uploads host data. Pending commands are submitted first: queue.writeBuffer takes effect on the
   * queue timeline at once, so without this a recycled buffer could be overwritten before encoded
   * reads of its previous contents run.
   */
  write(buffer: GPUBuffer, offset: number, data: ArrayBufferView, label: string): void {
    this.checkAlive(label);
    if (this.encoder) this.flush();
    this.device.queue.writeBuffer(buffer, offset, data.buffer, data.byteOffset, data.byteLength);
    this.counters.uploads++;
  }

  /** Submits everything encoded so far. Does not wait. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    if (this.uniformSlots > 0) {
      this.device.queue.writeBuffer(this.uniformBuffer, 0, this.uniformStage, 0, this.uniformSlots * UNIFORM_SLOT);
    }
    const labels = this.chunkLabels;
    this.device.queue.submit([this.encoder.finish()]);
    this.counters.submits++;
    this.encoder = null;
    this.chunkLabels = [];
    this.uniformSlots = 0;
    // One error scope per chunk (pushed in beginChunk); popped here, checked without waiting.
    const scopes = [this.device.popErrorScope(), this.device.popErrorScope(), this.device.popErrorScope()];
    this.errorChecks.push(
      Promise.all(scopes).then((errs) => {
        const err = errs.find((e) => e);
        if (err && !this.pendingError) this.pendingError = describeChunkError(err, labels, this.lostReason);
      }),
    );
  }

  /** Waits until all submitted work is done and throws the first error any of it raised. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.settleErrors();
  }

  /** Copies a range of a buffer back to the host (submits pending work, then waits). */
  async read(src: GPUBuffer, offset: number, bytes: number, label: string): Promise<ArrayBuffer> {
    this.checkAlive(label);
    const aligned = Math.ceil(bytes / 4) * 4;
    const staging = this.device.createBuffer({ size: Math.max(4, aligned), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: `read ${label}` });
    this.copy(src, offset, staging, 0, aligned, `read ${label}`);
    this.flush();
    this.counters.readbacks++;
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      await this.settleErrors();
      throw new GpuError(`${label}: reading back failed: ${(e as Error).message}${this.lostReason ? ` (device lost: ${this.lostReason})` : ''}`);
    }
    const out = staging.getMappedRange(0, aligned).slice(0, bytes);
    staging.unmap();
    staging.destroy();
    await this.settleErrors();
    return out;
  }

  stats(): PoolStats & { dispatches: number; submits: number; readbacks: number; pipelines: number } {
    return { ...this.pool.snapshot(), ...this.counters };
  }

  destroy(): void {
    this.flush();
    this.pool.trim();
    this.uniformBuffer.destroy();
    this.device.destroy();
  }

  private beginChunk(): void {
    this.device.pushErrorScope('internal');
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    this.encoder = this.device.createCommandEncoder();
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  private checkAlive(label: string): void {
    if (this.lostReason) throw new GpuError(`${label}: the GPU device was lost (${this.lostReason})`);
    if (this.pendingError) {
      const e = this.pendingError;
      this.pendingError = null;
      throw e;
    }
  }

  private async settleErrors(): Promise<void> {
    const checks = this.errorChecks;
    this.errorChecks = [];
    await Promise.all(checks);
    if (this.pendingError) {
      const e = this.pendingError;
      this.pendingError = null;
      throw e;
    }
    if (this.lostReason) throw new GpuError(`the GPU device was lost (${this.lostReason})`);
  }
}

function describeChunkError(err: GPUError, labels: string[], lost: string | null): GpuError {
  const kind = err.constructor?.name === 'GPUOutOfMemoryError' || /out of memory/i.test(err.message) ? 'out of GPU memory' : 'GPU error';
  const named = labels.filter((l) => err.message.includes(l));
  const ops = named.length ? named : labels.slice(0, 8);
  return new GpuError(
    `${kind} in a submitted chunk of ${labels.length} ops (${named.length ? 'named' : 'first'}: ${ops.join('; ')}${!named.length && labels.length > 8 ? '; ...' : ''}): ${err.message}${lost ? ` (device lost: ${lost})` : ''}`,
  );
}

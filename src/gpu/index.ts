// One function that gives a ready device in Node, Deno and browsers.
import { Gpu, GpuError, LIMIT_NAMES, type GpuOptions } from './device.js';

export { Gpu, GpuError } from './device.js';
export type { GpuOptions, Kernel, KernelSpec, DispatchSpec, Binding, AdapterKind, LimitName } from './device.js';
export { shaderSource, fillTemplate } from './wgsl.js';

const OPTIONAL_FEATURES: GPUFeatureName[] = ['shader-f16', 'subgroups' as GPUFeatureName, 'timestamp-query'];

function envVar(name: string): string | undefined {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> }; Deno?: { env: { get(k: string): string | undefined } } };
  try {
    return g.process?.env?.[name] ?? g.Deno?.env.get(name);
  } catch {
    return undefined; // Deno without --allow-env
  }
}

async function requestAdapter(opts: GpuOptions): Promise<{ adapter: GPUAdapter; backend: string; featureLevel: string }> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  const backend = opts.backend ?? envVar('CLIPTUNE_BACKEND');
  if (nav?.gpu) {
    // Browsers and Deno: core first, then the compatibility level (GL-only platforms).
    for (const featureLevel of ['core', 'compatibility'] as const) {
      const o: GPURequestAdapterOptions & { featureLevel?: string } = { featureLevel };
      if (opts.powerPreference) o.powerPreference = opts.powerPreference;
      const adapter = await nav.gpu.requestAdapter(o).catch(() => null);
      if (adapter) return { adapter, backend: 'browser', featureLevel: (adapter as { featureLevel?: string }).featureLevel ?? featureLevel };
    }
    throw new GpuError('navigator.gpu.requestAdapter() returned no adapter (WebGPU disabled or no supported GPU)');
  }
  const isNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';
  if (!isNode) throw new GpuError('this JavaScript runtime has no WebGPU (navigator.gpu is missing)');
  const { requestNodeAdapter } = await import('./node-webgpu.js');
  const found = await requestNodeAdapter(opts.powerPreference, backend);
  if (!found) {
    throw new GpuError(
      `no WebGPU adapter found${backend ? ` for backend "${backend}"` : ''}. On Linux without a GPU, install Mesa ` +
        '(apt-get install libegl1 libgles2 libegl-mesa0 libvulkan1 mesa-vulkan-drivers) for the software GL ES adapter.',
    );
  }
  return { adapter: found.adapter, backend: found.choice.backend, featureLevel: found.choice.featureLevel };
}

/** Creates a device with the adapter's full limits and every optional feature it offers. */
export async function createGpu(opts: GpuOptions = {}): Promise<Gpu> {
  const { adapter, backend, featureLevel } = await requestAdapter(opts);
  const requiredLimits: Record<string, number> = {};
  for (const k of LIMIT_NAMES) {
    if (k === 'maxBindGroups') continue;
    const v = (adapter.limits as unknown as Record<string, number>)[k];
    if (typeof v === 'number') requiredLimits[k] = v;
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  const info = adapter.info ?? ({ vendor: '', architecture: '', device: '', description: '' } as GPUAdapterInfo);
  return new Gpu(device, info, backend, featureLevel, opts);
}

let shared: Promise<Gpu> | null = null;
let sharedGpu: Gpu | null = null;

/** The process-wide default device (created on first use). */
export function getGpu(opts?: GpuOptions): Promise<Gpu> {
  if (!shared) {
    shared = createGpu(opts).then((g) => (sharedGpu = g));
    shared.catch(() => (shared = null));
  }
  return shared;
}

/** The default device, synchronously; throws if `getGpu()` was not awaited first. */
export function currentGpu(): Gpu {
  if (!sharedGpu) throw new GpuError('no GPU device yet: await getGpu() (or createGpu()) before creating tensors');
  return sharedGpu;
}

/** Makes `gpu` the default device for tensor creation. */
export function setCurrentGpu(gpu: Gpu): void {
  sharedGpu = gpu;
  shared = Promise.resolve(gpu);
}

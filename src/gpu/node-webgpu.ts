// Node-only: obtains a GPU object from the npm `webgpu` package (Dawn). Kept in its own module
// so the rest of the engine has no Node-only imports and bundles for browsers unchanged.

export interface NodeGpuChoice {
  gpu: GPU;
  /** Dawn backend that produced the adapter ('default' = Dawn's own choice). */
  backend: string;
  featureLevel: 'core' | 'compatibility';
}

type CreateFn = (options: string[]) => GPU;

// Dawn tears down its instance when the GPU object is garbage collected, even while a device made
// from it is in use (the process then aborts in native code). Keep every instance we hand out alive.
const liveInstances: GPU[] = [];

let cachedModule: { create: CreateFn; globals: Record<string, unknown> } | null = null;

async function loadDawn(): Promise<{ create: CreateFn; globals: Record<string, unknown> }> {
  if (cachedModule) return cachedModule;
  // The software GL path needs these before Dawn initialises EGL; users must not have to set them.
  process.env.EGL_PLATFORM ??= 'surfaceless';
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
  let mod: { create: CreateFn; globals: Record<string, unknown> };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch (e) {
    throw new Error(
      `cliptune: could not load the npm package "webgpu" (Dawn for Node): ${(e as Error).message}. ` +
        'Run `npm ci` in the project, or install webgpu@0.6.2.',
    );
  }
  // Dawn exposes GPUBufferUsage, GPUShaderStage, ... as globals only through `globals`.
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  cachedModule = mod;
  return mod;
}

/**
 * Adapter search order in Node:
 *  1. the platform's native backend (Vulkan/Metal/D3D12), accepted only if it is not a fallback adapter;
 *  2. the GL ES backend at compatibility level (llvmpipe on machines without a GPU).
 * `backend` forces one ('vulkan', 'opengles', 'metal', 'd3d12', 'null', ...).
 */
export async function requestNodeAdapter(
  powerPreference: GPUPowerPreference | undefined,
  backend?: string,
): Promise<{ adapter: GPUAdapter; choice: NodeGpuChoice } | null> {
  const { create } = await loadDawn();
  const attempts: { backend: string; options: string[]; featureLevel: 'core' | 'compatibility'; allowFallback: boolean }[] = [];
  if (backend) {
    const options = backend === 'default' ? [] : [`backend=${backend}`];
    attempts.push({ backend, options, featureLevel: 'core', allowFallback: true });
    attempts.push({ backend, options, featureLevel: 'compatibility', allowFallback: true });
  } else {
    attempts.push({ backend: 'default', options: [], featureLevel: 'core', allowFallback: false });
    attempts.push({ backend: 'opengles', options: ['backend=opengles'], featureLevel: 'compatibility', allowFallback: true });
    attempts.push({ backend: 'default', options: [], featureLevel: 'core', allowFallback: true });
  }
  for (const a of attempts) {
    let gpu: GPU;
    try {
      gpu = create(a.options);
    } catch {
      continue;
    }
    const opts: GPURequestAdapterOptions & { featureLevel?: string } = { featureLevel: a.featureLevel };
    if (powerPreference) opts.powerPreference = powerPreference;
    const adapter = await gpu.requestAdapter(opts).catch(() => null);
    if (!adapter) continue;
    if (!a.allowFallback && isFallback(adapter)) continue;
    liveInstances.push(gpu);
    return { adapter, choice: { gpu, backend: a.backend, featureLevel: a.featureLevel } };
  }
  return null;
}

function isFallback(adapter: GPUAdapter): boolean {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  if (info.isFallbackAdapter ?? (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter) return true;
  const d = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  return /llvmpipe|lavapipe|swiftshader|softpipe/.test(d);
}

// Loads the peer libraries the suites compare against, in this process and on the same adapter as
// cliptune (runtime.md section 6). They live in bench/node_modules (`npm install --prefix bench`),
// never in cliptune's own dependencies. A peer that is missing or fails to start is reported with
// the reason instead of a number; the suite still prints cliptune's numbers.
import { createRequire, register } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Gpu } from '../src/gpu/index.js';

export const INSTALL_HINT = 'peers not installed: run `npm install --prefix bench`';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

let shimmed = false;

/**
 * navigator.gpu for libraries that call navigator.gpu.requestAdapter(): a Dawn instance from the
 * same npm `webgpu` package and backend cliptune uses. On the GL backend an adapter exists only at
 * the compatibility feature level, which these libraries never ask for, so it is added.
 * Install it after cliptune's device exists (cliptune itself would otherwise take the navigator path).
 */
export async function installNavigatorGpu(ours: Gpu): Promise<void> {
  if (shimmed) return;
  const { create } = (await import('webgpu')) as unknown as { create: (o: string[]) => GPU };
  const backend = ours.info.backend;
  const options = backend && backend !== 'default' && backend !== 'browser' ? [`backend=${backend}`] : [];
  const instance = create(options);
  const featureLevel = ours.info.featureLevel;
  const gpu = {
    requestAdapter: (o: GPURequestAdapterOptions = {}) => instance.requestAdapter({ ...o, featureLevel } as GPURequestAdapterOptions),
    getPreferredCanvasFormat: () => 'rgba8unorm',
    get wgslLanguageFeatures() {
      return (instance as Any).wgslLanguageFeatures ?? new Set();
    },
    // Dawn tears the instance down when it is garbage collected; the shim keeps it referenced.
    instance,
  };
  const g = globalThis as Any;
  if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  else g.navigator = { gpu };
  shimmed = true;
}

function benchRequire(root: string): NodeRequire | null {
  const pkg = join(root, 'bench', 'package.json');
  if (!existsSync(join(root, 'bench', 'node_modules'))) return null;
  return createRequire(pkg);
}

export interface Tfjs {
  tf: Any;
  /** Waits for everything tfjs has queued on its device. */
  sync(): Promise<void>;
}

let tfjs: Promise<Tfjs> | null = null;

/**
 * @tensorflow/tfjs-core + tfjs-backend-webgpu 4.22.0 through their ESM builds (with a resolve hook
 * for their extensionless imports), so gradients can be registered too.
 */
export function loadTfjs(root: string, ours: Gpu, opts: { gradients?: boolean } = {}): Promise<Tfjs> {
  tfjs ??= (async () => {
    const req = benchRequire(root);
    if (!req) throw new Error(INSTALL_HINT);
    let coreDir: string;
    let backendDir: string;
    try {
      coreDir = join(req.resolve('@tensorflow/tfjs-core/package.json'), '..');
      backendDir = join(req.resolve('@tensorflow/tfjs-backend-webgpu/package.json'), '..');
    } catch {
      throw new Error(INSTALL_HINT);
    }
    await installNavigatorGpu(ours);
    register(pathToFileURL(join(root, 'bench', 'tfjs-resolve-hook.mjs')).href);
    // tfjs-core's ESM platform_node.js still calls a bare require('util') when it detects Node.
    const g = globalThis as Any;
    g.require ??= req;
    const tf = await import(pathToFileURL(join(coreDir, 'dist', 'index.js')).href);
    await import(pathToFileURL(join(backendDir, 'dist', 'index.js')).href);
    if (opts.gradients) await import(pathToFileURL(join(coreDir, 'dist', 'register_all_gradients.js')).href);
    if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: the webgpu backend failed to initialise');
    await tf.ready();
    const backend = tf.backend();
    return {
      tf,
      async sync() {
        // tfjs keeps a compute pass open between ops (it submits every
        // WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE dispatches): end it before submitting, or the command
        // buffer is invalid and the queued dispatches never run (Dawn: "Command buffer recording
        // ended before [ComputePassEncoder] was ended").
        backend.ensureCommandEncoderReady();
        backend.endComputePassEncoder();
        backend.submitQueue();
        await backend.device.queue.onSubmittedWorkDone();
      },
    };
  })();
  return tfjs;
}

export interface GpuJs {
  GPU: Any;
  input: Any;
  /** The GPUDevice gpu.js runs on (shared by all its webgpu kernels). */
  device(): Promise<GPUDevice>;
}

let gpujs: Promise<GpuJs> | null = null;

/**
 * gpu.js 2.24.1 in mode 'webgpu' on the navigator.gpu shim. (Its own `webgpu@0.2.9` dependency
 * needs a newer libstdc++ than Debian 12 has, and is never loaded here.)
 */
export function loadGpuJs(root: string, ours: Gpu): Promise<GpuJs> {
  gpujs ??= (async () => {
    const req = benchRequire(root);
    if (!req) throw new Error(INSTALL_HINT);
    let mod: Any;
    try {
      mod = req('gpu.js');
    } catch (e) {
      if ((e as { code?: string }).code === 'MODULE_NOT_FOUND' && /'gpu\.js'/.test((e as Error).message)) throw new Error(INSTALL_HINT);
      throw e;
    }
    await installNavigatorGpu(ours);
    const ctxMod = req('gpu.js/src/backend/web-gpu/context.js');
    return {
      GPU: mod.GPU,
      input: mod.input,
      async device() {
        const ctx = await ctxMod.WebGPUContext.acquire();
        return ctx.device as GPUDevice;
      },
    };
  })();
  return gpujs;
}

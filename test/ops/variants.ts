// Runs a block under every kernel configuration of the reduction family: the adapter's automatic
// choice, each variant forced ('wg': one workgroup per row/chunk at the adapter's workgroup size,
// 'thread': one invocation per row/chunk), and 'wg256': the workgroup variant with 256 invocations,
// the configuration real GPUs run, so it is tested on the CPU adapters too.
import { forceReduceVariant, forceRowWorkgroup } from '../../src/ops/reduce-core.js';

export type Config = 'auto' | 'wg' | 'thread' | 'wg256';
export const CONFIGS: readonly Config[] = ['auto', 'wg', 'thread', 'wg256'];

export async function forEachVariant(fn: (v: Config) => Promise<void>, configs: readonly Config[] = CONFIGS): Promise<void> {
  for (const v of configs) {
    forceReduceVariant(v === 'auto' ? null : v === 'wg256' ? 'wg' : v);
    forceRowWorkgroup(v === 'wg256' ? 256 : null);
    try {
      await fn(v);
    } finally {
      forceReduceVariant(null);
      forceRowWorkgroup(null);
    }
  }
}

// Shared plumbing of the row kernels (softmax, layer norm, losses, distances): which variant runs
// a row (one workgroup or one invocation), the workgroup tree prelude, and the dispatch grid.
import { GpuError, shaderSource, type Gpu } from '../gpu/index.js';
import { forcedVariant, LOOP_BUDGET, rowIterations, rowWorkgroupSize, type ReduceVariant } from './reduce-core.js';

export interface RowPlan {
  variant: ReduceVariant;
  /** Workgroup size of the 'wg' variant (also fixes the tree prelude of both entry points). */
  wg: number;
}

/**
 * How a row op that loops `passes` times over each row of length n runs. GPUs: one invocation per
 * row up to 64 elements, one workgroup per row beyond. CPU adapters: one invocation per row
 * wherever it fits the loop budget (about 19000 elements for 3 passes), one workgroup beyond;
 * measured on llvmpipe (ms, workgroup of 8 vs invocation): softmax [1600,768] 21.6 vs 20.1,
 * [512,4096] 36.5 vs 18.7, [16,768] 0.3 vs 0.3; layer norm [1600,768] 24.6 vs 15.3.
 * A forced 'thread' variant falls back to 'wg' where one invocation would run over the loop
 * budget; rows too long even for the largest workgroup throw (before anything is encoded).
 */
export function rowPlan(gpu: Gpu, op: string, n: number, passes: number): RowPlan {
  const wg = rowWorkgroupSize(gpu, n, passes);
  if (rowIterations(wg, n, passes) > LOOP_BUDGET) {
    throw new GpuError(`${op}: rows of ${n} elements are too long for one workgroup of ${wg} (over the ${LOOP_BUDGET}-iteration loop budget of software adapters)`);
  }
  const threadFits = rowIterations(1, n, passes) + Math.ceil(n / 64) <= LOOP_BUDGET;
  const f = forcedVariant();
  const auto: ReduceVariant = gpu.kind === 'gpu' ? (n > 64 ? 'wg' : 'thread') : 'thread';
  const variant: ReduceVariant = f === 'wg' || !threadFits ? 'wg' : (f ?? auto);
  return { variant, wg };
}

/** The tree prelude (shaders/row_tree.wgsl) for workgroups of `wg`, followed by a kernel source. */
export function rowSource(wg: number, name: string, defines: Record<string, string | number | boolean>): string {
  return shaderSource('row_tree', { WG: wg }) + shaderSource(name, defines);
}

export function rowWorkgroups(gpu: Gpu, variant: ReduceVariant, rows: number): [number, number, number] {
  return gpu.grid(variant === 'wg' ? rows : Math.ceil(rows / 64));
}

/** A storage binding of a generated kernel: WGSL name, access, element type. */
export type Decl = readonly [name: string, access: 'read' | 'rw', type: string];

/**
 * WGSL declarations for storage bindings 0..n-1 in order, then the uniform block `u: Params`, and
 * the matching KernelSpec binding kinds.
 */
export function declare(list: readonly Decl[]): { code: string; bindings: ('read' | 'rw')[] } {
  const lines = list.map(
    ([name, access, type], i) => `@group(0) @binding(${i}) var<storage, ${access === 'read' ? 'read' : 'read_write'}> ${name}: array<${type}>;`,
  );
  lines.push(`@group(0) @binding(${list.length}) var<uniform> u: Params;`);
  return { code: lines.join('\n'), bindings: list.map(([, a]) => a) };
}
